//! The batch verifier on arbitrary bytes: never a panic; bytes that are not a valid
//! sealed batch always come back with at least one problem.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    gco_fuzz::quiet_panics();
    let registry = gco_ledger::Registry::default();
    let path = "records/date=2026-10-01/node=n1/00000000000000000000-00000000000000000009-0123456789abcdef.parquet";
    let check =
        gco_ledger::verify::check_object(path, bytes::Bytes::copy_from_slice(data), &registry);
    // No key is registered: nothing can verify.
    assert!(!check.problems.is_empty());
});
