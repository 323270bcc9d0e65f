//! `gco ledger verify`: recompute every record hash, Merkle root, batch hash and
//! signature, check keys against the registry and each node's hash chain, and report
//! every problem with the object path (and row) where it was found.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use chrono::NaiveDate;
use futures::StreamExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::batch::{read_seal_only, seal_from_metadata};
use crate::error::Result;
use crate::hash::{Encoder, Hash32, RecordFields, merkle_root, to_hex};
use crate::layout::RECORDS as RECORDS_PREFIX;
use crate::record::{Columns, Measurement, RecordKind, schema};
use crate::registry::{KeyRefusal, Registry};
use crate::seal::{GENESIS, Seal};
use crate::store::{Store, batch_path, parse_batch_path};
use crate::time::{MICROS_PER_DAY, date_start, format_utc};
use crate::unique::{DayKeys, RowKey};

/// Row-level problems reported per object before the rest are summarised.
const MAX_ROW_PROBLEMS: usize = 20;

/// One thing that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    /// Object path relative to the store root.
    pub object: String,
    /// Zero-based row within the object, where the problem is in one row.
    pub row: Option<u64>,
    /// Stable machine-readable code (see docs/ledger-format.md, "Verification").
    pub code: &'static str,
    pub message: String,
}

impl Problem {
    fn new(object: &str, code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            object: object.to_string(),
            row: None,
            code,
            message: message.into(),
        }
    }
    fn at_row(mut self, row: usize) -> Self {
        self.row = Some(row as u64);
        self
    }
}

/// Progress callback: (objects done, objects total).
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// What to verify.
#[derive(Clone, Default)]
pub struct VerifyOptions {
    /// First partition date to verify fully (inclusive).
    pub from: Option<NaiveDate>,
    /// Last partition date to verify fully (inclusive).
    pub to: Option<NaiveDate>,
    /// Objects fetched and checked at once; 0 means the number of CPUs.
    pub concurrency: usize,
    pub progress: Option<Progress>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub store: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Objects fully checked (inside the date window).
    pub objects: u64,
    /// Batches with no problem of their own.
    pub batches_valid: u64,
    pub records: u64,
    pub records_valid: u64,
    pub energy_mj: i64,
    pub energy_mj_valid: i64,
    pub nodes: u64,
    pub registry_keys: u64,
    pub problems: Vec<Problem>,
    pub ok: bool,
}

/// The result of checking one object on its own.
#[derive(Debug, Default)]
pub struct ObjectCheck {
    pub seal: Option<Seal>,
    pub records: u64,
    pub energy_mj: i64,
    pub problems: Vec<Problem>,
    /// The rows' Merkle leaf hashes in row order (filled by [`check_object_rows`]).
    pub leaves: Vec<Hash32>,
    /// The rows' uniqueness keys in row order ([`crate::unique`]).
    pub keys: Vec<RowKey>,
}

/// Verifies the ledger in `store`.
pub async fn verify(store: &Store, opts: &VerifyOptions) -> Result<VerifyReport> {
    let registry = Arc::new(Registry::load(store).await?);
    let mut problems: Vec<Problem> = registry
        .invalid
        .iter()
        .map(|(path, why)| Problem::new(path, "registry_invalid", why.clone()))
        .collect();

    let listing = store.list(RECORDS_PREFIX).await?;
    let in_window = |date: &str| -> Option<bool> {
        let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        if opts.to.is_some_and(|to| d > to) {
            return Some(false);
        }
        Some(opts.from.is_none_or(|from| d >= from))
    };
    let mut full = Vec::new();
    let mut footer_only = Vec::new();
    for meta in listing {
        let path = meta.location.to_string();
        match parse_batch_path(&path) {
            None => problems.push(Problem::new(
                &path,
                "unexpected_object",
                "object does not follow records/date=YYYY-MM-DD/node=<id>/<name>.parquet",
            )),
            Some(loc) => match in_window(&loc.date) {
                None => problems.push(Problem::new(
                    &path,
                    "unexpected_object",
                    format!("partition date {:?} is not a date", loc.date),
                )),
                Some(true) => full.push((path, meta.size)),
                // Earlier batches: only their seals, to check the chain into the window.
                Some(false)
                    if opts.from.is_some_and(|f| {
                        NaiveDate::parse_from_str(&loc.date, "%Y-%m-%d").is_ok_and(|d| d < f)
                    }) =>
                {
                    footer_only.push((path, meta.size))
                }
                Some(false) => {}
            },
        }
    }

    if full.is_empty() {
        // A mistyped store URL or window must not pass as a verified ledger.
        problems.push(Problem::new(
            RECORDS_PREFIX,
            "no_batches",
            "no batches in the store for this date window: nothing was verified (check --store, --from and --to)",
        ));
    }
    let total = full.len() as u64;
    let concurrency = if opts.concurrency == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        opts.concurrency
    };
    let mut checks: Vec<(String, bool, ObjectCheck)> =
        Vec::with_capacity(full.len() + footer_only.len());
    // Uniqueness is checked a partition day at a time (see `crate::unique`): a day's
    // keys are dropped once its last object is checked. Places are indices into
    // `names`, which is in path order.
    let names: Vec<String> = full.iter().map(|(p, _)| p.clone()).collect();
    let date_of = |path: &str| parse_batch_path(path).map(|l| l.date).unwrap_or_default();
    let mut left: BTreeMap<String, usize> = BTreeMap::new();
    for n in &names {
        *left.entry(date_of(n)).or_default() += 1;
    }
    let mut days: BTreeMap<String, DayKeys> = BTreeMap::new();
    // Copies of one batch (same batch hash) repeat every row: they are
    // `duplicate_batch` problems, not row repeats.
    let mut batch_hash: Vec<Option<String>> = vec![None; names.len()];
    let mut stream =
        futures::stream::iter(full.into_iter().enumerate().map(|(index, (path, _))| {
            let registry = registry.clone();
            let store = store.clone();
            async move {
                let check = match store.get(&path).await {
                    Ok(bytes) => {
                        let p = path.clone();
                        tokio::task::spawn_blocking(move || check_object(&p, bytes, &registry))
                            .await
                            .unwrap_or_else(|e| ObjectCheck {
                                problems: vec![Problem::new(
                                    &path,
                                    "internal_error",
                                    format!("verifier task failed: {e}"),
                                )],
                                ..Default::default()
                            })
                    }
                    Err(e) => ObjectCheck {
                        problems: vec![Problem::new(&path, "unreadable_object", e.to_string())],
                        ..Default::default()
                    },
                };
                (index, path, check)
            }
        }))
        .buffer_unordered(concurrency);
    let mut done = 0;
    while let Some((index, path, mut check)) = stream.next().await {
        done += 1;
        if let Some(p) = &opts.progress {
            p(done, total);
        }
        let date = date_of(&path);
        batch_hash[index] = check.seal.as_ref().map(|s| s.batch_hash.clone());
        let day = days.entry(date.clone()).or_default();
        for (row, key) in std::mem::take(&mut check.keys).into_iter().enumerate() {
            day.insert(key, (index, row as u64));
        }
        let n = left.entry(date.clone()).or_default();
        *n = n.saturating_sub(1);
        if *n == 0
            && let Some(day) = days.remove(&date)
        {
            let copies =
                |a: usize, b: usize| batch_hash[a].is_some() && batch_hash[a] == batch_hash[b];
            let repeats = day
                .repeats()
                .into_iter()
                .filter(|(_, p, f)| !copies(p.0, f.0));
            problems.extend(repeats.map(|(key, (o, row), (fo, frow))| {
                Problem::new(
                    &names[o],
                    key.duplicate_code(),
                    format!(
                        "row {row} repeats the {} of {} row {frow}: the record is in the ledger twice",
                        key.what(),
                        names[fo]
                    ),
                )
                .at_row(row as usize)
            }));
        }
        checks.push((path, true, check));
    }
    drop(stream);
    let mut footers = futures::stream::iter(footer_only.into_iter().map(|(path, size)| {
        let store = store.clone();
        async move {
            let seal = read_seal_only(&store, &path, size).await.ok();
            (
                path,
                false,
                ObjectCheck {
                    seal,
                    ..Default::default()
                },
            )
        }
    }))
    .buffer_unordered(concurrency * 4);
    while let Some(item) = footers.next().await {
        checks.push(item);
    }
    checks.sort_by(|a, b| a.0.cmp(&b.0));

    let mut report = VerifyReport {
        store: store.url().to_string(),
        from: opts.from.map(|d| d.to_string()),
        to: opts.to.map(|d| d.to_string()),
        objects: 0,
        batches_valid: 0,
        records: 0,
        records_valid: 0,
        energy_mj: 0,
        energy_mj_valid: 0,
        nodes: 0,
        registry_keys: registry.keys().len() as u64,
        problems: Vec::new(),
        ok: false,
    };
    let mut valid_objects = std::collections::BTreeSet::new();
    for (path, in_window, check) in &checks {
        if !in_window {
            continue;
        }
        report.objects += 1;
        report.records += check.records;
        report.energy_mj = checked_sum(report.energy_mj, check.energy_mj, path, &mut problems);
        if check.problems.is_empty() {
            valid_objects.insert(path.clone());
        }
        problems.extend(check.problems.iter().cloned());
    }
    let chain_problems = check_chains(&checks);
    report.nodes = chain_problems.1;
    problems.extend(chain_problems.0);
    for (path, in_window, check) in &checks {
        if *in_window && valid_objects.contains(path) && !problems.iter().any(|p| &p.object == path)
        {
            report.batches_valid += 1;
            report.records_valid += check.records;
            report.energy_mj_valid = report
                .energy_mj_valid
                .checked_add(check.energy_mj)
                .unwrap_or(report.energy_mj_valid);
        }
    }
    problems.sort();
    problems.dedup();
    report.ok = problems.is_empty();
    report.problems = problems;
    Ok(report)
}

/// `sum + add`, or `sum` and an `energy_overflow` problem on `path` when it overflows.
fn checked_sum(sum: i64, add: i64, path: &str, problems: &mut Vec<Problem>) -> i64 {
    sum.checked_add(add).unwrap_or_else(|| {
        problems.push(Problem::new(
            path,
            "energy_overflow",
            format!(
                "the ledger's energy passes {} mJ with this batch (64-bit overflow)",
                i64::MAX
            ),
        ));
        sum
    })
}

/// Checks one object on its own: format, schema, seal, rows, Merkle root, signature.
/// The leaf hashes are not kept (a whole-ledger verification holds every check).
pub fn check_object(path: &str, bytes: Bytes, registry: &Registry) -> ObjectCheck {
    let mut c = check_object_rows(path, bytes, registry).0;
    c.leaves = Vec::new();
    c
}

/// [`check_object`], also returning the decoded rows (in the ledger schema, see
/// [`crate::record::Columns`]) so that a consumer does not decode the file twice. Use
/// the rows only when the check found no problems.
pub fn check_object_rows(
    path: &str,
    bytes: Bytes,
    registry: &Registry,
) -> (ObjectCheck, Vec<RecordBatch>) {
    let mut decoded = Vec::new();
    match crate::guard::decode(path, || {
        check_object_into(path, bytes, registry, &mut decoded)
    }) {
        Ok(out) => (out, decoded),
        Err(why) => (
            ObjectCheck {
                problems: vec![Problem::new(path, "not_parquet", why)],
                ..Default::default()
            },
            Vec::new(),
        ),
    }
}

fn check_object_into(
    path: &str,
    bytes: Bytes,
    registry: &Registry,
    decoded: &mut Vec<RecordBatch>,
) -> ObjectCheck {
    let mut out = ObjectCheck::default();
    let builder = match ParquetRecordBatchReaderBuilder::try_new(bytes) {
        Ok(b) => b,
        Err(e) => {
            out.problems.push(Problem::new(
                path,
                "not_parquet",
                format!("not a readable Parquet file: {e}"),
            ));
            return out;
        }
    };
    let seal = match seal_from_metadata(builder.metadata()) {
        Ok(s) => s,
        Err((code, why)) => {
            out.problems.push(Problem::new(path, code, why));
            return out;
        }
    };
    if let Some(diff) = schema_difference(builder.schema()) {
        out.problems.push(Problem::new(path, "wrong_schema", diff));
        out.seal = Some(seal);
        return out;
    }
    if batch_path(&seal) != path {
        out.problems.push(Problem::new(
            path,
            "path_mismatch",
            format!(
                "the seal (node {}, date {}) places this batch at {}",
                seal.node_id,
                seal.date,
                batch_path(&seal)
            ),
        ));
    }
    let reader = match builder.with_batch_size(65_536).build() {
        Ok(r) => r,
        Err(e) => {
            out.problems
                .push(Problem::new(path, "not_parquet", e.to_string()));
            return out;
        }
    };
    let mut rows = RowChecker::new(path, &seal);
    for batch in reader {
        match batch {
            Ok(b) => {
                rows.check_batch(&b);
                decoded.push(b);
            }
            Err(e) => {
                rows.problems.push(Problem::new(
                    path,
                    "not_parquet",
                    format!("cannot decode rows: {e}"),
                ));
                break;
            }
        }
    }
    let RowChecker {
        problems: row_level,
        leaves,
        keys,
        energy,
        start_min,
        end_max,
        row_problems,
        ..
    } = rows;
    let mut problems = std::mem::take(&mut out.problems);
    problems.extend(row_level);
    if row_problems > MAX_ROW_PROBLEMS {
        problems.push(Problem::new(
            path,
            "invalid_record",
            format!(
                "{} more row problems not listed",
                row_problems - MAX_ROW_PROBLEMS
            ),
        ));
    }
    let n = leaves.len() as i64;
    out.records = n as u64;
    out.energy_mj = energy;
    if n != seal.record_count {
        problems.push(Problem::new(
            path,
            "seal_mismatch",
            format!("{n} rows, seal says {}", seal.record_count),
        ));
    }
    if energy != seal.energy_mj {
        problems.push(Problem::new(
            path,
            "seal_mismatch",
            format!("rows sum to {energy} mJ, seal says {}", seal.energy_mj),
        ));
    }
    if n > 0 && (start_min != seal.start_min_us || end_max != seal.end_max_us) {
        problems.push(Problem::new(
            path,
            "seal_mismatch",
            format!(
                "rows span {} .. {}, seal says {} .. {}",
                format_utc(start_min),
                format_utc(end_max),
                format_utc(seal.start_min_us),
                format_utc(seal.end_max_us)
            ),
        ));
    }
    let root = to_hex(&merkle_root(&leaves));
    if root != seal.merkle_root {
        problems.push(Problem::new(
            path,
            "merkle_mismatch",
            format!("Merkle root of the rows is {root}, seal says {}: rows were changed, added, removed or reordered", seal.merkle_root),
        ));
    }
    match seal.compute_batch_hash() {
        Ok(h) if to_hex(&h) == seal.batch_hash => {}
        Ok(h) => problems.push(Problem::new(
            path,
            "bad_seal",
            format!(
                "batch_hash {} does not match the seal payload ({})",
                seal.batch_hash,
                to_hex(&h)
            ),
        )),
        Err(e) => problems.push(Problem::new(path, "bad_seal", e.to_string())),
    }
    match registry.key_for(
        &seal.node_id,
        &seal.key_id,
        seal.start_min_us,
        seal.end_max_us,
    ) {
        Err(KeyRefusal::Unknown) => problems.push(Problem::new(
            path,
            "unknown_key",
            format!(
                "key {} is not registered for node {}",
                seal.key_id, seal.node_id
            ),
        )),
        Err(KeyRefusal::OutOfWindow { windows }) => problems.push(Problem::new(
            path,
            "key_out_of_window",
            format!(
                "records {} .. {} fall outside key {}'s validity ({windows})",
                format_utc(seal.start_min_us),
                format_utc(seal.end_max_us),
                seal.key_id
            ),
        )),
        Err(KeyRefusal::Revoked { at, reason }) => problems.push(Problem::new(
            path,
            "key_revoked",
            format!(
                "key {} was revoked from {} ({reason})",
                seal.key_id,
                format_utc(at)
            ),
        )),
        Ok(key) => {
            if let Err(e) = seal.verify_signature(&key.public_key) {
                problems.push(Problem::new(path, "bad_signature", e.to_string()));
            }
        }
    }
    out.problems = problems;
    out.seal = Some(seal);
    out.leaves = leaves;
    out.keys = keys;
    out
}

/// Describes how `actual` differs from the ledger schema, or `None` if it matches.
fn schema_difference(actual: &arrow_schema::Schema) -> Option<String> {
    let expected = schema();
    let names = |s: &arrow_schema::Schema| {
        s.fields()
            .iter()
            .map(|f| f.name().clone())
            .collect::<Vec<_>>()
    };
    if actual.fields().len() != expected.fields().len() {
        return Some(format!(
            "columns {:?}, expected {:?}",
            names(actual),
            names(&expected)
        ));
    }
    for (a, e) in actual.fields().iter().zip(expected.fields()) {
        if a.name() != e.name()
            || a.data_type() != e.data_type()
            || a.is_nullable() != e.is_nullable()
        {
            return Some(format!(
                "column {:?} {} (nullable {}), expected {:?} {} (nullable {})",
                a.name(),
                a.data_type(),
                a.is_nullable(),
                e.name(),
                e.data_type(),
                e.is_nullable()
            ));
        }
    }
    None
}

/// Walks rows, hashing them and checking the per-row invariants.
struct RowChecker<'a> {
    path: &'a str,
    seal: &'a Seal,
    /// The partition date, as whole days since 1970-01-01 UTC.
    day: Option<i64>,
    row: usize,
    leaves: Vec<Hash32>,
    keys: Vec<RowKey>,
    energy: i64,
    start_min: i64,
    end_max: i64,
    scratch: Encoder,
    problems: Vec<Problem>,
    row_problems: usize,
}

impl<'a> RowChecker<'a> {
    fn new(path: &'a str, seal: &'a Seal) -> Self {
        RowChecker {
            path,
            seal,
            day: NaiveDate::parse_from_str(&seal.date, "%Y-%m-%d")
                .ok()
                .map(|d| date_start(d).div_euclid(MICROS_PER_DAY)),
            row: 0,
            leaves: Vec::with_capacity(seal.record_count.clamp(0, 1 << 20) as usize),
            keys: Vec::with_capacity(seal.record_count.clamp(0, 1 << 20) as usize),
            energy: 0,
            start_min: i64::MAX,
            end_max: i64::MIN,
            scratch: Encoder::default(),
            problems: Vec::new(),
            row_problems: 0,
        }
    }

    fn flag(&mut self, row: usize, code: &'static str, msg: String) {
        self.row_problems += 1;
        if self.row_problems <= MAX_ROW_PROBLEMS {
            self.problems
                .push(Problem::new(self.path, code, msg).at_row(row));
        }
    }

    fn check_batch(&mut self, b: &RecordBatch) {
        let Some(cols) = Columns::new(b) else {
            self.flag(
                self.row,
                "wrong_schema",
                "columns do not have the ledger's types".into(),
            );
            return;
        };
        if cols.required_nulls() > 0 {
            self.flag(
                self.row,
                "wrong_schema",
                format!("{} nulls in required columns", cols.required_nulls()),
            );
            return;
        }
        for i in 0..b.num_rows() {
            let row = self.row + i;
            let fields = cols.fields(i);
            let (s, e, mj) = (fields.start, fields.end, fields.energy_mj);
            // In 128 bits: a seal that starts near i64::MAX cannot make two rows
            // expect the same (saturated) seq.
            let expected_seq = i128::from(self.seal.seq_first) + row as i128;
            if i128::from(fields.seq) != expected_seq {
                self.flag(
                    row,
                    "seq_mismatch",
                    format!("seq {}, expected {expected_seq}", fields.seq),
                );
            }
            if fields.node_id != self.seal.node_id {
                self.flag(
                    row,
                    "node_mismatch",
                    format!(
                        "node_id {:?} in a batch of node {}",
                        fields.node_id, self.seal.node_id
                    ),
                );
            }
            if self.day.is_some_and(|d| s.div_euclid(MICROS_PER_DAY) != d) {
                self.flag(
                    row,
                    "date_mismatch",
                    format!(
                        "start {} is outside partition date {}",
                        format_utc(s),
                        self.seal.date
                    ),
                );
            }
            if let Some(why) = row_invalid(&fields) {
                self.flag(row, "invalid_record", why);
            }
            match self.energy.checked_add(mj) {
                Some(sum) => self.energy = sum,
                None => self.flag(
                    row,
                    "energy_overflow",
                    format!(
                        "energy_mj {mj} takes the batch's sum past {} mJ (64-bit overflow)",
                        i64::MAX
                    ),
                ),
            }
            self.start_min = self.start_min.min(s);
            self.end_max = self.end_max.max(e);
            self.keys.push(RowKey::of(
                fields.kind,
                fields.node_id,
                fields.inference_id,
                fields.gpus.clone(),
                s,
                e,
            ));
            self.leaves.push(fields.leaf_hash(&mut self.scratch));
        }
        self.row += b.num_rows();
    }
}

fn row_invalid<G>(f: &RecordFields<'_, G>) -> Option<String> {
    if f.end < f.start {
        return Some(format!(
            "end {} before start {}",
            format_utc(f.end),
            format_utc(f.start)
        ));
    }
    if f.energy_mj < 0 {
        return Some(format!("negative energy {} mJ", f.energy_mj));
    }
    if Measurement::parse(f.measurement).is_none() {
        return Some(format!("unknown measurement {:?}", f.measurement));
    }
    match (RecordKind::parse(f.kind), f.inference_id) {
        (None, _) => Some(format!("unknown kind {:?}", f.kind)),
        (Some(RecordKind::Inference), None) => Some("inference row without inference_id".into()),
        (Some(RecordKind::Idle), Some(_)) => Some("idle row with an inference_id".into()),
        _ if f.prompt_tokens.unwrap_or(0) < 0 || f.completion_tokens.unwrap_or(0) < 0 => {
            Some("negative token count".into())
        }
        _ => None,
    }
}

/// Checks every node's chain over all seals read. Returns the problems and the number
/// of nodes seen. Problems are reported only for batches inside the window.
fn check_chains(checks: &[(String, bool, ObjectCheck)]) -> (Vec<Problem>, u64) {
    let mut by_node: BTreeMap<&str, Vec<(&str, bool, &Seal)>> = BTreeMap::new();
    for (path, in_window, check) in checks {
        if let Some(seal) = &check.seal {
            by_node
                .entry(&seal.node_id)
                .or_default()
                .push((path, *in_window, seal));
        }
    }
    let mut problems = Vec::new();
    let nodes = by_node.len() as u64;
    for (_node, mut batches) in by_node {
        // Copies: the same batch (same batch hash) stored more than once.
        batches.sort_by(|a, b| {
            (&a.2.batch_hash, batch_path(a.2) != a.0, a.0).cmp(&(
                &b.2.batch_hash,
                batch_path(b.2) != b.0,
                b.0,
            ))
        });
        let mut unique: Vec<(&str, bool, &Seal)> = Vec::new();
        for b in batches {
            match unique.last() {
                Some(first) if first.2.batch_hash == b.2.batch_hash => {
                    if b.1 {
                        problems.push(Problem::new(
                            b.0,
                            "duplicate_batch",
                            format!("copy of batch {} stored at {}", b.2.batch_hash, first.0),
                        ));
                    }
                }
                _ => unique.push(b),
            }
        }
        unique.sort_by(|a, b| {
            (a.2.seq_first, &a.2.batch_hash).cmp(&(b.2.seq_first, &b.2.batch_hash))
        });
        // The next seq the chain expects, in 128 bits: after a batch ending at
        // i64::MAX nothing may follow (a saturated i64 would accept a replay of it).
        let mut expected: i128 = 0;
        let mut prev_hash = to_hex(&GENESIS);
        let mut prev: Option<(&str, &Seal)> = None;
        for (path, in_window, seal) in unique {
            let prev_name = prev.map(|p| p.0).unwrap_or("the start of the chain");
            if i128::from(seal.seq_first) < expected {
                if in_window {
                    let fork = prev.is_some_and(|p| p.1.prev_batch_hash == seal.prev_batch_hash);
                    let (code, what) = if fork {
                        ("chain_fork", "a second successor of the same batch")
                    } else {
                        ("chain_overlap", "a replayed or overlapping batch")
                    };
                    problems.push(Problem::new(
                        path,
                        code,
                        format!(
                            "sequence {}..{} overlaps {prev_name} (up to {}): {what}",
                            seal.seq_first,
                            seal.seq_last,
                            expected - 1
                        ),
                    ));
                }
                continue;
            }
            if in_window {
                if i128::from(seal.seq_first) > expected {
                    problems.push(Problem::new(
                        path,
                        "chain_gap",
                        format!(
                            "records {expected}..{} are missing between {prev_name} and this batch",
                            seal.seq_first - 1
                        ),
                    ));
                } else if seal.prev_batch_hash != prev_hash {
                    problems.push(Problem::new(
                        path,
                        "chain_broken_link",
                        format!(
                            "prev_batch_hash {} is not the hash of {prev_name} ({prev_hash})",
                            seal.prev_batch_hash
                        ),
                    ));
                }
            }
            expected = i128::from(seal.seq_last) + 1;
            prev_hash.clone_from(&seal.batch_hash);
            prev = Some((path, seal));
        }
    }
    (problems, nodes)
}
