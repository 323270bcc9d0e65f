//! `gco ledger import` of arbitrary jsonl bytes (see `gco_fuzz::import`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gco_fuzz::import("jsonl", data));
