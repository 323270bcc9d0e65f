//! `gco demo`: the whole chain on a simulated fleet, in one directory.
//!
//! Steps: derive node keys from the seed and register the nodes; run each node's
//! collector engine (the code `gco collect` runs) over simulated time: simulated H100s
//! read every 10 s, a request load over four models with a daily curve sent as spans,
//! attribution into inference and idle records, a seal at every hour; upload the sealed
//! batches create-only with the collector's uploader; verify the ledger; store a grid
//! series; print a summary. The same seed and flags give byte-identical objects, so a
//! rerun finds everything already there.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use gco_collector::engine::{Command, Engine, EngineConfig, EngineStats};
use gco_collector::gpu::GpuSource;
use gco_collector::metrics::Metrics;
use gco_collector::runtime::upload_once;
use gco_collector::{AttributionConfig, SimGpus};
use gco_ledger::keys::{KeyType, write_private_key_file};
use gco_ledger::registry::{Registration, register};
use gco_ledger::time::{MICROS_PER_SECOND, Micros, date_start};
use gco_ledger::{ChainHead, KeyFileSigner, Measurement, Signer, Store};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seeds::seed_for;
use serde_json::json;

use crate::cli::{DemoArgs, Global};
use crate::output::{kwh, print_json, progress};

/// A served model: GPUs per replica, mix weight and latency profile.
struct Model {
    id: &'static str,
    version: &'static str,
    gpus: usize,
    weight: u32,
    base_ms: u64,
    ms_per_token: u64,
}

const MODELS: [Model; 4] = [
    Model {
        id: "llama-3.1-70b-instruct",
        version: "2024-07",
        gpus: 4,
        weight: 30,
        base_ms: 300,
        ms_per_token: 25,
    },
    Model {
        id: "llama-3.1-8b-instruct",
        version: "2024-07",
        gpus: 1,
        weight: 40,
        base_ms: 80,
        ms_per_token: 8,
    },
    Model {
        id: "mistral-7b-instruct",
        version: "v0.3",
        gpus: 1,
        weight: 20,
        base_ms: 70,
        ms_per_token: 7,
    },
    Model {
        id: "mixtral-8x7b-instruct",
        version: "v0.1",
        gpus: 2,
        weight: 10,
        base_ms: 200,
        ms_per_token: 15,
    },
];

/// Load per hour of day (UTC), in percent of the peak.
const DIURNAL: [u64; 24] = [
    35, 30, 28, 27, 28, 33, 45, 60, 75, 88, 95, 100, 98, 97, 99, 100, 96, 90, 82, 72, 62, 52, 45,
    40,
];
/// Simulated GPUs per node (H100s: about 70 W idle to 700 W, see `gco_collector::sim`).
const GPUS_PER_NODE: usize = 8;

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

/// One simulated request, as the load generator sends it to a node's collector.
struct Request {
    id: String,
    model: &'static Model,
    gpus: Vec<String>,
    start: Micros,
    end: Micros,
    prompt: u64,
    completion: u64,
}

/// The requests that arrive at one node in one hour, with their durations.
fn requests_for_hour(
    seed: u64,
    node: u32,
    hour_index: u64,
    hour_start: Micros,
    peak_rate: u32,
) -> Vec<Request> {
    let mut rng = ChaCha8Rng::from_seed(seed_for(seed, node as u64, hour_index));
    let hour_of_day = ((hour_start / (3600 * MICROS_PER_SECOND)) % 24) as usize;
    let mean = peak_rate as u64 * DIURNAL[hour_of_day] / 100;
    let count = rng.random_range(mean * 9 / 10..=mean * 11 / 10 + 1);
    let total_weight: u32 = MODELS.iter().map(|m| m.weight).sum();
    let mut out = Vec::with_capacity(count as usize);
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
        let first_gpu = rng.random_range(0..GPUS_PER_NODE / model.gpus) * model.gpus;
        let start = hour_start + rng.random_range(0..HOUR_US);
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        id[6] = (id[6] & 0x0f) | 0x40; // UUID version 4
        id[8] = (id[8] & 0x3f) | 0x80;
        out.push(Request {
            id: {
                let h = hex_string(&id);
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                )
            },
            model,
            gpus: (first_gpu..first_gpu + model.gpus)
                .map(|g| g.to_string())
                .collect(),
            start,
            end: start + duration_ms as i64 * 1000,
            prompt,
            completion,
        });
    }
    out
}

/// Seconds between GPU readings in the demo (simulated time).
const SAMPLE_US: i64 = 10 * MICROS_PER_SECOND;
const HOUR_US: i64 = 3600 * MICROS_PER_SECOND;

/// What one node's collector did.
struct NodeRun {
    stats: EngineStats,
    /// Sequence number below which the sealed batches are checkpointed (uploadable).
    durable: Arc<AtomicU64>,
    requests: u64,
    /// Requests dropped because they would end after the simulated period.
    after_end: u64,
}

/// Runs one node's collector engine over simulated time: simulated GPUs read every
/// 10 s, the node's requests as span start/end events, attribution, and a seal at
/// every hour boundary. The sealed, signed batches are left in the spool's `sealed/`
/// for the uploader. Everything is a function of the seed, so a rerun seals the same
/// bytes.
fn collect_node(
    spool: &Path,
    signer: Arc<dyn Signer>,
    args: &DemoArgs,
    n: u32,
    t0: Micros,
    on_hour: &(dyn Fn() + Sync),
) -> Result<NodeRun> {
    if spool.exists() {
        std::fs::remove_dir_all(spool)
            .with_context(|| format!("clearing the demo spool {}", spool.display()))?;
    }
    let node = node_id(n);
    let hours = args.days as i64 * 24;
    let t_end = t0 + hours * HOUR_US;
    let gpu_ids: Vec<String> = (0..GPUS_PER_NODE).map(|g| g.to_string()).collect();
    let mut engine = Engine::open(
        EngineConfig {
            node_id: node.clone(),
            spool: spool.to_path_buf(),
            attribution: AttributionConfig {
                idle_window_us: HOUR_US,
                max_span_us: HOUR_US,
            },
            seal_max_records: 50_000,
            seal_max_age_us: HOUR_US,
            spool_max_bytes: u64::MAX,
        },
        signer,
        gpu_ids,
        Measurement::Simulated,
        || Ok(ChainHead::genesis(node.clone())),
        Arc::new(Metrics::new()),
    )?;
    let mut sim = SimGpus::new(GPUS_PER_NODE, gco_collector::sim::mix(args.seed ^ n as u64));

    let mut requests = Vec::new();
    for h in 0..hours {
        requests.extend(requests_for_hour(
            args.seed,
            n,
            h as u64,
            t0 + h * HOUR_US,
            args.peak_rate,
        ));
    }
    let total = requests.len() as u64;
    requests.retain(|r| r.end <= t_end);
    let after_end = total - requests.len() as u64;
    // Span events in time order; at equal times ends go first, then by request.
    let mut events: Vec<(Micros, bool, usize)> = Vec::with_capacity(requests.len() * 2);
    for (i, r) in requests.iter().enumerate() {
        events.push((r.start, true, i));
        events.push((r.end, false, i));
    }
    events.sort_unstable();
    let mut events = events.into_iter().peekable();

    let refused = |e: gco_collector::attribution::SpanError| {
        anyhow::anyhow!("the demo's collector on {node} refused a span: {e}")
    };
    // Readings from t0 to one reading past the end: that last one closes the final
    // hour's idle window.
    let samples = hours * (HOUR_US / SAMPLE_US) + 1;
    for k in 0..=samples {
        let ts = t0 + k * SAMPLE_US;
        while let Some((t, is_start, i)) = events.next_if(|e| e.0 <= ts) {
            let r = &requests[i];
            // The GPUs draw power by how many spans they run: bring the counters up to
            // `t` with the old load before the span changes it.
            sim.read(t)?;
            let cmd = if is_start {
                Command::Start {
                    id: Some(r.id.clone()),
                    model_id: Some(r.model.id.to_string()),
                    model_version: Some(r.model.version.to_string()),
                    gpus: r.gpus.clone(),
                }
            } else {
                Command::End {
                    id: r.id.clone(),
                    prompt_tokens: Some(r.prompt),
                    completion_tokens: Some(r.completion),
                }
            };
            engine.handle(cmd, t)?.map_err(refused)?;
            for g in &r.gpus {
                let g: usize = g.parse()?;
                sim.set_activity(g, engine.attributor().active_on(g));
            }
        }
        let readings = sim.read(ts)?;
        engine
            .handle(Command::Sample { t: ts, readings }, ts)?
            .map_err(refused)?;
        if (k > 0 && k % (HOUR_US / SAMPLE_US) == 0) || engine.seal_due() {
            engine.seal()?;
            on_hour();
        }
    }
    engine.shutdown()?;
    Ok(NodeRun {
        durable: engine.durable_seq(),
        stats: engine.stats,
        requests: requests.len() as u64,
        after_end,
    })
}

fn utc_month(t: Micros) -> String {
    gco_ledger::time::utc_date(t).format("%Y-%m").to_string()
}

/// The demo's pipeline configuration: a PUE and reporting scope per demo site (the two
/// cloud regions are Scope 3), default embodied figures, and one guarantee-of-origin
/// certificate for the Paris site. No residual mixes: the run flags that and uses the
/// grid average for uncovered energy.
fn demo_pipeline_config() -> gco_pipelines::PipelineConfig {
    use gco_pipelines::config::{Instrument, Scope, Site};
    let site = |pue: f64, scope: Scope| Site {
        pue,
        scope,
        hardware: None,
    };
    gco_pipelines::PipelineConfig {
        organisation: "gco demo".into(),
        sites: [
            ("paris-dc1", site(1.2, Scope::Scope2)),
            ("frankfurt-dc2", site(1.3, Scope::Scope2)),
            ("gcp-us-west2", site(1.1, Scope::Scope3)),
            ("stockholm-dc1", site(1.15, Scope::Scope2)),
            ("warsaw-dc1", site(1.4, Scope::Scope2)),
            ("aws-eu-west-1", site(1.15, Scope::Scope3)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        instruments: vec![Instrument {
            id: "DEMO-GO-FR-0001".into(),
            kind: "go".into(),
            zone: "FR".into(),
            from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            to: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap_or_default(),
            mwh: 1.0,
            factor_g_per_kwh: 0.0,
        }],
        ..Default::default()
    }
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

/// The demo issuer's did:web host (its DID document is written to DIR/did.json).
const DEMO_ISSUER_DOMAIN: &str = "carbon.demo.example";

pub async fn run(args: DemoArgs, g: &Global) -> Result<u8> {
    let started = std::time::Instant::now();
    let start_date = NaiveDate::parse_from_str(&args.start, "%Y-%m-%d")
        .with_context(|| format!("--start {:?} is not a date YYYY-MM-DD", args.start))?;
    let t0 = date_start(start_date);
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let config = crate::config::load(g)?;
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
        signers.push(Arc::new(signer));
    }
    say(format!(
        "[1/8] keys: {} Ed25519 node keys in {}, registered in the store",
        args.nodes,
        args.dir.join("node-keys").display()
    ));

    // 2. Each node's collector engine: simulated GPUs, the request load as spans,
    //    attribution, hourly seals into the node's spool. Nodes run in parallel.
    let hours = args.days as u64 * 24;
    let spool_root = args.dir.join("spool");
    let pb = progress(args.nodes as u64 * hours, "collect", g.json);
    let runs: Vec<NodeRun> = {
        let (args, signers, pb, spool_root) = (&args, &signers, &pb, &spool_root);
        let on_hour = || pb.inc(1);
        std::thread::scope(|s| {
            let handles: Vec<_> = signers
                .iter()
                .enumerate()
                .map(|(n, signer)| {
                    let on_hour = &on_hour;
                    s.spawn(move || {
                        let signer: Arc<dyn Signer> = signer.clone();
                        collect_node(
                            &spool_root.join(node_id(n as u32)),
                            signer,
                            args,
                            n as u32,
                            t0,
                            on_hour,
                        )
                        .with_context(|| format!("simulating {}", node_id(n as u32)))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a node simulation panicked")))
                })
                .collect::<Result<Vec<_>>>()
        })?
    };
    pb.finish_and_clear();
    let sum = |f: fn(&NodeRun) -> u64| runs.iter().map(f).sum::<u64>();
    let inferences = sum(|r| r.stats.inference_records);
    let idle_rows = sum(|r| r.stats.idle_records);
    let records = inferences + idle_rows;
    let batch_count = sum(|r| r.stats.batches);
    let inference_mj: i64 = runs.iter().map(|r| r.stats.inference_mj).sum();
    let idle_mj: i64 = runs.iter().map(|r| r.stats.idle_mj).sum();
    let energy = inference_mj + idle_mj;
    let dropped = sum(|r| r.after_end);
    let per_node: Vec<(String, &str, u64, i64)> = runs
        .iter()
        .enumerate()
        .map(|(n, r)| {
            (
                node_id(n as u32),
                SITES[n % SITES.len()].0,
                r.stats.inference_records + r.stats.idle_records,
                r.stats.inference_mj + r.stats.idle_mj,
            )
        })
        .collect();
    say(format!(
        "[2/8] collected: {} requests sent as spans to each node's collector ({dropped} that \
         would end after the period not sent); {records} records sealed into {batch_count} \
         signed batches:\n      {inferences} inferences {} kWh, {idle_rows} idle/overhead {} kWh",
        sum(|r| r.requests),
        kwh(inference_mj),
        kwh(idle_mj),
    ));

    // 3. The collector's uploader: create-only puts of the sealed batches, each removed
    //    from the spool once the store confirmed it.
    let pb = progress(args.nodes as u64, "upload", g.json);
    let metrics = Metrics::new();
    let mut up = gco_collector::runtime::Uploaded::default();
    for (n, run) in runs.iter().enumerate() {
        let node = node_id(n as u32);
        let done = upload_once(
            &store,
            &spool_root.join(&node),
            &node,
            &run.durable,
            &metrics,
        )
        .await
        .with_context(|| {
            format!(
                "uploading {node}'s batches (if the store already holds a different ledger for \
                 it, use a fresh --dir or --store, or the same --seed, --start and --days)"
            )
        })?;
        up.created += done.created;
        up.present += done.present;
        up.bytes += done.bytes;
        pb.inc(1);
    }
    let (created, present, bytes) = (up.created, up.present, up.bytes);
    pb.finish_and_clear();
    std::fs::remove_dir_all(&spool_root)
        .with_context(|| format!("removing the demo spool {}", spool_root.display()))?;
    say(format!(
        "[3/8] stored: {created} batches written, {present} already present; {bytes} bytes, {:.1} bytes/record",
        bytes as f64 / records.max(1) as f64
    ));

    // 4. Verify everything that is in the store.
    let report = gco_ledger::verify::verify(&store, &gco_ledger::VerifyOptions::default()).await?;
    // 5. Grid intensity: a synthetic hourly series per demo zone, stored in the cache the
    //    way provider fetches are (marked synthetic), then resolved through the cascade.
    let t_end = t0 + hours as i64 * HOUR_US;
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
    let noon = t0 + 12 * HOUR_US;
    let mut intensities = Vec::new();
    for zone in &zones {
        intensities.push(resolver.resolve(zone, noon, gco_grid_data::Signal::Average)?);
    }

    // 6. The monthly emissions run over every month the demo touches. The demo's
    //    configuration is written to DIR/gco.toml so `gco --config DIR/gco.toml run`
    //    reproduces it.
    let pipeline = demo_pipeline_config();
    #[derive(serde::Serialize)]
    struct DemoToml<'a> {
        store: &'a str,
        pipeline: &'a gco_pipelines::PipelineConfig,
    }
    let config_path = args.dir.join("gco.toml");
    std::fs::write(
        &config_path,
        format!(
            "# Written by `gco demo`: the demo's store and pipeline configuration.\n{}",
            toml::to_string(&DemoToml {
                store: store.url(),
                pipeline: &pipeline,
            })?
        ),
    )
    .with_context(|| format!("writing {}", config_path.display()))?;
    let as_of = crate::commands::time_or_now(args.as_of.as_deref(), "as-of")?;
    let mut emissions = Vec::new();
    let months = gco_pipelines::Period::range(
        gco_pipelines::Period::parse(&utc_month(t0))?,
        gco_pipelines::Period::parse(&utc_month(t_end - 1))?,
    );
    for period in months {
        let job = gco_pipelines::Job {
            store: &store,
            cfg: &pipeline,
            period,
            as_of,
            code_version: crate::commands::CODE_VERSION.into(),
            progress: None,
            // Step 7 issues per-inference credentials, which read the ledger anyway.
            member_roots: false,
            allow_empty: false,
            lease: crate::commands::lease_options(g, "gco demo"),
        };
        let outcome = job.run(false).await?;
        if let gco_pipelines::Outcome::Empty { .. } = outcome {
            anyhow::bail!(
                "the emissions run of {period} found no batch the store held at the as-of \
                 time {}: give an --as-of after the demo stored them (now, or later)",
                gco_ledger::time::format_utc(as_of)
            );
        }
        emissions.push((period, outcome));
    }

    // 7. Credentials: a did:web issuer (seeded keys), every granularity and format,
    //    then a sample verified end to end (signature, status, evidence down to the
    //    node's signed batch).
    let issuer_dir = args.dir.join("issuer");
    let issuer = if issuer_dir
        .join(gco_credentials::issuer::ISSUER_FILE)
        .exists()
    {
        gco_credentials::Issuer::load(&issuer_dir)?
    } else {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed_for(args.seed, 0x1550_E500, 0));
        gco_credentials::Issuer::init(
            &issuer_dir,
            Some(DEMO_ISSUER_DOMAIN),
            gco_credentials::KeyKind::Ed25519,
            true,
            &gco_ledger::time::format_utc(t0),
            &mut rng,
        )?
    };
    let did_path = args.dir.join("did.json");
    let did_document = issuer.did_document()?;
    std::fs::write(
        &did_path,
        serde_json::to_string_pretty(&did_document)? + "\n",
    )
    .with_context(|| format!("writing {}", did_path.display()))?;
    let resolver_doc = did_document.clone();
    let resolver = gco_credentials::Resolver::new(vec![did_document]);
    let mut credentials = Vec::new();
    let mut sample_checked = 0usize;
    for (period, outcome) in &emissions {
        let version = match outcome {
            gco_pipelines::Outcome::Created { version, .. }
            | gco_pipelines::Outcome::UpToDate { version, .. } => *version,
            gco_pipelines::Outcome::Staged { .. } | gco_pipelines::Outcome::Empty { .. } => {
                continue;
            }
        };
        let mut opts = gco_pipelines::certify::IssueOptions::aggregates(*period);
        opts.version = Some(version);
        opts.granularities = gco_pipelines::certify::Granularity::ALL.into();
        opts.formats = [
            gco_credentials::vc::Format::VcJwt,
            gco_credentials::vc::Format::VcDi,
        ]
        .into();
        if args.legacy {
            opts.formats.insert(gco_credentials::vc::Format::Legacy);
        }
        let report = gco_pipelines::certify::issue(&store, &issuer, &opts).await?;
        let prefix = gco_pipelines::certify::version_prefix(&period.to_string(), version);
        let at = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(as_of)
            .context("as-of out of range")?;
        for (format, doc) in gco_pipelines::lookup::sample_documents(&store, &prefix).await? {
            // Every check, the evidence chain to the ledger included; an error names
            // the first that failed.
            gco_pipelines::verify::verify_credential(
                &doc,
                &resolver,
                at,
                None,
                Some(&store),
                false,
            )
            .await
            .with_context(|| format!("the demo's own {format} credential does not verify"))?;
            sample_checked += 1;
        }
        credentials.push(report);
    }

    // 8. Reports and the auditor package: the CSRD / ESRS E1 report and one EU AI Act
    //    report per model (PDF/A-3b with their CSVs), then the signed package, verified.
    let months: Vec<String> = emissions.iter().map(|(p, _)| p.to_string()).collect();
    let report_period = crate::cli::ReportPeriod {
        period: months.first().cloned().unwrap_or_default(),
        months: if months.len() > 1 {
            months.clone()
        } else {
            Vec::new()
        },
        templates: None,
    };
    let reports_dir = args.dir.join("reports");
    let package_path = args
        .dir
        .join(format!("audit-package-{}.zip", report_period.period));
    if package_path.exists() {
        std::fs::remove_file(&package_path)
            .with_context(|| format!("replacing {}", package_path.display()))?;
    }
    let (package, reports) = crate::commands::report::write_package(
        &store,
        &gco_report::ReportConfig::default(),
        &report_period,
        &package_path,
        &issuer_dir,
        true,
    )
    .await?;
    let mut report_files = Vec::new();
    for r in &reports {
        report_files.extend(r.write(&reports_dir)?);
    }
    let package_check = gco_report::package::verify(
        &gco_report::package::read(&package_path)?,
        Some(&resolver_doc),
    );
    if !package_check.ok {
        anyhow::bail!("the demo's own audit package does not verify: {package_check:?}");
    }

    if !g.json {
        if report.ok {
            eprintln!(
                "[4/8] verified: {} batches, {} records, every hash, signature and chain link holds",
                report.batches_valid, report.records_valid
            );
        } else {
            crate::commands::print_verify(&report, false)?;
        }
        eprintln!(
            "[5/8] grid: {grid_points} synthetic hourly intensity points for {} in the cache",
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
        for (period, outcome) in &emissions {
            eprint!("[6/8] emissions ");
            crate::commands::describe_run(*period, outcome);
        }
        for c in &credentials {
            let total: u64 = c.credentials.values().sum();
            eprintln!(
                "[7/8] credentials {} version {}: {total} issued by {} ({}), {} member inferences under the aggregate roots",
                c.period, c.version, c.issuer, c.outcome, c.member_inferences
            );
        }
        eprintln!(
            "      {sample_checked} sampled credentials verified end to end (signature, schema, status, evidence down to the node batches)"
        );
        eprintln!(
            "[8/8] reports: {} PDFs (PDF/A-3b) and their CSVs in {}; auditor package: {} files, signed manifest verified",
            reports.len(),
            reports_dir.display(),
            package["files"]
        );
        eprintln!(
            "\n{:<14} {:<7} {:>9} {:>12}",
            "node", "zone", "records", "energy_kWh"
        );
        for (node, zone, n, mj) in &per_node {
            eprintln!("{node:<14} {zone:<7} {n:>9} {:>12}", kwh(*mj));
        }
        eprintln!("{:<14} {:<7} {records:>9} {:>12}", "total", "", kwh(energy));
        eprintln!(
            "\nledger: {}\nnext:   gco ledger verify --store {0}\n        gco ledger stats --store {0}\n        gco --config {1} run --period {2} --force",
            store.url(),
            config_path.display(),
            utc_month(t0)
        );
        eprintln!(
            "reports: {}\naudit:   {}\n         gco audit verify {} --did-document {}",
            reports_dir.display(),
            package_path.display(),
            package_path.display(),
            did_path.display()
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
            "batches": batch_count,
            "requests": sum(|r| r.requests),
            "requests_after_period": dropped,
            "inference_energy_mj": inference_mj,
            "idle_energy_mj": idle_mj,
            "batches_created": created,
            "batches_already_present": present,
            "bytes": bytes,
            "verified": report.ok,
            "grid_points": grid_points,
            "intensity_at_first_noon": intensities,
            "problems": report.problems,
            "emissions": emissions.iter().map(|(p, o)| json!({"period": p.to_string(), "result": o})).collect::<Vec<_>>(),
            "credentials": credentials,
            "credentials_sample_verified": sample_checked,
            "did_document": did_path,
            "reports": report_files,
            "audit_package": package,
        }))?;
    }
    Ok(if report.ok { 0 } else { 1 })
}
