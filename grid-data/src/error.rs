//! The grid-data error type.

/// Errors raised by the grid-data crate.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    #[error("bundled data file {file} is malformed at line {line}: {reason}")]
    BundledData {
        file: &'static str,
        line: u64,
        reason: String,
    },
    #[error("unknown zone {zone:?}; closest: {}", closest.join(", "))]
    UnknownZone { zone: String, closest: Vec<String> },
    #[error("grid cache: {0}")]
    Cache(String),
    #[error(transparent)]
    Ledger(#[from] gco_ledger::LedgerError),
    #[error("Parquet error in {path}: {source}")]
    Parquet {
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("Arrow error: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// Result alias for the grid-data crate.
pub type Result<T, E = GridError> = std::result::Result<T, E>;

impl GridError {
    /// The stable machine-readable code (docs/errors.md).
    pub fn code(&self) -> &'static str {
        match self {
            GridError::BundledData { .. } => "bundled_data",
            GridError::UnknownZone { .. } => "unknown_zone",
            GridError::Cache(_) => "grid_cache",
            GridError::Ledger(e) => e.code(),
            GridError::Parquet { .. } | GridError::Arrow(_) => "parquet",
        }
    }
}
