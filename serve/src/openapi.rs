//! The OpenAPI 3.1 document of the service, generated from the handlers' annotations
//! and the types they answer (utoipa), served at `/openapi.json`. `scripts/test` runs
//! schemathesis against a running server from it.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gco serve",
        description = "Verifiable carbon accounting for AI inference: certificates, runs, analytics, ingestion and verification over a gco store (docs/serve.md)",
        license(name = "Apache-2.0")
    ),
    paths(
        crate::healthz,
        crate::readyz,
        crate::metrics_text,
        crate::did_document,
        crate::context,
        crate::schema,
        document,
        crate::api::status_list,
        crate::api::runs,
        crate::api::run,
        crate::api::certificates,
        crate::api::certificate,
        crate::api::certificate_vc,
        crate::analytics::model_emissions,
        crate::analytics::compliance_export,
        crate::vcapi::verify_credential,
        crate::vcapi::verify_presentation,
        crate::vcapi::issue_credential,
        crate::ingest::post_batch,
        crate::ingest::node_chain,
    ),
    modifiers(&Bearer),
    tags(
        (name = "service", description = "probes and metrics"),
        (name = "hosting", description = "what verifiers fetch: never behind a key"),
        (name = "runs"),
        (name = "certificates"),
        (name = "analytics"),
        (name = "vc-api", description = "W3C CCG VC-API verification"),
        (name = "ingestion", description = "the gateway for nodes (scope ingest)"),
    )
)]
pub struct ApiDoc;

/// API keys: `Authorization: Bearer gco_<id>_<secret>`.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("gco API key")
                    .build(),
            ),
        );
    }
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
});

/// `GET /openapi.json`.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "this document (OpenAPI 3.1)", content_type = "application/json", body = Object)))]
pub async fn document() -> Response {
    let mut r = DOCUMENT.as_str().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
