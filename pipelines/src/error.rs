//! The pipelines' error type. Every failure has a [`Kind`] with a stable code (what a
//! script or the binary's exit code keys on), a message that says what failed and
//! where, and the error it came from as its `source`, so the binary prints the whole
//! chain ("caused by: ...") as it did when these were `anyhow` errors.

use std::fmt::Display;

/// What kind of failure, with a stable code ([`Kind::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request cannot be done as asked (a flag, a period, a key the issuer lacks).
    Usage,
    /// What was asked for is not in the store (no run, no credential).
    NotFound,
    /// Stored objects disagree with each other or changed under the run; rerun.
    Inconsistent,
    /// A figure does not fit its integer type.
    Overflow,
    /// The ledger did not verify and the policy stops the run.
    Unverified,
    /// A credential's evidence does not hold against the ledger.
    Evidence,
    /// A stored object already records something else.
    Conflict,
    /// A remote service (a time-stamping authority) failed or refused.
    Remote,
    /// A broken invariant of gco itself (a thread that stopped, a lost row).
    Internal,
}

impl Kind {
    /// The stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Usage => "usage",
            Kind::NotFound => "not_found",
            Kind::Inconsistent => "inconsistent",
            Kind::Overflow => "overflow",
            Kind::Unverified => "unverified",
            Kind::Evidence => "evidence",
            Kind::Conflict => "conflict",
            Kind::Remote => "remote",
            Kind::Internal => "internal",
        }
    }
}

/// Errors raised by the pipelines crate.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A failure of the pipelines themselves.
    #[error("{message}")]
    Failed { kind: Kind, message: String },
    /// What was being done when `source` failed.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<PipelineError>,
    },
    #[error(transparent)]
    Ledger(#[from] gco_ledger::LedgerError),
    #[error(transparent)]
    Grid(#[from] gco_grid_data::GridError),
    #[error(transparent)]
    Credentials(#[from] gco_credentials::Error),
    #[error(transparent)]
    Config(#[from] gco_config::ConfigError),
    #[error(transparent)]
    Document(#[from] crate::document::DocumentError),
    #[error(transparent)]
    Polars(#[from] polars::error::PolarsError),
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error(transparent)]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Utf8(#[from] std::string::FromUtf8Error),
    #[error(transparent)]
    Time(#[from] chrono::ParseError),
    #[error(transparent)]
    Number(#[from] std::num::ParseIntError),
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

/// Result alias for the pipelines crate.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

impl PipelineError {
    /// A failure of `kind` with its message.
    pub fn new(kind: Kind, message: impl Display) -> Self {
        PipelineError::Failed {
            kind,
            message: message.to_string(),
        }
    }

    /// The stable code: the kind of the innermost error gco raised, else of the
    /// library error underneath (`ledger`, `grid`, `credentials`, `config` ...).
    pub fn code(&self) -> &'static str {
        match self {
            PipelineError::Failed { kind, .. } => kind.code(),
            PipelineError::Context { source, .. } => source.code(),
            PipelineError::Ledger(e) => e.code(),
            PipelineError::Grid(e) => e.code(),
            PipelineError::Credentials(e) => e.code(),
            PipelineError::Config(e) => e.code(),
            PipelineError::Document(e) => e.code(),
            PipelineError::Polars(_) => "dataframe",
            PipelineError::Parquet(_) | PipelineError::Arrow(_) => "parquet",
            PipelineError::Json(_) => "json",
            PipelineError::Io(_) => "io",
            PipelineError::Utf8(_) | PipelineError::Time(_) | PipelineError::Number(_) => {
                "malformed"
            }
            PipelineError::Task(_) => "internal",
        }
    }

    /// The kind, where gco raised the error itself.
    pub fn kind(&self) -> Option<Kind> {
        match self {
            PipelineError::Failed { kind, .. } => Some(*kind),
            PipelineError::Context { source, .. } => source.kind(),
            _ => None,
        }
    }
}

gco_error::context_traits!(PipelineError, Kind);

/// The crate's error type, as [`gco_error::fail!`] names it.
pub(crate) type Error = PipelineError;
pub(crate) use gco_error::{fail, failure};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_keeps_the_code_and_the_chain_of_its_source() {
        let inner: Result<()> = Err(PipelineError::new(Kind::Overflow, "1e30 mJ"));
        let e = inner.context("reading the month").unwrap_err();
        assert_eq!(e.code(), "overflow");
        assert_eq!(e.kind(), Some(Kind::Overflow));
        assert_eq!(e.to_string(), "reading the month");
        let source = std::error::Error::source(&e).map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("1e30 mJ"));
        let none: Option<u8> = None;
        let e = none.or_fail(Kind::NotFound, "no run").unwrap_err();
        assert_eq!((e.code(), e.to_string().as_str()), ("not_found", "no run"));
    }
}
