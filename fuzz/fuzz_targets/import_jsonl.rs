//! `gco ledger import` of arbitrary jsonl bytes: never a panic, and every row is
//! accepted or quarantined (rows = accepted + quarantined).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // gco catches the Parquet decoder's own panics (`gco_ledger::guard`): silence the
    // hook libFuzzer installs so that only a panic gco lets through (which reaches
    // libfuzzer-sys' catch_unwind and aborts) is a crash.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let policy = gco_ledger::import::ImportPolicy::new(1_790_000_000_000_000);
    if let Ok(out) = gco_ledger::import::import_bytes(
        std::path::Path::new("input.jsonl"),
        bytes::Bytes::copy_from_slice(data),
        "n1",
        &policy,
        &Default::default(),
    ) {
        assert_eq!(out.rows as usize, out.accepted.len() + out.quarantined.len());
        for r in &out.accepted {
            assert!(r.validate().is_ok(), "an accepted row is invalid: {r:?}");
        }
    }
});
