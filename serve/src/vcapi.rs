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

/// The hosted DID document (parsed once, when the router is built) and did:key.
pub(crate) fn resolver(did_document: Option<&[u8]>) -> Resolver {
    Resolver::new(
        did_document
            .and_then(|d| serde_json::from_slice(d).ok())
            .into_iter()
            .collect(),
    )
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
    let v = verify_one(&state, &vc, &state.inner.resolver).await?;
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
    let resolver = &state.inner.resolver;
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
        let v = verify_one(&state, c, resolver).await?;
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

/// `POST /credentials/issue`'s body (VC-API `IssueCredentialRequest`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// An unsigned VC 2.0 credential whose `issuer` is this server's issuer.
    #[schema(value_type = Object)]
    pub credential: Value,
    pub options: Option<IssueOptions>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueOptions {
    /// `vc-di` (an `eddsa-jcs-2022` proof, the default) or `vc-jwt` (an enveloped
    /// VC-JOSE credential).
    pub format: Option<String>,
}

/// `POST /credentials/issue`'s answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Issued {
    #[schema(value_type = Object)]
    pub verifiable_credential: Value,
}

/// Whether `v` is an RFC 3339 date-time; its instant.
fn instant(v: &Value, what: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| ApiError::bad_request(format!("{what} is not an RFC 3339 date-time"))),
        _ => Err(ApiError::bad_request(format!("{what} must be a string"))),
    }
}

/// The VC 2.0 data model's rules for what is submitted (section 4), and this server's:
/// it signs only as its own issuer, and only what has no proof yet.
fn conforming(c: &Value, issuer: &str) -> Result<(), ApiError> {
    let Some(o) = c.as_object() else {
        return Err(ApiError::bad_request("credential must be a JSON object"));
    };
    let contexts = o.get("@context").and_then(Value::as_array);
    if contexts.and_then(|a| a.first()).and_then(Value::as_str)
        != Some(gco_credentials::vc::VC_CONTEXT)
    {
        return Err(ApiError::bad_request(format!(
            "@context must be an array starting with {:?}",
            gco_credentials::vc::VC_CONTEXT
        )));
    }
    if contexts.is_some_and(|a| a.iter().any(|c| !(c.is_string() || c.is_object()))) {
        return Err(ApiError::bad_request(
            "@context entries must be URLs or objects",
        ));
    }
    let types_ok = o.get("type").and_then(Value::as_array).is_some_and(|t| {
        t.iter().all(Value::is_string) && t.iter().any(|t| t == "VerifiableCredential")
    });
    if !types_ok {
        return Err(ApiError::bad_request(
            "type must be an array of strings including \"VerifiableCredential\"",
        ));
    }
    let given = match o.get("issuer") {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(Value::Object(i)) => i.get("id").and_then(Value::as_str),
        _ => None,
    };
    if given != Some(issuer) {
        return Err(ApiError::bad_request(format!(
            "issuer must be this server's issuer {issuer:?} (a string, or an object with that id)"
        )));
    }
    let subject_ok = match o.get("credentialSubject") {
        Some(Value::Object(s)) => !s.is_empty(),
        Some(Value::Array(a)) => {
            !a.is_empty()
                && a.iter()
                    .all(|s| s.as_object().is_some_and(|s| !s.is_empty()))
        }
        _ => false,
    };
    if !subject_ok {
        return Err(ApiError::bad_request(
            "credentialSubject must be a non-empty object or array of objects",
        ));
    }
    if let Some(id) = o.get("id")
        && !id
            .as_str()
            .is_some_and(|s| s.contains(':') && !s.contains(char::is_whitespace))
    {
        return Err(ApiError::bad_request("id must be a URL"));
    }
    let from = instant(o.get("validFrom").unwrap_or(&Value::Null), "validFrom")?;
    let until = instant(o.get("validUntil").unwrap_or(&Value::Null), "validUntil")?;
    if let (Some(f), Some(u)) = (from, until)
        && f > u
    {
        return Err(ApiError::bad_request("validFrom is after validUntil"));
    }
    if o.contains_key("proof") {
        return Err(ApiError::bad_request("the credential already has a proof"));
    }
    if o.contains_key("credentialStatus") {
        return Err(ApiError::bad_request(
            "credentialStatus: this server does not allocate status list entries for submitted credentials yet",
        ));
    }
    Ok(())
}

/// `POST /credentials/issue` (scope admin): signs a submitted VC 2.0 credential with the
/// issuer key the server was started with (`--issuer-dir`).
#[utoipa::path(post, path = "/credentials/issue", tag = "vc-api",
    request_body = IssueRequest,
    responses(
        (status = 201, description = "the signed credential", body = Issued),
        (status = 400, description = "the credential does not conform, or the request is malformed", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "this server holds no issuer key", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn issue_credential(
    State(state): State<AppState>,
    request: Result<Json<IssueRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Some(signer) = state.inner.options.issuer.as_ref() else {
        return Err(ApiError::not_found(
            "this server holds no issuer key (start it with --issuer-dir DIR)",
        ));
    };
    let req = body(request)?;
    conforming(&req.credential, &signer.issuer)?;
    let format = req
        .options
        .and_then(|o| o.format)
        .unwrap_or_else(|| "vc-di".to_string());
    let signed = match format.as_str() {
        "vc-di" => {
            if signer.key.public().default_alg() != gco_credentials::key::Alg::EdDSA {
                return Err(ApiError::bad_request(
                    "vc-di (eddsa-jcs-2022) needs an Ed25519 issuer key; ask for vc-jwt",
                ));
            }
            let created = now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            gco_credentials::di::sign(&req.credential, &signer.key, &signer.multikey_vm, &created)
                .map_err(|e| ApiError::bad_request(e.to_string()))?
        }
        "vc-jwt" => {
            let jws = gco_credentials::vc::sign_vc_jwt(signer, &req.credential)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            serde_json::json!({
                "@context": [gco_credentials::vc::VC_CONTEXT],
                "type": "EnvelopedVerifiableCredential",
                "id": format!("data:application/vc+jwt,{jws}"),
            })
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "options.format {other:?}: vc-di or vc-jwt"
            )));
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(Issued {
            verifiable_credential: signed,
        }),
    )
        .into_response())
}
