//! The collector's single-threaded core: validates span events, logs every event to
//! the spool's write-ahead log before applying it, attributes energy, seals records
//! into the node's chain, and checkpoints.
//!
//! Crash safety: the records are a deterministic function of the logged events. After
//! a crash the engine loads the last checkpoint (written after each seal, when nothing
//! is pending), replays the log written since, and drops the regenerated records that
//! sealed batches already hold. Sealed batches wait in `sealed/` until the store has
//! confirmed them; the uploader only takes batches the checkpoint already covers, so a
//! replay can never reseal (and fork) what was uploaded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Context, Result, fail};
use gco_ledger::time::Micros;
use gco_ledger::{ChainHead, ChainWriter, Measurement, Millijoules, Record, RecordKind, Signer};
use serde::{Deserialize, Serialize};

use crate::attribution::{AttributionConfig, Attributor, SpanError, SpanStart};
use crate::gpu::Reading;
use crate::metrics::{Metrics, label};
use crate::wal::{Event, WalWriter, read_segment, segments, write_atomic};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub node_id: String,
    pub spool: PathBuf,
    pub attribution: AttributionConfig,
    /// Seal when this many records are pending...
    pub seal_max_records: usize,
    /// ...or when the oldest pending record is this old (event time).
    pub seal_max_age_us: i64,
    /// Above this many spool bytes, inferences are folded into per-model overflow rows.
    pub spool_max_bytes: u64,
}

/// A request to the engine.
#[derive(Debug, Clone)]
pub enum Command {
    Start {
        id: Option<String>,
        model_id: Option<String>,
        model_version: Option<String>,
        /// GPU ids or indices; empty means every GPU the collector measures.
        gpus: Vec<String>,
    },
    End {
        id: String,
        prompt_tokens: Option<u64>,
        completion_tokens: Option<u64>,
    },
    Sample {
        t: Micros,
        readings: Vec<Reading>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Started { id: String, t: Micros },
    Ended { id: String, t: Micros },
    Sampled,
}

/// Inferences folded together while the spool was over its bound.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Overflow {
    spans: u64,
    energy_mj: u64,
    start: Micros,
    end: Micros,
    gpus: BTreeSet<String>,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    format: u32,
    node_id: String,
    attributor: Attributor,
    next_seq: u64,
    prev_batch_hash: [u8; 32],
    replay_from: u64,
    overflow_on: bool,
    overflow: BTreeMap<String, Overflow>,
    overflow_window: i64,
}

const CHECKPOINT: &str = "checkpoint.bin";
const CHECKPOINT_FORMAT: u32 = 1;

/// Counts since start (for `--json` summaries and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    pub inference_records: u64,
    pub idle_records: u64,
    pub overflow_records: u64,
    /// Energy in the inference and idle/overhead records emitted since start.
    pub inference_mj: i64,
    pub idle_mj: i64,
    pub batches: u64,
    pub replayed_events: u64,
    pub torn_bytes: u64,
}

pub struct Engine {
    cfg: EngineConfig,
    signer: Arc<dyn Signer>,
    att: Attributor,
    head: ChainHead,
    /// Sequence number the next emitted record gets.
    ordinal: u64,
    pending: Vec<Record>,
    pending_since: Option<Micros>,
    wal: WalWriter,
    segment: u64,
    overflow_on: bool,
    overflow: BTreeMap<String, Overflow>,
    overflow_window: i64,
    metrics: Arc<Metrics>,
    /// Records below this sequence number are in sealed batches a checkpoint covers.
    durable_seq: Arc<AtomicU64>,
    pub stats: EngineStats,
}

fn sealed_dir(spool: &Path) -> PathBuf {
    spool.join("sealed")
}

/// A sealed batch file in the spool: `<seq_first:020>.<date>.<object name>`.
#[derive(Debug, Clone)]
pub struct SpooledBatch {
    pub file: PathBuf,
    pub seq_first: u64,
    pub seq_last: u64,
    /// Object path in the store.
    pub store_path: String,
}

/// Sealed batches waiting in the spool, by sequence number.
pub fn spooled_batches(spool: &Path, node_id: &str) -> Result<Vec<SpooledBatch>> {
    let dir = sealed_dir(spool);
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        let mut parts = name.splitn(3, '.');
        let (Some(first), Some(date), Some(object)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if !object.ends_with(".parquet") {
            continue;
        }
        let (Ok(seq_first), Some((_, seq_last))) = (
            first.parse::<u64>(),
            gco_ledger::store::object_seq_range(object),
        ) else {
            continue;
        };
        out.push(SpooledBatch {
            file: e.path(),
            seq_first,
            seq_last,
            store_path: format!(
                "{}/date={date}/node={node_id}/{object}",
                gco_ledger::layout::RECORDS
            ),
        });
    }
    out.sort_by_key(|b| b.seq_first);
    Ok(out)
}

/// Bytes held in the spool (log segments and sealed batches).
pub fn spool_bytes(spool: &Path) -> u64 {
    let size = |d: &Path| -> u64 {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    size(spool) + size(&sealed_dir(spool))
}

impl Engine {
    /// Opens the spool: recovers from the checkpoint and log when there are any, else
    /// starts a fresh state from `initial_head` (the node's chain head in the store).
    pub fn open(
        cfg: EngineConfig,
        signer: Arc<dyn Signer>,
        gpu_ids: Vec<String>,
        measurement: Measurement,
        initial_head: impl FnOnce() -> Result<ChainHead>,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        std::fs::create_dir_all(sealed_dir(&cfg.spool))
            .with_context(|| format!("creating spool {}", cfg.spool.display()))?;
        let ckpt_path = cfg.spool.join(CHECKPOINT);
        let fresh = !ckpt_path.exists();
        let ckpt = if fresh {
            let head = initial_head()?;
            if head.node_id != cfg.node_id {
                fail!(
                    Chain,
                    "chain head is for node {}, not {}",
                    head.node_id,
                    cfg.node_id
                );
            }
            let first = segments(&cfg.spool)?.last().map_or(0, |n| n + 1);
            Checkpoint {
                format: CHECKPOINT_FORMAT,
                node_id: cfg.node_id.clone(),
                attributor: Attributor::new(gpu_ids.clone(), measurement, cfg.attribution),
                next_seq: head.next_seq,
                prev_batch_hash: head.prev_batch_hash,
                replay_from: first,
                overflow_on: false,
                overflow: BTreeMap::new(),
                overflow_window: i64::MIN,
            }
        } else {
            load_checkpoint(&ckpt_path)?
        };
        if ckpt.node_id != cfg.node_id {
            fail!(
                Usage,
                "spool {} belongs to node {}, not {}; use that node id or another --spool",
                cfg.spool.display(),
                ckpt.node_id,
                cfg.node_id
            );
        }
        if ckpt.attributor.gpu_ids() != gpu_ids {
            fail!(
                Usage,
                "spool {} was written for GPUs [{}] but this collector measures [{}]; run with \
                 the old GPU set until the spool is drained, or use another --spool",
                cfg.spool.display(),
                ckpt.attributor.gpu_ids().join(", "),
                gpu_ids.join(", ")
            );
        }
        let mut head = ChainHead {
            node_id: cfg.node_id.clone(),
            next_seq: ckpt.next_seq,
            prev_batch_hash: ckpt.prev_batch_hash,
        };
        // Batches sealed after the checkpoint (a crash before it was written).
        if let Some(last) = spooled_batches(&cfg.spool, &cfg.node_id)?.last()
            && last.seq_last + 1 > head.next_seq
        {
            let bytes = std::fs::read(&last.file)
                .with_context(|| format!("reading {}", last.file.display()))?;
            let (seal, _) = gco_ledger::batch::read_batch(&last.store_path, bytes.into())?;
            head.next_seq = last.seq_last + 1;
            head.prev_batch_hash = seal.batch_hash_bytes()?;
        }
        let mut segs: Vec<u64> = segments(&cfg.spool)?;
        segs.retain(|&n| n >= ckpt.replay_from);
        let next_segment = segs.last().map_or(ckpt.replay_from, |n| n + 1);
        let wal = WalWriter::create(&cfg.spool, next_segment)?;
        let mut e = Engine {
            att: ckpt.attributor,
            ordinal: ckpt.next_seq,
            head,
            pending: Vec::new(),
            pending_since: None,
            wal,
            segment: next_segment,
            overflow_on: ckpt.overflow_on,
            overflow: ckpt.overflow,
            overflow_window: ckpt.overflow_window,
            durable_seq: Arc::new(AtomicU64::new(ckpt.next_seq)),
            metrics,
            signer,
            cfg,
            stats: EngineStats::default(),
        };
        for (i, &n) in segs.iter().enumerate() {
            let (events, torn) = read_segment(&e.cfg.spool, n, i + 1 == segs.len())?;
            if torn > 0 {
                tracing::warn!(
                    segment = n,
                    bytes = torn,
                    "cut off a torn write at the end of the spool log"
                );
            }
            e.stats.torn_bytes += torn;
            for ev in &events {
                e.apply(ev);
                e.stats.replayed_events += 1;
            }
        }
        if fresh {
            e.checkpoint()?;
        }
        e.durable_seq.store(e.head.next_seq, Ordering::SeqCst);
        Ok(e)
    }

    pub fn attributor(&self) -> &Attributor {
        &self.att
    }

    pub fn attributor_mut(&mut self) -> &mut Attributor {
        &mut self.att
    }

    pub fn head(&self) -> &ChainHead {
        &self.head
    }

    pub fn pending_records(&self) -> usize {
        self.pending.len()
    }

    pub fn spool(&self) -> &Path {
        &self.cfg.spool
    }

    pub fn node_id(&self) -> &str {
        &self.cfg.node_id
    }

    /// Sequence number below which sealed batches may be uploaded and removed.
    pub fn durable_seq(&self) -> Arc<AtomicU64> {
        self.durable_seq.clone()
    }

    /// Validates, logs (buffered) and applies one command at time `t` (UTC us; the
    /// engine keeps time monotonic). The outer error is fatal (the log could not be
    /// written); the inner one is the caller's mistake and changes nothing.
    pub fn handle(&mut self, cmd: Command, t: Micros) -> Result<Result<Reply, SpanError>> {
        let t = t.max(self.att.now());
        let (event, reply) = match cmd {
            Command::Start {
                id,
                model_id,
                model_version,
                gpus,
            } => {
                let id = id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                let gpus = if gpus.is_empty() {
                    (0..self.att.gpu_ids().len() as u16).collect()
                } else {
                    match gpus.iter().map(|g| self.att.gpu_position(g)).collect() {
                        Ok(g) => g,
                        Err(e) => return Ok(Err(e)),
                    }
                };
                let span = SpanStart {
                    id: id.clone(),
                    model_id,
                    model_version,
                    gpus,
                };
                if let Err(e) = self.att.check_start(&span) {
                    return Ok(Err(e));
                }
                (Event::Start { t, span }, Reply::Started { id, t })
            }
            Command::End {
                id,
                prompt_tokens,
                completion_tokens,
            } => {
                if let Err(e) = self.att.check_end(&id) {
                    return Ok(Err(e));
                }
                (
                    Event::End {
                        t,
                        id: id.clone(),
                        prompt_tokens,
                        completion_tokens,
                    },
                    Reply::Ended { id, t },
                )
            }
            Command::Sample { t: ts, readings } => (
                Event::Sample {
                    t: ts.max(self.att.now()),
                    readings,
                },
                Reply::Sampled,
            ),
        };
        self.wal.append(&event)?;
        self.apply(&event);
        Ok(Ok(reply))
    }

    /// Hands logged events to the kernel: after this, acknowledgements are safe.
    pub fn flush(&mut self) -> Result<()> {
        self.wal.flush()
    }

    /// Flushes and fsyncs the log.
    pub fn sync(&mut self) -> Result<()> {
        self.wal.sync()
    }

    fn apply(&mut self, e: &Event) {
        match e {
            Event::Start { t, span } => {
                let _ = self.att.start(*t, span.clone());
            }
            Event::End {
                t,
                id,
                prompt_tokens,
                completion_tokens,
            } => {
                let _ = self.att.end(*t, id, *prompt_tokens, *completion_tokens);
            }
            Event::Sample { t, readings } => {
                self.att.sample(*t, readings);
                let w = t.div_euclid(self.cfg.attribution.idle_window_us.max(1));
                if w != self.overflow_window {
                    self.overflow_window = w;
                    self.collect();
                    self.flush_overflow();
                }
            }
            Event::Overflow { on, .. } => {
                self.collect();
                self.overflow_on = *on;
                if !on {
                    self.flush_overflow();
                }
            }
        }
        self.collect();
    }

    fn collect(&mut self) {
        for r in self.att.take_records() {
            if self.overflow_on && r.kind == RecordKind::Inference {
                let model = r.model_id.clone().unwrap_or_default();
                let o = self.overflow.entry(model).or_insert_with(|| Overflow {
                    start: r.start,
                    end: r.end,
                    ..Default::default()
                });
                o.spans += 1;
                o.energy_mj += r.energy.0 as u64;
                o.start = o.start.min(r.start);
                o.end = o.end.max(r.end);
                o.gpus.extend(r.gpus);
                self.metrics.overflow_spans.inc();
                self.metrics.overflow_mj.inc_by(r.energy.0 as u64);
                continue;
            }
            self.push(r);
        }
    }

    /// Inferences folded while the spool was full become one idle/overhead row per model
    /// (energy kept, per-inference detail lost, counted in the metrics).
    fn flush_overflow(&mut self) {
        let measurement = self.att.measurement();
        for (model, o) in std::mem::take(&mut self.overflow) {
            self.stats.overflow_records += 1;
            self.push(Record {
                seq: 0,
                kind: RecordKind::Idle,
                inference_id: None,
                node_id: String::new(),
                model_id: (!model.is_empty()).then_some(model),
                model_version: Some(format!("overflow:{}-inferences", o.spans)),
                start: o.start,
                end: o.end,
                energy: Millijoules(o.energy_mj as i64),
                measurement,
                gpus: o.gpus.into_iter().collect(),
                prompt_tokens: None,
                completion_tokens: None,
            });
        }
    }

    fn push(&mut self, mut r: Record) {
        r.seq = self.ordinal;
        self.ordinal += 1;
        if r.seq < self.head.next_seq {
            return; // regenerated by a replay; already in a sealed batch
        }
        r.node_id.clone_from(&self.cfg.node_id);
        match r.kind {
            RecordKind::Inference => {
                self.stats.inference_records += 1;
                self.stats.inference_mj += r.energy.0;
                self.metrics
                    .records
                    .get_or_create(&label("kind", "inference"))
                    .inc();
            }
            RecordKind::Idle => {
                self.stats.idle_records += 1;
                self.stats.idle_mj += r.energy.0;
                self.metrics
                    .records
                    .get_or_create(&label("kind", "idle"))
                    .inc();
            }
        }
        self.pending_since.get_or_insert(self.att.now());
        self.pending.push(r);
    }

    /// Whether the pending records should be sealed now (size or age).
    pub fn seal_due(&self) -> bool {
        self.pending.len() >= self.cfg.seal_max_records
            || self
                .pending_since
                .is_some_and(|s| self.att.now() - s >= self.cfg.seal_max_age_us)
    }

    /// Seals every pending record into signed batches in `sealed/`, checkpoints, and
    /// starts a new log segment. Returns the number of batches.
    pub fn seal(&mut self) -> Result<usize> {
        if self.pending.is_empty() {
            return Ok(0);
        }
        let records = std::mem::take(&mut self.pending);
        self.pending_since = None;
        if records[0].seq != self.head.next_seq {
            fail!(
                Chain,
                "spool out of step with the chain: next record is seq {}, chain expects {}",
                records[0].seq,
                self.head.next_seq
            );
        }
        let mut w = ChainWriter::new(&*self.signer, self.head.clone())
            .with_max_batch_records(self.cfg.seal_max_records.max(1));
        let batches = w.seal(records)?;
        let dir = sealed_dir(&self.cfg.spool);
        for b in &batches {
            let name = format!(
                "{:020}.{}.{}",
                b.seal.seq_first,
                b.seal.date,
                b.seal.object_name()
            );
            write_atomic(&dir.join(name), &b.bytes)?;
        }
        self.head = w.head().clone();
        self.stats.batches += batches.len() as u64;
        self.metrics.batches_sealed.inc_by(batches.len() as u64);
        self.checkpoint()?;
        self.durable_seq.store(self.head.next_seq, Ordering::SeqCst);
        // The bound is checked at each seal; switching is itself a logged event.
        let bytes = spool_bytes(&self.cfg.spool);
        self.metrics.spool_bytes.set(bytes as i64);
        let over = bytes > self.cfg.spool_max_bytes;
        if over != self.overflow_on {
            if over {
                tracing::error!(
                    spool_bytes = bytes,
                    bound = self.cfg.spool_max_bytes,
                    "spool full (store unreachable?): from now on inferences are folded into \
                     per-model overflow rows until the backlog is uploaded"
                );
            } else {
                tracing::warn!(
                    spool_bytes = bytes,
                    "spool back under its bound: per-inference rows resume"
                );
            }
            let ev = Event::Overflow {
                t: self.att.now(),
                on: over,
            };
            self.wal.append(&ev)?;
            self.wal.flush()?;
            self.apply(&ev);
            self.metrics.spool_overflow.set(over as i64);
        }
        Ok(batches.len())
    }

    fn checkpoint(&mut self) -> Result<()> {
        // New segment first: the checkpoint replays from it.
        self.wal.sync()?;
        let next = self.segment + 1;
        self.wal = WalWriter::create(&self.cfg.spool, next)?;
        self.segment = next;
        let ck = Checkpoint {
            format: CHECKPOINT_FORMAT,
            node_id: self.cfg.node_id.clone(),
            attributor: self.att.clone(),
            next_seq: self.head.next_seq,
            prev_batch_hash: self.head.prev_batch_hash,
            replay_from: next,
            overflow_on: self.overflow_on,
            overflow: self.overflow.clone(),
            overflow_window: self.overflow_window,
        };
        let mut bytes = postcard::to_stdvec(&ck).context("encoding the checkpoint")?;
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        write_atomic(&self.cfg.spool.join(CHECKPOINT), &bytes)?;
        for n in segments(&self.cfg.spool)? {
            if n < next {
                let _ = std::fs::remove_file(crate::wal::segment_path(&self.cfg.spool, n));
            }
        }
        Ok(())
    }

    /// Seals what is pending (even if not due) and checkpoints: a clean stop.
    pub fn shutdown(&mut self) -> Result<usize> {
        let n = self.seal()?;
        if n == 0 {
            self.checkpoint()?;
        }
        Ok(n)
    }
}

fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() < 4 {
        fail!(Spool, "{} is truncated", path.display());
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        fail!(
            Spool,
            "{} fails its checksum; the spool is damaged",
            path.display()
        );
    }
    let ck: Checkpoint = postcard::from_bytes(body).with_context(|| {
        format!(
            "decoding {} (written by another gco version?)",
            path.display()
        )
    })?;
    if ck.format != CHECKPOINT_FORMAT {
        fail!(
            Spool,
            "{} has checkpoint format {}, this gco reads {CHECKPOINT_FORMAT}",
            path.display(),
            ck.format
        );
    }
    Ok(ck)
}
