//! Access control: which scope a route needs, the bearer key that grants it, per-key
//! rate limits, read-only mode. Hosting routes (DID document, contexts, status lists,
//! health, metrics) never ask for a key: verifiers fetch them anonymously.

use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gco_ledger::Store;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;
use crate::keys::{Caller, KeySet, Scope};

/// Access settings (gco.toml `[serve]`, see `gco_config::ServeConfig`).
#[derive(Debug, Clone)]
pub struct AccessOptions {
    pub public_read: bool,
    pub read_only: bool,
    pub rate_limit: NonZeroU32,
    pub rate_burst: NonZeroU32,
    pub key_refresh: Duration,
}

impl Default for AccessOptions {
    fn default() -> Self {
        AccessOptions {
            public_read: false,
            read_only: false,
            rate_limit: NonZeroU32::new(100).expect("non-zero"),
            rate_burst: NonZeroU32::new(200).expect("non-zero"),
            key_refresh: Duration::from_secs(10),
        }
    }
}

/// The keys in force and the limiter, shared by every request.
pub struct Access {
    options: AccessOptions,
    keys: RwLock<Arc<KeySet>>,
    limiter: DefaultKeyedRateLimiter<String>,
}

impl Access {
    /// Reads the store's keys now (a server that cannot read them does not start).
    pub async fn load(
        store: &Store,
        options: AccessOptions,
    ) -> Result<Self, gco_ledger::LedgerError> {
        let keys = KeySet::load(store).await?;
        let quota = Quota::per_second(options.rate_limit).allow_burst(options.rate_burst);
        Ok(Access {
            options,
            keys: RwLock::new(Arc::new(keys)),
            limiter: RateLimiter::hashmap(quota),
        })
    }

    pub fn options(&self) -> &AccessOptions {
        &self.options
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Rereads the store's keys (revocations and new keys take effect).
    pub async fn refresh(&self, store: &Store) -> Result<(), gco_ledger::LedgerError> {
        let keys = Arc::new(KeySet::load(store).await?);
        *self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = keys;
        self.limiter.retain_recent();
        Ok(())
    }

    /// Whether a request may go on to a route that needs `needed`: the caller when it
    /// presented a valid key, `None` for an anonymous public read.
    fn admit(
        &self,
        needed: Scope,
        authorization: Option<&HeaderValue>,
    ) -> Result<Option<Caller>, Refusal> {
        if needed != Scope::Read && self.options.read_only {
            return Err(Refusal::ReadOnly);
        }
        let Some(value) = authorization else {
            return if needed == Scope::Read && self.options.public_read {
                Ok(None)
            } else {
                Err(Refusal::NoKey)
            };
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(Refusal::NotBearer)?;
        let caller = self.current().check(token).ok_or(Refusal::BadKey)?;
        if !caller.scope.allows(needed) {
            return Err(Refusal::Scope {
                have: caller.scope,
                needed,
            });
        }
        if let Err(not_until) = self.limiter.check_key(&caller.key_id) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(Refusal::Rate { wait });
        }
        Ok(Some(caller))
    }
}

enum Refusal {
    ReadOnly,
    NoKey,
    NotBearer,
    BadKey,
    Scope { have: Scope, needed: Scope },
    Rate { wait: Duration },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let challenge = |error: Option<&str>| {
            let v = match error {
                None => r#"Bearer realm="gco""#.to_string(),
                Some(e) => format!(r#"Bearer realm="gco", error="{e}""#),
            };
            HeaderValue::from_str(&v).expect("a static challenge")
        };
        let (error, extra) = match self {
            Refusal::ReadOnly => (
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "read_only",
                    "this server is read-only ([serve] read_only or --read-only): it accepts no writes",
                ),
                None,
            ),
            Refusal::NoKey => (
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "this route needs an API key: send `Authorization: Bearer gco_...` (`gco serve key create`)",
                ),
                Some((header::WWW_AUTHENTICATE, challenge(None))),
            ),
            Refusal::NotBearer => (
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the Authorization header is not `Bearer <API key>`",
                ),
                Some((header::WWW_AUTHENTICATE, challenge(Some("invalid_request")))),
            ),
            Refusal::BadKey => (
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the API key is not valid here (unknown, revoked or mistyped)",
                ),
                Some((header::WWW_AUTHENTICATE, challenge(Some("invalid_token")))),
            ),
            Refusal::Scope { have, needed } => (
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!(
                        "this route needs a key of scope {} (or admin); this key's scope is {}",
                        needed.as_str(),
                        have.as_str()
                    ),
                ),
                Some((
                    header::WWW_AUTHENTICATE,
                    challenge(Some("insufficient_scope")),
                )),
            ),
            Refusal::Rate { wait } => {
                // Whole seconds, rounded up (RFC 9110 section 10.2.3).
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                (
                    ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        format!("this key's request rate is used up; retry in {secs} s"),
                    ),
                    Some((
                        header::RETRY_AFTER,
                        HeaderValue::from_str(&secs.max(1).to_string()).expect("digits"),
                    )),
                )
            }
        };
        let mut r = error.into_response();
        if let Some((name, value)) = extra {
            r.headers_mut().insert(name, value);
        }
        r
    }
}

/// The state of one guard layer: the shared access and the scope its routes need.
#[derive(Clone)]
pub struct Guard {
    pub access: Arc<Access>,
    pub needed: Scope,
}

/// Middleware: admits the request or answers 401/403/429. The caller (key id and
/// scope, never the token) goes into the request's and the response's extensions for
/// the handlers and the access log.
pub async fn guard(State(g): State<Guard>, mut req: Request, next: Next) -> Response {
    match g
        .access
        .admit(g.needed, req.headers().get(header::AUTHORIZATION))
    {
        Err(refusal) => refusal.into_response(),
        Ok(caller) => {
            if let Some(c) = &caller {
                req.extensions_mut().insert(c.clone());
            }
            let mut response = next.run(req).await;
            if let Some(c) = caller {
                response.extensions_mut().insert(c);
            }
            response
        }
    }
}
