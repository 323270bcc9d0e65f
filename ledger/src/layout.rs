//! Every path of a gco store, in one place (docs/ledger-format.md and docs/pipeline.md
//! describe what each holds):
//!
//! ```text
//! records/date=D/node=N/<seq_first:020>-<seq_last:020>-<hash:16>.parquet  sealed batches
//! keys/nodes/...                                      the node registry
//! keys/api/<id>.json, <id>.revoked.json               gco serve's API keys (hashes)
//! grid/source=S/zone=Z/month=M/<fetched:020>-<hash>.parquet  the grid intensity cache
//! runs/period=P/version=NNNN/manifest.json            a published run version
//! runs/period=P/staging/<plan>/...                    a run's scratch (sharded runs)
//! emissions/period=P/version=NNNN/rows/date=D/...     per-record emission rows
//! emissions/period=P/version=NNNN/aggregates/T.parquet  aggregate tables
//! certificates/period=P/version=NNNN/...              credentials, index, status lists
//! locks/<scope>/...                                   leases (crate::lease)
//! ```
//!
//! Periods and dates are taken as anything that prints as `YYYY-MM` / `YYYY-MM-DD`, so
//! that this crate needs no calendar type of the pipeline's.

use std::fmt::Display;

/// Sealed ledger batches.
pub const RECORDS: &str = "records";
/// The node registry (registrations and revocations).
pub const REGISTRY: &str = "keys/nodes";
/// `gco serve`'s API keys: their scopes and the hashes of their secrets.
pub const API_KEYS: &str = "keys/api";
/// The grid intensity cache.
pub const GRID: &str = "grid";
/// Run manifests and staging.
pub const RUNS: &str = "runs";
/// A run version's rows and aggregates.
pub const EMISSIONS: &str = "emissions";
/// Credentials of a run version.
pub const CERTIFICATES: &str = "certificates";
/// Leases.
pub const LOCKS: &str = "locks";

/// `runs/period=P`: every version and the staging of a period; also the scope of the
/// lease a run holds.
pub fn runs(period: impl Display) -> String {
    format!("{RUNS}/period={period}")
}

/// `runs/period=P/version=NNNN/manifest.json`.
pub fn manifest(period: impl Display, version: u32) -> String {
    format!("{RUNS}/period={period}/version={version:04}/manifest.json")
}

/// `runs/period=P/staging/<plan>`: a plan's scratch.
pub fn staging(period: impl Display, plan_id: &str) -> String {
    format!("{RUNS}/period={period}/staging/{plan_id}")
}

/// `runs/period=P/staging/<plan>/shard=I-of-N`: one shard's scratch.
pub fn shard_staging(period: impl Display, plan_id: &str, shard: u32, shards: u32) -> String {
    format!("{}/shard={shard}-of-{shards}", staging(period, plan_id))
}

/// `emissions/period=P/version=NNNN`: a version's outputs.
pub fn emissions(period: impl Display, version: u32) -> String {
    format!("{EMISSIONS}/period={period}/version={version:04}")
}

/// `emissions/period=P/version=NNNN/rows/date=D/`: one day's row files.
pub fn rows_of_day(period: impl Display, version: u32, date: impl Display) -> String {
    format!("{}/rows/date={date}/", emissions(period, version))
}

/// `emissions/period=P/version=NNNN/aggregates/T.parquet`.
pub fn aggregate(period: impl Display, version: u32, table: &str) -> String {
    format!("{}/aggregates/{table}.parquet", emissions(period, version))
}

/// `certificates/period=P`: every credentials version of a period; also the scope of
/// the lease issuance and revocation hold.
pub fn certificates(period: impl Display) -> String {
    format!("{CERTIFICATES}/period={period}")
}

/// `certificates/period=P/version=NNNN`.
pub fn certificates_version(period: impl Display, version: u32) -> String {
    format!("{}/version={version:04}", certificates(period))
}

/// `records/date=D/`: one day's sealed batches, every node.
pub fn records_of_day(date: impl Display) -> String {
    format!("{RECORDS}/date={date}/")
}

/// `ledger/node=N`: the scope of the lease a writer of node N's chain holds.
pub fn node_lease(node_id: &str) -> String {
    format!("ledger/node={node_id}")
}

/// Whether `path` is a run's scratch (`runs/.../staging/...`): the only objects a run
/// deletes once its version is published.
pub fn is_staging(path: &str) -> bool {
    path.strip_prefix(RUNS)
        .is_some_and(|p| p.starts_with('/') && p.contains("/staging/"))
}

/// The outputs directory (`emissions/period=P/version=V/`) of the version whose
/// manifest is `manifest` (`runs/period=P/version=V/manifest.json`).
pub fn outputs_of_manifest(manifest: &str) -> Option<String> {
    manifest
        .strip_prefix(RUNS)?
        .strip_prefix('/')?
        .strip_suffix("/manifest.json")
        .map(|version| format!("{EMISSIONS}/{version}/"))
}

/// Whether `path` is a credential status list (`certificates/.../status/<list>.jwt`),
/// the one kind of object that is rewritten (a revocation sets a bit and re-signs it).
pub fn is_status_list(path: &str) -> bool {
    path.strip_prefix(CERTIFICATES)
        .is_some_and(|p| p.starts_with('/') && p.contains("/status/") && p.ends_with(".jwt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            manifest("2026-10", 3),
            "runs/period=2026-10/version=0003/manifest.json"
        );
        assert_eq!(
            shard_staging("2026-10", "ab", 1, 4),
            "runs/period=2026-10/staging/ab/shard=1-of-4"
        );
        assert_eq!(
            rows_of_day("2026-10", 1, "2026-10-02"),
            "emissions/period=2026-10/version=0001/rows/date=2026-10-02/"
        );
        assert_eq!(
            aggregate("2026-10", 12, "model_day"),
            "emissions/period=2026-10/version=0012/aggregates/model_day.parquet"
        );
        assert_eq!(
            certificates_version("2026-10", 2),
            "certificates/period=2026-10/version=0002"
        );
        assert_eq!(records_of_day("2026-10-01"), "records/date=2026-10-01/");
        assert_eq!(node_lease("n1"), "ledger/node=n1");
        assert!(is_staging("runs/period=2026-10/staging/ab/shard=0-of-2/x"));
        assert!(!is_staging("runsx/staging/a") && !is_staging("emissions/staging/a"));
        assert_eq!(
            outputs_of_manifest("runs/period=2026-10/version=0002/manifest.json").as_deref(),
            Some("emissions/period=2026-10/version=0002/")
        );
        assert_eq!(outputs_of_manifest("runs/x.json"), None);
        assert!(is_status_list(
            "certificates/period=2026-10/version=0001/status/inferences.jwt"
        ));
        assert!(!is_status_list(
            "certificates/period=2026-10/version=0001/index.json"
        ));
    }
}
