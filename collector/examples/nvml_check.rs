//! Checks the NVML path on a real GPU node: lists the GPUs, reads the energy counter,
//! runs the attribution engine on live readings with a few spans, seals and verifies
//! the batch. Used for the device check recorded in docs/benchmarks.md:
//!   cargo run --example nvml_check -p gco-collector -- [seconds]

use std::sync::Arc;
use std::time::{Duration, Instant};

use gco_collector::engine::{Command, Engine, EngineConfig, spooled_batches};
use gco_collector::gpu::GpuSource;
use gco_collector::metrics::Metrics;
use gco_collector::nvml::NvmlSource;
use gco_collector::runtime::wall_clock;
use gco_collector::{AttributionConfig, Reply};
use gco_ledger::keys::KeyType;
use gco_ledger::{ChainHead, KeyFileSigner, Signer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let cuda = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    let mut src = NvmlSource::open(None, cuda.as_deref())?;
    println!("measurement: {}", src.measurement().as_str());
    for g in src.gpus() {
        println!("gpu {} {} {}", g.index, g.id, g.name);
    }
    // Counter granularity: how often does the counter move when read every 1 ms?
    let t0 = Instant::now();
    let mut last = src.read(wall_clock())?[0].energy_mj;
    let mut changes = 0;
    let mut reads = 0;
    while t0.elapsed() < Duration::from_secs(1) {
        let r = src.read(wall_clock())?[0];
        reads += 1;
        if r.energy_mj != last {
            changes += 1;
            last = r.energy_mj;
        }
    }
    println!(
        "counter: {changes} changes in {reads} reads over 1 s; read cost {:.1} us",
        1e6 / reads as f64
    );
    let spool = tempfile::tempdir()?;
    let signer: Arc<dyn Signer> = Arc::new(KeyFileSigner::generate(KeyType::Ed25519)?);
    let ids: Vec<String> = src.gpus().iter().map(|g| g.id.clone()).collect();
    let mut e = Engine::open(
        EngineConfig {
            node_id: "gpu-check".into(),
            spool: spool.path().into(),
            attribution: AttributionConfig {
                idle_window_us: 1_000_000,
                max_span_us: 600_000_000,
            },
            seal_max_records: 10_000,
            seal_max_age_us: 3_600_000_000,
            spool_max_bytes: 1 << 30,
        },
        signer,
        ids.clone(),
        src.measurement(),
        || Ok(ChainHead::genesis("gpu-check")),
        Arc::new(Metrics::new()),
    )?;
    let start = Instant::now();
    let mut n = 0u64;
    let mut open: Vec<String> = Vec::new();
    while start.elapsed() < Duration::from_secs(secs) {
        let t = wall_clock();
        let readings = src.read(t)?;
        e.handle(Command::Sample { t, readings }, t)?
            .map_err(|e| e.to_string())?;
        if n.is_multiple_of(3)
            && let Reply::Started { id, .. } = e
                .handle(
                    Command::Start {
                        id: None,
                        model_id: Some("check".into()),
                        model_version: None,
                        gpus: vec![],
                    },
                    wall_clock(),
                )?
                .map_err(|e| e.to_string())?
        {
            open.push(id);
        }
        if n % 3 == 2
            && let Some(id) = open.pop()
        {
            e.handle(
                Command::End {
                    id,
                    prompt_tokens: Some(10),
                    completion_tokens: Some(n),
                },
                wall_clock(),
            )?
            .map_err(|e| e.to_string())?;
        }
        n += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    for id in open {
        e.handle(
            Command::End {
                id,
                prompt_tokens: None,
                completion_tokens: None,
            },
            wall_clock(),
        )?
        .map_err(|e| e.to_string())?;
    }
    std::thread::sleep(Duration::from_millis(200));
    let t = wall_clock();
    let readings = src.read(t)?;
    e.handle(Command::Sample { t, readings }, t)?
        .map_err(|e| e.to_string())?;
    for (g, id) in ids.iter().enumerate() {
        let tt = e.attributor().totals(g);
        println!(
            "gpu {id}: measured {} mJ = attributed {} + idle {} ({}), intervals {}, resets {}",
            tt.measured_mj,
            tt.attributed_mj,
            tt.idle_mj,
            if tt.measured_mj == tt.attributed_mj + tt.idle_mj {
                "exact"
            } else {
                "MISMATCH"
            },
            tt.intervals,
            tt.counter_resets
        );
    }
    e.shutdown()?;
    let b = spooled_batches(spool.path(), "gpu-check")?;
    let mut recs = 0;
    let mut energy = 0;
    for x in &b {
        let (seal, r) =
            gco_ledger::batch::read_batch(&x.store_path, std::fs::read(&x.file)?.into())?;
        recs += r.len();
        energy += seal.energy_mj;
    }
    println!("sealed {} batches, {recs} records, {energy} mJ", b.len());
    Ok(())
}
