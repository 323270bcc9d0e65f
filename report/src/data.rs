//! What reports are made of: each month's latest run (manifest and aggregate tables,
//! every table checked against the SHA-256 the manifest lists before it is used).

use std::collections::BTreeMap;

use crate::error::{Context, Result, fail};
use gco_ledger::Store;
use gco_pipelines::Period;
use gco_pipelines::aggregate::{Sums, TABLES};
use gco_pipelines::manifest::RunManifest;
use sha2::{Digest, Sha256};

/// One aggregate row: its key values (in the table's key order) and sums.
pub type Row = (Vec<String>, Sums);

/// A month's run as the reports read it.
#[derive(Debug, Clone)]
pub struct Month {
    pub period: Period,
    pub version: u32,
    pub manifest_path: String,
    pub manifest_sha256: String,
    pub manifest: RunManifest,
    /// Aggregate tables by name (`model_month`, `zone_month`, ...).
    pub tables: BTreeMap<&'static str, Vec<Row>>,
}

impl Month {
    pub fn table(&self, name: &str) -> &[Row] {
        self.tables.get(name).map_or(&[], |v| v.as_slice())
    }

    /// Totals by scope (`all`, `scope2`, `scope3`) from the organisation table.
    pub fn totals(&self) -> BTreeMap<String, Sums> {
        let mut out: BTreeMap<String, Sums> = BTreeMap::new();
        for (key, s) in self.table("organisation_month") {
            out.entry(key[1].clone()).or_default().add(s);
            out.entry("all".into()).or_default().add(s);
        }
        out.entry("all".into()).or_default();
        out
    }

    pub fn as_of(&self) -> &str {
        &self.manifest.as_of
    }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The aggregate table `name` of `run`, after checking its bytes against the SHA-256
/// its manifest lists (a table changed after the run is refused).
pub async fn checked_table(
    store: &Store,
    run: &gco_pipelines::certify::Run,
    name: &str,
) -> Result<Vec<Row>> {
    let period = run.period;
    let Some(keys) = gco_pipelines::aggregate::table_keys(name) else {
        fail!(Usage, "{name} is not an aggregate table");
    };
    let path = gco_ledger::layout::aggregate(period, run.version, name);
    let Some(expected) = run.manifest.output(&path).map(|o| o.sha256.as_str()) else {
        fail!(
            Inconsistent,
            "{} does not list {path}: this run predates the report tables; \
         rerun `gco run --period {period} --force` to write a new version",
            run.manifest_path
        );
    };
    let bytes = store
        .get(&path)
        .await
        .with_context(|| format!("reading {path} (listed in {})", run.manifest_path))?;
    let actual = sha256_hex(&bytes);
    if actual != expected {
        fail!(
            Inconsistent,
            "{path} has SHA-256 {actual} but {} lists {expected}: the aggregate was \
         changed after the run; do not report from it (rerun the period to write a \
         new version)",
            run.manifest_path
        );
    }
    Ok(gco_pipelines::aggregate::read_table(&path, bytes, keys)?)
}

/// The latest run of `period` (or `version`), `None` when the period has no run.
pub async fn load_month(
    store: &Store,
    period: Period,
    version: Option<u32>,
) -> Result<Option<Month>> {
    if version.is_none()
        && gco_pipelines::manifest::latest_version(store, period)
            .await?
            .is_none()
    {
        return Ok(None);
    }
    let run = gco_pipelines::certify::load_run(store, period, version).await?;
    let mut tables = BTreeMap::new();
    for (name, _) in TABLES {
        tables.insert(name, checked_table(store, &run, name).await?);
    }
    Ok(Some(Month {
        period,
        version: run.version,
        manifest_path: run.manifest_path,
        manifest_sha256: run.manifest_sha256,
        manifest: run.manifest,
        tables,
    }))
}

/// The months of a reporting period: `2026` (its twelve months), `2026-10`, or an
/// explicit list (`--months 2026-01,2026-02`).
pub fn months(period: &str, months: &[String]) -> Result<Vec<Period>> {
    if !months.is_empty() {
        let mut out = months
            .iter()
            .map(|m| Period::parse(m).with_context(|| format!("--months {m:?}")))
            .collect::<Result<Vec<_>>>()?;
        out.sort();
        out.dedup();
        return Ok(out);
    }
    if period.len() == 4 && period.chars().all(|c| c.is_ascii_digit()) {
        let first = Period::parse(&format!("{period}-01"))?;
        let last = Period::parse(&format!("{period}-12"))?;
        return Ok(Period::range(first, last));
    }
    Ok(vec![Period::parse(period).with_context(|| {
        format!("--period {period:?}: a year (2026) or a month (2026-10)")
    })?])
}
