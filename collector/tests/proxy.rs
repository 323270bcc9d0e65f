//! The live collector with its OpenAI-compatible proxy in front of a local fake
//! upstream: JSON and streamed (SSE) responses, upstream errors, the span API, and the
//! records that reach the store.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gco_collector::engine::{Engine, EngineConfig};
use gco_collector::http::{INFERENCE_ID_HEADER, Proxy, proxy, span_api};
use gco_collector::metrics::Metrics;
use gco_collector::runtime::{RuntimeConfig, start};
use gco_collector::{AttributionConfig, SimGpus};
use gco_ledger::keys::KeyType;
use gco_ledger::{ChainHead, KeyFileSigner, Measurement, Record, Signer, Store};

async fn chat(body: String) -> Response {
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    if v["model"] == "broken" {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "{\"error\":\"model overloaded\"}",
        )
            .into_response();
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    if v["stream"] == true {
        let chunks = vec![
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n".to_string(),
            "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n".to_string(),
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":2,\"total_tokens\":23}}\n\n".to_string(),
            "data: [DONE]\n\n".to_string(),
        ];
        let s = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
        return (
            [(header::CONTENT_TYPE, "text/event-stream")],
            Body::from_stream(s),
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"hi\"}}],\"usage\":{\"prompt_tokens\":17,\"completion_tokens\":5,\"total_tokens\":22}}",
    )
        .into_response()
}

async fn serve(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

async fn read_store(store: &Store) -> Vec<Record> {
    let mut out = Vec::new();
    for m in store.list("records").await.unwrap() {
        let p = m.location.to_string();
        let bytes = store.get(&p).await.unwrap();
        out.extend(gco_ledger::batch::read_batch(&p, bytes).unwrap().1);
    }
    out.sort_by_key(|r| r.seq);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_and_span_api_end_to_end() {
    let upstream = serve(
        Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(|| async { "{\"data\":[]}" })),
    )
    .await;
    let spool = tempfile::tempdir().unwrap();
    let store = Store::memory();
    let signer: Arc<dyn Signer> = Arc::new(KeyFileSigner::generate(KeyType::Ed25519).unwrap());
    let metrics = Arc::new(Metrics::new());
    let sim = SimGpus::new(2, 1);
    let engine = Engine::open(
        EngineConfig {
            node_id: "proxy-node".into(),
            spool: spool.path().into(),
            attribution: AttributionConfig {
                idle_window_us: 1_000_000,
                max_span_us: 60_000_000,
            },
            seal_max_records: 1000,
            seal_max_age_us: 300_000,
            spool_max_bytes: 1 << 30,
        },
        signer,
        vec!["0".into(), "1".into()],
        Measurement::Simulated,
        || Ok(ChainHead::genesis("proxy-node")),
        metrics.clone(),
    )
    .unwrap();
    let running = start(
        engine,
        Box::new(sim),
        gco_collector::gateway::Destination::Store(store.clone()),
        RuntimeConfig {
            sample_interval: Duration::from_millis(10),
            fsync_interval: Duration::from_secs(1),
            upload_backoff_min: Duration::from_millis(50),
            upload_backoff_max: Duration::from_millis(200),
        },
        metrics.clone(),
    )
    .unwrap();
    let api = serve(span_api(running.handle.clone())).await;
    let px = serve(proxy(Proxy {
        handle: running.handle.clone(),
        upstream: reqwest::Url::parse(&upstream).unwrap(),
        client: reqwest::Client::new(),
        gpus: vec!["1".into()],
    }))
    .await;
    let c = reqwest::Client::new();

    // Non-streamed: usage from the JSON body, id in the header.
    let r = c
        .post(format!("{px}/v1/chat/completions"))
        .body("{\"model\":\"llama-3.1-8b\",\"messages\":[]}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let json_id = r.headers()[INFERENCE_ID_HEADER]
        .to_str()
        .unwrap()
        .to_string();
    let body = r.text().await.unwrap();
    assert!(
        body.contains("\"prompt_tokens\":17"),
        "body passes through: {body}"
    );

    // Streamed: the chunks arrive as sent; usage from the final chunk.
    let r = c
        .post(format!("{px}/v1/chat/completions"))
        .header(INFERENCE_ID_HEADER, "client-chosen-id-1")
        .body("{\"model\":\"llama-3.1-8b\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[INFERENCE_ID_HEADER], "client-chosen-id-1");
    assert_eq!(r.headers()[header::CONTENT_TYPE], "text/event-stream");
    let body = r.text().await.unwrap();
    assert!(body.starts_with("data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"));
    assert!(body.ends_with("data: [DONE]\n\n"));

    // Upstream error: status and body unchanged.
    let r = c
        .post(format!("{px}/v1/chat/completions"))
        .body("{\"model\":\"broken\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.text().await.unwrap(), "{\"error\":\"model overloaded\"}");

    // GETs pass through and are no span.
    let r = c.get(format!("{px}/v1/models")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "{\"data\":[]}");

    // The span API: start/end, duplicate and unknown ids, bad GPU.
    let r = c
        .post(format!("{api}/v1/spans"))
        .body("{\"inference_id\":\"api-1\",\"model\":\"mistral-7b\",\"gpus\":[0]}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let dup = c
        .post(format!("{api}/v1/spans"))
        .body("{\"inference_id\":\"api-1\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    let bad = c
        .post(format!("{api}/v1/spans"))
        .body("{\"gpus\":[9]}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let generated = c.post(format!("{api}/v1/spans")).send().await.unwrap();
    let generated: serde_json::Value = generated.json().await.unwrap();
    let gen_id = generated["inference_id"].as_str().unwrap().to_string();
    assert_eq!(gen_id.len(), 36, "a UUID is generated when none is given");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = c
        .post(format!("{api}/v1/spans/api-1/end"))
        .body("{\"prompt_tokens\":7,\"completion_tokens\":9}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let unknown = c
        .post(format!("{api}/v1/spans/nope/end"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    c.post(format!("{api}/v1/spans/{gen_id}/end"))
        .send()
        .await
        .unwrap();

    // Let readings close the spans' intervals and the age-based seal upload them.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics_text = c
        .get(format!("{api}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for m in [
        "gco_spans_started_total 5",
        "gco_spans_ended_total 5",
        "gco_gpu_energy_millijoules_total{gpu=\"1\"}",
        "gco_proxy_requests_total{status=\"2xx\"} 3",
        "gco_proxy_requests_total{status=\"5xx\"} 1",
        "gco_spans_rejected_total{reason=\"duplicate\"} 1",
        "gco_last_upload_timestamp_seconds",
    ] {
        assert!(metrics_text.contains(m), "missing {m} in\n{metrics_text}");
    }
    running.stop(Duration::from_secs(5)).await.unwrap();

    let records = read_store(&store).await;
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r.inference_id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no record for {id} in {records:?}"))
    };
    let j = by_id(&json_id);
    assert_eq!((j.prompt_tokens, j.completion_tokens), (Some(17), Some(5)));
    assert_eq!(j.model_id.as_deref(), Some("llama-3.1-8b"));
    assert_eq!(j.gpus, vec!["1".to_string()]);
    // (Energy may be 0 for a 30 ms span: the counter moves every 100 ms, like NVML's.)
    let s = by_id("client-chosen-id-1");
    assert_eq!((s.prompt_tokens, s.completion_tokens), (Some(21), Some(2)));
    let a = by_id("api-1");
    assert_eq!((a.prompt_tokens, a.completion_tokens), (Some(7), Some(9)));
    assert_eq!(a.gpus, vec!["0".to_string()]);
    let g = by_id(&gen_id);
    assert_eq!(g.gpus, vec!["0".to_string(), "1".to_string()]);
    let inferences = records.iter().filter(|r| r.inference_id.is_some()).count();
    assert_eq!(inferences, 5, "3 proxied POSTs + 2 API spans, each once");
}
