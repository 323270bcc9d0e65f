//! EU AI Act energy documentation for one model: Annex XI section 1 point 2(e) known
//! energy consumption (inference measured here; training as configured), the GPAI Code
//! of Practice Model Documentation Form energy fields, Annex IV 1(e) / 2(c) hardware
//! and computational resources, the measurement method, per-request and per-token
//! figures, and the daily trend.

use std::collections::BTreeMap;

use crate::error::{Result, fail};
use gco_pipelines::aggregate::Sums;
use serde_json::{Value, json};

use crate::config::ReportConfig;
use crate::csrd::{Built, group};
use crate::csv_out::writer;
use crate::fixed::{MJ_PER_KWH, NG_PER_G, NG_PER_KG, decimal, kg, kwh, mwh, percent};
use crate::render::finite;
use crate::{Csv, Loaded};

fn method_text(method: &str) -> &'static str {
    match method {
        "energy_counter" => {
            "NVML cumulative energy counter (nvmlDeviceGetTotalEnergyConsumption), read at the start and end of each request"
        }
        "power_integration" => {
            "NVML power samples integrated over the request (GPUs without an energy counter)"
        }
        "simulated" => "simulated GPUs (demonstration data, not a measurement)",
        "imported" => "imported from existing telemetry (method as documented by its source)",
        _ => "not documented",
    }
}

pub fn build(data: &Loaded, model: &str, config: &ReportConfig) -> Result<Built> {
    config.check()?;
    let months = &data.months;
    let mut total = Sums::default();
    let mut by_scope: BTreeMap<String, Sums> = BTreeMap::new();
    for m in months {
        for (k, s) in m.table("model_month") {
            if k[0] == model {
                total.add(s);
                by_scope.entry(k[1].clone()).or_default().add(s);
            }
        }
    }
    if total.rows == 0 {
        let mut seen: Vec<String> = group(months, "model_month", |k| vec![k[0].clone()])
            .into_keys()
            .map(|k| k[0].clone())
            .filter(|m| m != "(idle/overhead)")
            .collect();
        seen.dedup();
        fail!(
            Usage,
            "model {model:?} has no inferences in {}; models with inferences: {}",
            data.label,
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        );
    }
    let figures = figures(&total);
    let scopes: Vec<Value> = by_scope
        .iter()
        .map(|(sc, s)| {
            json!({"scope": sc, "inferences": s.inferences, "facility_kwh": kwh(s.facility_energy_mj),
                   "location_kg": kg(s.location_ng), "market_kg": kg(s.market_ng)})
        })
        .collect();

    let (sites, methods, hardware) = where_and_how(months, model, &total);

    let info = config.models.get(model).cloned().unwrap_or_default();
    let training = training(&info, model)?;

    let (csv, daily) = daily(months, model)?;

    let context = data.context(format!("EU AI Act energy documentation: {model}, {}", data.label), json!({
        "model": model,
        "provider": info.provider.clone().unwrap_or_else(|| data.organisation.clone()),
        "figures": figures,
        "scopes": scopes,
        "sites": sites,
        "hardware": hardware.into_values().collect::<Vec<_>>(),
        "methods": methods,
        "training": training,
        "training_compute": info.training_compute_flops.clone().unwrap_or_else(|| "not provided".into()),
        "training_time": info.training_time.clone().unwrap_or_else(|| "not provided".into()),
        "notes": info.notes.clone().unwrap_or_default(),
    }));
    Ok(Built {
        context,
        charts: json!({"daily": daily}),
        csvs: vec![csv],
    })
}

/// Millijoules per watt-hour.
const MJ_PER_WH: i128 = MJ_PER_KWH / 1000;

/// The model's totals, per request and per 1,000 tokens (Wh, g CO2e).
fn figures(total: &Sums) -> Value {
    let n = total.inferences as i128;
    let tokens = (total.prompt_tokens + total.completion_tokens) as i128;
    let per = |v: i128, d: i128, count: i128, places: u32| {
        if count == 0 {
            "n/a".to_string()
        } else {
            decimal(v, d * count, places)
        }
    };
    json!({
        "inferences": total.inferences,
        "prompt_tokens": total.prompt_tokens,
        "completion_tokens": total.completion_tokens,
        "it_kwh": kwh(total.it_energy_mj),
        "facility_kwh": kwh(total.facility_energy_mj),
        "facility_mwh": mwh(total.facility_energy_mj),
        "location_kg": kg(total.location_ng),
        "market_kg": kg(total.market_ng),
        "embodied_kg": kg(total.embodied_ng),
        "sci_kg": kg(total.sci_ng),
        "wh_per_request": per(total.facility_energy_mj, MJ_PER_WH, n, 4),
        "it_wh_per_request": per(total.it_energy_mj, MJ_PER_WH, n, 4),
        "wh_per_1k_tokens": per(total.facility_energy_mj * 1000, MJ_PER_WH, tokens, 4),
        "g_per_request": per(total.location_ng, NG_PER_G, n, 4),
        "sci_g_per_request": per(total.sci_ng, NG_PER_G, n, 4),
        "sci_g_per_1k_tokens": per(total.sci_ng * 1000, NG_PER_G, tokens, 4),
    })
}

/// Where the model ran (sites, their share, hardware and PUE) and how its energy was
/// measured.
fn where_and_how(
    months: &[crate::Month],
    model: &str,
    total: &Sums,
) -> (Vec<Value>, Vec<Value>, BTreeMap<String, Value>) {
    let mut sites: BTreeMap<(String, String, String), Sums> = BTreeMap::new();
    let mut methods: BTreeMap<String, Sums> = BTreeMap::new();
    let mut hardware: BTreeMap<String, Value> = BTreeMap::new();
    for m in months {
        for (k, s) in m.table("detail_month") {
            if k[0] != model {
                continue;
            }
            sites
                .entry((k[1].clone(), k[2].clone(), k[3].clone()))
                .or_default()
                .add(s);
            methods.entry(k[4].clone()).or_default().add(s);
            let cfg = &m.manifest.config;
            let site = cfg.sites.get(&k[1]);
            let hw = site.and_then(|s| s.hardware.as_deref()).unwrap_or("");
            let (pue, profile) = (site.map(|s| s.pue), cfg.hardware.get(hw));
            hardware.entry(k[1].clone()).or_insert_with(|| {
                json!({
                    "site": k[1],
                    "zone": k[2],
                    "scope": k[3],
                    "hardware": if hw.is_empty() { "not configured".to_string() } else { hw.to_string() },
                    "pue": pue.map_or("1.56 (default)".to_string(), |p| format!("{p}")),
                    "embodied": profile.map(|p| p.embodied_kg_per_gpu)
                        .map_or("150 kgCO2e per GPU (default)".to_string(), |e| format!("{e} kgCO2e per GPU")),
                })
            });
        }
    }
    let sites: Vec<Value> = sites
        .iter()
        .map(|((site, zone, scope), s)| {
            json!({"site": site, "zone": zone, "scope": scope, "inferences": s.inferences,
                   "facility_kwh": kwh(s.facility_energy_mj), "location_kg": kg(s.location_ng),
                   "share": percent(s.facility_energy_mj, total.facility_energy_mj, 1).unwrap_or_default()})
        })
        .collect();
    let methods: Vec<Value> = methods
        .iter()
        .map(|(method, s)| {
            json!({"method": method, "text": method_text(method),
                   "share": percent(s.facility_energy_mj, total.facility_energy_mj, 1).unwrap_or_default(),
                   "facility_kwh": kwh(s.facility_energy_mj)})
        })
        .collect();
    (sites, methods, hardware)
}

/// The training energy the configuration states, if any.
fn training(info: &gco_config::report::ModelInfo, model: &str) -> Result<Value> {
    Ok(match info.training_energy_mwh {
        Some(e) => {
            let e = finite(&format!("report.models.{model:?}.training_energy_mwh"), e)?;
            json!({"known": true, "mwh": format!("{e}"),
                   "method": info.training_energy_method.clone().unwrap_or_else(|| "not stated".into())})
        }
        None => json!({"known": false}),
    })
}

/// The model's days: `model-day.csv` and the daily chart's data.
fn daily(months: &[crate::Month], model: &str) -> Result<(Csv, Vec<Value>)> {
    let mut days: BTreeMap<String, Sums> = BTreeMap::new();
    let mut w = writer();
    w.write_record([
        "date",
        "model_id",
        "scope",
        "inferences",
        "prompt_tokens",
        "completion_tokens",
        "facility_energy_mj",
        "facility_energy_kwh",
        "location_ng",
        "location_kg",
        "market_ng",
        "sci_ng",
    ])?;
    for m in months {
        for (k, s) in m.table("model_day") {
            if k[1] != model {
                continue;
            }
            days.entry(k[0].clone()).or_default().add(s);
            w.write_record([
                k[0].clone(),
                crate::csv_out::text(&k[1]),
                k[2].clone(),
                s.inferences.to_string(),
                s.prompt_tokens.to_string(),
                s.completion_tokens.to_string(),
                s.facility_energy_mj.to_string(),
                kwh(s.facility_energy_mj),
                s.location_ng.to_string(),
                kg(s.location_ng),
                s.market_ng.to_string(),
                s.sci_ng.to_string(),
            ])?;
        }
    }
    let csv = Csv {
        name: "model-day.csv".into(),
        bytes: w.into_inner()?,
    };
    let daily = days
        .iter()
        .map(|(d, s)| {
            Ok(json!({
                "label": d,
                "energy": finite(&format!("energy of {d}"), s.facility_energy_mj as f64 / MJ_PER_KWH as f64)?,
                "location": finite(&format!("emissions of {d}"), s.location_ng as f64 / NG_PER_KG as f64)?,
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((csv, daily))
}
