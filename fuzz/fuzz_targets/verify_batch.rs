//! The batch verifier on arbitrary bytes: never a panic; bytes that are not a valid
//! sealed batch always come back with at least one problem.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // gco catches the Parquet decoder's own panics (`gco_ledger::guard`): silence the
    // hook libFuzzer installs so that only a panic gco lets through (which reaches
    // libfuzzer-sys' catch_unwind and aborts) is a crash.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let registry = gco_ledger::Registry::default();
    let path = "records/date=2026-10-01/node=n1/00000000000000000000-00000000000000000009-0123456789abcdef.parquet";
    let check = gco_ledger::verify::check_object(path, bytes::Bytes::copy_from_slice(data), &registry);
    // No key is registered: nothing can verify.
    assert!(!check.problems.is_empty());
});
