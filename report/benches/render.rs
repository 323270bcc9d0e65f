//! Render timings: a full year's CSRD report (12 monthly runs) and one AI Act report,
//! from synthetic runs in memory (the store reads are a few small Parquet files per
//! month and are not part of this figure). `cargo bench -p gco-report --bench render`;
//! figures in docs/benchmarks.md.

use std::time::Instant;

use gco_report::synthetic::{loaded, month};
use gco_report::{ReportConfig, Templates};

fn main() {
    let models: Vec<String> = (0..24).map(|i| format!("model-{i:02}")).collect();
    let names: Vec<&str> = models.iter().map(String::as_str).collect();
    let months = (1..=12)
        .map(|m| month(&format!("2026-{m:02}"), &names))
        .collect();
    let data = loaded(months);
    let t = Templates::builtin().unwrap();
    let cfg = ReportConfig::default();
    // The first render parses the bundled fonts (once per process): timed separately.
    // Typst memoises compilation; each timed render starts from an evicted cache.
    let start = Instant::now();
    let first = gco_report::csrd(&data, &cfg, &t).unwrap();
    println!(
        "first CSRD render (fonts parsed): {:.2} s, {} bytes",
        start.elapsed().as_secs_f64(),
        first.pdf.len()
    );
    for _ in 0..3 {
        gco_pdf::evict_cache();
        let start = Instant::now();
        let r = gco_report::csrd(&data, &cfg, &t).unwrap();
        println!(
            "CSRD, 12 months x {} models: {:.2} s, {} bytes",
            names.len(),
            start.elapsed().as_secs_f64(),
            r.pdf.len()
        );
    }
    for _ in 0..3 {
        gco_pdf::evict_cache();
        let start = Instant::now();
        let r = gco_report::ai_act(&data, names[0], &cfg, &t).unwrap();
        println!(
            "AI Act, one model, 12 months: {:.2} s, {} bytes",
            start.elapsed().as_secs_f64(),
            r.pdf.len()
        );
    }
}
