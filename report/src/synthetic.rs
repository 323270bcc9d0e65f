//! Synthetic runs (in memory, no store) with round figures, for the rendering tests
//! and the render benchmark: model i has (i+1) units, each unit 1 kWh IT energy,
//! 1.25 kWh facility, 1 kg location-based, 0.4 kg market-based; half of it in Scope 2
//! (site paris, zone FR) and half in Scope 3 (site aws, zone DE).

use std::collections::BTreeMap;

use gco_pipelines::Period;
use gco_pipelines::aggregate::Sums;
use gco_pipelines::manifest::RunManifest;

use crate::{Loaded, Month};

pub fn sums(k: i128) -> Sums {
    Sums {
        rows: 10 * k as u64,
        inferences: 9 * k as u64,
        prompt_tokens: 1000 * k as u64,
        completion_tokens: 500 * k as u64,
        it_energy_mj: 3_600_000_000 * k,       // k kWh
        facility_energy_mj: 4_500_000_000 * k, // PUE 1.25
        location_ng: 1_000_000_000_000 * k,    // k kg
        market_ng: 400_000_000_000 * k,
        marginal_ng: 0,
        marginal_rows: 0,
        embodied_ng: 50_000_000_000 * k,
        sci_ng: 900_000_000_000 * k,
    }
}

/// One month with the given models: model i has (i+1) x the unit figures, half in
/// scope2 (site paris / FR) and half in scope3 (site aws / DE).
pub fn month(period: &str, models: &[&str]) -> Month {
    let mut t: BTreeMap<&'static str, Vec<(Vec<String>, Sums)>> = BTreeMap::new();
    let mut org: BTreeMap<String, Sums> = BTreeMap::new();
    for (i, m) in models.iter().enumerate() {
        for (scope, site, zone) in [("scope2", "paris", "FR"), ("scope3", "aws", "DE")] {
            let s = sums(i as i128 + 1);
            let day = format!("{period}-01");
            t.entry("model_day")
                .or_default()
                .push((vec![day, m.to_string(), scope.into()], s));
            t.entry("model_month")
                .or_default()
                .push((vec![m.to_string(), scope.into()], s));
            t.entry("zone_month")
                .or_default()
                .push((vec![zone.into(), scope.into()], s));
            t.entry("detail_month").or_default().push((
                vec![
                    m.to_string(),
                    site.into(),
                    zone.into(),
                    scope.into(),
                    "energy_counter".into(),
                    "electricitymaps".into(),
                    "provider_measured".into(),
                ],
                s,
            ));
            org.entry(scope.into()).or_default().add(&s);
        }
    }
    // zone_month has one row per (zone, scope): fold duplicates.
    let mut zm: BTreeMap<Vec<String>, Sums> = BTreeMap::new();
    for (k, s) in t.remove("zone_month").unwrap_or_default() {
        zm.entry(k).or_default().add(&s);
    }
    t.insert("zone_month", zm.into_iter().collect());
    t.insert(
        "organisation_month",
        org.into_iter()
            .map(|(sc, s)| (vec!["Acme AI".into(), sc], s))
            .collect(),
    );
    Month {
        period: Period::parse(period).unwrap(),
        version: 1,
        manifest_path: gco_ledger::layout::manifest(period, 1),
        manifest_sha256: "ab".repeat(32),
        manifest: manifest(period),
        tables: t,
    }
}

pub fn loaded(months: Vec<Month>) -> Loaded {
    let as_of = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
        .unwrap()
        .to_utc();
    Loaded {
        label: "2026".into(),
        periods: months.iter().map(|m| m.period).collect(),
        months,
        missing: vec![],
        organisation: "Acme AI".into(),
        as_of,
        as_of_text: "2026-12-01 00:00:00 UTC".into(),
        code_version: "gco test".into(),
    }
}

/// A run manifest with the coverage and configuration the synthetic month implies.
fn manifest(period: &str) -> RunManifest {
    use gco_pipelines::config::{PipelineConfig, Scope, Site};
    use gco_pipelines::manifest::{AllocationReport, Coverage, FORMAT, Inputs, Totals};
    RunManifest {
        format: FORMAT.into(),
        method: "synthetic".into(),
        period: period.into(),
        version: 1,
        as_of: format!("{period}-28T00:00:00Z"),
        code_version: "gco test".into(),
        plan: gco_pipelines::Plan {
            id: "synthetic".into(),
            period: period.into(),
            ledger: vec![],
            grid: vec![],
            registry: vec![],
            config_sha256: String::new(),
            code_version: "gco test".into(),
        },
        config: PipelineConfig {
            organisation: "Acme AI".into(),
            sites: [(
                "paris".to_string(),
                Site {
                    pue: 1.25,
                    scope: Scope::Scope2,
                    hardware: None,
                },
            )]
            .into(),
            ..Default::default()
        },
        shards: 1,
        inputs: Inputs {
            ledger: vec![],
            grid: vec![],
            registry: vec![],
        },
        coverage: Coverage {
            batches: 4,
            batches_verified: 4,
            batches_excluded: 0,
            records_sealed: 100,
            records_verified: 100,
            energy_mj_sealed: 1000,
            energy_mj_verified: 1000,
            records_accounted: 100,
            records_quarantined: 0,
            quarantine_reasons: Default::default(),
            chain_issues: 0,
            excluded: vec![],
        },
        chain_issues: vec![],
        quarantine: vec![],
        instruments: AllocationReport {
            zones: Default::default(),
            instruments: vec![],
            residual_mix_unknown: vec!["FR".into()],
        },
        totals: [("all".to_string(), Totals::default())].into(),
        outputs: vec![],
    }
}
