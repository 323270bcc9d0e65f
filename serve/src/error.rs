//! What a request that failed answers: an HTTP status and
//! `{"error": {"code", "message"}}`, with the stable codes of docs/errors.md. A
//! failure of the server itself (the store unreachable, a damaged object) is logged
//! with its whole chain and answered with its code only: the client learns that the
//! server failed, not the store's paths or credentials.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gco_error::Kind;
use gco_pipelines::PipelineError;
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

/// A request's failure.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    /// Shown to the client.
    message: String,
}

impl ApiError {
    /// A failure the client can act on (its message is shown).
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 404 with the reason.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, Kind::NotFound.code(), message)
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Kind::Usage.code(), message)
    }
}

impl ApiError {
    /// A library's error: its kind decides the status; a failure of the server itself
    /// (the store, a damaged object) is logged whole and answered with its code only.
    fn from_library(
        kind: Option<Kind>,
        code: &'static str,
        e: &(dyn std::error::Error + 'static),
    ) -> Self {
        match kind {
            Some(Kind::NotFound) => ApiError::not_found(e.to_string()),
            Some(Kind::Usage) => ApiError::bad_request(e.to_string()),
            _ => {
                let chain = std::iter::successors(Some(e), |e| e.source())
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(": ");
                tracing::error!(code, error = %chain, "request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code,
                    "the server could not read the store; its log says why",
                )
            }
        }
    }
}

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> Self {
        ApiError::from_library(e.kind(), e.code(), &e)
    }
}

impl From<gco_report::ReportError> for ApiError {
    fn from(e: gco_report::ReportError) -> Self {
        ApiError::from_library(e.kind(), e.code(), &e)
    }
}

impl From<gco_ledger::LedgerError> for ApiError {
    fn from(e: gco_ledger::LedgerError) -> Self {
        match &e {
            // Another writer holds the lease (or it was lost before the write): nothing
            // was written, the client retries. The holder's name stays in the log.
            gco_ledger::LedgerError::Busy { .. } | gco_ledger::LedgerError::LeaseLost { .. } => {
                tracing::warn!(code = e.code(), error = %e, "lease not held; the client is told to retry");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    e.code(),
                    "another writer holds this node's chain in the store; nothing was written, retry",
                )
            }
            _ => ApiError::from(PipelineError::from(e)),
        }
    }
}

/// The body of every failed request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code (docs/errors.md).
    pub code: String,
    /// What failed and what to do.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code.to_string(),
                    message: self.message,
                },
            }),
        )
            .into_response()
    }
}

/// The failures a guarded read route answers (OpenAPI).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    /// A malformed path value, query or header.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No API key, or not a valid one.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// A key of another scope.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Nothing there: the message says what to run.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The key's rate is used up (`Retry-After`).
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// The store failed; the log says why.
    #[response(status = 500)]
    Internal(ErrorBody),
}

/// The failures a write route answers besides its own (OpenAPI).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    #[response(status = 400)]
    BadRequest(ErrorBody),
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// A key of another scope, or a read-only server.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The body is over `max_body_bytes`.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    #[response(status = 429)]
    RateLimited(ErrorBody),
    #[response(status = 500)]
    Internal(ErrorBody),
    /// Another writer holds the node's lease: retry.
    #[response(status = 503)]
    Busy(ErrorBody),
}
