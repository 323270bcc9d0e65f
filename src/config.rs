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
