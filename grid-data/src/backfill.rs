//! `gco grid backfill` and `gco grid fetch`: provider data into the cache.
//!
//! A backfill walks the range month by month; a month whose cached objects already
//! cover the requested part is skipped, so an interrupted backfill resumes where it
//! stopped. Each fetched month becomes one create-only object whose footer records
//! the request, the provider's response metadata, gaps and estimated points.

use gco_ledger::Store;
use gco_ledger::time::{Micros, date_start, utc_date};
use serde::Serialize;

use crate::Signal;
use crate::catalog::Zone;
use crate::error::{GridError, Result};
use crate::providers::electricitymaps::{self, ElectricityMaps};
use crate::providers::uk::{self, UkCarbonIntensity};
use crate::providers::watttime::{self, SignalType, WattTime};
use crate::providers::{Fetched, ProviderError};
use crate::series::{FetchMeta, fetch_metas, write_points};

/// A configured provider.
pub enum Provider {
    WattTime(WattTime, Signal),
    ElectricityMaps(ElectricityMaps),
    Uk(UkCarbonIntensity),
}

impl Provider {
    /// The source name used in the cache.
    pub fn source(&self) -> &'static str {
        match self {
            Provider::WattTime(..) => watttime::PROVIDER,
            Provider::ElectricityMaps(_) => electricitymaps::PROVIDER,
            Provider::Uk(_) => uk::PROVIDER,
        }
    }

    /// Whether this provider has a code for `zone`.
    pub fn serves(&self, zone: &Zone) -> bool {
        match self {
            Provider::WattTime(..) => zone.watttime.is_some(),
            Provider::ElectricityMaps(_) => zone.electricitymaps.is_some(),
            Provider::Uk(_) => zone.uk_region.is_some(),
        }
    }

    fn not_served(&self, zone: &Zone) -> GridError {
        GridError::Cache(format!(
            "{} has no code for zone {} (see `gco grid zones`)",
            self.source(),
            zone.id
        ))
    }

    async fn range(&self, zone: &Zone, from: Micros, to: Micros) -> Result<Fetched> {
        let r: std::result::Result<Fetched, ProviderError> = match self {
            Provider::WattTime(c, signal) => {
                let region = zone
                    .watttime
                    .as_deref()
                    .ok_or_else(|| self.not_served(zone))?;
                c.historical(region, &zone.id, SignalType::for_signal(*signal), from, to)
                    .await
            }
            Provider::ElectricityMaps(c) => {
                let code = zone
                    .electricitymaps
                    .as_deref()
                    .ok_or_else(|| self.not_served(zone))?;
                c.past_range(code, &zone.id, from, to).await
            }
            Provider::Uk(c) => match zone.uk_region.as_deref() {
                Some("national") => c.national(&zone.id, from, to).await,
                Some(id) => c.regional(&zone.id, id, Some((from, to))).await,
                None => return Err(self.not_served(zone)),
            },
        };
        r.map_err(|e| GridError::Cache(e.to_string()))
    }

    /// Latest values (and forecasts where the provider has them).
    pub async fn latest(&self, zone: &Zone) -> Result<Fetched> {
        let r = match self {
            Provider::WattTime(c, signal) => {
                let region = zone
                    .watttime
                    .as_deref()
                    .ok_or_else(|| self.not_served(zone))?;
                c.forecast(region, &zone.id, SignalType::for_signal(*signal), 24)
                    .await
            }
            Provider::ElectricityMaps(c) => {
                let code = zone
                    .electricitymaps
                    .as_deref()
                    .ok_or_else(|| self.not_served(zone))?;
                c.history(code, &zone.id).await
            }
            Provider::Uk(c) => match zone.uk_region.as_deref() {
                Some(id) if id != "national" => c.regional(&zone.id, id, None).await,
                Some(_) => {
                    return Err(GridError::Cache(
                        "the UK national series is read by backfill (it has actuals)".into(),
                    ));
                }
                None => return Err(self.not_served(zone)),
            },
        };
        r.map_err(|e| GridError::Cache(e.to_string()))
    }
}

/// What happened to one month.
#[derive(Debug, Clone, Serialize)]
pub struct MonthOutcome {
    pub month: String,
    /// `fetched`, `cached` (skipped) or `empty` (the provider had nothing).
    pub status: &'static str,
    pub points: usize,
    pub estimated: usize,
    pub gaps: usize,
    pub objects: Vec<String>,
}

fn month_bounds(from: Micros, to: Micros) -> Vec<(String, Micros, Micros)> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        let d = utc_date(t);
        let first = d.with_day0(0).unwrap_or(d);
        let next = first
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(first);
        let end = date_start(next).min(to);
        out.push((first.format("%Y-%m").to_string(), t, end));
        t = end;
    }
    out
}

use chrono::Datelike;

/// What to backfill.
#[derive(Debug, Clone, Copy)]
pub struct BackfillRequest<'a> {
    pub zone: &'a Zone,
    pub from: Micros,
    pub to: Micros,
    /// The run's clock reading, stored with each fetch.
    pub fetched_at: Micros,
    /// Refetch months the cache already covers.
    pub force: bool,
}

/// Fills the cache for `req.zone` over `[req.from, req.to)`.
pub async fn backfill(
    store: &Store,
    provider: &Provider,
    req: BackfillRequest<'_>,
    on_month: &(dyn Fn(&MonthOutcome) + Sync),
) -> Result<Vec<MonthOutcome>> {
    let BackfillRequest {
        zone,
        from,
        to,
        fetched_at,
        force,
    } = req;
    if !provider.serves(zone) {
        return Err(provider.not_served(zone));
    }
    let existing = fetch_metas(store, provider.source(), &zone.id).await?;
    let mut out = Vec::new();
    for (month, a, b) in month_bounds(from, to) {
        let covered = existing
            .iter()
            .any(|(_, m)| m.covers.is_some_and(|(x, y)| x <= a && b <= y));
        let outcome = if covered && !force {
            MonthOutcome {
                month,
                status: "cached",
                points: 0,
                estimated: 0,
                gaps: 0,
                objects: vec![],
            }
        } else {
            let f = provider.range(zone, a, b).await?;
            let request = format!(
                "{} range {} .. {}",
                provider.source(),
                gco_ledger::time::format_utc(a),
                gco_ledger::time::format_utc(b)
            );
            store_fetched(
                store,
                provider,
                zone,
                f,
                request,
                fetched_at,
                Some((a, b)),
                month,
            )
            .await?
        };
        on_month(&outcome);
        out.push(outcome);
    }
    Ok(out)
}

/// Stores one fetch in the cache (nothing when it brought no points) and says what it was.
#[allow(clippy::too_many_arguments)]
async fn store_fetched(
    store: &Store,
    provider: &Provider,
    zone: &Zone,
    f: Fetched,
    request: String,
    fetched_at: Micros,
    covers: Option<(Micros, Micros)>,
    month: String,
) -> Result<MonthOutcome> {
    let meta = FetchMeta {
        source: provider.source().to_string(),
        zone: zone.id.clone(),
        request,
        fetched_at,
        response: serde_json::json!({"chunks": f.meta, "gaps": f.gaps, "estimated_points": f.estimated()}),
        synthetic: false,
        covers,
    };
    let objects = if f.points.is_empty() {
        vec![]
    } else {
        write_points(store, &meta, &f.points).await?
    };
    Ok(MonthOutcome {
        month,
        status: if f.points.is_empty() {
            "empty"
        } else {
            "fetched"
        },
        points: f.points.len(),
        estimated: f.estimated(),
        gaps: f.gaps.len(),
        objects,
    })
}

/// Fetches the latest values for `zone` into the cache.
pub async fn fetch_latest(
    store: &Store,
    provider: &Provider,
    zone: &Zone,
    fetched_at: Micros,
) -> Result<MonthOutcome> {
    let f = provider.latest(zone).await?;
    let request = format!("{} latest", provider.source());
    let month = utc_date(fetched_at).format("%Y-%m").to_string();
    store_fetched(store, provider, zone, f, request, fetched_at, None, month).await
}
