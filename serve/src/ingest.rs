//! The ingestion gateway: `POST /api/v1/batches` takes a sealed batch (the Parquet
//! object a collector writes), verifies it completely and places it in its node's
//! chain before storing it create-only (`gco_ledger::accept`). A node delivering
//! through the gateway holds an `ingest` API key, never object-store credentials.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use gco_ledger::Problem;
use gco_ledger::accept::{Outcome, accept_batch};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorDetail, WriteErrors};
use crate::keys::Caller;

/// Media type of a sealed batch (Apache Parquet's registered type).
pub const PARQUET: &str = "application/vnd.apache.parquet";

/// What the gateway answers for a stored (or already stored) batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stored {
    /// The object's path in the store.
    pub path: String,
    pub node_id: String,
    pub seq_first: i64,
    pub seq_last: i64,
    pub records: i64,
    pub energy_mj: i64,
    pub batch_hash: String,
    /// `true` when this request wrote it, `false` when the store already held it.
    pub created: bool,
}

/// A problem as the gateway reports it (the verifier's codes, docs/ledger-format.md).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemOut {
    #[schema(value_type = String)]
    pub code: &'static str,
    pub row: Option<u64>,
    pub message: String,
}

impl From<Problem> for ProblemOut {
    fn from(p: Problem) -> Self {
        ProblemOut {
            code: p.code,
            row: p.row,
            message: p.message,
        }
    }
}

/// The 422 answer: every problem found.
#[derive(Debug, Serialize, ToSchema)]
pub struct Refused {
    pub error: ErrorDetail,
    pub problems: Vec<ProblemOut>,
}

/// `POST /api/v1/batches`: 201 created, 200 already present (same bytes), 409 a
/// different object under that name, 422 with the problems found, 413 over the body
/// limit.
#[utoipa::path(post, path = "/api/v1/batches", tag = "ingestion",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "one sealed batch: the Parquet object a collector writes (any content type is read as its bytes; the collector sends application/vnd.apache.parquet)"),
    responses(
        (status = 201, description = "verified and stored", body = Stored),
        (status = 200, description = "the store already held these bytes", body = Stored),
        (status = 409, description = "a different object has its name", body = ErrorBody),
        (status = 422, description = "the batch does not verify", body = Refused),
        WriteErrors),
    security(("bearer" = [])))]
pub async fn post_batch(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|r| {
        ApiError::new(
            r.status(),
            "bad_body",
            format!("reading the request body: {}", r.body_text()),
        )
    })?;
    let key = caller.map(|c| c.0.key_id).unwrap_or_default();
    let lease = gco_ledger::LeaseOptions::new(
        gco_ledger::LeaseOptions::owner_of_this_process("gco serve (ingestion gateway)"),
        std::time::Duration::from_secs(30),
    );
    let outcome = accept_batch(state.store(), body, &lease).await?;
    let metrics = &state.inner.metrics;
    Ok(match outcome {
        Outcome::Created { path, seal } => {
            metrics.ingested("created");
            tracing::info!(target: "gco_serve::audit", key = %key, node = %seal.node_id, seq_first = seal.seq_first, seq_last = seal.seq_last, records = seal.record_count, "batch stored");
            stored(StatusCode::CREATED, path, &seal, true)
        }
        Outcome::AlreadyPresent { path, seal } => {
            metrics.ingested("present");
            stored(StatusCode::OK, path, &seal, false)
        }
        Outcome::Conflict { path } => {
            metrics.ingested("conflict");
            tracing::warn!(target: "gco_serve::audit", key = %key, path = %path, "batch refused: a different object has its name");
            ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("the store holds a different object at {path}; nothing was written"),
            )
            .into_response()
        }
        Outcome::Refused { problems } => {
            metrics.ingested("refused");
            let codes: Vec<&str> = problems.iter().map(|p| p.code).collect();
            tracing::warn!(target: "gco_serve::audit", key = %key, problems = ?codes, "batch refused");
            let out: Vec<ProblemOut> = problems.into_iter().map(ProblemOut::from).collect();
            let first = out.first().map(|p| p.code).unwrap_or("unverified");
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(Refused {
                    error: ErrorDetail {
                        code: "batch_refused".to_string(),
                        message: format!(
                            "the batch does not verify ({first}); nothing was written"
                        ),
                    },
                    problems: out,
                }),
            )
                .into_response()
        }
    })
}

fn stored(status: StatusCode, path: String, seal: &gco_ledger::Seal, created: bool) -> Response {
    (
        status,
        Json(Stored {
            path,
            node_id: seal.node_id.clone(),
            seq_first: seal.seq_first,
            seq_last: seal.seq_last,
            records: seal.record_count,
            energy_mj: seal.energy_mj,
            batch_hash: seal.batch_hash.clone(),
            created,
        }),
    )
        .into_response()
}

/// What `GET /api/v1/nodes/{node_id}/chain` answers: where the node's chain stands in
/// the store, and the keys registered for it, so that a collector delivering through
/// the gateway can continue its chain and check its key without store access.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeChain {
    pub node_id: String,
    /// One past the highest sequence number stored for the node.
    pub next_seq: u64,
    /// The hash of the node's last stored batch (64 zeros before the first), hex.
    pub prev_batch_hash: String,
    /// Key ids registered for the node and not revoked.
    pub keys: Vec<String>,
}

/// `GET /api/v1/nodes/{node_id}/chain` (scope ingest).
#[utoipa::path(get, path = "/api/v1/nodes/{node_id}/chain", tag = "ingestion",
    params(("node_id" = String, Path)),
    responses((status = 200, description = "the node's chain head and keys", body = NodeChain), WriteErrors),
    security(("bearer" = [])))]
pub async fn node_chain(
    State(state): State<AppState>,
    axum::extract::Path(node_id): axum::extract::Path<String>,
) -> Result<Json<NodeChain>, ApiError> {
    gco_ledger::store::validate_node_id(&node_id)
        .map_err(|why| ApiError::bad_request(format!("node id: {why}")))?;
    let head = gco_ledger::batch::chain_head(state.store(), &node_id).await?;
    let registry = gco_ledger::Registry::load(state.store()).await?;
    let keys = registry
        .keys()
        .iter()
        .filter(|k| k.node_id == node_id && k.revoked_at.is_none())
        .map(|k| k.public_key.key_id().to_string())
        .collect();
    Ok(Json(NodeChain {
        node_id,
        next_seq: head.next_seq,
        prev_batch_hash: gco_ledger::hash::to_hex(&head.prev_batch_hash),
        keys,
    }))
}
