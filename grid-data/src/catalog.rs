//! The zone catalog: our zone ids, their parent country, whether a regional baseline is
//! bundled, and the code each provider uses for them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::baseline::Baselines;
use crate::error::{GridError, Result};

pub const ZONES_CSV: &str = include_str!("../data/zones.csv");

/// One zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Zone {
    /// Our id: `FR`, `US-CA`, `CA-BC`, `SE-SE3`, `US-EGRID-CAMX`, `gcp:europe-west1`, ...
    pub id: String,
    /// country, state, province, bidding_zone, egrid_subregion, cloud_region, national_grid, uk_region
    pub kind: String,
    /// ISO 3166 alpha-2 of the country (the zone itself for countries).
    pub country: String,
    pub name: String,
    /// Electricity Maps zone.
    pub electricitymaps: Option<String>,
    /// WattTime region.
    pub watttime: Option<String>,
    /// UK Carbon Intensity region: `national` or a region id 1-17.
    pub uk_region: Option<String>,
}

#[derive(Deserialize)]
struct ZoneRow {
    zone: String,
    kind: String,
    country: String,
    name: String,
    electricitymaps: Option<String>,
    watttime: Option<String>,
    uk_region: Option<String>,
}

/// Every zone gco knows.
#[derive(Debug, Clone)]
pub struct ZoneCatalog {
    zones: BTreeMap<String, Zone>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

impl ZoneCatalog {
    /// The catalog of the bundled data: countries, regional baselines and `zones.csv`.
    pub fn bundled() -> Result<ZoneCatalog> {
        let b = Baselines::bundled()?;
        let mut zones = BTreeMap::new();
        for c in b.countries.values() {
            zones.insert(
                c.iso2.clone(),
                Zone {
                    id: c.iso2.clone(),
                    kind: "country".into(),
                    country: c.iso2.clone(),
                    name: c.name.clone(),
                    electricitymaps: Some(c.iso2.clone()),
                    watttime: None,
                    uk_region: None,
                },
            );
        }
        for r in b.regional.values() {
            zones.insert(
                r.zone.clone(),
                Zone {
                    id: r.zone.clone(),
                    kind: r.kind.into(),
                    country: r.country.clone(),
                    name: r.name.clone(),
                    electricitymaps: None,
                    watttime: None,
                    uk_region: None,
                },
            );
        }
        let mut rdr = csv::Reader::from_reader(ZONES_CSV.as_bytes());
        for (i, row) in rdr.deserialize::<ZoneRow>().enumerate() {
            let r = row.map_err(|e| GridError::BundledData {
                file: "zones.csv",
                line: i as u64 + 2,
                reason: e.to_string(),
            })?;
            if !b.countries.contains_key(&r.country) {
                return Err(GridError::BundledData {
                    file: "zones.csv",
                    line: i as u64 + 2,
                    reason: format!("country {} has no baseline", r.country),
                });
            }
            zones.insert(
                r.zone.clone(),
                Zone {
                    id: r.zone,
                    kind: r.kind,
                    country: r.country,
                    name: r.name,
                    electricitymaps: non_empty(r.electricitymaps),
                    watttime: non_empty(r.watttime),
                    uk_region: non_empty(r.uk_region),
                },
            );
        }
        Ok(ZoneCatalog { zones })
    }

    /// The zone with this id, or an error naming the closest ids.
    pub fn resolve(&self, id: &str) -> Result<&Zone> {
        if let Some(z) = self.zones.get(id) {
            return Ok(z);
        }
        let want = id.to_ascii_uppercase();
        let mut scored: Vec<(usize, &str)> = self
            .zones
            .keys()
            .map(|k| {
                (
                    strsim::levenshtein(&want, &k.to_ascii_uppercase()),
                    k.as_str(),
                )
            })
            .collect();
        scored.sort();
        Err(GridError::UnknownZone {
            zone: id.to_string(),
            closest: scored.iter().take(3).map(|(_, k)| k.to_string()).collect(),
        })
    }

    /// Adds or replaces a zone (site-specific zones from configuration).
    pub fn add(&mut self, zone: Zone) {
        self.zones.insert(zone.id.clone(), zone);
    }

    pub fn zones(&self) -> impl Iterator<Item = &Zone> {
        self.zones.values()
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_resolves_and_suggests() {
        let c = ZoneCatalog::bundled().unwrap();
        assert_eq!(
            c.resolve("FR").unwrap().electricitymaps.as_deref(),
            Some("FR")
        );
        let ca = c.resolve("US-CA").unwrap();
        assert_eq!(
            (ca.country.as_str(), ca.watttime.as_deref()),
            ("US", Some("CAISO_NORTH"))
        );
        assert_eq!(
            c.resolve("GB-UKREGION-13").unwrap().uk_region.as_deref(),
            Some("13")
        );
        assert_eq!(c.resolve("gcp:europe-west1").unwrap().country, "BE");
        match c.resolve("SE-SE5") {
            Err(GridError::UnknownZone { closest, .. }) => {
                assert!(closest.contains(&"SE-SE3".to_string()), "{closest:?}")
            }
            other => panic!("{other:?}"),
        }
        // 213 countries + 13 provinces + 4 eGRID + 40 cloud regions + 51 US + 11 Nordic + 15 GB
        assert_eq!(c.len(), 213 + 13 + 4 + 40 + 51 + 11 + 15);
    }
}
