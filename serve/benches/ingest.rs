//! Ingestion gateway throughput: sealed batches of 10,000 records posted to
//! `POST /api/v1/batches` on loopback (4 nodes at once, each its chain in order),
//! against `gco ledger verify` over the same batches, both on 2 worker threads.
//!
//! `cargo bench -p gco-serve --bench ingest [-- RECORDS]` prints one Markdown row per
//! measurement; docs/benchmarks.md records the figures with the machine they ran on.

use std::time::Instant;

use gco_ledger::batch::{ChainHead, ChainWriter};
use gco_ledger::keys::KeyType;
use gco_ledger::verify::{VerifyOptions, verify};
use gco_ledger::{KeyFileSigner, Record, Signer, Store};
use rand::SeedableRng;

const NODES: usize = 4;
const BATCH: usize = 10_000;

/// Demo-like records of one node: random UUIDs, 24 per minute.
fn records(node: usize, n: usize) -> Vec<Record> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(node as u64);
    let t0 = gco_ledger::time::parse_utc("2026-10-01T00:00:00Z").unwrap_or(0);
    gco_ledger::sample::demo_like(n, t0, &["llama-3.1-8b-instruct"], &mut rng)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let per_node = n / NODES;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", dir.path().display());
    let store = Store::open(&url, &Default::default()).expect("store");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut chains = Vec::new();
    for node in 0..NODES {
        let signer = KeyFileSigner::generate(KeyType::Ed25519).expect("key");
        let id = format!("bench-{node}");
        let reg = gco_ledger::registry::Registration {
            node_id: id.clone(),
            public_key: signer.public_key().clone(),
            zone: "FR".into(),
            site: "bench".into(),
            valid_from: 0,
            valid_to: None,
        };
        rt.block_on(gco_ledger::registry::register(&store, &reg, 0))
            .expect("register");
        let batches = ChainWriter::new(&signer, ChainHead::genesis(id))
            .with_max_batch_records(BATCH)
            .seal(records(node, per_node))
            .expect("seal");
        chains.push(batches);
    }
    let batches: usize = chains.iter().map(Vec::len).sum();
    let token = rt
        .block_on(gco_serve::keys::create(
            &store,
            gco_serve::keys::Scope::Ingest,
            "bench",
            "2026-12-01T00:00:00Z",
        ))
        .expect("key")
        .token;
    let options = gco_serve::Options {
        access: gco_serve::access::AccessOptions {
            rate_limit: std::num::NonZeroU32::new(1_000_000).expect("non-zero"),
            rate_burst: std::num::NonZeroU32::new(1_000_000).expect("non-zero"),
            ..Default::default()
        },
        ..Default::default()
    };
    let base = rt.block_on(async {
        let router = gco_serve::router(store.clone(), options)
            .await
            .expect("router");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(gco_serve::serve(
            listener,
            None,
            router,
            std::future::pending(),
        ));
        format!("http://{addr}")
    });

    let t = Instant::now();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let mut tasks = Vec::new();
        for chain in chains {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                for b in chain {
                    let r = http
                        .post(format!("{base}/api/v1/batches"))
                        .bearer_auth(&token)
                        .body(b.bytes.to_vec())
                        .send()
                        .await
                        .expect("post");
                    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
    });
    let ingest_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let opts = VerifyOptions {
        concurrency: 2,
        ..Default::default()
    };
    let report = rt.block_on(verify(&store, &opts)).expect("verify");
    let verify_s = t.elapsed().as_secs_f64();
    assert!(
        report.ok && report.records == (per_node * NODES) as u64,
        "must verify"
    );

    let total = per_node * NODES;
    println!("| measurement | records | batches | seconds | records/s |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| gateway: POST /api/v1/batches, {NODES} nodes at once (2 cores, loopback, file://) | {total} | {batches} | {ingest_s:.3} | {:.0} |",
        total as f64 / ingest_s
    );
    println!(
        "| ledger verify, same batches (2 cores, file://) | {total} | {batches} | {verify_s:.3} | {:.0} |",
        total as f64 / verify_s
    );
}
