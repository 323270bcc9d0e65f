//! CSV exports that open cleanly in spreadsheet tools: a header row, ISO dates, dot
//! decimals, UTF-8, comma separated, `\n` line ends, every field quoted only when needed.

use crate::error::Result;

use crate::Csv;
use crate::data::Month;
use crate::fixed::{g_per_kwh, kg, kwh};

/// A text cell from data (model, site, zone names...): one starting with `=`, `+`, `-`,
/// `@`, tab or carriage return gets a leading `'`, so a spreadsheet shows it as text
/// instead of evaluating it as a formula (CSV injection). Numbers are never passed here.
pub fn text(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

pub fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new())
}

/// Per model and month: counts, exact integer sums (mJ, ng) and the same in kWh / kg.
pub fn model_month(months: &[Month]) -> Result<Csv> {
    let mut w = writer();
    w.write_record([
        "period",
        "run_version",
        "model_id",
        "scope",
        "inferences",
        "prompt_tokens",
        "completion_tokens",
        "it_energy_mj",
        "facility_energy_mj",
        "facility_energy_kwh",
        "location_ng",
        "location_kg",
        "market_ng",
        "market_kg",
        "marginal_ng",
        "embodied_ng",
        "sci_ng",
    ])?;
    for m in months {
        for (k, s) in m.table("model_month") {
            w.write_record([
                m.period.to_string(),
                m.version.to_string(),
                text(&k[0]),
                text(&k[1]),
                s.inferences.to_string(),
                s.prompt_tokens.to_string(),
                s.completion_tokens.to_string(),
                s.it_energy_mj.to_string(),
                s.facility_energy_mj.to_string(),
                kwh(s.facility_energy_mj),
                s.location_ng.to_string(),
                kg(s.location_ng),
                s.market_ng.to_string(),
                kg(s.market_ng),
                s.marginal_ng.to_string(),
                s.embodied_ng.to_string(),
                s.sci_ng.to_string(),
            ])?;
        }
    }
    Ok(Csv {
        name: "model-month.csv".into(),
        bytes: w.into_inner()?,
    })
}

/// The grid factors used: by zone, source and fallback level, with the energy they
/// applied to and the mean factor; then the cached grid objects each run read.
pub fn grid_factors(months: &[Month]) -> Result<Csv> {
    let mut w = writer();
    w.write_record([
        "period",
        "run_version",
        "zone",
        "intensity_source",
        "fallback_level",
        "records",
        "facility_energy_kwh",
        "location_kg",
        "mean_intensity_g_per_kwh",
        "grid_objects",
    ])?;
    for m in months {
        let mut groups: std::collections::BTreeMap<[String; 3], gco_pipelines::aggregate::Sums> =
            Default::default();
        for (k, s) in m.table("detail_month") {
            groups
                .entry([k[2].clone(), k[5].clone(), k[6].clone()])
                .or_default()
                .add(s);
        }
        let objects: Vec<&str> = m
            .manifest
            .inputs
            .grid
            .iter()
            .map(|o| o.path.as_str())
            .collect();
        for ([zone, source, level], s) in groups {
            let zone_objects: Vec<&str> = objects
                .iter()
                .copied()
                .filter(|p| p.contains(&format!("/zone={zone}/")))
                .collect();
            w.write_record([
                m.period.to_string(),
                m.version.to_string(),
                text(&zone),
                text(&source),
                text(&level),
                s.rows.to_string(),
                kwh(s.facility_energy_mj),
                kg(s.location_ng),
                g_per_kwh(s.location_ng, s.facility_energy_mj),
                zone_objects.join(" "),
            ])?;
        }
    }
    Ok(Csv {
        name: "grid-factors.csv".into(),
        bytes: w.into_inner()?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn formula_like_text_is_kept_as_text() {
        assert_eq!(super::text("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(super::text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(super::text("-1+1"), "'-1+1");
        assert_eq!(super::text("llama-3.1"), "llama-3.1");
    }
}
