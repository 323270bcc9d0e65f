//! Live provider clients: WattTime v3, Electricity Maps v3, UK Carbon Intensity.
//!
//! All share [`Http`]: timeouts, retries with backoff on 429 (honouring `Retry-After`)
//! and 5xx, and errors that name the provider, the endpoint and what to do. Credentials
//! travel in headers and never appear in errors, logs or cached metadata.

pub mod electricitymaps;
pub mod uk;
pub mod watttime;

use std::time::Duration;

use gco_ledger::time::{Micros, format_utc};
use serde_json::Value;

use crate::series::Point;

/// What went wrong talking to a provider.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{provider}: cannot reach {endpoint}: {detail}")]
    Transport {
        provider: &'static str,
        endpoint: String,
        detail: String,
    },
    #[error("{provider}: {endpoint} answered HTTP {status}: {message}")]
    Api {
        provider: &'static str,
        endpoint: String,
        status: u16,
        message: String,
    },
    #[error(
        "{provider}: authentication failed at {endpoint} (HTTP {status}); check the credentials in the environment or gco.toml"
    )]
    Auth {
        provider: &'static str,
        endpoint: String,
        status: u16,
    },
    #[error("{provider}: zone {zone:?} is not served: {message}")]
    UnknownZone {
        provider: &'static str,
        zone: String,
        message: String,
    },
    #[error("{provider}: malformed response from {endpoint}: {detail}")]
    Malformed {
        provider: &'static str,
        endpoint: String,
        detail: String,
    },
    #[error("{provider}: gave up on {endpoint} after {attempts} attempts (last: HTTP {status})")]
    Exhausted {
        provider: &'static str,
        endpoint: String,
        attempts: u32,
        status: u16,
    },
    #[error("{0}")]
    Config(String),
}

/// Retry and timeout policy.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// One attempt's limit.
    pub timeout: Duration,
    /// Every attempt and backoff of one request together: a hung provider fails the
    /// request by then.
    pub total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(15),
            total: Duration::from_secs(30),
        }
    }
}

/// One provider fetch: points plus what the provider said about them.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub points: Vec<Point>,
    /// Response metadata worth keeping (units, model, warnings, chunk requests).
    pub meta: Vec<Value>,
    /// Requested periods with no data: (from, to) in microseconds.
    pub gaps: Vec<(Micros, Micros)>,
}

impl Fetched {
    pub fn estimated(&self) -> usize {
        self.points.iter().filter(|p| p.estimated).count()
    }

    /// Records every hole of more than one period between consecutive points and at
    /// the ends of `[from, to)`.
    pub fn find_gaps(&mut self, from: Micros, to: Micros) {
        self.points.sort_by_key(|p| (p.time, p.signal.as_str()));
        let mut cursor = from;
        for p in &self.points {
            if p.time > cursor {
                self.gaps.push((cursor, p.time));
            }
            cursor = cursor.max(p.time + p.period_s * 1_000_000);
        }
        if cursor < to {
            self.gaps.push((cursor, to));
        }
    }
}

/// HTTP with retries, shared by the clients.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    pub policy: RetryPolicy,
    provider: &'static str,
}

impl Http {
    pub fn new(provider: &'static str, policy: RetryPolicy) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .user_agent(concat!("gco/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ProviderError::Config(format!("{provider}: cannot build HTTP client: {e}"))
            })?;
        Ok(Http {
            client,
            policy,
            provider,
        })
    }

    /// Sends `build()` until it gets a non-retryable answer. 429 and 5xx are retried
    /// with exponential backoff (or `Retry-After`, capped); transport errors too.
    pub async fn send(
        &self,
        endpoint: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<(u16, String), ProviderError> {
        let mut last_status = 0;
        let started = std::time::Instant::now();
        let out_of_time = || ProviderError::Transport {
            provider: self.provider,
            endpoint: endpoint.to_string(),
            detail: format!(
                "no answer within {:?} (the provider's total timeout)",
                self.policy.total
            ),
        };
        for attempt in 0..self.policy.attempts {
            if attempt > 0 {
                let backoff = self
                    .policy
                    .base_backoff
                    .saturating_mul(1 << (attempt - 1).min(16))
                    .min(self.policy.max_backoff);
                let left = self.policy.total.saturating_sub(started.elapsed());
                if backoff >= left {
                    return Err(out_of_time());
                }
                tokio::time::sleep(backoff).await;
            }
            let left = self.policy.total.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(out_of_time());
            }
            let resp = match build(&self.client)
                .timeout(left.min(self.policy.timeout))
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    // Without the URL: query strings may carry tokens.
                    let detail = e.without_url().to_string();
                    tracing::warn!(provider = self.provider, endpoint, attempt, error = %detail, "request failed");
                    if attempt + 1 == self.policy.attempts {
                        return Err(ProviderError::Transport {
                            provider: self.provider,
                            endpoint: endpoint.to_string(),
                            detail,
                        });
                    }
                    continue;
                }
            };
            let status = resp.status().as_u16();
            if status == 429 || status >= 500 {
                last_status = status;
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                tracing::warn!(
                    provider = self.provider,
                    endpoint,
                    attempt,
                    status,
                    "retrying"
                );
                if let Some(secs) = retry_after {
                    let wait = Duration::from_secs(secs).min(self.policy.max_backoff);
                    if wait >= self.policy.total.saturating_sub(started.elapsed()) {
                        return Err(out_of_time());
                    }
                    tokio::time::sleep(wait).await;
                }
                continue;
            }
            let body = resp.text().await.map_err(|e| ProviderError::Transport {
                provider: self.provider,
                endpoint: endpoint.to_string(),
                detail: e.without_url().to_string(),
            })?;
            return Ok((status, body));
        }
        Err(ProviderError::Exhausted {
            provider: self.provider,
            endpoint: endpoint.to_string(),
            attempts: self.policy.attempts,
            status: last_status,
        })
    }

    /// The common reading of an answer: 200 is JSON, 401/403 an authentication failure,
    /// 400/404 a zone the provider does not serve, anything else an API error.
    pub fn answer(
        &self,
        endpoint: &str,
        zone: &str,
        status: u16,
        body: &str,
    ) -> Result<Value, ProviderError> {
        match status {
            200 => self.json(endpoint, body),
            401 | 403 => Err(ProviderError::Auth {
                provider: self.provider,
                endpoint: endpoint.into(),
                status,
            }),
            400 | 404 => Err(ProviderError::UnknownZone {
                provider: self.provider,
                zone: zone.into(),
                message: Self::error_message(body),
            }),
            _ => Err(ProviderError::Api {
                provider: self.provider,
                endpoint: endpoint.into(),
                status,
                message: Self::error_message(body),
            }),
        }
    }

    /// Parses a JSON body, or says what was wrong with it.
    pub fn json(&self, endpoint: &str, body: &str) -> Result<Value, ProviderError> {
        serde_json::from_str(body).map_err(|e| ProviderError::Malformed {
            provider: self.provider,
            endpoint: endpoint.to_string(),
            detail: format!("not JSON ({e})"),
        })
    }

    pub fn malformed(&self, endpoint: &str, detail: impl Into<String>) -> ProviderError {
        ProviderError::Malformed {
            provider: self.provider,
            endpoint: endpoint.to_string(),
            detail: detail.into(),
        }
    }

    /// The error message a provider put in a JSON error body (`error`, `message`,
    /// or `error.message`), else the body's start.
    pub fn error_message(body: &str) -> String {
        if let Ok(v) = serde_json::from_str::<Value>(body) {
            for ptr in ["/message", "/error/message", "/error"] {
                if let Some(s) = v.pointer(ptr).and_then(Value::as_str) {
                    return s.to_string();
                }
            }
        }
        body.chars().take(200).collect()
    }
}

/// Splits `[from, to)` into chunks of at most `max` microseconds.
pub fn chunks(from: Micros, to: Micros, max: Micros) -> Vec<(Micros, Micros)> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        let end = (t + max).min(to);
        out.push((t, end));
        t = end;
    }
    out
}

/// RFC 3339 for query strings.
pub fn iso(t: Micros) -> String {
    format_utc(t)
}

/// Parses a provider timestamp (RFC 3339; UK uses `YYYY-MM-DDThh:mmZ`).
pub fn parse_time(s: &str) -> Option<Micros> {
    gco_ledger::time::parse_utc(s).ok().or_else(|| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%MZ")
            .ok()
            .map(|t| t.and_utc().timestamp_micros())
    })
}

/// A float gCO2e/kWh from a provider, as integer mg/kWh (rounded half away from zero).
pub fn g_to_mg(v: f64) -> Option<crate::MgPerKwh> {
    (0.0..1e9)
        .contains(&v)
        .then(|| crate::MgPerKwh((v * 1000.0).round() as i64))
}
