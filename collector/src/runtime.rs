//! The live collector: the engine on its own thread, a sampler thread reading the GPUs,
//! and an uploader task moving sealed batches from the spool to the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::error::{Result, fail, failure};
use gco_ledger::PutOutcome;
use gco_ledger::time::Micros;

use crate::gateway::Destination;
use tokio::sync::{Notify, oneshot};

use crate::attribution::SpanError;
use crate::engine::{Command, Engine, Reply, spool_bytes, spooled_batches};
use crate::gpu::GpuSource;
use crate::metrics::{Metrics, label};

/// The wall clock in UTC microseconds: the one place the collector reads it (it
/// measures live; accounting downstream never does).
#[allow(clippy::disallowed_methods)]
pub fn wall_clock() -> Micros {
    chrono::Utc::now().timestamp_micros()
}

enum Msg {
    Cmd(Command, Option<oneshot::Sender<Result<Reply, SpanError>>>),
    Stop(oneshot::Sender<Result<usize, String>>),
}

/// Why a span call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Span(#[from] SpanError),
    #[error("the collector is stopping or its engine failed; see its log")]
    Unavailable,
}

/// A cheap, cloneable handle to the running engine.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Msg>,
    pub metrics: Arc<Metrics>,
}

impl Handle {
    async fn call(&self, cmd: Command) -> Result<Reply, CallError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Cmd(cmd, Some(tx)))
            .map_err(|_| CallError::Unavailable)?;
        Ok(rx.await.map_err(|_| CallError::Unavailable)??)
    }

    /// Starts a span; returns its id (generated when `id` is None) and start time.
    pub async fn start(
        &self,
        id: Option<String>,
        model_id: Option<String>,
        model_version: Option<String>,
        gpus: Vec<String>,
    ) -> Result<(String, Micros), CallError> {
        match self
            .call(Command::Start {
                id,
                model_id,
                model_version,
                gpus,
            })
            .await
        {
            Ok(Reply::Started { id, t }) => Ok((id, t)),
            Ok(_) => Err(CallError::Unavailable),
            Err(e) => {
                self.reject(&e);
                Err(e)
            }
        }
    }

    /// Ends a span with its token counts, once the end is in the spool log.
    pub async fn end(
        &self,
        id: String,
        prompt_tokens: Option<u64>,
        completion_tokens: Option<u64>,
    ) -> Result<Micros, CallError> {
        match self
            .call(Command::End {
                id,
                prompt_tokens,
                completion_tokens,
            })
            .await
        {
            Ok(Reply::Ended { t, .. }) => Ok(t),
            Ok(_) => Err(CallError::Unavailable),
            Err(e) => {
                self.reject(&e);
                Err(e)
            }
        }
    }

    fn reject(&self, e: &CallError) {
        let reason = match e {
            CallError::Span(SpanError::Duplicate(_)) => "duplicate",
            CallError::Span(SpanError::Unknown(_)) => "unknown",
            CallError::Span(SpanError::BadGpu(..)) => "bad_gpu",
            CallError::Span(SpanError::BadId) => "bad_id",
            CallError::Unavailable => "unavailable",
        };
        self.metrics
            .spans_rejected
            .get_or_create(&label("reason", reason))
            .inc();
    }
}

/// Timing of the live loops.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub sample_interval: Duration,
    /// fsync the spool log at least this often (kill -9 needs no fsync; power loss does).
    pub fsync_interval: Duration,
    pub upload_backoff_min: Duration,
    pub upload_backoff_max: Duration,
}

/// The running collector.
pub struct Running {
    pub handle: Handle,
    engine: Option<std::thread::JoinHandle<Result<()>>>,
    sampler: Option<std::thread::JoinHandle<()>>,
    stop_sampler: Arc<AtomicBool>,
    uploader: tokio::task::JoinHandle<()>,
    upload_notify: Arc<Notify>,
    stop_uploader: Arc<AtomicBool>,
}

/// Starts the engine thread, the sampler thread and the uploader task (on the current
/// tokio runtime).
pub fn start(
    mut engine: Engine,
    mut source: Box<dyn GpuSource>,
    store: Destination,
    cfg: RuntimeConfig,
    metrics: Arc<Metrics>,
) -> Result<Running> {
    let (tx, rx) = mpsc::channel::<Msg>();
    let n_gpus = source.gpus().len();
    let activity: Arc<Vec<AtomicU32>> = Arc::new((0..n_gpus).map(|_| AtomicU32::new(0)).collect());
    let upload_notify = Arc::new(Notify::new());
    let durable = engine.durable_seq();
    let spool = engine.spool().to_path_buf();
    let node_id = engine.node_id().to_string();

    // Engine thread.
    let eng_activity = activity.clone();
    let eng_metrics = metrics.clone();
    let eng_notify = upload_notify.clone();
    let fsync_every = cfg.fsync_interval;
    let engine_thread = std::thread::Builder::new()
        .name("gco-engine".into())
        .spawn(move || -> Result<()> {
            let gpu_ids = engine.attributor().gpu_ids();
            let mut last_totals = vec![Default::default(); gpu_ids.len()];
            let mut last_sync = std::time::Instant::now();
            let mut replies = Vec::new();
            let mut seen_timeouts = engine.attributor().timed_out_spans;
            // Sealed batches recovered from a previous run go out first.
            eng_notify.notify_one();
            loop {
                let first = match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(m) => Some(m),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        engine.shutdown()?;
                        return Ok(());
                    }
                };
                let mut stop = None;
                for m in first.into_iter().chain(rx.try_iter().take(4096)) {
                    match m {
                        Msg::Cmd(cmd, reply) => {
                            let is_start = matches!(cmd, Command::Start { .. });
                            let is_end = matches!(cmd, Command::End { .. });
                            let r = engine.handle(cmd, wall_clock())?;
                            if r.is_ok() {
                                if is_start {
                                    eng_metrics.spans_started.inc();
                                }
                                if is_end {
                                    eng_metrics.spans_ended.inc();
                                }
                            }
                            if let Some(tx) = reply {
                                replies.push((tx, r));
                            }
                        }
                        Msg::Stop(ack) => stop = Some(ack),
                    }
                }
                // Acknowledge only what the kernel holds.
                engine.flush()?;
                for (tx, r) in replies.drain(..) {
                    let _ = tx.send(r);
                }
                if last_sync.elapsed() >= fsync_every {
                    engine.sync()?;
                    last_sync = std::time::Instant::now();
                }
                let att = engine.attributor();
                for (g, a) in eng_activity.iter().enumerate() {
                    a.store(att.active_on(g), Ordering::Relaxed);
                }
                for (g, id) in gpu_ids.iter().enumerate() {
                    let t = att.totals(g);
                    let l: &mut crate::attribution::GpuTotals = &mut last_totals[g];
                    eng_metrics
                        .gpu_energy_mj
                        .get_or_create(&label("gpu", id.clone()))
                        .inc_by(t.measured_mj - l.measured_mj);
                    eng_metrics
                        .attributed_mj
                        .inc_by(t.attributed_mj - l.attributed_mj);
                    eng_metrics.idle_mj.inc_by(t.idle_mj - l.idle_mj);
                    eng_metrics
                        .counter_resets
                        .get_or_create(&label("gpu", id.clone()))
                        .inc_by(t.counter_resets - l.counter_resets);
                    *l = t;
                }
                eng_metrics.spans_open.set(att.open_spans() as i64);
                eng_metrics
                    .spans_timed_out
                    .inc_by(att.timed_out_spans - seen_timeouts);
                seen_timeouts = att.timed_out_spans;
                if engine.seal_due() || stop.is_some() {
                    match engine.seal() {
                        Ok(n) if n > 0 => eng_notify.notify_one(),
                        Ok(_) => {}
                        Err(e) => {
                            if let Some(ack) = stop {
                                let _ = ack.send(Err(format!("{e:#}")));
                            }
                            return Err(e);
                        }
                    }
                }
                if let Some(ack) = stop {
                    let r = engine.shutdown();
                    let _ = ack.send(
                        r.as_ref()
                            .map(|_| engine.stats.batches as usize)
                            .map_err(|e| format!("{e:#}")),
                    );
                    return r.map(|_| ());
                }
            }
        })?;

    // Sampler thread.
    let stop_sampler = Arc::new(AtomicBool::new(false));
    let s_stop = stop_sampler.clone();
    let s_tx = tx.clone();
    let s_metrics = metrics.clone();
    let interval = cfg.sample_interval;
    let sampler = std::thread::Builder::new()
        .name("gco-sampler".into())
        .spawn(move || {
            let mut next = std::time::Instant::now();
            let mut last_err = None::<std::time::Instant>;
            while !s_stop.load(Ordering::Relaxed) {
                for (g, a) in activity.iter().enumerate() {
                    source.set_activity(g, a.load(Ordering::Relaxed));
                }
                let t = wall_clock();
                match source.read(t) {
                    Ok(readings) => {
                        for (g, r) in readings.iter().enumerate() {
                            if let (Some(p), Some(info)) = (r.power_mw, source.gpus().get(g)) {
                                s_metrics
                                    .gpu_power_mw
                                    .get_or_create(&label("gpu", info.id.clone()))
                                    .set(p as i64);
                            }
                        }
                        if s_tx
                            .send(Msg::Cmd(Command::Sample { t, readings }, None))
                            .is_err()
                        {
                            break;
                        }
                    }
                    Err(e) => {
                        s_metrics.gpu_read_errors.inc();
                        if last_err.is_none_or(|l| l.elapsed() > Duration::from_secs(60)) {
                            tracing::warn!(
                                "GPU reading failed (the interval will be longer): {e:#}"
                            );
                            last_err = Some(std::time::Instant::now());
                        }
                    }
                }
                next += interval;
                let now = std::time::Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
            // A last reading closes the intervals of spans that have ended, so their
            // records are sealed at this stop rather than the next start.
            let t = wall_clock();
            if let Ok(readings) = source.read(t) {
                let _ = s_tx.send(Msg::Cmd(Command::Sample { t, readings }, None));
            }
        })?;

    // Uploader task.
    let stop_uploader = Arc::new(AtomicBool::new(false));
    let u_stop = stop_uploader.clone();
    let u_notify = upload_notify.clone();
    let u_metrics = metrics.clone();
    let uploader = tokio::spawn(async move {
        let mut backoff = cfg.upload_backoff_min;
        loop {
            let r = upload_once(&store, &spool, &node_id, &durable, &u_metrics).await;
            let stopping = u_stop.load(Ordering::Relaxed);
            match r {
                Ok(_) => {
                    backoff = cfg.upload_backoff_min;
                    if stopping {
                        return;
                    }
                    let _ = tokio::time::timeout(Duration::from_secs(5), u_notify.notified()).await;
                }
                Err(e) => {
                    u_metrics.upload_failures.inc();
                    tracing::warn!(
                        "upload to {} failed, retrying in {backoff:?}: {e:#}",
                        store.url()
                    );
                    if stopping {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(cfg.upload_backoff_max);
                }
            }
        }
    });

    Ok(Running {
        handle: Handle { tx, metrics },
        engine: Some(engine_thread),
        sampler: Some(sampler),
        stop_sampler,
        uploader,
        upload_notify,
        stop_uploader,
    })
}

/// What one upload pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uploaded {
    /// Batches written by this pass.
    pub created: u64,
    /// Batches the store already held with the same bytes (a retry after a lost
    /// acknowledgement, or a rerun).
    pub present: u64,
    pub bytes: u64,
}

impl Uploaded {
    pub fn batches(&self) -> u64 {
        self.created + self.present
    }
}

/// Uploads every sealed batch the checkpoint covers, oldest first; removes each from
/// the spool once the store confirmed it.
pub async fn upload_once(
    store: &Destination,
    spool: &std::path::Path,
    node_id: &str,
    durable: &AtomicU64,
    metrics: &Metrics,
) -> Result<Uploaded> {
    let batches = spooled_batches(spool, node_id)?;
    metrics.spool_batches.set(batches.len() as i64);
    let mut done = Uploaded::default();
    for b in batches {
        if b.seq_last >= durable.load(Ordering::SeqCst) {
            break;
        }
        let bytes = tokio::fs::read(&b.file).await?;
        done.bytes += bytes.len() as u64;
        match store.put(&b.store_path, bytes).await? {
            PutOutcome::Created => done.created += 1,
            PutOutcome::AlreadyPresent => done.present += 1,
        }
        tokio::fs::remove_file(&b.file).await?;
        metrics.uploads.inc();
        metrics.last_upload.set(wall_clock() / 1_000_000);
        metrics.spool_batches.dec();
    }
    metrics.spool_bytes.set(spool_bytes(spool) as i64);
    Ok(done)
}

impl Running {
    /// Stops sampling, seals what is pending, checkpoints, and tries to upload the
    /// spool within `drain` (what is left stays in the spool for the next start).
    pub async fn stop(mut self, drain: Duration) -> Result<()> {
        self.stop_sampler.store(true, Ordering::Relaxed);
        if let Some(s) = self.sampler.take() {
            let _ = tokio::task::spawn_blocking(move || s.join()).await;
        }
        let (tx, rx) = oneshot::channel();
        let _ = self.handle.tx.send(Msg::Stop(tx));
        let sealed = rx.await;
        if let Some(e) = self.engine.take() {
            match tokio::task::spawn_blocking(move || e.join()).await {
                Ok(Ok(r)) => r?,
                _ => fail!(Internal, "the engine thread panicked"),
            }
        }
        if let Ok(Err(e)) = sealed {
            fail!(Internal, "sealing at shutdown failed: {e}");
        }
        self.stop_uploader.store(true, Ordering::Relaxed);
        self.upload_notify.notify_one();
        let _ = tokio::time::timeout(drain, &mut self.uploader).await;
        self.uploader.abort();
        Ok(())
    }

    /// Whether the engine thread has stopped (it stops only on a fatal error or stop).
    pub fn engine_failed(&self) -> bool {
        self.engine.as_ref().is_some_and(|e| e.is_finished())
    }

    /// Waits for the engine thread to end and returns its error.
    pub fn take_engine_error(&mut self) -> Option<crate::error::CollectorError> {
        let e = self.engine.take()?;
        match e.join() {
            Ok(Err(e)) => Some(e),
            Ok(Ok(())) => None,
            Err(_) => Some(failure!(Internal, "the engine thread panicked")),
        }
    }
}
