//! The ledger's error type: every failure says what failed and where.

use std::path::PathBuf;

/// Errors raised by the ledger crate.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    #[error("key error: {0}")]
    Key(String),
    #[error("signature error: {0}")]
    Signature(String),
    #[error("store URL {url:?} is not usable: {reason}")]
    StoreUrl { url: String, reason: String },
    #[error("object store error at {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("object {path} already exists with different content; refusing to overwrite")]
    Conflict { path: String },
    #[error("Parquet error in {path}: {source}")]
    Parquet {
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("Arrow error: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("registry error: {0}")]
    Registry(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{scope} is in use by {owner} (its lease runs to {until}; waited {waited_s} s): another gco is writing there; retry when it is done, or wait longer with --lock-wait"
    )]
    Busy {
        scope: String,
        owner: String,
        until: String,
        waited_s: u64,
    },
    #[error(
        "the lease on {scope} (generation {generation}) was lost before committing: {why}; nothing was published, rerun the command"
    )]
    LeaseLost {
        scope: String,
        generation: u64,
        why: String,
    },
    #[error("input error: {0}")]
    Input(String),
    #[error("JSON error in {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Result alias for the ledger crate.
pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

impl LedgerError {
    /// The stable machine-readable code (docs/errors.md).
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::InvalidRecord(_) => "invalid_record",
            LedgerError::Key(_) => "key",
            LedgerError::Signature(_) => "bad_signature",
            LedgerError::StoreUrl { .. } => "store_url",
            LedgerError::Store { .. } => "store",
            LedgerError::Conflict { .. } => "conflict",
            LedgerError::Parquet { .. } | LedgerError::Arrow(_) => "parquet",
            LedgerError::Registry(_) => "registry",
            LedgerError::Io { .. } => "io",
            LedgerError::Busy { .. } => "busy",
            LedgerError::LeaseLost { .. } => "lease_lost",
            LedgerError::Input(_) => "input",
            LedgerError::Json { .. } => "json",
        }
    }
    pub(crate) fn store(path: impl std::fmt::Display, source: object_store::Error) -> Self {
        LedgerError::Store {
            path: path.to_string(),
            source,
        }
    }
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LedgerError::Io {
            path: path.into(),
            source,
        }
    }
}
