//! The W3C CCG VC-API verification endpoints, over `gco_pipelines::verify` (the checks
//! of `gco vc verify`): signature against the hosted DID document or a did:key, issuer,
//! validity window, VC 2.0 context and schema, the record's inclusion proof,
//! revocation status from the store's status list, and the evidence chain down to the
//! node's signed batch in the store.
//!
//! - `POST /credentials/verify` `{"verifiableCredential": VC, "options": {...}}`
//! - `POST /presentations/verify` `{"verifiablePresentation": VP, "options": {...}}`
//!
//! A credential may be given as the Data Integrity JSON object, as an
//! `EnvelopedVerifiableCredential` (`id: "data:application/vc+jwt,<JWS>"`), or as the
//! compact JWS string (VC-JOSE or the legacy certificate). 200 answers
//! `{"checks", "warnings", "errors": []}`; a credential that does not verify is 400
//! with the same shape and its `errors` (code and message), as the VC-API describes;
//! a request that is not one (no credential, not JSON) is 400 `usage`; only the
//! store failing is a 5xx.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use gco_credentials::issuer::Resolver;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

/// A VC-API verification result.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    /// What held, in the order checked.
    pub checks: Vec<String>,
    /// What could not be checked (and why), never a failure.
    pub warnings: Vec<String>,
    pub errors: Vec<Problem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[schema(value_type = String)]
    pub code: &'static str,
    pub message: String,
}

/// `POST /credentials/verify`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyCredentialRequest {
    /// A Data Integrity credential, an `EnvelopedVerifiableCredential`, or a JWS.
    #[schema(value_type = Object)]
    pub verifiable_credential: Value,
    #[schema(value_type = Object)]
    pub options: Option<Value>,
}

/// `POST /presentations/verify`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyPresentationRequest {
    #[schema(value_type = Object)]
    pub verifiable_presentation: Value,
    #[schema(value_type = Object)]
    pub options: Option<Value>,
}

/// A 400 of the verification routes: a credential that failed, or not a request.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum VerifyRefusal {
    Failed(Verification),
    Malformed(ErrorBody),
}

/// Codes of a failure of the server, not of the credential.
const SERVER_CODES: [&str; 4] = ["store", "io", "internal", "parquet"];

/// The time a credential's validity is judged at: this request's.
#[allow(clippy::disallowed_methods)]
fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The compact text `gco_pipelines::verify` reads: a JWS string, the JWS of an
/// enveloped credential, or the JSON of a Data Integrity credential.
fn credential_text(v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Object(o)
            if o.get("type").and_then(Value::as_str) == Some("EnvelopedVerifiableCredential")
                || o.get("type")
                    .and_then(Value::as_array)
                    .is_some_and(|t| t.iter().any(|t| t == "EnvelopedVerifiableCredential")) =>
        {
            let id = o.get("id").and_then(Value::as_str).unwrap_or("");
            id.strip_prefix("data:application/vc+jwt,")
                .or_else(|| id.strip_prefix("data:application/jwt,"))
                .map(str::to_string)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "an EnvelopedVerifiableCredential's id must be data:application/vc+jwt,<JWS>",
                    )
                })
        }
        Value::Object(_) => Ok(v.to_string()),
        _ => Err(ApiError::bad_request(
            "verifiableCredential must be a credential object, an EnvelopedVerifiableCredential or a JWS string",
        )),
    }
}

/// Verifies one credential; `Err` only when the server itself failed.
async fn verify_one(
    state: &AppState,
    v: &Value,
    resolver: &Resolver,
) -> Result<Verification, ApiError> {
    let text = credential_text(v)?;
    match gco_pipelines::verify::verify_credential(
        &text,
        resolver,
        now(),
        None,
        Some(state.store()),
        false,
    )
    .await
    {
        Ok(ok) => Ok(Verification {
            checks: ok.checked,
            warnings: ok.not_checked,
            errors: Vec::new(),
        }),
        Err(e) if SERVER_CODES.contains(&e.code()) => Err(e.into()),
        Err(e) => Ok(Verification {
            checks: Vec::new(),
            warnings: Vec::new(),
            errors: vec![Problem {
                code: e.code(),
                message: format!("{e}"),
            }],
        }),
    }
}

fn resolver(state: &AppState) -> Resolver {
    let docs = state
        .inner
        .options
        .did_document
        .as_ref()
        .and_then(|d| serde_json::from_slice(d).ok())
        .into_iter()
        .collect();
    Resolver::new(docs)
}

fn answer(v: Verification) -> Response {
    let status = if v.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, Json(v)).into_response()
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(v)| v).map_err(|r| {
        ApiError::bad_request(format!("not a verification request: {}", r.body_text()))
    })
}

/// `POST /credentials/verify`.
#[utoipa::path(post, path = "/credentials/verify", tag = "vc-api",
    request_body = VerifyCredentialRequest,
    responses(
        (status = 200, description = "the credential verified", body = Verification),
        (status = 400, description = "the credential failed a check, or the request is malformed", body = VerifyRefusal),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 500, body = ErrorBody)),
    security((), ("bearer" = [])))]
pub async fn verify_credential(
    State(state): State<AppState>,
    request: Result<Json<VerifyCredentialRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let vc = body(request)?.verifiable_credential;
    let v = verify_one(&state, &vc, &resolver(&state)).await?;
    Ok(answer(v))
}

/// `POST /presentations/verify`: every credential the presentation holds. gco issues
/// no presentation proofs yet: a presentation's own proof is reported as a warning,
/// not checked.
#[utoipa::path(post, path = "/presentations/verify", tag = "vc-api",
    request_body = VerifyPresentationRequest,
    responses(
        (status = 200, description = "every credential verified", body = Verification),
        (status = 400, description = "a credential failed a check, or the request is malformed", body = VerifyRefusal),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 500, body = ErrorBody)),
    security((), ("bearer" = [])))]
pub async fn verify_presentation(
    State(state): State<AppState>,
    request: Result<Json<VerifyPresentationRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let vp = body(request)?.verifiable_presentation;
    let is_vp = vp["type"] == "VerifiablePresentation"
        || vp["type"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "VerifiablePresentation"));
    if !is_vp {
        return Err(ApiError::bad_request(
            "verifiablePresentation's type must include \"VerifiablePresentation\"",
        ));
    }
    let credentials = match &vp["verifiableCredential"] {
        Value::Array(a) => a.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    };
    if credentials.is_empty() {
        return Err(ApiError::bad_request(
            "the presentation holds no verifiableCredential",
        ));
    }
    let resolver = resolver(&state);
    let mut out = Verification {
        checks: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    if !vp["proof"].is_null() {
        out.warnings.push(
            "the presentation's own proof (gco does not check presentation proofs yet)".into(),
        );
    }
    for (i, c) in credentials.iter().enumerate() {
        let v = verify_one(&state, c, &resolver).await?;
        out.checks
            .extend(v.checks.into_iter().map(|c| format!("credential {i}: {c}")));
        out.warnings.extend(
            v.warnings
                .into_iter()
                .map(|w| format!("credential {i}: {w}")),
        );
        out.errors.extend(v.errors.into_iter().map(|e| Problem {
            code: e.code,
            message: format!("credential {i}: {}", e.message),
        }));
    }
    Ok(answer(out))
}
