//! A guard around third-party decoders on untrusted bytes.
//!
//! The Parquet reader (arrow-rs) panics on some malformed files instead of returning
//! an error (found by fuzzing: a negative column offset asserts in
//! `ColumnChunkMetaData::byte_range`; a dictionary-encoded page without a dictionary
//! page hits an `expect` in the column decoder). gco must never panic on data, so
//! every decode of bytes from a store or an input file runs inside [`decode`], which
//! turns such a panic into an error that names the object.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`; a panic inside it becomes `Err` with the panic's message.
pub fn decode<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        format!("{what}: the Parquet decoder failed on malformed data ({msg})")
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_is_an_error_naming_the_object() {
        assert_eq!(super::decode("x", || 7), Ok(7));
        let e = super::decode("records/a.parquet", || -> u8 { panic!("boom") }).unwrap_err();
        assert_eq!(
            e,
            "records/a.parquet: the Parquet decoder failed on malformed data (boom)"
        );
    }
}
