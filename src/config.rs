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
        use gco_grid_data::providers::{RetryPolicy, electricitymaps, uk, watttime};
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
                electricitymaps::ElectricityMaps::new(&url, key, basis, RetryPolicy::default())?,
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
                watttime::WattTime::new(&url, creds, RetryPolicy::default())?,
                signal,
            ));
        }
        let url =
            env_or("GCO_UK_CARBON_URL", &self.uk.url).unwrap_or_else(|| uk::DEFAULT_URL.into());
        out.push(Provider::Uk(uk::UkCarbonIntensity::new(
            &url,
            RetryPolicy::default(),
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
        toml::from_str(&text).with_context(|| format!("invalid configuration {}", path.display()))
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
