//! WattTime API v3: login with HTTP Basic, bearer token refreshed on 401, historical
//! data in chunks of at most 32 days, forecast and signal index. Values arrive in
//! lb CO2/MWh and are stored as mg/kWh.

use std::sync::Arc;

use gco_ledger::time::Micros;
use serde_json::Value;
use tokio::sync::Mutex;

use super::{Fetched, Http, ProviderError, RetryPolicy, chunks, iso, parse_time};
use crate::series::Point;
use crate::{Basis, MgPerKwh, Signal};

pub const PROVIDER: &str = "watttime";
pub const DEFAULT_URL: &str = "https://api.watttime.org";
const MAX_CHUNK: Micros = 32 * 86_400 * 1_000_000;

/// WattTime signal types gco reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalType {
    /// Marginal operating emissions rate.
    Co2Moer,
    /// Average operating emissions rate (historical only; for accounting).
    Co2Aoer,
}

impl SignalType {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalType::Co2Moer => "co2_moer",
            SignalType::Co2Aoer => "co2_aoer",
        }
    }
    /// `co2_moer` for marginal, `co2_aoer` for average.
    pub fn for_signal(signal: Signal) -> Self {
        match signal {
            Signal::Marginal => SignalType::Co2Moer,
            Signal::Average => SignalType::Co2Aoer,
        }
    }

    fn signal(self) -> Signal {
        match self {
            SignalType::Co2Moer => Signal::Marginal,
            SignalType::Co2Aoer => Signal::Average,
        }
    }
}

/// Credentials; `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

pub struct WattTime {
    http: Http,
    base: String,
    creds: Credentials,
    token: Arc<Mutex<Option<String>>>,
}

impl WattTime {
    pub fn new(base: &str, creds: Credentials, policy: RetryPolicy) -> Result<Self, ProviderError> {
        Ok(WattTime {
            http: Http::new(PROVIDER, policy)?,
            base: base.trim_end_matches('/').to_string(),
            creds,
            token: Arc::new(Mutex::new(None)),
        })
    }

    async fn login(&self) -> Result<String, ProviderError> {
        let url = format!("{}/login", self.base);
        let (status, body) = self
            .http
            .send("/login", |c| {
                c.get(&url)
                    .basic_auth(&self.creds.username, Some(&self.creds.password))
            })
            .await?;
        if status == 401 || status == 403 {
            return Err(ProviderError::Auth {
                provider: PROVIDER,
                endpoint: "/login".into(),
                status,
            });
        }
        if status != 200 {
            return Err(ProviderError::Api {
                provider: PROVIDER,
                endpoint: "/login".into(),
                status,
                message: Http::error_message(&body),
            });
        }
        let v = self.http.json("/login", &body)?;
        let token = v["token"]
            .as_str()
            .ok_or_else(|| self.http.malformed("/login", "no token"))?
            .to_string();
        *self.token.lock().await = Some(token.clone());
        Ok(token)
    }

    /// GET with the bearer token; logs in first, and once more on 401.
    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        zone: &str,
    ) -> Result<Value, ProviderError> {
        let url = format!("{}{path}", self.base);
        for round in 0..2 {
            // Bind first: the guard must be dropped before `login` locks again.
            let cached = self.token.lock().await.clone();
            let token = match cached {
                Some(t) if round == 0 => t,
                _ => self.login().await?,
            };
            let (status, body) = self
                .http
                .send(path, |c| c.get(&url).bearer_auth(&token).query(query))
                .await?;
            match status {
                200 => return self.http.json(path, &body),
                401 if round == 0 => {
                    tracing::info!(provider = PROVIDER, "token expired; logging in again");
                    continue;
                }
                401 | 403 => {
                    let message = Http::error_message(&body);
                    if status == 403 && message.to_ascii_lowercase().contains("region") {
                        return Err(ProviderError::UnknownZone {
                            provider: PROVIDER,
                            zone: zone.into(),
                            message,
                        });
                    }
                    return Err(ProviderError::Auth {
                        provider: PROVIDER,
                        endpoint: path.into(),
                        status,
                    });
                }
                400 | 404 | 422 => {
                    return Err(ProviderError::UnknownZone {
                        provider: PROVIDER,
                        zone: zone.into(),
                        message: Http::error_message(&body),
                    });
                }
                _ => {
                    return Err(ProviderError::Api {
                        provider: PROVIDER,
                        endpoint: path.into(),
                        status,
                        message: Http::error_message(&body),
                    });
                }
            }
        }
        Err(ProviderError::Auth {
            provider: PROVIDER,
            endpoint: path.into(),
            status: 401,
        })
    }

    fn points(
        &self,
        path: &str,
        v: &Value,
        zone: &str,
        signal: SignalType,
        forecast: bool,
    ) -> Result<(Vec<Point>, Value), ProviderError> {
        let meta = v.get("meta").cloned().unwrap_or(Value::Null);
        let units = meta["units"].as_str().unwrap_or("lbs_co2_per_mwh");
        if units != "lbs_co2_per_mwh" {
            return Err(self
                .http
                .malformed(path, format!("unexpected units {units:?}")));
        }
        let period = meta["data_point_period_seconds"].as_i64().unwrap_or(300);
        let data = v["data"]
            .as_array()
            .ok_or_else(|| self.http.malformed(path, "no data array"))?;
        let mut out = Vec::with_capacity(data.len());
        for (i, d) in data.iter().enumerate() {
            let time = d["point_time"]
                .as_str()
                .and_then(parse_time)
                .ok_or_else(|| {
                    self.http
                        .malformed(path, format!("data[{i}].point_time missing or not a time"))
                })?;
            let lb = d["value"]
                .as_f64()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    self.http
                        .malformed(path, format!("data[{i}].value missing or negative"))
                })?;
            out.push(Point {
                zone: zone.to_string(),
                time,
                period_s: period,
                value: MgPerKwh::from_milli_lb_per_mwh((lb * 1000.0).round() as i64),
                signal: signal.signal(),
                basis: Basis::Direct,
                estimated: forecast || d["imputed_data_used"].as_bool().unwrap_or(false),
                source: PROVIDER.to_string(),
            });
        }
        Ok((out, meta))
    }

    /// Historical data for `[from, to)`, in requests of at most 32 days.
    pub async fn historical(
        &self,
        region: &str,
        zone: &str,
        signal: SignalType,
        from: Micros,
        to: Micros,
    ) -> Result<Fetched, ProviderError> {
        let mut f = Fetched::default();
        for (a, b) in chunks(from, to, MAX_CHUNK) {
            let q = [
                ("region", region.to_string()),
                ("start", iso(a)),
                ("end", iso(b - 1)),
                ("signal_type", signal.as_str().to_string()),
                ("include_imputed_marker", "true".into()),
            ];
            let v = self.get("/v3/historical", &q, zone).await?;
            let (pts, meta) = self.points("/v3/historical", &v, zone, signal, false)?;
            f.points
                .extend(pts.into_iter().filter(|p| p.time >= a && p.time < b));
            f.meta.push(serde_json::json!({"request": {"path": "/v3/historical", "region": region, "start": iso(a), "end": iso(b - 1), "signal_type": signal.as_str()}, "meta": meta}));
        }
        f.find_gaps(from, to);
        Ok(f)
    }

    /// The forecast from now on (points marked estimated).
    pub async fn forecast(
        &self,
        region: &str,
        zone: &str,
        signal: SignalType,
        horizon_hours: u32,
    ) -> Result<Fetched, ProviderError> {
        let q = [
            ("region", region.to_string()),
            ("signal_type", signal.as_str().to_string()),
            ("horizon_hours", horizon_hours.min(72).to_string()),
        ];
        let v = self.get("/v3/forecast", &q, zone).await?;
        let (points, meta) = self.points("/v3/forecast", &v, zone, signal, true)?;
        Ok(Fetched {
            points,
            meta: vec![meta],
            gaps: vec![],
        })
    }

    /// The 0-100 percentile of the current MOER over roughly the last month.
    pub async fn signal_index(&self, region: &str, zone: &str) -> Result<f64, ProviderError> {
        let q = [
            ("region", region.to_string()),
            ("signal_type", "co2_moer".to_string()),
        ];
        let v = self.get("/v3/signal-index", &q, zone).await?;
        v.pointer("/data/0/value")
            .and_then(Value::as_f64)
            .ok_or_else(|| self.http.malformed("/v3/signal-index", "no data[0].value"))
    }
}
