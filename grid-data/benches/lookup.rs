//! Intensity lookup throughput through the cache index.
//!
//! `cargo bench -p gco-grid-data --bench lookup [-- KEYS]`: 100 zones x one year of
//! hourly points in the index, then KEYS (default 10,000,000) random (zone, hour) keys
//! resolved on one thread. Prints lookups per second for docs/benchmarks.md.

use std::time::Instant;

use gco_grid_data::series::SeriesIndex;
use gco_grid_data::{Baselines, MgPerKwh, Resolver, synthetic};

fn main() {
    let keys: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let b = Baselines::bundled().expect("bundled data");
    let zones: Vec<(String, MgPerKwh)> = b
        .countries
        .values()
        .take(100)
        .map(|c| (c.iso2.clone(), c.figure.value))
        .collect();
    let from = gco_ledger::time::parse_utc("2026-01-01T00:00:00Z").expect("time");
    let to = gco_ledger::time::parse_utc("2027-01-01T00:00:00Z").expect("time");
    let mut index = SeriesIndex::default();
    for (zone, annual) in &zones {
        index.insert(
            synthetic::hourly(zone, *annual, from, to, 1)
                .into_iter()
                .map(|p| (p, 0)),
        );
    }
    let resolver = Resolver::new(index).expect("resolver");
    let handles: Vec<_> = zones
        .iter()
        .map(|(z, a)| (resolver.series.handle(z).expect("zone"), *a))
        .collect();
    // Keys drawn up front from a fixed LCG: (zone index, microsecond within the year).
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let span = (to - from) as u64;
    let keys_v: Vec<(u32, i64)> = (0..keys)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (
                (x >> 33) as u32 % handles.len() as u32,
                from + ((x >> 7) % span) as i64,
            )
        })
        .collect();
    let t = Instant::now();
    let mut sum: i64 = 0;
    for &(z, at) in &keys_v {
        let (h, annual) = handles[z as usize];
        sum = sum.wrapping_add(resolver.value(h, annual, at).0);
    }
    let s = t.elapsed().as_secs_f64();
    println!("| lookups | zones | points | seconds | lookups/s |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {keys} | {} | {} | {s:.3} | {:.0} |",
        handles.len(),
        handles.len() * 8760,
        keys as f64 / s
    );
    println!("checksum {sum}");
}
