//! UTC timestamps in integer microseconds: parsing, formatting and the partition date.

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Parses an RFC 3339 timestamp that carries an explicit offset (`Z` or `+hh:mm`).
/// A bare date `YYYY-MM-DD` means midnight UTC. Timestamps without an offset are
/// refused: their time zone would be a guess.
pub fn parse_utc(text: &str) -> Result<Micros, String> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date_start(date));
    }
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => Ok(t.with_timezone(&Utc).timestamp_micros()),
        Err(_) => Err(format!(
            "{text:?} is not an RFC 3339 timestamp with a UTC offset (e.g. 2026-10-01T12:00:00Z)"
        )),
    }
}

/// Formats microseconds as RFC 3339 UTC with microsecond precision.
pub fn format_utc(micros: Micros) -> String {
    match Utc.timestamp_micros(micros).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Micros, true),
        None => format!("<out of range: {micros} us>"),
    }
}

/// The UTC calendar date of a timestamp.
pub fn utc_date(micros: Micros) -> NaiveDate {
    let days = micros.div_euclid(MICROS_PER_DAY);
    NaiveDate::from_num_days_from_ce_opt(719_163 + days as i32).unwrap_or(NaiveDate::MIN)
}

/// Midnight UTC at the start of `date`, in microseconds.
pub fn date_start(date: NaiveDate) -> Micros {
    (date.num_days_from_ce() as i64 - 719_163) * MICROS_PER_DAY
}

use chrono::Datelike;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_parsing() {
        let t = parse_utc("2026-10-01T12:30:00.000001Z").unwrap();
        assert_eq!(t, 1_790_857_800_000_001);
        assert_eq!(format_utc(t), "2026-10-01T12:30:00.000001Z");
        assert_eq!(utc_date(t).to_string(), "2026-10-01");
        assert_eq!(parse_utc("2026-10-01").unwrap(), 1_790_812_800_000_000);
        assert_eq!(
            parse_utc("2026-10-01T14:30:00+02:00").unwrap(),
            1_790_857_800_000_000
        );
        assert_eq!(utc_date(-1).to_string(), "1969-12-31");
        assert!(parse_utc("2026-10-01T12:30:00").is_err());
    }
}
