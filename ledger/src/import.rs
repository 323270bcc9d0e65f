//! `gco ledger import`: existing telemetry (CSV, JSON Lines, Parquet) into records.
//!
//! Every input row is either accepted as a [`Record`] or quarantined with its reasons;
//! `rows = accepted + quarantined` always holds. Imported rows are stored with
//! measurement `imported`: gco did not measure them, and says so.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatchReader};
use arrow_schema::{DataType, TimeUnit};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{LedgerError, Result};
use crate::record::{Measurement, Millijoules, Record, RecordKind};
use crate::time::{MICROS_PER_SECOND, Micros, format_utc, parse_utc};
use crate::unique::RowKey;

/// Columns an input may have. `node_id`, when present, must equal the target node.
pub const KNOWN_FIELDS: [&str; 11] = [
    "inference_id",
    "kind",
    "node_id",
    "model_id",
    "model_version",
    "start",
    "end",
    "energy_mj",
    "gpus",
    "prompt_tokens",
    "completion_tokens",
];

/// Longest inference id, model id or model version accepted, in bytes.
pub const MAX_TEXT_BYTES: usize = 256;
/// Longest GPU id accepted, in bytes.
pub const MAX_GPU_ID_BYTES: usize = 64;
/// Most GPUs one row may list.
pub const MAX_GPUS: usize = 64;

/// Why an id or name is refused: too long, empty, or with control characters.
fn text_refusal(v: &str, max: usize) -> Option<String> {
    if v.len() > max {
        Some(format!("is {} bytes long, more than {max}", v.len()))
    } else if v.trim().is_empty() {
        Some("is empty".into())
    } else if v.chars().any(char::is_control) {
        Some("contains control characters".into())
    } else {
        None
    }
}

/// Plausibility bounds, with the as-of time passed in.
#[derive(Debug, Clone)]
pub struct ImportPolicy {
    /// The import's as-of time; rows ending after `now + max_future` are refused.
    pub now: Micros,
    pub max_future: Micros,
    /// Earliest plausible start.
    pub earliest: Micros,
    /// Highest plausible average power per GPU, in watts.
    pub max_gpu_watts: i64,
}

impl ImportPolicy {
    pub fn new(now: Micros) -> Self {
        ImportPolicy {
            now,
            max_future: 300 * MICROS_PER_SECOND,
            earliest: 1_262_304_000 * MICROS_PER_SECOND, // 2010-01-01T00:00:00Z
            max_gpu_watts: 2000,
        }
    }
}

/// A refused input row.
#[derive(Debug, Clone, Serialize)]
pub struct Quarantined {
    /// Where the row is in the input: its 1-based line in a CSV (the header is line
    /// 1) or JSON Lines file, its 1-based row in a Parquet file.
    pub row: u64,
    pub reasons: Vec<String>,
    /// The row as read.
    pub input: Value,
}

/// What an import read.
#[derive(Debug, Default)]
pub struct ImportOutcome {
    pub rows: u64,
    /// Accepted records in input order, `seq` not yet assigned.
    pub accepted: Vec<Record>,
    pub quarantined: Vec<Quarantined>,
}

/// Reads `path` (format from its extension) and sorts every row into accepted or
/// quarantined. `existing` are the keys of the rows the node already has in the
/// ledger ([`existing_keys`]): a row with one of them (an inference id, or an idle
/// interval of the same GPUs) is quarantined, as is a repeat within the file.
pub fn import_file(
    path: &Path,
    node_id: &str,
    policy: &ImportPolicy,
    existing: &HashSet<RowKey>,
) -> Result<ImportOutcome> {
    let bytes = std::fs::read(path).map_err(|e| LedgerError::io(path, e))?;
    import_bytes(path, bytes::Bytes::from(bytes), node_id, policy, existing)
}

/// [`import_file`] of a file's contents already read: `path` names it (in messages)
/// and its extension says the format. Never panics on any bytes (fuzzed).
pub fn import_bytes(
    path: &Path,
    bytes: bytes::Bytes,
    node_id: &str,
    policy: &ImportPolicy,
    existing: &HashSet<RowKey>,
) -> Result<ImportOutcome> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let rows: Vec<(u64, RawRow)> = match ext.as_str() {
        "csv" => read_csv(path, &bytes)?,
        "jsonl" | "ndjson" => read_jsonl(path, &bytes)?,
        "parquet" => read_parquet(path, bytes)?,
        _ => {
            return Err(LedgerError::Input(format!(
                "{}: unknown input format {ext:?}; use .csv, .jsonl or .parquet",
                path.display()
            )));
        }
    };
    let mut out = ImportOutcome::default();
    let mut seen: HashMap<RowKey, u64> = HashMap::new();
    for (n, row) in rows {
        out.rows += 1;
        let map = match row {
            Ok(m) => m,
            Err((input, reason)) => {
                out.quarantined.push(Quarantined {
                    row: n,
                    reasons: vec![reason],
                    input,
                });
                continue;
            }
        };
        match to_record(&map, node_id, policy) {
            Ok(rec) => {
                let key = RowKey::of(
                    rec.kind.as_str(),
                    node_id,
                    rec.inference_id.as_deref(),
                    rec.gpus.iter().map(String::as_str),
                    rec.start,
                    rec.end,
                );
                let what = match &rec.inference_id {
                    Some(id) => format!("inference_id {id:?}"),
                    None => format!(
                        "the idle interval {} .. {} of GPUs {:?}",
                        format_utc(rec.start),
                        format_utc(rec.end),
                        rec.gpus
                    ),
                };
                let refused = if existing.contains(&key) {
                    Some(format!(
                        "{what} is already in the ledger for node {node_id}"
                    ))
                } else {
                    seen.get(&key)
                        .map(|first| format!("duplicate {what}, first seen at line {first}"))
                };
                if let Some(reason) = refused {
                    out.quarantined.push(Quarantined {
                        row: n,
                        reasons: vec![reason],
                        input: Value::Object(map),
                    });
                    continue;
                }
                seen.insert(key, n);
                out.accepted.push(rec);
            }
            Err(reasons) => out.quarantined.push(Quarantined {
                row: n,
                reasons,
                input: Value::Object(map),
            }),
        }
    }
    Ok(out)
}

fn check_columns(path: &Path, columns: &[String]) -> Result<()> {
    let mut seen = HashSet::new();
    if let Some(dup) = columns.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(LedgerError::Input(format!(
            "{}: column {dup:?} appears twice; which one holds the value is ambiguous",
            path.display()
        )));
    }
    let unknown: Vec<&String> = columns
        .iter()
        .filter(|c| !KNOWN_FIELDS.contains(&c.as_str()))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(LedgerError::Input(format!(
            "{}: unknown column(s) {unknown:?}; import reads {KNOWN_FIELDS:?}",
            path.display()
        )))
    }
}

type RawRow = std::result::Result<Map<String, Value>, (Value, String)>;

fn read_csv(path: &Path, bytes: &[u8]) -> Result<Vec<(u64, RawRow)>> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| LedgerError::Input(format!("{}: cannot read header: {e}", path.display())))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    check_columns(path, &headers)?;
    let mut out = Vec::new();
    let mut last_line = 1;
    for rec in rdr.records() {
        // The line the record starts on (a quoted field may span lines).
        let line = match &rec {
            Ok(r) => r.position().map_or(last_line + 1, |p| p.line()),
            Err(e) => e.position().map_or(last_line + 1, |p| p.line()),
        };
        last_line = line;
        out.push((
            line,
            match rec {
                Err(e) => Err((Value::Null, format!("unreadable CSV row: {e}"))),
                Ok(r) if r.len() != headers.len() => Err((
                    Value::Array(r.iter().map(|f| Value::String(f.to_string())).collect()),
                    format!("{} fields, header has {}", r.len(), headers.len()),
                )),
                Ok(r) => Ok(headers
                    .iter()
                    .zip(r.iter())
                    .map(|(h, v)| {
                        (
                            h.clone(),
                            if v.is_empty() {
                                Value::Null
                            } else {
                                Value::String(v.to_string())
                            },
                        )
                    })
                    .collect()),
            },
        ));
    }
    Ok(out)
}

fn read_jsonl(path: &Path, bytes: &[u8]) -> Result<Vec<(u64, RawRow)>> {
    let mut out = Vec::new();
    let mut columns = HashSet::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i as u64 + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // A line that is not UTF-8 is quarantined alone; the rest of the file is read.
        let Ok(text) = std::str::from_utf8(raw) else {
            out.push((
                line,
                Err((
                    Value::String(String::from_utf8_lossy(raw).into_owned()),
                    "line is not valid UTF-8".to_string(),
                )),
            ));
            continue;
        };
        out.push((
            line,
            match serde_json::from_str::<StrictObject>(text) {
                Ok(StrictObject(Some(m))) => {
                    columns.extend(m.keys().cloned());
                    Ok(m)
                }
                Ok(StrictObject(None)) => Err((
                    serde_json::from_str(text).unwrap_or(Value::Null),
                    "line is not a JSON object".to_string(),
                )),
                Err(e) => Err((
                    Value::String(text.to_string()),
                    format!("invalid JSON: {e}"),
                )),
            },
        ));
    }
    let mut columns: Vec<String> = columns.into_iter().collect();
    columns.sort();
    check_columns(path, &columns)?;
    Ok(out)
}

/// A JSON value that must be an object without repeated keys (`None` for any other
/// value); serde_json alone keeps the last of two equal keys without a word.
struct StrictObject(Option<Map<String, Value>>);

impl<'de> serde::Deserialize<'de> for StrictObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StrictObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<StrictObject, A::Error> {
                let mut m = Map::new();
                while let Some(k) = a.next_key::<String>()? {
                    if m.contains_key(&k) {
                        return Err(serde::de::Error::custom(format!(
                            "key {k:?} appears twice in the object"
                        )));
                    }
                    let v: Value = a.next_value()?;
                    m.insert(k, v);
                }
                Ok(StrictObject(Some(m)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<StrictObject, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(StrictObject(None))
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<StrictObject, E> {
                Ok(StrictObject(None))
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<StrictObject, E> {
                Ok(StrictObject(None))
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<StrictObject, E> {
                Ok(StrictObject(None))
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<StrictObject, E> {
                Ok(StrictObject(None))
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<StrictObject, E> {
                Ok(StrictObject(None))
            }
            fn visit_unit<E>(self) -> std::result::Result<StrictObject, E> {
                Ok(StrictObject(None))
            }
        }
        d.deserialize_any(V)
    }
}

fn read_parquet(path: &Path, file: bytes::Bytes) -> Result<Vec<(u64, RawRow)>> {
    crate::guard::decode(&path.display().to_string(), || {
        read_parquet_unguarded(path, file)
    })
    .map_err(LedgerError::Input)?
}

fn read_parquet_unguarded(path: &Path, file: bytes::Bytes) -> Result<Vec<(u64, RawRow)>> {
    let pq = |source| LedgerError::Parquet {
        path: path.display().to_string(),
        source,
    };
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(pq)?
        .build()
        .map_err(pq)?;
    let columns: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    check_columns(path, &columns)?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        let cols: Vec<(String, Vec<Value>)> = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, a)| Ok((f.name().clone(), json_values(path, f.name(), a)?)))
            .collect::<Result<_>>()?;
        for i in 0..batch.num_rows() {
            let row = out.len() as u64 + 1;
            out.push((
                row,
                Ok(cols
                    .iter()
                    .map(|(name, vals)| (name.clone(), vals[i].clone()))
                    .collect()),
            ));
        }
    }
    Ok(out)
}

/// Converts a Parquet/Arrow column into JSON values so that all formats share one
/// validation path. Timestamps become RFC 3339 strings; a timestamp without a time zone
/// keeps no offset and is quarantined as ambiguous.
fn json_values(path: &Path, name: &str, a: &ArrayRef) -> Result<Vec<Value>> {
    let n = a.len();
    let mut out = Vec::with_capacity(n);
    let unsupported = || {
        LedgerError::Input(format!(
            "{}: column {name} has type {} which import does not read",
            path.display(),
            a.data_type()
        ))
    };
    let casted;
    let a: &ArrayRef = match a.data_type() {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => {
            casted = arrow_cast_i64(a).ok_or_else(unsupported)?;
            &casted
        }
        _ => a,
    };
    for i in 0..n {
        if a.is_null(i) {
            out.push(Value::Null);
            continue;
        }
        out.push(match a.data_type() {
            DataType::Utf8 => Value::String(a.as_string::<i32>().value(i).to_string()),
            DataType::LargeUtf8 => Value::String(a.as_string::<i64>().value(i).to_string()),
            DataType::Utf8View => Value::String(a.as_string_view().value(i).to_string()),
            DataType::Int64 => {
                Value::from(a.as_primitive::<arrow_array::types::Int64Type>().value(i))
            }
            DataType::Float32 | DataType::Float64 => {
                let v = if let Some(f) = a.as_primitive_opt::<arrow_array::types::Float64Type>() {
                    f.value(i)
                } else {
                    a.as_primitive::<arrow_array::types::Float32Type>().value(i) as f64
                };
                serde_json::Number::from_f64(v)
                    .map(Value::Number)
                    .unwrap_or(Value::String(v.to_string()))
            }
            DataType::Timestamp(unit, tz) => {
                let raw = match unit {
                    TimeUnit::Second => a
                        .as_primitive::<arrow_array::types::TimestampSecondType>()
                        .value(i)
                        .checked_mul(MICROS_PER_SECOND),
                    TimeUnit::Millisecond => a
                        .as_primitive::<arrow_array::types::TimestampMillisecondType>()
                        .value(i)
                        .checked_mul(1000),
                    TimeUnit::Microsecond => Some(
                        a.as_primitive::<arrow_array::types::TimestampMicrosecondType>()
                            .value(i),
                    ),
                    TimeUnit::Nanosecond => Some(
                        a.as_primitive::<arrow_array::types::TimestampNanosecondType>()
                            .value(i)
                            .div_euclid(1000),
                    ),
                };
                match (raw, tz) {
                    (Some(us), Some(_)) => Value::String(format_utc(us)),
                    (Some(us), None) => {
                        Value::String(format_utc(us).trim_end_matches('Z').to_string())
                    }
                    (None, _) => Value::String("<timestamp out of range>".into()),
                }
            }
            DataType::List(_) | DataType::LargeList(_) => {
                let values = if let Some(l) = a.as_list_opt::<i32>() {
                    l.value(i)
                } else {
                    a.as_list::<i64>().value(i)
                };
                Value::Array(json_values(path, name, &values)?)
            }
            _ => return Err(unsupported()),
        });
    }
    Ok(out)
}

fn arrow_cast_i64(a: &ArrayRef) -> Option<ArrayRef> {
    use arrow_array::types::*;
    let v: Vec<Option<i64>> = match a.data_type() {
        DataType::Int8 => a
            .as_primitive::<Int8Type>()
            .iter()
            .map(|x| x.map(i64::from))
            .collect(),
        DataType::Int16 => a
            .as_primitive::<Int16Type>()
            .iter()
            .map(|x| x.map(i64::from))
            .collect(),
        DataType::Int32 => a
            .as_primitive::<Int32Type>()
            .iter()
            .map(|x| x.map(i64::from))
            .collect(),
        DataType::UInt8 => a
            .as_primitive::<UInt8Type>()
            .iter()
            .map(|x| x.map(i64::from))
            .collect(),
        DataType::UInt16 => a
            .as_primitive::<UInt16Type>()
            .iter()
            .map(|x| x.map(i64::from))
            .collect(),
        DataType::UInt32 => a
            .as_primitive::<UInt32Type>()
            .iter()
            .map(|x| x.map(i64::from))
            .collect(),
        DataType::UInt64 => {
            // Values above 2^63-1 cannot be ledger integers; mark them so validation refuses them.
            a.as_primitive::<UInt64Type>()
                .iter()
                .map(|x| x.map(|u| i64::try_from(u).unwrap_or(-1)))
                .collect()
        }
        _ => return None,
    };
    Some(std::sync::Arc::new(arrow_array::Int64Array::from(v)))
}

fn get_str<'a>(m: &'a Map<String, Value>, k: &str, errs: &mut Vec<String>) -> Option<&'a str> {
    match m.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => {
            errs.push(format!("{k} must be a string, found {}", type_name(other)));
            None
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn get_int(m: &Map<String, Value>, k: &str, unit: &str, errs: &mut Vec<String>) -> Option<i64> {
    let v = m.get(k)?;
    let parsed = match v {
        Value::Null => return None,
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("{k} must be an integer{unit}, found {n}")),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("{k} must be an integer{unit}, found {s:?}")),
        other => Err(format!(
            "{k} must be an integer{unit}, found {}",
            type_name(other)
        )),
    };
    match parsed {
        Ok(v) => Some(v),
        Err(e) => {
            errs.push(e);
            None
        }
    }
}

fn get_time(m: &Map<String, Value>, k: &str, errs: &mut Vec<String>) -> Option<Micros> {
    let s = get_str(m, k, errs);
    match s {
        None => {
            if m.get(k).is_none_or(|v| v.is_null()) {
                errs.push(format!("{k} is missing"));
            }
            None
        }
        Some(s) => match parse_utc(s) {
            Ok(t) => Some(t),
            Err(e) => {
                errs.push(format!("{k}: {e}"));
                None
            }
        },
    }
}

fn to_record(
    m: &Map<String, Value>,
    node_id: &str,
    p: &ImportPolicy,
) -> std::result::Result<Record, Vec<String>> {
    let mut errs = Vec::new();
    let kind = match get_str(m, "kind", &mut errs) {
        None => RecordKind::Inference,
        Some(k) => RecordKind::parse(k).unwrap_or_else(|| {
            errs.push(format!("kind {k:?} is neither \"inference\" nor \"idle\""));
            RecordKind::Inference
        }),
    };
    if let Some(n) = get_str(m, "node_id", &mut errs)
        && n != node_id
    {
        errs.push(format!(
            "node_id {n:?} differs from the import's node {node_id:?}"
        ));
    }
    let inference_id = get_str(m, "inference_id", &mut errs).map(str::to_string);
    match (kind, &inference_id) {
        (RecordKind::Inference, None) => errs.push("inference_id is missing".into()),
        (RecordKind::Idle, Some(_)) => errs.push("idle rows carry no inference_id".into()),
        _ => {}
    }
    let model_id = get_str(m, "model_id", &mut errs).map(str::to_string);
    if kind == RecordKind::Inference
        && model_id.is_none()
        && !errs.iter().any(|e| e.starts_with("model_id"))
    {
        errs.push("model_id is missing".into());
    }
    let model_version = get_str(m, "model_version", &mut errs).map(str::to_string);
    let start = get_time(m, "start", &mut errs);
    let end = get_time(m, "end", &mut errs);
    let energy = get_int(m, "energy_mj", " number of millijoules", &mut errs);
    if energy.is_none() && m.get("energy_mj").is_none_or(|v| v.is_null()) {
        errs.push("energy_mj is missing".into());
    }
    let gpus: Vec<String> = match m.get("gpus") {
        None | Some(Value::Null) => {
            errs.push("gpus is missing (list the GPU ids, e.g. \"0;1\")".into());
            vec![]
        }
        Some(Value::String(s)) => s
            .split([';', ','])
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty())
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|g| match g {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                other => {
                    errs.push(format!(
                        "gpus entries must be strings, found {}",
                        type_name(other)
                    ));
                    None
                }
            })
            .collect(),
        Some(other) => {
            errs.push(format!(
                "gpus must be a list or a ';'-separated string, found {}",
                type_name(other)
            ));
            vec![]
        }
    };
    if m.get("gpus").is_some_and(|g| !g.is_null()) && gpus.is_empty() {
        errs.push(
            "gpus is empty (list the GPU ids the energy was measured on, e.g. \"0;1\")".into(),
        );
    }
    if gpus.len() > MAX_GPUS {
        errs.push(format!("{} GPUs listed, more than {MAX_GPUS}", gpus.len()));
    }
    for (k, v) in [
        ("inference_id", inference_id.as_deref()),
        ("model_id", model_id.as_deref()),
        ("model_version", model_version.as_deref()),
    ] {
        if let Some(why) = v.and_then(|v| text_refusal(v, MAX_TEXT_BYTES)) {
            errs.push(format!("{k} {why}"));
        }
    }
    if let Some(why) = gpus.iter().find_map(|g| text_refusal(g, MAX_GPU_ID_BYTES)) {
        errs.push(format!("a GPU id {why}"));
    }
    let prompt = get_int(m, "prompt_tokens", "", &mut errs);
    let completion = get_int(m, "completion_tokens", "", &mut errs);
    for (k, v) in [("prompt_tokens", prompt), ("completion_tokens", completion)] {
        if v.is_some_and(|v| v < 0) {
            errs.push(format!("{k} is negative"));
        }
    }
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            errs.push(format!(
                "end {} is before start {}",
                format_utc(e),
                format_utc(s)
            ));
        }
        if s < p.earliest {
            errs.push(format!(
                "start {} is before {}, not plausible",
                format_utc(s),
                format_utc(p.earliest)
            ));
        }
        if e > p.now.saturating_add(p.max_future) {
            errs.push(format!(
                "end {} is in the future (as-of {})",
                format_utc(e),
                format_utc(p.now)
            ));
        }
        if let Some(mj) = energy {
            if mj < 0 {
                errs.push(format!("energy_mj {mj} is negative"));
            } else if e >= s {
                // mJ = W * ms; bound = watts * GPUs * duration_us / 1000, in i128 (no
                // overflow). Applied whatever the GPU list says: an empty list is refused
                // above and counts as one GPU here.
                let span = i128::from(e) - i128::from(s);
                let n = gpus.len().max(1) as i128;
                let bound = i128::from(p.max_gpu_watts) * n * span / 1000;
                if i128::from(mj) > bound {
                    let secs = span as f64 / 1e6;
                    errs.push(format!(
                        "energy_mj {mj} over {secs} s on {} GPU(s) exceeds the plausible {} W per GPU",
                        gpus.len(),
                        p.max_gpu_watts
                    ));
                }
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    // Every Option below is Some when errs is empty.
    match (start, end, energy) {
        (Some(start), Some(end), Some(mj)) => Ok(Record {
            seq: 0,
            kind,
            inference_id,
            node_id: node_id.to_string(),
            model_id,
            model_version,
            start,
            end,
            energy: Millijoules(mj),
            measurement: Measurement::Imported,
            gpus,
            prompt_tokens: prompt.map(|v| v as u64),
            completion_tokens: completion.map(|v| v as u64),
        }),
        _ => Err(vec!["incomplete row".into()]),
    }
}

/// The uniqueness keys of every row `node_id` already has in the ledger (inference ids
/// and idle intervals, [`RowKey`]). Read under the node's lease, so that no other
/// writer adds rows before the import's own are sealed.
pub async fn existing_keys(store: &crate::store::Store, node_id: &str) -> Result<HashSet<RowKey>> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let mut keys = HashSet::new();
    for meta in store.list(crate::layout::RECORDS).await? {
        let path = meta.location.to_string();
        if crate::store::parse_batch_path(&path).is_none_or(|l| l.node_id != node_id) {
            continue;
        }
        let pq = |source| LedgerError::Parquet {
            path: path.clone(),
            source,
        };
        let bytes = store.get(&path).await?;
        let read = || -> Result<()> {
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .map_err(pq)?
                .build()
                .map_err(pq)?;
            for batch in reader {
                let batch = batch?;
                let cols = crate::record::Columns::new(&batch).ok_or_else(|| {
                    LedgerError::Input(format!(
                        "{path}: not in the ledger schema; run `gco ledger verify`"
                    ))
                })?;
                for i in 0..batch.num_rows() {
                    let f = cols.fields(i);
                    keys.insert(RowKey::of(
                        f.kind,
                        f.node_id,
                        f.inference_id,
                        f.gpus,
                        f.start,
                        f.end,
                    ));
                }
            }
            Ok(())
        };
        crate::guard::decode(&path, read).map_err(LedgerError::Input)??;
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{Int32Array, RecordBatch, StringArray, TimestampMillisecondArray};
    use arrow_schema::{Field, Schema};
    use std::sync::Arc;

    /// Writes a Parquet input with typed columns: timestamps in ms, 32-bit energies,
    /// a list of GPUs; `end` carries the zone `end_tz`.
    fn parquet_input(dir: &Path, end_tz: Option<&str>) -> std::path::PathBuf {
        let t = parse_utc("2026-10-05T10:00:00Z").unwrap() / 1000;
        let mut gpus = ListBuilder::new(StringBuilder::new());
        for g in [&["0"][..], &["0", "1"], &["2"]] {
            for x in g {
                gpus.values().append_value(x);
            }
            gpus.append(true);
        }
        let ts = |tz: Option<&str>| DataType::Timestamp(TimeUnit::Millisecond, tz.map(Into::into));
        let schema = Arc::new(Schema::new(vec![
            Field::new("inference_id", DataType::Utf8, false),
            Field::new("model_id", DataType::Utf8, false),
            Field::new("start", ts(Some("UTC")), false),
            Field::new("end", ts(end_tz), false),
            Field::new("energy_mj", DataType::Int32, false),
            Field::new(
                "gpus",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                false,
            ),
        ]));
        let mut end = TimestampMillisecondArray::from(vec![t + 1500, t + 2000, t + 1000]);
        if let Some(tz) = end_tz {
            end = end.with_timezone(tz);
        }
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["p-1", "p-2", "p-3"])),
                Arc::new(StringArray::from(vec!["m", "m", "m"])),
                Arc::new(TimestampMillisecondArray::from(vec![t, t, t]).with_timezone("UTC")),
                Arc::new(end),
                Arc::new(Int32Array::from(vec![400_000, 900_000, 5_000_000])),
                Arc::new(gpus.finish()),
            ],
        )
        .unwrap();
        let path = dir.join(format!("in-{}.parquet", end_tz.is_some()));
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            schema,
            None,
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        path
    }

    #[test]
    fn parquet_input_with_typed_columns() {
        let dir = tempfile::tempdir().unwrap();
        let policy = ImportPolicy::new(parse_utc("2026-11-01").unwrap());
        let out = import_file(
            &parquet_input(dir.path(), Some("UTC")),
            "n1",
            &policy,
            &HashSet::new(),
        )
        .unwrap();
        assert_eq!(
            (out.rows, out.accepted.len(), out.quarantined.len()),
            (3, 2, 1)
        );
        let r = &out.accepted[1];
        assert_eq!(r.inference_id.as_deref(), Some("p-2"));
        assert_eq!(r.end - r.start, 2_000_000);
        assert_eq!(r.energy, Millijoules(900_000));
        assert_eq!(r.gpus, vec!["0".to_string(), "1".to_string()]);
        assert_eq!(r.measurement, Measurement::Imported);
        // 5 J in 1 s on one GPU is 5 kW.
        assert_eq!(out.quarantined[0].row, 3);
        assert!(out.quarantined[0].reasons[0].contains("exceeds the plausible 2000 W per GPU"));

        // A timestamp column without a zone is ambiguous: every row is quarantined.
        let out = import_file(
            &parquet_input(dir.path(), None),
            "n1",
            &policy,
            &HashSet::new(),
        )
        .unwrap();
        assert_eq!(out.accepted.len(), 0);
        assert!(
            out.quarantined
                .iter()
                .all(|q| q.reasons[0].starts_with("end: \"2026-10-05T10:00:0"))
        );
    }
}
