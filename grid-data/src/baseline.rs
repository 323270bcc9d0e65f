//! Bundled annual baselines (`grid-data/data/*.csv`), parsed once, with provenance.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::MgPerKwh;
use crate::error::{GridError, Result};

/// Basis of a bundled figure, as far as its source states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FigureBasis {
    Lifecycle,
    Direct,
    /// The source does not say whether upstream emissions are included.
    Unspecified,
}

impl FigureBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            FigureBasis::Lifecycle => "lifecycle",
            FigureBasis::Direct => "direct",
            FigureBasis::Unspecified => "unspecified",
        }
    }
}

/// One annual figure and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnnualFigure {
    pub value: MgPerKwh,
    pub year: i32,
    pub basis: FigureBasis,
    /// Human-readable source, as in PROVENANCE.md.
    pub source: &'static str,
    /// Bundled file the figure is read from.
    pub dataset: &'static str,
}

/// A country's figure and generation mix (TWh; for energy-mix splits, not for sums).
#[derive(Debug, Clone, Serialize)]
pub struct Country {
    pub iso2: String,
    pub iso3: String,
    pub name: String,
    pub figure: AnnualFigure,
    pub fossil_twh: Option<f64>,
    pub nuclear_twh: Option<f64>,
    pub renewables_twh: Option<f64>,
    pub total_twh: Option<f64>,
}

/// A sub-national or provider-region figure.
#[derive(Debug, Clone, Serialize)]
pub struct Regional {
    pub zone: String,
    pub name: String,
    /// ISO 3166 alpha-2 of the country it lies in.
    pub country: String,
    pub kind: &'static str,
    pub figure: AnnualFigure,
}

/// Everything bundled.
#[derive(Debug, Clone)]
pub struct Baselines {
    pub countries: BTreeMap<String, Country>,
    pub regional: BTreeMap<String, Regional>,
    /// Lifecycle factor per generation source, with its reference.
    pub source_factors: BTreeMap<String, (MgPerKwh, String)>,
    pub world: AnnualFigure,
}

pub const COUNTRIES_CSV: &str = include_str!("../data/countries.csv");
pub const CANADA_CSV: &str = include_str!("../data/canada_provinces.csv");
pub const EGRID_CSV: &str = include_str!("../data/egrid_subregions.csv");
pub const CLOUD_CSV: &str = include_str!("../data/cloud_regions.csv");
pub const FACTORS_CSV: &str = include_str!("../data/source_factors.csv");
pub const US_STATES_CSV: &str = include_str!("../data/us_states.csv");
pub const NORDIC_CSV: &str = include_str!("../data/nordic_zones.csv");

const SRC_OWID: &str =
    "Our World in Data (Ember, Energy Institute), via CodeCarbon 3.3.2; CC BY 4.0";
const SRC_CANADA: &str = "Canada Energy Regulator 2023 generation mix x lifecycle factors per source, via CodeCarbon 3.3.2";
const SRC_EGRID: &str = "US EPA eGRID2022 subregion CO2 output emission rate; public domain";
const SRC_EGRID_STATE: &str = "US EPA eGRID2023 state CO2e total output emission rate (STC2ERTA), via CodeCarbon 3.3.2; public domain";
const SRC_NORDIC: &str = "ENTSO-E 2025 generation per bidding zone x lifecycle factors per source (Khepri v1.3), via CodeCarbon 3.3.2";
const SRC_GCP: &str = "Google Cloud region carbon data, via CodeCarbon 3.3.2";
const SRC_WORLD: &str =
    "IEA Global Energy & CO2 Status Report 2019, world average, via CodeCarbon 3.3.2";

fn rows<T: for<'de> Deserialize<'de>>(file: &'static str, text: &str) -> Result<Vec<T>> {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    rdr.deserialize()
        .enumerate()
        .map(|(i, r)| {
            r.map_err(|e| GridError::BundledData {
                file,
                line: i as u64 + 2,
                reason: e.to_string(),
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct CountryRow {
    iso2: String,
    iso3: String,
    name: String,
    year: i32,
    intensity_mg_per_kwh: i64,
    fossil_twh: Option<f64>,
    nuclear_twh: Option<f64>,
    renewables_twh: Option<f64>,
    total_twh: Option<f64>,
}

#[derive(Deserialize)]
struct CanadaRow {
    zone: String,
    province: String,
    year: i32,
    intensity_mg_per_kwh: i64,
}

#[derive(Deserialize)]
struct EgridRow {
    zone: String,
    name: String,
    year: i32,
    intensity_mg_per_kwh: i64,
}

#[derive(Deserialize)]
struct StateRow {
    zone: String,
    state: String,
    year: i32,
    intensity_mg_per_kwh: i64,
}

#[derive(Deserialize)]
struct NordicRow {
    zone: String,
    description: String,
    year: i32,
    intensity_mg_per_kwh: i64,
}

#[derive(Deserialize)]
struct CloudRow {
    provider: String,
    region: String,
    country_iso3: String,
    intensity_mg_per_kwh: i64,
}

#[derive(Deserialize)]
struct FactorRow {
    source: String,
    intensity_mg_per_kwh: i64,
    reference: String,
}

fn annual(
    mg: i64,
    year: i32,
    basis: FigureBasis,
    source: &'static str,
    dataset: &'static str,
) -> AnnualFigure {
    AnnualFigure {
        value: MgPerKwh(mg),
        year,
        basis,
        source,
        dataset,
    }
}

impl Baselines {
    /// The bundled baselines, parsed on first use.
    pub fn bundled() -> Result<&'static Baselines> {
        static CELL: OnceLock<std::result::Result<Baselines, String>> = OnceLock::new();
        CELL.get_or_init(|| Self::parse().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| GridError::BundledData {
                file: "grid-data/data",
                line: 0,
                reason: e.clone(),
            })
    }

    fn parse() -> Result<Baselines> {
        let mut countries = BTreeMap::new();
        let mut iso3_to_2 = BTreeMap::new();
        for r in rows::<CountryRow>("countries.csv", COUNTRIES_CSV)? {
            iso3_to_2.insert(r.iso3.clone(), r.iso2.clone());
            countries.insert(
                r.iso2.clone(),
                Country {
                    figure: AnnualFigure {
                        value: MgPerKwh(r.intensity_mg_per_kwh),
                        year: r.year,
                        basis: FigureBasis::Lifecycle,
                        source: SRC_OWID,
                        dataset: "countries.csv",
                    },
                    iso2: r.iso2,
                    iso3: r.iso3,
                    name: r.name,
                    fossil_twh: r.fossil_twh,
                    nuclear_twh: r.nuclear_twh,
                    renewables_twh: r.renewables_twh,
                    total_twh: r.total_twh,
                },
            );
        }
        let mut regional = BTreeMap::new();
        let mut add = |zone: String,
                       name: String,
                       country: String,
                       kind: &'static str,
                       figure: AnnualFigure| {
            regional.insert(
                zone.clone(),
                Regional {
                    zone,
                    name,
                    country,
                    kind,
                    figure,
                },
            );
        };
        for r in rows::<CanadaRow>("canada_provinces.csv", CANADA_CSV)? {
            let fig = annual(
                r.intensity_mg_per_kwh,
                r.year,
                FigureBasis::Lifecycle,
                SRC_CANADA,
                "canada_provinces.csv",
            );
            add(r.zone, r.province, "CA".into(), "province", fig);
        }
        for r in rows::<EgridRow>("egrid_subregions.csv", EGRID_CSV)? {
            let fig = annual(
                r.intensity_mg_per_kwh,
                r.year,
                FigureBasis::Direct,
                SRC_EGRID,
                "egrid_subregions.csv",
            );
            add(r.zone, r.name, "US".into(), "egrid_subregion", fig);
        }
        for r in rows::<StateRow>("us_states.csv", US_STATES_CSV)? {
            let fig = annual(
                r.intensity_mg_per_kwh,
                r.year,
                FigureBasis::Direct,
                SRC_EGRID_STATE,
                "us_states.csv",
            );
            add(r.zone, r.state, "US".into(), "state", fig);
        }
        for r in rows::<NordicRow>("nordic_zones.csv", NORDIC_CSV)? {
            let fig = annual(
                r.intensity_mg_per_kwh,
                r.year,
                FigureBasis::Lifecycle,
                SRC_NORDIC,
                "nordic_zones.csv",
            );
            let country = r.zone[..2].to_string();
            add(r.zone, r.description, country, "bidding_zone", fig);
        }
        for (i, r) in rows::<CloudRow>("cloud_regions.csv", CLOUD_CSV)?
            .into_iter()
            .enumerate()
        {
            let country =
                iso3_to_2
                    .get(&r.country_iso3)
                    .cloned()
                    .ok_or_else(|| GridError::BundledData {
                        file: "cloud_regions.csv",
                        line: i as u64 + 2,
                        reason: format!("unknown country {}", r.country_iso3),
                    })?;
            let fig = AnnualFigure {
                value: MgPerKwh(r.intensity_mg_per_kwh),
                year: 0,
                basis: FigureBasis::Unspecified,
                source: SRC_GCP,
                dataset: "cloud_regions.csv",
            };
            add(
                format!("{}:{}", r.provider, r.region),
                r.region,
                country,
                "cloud_region",
                fig,
            );
        }
        let mut source_factors = BTreeMap::new();
        for r in rows::<FactorRow>("source_factors.csv", FACTORS_CSV)? {
            source_factors.insert(r.source, (MgPerKwh(r.intensity_mg_per_kwh), r.reference));
        }
        let world = source_factors
            .get("world_average")
            .map(|(v, _)| AnnualFigure {
                value: *v,
                year: 2019,
                basis: FigureBasis::Unspecified,
                source: SRC_WORLD,
                dataset: "source_factors.csv",
            })
            .ok_or_else(|| GridError::BundledData {
                file: "source_factors.csv",
                line: 0,
                reason: "no world_average row".into(),
            })?;
        Ok(Baselines {
            countries,
            regional,
            source_factors,
            world,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_figures_equal_their_sources() {
        let b = Baselines::bundled().unwrap();
        assert_eq!(b.countries.len(), 213);
        // OWID/Ember via CodeCarbon: France 56.039 (2023), Iceland 27.68 (2022) gCO2e/kWh.
        assert_eq!(b.countries["FR"].figure.value, MgPerKwh(56_039));
        assert_eq!(b.countries["FR"].figure.year, 2023);
        assert_eq!(b.countries["IS"].figure.value, MgPerKwh(27_680));
        assert_eq!(b.countries["IS"].iso3, "ISL");
        // eGRID2022 CAMX 497.443 lb/MWh.
        assert_eq!(
            b.regional["US-EGRID-CAMX"].figure.value,
            MgPerKwh::from_milli_lb_per_mwh(497_443)
        );
        assert_eq!(
            b.regional["US-EGRID-CAMX"].figure.basis,
            FigureBasis::Direct
        );
        // Google Cloud europe-west1 (Belgium).
        assert_eq!(b.regional["gcp:europe-west1"].country, "BE");
        assert_eq!(
            b.regional["gcp:europe-west1"].figure.value,
            MgPerKwh(122_000)
        );
        // eGRID2023 California 394.769 lb/MWh; Sweden SE3 27.0 g/kWh (2025).
        assert_eq!(
            b.regional["US-CA"].figure.value,
            MgPerKwh::from_milli_lb_per_mwh(394_769)
        );
        assert_eq!(b.regional["US-CA"].figure.value, MgPerKwh(179_064));
        assert_eq!(b.regional["SE-SE3"].figure.value, MgPerKwh(27_000));
        assert_eq!(
            b.regional.values().filter(|r| r.kind == "state").count(),
            51
        );
        assert_eq!(b.world.value, MgPerKwh(475_000));
        assert_eq!(b.source_factors["coal"].0, MgPerKwh(995_000));
        assert_eq!(
            b.regional.values().filter(|r| r.kind == "province").count(),
            13
        );
    }
}
