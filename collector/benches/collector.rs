//! Collector benchmarks (figures in docs/benchmarks.md):
//!   1. span end -> record enqueued: the engine's cost per span end (log append +
//!      attribution + record into the seal queue), on one core;
//!   2. spans -> sealed batches: records per second sustained on one core, including
//!      the write-ahead log, attribution, Parquet encoding, signing and spool writes;
//!   3. proxy overhead: p50/p99 latency at 1,000 requests/s against a local upstream,
//!      direct and through the proxy.
//!
//! Run: cargo bench -p gco-collector --bench collector

use std::sync::Arc;
use std::time::{Duration, Instant};

use gco_collector::engine::{Command, Engine, EngineConfig};
use gco_collector::gpu::GpuSource;
use gco_collector::metrics::Metrics;
use gco_collector::{AttributionConfig, SimGpus};
use gco_ledger::keys::KeyType;
use gco_ledger::{ChainHead, KeyFileSigner, Measurement, Signer};

const T0: i64 = 1_790_812_800_000_000;

fn engine(spool: &std::path::Path, gpus: usize) -> Engine {
    let signer: Arc<dyn Signer> = Arc::new(KeyFileSigner::generate(KeyType::Ed25519).unwrap());
    Engine::open(
        EngineConfig {
            node_id: "bench".into(),
            spool: spool.into(),
            attribution: AttributionConfig {
                idle_window_us: 60_000_000,
                max_span_us: 3_600_000_000,
            },
            seal_max_records: 50_000,
            seal_max_age_us: 60_000_000,
            spool_max_bytes: u64::MAX,
        },
        signer,
        (0..gpus).map(|g| g.to_string()).collect(),
        Measurement::Simulated,
        || Ok(ChainHead::genesis("bench")),
        Arc::new(Metrics::new()),
    )
    .unwrap()
}

/// Feeds readings every 100 ms up to `t`.
fn sample_until(e: &mut Engine, sim: &mut SimGpus, next: &mut i64, t: i64) {
    while *next <= t {
        let readings = sim.read(*next).unwrap();
        e.handle(Command::Sample { t: *next, readings }, *next)
            .unwrap()
            .unwrap();
        *next += 100_000;
    }
}

/// Ends span `id` at `t`; returns the time the engine took.
fn end_span(e: &mut Engine, id: &str, t: i64) -> Duration {
    let t0 = Instant::now();
    e.handle(
        Command::End {
            id: id.to_string(),
            prompt_tokens: Some(200),
            completion_tokens: Some(100),
        },
        t,
    )
    .unwrap()
    .unwrap();
    t0.elapsed()
}

/// Drives `spans` spans over 8 GPUs, ~400 concurrent, 100 ms readings; returns
/// (seconds in End handling, total seconds, records sealed).
fn run(spans: usize) -> (f64, f64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine(dir.path(), 8);
    let mut sim = SimGpus::new(8, 1);
    let gap = 250; // us between span starts: 4,000 spans/s of simulated time
    let dur = 100_000; // each span 100 ms
    let mut end_time = Duration::ZERO;
    let all = Instant::now();
    let mut next_sample = T0;
    let ids: Vec<String> = (0..spans).map(|i| format!("bench-{i:09}")).collect();
    let mut ended = 0usize;
    for i in 0..spans {
        let t = T0 + (i as i64) * gap;
        sample_until(&mut e, &mut sim, &mut next_sample, t);
        // End the spans whose time has come.
        while ended < i && T0 + ended as i64 * gap + dur <= t {
            end_time += end_span(&mut e, &ids[ended], T0 + ended as i64 * gap + dur);
            ended += 1;
        }
        e.handle(
            Command::Start {
                id: Some(ids[i].clone()),
                model_id: Some("llama-3.1-8b".into()),
                model_version: None,
                gpus: vec![(i % 8).to_string()],
            },
            t,
        )
        .unwrap()
        .unwrap();
        if i % 256 == 0 {
            e.flush().unwrap();
        }
        if e.seal_due() {
            e.seal().unwrap();
        }
    }
    while ended < spans {
        let t = T0 + ended as i64 * gap + dur;
        end_time += end_span(&mut e, &ids[ended], t);
        ended += 1;
    }
    let t = T0 + spans as i64 * gap + 2 * dur + 200_000;
    sample_until(&mut e, &mut sim, &mut next_sample, t);
    e.shutdown().unwrap();
    let secs = all.elapsed().as_secs_f64();
    let recs = e.stats.inference_records + e.stats.idle_records;
    (end_time.as_secs_f64(), secs, recs)
}

async fn proxy_bench() {
    use axum::Router;
    use axum::routing::post;
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    let app = Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            (
                [("content-type", "application/json")],
                "{\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":20}}",
            )
        }),
    );
    tokio::spawn(async move { axum::serve(up, app).await });
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), 8);
    let metrics = Arc::new(Metrics::new());
    let running = gco_collector::runtime::start(
        e,
        Box::new(SimGpus::new(8, 1)),
        gco_collector::gateway::Destination::Store(gco_ledger::Store::memory()),
        gco_collector::runtime::RuntimeConfig {
            sample_interval: Duration::from_millis(100),
            fsync_interval: Duration::from_secs(1),
            upload_backoff_min: Duration::from_millis(100),
            upload_backoff_max: Duration::from_secs(1),
        },
        metrics,
    )
    .unwrap();
    let px = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let px_addr = px.local_addr().unwrap();
    let app = gco_collector::http::proxy(gco_collector::http::Proxy {
        handle: running.handle.clone(),
        upstream: reqwest::Url::parse(&format!("http://{up_addr}")).unwrap(),
        client: reqwest::Client::new(),
        gpus: vec![],
    });
    tokio::spawn(async move { axum::serve(px, app).await });
    let client = reqwest::Client::new();
    for (name, addr) in [
        ("direct", up_addr),
        ("proxy", px_addr),
        ("direct", up_addr),
        ("proxy", px_addr),
    ] {
        let url = format!("http://{addr}/v1/chat/completions");
        let mut hist = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        let mut tasks = Vec::new();
        let start = Instant::now();
        // 1,000 requests/s for 5 s, open loop.
        for i in 0..5000u64 {
            let due = start + Duration::from_micros(i * 1000);
            tokio::time::sleep_until(due.into()).await;
            let (c, url) = (client.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let r = c
                    .post(url)
                    .body("{\"model\":\"m\",\"messages\":[]}")
                    .send()
                    .await
                    .unwrap();
                r.bytes().await.unwrap();
                t.elapsed().as_micros() as u64
            }));
        }
        for t in tasks {
            hist.record(t.await.unwrap()).unwrap();
        }
        println!(
            "proxy bench {name:>6}: 5000 requests at 1000/s: p50 {} us, p99 {} us, max {} us",
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.max()
        );
    }
    running.stop(Duration::from_secs(2)).await.unwrap();
}

fn main() {
    let _ = run(20_000); // warm-up
    let n = 1_000_000;
    let (end_s, total_s, recs) = run(n);
    println!(
        "span end -> record enqueued: {:.2} us per span end (engine, 1 core, {n} spans)",
        end_s * 1e6 / n as f64
    );
    println!(
        "spans -> sealed batches: {recs} records in {total_s:.2} s = {:.0} records/s on 1 core",
        recs as f64 / total_s
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(proxy_bench());
}
