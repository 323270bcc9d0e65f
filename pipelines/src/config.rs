//! `[pipeline]` in `gco.toml`: sites (PUE, reporting scope, hardware), hardware embodied
//! figures, contractual instruments, residual mixes and the verification policy.
//!
//! Decimal inputs (PUE, MWh, g/kWh, kg) are turned into integers once, here, so every
//! figure downstream is integer arithmetic: PUE in thousandths, energy in mJ,
//! intensities in mg/kWh, embodied carbon in grams.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// PUE used for a site the configuration does not name: the Uptime Institute Global
/// Data Center Survey 2024 average (1.56). Rows say when this default was used.
pub const DEFAULT_PUE: f64 = 1.56;

/// Embodied carbon per GPU used when no hardware figure is configured: 150 kgCO2e per
/// accelerator over a 6-year life, the assumption of Luccioni, Viguier & Ligozat (2022),
/// "Estimating the Carbon Footprint of BLOOM", section 4. An illustrative figure: set
/// your hardware's own from the vendor's product carbon footprint.
pub const DEFAULT_EMBODIED_KG_PER_GPU: f64 = 150.0;
pub const DEFAULT_LIFETIME_YEARS: f64 = 6.0;
pub const DEFAULT_EMBODIED_SOURCE: &str =
    "default: 150 kgCO2e per GPU, 6-year life (Luccioni et al. 2022, BLOOM)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Own or colocated GPUs with metered power: Scope 2.
    #[default]
    Scope2,
    /// Cloud or API inference bought from a provider: Scope 3 category 1.
    Scope3,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Scope2 => "scope2",
            Scope::Scope3 => "scope3",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Power usage effectiveness (facility energy / IT energy), >= 1.
    pub pue: f64,
    #[serde(default)]
    pub scope: Scope,
    /// Key into `[pipeline.hardware]`.
    pub hardware: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hardware {
    pub embodied_kg_per_gpu: f64,
    pub lifetime_years: f64,
    /// Where the figure comes from (vendor PCF, study): carried into every row.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instrument {
    /// Certificate or contract id; unique.
    pub id: String,
    /// `go`, `rec`, `ppa`, `supplier`.
    pub kind: String,
    pub zone: String,
    /// First and last day (inclusive) the instrument's generation covers.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub mwh: f64,
    /// Emission factor of the instrument (0 for renewable EACs).
    #[serde(default)]
    pub factor_g_per_kwh: f64,
}

/// What to do when batches in the period fail verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnUnverified {
    /// Leave them out, list them, and state the coverage.
    #[default]
    Exclude,
    /// Stop the run.
    Abort,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    #[serde(default = "default_org")]
    pub organisation: String,
    #[serde(default)]
    pub sites: BTreeMap<String, Site>,
    #[serde(default)]
    pub hardware: BTreeMap<String, Hardware>,
    #[serde(default)]
    pub instruments: Vec<Instrument>,
    /// Residual-mix factors by zone, gCO2e/kWh (e.g. from the AIB European Residual Mixes).
    #[serde(default)]
    pub residual_mix: BTreeMap<String, f64>,
    #[serde(default)]
    pub on_unverified: OnUnverified,
    /// Records per processing chunk (memory is bounded by this, not by the month).
    #[serde(default = "default_chunk")]
    pub chunk_records: usize,
}

fn default_org() -> String {
    "organisation".into()
}

fn default_chunk() -> usize {
    250_000
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            organisation: default_org(),
            sites: BTreeMap::new(),
            hardware: BTreeMap::new(),
            instruments: Vec::new(),
            residual_mix: BTreeMap::new(),
            on_unverified: OnUnverified::Exclude,
            chunk_records: default_chunk(),
        }
    }
}

/// A site's figures in integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFigures {
    pub pue_milli: i64,
    pub pue_default: bool,
    pub scope: Scope,
    /// Embodied grams CO2e per GPU and lifetime in microseconds.
    pub embodied_g_per_gpu: i64,
    pub lifetime_us: i64,
    pub embodied_source: String,
}

/// An instrument in integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentFigures {
    pub id: String,
    pub kind: String,
    pub zone: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Energy in mJ (1 MWh = 3.6e12 mJ).
    pub energy_mj: i64,
    pub factor_mg_per_kwh: i64,
}

fn milli(what: &str, v: f64) -> Result<i64> {
    if !v.is_finite() || !(0.0..=1e15).contains(&v) {
        bail!("{what} = {v} is not a usable non-negative number");
    }
    Ok((v * 1000.0).round() as i64)
}

impl PipelineConfig {
    /// Checks the configuration; errors name the entry and what to change.
    pub fn validate(&self) -> Result<()> {
        for (name, s) in &self.sites {
            if !(1.0..=5.0).contains(&s.pue) {
                bail!(
                    "[pipeline.sites.{name:?}] pue = {} must be between 1.0 and 5.0",
                    s.pue
                );
            }
            if let Some(h) = &s.hardware
                && !self.hardware.contains_key(h)
            {
                bail!(
                    "[pipeline.sites.{name:?}] hardware = {h:?} is not in [pipeline.hardware] (have: {})",
                    self.hardware.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
        for (name, h) in &self.hardware {
            let usable = h.embodied_kg_per_gpu >= 0.0 && h.lifetime_years > 0.0;
            if !usable {
                bail!(
                    "[pipeline.hardware.{name:?}] needs embodied_kg_per_gpu >= 0 and lifetime_years > 0"
                );
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for i in &self.instruments {
            if !ids.insert(&i.id) {
                bail!(
                    "instrument {:?} is listed twice: a certificate may be claimed once (remove the duplicate)",
                    i.id
                );
            }
            if i.to < i.from {
                bail!(
                    "instrument {:?}: to {} is before from {}",
                    i.id,
                    i.to,
                    i.from
                );
            }
            milli(&format!("instrument {:?} mwh", i.id), i.mwh)?;
            milli(
                &format!("instrument {:?} factor_g_per_kwh", i.id),
                i.factor_g_per_kwh,
            )?;
        }
        for (z, v) in &self.residual_mix {
            milli(&format!("residual_mix {z:?}"), *v)?;
        }
        if self.chunk_records == 0 {
            bail!("[pipeline] chunk_records must be at least 1");
        }
        Ok(())
    }

    pub fn site(&self, site: &str) -> SiteFigures {
        let s = self.sites.get(site);
        let hw = s
            .and_then(|s| s.hardware.as_ref())
            .and_then(|h| self.hardware.get(h));
        let (kg, years, source) = match hw {
            Some(h) => (h.embodied_kg_per_gpu, h.lifetime_years, h.source.clone()),
            None => (
                DEFAULT_EMBODIED_KG_PER_GPU,
                DEFAULT_LIFETIME_YEARS,
                DEFAULT_EMBODIED_SOURCE.to_string(),
            ),
        };
        SiteFigures {
            pue_milli: (s.map_or(DEFAULT_PUE, |s| s.pue) * 1000.0).round() as i64,
            pue_default: s.is_none(),
            scope: s.map(|s| s.scope).unwrap_or_default(),
            embodied_g_per_gpu: (kg * 1000.0).round() as i64,
            // A year is 365.25 days.
            lifetime_us: (years * 365.25 * 86_400.0).round() as i64 * 1_000_000,
            embodied_source: source,
        }
    }

    pub fn instruments(&self) -> Vec<InstrumentFigures> {
        self.instruments
            .iter()
            .map(|i| InstrumentFigures {
                id: i.id.clone(),
                kind: i.kind.clone(),
                zone: i.zone.clone(),
                from: i.from,
                to: i.to,
                // MWh -> Wh (x1e6, rounded) -> mJ (x3.6e6).
                energy_mj: (i.mwh * 1_000_000.0).round() as i64 * 3_600_000,
                factor_mg_per_kwh: (i.factor_g_per_kwh * 1000.0).round() as i64,
            })
            .collect()
    }

    pub fn residual_mg_per_kwh(&self, zone: &str) -> Option<i64> {
        self.residual_mix
            .get(zone)
            .map(|v| (v * 1000.0).round() as i64)
    }
}
