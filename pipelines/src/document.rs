//! What the JSON documents gco stores (run manifests, credentials indexes, revocation
//! records) share: one byte layout, and one way of being read back.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A stored document that cannot be used, naming the object and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not JSON, or a field missing or malformed (serde names the first).
    #[error("{path}: not a {what} gco can read: {source}")]
    Malformed {
        path: String,
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("{path}: missing field `{field}`")]
    Missing { path: String, field: &'static str },
    #[error("{path}: format {found:?}, this gco reads {expected:?}")]
    Format {
        path: String,
        found: String,
        expected: &'static str,
    },
    #[error("{path}: names period {period} version {version}, but it is stored as {expected}")]
    Misplaced {
        path: String,
        period: String,
        version: u32,
        expected: String,
    },
}

impl DocumentError {
    /// The stable machine-readable code (docs/errors.md).
    pub fn code(&self) -> &'static str {
        match self {
            DocumentError::Malformed { .. } => "document_malformed",
            DocumentError::Missing { .. } => "document_field_missing",
            DocumentError::Format { .. } => "document_format",
            DocumentError::Misplaced { .. } => "document_misplaced",
        }
    }
}

/// Parses the stored `what` at `path`, whose `format` (read by `format`) must be
/// `expected`.
pub(crate) fn parse<T: DeserializeOwned>(
    what: &'static str,
    path: &str,
    bytes: &[u8],
    expected: &'static str,
    format: impl Fn(&T) -> &str,
) -> Result<T, DocumentError> {
    let doc: T = serde_json::from_slice(bytes).map_err(|source| DocumentError::Malformed {
        path: path.to_string(),
        what,
        source,
    })?;
    if format(&doc) != expected {
        return Err(DocumentError::Format {
            path: path.to_string(),
            found: format(&doc).to_string(),
            expected,
        });
    }
    Ok(doc)
}

/// The stored bytes of a document: pretty JSON with every object's keys sorted
/// (through `serde_json::Value`, whose maps are ordered), the layout every stored gco
/// document has had, so that the same document gives the same bytes.
pub fn to_bytes<T: Serialize>(doc: &T) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec_pretty(&serde_json::to_value(doc)?)
}
