//! `gco.toml`: the types of every section, their validation into the integer figures
//! the pipeline uses, and parse errors that name the place but never print a value
//! from the file (it holds API keys and store credentials).
//!
//! A crate of its own, below the pipeline and the reports, so that the whole
//! configuration path (parse, validate, convert) can be fuzzed without building them
//! (`fuzz/`). Store and grid-provider wiring stays with the binary.

pub mod pipeline;
pub mod report;
pub mod serve;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

pub use pipeline::PipelineConfig;
pub use report::ReportConfig;
pub use serve::ServeConfig;

/// What is wrong with a configuration. Messages never contain a value from the file
/// other than the section and key names that locate the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, or a value of the wrong type.
    #[error("invalid configuration {path}{at}: {message}")]
    Parse {
        path: String,
        /// `, line L column C` where toml knows it, else empty.
        at: String,
        /// toml's message with every quoted value replaced by `***`.
        message: String,
    },
    /// A value that parses but cannot be used (out of range, unknown reference...).
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

impl ConfigError {
    /// The stable machine-readable code (docs/errors.md).
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config_read",
            ConfigError::Parse { .. } => "config_parse",
            ConfigError::Invalid(_) => "config_invalid",
        }
    }
}

/// `return Err(ConfigError::Invalid(format!(...)))`.
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err($crate::ConfigError::Invalid(format!($($arg)*)))
    };
}
pub(crate) use invalid;

/// `gco.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Store URL.
    pub store: Option<String>,
    /// object_store options (endpoint, region, allow_http, access_key_id, ...). Values
    /// may hold credentials: they are never printed.
    #[serde(default)]
    pub store_options: BTreeMap<String, String>,
    /// Grid data providers.
    #[serde(default)]
    pub providers: Providers,
    /// The emissions pipeline: sites, hardware, instruments, residual mixes, policy.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// Reports: datapoint identifiers, grid mixes, model training facts.
    #[serde(default)]
    pub report: ReportConfig,
    /// `gco serve`: access control and limits.
    #[serde(default)]
    pub serve: ServeConfig,
}

/// `[providers.*]`: endpoints and credentials. Environment variables override the file:
/// WATTTIME_USERNAME, WATTTIME_PASSWORD, ELECTRICITYMAPS_API_KEY, GCO_WATTTIME_URL,
/// GCO_ELECTRICITYMAPS_URL, GCO_UK_CARBON_URL. Secrets are never printed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Providers {
    #[serde(default)]
    pub watttime: ProviderConfig,
    #[serde(default)]
    pub electricitymaps: ProviderConfig,
    #[serde(default)]
    pub uk: ProviderConfig,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub api_key: Option<String>,
    /// Electricity Maps emission factor type: lifecycle (default) or direct.
    pub basis: Option<String>,
    /// How long one request may take, retries included (default `30s`); a hung
    /// provider fails by then.
    pub timeout: Option<String>,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads and parses the file at `path` (not yet validated: see [`Config::validate`]).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses configuration text; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| parse_error(path, text, &e))
    }

    /// Checks every section, so that a bad value fails before any work starts.
    pub fn validate(&self) -> Result<()> {
        self.pipeline.validate()?;
        self.serve.validate()?;
        self.report.check()
    }
}

/// A configuration parse error that names the file, line and column but never shows
/// the source line or any quoted value from it: the file holds API keys and store
/// credentials (`[providers.*]`, `[store_options]`), and toml's own message prints the
/// offending line.
fn parse_error(path: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let at = e
        .span()
        .map(|span| {
            let before = text.get(..span.start.min(text.len())).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!(", line {line} column {column}")
        })
        .unwrap_or_default();
    ConfigError::Parse {
        path: path.to_string(),
        at,
        message: redact_quoted(e.message()),
    }
}

/// toml's `message` reduced to what cannot hold a value from the file: its first line,
/// cut at the first quote (serde quotes the offending value, an unknown key or
/// variant, with `"` or a backtick, and a value may itself contain quotes), plus the
/// last "expected ..." part when it lists only gco's own names (lower-case words and
/// TOML punctuation; anything else is dropped rather than risk echoing a secret).
pub fn redact_quoted(message: &str) -> String {
    let message = message.lines().next().unwrap_or("");
    let (head, tail) = match message.rfind("expected") {
        Some(i) => message.split_at(i),
        None => (message, ""),
    };
    let mut out = match head.find(['"', '`']) {
        Some(q) => {
            let quote = &head[q..q + 1];
            format!("{}{quote}***{quote}", &head[..q])
        }
        None => head.trim_end().to_string(),
    };
    let safe =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || " ,`_'\"#=[]{}.-:".contains(c);
    if !tail.is_empty() && tail.chars().all(safe) {
        if !out.is_empty() {
            out.push_str(if out.ends_with(',') { " " } else { ", " });
        }
        out.push_str(tail);
    }
    out
}

/// Rejects a non-finite figure, naming it: floats only feed charts and configured
/// shares, and a NaN or infinity there is a data error, not something to draw.
pub fn finite(name: &str, v: f64) -> Result<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        invalid!("{name} is {v}, not a finite number: the report cannot show it")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parse_error_names_the_place_but_never_prints_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gco.toml");
        for text in [
            // A syntax error on the key's own line (toml shows the line).
            "store = \"file://x\"\n[providers.watttime]\napikey = \"sk-SECRET-1\" x\n",
            // A type error: serde names the value.
            "[providers.watttime]\nusername = 5\npassword = \"sk-SECRET-1\"\n",
            "[providers.uk]\nbasis = [\"sk-SECRET-1\"]\n",
            "[providers.watttime]\npassword = \"sk-SECRET-1\"\npasword = \"sk-SECRET-1\"\n",
            "[store_options]\naws_secret_access_key = [\"sk-SECRET-1\"]\n",
        ] {
            std::fs::write(&path, text).unwrap();
            let msg = Config::read(&path).unwrap_err().to_string();
            assert!(!msg.contains("SECRET"), "{msg}");
            assert!(msg.contains("gco.toml, line "), "{msg}");
        }
        assert_eq!(
            redact_quoted("invalid type: string \"abc\", expected `u64`"),
            "invalid type: string \"***\", expected `u64`"
        );
        assert_eq!(
            redact_quoted("unknown variant `sk-1`, expected `lifecycle` or `direct`"),
            "unknown variant `***`, expected `lifecycle` or `direct`"
        );
        assert_eq!(redact_quoted("bad \"open"), "bad \"***\"");
        // A value that itself holds a quote and the word "expected".
        assert_eq!(
            redact_quoted(
                "unknown variant `a`expected sk-SECRET`, expected `lifecycle` or `direct`"
            ),
            "unknown variant `***`, expected `lifecycle` or `direct`"
        );
        // An "expected" part that is not gco's vocabulary is dropped.
        assert_eq!(
            redact_quoted("unknown field `x`, expected Sk-1"),
            "unknown field `***`"
        );
    }
}
