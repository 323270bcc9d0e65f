//! Sealing: a node's records become signed, hash-chained Parquet batches.
//!
//! [`ChainWriter`] owns a node's chain head. It numbers records, cuts batches at each
//! change of UTC date and at a size bound, computes the Merkle root, signs the seal with
//! the node's [`Signer`] and encodes one Parquet file per batch, seal in the footer.

use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, ParquetMetaData, ParquetMetaDataReader, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};

use crate::SCHEMA_VERSION;
use crate::error::{LedgerError, Result};
use crate::hash::{Encoder, Hash32, merkle_root, to_hex};
use crate::keys::Signer;
use crate::record::{Record, to_record_batch};
use crate::seal::{GENESIS, SCHEMA_VERSION_KEY, SEAL_KEY, Seal};
use crate::store::{PutOutcome, Store, batch_path};
use crate::time::utc_date;

/// Where a node's chain stands: the next sequence number and the last batch's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub node_id: String,
    pub next_seq: u64,
    pub prev_batch_hash: Hash32,
}

impl ChainHead {
    /// The head of a node that has written nothing yet.
    pub fn genesis(node_id: impl Into<String>) -> Self {
        ChainHead {
            node_id: node_id.into(),
            next_seq: 0,
            prev_batch_hash: GENESIS,
        }
    }
}

/// One sealed batch, ready to upload.
#[derive(Debug, Clone)]
pub struct SealedBatch {
    pub seal: Seal,
    /// Object path relative to the store root.
    pub path: String,
    pub bytes: Bytes,
}

/// Default upper bound on records per batch.
pub const DEFAULT_MAX_BATCH_RECORDS: usize = 100_000;

/// Seals records into a node's chain.
pub struct ChainWriter<'s> {
    signer: &'s dyn Signer,
    head: ChainHead,
    max_batch_records: usize,
    scratch: Encoder,
}

/// Parquet writer settings for batches: ZSTD, statistics per page, one row group.
pub fn writer_properties(seal: &Seal) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        // Inference ids are unique: a dictionary only costs time and bytes.
        .set_column_dictionary_enabled(ColumnPath::from(crate::record::col::INFERENCE_ID), false)
        .set_max_row_group_row_count(Some(
            DEFAULT_MAX_BATCH_RECORDS.max(seal.record_count as usize),
        ))
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(SCHEMA_VERSION_KEY.to_string(), SCHEMA_VERSION.to_string()),
            KeyValue::new(SEAL_KEY.to_string(), seal.to_json()),
        ]))
        .build()
}

impl<'s> ChainWriter<'s> {
    pub fn new(signer: &'s dyn Signer, head: ChainHead) -> Self {
        ChainWriter {
            signer,
            head,
            max_batch_records: DEFAULT_MAX_BATCH_RECORDS,
            scratch: Encoder::default(),
        }
    }

    pub fn with_max_batch_records(mut self, n: usize) -> Self {
        self.max_batch_records = n.max(1);
        self
    }

    pub fn head(&self) -> &ChainHead {
        &self.head
    }

    /// Seals `records` in the order given. Their `seq` and `node_id` are assigned here;
    /// every other field must already satisfy [`Record::validate`]. A batch ends at each
    /// change of the records' UTC start date and after `max_batch_records`.
    pub fn seal(&mut self, mut records: Vec<Record>) -> Result<Vec<SealedBatch>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < records.len() {
            let date = utc_date(records[i].start);
            let mut j = i + 1;
            while j < records.len()
                && j - i < self.max_batch_records
                && utc_date(records[j].start) == date
            {
                j += 1;
            }
            out.push(self.seal_one(&mut records[i..j])?);
            i = j;
        }
        Ok(out)
    }

    fn seal_one(&mut self, records: &mut [Record]) -> Result<SealedBatch> {
        let date = utc_date(records[0].start).format("%Y-%m-%d").to_string();
        let mut leaves = Vec::with_capacity(records.len());
        let (mut energy, mut start_min, mut end_max) = (0i64, i64::MAX, i64::MIN);
        for (k, r) in records.iter_mut().enumerate() {
            r.seq = self.head.next_seq + k as u64;
            r.node_id.clone_from(&self.head.node_id);
            r.validate()
                .map_err(|e| LedgerError::InvalidRecord(format!("record seq {}: {e}", r.seq)))?;
            energy = energy.checked_add(r.energy.0).ok_or_else(|| {
                LedgerError::InvalidRecord("batch energy overflows 2^63-1 mJ".into())
            })?;
            start_min = start_min.min(r.start);
            end_max = end_max.max(r.end);
            leaves.push(r.fields().leaf_hash(&mut self.scratch));
        }
        let n = records.len() as u64;
        let mut seal = Seal {
            schema_version: SCHEMA_VERSION,
            node_id: self.head.node_id.clone(),
            date,
            seq_first: self.head.next_seq as i64,
            seq_last: (self.head.next_seq + n - 1) as i64,
            record_count: n as i64,
            energy_mj: energy,
            start_min_us: start_min,
            end_max_us: end_max,
            merkle_root: to_hex(&merkle_root(&leaves)),
            prev_batch_hash: to_hex(&self.head.prev_batch_hash),
            key_id: self.signer.key_id().to_string(),
            algorithm: self.signer.algorithm(),
            batch_hash: String::new(),
            signature: String::new(),
        };
        let payload = seal.payload()?;
        let batch_hash: Hash32 = Sha256::digest(&payload).into();
        seal.batch_hash = to_hex(&batch_hash);
        use base64::Engine;
        seal.signature =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.signer.sign(&payload)?);

        let bytes = encode_parquet(records, &seal)?;
        self.head.next_seq += n;
        self.head.prev_batch_hash = batch_hash;
        Ok(SealedBatch {
            path: batch_path(&seal),
            seal,
            bytes,
        })
    }
}

/// Encodes records as one Parquet file with the seal in its footer.
pub fn encode_parquet(records: &[Record], seal: &Seal) -> Result<Bytes> {
    let batch = to_record_batch(records)?;
    let pq_err = |source| LedgerError::Parquet {
        path: format!("<batch {}>", seal.object_name()),
        source,
    };
    let mut buf = Vec::with_capacity(records.len() * 32 + 4096);
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(writer_properties(seal)))
        .map_err(pq_err)?;
    w.write(&batch).map_err(pq_err)?;
    w.close().map_err(pq_err)?;
    Ok(Bytes::from(buf))
}

/// The chain head of `node_id` as stored: one past the highest sequence number of its
/// batches, and that batch's hash. Reads only footers.
pub async fn chain_head(store: &Store, node_id: &str) -> Result<ChainHead> {
    let mut head = ChainHead::genesis(node_id);
    let mut best: Option<Seal> = None;
    for meta in store.list(crate::layout::RECORDS).await? {
        let path = meta.location.to_string();
        if crate::store::parse_batch_path(&path).is_none_or(|l| l.node_id != node_id) {
            continue;
        }
        let seal = read_seal_only(store, &path, meta.size).await?;
        if seal.node_id == node_id && best.as_ref().is_none_or(|b| seal.seq_last > b.seq_last) {
            best = Some(seal);
        }
    }
    if let Some(seal) = best {
        head.next_seq = seal.seq_last as u64 + 1;
        head.prev_batch_hash = seal.batch_hash_bytes()?;
    }
    Ok(head)
}

/// Uploads batches create-only, `concurrency` at a time. Returns (created, already present).
pub async fn upload(
    store: &Store,
    batches: &[SealedBatch],
    concurrency: usize,
    on_done: &(dyn Fn(&SealedBatch) + Sync),
) -> Result<(u64, u64)> {
    use futures::StreamExt;
    let mut created = 0;
    let mut present = 0;
    let mut results = futures::stream::iter(
        batches
            .iter()
            .map(|b| async move { (b, store.put_batch(b).await) }),
    )
    .buffer_unordered(concurrency.max(1));
    while let Some((b, r)) = results.next().await {
        match r? {
            PutOutcome::Created => created += 1,
            PutOutcome::AlreadyPresent => present += 1,
        }
        on_done(b);
    }
    Ok((created, present))
}

/// Decodes a batch object into its seal and records (no verification: use
/// [`crate::verify::check_object`] for that).
pub fn read_batch(path: &str, bytes: Bytes) -> Result<(Seal, Vec<Record>)> {
    crate::guard::decode(path, || read_batch_unguarded(path, bytes)).map_err(LedgerError::Input)?
}

fn read_batch_unguarded(path: &str, bytes: Bytes) -> Result<(Seal, Vec<Record>)> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let pq = |source| LedgerError::Parquet {
        path: path.to_string(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(pq)?;
    let seal_json = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == SEAL_KEY))
        .and_then(|kv| kv.value.clone())
        .ok_or_else(|| LedgerError::Input(format!("{path}: no {SEAL_KEY} in the footer")))?;
    let seal = Seal::from_json(&seal_json)?;
    let mut records = Vec::new();
    for batch in builder.build().map_err(pq)? {
        let batch = batch?;
        let cols = crate::record::Columns::new(&batch)
            .ok_or_else(|| LedgerError::Input(format!("{path}: not the ledger schema")))?;
        for i in 0..batch.num_rows() {
            records.push(cols.record(i).ok_or_else(|| {
                LedgerError::Input(format!("{path}: row {i} is not a valid record"))
            })?);
        }
    }
    Ok((seal, records))
}

/// Reads only the footer of a batch to get its seal.
pub async fn read_seal_only(store: &Store, path: &str, size: u64) -> Result<Seal> {
    let bad = |why: String| crate::error::LedgerError::Input(format!("{path}: {why}"));
    if size < 12 {
        return Err(bad("too small to be Parquet".into()));
    }
    let tail = store.get_range(path, size - 8..size).await?;
    if &tail[4..] != b"PAR1" {
        return Err(bad("no Parquet magic".into()));
    }
    let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    if len + 12 > size {
        return Err(bad("footer length out of range".into()));
    }
    let meta = store.get_range(path, size - 8 - len..size - 8).await?;
    let md = crate::guard::decode(path, || ParquetMetaDataReader::decode_metadata(&meta))
        .map_err(bad)?
        .map_err(|e| bad(e.to_string()))?;
    seal_from_metadata(&md).map_err(|(_, why)| bad(why))
}

pub(crate) fn footer_value<'a>(md: &'a ParquetMetaData, key: &str) -> Option<&'a str> {
    md.file_metadata()
        .key_value_metadata()?
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_deref()
}

/// The seal in a batch's footer, or the problem code and why not.
pub(crate) fn seal_from_metadata(
    md: &ParquetMetaData,
) -> std::result::Result<Seal, (&'static str, String)> {
    match footer_value(md, SCHEMA_VERSION_KEY) {
        None => {
            return Err((
                "missing_seal",
                format!("footer has no {SCHEMA_VERSION_KEY}; not a gco batch"),
            ));
        }
        Some(v) if v != SCHEMA_VERSION.to_string() => {
            return Err((
                "wrong_schema",
                format!("schema version {v:?}; this gco reads version {SCHEMA_VERSION}"),
            ));
        }
        Some(_) => {}
    }
    let json =
        footer_value(md, SEAL_KEY).ok_or(("missing_seal", format!("footer has no {SEAL_KEY}")))?;
    let seal = Seal::from_json(json).map_err(|e| ("bad_seal", e.to_string()))?;
    if seal.schema_version != SCHEMA_VERSION {
        return Err((
            "bad_seal",
            format!(
                "seal schema_version {} differs from footer",
                seal.schema_version
            ),
        ));
    }
    Ok(seal)
}

impl Store {
    /// Uploads a sealed batch (create-only).
    pub async fn put_batch(&self, batch: &SealedBatch) -> Result<PutOutcome> {
        self.put_create(&batch.path, batch.bytes.clone()).await
    }
}
