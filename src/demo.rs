//! `gco demo`: the whole chain on a simulated fleet, in one directory.
//!
//! Steps: derive node keys from the seed and register the nodes; simulate a fleet of
//! 8-GPU nodes serving four models with a daily load curve; seal each node-hour into a
//! signed batch and upload it create-only; verify the ledger; print a summary. The same
//! seed and flags give byte-identical objects, so a rerun finds everything already there.

use std::path::Path;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use gco_ledger::keys::{KeyType, write_private_key_file};
use gco_ledger::registry::{Registration, register};
use gco_ledger::time::{MICROS_PER_SECOND, Micros, date_start};
use gco_ledger::{
    ChainHead, ChainWriter, KeyFileSigner, Measurement, Millijoules, Record, RecordKind, Signer,
    Store,
};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seeds::seed_for;
use serde_json::json;

use crate::cli::{DemoArgs, Global};
use crate::output::{kwh, print_json, progress};

/// A served model: GPUs per replica, mix weight, latency and power profile.
struct Model {
    id: &'static str,
    version: &'static str,
    gpus: usize,
    weight: u32,
    base_ms: u64,
    ms_per_token: u64,
    watts: (u64, u64),
}

const MODELS: [Model; 4] = [
    Model {
        id: "llama-3.1-70b-instruct",
        version: "2024-07",
        gpus: 4,
        weight: 30,
        base_ms: 300,
        ms_per_token: 25,
        watts: (450, 650),
    },
    Model {
        id: "llama-3.1-8b-instruct",
        version: "2024-07",
        gpus: 1,
        weight: 40,
        base_ms: 80,
        ms_per_token: 8,
        watts: (250, 450),
    },
    Model {
        id: "mistral-7b-instruct",
        version: "v0.3",
        gpus: 1,
        weight: 20,
        base_ms: 70,
        ms_per_token: 7,
        watts: (230, 420),
    },
    Model {
        id: "mixtral-8x7b-instruct",
        version: "v0.1",
        gpus: 2,
        weight: 10,
        base_ms: 200,
        ms_per_token: 15,
        watts: (350, 600),
    },
];

/// Load per hour of day (UTC), in percent of the peak.
const DIURNAL: [u64; 24] = [
    35, 30, 28, 27, 28, 33, 45, 60, 75, 88, 95, 100, 98, 97, 99, 100, 96, 90, 82, 72, 62, 52, 45,
    40,
];
/// Simulated GPUs per node and their idle draw (H100 SXM idles near 70 W).
const GPUS_PER_NODE: usize = 8;
const IDLE_WATTS: u64 = 70;
const HOUR_MS: u64 = 3_600_000;

/// Demo node sites: (grid zone, site).
const SITES: [(&str, &str); 6] = [
    ("FR", "paris-dc1"),
    ("DE", "frankfurt-dc2"),
    ("US-CA", "gcp-us-west2"),
    ("SE-SE3", "stockholm-dc1"),
    ("PL", "warsaw-dc1"),
    ("IE", "aws-eu-west-1"),
];

mod seeds {
    /// A 32-byte RNG seed for one (seed, node, hour), mixed with SplitMix64 so that
    /// neighbouring hours get unrelated streams.
    pub fn seed_for(seed: u64, node: u64, hour: u64) -> [u8; 32] {
        let mut x = seed
            ^ node.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ hour.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        out
    }
}

fn node_id(i: u32) -> String {
    format!("demo-node-{:02}", i + 1)
}

/// Simulates one node-hour: the inferences that started in it and the idle remainder.
fn simulate_hour(
    seed: u64,
    node: u32,
    hour_index: u64,
    hour_start: Micros,
    peak_rate: u32,
) -> Vec<Record> {
    let mut rng = ChaCha8Rng::from_seed(seed_for(seed, node as u64, hour_index));
    let hour_of_day = ((hour_start / (3600 * MICROS_PER_SECOND)) % 24) as usize;
    let mean = peak_rate as u64 * DIURNAL[hour_of_day] / 100;
    let count = rng.random_range(mean * 9 / 10..=mean * 11 / 10 + 1);
    let total_weight: u32 = MODELS.iter().map(|m| m.weight).sum();
    let mut busy_gpu_ms: u64 = 0;
    let mut records = Vec::with_capacity(count as usize + 1);
    for _ in 0..count {
        let mut pick = rng.random_range(0..total_weight);
        let model = MODELS.iter().find(|m| {
            if pick < m.weight {
                true
            } else {
                pick -= m.weight;
                false
            }
        });
        let Some(model) = model else { continue };
        let prompt: u64 = rng.random_range(32..4096);
        let completion: u64 = rng.random_range(16..1024);
        let duration_ms = model.base_ms + completion * model.ms_per_token + prompt / 50;
        let watts = rng.random_range(model.watts.0..=model.watts.1);
        let first_gpu = rng.random_range(0..GPUS_PER_NODE / model.gpus) * model.gpus;
        let start = hour_start + rng.random_range(0..HOUR_MS as i64 * 1000);
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        id[6] = (id[6] & 0x0f) | 0x40; // UUID version 4
        id[8] = (id[8] & 0x3f) | 0x80;
        let h = hex_string(&id);
        busy_gpu_ms += duration_ms * model.gpus as u64;
        records.push(Record {
            seq: 0,
            kind: RecordKind::Inference,
            inference_id: Some(format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )),
            node_id: node_id(node),
            model_id: Some(model.id.to_string()),
            model_version: Some(model.version.to_string()),
            start,
            end: start + duration_ms as i64 * 1000,
            // W x ms = mJ, exactly.
            energy: Millijoules((watts * model.gpus as u64 * duration_ms) as i64),
            measurement: Measurement::Simulated,
            gpus: (first_gpu..first_gpu + model.gpus)
                .map(|g| g.to_string())
                .collect(),
            prompt_tokens: Some(prompt),
            completion_tokens: Some(completion),
        });
    }
    let capacity_ms = GPUS_PER_NODE as u64 * HOUR_MS;
    records.push(Record {
        seq: 0,
        kind: RecordKind::Idle,
        inference_id: None,
        node_id: node_id(node),
        model_id: None,
        model_version: None,
        start: hour_start,
        end: hour_start + HOUR_MS as i64 * 1000,
        energy: Millijoules((IDLE_WATTS * capacity_ms.saturating_sub(busy_gpu_ms)) as i64),
        measurement: Measurement::Simulated,
        gpus: (0..GPUS_PER_NODE).map(|g| g.to_string()).collect(),
        prompt_tokens: None,
        completion_tokens: None,
    });
    records.sort_by(|a, b| (a.start, &a.inference_id).cmp(&(b.start, &b.inference_id)));
    records
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Loads the node's key from the demo directory, or derives it from the seed and saves it.
fn node_key(dir: &Path, seed: u64, node: u32) -> Result<KeyFileSigner> {
    let path = dir.join("node-keys").join(format!("{}.key", node_id(node)));
    let mut rng = ChaCha8Rng::from_seed(seed_for(seed, node as u64, u64::MAX));
    let signer = KeyFileSigner::generate_with(KeyType::Ed25519, &mut rng)?;
    if path.exists() {
        let stored = KeyFileSigner::load(&path)?;
        if stored.key_id() != signer.key_id() {
            anyhow::bail!(
                "{} holds a key from another seed; use a fresh --dir",
                path.display()
            );
        }
    } else {
        std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
        write_private_key_file(&path, &signer)?;
        std::fs::write(path.with_extension("pub"), signer.public_key().to_pem())?;
    }
    Ok(signer)
}

pub async fn run(args: DemoArgs, g: &Global) -> Result<u8> {
    let started = std::time::Instant::now();
    let start_date = NaiveDate::parse_from_str(&args.start, "%Y-%m-%d")
        .with_context(|| format!("--start {:?} is not a date YYYY-MM-DD", args.start))?;
    let t0 = date_start(start_date);
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let config = crate::config::Config::load(g)?;
    let store: Store = match &g.store {
        Some(url) => Store::open(url, &config.store_options)?,
        None => Store::open(
            &format!("file://{}", args.dir.display()),
            &config.store_options,
        )?,
    };
    let say = |msg: String| {
        if !g.json {
            eprintln!("{msg}");
        }
    };
    say(format!(
        "gco demo: {} nodes x {GPUS_PER_NODE} simulated GPUs, {} days from {start_date}, seed {}\n  store: {}",
        args.nodes,
        args.days,
        args.seed,
        store.url()
    ));

    // 1. Keys and registry.
    let mut signers = Vec::new();
    for n in 0..args.nodes {
        let signer = node_key(&args.dir, args.seed, n)?;
        let (zone, site) = SITES[n as usize % SITES.len()];
        let reg = Registration {
            node_id: node_id(n),
            public_key: signer.public_key().clone(),
            zone: zone.to_string(),
            site: site.to_string(),
            valid_from: t0,
            valid_to: None,
        };
        register(&store, &reg, t0).await?;
        signers.push(signer);
    }
    say(format!(
        "[1/5] keys: {} Ed25519 node keys in {}, registered in the store",
        args.nodes,
        args.dir.join("node-keys").display()
    ));

    // 2. Simulate and seal, node by node (each node's chain is sequential).
    let hours = args.days as u64 * 24;
    let pb = progress(args.nodes as u64 * hours, "seal", g.json);
    let mut batches = Vec::new();
    let (mut inferences, mut idle_rows, mut energy) = (0u64, 0u64, 0i64);
    let mut per_node = Vec::new();
    for (n, signer) in signers.iter().enumerate() {
        let mut writer = ChainWriter::new(signer, ChainHead::genesis(node_id(n as u32)));
        let mut node_energy = 0i64;
        let mut node_records = 0u64;
        for h in 0..hours {
            let records = simulate_hour(
                args.seed,
                n as u32,
                h,
                t0 + (h * HOUR_MS * 1000) as i64,
                args.peak_rate,
            );
            for r in &records {
                match r.kind {
                    RecordKind::Inference => inferences += 1,
                    RecordKind::Idle => idle_rows += 1,
                }
                node_energy += r.energy.0;
            }
            node_records += records.len() as u64;
            batches.extend(writer.seal(records)?);
            pb.inc(1);
        }
        energy += node_energy;
        per_node.push((
            node_id(n as u32),
            SITES[n % SITES.len()].0,
            node_records,
            node_energy,
        ));
        // A directory holding a different chain for this node would fork it: refuse.
        let stored = gco_ledger::batch::chain_head(&store, &node_id(n as u32)).await?;
        if stored.next_seq > 0
            && !batches.iter().any(|b| {
                b.seal.node_id == node_id(n as u32)
                    && b.seal.seq_last as u64 + 1 == stored.next_seq
                    && b.seal.batch_hash_bytes().ok() == Some(stored.prev_batch_hash)
            })
        {
            anyhow::bail!(
                "the store already holds a different ledger for {}; use a fresh --dir or the same --seed/--start",
                node_id(n as u32)
            );
        }
    }
    pb.finish_and_clear();
    let records = inferences + idle_rows;
    say(format!(
        "[2/5] sealed: {records} records ({inferences} inferences, {idle_rows} idle/overhead) into {} signed batches",
        batches.len()
    ));

    // 3. Upload create-only.
    let pb = progress(batches.len() as u64, "upload", g.json);
    let (created, present) =
        gco_ledger::batch::upload(&store, &batches, 16, &|_| pb.inc(1)).await?;
    pb.finish_and_clear();
    let bytes: u64 = batches.iter().map(|b| b.bytes.len() as u64).sum();
    say(format!(
        "[3/5] stored: {created} batches written, {present} already present; {bytes} bytes, {:.1} bytes/record",
        bytes as f64 / records.max(1) as f64
    ));

    // 4. Verify everything that is in the store.
    let report = gco_ledger::verify::verify(&store, &gco_ledger::VerifyOptions::default()).await?;
    // 5. Grid intensity: a synthetic hourly series per demo zone, stored in the cache the
    //    way provider fetches are (marked synthetic), then resolved through the cascade.
    let t_end = t0 + hours as i64 * HOUR_MS as i64 * 1000;
    let mut zones: Vec<&str> = per_node.iter().map(|n| n.1).collect();
    zones.sort();
    zones.dedup();
    let resolver0 = gco_grid_data::Resolver::new(Default::default())?;
    let mut grid_points = 0usize;
    for zone in &zones {
        let annual = resolver0.resolve(zone, t0, gco_grid_data::Signal::Average)?;
        let annual = gco_grid_data::MgPerKwh(annual.value_mg_per_kwh);
        let pts = gco_grid_data::synthetic::hourly(zone, annual, t0, t_end, args.seed);
        grid_points += pts.len();
        gco_grid_data::series::write_points(
            &store,
            &gco_grid_data::synthetic::meta(zone, annual, args.seed, t0, (t0, t_end)),
            &pts,
        )
        .await?;
    }
    let resolver = gco_grid_data::Resolver::new(
        gco_grid_data::series::SeriesIndex::load(&store, t0, t_end).await?,
    )?;
    let noon = t0 + 12 * HOUR_MS as i64 * 1000;
    let mut intensities = Vec::new();
    for zone in &zones {
        intensities.push(resolver.resolve(zone, noon, gco_grid_data::Signal::Average)?);
    }

    if !g.json {
        if report.ok {
            eprintln!(
                "[4/5] verified: {} batches, {} records, every hash, signature and chain link holds",
                report.batches_valid, report.records_valid
            );
        } else {
            crate::commands::print_verify(&report, false)?;
        }
        eprintln!(
            "[5/5] grid: {grid_points} synthetic hourly intensity points for {} in the cache",
            zones.join(", ")
        );
        for i in &intensities {
            eprintln!(
                "      {:<7} at {}: {:>8.3} gCO2e/kWh ({}, {:?})",
                i.zone,
                &i.at[..16],
                i.g_per_kwh,
                i.source,
                i.fallback_level
            );
        }
        eprintln!(
            "\n{:<14} {:<7} {:>9} {:>12}",
            "node", "zone", "records", "energy_kWh"
        );
        for (node, zone, n, mj) in &per_node {
            eprintln!("{node:<14} {zone:<7} {n:>9} {:>12}", kwh(*mj));
        }
        eprintln!("{:<14} {:<7} {records:>9} {:>12}", "total", "", kwh(energy));
        eprintln!(
            "\nledger: {}\nnext:   gco ledger verify --store {0}\n        gco ledger stats --store {0}",
            store.url()
        );
        eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    } else {
        print_json(&json!({
            "store": store.url(),
            "nodes": args.nodes,
            "days": args.days,
            "seed": args.seed,
            "records": records,
            "inferences": inferences,
            "idle_records": idle_rows,
            "energy_mj": energy,
            "batches": batches.len(),
            "batches_created": created,
            "batches_already_present": present,
            "bytes": bytes,
            "verified": report.ok,
            "grid_points": grid_points,
            "intensity_at_first_noon": intensities,
            "problems": report.problems,
        }))?;
    }
    Ok(if report.ok { 0 } else { 1 })
}
