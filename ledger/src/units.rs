//! The units of the accounting, as types, and their conversions, defined once.
//!
//! Every figure gco sums is an integer: energy in millijoules ([`Millijoules`]),
//! carbon intensity in milligrams CO2e per kWh ([`MgPerKwh`]), emissions in nanograms
//! CO2e ([`Nanograms`], summed in `i128`), PUE in thousandths ([`PueMilli`]), time in
//! microseconds ([`Micros`](crate::time::Micros)). Each product rounds once, half up,
//! and returns `None` where the result would not fit: an overflow is an error naming
//! the row, never a clamped value. Floating point is for display only.

use serde::{Deserialize, Serialize};

/// Millijoules in a kilowatt-hour (1 kWh = 3.6e6 J).
///
/// ```
/// use gco_ledger::units::{MJ_PER_KWH, MJ_PER_MWH};
/// assert_eq!(MJ_PER_KWH, 3_600 * 1_000 * 1_000);
/// assert_eq!(MJ_PER_MWH, 1_000 * MJ_PER_KWH);
/// ```
pub const MJ_PER_KWH: i64 = 3_600_000_000;
/// Millijoules in a megawatt-hour.
pub const MJ_PER_MWH: i64 = 1_000 * MJ_PER_KWH;
/// Milligrams in a gram.
pub const MG_PER_G: i64 = 1_000;
/// Nanograms in a milligram.
pub const NG_PER_MG: i64 = 1_000_000;
/// Nanograms in a gram.
///
/// ```
/// use gco_ledger::units::{MG_PER_G, NG_PER_G, NG_PER_KG, NG_PER_MG};
/// assert_eq!(NG_PER_G, MG_PER_G * NG_PER_MG);
/// assert_eq!(NG_PER_KG, 1_000 * NG_PER_G);
/// ```
pub const NG_PER_G: i64 = MG_PER_G * NG_PER_MG;
/// Nanograms in a kilogram.
pub const NG_PER_KG: i64 = 1_000 * NG_PER_G;
/// Nanograms in a tonne.
pub const NG_PER_T: i128 = 1_000 * NG_PER_KG as i128;

/// `n / d` rounded half up, for `d > 0` (a negative `n` rounds half away from zero);
/// `None` where `2n + d` would not fit 128 bits.
///
/// ```
/// use gco_ledger::units::checked_round_div;
/// assert_eq!(checked_round_div(5, 2), Some(3));
/// assert_eq!(checked_round_div(4, 3), Some(1));
/// assert_eq!(checked_round_div(-5, 2), Some(-3));
/// assert_eq!(checked_round_div(i128::MAX, 2), None);
/// ```
pub fn checked_round_div(n: i128, d: i128) -> Option<i128> {
    debug_assert!(d > 0);
    // The common case in 64 bits (a 128-bit division is a library call): the same
    // result whenever 2n + d fits.
    if let (Ok(n), Ok(d)) = (u64::try_from(n), u64::try_from(d))
        && let Some(twice) = n.checked_mul(2).and_then(|t| t.checked_add(d))
        && let Some(twice_d) = d.checked_mul(2)
    {
        return Some(i128::from(twice / twice_d));
    }
    let twice_d = d.checked_mul(2)?;
    if n >= 0 {
        Some(n.checked_mul(2)?.checked_add(d)? / twice_d)
    } else {
        Some(-(n.checked_neg()?.checked_mul(2)?.checked_add(d)? / twice_d))
    }
}

fn to_i64(v: i128) -> Option<i64> {
    i64::try_from(v).ok()
}

/// An integer unit: a transparent `i64` newtype (serialised as the number).
macro_rules! unit {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);
    };
}

unit!(
    /// Energy in integer millijoules: the unit every energy sum in gco is made in.
    #[derive(Default)]
    Millijoules
);

impl Millijoules {
    /// Kilowatt-hours, for display only. Never sum these.
    pub fn as_kwh_f64(self) -> f64 {
        self.0 as f64 / MJ_PER_KWH as f64
    }
    pub fn checked_add(self, other: Millijoules) -> Option<Millijoules> {
        self.0.checked_add(other.0).map(Millijoules)
    }
    /// Facility energy: this IT energy times the PUE, rounded half up.
    ///
    /// ```
    /// use gco_ledger::units::{Millijoules, PueMilli};
    /// // 1,001 mJ x 1.560 = 1,561.56 mJ
    /// assert_eq!(Millijoules(1001).times_pue(PueMilli(1560)), Some(Millijoules(1562)));
    /// assert_eq!(Millijoules(i64::MAX).times_pue(PueMilli(2000)), None);
    /// ```
    pub fn times_pue(self, pue: PueMilli) -> Option<Millijoules> {
        let n = i128::from(self.0).checked_mul(i128::from(pue.0))?;
        to_i64(checked_round_div(n, PueMilli::ONE.0.into())?).map(Millijoules)
    }
    /// The emissions of this energy at `intensity`: mJ x mg/kWh / (mJ per kWh) in mg,
    /// x ng per mg, so ng = mJ x mg/kWh / 3,600, rounded half up.
    ///
    /// ```
    /// use gco_ledger::units::{MgPerKwh, Millijoules, Nanograms, MJ_PER_KWH};
    /// // 1 kWh at 100 g/kWh = 100 g
    /// assert_eq!(Millijoules(MJ_PER_KWH).at(MgPerKwh(100_000)), Some(Nanograms(100_000_000_000)));
    /// // 1 J at 56 g/kWh: 1000 x 56000 / 3600 = 15,555.6 ng
    /// assert_eq!(Millijoules(1000).at(MgPerKwh(56_000)), Some(Nanograms(15_556)));
    /// ```
    pub fn at(self, intensity: MgPerKwh) -> Option<Nanograms> {
        let n = i128::from(self.0).checked_mul(i128::from(intensity.0))?;
        to_i64(checked_round_div(n, i128::from(MJ_PER_KWH / NG_PER_MG))?).map(Nanograms)
    }
}

unit!(
    /// Carbon intensity in integer milligrams CO2e per kWh (1 gCO2e/kWh = 1000).
    MgPerKwh
);

impl MgPerKwh {
    /// Grams per kWh, for display.
    pub fn as_g_per_kwh(self) -> f64 {
        self.0 as f64 / MG_PER_G as f64
    }
    /// From pounds per MWh given in thousandths (lb/MWh x 1000), rounded half up:
    /// 1 lb/MWh = 0.45359237 g/kWh.
    ///
    /// ```
    /// use gco_ledger::units::MgPerKwh;
    /// assert_eq!(MgPerKwh::from_milli_lb_per_mwh(1_000), MgPerKwh(454)); // 453.59
    /// ```
    pub fn from_milli_lb_per_mwh(milli_lb: i64) -> Self {
        // mg/kWh = lb/MWh * 453.59237 = milli_lb * 45359237 / 1e8
        let num = milli_lb as i128 * 45_359_237;
        MgPerKwh(((num + 50_000_000) / 100_000_000) as i64)
    }
}

unit!(
    /// Emissions in integer nanograms CO2e: one row's figure (sums are `i128`).
    #[derive(Default)]
    Nanograms
);

impl Nanograms {
    /// Kilograms, for display only.
    pub fn as_kg_f64(self) -> f64 {
        self.0 as f64 / NG_PER_KG as f64
    }
    /// From whole grams (an embodied footprint in gco.toml); `None` past 64 bits.
    ///
    /// ```
    /// use gco_ledger::units::Nanograms;
    /// assert_eq!(Nanograms::from_g(150), Some(Nanograms(150_000_000_000)));
    /// ```
    pub fn from_g(g: i64) -> Option<Nanograms> {
        g.checked_mul(NG_PER_G).map(Nanograms)
    }
}

unit!(
    /// Power usage effectiveness in thousandths (1.56 = 1560).
    PueMilli
);

impl PueMilli {
    /// A PUE of 1: facility energy equals IT energy.
    pub const ONE: PueMilli = PueMilli(1000);
}
