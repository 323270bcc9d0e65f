//! The run manifest (`runs/period=P/version=NNNN/manifest.json`): what a published
//! version of a period is. Written once by the run that creates the version, read by
//! everything else (reruns, merges, credentials, reports, audit packages). This module
//! is its one definition: a reader gets every field or an error naming the one that is
//! missing or malformed, never a silent zero.
//!
//! On the wire: pretty-printed JSON with every object's keys in sorted order (so the
//! same version gives the same bytes), exact integer sums as decimal strings (JSON
//! readers lose precision past 2^53); in memory those sums are `i128`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use gco_ledger::Store;

use crate::config::PipelineConfig;
use crate::period::Period;

/// The `format` of the manifests this version of gco writes and reads.
pub const FORMAT: &str = "gco-run-manifest/1";

/// At most this many quarantined rows are listed (the coverage counts them all).
pub const MAX_LISTED_QUARANTINE: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunManifest {
    /// [`FORMAT`].
    pub format: String,
    /// The method version of the figures (`job::METHOD_VERSION`).
    pub method: String,
    pub period: String,
    pub version: u32,
    /// RFC 3339, microseconds: what the ledger, registry and grid cache held then.
    pub as_of: String,
    pub code_version: String,
    pub plan: Plan,
    pub config: PipelineConfig,
    /// Shards the version was computed in (1: one process).
    pub shards: u32,
    pub inputs: Inputs,
    pub coverage: Coverage,
    pub chain_issues: Vec<Issue>,
    /// The first [`MAX_LISTED_QUARANTINE`] quarantined rows.
    pub quarantine: Vec<Quarantined>,
    /// The market-based allocation of contractual instruments.
    pub instruments: AllocationReport,
    /// By scope: `all`, `scope2`, `scope3`.
    pub totals: BTreeMap<String, Totals>,
    pub outputs: Vec<Output>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// Every ledger batch of the period, with what verification said.
    pub ledger: Vec<BatchEntry>,
    pub grid: Vec<InputObject>,
    pub registry: Vec<InputObject>,
}

/// One file of the version, with the SHA-256 a reader checks before using it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub path: String,
    pub bytes: u64,
    pub rows: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationReport {
    pub zones: BTreeMap<String, ZoneAllocation>,
    pub instruments: Vec<InstrumentUse>,
    /// Zones with uncovered energy and no configured residual mix (their market-based
    /// figure falls back to the grid average).
    pub residual_mix_unknown: Vec<String>,
}

/// A scope's totals: counts, and sums in mJ and ng CO2e.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    pub rows: u64,
    pub inferences: u64,
    #[serde(with = "decimal")]
    pub it_energy_mj: i128,
    #[serde(with = "decimal")]
    pub facility_energy_mj: i128,
    #[serde(with = "decimal")]
    pub location_ng: i128,
    #[serde(with = "decimal")]
    pub market_ng: i128,
    #[serde(with = "decimal")]
    pub marginal_ng: i128,
    pub marginal_rows: u64,
    #[serde(with = "decimal")]
    pub embodied_ng: i128,
    #[serde(with = "decimal")]
    pub sci_ng: i128,
}

/// An `i128` as a JSON string of decimal digits.
pub mod decimal {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &i128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|_| D::Error::custom(format!("{text:?} is not an integer")))
    }
}

pub use crate::document::DocumentError as ManifestError;

impl RunManifest {
    /// Parses a stored manifest: every field must be present and well-typed (the error
    /// names the first one that is not), and its format must be [`FORMAT`].
    pub fn from_slice(path: &str, bytes: &[u8]) -> Result<Self, ManifestError> {
        let m: RunManifest =
            crate::document::parse("run manifest", path, bytes, FORMAT, |m: &Self| &m.format)?;
        if !m.totals.contains_key("all") {
            return Err(ManifestError::Missing {
                path: path.to_string(),
                field: "totals.all",
            });
        }
        Ok(m)
    }

    /// Like [`RunManifest::from_slice`], and the manifest must be the one of `period`
    /// and `version` (a copy under another version's name is refused).
    pub fn from_slice_at(
        path: &str,
        bytes: &[u8],
        period: &str,
        version: u32,
    ) -> Result<Self, ManifestError> {
        let m = Self::from_slice(path, bytes)?;
        if m.period != period || m.version != version {
            return Err(ManifestError::Misplaced {
                path: path.to_string(),
                period: m.period,
                version: m.version,
                expected: format!("{period} version {version}"),
            });
        }
        Ok(m)
    }

    /// The stored bytes (`document::to_bytes`).
    pub fn to_bytes(&self) -> serde_json::Result<Vec<u8>> {
        crate::document::to_bytes(self)
    }

    /// The scope's totals (`all`, `scope2`, `scope3`). A scope the run had no row in
    /// is not listed: its totals are zero (`all` is always there).
    pub fn totals(&self, scope: &str) -> Totals {
        self.totals.get(scope).copied().unwrap_or_default()
    }

    /// The SHA-256 the manifest lists for `path`, if it lists the file.
    pub fn output(&self, path: &str) -> Option<&Output> {
        self.outputs.iter().find(|o| o.path == path)
    }
}

// What the manifest is made of.

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InputObject {
    pub path: String,
    pub size: u64,
}

/// What a run reads. Its id names the staging area and decides whether a rerun is a
/// no-op: the same inputs, configuration and code give the same id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub id: String,
    pub period: String,
    pub ledger: Vec<InputObject>,
    pub grid: Vec<InputObject>,
    pub registry: Vec<InputObject>,
    pub config_sha256: String,
    pub code_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Issue {
    pub object: String,
    pub row: Option<u64>,
    pub code: String,
    pub message: String,
}

/// One input batch and what verification said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchEntry {
    pub object: String,
    pub size: u64,
    pub sha256: String,
    pub verified: bool,
    pub problems: Vec<Issue>,
    pub node_id: Option<String>,
    pub seq_first: Option<i64>,
    pub seq_last: Option<i64>,
    pub prev_batch_hash: Option<String>,
    pub batch_hash: Option<String>,
    /// From the seal (0 when the seal is unreadable).
    pub records: u64,
    pub energy_mj: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    pub batches: u64,
    pub batches_verified: u64,
    pub batches_excluded: u64,
    /// Records and energy the readable seals declare, and the verified part.
    pub records_sealed: u64,
    pub records_verified: u64,
    pub energy_mj_sealed: i64,
    pub energy_mj_verified: i64,
    /// Verified records = accounted + quarantined.
    pub records_accounted: u64,
    pub records_quarantined: u64,
    pub quarantine_reasons: BTreeMap<String, u64>,
    pub chain_issues: u64,
    pub excluded: Vec<Issue>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneAllocation {
    pub consumption_mj: i64,
    pub covered_mj: i64,
    /// Sum of allocated mJ x instrument mg/kWh.
    #[serde(skip)]
    pub instrument_weight: i128,
    pub residual_mg_per_kwh: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentUse {
    pub id: String,
    pub kind: String,
    pub zone: String,
    pub available_mj: i64,
    pub allocated_mj: i64,
    pub unallocated_mj: i64,
    pub factor_mg_per_kwh: i64,
}

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

/// Every published manifest under `period` (or of every period), by (period, version):
/// its path. A path with no `period=` month or `version=` number is skipped.
pub async fn versions(
    store: &Store,
    period: Option<Period>,
) -> Result<BTreeMap<(Period, u32), String>> {
    let prefix = match period {
        Some(p) => format!("{}/", gco_ledger::layout::runs(p)),
        None => format!("{}/", gco_ledger::layout::RUNS),
    };
    let mut out = BTreeMap::new();
    for m in store.list(&prefix).await? {
        let path = m.location.to_string();
        let field = |key: &str| path.split('/').find_map(|s| s.strip_prefix(key));
        if let (Some(p), Some(v), true) = (
            field("period=").and_then(|p| Period::parse(p).ok()),
            field("version=").and_then(|v| v.parse::<u32>().ok()),
            path.ends_with("/manifest.json"),
        ) {
            out.insert((p, v), path);
        }
    }
    Ok(out)
}

/// The latest version's number and manifest, if any.
pub async fn latest_version(store: &Store, period: Period) -> Result<Option<(u32, RunManifest)>> {
    let Some(((_, v), path)) = versions(store, Some(period)).await?.pop_last() else {
        return Ok(None);
    };
    let bytes = store.get(&path).await?;
    let m = RunManifest::from_slice_at(&path, &bytes, &period.to_string(), v)?;
    Ok(Some((v, m)))
}
