//! Helpers the integration tests share (each test file uses some of them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;

/// The per-inference credential files of the demo's 2026-10 version 1, by day.
pub fn inference_files(d: &Path) -> Vec<PathBuf> {
    let root = d.join("certificates/period=2026-10/version=0001/inferences");
    let mut days: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path().join("part-00000.parquet"))
        .collect();
    days.sort();
    days
}

/// Every row of a Parquet file.
pub fn batches(file: &Path) -> Vec<RecordBatch> {
    let bytes = bytes::Bytes::from(std::fs::read(file).unwrap());
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// (inference id, format, document) of every per-inference credential of the demo's
/// 2026-10 version 1, in file and row order.
pub fn inference_credentials(d: &Path) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for b in inference_files(d).iter().flat_map(|f| batches(f)) {
        let (k, f, doc) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
            b.column(6).as_string::<i32>(),
        );
        out.extend((0..b.num_rows()).map(|i| {
            (
                k.value(i).to_string(),
                f.value(i).to_string(),
                doc.value(i).to_string(),
            )
        }));
    }
    out
}

/// An inference id of the demo's first day of 2026-10 that has per-inference
/// credentials: not the first row, so that a lookup must find a row in the middle of a
/// row group.
pub fn middle_inference_id(d: &Path) -> String {
    let b = &batches(&inference_files(d)[0])[0];
    b.column(0)
        .as_string::<i32>()
        .value(b.num_rows() / 2 + 1)
        .to_string()
}
