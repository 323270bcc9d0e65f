//! Market-based Scope 2: contractual instruments (GOs, RECs, PPAs, supplier rates)
//! allocated to the period's Scope 2 consumption per zone, the remainder at the zone's
//! residual-mix factor (or, flagged, the grid average where no residual mix is known).
//!
//! Allocation, per zone: an instrument's energy is spread evenly over the days it
//! covers; the part falling in the period is available. Instruments are applied in
//! (from, id) order until the zone's facility energy is covered; what is left over is
//! reported as unallocated, never carried. Each Scope 2 row then gets its pro-rata
//! share: with D the zone's consumption, C the covered energy and N = sum(allocated x
//! factor), market_ng = round(fac x N / (D x 3600)) + round(fac x (D - C) x R /
//! (D x 3600)). Scope 3 (cloud) rows carry their location-based figure.

use std::collections::BTreeMap;

use crate::error::{Kind, OrFail, Result};
use polars::prelude::*;

use crate::config::PipelineConfig;
use crate::math::checked_round_div;

/// ng = mJ x mg/kWh / (mJ per kWh / ng per mg) = mJ x mg/kWh / 3,600.
const PER_MG_KWH: i128 = (gco_ledger::units::MJ_PER_KWH / gco_ledger::units::NG_PER_MG) as i128;
use crate::period::Period;
use crate::schema::col;

pub use crate::manifest::{InstrumentUse, ZoneAllocation};

#[derive(Debug, Clone, Default)]
pub struct Allocation {
    pub zones: BTreeMap<String, ZoneAllocation>,
    pub instruments: Vec<InstrumentUse>,
}

impl Allocation {
    pub fn report(&self) -> crate::manifest::AllocationReport {
        crate::manifest::AllocationReport {
            zones: self.zones.clone(),
            instruments: self.instruments.clone(),
            residual_mix_unknown: self.residual_mix_unknown(),
        }
    }

    /// Zones with uncovered energy and no configured residual mix.
    pub fn residual_mix_unknown(&self) -> Vec<String> {
        self.zones
            .iter()
            .filter(|(_, z)| z.residual_mg_per_kwh.is_none() && z.covered_mj < z.consumption_mj)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

pub fn allocate(
    cfg: &PipelineConfig,
    period: Period,
    consumption: &BTreeMap<String, i64>,
) -> crate::error::Result<Allocation> {
    let mut out = Allocation::default();
    for (zone, d) in consumption {
        out.zones.insert(
            zone.clone(),
            ZoneAllocation {
                consumption_mj: *d,
                residual_mg_per_kwh: cfg.residual_mg_per_kwh(zone)?,
                ..Default::default()
            },
        );
    }
    let (p0, p1) = (period.first_day(), period.next().first_day());
    let mut instruments = cfg.instruments()?;
    instruments.sort_by(|a, b| (a.from, &a.id).cmp(&(b.from, &b.id)));
    for i in instruments {
        let days = (i.to - i.from).num_days() + 1;
        let from = i.from.max(p0);
        let to_excl = (i.to + chrono::Days::new(1)).min(p1);
        let overlap = (to_excl - from).num_days().max(0);
        if overlap == 0 {
            continue;
        }
        let available = (i.energy_mj as i128 * overlap as i128 / days as i128) as i64;
        let z = out.zones.entry(i.zone.clone()).or_default();
        let allocated = available.min(z.consumption_mj - z.covered_mj).max(0);
        z.covered_mj += allocated;
        z.instrument_weight += allocated as i128 * i.factor_mg_per_kwh as i128;
        out.instruments.push(InstrumentUse {
            id: i.id,
            kind: i.kind,
            zone: i.zone,
            available_mj: available,
            allocated_mj: allocated,
            unallocated_mj: available - allocated,
            factor_mg_per_kwh: i.factor_mg_per_kwh,
        });
    }
    Ok(out)
}

/// Adds `market_ng`, `market_covered_mj`, `market_method` to staged rows.
pub fn add_market(mut df: DataFrame, alloc: &Allocation) -> Result<DataFrame> {
    let fac = df.column(col::FACILITY_ENERGY_MJ)?.i64()?.clone();
    let loc = df.column(col::LOCATION_NG)?.i64()?.clone();
    let avg = df.column(col::INTENSITY_MG_PER_KWH)?.i64()?.clone();
    let zone = df.column(col::ZONE)?.str()?.clone();
    let scope = df.column(col::SCOPE)?.str()?.clone();
    let h = df.height();
    let (mut ng, mut covered, mut method) = (
        Vec::with_capacity(h),
        Vec::with_capacity(h),
        Vec::with_capacity(h),
    );
    // Rows come in runs of one zone and scope: the zone's allocation is looked up
    // when they change.
    let mut last: Option<(Option<&str>, Option<&str>, Option<&ZoneAllocation>)> = None;
    let rows = fac.iter().zip(loc.iter()).zip(avg.iter());
    for (((f, l), a), (zn, s)) in rows.zip(zone.iter().zip(scope.iter())) {
        let za = match last {
            Some((lz, ls, za)) if lz == zn && ls == s => za,
            _ => {
                let za = zn.and_then(|z| alloc.zones.get(z));
                last = Some((zn, s, za));
                za
            }
        };
        let f = f.unwrap_or(0) as i128;
        match (s, za) {
            (Some("scope2"), Some(z)) if z.consumption_mj > 0 => {
                let d = z.consumption_mj as i128;
                let c = z.covered_mj as i128;
                let r = z.residual_mg_per_kwh.unwrap_or(a.unwrap_or(0)) as i128;
                // Checked: a figure that does not fit is an error, never clamped.
                let figure = || -> Option<(i64, i64)> {
                    let a = checked_round_div(f.checked_mul(z.instrument_weight)?, d * PER_MG_KWH)?;
                    let b =
                        checked_round_div(f.checked_mul(d - c)?.checked_mul(r)?, d * PER_MG_KWH)?;
                    let v = i64::try_from(a.checked_add(b)?).ok()?;
                    Some((
                        v,
                        i64::try_from(checked_round_div(f.checked_mul(c)?, d)?).ok()?,
                    ))
                };
                let (v, cov) = figure().or_else_fail(Kind::Overflow, || {
                    format!(
                        "the market-based figure of a row of {} mJ in zone {} does not fit 64 bits",
                        f,
                        zn.unwrap_or("?")
                    )
                })?;
                ng.push(v);
                covered.push(cov);
                method.push(match (c == d, c > 0, z.residual_mg_per_kwh.is_some()) {
                    (true, _, _) => "instruments",
                    (false, true, true) => "instruments+residual_mix",
                    (false, true, false) => "instruments+grid_average(no_residual_mix)",
                    (false, false, true) => "residual_mix",
                    (false, false, false) => "grid_average(no_residual_mix)",
                });
            }
            (Some("scope2"), _) => {
                ng.push(0);
                covered.push(0);
                method.push("no_consumption");
            }
            _ => {
                ng.push(l.unwrap_or(0));
                covered.push(0);
                method.push("scope3_location_based");
            }
        }
    }
    df.with_column(Column::new(col::MARKET_NG.into(), ng))?;
    df.with_column(Column::new(col::MARKET_COVERED_MJ.into(), covered))?;
    df.with_column(crate::rows::shared_strings(col::MARKET_METHOD, h, |i| {
        Some(method[i])
    }))?;
    Ok(df)
}
