//! Finding a stored credential: one inference's credentials by its id (reading per
//! file only the footer, the bloom filter of the candidate row group and, on a hit,
//! that row group), and a sample of a version's documents.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::error::Result;
use arrow_array::Array;
use bytes::Bytes;
use gco_ledger::Store;

/// Finds the credentials of one inference in a version's per-inference files, reading
/// per file only the footer, the bloom filter of the candidate row group and, on a hit,
/// that row group.
pub async fn lookup_inference(
    store: &Store,
    prefix: &str,
    inference_id: &str,
) -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    for m in store.list(&format!("{prefix}/inferences/")).await? {
        let path = m.location.to_string();
        if !path.ends_with(".parquet") {
            continue;
        }
        out.extend(lookup_in_file(store, &path, m.size, inference_id).await?);
    }
    Ok(out)
}

/// Where an inference's stored credentials were found: the period and credential
/// version, and each (format, credential id, document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub period: String,
    pub version: u32,
    pub credentials: Vec<(String, String, String)>,
}

/// Finds an inference's stored credentials in each period's latest credential version
/// (only `period`'s when given), newest period first: what `gco certificate show` and
/// `gco serve` answer.
pub async fn find_inference(
    store: &Store,
    period: Option<crate::Period>,
    inference_id: &str,
) -> Result<Option<Found>> {
    let versions = crate::certify::latest_credential_versions(store, period).await?;
    for (period, version) in versions.into_iter().rev() {
        let prefix = crate::certify::version_prefix(&period, version);
        let credentials = lookup_inference(store, &prefix, inference_id).await?;
        if !credentials.is_empty() {
            return Ok(Some(Found {
                period,
                version,
                credentials,
            }));
        }
    }
    Ok(None)
}

/// Byte ranges of an object fetched on demand (for the parquet reader).
#[derive(Clone)]
struct Ranges {
    len: u64,
    parts: Vec<(u64, Bytes)>,
}

impl parquet::file::reader::Length for Ranges {
    fn len(&self) -> u64 {
        self.len
    }
}

impl parquet::file::reader::ChunkReader for Ranges {
    type T = bytes::buf::Reader<Bytes>;
    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        let (off, b) = self
            .parts
            .iter()
            .find(|(o, b)| start >= *o && start < o + b.len() as u64)
            .ok_or_else(|| {
                parquet::errors::ParquetError::General(format!("offset {start} not fetched"))
            })?;
        Ok(b.slice((start - off) as usize..).reader())
    }
    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let (off, b) = self
            .parts
            .iter()
            .find(|(o, b)| start >= *o && start + length as u64 <= o + b.len() as u64)
            .ok_or_else(|| {
                parquet::errors::ParquetError::General(format!(
                    "range {start}+{length} not fetched"
                ))
            })?;
        Ok(b.slice((start - off) as usize..(start - off) as usize + length))
    }
}

async fn lookup_in_file(
    store: &Store,
    path: &str,
    size: u64,
    id: &str,
) -> Result<Vec<(String, String, String)>> {
    use parquet::arrow::arrow_reader::{
        ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
    };
    use parquet::data_type::AsBytes;
    use parquet::file::metadata::ParquetMetaDataReader;
    use parquet::file::statistics::Statistics;
    let tail_len = size.min(256 * 1024);
    let tail = store.get_range(path, size - tail_len..size).await?;
    let mut ranges = Ranges {
        len: size,
        parts: vec![(size - tail_len, tail)],
    };
    let md = match ParquetMetaDataReader::new().parse_and_finish(&ranges) {
        Ok(md) => md,
        Err(_) => {
            // A footer larger than the tail read: fetch the whole object.
            ranges.parts = vec![(0, store.get(path).await?)];
            ParquetMetaDataReader::new().parse_and_finish(&ranges)?
        }
    };
    let mut hits = Vec::new();
    for (rg_index, rg) in md.row_groups().iter().enumerate() {
        let col = rg.column(0);
        let in_range = match col.statistics() {
            Some(Statistics::ByteArray(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(lo), Some(hi)) => {
                    lo.as_bytes() <= id.as_bytes() && id.as_bytes() <= hi.as_bytes()
                }
                _ => true,
            },
            _ => true,
        };
        if !in_range {
            continue;
        }
        if let (Some(off), Some(len)) = (col.bloom_filter_offset(), col.bloom_filter_length()) {
            let b = store
                .get_range(path, off as u64..off as u64 + len as u64)
                .await?;
            ranges.parts.push((off as u64, b));
            if let Some(sbbf) = parquet::bloom_filter::Sbbf::read_from_column_chunk(col, &ranges)?
                && !sbbf.check(&id)
            {
                continue;
            }
        }
        let (start, len) = rg.columns().iter().fold((u64::MAX, 0u64), |(s, e), c| {
            let (cs, cl) = c.byte_range();
            (s.min(cs), e.max(cs + cl))
        });
        let b = store.get_range(path, start..len).await?;
        ranges.parts.push((start, b));
        let meta = ArrowReaderMetadata::try_new(Arc::new(md.clone()), ArrowReaderOptions::new())?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(ranges.clone(), meta)
            .with_row_groups(vec![rg_index])
            .build()?;
        for batch in reader {
            let batch = batch?;
            let text = |at| crate::schema::text_at(&batch, at, path);
            let (k, f, i, d) = (text(0)?, text(1)?, text(2)?, text(6)?);
            for r in 0..batch.num_rows() {
                if k.is_valid(r) && k.value(r) == id {
                    hits.push((
                        f.value(r).to_string(),
                        i.value(r).to_string(),
                        d.value(r).to_string(),
                    ));
                }
            }
        }
    }
    Ok(hits)
}

/// A few stored credentials of a version for an end-to-end check (the demo): per
/// format, the first organisation-month credential and the first per-inference one.
pub async fn sample_documents(store: &Store, prefix: &str) -> Result<Vec<(String, String)>> {
    let mut files = vec![format!("{prefix}/aggregates.parquet")];
    if let Some(first) = store.list(&format!("{prefix}/inferences/")).await?.first() {
        files.push(first.location.to_string());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for f in files {
        let Ok(bytes) = store.get(&f).await else {
            continue;
        };
        for batch in parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?
            .build()?
        {
            let batch = batch?;
            let text = |at| crate::schema::text_at(&batch, at, &f);
            let (key, fmt, doc) = (text(0)?, text(1)?, text(6)?);
            for r in 0..batch.num_rows() {
                let group = if f.ends_with("aggregates.parquet") {
                    if !key.value(r).starts_with("organisation_month/") {
                        continue;
                    }
                    "aggregate"
                } else {
                    "inference"
                };
                if seen.insert((group, fmt.value(r).to_string())) {
                    out.push((fmt.value(r).to_string(), doc.value(r).to_string()));
                }
            }
        }
    }
    Ok(out)
}

/// One stored per-inference credential as a listing shows it (without its document).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    pub inference_id: String,
    pub format: String,
    pub id: String,
    pub node_id: String,
    pub seq: u64,
    pub status_index: u64,
}

/// Where a listing of a version's per-inference credentials stands: the day file (by
/// its index in path order) and the row in it. A version's files never change, so a
/// position means the same rows on every request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub file: usize,
    pub row: usize,
}

/// A page of a listing, and where the next one starts (`None`: the listing ended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<Listed>,
    pub next: Option<Position>,
}

/// Lists up to `limit` per-inference credentials of the version under `prefix` from
/// `from` on, in file and row order, keeping those `keep` accepts. Only the listed
/// columns are read, not the documents.
pub async fn list_inferences(
    store: &Store,
    prefix: &str,
    from: Position,
    limit: usize,
    keep: impl Fn(&Listed) -> bool,
) -> Result<Page> {
    use arrow_array::types::UInt64Type;
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let files: Vec<String> = store
        .list(&format!("{prefix}/inferences/"))
        .await?
        .into_iter()
        .map(|m| m.location.to_string())
        .filter(|p| p.ends_with(".parquet"))
        .collect();
    let mut items = Vec::new();
    let mut at = from;
    while at.file < files.len() {
        let path = &files[at.file];
        let builder = ParquetRecordBatchReaderBuilder::try_new(store.get(path).await?)?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [0, 1, 2, 3, 4, 5]);
        let reader = builder.with_projection(mask).with_offset(at.row).build()?;
        for batch in reader {
            let batch = batch?;
            let text = |at| crate::schema::text_at(&batch, at, path);
            let (key, format, id, node) = (text(0)?, text(1)?, text(2)?, text(3)?);
            let seq = crate::schema::primitive_named::<UInt64Type>(&batch, "seq", path)?;
            let status =
                crate::schema::primitive_named::<UInt64Type>(&batch, "status_index", path)?;
            for r in 0..batch.num_rows() {
                if items.len() == limit {
                    return Ok(Page {
                        items,
                        next: Some(at),
                    });
                }
                let row = Listed {
                    inference_id: key.value(r).to_string(),
                    format: format.value(r).to_string(),
                    id: id.value(r).to_string(),
                    node_id: node.value(r).to_string(),
                    seq: seq.value(r),
                    status_index: status.value(r),
                };
                at.row += 1;
                if keep(&row) {
                    items.push(row);
                }
            }
        }
        at = Position {
            file: at.file + 1,
            row: 0,
        };
    }
    Ok(Page { items, next: None })
}
