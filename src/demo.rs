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

/// The store, the clock and the flags every step reads.
struct Demo<'a> {
    args: &'a DemoArgs,
    g: &'a Global,
    store: Store,
    /// Start of the simulated period (UTC midnight of `--start`).
    t0: Micros,
    /// Simulated hours.
    hours: u64,
}

impl Demo<'_> {
    fn say(&self, msg: impl FnOnce() -> String) {
        if !self.g.json {
            eprintln!("{}", msg());
        }
    }
    fn end(&self) -> Micros {
        self.t0 + self.hours as i64 * HOUR_US
    }
    fn spool_root(&self) -> std::path::PathBuf {
        self.args.dir.join("spool")
    }
}

pub async fn run(args: DemoArgs, g: &Global) -> Result<u8> {
    let started = std::time::Instant::now();
    let start_date = NaiveDate::parse_from_str(&args.start, "%Y-%m-%d")
        .with_context(|| format!("--start {:?} is not a date YYYY-MM-DD", args.start))?;
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
    let demo = Demo {
        args: &args,
        g,
        store,
        t0: date_start(start_date),
        hours: args.days as u64 * 24,
    };
    demo.say(|| {
        format!(
            "gco demo: {} nodes x {GPUS_PER_NODE} simulated GPUs, {} days from {start_date}, seed {}\n  store: {}",
            args.nodes,
            args.days,
            args.seed,
            demo.store.url()
        )
    });
    let signers = register_nodes(&demo).await?;
    let fleet = collect(&demo, &signers)?;
    let uploaded = upload(&demo, &fleet).await?;
    let verified =
        gco_ledger::verify::verify(&demo.store, &gco_ledger::VerifyOptions::default()).await?;
    let grid = grid(&demo, &fleet).await?;
    let as_of = crate::commands::time_or_now(args.as_of.as_deref(), "as-of")?;
    let emissions = emissions(&demo, as_of).await?;
    let credentials = credentials(&demo, &emissions.outcomes, as_of).await?;
    let reports = reports(&demo, &emissions.outcomes, &credentials).await?;
    let summary = Summary {
        fleet,
        uploaded,
        verified,
        grid,
        emissions,
        credentials,
        reports,
    };
    if g.json {
        summary.print_json(&demo)?;
    } else {
        summary.print_text(&demo, started)?;
    }
    Ok(if summary.verified.ok { 0 } else { 1 })
}

/// Step 1: the nodes' keys (from the seed) and their registrations.
async fn register_nodes(demo: &Demo<'_>) -> Result<Vec<Arc<KeyFileSigner>>> {
    let args = demo.args;
    let mut signers = Vec::new();
    for n in 0..args.nodes {
        let signer = node_key(&args.dir, args.seed, n)?;
        let (zone, site) = SITES[n as usize % SITES.len()];
        let reg = Registration {
            node_id: node_id(n),
            public_key: signer.public_key().clone(),
            zone: zone.to_string(),
            site: site.to_string(),
            valid_from: demo.t0,
            valid_to: None,
        };
        register(&demo.store, &reg, demo.t0).await?;
        signers.push(Arc::new(signer));
    }
    demo.say(|| {
        format!(
            "[1/8] keys: {} Ed25519 node keys in {}, registered in the store",
            args.nodes,
            args.dir.join("node-keys").display()
        )
    });
    Ok(signers)
}

/// What the fleet's collectors sealed.
struct Fleet {
    runs: Vec<NodeRun>,
    /// (node, zone, records, mJ) per node.
    per_node: Vec<(String, &'static str, u64, i64)>,
}

impl Fleet {
    fn sum(&self, f: fn(&NodeRun) -> u64) -> u64 {
        self.runs.iter().map(f).sum()
    }
    fn inference_mj(&self) -> i64 {
        self.runs.iter().map(|r| r.stats.inference_mj).sum()
    }
    fn idle_mj(&self) -> i64 {
        self.runs.iter().map(|r| r.stats.idle_mj).sum()
    }
    fn records(&self) -> u64 {
        self.sum(|r| r.stats.inference_records) + self.sum(|r| r.stats.idle_records)
    }
}

/// Step 2: each node's collector engine (simulated GPUs, the request load as spans,
/// attribution, hourly seals into the node's spool), the nodes in parallel.
fn collect(demo: &Demo<'_>, signers: &[Arc<KeyFileSigner>]) -> Result<Fleet> {
    let (args, t0) = (demo.args, demo.t0);
    let spool_root = demo.spool_root();
    let pb = progress(args.nodes as u64 * demo.hours, "collect", demo.g.json);
    let runs: Vec<NodeRun> = {
        let (pb, spool_root) = (&pb, &spool_root);
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
    let per_node = runs
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
    let fleet = Fleet { runs, per_node };
    demo.say(|| {
        format!(
            "[2/8] collected: {} requests sent as spans to each node's collector ({} that \
             would end after the period not sent); {} records sealed into {} \
             signed batches:\n      {} inferences {} kWh, {} idle/overhead {} kWh",
            fleet.sum(|r| r.requests),
            fleet.sum(|r| r.after_end),
            fleet.records(),
            fleet.sum(|r| r.stats.batches),
            fleet.sum(|r| r.stats.inference_records),
            kwh(fleet.inference_mj()),
            fleet.sum(|r| r.stats.idle_records),
            kwh(fleet.idle_mj()),
        )
    });
    Ok(fleet)
}

/// Step 3: the collector's uploader: create-only puts of the sealed batches, each
/// removed from the spool once the store confirmed it; then the spool is removed.
async fn upload(demo: &Demo<'_>, fleet: &Fleet) -> Result<gco_collector::runtime::Uploaded> {
    let spool_root = demo.spool_root();
    let pb = progress(demo.args.nodes as u64, "upload", demo.g.json);
    let metrics = Metrics::new();
    let mut up = gco_collector::runtime::Uploaded::default();
    let destination = gco_collector::gateway::Destination::Store(demo.store.clone());
    for (n, run) in fleet.runs.iter().enumerate() {
        let node = node_id(n as u32);
        let done = upload_once(
            &destination,
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
    pb.finish_and_clear();
    std::fs::remove_dir_all(&spool_root)
        .with_context(|| format!("removing the demo spool {}", spool_root.display()))?;
    demo.say(|| {
        format!(
            "[3/8] stored: {} batches written, {} already present; {} bytes, {:.1} bytes/record",
            up.created,
            up.present,
            up.bytes,
            up.bytes as f64 / fleet.records().max(1) as f64
        )
    });
    Ok(up)
}

/// What step 5 stored.
struct Grid {
    zones: Vec<&'static str>,
    points: usize,
    /// The intensity of each zone at noon of the first day, through the cascade.
    intensities: Vec<gco_grid_data::Intensity>,
}

/// Step 5: a synthetic hourly series per demo zone, stored in the cache the way
/// provider fetches are (marked synthetic), then resolved through the cascade.
async fn grid(demo: &Demo<'_>, fleet: &Fleet) -> Result<Grid> {
    let (t0, t_end) = (demo.t0, demo.end());
    let mut zones: Vec<&'static str> = fleet.per_node.iter().map(|n| n.1).collect();
    zones.sort();
    zones.dedup();
    let resolver0 = gco_grid_data::Resolver::new(Default::default())?;
    let mut points = 0usize;
    for zone in &zones {
        let annual = resolver0.resolve(zone, t0, gco_grid_data::Signal::Average)?;
        let annual = gco_grid_data::MgPerKwh(annual.value_mg_per_kwh);
        let pts = gco_grid_data::synthetic::hourly(zone, annual, t0, t_end, demo.args.seed);
        points += pts.len();
        gco_grid_data::series::write_points(
            &demo.store,
            &gco_grid_data::synthetic::meta(zone, annual, demo.args.seed, t0, (t0, t_end)),
            &pts,
        )
        .await?;
    }
    let resolver = gco_grid_data::Resolver::new(
        gco_grid_data::series::SeriesIndex::load(&demo.store, t0, t_end).await?,
    )?;
    let noon = t0 + 12 * HOUR_US;
    let mut intensities = Vec::new();
    for zone in &zones {
        intensities.push(resolver.resolve(zone, noon, gco_grid_data::Signal::Average)?);
    }
    Ok(Grid {
        zones,
        points,
        intensities,
    })
}

/// What step 6 ran.
struct Emissions {
    config_path: std::path::PathBuf,
    outcomes: Vec<(gco_pipelines::Period, gco_pipelines::Outcome)>,
}

/// Step 6: the monthly emissions run over every month the demo touches. The demo's
/// configuration is written to DIR/gco.toml so `gco --config DIR/gco.toml run`
/// reproduces it.
async fn emissions(demo: &Demo<'_>, as_of: Micros) -> Result<Emissions> {
    let pipeline = demo_pipeline_config();
    #[derive(serde::Serialize)]
    struct DemoToml<'a> {
        store: &'a str,
        pipeline: &'a gco_pipelines::PipelineConfig,
    }
    let config_path = demo.args.dir.join("gco.toml");
    std::fs::write(
        &config_path,
        format!(
            "# Written by `gco demo`: the demo's store and pipeline configuration.\n{}",
            toml::to_string(&DemoToml {
                store: demo.store.url(),
                pipeline: &pipeline,
            })?
        ),
    )
    .with_context(|| format!("writing {}", config_path.display()))?;
    let mut outcomes = Vec::new();
    let months = gco_pipelines::Period::range(
        gco_pipelines::Period::parse(&utc_month(demo.t0))?,
        gco_pipelines::Period::parse(&utc_month(demo.end() - 1))?,
    );
    for period in months {
        let job = gco_pipelines::Job {
            store: &demo.store,
            cfg: &pipeline,
            period,
            as_of,
            code_version: crate::commands::CODE_VERSION.into(),
            progress: None,
            // Step 7 issues per-inference credentials, which read the ledger anyway.
            member_roots: false,
            allow_empty: false,
            lease: crate::commands::lease_options(demo.g, "gco demo"),
        };
        let outcome = job.run(false).await?;
        if let gco_pipelines::Outcome::Empty { .. } = outcome {
            anyhow::bail!(
                "the emissions run of {period} found no batch the store held at the as-of \
                 time {}: give an --as-of after the demo stored them (now, or later)",
                gco_ledger::time::format_utc(as_of)
            );
        }
        outcomes.push((period, outcome));
    }
    Ok(Emissions {
        config_path,
        outcomes,
    })
}

/// What step 7 issued and checked.
struct Credentials {
    issuer: gco_credentials::Issuer,
    did_path: std::path::PathBuf,
    did_document: serde_json::Value,
    reports: Vec<gco_pipelines::certify::IssueReport>,
    sample_checked: usize,
}

/// The demo's issuer in DIR/issuer: did:web with keys from the seed, made on the
/// first run.
fn demo_issuer(demo: &Demo<'_>) -> Result<gco_credentials::Issuer> {
    let issuer_dir = demo.args.dir.join("issuer");
    if issuer_dir
        .join(gco_credentials::issuer::ISSUER_FILE)
        .exists()
    {
        return Ok(gco_credentials::Issuer::load(&issuer_dir)?);
    }
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed_for(demo.args.seed, 0x1550_E500, 0));
    Ok(gco_credentials::Issuer::init(
        &issuer_dir,
        Some(DEMO_ISSUER_DOMAIN),
        gco_credentials::KeyKind::Ed25519,
        true,
        &gco_ledger::time::format_utc(demo.t0),
        &mut rng,
    )?)
}

/// Step 7: credentials of every granularity and format for each month's version, then
/// a sample verified end to end (signature, status, evidence down to the node's signed
/// batch).
async fn credentials(
    demo: &Demo<'_>,
    emissions: &[(gco_pipelines::Period, gco_pipelines::Outcome)],
    as_of: Micros,
) -> Result<Credentials> {
    let issuer = demo_issuer(demo)?;
    let did_path = demo.args.dir.join("did.json");
    let did_document = issuer.did_document()?;
    std::fs::write(
        &did_path,
        serde_json::to_string_pretty(&did_document)? + "\n",
    )
    .with_context(|| format!("writing {}", did_path.display()))?;
    let resolver = gco_credentials::Resolver::new(vec![did_document.clone()]);
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(as_of)
        .context("as-of out of range")?;
    let mut reports = Vec::new();
    let mut sample_checked = 0usize;
    for (period, outcome) in emissions {
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
        if demo.args.legacy {
            opts.formats.insert(gco_credentials::vc::Format::Legacy);
        }
        let report = gco_pipelines::certify::issue(&demo.store, &issuer, &opts).await?;
        let prefix = gco_pipelines::certify::version_prefix(&period.to_string(), version);
        for (format, doc) in gco_pipelines::lookup::sample_documents(&demo.store, &prefix).await? {
            // Every check, the evidence chain to the ledger included; an error names
            // the first that failed.
            gco_pipelines::verify::verify_credential(
                &doc,
                &resolver,
                at,
                None,
                Some(&demo.store),
                false,
            )
            .await
            .with_context(|| format!("the demo's own {format} credential does not verify"))?;
            sample_checked += 1;
        }
        reports.push(report);
    }
    Ok(Credentials {
        issuer,
        did_path,
        did_document,
        reports,
        sample_checked,
    })
}

/// What step 8 wrote.
struct Reports {
    dir: std::path::PathBuf,
    files: Vec<std::path::PathBuf>,
    count: usize,
    package_path: std::path::PathBuf,
    package: gco_report::package::Written,
}

/// Step 8: the CSRD / ESRS E1 report and one EU AI Act report per model (PDF/A-3b with
/// their CSVs), then the signed auditor package, verified.
async fn reports(
    demo: &Demo<'_>,
    emissions: &[(gco_pipelines::Period, gco_pipelines::Outcome)],
    credentials: &Credentials,
) -> Result<Reports> {
    let periods: Vec<gco_pipelines::Period> = emissions.iter().map(|(p, _)| *p).collect();
    let (first, last) = match (periods.first(), periods.last()) {
        (Some(a), Some(b)) => (*a, *b),
        _ => anyhow::bail!("the demo ran no month"),
    };
    let label = if first == last {
        first.to_string()
    } else {
        format!("{first}..{last}")
    };
    let data = gco_report::load(&demo.store, &label, periods).await?;
    let dir = demo.args.dir.join("reports");
    let package_path = demo.args.dir.join(format!("audit-package-{first}.zip"));
    if package_path.exists() {
        std::fs::remove_file(&package_path)
            .with_context(|| format!("replacing {}", package_path.display()))?;
    }
    let (package, reports) = gco_report::package::write_package(
        &demo.store,
        &data,
        &gco_report::ReportConfig::default(),
        &gco_report::Templates::builtin()?,
        &credentials.issuer,
        &package_path,
        || {},
    )
    .await?;
    let mut files = Vec::new();
    for r in &reports {
        files.extend(r.write(&dir)?);
    }
    let check = gco_report::package::verify(
        &gco_report::package::read(&package_path)?,
        Some(&credentials.did_document),
    );
    if !check.ok {
        anyhow::bail!("the demo's own audit package does not verify: {check:?}");
    }
    Ok(Reports {
        dir,
        files,
        count: reports.len(),
        package_path,
        package,
    })
}

/// Everything the demo did, for its summary.
struct Summary {
    fleet: Fleet,
    uploaded: gco_collector::runtime::Uploaded,
    verified: gco_ledger::VerifyReport,
    grid: Grid,
    emissions: Emissions,
    credentials: Credentials,
    reports: Reports,
}

impl Summary {
    fn print_text(&self, demo: &Demo<'_>, started: std::time::Instant) -> Result<()> {
        let (fleet, verified, grid) = (&self.fleet, &self.verified, &self.grid);
        if verified.ok {
            eprintln!(
                "[4/8] verified: {} batches, {} records, every hash, signature and chain link holds",
                verified.batches_valid, verified.records_valid
            );
        } else {
            crate::commands::print_verify(verified, false)?;
        }
        eprintln!(
            "[5/8] grid: {} synthetic hourly intensity points for {} in the cache",
            grid.points,
            grid.zones.join(", ")
        );
        for i in &grid.intensities {
            eprintln!(
                "      {:<7} at {}: {:>8.3} gCO2e/kWh ({}, {:?})",
                i.zone,
                &i.at[..16],
                i.g_per_kwh,
                i.source,
                i.fallback_level
            );
        }
        for (period, outcome) in &self.emissions.outcomes {
            eprint!("[6/8] emissions ");
            crate::commands::describe_run(*period, outcome);
        }
        for c in &self.credentials.reports {
            let total: u64 = c.credentials.values().sum();
            eprintln!(
                "[7/8] credentials {} version {}: {total} issued by {} ({}), {} member inferences under the aggregate roots",
                c.period, c.version, c.issuer, c.outcome, c.member_inferences
            );
        }
        eprintln!(
            "      {} sampled credentials verified end to end (signature, schema, status, evidence down to the node batches)",
            self.credentials.sample_checked
        );
        let r = &self.reports;
        eprintln!(
            "[8/8] reports: {} PDFs (PDF/A-3b) and their CSVs in {}; auditor package: {} files, signed manifest verified",
            r.count,
            r.dir.display(),
            r.package.files
        );
        eprintln!(
            "\n{:<14} {:<7} {:>9} {:>12}",
            "node", "zone", "records", "energy_kWh"
        );
        for (node, zone, n, mj) in &fleet.per_node {
            eprintln!("{node:<14} {zone:<7} {n:>9} {:>12}", kwh(*mj));
        }
        eprintln!(
            "{:<14} {:<7} {:>9} {:>12}",
            "total",
            "",
            fleet.records(),
            kwh(fleet.inference_mj() + fleet.idle_mj())
        );
        eprintln!(
            "\nledger: {}\nnext:   gco ledger verify --store {0}\n        gco ledger stats --store {0}\n        gco --config {1} run --period {2} --force",
            demo.store.url(),
            self.emissions.config_path.display(),
            utc_month(demo.t0)
        );
        eprintln!(
            "reports: {}\naudit:   {}\n         gco audit verify {} --did-document {}",
            r.dir.display(),
            r.package_path.display(),
            r.package_path.display(),
            self.credentials.did_path.display()
        );
        eprintln!("serve:   {}", self.serve_command(demo));
        eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
        Ok(())
    }

    /// The command that serves the demo's store and hosts its issuer's DID document.
    /// The demo's figures are sample data, so its read API is public (`--public-read`);
    /// a real store's needs a key of scope read.
    fn serve_command(&self, demo: &Demo<'_>) -> String {
        format!(
            "gco serve --store {} --did-document {} --public-read",
            demo.store.url(),
            self.credentials.did_path.display()
        )
    }

    fn print_json(&self, demo: &Demo<'_>) -> Result<()> {
        let (fleet, args) = (&self.fleet, demo.args);
        print_json(&json!({
            "store": demo.store.url(),
            "nodes": args.nodes,
            "days": args.days,
            "seed": args.seed,
            "records": fleet.records(),
            "inferences": fleet.sum(|r| r.stats.inference_records),
            "idle_records": fleet.sum(|r| r.stats.idle_records),
            "energy_mj": fleet.inference_mj() + fleet.idle_mj(),
            "batches": fleet.sum(|r| r.stats.batches),
            "requests": fleet.sum(|r| r.requests),
            "requests_after_period": fleet.sum(|r| r.after_end),
            "inference_energy_mj": fleet.inference_mj(),
            "idle_energy_mj": fleet.idle_mj(),
            "batches_created": self.uploaded.created,
            "batches_already_present": self.uploaded.present,
            "bytes": self.uploaded.bytes,
            "verified": self.verified.ok,
            "grid_points": self.grid.points,
            "intensity_at_first_noon": self.grid.intensities,
            "problems": self.verified.problems,
            "emissions": self.emissions.outcomes.iter().map(|(p, o)| json!({"period": p.to_string(), "result": o})).collect::<Vec<_>>(),
            "credentials": self.credentials.reports,
            "credentials_sample_verified": self.credentials.sample_checked,
            "did_document": self.credentials.did_path,
            "reports": self.reports.files,
            "audit_package": self.reports.package,
            "serve": self.serve_command(demo),
        }))
    }
}
