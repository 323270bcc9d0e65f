//! `gco grid`: zones and the intensity cascade.

use anyhow::Result;
use gco_grid_data::series::SeriesIndex;
use gco_grid_data::{Resolver, Signal, ZoneCatalog};
use serde_json::json;

use super::{open_store, time_or_now};
use crate::cli::{Global, GridCommand, SignalArg};
use crate::output::print_json;

pub async fn run(cmd: GridCommand, g: &Global) -> Result<u8> {
    match cmd {
        GridCommand::Show { zone, at, signal } => {
            let at = time_or_now(at.as_deref(), "at")?;
            let signal = match signal {
                SignalArg::Average => Signal::Average,
                SignalArg::Marginal => Signal::Marginal,
            };
            // Only the cache is read: the answer is reproducible offline.
            let store = open_store(g)?;
            let series = SeriesIndex::load(&store, at, at).await?;
            let resolver = Resolver::new(series)?;
            let ans = resolver.resolve(&zone, at, signal)?;
            if g.json {
                print_json(&ans)?;
            } else {
                println!(
                    "{} at {}: {:.3} gCO2e/kWh ({} {}, {:?}, level {})\n  source: {}\n  data:   {} ({}) for zone {}",
                    ans.zone,
                    ans.at,
                    ans.g_per_kwh,
                    ans.signal.as_str(),
                    ans.basis,
                    ans.fallback_level,
                    ans.fallback_rank,
                    ans.source,
                    ans.data_time,
                    ans.data_period,
                    ans.figure_zone
                );
            }
            Ok(0)
        }
        GridCommand::Zones { kind } => {
            let catalog = ZoneCatalog::bundled()?;
            let zones: Vec<_> = catalog
                .zones()
                .filter(|z| kind.as_deref().is_none_or(|k| z.kind == k))
                .collect();
            if g.json {
                print_json(&json!({ "zones": zones }))?;
            } else {
                println!(
                    "{:<24} {:<16} {:<7} {:<16} {:<14} {:<6} name",
                    "zone", "kind", "country", "electricitymaps", "watttime", "uk"
                );
                for z in &zones {
                    println!(
                        "{:<24} {:<16} {:<7} {:<16} {:<14} {:<6} {}",
                        z.id,
                        z.kind,
                        z.country,
                        z.electricitymaps.as_deref().unwrap_or("-"),
                        z.watttime.as_deref().unwrap_or("-"),
                        z.uk_region.as_deref().unwrap_or("-"),
                        z.name
                    );
                }
                eprintln!("{} zones", zones.len());
            }
            Ok(0)
        }
    }
}
