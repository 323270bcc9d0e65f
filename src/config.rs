//! How the binary uses `gco.toml` (crate gco-config): where it is found, the store it
//! names, the grid provider clients it configures.

use std::path::PathBuf;

use anyhow::Result;
use gco_config::{ProviderConfig, Providers};

use crate::cli::Global;

pub use gco_config::Config;

/// Default store when neither `--store` nor the configuration names one.
pub const DEFAULT_STORE: &str = "file://./gco-data";

/// A provider's retry policy with its configured total timeout.
fn policy(p: &ProviderConfig, name: &str) -> Result<gco_grid_data::providers::RetryPolicy> {
    let mut policy = gco_grid_data::providers::RetryPolicy::default();
    if let Some(t) = &p.timeout {
        policy.total = humantime::parse_duration(t).map_err(|e| {
            anyhow::anyhow!("providers.{name}.timeout {t:?}: {e} (e.g. \"30s\", \"2m\")")
        })?;
        policy.timeout = policy.timeout.min(policy.total);
    }
    Ok(policy)
}

fn env_or(var: &str, file: &Option<String>) -> Option<String> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| file.clone())
}

/// The clients that have what they need, in the default order of preference.
pub fn clients(
    providers: &Providers,
    signal: gco_grid_data::Signal,
) -> Result<Vec<gco_grid_data::backfill::Provider>> {
    use gco_grid_data::backfill::Provider;
    use gco_grid_data::providers::{electricitymaps, uk, watttime};
    let mut out = Vec::new();
    if let Some(key) = env_or(
        "ELECTRICITYMAPS_API_KEY",
        &providers.electricitymaps.api_key,
    ) {
        let url = env_or("GCO_ELECTRICITYMAPS_URL", &providers.electricitymaps.url)
            .unwrap_or_else(|| electricitymaps::DEFAULT_URL.into());
        let basis = match providers.electricitymaps.basis.as_deref() {
            None | Some("lifecycle") => gco_grid_data::Basis::Lifecycle,
            Some("direct") => gco_grid_data::Basis::Direct,
            Some(other) => {
                anyhow::bail!("providers.electricitymaps.basis {other:?}: use lifecycle or direct")
            }
        };
        out.push(Provider::ElectricityMaps(
            electricitymaps::ElectricityMaps::new(
                &url,
                key,
                basis,
                policy(&providers.electricitymaps, "electricitymaps")?,
            )?,
        ));
    }
    if let (Some(username), Some(password)) = (
        env_or("WATTTIME_USERNAME", &providers.watttime.username),
        env_or("WATTTIME_PASSWORD", &providers.watttime.password),
    ) {
        let url = env_or("GCO_WATTTIME_URL", &providers.watttime.url)
            .unwrap_or_else(|| watttime::DEFAULT_URL.into());
        let creds = watttime::Credentials { username, password };
        out.push(Provider::WattTime(
            watttime::WattTime::new(&url, creds, policy(&providers.watttime, "watttime")?)?,
            signal,
        ));
    }
    let url =
        env_or("GCO_UK_CARBON_URL", &providers.uk.url).unwrap_or_else(|| uk::DEFAULT_URL.into());
    out.push(Provider::Uk(uk::UkCarbonIntensity::new(
        &url,
        policy(&providers.uk, "uk")?,
    )?));
    Ok(out)
}

/// Loads `--config`, else `./gco.toml` when present, else the defaults; validated.
pub fn load(global: &Global) -> Result<Config> {
    let path: Option<PathBuf> = match &global.config {
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from("gco.toml")).filter(|p| p.exists()),
    };
    let config = match path {
        None => Config::default(),
        Some(p) => Config::read(&p)?,
    };
    config.validate()?;
    Ok(config)
}

/// [`load`] and [`open_store`]: the checked configuration and the store it names.
pub fn load_with_store(global: &Global) -> Result<(Config, gco_ledger::Store)> {
    let config = load(global)?;
    let store = open_store(&config, global)?;
    Ok((config, store))
}

/// Opens the store: `--store`, else the configuration, else [`DEFAULT_STORE`].
pub fn open_store(config: &Config, global: &Global) -> Result<gco_ledger::Store> {
    let url = global
        .store
        .as_deref()
        .or(config.store.as_deref())
        .unwrap_or(DEFAULT_STORE);
    Ok(gco_ledger::Store::open(url, &config.store_options)?)
}
