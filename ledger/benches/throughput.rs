//! Ledger throughput: sealing + writing on one core, verifying on two, bytes per record.
//!
//! `cargo bench -p gco-ledger --bench throughput [-- RECORDS]` prints one Markdown row
//! per measurement; docs/benchmarks.md records the figures with the machine they ran on.

use std::time::Instant;

use gco_ledger::batch::{ChainHead, ChainWriter};
use gco_ledger::keys::KeyType;
use gco_ledger::verify::{VerifyOptions, verify};
use gco_ledger::{KeyFileSigner, Record, Signer, Store};
use rand::SeedableRng;

const MODELS: [&str; 4] = [
    "llama-3.1-70b-instruct",
    "llama-3.1-8b-instruct",
    "mistral-7b-instruct",
    "mixtral-8x7b-instruct",
];

/// Demo-like records: random UUIDs, one node, 24 per minute over consecutive days.
fn records(n: usize) -> Vec<Record> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let t0 = gco_ledger::time::parse_utc("2026-10-01T00:00:00Z").unwrap_or(0);
    gco_ledger::sample::demo_like(n, t0, &MODELS, &mut rng)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        &format!("file://{}", dir.path().display()),
        &Default::default(),
    )
    .expect("store");
    let signer = KeyFileSigner::generate(KeyType::Ed25519).expect("key");
    let recs = records(n);

    // Seal + write on one core: a current-thread runtime, sequential sealing and puts.
    let one = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let t = Instant::now();
    let mut writer = ChainWriter::new(&signer, ChainHead::genesis("bench-node"));
    let batches = writer.seal(recs).expect("seal");
    let mut bytes = 0u64;
    one.block_on(async {
        for b in &batches {
            bytes += b.bytes.len() as u64;
            store.put_batch(b).await.expect("put");
        }
    });
    let seal_s = t.elapsed().as_secs_f64();

    // Verify on two worker threads.
    let two = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let registration = gco_ledger::registry::Registration {
        node_id: "bench-node".into(),
        public_key: signer.public_key().clone(),
        zone: "FR".into(),
        site: "bench".into(),
        valid_from: 0,
        valid_to: None,
    };
    two.block_on(gco_ledger::registry::register(&store, &registration, 0))
        .expect("register");
    let t = Instant::now();
    let opts = VerifyOptions {
        concurrency: 2,
        ..Default::default()
    };
    let report = two.block_on(verify(&store, &opts)).expect("verify");
    let verify_s = t.elapsed().as_secs_f64();
    assert!(
        report.ok && report.records == n as u64,
        "benchmark ledger must verify"
    );

    println!("| measurement | records | batches | seconds | records/s |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| seal + write (1 core, file://) | {n} | {} | {seal_s:.3} | {:.0} |",
        batches.len(),
        n as f64 / seal_s
    );
    println!(
        "| verify (2 cores, file://) | {n} | {} | {verify_s:.3} | {:.0} |",
        batches.len(),
        n as f64 / verify_s
    );
    println!(
        "bytes per record: {:.1} ({bytes} bytes)",
        bytes as f64 / n as f64
    );
}
