//! The collector's error type: a [`Kind`] with a stable code, a message that says
//! what failed and where, and the error underneath as its `source`.

use std::fmt::Display;

/// What kind of failure, with a stable code ([`Kind::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The collector was started in a way that cannot work (another node's spool, a
    /// different GPU set).
    Usage,
    /// The spool on disk is damaged or not a gco spool.
    Spool,
    /// The spool and the node's chain are out of step.
    Chain,
    /// The TPM failed or answered something unusable.
    Tpm,
    /// An address could not be bound.
    Bind,
    /// A broken invariant of gco itself (a thread that panicked).
    Internal,
}

impl Kind {
    /// The stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Usage => "usage",
            Kind::Spool => "spool",
            Kind::Chain => "chain",
            Kind::Tpm => "tpm",
            Kind::Bind => "bind",
            Kind::Internal => "internal",
        }
    }
}

/// Errors raised by the collector crate.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// A failure of the collector itself.
    #[error("{message}")]
    Failed { kind: Kind, message: String },
    /// What was being done when `source` failed.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<CollectorError>,
    },
    #[error(transparent)]
    Ledger(#[from] gco_ledger::LedgerError),
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),
    #[error(transparent)]
    Encoding(#[from] postcard::Error),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[cfg(feature = "tpm")]
    #[error(transparent)]
    Tpm(#[from] tss_esapi::Error),
}

/// Result alias for the collector crate.
pub type Result<T, E = CollectorError> = std::result::Result<T, E>;

impl CollectorError {
    /// A failure of `kind` with its message.
    pub fn new(kind: Kind, message: impl Display) -> Self {
        CollectorError::Failed {
            kind,
            message: message.to_string(),
        }
    }

    /// The stable code: the kind of the innermost error gco raised, else the code of
    /// the library error underneath.
    pub fn code(&self) -> &'static str {
        match self {
            CollectorError::Failed { kind, .. } => kind.code(),
            CollectorError::Context { source, .. } => source.code(),
            CollectorError::Ledger(e) => e.code(),
            CollectorError::Gpu(e) => e.code(),
            CollectorError::Encoding(_) => "spool",
            CollectorError::Http(_) => "http",
            CollectorError::Io(_) => "io",
            #[cfg(feature = "tpm")]
            CollectorError::Tpm(_) => "tpm",
        }
    }
}

gco_error::context_traits!(CollectorError, Kind);

/// The crate's error type, as [`gco_error::fail!`] names it.
pub(crate) type Error = CollectorError;
pub(crate) use gco_error::{fail, failure};
