//! The integer arithmetic of the accounting. Every figure is an integer: energy in mJ,
//! intensities in mg CO2e/kWh, emissions in ng CO2e, PUE in thousandths. Each row's
//! figures are rounded once (half up); report sums are sums of row figures, so they are
//! exact and do not depend on order, threads or partitioning.
//!
//! The units, their constants and the products (facility energy, emissions) are
//! defined once in `gco_ledger::units`; these are the row figures in their terms.

pub use gco_ledger::units::checked_round_div;
use gco_ledger::units::{MJ_PER_KWH, MgPerKwh, Millijoules, NG_PER_G, PueMilli};

/// The largest IT energy of one row the accounting takes (10 MWh, a 10 kW node for
/// six weeks): rows above it are quarantined as implausible before any figure is
/// computed (`energy_implausible`). Every figure of a row up to it fits 64 bits for a
/// PUE up to 10 and an intensity up to 10 kg CO2e/kWh; past those a row's figure is
/// an overflow error naming the row, never a clamped value.
pub const MAX_ROW_ENERGY_MJ: i64 = 10 * 1_000 * MJ_PER_KWH;

fn to_i64(v: i128) -> Option<i64> {
    i64::try_from(v).ok()
}

/// Facility energy: IT energy x PUE. `None` on overflow.
pub fn facility_mj(it_mj: i64, pue_milli: i64) -> Option<i64> {
    Some(Millijoules(it_mj).times_pue(PueMilli(pue_milli))?.0)
}

/// Emissions of `mj` at `mg_per_kwh`, in ng. `None` on overflow.
pub fn emissions_ng(mj: i64, mg_per_kwh: i64) -> Option<i64> {
    Some(Millijoules(mj).at(MgPerKwh(mg_per_kwh))?.0)
}

/// Embodied share (SCI's M): `gpus` GPUs reserved for `duration_us` of a
/// `lifetime_us` life, each with `embodied_g` grams CO2e, in ng. `None` on overflow.
pub fn embodied_ng(gpus: i64, duration_us: i64, embodied_g: i64, lifetime_us: i64) -> Option<i64> {
    if lifetime_us <= 0 {
        return Some(0);
    }
    let n = i128::from(gpus)
        .checked_mul(i128::from(duration_us.max(0)))?
        .checked_mul(i128::from(embodied_g))?
        .checked_mul(i128::from(NG_PER_G))?;
    to_i64(checked_round_div(n, i128::from(lifetime_us))?)
}

/// `value` per 1,000 tokens (`None` without tokens or on overflow).
pub fn per_1k_tokens(value: i64, tokens: u64) -> Option<i64> {
    if tokens == 0 {
        return None;
    }
    to_i64(checked_round_div(
        i128::from(value) * 1000,
        i128::from(tokens),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_figures() {
        assert_eq!(checked_round_div(5, 2), Some(3));
        assert_eq!(checked_round_div(4, 3), Some(1));
        assert_eq!(checked_round_div(-5, 2), Some(-3));
        // 1 kWh at 100 g/kWh = 100 g = 1e11 ng.
        assert_eq!(emissions_ng(3_600_000_000, 100_000), Some(100_000_000_000));
        // 1 J at 56 g/kWh: 1000 x 56000 / 3600 = 15,555.55.. -> 15,556 ng.
        assert_eq!(emissions_ng(1000, 56_000), Some(15_556));
        assert_eq!(facility_mj(1001, 1560), Some(1562)); // 1561.56
        // 2 GPUs for 1 h of a 6-year life of 150 kg each: 2 x 3600 / 189,345,600 x 150 kg
        // = 5.7039 g = 5,703,855,806.6 ng.
        let life = (6.0f64 * 365.25 * 86_400.0) as i64 * 1_000_000;
        assert_eq!(
            embodied_ng(2, 3_600_000_000, 150_000, life),
            Some(5_703_855_807)
        );
        assert_eq!(per_1k_tokens(10, 3), Some(3333));
        assert_eq!(per_1k_tokens(10, 0), None);
    }

    #[test]
    fn figures_that_do_not_fit_are_none_never_clamped() {
        // The 6e18 mJ row: x PUE 1.6 passes 2^63 (x 1.2 still fits).
        assert_eq!(facility_mj(6_000_000_000_000_000_000, 1600), None);
        assert_eq!(
            facility_mj(6_000_000_000_000_000_000, 1200),
            Some(7_200_000_000_000_000_000)
        );
        assert_eq!(facility_mj(i64::MAX, 1000), Some(i64::MAX));
        assert_eq!(emissions_ng(i64::MAX, 3601), None);
        assert_eq!(emissions_ng(i64::MAX, 3600), Some(i64::MAX));
        assert_eq!(embodied_ng(i64::MAX, i64::MAX, i64::MAX, 1), None);
        assert_eq!(per_1k_tokens(i64::MAX, 1), None);
        assert_eq!(checked_round_div(i128::MAX, 1), None);
        assert_eq!(checked_round_div(i128::MIN, 1), None);
        // The largest accepted row at PUE 10 and 10 kg/kWh still fits.
        let fac = facility_mj(MAX_ROW_ENERGY_MJ, 10_000).unwrap();
        assert_eq!(
            emissions_ng(fac, 10_000_000),
            Some(1_000_000_000_000_000_000)
        );
    }

    #[test]
    fn round_div_agrees_across_the_64_bit_boundary() {
        let slow = |n: i128, d: i128| (2 * n + d) / (2 * d);
        for (n, d) in [
            (0, 1),
            (7, 2),
            (u64::MAX as i128 / 2 - 1, 3),
            (u64::MAX as i128 / 2, 3),
            (u64::MAX as i128, 7),
            (u64::MAX as i128 + 5, 7),
            (i64::MAX as i128 * 3600, 3600),
            (5, u64::MAX as i128 / 2 + 1),
        ] {
            assert_eq!(checked_round_div(n, d), Some(slow(n, d)), "{n} / {d}");
        }
    }
}
