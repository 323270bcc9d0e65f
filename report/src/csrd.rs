//! The AI-inference contribution to ESRS E1 (CSRD): E1-5 energy, E1-6 Scope 2
//! (location- and market-based) and Scope 3 Category 1, methodology, factors, data
//! quality, breakdowns and the monthly trend, plus the CSVs behind them.

use std::collections::BTreeMap;

use crate::error::Result;
use gco_pipelines::aggregate::Sums;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{DATAPOINTS, ReportConfig};
use crate::data::Month;
use crate::fixed::{MJ_PER_KWH, NG_PER_KG, decimal, g_per_kwh, kg, kwh, mwh, percent, tonnes};
use crate::render::finite;
use crate::{Csv, Loaded};

#[derive(Debug, Clone, Serialize)]
pub struct Datapoint {
    pub id: String,
    pub name: String,
    pub value: String,
    pub unit: String,
    pub note: String,
}

/// Sums rows of a table over all months, by the key columns picked with `key`.
pub fn group(
    months: &[Month],
    table: &str,
    key: impl Fn(&[String]) -> Vec<String>,
) -> BTreeMap<Vec<String>, Sums> {
    let mut out: BTreeMap<Vec<String>, Sums> = BTreeMap::new();
    for m in months {
        for (k, s) in m.table(table) {
            out.entry(key(k)).or_default().add(s);
        }
    }
    out
}

fn measured(method: &str) -> bool {
    matches!(method, "energy_counter" | "power_integration")
}

/// The report's data (the Tera context), its CSVs and its chart data.
pub struct Built {
    pub context: Value,
    pub charts: Value,
    pub csvs: Vec<Csv>,
}

pub fn build(data: &Loaded, config: &ReportConfig) -> Result<Built> {
    config.check()?;
    let months = &data.months;
    let mut totals: BTreeMap<String, Sums> = BTreeMap::new();
    for m in months {
        for (scope, s) in m.totals() {
            totals.entry(scope).or_default().add(&s);
        }
    }
    let all = totals.get("all").copied().unwrap_or_default();
    let s2 = totals.get("scope2").copied().unwrap_or_default();
    let s3 = totals.get("scope3").copied().unwrap_or_default();

    let zones = group(months, "zone_month", |k| k.to_vec());
    let mix = energy_mix(&zones, config)?;
    let datapoints = datapoints(config, &zones, &mix, &s2, &s3);

    let scopes: Vec<Value> = ["scope2", "scope3", "all"]
        .iter()
        .map(|sc| {
            let mut v = figures(&totals.get(*sc).copied().unwrap_or_default());
            v["scope"] = json!(sc);
            v
        })
        .collect();

    let by_model = group(months, "model_month", |k| vec![k[0].clone()]);
    let by_zone = group(months, "zone_month", |k| vec![k[0].clone()]);
    let by_site = group(months, "detail_month", |k| {
        vec![k[1].clone(), k[2].clone(), k[3].clone()]
    });
    let by_method = group(months, "detail_month", |k| vec![k[4].clone()]);
    let by_source = group(months, "detail_month", |k| {
        vec![k[2].clone(), k[5].clone(), k[6].clone()]
    });
    let row = |k: &[String], names: &[&str], s: &Sums| {
        let mut v = figures(s);
        for (n, val) in names.iter().zip(k) {
            v[*n] = json!(val);
        }
        v
    };
    let share = |e: i128| percent(e, all.facility_energy_mj, 1).unwrap_or_else(|| "n/a".into());
    let measured_mj: i128 = by_method
        .iter()
        .filter(|(k, _)| measured(&k[0]))
        .map(|(_, s)| s.facility_energy_mj)
        .sum();

    let (instruments, residual_unknown) = instruments(months);

    let monthly: Vec<Value> = data
        .periods
        .iter()
        .map(|p| match months.iter().find(|m| m.period == *p) {
            Some(m) => {
                let t = m.totals().get("all").copied().unwrap_or_default();
                let mut v = figures(&t);
                v["period"] = json!(p.to_string());
                v["version"] = json!(m.version);
                v["run"] = json!(true);
                v
            }
            None => json!({"period": p.to_string(), "run": false}),
        })
        .collect();

    let context = data.context(format!("AI inference: ESRS E1 energy and GHG emissions, {}", data.label), json!({
        "datapoints": datapoints,
        "scopes": scopes,
        "mix_sources": mix.sources,
        "by_model": by_model.iter().map(|(k, s)| row(k, &["model"], s)).collect::<Vec<_>>(),
        "by_zone": by_zone.iter().map(|(k, s)| row(k, &["zone"], s)).collect::<Vec<_>>(),
        "by_site": by_site.iter().map(|(k, s)| row(k, &["site", "zone", "scope"], s)).collect::<Vec<_>>(),
        "by_method": by_method.iter().map(|(k, s)| {
            let mut v = row(k, &["method"], s);
            v["measured"] = json!(measured(&k[0]));
            v["share"] = json!(share(s.facility_energy_mj));
            v
        }).collect::<Vec<_>>(),
        "by_source": by_source.iter().map(|(k, s)| {
            let mut v = row(k, &["zone", "source", "level"], s);
            v["share"] = json!(share(s.facility_energy_mj));
            v
        }).collect::<Vec<_>>(),
        "measured_share": share(measured_mj),
        "coverage": coverage(months),
        "instruments": instruments,
        "residual_unknown": residual_unknown,
        "monthly": monthly,
    }));

    let charts = charts(months, &by_model, &by_zone)?;

    let csvs = vec![
        datapoints_csv(&datapoints, &data.label)?,
        crate::csv_out::model_month(months)?,
        crate::csv_out::grid_factors(months)?,
    ];
    Ok(Built {
        context,
        charts,
        csvs,
    })
}

/// The E1-5 split of the Scope 2 facility energy over the zones with a configured
/// grid mix; the energy of the other zones is unknown.
struct Mix {
    fossil: i128,
    nuclear: i128,
    renewable: i128,
    unknown: i128,
    unknown_zones: Vec<String>,
    sources: Vec<Value>,
}

fn energy_mix(zones: &BTreeMap<Vec<String>, Sums>, config: &ReportConfig) -> Result<Mix> {
    let mut mix = Mix {
        fossil: 0,
        nuclear: 0,
        renewable: 0,
        unknown: 0,
        unknown_zones: Vec::new(),
        sources: Vec::new(),
    };
    for (k, s) in zones {
        if k[1] != "scope2" {
            continue;
        }
        let e = s.facility_energy_mj;
        match config.mix(&k[0])? {
            Some(p) => {
                let part = |ppm: i128| (e * ppm + 500_000) / 1_000_000;
                let (f, n) = (part(p.fossil), part(p.nuclear));
                mix.fossil += f;
                mix.nuclear += n;
                mix.renewable += e - f - n;
                mix.sources
                    .push(json!({"zone": k[0], "source": config.energy_mix[&k[0]].source}));
            }
            None => {
                mix.unknown += e;
                mix.unknown_zones.push(k[0].clone());
            }
        }
    }
    Ok(mix)
}

/// The ESRS E1 datapoints: E1-5 energy (with its mix), E1-6 Scope 2 location and
/// market, Scope 3 Category 1 and the totals.
fn datapoints(
    config: &ReportConfig,
    zones: &BTreeMap<Vec<String>, Sums>,
    mix: &Mix,
    s2: &Sums,
    s3: &Sums,
) -> Vec<Datapoint> {
    let unknown_zones = &mix.unknown_zones;
    let (fossil, nuclear, renewable) = (mix.fossil, mix.nuclear, mix.renewable);
    let mix_note = if unknown_zones.is_empty() {
        "grid mix of each zone from [report.energy_mix]".to_string()
    } else {
        format!(
            "{} MWh unknown: no grid mix configured for {}",
            mwh(mix.unknown),
            unknown_zones.join(", ")
        )
    };
    let known = |v: i128| {
        let scope2_zones = zones.keys().filter(|k| k[1] == "scope2").count();
        if scope2_zones > 0 && unknown_zones.len() == scope2_zones {
            "unknown".to_string()
        } else {
            mwh(v)
        }
    };
    let label = |n: &str| {
        DATAPOINTS
            .iter()
            .find(|d| d.0 == n)
            .map_or(n, |d| d.2)
            .to_string()
    };
    let dp = |n: &str, value: String, unit: &str, note: String| Datapoint {
        id: config.datapoint(n),
        name: label(n),
        value,
        unit: unit.into(),
        note,
    };
    vec![
        dp(
            "energy_total",
            mwh(s2.facility_energy_mj),
            "MWh",
            "facility energy (IT energy x PUE) of own and colocated sites; cloud inference is Scope 3 and not in E1-5".into(),
        ),
        dp("energy_fossil", known(fossil), "MWh", mix_note.clone()),
        dp("energy_nuclear", known(nuclear), "MWh", mix_note.clone()),
        dp("energy_renewable", known(renewable), "MWh", mix_note),
        dp(
            "scope2_location",
            tonnes(s2.location_ng),
            "tCO2e",
            "grid average intensity of the hour and zone".into(),
        ),
        dp(
            "scope2_market",
            tonnes(s2.market_ng),
            "tCO2e",
            "contractual instruments, then residual mix (grid average where none is configured)".into(),
        ),
        dp(
            "scope3_cat1",
            tonnes(s3.location_ng),
            "tCO2e",
            "cloud inference at the provider's grid average and PUE".into(),
        ),
        dp(
            "total_location",
            tonnes(s2.location_ng + s3.location_ng),
            "tCO2e",
            "Scope 2 location-based + Scope 3 Category 1".into(),
        ),
        dp(
            "total_market",
            tonnes(s2.market_ng + s3.location_ng),
            "tCO2e",
            "Scope 2 market-based + Scope 3 Category 1".into(),
        ),
    ]
}

/// One table row's figures.
fn figures(s: &Sums) -> Value {
    json!({
        "rows": s.rows,
        "inferences": s.inferences,
        "tokens": s.prompt_tokens + s.completion_tokens,
        "it_kwh": kwh(s.it_energy_mj),
        "facility_kwh": kwh(s.facility_energy_mj),
        "location_kg": kg(s.location_ng),
        "market_kg": kg(s.market_ng),
        "embodied_kg": kg(s.embodied_ng),
        "sci_kg": kg(s.sci_ng),
        "intensity": g_per_kwh(s.location_ng, s.facility_energy_mj),
        "sci_mg_per_inference": if s.inferences == 0 { "n/a".to_string() } else { decimal(s.sci_ng, 1_000_000 * s.inferences as i128, 3) },
    })
}

/// Coverage over the months' manifests: batches and records sealed, verified,
/// accounted, quarantined; the share of the sealed energy that verified.
fn coverage(months: &[Month]) -> Value {
    let mut coverage: BTreeMap<&str, u64> = BTreeMap::new();
    let mut energy_sealed = 0i128;
    let mut energy_verified = 0i128;
    for m in months {
        let c = &m.manifest.coverage;
        for (f, v) in [
            ("batches", c.batches),
            ("batches_verified", c.batches_verified),
            ("batches_excluded", c.batches_excluded),
            ("records_sealed", c.records_sealed),
            ("records_verified", c.records_verified),
            ("records_accounted", c.records_accounted),
            ("records_quarantined", c.records_quarantined),
            ("chain_issues", c.chain_issues),
        ] {
            *coverage.entry(f).or_default() += v;
        }
        energy_sealed += i128::from(c.energy_mj_sealed);
        energy_verified += i128::from(c.energy_mj_verified);
    }
    let cov = |f: &str| coverage.get(f).copied().unwrap_or(0);
    json!({
        "batches": cov("batches"),
        "batches_verified": cov("batches_verified"),
        "batches_excluded": cov("batches_excluded"),
        "records_sealed": cov("records_sealed"),
        "records_verified": cov("records_verified"),
        "records_accounted": cov("records_accounted"),
        "records_quarantined": cov("records_quarantined"),
        "chain_issues": cov("chain_issues"),
        "energy_share": percent(energy_verified, energy_sealed, 2).unwrap_or_else(|| "n/a".into()),
    })
}

/// The months' contractual instruments, and the zones without a residual mix.
fn instruments(months: &[Month]) -> (Vec<Value>, Vec<String>) {
    let mut instruments = Vec::new();
    let mut residual_unknown = Vec::new();
    for m in months {
        for i in &m.manifest.instruments.instruments {
            instruments.push(json!({
                "period": m.period.to_string(),
                "id": i.id,
                "kind": i.kind,
                "zone": i.zone,
                "allocated_kwh": kwh(i128::from(i.allocated_mj)),
                "factor": decimal(i128::from(i.factor_mg_per_kwh), 1000, 3),
            }));
        }
        for z in &m.manifest.instruments.residual_mix_unknown {
            if !residual_unknown.contains(z) {
                residual_unknown.push(z.clone());
            }
        }
    }
    residual_unknown.sort();
    (instruments, residual_unknown)
}

/// The charts' data: monthly energy and emissions, emissions by model and by zone.
fn charts(
    months: &[Month],
    by_model: &BTreeMap<Vec<String>, Sums>,
    by_zone: &BTreeMap<Vec<String>, Sums>,
) -> Result<Value> {
    let chart_f = |name: &str, v: i128, div: i128| finite(name, v as f64 / div as f64);
    let mut chart_monthly = Vec::new();
    for m in months {
        let t = m.totals().get("all").copied().unwrap_or_default();
        let p = m.period.to_string();
        chart_monthly.push(json!({
            "label": p,
            "energy": chart_f(&format!("energy of {p}"), t.facility_energy_mj, MJ_PER_KWH)?,
            "location": chart_f(&format!("location-based emissions of {p}"), t.location_ng, NG_PER_KG)?,
            "market": chart_f(&format!("market-based emissions of {p}"), t.market_ng, NG_PER_KG)?,
        }));
    }
    let bars = |g: &BTreeMap<Vec<String>, Sums>, what: &str| -> Result<Vec<Value>> {
        g.iter()
            .map(|(k, s)| {
                Ok(json!({
                    "label": k.join(" / "),
                    "value": chart_f(&format!("{what} of {}", k.join(" / ")), s.location_ng, NG_PER_KG)?,
                }))
            })
            .collect()
    };
    Ok(json!({
        "monthly": chart_monthly,
        "by_model": bars(by_model, "emissions")?,
        "by_zone": bars(by_zone, "emissions")?,
    }))
}

fn datapoints_csv(dps: &[Datapoint], period: &str) -> Result<Csv> {
    let mut w = crate::csv_out::writer();
    w.write_record(["datapoint_id", "name", "value", "unit", "period", "note"])?;
    for d in dps {
        w.write_record([&d.id, &d.name, &d.value, &d.unit, period, &d.note])?;
    }
    Ok(Csv {
        name: "esrs-e1-datapoints.csv".into(),
        bytes: w.into_inner()?,
    })
}
