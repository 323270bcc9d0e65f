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
