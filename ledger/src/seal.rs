//! The batch seal: what a batch's Parquet footer says about it, the signed payload
//! bytes and the batch hash that chains a node's batches together.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{LedgerError, Result};
use crate::hash::{Encoder, Hash32, from_hex, to_hex};
use crate::keys::{Algorithm, PublicKey};

/// Footer metadata key holding the seal as JSON.
pub const SEAL_KEY: &str = "gco.seal";
/// Footer metadata key holding the schema version.
pub const SCHEMA_VERSION_KEY: &str = "gco.schema_version";
/// Domain tag that opens every batch payload.
pub const BATCH_TAG: &str = "gco.batch.v1";
/// `prev_batch_hash` of a node's first batch.
pub const GENESIS: Hash32 = [0u8; 32];

/// The seal of one batch, as stored in the footer under [`SEAL_KEY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    pub schema_version: u32,
    pub node_id: String,
    /// Partition date (UTC) of every record in the batch, `YYYY-MM-DD`.
    pub date: String,
    pub seq_first: i64,
    pub seq_last: i64,
    pub record_count: i64,
    /// Sum of `energy_mj` over the batch.
    pub energy_mj: i64,
    /// Earliest `start` and latest `end` in the batch, UTC microseconds.
    pub start_min_us: i64,
    pub end_max_us: i64,
    /// RFC 6962 Merkle root over the records' leaf hashes, hex.
    pub merkle_root: String,
    /// `batch_hash` of the node's previous batch (64 zeros for the first), hex.
    pub prev_batch_hash: String,
    pub key_id: String,
    pub algorithm: Algorithm,
    /// SHA-256 of the payload bytes, hex. Redundant (recomputed by every verifier) but
    /// lets tools chain batches without re-encoding.
    pub batch_hash: String,
    /// Signature over the payload bytes, base64url without padding.
    pub signature: String,
}

impl Seal {
    /// The signed payload bytes (`docs/ledger-format.md`, "Batch payload").
    pub fn payload(&self) -> Result<Vec<u8>> {
        let root = parse_hash("merkle_root", &self.merkle_root)?;
        let prev = parse_hash("prev_batch_hash", &self.prev_batch_hash)?;
        let mut e = Encoder::default();
        e.str(BATCH_TAG);
        e.u32(self.schema_version);
        e.str(&self.node_id);
        e.str(&self.date);
        for v in [
            self.seq_first,
            self.seq_last,
            self.record_count,
            self.energy_mj,
            self.start_min_us,
            self.end_max_us,
        ] {
            e.i64(v);
        }
        e.bytes32(&root);
        e.bytes32(&prev);
        e.str(&self.key_id);
        e.str(self.algorithm.as_str());
        Ok(e.buf)
    }

    /// SHA-256 of the payload.
    pub fn compute_batch_hash(&self) -> Result<Hash32> {
        Ok(Sha256::digest(self.payload()?).into())
    }

    pub fn merkle_root_bytes(&self) -> Result<Hash32> {
        parse_hash("merkle_root", &self.merkle_root)
    }
    pub fn prev_hash_bytes(&self) -> Result<Hash32> {
        parse_hash("prev_batch_hash", &self.prev_batch_hash)
    }
    pub fn batch_hash_bytes(&self) -> Result<Hash32> {
        parse_hash("batch_hash", &self.batch_hash)
    }

    pub fn signature_bytes(&self) -> Result<Vec<u8>> {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&self.signature)
            .map_err(|e| LedgerError::Signature(format!("signature is not base64url: {e}")))
    }

    /// Checks the stored batch hash and the signature against `key`.
    pub fn verify_signature(&self, key: &PublicKey) -> Result<()> {
        if key.key_id() != self.key_id || key.algorithm() != self.algorithm {
            return Err(LedgerError::Signature(format!(
                "seal names key {} ({}), verifying key is {} ({})",
                self.key_id,
                self.algorithm,
                key.key_id(),
                key.algorithm()
            )));
        }
        key.verify(&self.payload()?, &self.signature_bytes()?)
    }

    /// The deterministic object name of this batch within its partition.
    pub fn object_name(&self) -> String {
        let short = self.batch_hash.get(..16).unwrap_or(&self.batch_hash);
        format!(
            "{:020}-{:020}-{short}.parquet",
            self.seq_first, self.seq_last
        )
    }

    pub fn to_json(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Self> {
        serde_json::from_str(s).map_err(|source| LedgerError::Json {
            what: format!("footer key {SEAL_KEY}"),
            source,
        })
    }
}

fn parse_hash(what: &str, s: &str) -> Result<Hash32> {
    from_hex(s)
        .ok_or_else(|| LedgerError::InvalidRecord(format!("{what} {s:?} is not 64 hex digits")))
}

/// Hex of the genesis hash.
pub fn genesis_hex() -> String {
    to_hex(&GENESIS)
}
