//! The configuration file (`gco.toml`) and how the store is chosen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::cli::Global;

/// Default store when neither `--store` nor the configuration names one.
pub const DEFAULT_STORE: &str = "file://./gco-data";

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
    pub pipeline: gco_pipelines::PipelineConfig,
    /// Reports: datapoint identifiers, grid mixes, model training facts.
    #[serde(default)]
    pub report: gco_report::ReportConfig,
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

impl ProviderConfig {
    fn policy(&self, name: &str) -> Result<gco_grid_data::providers::RetryPolicy> {
        let mut p = gco_grid_data::providers::RetryPolicy::default();
        if let Some(t) = &self.timeout {
            p.total = humantime::parse_duration(t).map_err(|e| {
                anyhow::anyhow!("providers.{name}.timeout {t:?}: {e} (e.g. \"30s\", \"2m\")")
            })?;
            p.timeout = p.timeout.min(p.total);
        }
        Ok(p)
    }
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn env_or(var: &str, file: &Option<String>) -> Option<String> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| file.clone())
}

impl Providers {
    /// The clients that have what they need, in the default order of preference.
    pub fn clients(
        &self,
        signal: gco_grid_data::Signal,
    ) -> Result<Vec<gco_grid_data::backfill::Provider>> {
        use gco_grid_data::backfill::Provider;
        use gco_grid_data::providers::{electricitymaps, uk, watttime};
        let mut out = Vec::new();
        if let Some(key) = env_or("ELECTRICITYMAPS_API_KEY", &self.electricitymaps.api_key) {
            let url = env_or("GCO_ELECTRICITYMAPS_URL", &self.electricitymaps.url)
                .unwrap_or_else(|| electricitymaps::DEFAULT_URL.into());
            let basis = match self.electricitymaps.basis.as_deref() {
                None | Some("lifecycle") => gco_grid_data::Basis::Lifecycle,
                Some("direct") => gco_grid_data::Basis::Direct,
                Some(other) => anyhow::bail!(
                    "providers.electricitymaps.basis {other:?}: use lifecycle or direct"
                ),
            };
            out.push(Provider::ElectricityMaps(
                electricitymaps::ElectricityMaps::new(
                    &url,
                    key,
                    basis,
                    self.electricitymaps.policy("electricitymaps")?,
                )?,
            ));
        }
        if let (Some(username), Some(password)) = (
            env_or("WATTTIME_USERNAME", &self.watttime.username),
            env_or("WATTTIME_PASSWORD", &self.watttime.password),
        ) {
            let url = env_or("GCO_WATTTIME_URL", &self.watttime.url)
                .unwrap_or_else(|| watttime::DEFAULT_URL.into());
            let creds = watttime::Credentials { username, password };
            out.push(Provider::WattTime(
                watttime::WattTime::new(&url, creds, self.watttime.policy("watttime")?)?,
                signal,
            ));
        }
        let url =
            env_or("GCO_UK_CARBON_URL", &self.uk.url).unwrap_or_else(|| uk::DEFAULT_URL.into());
        out.push(Provider::Uk(uk::UkCarbonIntensity::new(
            &url,
            self.uk.policy("uk")?,
        )?));
        Ok(out)
    }
}

impl Config {
    /// Loads `--config`, else `./gco.toml` when present, else the defaults.
    pub fn load(global: &Global) -> Result<Self> {
        let path: Option<PathBuf> = match &global.config {
            Some(p) => Some(p.clone()),
            None => Some(PathBuf::from("gco.toml")).filter(|p| p.exists()),
        };
        match path {
            None => Ok(Config::default()),
            Some(p) => Self::read(&p),
        }
    }

    fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration {}", path.display()))?;
        toml::from_str(&text).map_err(|e| parse_error(path, &text, &e))
    }

    /// Opens the store: `--store`, else the configuration, else [`DEFAULT_STORE`].
    pub fn open_store(&self, global: &Global) -> Result<gco_ledger::Store> {
        let url = global
            .store
            .as_deref()
            .or(self.store.as_deref())
            .unwrap_or(DEFAULT_STORE);
        Ok(gco_ledger::Store::open(url, &self.store_options)?)
    }
}

/// A configuration parse error that names the file, line and column but never shows
/// the source line or any quoted value from it: the file holds API keys and store
/// credentials (`[providers.*]`, `[store_options]`), and toml's own message prints the
/// offending line.
fn parse_error(path: &Path, text: &str, e: &toml::de::Error) -> anyhow::Error {
    let at = e
        .span()
        .map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!(", line {line} column {column}")
        })
        .unwrap_or_default();
    anyhow::anyhow!(
        "invalid configuration {}{at}: {}",
        path.display(),
        redact_quoted(e.message())
    )
}

/// `message` with every quoted value (`"..."`, and serde's backticks, which also
/// quote values such as an unknown variant) replaced by `***`, up to the first
/// "expected": what follows lists gco's own names, never the file's text.
fn redact_quoted(message: &str) -> String {
    let message = message.lines().next().unwrap_or("");
    let (head, tail) = match message.find("expected") {
        Some(i) => message.split_at(i),
        None => (message, ""),
    };
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    for c in head.chars() {
        match (quote, c) {
            (None, '"' | '`') => {
                quote = Some(c);
                out.push(c);
                out.push_str("***");
            }
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), _) => {}
            (None, c) => out.push(c),
        }
    }
    out.push_str(tail);
    out
}

#[cfg(test)]
mod parse_error_tests {
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
            let msg = format!("{:#}", Config::read(&path).unwrap_err());
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
        assert_eq!(redact_quoted("bad \"open"), "bad \"***");
    }
}
