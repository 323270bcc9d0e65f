//! The inference record: one row per inference, or per idle/overhead interval that no
//! inference claimed, and its Arrow schema (`docs/ledger-format.md`).

use std::sync::Arc;

use arrow_array::builder::{Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{
    Array, ArrayRef, Int64Array, ListArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::error::{LedgerError, Result};
use crate::time::Micros;

pub use crate::units::Millijoules;

/// What a row accounts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// Energy attributed to one inference.
    Inference,
    /// Energy measured on a GPU that no inference claimed (idle or overhead).
    Idle,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Inference => "inference",
            RecordKind::Idle => "idle",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inference" => Some(RecordKind::Inference),
            "idle" => Some(RecordKind::Idle),
            _ => None,
        }
    }
}

/// How the energy of a row was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measurement {
    /// Difference of the GPU's cumulative energy counter (NVML total energy).
    EnergyCounter,
    /// Power samples integrated over time.
    PowerIntegration,
    /// A simulated GPU (demo and tests).
    Simulated,
    /// Brought in from existing telemetry by `gco ledger import`.
    Imported,
}

impl Measurement {
    pub const ALL: [Measurement; 4] = [
        Measurement::EnergyCounter,
        Measurement::PowerIntegration,
        Measurement::Simulated,
        Measurement::Imported,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Measurement::EnergyCounter => "energy_counter",
            Measurement::PowerIntegration => "power_integration",
            Measurement::Simulated => "simulated",
            Measurement::Imported => "imported",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Per-node sequence number, contiguous from 0 across the node's whole chain.
    pub seq: u64,
    pub kind: RecordKind,
    /// Required for inference rows, absent for idle rows.
    pub inference_id: Option<String>,
    pub node_id: String,
    pub model_id: Option<String>,
    pub model_version: Option<String>,
    /// Start of the interval, UTC microseconds.
    pub start: Micros,
    /// End of the interval, UTC microseconds (>= start).
    pub end: Micros,
    pub energy: Millijoules,
    pub measurement: Measurement,
    /// GPU identifiers (UUIDs or indices) the energy was measured on.
    pub gpus: Vec<String>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

/// Column names, in schema order.
pub mod col {
    pub const SEQ: &str = "seq";
    pub const KIND: &str = "kind";
    pub const INFERENCE_ID: &str = "inference_id";
    pub const NODE_ID: &str = "node_id";
    pub const MODEL_ID: &str = "model_id";
    pub const MODEL_VERSION: &str = "model_version";
    pub const START: &str = "start";
    pub const END: &str = "end";
    pub const ENERGY_MJ: &str = "energy_mj";
    pub const MEASUREMENT: &str = "measurement";
    pub const GPUS: &str = "gpus";
    pub const PROMPT_TOKENS: &str = "prompt_tokens";
    pub const COMPLETION_TOKENS: &str = "completion_tokens";
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The Arrow schema of ledger schema version 1. Strings are plain UTF-8 (Parquet
/// dictionary-encodes them on disk), so every engine reads them as strings. Integers are signed 64-bit so that
/// engines without unsigned types (Spark, Trino) read them unchanged.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(col::SEQ, DataType::Int64, false),
        Field::new(col::KIND, DataType::Utf8, false),
        Field::new(col::INFERENCE_ID, DataType::Utf8, true),
        Field::new(col::NODE_ID, DataType::Utf8, false),
        Field::new(col::MODEL_ID, DataType::Utf8, true),
        Field::new(col::MODEL_VERSION, DataType::Utf8, true),
        Field::new(col::START, ts_type(), false),
        Field::new(col::END, ts_type(), false),
        Field::new(col::ENERGY_MJ, DataType::Int64, false),
        Field::new(col::MEASUREMENT, DataType::Utf8, false),
        Field::new(
            col::GPUS,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
            false,
        ),
        Field::new(col::PROMPT_TOKENS, DataType::Int64, true),
        Field::new(col::COMPLETION_TOKENS, DataType::Int64, true),
    ]))
}

/// Largest value accepted for integer columns stored as Int64.
fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| LedgerError::InvalidRecord(format!("{what} {v} exceeds 2^63-1")))
}

impl Record {
    /// Checks the invariants every stored record must satisfy.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.end < self.start {
            return Err(format!("end {} is before start {}", self.end, self.start));
        }
        if self.energy.0 < 0 {
            return Err(format!("negative energy {} mJ", self.energy.0));
        }
        match (self.kind, &self.inference_id) {
            (RecordKind::Inference, None) => {
                return Err("inference row without inference_id".into());
            }
            (RecordKind::Inference, Some(id)) if id.is_empty() => {
                return Err("empty inference_id".into());
            }
            (RecordKind::Idle, Some(_)) => return Err("idle row with an inference_id".into()),
            _ => {}
        }
        if self.seq > i64::MAX as u64 {
            return Err("sequence number exceeds 2^63-1".into());
        }
        for t in [self.prompt_tokens, self.completion_tokens]
            .into_iter()
            .flatten()
        {
            if t > i64::MAX as u64 {
                return Err("token count exceeds 2^63-1".into());
            }
        }
        Ok(())
    }
}

/// Builds the Arrow record batch for `records` in the order given.
pub fn to_record_batch(records: &[Record]) -> Result<RecordBatch> {
    let n = records.len();
    let mut seq = Int64Builder::with_capacity(n);
    let mut kind = StringBuilder::with_capacity(n, n * 8);
    let mut inference_id = StringBuilder::with_capacity(n, n * 24);
    let mut node_id = StringBuilder::with_capacity(n, n * 8);
    let mut model_id = StringBuilder::with_capacity(n, n * 8);
    let mut model_version = StringBuilder::with_capacity(n, n * 8);
    let mut start = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut end = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut energy = Int64Builder::with_capacity(n);
    let mut measurement = StringBuilder::with_capacity(n, n * 8);
    let mut gpus = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        false,
    )));
    let mut prompt = Int64Builder::with_capacity(n);
    let mut completion = Int64Builder::with_capacity(n);
    for r in records {
        seq.append_value(to_i64(r.seq, "seq")?);
        kind.append_value(r.kind.as_str());
        inference_id.append_option(r.inference_id.as_deref());
        node_id.append_value(&r.node_id);
        model_id.append_option(r.model_id.as_deref());
        model_version.append_option(r.model_version.as_deref());
        start.append_value(r.start);
        end.append_value(r.end);
        energy.append_value(r.energy.0);
        measurement.append_value(r.measurement.as_str());
        for g in &r.gpus {
            gpus.values().append_value(g);
        }
        gpus.append(true);
        prompt.append_option(
            r.prompt_tokens
                .map(|v| to_i64(v, "prompt_tokens"))
                .transpose()?,
        );
        completion.append_option(
            r.completion_tokens
                .map(|v| to_i64(v, "completion_tokens"))
                .transpose()?,
        );
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(seq.finish()),
        Arc::new(kind.finish()),
        Arc::new(inference_id.finish()),
        Arc::new(node_id.finish()),
        Arc::new(model_id.finish()),
        Arc::new(model_version.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(energy.finish()),
        Arc::new(measurement.finish()),
        Arc::new(gpus.finish()),
        Arc::new(prompt.finish()),
        Arc::new(completion.finish()),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// Typed views of a record batch's columns (ledger schema), for row access without copies.
pub struct Columns<'a> {
    seq: &'a Int64Array,
    kind: &'a StringArray,
    inference_id: &'a StringArray,
    node_id: &'a StringArray,
    model_id: &'a StringArray,
    model_version: &'a StringArray,
    start: &'a TimestampMicrosecondArray,
    end: &'a TimestampMicrosecondArray,
    energy: &'a Int64Array,
    measurement: &'a StringArray,
    gpus: &'a ListArray,
    gpu_values: &'a StringArray,
    prompt: &'a Int64Array,
    completion: &'a Int64Array,
}

fn opt_str(a: &StringArray, i: usize) -> Option<&str> {
    a.is_valid(i).then(|| a.value(i))
}

fn opt_i64(a: &Int64Array, i: usize) -> Option<i64> {
    a.is_valid(i).then(|| a.value(i))
}

impl<'a> Columns<'a> {
    /// Downcasts the columns of a batch in the ledger schema; `None` if a type differs.
    pub fn new(b: &'a RecordBatch) -> Option<Self> {
        if b.num_columns() != 13 {
            return None;
        }
        let s = |i: usize| b.column(i).as_string_opt::<i32>();
        let n = |i: usize| b.column(i).as_primitive_opt::<Int64Type>();
        let t = |i: usize| b.column(i).as_primitive_opt::<TimestampMicrosecondType>();
        let gpus = b.column(10).as_list_opt::<i32>()?;
        Some(Columns {
            seq: n(0)?,
            kind: s(1)?,
            inference_id: s(2)?,
            node_id: s(3)?,
            model_id: s(4)?,
            model_version: s(5)?,
            start: t(6)?,
            end: t(7)?,
            energy: n(8)?,
            measurement: s(9)?,
            gpus,
            gpu_values: gpus.values().as_string_opt::<i32>()?,
            prompt: n(11)?,
            completion: n(12)?,
        })
    }

    /// Nulls in columns the schema declares required (a well-formed file has none).
    pub fn required_nulls(&self) -> usize {
        [
            self.seq.null_count(),
            self.kind.null_count(),
            self.node_id.null_count(),
            self.start.null_count(),
            self.end.null_count(),
            self.energy.null_count(),
            self.measurement.null_count(),
            self.gpus.null_count(),
            self.gpu_values.null_count(),
        ]
        .iter()
        .sum()
    }

    /// Row `i` as canonical fields.
    pub fn fields(
        &self,
        i: usize,
    ) -> crate::hash::RecordFields<'a, impl ExactSizeIterator<Item = &'a str> + Clone + use<'a>>
    {
        let offsets = self.gpus.value_offsets();
        let values = self.gpu_values;
        crate::hash::RecordFields {
            seq: self.seq.value(i),
            kind: self.kind.value(i),
            inference_id: opt_str(self.inference_id, i),
            node_id: self.node_id.value(i),
            model_id: opt_str(self.model_id, i),
            model_version: opt_str(self.model_version, i),
            start: self.start.value(i),
            end: self.end.value(i),
            energy_mj: self.energy.value(i),
            measurement: self.measurement.value(i),
            gpus: (offsets[i]..offsets[i + 1]).map(move |j| values.value(j as usize)),
            prompt_tokens: opt_i64(self.prompt, i),
            completion_tokens: opt_i64(self.completion, i),
        }
    }

    /// Row `i` as an owned record; `None` if its kind or measurement is unknown.
    pub fn record(&self, i: usize) -> Option<Record> {
        let f = self.fields(i);
        Some(Record {
            seq: u64::try_from(f.seq).ok()?,
            kind: RecordKind::parse(f.kind)?,
            inference_id: f.inference_id.map(str::to_string),
            node_id: f.node_id.to_string(),
            model_id: f.model_id.map(str::to_string),
            model_version: f.model_version.map(str::to_string),
            start: f.start,
            end: f.end,
            energy: Millijoules(f.energy_mj),
            measurement: Measurement::parse(f.measurement)?,
            gpus: f.gpus.map(str::to_string).collect(),
            prompt_tokens: f.prompt_tokens.and_then(|v| u64::try_from(v).ok()),
            completion_tokens: f.completion_tokens.and_then(|v| u64::try_from(v).ok()),
        })
    }
}

impl Record {
    /// The borrowed canonical view of this record.
    pub fn fields(&self) -> crate::hash::RecordFields<'_, impl ExactSizeIterator<Item = &str>> {
        crate::hash::RecordFields {
            seq: self.seq as i64,
            kind: self.kind.as_str(),
            inference_id: self.inference_id.as_deref(),
            node_id: &self.node_id,
            model_id: self.model_id.as_deref(),
            model_version: self.model_version.as_deref(),
            start: self.start,
            end: self.end,
            energy_mj: self.energy.0,
            measurement: self.measurement.as_str(),
            gpus: self.gpus.iter().map(String::as_str),
            prompt_tokens: self.prompt_tokens.map(|v| v as i64),
            completion_tokens: self.completion_tokens.map(|v| v as i64),
        }
    }

    /// The canonical bytes of this record (without the leaf prefix).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut enc = crate::hash::Encoder::default();
        self.fields().encode(&mut enc);
        enc.buf
    }

    /// This record's Merkle leaf hash.
    pub fn leaf_hash(&self) -> crate::hash::Hash32 {
        self.fields()
            .leaf_hash(&mut crate::hash::Encoder::default())
    }
}
