//! Aggregates (sums of row figures, in i128 so no total can overflow), the run summary
//! with coverage, and what changed against the previous version.

use std::collections::BTreeMap;

use std::sync::Arc;

use crate::error::{Result, fail};
use arrow_array::{ArrayRef, Decimal128Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use gco_ledger::time::MICROS_PER_DAY;
use polars::prelude::{DataFrame, PlHashMap as HashMap};
use serde::Serialize;

use crate::manifest::{BatchEntry, Coverage, Issue, Quarantined, RunManifest, Totals};
use crate::market::Allocation;
use crate::rows::ChunkTotals;
use crate::schema::col;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Sums {
    pub rows: u64,
    pub inferences: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub it_energy_mj: i128,
    pub facility_energy_mj: i128,
    pub location_ng: i128,
    pub market_ng: i128,
    /// Over the rows with a marginal figure (`marginal_rows`).
    pub marginal_ng: i128,
    pub marginal_rows: u64,
    pub embodied_ng: i128,
    /// Over inference rows.
    pub sci_ng: i128,
}

impl Sums {
    /// `self + o`, or `None` when a count or sum would overflow (a damaged table read
    /// from outside the run: the server's analytics).
    pub fn checked_add(&self, o: &Sums) -> Option<Sums> {
        Some(Sums {
            rows: self.rows.checked_add(o.rows)?,
            inferences: self.inferences.checked_add(o.inferences)?,
            prompt_tokens: self.prompt_tokens.checked_add(o.prompt_tokens)?,
            completion_tokens: self.completion_tokens.checked_add(o.completion_tokens)?,
            it_energy_mj: self.it_energy_mj.checked_add(o.it_energy_mj)?,
            facility_energy_mj: self.facility_energy_mj.checked_add(o.facility_energy_mj)?,
            location_ng: self.location_ng.checked_add(o.location_ng)?,
            market_ng: self.market_ng.checked_add(o.market_ng)?,
            marginal_ng: self.marginal_ng.checked_add(o.marginal_ng)?,
            marginal_rows: self.marginal_rows.checked_add(o.marginal_rows)?,
            embodied_ng: self.embodied_ng.checked_add(o.embodied_ng)?,
            sci_ng: self.sci_ng.checked_add(o.sci_ng)?,
        })
    }

    /// Adds `o` into `self` (every count and sum).
    pub fn add(&mut self, o: &Sums) {
        self.rows += o.rows;
        self.inferences += o.inferences;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.it_energy_mj += o.it_energy_mj;
        self.facility_energy_mj += o.facility_energy_mj;
        self.location_ng += o.location_ng;
        self.market_ng += o.market_ng;
        self.marginal_ng += o.marginal_ng;
        self.marginal_rows += o.marginal_rows;
        self.embodied_ng += o.embodied_ng;
        self.sci_ng += o.sci_ng;
    }
}

type Key = Vec<String>;

/// The aggregate tables and their key columns.
/// `detail_month` is the breakdown the reports need: by model and site, how the energy
/// was measured, and where the intensity came from (source and fallback level).
pub const TABLES: [(&str, &[&str]); 6] = [
    ("model_day", &["date", "model_id", "scope"]),
    ("node_day", &["date", "node_id", "zone", "scope"]),
    ("zone_month", &["zone", "scope"]),
    ("model_month", &["model_id", "scope"]),
    ("organisation_month", &["organisation", "scope"]),
    (
        "detail_month",
        &[
            "model_id",
            "site",
            "zone",
            "scope",
            "measurement",
            "intensity_source",
            "intensity_fallback_level",
        ],
    ),
];

/// The count columns of every aggregate table (UInt64), in file order.
pub const COUNT_COLUMNS: [&str; 5] = [
    "rows",
    "inferences",
    "prompt_tokens",
    "completion_tokens",
    "marginal_rows",
];

/// The sum columns of every aggregate table (Decimal128(38, 0): exact `i128`), in file
/// order.
pub const SUM_COLUMNS: [&str; 7] = [
    "it_energy_mj",
    "facility_energy_mj",
    "location_ng",
    "market_ng",
    "marginal_ng",
    "embodied_ng",
    "sci_ng",
];

/// The key columns of the aggregate table `name`.
pub fn table_keys(name: &str) -> Option<&'static [&'static str]> {
    TABLES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

impl Sums {
    /// The counts, in [`COUNT_COLUMNS`] order.
    pub fn counts(&self) -> [u64; 5] {
        [
            self.rows,
            self.inferences,
            self.prompt_tokens,
            self.completion_tokens,
            self.marginal_rows,
        ]
    }
    /// From counts and sums in [`COUNT_COLUMNS`] / [`SUM_COLUMNS`] order: the inverse
    /// of [`Sums::counts`] and [`Sums::sums`].
    pub fn from_columns(c: [u64; 5], m: [i128; 7]) -> Sums {
        let [
            rows,
            inferences,
            prompt_tokens,
            completion_tokens,
            marginal_rows,
        ] = c;
        let [
            it_energy_mj,
            facility_energy_mj,
            location_ng,
            market_ng,
            marginal_ng,
            embodied_ng,
            sci_ng,
        ] = m;
        Sums {
            rows,
            inferences,
            prompt_tokens,
            completion_tokens,
            it_energy_mj,
            facility_energy_mj,
            location_ng,
            market_ng,
            marginal_ng,
            marginal_rows,
            embodied_ng,
            sci_ng,
        }
    }
    /// The sums, in [`SUM_COLUMNS`] order.
    pub fn sums(&self) -> [i128; 7] {
        [
            self.it_energy_mj,
            self.facility_energy_mj,
            self.location_ng,
            self.market_ng,
            self.marginal_ng,
            self.embodied_ng,
            self.sci_ng,
        ]
    }
}

#[derive(Debug, Clone, Default)]
pub struct Aggregates {
    organisation: String,
    pub tables: [BTreeMap<Key, Sums>; 6],
}

/// Reads an aggregate table file (`path`, for messages) with key columns `keys`: each
/// row's key values and sums. A missing column or one of another type is an error
/// naming the file and column, never a panic.
pub fn read_table(path: &str, bytes: bytes::Bytes, keys: &[&str]) -> Result<Vec<(Key, Sums)>> {
    use arrow_array::types::{Decimal128Type, UInt64Type};
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        // The writer declares every column non-null: a null is damage, not a zero.
        if let Some(c) = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .find(|(_, c)| c.null_count() > 0)
        {
            fail!(Inconsistent, "{path}: column {} holds nulls", c.0.name());
        }
        use crate::schema::{primitive_named, text_named};
        let key_cols = keys
            .iter()
            .map(|k| text_named(&batch, k, path))
            .collect::<Result<Vec<_>>>()?;
        let counts = COUNT_COLUMNS
            .iter()
            .map(|n| primitive_named::<UInt64Type>(&batch, n, path))
            .collect::<Result<Vec<_>>>()?;
        let sums = SUM_COLUMNS
            .iter()
            .map(|n| primitive_named::<Decimal128Type>(&batch, n, path))
            .collect::<Result<Vec<_>>>()?;
        for i in 0..batch.num_rows() {
            let key = key_cols.iter().map(|c| c.value(i).to_string()).collect();
            let sums = Sums::from_columns(
                std::array::from_fn(|k| counts[k].value(i)),
                std::array::from_fn(|k| sums[k].value(i)),
            );
            out.push((key, sums));
        }
    }
    Ok(out)
}

pub(crate) fn col_i64(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>> {
    Ok(df
        .column(name)?
        .cast(&polars::prelude::DataType::Int64)?
        .i64()?
        .iter()
        .collect())
}

/// The string key columns of a row, in [`fold`]'s fine-grained grouping.
const KEY_COLUMNS: [&str; 8] = [
    col::NODE_ID,
    col::MODEL_ID,
    col::ZONE,
    col::SCOPE,
    col::SITE,
    col::MEASUREMENT,
    col::INTENSITY_SOURCE,
    col::INTENSITY_FALLBACK_LEVEL,
];

/// The summed columns, in [`fold`]'s order.
const ROW_SUM_COLUMNS: [&str; 9] = [
    col::PROMPT_TOKENS,
    col::COMPLETION_TOKENS,
    col::IT_ENERGY_MJ,
    col::FACILITY_ENERGY_MJ,
    col::LOCATION_NG,
    col::MARKET_NG,
    col::MARGINAL_NG,
    col::EMBODIED_NG,
    col::SCI_NG,
];

/// Sums of one frame of final rows, by every table's key. Rows are summed once, under
/// the finest key (day and every key column, borrowed); each table then sums the few
/// fine groups under its own owned key.
pub fn fold(df: &DataFrame) -> Result<Aggregates> {
    use polars::prelude::{DataType, Int64Chunked, StaticArray, StringChunked};
    let strs =
        |n: &str| -> Result<StringChunked> { Ok(df.column(n)?.str()?.rechunk().into_owned()) };
    let ints = |n: &str| -> Result<Int64Chunked> {
        Ok(df
            .column(n)?
            .cast(&DataType::Int64)?
            .i64()?
            .rechunk()
            .into_owned())
    };
    let key_cols: Vec<StringChunked> =
        KEY_COLUMNS.iter().map(|c| strs(c)).collect::<Result<_>>()?;
    let keys: Vec<_> = key_cols.iter().map(|c| c.downcast_as_array()).collect();
    let kind = strs(col::KIND)?;
    let kind = kind.downcast_as_array();
    let start = ints(col::START)?;
    let start = start.downcast_as_array();
    let sum_cols: Vec<Int64Chunked> = ROW_SUM_COLUMNS
        .iter()
        .map(|c| ints(c))
        .collect::<Result<_>>()?;
    let sums: Vec<_> = sum_cols.iter().map(|c| c.downcast_as_array()).collect();

    let mut fine: HashMap<(i64, [Option<&str>; 8]), Sums> = HashMap::default();
    for i in 0..df.height() {
        let v = |k: usize| sums[k].get(i).unwrap_or(0) as i128;
        let row = Sums {
            rows: 1,
            inferences: (kind.get(i) == Some("inference")) as u64,
            prompt_tokens: sums[0].get(i).unwrap_or(0) as u64,
            completion_tokens: sums[1].get(i).unwrap_or(0) as u64,
            it_energy_mj: v(2),
            facility_energy_mj: v(3),
            location_ng: v(4),
            market_ng: v(5),
            marginal_ng: v(6),
            marginal_rows: sums[6].get(i).is_some() as u64,
            embodied_ng: v(7),
            sci_ng: v(8),
        };
        let day = start.get(i).unwrap_or(0).div_euclid(MICROS_PER_DAY);
        let key = std::array::from_fn(|k| keys[k].get(i));
        fine.entry((day, key)).or_default().add(&row);
    }

    let date = |day: i64| {
        chrono::DateTime::from_timestamp_micros(day * MICROS_PER_DAY)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let model_name = |m: Option<&str>| m.unwrap_or("(idle/overhead)").to_string();
    let s = |v: Option<&str>| v.unwrap_or("").to_string();
    let mut a = Aggregates::default();
    for ((day, [node, model, zone, scope, site, measurement, source, level]), sums) in fine {
        let tables: [Key; 6] = [
            vec![date(day), model_name(model), s(scope)],
            vec![date(day), s(node), s(zone), s(scope)],
            vec![s(zone), s(scope)],
            vec![model_name(model), s(scope)],
            vec![String::new(), s(scope)],
            vec![
                model_name(model),
                s(site),
                s(zone),
                s(scope),
                s(measurement),
                s(source),
                s(level),
            ],
        ];
        for (t, k) in tables.into_iter().enumerate() {
            a.tables[t].entry(k).or_default().add(&sums);
        }
    }
    Ok(a)
}

impl Aggregates {
    pub fn new(organisation: &str) -> Self {
        Aggregates {
            organisation: organisation.to_string(),
            ..Default::default()
        }
    }

    pub fn merge(&mut self, o: Aggregates) {
        for (t, table) in o.tables.into_iter().enumerate() {
            for (k, s) in table {
                self.tables[t].entry(k).or_default().add(&s);
            }
        }
    }

    /// Totals by scope and overall.
    pub fn totals(&self) -> BTreeMap<String, Sums> {
        let mut out = BTreeMap::new();
        let mut all = Sums::default();
        for (k, s) in &self.tables[4] {
            out.insert(k[1].clone(), *s);
            all.add(s);
        }
        out.insert("all".into(), all);
        out
    }

    /// One Arrow batch per table, sorted by key. Sums are Decimal128(38, 0): exact
    /// integers every Parquet reader knows (pyarrow and DuckDB do not read 128-bit
    /// integer columns).
    pub fn batches(&self) -> Result<Vec<(&'static str, RecordBatch)>> {
        let mut out = Vec::new();
        for (t, (name, keys)) in TABLES.iter().enumerate() {
            let table = &self.tables[t];
            let mut fields = Vec::new();
            let mut cols: Vec<ArrayRef> = Vec::new();
            for (j, k) in keys.iter().enumerate() {
                let v: Vec<String> = table
                    .keys()
                    .map(|key| {
                        if *k == "organisation" {
                            self.organisation.clone()
                        } else {
                            key[j].clone()
                        }
                    })
                    .collect();
                fields.push(Field::new(*k, DataType::Utf8, false));
                cols.push(Arc::new(StringArray::from(v)));
            }
            let rows: Vec<([u64; 5], [i128; 7])> =
                table.values().map(|s| (s.counts(), s.sums())).collect();
            for (c, n) in COUNT_COLUMNS.iter().enumerate() {
                fields.push(Field::new(*n, DataType::UInt64, false));
                cols.push(Arc::new(UInt64Array::from(
                    rows.iter().map(|r| r.0[c]).collect::<Vec<u64>>(),
                )));
            }
            for (c, n) in SUM_COLUMNS.iter().enumerate() {
                fields.push(Field::new(*n, DataType::Decimal128(38, 0), false));
                cols.push(Arc::new(
                    Decimal128Array::from(rows.iter().map(|r| r.1[c]).collect::<Vec<i128>>())
                        .with_precision_and_scale(38, 0)?,
                ));
            }
            out.push((
                *name,
                RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?,
            ));
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub coverage: Coverage,
    pub totals: BTreeMap<String, Totals>,
    pub residual_mix_unknown: Vec<String>,
    #[serde(skip)]
    pub sums: BTreeMap<String, Sums>,
}

impl RunSummary {
    pub fn new(
        batches: &[BatchEntry],
        chain: &[Issue],
        quarantine: &[Quarantined],
        totals: &ChunkTotals,
        agg: &Aggregates,
        alloc: &Allocation,
    ) -> RunSummary {
        let verified: Vec<&BatchEntry> = batches.iter().filter(|b| b.verified).collect();
        let mut reasons = BTreeMap::new();
        for q in quarantine {
            *reasons.entry(q.reason.clone()).or_default() += 1;
        }
        let sums = agg.totals();
        RunSummary {
            coverage: Coverage {
                batches: batches.len() as u64,
                batches_verified: verified.len() as u64,
                batches_excluded: (batches.len() - verified.len()) as u64,
                records_sealed: batches.iter().map(|b| b.records).sum(),
                records_verified: verified.iter().map(|b| b.records).sum(),
                energy_mj_sealed: batches.iter().map(|b| b.energy_mj).sum(),
                energy_mj_verified: verified.iter().map(|b| b.energy_mj).sum(),
                records_accounted: totals.rows,
                records_quarantined: totals.quarantined,
                quarantine_reasons: reasons,
                chain_issues: chain.len() as u64,
                excluded: batches
                    .iter()
                    .filter(|b| !b.verified)
                    .flat_map(|b| b.problems.iter().take(3).cloned())
                    .collect(),
            },
            totals: sums.iter().map(|(k, v)| (k.clone(), v.into())).collect(),
            residual_mix_unknown: alloc.residual_mix_unknown(),
            sums,
        }
    }
}

/// What a new version changes against the previous one.
#[derive(Debug, Clone, Serialize)]
pub struct Changes {
    pub previous_version: u32,
    pub inputs_added: Vec<String>,
    pub inputs_removed: Vec<String>,
    pub records_accounted_before: u64,
    pub records_accounted_after: u64,
    #[serde(with = "crate::manifest::decimal")]
    pub location_ng_before: i128,
    #[serde(with = "crate::manifest::decimal")]
    pub location_ng_after: i128,
    #[serde(with = "crate::manifest::decimal")]
    pub market_ng_before: i128,
    #[serde(with = "crate::manifest::decimal")]
    pub market_ng_after: i128,
}

impl Changes {
    pub fn between(
        prev: u32,
        m: &RunManifest,
        now: &RunSummary,
        batches: &[BatchEntry],
    ) -> Changes {
        let before: std::collections::BTreeSet<&str> =
            m.inputs.ledger.iter().map(|b| b.object.as_str()).collect();
        let after: std::collections::BTreeSet<&str> =
            batches.iter().map(|b| b.object.as_str()).collect();
        let (was, is) = (
            m.totals("all"),
            now.totals.get("all").copied().unwrap_or_default(),
        );
        Changes {
            previous_version: prev,
            inputs_added: after.difference(&before).map(|s| s.to_string()).collect(),
            inputs_removed: before.difference(&after).map(|s| s.to_string()).collect(),
            records_accounted_before: m.coverage.records_accounted,
            records_accounted_after: now.coverage.records_accounted,
            location_ng_before: was.location_ng,
            location_ng_after: is.location_ng,
            market_ng_before: was.market_ng,
            market_ng_after: is.market_ng,
        }
    }
}

impl From<&Sums> for Totals {
    fn from(s: &Sums) -> Self {
        Totals {
            rows: s.rows,
            inferences: s.inferences,
            it_energy_mj: s.it_energy_mj,
            facility_energy_mj: s.facility_energy_mj,
            location_ng: s.location_ng,
            market_ng: s.market_ng,
            marginal_ng: s.marginal_ng,
            marginal_rows: s.marginal_rows,
            embodied_ng: s.embodied_ng,
            sci_ng: s.sci_ng,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parquet(batch: &RecordBatch) -> bytes::Bytes {
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(batch).unwrap();
        w.close().unwrap();
        buf.into()
    }

    /// What `batches` writes, `read_table` reads back exactly; a column of another type
    /// is an error naming the file and the column, not a panic.
    #[test]
    fn a_table_reads_back_and_a_damaged_one_is_an_error() {
        let mut a = Aggregates::new("acme");
        let s = Sums {
            rows: 3,
            inferences: 2,
            prompt_tokens: 7,
            completion_tokens: 11,
            it_energy_mj: 1_000,
            facility_energy_mj: 1_560,
            location_ng: i128::from(i64::MAX) * 4,
            market_ng: 5,
            marginal_ng: 6,
            marginal_rows: 1,
            embodied_ng: 8,
            sci_ng: 9,
        };
        let key = vec!["llama-70b".to_string(), "scope2".to_string()];
        a.tables[3].insert(key.clone(), s);
        let (name, batch) = a.batches().unwrap().swap_remove(3);
        assert_eq!(name, "model_month");
        let keys = table_keys(name).unwrap();
        let back = read_table("t.parquet", parquet(&batch), keys).unwrap();
        assert_eq!(back, vec![(key, s)]);

        // `batch` with its `inferences` column replaced.
        let replaced = |field: Field, col: ArrayRef| {
            let schema = batch.schema();
            let at = schema.index_of("inferences").unwrap();
            let mut fields: Vec<Field> = schema.fields().iter().map(|f| (**f).clone()).collect();
            let mut cols = batch.columns().to_vec();
            (fields[at], cols[at]) = (field, col);
            RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
        };
        let damaged = replaced(
            Field::new("inferences", DataType::Utf8, false),
            Arc::new(StringArray::from(vec!["2"])),
        );
        let e = read_table("t.parquet", parquet(&damaged), keys).unwrap_err();
        assert_eq!(e.to_string(), "t.parquet: column inferences is not UInt64");
        assert_eq!(e.code(), "inconsistent");

        // A null where the writer never writes one is damage, not a zero.
        let nulls = replaced(
            Field::new("inferences", DataType::UInt64, true),
            Arc::new(UInt64Array::from(vec![None::<u64>])),
        );
        let e = read_table("t.parquet", parquet(&nulls), keys).unwrap_err();
        assert_eq!(e.to_string(), "t.parquet: column inferences holds nulls");
    }
}
