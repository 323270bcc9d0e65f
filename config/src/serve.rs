//! `[serve]`: access control and limits of `gco serve` (docs/serve.md, "Access").

use serde::Deserialize;

use crate::{Result, invalid};

/// `[serve]` of gco.toml. Every field has a default; `gco serve`'s flags
/// (`--public-read`, `--read-only`) turn the booleans on as well.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// The read API answers without a key (hosting routes always do).
    pub public_read: bool,
    /// Refuse every write (ingestion, issuance) with 403 `read_only`.
    pub read_only: bool,
    /// Requests per second allowed to one API key, sustained.
    pub rate_limit: u32,
    /// Requests one API key may make at once above the sustained rate.
    pub rate_burst: u32,
    /// Origins a browser may call the API from (CORS); empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// Largest request body accepted, in bytes (a sealed batch, a credential).
    pub max_body_bytes: u64,
    /// How often the server rereads the store's API keys (a revocation takes effect
    /// within this many seconds).
    pub key_refresh_seconds: u32,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            public_read: false,
            read_only: false,
            rate_limit: 100,
            rate_burst: 200,
            cors_origins: Vec::new(),
            max_body_bytes: 64 << 20,
            key_refresh_seconds: 10,
        }
    }
}

impl ServeConfig {
    pub fn validate(&self) -> Result<()> {
        if self.rate_limit == 0 {
            invalid!("[serve] rate_limit must be at least 1 request per second");
        }
        if self.rate_burst == 0 {
            invalid!("[serve] rate_burst must be at least 1");
        }
        if self.max_body_bytes < 1024 {
            invalid!("[serve] max_body_bytes must be at least 1024");
        }
        if self.key_refresh_seconds == 0 {
            invalid!("[serve] key_refresh_seconds must be at least 1");
        }
        for (i, o) in self.cors_origins.iter().enumerate() {
            // An origin is scheme://host[:port], nothing after it (RFC 6454).
            let rest = o
                .strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"));
            let ok = rest.is_some_and(|r| {
                !r.is_empty()
                    && r.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            });
            if !ok {
                invalid!(
                    "[serve] cors_origins[{i}] is not an origin (scheme://host[:port], no path)"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_their_key() {
        ServeConfig::default().validate().unwrap();
        let bad = ServeConfig {
            cors_origins: vec!["https://ok.example".into(), "https://x.example/path".into()],
            ..Default::default()
        };
        let e = bad.validate().unwrap_err().to_string();
        assert_eq!(
            e,
            "[serve] cors_origins[1] is not an origin (scheme://host[:port], no path)"
        );
        let zero = ServeConfig {
            rate_limit: 0,
            ..Default::default()
        };
        assert_eq!(
            zero.validate().unwrap_err().to_string(),
            "[serve] rate_limit must be at least 1 request per second"
        );
    }
}
