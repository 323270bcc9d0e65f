//! Helpers the integration tests share.

use std::path::Path;

/// An inference id of a demo store's first day of 2026-10 that has per-inference
/// credentials: not the first row, so that a lookup must find a row in the middle of a
/// row group.
pub fn middle_inference_id(d: &Path) -> String {
    use arrow_array::cast::AsArray;
    let dir = d.join("certificates/period=2026-10/version=0001/inferences/date=2026-10-01");
    let bytes = std::fs::read(dir.join("part-00000.parquet")).unwrap();
    let mut r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes),
    )
    .unwrap()
    .build()
    .unwrap();
    let b = r.next().unwrap().unwrap();
    b.column(0)
        .as_string::<i32>()
        .value(b.num_rows() / 2 + 1)
        .to_string()
}
