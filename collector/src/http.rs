//! The collector's HTTP faces: the span API (loopback) with `/metrics` and `/healthz`,
//! and the OpenAI-compatible reverse proxy that turns each request into a span.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::attribution::SpanError;
use crate::metrics::label;
use crate::runtime::{CallError, Handle};

/// Response header carrying the inference id (and request header to choose one).
pub const INFERENCE_ID_HEADER: &str = "x-gco-inference-id";
/// Largest request body the proxy buffers (prompts, images as base64...).
const MAX_REQUEST_BYTES: usize = 64 << 20;

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({"error": msg.to_string()}))).into_response()
}

fn call_error(e: CallError) -> Response {
    let status = match &e {
        CallError::Span(SpanError::Duplicate(_)) => StatusCode::CONFLICT,
        CallError::Span(SpanError::Unknown(_)) => StatusCode::NOT_FOUND,
        CallError::Span(_) => StatusCode::BAD_REQUEST,
        CallError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e)
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StartBody {
    inference_id: Option<String>,
    model: Option<String>,
    model_version: Option<String>,
    #[serde(default)]
    gpus: Vec<GpuRef>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum GpuRef {
    Index(u32),
    Id(String),
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EndBody {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

fn parse_json<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> Result<T, Box<Response>> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("request body: {e}"))))
}

async fn start_span(State(h): State<Handle>, body: Bytes) -> Response {
    let b: StartBody = match parse_json(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let gpus = b
        .gpus
        .into_iter()
        .map(|g| match g {
            GpuRef::Index(i) => i.to_string(),
            GpuRef::Id(s) => s,
        })
        .collect();
    match h
        .start(b.inference_id, b.model, b.model_version, gpus)
        .await
    {
        Ok((id, t)) => (
            StatusCode::CREATED,
            axum::Json(json!({"inference_id": id, "start": gco_ledger::time::format_utc(t)})),
        )
            .into_response(),
        Err(e) => call_error(e),
    }
}

async fn end_span(State(h): State<Handle>, Path(id): Path<String>, body: Bytes) -> Response {
    let b: EndBody = match parse_json(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match h
        .end(id.clone(), b.prompt_tokens, b.completion_tokens)
        .await
    {
        Ok(t) => axum::Json(json!({"inference_id": id, "end": gco_ledger::time::format_utc(t)}))
            .into_response(),
        Err(e) => call_error(e),
    }
}

async fn metrics(State(h): State<Handle>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics.render(),
    )
        .into_response()
}

/// The span API: `POST /v1/spans`, `POST /v1/spans/{id}/end`, `GET /metrics`, `GET /healthz`.
pub fn span_api(h: Handle) -> Router {
    Router::new()
        .route("/v1/spans", post(start_span))
        .route("/v1/spans/{id}/end", post(end_span))
        .route("/metrics", get(metrics))
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .with_state(h)
}

/// Proxy state.
#[derive(Clone)]
pub struct Proxy {
    pub handle: Handle,
    pub upstream: reqwest::Url,
    pub client: reqwest::Client,
    /// GPUs each proxied request runs on (empty: all the collector measures).
    pub gpus: Vec<String>,
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// Token usage from an OpenAI-style JSON object (`usage.prompt_tokens`, ...).
pub fn usage_of(v: &Value) -> Option<(Option<u64>, Option<u64>)> {
    let u = v.get("usage")?;
    let p = u.get("prompt_tokens").and_then(Value::as_u64);
    let c = u.get("completion_tokens").and_then(Value::as_u64);
    (p.is_some() || c.is_some()).then_some((p, c))
}

/// Watches a server-sent event stream for the final usage chunk.
#[derive(Default)]
pub struct SseUsage {
    line: Vec<u8>,
    pub usage: Option<(Option<u64>, Option<u64>)>,
}

impl SseUsage {
    pub fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b == b'\n' {
                self.line_done();
            } else if self.line.len() < 1 << 20 {
                self.line.push(b);
            }
        }
    }

    fn line_done(&mut self) {
        let line = std::mem::take(&mut self.line);
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        // Only chunks that mention usage are parsed: the rest pass untouched.
        if !data.windows(7).any(|w| w == b"\"usage\"") {
            return;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(data.trim_ascii())
            && let Some(u) = usage_of(&v)
        {
            self.usage = Some(u);
        }
    }
}

/// Ends the span when the response body is finished or dropped (client gone).
struct SpanGuard {
    handle: Handle,
    id: Option<String>,
    usage: SseUsage,
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let h = self.handle.clone();
            let (p, c) = self.usage.usage.unwrap_or((None, None));
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = h.end(id, p, c).await;
                });
            }
        }
    }
}

struct Watched<S> {
    inner: S,
    guard: Option<SpanGuard>,
}

impl<S> Stream for Watched<S>
where
    S: Stream<Item = reqwest::Result<Bytes>> + Unpin,
{
    type Item = reqwest::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let r = Pin::new(&mut self.inner).poll_next(cx);
        match &r {
            Poll::Ready(Some(Ok(b))) => {
                if let Some(g) = self.guard.as_mut() {
                    g.usage.feed(b);
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                self.guard.take();
            }
            Poll::Pending => {}
        }
        r
    }
}

async fn proxy_request(State(p): State<Proxy>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(e) => return error(StatusCode::PAYLOAD_TOO_LARGE, format!("request body: {e}")),
    };
    let mut url = p.upstream.clone();
    let base = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{base}{}", parts.uri.path()));
    url.set_query(parts.uri.query());
    // Only POSTs run inference; GETs (model lists, health) pass through untracked.
    let span = if parts.method == axum::http::Method::POST {
        let model = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("model").and_then(Value::as_str).map(str::to_string));
        let wanted = parts
            .headers
            .get(INFERENCE_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match p.handle.start(wanted, model, None, p.gpus.clone()).await {
            Ok((id, _)) => Some(id),
            Err(e) => return call_error(e),
        }
    } else {
        None
    };
    let mut rb = p.client.request(parts.method.clone(), url);
    for (k, v) in parts.headers.iter() {
        if !hop_by_hop(k) && k.as_str() != INFERENCE_ID_HEADER {
            rb = rb.header(k, v);
        }
    }
    let up = match rb.body(body).send().await {
        Ok(r) => r,
        Err(e) => {
            if let Some(id) = span {
                let _ = p.handle.end(id, None, None).await;
            }
            p.handle
                .metrics
                .proxy_requests
                .get_or_create(&label("status", "unreachable"))
                .inc();
            return error(
                StatusCode::BAD_GATEWAY,
                format!("upstream {}: {e}", p.upstream),
            );
        }
    };
    let status = up.status();
    p.handle
        .metrics
        .proxy_requests
        .get_or_create(&label("status", format!("{}xx", status.as_u16() / 100)))
        .inc();
    let mut headers = HeaderMap::new();
    for (k, v) in up.headers() {
        if !hop_by_hop(k) {
            headers.append(k.clone(), v.clone());
        }
    }
    if let Some(id) = &span
        && let Ok(v) = HeaderValue::from_str(id)
    {
        headers.insert(HeaderName::from_static(INFERENCE_ID_HEADER), v);
    }
    let streaming = up
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let mut resp = if streaming {
        let guard = span.map(|id| SpanGuard {
            handle: p.handle.clone(),
            id: Some(id),
            usage: SseUsage::default(),
        });
        Response::new(Body::from_stream(Watched {
            inner: Box::pin(up.bytes_stream()),
            guard,
        }))
    } else {
        let bytes = match up.bytes().await {
            Ok(b) => b,
            Err(e) => {
                if let Some(id) = span {
                    let _ = p.handle.end(id, None, None).await;
                }
                return error(StatusCode::BAD_GATEWAY, format!("upstream body: {e}"));
            }
        };
        if let Some(id) = span {
            let (pt, ct) = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| usage_of(&v))
                .unwrap_or((None, None));
            let _ = p.handle.end(id, pt, ct).await;
        }
        Response::new(Body::from(bytes))
    };
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// The reverse proxy: every path goes to the upstream.
pub fn proxy(p: Proxy) -> Router {
    Router::new().fallback(proxy_request).with_state(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_usage_across_chunk_boundaries() {
        let mut s = SseUsage::default();
        let stream = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,\"total_tokens\":46}}\r\n\r\n\
data: [DONE]\n\n";
        for c in stream.chunks(7) {
            s.feed(c);
        }
        assert_eq!(s.usage, Some((Some(12), Some(34))));
        let mut none = SseUsage::default();
        none.feed(b"data: {\"usage\": null}\n");
        assert_eq!(none.usage, None);
    }
}

/// The addresses the collector serves on.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    /// The span API and `/metrics`.
    pub span_api: std::net::SocketAddr,
    /// The OpenAI-compatible proxy, when one was asked for.
    pub proxy: Option<std::net::SocketAddr>,
}

/// Binds the span API (and `/metrics`) at `span_listen` and, with `proxy`, the proxy
/// at its listen address in front of its upstream; serves both on the current Tokio
/// runtime for as long as it runs. Errors name the address that could not be bound.
pub async fn serve(
    handle: Handle,
    span_listen: std::net::SocketAddr,
    proxy_to: Option<(std::net::SocketAddr, reqwest::Url)>,
) -> crate::error::Result<Listening> {
    use crate::error::Context as _;
    let api = tokio::net::TcpListener::bind(span_listen)
        .await
        .with_context(|| format!("binding the span API at {span_listen}"))?;
    let span_api_addr = api.local_addr()?;
    let api_app = span_api(handle.clone());
    tokio::spawn(async move { axum::serve(api, api_app).await });
    let mut proxy_addr = None;
    if let Some((listen, upstream)) = proxy_to {
        let l = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the proxy at {listen}"))?;
        proxy_addr = Some(l.local_addr()?);
        let app = proxy(Proxy {
            handle,
            upstream,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()?,
            gpus: Vec::new(),
        });
        tokio::spawn(async move { axum::serve(l, app).await });
    }
    Ok(Listening {
        span_api: span_api_addr,
        proxy: proxy_addr,
    })
}
