//! Grid carbon intensity for gco: what a kWh consumed in a zone at a time emitted.
//!
//! The pipeline of this crate:
//!
//! 1. [`baseline`]: annual figures bundled in `data/` (countries, Canadian provinces,
//!    eGRID subregions, cloud regions, per-source factors, world average), each with its
//!    provenance (`data/PROVENANCE.md`).
//! 2. [`catalog`]: our zone ids, their parent country and the codes each provider uses;
//!    an unknown zone is an error naming the closest matches.
//! 3. [`series`]: time series of intensity points cached as Parquet in the store
//!    (`grid/source=.../zone=.../month=YYYY-MM/`), append-only, and an in-memory index.
//! 4. [`cascade`]: the answer for a (zone, time): provider measured -> provider
//!    estimated -> regional annual baseline -> country annual -> world average, with
//!    value, signal, basis, source, fallback level and the data point's own time.
//! 5. [`synthetic`]: the deterministic hourly series `gco demo` stores in the cache.
//!
//! Intensities are integer milligrams CO2e per kWh ([`MgPerKwh`]).

pub mod backfill;
pub mod baseline;
pub mod cascade;
pub mod catalog;
pub mod error;
pub mod frame;
pub mod providers;
pub mod series;
pub mod synthetic;

pub use baseline::Baselines;
pub use cascade::{FallbackLevel, Intensity, Resolver};
pub use catalog::{Zone, ZoneCatalog};
pub use error::{GridError, Result};

use serde::{Deserialize, Serialize};

/// Carbon intensity in integer mg CO2e/kWh (defined with the other units in
/// `gco_ledger::units`).
pub use gco_ledger::units::MgPerKwh;

/// Whether a figure is the average of the generation mix or the marginal unit's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Average,
    Marginal,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Average => "average",
            Signal::Marginal => "marginal",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "average" => Some(Signal::Average),
            "marginal" => Some(Signal::Marginal),
            _ => None,
        }
    }
}

/// Emission factor basis: lifecycle (upstream included) or direct (combustion only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Lifecycle,
    Direct,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Lifecycle => "lifecycle",
            Basis::Direct => "direct",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "lifecycle" => Some(Basis::Lifecycle),
            "direct" => Some(Basis::Direct),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pound_conversion_is_exact_integer_rounding() {
        // eGRID2022 CAMX 497.443 lb/MWh = 225.636... g/kWh
        assert_eq!(MgPerKwh::from_milli_lb_per_mwh(497_443), MgPerKwh(225_636));
        assert_eq!(MgPerKwh::from_milli_lb_per_mwh(1_000), MgPerKwh(454));
        assert_eq!(MgPerKwh::from_milli_lb_per_mwh(0), MgPerKwh(0));
    }
}
