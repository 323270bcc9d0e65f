//! The report crate's error type: a kind ([`Kind`], shared by gco's libraries) with a
//! stable code, a message that says what failed and where, and the error underneath
//! as its `source` (docs/errors.md).

gco_error::errors! {
    /// Errors raised by the report crate.
    pub enum ReportError {
        Pipeline(e: gco_pipelines::PipelineError) => e.code(),
        Ledger(e: gco_ledger::LedgerError) => e.code(),
        Credentials(e: gco_credentials::Error) => e.code(),
        Config(e: gco_config::ConfigError) => e.code(),
        Pdf(e: gco_pdf::PdfError) => e.code(),
        Arrow(e: arrow_schema::ArrowError) => "parquet",
        Parquet(e: parquet::errors::ParquetError) => "parquet",
        Csv(e: csv::Error) => "csv",
        Zip(e: zip::result::ZipError) => "zip",
        Json(e: serde_json::Error) => "json",
        Io(e: std::io::Error) => "io",
        Utf8(e: std::str::Utf8Error) => "malformed",
    }
}

/// A CSV writer's buffer that could not be flushed: its I/O error.
impl<W> From<csv::IntoInnerError<W>> for ReportError {
    fn from(e: csv::IntoInnerError<W>) -> Self {
        ReportError::from(e.into_error())
    }
}
