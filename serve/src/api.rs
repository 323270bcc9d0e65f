//! The read API: run versions and their manifests, and the stored certificate of an
//! inference (legacy JWS, or the W3C VC by content negotiation).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gco_credentials::vc::Format;
use gco_pipelines::manifest::RunManifest;
use gco_pipelines::{Period, certify, lookup};
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;
use crate::negotiate::{self, Offer};

/// Media type of a compact JWS (RFC 7515 section 9.2.1): the legacy certificate.
pub const JOSE: &str = "application/jose";
/// Media type of a VC secured with JOSE (VC-JOSE-COSE).
pub const VC_JWT: &str = "application/vc+jwt";
/// Media type of a VC 2.0 credential with an embedded proof (VC Data Model 2.0).
pub const VC: &str = "application/vc";

/// One version of a period, as `/api/v1/runs` lists it.
#[derive(Debug, Serialize)]
pub struct VersionSummary {
    pub version: u32,
    /// RFC 3339: what the ledger, registry and grid cache held when it ran.
    pub as_of: String,
    /// SHA-256 of the stored manifest bytes (what `/api/v1/runs/{period}/{version}`
    /// answers, and its `ETag`).
    pub manifest_sha256: String,
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct PeriodRuns {
    pub period: String,
    /// Oldest first; the last one is the period's current figures.
    pub versions: Vec<VersionSummary>,
}

#[derive(Debug, Serialize)]
pub struct Runs {
    /// Oldest period first.
    pub runs: Vec<PeriodRuns>,
}

/// Every published manifest of the store: (period, version) -> path.
async fn manifests(
    state: &AppState,
    period: Option<Period>,
) -> Result<BTreeMap<(String, u32), String>, ApiError> {
    let prefix = match period {
        Some(p) => format!("{}/", gco_ledger::layout::runs(p)),
        None => format!("{}/", gco_ledger::layout::RUNS),
    };
    let mut out = BTreeMap::new();
    for m in state.store().list(&prefix).await? {
        let path = m.location.to_string();
        let field = |key: &str| path.split('/').find_map(|s| s.strip_prefix(key));
        if let (Some(p), Some(v), true) = (
            field("period="),
            field("version=").and_then(|v| v.parse::<u32>().ok()),
            path.ends_with("/manifest.json"),
        ) && path == gco_ledger::layout::manifest(p, v)
        {
            out.insert((p.to_string(), v), path);
        }
    }
    Ok(out)
}

/// Reads and checks one stored manifest; its bytes are answered as stored.
async fn read_manifest(
    state: &AppState,
    period: &str,
    version: u32,
    path: &str,
) -> Result<(bytes::Bytes, RunManifest), ApiError> {
    let bytes = state.store().get(path).await?;
    let m = RunManifest::from_slice_at(path, &bytes, period, version)
        .map_err(gco_pipelines::PipelineError::from)?;
    Ok((bytes, m))
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// `GET /api/v1/runs`: every period's versions.
pub async fn runs(State(state): State<AppState>) -> Result<axum::Json<Runs>, ApiError> {
    let mut by_period: BTreeMap<String, Vec<VersionSummary>> = BTreeMap::new();
    for ((period, version), path) in manifests(&state, None).await? {
        let (bytes, m) = read_manifest(&state, &period, version, &path).await?;
        by_period
            .entry(period.clone())
            .or_default()
            .push(VersionSummary {
                version,
                as_of: m.as_of,
                manifest_sha256: sha256_hex(&bytes),
                url: format!("/api/v1/runs/{period}/{version}"),
            });
    }
    Ok(axum::Json(Runs {
        runs: by_period
            .into_iter()
            .map(|(period, versions)| PeriodRuns { period, versions })
            .collect(),
    }))
}

fn parse_period(s: &str) -> Result<Period, ApiError> {
    Ok(Period::parse(s)?)
}

/// `GET /api/v1/runs/{period}/{version}`: the stored manifest, byte for byte (its
/// SHA-256 is the `ETag`), after checking it parses as the typed manifest of that
/// period and version.
pub async fn run(
    State(state): State<AppState>,
    Path((period, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let p = parse_period(&period)?;
    let v: u32 = version
        .parse()
        .map_err(|_| ApiError::bad_request(format!("version {version:?} is not a number")))?;
    let all = manifests(&state, Some(p)).await?;
    let Some(path) = all.get(&(p.to_string(), v)) else {
        let known: Vec<String> = all.keys().map(|(_, v)| v.to_string()).collect();
        return Err(ApiError::not_found(if known.is_empty() {
            format!("no run of {p} (run it with `gco run --period {p}`)")
        } else {
            format!("{p} has no version {v} (versions: {})", known.join(", "))
        }));
    };
    let (bytes, _) = read_manifest(&state, &p.to_string(), v, path).await?;
    let etag = format!("\"{}\"", sha256_hex(&bytes));
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::ETAG, etag),
        ],
        bytes,
    )
        .into_response())
}

/// The stored credentials of an inference in the newest period that has any (in that
/// period's latest credential version): (period, version, [(format, id, document)]).
async fn find(
    state: &AppState,
    inference_id: &str,
) -> Result<Option<(String, u32, Vec<(String, String, String)>)>, ApiError> {
    let versions = certify::latest_credential_versions(state.store(), None).await?;
    for (period, v) in versions.iter().rev() {
        let hits = lookup::lookup_inference(
            state.store(),
            &certify::version_prefix(period, *v),
            inference_id,
        )
        .await?;
        if !hits.is_empty() {
            return Ok(Some((period.clone(), *v, hits)));
        }
    }
    Ok(None)
}

fn no_credential(inference_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no stored credential for inference {inference_id:?}: the id is unknown, or its \
         month has not been run and issued yet (`gco vc issue --granularity inference`)"
    ))
}

fn document(period: &str, version: u32, media: &'static str, doc: String) -> Response {
    let mut r = (StatusCode::OK, doc).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    h.insert(header::VARY, HeaderValue::from_static("accept"));
    if let Ok(v) = HeaderValue::from_str(&format!("{period}/{version}")) {
        h.insert("x-gco-run", v);
    }
    r
}

/// `GET /api/v1/certificate/{inference_id}`: the legacy RS256 JWS certificate.
pub async fn certificate(
    State(state): State<AppState>,
    Path(inference_id): Path<String>,
) -> Result<Response, ApiError> {
    let Some((period, version, hits)) = find(&state, &inference_id).await? else {
        return Err(no_credential(&inference_id));
    };
    let legacy = Format::Legacy.as_str();
    match hits.into_iter().find(|(f, _, _)| f == legacy) {
        Some((_, _, doc)) => Ok(document(&period, version, JOSE, doc)),
        None => Err(ApiError::not_found(format!(
            "inference {inference_id:?} has W3C credentials ({period} version {version}) \
             but no legacy certificate (issued with `gco vc issue --format legacy`); \
             fetch /api/v1/certificate/{inference_id}/vc"
        ))),
    }
}

/// `GET /api/v1/certificate/{inference_id}/vc`: the W3C credential, `application/vc+jwt`
/// (VC-JOSE) or `application/vc` (Data Integrity, eddsa-jcs-2022) as the `Accept`
/// header prefers; without a preference, the Data Integrity form.
pub async fn certificate_vc(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(inference_id): Path<String>,
) -> Result<Response, ApiError> {
    let offers = [
        Offer {
            media: VC,
            also: &[
                "application/vc+ld+json",
                "application/ld+json",
                "application/json",
            ],
        },
        Offer {
            media: VC_JWT,
            also: &["application/jwt"],
        },
    ];
    let accept = headers
        .get(header::ACCEPT)
        .map(|v| v.to_str().unwrap_or(""))
        .unwrap_or("*/*");
    let ranked = negotiate::rank(accept, &offers).map_err(ApiError::bad_request)?;
    if ranked.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            format!("Accept {accept:?}: this resource is served as {VC} or {VC_JWT}"),
        ));
    }
    let Some((period, version, hits)) = find(&state, &inference_id).await? else {
        return Err(no_credential(&inference_id));
    };
    for media in ranked {
        let format = if media == VC_JWT {
            Format::VcJwt
        } else {
            Format::VcDi
        };
        if let Some((_, _, doc)) = hits.iter().find(|(f, _, _)| f == format.as_str()) {
            return Ok(document(&period, version, media, doc.clone()));
        }
    }
    Err(ApiError::not_found(format!(
        "inference {inference_id:?} has no credential ({period} version {version}) in a \
         format the Accept header allows ({accept:?})"
    )))
}
