//! The fallback cascade: the best available intensity for a (zone, time), with the
//! provenance of the figure that answered.

use gco_ledger::time::{Micros, format_utc};
use serde::Serialize;

use crate::baseline::{AnnualFigure, Baselines};
use crate::catalog::ZoneCatalog;
use crate::error::Result;
use crate::series::{SeriesIndex, ZoneHandle};
use crate::{MgPerKwh, Signal};

/// Which level of the cascade answered, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackLevel {
    ProviderMeasured = 0,
    ProviderEstimated = 1,
    RegionalAnnual = 2,
    CountryAnnual = 3,
    WorldAverage = 4,
}

/// The answer for one (zone, time).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Intensity {
    pub zone: String,
    pub at: String,
    pub value_mg_per_kwh: i64,
    pub g_per_kwh: f64,
    /// What the value is. A marginal request that no cached marginal series covers is
    /// answered with the annual average, and says so here.
    pub signal: Signal,
    /// `lifecycle`, `direct` or `unspecified`.
    pub basis: &'static str,
    pub source: String,
    pub fallback_level: FallbackLevel,
    /// 0 (provider measured) .. 4 (world average).
    pub fallback_rank: u8,
    /// The zone whose figure was used (the zone itself, its country, or `WORLD`).
    pub figure_zone: String,
    /// Start of the data point's own period (an annual figure's year start).
    pub data_time: String,
    /// Length of that period: `PT1H`, `PT5M`, `P1Y`, ...
    pub data_period: String,
}

/// Resolves intensities from the cache and the bundled baselines.
pub struct Resolver {
    pub catalog: ZoneCatalog,
    pub baselines: &'static Baselines,
    pub series: SeriesIndex,
}

fn iso_period(seconds: i64) -> String {
    match seconds {
        s if s % 3600 == 0 => format!("PT{}H", s / 3600),
        s if s % 60 == 0 => format!("PT{}M", s / 60),
        s => format!("PT{s}S"),
    }
}

fn year_start(year: i32) -> String {
    if year <= 0 {
        return "unknown".into();
    }
    format!("{year:04}-01-01T00:00:00.000000Z")
}

impl Resolver {
    /// A resolver over the bundled data and `series`.
    pub fn new(series: SeriesIndex) -> Result<Self> {
        Ok(Resolver {
            catalog: ZoneCatalog::bundled()?,
            baselines: Baselines::bundled()?,
            series,
        })
    }

    /// The cascade for `zone` at `at`. Unknown zones are an error naming close matches.
    pub fn resolve(&self, zone: &str, at: Micros, signal: Signal) -> Result<Intensity> {
        let z = self.catalog.resolve(zone)?;
        let handle = self.series.handle(&z.id);
        if let Some(ans) = handle.and_then(|h| self.series_answer(zone, h, at, signal)) {
            return Ok(ans);
        }
        let annual = |level: FallbackLevel, figure_zone: &str, f: &AnnualFigure| Intensity {
            zone: z.id.clone(),
            at: format_utc(at),
            value_mg_per_kwh: f.value.0,
            g_per_kwh: f.value.as_g_per_kwh(),
            signal: Signal::Average,
            basis: f.basis.as_str(),
            source: f.source.to_string(),
            fallback_level: level,
            fallback_rank: level as u8,
            figure_zone: figure_zone.to_string(),
            data_time: year_start(f.year),
            data_period: "P1Y".into(),
        };
        if let Some(r) = self.baselines.regional.get(&z.id) {
            return Ok(annual(FallbackLevel::RegionalAnnual, &z.id, &r.figure));
        }
        if let Some(c) = self.baselines.countries.get(&z.country) {
            return Ok(annual(FallbackLevel::CountryAnnual, &c.iso2, &c.figure));
        }
        Ok(annual(
            FallbackLevel::WorldAverage,
            "WORLD",
            &self.baselines.world,
        ))
    }

    fn series_answer(
        &self,
        zone: &str,
        h: ZoneHandle,
        at: Micros,
        signal: Signal,
    ) -> Option<Intensity> {
        let p = self.series.lookup(h, signal, at)?;
        let level = if p.estimated {
            FallbackLevel::ProviderEstimated
        } else {
            FallbackLevel::ProviderMeasured
        };
        Some(Intensity {
            zone: zone.to_string(),
            at: format_utc(at),
            value_mg_per_kwh: p.value.0,
            g_per_kwh: p.value.as_g_per_kwh(),
            signal,
            basis: p.basis.as_str(),
            source: self.series.source_name(p).to_string(),
            fallback_level: level,
            fallback_rank: level as u8,
            figure_zone: zone.to_string(),
            data_time: format_utc(p.start),
            data_period: iso_period((p.end - p.start) / 1_000_000),
        })
    }

    /// The value only, for hot loops: cached point, else the zone's annual figure.
    #[inline]
    pub fn value(&self, h: ZoneHandle, annual: MgPerKwh, at: Micros) -> MgPerKwh {
        self.series
            .lookup(h, Signal::Average, at)
            .map(|p| p.value)
            .unwrap_or(annual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Basis;
    use crate::series::Point;
    use gco_ledger::time::parse_utc;

    fn point(zone: &str, time: &str, mg: i64, estimated: bool, signal: Signal) -> (Point, Micros) {
        (
            Point {
                zone: zone.into(),
                time: parse_utc(time).unwrap(),
                period_s: 3600,
                value: MgPerKwh(mg),
                signal,
                basis: Basis::Direct,
                estimated,
                source: "electricitymaps".into(),
            },
            0,
        )
    }

    #[test]
    fn every_fallback_level_with_its_provenance() {
        let mut series = SeriesIndex::default();
        series.insert([
            point(
                "DE",
                "2026-10-01T10:00:00Z",
                312_000,
                false,
                Signal::Average,
            ),
            point("DE", "2026-10-01T11:00:00Z", 298_500, true, Signal::Average),
            point(
                "US-CA",
                "2026-10-01T10:00:00Z",
                410_000,
                false,
                Signal::Marginal,
            ),
        ]);
        let r = Resolver::new(series).unwrap();
        let at = |t: &str| parse_utc(t).unwrap();

        let a = r
            .resolve("DE", at("2026-10-01T10:30:00Z"), Signal::Average)
            .unwrap();
        assert_eq!(
            (a.fallback_level, a.value_mg_per_kwh, a.basis),
            (FallbackLevel::ProviderMeasured, 312_000, "direct")
        );
        assert_eq!(
            (a.data_time.as_str(), a.data_period.as_str()),
            ("2026-10-01T10:00:00.000000Z", "PT1H")
        );
        assert_eq!(a.source, "electricitymaps");

        let b = r
            .resolve("DE", at("2026-10-01T11:59:59Z"), Signal::Average)
            .unwrap();
        assert_eq!(
            (b.fallback_level, b.value_mg_per_kwh),
            (FallbackLevel::ProviderEstimated, 298_500)
        );

        // A gap in the series: Germany's annual figure (OWID 2023: 380.950 g/kWh).
        let c = r
            .resolve("DE", at("2026-10-01T12:00:00Z"), Signal::Average)
            .unwrap();
        assert_eq!(
            (c.fallback_level, c.value_mg_per_kwh, c.figure_zone.as_str()),
            (FallbackLevel::CountryAnnual, 380_950, "DE")
        );
        assert_eq!(
            (c.data_time.as_str(), c.data_period.as_str(), c.basis),
            ("2023-01-01T00:00:00.000000Z", "P1Y", "lifecycle")
        );

        // Regional annual: eGRID subregion and a cloud region.
        let d = r
            .resolve("US-EGRID-ERCT", at("2026-10-01T00:00:00Z"), Signal::Average)
            .unwrap();
        assert_eq!(
            (d.fallback_level, d.value_mg_per_kwh, d.basis),
            (FallbackLevel::RegionalAnnual, 349_757, "direct")
        );
        let e = r
            .resolve(
                "gcp:europe-west1",
                at("2026-10-01T00:00:00Z"),
                Signal::Average,
            )
            .unwrap();
        assert_eq!(
            (e.fallback_level, e.value_mg_per_kwh, e.basis),
            (FallbackLevel::RegionalAnnual, 122_000, "unspecified")
        );

        // A US state: eGRID2023 (New York 466.616 lb/MWh); a zone without its own
        // baseline falls to its country (Denmark's DK1 bidding zone -> DK).
        let f = r
            .resolve("US-NY", at("2026-10-01T00:00:00Z"), Signal::Average)
            .unwrap();
        assert_eq!(
            (f.fallback_level, f.figure_zone.as_str(), f.basis),
            (FallbackLevel::RegionalAnnual, "US-NY", "direct")
        );
        assert_eq!(f.value_mg_per_kwh, 211_653);
        assert_eq!(
            f.value_mg_per_kwh,
            MgPerKwh::from_milli_lb_per_mwh(466_616).0
        );
        let dk = r
            .resolve("DK-DK1", at("2026-10-01T00:00:00Z"), Signal::Average)
            .unwrap();
        assert_eq!(
            (dk.fallback_level, dk.figure_zone.as_str()),
            (FallbackLevel::CountryAnnual, "DK")
        );
        assert_eq!(
            dk.value_mg_per_kwh,
            r.baselines.countries["DK"].figure.value.0
        );

        // Marginal from the cache; a marginal request without a series gets the average, labelled.
        let g = r
            .resolve("US-CA", at("2026-10-01T10:15:00Z"), Signal::Marginal)
            .unwrap();
        assert_eq!(
            (g.fallback_level, g.signal, g.value_mg_per_kwh),
            (FallbackLevel::ProviderMeasured, Signal::Marginal, 410_000)
        );
        let h = r
            .resolve("FR", at("2026-10-01T10:15:00Z"), Signal::Marginal)
            .unwrap();
        assert_eq!((h.signal, h.value_mg_per_kwh), (Signal::Average, 56_039));

        assert!(r.resolve("ZZ-NOWHERE", 0, Signal::Average).is_err());
    }

    /// Offline, with an empty cache, every bundled country answers with its own figure.
    #[test]
    fn every_bundled_country_answers_offline() {
        let r = Resolver::new(SeriesIndex::default()).unwrap();
        for (csv_line, c) in crate::baseline::COUNTRIES_CSV
            .lines()
            .skip(1)
            .zip(r.baselines.countries.values())
        {
            let a = r.resolve(&c.iso2, 0, Signal::Average).unwrap();
            assert_eq!(
                (a.fallback_level, a.figure_zone.as_str()),
                (FallbackLevel::CountryAnnual, c.iso2.as_str())
            );
            // The value is the CSV's, column 5.
            let mg: i64 = csv_line.split(',').nth(4).unwrap().parse().unwrap();
            assert_eq!(a.value_mg_per_kwh, mg, "{}", c.iso2);
        }
        assert_eq!(r.baselines.countries.len(), 213);
    }

    #[test]
    fn world_average_is_the_last_resort() {
        // A site-defined zone whose country has no bundled figure.
        let mut r = Resolver::new(SeriesIndex::default()).unwrap();
        r.catalog.add(crate::catalog::Zone {
            id: "site:antarctic-1".into(),
            kind: "site".into(),
            country: "AQ".into(),
            name: "research station".into(),
            electricitymaps: None,
            watttime: None,
            uk_region: None,
        });
        let w = r.resolve("site:antarctic-1", 0, Signal::Average).unwrap();
        assert_eq!(
            (w.fallback_level, w.fallback_rank, w.value_mg_per_kwh),
            (FallbackLevel::WorldAverage, 4, 475_000)
        );
        assert_eq!(
            (w.figure_zone.as_str(), w.data_time.as_str()),
            ("WORLD", "2019-01-01T00:00:00.000000Z")
        );
        assert!(w.source.starts_with("IEA"));
    }
}
