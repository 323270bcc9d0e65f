//! The pipelines' error type. Every failure has a kind ([`Kind`], shared by gco's
//! libraries) with a stable code (what a script keys on), a message that says what
//! failed and where, and the error it came from as its `source`, so the binary prints
//! the whole chain ("caused by: ..."). Codes: docs/errors.md.

gco_error::errors! {
    /// Errors raised by the pipelines crate.
    pub enum PipelineError {
        Ledger(e: gco_ledger::LedgerError) => e.code(),
        Grid(e: gco_grid_data::GridError) => e.code(),
        Credentials(e: gco_credentials::Error) => e.code(),
        Config(e: gco_config::ConfigError) => e.code(),
        Document(e: crate::document::DocumentError) => e.code(),
        Polars(e: polars::error::PolarsError) => "dataframe",
        Parquet(e: parquet::errors::ParquetError) => "parquet",
        Arrow(e: arrow_schema::ArrowError) => "parquet",
        Json(e: serde_json::Error) => "json",
        Io(e: std::io::Error) => "io",
        Utf8(e: std::string::FromUtf8Error) => "malformed",
        Time(e: chrono::ParseError) => "malformed",
        Number(e: std::num::ParseIntError) => "malformed",
        Task(e: tokio::task::JoinError) => "internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_keeps_the_code_and_the_chain_of_its_source() {
        let inner: Result<()> = Err(PipelineError::new(Kind::Overflow, "1e30 mJ"));
        let e = inner.context("reading the month").unwrap_err();
        assert_eq!(e.code(), "overflow");
        assert_eq!(e.kind(), Some(Kind::Overflow));
        assert_eq!(e.to_string(), "reading the month");
        let source = std::error::Error::source(&e).map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("1e30 mJ"));
        let none: Option<u8> = None;
        let e = none.or_fail(Kind::NotFound, "no run").unwrap_err();
        assert_eq!((e.code(), e.to_string().as_str()), ("not_found", "no run"));
        let io = std::fs::read("/nonexistent/gco")
            .context("reading")
            .unwrap_err();
        assert_eq!((io.code(), io.kind()), ("io", None));
    }
}
