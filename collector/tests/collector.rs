//! The collector's guarantees, on deterministic simulated time: exact attribution under
//! overlapping spans, counter resets, crash and replay with no loss and no duplicate,
//! store outage and recovery, the spool bound.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use gco_collector::attribution::{AttributionConfig, Attributor, SpanStart};
use gco_collector::engine::{Command, Engine, EngineConfig, spooled_batches};
use gco_collector::gateway::Destination;
use gco_collector::gpu::GpuSource;
use gco_collector::metrics::Metrics;
use gco_collector::runtime::upload_once;
use gco_collector::sim::SimGpus;
use gco_ledger::keys::KeyType;
use gco_ledger::registry::{Registration, register};
use gco_ledger::verify::{VerifyOptions, verify};
use gco_ledger::{ChainHead, KeyFileSigner, Measurement, Record, RecordKind, Signer, Store};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const T0: i64 = 1_790_812_800_000_000; // 2026-10-01T00:00:00Z

/// 4 GPUs, 600 overlapping spans on random GPU subsets (some without tokens), readings
/// every 100 ms: every interval splits exactly, and the records add up to the
/// measured energy.
#[test]
fn attribution_invariant_under_overlapping_spans() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut sim = SimGpus::new(4, 3);
    let cfg = AttributionConfig {
        idle_window_us: 10_000_000,
        max_span_us: 600_000_000,
    };
    let mut a = Attributor::new(
        sim.gpus().iter().map(|g| g.id.clone()).collect(),
        Measurement::Simulated,
        cfg,
    );
    a.enable_audit();
    // Events: span starts/ends at random microseconds over 60 s, readings every 100 ms.
    let mut events: Vec<(i64, u8, usize)> = Vec::new(); // (t, kind 0=end 1=start 2=sample, span)
    let mut spans = Vec::new();
    for i in 0..600 {
        let start = T0 + rng.random_range(0..55_000_000i64);
        let end = start + rng.random_range(0..4_000_000i64);
        let mut gpus: Vec<u16> = (0..4).filter(|_| rng.random_range(0..3) == 0).collect();
        if gpus.is_empty() {
            gpus.push(rng.random_range(0..4));
        }
        let tokens = (i % 5 != 0).then(|| rng.random_range(1..2000u64));
        spans.push((gpus, tokens));
        events.push((start, 1, i));
        events.push((end, 0, i));
    }
    for k in 0..=700 {
        events.push((T0 + k * 100_000, 2, 0));
    }
    events.sort();
    let mut measured_by_gpu = [0u64; 4];
    for (t, kind, i) in events {
        match kind {
            1 => a
                .start(
                    t,
                    SpanStart {
                        id: format!("s{i}"),
                        model_id: Some(format!("m{}", i % 3)),
                        model_version: None,
                        gpus: spans[i].0.clone(),
                    },
                )
                .unwrap(),
            0 => a
                .end(t, &format!("s{i}"), spans[i].1, spans[i].1.map(|_| 0))
                .unwrap(),
            _ => {
                for g in 0..4 {
                    sim.set_activity(g, a.active_on(g));
                }
                a.sample(t, &sim.read(t).unwrap());
            }
        }
    }
    let audit = a.take_audit();
    assert_eq!(audit.len(), 4 * 700);
    let mut token_split = 0;
    for al in &audit {
        let shares: u64 = al.shares.iter().map(|s| s.1).sum();
        assert_eq!(al.idle_mj + shares, al.measured_mj, "{al:?}");
        measured_by_gpu[al.gpu] += al.measured_mj;
        token_split += al.by_tokens as usize;
    }
    assert!(
        token_split > 100,
        "token weighting used in {token_split} intervals"
    );
    let records = a.take_records();
    let inference: Vec<&Record> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Inference)
        .collect();
    assert_eq!(inference.len(), 600, "every span became exactly one record");
    let ids: HashSet<_> = inference.iter().map(|r| r.inference_id.clone()).collect();
    assert_eq!(ids.len(), 600);
    let mut attributed = 0u64;
    for (g, &measured) in measured_by_gpu.iter().enumerate() {
        let t = a.totals(g);
        assert_eq!(t.measured_mj, measured);
        assert_eq!(t.attributed_mj + t.idle_mj, t.measured_mj);
        attributed += t.attributed_mj;
    }
    let inf_sum: u64 = inference.iter().map(|r| r.energy.0 as u64).sum();
    assert_eq!(
        inf_sum, attributed,
        "span records hold exactly the attributed energy"
    );
    // Idle rows of closed windows (the last 10 s window is still open).
    let idle_closed: u64 = audit
        .iter()
        .filter(|al| al.t0 < T0 + 60_000_000)
        .map(|al| al.idle_mj)
        .sum();
    let idle_rows: u64 = records
        .iter()
        .filter(|r| r.kind == RecordKind::Idle)
        .map(|r| r.energy.0 as u64)
        .sum();
    assert_eq!(idle_rows, idle_closed);
}

fn key(seed: u64) -> Arc<dyn Signer> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Arc::new(KeyFileSigner::generate_with(KeyType::Ed25519, &mut rng).unwrap())
}

fn engine_cfg(spool: &std::path::Path) -> EngineConfig {
    EngineConfig {
        node_id: "node-a".into(),
        spool: spool.to_path_buf(),
        attribution: AttributionConfig {
            idle_window_us: 5_000_000,
            max_span_us: 120_000_000,
        },
        seal_max_records: 40,
        seal_max_age_us: 10_000_000,
        spool_max_bytes: 1 << 30,
    }
}

fn open(signer: &Arc<dyn Signer>, cfg: EngineConfig) -> Engine {
    Engine::open(
        cfg,
        signer.clone(),
        (0..2).map(|g| g.to_string()).collect(),
        Measurement::Simulated,
        || Ok(ChainHead::genesis("node-a")),
        Arc::new(Metrics::new()),
    )
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// A scripted workload: (t, command). Spans have explicit ids so a replay is exact.
fn script(seed: u64, sim: &mut SimGpus) -> Vec<(i64, Command)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ev: Vec<(i64, u8, Command)> = Vec::new();
    for i in 0..300 {
        let s = T0 + rng.random_range(0..58_000_000i64);
        let e = s + rng.random_range(50_000..3_000_000i64);
        let g = rng.random_range(0..3u32);
        let gpus = match g {
            0 => vec!["0".to_string()],
            1 => vec!["1".to_string()],
            _ => vec!["0".to_string(), "1".to_string()],
        };
        ev.push((
            s,
            1,
            Command::Start {
                id: Some(format!("inf-{i:04}")),
                model_id: Some(["llama", "mistral"][i % 2].into()),
                model_version: None,
                gpus,
            },
        ));
        ev.push((
            e,
            0,
            Command::End {
                id: format!("inf-{i:04}"),
                prompt_tokens: Some(rng.random_range(10..500)),
                completion_tokens: Some(rng.random_range(1..300)),
            },
        ));
    }
    for k in 0..=650 {
        let t = T0 + k * 100_000;
        // Activity is fixed per tick here (the simulator only needs determinism).
        sim.set_activity(0, (k % 3) as u32);
        sim.set_activity(1, (k % 2) as u32);
        if k == 300 {
            sim.reset_counter(1); // a driver reload mid-run
        }
        ev.push((
            t,
            2,
            Command::Sample {
                t,
                readings: sim.read(t).unwrap(),
            },
        ));
    }
    ev.sort_by_key(|(t, k, _)| (*t, *k));
    ev.into_iter().map(|(t, _, c)| (t, c)).collect()
}

/// Drives `events` into the engine, sealing when due (as the live loop does after each
/// group of events).
fn drive(e: &mut Engine, events: &[(i64, Command)]) {
    for (t, c) in events {
        e.handle(c.clone(), *t).unwrap().unwrap();
        e.flush().unwrap();
        if e.seal_due() {
            e.seal().unwrap();
        }
    }
}

fn spooled_records(spool: &std::path::Path) -> Vec<Record> {
    let mut out = Vec::new();
    for b in spooled_batches(spool, "node-a").unwrap() {
        let bytes = std::fs::read(&b.file).unwrap();
        out.extend(
            gco_ledger::batch::read_batch(&b.store_path, bytes.into())
                .unwrap()
                .1,
        );
    }
    out
}

/// The same workload, once straight through and once with three simulated `kill -9`s
/// (the engine is leaked without any cleanup, so only what was flushed survives): the
/// sealed records are identical, none lost, none duplicated, and the chain verifies.
#[tokio::test]
async fn crash_and_replay_lose_nothing_and_duplicate_nothing() {
    let signer = key(5);
    let events = script(9, &mut SimGpus::new(2, 4));
    let clean = tempfile::tempdir().unwrap();
    let mut e = open(&signer, engine_cfg(clean.path()));
    drive(&mut e, &events);
    assert_eq!(e.attributor().totals(1).counter_resets, 1);
    e.shutdown().unwrap();
    let want = spooled_records(clean.path());
    assert!(want.len() > 300, "{}", want.len());

    let crashy = tempfile::tempdir().unwrap();
    let cuts = [0, 411, 777, 1200, events.len()];
    let mut replayed = 0;
    for w in cuts.windows(2) {
        let mut e = open(&signer, engine_cfg(crashy.path()));
        replayed += e.stats.replayed_events;
        drive(&mut e, &events[w[0]..w[1]]);
        if w[1] == events.len() {
            e.shutdown().unwrap();
        } else {
            std::mem::forget(e); // kill -9: no destructor, no final flush or seal
        }
    }
    assert!(replayed > 0, "the crashes left events to replay");
    let got = spooled_records(crashy.path());
    assert_eq!(got.len(), want.len());
    assert_eq!(
        got, want,
        "records after crashes equal the uninterrupted run"
    );
    let seqs: Vec<u64> = got.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (0..got.len() as u64).collect::<Vec<_>>(),
        "contiguous, no duplicates"
    );
    let ids: Vec<_> = got.iter().filter_map(|r| r.inference_id.clone()).collect();
    assert_eq!(ids.len(), 300);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 300);

    // Upload and verify the chain.
    let store = Store::memory();
    register(
        &store,
        &Registration {
            node_id: "node-a".into(),
            public_key: signer.public_key().clone(),
            zone: "FR".into(),
            site: "paris".into(),
            valid_from: T0 - 1,
            valid_to: None,
        },
        T0 - 1,
    )
    .await
    .unwrap();
    let durable = AtomicU64::new(u64::MAX);
    let n = upload_once(
        &Destination::Store(store.clone()),
        crashy.path(),
        "node-a",
        &durable,
        &Metrics::new(),
    )
    .await
    .unwrap()
    .batches();
    assert!(n > 5);
    assert!(spooled_batches(crashy.path(), "node-a").unwrap().is_empty());
    let report = verify(&store, &VerifyOptions::default()).await.unwrap();
    assert!(report.ok, "{:?}", report.problems);
    assert_eq!(report.records_valid, want.len() as u64);
}

/// Store down: batches stay in the spool and the failure is reported; store back: they
/// go up and leave the spool.
#[tokio::test]
async fn store_outage_then_recovery() {
    let signer = key(6);
    let spool = tempfile::tempdir().unwrap();
    let mut e = open(&signer, engine_cfg(spool.path()));
    drive(&mut e, &script(2, &mut SimGpus::new(2, 1)));
    e.shutdown().unwrap();
    let waiting = spooled_batches(spool.path(), "node-a").unwrap().len();
    assert!(waiting > 3);
    // The store root is a plain file: every write fails.
    let root = tempfile::tempdir().unwrap();
    let blocked = root.path().join("ledger");
    let store = Store::open(&format!("file://{}", blocked.display()), &BTreeMap::new()).unwrap();
    std::fs::remove_dir(&blocked).unwrap();
    std::fs::write(&blocked, b"not a directory").unwrap();
    let metrics = Metrics::new();
    let durable = e.durable_seq();
    let err = upload_once(
        &Destination::Store(store.clone()),
        spool.path(),
        "node-a",
        &durable,
        &metrics,
    )
    .await;
    assert!(err.is_err());
    assert_eq!(
        spooled_batches(spool.path(), "node-a").unwrap().len(),
        waiting
    );
    // Recovery.
    std::fs::remove_file(&blocked).unwrap();
    std::fs::create_dir(&blocked).unwrap();
    let n = upload_once(
        &Destination::Store(store.clone()),
        spool.path(),
        "node-a",
        &durable,
        &metrics,
    )
    .await
    .unwrap();
    assert_eq!(n.created, waiting as u64);
    assert_eq!(n.present, 0);
    assert!(spooled_batches(spool.path(), "node-a").unwrap().is_empty());
    assert_eq!(metrics.uploads.get(), waiting as u64);
    // A second pass (a retry after a lost acknowledgement) writes nothing new.
    assert_eq!(
        upload_once(
            &Destination::Store(store.clone()),
            spool.path(),
            "node-a",
            &durable,
            &metrics
        )
        .await
        .unwrap()
        .batches(),
        0
    );
}

/// Over the spool bound, inferences are folded into per-model overflow rows: the
/// energy is all there, the per-inference detail is not, and it is counted.
#[test]
fn spool_bound_folds_inferences_and_keeps_energy() {
    let signer = key(7);
    let events = script(3, &mut SimGpus::new(2, 2));
    let normal = tempfile::tempdir().unwrap();
    let mut e = open(&signer, engine_cfg(normal.path()));
    drive(&mut e, &events);
    e.shutdown().unwrap();
    let full = tempfile::tempdir().unwrap();
    let mut cfg = engine_cfg(full.path());
    cfg.spool_max_bytes = 1;
    let metrics = Arc::new(Metrics::new());
    let mut e = Engine::open(
        cfg,
        signer.clone(),
        vec!["0".into(), "1".into()],
        Measurement::Simulated,
        || Ok(ChainHead::genesis("node-a")),
        metrics.clone(),
    )
    .unwrap();
    drive(&mut e, &events);
    e.shutdown().unwrap();
    let (a, b) = (spooled_records(normal.path()), spooled_records(full.path()));
    let sum = |r: &[Record]| r.iter().map(|r| r.energy.0).sum::<i64>();
    assert_eq!(sum(&a), sum(&b), "no energy lost at the bound");
    let overflow: Vec<&Record> = b
        .iter()
        .filter(|r| {
            r.model_version
                .as_deref()
                .is_some_and(|v| v.starts_with("overflow:"))
        })
        .collect();
    assert!(!overflow.is_empty());
    assert!(b.len() < a.len());
    assert!(metrics.overflow_spans.get() > 0);
    assert_eq!(
        metrics.overflow_mj.get() as i64,
        overflow.iter().map(|r| r.energy.0).sum::<i64>()
    );
}
