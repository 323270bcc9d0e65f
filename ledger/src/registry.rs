//! The node registry: which public key may sign for which node, where the node runs
//! (grid zone, site) and when. Append-only events in the store, one JSON object each,
//! under `keys/nodes/node=<id>/`; effective dates decide what holds at a given time.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{LedgerError, Result};
use crate::keys::PublicKey;
use crate::store::{PutOutcome, Store, validate_node_id};
use crate::time::{Micros, format_utc, parse_utc};

/// Folder of the node registry events.
use crate::layout::REGISTRY as REGISTRY_PREFIX;

/// One registry event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RegistryEvent {
    /// `public_key` may sign the node's batches for records within the validity window.
    Register {
        node_id: String,
        key_id: String,
        algorithm: crate::keys::Algorithm,
        /// SPKI PEM.
        public_key: String,
        /// Grid zone id (resolved through the zone catalog by the pipeline).
        zone: String,
        site: String,
        valid_from: String,
        valid_to: Option<String>,
        recorded_at: String,
    },
    /// From `effective_at` on, batches signed by `key_id` for the node are refused.
    Revoke {
        node_id: String,
        key_id: String,
        effective_at: String,
        reason: String,
        recorded_at: String,
    },
}

impl RegistryEvent {
    fn node_id(&self) -> &str {
        match self {
            RegistryEvent::Register { node_id, .. } | RegistryEvent::Revoke { node_id, .. } => {
                node_id
            }
        }
    }
    fn recorded_at(&self) -> &str {
        match self {
            RegistryEvent::Register { recorded_at, .. }
            | RegistryEvent::Revoke { recorded_at, .. } => recorded_at,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            RegistryEvent::Register { .. } => "register",
            RegistryEvent::Revoke { .. } => "revoke",
        }
    }

    /// The event's deterministic object path.
    pub fn path(&self) -> Result<(String, String)> {
        let json = serde_json::to_string_pretty(self).map_err(|source| LedgerError::Json {
            what: "registry event".into(),
            source,
        })? + "\n";
        let at = parse_utc(self.recorded_at()).map_err(LedgerError::Registry)?;
        let short = &hex::encode(Sha256::digest(json.as_bytes()))[..16];
        Ok((
            format!(
                "{REGISTRY_PREFIX}/node={}/{at:020}-{}-{short}.json",
                self.node_id(),
                self.kind()
            ),
            json,
        ))
    }
}

/// A registered node key and its validity.
#[derive(Debug, Clone)]
pub struct NodeKey {
    pub node_id: String,
    pub public_key: PublicKey,
    pub zone: String,
    pub site: String,
    pub valid_from: Micros,
    pub valid_to: Option<Micros>,
    pub revoked_at: Option<Micros>,
    pub revoke_reason: Option<String>,
    /// Path of the registration event.
    pub source: String,
}

/// Why a key cannot vouch for a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRefusal {
    /// No registration of this key for this node.
    Unknown,
    /// Registered, but the batch's records fall outside every validity window.
    OutOfWindow { windows: String },
    /// Revoked at or before the batch's last record.
    Revoked { at: Micros, reason: String },
}

/// The registry as loaded from the store.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    keys: Vec<NodeKey>,
    /// Events that could not be used, with their path and reason.
    pub invalid: Vec<(String, String)>,
}

fn parse_time(field: &str, v: &str) -> std::result::Result<Micros, String> {
    parse_utc(v).map_err(|e| format!("{field}: {e}"))
}

impl Registry {
    /// Loads every event under [`crate::layout::REGISTRY`].
    pub async fn load(store: &Store) -> Result<Self> {
        let paths: Vec<String> = store
            .list(REGISTRY_PREFIX)
            .await?
            .into_iter()
            .map(|m| m.location.to_string())
            .collect();
        Self::load_paths(store, &paths).await
    }

    /// Loads the given event objects only (a run's plan: the events written by its
    /// as-of time), in the order given.
    pub async fn load_paths(store: &Store, paths: &[String]) -> Result<Self> {
        let mut reg = Registry::default();
        let mut revokes = Vec::new();
        for path in paths {
            let path = path.clone();
            let bytes = store.get(&path).await?;
            let event: RegistryEvent = match serde_json::from_slice(&bytes) {
                Ok(e) => e,
                Err(e) => {
                    reg.invalid
                        .push((path, format!("not a registry event: {e}")));
                    continue;
                }
            };
            match reg.apply_register(&path, event) {
                Ok(Some(revoke)) => revokes.push((path, revoke)),
                Ok(None) => {}
                Err(e) => reg.invalid.push((path, e)),
            }
        }
        for (path, (node, key_id, at, reason)) in revokes {
            let mut hit = false;
            for k in reg
                .keys
                .iter_mut()
                .filter(|k| k.node_id == node && k.public_key.key_id() == key_id)
            {
                hit = true;
                if k.revoked_at.is_none_or(|prev| at < prev) {
                    k.revoked_at = Some(at);
                    k.revoke_reason = Some(reason.clone());
                }
            }
            if !hit {
                reg.invalid.push((
                    path,
                    format!("revokes key {key_id} never registered for node {node}"),
                ));
            }
        }
        Ok(reg)
    }

    #[allow(clippy::type_complexity)]
    fn apply_register(
        &mut self,
        path: &str,
        event: RegistryEvent,
    ) -> std::result::Result<Option<(String, String, Micros, String)>, String> {
        match event {
            RegistryEvent::Register {
                node_id,
                key_id,
                algorithm,
                public_key,
                zone,
                site,
                valid_from,
                valid_to,
                ..
            } => {
                let pk = PublicKey::from_pem(&public_key).map_err(|e| e.to_string())?;
                if pk.key_id() != key_id || pk.algorithm() != algorithm {
                    return Err(format!(
                        "key_id/algorithm {key_id}/{algorithm} do not match the public key ({}/{})",
                        pk.key_id(),
                        pk.algorithm()
                    ));
                }
                let expected_dir = format!("{REGISTRY_PREFIX}/node={node_id}/");
                if !path.starts_with(&expected_dir) {
                    return Err(format!(
                        "registration for node {node_id} stored outside {expected_dir}"
                    ));
                }
                self.keys.push(NodeKey {
                    node_id,
                    public_key: pk,
                    zone,
                    site,
                    valid_from: parse_time("valid_from", &valid_from)?,
                    valid_to: valid_to
                        .as_deref()
                        .map(|v| parse_time("valid_to", v))
                        .transpose()?,
                    revoked_at: None,
                    revoke_reason: None,
                    source: path.to_string(),
                });
                Ok(None)
            }
            RegistryEvent::Revoke {
                node_id,
                key_id,
                effective_at,
                reason,
                ..
            } => Ok(Some((
                node_id,
                key_id,
                parse_time("effective_at", &effective_at)?,
                reason,
            ))),
        }
    }

    /// Every registered key, in registration order.
    pub fn keys(&self) -> &[NodeKey] {
        &self.keys
    }

    /// The key that vouches for a batch of `node_id` signed by `key_id` whose records span
    /// `[start, end]`, or why none does.
    pub fn key_for(
        &self,
        node_id: &str,
        key_id: &str,
        start: Micros,
        end: Micros,
    ) -> std::result::Result<&NodeKey, KeyRefusal> {
        let candidates: Vec<&NodeKey> = self
            .keys
            .iter()
            .filter(|k| k.node_id == node_id && k.public_key.key_id() == key_id)
            .collect();
        if candidates.is_empty() {
            return Err(KeyRefusal::Unknown);
        }
        let in_window: Vec<&NodeKey> = candidates
            .iter()
            .copied()
            .filter(|k| k.valid_from <= start && k.valid_to.is_none_or(|to| end <= to))
            .collect();
        if in_window.is_empty() {
            let windows = candidates
                .iter()
                .map(|k| {
                    format!(
                        "{} .. {}",
                        format_utc(k.valid_from),
                        k.valid_to.map(format_utc).unwrap_or_else(|| "open".into())
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            return Err(KeyRefusal::OutOfWindow { windows });
        }
        match in_window
            .iter()
            .find(|k| k.revoked_at.is_none_or(|at| end < at))
        {
            Some(k) => Ok(k),
            None => {
                let k = in_window[0];
                Err(KeyRefusal::Revoked {
                    at: k.revoked_at.unwrap_or_default(),
                    reason: k.revoke_reason.clone().unwrap_or_default(),
                })
            }
        }
    }

    /// The latest registration of a node valid at `at` (zone, site), if any.
    pub fn node_at(&self, node_id: &str, at: Micros) -> Option<&NodeKey> {
        pick_at(self.keys.iter().filter(|k| k.node_id == node_id), at)
    }

    /// Every registration of `node_id`, for callers that resolve many times of one node
    /// (pass them to [`pick_at`]).
    pub fn node_keys(&self, node_id: &str) -> Vec<&NodeKey> {
        self.keys.iter().filter(|k| k.node_id == node_id).collect()
    }
}

/// The registration among `keys` (of one node) in force at `at`: the latest valid one
/// that is not revoked by then.
pub fn pick_at<'k>(keys: impl IntoIterator<Item = &'k NodeKey>, at: Micros) -> Option<&'k NodeKey> {
    keys.into_iter()
        .filter(|k| k.valid_from <= at && k.valid_to.is_none_or(|to| at <= to))
        .filter(|k| k.revoked_at.is_none_or(|r| at < r))
        .max_by_key(|k| k.valid_from)
}

/// What `gco node register` records.
#[derive(Debug, Clone)]
pub struct Registration {
    pub node_id: String,
    pub public_key: PublicKey,
    pub zone: String,
    pub site: String,
    pub valid_from: Micros,
    pub valid_to: Option<Micros>,
}

fn validate_label(what: &str, v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/ ".contains(c));
    if ok {
        Ok(())
    } else {
        Err(LedgerError::Registry(format!(
            "{what} {v:?} is invalid: 1-128 characters from letters, digits and - _ . : / space"
        )))
    }
}

/// Appends a registration event. `now` is the recording time, read once by the caller.
pub async fn register(
    store: &Store,
    reg: &Registration,
    now: Micros,
) -> Result<(String, PutOutcome)> {
    validate_node_id(&reg.node_id).map_err(LedgerError::Registry)?;
    validate_label("zone", &reg.zone)?;
    validate_label("site", &reg.site)?;
    if let Some(to) = reg.valid_to
        && to <= reg.valid_from
    {
        return Err(LedgerError::Registry(
            "valid_to must be after valid_from".into(),
        ));
    }
    let existing = Registry::load(store).await?;
    if let Some(other) = existing
        .keys()
        .iter()
        .find(|k| k.public_key.key_id() == reg.public_key.key_id() && k.node_id != reg.node_id)
    {
        return Err(LedgerError::Registry(format!(
            "key {} is already registered for node {}; every node needs its own key",
            reg.public_key.key_id(),
            other.node_id
        )));
    }
    let event = RegistryEvent::Register {
        node_id: reg.node_id.clone(),
        key_id: reg.public_key.key_id().to_string(),
        algorithm: reg.public_key.algorithm(),
        public_key: reg.public_key.to_pem(),
        zone: reg.zone.clone(),
        site: reg.site.clone(),
        valid_from: format_utc(reg.valid_from),
        valid_to: reg.valid_to.map(format_utc),
        recorded_at: format_utc(now),
    };
    put_event(store, &event).await
}

/// Appends a revocation event for a registered key.
pub async fn revoke(
    store: &Store,
    node_id: &str,
    key_id: &str,
    effective_at: Micros,
    reason: &str,
    now: Micros,
) -> Result<(String, PutOutcome)> {
    let existing = Registry::load(store).await?;
    if !existing
        .keys()
        .iter()
        .any(|k| k.node_id == node_id && k.public_key.key_id() == key_id)
    {
        return Err(LedgerError::Registry(format!(
            "key {key_id} is not registered for node {node_id}; `gco node list` shows the registry"
        )));
    }
    let event = RegistryEvent::Revoke {
        node_id: node_id.to_string(),
        key_id: key_id.to_string(),
        effective_at: format_utc(effective_at),
        reason: reason.to_string(),
        recorded_at: format_utc(now),
    };
    put_event(store, &event).await
}

async fn put_event(store: &Store, event: &RegistryEvent) -> Result<(String, PutOutcome)> {
    let (path, json) = event.path()?;
    let outcome = store.put_create(&path, json.into_bytes().into()).await?;
    Ok((path, outcome))
}
