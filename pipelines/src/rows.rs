//! One chunk of verified records -> emission rows (everything but the market-based
//! figures, which need the whole period's consumption and are added at finalisation).
//!
//! Polars does the relational part: the records frame is as-of joined with the cached
//! grid series by zone on time (backward, exact matches allowed: the Rust
//! `AsOfOptions::default()` has `allow_eq = false`, unlike Python's
//! `allow_exact_matches=True`), once for the average and once for the marginal signal.
//! A point answers only inside its own period; rows it does not cover fall back through
//! the cascade (regional, country, world annual figures). The per-row figures are
//! integer arithmetic (`math`).

use std::collections::{BTreeMap, HashMap};

use crate::error::{Context, Kind, OrFail, Result, failure};
use arrow_array::RecordBatch;
use gco_grid_data::series::SeriesIndex;
use gco_grid_data::{Intensity, Resolver, Signal};
use gco_ledger::Registry;
use gco_ledger::record::Columns;
use gco_ledger::registry::{NodeKey, pick_at};
use gco_ledger::time::Micros;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{PipelineConfig, SiteFigures};
use crate::math;
use crate::schema::col;

pub use crate::manifest::Quarantined;

/// Grid series: the cached points (fetched by the as-of time) of each signal, as a
/// table the per-row figures read and as the narrow frame the as-of join runs on; and
/// the cascade's annual answers per zone.
pub struct Grid {
    average: Points,
    marginal: Points,
    resolver: Resolver,
    fallback: std::sync::Mutex<HashMap<String, Option<Intensity>>>,
}

/// One signal's cached points. The join frame (`zone`, `{prefix}_time`,
/// `{prefix}_point`) is sorted by time; `{prefix}_point` indexes the vectors here.
struct Points {
    frame: DataFrame,
    start: Vec<i64>,
    end: Vec<i64>,
    value: Vec<i64>,
    basis: Vec<&'static str>,
    estimated: Vec<bool>,
    /// Index into `names`: the point's source.
    source: Vec<u32>,
    /// Index into `names`: the point's length as an ISO duration (`PT3600S`).
    period: Vec<u32>,
    /// Each distinct source name and duration once, so that rows share them.
    names: Vec<String>,
}

impl Points {
    fn new(index: &SeriesIndex, signal: Signal, prefix: &str, as_of: Micros) -> Result<Points> {
        let mut zone = Vec::new();
        let mut p = Points {
            frame: DataFrame::empty(),
            start: vec![],
            end: vec![],
            value: vec![],
            basis: vec![],
            estimated: vec![],
            source: vec![],
            period: vec![],
            names: vec![],
        };
        let mut ids: HashMap<String, u32> = HashMap::new();
        let names = &mut p.names;
        let mut name = |s: String| -> u32 {
            *ids.entry(s).or_insert_with_key(|s| {
                names.push(s.clone());
                names.len() as u32 - 1
            })
        };
        for (z, points) in index.iter(signal) {
            for q in points.iter().filter(|q| q.fetched_at <= as_of) {
                zone.push(z);
                p.start.push(q.start);
                p.end.push(q.end);
                p.value.push(q.value.0);
                p.basis.push(q.basis.as_str());
                p.estimated.push(q.estimated);
                p.source.push(name(index.source_name(q).to_string()));
                p.period.push(name(format!(
                    "PT{}S",
                    (q.end - q.start).div_euclid(1_000_000)
                )));
            }
        }
        let point: Vec<u32> = (0..zone.len() as u32).collect();
        p.frame = DataFrame::new_infer_height(vec![
            Column::new("zone".into(), zone),
            Column::new(format!("{prefix}_time").into(), p.start.clone()),
            Column::new(format!("{prefix}_point").into(), point),
        ])?
        .sort([format!("{prefix}_time")], SortMultipleOptions::default())?;
        Ok(p)
    }

    fn source(&self, i: usize) -> &str {
        &self.names[self.source[i] as usize]
    }

    fn period(&self, i: usize) -> &str {
        &self.names[self.period[i] as usize]
    }

    /// The point `i` if it covers `t` (a point answers only inside its own period).
    fn covering(&self, i: Option<u32>, t: i64) -> Option<usize> {
        let i = i? as usize;
        (self.start[i] <= t && t < self.end[i]).then_some(i)
    }
}

/// Each row's joined average and marginal point (indices into [`Points`]).
type Joined = (Vec<Option<u32>>, Vec<Option<u32>>);

impl Grid {
    /// The cached points fetched by `as_of`.
    pub fn new(index: SeriesIndex, as_of: Micros) -> Result<Grid> {
        Ok(Grid {
            average: Points::new(&index, Signal::Average, "g", as_of)?,
            marginal: Points::new(&index, Signal::Marginal, "m", as_of)?,
            // The cascade below the cached series: bundled annual figures only.
            resolver: Resolver::new(SeriesIndex::default())?,
            fallback: Default::default(),
        })
    }

    fn fallback(&self, zone: &str, at: Micros) -> Option<Intensity> {
        let mut m = self.fallback.lock().unwrap_or_else(|e| e.into_inner());
        // Called per row: no allocation once the zone is known.
        if let Some(f) = m.get(zone) {
            return f.clone();
        }
        m.entry(zone.to_string())
            .or_insert_with(|| self.resolver.resolve(zone, at, Signal::Average).ok())
            .clone()
    }

    /// For each row (zone, start), the latest average and marginal point of its zone
    /// starting at or before the start: Polars as-of joins (by zone, backward, exact
    /// matches allowed) on a frame of just these two columns and the row number, the
    /// answers put back in row order.
    fn join(&self, zone: &[&str], start: &[i64]) -> Result<Joined> {
        let keys = DataFrame::new_infer_height(vec![
            Column::new("zone".into(), zone),
            Column::new("start_us".into(), start),
        ])?;
        let joined = asof(
            asof(
                keys.lazy()
                    .with_row_index("row", None)
                    .sort(["start_us"], SortMultipleOptions::default()),
                &self.average.frame,
                "g",
            ),
            &self.marginal.frame,
            "m",
        )
        .select([col("row"), col("g_point"), col("m_point")])
        .collect()
        .map_err(|e| failure!(Internal, "joining records with the grid series: {e}"))?;
        let rows = joined.column("row")?.idx()?;
        let mut g = vec![None; start.len()];
        let mut m = vec![None; start.len()];
        for ((r, gp), mp) in rows
            .iter()
            .zip(joined.column("g_point")?.u32()?.iter())
            .zip(joined.column("m_point")?.u32()?.iter())
        {
            let r = r.or_fail(Kind::Internal, "a joined row lost its number")? as usize;
            g[r] = gp;
            m[r] = mp;
        }
        Ok((g, m))
    }
}

/// Consumption and counts of a chunk, summed at finalisation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkTotals {
    pub rows: u64,
    pub quarantined: u64,
    /// Facility energy of Scope 2 rows by zone (what instruments are allocated to).
    pub scope2_facility_mj: BTreeMap<String, i64>,
}

fn asof(left: LazyFrame, right: &DataFrame, prefix: &str) -> LazyFrame {
    left.join(
        right.clone().lazy(),
        [col("start_us")],
        [col(format!("{prefix}_time"))],
        JoinArgs::new(JoinType::AsOf(Box::new(AsOfOptions {
            strategy: AsofStrategy::Backward,
            left_by: Some(vec!["zone".into()]),
            right_by: Some(vec!["zone".into()]),
            allow_eq: true,
            // Sorted just before; Polars cannot check sortedness within `by` groups.
            check_sortedness: false,
            ..Default::default()
        }))),
    )
}

/// One verified ledger row, borrowed from its decoded batch.
struct Row<'b> {
    node_id: &'b str,
    seq: u64,
    inference_id: Option<&'b str>,
    kind: &'b str,
    model_id: Option<&'b str>,
    model_version: Option<&'b str>,
    start: i64,
    end: i64,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    gpu_count: u32,
    energy_mj: i64,
    measurement: &'b str,
}

/// Which registration accounts a row: the one in force at the row's start, if its
/// zone has a figure at all. The one place that decides which rows are accounted.
struct Resolution<'r, 'g> {
    registry: &'r Registry,
    grid: &'g Grid,
    zone_known: HashMap<String, bool>,
    /// A batch holds one node's rows: its registrations are looked up once per batch,
    /// and a zone's cascade answer once.
    keys: Option<(String, Vec<&'r NodeKey>)>,
    last_key: Option<(&'r NodeKey, bool)>,
}

impl<'r, 'g> Resolution<'r, 'g> {
    fn new(registry: &'r Registry, grid: &'g Grid) -> Self {
        Resolution {
            registry,
            grid,
            zone_known: HashMap::new(),
            keys: None,
            last_key: None,
        }
    }

    /// The registration accounting a row of `node_id` starting at `start` with `mj` of
    /// IT energy, or why none (also a row past [`math::MAX_ROW_ENERGY_MJ`]).
    fn at(
        &mut self,
        node_id: &str,
        start: i64,
        mj: i64,
    ) -> std::result::Result<&'r NodeKey, &'static str> {
        if mj > math::MAX_ROW_ENERGY_MJ {
            return Err("energy_implausible");
        }
        if self.keys.as_ref().is_none_or(|(n, _)| n != node_id) {
            self.keys = Some((node_id.to_string(), self.registry.node_keys(node_id)));
        }
        let node_keys = self
            .keys
            .as_ref()
            .map(|k| k.1.as_slice())
            .unwrap_or_default();
        let key = pick_at(node_keys.iter().copied(), start).ok_or("node_not_registered")?;
        let known = match self.last_key {
            Some((k, known)) if std::ptr::eq(k, key) => known,
            _ => {
                let grid = self.grid;
                let known = *self
                    .zone_known
                    .entry(key.zone.clone())
                    .or_insert_with(|| grid.fallback(&key.zone, start).is_some());
                self.last_key = Some((key, known));
                known
            }
        };
        if known { Ok(key) } else { Err("zone_unknown") }
    }
}

/// Calls `f` for every row of `batches` with the registration accounting it (see
/// [`Resolution`]); a row without one is quarantined with its reason instead.
fn for_each_resolved<'b, 'r>(
    batches: &'b [(String, Vec<RecordBatch>)],
    registry: &'r Registry,
    grid: &Grid,
    quarantine: &mut Vec<Quarantined>,
    mut f: impl FnMut(Row<'b>, &'r NodeKey),
) -> Result<()> {
    let mut resolution = Resolution::new(registry, grid);
    for (object, parts) in batches {
        for b in parts {
            let cols = Columns::new(b).or_fail(
                Kind::Inconsistent,
                "a verified batch is not in the ledger schema",
            )?;
            for i in 0..b.num_rows() {
                let r = cols.fields(i);
                let seq = u64::try_from(r.seq).unwrap_or_default();
                match resolution.at(r.node_id, r.start, r.energy_mj) {
                    Ok(key) => f(
                        Row {
                            node_id: r.node_id,
                            seq,
                            inference_id: r.inference_id,
                            kind: r.kind,
                            model_id: r.model_id,
                            model_version: r.model_version,
                            start: r.start,
                            end: r.end,
                            prompt_tokens: r.prompt_tokens.and_then(|v| u64::try_from(v).ok()),
                            completion_tokens: r
                                .completion_tokens
                                .and_then(|v| u64::try_from(v).ok()),
                            gpu_count: r.gpus.len() as u32,
                            energy_mj: r.energy_mj,
                            measurement: r.measurement,
                        },
                        key,
                    ),
                    Err(reason) => quarantine.push(Quarantined {
                        object: object.clone(),
                        node_id: r.node_id.to_string(),
                        seq,
                        reason: reason.into(),
                    }),
                }
            }
        }
    }
    Ok(())
}

/// A running sum of Scope 2 facility energy for the zone of consecutive rows, added
/// to the chunk's totals when the zone changes (one map update per run of rows).
#[derive(Default)]
struct ZoneSum<'a> {
    zone: Option<&'a str>,
    mj: i64,
}

impl<'a> ZoneSum<'a> {
    fn add(&mut self, zone: &'a str, mj: i64, totals: &mut ChunkTotals) -> Result<()> {
        if self.zone != Some(zone) {
            self.flush(totals)?;
            self.zone = Some(zone);
        }
        self.mj = self
            .mj
            .checked_add(mj)
            .or_else_fail(Kind::Overflow, || zone_overflow(zone))?;
        Ok(())
    }

    fn flush(&mut self, totals: &mut ChunkTotals) -> Result<()> {
        if let Some(z) = self.zone.take() {
            let sum = totals.scope2_facility_mj.entry(z.to_string()).or_default();
            *sum = sum
                .checked_add(self.mj)
                .or_else_fail(Kind::Overflow, || zone_overflow(z))?;
        }
        self.mj = 0;
        Ok(())
    }
}

/// The error of a zone's Scope 2 consumption past 64 bits.
pub fn zone_overflow(zone: &str) -> String {
    format!(
        "the Scope 2 facility energy of zone {zone} passes {} mJ (64-bit overflow); the period's figures cannot be computed",
        i64::MAX
    )
}

/// The error of a row (`place`) whose figure does not fit 64 bits.
fn overflow(place: &str, what: &str) -> String {
    format!(
        "{place}: the {what} does not fit 64 bits; check the row's energy, the site's PUE and the grid figures"
    )
}

/// String equality, first by address: the rows of a chunk mostly borrow the same few
/// strings, and equal addresses need no byte comparison.
fn same(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

/// A string column built straight from borrowed values, without Polars' per-value
/// builder: each row is a 16-byte view, values of up to 12 bytes inline, longer ones
/// in one shared buffer. A value equal to the previous row's, or (up to 64 of them)
/// to one seen before, reuses that view instead of copying its bytes again, so the
/// many columns whose rows repeat a few values (zones, sites, models, provenance)
/// cost a view per row; a column of distinct values (inference ids) stops looking
/// after 64 and copies each value once.
pub(crate) fn shared_strings<'a>(
    name: &str,
    len: usize,
    value: impl Fn(usize) -> Option<&'a str>,
) -> Column {
    use polars_arrow::array::{Utf8ViewArray, View};
    use polars_arrow::bitmap::MutableBitmap;
    use polars_arrow::datatypes::ArrowDataType;
    const MAX_DISTINCT: usize = 64;
    let mut views: Vec<View> = Vec::with_capacity(len);
    let mut validity: Option<MutableBitmap> = None;
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    let mut distinct: Vec<(&'a str, View)> = Vec::new();
    let mut look = true;
    let mut last: Option<(&'a str, View)> = None;
    let mut total_bytes = 0usize;
    for i in 0..len {
        let Some(s) = value(i) else {
            validity
                .get_or_insert_with(|| {
                    let mut v = MutableBitmap::with_capacity(len);
                    v.extend_constant(i, true);
                    v
                })
                .push(false);
            views.push(View::default());
            continue;
        };
        if let Some(v) = validity.as_mut() {
            v.push(true);
        }
        total_bytes += s.len();
        let view = match last {
            Some((l, v)) if same(l, s) => v,
            _ if s.len() <= View::MAX_INLINE_SIZE as usize => View::new_inline(s.as_bytes()),
            _ => {
                let seen = if look {
                    distinct.iter().find(|(d, _)| same(d, s)).map(|e| e.1)
                } else {
                    None
                };
                match seen {
                    Some(v) => v,
                    None => {
                        if bytes.len() + s.len() > u32::MAX as usize {
                            buffers.push(std::mem::take(&mut bytes));
                            distinct.clear();
                        }
                        let v = View::new_from_bytes(
                            s.as_bytes(),
                            buffers.len() as u32,
                            bytes.len() as u32,
                        );
                        bytes.extend_from_slice(s.as_bytes());
                        if look {
                            if distinct.len() == MAX_DISTINCT {
                                look = false;
                                distinct = Vec::new();
                            } else {
                                distinct.push((s, v));
                            }
                        }
                        v
                    }
                }
            }
        };
        last = Some((s, view));
        views.push(view);
    }
    buffers.push(bytes);
    let total_buffer_len = buffers.iter().map(Vec::len).sum();
    // SAFETY: every view is either inline (new_inline over the value's bytes) or was
    // made by new_from_bytes for bytes copied, whole, into buffer `buffer_idx` at
    // `offset` just before; every value is a `&str`, so the bytes are UTF-8; there is
    // one view per row, and the validity (if any) has one bit per row.
    let array = unsafe {
        Utf8ViewArray::new_unchecked(
            ArrowDataType::Utf8View,
            views.into(),
            buffers.into_iter().map(Into::into).collect(),
            validity.map(Into::into),
            Some(total_bytes),
            total_buffer_len,
        )
    };
    StringChunked::with_chunk(name.into(), array).into_column()
}

/// [`shared_strings`] over a slice, for tests of the Parquet writer.
#[cfg(test)]
pub(crate) fn shared_strings_for_tests(name: &str, values: &[Option<&str>]) -> Column {
    shared_strings(name, values.len(), |i| values[i])
}

fn row_count(batches: &[(String, Vec<RecordBatch>)]) -> usize {
    batches
        .iter()
        .flat_map(|b| &b.1)
        .map(RecordBatch::num_rows)
        .sum()
}

/// The Scope 2 facility energy by zone that [`chunk_rows`] would count for the rows
/// of one ledger object (`bytes`, read here without verifying it: two columns,
/// `start` and `energy_mj`; the node is the one its path names, which verification
/// requires of every row). A one-process run sums this over the period
/// before it verifies and computes each row once, because the market-based figures
/// need the period's consumption; it then checks the sum against the one its
/// verified rows give.
pub fn scope2_consumption(
    path: &str,
    bytes: bytes::Bytes,
    registry: &Registry,
    cfg: &PipelineConfig,
    grid: &Grid,
) -> Result<BTreeMap<String, i64>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .with_context(|| format!("reading {path}"))?;
    let node = gco_ledger::store::parse_batch_path(path)
        .or_else_fail(Kind::Inconsistent, || {
            format!("{path} is not a ledger batch path")
        })?
        .node_id;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [6, 8]);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()
        .with_context(|| format!("reading {path}"))?;
    let mut totals = ChunkTotals::default();
    let mut sites: HashMap<&str, SiteFigures> = HashMap::new();
    let mut resolution = Resolution::new(registry, grid);
    let mut last: Option<(&NodeKey, Option<i64>)> = None;
    for b in reader {
        let b = b.with_context(|| format!("reading {path}"))?;
        let not_ledger = || failure!(Inconsistent, "{path} is not in the ledger schema");
        let start = b
            .column(0)
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(not_ledger)?;
        let energy = b
            .column(1)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(not_ledger)?;
        let mut zone_sum = ZoneSum::default();
        for i in 0..b.num_rows() {
            let Ok(key) = resolution.at(&node, start.value(i), energy.value(i)) else {
                continue;
            };
            let pue = match last {
                Some((k, pue)) if std::ptr::eq(k, key) => pue,
                _ => {
                    let sf = match sites.entry(key.site.as_str()) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => {
                            e.insert(cfg.site(&key.site)?)
                        }
                    };
                    let pue = (sf.scope == crate::config::Scope::Scope2).then_some(sf.pue_milli);
                    last = Some((key, pue));
                    pue
                }
            };
            if let Some(pue) = pue {
                let fac = math::facility_mj(energy.value(i), pue)
                    .or_else_fail(Kind::Overflow, || {
                        overflow(&format!("{path} row {i}"), "facility energy")
                    })?;
                zone_sum.add(&key.zone, fac, &mut totals)?;
            }
        }
        zone_sum.flush(&mut totals)?;
    }
    Ok(totals.scope2_facility_mj)
}

/// The accepted rows of a chunk, column by column, in ledger order.
#[derive(Default)]
struct Base<'b> {
    node: Vec<&'b str>,
    seq: Vec<u64>,
    iid: Vec<Option<&'b str>>,
    kind: Vec<&'b str>,
    model: Vec<Option<&'b str>>,
    version: Vec<Option<&'b str>>,
    start: Vec<i64>,
    end: Vec<i64>,
    prompt: Vec<Option<u64>>,
    completion: Vec<Option<u64>>,
    gpus: Vec<u32>,
    energy: Vec<i64>,
    zone: Vec<&'b str>,
    site: Vec<&'b str>,
    measurement: Vec<&'b str>,
}

/// Builds the emission rows of `batches` (object path, the verified batch's decoded
/// rows in the ledger schema), in ledger order (batch by batch, seq within a batch).
pub fn chunk_rows(
    batches: &[(String, Vec<RecordBatch>)],
    registry: &Registry,
    cfg: &PipelineConfig,
    grid: &Grid,
    quarantine: &mut Vec<Quarantined>,
) -> Result<(DataFrame, ChunkTotals)> {
    let n = row_count(batches);
    let mut b = Base {
        node: Vec::with_capacity(n),
        seq: Vec::with_capacity(n),
        iid: Vec::with_capacity(n),
        kind: Vec::with_capacity(n),
        model: Vec::with_capacity(n),
        version: Vec::with_capacity(n),
        start: Vec::with_capacity(n),
        end: Vec::with_capacity(n),
        prompt: Vec::with_capacity(n),
        completion: Vec::with_capacity(n),
        gpus: Vec::with_capacity(n),
        energy: Vec::with_capacity(n),
        zone: Vec::with_capacity(n),
        site: Vec::with_capacity(n),
        measurement: Vec::with_capacity(n),
    };
    let mut totals = ChunkTotals::default();
    for_each_resolved(batches, registry, grid, quarantine, |r, key| {
        b.node.push(r.node_id);
        b.seq.push(r.seq);
        b.iid.push(r.inference_id);
        b.kind.push(r.kind);
        b.model.push(r.model_id);
        b.version.push(r.model_version);
        b.start.push(r.start);
        b.end.push(r.end);
        b.prompt.push(r.prompt_tokens);
        b.completion.push(r.completion_tokens);
        b.gpus.push(r.gpu_count);
        b.energy.push(r.energy_mj);
        b.zone.push(key.zone.as_str());
        b.site.push(key.site.as_str());
        b.measurement.push(r.measurement);
    })?;
    totals.quarantined = (n - b.node.len()) as u64;
    let (g_point, m_point) = grid.join(&b.zone, &b.start)?;
    let out = figures(b, &g_point, &m_point, cfg, grid, &mut totals)?;
    totals.rows = out.height() as u64;
    Ok((out, totals))
}

/// A zone's cascade answer, as the provenance columns print it.
struct Fallback {
    value: i64,
    basis: &'static str,
    source: String,
    level: String,
    figure_zone: String,
    data_time: i64,
    period: String,
}

/// The per-row figures, given each row's joined average and marginal point.
#[allow(clippy::needless_range_loop)] // one index over many parallel columns
fn figures(
    b: Base<'_>,
    g_point: &[Option<u32>],
    m_point: &[Option<u32>],
    cfg: &PipelineConfig,
    grid: &Grid,
    totals: &mut ChunkTotals,
) -> Result<DataFrame> {
    let h = b.node.len();
    let (avg_pts, marg_pts) = (&grid.average, &grid.marginal);
    // Per site and per zone figures, resolved once (rows borrow their strings).
    let mut site_figs: HashMap<&str, SiteFigures> = HashMap::new();
    let mut fallbacks: HashMap<&str, Fallback> = HashMap::new();
    for i in 0..h {
        if i > 0 && same(b.site[i], b.site[i - 1]) && same(b.zone[i], b.zone[i - 1]) {
            continue;
        }
        let site = b.site[i];
        if !site_figs.contains_key(site) {
            site_figs.insert(site, cfg.site(site)?);
        }
        let zone = b.zone[i];
        if !fallbacks.contains_key(zone) {
            let f = grid
                .fallback(zone, b.start[i])
                .or_fail(Kind::Internal, "a row's zone lost its figure")?;
            let level = serde_json::to_value(f.fallback_level)?
                .as_str()
                .unwrap_or("")
                .to_string();
            fallbacks.insert(
                zone,
                Fallback {
                    value: f.value_mg_per_kwh,
                    basis: f.basis,
                    source: f.source,
                    level,
                    figure_zone: f.figure_zone,
                    data_time: gco_ledger::time::parse_utc(&f.data_time).unwrap_or(0),
                    period: f.data_period,
                },
            );
        }
    }

    let mut c_scope = Vec::with_capacity(h);
    let mut c_pue = Vec::with_capacity(h);
    let mut c_pue_default = Vec::with_capacity(h);
    let mut c_fac = Vec::with_capacity(h);
    let mut c_int = Vec::with_capacity(h);
    let mut c_basis: Vec<&str> = Vec::with_capacity(h);
    let mut c_source: Vec<&str> = Vec::with_capacity(h);
    let mut c_level: Vec<&str> = Vec::with_capacity(h);
    let mut c_figure_zone: Vec<&str> = Vec::with_capacity(h);
    let mut c_data_time = Vec::with_capacity(h);
    let mut c_period: Vec<&str> = Vec::with_capacity(h);
    let mut c_loc = Vec::with_capacity(h);
    let mut c_mint: Vec<Option<i64>> = Vec::with_capacity(h);
    let mut c_msrc: Vec<Option<&str>> = Vec::with_capacity(h);
    let mut c_mng: Vec<Option<i64>> = Vec::with_capacity(h);
    let mut c_emb = Vec::with_capacity(h);
    let mut c_emb_src: Vec<Option<&str>> = Vec::with_capacity(h);
    let mut c_sci = Vec::with_capacity(h);
    let mut c_sci_signal = Vec::with_capacity(h);
    let mut c_sci_1k: Vec<Option<i64>> = Vec::with_capacity(h);
    // Consecutive rows mostly share a site (a batch is one node's).
    let mut last_site: Option<(&str, &SiteFigures)> = None;
    let mut zone_sum = ZoneSum::default();
    for i in 0..h {
        let (t, zone) = (b.start[i], b.zone[i]);
        let sf = match last_site {
            Some((s, f)) if same(s, b.site[i]) => f,
            _ => {
                let f = &site_figs[b.site[i]];
                last_site = Some((b.site[i], f));
                f
            }
        };
        let at = |what: &str| overflow(&format!("node {} seq {}", b.node[i], b.seq[i]), what);
        let fac = math::facility_mj(b.energy[i], sf.pue_milli)
            .or_else_fail(Kind::Overflow, || at("facility energy"))?;
        // Average intensity: the joined point if it covers t, else the cascade.
        let avg = match avg_pts.covering(g_point[i], t) {
            Some(p) => {
                c_basis.push(avg_pts.basis[p]);
                c_source.push(avg_pts.source(p));
                c_level.push(if avg_pts.estimated[p] {
                    "provider_estimated"
                } else {
                    "provider_measured"
                });
                c_figure_zone.push(zone);
                c_data_time.push(avg_pts.start[p]);
                c_period.push(avg_pts.period(p));
                avg_pts.value[p]
            }
            None => {
                let f = &fallbacks[zone];
                c_basis.push(f.basis);
                c_source.push(&f.source);
                c_level.push(&f.level);
                c_figure_zone.push(&f.figure_zone);
                c_data_time.push(f.data_time);
                c_period.push(&f.period);
                f.value
            }
        };
        let loc = math::emissions_ng(fac, avg)
            .or_else_fail(Kind::Overflow, || at("location-based emissions"))?;
        let marginal = marg_pts.covering(m_point[i], t);
        let (mint, mng) = match marginal {
            Some(p) => {
                let v = marg_pts.value[p];
                let ng = math::emissions_ng(fac, v)
                    .or_else_fail(Kind::Overflow, || at("marginal emissions"))?;
                (Some(v), Some(ng))
            }
            None => (None, None),
        };
        let inference = b.kind[i] == "inference";
        let emb = if inference {
            math::embodied_ng(
                i64::from(b.gpus[i]),
                b.end[i]
                    .checked_sub(t)
                    .or_else_fail(Kind::Overflow, || at("duration"))?,
                sf.embodied_g_per_gpu,
                sf.lifetime_us,
            )
            .or_else_fail(Kind::Overflow, || at("embodied emissions"))?
        } else {
            0
        };
        // SCI: E x I + M, with I the marginal intensity where cached, else the average.
        let (sci_i, sci_sig) = match mint {
            Some(v) => (v, "marginal"),
            None => (avg, "average"),
        };
        let sci = math::emissions_ng(fac, sci_i)
            .and_then(|e| e.checked_add(emb))
            .or_else_fail(Kind::Overflow, || at("SCI"))?;
        let tokens = b.prompt[i]
            .unwrap_or(0)
            .checked_add(b.completion[i].unwrap_or(0))
            .or_else_fail(Kind::Overflow, || at("tokens"))?;
        c_scope.push(sf.scope.as_str());
        c_pue.push(sf.pue_milli);
        c_pue_default.push(sf.pue_default);
        c_fac.push(fac);
        c_int.push(avg);
        c_loc.push(loc);
        c_mint.push(mint);
        c_msrc.push(marginal.map(|p| marg_pts.source(p)));
        c_mng.push(mng);
        c_emb.push(emb);
        c_emb_src.push(inference.then_some(sf.embodied_source.as_str()));
        c_sci.push(if inference { Some(sci) } else { None });
        c_sci_signal.push(sci_sig);
        c_sci_1k.push(if inference {
            math::per_1k_tokens(sci, tokens)
        } else {
            None
        });
        if sf.scope == crate::config::Scope::Scope2 {
            zone_sum.add(zone, fac, totals)?;
        }
    }
    zone_sum.flush(totals)?;
    // The microseconds as they are, typed as UTC times (no cast, no copy).
    let ts = |name: &str, v: Vec<i64>| -> Result<Column> {
        Ok(Int64Chunked::from_vec(name.into(), v)
            .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
            .into_column())
    };
    let out = DataFrame::new_infer_height(vec![
        shared_strings(col::NODE_ID, h, |i| Some(b.node[i])),
        Column::new(col::SEQ.into(), b.seq),
        shared_strings(col::INFERENCE_ID, h, |i| b.iid[i]),
        shared_strings(col::KIND, h, |i| Some(b.kind[i])),
        shared_strings(col::MODEL_ID, h, |i| b.model[i]),
        shared_strings(col::MODEL_VERSION, h, |i| b.version[i]),
        ts(col::START, b.start)?,
        ts(col::END, b.end)?,
        Column::new(col::PROMPT_TOKENS.into(), b.prompt),
        Column::new(col::COMPLETION_TOKENS.into(), b.completion),
        Column::new(col::GPU_COUNT.into(), b.gpus),
        shared_strings(col::MEASUREMENT, h, |i| Some(b.measurement[i])),
        shared_strings(col::ZONE, h, |i| Some(b.zone[i])),
        shared_strings(col::SITE, h, |i| Some(b.site[i])),
        shared_strings(col::SCOPE, h, |i| Some(c_scope[i])),
        Column::new(col::IT_ENERGY_MJ.into(), b.energy),
        Column::new(col::PUE_MILLI.into(), c_pue),
        Column::new(col::PUE_DEFAULT.into(), c_pue_default),
        Column::new(col::FACILITY_ENERGY_MJ.into(), c_fac),
        Column::new(col::INTENSITY_MG_PER_KWH.into(), c_int),
        shared_strings(col::INTENSITY_BASIS, h, |i| Some(c_basis[i])),
        shared_strings(col::INTENSITY_SOURCE, h, |i| Some(c_source[i])),
        shared_strings(col::INTENSITY_FALLBACK_LEVEL, h, |i| Some(c_level[i])),
        shared_strings(col::INTENSITY_FIGURE_ZONE, h, |i| Some(c_figure_zone[i])),
        ts(col::INTENSITY_DATA_TIME, c_data_time)?,
        shared_strings(col::INTENSITY_DATA_PERIOD, h, |i| Some(c_period[i])),
        Column::new(col::LOCATION_NG.into(), c_loc),
        Column::new(col::MARGINAL_MG_PER_KWH.into(), c_mint),
        shared_strings(col::MARGINAL_SOURCE, h, |i| c_msrc[i]),
        Column::new(col::MARGINAL_NG.into(), c_mng),
        Column::new(col::EMBODIED_NG.into(), c_emb),
        shared_strings(col::EMBODIED_SOURCE, h, |i| c_emb_src[i]),
        Column::new(col::SCI_NG.into(), c_sci),
        shared_strings(col::SCI_INTENSITY_SIGNAL, h, |i| Some(c_sci_signal[i])),
        Column::new(col::SCI_NG_PER_1K_TOKENS.into(), c_sci_1k),
    ])?;
    Ok(out)
}
