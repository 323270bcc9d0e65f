//! The gco ledger: the contract every other part of gco reads and writes.
//!
//! The pipeline of this crate, in the order data flows through it:
//!
//! 1. [`record`]: one [`Record`] per inference (or per idle/overhead interval), with
//!    typed units and its Arrow schema.
//! 2. [`hash`]: the canonical byte encoding of a record, its domain-separated leaf hash
//!    and the RFC 6962 Merkle tree over a batch.
//! 3. [`keys`]: node keys (Ed25519, ECDSA P-256, RSA) behind the [`Signer`] trait, public
//!    keys and key ids.
//! 4. [`seal`] and [`batch`]: a batch of one node's records becomes one Parquet file whose
//!    footer carries the signed seal (Merkle root, sequence range, previous batch hash).
//! 5. [`store`]: object storage chosen by URL, the partition layout, create-only writes.
//!    [`lease`]: exclusive leases in the store, so that concurrent writers never interleave.
//! 6. [`registry`]: the append-only node registry (keys, zones, sites, validity windows).
//! 7. [`verify`]: recomputes everything above and reports every problem it finds,
//!    including records stored twice ([`unique`]).
//! 8. [`import`] and [`stats`]: bringing existing telemetry in, and summarising the ledger.
//!
//! The format is specified byte for byte in `docs/ledger-format.md`.

pub mod accept;
pub mod batch;
pub mod error;
pub mod guard;
pub mod hash;
pub mod import;
pub mod keys;
pub mod layout;
pub mod lease;
pub mod record;
pub mod registry;
pub mod sample;
pub mod seal;
pub mod stats;
pub mod store;
pub mod time;
pub mod unique;
pub mod units;
pub mod verify;

pub use batch::{ChainHead, ChainWriter, SealedBatch};
pub use error::{LedgerError, Result};
pub use keys::{Algorithm, KeyFileSigner, PublicKey, Signer};
pub use lease::{Lease, LeaseOptions};
pub use record::{Measurement, Millijoules, Record, RecordKind};
pub use registry::Registry;
pub use seal::Seal;
pub use store::{PutOutcome, Store};
pub use verify::{Problem, VerifyOptions, VerifyReport};

/// The ledger schema version written into every batch footer.
pub const SCHEMA_VERSION: u32 = 1;
