//! Accepting a sealed batch from outside the node (`gco serve`'s ingestion gateway):
//! the batch is checked completely before anything is written (format, schema, seal,
//! every record hash, Merkle root, signature against the registry, key validity) and
//! placed in the node's chain against what the store holds; then it is written
//! create-only under its deterministic name, under the node's lease so that two
//! gateways (or a gateway and `gco ledger import`) never extend one chain at once.

use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::batch::{read_seal_only, seal_from_metadata};
use crate::error::{LedgerError, Result};
use crate::hash::to_hex;
use crate::lease::{Lease, LeaseOptions};
use crate::registry::Registry;
use crate::seal::{GENESIS, Seal};
use crate::store::{PutOutcome, Store, batch_path, parse_batch_path, validate_node_id};
use crate::verify::{Problem, check_object};

/// Where a refused body is named in its problems before its seal gives it a path.
pub const REQUEST_BODY: &str = "request body";

/// What became of a submitted batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written at `path`.
    Created { path: String, seal: Box<Seal> },
    /// The store already holds these very bytes at `path` (a retry).
    AlreadyPresent { path: String, seal: Box<Seal> },
    /// The store holds a different object at `path`.
    Conflict { path: String },
    /// The batch does not verify or does not extend its node's chain.
    Refused { problems: Vec<Problem> },
}

/// Checks `bytes` as a sealed batch and stores it create-only when it holds
/// (see the module documentation). Store failures are errors; everything wrong with
/// the batch is an [`Outcome::Refused`] with the verifier's problem codes.
pub async fn accept_batch(store: &Store, bytes: Bytes, lease: &LeaseOptions) -> Result<Outcome> {
    let seal = match seal_of(&bytes) {
        Ok(s) => s,
        Err(p) => return Ok(Outcome::Refused { problems: vec![p] }),
    };
    let path = batch_path(&seal);
    let registry = Registry::load(store).await?;
    let check = {
        let (path, bytes) = (path.clone(), bytes.clone());
        tokio::task::spawn_blocking(move || check_object(&path, bytes, &registry))
            .await
            .map_err(|e| LedgerError::Input(format!("the batch check failed: {e}")))?
    };
    if !check.problems.is_empty() {
        return Ok(Outcome::Refused {
            problems: check.problems,
        });
    }
    let lease = Lease::acquire(store, &crate::layout::node_lease(&seal.node_id), lease).await?;
    let placed = async {
        match store.get(&path).await {
            Ok(existing) if existing == bytes => {
                return Ok(Outcome::AlreadyPresent {
                    path: path.clone(),
                    seal: Box::new(seal.clone()),
                });
            }
            Ok(_) => return Ok(Outcome::Conflict { path: path.clone() }),
            Err(LedgerError::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        if let Some(problem) = chain_problem(store, &path, &seal).await? {
            return Ok(Outcome::Refused {
                problems: vec![problem],
            });
        }
        lease.check().await?;
        Ok(match store.put_create(&path, bytes.clone()).await {
            Ok(PutOutcome::Created) => Outcome::Created {
                path: path.clone(),
                seal: Box::new(seal.clone()),
            },
            Ok(PutOutcome::AlreadyPresent) => Outcome::AlreadyPresent {
                path: path.clone(),
                seal: Box::new(seal.clone()),
            },
            Err(LedgerError::Conflict { .. }) => Outcome::Conflict { path: path.clone() },
            Err(e) => return Err(e),
        })
    }
    .await;
    let released = lease.release().await;
    let outcome = placed?;
    released?;
    Ok(outcome)
}

/// The seal in the footer of `bytes`, with a node id that is safe in a path.
fn seal_of(bytes: &Bytes) -> std::result::Result<Seal, Problem> {
    let problem = |code: &'static str, message: String| Problem {
        object: REQUEST_BODY.to_string(),
        row: None,
        code,
        message,
    };
    let decoded = crate::guard::decode(REQUEST_BODY, || {
        ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
            .map_err(|e| problem("not_parquet", format!("not a readable Parquet file: {e}")))
            .and_then(|b| seal_from_metadata(b.metadata()).map_err(|(c, why)| problem(c, why)))
    });
    let seal = match decoded {
        Ok(r) => r?,
        Err(why) => return Err(problem("not_parquet", why)),
    };
    if let Err(why) = validate_node_id(&seal.node_id) {
        return Err(problem("bad_seal", format!("seal node id: {why}")));
    }
    if chrono::NaiveDate::parse_from_str(&seal.date, "%Y-%m-%d").is_err() {
        return Err(problem(
            "bad_seal",
            "seal date is not YYYY-MM-DD".to_string(),
        ));
    }
    if seal.seq_first < 0 || seal.seq_last < seal.seq_first {
        return Err(problem(
            "bad_seal",
            format!(
                "sequence range {}..{} is not a range of non-negative numbers",
                seal.seq_first, seal.seq_last
            ),
        ));
    }
    Ok(seal)
}

/// Whether `seal` extends its node's chain as the store holds it: no stored batch of
/// the node overlaps its sequence numbers, and its `prev_batch_hash` is the hash of the
/// stored batch ending just before it (genesis for sequence 0). A predecessor not yet
/// stored is a gap: a node delivers its batches oldest first.
async fn chain_problem(store: &Store, path: &str, seal: &Seal) -> Result<Option<Problem>> {
    let problem = |code: &'static str, message: String| {
        Some(Problem {
            object: path.to_string(),
            row: None,
            code,
            message,
        })
    };
    let (first, last) = (seal.seq_first, seal.seq_last);
    let mut predecessor: Option<(String, u64)> = None;
    for meta in store.list(crate::layout::RECORDS).await? {
        let stored = meta.location.to_string();
        let Some(loc) = parse_batch_path(&stored).filter(|l| l.node_id == seal.node_id) else {
            continue;
        };
        let Some((s_first, s_last)) = loc.seq_range() else {
            continue;
        };
        // Sequence numbers are non-negative in a sealed batch (the check above holds).
        let (f, l) = (first as u64, last as u64);
        if s_first <= l && f <= s_last {
            let other = read_seal_only(store, &stored, meta.size).await?;
            let (code, what) = if other.prev_batch_hash == seal.prev_batch_hash {
                ("chain_fork", "a second successor of the same batch")
            } else {
                ("chain_overlap", "a replayed or overlapping batch")
            };
            return Ok(problem(
                code,
                format!(
                    "sequence {first}..{last} overlaps the stored {stored} ({s_first}..{s_last}): {what}"
                ),
            ));
        }
        if f > 0 && s_last == f - 1 {
            predecessor = Some((stored, meta.size));
        }
    }
    if first == 0 {
        return Ok((seal.prev_batch_hash != to_hex(&GENESIS))
            .then(|| {
                problem(
                    "chain_broken_link",
                    "the node's first batch (sequence 0) must follow genesis (64 zeros)"
                        .to_string(),
                )
            })
            .flatten());
    }
    let Some((prev_path, size)) = predecessor else {
        return Ok(problem(
            "chain_gap",
            format!(
                "the store holds no batch of node {} ending at sequence {}: deliver the node's earlier batches first",
                seal.node_id,
                first - 1
            ),
        ));
    };
    let prev = read_seal_only(store, &prev_path, size).await?;
    Ok((prev.batch_hash != seal.prev_batch_hash)
        .then(|| {
            problem(
                "chain_broken_link",
                format!("prev_batch_hash does not match the hash of {prev_path}"),
            )
        })
        .flatten())
}
