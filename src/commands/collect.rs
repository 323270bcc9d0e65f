//! `gco collect`: the node agent.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use gco_collector::engine::{Engine, EngineConfig};
use gco_collector::gateway::{Destination, Gateway};
use gco_collector::gpu::GpuSource;
use gco_collector::http::serve;
use gco_collector::metrics::Metrics;
use gco_collector::runtime::{RuntimeConfig, start};
use gco_collector::{AttributionConfig, SimGpus};
use gco_ledger::{KeyFileSigner, Signer};
use serde_json::json;

use crate::cli::{CollectArgs, Global};

/// The TPM node key, or a clear error when this build has no TPM support.
#[cfg(feature = "tpm")]
pub fn tpm_signer(tcti: &str, label: &str) -> Result<Arc<dyn Signer>> {
    Ok(Arc::new(gco_collector::tpm::TpmSigner::open(tcti, label)?))
}

#[cfg(not(feature = "tpm"))]
pub fn tpm_signer(_tcti: &str, _label: &str) -> Result<Arc<dyn Signer>> {
    bail!(
        "this gco was built without TPM support; rebuild with `cargo build --release --features tpm` \
         (needs libtss2-dev), or use a key file (--key)"
    )
}

/// A flag's duration in microseconds; one past 2^63 us (292,000 years) is refused.
fn micros(d: std::time::Duration, flag: &str) -> Result<i64> {
    i64::try_from(d.as_micros()).map_err(|_| anyhow::anyhow!("{flag}: {d:?} is too long"))
}

/// The gateway's API key: `--upload-key-file`, else GCO_UPLOAD_KEY (never a flag's
/// value, which `ps` would show).
fn upload_key(file: Option<&std::path::Path>) -> Result<String> {
    let key = match file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("--upload-key-file {}: cannot read it", p.display()))?,
        None => std::env::var("GCO_UPLOAD_KEY").map_err(|_| {
            anyhow::anyhow!(
                "--upload-url needs the gateway's API key in GCO_UPLOAD_KEY or --upload-key-file"
            )
        })?,
    };
    let key = key.trim().to_string();
    if key.is_empty() {
        bail!("the gateway's API key is empty");
    }
    Ok(key)
}

pub async fn run(a: CollectArgs, g: &Global) -> Result<u8> {
    gco_ledger::store::validate_node_id(&a.node).map_err(|e| anyhow::anyhow!("--node: {e}"))?;
    let signer: Arc<dyn Signer> = match (&a.key, a.tpm) {
        (_, true) => tpm_signer(&a.tpm_tcti, &a.tpm_label)?,
        (Some(path), false) => Arc::new(
            KeyFileSigner::load(path).with_context(|| format!("--key {}", path.display()))?,
        ),
        (None, false) => bail!("give --key FILE or --tpm"),
    };
    let key_source = match &a.key {
        Some(p) if !a.tpm => p.display().to_string(),
        _ => "the TPM".to_string(),
    };
    let destination = match &a.upload_url {
        None => {
            let store = super::open_store(g)?;
            super::ensure_registered(&store, &a.node, signer.as_ref(), &key_source).await?;
            Destination::Store(store)
        }
        Some(url) => {
            let gateway = Arc::new(Gateway::new(
                url,
                upload_key(a.upload_key_file.as_deref())?,
            )?);
            // The gateway answers what the store's registry holds for the node.
            let chain = gateway
                .chain(&a.node)
                .await
                .with_context(|| format!("asking {} for node {}'s chain", gateway.url(), a.node))?;
            if !chain.keys.iter().any(|k| k == signer.key_id()) {
                bail!(
                    "key {} ({key_source}) is not registered for node {} in the store behind {}; run `gco node register --node {} --public-key <its .pub> ...` first",
                    signer.key_id(),
                    a.node,
                    gateway.url(),
                    a.node
                );
            }
            Destination::Gateway(gateway)
        }
    };
    let source: Box<dyn GpuSource> = match a.simulate {
        Some(0) => bail!("--simulate needs at least one GPU"),
        Some(n) => Box::new(SimGpus::new(n, a.seed)),
        None => Box::new(gco_collector::nvml::NvmlSource::open(
            a.gpus.as_deref(),
            std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref(),
        )?),
    };
    let gpu_ids: Vec<String> = source.gpus().iter().map(|g| g.id.clone()).collect();
    let metrics = Arc::new(Metrics::new());
    let cfg = EngineConfig {
        node_id: a.node.clone(),
        spool: a.spool.clone(),
        attribution: AttributionConfig {
            idle_window_us: micros(a.idle_window, "--idle-window")?,
            max_span_us: micros(a.max_span, "--max-span")?,
        },
        seal_max_records: a.seal_max_records,
        seal_max_age_us: micros(a.seal_max_age, "--seal-max-age")?,
        spool_max_bytes: a.spool_max_bytes,
    };
    // A fresh spool continues the node's chain where the store has it.
    let initial = if a.spool.join("checkpoint.bin").exists() {
        None
    } else {
        let context = || {
            format!(
                "reading the chain head of {} from {}",
                a.node,
                destination.url()
            )
        };
        let head = match &destination {
            Destination::Store(store) => gco_ledger::batch::chain_head(store, &a.node)
                .await
                .with_context(context)?,
            Destination::Gateway(gateway) => {
                gateway.chain_head(&a.node).await.with_context(context)?
            }
        };
        Some(head)
    };
    let engine = Engine::open(
        cfg,
        signer.clone(),
        gpu_ids.clone(),
        source.measurement(),
        || {
            initial.ok_or_else(|| {
                gco_collector::CollectorError::new(
                    gco_collector::Kind::Internal,
                    "spool checkpoint vanished while opening",
                )
            })
        },
        metrics.clone(),
    )?;
    let recovered = engine.stats;
    let head = engine.head().next_seq;
    let running = start(
        engine,
        source,
        destination.clone(),
        RuntimeConfig {
            sample_interval: a.sample_interval,
            fsync_interval: a.fsync_interval,
            upload_backoff_min: std::time::Duration::from_millis(500),
            upload_backoff_max: a.upload_backoff_max,
        },
        metrics.clone(),
    )?;
    let proxy_to = match (a.listen, &a.upstream) {
        (Some(listen), Some(upstream)) => Some((
            listen,
            reqwest::Url::parse(upstream).with_context(|| format!("--upstream {upstream:?}"))?,
        )),
        _ => None,
    };
    let listening = serve(running.handle.clone(), a.span_listen, proxy_to).await?;
    let (api_addr, proxy_addr) = (listening.span_api, listening.proxy);
    let ready = json!({
        "event": "ready",
        "node": a.node,
        "gpus": gpu_ids,
        "span_api": format!("http://{api_addr}"),
        "proxy": proxy_addr.map(|p| format!("http://{p}")),
        "spool": a.spool,
        "next_seq": head,
        "replayed_events": recovered.replayed_events,
        "store": destination.url(),
    });
    if g.json {
        // One line per event, so supervisors and scripts can read it as it comes.
        println!("{ready}");
    } else {
        eprintln!(
            "gco collect: node {} measuring {} GPU(s) [{}]\n  span API + /metrics: http://{api_addr}{}\n  spool: {} (replayed {} events)\n  store: {}",
            a.node,
            gpu_ids.len(),
            gpu_ids.join(", "),
            proxy_addr
                .map(|p| format!(
                    "\n  proxy: http://{p} -> {}",
                    a.upstream.as_deref().unwrap_or("")
                ))
                .unwrap_or_default(),
            a.spool.display(),
            recovered.replayed_events,
            destination.url()
        );
    }
    // Run until a signal, --run-for, or an engine failure.
    let stop = async {
        let term = async {
            #[cfg(unix)]
            {
                if let Ok(mut s) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                {
                    s.recv().await;
                    return;
                }
            }
            std::future::pending::<()>().await
        };
        let until = async {
            match a.run_for {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "signal",
            _ = term => "signal",
            _ = until => "run-for",
        }
    };
    let watch = async {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            if running.engine_failed() {
                return;
            }
        }
    };
    let why = tokio::select! {
        w = stop => w,
        _ = watch => "engine failure",
    };
    if why == "engine failure" {
        let mut running = running;
        let e = running.take_engine_error().map_or_else(
            || anyhow::anyhow!("the engine stopped"),
            anyhow::Error::from,
        );
        return Err(e.context("the collector engine failed; the spool keeps everything acknowledged, restart to recover"));
    }
    running.stop(a.drain_timeout).await?;
    let left = gco_collector::engine::spooled_batches(&a.spool, &a.node)?.len();
    let out = json!({
        "event": "stopped",
        "reason": why,
        "batches_left_in_spool": left,
        "metrics": {
            "uploads": metrics.uploads.get(),
            "upload_failures": metrics.upload_failures.get(),
            "spans_started": metrics.spans_started.get(),
            "spans_ended": metrics.spans_ended.get(),
            "batches_sealed": metrics.batches_sealed.get(),
        }
    });
    if g.json {
        println!("{out}");
    } else {
        eprintln!(
            "stopped ({why}): {} batches sealed, {} uploaded, {left} left in the spool for the next start",
            metrics.batches_sealed.get(),
            metrics.uploads.get()
        );
    }
    Ok(0)
}
