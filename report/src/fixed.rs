//! Exact decimal text for integer sums: no float ever touches a reported figure.

use gco_ledger::units;

/// Millijoules per kWh and per MWh; nanograms per g, kg and t (`gco_ledger::units`),
/// as the `i128` the sums are.
pub const MJ_PER_KWH: i128 = units::MJ_PER_KWH as i128;
pub const MJ_PER_MWH: i128 = units::MJ_PER_MWH as i128;
pub const NG_PER_G: i128 = units::NG_PER_G as i128;
pub const NG_PER_KG: i128 = units::NG_PER_KG as i128;
pub const NG_PER_T: i128 = units::NG_PER_T;

/// `value / divisor` rounded half away from zero to `places` decimals, as text with a
/// dot decimal separator and no grouping (what spreadsheets and parsers read).
pub fn decimal(value: i128, divisor: i128, places: u32) -> String {
    assert!(divisor > 0, "divisor must be positive");
    let scale = 10i128.pow(places);
    let (neg, v) = (value < 0, value.unsigned_abs());
    // v * scale / divisor, half up, in u128 (sums are far below 2^100).
    let num = v * scale as u128;
    let d = divisor as u128;
    let q = num / d + u128::from(num % d * 2 >= d);
    let s = scale as u128;
    let (int, frac) = (q / s, q % s);
    let sign = if neg && q != 0 { "-" } else { "" };
    if places == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac:0width$}", width = places as usize)
    }
}

/// `part / whole` as a percentage with `places` decimals; `None` when `whole` is 0.
pub fn percent(part: i128, whole: i128, places: u32) -> Option<String> {
    (whole != 0).then(|| decimal(part * 100, whole, places))
}

/// kWh with Wh resolution, kg with g resolution (tables); MWh and t to six decimals
/// (datapoints).
pub fn kwh(mj: i128) -> String {
    decimal(mj, MJ_PER_KWH, 3)
}
pub fn kg(ng: i128) -> String {
    decimal(ng, NG_PER_KG, 3)
}
pub fn mwh(mj: i128) -> String {
    decimal(mj, MJ_PER_MWH, 6)
}
pub fn tonnes(ng: i128) -> String {
    decimal(ng, NG_PER_T, 6)
}
/// Mean intensity in g/kWh: ng x 3.6e9 / (mJ x 1e9).
pub fn g_per_kwh(ng: i128, mj: i128) -> String {
    if mj == 0 {
        return "n/a".into();
    }
    decimal(ng * 36, mj * 10, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_half_up_exactly() {
        assert_eq!(decimal(1_602_806_510_199, MJ_PER_KWH, 3), "445.224");
        assert_eq!(decimal(1_602_806_510_199, MJ_PER_MWH, 6), "0.445224");
        assert_eq!(decimal(93_900_559_419_370, NG_PER_KG, 3), "93.901");
        assert_eq!(decimal(1_500, 1_000, 0), "2");
        assert_eq!(decimal(1_499, 1_000, 0), "1");
        assert_eq!(decimal(-1_500, 1_000, 0), "-2");
        assert_eq!(decimal(-1, 1_000, 0), "0");
        assert_eq!(decimal(5, 1_000, 2), "0.01");
        assert_eq!(decimal(0, 7, 3), "0.000");
        assert_eq!(
            decimal(i128::from(u64::MAX) * 1000, 1, 0),
            "18446744073709551615000"
        );
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(1, 3, 2).as_deref(), Some("33.33"));
        assert_eq!(percent(2, 3, 1).as_deref(), Some("66.7"));
        assert_eq!(percent(1, 0, 1), None);
    }
}
