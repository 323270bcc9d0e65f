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

use anyhow::{Context, Result};
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

/// A row that could not be accounted, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Quarantined {
    pub object: String,
    pub node_id: String,
    pub seq: u64,
    /// `node_not_registered` (no registration valid at the record's start) or
    /// `zone_unknown` (the registered zone is not in the catalog).
    pub reason: String,
}

/// Grid series as frames, and the cascade's annual answers per zone.
pub struct Grid {
    average: DataFrame,
    marginal: DataFrame,
    resolver: Resolver,
    fallback: std::sync::Mutex<HashMap<String, Option<Intensity>>>,
}

fn series_frame(
    index: &SeriesIndex,
    signal: Signal,
    prefix: &str,
    as_of: Micros,
) -> Result<DataFrame> {
    let (mut zone, mut time, mut end, mut value, mut basis, mut est, mut source) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (z, points) in index.iter(signal) {
        for p in points.iter().filter(|p| p.fetched_at <= as_of) {
            zone.push(z.to_string());
            time.push(p.start);
            end.push(p.end);
            value.push(p.value.0);
            basis.push(p.basis.as_str());
            est.push(p.estimated);
            source.push(index.source_name(p).to_string());
        }
    }
    let n = |s: &str| PlSmallStr::from(format!("{prefix}_{s}"));
    let df = DataFrame::new_infer_height(vec![
        Column::new("zone".into(), zone),
        Column::new(n("time"), time),
        Column::new(n("end"), end),
        Column::new(n("value"), value),
        Column::new(n("basis"), basis),
        Column::new(n("estimated"), est),
        Column::new(n("source"), source),
    ])?;
    Ok(df.sort([format!("{prefix}_time")], SortMultipleOptions::default())?)
}

impl Grid {
    /// Frames over the cached points fetched by `as_of`.
    pub fn new(index: SeriesIndex, as_of: Micros) -> Result<Grid> {
        Ok(Grid {
            average: series_frame(&index, Signal::Average, "g", as_of)?,
            marginal: series_frame(&index, Signal::Marginal, "m", as_of)?,
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

/// Calls `f` for every row of `batches` with the registration in force at the row's
/// start; a row without one, or whose zone has no figure at all, is quarantined with
/// its reason instead. The one place that decides which rows are accounted.
fn for_each_resolved<'b, 'r>(
    batches: &'b [(String, Vec<RecordBatch>)],
    registry: &'r Registry,
    grid: &Grid,
    quarantine: &mut Vec<Quarantined>,
    mut f: impl FnMut(Row<'b>, &'r NodeKey),
) -> Result<()> {
    // A batch holds one node's rows: its registrations are looked up once per batch,
    // and a zone's cascade answer once.
    let mut zone_known: HashMap<&str, bool> = HashMap::new();
    for (object, parts) in batches {
        for b in parts {
            let cols = Columns::new(b).context("a verified batch is not in the ledger schema")?;
            let mut keys: Option<(&str, Vec<&NodeKey>)> = None;
            for i in 0..b.num_rows() {
                let r = cols.fields(i);
                if keys.as_ref().is_none_or(|(n, _)| *n != r.node_id) {
                    keys = Some((r.node_id, registry.node_keys(r.node_id)));
                }
                let node_keys = keys.as_ref().map(|k| k.1.as_slice()).unwrap_or_default();
                let resolved = match pick_at(node_keys.iter().copied(), r.start) {
                    None => Err("node_not_registered"),
                    Some(key) => {
                        let known = *zone_known
                            .entry(key.zone.as_str())
                            .or_insert_with(|| grid.fallback(&key.zone, r.start).is_some());
                        if known { Ok(key) } else { Err("zone_unknown") }
                    }
                };
                let seq = u64::try_from(r.seq).unwrap_or_default();
                match resolved {
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

fn row_count(batches: &[(String, Vec<RecordBatch>)]) -> usize {
    batches
        .iter()
        .flat_map(|b| &b.1)
        .map(RecordBatch::num_rows)
        .sum()
}

/// What [`chunk_rows`] would count for `batches` (rows, quarantine, Scope 2 facility
/// energy by zone) without building the rows: the first pass of a one-process run,
/// which needs the period's consumption before any row's market figure.
pub fn chunk_totals(
    batches: &[(String, Vec<RecordBatch>)],
    registry: &Registry,
    cfg: &PipelineConfig,
    grid: &Grid,
    quarantine: &mut Vec<Quarantined>,
) -> Result<ChunkTotals> {
    let n = row_count(batches);
    let mut totals = ChunkTotals::default();
    let mut sites: HashMap<&str, SiteFigures> = HashMap::new();
    let mut accepted = 0u64;
    for_each_resolved(batches, registry, grid, quarantine, |r, key| {
        accepted += 1;
        let sf = sites
            .entry(key.site.as_str())
            .or_insert_with(|| cfg.site(&key.site));
        if sf.scope == crate::config::Scope::Scope2 {
            let fac = math::facility_mj(r.energy_mj, sf.pue_milli);
            match totals.scope2_facility_mj.get_mut(&key.zone) {
                Some(v) => *v += fac,
                None => {
                    totals.scope2_facility_mj.insert(key.zone.clone(), fac);
                }
            }
        }
    })?;
    totals.rows = accepted;
    totals.quarantined = n as u64 - accepted;
    Ok(totals)
}

/// Builds the emission rows of `batches` (object path, the verified batch's decoded
/// rows in the ledger schema).
pub fn chunk_rows(
    batches: &[(String, Vec<RecordBatch>)],
    registry: &Registry,
    cfg: &PipelineConfig,
    grid: &Grid,
    quarantine: &mut Vec<Quarantined>,
) -> Result<(DataFrame, ChunkTotals)> {
    let n = row_count(batches);
    let mut node = Vec::with_capacity(n);
    let mut seq: Vec<u64> = Vec::with_capacity(n);
    let mut iid: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut kind = Vec::with_capacity(n);
    let mut model: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut version: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut start = Vec::with_capacity(n);
    let mut end = Vec::with_capacity(n);
    let mut prompt: Vec<Option<u64>> = Vec::with_capacity(n);
    let mut completion: Vec<Option<u64>> = Vec::with_capacity(n);
    let mut gpus = Vec::with_capacity(n);
    let mut energy = Vec::with_capacity(n);
    let mut zone = Vec::with_capacity(n);
    let mut site = Vec::with_capacity(n);
    let mut measurement = Vec::with_capacity(n);
    let mut totals = ChunkTotals::default();
    for_each_resolved(batches, registry, grid, quarantine, |r, key| {
        node.push(r.node_id);
        seq.push(r.seq);
        iid.push(r.inference_id);
        kind.push(r.kind);
        model.push(r.model_id);
        version.push(r.model_version);
        start.push(r.start);
        end.push(r.end);
        prompt.push(r.prompt_tokens);
        completion.push(r.completion_tokens);
        gpus.push(r.gpu_count);
        energy.push(r.energy_mj);
        zone.push(key.zone.as_str());
        site.push(key.site.as_str());
        measurement.push(r.measurement);
    })?;
    totals.quarantined = (n - node.len()) as u64;
    let base = DataFrame::new_infer_height(vec![
        Column::new("node_id".into(), node),
        Column::new("seq".into(), seq),
        Column::new("inference_id".into(), iid),
        Column::new("kind".into(), kind),
        Column::new("model_id".into(), model),
        Column::new("model_version".into(), version),
        Column::new("start_us".into(), start),
        Column::new("end_us".into(), end),
        Column::new("prompt_tokens".into(), prompt),
        Column::new("completion_tokens".into(), completion),
        Column::new("gpu_count".into(), gpus),
        Column::new("measurement".into(), measurement),
        Column::new("it_energy_mj".into(), energy),
        Column::new("zone".into(), zone),
        Column::new("site".into(), site),
    ])?;
    // The joins need rows in time order; the row index restores the ledger's order
    // (batch by batch, seq within a batch) afterwards with an integer sort.
    let joined = asof(
        asof(
            base.lazy()
                .with_row_index("row_index", None)
                .sort(["start_us"], SortMultipleOptions::default()),
            &grid.average,
            "g",
        ),
        &grid.marginal,
        "m",
    )
    .sort(["row_index"], SortMultipleOptions::default())
    .collect()
    .map_err(|e| anyhow::anyhow!("joining records with the grid series: {e}"))?;
    let out = figures(joined, cfg, grid, &mut totals)?;
    totals.rows = out.height() as u64;
    Ok((out, totals))
}

fn i64s(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>> {
    Ok(df
        .column(name)?
        .cast(&DataType::Int64)?
        .i64()?
        .iter()
        .collect())
}

fn strs<'a>(df: &'a DataFrame, name: &str) -> Result<Vec<Option<&'a str>>> {
    Ok(df.column(name)?.str()?.iter().collect())
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

/// The per-row figures after the joins.
#[allow(clippy::needless_range_loop)] // one index over many parallel columns
fn figures(
    df: DataFrame,
    cfg: &PipelineConfig,
    grid: &Grid,
    totals: &mut ChunkTotals,
) -> Result<DataFrame> {
    let h = df.height();
    let start = i64s(&df, "start_us")?;
    let end = i64s(&df, "end_us")?;
    let it = i64s(&df, "it_energy_mj")?;
    let gpus = i64s(&df, "gpu_count")?;
    let prompt = i64s(&df, "prompt_tokens")?;
    let completion = i64s(&df, "completion_tokens")?;
    let kinds = strs(&df, "kind")?;
    let zones = strs(&df, "zone")?;
    let sites = strs(&df, "site")?;
    let (g_time, g_end, g_value) = (
        i64s(&df, "g_time")?,
        i64s(&df, "g_end")?,
        i64s(&df, "g_value")?,
    );
    let (g_basis, g_source) = (strs(&df, "g_basis")?, strs(&df, "g_source")?);
    let g_est: Vec<Option<bool>> = df.column("g_estimated")?.bool()?.iter().collect();
    let (m_time, m_end, m_value, m_source) = (
        i64s(&df, "m_time")?,
        i64s(&df, "m_end")?,
        i64s(&df, "m_value")?,
        strs(&df, "m_source")?,
    );

    // Per site and per zone figures, resolved once (rows borrow their strings).
    let mut site_figs: HashMap<&str, SiteFigures> = HashMap::new();
    let mut fallbacks: HashMap<&str, Fallback> = HashMap::new();
    for i in 0..h {
        let site = sites[i].unwrap_or("");
        if !site_figs.contains_key(site) {
            site_figs.insert(site, cfg.site(site));
        }
        let zone = zones[i].unwrap_or("");
        if !fallbacks.contains_key(zone) {
            let f = grid
                .fallback(zone, start[i].unwrap_or(0))
                .context("a row's zone lost its figure")?;
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
    // Point lengths as ISO durations, one string per distinct length.
    let durations: std::collections::BTreeMap<i64, String> = (0..h)
        .filter_map(|i| Some(g_end[i]? - g_time[i]?))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|d| (d, format!("PT{}S", d / 1_000_000)))
        .collect();

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
    for i in 0..h {
        let (t, zone) = (start[i].unwrap_or(0), zones[i].unwrap_or(""));
        let sf = &site_figs[sites[i].unwrap_or("")];
        let fac = math::facility_mj(it[i].unwrap_or(0), sf.pue_milli);
        // Average intensity: the joined point if it covers t, else the cascade.
        let covered = matches!((g_time[i], g_end[i]), (Some(a), Some(b)) if a <= t && t < b);
        let avg = if covered {
            c_basis.push(g_basis[i].unwrap_or_default());
            c_source.push(g_source[i].unwrap_or_default());
            c_level.push(if g_est[i] == Some(true) {
                "provider_estimated"
            } else {
                "provider_measured"
            });
            c_figure_zone.push(zone);
            c_data_time.push(g_time[i].unwrap_or(0));
            c_period.push(&durations[&(g_end[i].unwrap_or(0) - g_time[i].unwrap_or(0))]);
            g_value[i].unwrap_or(0)
        } else {
            let f = &fallbacks[zone];
            c_basis.push(f.basis);
            c_source.push(&f.source);
            c_level.push(&f.level);
            c_figure_zone.push(&f.figure_zone);
            c_data_time.push(f.data_time);
            c_period.push(&f.period);
            f.value
        };
        let loc = math::emissions_ng(fac, avg);
        let m_covered = matches!((m_time[i], m_end[i]), (Some(a), Some(b)) if a <= t && t < b)
            && m_value[i].is_some();
        let (mint, mng) = if m_covered {
            let v = m_value[i].unwrap_or(0);
            (Some(v), Some(math::emissions_ng(fac, v)))
        } else {
            (None, None)
        };
        let inference = kinds[i] == Some("inference");
        let emb = if inference {
            math::embodied_ng(
                gpus[i].unwrap_or(0),
                end[i].unwrap_or(0) - t,
                sf.embodied_g_per_gpu,
                sf.lifetime_us,
            )
        } else {
            0
        };
        // SCI: E x I + M, with I the marginal intensity where cached, else the average.
        let (sci_i, sci_sig) = match mint {
            Some(v) => (v, "marginal"),
            None => (avg, "average"),
        };
        let sci = math::emissions_ng(fac, sci_i) + emb;
        let tokens = (prompt[i].unwrap_or(0) + completion[i].unwrap_or(0)) as u64;
        c_scope.push(sf.scope.as_str());
        c_pue.push(sf.pue_milli);
        c_pue_default.push(sf.pue_default);
        c_fac.push(fac);
        c_int.push(avg);
        c_loc.push(loc);
        c_mint.push(mint);
        c_msrc.push(if m_covered { m_source[i] } else { None });
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
            match totals.scope2_facility_mj.get_mut(zone) {
                Some(v) => *v += fac,
                None => {
                    totals.scope2_facility_mj.insert(zone.to_string(), fac);
                }
            }
        }
    }
    let ts = |name: &str, v: Vec<Option<i64>>| -> Result<Column> {
        Ok(Series::new(name.into(), v)
            .cast(&DataType::Datetime(
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            ))?
            .into())
    };
    let out = DataFrame::new_infer_height(vec![
        df.column("node_id")?.clone(),
        df.column("seq")?.clone(),
        df.column("inference_id")?.clone(),
        df.column("kind")?.clone(),
        df.column("model_id")?.clone(),
        df.column("model_version")?.clone(),
        ts("start", start)?,
        ts("end", end)?,
        df.column("prompt_tokens")?.clone(),
        df.column("completion_tokens")?.clone(),
        df.column("gpu_count")?.clone(),
        df.column("measurement")?.clone(),
        df.column("zone")?.clone(),
        df.column("site")?.clone(),
        Column::new("scope".into(), c_scope),
        df.column("it_energy_mj")?.clone(),
        Column::new("pue_milli".into(), c_pue),
        Column::new("pue_default".into(), c_pue_default),
        Column::new("facility_energy_mj".into(), c_fac),
        Column::new("intensity_mg_per_kwh".into(), c_int),
        Column::new("intensity_basis".into(), c_basis),
        Column::new("intensity_source".into(), c_source),
        Column::new("intensity_fallback_level".into(), c_level),
        Column::new("intensity_figure_zone".into(), c_figure_zone),
        ts(
            "intensity_data_time",
            c_data_time.into_iter().map(Some).collect(),
        )?,
        Column::new("intensity_data_period".into(), c_period),
        Column::new("location_ng".into(), c_loc),
        Column::new("marginal_mg_per_kwh".into(), c_mint),
        Column::new("marginal_source".into(), c_msrc),
        Column::new("marginal_ng".into(), c_mng),
        Column::new("embodied_ng".into(), c_emb),
        Column::new("embodied_source".into(), c_emb_src),
        Column::new("sci_ng".into(), c_sci),
        Column::new("sci_intensity_signal".into(), c_sci_signal),
        Column::new("sci_ng_per_1k_tokens".into(), c_sci_1k),
    ])?;
    Ok(out)
}
