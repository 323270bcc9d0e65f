//! `gco grid`: zones and the intensity cascade.

use anyhow::Result;
use gco_grid_data::series::SeriesIndex;
use gco_grid_data::{Resolver, Signal, ZoneCatalog};
use serde_json::json;

use super::{open_store, time_or_now};
use crate::cli::{Global, GridCommand, SignalArg, SourceArg};
use crate::output::print_json;
use gco_grid_data::backfill::BackfillRequest;

pub async fn run(cmd: GridCommand, g: &Global) -> Result<u8> {
    match cmd {
        GridCommand::Show { zone, at, signal } => {
            let at = time_or_now(at.as_deref(), "at")?;
            let signal = signal_of(signal);
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
        GridCommand::Backfill {
            zone,
            from,
            to,
            source,
            signal,
            force,
        } => {
            let (config, store) = crate::config::load_with_store(g)?;
            let catalog = ZoneCatalog::bundled()?;
            let zone = catalog.resolve(&zone)?;
            let (from, to) = (
                time_or_now(Some(&from), "from")?,
                time_or_now(Some(&to), "to")?,
            );
            if to <= from {
                anyhow::bail!("--to must be after --from");
            }
            let provider = pick(&config, zone, source, signal)?;
            let now = time_or_now(None, "now")?;
            let quiet = g.json;
            let months = gco_grid_data::backfill::backfill(
                &store,
                &provider,
                BackfillRequest {
                    zone,
                    from,
                    to,
                    fetched_at: now,
                    force,
                },
                &|m| {
                    if !quiet {
                        eprintln!(
                            "{} {}: {} ({} points, {} estimated, {} gaps)",
                            zone.id, m.month, m.status, m.points, m.estimated, m.gaps
                        );
                    }
                },
            )
            .await?;
            if g.json {
                print_json(
                    &json!({"zone": zone.id, "source": provider.source(), "months": months}),
                )?;
            }
            Ok(0)
        }
        GridCommand::Fetch {
            zone,
            source,
            signal,
        } => {
            let (config, store) = crate::config::load_with_store(g)?;
            let catalog = ZoneCatalog::bundled()?;
            let zone = catalog.resolve(&zone)?;
            let provider = pick(&config, zone, source, signal)?;
            let now = time_or_now(None, "now")?;
            let out = gco_grid_data::backfill::fetch_latest(&store, &provider, zone, now).await?;
            if g.json {
                print_json(&json!({"zone": zone.id, "source": provider.source(), "fetch": out}))?;
            } else {
                eprintln!(
                    "{} from {}: {} points ({} estimated) into {}",
                    zone.id,
                    provider.source(),
                    out.points,
                    out.estimated,
                    out.objects.join(", ")
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

fn signal_of(s: SignalArg) -> Signal {
    match s {
        SignalArg::Average => Signal::Average,
        SignalArg::Marginal => Signal::Marginal,
    }
}

/// The provider to use for `zone`: the one asked for, else the first configured one
/// that has a code for the zone.
fn pick(
    config: &crate::config::Config,
    zone: &gco_grid_data::Zone,
    source: Option<SourceArg>,
    signal: SignalArg,
) -> Result<gco_grid_data::backfill::Provider> {
    let wanted = source.map(|s| match s {
        SourceArg::Watttime => gco_grid_data::providers::watttime::PROVIDER,
        SourceArg::Electricitymaps => gco_grid_data::providers::electricitymaps::PROVIDER,
        SourceArg::Uk => gco_grid_data::providers::uk::PROVIDER,
    });
    let clients = crate::config::clients(&config.providers, signal_of(signal))?;
    if let Some(w) = wanted {
        return clients
            .into_iter()
            .find(|c| c.source() == w)
            .ok_or_else(|| anyhow::anyhow!("{w} is not configured: set its credentials in the environment or gco.toml [providers]"));
    }
    clients.into_iter().find(|c| c.serves(zone)).ok_or_else(|| {
        anyhow::anyhow!(
            "no configured provider serves zone {}; configure WattTime or Electricity Maps credentials, or rely on the bundled baselines (`gco grid show` works offline)",
            zone.id
        )
    })
}
