//! UK Carbon Intensity API (National Grid ESO; free, no key; CC BY 4.0): national
//! half-hourly actual (else forecast) and regional forecasts. The regional endpoint
//! returns `data` as a list for current-time calls and as an object for date ranges:
//! both are read.

use gco_ledger::time::Micros;
use serde_json::Value;

use super::{Fetched, Http, ProviderError, RetryPolicy, chunks, g_to_mg, parse_time};
use crate::series::Point;
use crate::{Basis, Signal};

pub const PROVIDER: &str = "uk-carbon-intensity";
pub const DEFAULT_URL: &str = "https://api.carbonintensity.org.uk";
const MAX_CHUNK: Micros = 14 * 86_400 * 1_000_000;

fn uk_time(t: Micros) -> String {
    gco_ledger::time::format_utc(t)[..16].to_string() + "Z"
}

pub struct UkCarbonIntensity {
    http: Http,
    base: String,
}

impl UkCarbonIntensity {
    pub fn new(base: &str, policy: RetryPolicy) -> Result<Self, ProviderError> {
        Ok(UkCarbonIntensity {
            http: Http::new(PROVIDER, policy)?,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    async fn get(&self, path: &str, zone: &str) -> Result<Value, ProviderError> {
        let url = format!("{}{path}", self.base);
        let (status, body) = self
            .http
            .send(path, |c| c.get(&url).header("Accept", "application/json"))
            .await?;
        self.http.answer(path, zone, status, &body)
    }

    fn period(
        &self,
        path: &str,
        zone: &str,
        d: &Value,
        i: usize,
        regional: bool,
    ) -> Result<Option<Point>, ProviderError> {
        let from = d["from"].as_str().and_then(parse_time).ok_or_else(|| {
            self.http
                .malformed(path, format!("entry {i}: from missing"))
        })?;
        let to = d["to"]
            .as_str()
            .and_then(parse_time)
            .ok_or_else(|| self.http.malformed(path, format!("entry {i}: to missing")))?;
        if to <= from {
            return Err(self
                .http
                .malformed(path, format!("entry {i}: to is not after from")));
        }
        let intensity = &d["intensity"];
        let (value, estimated) = match (
            intensity.get("actual").and_then(Value::as_f64),
            intensity.get("forecast").and_then(Value::as_f64),
        ) {
            (Some(a), _) if !regional => (a, false),
            (_, Some(f)) => (f, true),
            _ => return Ok(None),
        };
        let value = g_to_mg(value).ok_or_else(|| {
            self.http
                .malformed(path, format!("entry {i}: intensity {value} out of range"))
        })?;
        Ok(Some(Point {
            zone: zone.to_string(),
            time: from,
            period_s: (to - from) / 1_000_000,
            value,
            signal: Signal::Average,
            basis: Basis::Direct,
            estimated,
            source: PROVIDER.to_string(),
        }))
    }

    /// National half-hourly intensity for `[from, to)`, 14 days per request.
    pub async fn national(
        &self,
        zone: &str,
        from: Micros,
        to: Micros,
    ) -> Result<Fetched, ProviderError> {
        let mut f = Fetched::default();
        for (a, b) in chunks(from, to, MAX_CHUNK) {
            let path = format!("/intensity/{}/{}", uk_time(a), uk_time(b));
            let v = self.get(&path, zone).await?;
            let data = v["data"]
                .as_array()
                .ok_or_else(|| self.http.malformed(&path, "no data list"))?;
            for (i, d) in data.iter().enumerate() {
                f.points.extend(
                    self.period(&path, zone, d, i, false)?
                        .filter(|p| p.time >= a && p.time < b),
                );
            }
            f.meta.push(serde_json::json!({"request": {"path": path}}));
        }
        f.find_gaps(from, to);
        Ok(f)
    }

    /// Regional forecasts for region `id` (1-17) over `[from, to)`, or the current
    /// period when `range` is `None`.
    pub async fn regional(
        &self,
        zone: &str,
        id: &str,
        range: Option<(Micros, Micros)>,
    ) -> Result<Fetched, ProviderError> {
        let mut f = Fetched::default();
        let requests: Vec<(String, Option<(Micros, Micros)>)> = match range {
            None => vec![(format!("/regional/regionid/{id}"), None)],
            Some((from, to)) => chunks(from, to, MAX_CHUNK)
                .into_iter()
                .map(|(a, b)| {
                    (
                        format!(
                            "/regional/intensity/{}/{}/regionid/{id}",
                            uk_time(a),
                            uk_time(b)
                        ),
                        Some((a, b)),
                    )
                })
                .collect(),
        };
        for (path, window) in requests {
            let v = self.get(&path, zone).await?;
            // Current-time calls: data = [ {regionid, ..., data: [periods]} ]; ranges: data = {regionid, ..., data: [periods]}.
            let region = match &v["data"] {
                Value::Array(list) => list
                    .first()
                    .cloned()
                    .ok_or_else(|| self.http.malformed(&path, "empty data list"))?,
                obj @ Value::Object(_) => obj.clone(),
                _ => {
                    return Err(self
                        .http
                        .malformed(&path, "data is neither a list nor an object"));
                }
            };
            let periods = region["data"]
                .as_array()
                .ok_or_else(|| self.http.malformed(&path, "region has no data list"))?;
            for (i, d) in periods.iter().enumerate() {
                if let Some(p) = self.period(&path, zone, d, i, true)?
                    && window.is_none_or(|(a, b)| p.time >= a && p.time < b)
                {
                    f.points.push(p);
                }
            }
            f.meta.push(serde_json::json!({"request": {"path": path}, "region": {"regionid": region["regionid"], "shortname": region["shortname"]}}));
        }
        if let Some((from, to)) = range {
            f.find_gaps(from, to);
        }
        Ok(f)
    }
}
