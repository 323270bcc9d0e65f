//! `gco ledger stats`: record counts and energy per node, model and day.
//!
//! Stats read rows as stored and do not verify them; `gco ledger verify` does that.

use std::collections::BTreeMap;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use chrono::NaiveDate;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::error::{LedgerError, Result};
use crate::layout::RECORDS as RECORDS_PREFIX;
use crate::record::col;
use crate::store::{Store, parse_batch_path};
use crate::time::utc_date;

/// One group of the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsRow {
    pub date: String,
    pub node_id: String,
    /// `None` for idle/overhead rows.
    pub model_id: Option<String>,
    pub records: u64,
    pub energy_mj: i64,
}

/// The summary, sorted by (date, node, model).
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub batches: u64,
    pub bytes: u64,
    pub records: u64,
    pub energy_mj: i64,
    pub rows: Vec<StatsRow>,
}

/// Summarises the batches whose partition date lies in `[from, to]`.
pub async fn stats(store: &Store, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Stats> {
    let mut groups: BTreeMap<(String, String, Option<String>), (u64, i64)> = BTreeMap::new();
    let mut out = Stats {
        batches: 0,
        bytes: 0,
        records: 0,
        energy_mj: 0,
        rows: Vec::new(),
    };
    for meta in store.list(RECORDS_PREFIX).await? {
        let path = meta.location.to_string();
        let Some(loc) = parse_batch_path(&path) else {
            continue;
        };
        let Ok(date) = NaiveDate::parse_from_str(&loc.date, "%Y-%m-%d") else {
            continue;
        };
        if from.is_some_and(|f| date < f) || to.is_some_and(|t| date > t) {
            continue;
        }
        let bytes = store.get(&path).await?;
        out.batches += 1;
        out.bytes += bytes.len() as u64;
        let pq = |source| LedgerError::Parquet {
            path: path.clone(),
            source,
        };
        let decode = || -> Result<Vec<arrow_array::RecordBatch>> {
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(pq)?;
            let wanted = [col::NODE_ID, col::MODEL_ID, col::START, col::ENERGY_MJ];
            let mask = ProjectionMask::columns(builder.parquet_schema(), wanted);
            let reader = builder.with_projection(mask).build().map_err(pq)?;
            Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
        };
        let over = || LedgerError::Input(format!("{path}: energy sums pass 2^63 mJ"));
        for batch in crate::guard::decode(&path, decode).map_err(LedgerError::Input)?? {
            let get = |name: &str| {
                batch.column_by_name(name).ok_or_else(|| {
                    LedgerError::Input(format!(
                        "{path}: column {name} missing; run `gco ledger verify`"
                    ))
                })
            };
            let (node, model, start, energy) = (
                get(col::NODE_ID)?,
                get(col::MODEL_ID)?,
                get(col::START)?,
                get(col::ENERGY_MJ)?,
            );
            let (Some(node), Some(model), Some(start), Some(energy)) = (
                node.as_string_opt::<i32>(),
                model.as_string_opt::<i32>(),
                start.as_primitive_opt::<TimestampMicrosecondType>(),
                energy.as_primitive_opt::<Int64Type>(),
            ) else {
                return Err(LedgerError::Input(format!(
                    "{path}: unexpected column types; run `gco ledger verify`"
                )));
            };
            for i in 0..batch.num_rows() {
                let key = (
                    utc_date(start.value(i)).to_string(),
                    node.value(i).to_string(),
                    model.is_valid(i).then(|| model.value(i).to_string()),
                );
                let g = groups.entry(key).or_default();
                g.0 += 1;
                g.1 = g.1.checked_add(energy.value(i)).ok_or_else(over)?;
                out.records += 1;
                out.energy_mj = out
                    .energy_mj
                    .checked_add(energy.value(i))
                    .ok_or_else(over)?;
            }
        }
    }
    out.rows = groups
        .into_iter()
        .map(
            |((date, node_id, model_id), (records, energy_mj))| StatsRow {
                date,
                node_id,
                model_id,
                records,
                energy_mj,
            },
        )
        .collect();
    Ok(out)
}
