//! The read API: run versions and their manifests, and the stored certificate of an
//! inference (legacy JWS, or the W3C VC by content negotiation).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gco_credentials::vc::Format;
use gco_pipelines::lookup::Found;
use gco_pipelines::manifest::{self, RunManifest};
use gco_pipelines::{Period, certify, lookup};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ReadErrors};
use crate::negotiate::{self, Offer};

/// Media type of a compact JWS (RFC 7515 section 9.2.1): the legacy certificate.
pub const JOSE: &str = "application/jose";
/// Media type of a VC secured with JOSE (VC-JOSE-COSE).
pub const VC_JWT: &str = "application/vc+jwt";
/// Media type of a VC 2.0 credential with an embedded proof (VC Data Model 2.0).
pub const VC: &str = "application/vc";

/// One version of a period, as `/api/v1/runs` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionSummary {
    pub version: u32,
    /// RFC 3339: what the ledger, registry and grid cache held when it ran.
    pub as_of: String,
    /// SHA-256 of the stored manifest bytes (what `/api/v1/runs/{period}/{version}`
    /// answers, and its `ETag`).
    pub manifest_sha256: String,
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodRuns {
    pub period: String,
    /// Oldest first; the last one is the period's current figures.
    pub versions: Vec<VersionSummary>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Runs {
    /// Oldest period first.
    pub runs: Vec<PeriodRuns>,
}

/// `GET /api/v1/runs`: every period's versions.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs",
    responses((status = 200, description = "every published run version", body = Runs), ReadErrors),
    security((), ("bearer" = [])))]
pub async fn runs(State(state): State<AppState>) -> Result<axum::Json<Runs>, ApiError> {
    let mut by_period: BTreeMap<String, Vec<VersionSummary>> = BTreeMap::new();
    for (period, version) in manifest::versions(state.store(), None).await?.into_keys() {
        let run = certify::load_run(state.store(), period, Some(version)).await?;
        by_period
            .entry(period.to_string())
            .or_default()
            .push(VersionSummary {
                version,
                as_of: run.manifest.as_of,
                manifest_sha256: run.manifest_sha256,
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

/// `GET /api/v1/runs/{period}/{version}`: the stored manifest, byte for byte (its
/// SHA-256 is the `ETag`), after checking it parses as the typed manifest of that
/// period and version.
#[utoipa::path(get, path = "/api/v1/runs/{period}/{version}", tag = "runs",
    params(("period" = String, Path, description = "YYYY-MM"), ("version" = String, Path, description = "the version number")),
    responses((status = 200, description = "the stored manifest (docs/pipeline.md)", content_type = "application/json", body = Object), ReadErrors),
    security((), ("bearer" = [])))]
pub async fn run(
    State(state): State<AppState>,
    Path((period, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let p = Period::parse(&period)?;
    let v: u32 = version
        .parse()
        .map_err(|_| ApiError::bad_request(format!("version {version:?} is not a number")))?;
    let all = manifest::versions(state.store(), Some(p)).await?;
    let Some(path) = all.get(&(p, v)) else {
        let known: Vec<String> = all.keys().map(|(_, v)| v.to_string()).collect();
        return Err(ApiError::not_found(if known.is_empty() {
            format!("no run of {p} (run it with `gco run --period {p}`)")
        } else {
            format!("{p} has no version {v} (versions: {})", known.join(", "))
        }));
    };
    let bytes = state.store().get(path).await?;
    RunManifest::from_slice_at(path, &bytes, &p.to_string(), v)
        .map_err(gco_pipelines::PipelineError::from)?;
    let etag = format!("\"{}\"", certify::sha256_hex(&bytes));
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::ETAG, etag),
        ],
        bytes,
    )
        .into_response())
}

/// The inference's stored credentials, or 404 with why there are none.
async fn stored(state: &AppState, inference_id: &str) -> Result<Found, ApiError> {
    lookup::find_inference(state.store(), None, inference_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no stored credential for inference {inference_id:?}: the id is unknown, or \
                 its month has not been run and issued yet (`gco vc issue --granularity \
                 inference`)"
            ))
        })
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
#[utoipa::path(get, path = "/api/v1/certificate/{inference_id}", tag = "certificates",
    params(("inference_id" = String, Path)),
    responses((status = 200, description = "the legacy certificate, a compact JWS", content_type = "application/jose", body = String), ReadErrors),
    security((), ("bearer" = [])))]
pub async fn certificate(
    State(state): State<AppState>,
    Path(inference_id): Path<String>,
) -> Result<Response, ApiError> {
    let Found {
        period,
        version,
        credentials,
    } = stored(&state, &inference_id).await?;
    let legacy = Format::Legacy.as_str();
    match credentials.into_iter().find(|(f, _, _)| f == legacy) {
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
#[utoipa::path(get, path = "/api/v1/certificate/{inference_id}/vc", tag = "certificates",
    params(("inference_id" = String, Path)),
    responses(
        (status = 200, description = "the credential in the form Accept prefers", content(
            (Object = "application/vc"),
            (String = "application/vc+jwt"))),
        (status = 406, description = "Accept allows neither form", body = ErrorBody),
        ReadErrors),
    security((), ("bearer" = [])))]
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
    let Found {
        period,
        version,
        credentials,
    } = stored(&state, &inference_id).await?;
    for media in ranked {
        let format = if media == VC_JWT {
            Format::VcJwt
        } else {
            Format::VcDi
        };
        if let Some((_, _, doc)) = credentials.iter().find(|(f, _, _)| f == format.as_str()) {
            return Ok(document(&period, version, media, doc.clone()));
        }
    }
    Err(ApiError::not_found(format!(
        "inference {inference_id:?} has no credential ({period} version {version}) in a \
         format the Accept header allows ({accept:?})"
    )))
}

/// Most items a page of `/api/v1/certificates` holds.
pub const MAX_LIMIT: usize = 1000;
/// Items a page holds when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `offset`: a page at an offset reads `offset + limit` rows, so deep
/// pages go by `cursor`.
pub const MAX_OFFSET: usize = 10_000;

/// The query of `/api/v1/certificates`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `YYYY-MM`; default: the newest period with credentials.
    pub period: Option<String>,
    pub node: Option<String>,
    /// `vc-jwt`, `vc-di` or `legacy`.
    pub format: Option<String>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items (after the filters) to skip from the start of the listing, 0 to 10,000;
    /// not with `cursor`. Deeper pages: follow `next_cursor`.
    #[param(minimum = 0, maximum = 10000)]
    pub offset: Option<usize>,
}

/// A page of `/api/v1/certificates`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListPage {
    pub period: String,
    /// The credential version listed (a cursor stays on its version).
    pub version: u32,
    pub items: Vec<ListItem>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListItem {
    pub inference_id: String,
    /// `vc-jwt`, `vc-di` or `legacy`.
    pub format: String,
    /// The credential's id.
    pub id: String,
    pub node_id: String,
    pub seq: u64,
    pub status_index: u64,
    /// Where the credential is fetched.
    pub url: String,
}

/// A cursor: `PERIOD.VERSION.FILE.ROW`, pinned to the version it started on.
fn cursor_text(period: &str, version: u32, at: lookup::Position) -> String {
    format!("{period}.{version}.{}.{}", at.file, at.row)
}

fn parse_cursor(s: &str) -> Result<(Period, u32, lookup::Position), ApiError> {
    let bad = || ApiError::bad_request(format!("cursor {s:?} is not one this server gave"));
    let parts: Vec<&str> = s.split('.').collect();
    let [period, version, file, row] = parts[..] else {
        return Err(bad());
    };
    Ok((
        Period::parse(period).map_err(|_| bad())?,
        version.parse().map_err(|_| bad())?,
        lookup::Position {
            file: file.parse().map_err(|_| bad())?,
            row: row.parse().map_err(|_| bad())?,
        },
    ))
}

/// `GET /api/v1/certificates`: the per-inference credentials of a period's latest
/// credential version, in stored order, a page at a time.
#[utoipa::path(get, path = "/api/v1/certificates", tag = "certificates", params(ListQuery),
    responses((status = 200, description = "a page of credentials", body = ListPage), ReadErrors),
    security((), ("bearer" = [])))]
pub async fn certificates(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<ListPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit {limit}: between 1 and {MAX_LIMIT}"
        )));
    }
    let format = q
        .format
        .as_deref()
        .map(Format::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let offset = q.offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::bad_request(format!(
            "offset {offset}: at most {MAX_OFFSET}; page deeper with next_cursor"
        )));
    }
    if offset > 0 && q.cursor.is_some() {
        return Err(ApiError::bad_request(
            "offset and cursor together: give one",
        ));
    }
    let (period, version, from) = match &q.cursor {
        Some(c) => {
            let (p, v, at) = parse_cursor(c)?;
            if q.period
                .as_deref()
                .is_some_and(|want| want != p.to_string())
            {
                return Err(ApiError::bad_request("cursor of another period"));
            }
            (p.to_string(), v, at)
        }
        None => {
            let period = q.period.as_deref().map(Period::parse).transpose()?;
            let versions = certify::latest_credential_versions(state.store(), period).await?;
            let Some((p, v)) = versions.iter().next_back() else {
                return Err(ApiError::not_found(match period {
                    Some(p) => format!(
                        "no credentials of {p} (issue them with `gco vc issue --period {p}`)"
                    ),
                    None => {
                        "no credentials in the store (issue them with `gco vc issue`)".to_string()
                    }
                }));
            };
            (p.clone(), *v, lookup::Position::default())
        }
    };
    let page = lookup::list_inferences(
        state.store(),
        &certify::version_prefix(&period, version),
        from,
        offset + limit,
        |l| {
            q.node.as_deref().is_none_or(|n| n == l.node_id)
                && format.is_none_or(|f| f.as_str() == l.format)
        },
    )
    .await?;
    Ok(axum::Json(ListPage {
        items: page
            .items
            .into_iter()
            .skip(offset)
            .map(|l| ListItem {
                url: certificate_url(&l),
                inference_id: l.inference_id,
                format: l.format,
                id: l.id,
                node_id: l.node_id,
                seq: l.seq,
                status_index: l.status_index,
            })
            .collect(),
        next_cursor: page.next.map(|at| cursor_text(&period, version, at)),
        period,
        version,
    }))
}

/// Where a listed credential is fetched: the legacy route for the legacy format, else
/// the VC route (the id percent-encoded as one path segment).
fn certificate_url(l: &lookup::Listed) -> String {
    let id = percent_encoding::utf8_percent_encode(&l.inference_id, SEGMENT);
    if l.format == Format::Legacy.as_str() {
        format!("/api/v1/certificate/{id}")
    } else {
        format!("/api/v1/certificate/{id}/vc")
    }
}

/// What a path segment must escape (RFC 3986 `pchar` keeps unreserved, sub-delims, `:`
/// and `@`; we escape the sub-delims too).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `GET /status/{period}/{version}/{list}`: a version's Bitstring Status List
/// credential, at the URL the credentials name in `statusListCredential`
/// (`https://HOST/status/PERIOD/VERSION/LIST`), as stored (`application/vc+jwt`). It is
/// re-signed when a credential is revoked: `Cache-Control: no-cache` with its SHA-256
/// as `ETag`, so a verifier revalidates and never trusts a stale list.
#[utoipa::path(get, path = "/status/{period}/{version}/{list}", tag = "hosting",
    params(("period" = String, Path), ("version" = String, Path), ("list" = String, Path, description = "inferences or aggregates")),
    responses(
        (status = 200, description = "the status list credential", content_type = "application/vc+jwt", body = String),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub async fn status_list(
    State(state): State<AppState>,
    Path((period, version, list)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let path = certify::status_list_path(&format!("status/{period}/{version}/{list}"))?;
    let prefix = path.rsplit_once('/').map(|(dir, _)| dir).unwrap_or(&path);
    if !state
        .store()
        .list(prefix)
        .await?
        .iter()
        .any(|m| m.location.as_ref() == path)
    {
        return Err(ApiError::not_found(format!(
            "no status list {list} of {period} version {version}"
        )));
    }
    let bytes = state.store().get(&path).await?;
    let etag = format!("\"{}\"", certify::sha256_hex(&bytes));
    Ok((
        [
            (header::CONTENT_TYPE, VC_JWT.to_string()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
            (header::ETAG, etag),
        ],
        bytes,
    )
        .into_response())
}
