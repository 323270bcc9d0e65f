//! The monthly run: plan -> stage (verify, enrich, join, per-row figures; shardable by
//! day) -> finalise (chain checks, instrument allocation, market-based figures,
//! aggregates, outputs, manifest) as a new version beside earlier ones.
//!
//! In one process the stages fold into one pass: a pre-pass sums the period's Scope 2
//! consumption (what the instruments are allocated to), then each chunk is verified,
//! computed, finished and written at once; see [`Job::run`].
//!
//! Store layout (all create-only; staging is the only scratch, and the outputs of a
//! version whose manifest is not written yet):
//! ```text
//! emissions/period=P/version=NNNN/rows/date=D/part-KKKKK.parquet
//! emissions/period=P/version=NNNN/aggregates/<name>.parquet
//! runs/period=P/version=NNNN/manifest.json
//! runs/period=P/staging/<plan>/shard=I-of-N/{summary.json, rows/date=D/part-KKKKK.parquet}
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::error::{Context, Kind, OrFail, Result, fail, failure};
use arrow_array::RecordBatch;
use bytes::Bytes;
use futures::StreamExt;
use gco_ledger::layout;
use gco_ledger::store::parse_batch_path;
use gco_ledger::time::{Micros, format_utc};
use gco_ledger::unique::{DayKeys, KeyBuild, RowKey};
use gco_ledger::{Lease, LeaseOptions, Registry, Store};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::certify::{ChunkMembers, MemberRoots, Members, chunk_members};
use crate::config::{OnUnverified, PipelineConfig};
use crate::manifest::{
    BatchEntry, InputObject, Issue, Output, Plan, Quarantined, RunManifest, latest_version,
};
use crate::period::Period;
use crate::rows::{ChunkTotals, Grid, chunk_rows, scope2_consumption};
use crate::{aggregate, market};

/// Bumped when the output format or a method changes.
pub const METHOD_VERSION: &str = "gco-pipeline/1";

pub use crate::Progress;

/// Rows at which a day's chunk closes: the day's records (estimated from its batch
/// names, [`gco_ledger::store::object_seq_range`]) split evenly into as few chunks of at most
/// `chunk_records` as hold them. 322,576 records a day with `chunk_records = 250000` make
/// two chunks of about 161,000, not 262,000 and 60,000: both cores compute the day. A
/// chunk closes at the batch that reaches the target, so memory stays bounded by
/// `chunk_records` plus one batch. The estimate only balances chunks; a wrong name
/// cannot change a figure.
fn chunk_target(objects: &[InputObject], chunk_records: usize) -> usize {
    let estimated: usize = objects
        .iter()
        .map(
            |o| match parse_batch_path(&o.path).and_then(|l| l.seq_range()) {
                Some((first, last)) if last >= first => {
                    usize::try_from(last - first + 1).unwrap_or(usize::MAX)
                }
                _ => chunk_records,
            },
        )
        .fold(0usize, usize::saturating_add);
    let chunk_records = chunk_records.max(1);
    let chunks = estimated.div_ceil(chunk_records).max(1);
    estimated.div_ceil(chunks).clamp(1, chunk_records)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkEntry {
    pub date: String,
    pub part: u32,
    /// The verified ledger objects whose rows make the chunk, in order.
    pub batches: Vec<String>,
    /// Where the chunk's rows are staged; `None` in a one-process run, which writes
    /// them finished (or, when it must finalise from the verified rows instead,
    /// recomputes them from the ledger).
    pub staged: Option<String>,
    pub rows: u64,
    /// Where the leaf hashes of the chunk's batches are staged (32 bytes per record,
    /// in batch order), when the run computes member roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaves: Option<String>,
}

/// What staging does with a chunk.
#[derive(Clone)]
enum Keep {
    /// Stage its rows (shards: finalisation runs in another process).
    Rows,
    /// Finish it: market figures, aggregates and the output file of the new version
    /// (one process, whose pre-pass summed the period's consumption first).
    Final(Arc<Finish>),
}

/// What finishing a chunk in the one-process pass needs besides its rows.
struct Finish {
    allocation: market::Allocation,
    out_dir: String,
}

/// What the one-process pass has written of the new version so far, in chunk order.
struct Written {
    paths: Vec<String>,
    outputs: Vec<Output>,
    agg: aggregate::Aggregates,
    members: Option<MemberThread>,
}

/// A stage's chunks in flight (computing, at most two) and what the stored ones add
/// up to, in order.
struct Flow<'w> {
    in_flight: std::collections::VecDeque<tokio::task::JoinHandle<Result<ChunkOut>>>,
    summary: ShardSummary,
    /// What the one-process pass has written of the new version.
    written: Option<&'w mut Written>,
}

/// The member roots, built on a thread of their own from each chunk's leaves.
type MemberThread = (
    std::sync::mpsc::SyncSender<ChunkMembers>,
    std::thread::JoinHandle<Members>,
);

fn member_thread() -> MemberThread {
    let (tx, rx) = std::sync::mpsc::sync_channel::<ChunkMembers>(4);
    let builder = std::thread::spawn(move || {
        let mut m = Members::new();
        for chunk in rx {
            m.push_chunk(chunk);
        }
        m
    });
    (tx, builder)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardSummary {
    pub plan_id: String,
    pub shard: u32,
    pub shards: u32,
    pub batches: Vec<BatchEntry>,
    pub chunks: Vec<ChunkEntry>,
    pub quarantine: Vec<Quarantined>,
    pub totals: ChunkTotals,
}

pub struct Job<'a> {
    pub store: &'a Store,
    pub cfg: &'a PipelineConfig,
    pub period: Period,
    /// Inputs written after this time are not read (passed in, never the clock).
    pub as_of: Micros,
    pub code_version: String,
    pub progress: Option<Progress>,
    /// Also compute the member roots of the aggregates (for `--credentials`) from the
    /// leaf hashes verification computes, so that issuance need not read the ledger.
    pub member_roots: bool,
    /// Write a version even when the period has no ledger batch at all (else
    /// [`Outcome::Empty`]: an empty or mistyped store must not pass as a month of 0).
    pub allow_empty: bool,
    /// The lease a run or merge holds on the period while it writes a version.
    pub lease: LeaseOptions,
}

/// What `run` did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The latest version already has exactly these inputs: nothing written.
    UpToDate {
        version: u32,
        manifest: String,
        /// What that version left out (its exit code stays 1 when any).
        batches_excluded: u64,
        chain_issues: u64,
    },
    /// The period has no ledger batch as of the run's as-of time, and
    /// [`Job::allow_empty`] is off: nothing written.
    Empty { period: String, as_of: String },
    /// A new version was written.
    Created {
        version: u32,
        manifest: String,
        summary: Box<aggregate::RunSummary>,
        changes: Option<Box<aggregate::Changes>>,
        /// With `Job::member_roots`, when every chunk's leaf hashes were staged.
        #[serde(skip)]
        member_roots: Option<Arc<MemberRoots>>,
    },
    /// This shard's partial results are staged.
    Staged {
        shard: u32,
        shards: u32,
        plan: String,
        batches: u64,
        rows: u64,
    },
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn version_dir(period: Period, v: u32) -> (String, String) {
    (layout::emissions(period, v), layout::manifest(period, v))
}

impl Job<'_> {
    fn tick(&self, stage: &str, done: u64, total: u64) {
        if let Some(p) = &self.progress {
            p(stage, done, total);
        }
    }

    /// Lists the inputs the run would read.
    pub async fn plan(&self) -> Result<Plan> {
        let as_of = self.as_of;
        let fresh = |m: &object_store::ObjectMeta| m.last_modified.timestamp_micros() <= as_of;
        let mut ledger = Vec::new();
        for d in self.period.days() {
            for m in self
                .store
                .list(&layout::records_of_day(d.format("%Y-%m-%d")))
                .await?
            {
                if fresh(&m) {
                    ledger.push(InputObject {
                        path: m.location.to_string(),
                        size: m.size,
                    });
                }
            }
        }
        let (first, last) = (self.period.to_string(), self.period.to_string());
        let mut grid = Vec::new();
        for m in self.store.list(layout::GRID).await? {
            let path = m.location.to_string();
            let month = path.split('/').find_map(|s| s.strip_prefix("month="));
            if month.is_some_and(|mo| mo >= first.as_str() && mo <= last.as_str()) && fresh(&m) {
                grid.push(InputObject { path, size: m.size });
            }
        }
        // Registry events written after the as-of time are not read either: a key
        // registered later must not vouch for a rerun of an earlier as-of.
        let registry = self
            .store
            .list(layout::REGISTRY)
            .await?
            .into_iter()
            .filter(|m| fresh(m))
            .map(|m| InputObject {
                path: m.location.to_string(),
                size: m.size,
            })
            .collect();
        let config_sha256 = sha256_hex(&serde_json::to_vec(self.cfg)?);
        let mut plan = Plan {
            id: String::new(),
            period: self.period.to_string(),
            ledger,
            grid,
            registry,
            config_sha256,
            code_version: self.code_version.clone(),
        };
        plan.id = sha256_hex(&serde_json::to_vec(&plan)?)[..16].to_string();
        Ok(plan)
    }

    fn staging(&self, plan: &Plan, shard: u32, shards: u32) -> String {
        layout::shard_staging(self.period, &plan.id, shard, shards)
    }

    async fn grid(&self, plan: &Plan) -> Result<Grid> {
        let mut points = Vec::new();
        for o in &plan.grid {
            points.extend(gco_grid_data::series::read_object(
                &o.path,
                self.store.get(&o.path).await?,
            )?);
        }
        let mut index = gco_grid_data::series::SeriesIndex::default();
        index.insert(points);
        Grid::new(index, self.as_of)
    }

    /// The whole run in one process. A pre-pass sums the period's Scope 2 consumption
    /// (two columns of every batch, not verified); with it the instruments are
    /// allocated, and one pass verifies every batch and computes, finishes and writes
    /// each chunk's rows. The verified rows' consumption must equal the pre-pass's
    /// (it does unless a batch fails verification or changes between the passes):
    /// else, or when the policy aborts on unverified batches, what was written is
    /// deleted and the version is finalised from the verified rows as a sharded run
    /// would be. Either way the same bytes come out.
    pub async fn run(&self, force: bool) -> Result<Outcome> {
        let lease = self.take_lease().await?;
        let outcome = self.run_leased(force, &lease).await;
        released(lease, outcome).await
    }

    /// The period's lease (`runs/period=P`): one writer of its versions at a time.
    async fn take_lease(&self) -> Result<Lease> {
        let scope = layout::runs(self.period);
        Ok(Lease::acquire(self.store, &scope, &self.lease).await?)
    }

    /// `Outcome::UpToDate` when the latest version has exactly `plan`'s inputs;
    /// `Outcome::Empty` when the plan has no batch and that is not allowed.
    fn settled(&self, plan: &Plan, previous: &Option<(u32, RunManifest)>) -> Option<Outcome> {
        if let Some((v, m)) = previous
            && m.plan.id == plan.id
        {
            return Some(Outcome::UpToDate {
                version: *v,
                manifest: version_dir(self.period, *v).1,
                batches_excluded: m.coverage.batches_excluded,
                chain_issues: m.coverage.chain_issues,
            });
        }
        (plan.ledger.is_empty() && !self.allow_empty).then(|| Outcome::Empty {
            period: self.period.to_string(),
            as_of: format_utc(self.as_of),
        })
    }

    async fn run_leased(&self, force: bool, lease: &Lease) -> Result<Outcome> {
        let plan = self.plan().await?;
        let previous = latest_version(self.store, self.period).await?;
        tracing::info!(
            period = %self.period,
            plan = %plan.id,
            batches = plan.ledger.len(),
            grid_objects = plan.grid.len(),
            registry_events = plan.registry.len(),
            latest_version = previous.as_ref().map(|(v, _)| *v),
            "run planned"
        );
        match self.settled(&plan, &previous) {
            Some(o @ Outcome::UpToDate { .. }) if !force => {
                tracing::info!(period = %self.period, plan = %plan.id, "inputs unchanged: up to date");
                return Ok(o);
            }
            Some(o @ Outcome::Empty { .. }) => {
                tracing::warn!(period = %self.period, "no ledger batch in the period");
                return Ok(o);
            }
            _ => {}
        }
        // Loaded once: both passes must see the same registry and grid.
        let inputs = self.inputs(&plan).await?;
        let consumption = self.consumption(&plan, &inputs).await?;
        let allocation = market::allocate(self.cfg, self.period, &consumption)?;
        let version = previous.as_ref().map_or(1, |(v, _)| v + 1);
        tracing::info!(
            period = %self.period,
            version,
            zones = consumption.len(),
            scope2_facility_mj = consumption.values().map(|&mj| i128::from(mj)).sum::<i128>(),
            "consumption pre-pass done; instruments allocated"
        );
        let (out_dir, manifest_path) = version_dir(self.period, version);
        // What a crashed run left of this unpublished version (its manifest is written
        // last) is scratch: a crash while finalising from the verified rows leaves
        // files this pass would not write byte for byte. Only a writer holding the
        // period's lease removes it, so it was left by one whose lease ended.
        lease.check().await?;
        for m in self.store.list(&out_dir).await? {
            self.store
                .delete_unpublished(m.location.as_ref(), &manifest_path)
                .await?;
        }
        let mut written = Written {
            paths: Vec::new(),
            outputs: Vec::new(),
            agg: aggregate::Aggregates::new(&self.cfg.organisation),
            members: self.member_roots.then(member_thread),
        };
        let finish = Keep::Final(Arc::new(Finish {
            allocation: allocation.clone(),
            out_dir,
        }));
        let summary = self
            .stage(&plan, 0, 1, finish, &inputs, Some(&mut written))
            .await?;
        let all = Gathered::new(vec![summary.clone()])?;
        let abort = self.cfg.on_unverified == OnUnverified::Abort
            && (all.batches.iter().any(|b| !b.verified) || !all.chain.is_empty());
        tracing::info!(
            period = %self.period,
            version,
            rows = summary.totals.rows,
            batches = all.batches.len(),
            unverified = all.batches.iter().filter(|b| !b.verified).count(),
            chain_issues = all.chain.len(),
            "one pass done"
        );
        if abort || summary.totals.scope2_facility_mj != consumption {
            tracing::warn!(
                period = %self.period,
                version,
                abort,
                "the verified rows differ from the pre-pass: finalising from them"
            );
            if let Some((tx, builder)) = written.members.take() {
                drop(tx);
                let _ = builder.join();
            }
            lease.check().await?;
            for p in &written.paths {
                self.store.delete_unpublished(p, &manifest_path).await?;
            }
            let summary_path = format!("{}/summary.json", self.staging(&plan, 0, 1));
            self.store
                .put_create(
                    &summary_path,
                    Bytes::from(serde_json::to_vec_pretty(&summary)?),
                )
                .await?;
            return self.finalize(&plan, 1, Some(inputs), previous, lease).await;
        }
        self.publish(&plan, 1, previous, &all, &allocation, written, lease)
            .await
    }

    /// The pre-pass of a one-process run: the Scope 2 facility energy by zone of the
    /// rows of every batch the run reads ([`scope2_consumption`]); a batch that cannot
    /// be read counts nothing (verification will list it).
    async fn consumption(&self, plan: &Plan, inputs: &Inputs) -> Result<BTreeMap<String, i64>> {
        let objects: Vec<InputObject> = self.by_day(plan, 0, 1).into_values().flatten().collect();
        let total = objects.len() as u64;
        let mut sums = futures::stream::iter(objects.into_iter().map(|o| {
            let inputs = inputs.clone();
            async move {
                let bytes = self.store.get(&o.path).await?;
                tokio::task::spawn_blocking(move || {
                    // A batch that cannot be read (even one the decoder panics on)
                    // counts nothing here; verification lists it.
                    gco_ledger::guard::decode(&o.path, || {
                        scope2_consumption(
                            &o.path,
                            bytes,
                            &inputs.registry,
                            &inputs.cfg,
                            &inputs.grid,
                        )
                    })
                    .ok()
                    .and_then(|r| r.ok())
                    .unwrap_or_default()
                })
                .await
                .context("reading a batch's consumption")
            }
        }))
        .buffered(4);
        let mut out: BTreeMap<String, i64> = BTreeMap::new();
        let mut done = 0u64;
        while let Some(part) = sums.next().await {
            for (zone, mj) in part? {
                let overflow = crate::rows::zone_overflow(&zone);
                let sum = out.entry(zone).or_default();
                *sum = sum.checked_add(mj).or_fail(Kind::Overflow, overflow)?;
            }
            done += 1;
            self.tick("consumption", done, total);
        }
        Ok(out)
    }

    /// The plan's batches of the days `d` with `d.index % shards == shard`, by day.
    fn by_day(&self, plan: &Plan, shard: u32, shards: u32) -> BTreeMap<String, Vec<InputObject>> {
        let days: Vec<_> = self
            .period
            .days()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i as u32 % shards == shard)
            .map(|(_, d)| d.format("%Y-%m-%d").to_string())
            .collect();
        let mut by_day: BTreeMap<String, Vec<InputObject>> = BTreeMap::new();
        for o in &plan.ledger {
            match parse_batch_path(&o.path) {
                Some(loc) if days.contains(&loc.date) => {
                    by_day.entry(loc.date).or_default().push(o.clone())
                }
                _ => {}
            }
        }
        by_day
    }

    /// Stages the days `d` with `d.index % shards == shard`.
    pub async fn run_shard(&self, shard: u32, shards: u32) -> Result<Outcome> {
        if shards == 0 || shard >= shards {
            fail!(
                Usage,
                "--shard {shard}/{shards}: the index must be below the count (0-based)"
            );
        }
        let plan = self.plan().await?;
        // A retry after the merge published this plan has nothing to stage.
        let previous = latest_version(self.store, self.period).await?;
        if let Some(o) = self.settled(&plan, &previous) {
            return Ok(o);
        }
        let inputs = self.inputs(&plan).await?;
        let s = self
            .stage(&plan, shard, shards, Keep::Rows, &inputs, None)
            .await?;
        Ok(Outcome::Staged {
            shard,
            shards,
            plan: plan.id.clone(),
            batches: s.batches.len() as u64,
            rows: s.totals.rows,
        })
    }

    /// Combines staged shards of the current plan into a new version; a no-op when
    /// the latest version already has this plan's inputs (a retried merge).
    pub async fn merge(&self) -> Result<Outcome> {
        let lease = self.take_lease().await?;
        let outcome = self.merge_leased(&lease).await;
        released(lease, outcome).await
    }

    async fn merge_leased(&self, lease: &Lease) -> Result<Outcome> {
        let plan = self.plan().await?;
        let previous = latest_version(self.store, self.period).await?;
        if let Some(o) = self.settled(&plan, &previous) {
            return Ok(o);
        }
        let prefix = layout::staging(self.period, &plan.id);
        let mut counts = BTreeSet::new();
        for m in self.store.list(&prefix).await? {
            let p = m.location.to_string();
            if let Some(n) = p
                .split('/')
                .find_map(|s| s.strip_prefix("shard="))
                .and_then(|s| s.split_once("-of-"))
                .and_then(|(_, n)| n.parse::<u32>().ok())
            {
                counts.insert(n);
            }
        }
        let Some(&n) = counts.iter().next_back() else {
            fail!(
                NotFound,
                "no staged shards for period {} with the current inputs (plan {}); run `gco run --period {} --shard i/N` for every i first (new ledger or grid data since changes the plan)",
                self.period,
                plan.id,
                self.period
            );
        };
        if counts.len() > 1 {
            fail!(
                Inconsistent,
                "staging for plan {} holds shards of several counts {:?}; rerun the shards with one N",
                plan.id,
                counts
            );
        }
        self.finalize(&plan, n, None, previous, lease).await
    }

    async fn stage(
        &self,
        plan: &Plan,
        shard: u32,
        shards: u32,
        keep: Keep,
        inputs: &Inputs,
        written: Option<&mut Written>,
    ) -> Result<ShardSummary> {
        let dir = self.staging(plan, shard, shards);
        let summary_path = format!("{dir}/summary.json");
        let staging = matches!(keep, Keep::Rows);
        // A shard already staged for this plan (a retry after a crash) is reused.
        if staging
            && let Ok(bytes) = self.store.get(&summary_path).await
            && let Ok(s) = serde_json::from_slice::<ShardSummary>(&bytes)
        {
            return Ok(s);
        }
        let registry = inputs.registry.clone();
        let by_day = self.by_day(plan, shard, shards);
        let total: u64 = by_day.values().map(|v| v.len() as u64).sum();
        // Sharded staging keeps them always: the merge may issue credentials.
        let keep_leaves = self.member_roots || staging;
        let mut flow = Flow {
            in_flight: Default::default(),
            summary: ShardSummary {
                plan_id: plan.id.clone(),
                shard,
                shards,
                batches: Vec::new(),
                chunks: Vec::new(),
                quarantine: Vec::new(),
                totals: ChunkTotals::default(),
            },
            written,
        };
        let mut done = 0u64;
        // One stream verifies the period's batches, four at a time, day after day (no
        // pause at a day's end). A day's batches gather into chunks of about the day's
        // even share; a chunk closes at that size and at the end of its day. Chunks
        // compute (two at a time) while the next batches verify: at most three chunks
        // of rows are held at a time. They are stored in order.
        let targets: BTreeMap<String, usize> = by_day
            .iter()
            .map(|(d, objects)| (d.clone(), chunk_target(objects, self.cfg.chunk_records)))
            .collect();
        let ordered = by_day
            .into_iter()
            .flat_map(|(d, objects)| objects.into_iter().map(move |o| (d.clone(), o)));
        let mut checked = futures::stream::iter(ordered.map(|(date, o)| {
            let registry = registry.clone();
            async move {
                let bytes = self.store.get(&o.path).await?;
                let checked = tokio::task::spawn_blocking(move || check(o, bytes, &registry))
                    .await
                    .context("verifying a batch")??;
                Ok::<_, crate::error::PipelineError>((date, checked))
            }
        }))
        .buffered(4);
        let mut pending = Pending::default();
        let mut day_keys = DayKeys::default();
        loop {
            let next = checked.next().await.transpose()?;
            // The day's open chunk closes when the next batch is of another day.
            if pending
                .date
                .as_ref()
                .is_some_and(|d| next.as_ref().is_none_or(|(date, _)| date != d))
                && !pending.batches.is_empty()
            {
                let chunk = pending.close(&dir, &keep, keep_leaves);
                self.compute(chunk, &mut flow, inputs).await?;
            }
            let Some((date, (mut entry, records))) = next else {
                break;
            };
            if pending.date.as_ref() != Some(&date) {
                pending.date = Some(date.clone());
                pending.part = 0;
                // A record stored twice is in one partition day (`gco_ledger::unique`).
                day_keys = DayKeys::default();
            }
            let index = flow.summary.batches.len();
            let records = records.and_then(|(recs, leaves, keys)| {
                let repeats = repeats(
                    &day_keys,
                    index,
                    &keys,
                    &flow.summary.batches,
                    &entry.object,
                );
                if repeats.is_empty() {
                    for (row, key) in keys.into_iter().enumerate() {
                        day_keys.insert(key, (index, row as u64));
                    }
                    Some((recs, leaves))
                } else {
                    // Counted once: the batch that repeats rows is left out, as one
                    // that failed verification is.
                    entry.verified = false;
                    entry.problems.extend(repeats);
                    None
                }
            });
            if let Some((recs, leaves)) = records {
                pending.rows += recs.iter().map(RecordBatch::num_rows).sum::<usize>();
                if keep_leaves {
                    pending.leaves.extend(leaves);
                }
                pending.located.push((
                    entry.node_id.clone().unwrap_or_default(),
                    entry.seq_first.unwrap_or(0).max(0) as u64,
                    entry.records,
                ));
                pending.batches.push((entry.object.clone(), recs));
            }
            flow.summary.batches.push(entry);
            done += 1;
            self.tick("verify", done, total);
            if !pending.batches.is_empty() && pending.rows >= targets[&date] {
                let chunk = pending.close(&dir, &keep, keep_leaves);
                self.compute(chunk, &mut flow, inputs).await?;
            }
        }
        while let Some(h) = flow.in_flight.pop_front() {
            self.staged(h, &mut flow).await?;
        }
        let summary = flow.summary;
        if staging {
            self.store
                .put_create(
                    &summary_path,
                    Bytes::from(serde_json::to_vec_pretty(&summary)?),
                )
                .await?;
        }
        Ok(summary)
    }

    /// Starts computing a closed chunk (staging its rows or finishing it, as its `keep`
    /// says), first storing the oldest computed chunk when two are in flight.
    async fn compute(
        &self,
        chunk: ClosedChunk,
        flow: &mut Flow<'_>,
        inputs: &Inputs,
    ) -> Result<()> {
        if flow.in_flight.len() >= 2
            && let Some(h) = flow.in_flight.pop_front()
        {
            self.staged(h, flow).await?;
        }
        let Inputs {
            registry,
            grid,
            cfg,
        } = inputs.clone();
        flow.in_flight
            .push_back(tokio::task::spawn_blocking(move || {
                let ClosedChunk {
                    date,
                    part,
                    batch,
                    located,
                    leaves,
                    staged,
                    leaves_path,
                    keep,
                } = chunk;
                let mut quarantine = Vec::new();
                let (df, totals) = chunk_rows(&batch, &registry, &cfg, &grid, &mut quarantine)
                    .context("computing emission rows")?;
                let (bytes, finished) = match keep {
                    Keep::Rows => (Some(write_parquet(df, Purpose::Staging)?), None),
                    Keep::Final(f) => {
                        let df = market::add_market(df, &f.allocation)?;
                        let agg = aggregate::fold(&df)?;
                        let members = match &leaves {
                            Some(leaves) => {
                                let located: Vec<(&str, u64, u64)> = located
                                    .iter()
                                    .map(|(n, f, c)| (n.as_str(), *f, *c))
                                    .collect();
                                Some(chunk_members(&date, &df, &located, &leaves.concat())?)
                            }
                            None => None,
                        };
                        let rows = df.height() as u64;
                        let path = format!("{}/rows/date={date}/part-{part:05}.parquet", f.out_dir);
                        let bytes = write_parquet(df, Purpose::Output)?;
                        let entry = output_entry(&path, &bytes, rows);
                        (
                            None,
                            Some(Finished {
                                path,
                                bytes,
                                entry,
                                agg,
                                members,
                            }),
                        )
                    }
                };
                Ok(ChunkOut {
                    entry: ChunkEntry {
                        date,
                        part,
                        batches: batch.into_iter().map(|(o, _)| o).collect(),
                        staged,
                        rows: totals.rows,
                        leaves: leaves_path.clone(),
                    },
                    bytes,
                    leaves: leaves_path.and(leaves).map(|l| Bytes::from(l.concat())),
                    totals,
                    quarantine,
                    finished,
                })
            }));
        Ok(())
    }

    /// Waits for a computed chunk and stores it: its staged rows and leaves, or its
    /// output file (and its aggregates and member leaves into `flow.written`).
    async fn staged(
        &self,
        h: tokio::task::JoinHandle<Result<ChunkOut>>,
        flow: &mut Flow<'_>,
    ) -> Result<()> {
        let c = h.await.context("computing emission rows")??;
        if let (Some(path), Some(bytes)) = (&c.entry.staged, c.bytes) {
            self.store.put_create(path, bytes).await?;
        }
        if let (Some(path), Some(bytes)) = (&c.entry.leaves, c.leaves) {
            self.store.put_create(path, bytes).await?;
        }
        if let Some(f) = c.finished {
            let w = flow
                .written
                .as_deref_mut()
                .or_fail(Kind::Internal, "a finished chunk outside a one-process run")?;
            self.store.put_create(&f.path, f.bytes).await?;
            w.paths.push(f.path);
            w.outputs.push(f.entry);
            w.agg.merge(f.agg);
            if let (Some((tx, _)), Some(m)) = (&w.members, f.members) {
                tx.send(m)
                    .map_err(|_| failure!(Internal, "the member-root thread stopped"))?;
            }
        }
        flow.summary.chunks.push(c.entry);
        add_totals(&mut flow.summary.totals, &c.totals)?;
        flow.summary.quarantine.extend(c.quarantine);
        Ok(())
    }

    /// The registry, grid frames and configuration a plan's rows are computed with.
    async fn inputs(&self, plan: &Plan) -> Result<Inputs> {
        Ok(Inputs {
            registry: Arc::new(
                Registry::load_paths(
                    self.store,
                    &plan
                        .registry
                        .iter()
                        .map(|o| o.path.clone())
                        .collect::<Vec<_>>(),
                )
                .await?,
            ),
            grid: Arc::new(self.grid(plan).await?),
            cfg: Arc::new(self.cfg.clone()),
        })
    }

    /// `inputs`: those staging used, when this process staged (else loaded here if a
    /// chunk's rows must be computed).
    /// The staged summaries of all `shards` shards of `plan`; every one must be there.
    async fn shard_summaries(&self, plan: &Plan, shards: u32) -> Result<Vec<ShardSummary>> {
        let mut parts = Vec::new();
        let mut missing = Vec::new();
        for i in 0..shards {
            let path = format!("{}/summary.json", self.staging(plan, i, shards));
            match self.store.get(&path).await {
                Ok(b) => parts.push(
                    serde_json::from_slice::<ShardSummary>(&b)
                        .with_context(|| format!("reading {path}"))?,
                ),
                Err(_) => missing.push(i),
            }
        }
        if !missing.is_empty() {
            fail!(
                NotFound,
                "shards {missing:?} of {shards} are not staged for plan {}; run them (`gco run --period {} --shard i/{shards}`) before --merge",
                plan.id,
                self.period
            );
        }
        Ok(parts)
    }

    async fn finalize(
        &self,
        plan: &Plan,
        shards: u32,
        inputs: Option<Inputs>,
        previous: Option<(u32, RunManifest)>,
        lease: &Lease,
    ) -> Result<Outcome> {
        let parts = self.shard_summaries(plan, shards).await?;
        let all = Gathered::new(parts)?;
        let Gathered {
            batches,
            chunks,
            chain,
            totals,
            ..
        } = &all;
        let unverified: Vec<&BatchEntry> = batches.iter().filter(|b| !b.verified).collect();
        if self.cfg.on_unverified == OnUnverified::Abort
            && (!unverified.is_empty() || !chain.is_empty())
        {
            let mut lines: Vec<String> = unverified
                .iter()
                .flat_map(|b| b.problems.iter())
                .chain(chain.iter())
                .take(20)
                .map(|p| format!("  {} [{}] {}", p.object, p.code, p.message))
                .collect();
            lines.sort();
            fail!(
                Unverified,
                "{} batches failed verification and {} chain links are broken in {}; the policy on_unverified = \"abort\" stops the run:\n{}",
                unverified.len(),
                chain.len(),
                self.period,
                lines.join("\n")
            );
        }
        let allocation = market::allocate(self.cfg, self.period, &totals.scope2_facility_mj)?;

        let version = previous.as_ref().map_or(1, |(v, _)| v + 1);
        let (out_dir, _) = version_dir(self.period, version);
        let mut agg = aggregate::Aggregates::new(&self.cfg.organisation);
        let mut outputs = Vec::new();
        // Chunks are finished two at a time (decode, market figures, sums, encode) and
        // stored in order.
        // Chunks not staged are computed from their verified batches, with the
        // inputs the first pass used.
        let recompute = if chunks.iter().any(|c| c.staged.is_none()) {
            let inputs = match inputs {
                Some(i) => i,
                None => self.inputs(plan).await?,
            };
            let hashes: BTreeMap<String, String> = batches
                .iter()
                .map(|b| (b.object.clone(), b.sha256.clone()))
                .collect();
            Some((inputs, Arc::new(hashes)))
        } else {
            None
        };
        // Member roots: each chunk's rows mapped to the leaf hashes staging kept.
        let members_of: Option<Arc<Located>> =
            if self.member_roots && chunks.iter().all(|c| c.leaves.is_some()) {
                Some(Arc::new(located(batches)?))
            } else {
                None
            };
        // The roots are streamed on a thread of their own, beside the chunk workers.
        let members = members_of.as_ref().map(|_| member_thread());
        let mut finished = futures::stream::iter(chunks.iter().map(|c| {
            let alloc = allocation.clone();
            let recompute = recompute.clone();
            let members_of = members_of.clone();
            async move {
                let leaves = match (&members_of, &c.leaves) {
                    (Some(_), Some(path)) => Some(self.store.get(path).await?),
                    _ => None,
                };
                let (date, objects) = (c.date.clone(), c.batches.clone());
                let source = match &c.staged {
                    Some(path) => Source::Staged(self.store.get(path).await?),
                    None => {
                        let mut objects = Vec::with_capacity(c.batches.len());
                        for o in &c.batches {
                            objects.push((o.clone(), self.store.get(o).await?));
                        }
                        Source::Ledger(objects)
                    }
                };
                let expected_rows = c.rows;
                tokio::task::spawn_blocking(move || {
                    finish_chunk(
                        source,
                        recompute,
                        &alloc,
                        members_of.as_deref().zip(leaves.as_deref()),
                        (&date, &objects, expected_rows),
                    )
                })
                .await
                .context("finishing a chunk")?
            }
        }))
        .buffered(2);
        let mut k = 0u64;
        while let Some(r) = finished.next().await {
            let (bytes, rows, agg_part, chunk) = r?;
            let c = &chunks[k as usize];
            agg.merge(agg_part);
            if let (Some((tx, _)), Some(chunk)) = (&members, chunk) {
                tx.send(chunk)
                    .map_err(|_| failure!(Internal, "the member-root thread stopped"))?;
            }
            let path = format!("{out_dir}/rows/date={}/part-{:05}.parquet", c.date, c.part);
            outputs.push(output_entry(&path, &bytes, rows));
            self.store.put_create(&path, bytes).await?;
            k += 1;
            self.tick("write", k, chunks.len() as u64);
        }
        let written = Written {
            paths: Vec::new(),
            outputs,
            agg,
            members,
        };
        self.publish(plan, shards, previous, &all, &allocation, written, lease)
            .await
    }

    /// Writes the aggregates and, last, the manifest of the version after `previous`
    /// (the latest when the run started), whose rows are written.
    #[allow(clippy::too_many_arguments)]
    async fn publish(
        &self,
        plan: &Plan,
        shards: u32,
        previous: Option<(u32, RunManifest)>,
        all: &Gathered,
        allocation: &market::Allocation,
        written: Written,
        lease: &Lease,
    ) -> Result<Outcome> {
        let version = previous.as_ref().map_or(1, |(v, _)| v + 1);
        let (out_dir, manifest_path) = version_dir(self.period, version);
        let Written {
            mut outputs,
            agg,
            members,
            ..
        } = written;
        let Gathered {
            batches,
            chain,
            quarantine,
            totals,
            ..
        } = all;
        for (name, batch) in agg.batches()? {
            let rows = batch.num_rows() as u64;
            let bytes = write_arrow_parquet(&batch)?;
            let path = format!("{out_dir}/aggregates/{name}.parquet");
            outputs.push(output_entry(&path, &bytes, rows));
            self.store.put_create(&path, bytes).await?;
        }

        let member_roots = match members {
            Some((tx, builder)) => {
                drop(tx);
                let m = builder
                    .join()
                    .map_err(|_| failure!(Internal, "the member-root thread panicked"))?;
                Some(Arc::new(m.finish_chunks(&self.cfg.organisation)))
            }
            None => None,
        };
        let summary =
            aggregate::RunSummary::new(batches, chain, quarantine, totals, &agg, allocation);
        let changes = previous
            .as_ref()
            .map(|(v, m)| Box::new(aggregate::Changes::between(*v, m, &summary, batches)));
        let manifest = RunManifest {
            format: crate::manifest::FORMAT.into(),
            method: METHOD_VERSION.into(),
            period: self.period.to_string(),
            version,
            as_of: format_utc(self.as_of),
            code_version: self.code_version.clone(),
            plan: plan.clone(),
            config: self.cfg.clone(),
            shards,
            inputs: crate::manifest::Inputs {
                ledger: batches.clone(),
                grid: plan.grid.clone(),
                registry: plan.registry.clone(),
            },
            coverage: summary.coverage.clone(),
            chain_issues: chain.clone(),
            quarantine: quarantine
                .iter()
                .take(crate::manifest::MAX_LISTED_QUARANTINE)
                .cloned()
                .collect(),
            instruments: allocation.report(),
            totals: summary.totals.clone(),
            outputs,
        };
        // The commit point, fenced: a writer whose lease ended (and whose outputs a
        // later holder may have removed) never publishes.
        lease.check().await?;
        self.store
            .put_create(&manifest_path, Bytes::from(manifest.to_bytes()?))
            .await?;
        tracing::info!(
            period = %self.period,
            version,
            plan = %plan.id,
            manifest = %manifest_path,
            outputs = manifest.outputs.len(),
            "version published"
        );
        // Staging is scratch once the version is written.
        let staging = layout::staging(self.period, &plan.id);
        for m in self.store.list(&staging).await? {
            self.store.delete_staging(m.location.as_ref()).await?;
        }
        Ok(Outcome::Created {
            version,
            manifest: manifest_path,
            summary: Box::new(summary),
            changes,
            member_roots,
        })
    }
}

/// Releases `lease` whatever `outcome` is; the outcome's error comes first.
async fn released(lease: Lease, outcome: Result<Outcome>) -> Result<Outcome> {
    let release = lease.release().await;
    let outcome = outcome?;
    release?;
    Ok(outcome)
}

/// The shard summaries of a run, put together in order.
struct Gathered {
    batches: Vec<BatchEntry>,
    chunks: Vec<ChunkEntry>,
    quarantine: Vec<Quarantined>,
    totals: ChunkTotals,
    chain: Vec<Issue>,
}

impl Gathered {
    fn new(parts: Vec<ShardSummary>) -> Result<Self> {
        let (mut batches, mut chunks, mut quarantine) = (Vec::new(), Vec::new(), Vec::new());
        let mut totals = ChunkTotals::default();
        for p in parts {
            batches.extend(p.batches);
            chunks.extend(p.chunks);
            quarantine.extend(p.quarantine);
            add_totals(&mut totals, &p.totals)?;
        }
        batches.sort_by(|a: &BatchEntry, b| a.object.cmp(&b.object));
        chunks.sort_by(|a: &ChunkEntry, b| (&a.date, a.part).cmp(&(&b.date, b.part)));
        quarantine.sort();
        let chain = chain_issues(&batches);
        Ok(Gathered {
            batches,
            chunks,
            quarantine,
            totals,
            chain,
        })
    }
}

/// What rows are computed with besides the ledger, shared by the tasks of a run.
#[derive(Clone)]
struct Inputs {
    registry: Arc<Registry>,
    grid: Arc<Grid>,
    cfg: Arc<PipelineConfig>,
}

/// What finishing one chunk gives: its rows file, row count, aggregates and member
/// leaves.
type FinishedChunk = (
    Bytes,
    u64,
    aggregate::Aggregates,
    Option<crate::certify::ChunkMembers>,
);

/// Finishes one chunk of a sharded or re-verified run: its rows from staging or
/// recomputed from its verified batches (whose bytes must be the ones the first pass
/// verified, giving as many rows), the market figures, its aggregates, its member
/// leaves and its rows file. `chunk` is (date, batch objects, rows of the first pass).
fn finish_chunk(
    source: Source,
    recompute: Option<(Inputs, Arc<BTreeMap<String, String>>)>,
    alloc: &market::Allocation,
    members_of: Option<(&Located, &[u8])>,
    (date, objects, expected_rows): (&str, &[String], u64),
) -> Result<FinishedChunk> {
    let df = match source {
        Source::Staged(bytes) => ParquetReader::new(std::io::Cursor::new(bytes)).finish()?,
        Source::Ledger(objects) => {
            let (inputs, hashes) =
                recompute.or_fail(Kind::Internal, "no registry loaded for a chunk")?;
            let mut batch = Vec::with_capacity(objects.len());
            for (path, bytes) in objects {
                // The very bytes verified in the first pass.
                if hashes.get(&path) != Some(&sha256_hex(&bytes)) {
                    fail!(
                        Inconsistent,
                        "{path} changed between the two passes of the run (SHA-256 differs from the verified object); rerun"
                    );
                }
                batch.push((path.clone(), decode_batch(&path, bytes)?));
            }
            let (df, totals) = chunk_rows(
                &batch,
                &inputs.registry,
                &inputs.cfg,
                &inputs.grid,
                &mut Vec::new(),
            )?;
            if totals.rows != expected_rows {
                fail!(
                    Inconsistent,
                    "a chunk gave {} rows on the second pass, {} on the first",
                    totals.rows,
                    expected_rows
                );
            }
            df
        }
    };
    let df = market::add_market(df, alloc)?;
    let a = aggregate::fold(&df)?;
    let rows = df.height() as u64;
    let members = match members_of {
        Some((info, leaves)) => {
            let mut located = Vec::with_capacity(objects.len());
            for o in objects {
                let (node, first, n) = info.get(o).or_else_fail(Kind::Inconsistent, || {
                    format!("{o} is not a verified batch")
                })?;
                located.push((node.as_str(), *first, *n));
            }
            Some(chunk_members(date, &df, &located, leaves)?)
        }
        _ => None,
    };
    Ok((write_parquet(df, Purpose::Output)?, rows, a, members))
}

/// Where finalisation gets a chunk's rows from.
enum Source {
    Staged(Bytes),
    Ledger(Vec<(String, Bytes)>),
}

/// The rows of a verified ledger object, decoded again (no checks: the first pass
/// verified these bytes and the caller compared their hash).
fn decode_batch(path: &str, bytes: Bytes) -> Result<Vec<RecordBatch>> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.with_batch_size(65_536).build())
        .with_context(|| format!("decoding {path}"))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .with_context(|| format!("decoding {path}"))
}

/// The verified batches gathering into a day's next chunk.
#[derive(Default)]
struct Pending {
    date: Option<String>,
    /// The chunk's number within its day.
    part: u32,
    batches: Vec<(String, Vec<RecordBatch>)>,
    /// Each batch's (node, first seq, record count).
    located: Vec<(String, u64, u64)>,
    leaves: Vec<gco_ledger::hash::Hash32>,
    rows: usize,
}

impl Pending {
    /// Takes the gathered batches as a chunk (numbered, with its staging paths) and
    /// starts the day's next one.
    fn close(&mut self, dir: &str, keep: &Keep, keep_leaves: bool) -> ClosedChunk {
        let date = self.date.clone().unwrap_or_default();
        let part = self.part;
        self.part += 1;
        self.rows = 0;
        let leaves = std::mem::take(&mut self.leaves);
        // Staging keeps rows and leaves in the store; a finished chunk uses its leaves
        // at once.
        let staging = matches!(keep, Keep::Rows);
        ClosedChunk {
            staged: staging.then(|| format!("{dir}/rows/date={date}/part-{part:05}.parquet")),
            leaves_path: (staging && keep_leaves)
                .then(|| format!("{dir}/leaves/date={date}/part-{part:05}.bin")),
            leaves: keep_leaves.then_some(leaves),
            batch: std::mem::take(&mut self.batches),
            located: std::mem::take(&mut self.located),
            date,
            part,
            keep: keep.clone(),
        }
    }
}

/// A chunk ready to compute.
struct ClosedChunk {
    date: String,
    part: u32,
    batch: Vec<(String, Vec<RecordBatch>)>,
    located: Vec<(String, u64, u64)>,
    leaves: Option<Vec<gco_ledger::hash::Hash32>>,
    staged: Option<String>,
    leaves_path: Option<String>,
    keep: Keep,
}

/// A chunk's staged rows, ready to store.
struct ChunkOut {
    entry: ChunkEntry,
    bytes: Option<Bytes>,
    /// The chunk's leaf hashes, when staged.
    leaves: Option<Bytes>,
    totals: ChunkTotals,
    quarantine: Vec<Quarantined>,
    /// A finished chunk's output.
    finished: Option<Finished>,
}

/// A chunk finished in the one-process pass: its output file and what it adds.
struct Finished {
    path: String,
    bytes: Bytes,
    entry: Output,
    agg: aggregate::Aggregates,
    members: Option<ChunkMembers>,
}

fn output_entry(path: &str, bytes: &Bytes, rows: u64) -> Output {
    Output {
        path: path.to_string(),
        bytes: bytes.len() as u64,
        rows,
        sha256: sha256_hex(bytes),
    }
}

fn add_totals(into: &mut ChunkTotals, t: &ChunkTotals) -> Result<()> {
    into.rows += t.rows;
    into.quarantined += t.quarantined;
    for (z, e) in &t.scope2_facility_mj {
        let sum = into.scope2_facility_mj.entry(z.clone()).or_default();
        *sum = sum
            .checked_add(*e)
            .or_else_fail(Kind::Overflow, || crate::rows::zone_overflow(z))?;
    }
    Ok(())
}

/// A verified object's decoded rows, their Merkle leaf hashes and uniqueness keys.
type Verified = (Vec<RecordBatch>, Vec<gco_ledger::hash::Hash32>, Vec<RowKey>);

/// Problems of a batch (`index` in the run's batches, at `object`) whose rows repeat
/// rows of its day seen before (`day`) or of itself: at most 20, each naming both
/// places.
fn repeats(
    day: &DayKeys,
    index: usize,
    keys: &[RowKey],
    batches: &[BatchEntry],
    object: &str,
) -> Vec<Issue> {
    let mut own: HashMap<RowKey, u64, KeyBuild> = HashMap::default();
    let mut out = Vec::new();
    for (row, &key) in keys.iter().enumerate() {
        let row = row as u64;
        let first = match day.get(key) {
            Some(p) => Some(p),
            None => own.insert(key, row).map(|r| (index, r)),
        };
        if let Some((o, r)) = first {
            if out.len() < 20 {
                let at = batches.get(o).map_or(object, |b| b.object.as_str());
                out.push(Issue {
                    object: object.to_string(),
                    row: Some(row),
                    code: key.duplicate_code().into(),
                    message: format!(
                        "row {row} repeats the {} of {at} row {r}: the record is in the ledger twice; this batch is not counted",
                        key.what()
                    ),
                });
            }
            own.insert(key, row);
        }
    }
    out
}

/// Verified batches by object: (node, first seq, record count).
type Located = BTreeMap<String, (String, u64, u64)>;

/// Each verified batch's node, first seq and record count, by object: what maps a
/// chunk's rows to the leaf hashes staging kept. A verified batch has a seal, so a
/// missing node or seq is a broken invariant, never a default.
fn located(batches: &[BatchEntry]) -> Result<Located> {
    let mut out = Located::new();
    for b in batches.iter().filter(|b| b.verified) {
        let missing = || format!("the verified batch {} has no seal fields", b.object);
        let node = b.node_id.clone().or_else_fail(Kind::Internal, missing)?;
        let first = b
            .seq_first
            .and_then(|s| u64::try_from(s).ok())
            .or_else_fail(Kind::Internal, missing)?;
        out.insert(b.object.clone(), (node, first, b.records));
    }
    Ok(out)
}

/// Verifies one object; its decoded rows come back only when it verified.
fn check(
    o: InputObject,
    bytes: Bytes,
    registry: &Registry,
) -> Result<(BatchEntry, Option<Verified>)> {
    let sha256 = sha256_hex(&bytes);
    let (mut c, decoded) = gco_ledger::verify::check_object_rows(&o.path, bytes, registry);
    let problems: Vec<Issue> = c
        .problems
        .iter()
        .map(|p| Issue {
            object: p.object.clone(),
            row: p.row,
            code: p.code.to_string(),
            message: p.message.clone(),
        })
        .collect();
    let verified = problems.is_empty() && c.seal.is_some();
    let records = verified.then(|| {
        (
            decoded,
            std::mem::take(&mut c.leaves),
            std::mem::take(&mut c.keys),
        )
    });
    let seal = c.seal.as_ref();
    Ok((
        BatchEntry {
            object: o.path,
            size: o.size,
            sha256,
            verified,
            problems,
            node_id: seal.map(|s| s.node_id.clone()),
            seq_first: seal.map(|s| s.seq_first),
            seq_last: seal.map(|s| s.seq_last),
            prev_batch_hash: seal.map(|s| s.prev_batch_hash.clone()),
            batch_hash: seal.map(|s| s.batch_hash.clone()),
            records: seal.map_or(0, |s| s.record_count.max(0) as u64),
            energy_mj: seal.map_or(0, |s| s.energy_mj),
        },
        records,
    ))
}

/// Breaks in each node's chain inside the period (a missing or unverifiable batch
/// between two verified ones). The period's first batch links to one before the
/// period, which the ledger verifier checks.
fn chain_issues(batches: &[BatchEntry]) -> Vec<Issue> {
    let mut by_node: BTreeMap<&str, Vec<&BatchEntry>> = BTreeMap::new();
    for b in batches.iter().filter(|b| b.verified) {
        if let Some(n) = &b.node_id {
            by_node.entry(n).or_default().push(b);
        }
    }
    let mut out = Vec::new();
    for (node, mut bs) in by_node {
        bs.sort_by_key(|b| b.seq_first);
        for w in bs.windows(2) {
            let (a, b) = (w[0], w[1]);
            let contiguous = a.seq_last.map(|s| s + 1) == b.seq_first;
            let linked = a.batch_hash == b.prev_batch_hash;
            if !(contiguous && linked) {
                out.push(Issue {
                    object: b.object.clone(),
                    row: None,
                    code: "chain_gap".into(),
                    message: format!(
                        "{node}: this batch (seq {}..) does not follow the previous verified batch {} (seq ..{}); records in between are missing or failed verification",
                        b.seq_first.unwrap_or(-1),
                        a.object,
                        a.seq_last.unwrap_or(-1)
                    ),
                });
            }
        }
    }
    out
}

/// Parquet bytes of an Arrow batch (the aggregates), fixed settings.
pub fn write_arrow_parquet(batch: &arrow_array::RecordBatch) -> Result<Bytes> {
    use parquet::basic::{Compression, ZstdLevel};
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by(METHOD_VERSION.to_string())
        .build();
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
    w.write(batch)?;
    w.close()?;
    Ok(Bytes::from(buf))
}

/// How a Parquet file is compressed: outputs are kept (zstd), staged chunks are
/// scratch read back once (LZ4, several times faster to write and read).
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    Output,
    Staging,
}

/// Parquet bytes with fixed settings (compression by purpose, statistics, 128k-row
/// groups, encodings by type), so equal frames give equal bytes.
///
/// Written through Polars' own Parquet encoder, with two choices made here:
/// - integer and time columns are `DELTA_BINARY_PACKED` (Polars would try a dictionary
///   for each, estimating its cardinality first, and write the many-valued ones
///   `PLAIN`): energies, emissions and times differ little from row to row, so the
///   packed deltas are a third of the plain bytes, and zstd has that much less to do;
/// - a string column with few distinct values is handed to the encoder as a
///   dictionary (codes and values in first-seen order, what Polars itself builds
///   before writing it). Polars would find that dictionary by estimating the column's
///   cardinality and then hashing every value; here a row is matched to the previous
///   row's 16-byte view (rows come in runs: a batch is one node's) and otherwise
///   compared with the few values found so far.
///
/// Strings and booleans come out as the bytes of Polars' `ParquetWriter` with the same
/// settings (a test compares them).
pub fn write_parquet(mut df: DataFrame, purpose: Purpose) -> Result<Bytes> {
    use polars_parquet::read::ParquetError;
    use polars_parquet::write::{
        CompressionOptions, Compressor, DynIter, DynStreamingIterator, Encoding,
        FallibleStreamingIterator, FileWriter, StatisticsOptions as ParquetStatistics, Version,
        WriteOptions, ZstdLevel as ParquetZstd, array_to_columns, get_dtype_encoding,
    };
    let err = |e: PolarsError| failure!(Internal, "encoding Parquet: {e}");
    // One chunk per column first: the bytes must not depend on how the frame was
    // built (computed here, or read back from staging).
    df.rechunk_mut_par();
    let chunked = polars::frame::chunk_df_for_writing(&mut df, 131_072).map_err(err)?;
    let schema = chunked.schema().to_arrow(CompatLevel::newest());
    let options = WriteOptions {
        statistics: ParquetStatistics::default(),
        compression: match purpose {
            // Level 1: half the CPU of the default level 3 for a few % more bytes.
            Purpose::Output => {
                CompressionOptions::Zstd(Some(ParquetZstd::try_new(1).map_err(err)?))
            }
            Purpose::Staging => CompressionOptions::Lz4Raw,
        },
        version: Version::V1,
        data_page_size: None,
    };
    let mut writer = FileWriter::try_new(Vec::new(), schema.clone(), options).map_err(err)?;
    let fields = writer.parquet_schema().fields().to_vec();
    let encodings: Vec<_> = schema
        .iter_values()
        .map(|f| {
            if is_integer(&f.dtype) {
                vec![Encoding::DeltaBinaryPacked]
            } else {
                get_dtype_encoding(&f.dtype)
            }
        })
        .collect();
    for batch in chunked.iter_chunks(CompatLevel::newest(), false) {
        if batch.is_empty() {
            continue;
        }
        let rows = batch.len() as u64;
        let mut columns = Vec::new();
        for ((array, type_), encoding) in batch.columns().iter().zip(&fields).zip(&encodings) {
            let array = few_strings_as_dictionary(array.as_ref()).unwrap_or_else(|| array.clone());
            for pages in array_to_columns(&array, type_.clone(), options, encoding).map_err(err)? {
                let compressed = Compressor::new_from_vec(
                    pages.map(|r| {
                        r.map_err(|e| {
                            ParquetError::FeatureNotSupported(format!("reraised in polars: {e}"))
                        })
                    }),
                    options.compression,
                    vec![],
                )
                .map_err(PolarsError::from);
                columns.push(Ok(DynStreamingIterator::new(compressed)));
            }
        }
        writer
            .write(rows, DynIter::new(columns.into_iter()))
            .map_err(err)?;
    }
    writer.end(None).map_err(err)?;
    Ok(Bytes::from(writer.into_inner()))
}

/// Integer and time columns: written `DELTA_BINARY_PACKED`.
fn is_integer(dtype: &polars_arrow::datatypes::ArrowDataType) -> bool {
    use polars_arrow::datatypes::ArrowDataType as T;
    matches!(
        dtype,
        T::Int8
            | T::Int16
            | T::Int32
            | T::Int64
            | T::UInt8
            | T::UInt16
            | T::UInt32
            | T::UInt64
            | T::Date32
            | T::Timestamp(_, _)
            | T::Duration(_)
    )
}

/// A string column as a dictionary (codes in first-seen order of the values), when it
/// holds at most 64 distinct values: a row whose 16-byte view equals the previous
/// row's takes its code, any other is compared as a string with the values found so
/// far. `None` for anything else (other types, a column empty or all null, more
/// values): the encoder then decides as Polars does.
fn few_strings_as_dictionary(
    array: &dyn polars_arrow::array::Array,
) -> Option<polars_arrow::array::ArrayRef> {
    use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray};
    use polars_arrow::datatypes::{ArrowDataType, IntegerType};
    const MAX_DISTINCT: usize = 64;
    let strings = array.as_any().downcast_ref::<Utf8ViewArray>()?;
    if strings.is_empty() {
        return None;
    }
    let valid = |i: usize| strings.validity().is_none_or(|v| v.get_bit(i));
    let mut values: Vec<&str> = Vec::new();
    let mut codes: Vec<u32> = Vec::with_capacity(strings.len());
    let mut last: Option<(u128, u32)> = None;
    for (i, view) in strings.views().iter().enumerate() {
        if !valid(i) {
            codes.push(0);
            continue;
        }
        let v = view.as_u128();
        let code = match last {
            Some((lv, c)) if lv == v => c,
            _ => {
                let s = strings.value(i);
                let c = match values.iter().position(|x| *x == s) {
                    Some(c) => c as u32,
                    None if values.len() == MAX_DISTINCT => return None,
                    None => {
                        values.push(s);
                        values.len() as u32 - 1
                    }
                };
                last = Some((v, c));
                c
            }
        };
        codes.push(code);
    }
    if values.is_empty() {
        return None;
    }
    let keys = PrimitiveArray::<u32>::from_vec(codes).with_validity(strings.validity().cloned());
    let values = Utf8ViewArray::from_slice_values(values);
    let dtype =
        ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(array.dtype().clone()), false);
    DictionaryArray::try_new(dtype, keys, values.boxed())
        .ok()
        .map(|d| d.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(counts: &[usize]) -> Vec<InputObject> {
        let mut seq = 0;
        counts
            .iter()
            .map(|&n| {
                let o = InputObject {
                    path: format!(
                        "records/date=2026-10-01/node=n/{seq:020}-{:020}-0123456789abcdef.parquet",
                        seq + n - 1
                    ),
                    size: 1,
                };
                seq += n;
                o
            })
            .collect()
    }

    /// What `write_parquet` must equal: Polars' own writer with the same settings.
    fn polars_writer(mut df: DataFrame, purpose: Purpose) -> Vec<u8> {
        df.rechunk_mut_par();
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf)
            .with_compression(match purpose {
                Purpose::Output => ParquetCompression::Zstd(Some(
                    polars_utils::compression::ZstdLevel::try_new(1).unwrap(),
                )),
                Purpose::Staging => ParquetCompression::Lz4Raw,
            })
            .with_statistics(StatisticsOptions::default())
            .with_row_group_size(Some(131_072))
            .finish(&mut df)
            .unwrap();
        buf
    }

    #[test]
    fn parquet_strings_as_polars_writes_them_integers_delta_coded() {
        // Rows past one row group; strings short (inline) and long, built per row and
        // as shared views, with nulls, all null, one value, and more than 64 values.
        let n = 140_000usize;
        let long = [
            "provider_measured_with_a_long_name",
            "grid_average(no_residual_mix)",
        ];
        let shared: Vec<Option<&str>> = (0..n)
            .map(|i| (i % 7 != 3).then_some(long[i / 1000 % 2]))
            .collect();
        let copied: Vec<String> = (0..n)
            .map(|i| format!("model-{}-of-a-family", i % 5))
            .collect();
        let many: Vec<String> = (0..n).map(|i| format!("value-{}", i % 100)).collect();
        let unique: Vec<String> = (0..n).map(|i| format!("{i:036}")).collect();
        let frame = |rows: usize| {
            DataFrame::new_infer_height(vec![
                Column::new(
                    "short".into(),
                    (0..rows).map(|i| ["FR", "DE"][i % 2]).collect::<Vec<_>>(),
                ),
                crate::rows::shared_strings_for_tests("shared", &shared[..rows]),
                Column::new("copied".into(), copied[..rows].to_vec()),
                Column::new("many".into(), many[..rows].to_vec()),
                Column::new("unique".into(), unique[..rows].to_vec()),
                Column::new("nulls".into(), vec![None::<&str>; rows]),
                Column::new("one".into(), vec!["scope2"; rows]),
                Column::new(
                    "flag".into(),
                    (0..rows).map(|i| i % 3 == 0).collect::<Vec<_>>(),
                ),
                Column::new("int".into(), (0..rows as i64).collect::<Vec<_>>()),
                Column::new(
                    "opt".into(),
                    (0..rows as i64)
                        .map(|i| (i % 3 > 0).then_some(i % 10))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "time".into(),
                    (0..rows as i64)
                        .map(|i| 1_790_000_000_000_000 + i * 37_000 - (i % 5) * 1_000_000)
                        .collect::<Vec<_>>(),
                )
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                .unwrap(),
                Column::new(
                    "count".into(),
                    (0..rows as u64)
                        .map(|i| (i * 7919) % 1000)
                        .collect::<Vec<_>>(),
                ),
            ])
            .unwrap()
        };
        let df = frame(5_000);
        let coded = |c: &str| {
            let arrow = df.column(c).unwrap().as_materialized_series().rechunk();
            few_strings_as_dictionary(arrow.to_arrow(0, CompatLevel::newest()).as_ref()).is_some()
        };
        for c in ["short", "shared", "copied", "one"] {
            assert!(coded(c), "{c} is written from codes");
        }
        for c in ["many", "unique", "nulls", "int"] {
            assert!(!coded(c), "{c} is left to the encoder");
        }
        let ints = ["int", "opt", "time", "count"];
        for rows in [0, 1, 100, 129, 5_000, n] {
            for purpose in [Purpose::Output, Purpose::Staging] {
                let df = frame(rows);
                let bytes = write_parquet(df.clone(), purpose).unwrap();
                // Strings and booleans: Polars' own bytes.
                let strings = df.drop_many(ints);
                assert_eq!(
                    write_parquet(strings.clone(), purpose).unwrap().as_ref(),
                    polars_writer(strings, purpose).as_slice(),
                    "{rows} rows, {purpose:?}"
                );
                // Everything reads back as written, integers delta-coded.
                let back = ParquetReader::new(std::io::Cursor::new(bytes.clone()))
                    .finish()
                    .unwrap();
                assert!(back.equals_missing(&df), "{rows} rows, {purpose:?}");
                use parquet::file::reader::FileReader;
                let reader = parquet::file::reader::SerializedFileReader::new(bytes).unwrap();
                for g in reader.metadata().row_groups() {
                    for c in g.columns() {
                        let name = c.column_path().string();
                        let delta = c
                            .encodings()
                            .any(|e| e == parquet::basic::Encoding::DELTA_BINARY_PACKED);
                        assert_eq!(delta, ints.contains(&name.as_str()), "{name}, {rows} rows");
                    }
                }
            }
        }
    }

    #[test]
    fn chunks_split_a_day_evenly() {
        // The 10M bench day: 16 batches of 20,161 records -> two chunks of 161,288.
        assert_eq!(chunk_target(&objects(&[20_161; 16]), 250_000), 161_288);
        // A day under the bound is one chunk.
        assert_eq!(chunk_target(&objects(&[4_032; 16]), 250_000), 64_512);
        // Exactly the bound: one chunk.
        assert_eq!(chunk_target(&objects(&[125_000; 2]), 250_000), 250_000);
        // Names that are not SEQ-SEQ count as a whole chunk each: never above the bound.
        let odd = vec![InputObject {
            path: "records/date=2026-10-01/node=n/x.parquet".into(),
            size: 1,
        }];
        assert_eq!(chunk_target(&odd, 250_000), 250_000);
        assert_eq!(chunk_target(&[], 250_000), 1);
        assert_eq!(chunk_target(&objects(&[3; 3]), 2), 2);
    }
}
