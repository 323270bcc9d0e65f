//! `[report]` in gco.toml: ESRS datapoint identifiers, the energy mix of each zone (for
//! the E1-5 fossil / nuclear / renewable split) and what is known about each model's
//! training (AI Act Annex XI).

use std::collections::BTreeMap;

use crate::{Result, finite, invalid};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Datapoint identifiers by figure name; the EFRAG IG3 identifiers are the default
    /// (the revised ESRS will renumber them: change them here, not in code).
    #[serde(default)]
    pub datapoints: BTreeMap<String, String>,
    /// Shares of the grid's generation by zone, with their source.
    #[serde(default)]
    pub energy_mix: BTreeMap<String, EnergyMix>,
    /// Per model: training energy and compute, if the provider knows them.
    #[serde(default)]
    pub models: BTreeMap<String, ModelInfo>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyMix {
    pub fossil: f64,
    pub nuclear: f64,
    pub renewable: f64,
    pub source: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    pub provider: Option<String>,
    pub training_energy_mwh: Option<f64>,
    /// "measured" or "estimated".
    pub training_energy_method: Option<String>,
    pub training_compute_flops: Option<String>,
    pub training_time: Option<String>,
    pub notes: Option<String>,
}

/// The figures the CSRD report gives datapoint identifiers to, with their defaults.
pub const DATAPOINTS: [(&str, &str, &str); 9] = [
    (
        "energy_total",
        "E1-5_01",
        "Total energy consumption (own and colocated AI inference)",
    ),
    ("energy_fossil", "E1-5_02", "Energy from fossil sources"),
    ("energy_nuclear", "E1-5_03", "Energy from nuclear sources"),
    (
        "energy_renewable",
        "E1-5_05",
        "Energy from renewable sources",
    ),
    (
        "scope2_location",
        "E1-6_09",
        "Gross Scope 2 GHG emissions, location-based",
    ),
    (
        "scope2_market",
        "E1-6_10",
        "Gross Scope 2 GHG emissions, market-based",
    ),
    (
        "scope3_cat1",
        "E1-6_11",
        "Gross Scope 3 GHG emissions, Category 1 (cloud inference)",
    ),
    (
        "total_location",
        "E1-6_12",
        "Total GHG emissions (AI inference), location-based",
    ),
    (
        "total_market",
        "E1-6_13",
        "Total GHG emissions (AI inference), market-based",
    ),
];

/// A zone's mix in parts per million, checked: finite, non-negative, summing to 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixPpm {
    pub fossil: i128,
    pub nuclear: i128,
    pub renewable: i128,
}

impl ReportConfig {
    pub fn datapoint(&self, name: &str) -> String {
        self.datapoints.get(name).cloned().unwrap_or_else(|| {
            DATAPOINTS
                .iter()
                .find(|d| d.0 == name)
                .map_or_else(|| name.to_string(), |d| d.1.to_string())
        })
    }

    /// Checks the whole section (so a bad value fails before anything is rendered).
    pub fn check(&self) -> Result<()> {
        for name in self.datapoints.keys() {
            if !DATAPOINTS.iter().any(|d| d.0 == name) {
                invalid!(
                    "[report.datapoints] {name:?} is not a reported figure (known: {})",
                    DATAPOINTS.map(|d| d.0).join(", ")
                );
            }
        }
        for zone in self.energy_mix.keys() {
            self.mix(zone)?;
        }
        for (model, m) in &self.models {
            if let Some(e) = m.training_energy_mwh {
                let v = finite(&format!("report.models.{model:?}.training_energy_mwh"), e)?;
                if v < 0.0 {
                    invalid!("report.models.{model:?}.training_energy_mwh is negative ({v})");
                }
            }
        }
        Ok(())
    }

    pub fn mix(&self, zone: &str) -> Result<Option<MixPpm>> {
        let Some(m) = self.energy_mix.get(zone) else {
            return Ok(None);
        };
        let mut ppm = [0i128; 3];
        for (i, (name, v)) in [
            ("fossil", m.fossil),
            ("nuclear", m.nuclear),
            ("renewable", m.renewable),
        ]
        .into_iter()
        .enumerate()
        {
            let v = finite(&format!("report.energy_mix.{zone}.{name}"), v)?;
            if !(0.0..=1.0).contains(&v) {
                invalid!("report.energy_mix.{zone}.{name} = {v} is not a share between 0 and 1");
            }
            ppm[i] = (v * 1e6).round() as i128;
        }
        if ppm.iter().sum::<i128>() != 1_000_000 {
            invalid!(
                "report.energy_mix.{zone}: fossil + nuclear + renewable = {} (must be 1)",
                m.fossil + m.nuclear + m.renewable
            );
        }
        Ok(Some(MixPpm {
            fossil: ppm[0],
            nuclear: ppm[1],
            renewable: ppm[2],
        }))
    }
}
