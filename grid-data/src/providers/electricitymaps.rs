//! Electricity Maps API v3: latest, 24-hour history and past ranges (at most 10 days of
//! hourly data per request), lifecycle or direct emission factors, `auth-token` header.

use gco_ledger::time::Micros;
use serde_json::Value;

use super::{Fetched, Http, ProviderError, RetryPolicy, chunks, g_to_mg, iso, parse_time};
use crate::series::Point;
use crate::{Basis, Signal};

pub const PROVIDER: &str = "electricitymaps";
pub const DEFAULT_URL: &str = "https://api.electricitymaps.com/v3";
const MAX_CHUNK: Micros = 10 * 86_400 * 1_000_000;

pub struct ElectricityMaps {
    http: Http,
    base: String,
    token: String,
    basis: Basis,
}

impl std::fmt::Debug for ElectricityMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ElectricityMaps({}, token <redacted>)", self.base)
    }
}

impl ElectricityMaps {
    pub fn new(
        base: &str,
        token: String,
        basis: Basis,
        policy: RetryPolicy,
    ) -> Result<Self, ProviderError> {
        Ok(ElectricityMaps {
            http: Http::new(PROVIDER, policy)?,
            base: base.trim_end_matches('/').to_string(),
            token,
            basis,
        })
    }

    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        zone: &str,
    ) -> Result<Value, ProviderError> {
        let url = format!("{}{path}", self.base);
        let mut q: Vec<(&str, String)> = query.to_vec();
        q.push(("emissionFactorType", self.basis.as_str().to_string()));
        q.push(("shouldUseFallbackCallerLookup", "false".into()));
        let (status, body) = self
            .http
            .send(path, |c| {
                c.get(&url).header("auth-token", &self.token).query(&q)
            })
            .await?;
        self.http.answer(path, zone, status, &body)
    }

    fn point(
        &self,
        path: &str,
        zone: &str,
        d: &Value,
        i: usize,
    ) -> Result<Option<Point>, ProviderError> {
        let time = d["datetime"].as_str().and_then(parse_time).ok_or_else(|| {
            self.http
                .malformed(path, format!("entry {i}: datetime missing or not a time"))
        })?;
        // A null intensity is a gap, not an error.
        let Some(v) = d.get("carbonIntensity").filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let value = v.as_f64().and_then(g_to_mg).ok_or_else(|| {
            self.http.malformed(
                path,
                format!("entry {i}: carbonIntensity {v} is not a non-negative number"),
            )
        })?;
        let basis = match d["emissionFactorType"].as_str() {
            Some("direct") => Basis::Direct,
            Some("lifecycle") => Basis::Lifecycle,
            _ => self.basis,
        };
        Ok(Some(Point {
            zone: zone.to_string(),
            time,
            period_s: 3600,
            value,
            signal: Signal::Average,
            basis,
            estimated: d["isEstimated"].as_bool().unwrap_or(false),
            source: PROVIDER.to_string(),
        }))
    }

    fn points(
        &self,
        path: &str,
        zone: &str,
        list: Option<&Vec<Value>>,
    ) -> Result<Vec<Point>, ProviderError> {
        let list = list.ok_or_else(|| self.http.malformed(path, "no list of data points"))?;
        let mut out = Vec::new();
        for (i, d) in list.iter().enumerate() {
            out.extend(self.point(path, zone, d, i)?);
        }
        Ok(out)
    }

    /// The latest value for a zone (`em_zone` is the provider's code).
    pub async fn latest(&self, em_zone: &str, zone: &str) -> Result<Fetched, ProviderError> {
        let v = self
            .get(
                "/carbon-intensity/latest",
                &[("zone", em_zone.to_string())],
                zone,
            )
            .await?;
        let points = self
            .point("/carbon-intensity/latest", zone, &v, 0)?
            .into_iter()
            .collect();
        Ok(Fetched {
            points,
            meta: vec![
                serde_json::json!({"request": {"path": "/carbon-intensity/latest", "zone": em_zone}, "updatedAt": v["updatedAt"]}),
            ],
            gaps: vec![],
        })
    }

    /// The last 24 hours, hourly.
    pub async fn history(&self, em_zone: &str, zone: &str) -> Result<Fetched, ProviderError> {
        let v = self
            .get(
                "/carbon-intensity/history",
                &[("zone", em_zone.to_string())],
                zone,
            )
            .await?;
        let points = self.points("/carbon-intensity/history", zone, v["history"].as_array())?;
        Ok(Fetched {
            points,
            meta: vec![
                serde_json::json!({"request": {"path": "/carbon-intensity/history", "zone": em_zone}}),
            ],
            gaps: vec![],
        })
    }

    /// Hourly data for `[from, to)`, in requests of at most 10 days.
    pub async fn past_range(
        &self,
        em_zone: &str,
        zone: &str,
        from: Micros,
        to: Micros,
    ) -> Result<Fetched, ProviderError> {
        let mut f = Fetched::default();
        for (a, b) in chunks(from, to, MAX_CHUNK) {
            let q = [
                ("zone", em_zone.to_string()),
                ("start", iso(a)),
                ("end", iso(b)),
            ];
            let v = self.get("/carbon-intensity/past-range", &q, zone).await?;
            let pts = self.points("/carbon-intensity/past-range", zone, v["data"].as_array())?;
            f.points
                .extend(pts.into_iter().filter(|p| p.time >= a && p.time < b));
            f.meta.push(serde_json::json!({"request": {"path": "/carbon-intensity/past-range", "zone": em_zone, "start": iso(a), "end": iso(b)}}));
        }
        f.find_gaps(from, to);
        Ok(f)
    }
}
