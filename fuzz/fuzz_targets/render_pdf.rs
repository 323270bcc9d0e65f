//! Any value from data, escaped the way the report templates escape it, placed in
//! markup (a heading, a table cell, a code string) and in a chart's JSON, renders to a
//! PDF/A-3b: never a panic, never a Typst error.
#![no_main]

use std::collections::BTreeMap;

use chrono::TimeZone;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let value = String::from_utf8_lossy(data);
    let markup = gco_pdf::escape::markup(&value);
    let literal = gco_pdf::escape::string_literal(&value);
    let chart = gco_pdf::escape::display_json(&serde_json::json!({ "labels": [value] }));
    let main = format!(
        "#set text(font: (\"Libertinus Serif\", \"New Computer Modern\", \"DejaVu Sans Mono\"))\n\
         = Model {markup}\n\n\
         #table(columns: 2, [model], [{markup}])\n\n\
         #let name = {literal}\n\
         Name: #name\n\n\
         #let chart = json(\"data/chart.json\")\n\
         #for l in chart.labels [#l ]\n"
    );
    let mut files = BTreeMap::new();
    files.insert(
        "data/chart.json".to_string(),
        chart.to_string().into_bytes(),
    );
    let date = chrono::Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    if let Err(e) = gco_pdf::pdf(gco_pdf::Document {
        main,
        files,
        date,
        ident: "fuzz".into(),
    }) {
        panic!("{value:?} does not render: {e:#}");
    }
    // Typst memoises across compilations; bound the fuzzer's memory.
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 64 == 63 {
        gco_pdf::evict_cache();
    }
});
