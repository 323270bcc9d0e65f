//! A reporting period: one calendar month, UTC.

use crate::error::{Result, fail, failure};
use chrono::{Datelike, NaiveDate};
use gco_ledger::time::{Micros, date_start};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Period {
    pub year: i32,
    pub month: u32,
}

impl Period {
    /// `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Period> {
        let d = NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
            .map_err(|_| failure!(Usage, "period {s:?} is not a month YYYY-MM"))?;
        if s.len() != 7 {
            fail!(Usage, "period {s:?} is not a month YYYY-MM");
        }
        Ok(Period {
            year: d.year(),
            month: d.month(),
        })
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("valid month")
    }

    pub fn next(self) -> Period {
        if self.month == 12 {
            Period {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Period {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn days(self) -> Vec<NaiveDate> {
        let end = self.next().first_day();
        self.first_day()
            .iter_days()
            .take_while(|d| *d < end)
            .collect()
    }

    pub fn start(self) -> Micros {
        date_start(self.first_day())
    }

    pub fn end(self) -> Micros {
        date_start(self.next().first_day())
    }

    /// Every month from `from` to `to`, inclusive.
    pub fn range(from: Period, to: Period) -> Vec<Period> {
        let mut out = Vec::new();
        let mut p = from;
        while p <= to {
            out.push(p);
            p = p.next();
        }
        out
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months() {
        let p = Period::parse("2026-02").unwrap();
        assert_eq!(p.days().len(), 28);
        assert_eq!(p.to_string(), "2026-02");
        assert_eq!(
            Period::parse("2025-12").unwrap().next().to_string(),
            "2026-01"
        );
        assert!(Period::parse("2026-13").is_err());
        assert!(Period::parse("2026-1").is_err());
        assert_eq!(
            Period::range(
                Period::parse("2025-11").unwrap(),
                Period::parse("2026-02").unwrap()
            )
            .len(),
            4
        );
    }
}
