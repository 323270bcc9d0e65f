//! `gco serve`: the HTTP service over a gco store. It keeps no database of its own: it
//! reads what the batch runs wrote (run manifests, stored credentials) and hosts what
//! verifiers fetch (the issuer's DID document). Routes and formats: docs/serve.md.
//!
//! ```text
//! GET /healthz                                  the process answers
//! GET /readyz                                   the store answers
//! GET /metrics                                  Prometheus (OpenMetrics) metrics
//! GET /api/v1/runs                              every period's versions
//! GET /api/v1/runs/{period}/{version}           a version's manifest, as stored
//! GET /api/v1/certificates?period=&node=&format=&limit=&cursor=   a page of them
//! GET /api/v1/certificate/{inference_id}        the legacy JWS certificate
//! GET /api/v1/certificate/{inference_id}/vc     the W3C credential (Accept: vc / vc+jwt)
//! GET /.well-known/did.json                     the issuer's did:web document
//! GET /ns/carbon/v1                             gco's JSON-LD context
//! GET /schemas/emissions-credential/v1.json     the credentials' JSON Schema
//! GET /status/{period}/{version}/{list}         a Bitstring Status List credential
//! GET /api/v1/model/{model_id}/emissions?from=&to=   a model's figures, daily series
//! GET /api/v1/compliance/export?period=         a month's certificates as CSV
//! POST /credentials/verify, /presentations/verify   VC-API verification (scope read)
//! POST /credentials/verify, /presentations/verify   VC-API verification (scope read)
//! POST /credentials/issue                       VC-API issuance (scope admin)
//! POST /api/v1/batches                          the ingestion gateway (scope ingest)
//! GET /api/v1/nodes/{node_id}/chain             a node's chain head and keys (ingest)
//! ```
//!
//! The read API needs a key of scope `read` (unless `public_read`), the gateway one of
//! scope `ingest`; what verifiers fetch never needs one ([`access`]).

pub mod access;
pub mod analytics;
pub mod api;
pub mod error;
pub mod ingest;
pub mod keys;
pub mod metrics;
pub mod negotiate;
pub mod openapi;
pub mod tls;
pub mod vcapi;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use gco_ledger::Store;

use crate::access::{Access, AccessOptions, Guard};
use crate::error::ApiError;
use crate::keys::{Caller, Scope};

/// Media type of a DID document in its JSON representation (DID Core section 6.2).
pub const DID_JSON: &str = "application/did+json";

/// What the server serves besides the store, and how it guards it.
#[derive(Debug, Clone)]
pub struct Options {
    /// The issuer's DID document (the `did.json` of `gco issuer init --did-web`),
    /// served at `/.well-known/did.json`.
    pub did_document: Option<Bytes>,
    /// The issuer's signing key for `POST /credentials/issue` (`--issuer-dir`).
    pub issuer: Option<Arc<gco_credentials::issuer::Signer>>,
    pub access: AccessOptions,
    /// Origins allowed to call the API from a browser; empty: no CORS headers.
    pub cors_origins: Vec<HeaderValue>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            did_document: None,
            issuer: None,
            access: AccessOptions::default(),
            cors_origins: Vec::new(),
            max_body_bytes: 64 << 20,
        }
    }
}

/// The state every handler reads.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    options: Options,
    metrics: metrics::Metrics,
    /// Resolves the issuer's keys for the VC-API: the hosted DID document, did:key.
    resolver: gco_credentials::issuer::Resolver,
}

impl AppState {
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// The service's routes over `store`. Reads the store's API keys first (a server
/// that cannot read them does not start) and rereads them every
/// `options.access.key_refresh` in a background task.
pub async fn router(store: Store, options: Options) -> Result<Router, gco_ledger::LedgerError> {
    let access = Arc::new(Access::load(&store, options.access.clone()).await?);
    let refresher = (access.clone(), store.clone());
    tokio::spawn(async move {
        let (access, store) = refresher;
        let mut tick = tokio::time::interval(access.options().key_refresh);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = access.refresh(&store).await {
                tracing::warn!(code = e.code(), error = %e, "rereading the API keys failed; the previous ones stay in force");
            }
        }
    });
    let state = AppState {
        inner: Arc::new(Inner {
            store,
            metrics: metrics::Metrics::default(),
            resolver: vcapi::resolver(options.did_document.as_deref()),
            options,
        }),
    };
    let guard = |needed| {
        middleware::from_fn_with_state(
            Guard {
                access: access.clone(),
                needed,
            },
            access::guard,
        )
    };
    // What verifiers fetch, and the probes: never behind a key.
    let open = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/.well-known/did.json", get(did_document))
        .route(CONTEXT_PATH, get(context))
        .route(SCHEMA_PATH, get(schema))
        .route("/status/{period}/{version}/{list}", get(api::status_list))
        .route("/openapi.json", get(openapi::document));
    let read = Router::new()
        .route("/api/v1/runs", get(api::runs))
        .route("/api/v1/runs/{period}/{version}", get(api::run))
        .route("/api/v1/certificates", get(api::certificates))
        .route("/api/v1/certificate/{inference_id}", get(api::certificate))
        .route(
            "/api/v1/certificate/{inference_id}/vc",
            get(api::certificate_vc),
        )
        .route(
            "/api/v1/model/{model_id}/emissions",
            get(analytics::model_emissions),
        )
        .route(
            "/api/v1/compliance/export",
            get(analytics::compliance_export),
        )
        .route("/credentials/verify", post(vcapi::verify_credential))
        .route("/presentations/verify", post(vcapi::verify_presentation))
        .route_layer(guard(Scope::Read));
    let admin = Router::new()
        .route("/credentials/issue", post(vcapi::issue_credential))
        .route_layer(guard(Scope::Admin));
    let ingest = Router::new()
        .route("/api/v1/batches", post(ingest::post_batch))
        .route("/api/v1/nodes/{node_id}/chain", get(ingest::node_chain))
        .route_layer(guard(Scope::Ingest));
    let max_body = state.inner.options.max_body_bytes;
    let cors = state.inner.options.cors_origins.clone();
    let mut app = open
        .merge(read)
        .merge(admin)
        .merge(ingest)
        .route_layer(middleware::from_fn_with_state(state.clone(), access_log))
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state);
    if !cors.is_empty() {
        app = app.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(cors)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
                .max_age(std::time::Duration::from_secs(600)),
        );
    }
    Ok(app)
}

/// Serves `router` on `listener` (HTTPS when `tls` is given) until `shutdown`
/// completes, then finishes the requests in flight (graceful shutdown).
pub async fn serve(
    listener: std::net::TcpListener,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    match tls {
        None => {
            axum::serve(tokio::net::TcpListener::from_std(listener)?, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(config) => {
            let handle = axum_server::Handle::new();
            let on_signal = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                on_signal.graceful_shutdown(None);
            });
            axum_server::tls_rustls::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(router.into_make_service())
                .await
        }
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

/// `GET /metrics`: OpenMetrics text.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus metrics", content_type = "application/openmetrics-text", body = String)))]
async fn metrics_text(State(state): State<AppState>) -> Response {
    let mut r = state.inner.metrics.encode().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "the process answers", content_type = "text/plain", body = String)))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the store answers a listing (of the registry: small on any store).
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses((status = 200, description = "the store answers", content_type = "text/plain", body = String),
        (status = 503, description = "the store does not answer", body = crate::error::ErrorBody)))]
async fn readyz(State(state): State<AppState>) -> Response {
    match state.store().list(gco_ledger::layout::REGISTRY).await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(code = e.code(), error = %e, "not ready: the store does not answer");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the store does not answer",
            )
            .into_response()
        }
    }
}

#[utoipa::path(get, path = "/.well-known/did.json", tag = "hosting",
    responses((status = 200, description = "the issuer's DID document", content_type = "application/did+json", body = Object),
        (status = 404, description = "no DID document hosted", body = crate::error::ErrorBody)))]
async fn did_document(State(state): State<AppState>) -> Result<Response, ApiError> {
    let Some(doc) = state.inner.options.did_document.clone() else {
        return Err(ApiError::not_found(
            "this server hosts no DID document (start it with --did-document FILE)",
        ));
    };
    let mut r = doc.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(DID_JSON));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(r)
}

/// The path of gco's JSON-LD context in its URL (`gco_credentials::vc::GCO_CONTEXT`):
/// a server on the context's host, or a mirror, answers it.
pub const CONTEXT_PATH: &str = "/ns/carbon/v1";
/// The path of the credentials' JSON Schema in its URL (`vc::SCHEMA_ID`).
pub const SCHEMA_PATH: &str = "/schemas/emissions-credential/v1.json";
/// docs/credentials/context-v1.jsonld, as the credentials' context URL serves it.
const CONTEXT: &[u8] = include_bytes!("../../docs/credentials/context-v1.jsonld");
/// docs/credentials/schema-v1.json.
const SCHEMA: &[u8] = include_bytes!("../../docs/credentials/schema-v1.json");

/// A static document a verifier fetches: immutable per URL (a new version gets a new
/// URL), so cacheable for a day.
fn static_document(body: &'static [u8], media: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    r
}

#[utoipa::path(get, path = "/ns/carbon/v1", tag = "hosting",
    responses((status = 200, description = "gco's JSON-LD context", content_type = "application/ld+json", body = Object)))]
async fn context() -> Response {
    static_document(CONTEXT, "application/ld+json")
}

#[utoipa::path(get, path = "/schemas/emissions-credential/v1.json", tag = "hosting",
    responses((status = 200, description = "the credentials' JSON Schema", content_type = "application/schema+json", body = Object)))]
async fn schema() -> Response {
    static_document(SCHEMA, "application/schema+json")
}

async fn unknown_route(State(state): State<AppState>, req: Request) -> ApiError {
    state
        .inner
        .metrics
        .count(req.method().as_str(), "unmatched", 404);
    tracing::info!(target: "gco_serve::access", method = %req.method(), route = %"unmatched", status = 404, "request");
    ApiError::not_found(format!("no route {} {}", req.method(), req.uri().path()))
}

/// One `access` event per request: method, route (the pattern, not the path: ids
/// stay out of the log), status and latency.
async fn access_log(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(req).await;
    let elapsed = started.elapsed();
    // The key's id (never its secret) when the request presented a valid one.
    let key = response
        .extensions()
        .get::<Caller>()
        .map(|c| c.key_id.clone())
        .unwrap_or_default();
    state.inner.metrics.observe(
        method.as_str(),
        &route,
        response.status().as_u16(),
        elapsed.as_secs_f64(),
    );
    tracing::info!(
        target: "gco_serve::access",
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        key = %key,
        micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    response
}
