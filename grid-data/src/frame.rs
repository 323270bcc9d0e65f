//! The cached grid series as a Polars `LazyFrame`, sorted by (zone, time), ready for
//! the pipeline's as-of join (`join_asof_by` on `time` by `zone`).

use polars::prelude::*;

use crate::Signal;
use crate::error::{GridError, Result};
use crate::series::SeriesIndex;

fn pe(e: PolarsError) -> GridError {
    GridError::Cache(format!("building the grid frame: {e}"))
}

/// One row per cached point of `signal`: `zone` (str), `time` (datetime[us, UTC]),
/// `period_s`, `value_mg_per_kwh` (i64), `basis`, `estimated` (bool), `source` (str).
pub fn lazy_frame(index: &SeriesIndex, signal: Signal) -> Result<LazyFrame> {
    let mut zone = Vec::new();
    let mut time = Vec::new();
    let mut period = Vec::new();
    let mut value = Vec::new();
    let mut basis = Vec::new();
    let mut estimated = Vec::new();
    let mut source = Vec::new();
    for (z, points) in index.iter(signal) {
        for p in points {
            zone.push(z);
            time.push(p.start);
            period.push((p.end - p.start) / 1_000_000);
            value.push(p.value.0);
            basis.push(p.basis.as_str());
            estimated.push(p.estimated);
            source.push(index.source_name(p));
        }
    }
    let time = Series::new("time".into(), time)
        .cast(&DataType::Datetime(
            TimeUnit::Microseconds,
            Some(TimeZone::UTC),
        ))
        .map_err(pe)?;
    let df = DataFrame::new_infer_height(vec![
        Column::new("zone".into(), zone),
        time.into(),
        Column::new("period_s".into(), period),
        Column::new("value_mg_per_kwh".into(), value),
        Column::new("basis".into(), basis),
        Column::new("estimated".into(), estimated),
        Column::new("source".into(), source),
    ])
    .map_err(pe)?;
    Ok(df
        .lazy()
        .sort(["zone", "time"], SortMultipleOptions::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Point;
    use crate::{Basis, MgPerKwh};

    #[test]
    fn frame_is_sorted_by_zone_and_time_with_utc_datetimes() {
        let mut idx = SeriesIndex::default();
        let pt = |zone: &str, hour: i64, mg: i64| {
            (
                Point {
                    zone: zone.into(),
                    time: 1_790_812_800_000_000 + hour * 3_600_000_000,
                    period_s: 3600,
                    value: MgPerKwh(mg),
                    signal: Signal::Average,
                    basis: Basis::Lifecycle,
                    estimated: hour == 1,
                    source: "synthetic".into(),
                },
                0,
            )
        };
        // Inserted out of order, zones interleaved.
        idx.insert([
            pt("FR", 1, 50_000),
            pt("DE", 0, 300_000),
            pt("FR", 0, 40_000),
            pt("DE", 1, 310_000),
        ]);
        let df = lazy_frame(&idx, Signal::Average)
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(df.height(), 4);
        let zone = df.column("zone").unwrap().str().unwrap();
        let zones: Vec<&str> = (0..zone.len()).filter_map(|i| zone.get(i)).collect();
        assert_eq!(zones, ["DE", "DE", "FR", "FR"]);
        let values: Vec<i64> = df
            .column("value_mg_per_kwh")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(values, [300_000, 310_000, 40_000, 50_000]);
        assert_eq!(
            df.column("time").unwrap().dtype(),
            &DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        );
        let est_col = df.column("estimated").unwrap().bool().unwrap();
        let est: Vec<bool> = (0..est_col.len()).filter_map(|i| est_col.get(i)).collect();
        assert_eq!(est, [false, true, false, true]);
        assert_eq!(
            lazy_frame(&idx, Signal::Marginal)
                .unwrap()
                .collect()
                .unwrap()
                .height(),
            0
        );
    }
}
