use std::path::{Path, PathBuf};

/// Everything that can go wrong issuing or verifying a credential. Verification
/// failures say which check failed (`Invalid`), so a user can tell a changed claim from
/// a wrong key or a revoked credential.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("key: {0}")]
    Key(String),
    #[error("signature invalid: {0}")]
    Signature(String),
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(String),
    #[error("revoked: {0}")]
    Revoked(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    /// A short machine-readable code for `--json` output and the test scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Key(_) => "key",
            Error::Signature(_) => "bad_signature",
            Error::Malformed(_) => "malformed",
            Error::Invalid(_) => "invalid",
            Error::Revoked(_) => "revoked",
            Error::Io { .. } => "io",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn malformed(what: impl std::fmt::Display) -> Error {
    Error::Malformed(what.to_string())
}
