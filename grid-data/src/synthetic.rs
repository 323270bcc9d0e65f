//! The deterministic hourly series `gco demo` stores in the grid cache, marked
//! synthetic in its provenance: the zone's annual figure shaped by a daily curve and a
//! seeded wobble, all in integer arithmetic.

use gco_ledger::time::Micros;

use crate::series::{FetchMeta, Point};
use crate::{Basis, MgPerKwh, Signal};

/// Source name of generated series.
pub const SOURCE: &str = "synthetic";

/// Share of the annual figure per UTC hour, percent (solar midday dip, evening peak).
const DAILY: [i64; 24] = [
    104, 103, 102, 101, 101, 103, 106, 106, 101, 95, 90, 86, 84, 84, 86, 90, 97, 106, 112, 114,
    112, 110, 108, 106,
];

fn wobble(seed: u64, zone: &str, hour: i64) -> i64 {
    // SplitMix64 over (seed, zone, hour) -> -4..=4 percent.
    let mut x = seed ^ (hour as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for b in zone.bytes() {
        x = (x ^ b as u64).wrapping_mul(0x100_0000_01B3);
    }
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x % 9) as i64 - 4
}

/// Hourly average-signal points for `[from, to)` (hour-aligned) around `annual`.
pub fn hourly(zone: &str, annual: MgPerKwh, from: Micros, to: Micros, seed: u64) -> Vec<Point> {
    const HOUR: i64 = 3_600_000_000;
    let mut out = Vec::new();
    let mut t = from.div_euclid(HOUR) * HOUR;
    while t < to {
        let hour = t / HOUR;
        let pct = DAILY[hour.rem_euclid(24) as usize] + wobble(seed, zone, hour);
        out.push(Point {
            zone: zone.to_string(),
            time: t,
            period_s: 3600,
            value: MgPerKwh(annual.0 * pct / 100),
            signal: Signal::Average,
            basis: Basis::Lifecycle,
            estimated: false,
            source: SOURCE.to_string(),
        });
        t += HOUR;
    }
    out
}

/// The fetch metadata stored with a synthetic series.
pub fn meta(
    zone: &str,
    annual: MgPerKwh,
    seed: u64,
    fetched_at: Micros,
    covers: (Micros, Micros),
) -> FetchMeta {
    FetchMeta {
        source: SOURCE.to_string(),
        zone: zone.to_string(),
        request: format!(
            "synthetic hourly series around {} mg/kWh, seed {seed}",
            annual.0
        ),
        fetched_at,
        response: serde_json::json!({"generator": "gco-grid-data synthetic v1", "daily_curve_percent": DAILY}),
        synthetic: true,
        covers: Some(covers),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::SeriesIndex;
    use gco_ledger::time::parse_utc;

    #[tokio::test]
    async fn synthetic_series_round_trips_through_the_cache() {
        let store = gco_ledger::Store::memory();
        let from = parse_utc("2026-09-30T22:00:00Z").unwrap();
        let to = parse_utc("2026-10-01T02:00:00Z").unwrap();
        let pts = hourly("FR", MgPerKwh(56_039), from, to, 42);
        assert_eq!(pts.len(), 4);
        let values: Vec<i64> = pts.iter().map(|p| p.value.0).collect();
        assert_eq!(
            values,
            pts.iter()
                .map(|p| 56_039
                    * (DAILY[(p.time / 3_600_000_000 % 24) as usize]
                        + wobble(42, "FR", p.time / 3_600_000_000))
                    / 100)
                .collect::<Vec<_>>()
        );
        let paths = crate::series::write_points(
            &store,
            &meta("FR", MgPerKwh(56_039), 42, from, (from, to)),
            &pts,
        )
        .await
        .unwrap();
        assert_eq!(paths.len(), 2, "September and October objects");
        assert!(paths[0].starts_with("grid/source=synthetic/zone=FR/month=2026-09/"));
        // Writing the same series again leaves the same objects.
        let again = crate::series::write_points(
            &store,
            &meta("FR", MgPerKwh(56_039), 42, from, (from, to)),
            &pts,
        )
        .await
        .unwrap();
        assert_eq!(paths, again);
        assert_eq!(store.list("grid").await.unwrap().len(), 2);
        let idx = SeriesIndex::load(&store, from, to).await.unwrap();
        let h = idx.handle("FR").unwrap();
        let p = idx
            .lookup(
                h,
                Signal::Average,
                parse_utc("2026-10-01T01:59:59Z").unwrap(),
            )
            .unwrap();
        assert_eq!(p.value.0, values[3]);
        assert!(idx.lookup(h, Signal::Average, to).is_none());
    }
}
