//! Verifiable credentials for a run version (`gco vc issue`, `gco run --credentials`).
//!
//! Reads the version's rows, aggregates and manifest, and the ledger batches the
//! manifest lists (each checked against the SHA-256 the run verified, and its rows
//! against the batch's signed Merkle root). Then, per granularity:
//!
//! * aggregates (model per day, model per month, organisation per month): the
//!   aggregate's figures, with a Merkle root over the ledger leaf hashes of its member
//!   inferences, in ledger order, so any one inference can be proven included;
//! * per inference (opt-in): the row's figures with the ledger evidence (batch, node
//!   key and signature, the record's inclusion proof in the batch).
//!
//! Store layout (create-only, except the status lists, which revocation updates):
//! ```text
//! certificates/period=P/version=NNNN/aggregates.parquet
//! certificates/period=P/version=NNNN/inferences/date=D/part-00000.parquet
//! certificates/period=P/version=NNNN/status/{aggregates,inferences}.jwt
//! certificates/period=P/version=NNNN/revocations/<list>-<index>.json
//! certificates/period=P/version=NNNN/index.json      (written last)
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::error::{Context, Kind, OrFail, Result, fail, failure};
use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use gco_credentials::merkle::{RootBuilder, Tree};
use gco_credentials::shape::{
    Credential, Figure, Hex32, HexList, InferenceCredential, InferenceGranularity,
    InferenceSubject, InferenceSubjectType, LedgerEvidence, LedgerEvidenceType, RunEvidence,
    StatusEntry,
};
use gco_credentials::status::Bitstring;
use gco_credentials::vc::{self, Format};
use gco_credentials::{Issuer, Purpose, di, issuer::Signer, jose};
use gco_ledger::Store;
use gco_ledger::hash::{Hash32, to_hex};
use gco_ledger::record::Record;
use gco_ledger::seal::Seal;
use gco_ledger::time::{Micros, format_utc};
use gco_ledger::units;
use polars::prelude::{DataFrame, ParquetReader, SerReader};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Progress;
use crate::aggregate::col_i64;
use crate::index::{CredentialsIndex, MemberRoot};
use crate::manifest::latest_version;
use crate::manifest::{Output, RunManifest};
use crate::period::Period;
use crate::schema::col;

/// Rows per row group of the per-inference files: small, so a lookup reads little.
pub(crate) const LOOKUP_ROW_GROUP: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Inference,
    ModelDay,
    ModelMonth,
    OrganisationMonth,
}

impl Granularity {
    pub const ALL: [Granularity; 4] = [
        Granularity::Inference,
        Granularity::ModelDay,
        Granularity::ModelMonth,
        Granularity::OrganisationMonth,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Inference => "inference",
            Granularity::ModelDay => "model_day",
            Granularity::ModelMonth => "model_month",
            Granularity::OrganisationMonth => "organisation_month",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| failure!(Usage, "unknown granularity {s:?}: inference, model_day, model_month, organisation_month"))
    }
}

/// What to issue.
#[derive(Clone)]
pub struct IssueOptions {
    pub period: Period,
    /// The run version (default: the latest).
    pub version: Option<u32>,
    pub granularities: BTreeSet<Granularity>,
    pub formats: BTreeSet<Format>,
    /// `validFrom` of every credential (default: the run's as-of time, so a rerun
    /// gives the same credentials).
    pub issued_at: Option<Micros>,
    pub progress: Option<Progress>,
    /// The version's member roots as its run computed them from the leaf hashes it
    /// verified (`gco run --credentials`): aggregate issuance then does not read the
    /// ledger again. `None`: recomputed from the ledger.
    pub member_roots: Option<Arc<MemberRoots>>,
}

impl IssueOptions {
    /// Aggregates only, VC-JOSE: the default of `gco vc issue` and `gco run --credentials`.
    pub fn aggregates(period: Period) -> Self {
        IssueOptions {
            period,
            version: None,
            granularities: [
                Granularity::ModelDay,
                Granularity::ModelMonth,
                Granularity::OrganisationMonth,
            ]
            .into(),
            formats: [Format::VcJwt].into(),
            issued_at: None,
            progress: None,
            member_roots: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct IssueReport {
    /// `created`, or `up_to_date` when this version's credentials exist already.
    pub outcome: &'static str,
    pub period: String,
    pub version: u32,
    pub issuer: String,
    pub index: String,
    /// Credentials written, by `granularity/format`.
    pub credentials: BTreeMap<String, u64>,
    /// Member inferences committed to by the organisation-month roots.
    pub member_inferences: u64,
    pub status_lists: BTreeMap<String, String>,
    /// The RFC 3161 time-stamp of `index.json`, when a TSA was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<crate::tsa::IndexTimeStamp>,
}

pub fn version_prefix(period: &str, version: u32) -> String {
    gco_ledger::layout::certificates_version(period, version)
}

/// Lowercase hex SHA-256 of `b` (as manifests and indexes record them).
pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A run version's manifest.
#[derive(Debug, Clone)]
pub struct Run {
    pub period: Period,
    pub version: u32,
    pub manifest_path: String,
    pub manifest_sha256: String,
    pub manifest: RunManifest,
}

pub async fn load_run(store: &Store, period: Period, version: Option<u32>) -> Result<Run> {
    let version = match version {
        Some(v) => v,
        None => latest_version(store, period)
            .await?
            .map(|(v, _)| v)
            .ok_or_else(|| {
                failure!(
                    NotFound,
                    "no run for {period} in {}: run `gco run --period {period}` first",
                    store.url()
                )
            })?,
    };
    let manifest_path = gco_ledger::layout::manifest(period, version);
    let bytes = store
        .get(&manifest_path)
        .await
        .with_context(|| format!("reading the run manifest of {period} version {version}"))?;
    let manifest =
        RunManifest::from_slice_at(&manifest_path, &bytes, &period.to_string(), version)?;
    Ok(Run {
        period,
        version,
        manifest_sha256: sha256_hex(&bytes),
        manifest_path,
        manifest,
    })
}

/// `validFrom`-style UTC time: whole seconds when the time has no fraction.
pub fn utc_seconds(micros: Micros) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(t) if micros % 1_000_000 == 0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        _ => format_utc(micros),
    }
}

/// One verified ledger batch of a day: its seal, records and leaf hashes.
struct DayBatch {
    path: String,
    seal: Seal,
    records: Vec<Record>,
    tree: Tree,
}

/// Reads the day's ledger batches that the run verified, checking each against the
/// SHA-256 the run recorded and its rows against the signed Merkle root.
async fn day_batches(store: &Store, run: &Run, date: &str) -> Result<Vec<DayBatch>> {
    let prefix = gco_ledger::layout::records_of_day(date);
    let mut out = Vec::new();
    for b in run.manifest.inputs.ledger.iter().filter(|b| b.verified) {
        let path = b.object.as_str();
        if !path.starts_with(&prefix) {
            continue;
        }
        let bytes = store.get(path).await?;
        if sha256_hex(&bytes) != b.sha256 {
            fail!(
                Inconsistent,
                "{path} differs from the object the run verified (SHA-256); the run's inputs changed, rerun it"
            );
        }
        let (seal, records) = gco_ledger::batch::read_batch(path, bytes)?;
        let tree = Tree::new(records.iter().map(Record::leaf_hash).collect());
        if to_hex(&tree.root()) != seal.merkle_root {
            fail!(
                Inconsistent,
                "{path}: rows do not match the batch's Merkle root"
            );
        }
        out.push(DayBatch {
            path: path.to_string(),
            seal,
            records,
            tree,
        });
    }
    Ok(out)
}

/// The run's rows of one day, in stored order.
async fn day_rows(store: &Store, run: &Run, date: &str) -> Result<DataFrame> {
    let prefix = gco_ledger::layout::rows_of_day(run.period, run.version, date);
    let mut frames = Vec::new();
    for m in store.list(&prefix).await? {
        let path = m.location.to_string();
        let bytes = store.get(&path).await?;
        frames.push(
            ParquetReader::new(std::io::Cursor::new(bytes))
                .finish()
                .with_context(|| format!("reading {path}"))?,
        );
    }
    let mut it = frames.into_iter();
    let Some(mut df) = it.next() else {
        return Ok(DataFrame::empty());
    };
    for f in it {
        df.vstack_mut(&f)?;
    }
    Ok(df)
}

/// A string interner: per-row keys become small integers.
#[derive(Default)]
struct Names {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.ids.insert(s.to_string(), i);
        self.names.push(s.to_string());
        i
    }
}

/// The aggregate model key of a row (as `aggregate::fold` names it).
const IDLE_MODEL: &str = "(idle/overhead)";

/// Member roots of every aggregate, keyed by (granularity, key columns).
pub type MemberRoots = BTreeMap<(Granularity, Vec<String>), (String, u64)>;

/// Member roots, a tree of trees: each model-day root is the RFC 6962 root over its
/// inferences' ledger leaf hashes; a model-month root is the RFC 6962 root over its
/// model-day roots in date order; an organisation-month root is the RFC 6962 root over
/// its model-month roots in model order. Each leaf is hashed into one tree only (the
/// upper trees have one leaf per day or model), and an inference is proven a member of
/// a month by two standard audit paths (leaf to day root, day root to month root).
pub(crate) struct Members {
    names: Names,
    day: HashMap<(u32, u32), RootBuilder>,
    /// Per (model, scope): the day roots so far and the inferences under them.
    month: HashMap<(u32, u32), (RootBuilder, u64)>,
    roots: MemberRoots,
    /// The day `push_chunk` is in.
    date: Option<String>,
}

/// One stored chunk's inference rows as member leaves, in stored order: each row's
/// (model, scope) key (an index into `keys`) and its ledger leaf hash.
pub(crate) struct ChunkMembers {
    date: String,
    keys: Vec<(Option<String>, String)>,
    leaves: Vec<(u32, Hash32)>,
}

/// Maps a chunk's rows (as the run stores them) to the leaf hashes its verification
/// computed. `objects`: the chunk's verified batches in order, as (node, first seq,
/// record count); `leaves`: their leaf hashes concatenated, 32 bytes each.
pub(crate) fn chunk_members(
    date: &str,
    df: &DataFrame,
    objects: &[(&str, u64, u64)],
    leaves: &[u8],
) -> Result<ChunkMembers> {
    let total: u64 = objects.iter().map(|o| o.2).sum();
    if leaves.len() as u64 != total * 32 {
        fail!(
            Inconsistent,
            "the staged leaf hashes of {date} hold {} bytes, {total} records need {}",
            leaves.len(),
            total * 32
        );
    }
    let mut by_node: HashMap<&str, Vec<(u64, u64, u64)>> = HashMap::new();
    let mut offset = 0u64;
    for &(node, first, n) in objects {
        by_node.entry(node).or_default().push((first, n, offset));
        offset += n;
    }
    let mut out = ChunkMembers {
        date: date.to_string(),
        keys: Vec::new(),
        leaves: Vec::new(),
    };
    if df.height() == 0 {
        return Ok(out);
    }
    let MemberCols {
        node,
        kind,
        model,
        scope,
        seq,
    } = MemberCols::read(df)?;
    let mut key_ids: HashMap<(Option<&str>, &str), u32> = HashMap::new();
    for i in 0..df.height() {
        if kind[i] != Some("inference") {
            continue;
        }
        let (n, s) = (node[i].unwrap_or(""), seq[i].unwrap_or(-1));
        let at = by_node.get(n).and_then(|v| {
            v.iter()
                .find(|(first, count, _)| s >= *first as i64 && ((s as u64) - first) < *count)
                .map(|(first, _, off)| (off + (s as u64 - first)) as usize * 32)
        });
        let Some(at) = at else {
            fail!(
                Inconsistent,
                "row {n}/{s} of {date} is in no verified batch of its chunk"
            );
        };
        let key = (model[i], scope[i].unwrap_or(""));
        let next = key_ids.len() as u32;
        let k = *key_ids.entry(key).or_insert_with(|| {
            out.keys
                .push((key.0.map(str::to_string), key.1.to_string()));
            next
        });
        let mut h = [0u8; 32];
        h.copy_from_slice(&leaves[at..at + 32]);
        out.leaves.push((k, h));
    }
    Ok(out)
}

impl Members {
    pub(crate) fn new() -> Self {
        Members {
            names: Names::default(),
            day: HashMap::new(),
            month: HashMap::new(),
            roots: BTreeMap::new(),
            date: None,
        }
    }
    /// Adds a chunk's members; chunks come in stored order (date, part).
    pub(crate) fn push_chunk(&mut self, c: ChunkMembers) {
        if self.date.as_deref() != Some(c.date.as_str()) {
            if let Some(d) = self.date.take() {
                self.end_day(&d);
            }
            self.date = Some(c.date.clone());
        }
        let ids: Vec<(u32, u32)> = c
            .keys
            .iter()
            .map(|(m, s)| {
                (
                    self.names.id(m.as_deref().unwrap_or(IDLE_MODEL)),
                    self.names.id(s),
                )
            })
            .collect();
        for (k, leaf) in c.leaves {
            let (m, s) = ids[k as usize];
            self.push_ids(m, s, leaf);
        }
    }
    /// The roots after the last `push_chunk`.
    pub(crate) fn finish_chunks(mut self, organisation: &str) -> MemberRoots {
        if let Some(d) = self.date.take() {
            self.end_day(&d);
        }
        self.finish(organisation)
    }
    fn push(&mut self, model: Option<&str>, scope: &str, leaf: Hash32) {
        let m = self.names.id(model.unwrap_or(IDLE_MODEL));
        let s = self.names.id(scope);
        self.push_ids(m, s, leaf);
    }
    /// One leaf into its model-day tree (the upper trees take the day's roots).
    fn push_ids(&mut self, m: u32, s: u32, leaf: Hash32) {
        self.day.entry((m, s)).or_default().push(leaf);
    }
    /// Closes a day: its roots, and each into its model-month tree (days come in order).
    fn end_day(&mut self, date: &str) {
        for ((m, s), b) in self.day.drain() {
            let root = b.root();
            let month = self.month.entry((m, s)).or_default();
            month.0.push(root);
            month.1 += b.count();
            let key = vec![
                date.to_string(),
                self.names.names[m as usize].clone(),
                self.names.names[s as usize].clone(),
            ];
            self.roots
                .insert((Granularity::ModelDay, key), (to_hex(&root), b.count()));
        }
    }
    fn finish(mut self, organisation: &str) -> MemberRoots {
        // Model order: by model name (as the aggregate tables sort), per scope.
        let mut months: Vec<(String, String, Hash32, u64)> = self
            .month
            .iter()
            .map(|((m, s), (b, n))| {
                (
                    self.names.names[*s as usize].clone(),
                    self.names.names[*m as usize].clone(),
                    b.root(),
                    *n,
                )
            })
            .collect();
        months.sort();
        let mut org: BTreeMap<String, (RootBuilder, u64)> = BTreeMap::new();
        for (scope, model, root, n) in months {
            let o = org.entry(scope.clone()).or_default();
            o.0.push(root);
            o.1 += n;
            self.roots.insert(
                (Granularity::ModelMonth, vec![model, scope]),
                (to_hex(&root), n),
            );
        }
        for (scope, (b, n)) in org {
            self.roots.insert(
                (
                    Granularity::OrganisationMonth,
                    vec![organisation.to_string(), scope],
                ),
                (to_hex(&b.root()), n),
            );
        }
        self.roots
    }
}

fn strs<'a>(df: &'a DataFrame, name: &str) -> Result<Vec<Option<&'a str>>> {
    Ok(df.column(name)?.str()?.iter().collect())
}

/// The row columns that place a stored row among the member roots.
struct MemberCols<'a> {
    node: Vec<Option<&'a str>>,
    kind: Vec<Option<&'a str>>,
    model: Vec<Option<&'a str>>,
    scope: Vec<Option<&'a str>>,
    seq: Vec<Option<i64>>,
}

impl<'a> MemberCols<'a> {
    fn read(df: &'a DataFrame) -> Result<Self> {
        Ok(MemberCols {
            node: strs(df, col::NODE_ID)?,
            kind: strs(df, col::KIND)?,
            model: strs(df, col::MODEL_ID)?,
            scope: strs(df, col::SCOPE)?,
            seq: col_i64(df, col::SEQ)?,
        })
    }
}

/// Where each row's record sits: (batch, leaf index) by node and seq.
fn locate(batches: &[DayBatch]) -> HashMap<&str, Vec<(u64, u64, usize)>> {
    let mut by_node: HashMap<&str, Vec<(u64, u64, usize)>> = HashMap::new();
    for (i, b) in batches.iter().enumerate() {
        by_node.entry(b.seal.node_id.as_str()).or_default().push((
            b.seal.seq_first as u64,
            b.seal.seq_last as u64,
            i,
        ));
    }
    by_node
}

fn find(
    by_node: &HashMap<&str, Vec<(u64, u64, usize)>>,
    node: &str,
    seq: u64,
) -> Option<(usize, usize)> {
    by_node
        .get(node)?
        .iter()
        .find(|(a, b, _)| (*a..=*b).contains(&seq))
        .map(|(a, _, i)| (*i, (seq - a) as usize))
}

/// Everything a per-inference credential needs from one row.
struct InferenceRow<'a> {
    batch: usize,
    leaf: usize,
    inference_id: &'a str,
    node_id: &'a str,
    seq: u64,
    model: Option<&'a str>,
    model_version: Option<&'a str>,
    start: i64,
    end: i64,
    zone: &'a str,
    scope: &'a str,
    figures: [Option<i64>; 8],
}

const ROW_FIGURES: [&str; 8] = [
    col::IT_ENERGY_MJ,
    col::FACILITY_ENERGY_MJ,
    col::INTENSITY_MG_PER_KWH,
    col::LOCATION_NG,
    col::MARKET_NG,
    col::MARGINAL_NG,
    col::EMBODIED_NG,
    col::SCI_NG,
];

/// Walks one day's inference rows in stored order: pushes each record's ledger leaf
/// into `members` and, with `keep`, returns the rows for per-inference credentials.
fn day_inferences<'a>(
    date: &str,
    df: &'a DataFrame,
    batches: &[DayBatch],
    members: &mut Members,
    keep: bool,
) -> Result<Vec<InferenceRow<'a>>> {
    let mut work = Vec::new();
    if df.height() == 0 {
        return Ok(work);
    }
    let by_node = locate(batches);
    let MemberCols {
        node,
        kind,
        model,
        scope,
        seq,
    } = MemberCols::read(df)?;
    let detail = if keep {
        let figures: Vec<Vec<Option<i64>>> = ROW_FIGURES
            .iter()
            .map(|c| col_i64(df, c))
            .collect::<Result<_>>()?;
        Some((
            strs(df, col::INFERENCE_ID)?,
            strs(df, col::MODEL_VERSION)?,
            strs(df, col::ZONE)?,
            col_i64(df, col::START)?,
            col_i64(df, col::END)?,
            figures,
        ))
    } else {
        None
    };
    for i in 0..df.height() {
        if kind[i] != Some("inference") {
            continue;
        }
        let (n, s) = (node[i].unwrap_or(""), seq[i].unwrap_or(-1) as u64);
        let (b, leaf) = find(&by_node, n, s).ok_or_else(|| {
            failure!(
                Inconsistent,
                "row {n}/{s} of {date} is in no verified batch of the run"
            )
        })?;
        let hash = batches[b]
            .tree
            .leaf(leaf)
            .ok_or_else(|| failure!(Inconsistent, "{n}/{s}: leaf outside its batch"))?;
        members.push(model[i], scope[i].unwrap_or(""), *hash);
        if let Some((iid, version, zone, start, end, figures)) = &detail {
            work.push(InferenceRow {
                batch: b,
                leaf,
                inference_id: iid[i].unwrap_or(""),
                node_id: n,
                seq: s,
                model: model[i],
                model_version: version[i],
                start: start[i].unwrap_or(0),
                end: end[i].unwrap_or(0),
                zone: zone[i].unwrap_or(""),
                scope: scope[i].unwrap_or(""),
                figures: std::array::from_fn(|k| figures[k][i]),
            });
        }
    }
    Ok(work)
}

/// Shared, per-version facts every credential carries.
struct Ctx<'a> {
    issuer: &'a str,
    valid_from: String,
    period: String,
    version: u32,
    organisation: String,
    manifest_path: &'a str,
    manifest_sha256: &'a str,
    status: BTreeMap<&'static str, String>,
}

impl Ctx<'_> {
    fn credential_id(&self, granularity: Granularity, key: &str) -> String {
        let h = Sha256::digest(format!(
            "{}|{}|{}|{}|{key}",
            self.issuer,
            self.period,
            self.version,
            granularity.as_str()
        ));
        format!("urn:gco:credential:{}", hex::encode(&h[..16]))
    }
    fn status_entry(&self, list: &'static str, index: u64) -> StatusEntry<'_> {
        StatusEntry {
            list: &self.status[list],
            index,
        }
    }
    fn run_evidence(&self) -> RunEvidence<'_> {
        RunEvidence::new(self.manifest_path, self.manifest_sha256, self.version)
    }
}

/// One signed credential row for the certificates Parquet.
#[derive(Debug, Clone)]
struct CertRow {
    sort_key: String,
    format: Format,
    id: String,
    node_id: String,
    seq: u64,
    status_index: u64,
    document: String,
}

fn inference_credentials(
    ctx: &Ctx,
    vc_signer: &Signer,
    legacy_signer: Option<&Signer>,
    formats: &BTreeSet<Format>,
    batches: &[DayBatch],
    row: &InferenceRow,
    status_index: u64,
) -> Result<Vec<CertRow>> {
    let b = &batches[row.batch];
    let id = ctx.credential_id(
        Granularity::Inference,
        &format!("{}/{}", row.node_id, row.seq),
    );
    let f = row.figures.map(Figure);
    let leaf = b.tree.leaf(row.leaf).copied().unwrap_or_default();
    let (start, end) = (format_utc(row.start), format_utc(row.end));
    let proof = b.tree.path(row.leaf);
    let subject = InferenceSubject {
        embodied_ng: f[6],
        end: &end,
        facility_energy_mj: f[1],
        granularity: InferenceGranularity,
        inference_id: row.inference_id,
        intensity_mg_per_kwh: f[2],
        it_energy_mj: f[0],
        location_based_ng: f[3],
        marginal_ng: f[5],
        market_based_ng: f[4],
        model: row.model,
        model_version: row.model_version,
        node_id: row.node_id,
        organisation: &ctx.organisation,
        period: &ctx.period,
        sci_ng: f[7],
        scope: row.scope,
        seq: row.seq,
        start: &start,
        kind: InferenceSubjectType,
        zone: row.zone,
    };
    let ledger = LedgerEvidence {
        batch: &b.path,
        batch_hash: &b.seal.batch_hash,
        inclusion_proof: HexList(&proof),
        leaf_hash: Hex32(&leaf),
        leaf_index: row.leaf as u64,
        merkle_root: &b.seal.merkle_root,
        node_key_id: &b.seal.key_id,
        node_signature: &b.seal.signature,
        signature_algorithm: b.seal.algorithm.as_str(),
        tree_size: b.tree.len() as u64,
        kind: LedgerEvidenceType,
    };
    let credential: InferenceCredential = Credential::new(
        &id,
        ctx.issuer,
        &ctx.valid_from,
        ctx.status_entry("inferences", status_index),
        subject,
        (ledger, ctx.run_evidence()),
    );
    let mut out = Vec::with_capacity(formats.len());
    let mut push = |format: Format, document: String| {
        out.push(CertRow {
            sort_key: row.inference_id.to_string(),
            format,
            id: id.clone(),
            node_id: row.node_id.to_string(),
            seq: row.seq,
            status_index,
            document,
        })
    };
    for &format in formats {
        match format {
            Format::VcJwt => push(format, vc::sign_vc_jwt(vc_signer, &credential)?),
            Format::VcDi => push(
                format,
                serde_json::to_string(&di::sign(
                    &serde_json::to_value(&credential)?,
                    &vc_signer.key,
                    &vc_signer.multikey_vm,
                    &ctx.valid_from,
                )?)?,
            ),
            Format::Legacy => {
                let signer = legacy_signer.or_fail(
                    Kind::Usage,
                    "legacy certificates need the issuer's legacy RSA key",
                )?;
                let r = record_at(batches, row);
                let hardware = match r {
                    Some(r) if !r.gpus.is_empty() => {
                        format!("{}/{}", row.node_id, r.gpus.join("+"))
                    }
                    _ => row.node_id.to_string(),
                };
                let claims = json!({
                    "certificate_id": format!("{id}:legacy"),
                    "credential_id": id,
                    "inference_id": row.inference_id,
                    "hardware_id": hardware,
                    "timestamp": format_utc(row.start),
                    "energy_used_kwh": row.figures[1].unwrap_or(0) as f64 / units::MJ_PER_KWH as f64,
                    "carbon_intensity_gco2_kwh": row.figures[2].unwrap_or(0) as f64 / units::MG_PER_G as f64,
                    "total_emissions_gco2": row.figures[3].unwrap_or(0) as f64 / units::NG_PER_G as f64,
                    "grid_region": row.zone,
                    "issuer": signer.issuer,
                    "iat": DateTime::parse_from_rfc3339(&ctx.valid_from).map(|t| t.timestamp()).unwrap_or(0),
                    "leaf_hash": to_hex(&leaf),
                    "batch_merkle_root": b.seal.merkle_root,
                });
                let payload = serde_json::to_vec(&claims)?;
                push(
                    format,
                    jose::sign(
                        &signer.key,
                        signer.alg,
                        &signer.kid,
                        vc::LEGACY_TYP,
                        &payload,
                    )?,
                );
            }
        }
    }
    Ok(out)
}

fn record_at<'a>(batches: &'a [DayBatch], row: &InferenceRow) -> Option<&'a Record> {
    batches.get(row.batch)?.records.get(row.leaf)
}

/// A day's certificates Parquet being encoded on a blocking thread.
struct PendingFile {
    path: String,
    rows: usize,
    encoded: tokio::task::JoinHandle<Result<Bytes>>,
}

impl PendingFile {
    async fn store(self, store: &Store, outputs: &mut Vec<Output>) -> Result<()> {
        let bytes = self
            .encoded
            .await
            .with_context(|| format!("encoding {}", self.path))??;
        outputs.push(Output {
            sha256: sha256_hex(&bytes),
            bytes: bytes.len() as u64,
            rows: self.rows as u64,
            path: self.path.clone(),
        });
        store.put_create(&self.path, bytes).await?;
        Ok(())
    }
}

/// A string column with its buffers sized up front (the documents of a day run to
/// hundreds of MB: growing by doubling would copy them and fault fresh pages twice).
fn strings(rows: &[CertRow], f: impl Fn(&CertRow) -> &str) -> ArrayRef {
    let bytes = rows.iter().map(|r| f(r).len()).sum();
    let mut b = arrow_array::builder::StringBuilder::with_capacity(rows.len(), bytes);
    for r in rows {
        b.append_value(f(r));
    }
    Arc::new(b.finish())
}

/// The certificates Parquet: sorted, small row groups, a bloom filter on the lookup
/// column, so `gco certificate show` reads a footer, a filter and one row group.
fn write_certificates(rows: &[CertRow], key_name: &str) -> Result<Bytes> {
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    use parquet::schema::types::ColumnPath;
    let schema = Arc::new(Schema::new(vec![
        Field::new(key_name, DataType::Utf8, false),
        Field::new("format", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("node_id", DataType::Utf8, false),
        Field::new("seq", DataType::UInt64, false),
        Field::new("status_index", DataType::UInt64, false),
        Field::new("document", DataType::Utf8, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        strings(rows, |r| &r.sort_key),
        strings(rows, |r| r.format.as_str()),
        strings(rows, |r| &r.id),
        strings(rows, |r| &r.node_id),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.seq))),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.status_index),
        )),
        strings(rows, |r| &r.document),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(LOOKUP_ROW_GROUP))
        .set_column_bloom_filter_enabled(ColumnPath::from(key_name), true)
        .set_column_bloom_filter_fpp(ColumnPath::from(key_name), 0.01)
        .set_column_bloom_filter_max_ndv(ColumnPath::from(key_name), LOOKUP_ROW_GROUP as u64)
        .set_created_by(crate::index::FORMAT.to_string())
        .build();
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, Some(props))?;
    w.write(&batch)?;
    w.close()?;
    Ok(Bytes::from(buf))
}

/// The aggregates of the version, read from its aggregate tables.
pub(crate) struct AggregateRow {
    pub(crate) granularity: Granularity,
    pub(crate) key: Vec<String>,
    pub(crate) counts: BTreeMap<String, u64>,
    pub(crate) sums: BTreeMap<String, String>,
}

pub(crate) async fn read_aggregates(store: &Store, run: &Run) -> Result<Vec<AggregateRow>> {
    use crate::aggregate::{COUNT_COLUMNS, SUM_COLUMNS, read_table, table_keys};
    let mut out = Vec::new();
    for (g, table) in [
        (Granularity::ModelDay, "model_day"),
        (Granularity::ModelMonth, "model_month"),
        (Granularity::OrganisationMonth, "organisation_month"),
    ] {
        let keys = table_keys(table).or_fail(Kind::Internal, table)?;
        let path = gco_ledger::layout::aggregate(run.period, run.version, table);
        let bytes = store.get(&path).await?;
        for (key, s) in read_table(&path, bytes, keys)? {
            let counts = COUNT_COLUMNS
                .iter()
                .zip(s.counts())
                .map(|(n, v)| (n.to_string(), v))
                .collect();
            let sums = SUM_COLUMNS
                .iter()
                .zip(s.sums())
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            out.push(AggregateRow {
                granularity: g,
                key,
                counts,
                sums,
            });
        }
    }
    Ok(out)
}

fn aggregate_credential(
    ctx: &Ctx,
    a: &AggregateRow,
    members: &(String, u64),
    status_index: u64,
) -> Result<(String, Value)> {
    let key = a.key.join("/");
    let id = ctx.credential_id(a.granularity, &key);
    let s = |k: &str| Value::String(a.sums[k].clone());
    let mut subject = json!({
        "type": vc::SUBJECT_TYPE,
        "granularity": a.granularity.as_str(),
        "period": ctx.period,
        "organisation": ctx.organisation,
        "scope": a.key.last().cloned().unwrap_or_default(),
        "inferences": a.counts["inferences"],
        "records": a.counts["rows"],
        "promptTokens": a.counts["prompt_tokens"],
        "completionTokens": a.counts["completion_tokens"],
        "itEnergyMj": s("it_energy_mj"),
        "facilityEnergyMj": s("facility_energy_mj"),
        "locationBasedNg": s("location_ng"),
        "marketBasedNg": s("market_ng"),
        "marginalNg": s("marginal_ng"),
        "marginalRecords": a.counts["marginal_rows"],
        "embodiedNg": s("embodied_ng"),
        "sciNg": s("sci_ng"),
        "members": {
            "type": "RFC6962MerkleRoot",
            "leaves": "gco ledger record leaf hashes of the member inferences, in ledger order",
            "root": members.0,
            "count": members.1,
        },
    });
    match a.granularity {
        Granularity::ModelDay => {
            subject["date"] = a.key[0].clone().into();
            subject["model"] = a.key[1].clone().into();
        }
        Granularity::ModelMonth => subject["model"] = a.key[0].clone().into(),
        _ => {}
    }
    let credential = serde_json::to_value(Credential::new(
        &id,
        ctx.issuer,
        &ctx.valid_from,
        ctx.status_entry("aggregates", status_index),
        subject,
        [ctx.run_evidence()],
    ))?;
    Ok((id, credential))
}

/// Signs `work` on every core (credentials are independent), keeping order.
fn par_map<T: Sync, R: Send>(work: &[T], f: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16);
    if work.len() < 64 || threads == 1 {
        return work.iter().map(&f).collect();
    }
    let chunk = work.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = work
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<Result<Vec<R>>>()))
            .collect();
        let mut out = Vec::with_capacity(work.len());
        for h in handles {
            out.extend(
                h.join()
                    .map_err(|_| failure!(Internal, "a signing thread panicked"))??,
            );
        }
        Ok(out)
    })
}

/// The status list ids of a version: `<base>/<period>/<version>/<list>`, where the
/// base is under the issuer's did:web host, or `urn:gco:status` for a did:key issuer.
pub fn status_list_id(issuer_did: &str, period: &str, version: u32, list: &str) -> String {
    let base = match gco_credentials::issuer::did_web_url(issuer_did) {
        Some(url) => {
            url.trim_end_matches("/did.json")
                .trim_end_matches("/.well-known")
                .to_string()
                + "/status"
        }
        None => "urn:gco:status".to_string(),
    };
    format!("{base}/{period}/{version:04}/{list}")
}

/// The store path of a status list id made by [`status_list_id`].
pub fn status_list_path(list_id: &str) -> Result<String> {
    let parts: Vec<&str> = list_id.rsplitn(4, '/').collect();
    if parts.len() < 4 || !matches!(parts[0], "aggregates" | "inferences") {
        fail!(
            Usage,
            "{list_id} is not a gco status list id (<base>/<period>/<version>/<list>)"
        );
    }
    let period = Period::parse(parts[2])?;
    let version: u32 = parts[1]
        .parse()
        .with_context(|| format!("{list_id}: bad version"))?;
    Ok(format!(
        "{}/status/{}.jwt",
        version_prefix(&period.to_string(), version),
        parts[0]
    ))
}

/// Issues the credentials of a run version. Returns `up_to_date` without writing when
/// the version's credentials exist.
pub async fn issue(store: &Store, issuer: &Issuer, opts: &IssueOptions) -> Result<IssueReport> {
    let run = load_run(store, opts.period, opts.version).await?;
    let period = run.period.to_string();
    let prefix = version_prefix(&period, run.version);
    let index_path = format!("{prefix}/index.json");
    let vc_signer = issuer.signer(Purpose::Vc)?;
    if opts.formats.contains(&Format::VcDi) && vc_signer.alg != gco_credentials::Alg::EdDSA {
        fail!(
            Usage,
            "vc-di (eddsa-jcs-2022) needs an Ed25519 issuer key; the active key signs {}",
            vc_signer.alg
        );
    }
    let legacy_signer = if opts.formats.contains(&Format::Legacy)
        && opts.granularities.contains(&Granularity::Inference)
    {
        Some(issuer.signer(Purpose::Legacy)?)
    } else {
        None
    };
    let issuer_did = issuer.did()?;
    if let Ok(existing) = store.get(&index_path).await {
        let idx = CredentialsIndex::from_slice(&index_path, &existing)?;
        return Ok(IssueReport {
            outcome: "up_to_date",
            period,
            version: run.version,
            issuer: idx.issuer,
            index: index_path,
            credentials: idx.credentials,
            member_inferences: idx.member_inferences,
            status_lists: BTreeMap::new(),
            timestamp: None,
        });
    }
    let as_of = gco_ledger::time::parse_utc(&run.manifest.as_of)
        .map_err(|e| failure!(Inconsistent, "{}: as_of: {e}", run.manifest_path))?;
    let organisation = run.manifest.config.organisation.clone();
    let mut status = BTreeMap::new();
    for list in ["aggregates", "inferences"] {
        status.insert(
            list,
            status_list_id(&issuer_did, &period, run.version, list),
        );
    }
    let ctx = Ctx {
        issuer: &issuer_did,
        valid_from: utc_seconds(opts.issued_at.unwrap_or(as_of)),
        period: period.clone(),
        version: run.version,
        organisation: organisation.clone(),
        manifest_path: &run.manifest_path,
        manifest_sha256: &run.manifest_sha256,
        status,
    };
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut outputs = Vec::new();
    let (roots, next_inference_index) = issue_inferences(
        store,
        &run,
        &ctx,
        (&vc_signer, legacy_signer.as_ref()),
        opts,
        (&mut counts, &mut outputs),
    )
    .await?;

    // Aggregates: figures from the run's tables, member roots from the ledger.
    let aggregates = read_aggregates(store, &run).await?;
    let (agg_rows, member_inferences, status_index) =
        sign_aggregates(&ctx, &vc_signer, &aggregates, &roots, opts, &mut counts)?;
    if !agg_rows.is_empty() {
        let bytes = write_certificates(&agg_rows, "aggregate")?;
        let path = format!("{prefix}/aggregates.parquet");
        outputs.push(Output {
            path: path.clone(),
            bytes: bytes.len() as u64,
            rows: agg_rows.len() as u64,
            sha256: sha256_hex(&bytes),
        });
        store.put_create(&path, bytes).await?;
    }

    // Status lists (empty), then the index last.
    let status_lists = write_status_lists(
        store,
        &ctx,
        &vc_signer,
        [
            ("aggregates", status_index),
            ("inferences", next_inference_index),
        ],
    )
    .await?;
    let index = CredentialsIndex {
        format: crate::index::FORMAT.into(),
        period: period.clone(),
        version: run.version,
        issuer: issuer_did.clone(),
        valid_from: ctx.valid_from.clone(),
        run_manifest: run.manifest_path.clone(),
        run_manifest_sha256: run.manifest_sha256.clone(),
        granularities: opts
            .granularities
            .iter()
            .map(|g| g.as_str().into())
            .collect(),
        formats: opts.formats.iter().map(|f| f.as_str().into()).collect(),
        credentials: counts.clone(),
        member_inferences,
        member_roots: roots
            .iter()
            .map(|((g, k), (r, c))| MemberRoot {
                granularity: g.as_str().into(),
                key: k.join("/"),
                root: r.clone(),
                count: *c,
            })
            .collect(),
        status_lists: status_lists.clone(),
        outputs,
    };
    store
        .put_create(&index_path, Bytes::from(index.to_bytes()?))
        .await?;
    Ok(IssueReport {
        outcome: "created",
        period,
        version: run.version,
        issuer: issuer_did,
        index: index_path,
        credentials: counts,
        member_inferences,
        status_lists,
        timestamp: None,
    })
}

/// The per-day pass of [`issue`]: each day's verified batches and rows, the member
/// roots of every aggregate, and (with the inference granularity) one credential per
/// inference and format, signed in parallel and stored a day file at a time. Returns
/// the member roots and the number of inference status indexes used.
async fn issue_inferences(
    store: &Store,
    run: &Run,
    ctx: &Ctx<'_>,
    (vc_signer, legacy_signer): (&Signer, Option<&Signer>),
    opts: &IssueOptions,
    (counts, outputs): (&mut BTreeMap<String, u64>, &mut Vec<Output>),
) -> Result<(MemberRoots, u64)> {
    let prefix = version_prefix(&ctx.period, run.version);
    let per_inference = opts.granularities.contains(&Granularity::Inference);
    let mut members = Members::new();
    let mut next_inference_index = 0u64;
    let mut writing: Option<PendingFile> = None;
    let days = run.period.days();
    let precomputed = opts.member_roots.as_ref().filter(|_| !per_inference);
    for (d, day) in days.iter().enumerate().filter(|_| precomputed.is_none()) {
        let date = day.format("%Y-%m-%d").to_string();
        let batches = day_batches(store, run, &date).await?;
        let df = day_rows(store, run, &date).await?;
        let work = day_inferences(&date, &df, &batches, &mut members, per_inference)?;
        if per_inference && !work.is_empty() {
            let base = next_inference_index;
            next_inference_index += work.len() as u64;
            let indexed: Vec<(u64, &InferenceRow)> = work
                .iter()
                .enumerate()
                .map(|(k, r)| (base + k as u64, r))
                .collect();
            let signed = par_map(&indexed, |(idx, r)| {
                inference_credentials(
                    ctx,
                    vc_signer,
                    legacy_signer,
                    &opts.formats,
                    &batches,
                    r,
                    *idx,
                )
            })?;
            let mut rows: Vec<CertRow> = signed.into_iter().flatten().collect();
            rows.sort_by(|a, b| {
                (a.sort_key.as_str(), a.format).cmp(&(b.sort_key.as_str(), b.format))
            });
            for r in &rows {
                *counts
                    .entry(format!("inference/{}", r.format.as_str()))
                    .or_default() += 1;
            }
            // The day's Parquet is encoded (zstd) on a blocking thread while the next day
            // reads and signs; one file in flight at a time, stored in day order.
            if let Some(w) = writing.take() {
                w.store(store, outputs).await?;
            }
            writing = Some(PendingFile {
                path: format!("{prefix}/inferences/date={date}/part-00000.parquet"),
                rows: rows.len(),
                encoded: tokio::task::spawn_blocking(move || {
                    write_certificates(&rows, "inference_id")
                }),
            });
        }
        members.end_day(&date);
        if let Some(p) = &opts.progress {
            p("credentials", d as u64 + 1, days.len() as u64);
        }
    }
    if let Some(w) = writing.take() {
        w.store(store, outputs).await?;
    }
    let roots = match precomputed {
        Some(r) => r.as_ref().clone(),
        None => members.finish(&ctx.organisation),
    };
    Ok((roots, next_inference_index))
}

/// The aggregate credentials of [`issue`]: figures from the run's tables, member roots
/// from the ledger (their counts must agree), one document per format. Returns the
/// rows, the organisation-month's member inferences and the status indexes used.
fn sign_aggregates(
    ctx: &Ctx<'_>,
    vc_signer: &Signer,
    aggregates: &[AggregateRow],
    roots: &MemberRoots,
    opts: &IssueOptions,
    counts: &mut BTreeMap<String, u64>,
) -> Result<(Vec<CertRow>, u64, u64)> {
    let mut agg_rows = Vec::new();
    let mut member_inferences = 0;
    let mut status_index = 0u64;
    let empty = (to_hex(&gco_credentials::merkle::empty_root()), 0u64);
    for a in aggregates
        .iter()
        .filter(|a| opts.granularities.contains(&a.granularity))
    {
        let m = roots.get(&(a.granularity, a.key.clone())).unwrap_or(&empty);
        if m.1 != a.counts["inferences"] {
            fail!(
                Inconsistent,
                "{} {}: {} inferences in the run's aggregate, {} found in the ledger; the run's outputs and its ledger disagree",
                a.granularity.as_str(),
                a.key.join("/"),
                a.counts["inferences"],
                m.1
            );
        }
        if a.granularity == Granularity::OrganisationMonth {
            member_inferences += m.1;
        }
        let (id, credential) = aggregate_credential(ctx, a, m, status_index)?;
        for &format in opts.formats.iter().filter(|f| **f != Format::Legacy) {
            let document = match format {
                Format::VcJwt => vc::sign_vc_jwt(vc_signer, &credential)?,
                _ => serde_json::to_string(&di::sign(
                    &credential,
                    &vc_signer.key,
                    &vc_signer.multikey_vm,
                    &ctx.valid_from,
                )?)?,
            };
            *counts
                .entry(format!("{}/{}", a.granularity.as_str(), format.as_str()))
                .or_default() += 1;
            agg_rows.push(CertRow {
                sort_key: format!("{}/{}", a.granularity.as_str(), a.key.join("/")),
                format,
                id: id.clone(),
                node_id: String::new(),
                seq: 0,
                status_index,
                document,
            });
        }
        status_index += 1;
    }
    Ok((agg_rows, member_inferences, status_index))
}

/// The version's status lists, every bit clear: `(list, size)` each. Returns the list
/// ids by list.
async fn write_status_lists(
    store: &Store,
    ctx: &Ctx<'_>,
    vc_signer: &Signer,
    lists: [(&'static str, u64); 2],
) -> Result<BTreeMap<String, String>> {
    let mut status_lists = BTreeMap::new();
    for (list, size) in lists {
        let id = ctx.status[list].clone();
        let token = vc::status_list_credential(
            vc_signer,
            &id,
            "revocation",
            &Bitstring::new(size as usize),
            &ctx.valid_from,
        )?;
        let path = status_list_path(&id)?;
        store
            .put_create(&path, Bytes::from(token.into_bytes()))
            .await?;
        status_lists.insert(list.to_string(), id);
    }
    Ok(status_lists)
}

/// Member roots of a run version recomputed from the ledger (what `gco vc verify
/// --ledger` compares an aggregate credential's root with).
pub async fn member_roots(store: &Store, run: &Run) -> Result<MemberRoots> {
    let mut members = Members::new();
    for day in run.period.days() {
        let date = day.format("%Y-%m-%d").to_string();
        let batches = day_batches(store, run, &date).await?;
        let df = day_rows(store, run, &date).await?;
        day_inferences(&date, &df, &batches, &mut members, false)?;
        members.end_day(&date);
    }
    Ok(members.finish(&run.manifest.config.organisation))
}

/// The latest credentials version of each period (of `period` only, when given) that
/// has an index (a version's commit point), by period. A stored path that does not
/// parse is an error naming it, not a version 0.
pub async fn latest_credential_versions(
    store: &Store,
    period: Option<Period>,
) -> Result<BTreeMap<String, u32>> {
    let prefix = match period {
        Some(p) => format!("{}/", gco_ledger::layout::certificates(p)),
        None => format!("{}/", gco_ledger::layout::CERTIFICATES),
    };
    let mut versions: BTreeMap<String, u32> = BTreeMap::new();
    for m in store.list(&prefix).await? {
        let p = m.location.to_string();
        if !p.ends_with("/index.json") {
            continue;
        }
        let part = |key: &str| p.split('/').find_map(|s| s.strip_prefix(key));
        let (Some(per), Some(v)) = (
            part("period="),
            part("version=").and_then(|v| v.parse::<u32>().ok()),
        ) else {
            fail!(
                Usage,
                "{p}: not a credentials index path (certificates/period=P/version=NNNN/index.json)"
            );
        };
        let e = versions.entry(per.to_string()).or_insert(v);
        *e = (*e).max(v);
    }
    Ok(versions)
}
