//! The emissions rows schema (`emissions/period=P/version=V/rows/date=D/*.parquet`):
//! every column's name and type, in file order, declared once (as `gco_ledger::record`
//! does for ledger records). The rows writer and every reader use these names; a test
//! checks a written file against [`ROWS`]. Meanings: docs/pipeline.md.

/// Column names, in file order.
pub mod col {
    pub const NODE_ID: &str = "node_id";
    pub const SEQ: &str = "seq";
    pub const INFERENCE_ID: &str = "inference_id";
    pub const KIND: &str = "kind";
    pub const MODEL_ID: &str = "model_id";
    pub const MODEL_VERSION: &str = "model_version";
    pub const START: &str = "start";
    pub const END: &str = "end";
    pub const PROMPT_TOKENS: &str = "prompt_tokens";
    pub const COMPLETION_TOKENS: &str = "completion_tokens";
    pub const GPU_COUNT: &str = "gpu_count";
    pub const MEASUREMENT: &str = "measurement";
    pub const ZONE: &str = "zone";
    pub const SITE: &str = "site";
    pub const SCOPE: &str = "scope";
    pub const IT_ENERGY_MJ: &str = "it_energy_mj";
    pub const PUE_MILLI: &str = "pue_milli";
    pub const PUE_DEFAULT: &str = "pue_default";
    pub const FACILITY_ENERGY_MJ: &str = "facility_energy_mj";
    pub const INTENSITY_MG_PER_KWH: &str = "intensity_mg_per_kwh";
    pub const INTENSITY_BASIS: &str = "intensity_basis";
    pub const INTENSITY_SOURCE: &str = "intensity_source";
    pub const INTENSITY_FALLBACK_LEVEL: &str = "intensity_fallback_level";
    pub const INTENSITY_FIGURE_ZONE: &str = "intensity_figure_zone";
    pub const INTENSITY_DATA_TIME: &str = "intensity_data_time";
    pub const INTENSITY_DATA_PERIOD: &str = "intensity_data_period";
    pub const LOCATION_NG: &str = "location_ng";
    pub const MARGINAL_MG_PER_KWH: &str = "marginal_mg_per_kwh";
    pub const MARGINAL_SOURCE: &str = "marginal_source";
    pub const MARGINAL_NG: &str = "marginal_ng";
    pub const EMBODIED_NG: &str = "embodied_ng";
    pub const EMBODIED_SOURCE: &str = "embodied_source";
    pub const SCI_NG: &str = "sci_ng";
    pub const SCI_INTENSITY_SIGNAL: &str = "sci_intensity_signal";
    pub const SCI_NG_PER_1K_TOKENS: &str = "sci_ng_per_1k_tokens";
    pub const MARKET_NG: &str = "market_ng";
    pub const MARKET_COVERED_MJ: &str = "market_covered_mj";
    pub const MARKET_METHOD: &str = "market_method";
}

/// A column's type as readers see it (Arrow / Parquet logical type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// UTF-8 string (written as string views).
    Str,
    U32,
    U64,
    I64,
    Bool,
    /// Microseconds since the epoch, UTC.
    Time,
}

/// Every column of a rows file, in order: the first 35 from the chunk compute, the
/// last three added by the market-based allocation.
pub const ROWS: [(&str, Type); 38] = [
    (col::NODE_ID, Type::Str),
    (col::SEQ, Type::U64),
    (col::INFERENCE_ID, Type::Str),
    (col::KIND, Type::Str),
    (col::MODEL_ID, Type::Str),
    (col::MODEL_VERSION, Type::Str),
    (col::START, Type::Time),
    (col::END, Type::Time),
    (col::PROMPT_TOKENS, Type::U64),
    (col::COMPLETION_TOKENS, Type::U64),
    (col::GPU_COUNT, Type::U32),
    (col::MEASUREMENT, Type::Str),
    (col::ZONE, Type::Str),
    (col::SITE, Type::Str),
    (col::SCOPE, Type::Str),
    (col::IT_ENERGY_MJ, Type::I64),
    (col::PUE_MILLI, Type::I64),
    (col::PUE_DEFAULT, Type::Bool),
    (col::FACILITY_ENERGY_MJ, Type::I64),
    (col::INTENSITY_MG_PER_KWH, Type::I64),
    (col::INTENSITY_BASIS, Type::Str),
    (col::INTENSITY_SOURCE, Type::Str),
    (col::INTENSITY_FALLBACK_LEVEL, Type::Str),
    (col::INTENSITY_FIGURE_ZONE, Type::Str),
    (col::INTENSITY_DATA_TIME, Type::Time),
    (col::INTENSITY_DATA_PERIOD, Type::Str),
    (col::LOCATION_NG, Type::I64),
    (col::MARGINAL_MG_PER_KWH, Type::I64),
    (col::MARGINAL_SOURCE, Type::Str),
    (col::MARGINAL_NG, Type::I64),
    (col::EMBODIED_NG, Type::I64),
    (col::EMBODIED_SOURCE, Type::Str),
    (col::SCI_NG, Type::I64),
    (col::SCI_INTENSITY_SIGNAL, Type::Str),
    (col::SCI_NG_PER_1K_TOKENS, Type::I64),
    (col::MARKET_NG, Type::I64),
    (col::MARKET_COVERED_MJ, Type::I64),
    (col::MARKET_METHOD, Type::Str),
];

/// Column `at` of a batch read from the stored file `path`, as text; a file with fewer
/// columns or another type there is an error naming it, never a panic.
pub fn text_at<'a>(
    batch: &'a arrow_array::RecordBatch,
    at: usize,
    path: &str,
) -> crate::error::Result<&'a arrow_array::StringArray> {
    use crate::error::{Kind, OrFail};
    use arrow_array::cast::AsArray;
    batch
        .columns()
        .get(at)
        .and_then(|c| c.as_string_opt::<i32>())
        .or_else_fail(Kind::Inconsistent, || {
            format!("{path}: column {at} is not text")
        })
}

/// Column `name` of a batch read from the stored file `path`, as the primitive type
/// `T`; a missing column or one of another type is an error naming both.
pub fn primitive_named<'a, T: arrow_array::ArrowPrimitiveType>(
    batch: &'a arrow_array::RecordBatch,
    name: &str,
    path: &str,
) -> crate::error::Result<&'a arrow_array::PrimitiveArray<T>> {
    use crate::error::{Kind, OrFail};
    use arrow_array::cast::AsArray;
    let c = batch
        .column_by_name(name)
        .or_else_fail(Kind::Inconsistent, || {
            format!("{path} has no column {name}")
        })?;
    c.as_primitive_opt::<T>()
        .or_else_fail(Kind::Inconsistent, || {
            format!("{path}: column {name} is not {}", T::DATA_TYPE)
        })
}

/// Column `name` of a batch read from the stored file `path`, as text (see [`text_at`]).
pub fn text_named<'a>(
    batch: &'a arrow_array::RecordBatch,
    name: &str,
    path: &str,
) -> crate::error::Result<&'a arrow_array::StringArray> {
    use crate::error::{Kind, OrFail};
    use arrow_array::cast::AsArray;
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .or_else_fail(Kind::Inconsistent, || {
            format!("{path}: no text column {name}")
        })
}

#[cfg(test)]
mod column_tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch, StringArray};

    /// A stored certificates file whose columns are short or of another type is an
    /// error naming it (`certificate show`, `vc revoke` and the demo's sample read
    /// these), not a panic.
    #[test]
    fn text_columns_of_a_damaged_file_are_errors() {
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(StringArray::from(vec!["a"])) as _),
            ("document", Arc::new(Int64Array::from(vec![1])) as _),
        ])
        .unwrap();
        assert_eq!(super::text_at(&batch, 0, "f").unwrap().value(0), "a");
        let e = super::text_at(&batch, 1, "f").unwrap_err();
        assert_eq!(
            (e.to_string().as_str(), e.code()),
            ("f: column 1 is not text", "inconsistent")
        );
        let e = super::text_at(&batch, 6, "f").unwrap_err();
        assert_eq!(e.to_string(), "f: column 6 is not text");
        let e = super::text_named(&batch, "document", "f").unwrap_err();
        assert_eq!(e.to_string(), "f: no text column document");
    }
}
