//! Intensity time series cached as Parquet in the store, and their in-memory index.
//!
//! Layout: `grid/source=<source>/zone=<zone>/month=YYYY-MM/<first_time_us>-<sha256[0:16]>.parquet`,
//! create-only and content-addressed, so a refetch of identical data is a no-op and a
//! restatement is a new object beside the old one. The footer key `gco.grid.fetch`
//! holds the fetch metadata. The pipeline reads only this cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use gco_ledger::Store;
use gco_ledger::time::{Micros, utc_date};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{GridError, Result};
use crate::{Basis, MgPerKwh, Signal};

use gco_ledger::layout::GRID as GRID_PREFIX;
pub const FETCH_KEY: &str = "gco.grid.fetch";

/// One intensity point: the value for `[time, time + period_s)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    pub zone: String,
    pub time: Micros,
    pub period_s: i64,
    pub value: MgPerKwh,
    pub signal: Signal,
    pub basis: Basis,
    /// The provider marked the point as estimated or imputed.
    pub estimated: bool,
    /// `watttime`, `electricitymaps`, `uk-carbon-intensity`, `synthetic`.
    pub source: String,
}

/// What a fetch was: stored in each cache object's footer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchMeta {
    pub source: String,
    pub zone: String,
    /// The request, without credentials.
    pub request: String,
    pub fetched_at: Micros,
    /// Provider response metadata worth keeping (model version, units, warnings).
    pub response: serde_json::Value,
    /// True for generated series (the demo), never for provider data.
    pub synthetic: bool,
    /// The requested range `[from, to)` this object answers completely (backfills),
    /// `None` for latest/forecast fetches. Lets a backfill skip what is cached.
    #[serde(default)]
    pub covers: Option<(Micros, Micros)>,
}

fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("zone", DataType::Utf8, false),
        Field::new("time", ts.clone(), false),
        Field::new("period_s", DataType::Int64, false),
        Field::new("value_mg_per_kwh", DataType::Int64, false),
        Field::new("signal", DataType::Utf8, false),
        Field::new("basis", DataType::Utf8, false),
        Field::new("estimated", DataType::Boolean, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("fetched_at", ts, false),
    ]))
}

fn encode(points: &[Point], meta: &FetchMeta) -> Result<Bytes> {
    let n = points.len();
    let mut zone = StringBuilder::with_capacity(n, n * 4);
    let mut time = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut period = Int64Builder::with_capacity(n);
    let mut value = Int64Builder::with_capacity(n);
    let mut signal = StringBuilder::with_capacity(n, n * 8);
    let mut basis = StringBuilder::with_capacity(n, n * 9);
    let mut est = BooleanBuilder::with_capacity(n);
    let mut source = StringBuilder::with_capacity(n, n * 8);
    let mut fetched = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    for p in points {
        zone.append_value(&p.zone);
        time.append_value(p.time);
        period.append_value(p.period_s);
        value.append_value(p.value.0);
        signal.append_value(p.signal.as_str());
        basis.append_value(p.basis.as_str());
        est.append_value(p.estimated);
        source.append_value(&p.source);
        fetched.append_value(meta.fetched_at);
    }
    let batch = RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(zone.finish()),
            Arc::new(time.finish()),
            Arc::new(period.finish()),
            Arc::new(value.finish()),
            Arc::new(signal.finish()),
            Arc::new(basis.finish()),
            Arc::new(est.finish()),
            Arc::new(source.finish()),
            Arc::new(fetched.finish()),
        ],
    )?;
    let props = WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            FETCH_KEY.to_string(),
            serde_json::to_string(meta).unwrap_or_default(),
        )]))
        .build();
    let pq = |source| GridError::Parquet {
        path: "<grid cache object>".into(),
        source,
    };
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).map_err(pq)?;
    w.write(&batch).map_err(pq)?;
    w.close().map_err(pq)?;
    Ok(Bytes::from(buf))
}

fn safe(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
}

/// Writes `points` (one zone, one source) into the cache, one object per month.
/// Returns the object paths written or already present.
pub async fn write_points(
    store: &Store,
    meta: &FetchMeta,
    points: &[Point],
) -> Result<Vec<String>> {
    if !safe(&meta.source) || !safe(&meta.zone) {
        return Err(GridError::Cache(format!(
            "source {:?} / zone {:?} not usable in a path",
            meta.source, meta.zone
        )));
    }
    if let Some(p) = points
        .iter()
        .find(|p| p.zone != meta.zone || p.source != meta.source || p.period_s <= 0)
    {
        return Err(GridError::Cache(format!(
            "point at {} does not belong to {}/{} or has no period",
            p.time, meta.source, meta.zone
        )));
    }
    let mut by_month: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for p in points {
        by_month
            .entry(utc_date(p.time).format("%Y-%m").to_string())
            .or_default()
            .push(p.clone());
    }
    let mut paths = Vec::new();
    for (month, mut pts) in by_month {
        pts.sort_by_key(|p| (p.time, p.signal.as_str()));
        let bytes = encode(&pts, meta)?;
        let hash = hex::encode(&Sha256::digest(&bytes)[..8]);
        let path = format!(
            "{GRID_PREFIX}/source={}/zone={}/month={month}/{:020}-{hash}.parquet",
            meta.source, meta.zone, pts[0].time
        );
        store.put_create(&path, bytes).await?;
        paths.push(path);
    }
    Ok(paths)
}

/// A compact point in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedPoint {
    pub start: Micros,
    pub end: Micros,
    pub value: MgPerKwh,
    pub basis: Basis,
    pub estimated: bool,
    /// Index into [`SeriesIndex::sources`].
    pub source: u16,
    pub fetched_at: Micros,
}

/// A handle for fast repeated lookups of one zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ZoneHandle(u32);

/// A direct-address table over one series: slot `(t - base) / res` holds the index
/// of the point covering it, so a lookup is one or two memory reads, not a search.
#[derive(Debug, Default, Clone)]
struct Dense {
    base: Micros,
    res: i64,
    /// Index into the series' points, `u32::MAX` where no point covers the slot.
    idx: Vec<u32>,
}

/// Slots a dense table may have (8 years of 5-minute points).
const MAX_DENSE_SLOTS: i64 = 8 * 366 * 288;

impl Dense {
    /// Builds the table when every point starts and ends on a multiple of the shortest
    /// period; otherwise lookups use binary search.
    fn build(pts: &[IndexedPoint]) -> Option<Dense> {
        let res = pts.iter().map(|p| p.end - p.start).min()?;
        if res <= 0
            || pts
                .iter()
                .any(|p| p.start.rem_euclid(res) != 0 || (p.end - p.start) % res != 0)
        {
            return None;
        }
        let base = pts.first()?.start;
        let end = pts.iter().map(|p| p.end).max()?;
        let slots = (end - base) / res;
        if slots > MAX_DENSE_SLOTS {
            return None;
        }
        let mut idx = vec![u32::MAX; slots as usize];
        // Like the search: a slot belongs to the last point starting at or before it, and
        // only while that point lasts.
        for (i, p) in pts.iter().enumerate() {
            let until = pts.get(i + 1).map_or(p.end, |next| next.start.min(p.end));
            for slot in ((p.start - base) / res)..((until - base) / res) {
                idx[slot as usize] = i as u32;
            }
        }
        Some(Dense { base, res, idx })
    }
}

/// Cached points by zone and signal, sorted by time, one point per start time.
#[derive(Debug, Default, Clone)]
pub struct SeriesIndex {
    handles: HashMap<String, ZoneHandle>,
    /// [zone][signal: 0 average, 1 marginal]
    series: Vec<[Vec<IndexedPoint>; 2]>,
    dense: Vec<[Option<Dense>; 2]>,
    pub sources: Vec<String>,
    /// Objects read, for run manifests.
    pub objects: Vec<String>,
}

fn sig_idx(s: Signal) -> usize {
    match s {
        Signal::Average => 0,
        Signal::Marginal => 1,
    }
}

impl SeriesIndex {
    pub fn handle(&self, zone: &str) -> Option<ZoneHandle> {
        self.handles.get(zone).copied()
    }

    /// The point covering `t`, if any.
    #[inline]
    pub fn lookup(&self, zone: ZoneHandle, signal: Signal, t: Micros) -> Option<&IndexedPoint> {
        let pts = &self.series.get(zone.0 as usize)?[sig_idx(signal)];
        if let Some(d) = &self.dense[zone.0 as usize][sig_idx(signal)] {
            if t < d.base {
                return None;
            }
            let i = *d.idx.get(((t - d.base) / d.res) as usize)?;
            return pts.get(i as usize);
        }
        let i = pts.partition_point(|p| p.start <= t);
        let p = pts.get(i.checked_sub(1)?)?;
        (t < p.end).then_some(p)
    }

    /// Every zone's points of `signal`, zones in handle order.
    pub fn iter(&self, signal: Signal) -> impl Iterator<Item = (&str, &[IndexedPoint])> {
        let mut names: Vec<(&str, ZoneHandle)> =
            self.handles.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        names.sort_by_key(|(_, h)| h.0);
        names
            .into_iter()
            .map(move |(z, h)| (z, self.series[h.0 as usize][sig_idx(signal)].as_slice()))
    }

    pub fn source_name(&self, p: &IndexedPoint) -> &str {
        self.sources
            .get(p.source as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }

    /// Adds points; for the same (zone, signal, start) a measured point beats an
    /// estimated one, then the later fetch wins, then the larger value (for determinism).
    pub fn insert(&mut self, points: impl IntoIterator<Item = (Point, Micros)>) {
        for (p, fetched_at) in points {
            let next = ZoneHandle(self.handles.len() as u32);
            let h = *self.handles.entry(p.zone.clone()).or_insert(next);
            if h.0 as usize == self.series.len() {
                self.series.push([Vec::new(), Vec::new()]);
            }
            let source = match self.sources.iter().position(|s| *s == p.source) {
                Some(i) => i as u16,
                None => {
                    self.sources.push(p.source.clone());
                    (self.sources.len() - 1) as u16
                }
            };
            self.series[h.0 as usize][sig_idx(p.signal)].push(IndexedPoint {
                start: p.time,
                end: p.time + p.period_s * 1_000_000,
                value: p.value,
                basis: p.basis,
                estimated: p.estimated,
                source,
                fetched_at,
            });
        }
        for zone in &mut self.series {
            for pts in zone.iter_mut() {
                pts.sort_by_key(|p| {
                    (
                        p.start,
                        p.estimated,
                        std::cmp::Reverse(p.fetched_at),
                        std::cmp::Reverse(p.value),
                    )
                });
                pts.dedup_by_key(|p| p.start);
            }
        }
        self.dense = self
            .series
            .iter()
            .map(|z| [Dense::build(&z[0]), Dense::build(&z[1])])
            .collect();
    }

    /// Loads every cached object whose month overlaps `[from, to]`.
    pub async fn load(store: &Store, from: Micros, to: Micros) -> Result<SeriesIndex> {
        let (first, last) = (
            utc_date(from).format("%Y-%m").to_string(),
            utc_date(to).format("%Y-%m").to_string(),
        );
        let mut idx = SeriesIndex::default();
        let mut points = Vec::new();
        for meta in store.list(GRID_PREFIX).await? {
            let path = meta.location.to_string();
            let Some(month) = path.split('/').find_map(|s| s.strip_prefix("month=")) else {
                continue;
            };
            if month < first.as_str() || month > last.as_str() {
                continue;
            }
            points.extend(read_object(&path, store.get(&path).await?)?);
            idx.objects.push(path);
        }
        idx.insert(points);
        Ok(idx)
    }
}

/// Reads the fetch metadata of every cache object under `grid/source=S/zone=Z/`.
pub async fn fetch_metas(
    store: &Store,
    source: &str,
    zone: &str,
) -> Result<Vec<(String, FetchMeta)>> {
    let mut out = Vec::new();
    for m in store
        .list(&format!("{GRID_PREFIX}/source={source}/zone={zone}"))
        .await?
    {
        let path = m.location.to_string();
        let bytes = store.get(&path).await?;
        let pq = |source| GridError::Parquet {
            path: path.clone(),
            source,
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(pq)?;
        let json = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|kv| kv.key == FETCH_KEY))
            .and_then(|kv| kv.value.clone())
            .ok_or_else(|| GridError::Cache(format!("{path}: no {FETCH_KEY} in the footer")))?;
        let meta = serde_json::from_str(&json)
            .map_err(|e| GridError::Cache(format!("{path}: {FETCH_KEY}: {e}")))?;
        out.push((path, meta));
    }
    Ok(out)
}

/// Decodes one cache object into points with their fetch time.
pub fn read_object(path: &str, bytes: Bytes) -> Result<Vec<(Point, Micros)>> {
    let pq = |source| GridError::Parquet {
        path: path.to_string(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(pq)?
        .build()
        .map_err(pq)?;
    let bad = || {
        GridError::Cache(format!(
            "{path}: not a grid cache object (unexpected columns)"
        ))
    };
    let mut out = Vec::new();
    for batch in reader {
        let b = batch?;
        if b.schema().fields() != schema().fields() {
            return Err(bad());
        }
        let zone = b.column(0).as_string::<i32>();
        let time = b.column(1).as_primitive::<TimestampMicrosecondType>();
        let period = b.column(2).as_primitive::<Int64Type>();
        let value = b.column(3).as_primitive::<Int64Type>();
        let signal = b.column(4).as_string::<i32>();
        let basis = b.column(5).as_string::<i32>();
        let est = b.column(6).as_boolean();
        let source = b.column(7).as_string::<i32>();
        let fetched = b.column(8).as_primitive::<TimestampMicrosecondType>();
        for i in 0..b.num_rows() {
            if (0..9).any(|c| b.column(c).is_null(i)) {
                return Err(bad());
            }
            let (Some(signal), Some(basis)) =
                (Signal::parse(signal.value(i)), Basis::parse(basis.value(i)))
            else {
                return Err(GridError::Cache(format!(
                    "{path}: row {i} has an unknown signal or basis"
                )));
            };
            out.push((
                Point {
                    zone: zone.value(i).to_string(),
                    time: time.value(i),
                    period_s: period.value(i),
                    value: MgPerKwh(value.value(i)),
                    signal,
                    basis,
                    estimated: est.value(i),
                    source: source.value(i).to_string(),
                },
                fetched.value(i),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(zone: &str, start_min: i64, period_min: i64, mg: i64) -> (Point, Micros) {
        (
            Point {
                zone: zone.into(),
                time: 1_790_812_800_000_000 + start_min * 60_000_000,
                period_s: period_min * 60,
                value: MgPerKwh(mg),
                signal: Signal::Average,
                basis: Basis::Lifecycle,
                estimated: false,
                source: "test".into(),
            },
            0,
        )
    }

    /// The direct-address table answers exactly like a linear scan, with gaps, mixed
    /// periods, and for series that cannot use it (unaligned points).
    #[test]
    fn dense_table_matches_a_linear_scan() {
        let mut idx = SeriesIndex::default();
        idx.insert([
            p("A", 0, 60, 1),
            p("A", 60, 30, 2),
            p("A", 120, 5, 3),
            p("A", 300, 60, 4),
        ]);
        idx.insert([p("B", 7, 60, 5), p("B", 60, 60, 6)]);
        // Overlapping periods: C's hour-long point is cut short by the next start.
        idx.insert([p("C", 0, 120, 7), p("C", 60, 30, 8)]);
        assert!(idx.dense[0][0].is_some());
        assert!(idx.dense[1][0].is_none(), "B starts off the grid");
        assert!(idx.dense[2][0].is_some());
        for zone in ["A", "B", "C"] {
            let h = idx.handle(zone).unwrap();
            let pts = &idx.series[h.0 as usize][0];
            for minute in -10..400 {
                let t = 1_790_812_800_000_000 + minute * 60_000_000 + 1;
                let naive = pts
                    .iter()
                    .rev()
                    .find(|q| q.start <= t)
                    .filter(|q| t < q.end)
                    .map(|q| q.value);
                assert_eq!(
                    idx.lookup(h, Signal::Average, t).map(|q| q.value),
                    naive,
                    "{zone} minute {minute}"
                );
            }
        }
        let a = idx.handle("A").unwrap();
        let at = |m: i64| 1_790_812_800_000_000 + m * 60_000_000;
        assert_eq!(
            idx.lookup(a, Signal::Average, at(95)).map(|q| q.value.0),
            None,
            "gap 90..120"
        );
        assert_eq!(
            idx.lookup(a, Signal::Average, at(124)).map(|q| q.value.0),
            Some(3)
        );
    }
}
