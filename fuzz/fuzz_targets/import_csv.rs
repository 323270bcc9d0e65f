//! `gco ledger import` of arbitrary csv bytes (see `gco_fuzz::import`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gco_fuzz::import("csv", data));
