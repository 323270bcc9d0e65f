//! The integer arithmetic of the accounting. Every figure is an integer: energy in mJ,
//! intensities in mg CO2e/kWh, emissions in ng CO2e, PUE in thousandths. Each row's
//! figures are rounded once (half up); report sums are sums of row figures, so they are
//! exact and do not depend on order, threads or partitioning.
//!
//! Units: 1 kWh = 3.6e9 mJ, so mJ x (mg/kWh) / 3.6e9 = mg, and x 1e6 = ng:
//! ng = mJ x mg_per_kWh / 3600.

/// `n / d` rounded half up, for `n >= 0`, `d > 0` (negative `n` rounds half away from 0).
pub fn round_div(n: i128, d: i128) -> i128 {
    debug_assert!(d > 0);
    // The common case in 64 bits (a 128-bit division is a library call): the same
    // result whenever 2n + d fits.
    if let (Ok(n), Ok(d)) = (u64::try_from(n), u64::try_from(d))
        && let Some(twice) = n.checked_mul(2).and_then(|t| t.checked_add(d))
        && let Some(twice_d) = d.checked_mul(2)
    {
        return i128::from(twice / twice_d);
    }
    if n >= 0 {
        (2 * n + d) / (2 * d)
    } else {
        -((2 * -n + d) / (2 * d))
    }
}

fn to_i64(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Facility energy: IT energy x PUE.
pub fn facility_mj(it_mj: i64, pue_milli: i64) -> i64 {
    to_i64(round_div(it_mj as i128 * pue_milli as i128, 1000))
}

/// Emissions of `mj` at `mg_per_kwh`, in ng.
pub fn emissions_ng(mj: i64, mg_per_kwh: i64) -> i64 {
    to_i64(round_div(mj as i128 * mg_per_kwh as i128, 3600))
}

/// Embodied share (SCI's M): `gpus` GPUs reserved for `duration_us` of a
/// `lifetime_us` life, each with `embodied_g` grams CO2e, in ng.
pub fn embodied_ng(gpus: i64, duration_us: i64, embodied_g: i64, lifetime_us: i64) -> i64 {
    if lifetime_us <= 0 {
        return 0;
    }
    to_i64(round_div(
        gpus as i128 * duration_us.max(0) as i128 * embodied_g as i128 * 1_000_000_000,
        lifetime_us as i128,
    ))
}

/// `value` per 1,000 tokens.
pub fn per_1k_tokens(value: i64, tokens: u64) -> Option<i64> {
    (tokens > 0).then(|| to_i64(round_div(value as i128 * 1000, tokens as i128)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_figures() {
        assert_eq!(round_div(5, 2), 3);
        assert_eq!(round_div(4, 3), 1);
        assert_eq!(round_div(-5, 2), -3);
        // 1 kWh at 100 g/kWh = 100 g = 1e11 ng.
        assert_eq!(emissions_ng(3_600_000_000, 100_000), 100_000_000_000);
        // 1 J at 56 g/kWh: 1000 x 56000 / 3600 = 15,555.55.. -> 15,556 ng.
        assert_eq!(emissions_ng(1000, 56_000), 15_556);
        assert_eq!(facility_mj(1001, 1560), 1562); // 1561.56
        // 2 GPUs for 1 h of a 6-year life of 150 kg each: 2 x 3600 / 189,345,600 x 150 kg
        // = 5.7039 g = 5,703,855,806.6 ng.
        let life = (6.0f64 * 365.25 * 86_400.0) as i64 * 1_000_000;
        assert_eq!(embodied_ng(2, 3_600_000_000, 150_000, life), 5_703_855_807);
        assert_eq!(per_1k_tokens(10, 3), Some(3333));
        assert_eq!(per_1k_tokens(10, 0), None);
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
            assert_eq!(round_div(n, d), slow(n, d), "{n} / {d}");
        }
    }
}
