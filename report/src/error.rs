//! The report crate's error type: a [`Kind`] with a stable code, a message that says
//! what failed and where, and the error underneath as its `source`.

use std::fmt::Display;

/// What kind of failure, with a stable code ([`Kind::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request cannot be done as asked (a period, a model without inferences).
    Usage,
    /// No run to report from.
    NotFound,
    /// A run's outputs changed after it, or predate what the report needs.
    Inconsistent,
    /// The output path already holds something else.
    Exists,
    /// A package or its signature does not check.
    Invalid,
    /// A template or its data does not render.
    Render,
}

impl Kind {
    /// The stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Usage => "usage",
            Kind::NotFound => "not_found",
            Kind::Inconsistent => "inconsistent",
            Kind::Exists => "exists",
            Kind::Invalid => "invalid",
            Kind::Render => "render",
        }
    }
}

/// Errors raised by the report crate.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A failure of the reports themselves.
    #[error("{message}")]
    Failed { kind: Kind, message: String },
    /// What was being done when `source` failed.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<ReportError>,
    },
    #[error(transparent)]
    Pipeline(#[from] gco_pipelines::PipelineError),
    #[error(transparent)]
    Ledger(#[from] gco_ledger::LedgerError),
    #[error(transparent)]
    Credentials(#[from] gco_credentials::Error),
    #[error(transparent)]
    Config(#[from] gco_config::ConfigError),
    #[error(transparent)]
    Pdf(#[from] gco_pdf::PdfError),
    #[error(transparent)]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error(transparent)]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Zip(#[from] zip::result::ZipError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Utf8(#[from] std::str::Utf8Error),
}

/// Result alias for the report crate.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;

impl ReportError {
    /// A failure of `kind` with its message.
    pub fn new(kind: Kind, message: impl Display) -> Self {
        ReportError::Failed {
            kind,
            message: message.to_string(),
        }
    }

    /// The stable code: the kind of the innermost error gco raised, else the code of
    /// the library error underneath.
    pub fn code(&self) -> &'static str {
        match self {
            ReportError::Failed { kind, .. } => kind.code(),
            ReportError::Context { source, .. } => source.code(),
            ReportError::Pipeline(e) => e.code(),
            ReportError::Ledger(e) => e.code(),
            ReportError::Credentials(e) => e.code(),
            ReportError::Config(e) => e.code(),
            ReportError::Pdf(e) => e.code(),
            ReportError::Arrow(_) => "parquet",
            ReportError::Parquet(_) => "parquet",
            ReportError::Csv(_) => "csv",
            ReportError::Zip(_) => "zip",
            ReportError::Json(_) => "json",
            ReportError::Io(_) => "io",
            ReportError::Utf8(_) => "malformed",
        }
    }
}

/// A CSV writer's buffer that could not be flushed: its I/O error.
impl<W> From<csv::IntoInnerError<W>> for ReportError {
    fn from(e: csv::IntoInnerError<W>) -> Self {
        ReportError::Io(e.into_error())
    }
}

gco_error::context_traits!(ReportError, Kind);

/// The crate's error type, as [`gco_error::fail!`] names it.
pub(crate) type Error = ReportError;
pub(crate) use gco_error::{fail, failure};
