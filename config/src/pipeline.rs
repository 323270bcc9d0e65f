//! `[pipeline]` in `gco.toml`: sites (PUE, reporting scope, hardware), hardware embodied
//! figures, contractual instruments, residual mixes and the verification policy.
//!
//! Decimal inputs (PUE, MWh, g/kWh, kg) are turned into integers once, here, so every
//! figure downstream is integer arithmetic: PUE in thousandths, energy in mJ,
//! intensities in mg/kWh, embodied carbon in grams.

use std::collections::BTreeMap;

use crate::{Result, invalid};
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
    /// First and last day (inclusive) the instrument's generation covers: a TOML date
    /// (`2026-01-01`) or a string (`"2026-01-01"`).
    #[serde(deserialize_with = "date")]
    pub from: NaiveDate,
    #[serde(deserialize_with = "date")]
    pub to: NaiveDate,
    pub mwh: f64,
    /// Emission factor of the instrument (0 for renewable EACs).
    #[serde(default)]
    pub factor_g_per_kwh: f64,
}

/// A day as a TOML local date or a `YYYY-MM-DD` string.
fn date<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<NaiveDate, D::Error> {
    use serde::de::Error;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Day {
        Text(String),
        Toml(toml::value::Datetime),
    }
    let text =
        match Day::deserialize(d).map_err(|_| D::Error::custom("expected a date YYYY-MM-DD"))? {
            Day::Text(s) => s,
            Day::Toml(t) if t.time.is_none() && t.offset.is_none() => t.to_string(),
            Day::Toml(_) => return Err(D::Error::custom("expected a date without a time")),
        };
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .map_err(|_| D::Error::custom("expected a date YYYY-MM-DD"))
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

/// The largest contractual instrument, MWh: its energy in mJ (x 3.6e12) must fit an
/// i64 (9.2e18 mJ = 2.56 TWh). A larger contract is entered as several instruments.
pub const MAX_INSTRUMENT_MWH: f64 = 2_000_000.0;
/// The largest emission factor, gCO2e/kWh (the dirtiest grids are near 1,200).
pub const MAX_FACTOR_G_PER_KWH: f64 = 10_000.0;
/// The largest embodied carbon per GPU, kgCO2e (published accelerator PCFs are in the
/// hundreds to a few thousand).
pub const MAX_EMBODIED_KG_PER_GPU: f64 = 1_000_000.0;
/// The range of a hardware lifetime, years.
pub const LIFETIME_YEARS: std::ops::RangeInclusive<f64> = 0.1..=100.0;

/// `v * scale`, rounded, when `v` is finite and within `0..=max`: the checked way a
/// configured decimal becomes an integer figure (never a saturating cast).
fn scaled(what: &str, v: f64, max: f64, scale: f64) -> Result<i64> {
    if !v.is_finite() || !(0.0..=max).contains(&v) {
        invalid!("{what} = {v} must be a number between 0 and {max}");
    }
    let x = (v * scale).round();
    if x >= i64::MAX as f64 {
        invalid!("{what} = {v} is too large");
    }
    Ok(x as i64)
}

impl PipelineConfig {
    /// Checks the configuration and that every figure converts to integers; errors
    /// name the entry and what to change.
    pub fn validate(&self) -> Result<()> {
        for (name, s) in &self.sites {
            if !(1.0..=5.0).contains(&s.pue) {
                invalid!(
                    "[pipeline.sites.{name:?}] pue = {} must be between 1.0 and 5.0",
                    s.pue
                );
            }
            if let Some(h) = &s.hardware
                && !self.hardware.contains_key(h)
            {
                invalid!(
                    "[pipeline.sites.{name:?}] hardware = {h:?} is not in [pipeline.hardware] (have: {})",
                    self.hardware.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
        for (name, h) in &self.hardware {
            hardware_figures(name, h)?;
        }
        let mut ids = std::collections::BTreeSet::new();
        for i in &self.instruments {
            if !ids.insert(&i.id) {
                invalid!(
                    "instrument {:?} is listed twice: a certificate may be claimed once (remove the duplicate)",
                    i.id
                );
            }
            if i.to < i.from {
                invalid!(
                    "instrument {:?}: to {} is before from {}",
                    i.id,
                    i.to,
                    i.from
                );
            }
        }
        self.instruments()?;
        for zone in self.residual_mix.keys() {
            self.residual_mg_per_kwh(zone)?;
        }
        if self.chunk_records == 0 {
            invalid!("[pipeline] chunk_records must be at least 1");
        }
        Ok(())
    }

    /// A site's figures (the defaults for a site the configuration does not name).
    pub fn site(&self, site: &str) -> Result<SiteFigures> {
        let s = self.sites.get(site);
        let hw = s
            .and_then(|s| s.hardware.as_ref())
            .and_then(|h| self.hardware.get(h).map(|hw| (h, hw)));
        let (embodied_g_per_gpu, lifetime_us, embodied_source) = match hw {
            Some((name, h)) => hardware_figures(name, h)?,
            None => {
                let default = Hardware {
                    embodied_kg_per_gpu: DEFAULT_EMBODIED_KG_PER_GPU,
                    lifetime_years: DEFAULT_LIFETIME_YEARS,
                    source: DEFAULT_EMBODIED_SOURCE.to_string(),
                };
                hardware_figures("default", &default)?
            }
        };
        let pue = s.map_or(DEFAULT_PUE, |s| s.pue);
        if !(1.0..=5.0).contains(&pue) {
            invalid!("[pipeline.sites.{site:?}] pue = {pue} must be between 1.0 and 5.0");
        }
        Ok(SiteFigures {
            pue_milli: (pue * 1000.0).round() as i64,
            pue_default: s.is_none(),
            scope: s.map(|s| s.scope).unwrap_or_default(),
            embodied_g_per_gpu,
            lifetime_us,
            embodied_source,
        })
    }

    pub fn instruments(&self) -> Result<Vec<InstrumentFigures>> {
        self.instruments
            .iter()
            .map(|i| {
                // MWh -> Wh (x1e6, rounded) -> mJ (x3.6e6); the bound keeps it in i64.
                let wh = scaled(
                    &format!("instrument {:?} mwh", i.id),
                    i.mwh,
                    MAX_INSTRUMENT_MWH,
                    1e6,
                )?;
                let factor_mg_per_kwh = scaled(
                    &format!("instrument {:?} factor_g_per_kwh", i.id),
                    i.factor_g_per_kwh,
                    MAX_FACTOR_G_PER_KWH,
                    1000.0,
                )?;
                let Some(energy_mj) = wh.checked_mul(3_600_000) else {
                    invalid!("instrument {:?} mwh = {} is too large", i.id, i.mwh)
                };
                Ok(InstrumentFigures {
                    id: i.id.clone(),
                    kind: i.kind.clone(),
                    zone: i.zone.clone(),
                    from: i.from,
                    to: i.to,
                    energy_mj,
                    factor_mg_per_kwh,
                })
            })
            .collect()
    }

    /// The configured residual mix of `zone` in mg/kWh, if any.
    pub fn residual_mg_per_kwh(&self, zone: &str) -> Result<Option<i64>> {
        self.residual_mix
            .get(zone)
            .map(|v| {
                scaled(
                    &format!("residual_mix {zone:?}"),
                    *v,
                    MAX_FACTOR_G_PER_KWH,
                    1000.0,
                )
            })
            .transpose()
    }
}

/// Embodied grams per GPU, lifetime in microseconds, source.
fn hardware_figures(name: &str, h: &Hardware) -> Result<(i64, i64, String)> {
    let what = format!("[pipeline.hardware.{name:?}]");
    let g = scaled(
        &format!("{what} embodied_kg_per_gpu"),
        h.embodied_kg_per_gpu,
        MAX_EMBODIED_KG_PER_GPU,
        1000.0,
    )?;
    if !LIFETIME_YEARS.contains(&h.lifetime_years) {
        invalid!(
            "{what} lifetime_years = {} must be between {} and {}",
            h.lifetime_years,
            LIFETIME_YEARS.start(),
            LIFETIME_YEARS.end()
        );
    }
    // A year is 365.25 days; whole seconds, then microseconds.
    let seconds = (h.lifetime_years * 365.25 * 86_400.0).round() as i64;
    Ok((g, seconds * 1_000_000, h.source.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> PipelineConfig {
        crate::Config::parse("gco.toml", text).unwrap().pipeline
    }

    #[test]
    fn figures_convert_exactly_and_out_of_range_values_are_refused() {
        // TOML dates here, strings below: both are days.
        let c = parse(
            "[pipeline.sites.a]\npue = 1.2\nhardware = \"h\"\n\
             [pipeline.hardware.h]\nembodied_kg_per_gpu = 2500.5\nlifetime_years = 4\nsource = \"pcf\"\n\
             [[pipeline.instruments]]\nid = \"go-1\"\nkind = \"go\"\nzone = \"DE\"\n\
             from = 2026-01-01\nto = 2026-12-31\nmwh = 2000000\nfactor_g_per_kwh = 12.345\n\
             [pipeline.residual_mix]\nDE = 713.2\n",
        );
        c.validate().unwrap();
        let s = c.site("a").unwrap();
        assert_eq!((s.pue_milli, s.embodied_g_per_gpu), (1200, 2_500_500));
        assert_eq!(s.lifetime_us, 126_230_400_000_000);
        let i = &c.instruments().unwrap()[0];
        assert_eq!(
            (i.energy_mj, i.factor_mg_per_kwh),
            (7_200_000_000_000_000_000, 12_345)
        );
        assert_eq!(c.residual_mg_per_kwh("DE").unwrap(), Some(713_200));
        assert_eq!(
            (i.from.to_string(), i.to.to_string()),
            ("2026-01-01".into(), "2026-12-31".into())
        );
        let timed = crate::Config::parse(
            "gco.toml",
            "[[pipeline.instruments]]\nid = \"x\"\nkind = \"go\"\nzone = \"DE\"\nfrom = 2026-01-01T00:00:00Z\nto = 2026-12-31\nmwh = 1\n",
        );
        assert!(timed.unwrap_err().to_string().contains("without a time"));
        // The default site uses the default hardware.
        let d = c.site("elsewhere").unwrap();
        assert_eq!((d.pue_milli, d.embodied_g_per_gpu), (1560, 150_000));

        // Each of these once converted with a saturating cast (or overflowed).
        for (bad, says) in [
            ("mwh = 2000000", "mwh = 3000000"),
            ("mwh = 2000000", "mwh = 1e300"),
            ("factor_g_per_kwh = 12.345", "factor_g_per_kwh = 1e16"),
            ("embodied_kg_per_gpu = 2500.5", "embodied_kg_per_gpu = 1e30"),
            ("lifetime_years = 4", "lifetime_years = 1e-12"),
            ("lifetime_years = 4", "lifetime_years = 1e300"),
            ("DE = 713.2", "DE = 1e20"),
        ] {
            let text = "[pipeline.sites.a]\npue = 1.2\nhardware = \"h\"\n\
                 [pipeline.hardware.h]\nembodied_kg_per_gpu = 2500.5\nlifetime_years = 4\nsource = \"pcf\"\n\
                 [[pipeline.instruments]]\nid = \"go-1\"\nkind = \"go\"\nzone = \"DE\"\n\
                 from = \"2026-01-01\"\nto = \"2026-12-31\"\nmwh = 2000000\nfactor_g_per_kwh = 12.345\n\
                 [pipeline.residual_mix]\nDE = 713.2\n"
            .replace(bad, says);
            let err = parse(&text).validate().unwrap_err().to_string();
            let key = says.split(' ').next().unwrap();
            assert!(err.contains(key), "{says}: {err}");
        }
    }
}
