//! The collector's error type: a kind ([`Kind`], shared by gco's libraries) with a
//! stable code, a message that says what failed and where, and the error underneath
//! as its `source` (docs/errors.md).

gco_error::errors! {
    /// Errors raised by the collector crate.
    pub enum CollectorError {
        Ledger(e: gco_ledger::LedgerError) => e.code(),
        Gpu(e: crate::gpu::GpuError) => e.code(),
        Encoding(e: postcard::Error) => "spool",
        Http(e: reqwest::Error) => "http",
        Io(e: std::io::Error) => "io",
        #[cfg(feature = "tpm")]
        Tpm(e: tss_esapi::Error) => "tpm",
    }
}
