//! The collector's error type: a [`Kind`] with a stable code, a message that says
//! what failed and where, and the error underneath as its `source` (docs/errors.md).

gco_error::errors! {
    /// What kind of failure, with a stable code ([`Kind::code`]).
    kinds Kind {
        /// The collector was started in a way that cannot work (another node's spool, a
        /// different GPU set).
        Usage = "usage",
        /// The spool on disk is damaged or not a gco spool.
        Spool = "spool",
        /// The spool and the node's chain are out of step.
        Chain = "chain",
        /// The TPM failed or answered something unusable.
        Tpm = "tpm",
        /// An address could not be bound.
        Bind = "bind",
        /// A broken invariant of gco itself (a thread that panicked).
        Internal = "internal",
    }
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
