//! API keys of `gco serve`, kept in the store itself (no second database), as only a
//! hash of their secret.
//!
//! A key is the token `gco_<id>_<secret>`: `id` 16 hex digits that name it (logs and
//! listings show only the id), `secret` 32 random bytes in base64url. The store holds
//! `keys/api/<id>.json` (scope, name, creation time, SHA-256 of the secret), written
//! create-only, and `keys/api/<id>.revoked.json` once revoked. The secret has 256 bits
//! of entropy, so a plain SHA-256 is as strong as a password hash here, and cheap
//! enough to check on every request; hashes are compared in constant time.

use std::collections::BTreeMap;

use bytes::Bytes;
use gco_ledger::layout::API_KEYS;
use gco_ledger::{LedgerError, PutOutcome, Store};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use subtle::ConstantTimeEq;

/// What a key may do. `admin` may do everything; `read` and `ingest` only their part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The read API and the verification endpoints.
    Read,
    /// Posting sealed batches and telemetry (a node's key).
    Ingest,
    /// Everything, issuing credentials included.
    Admin,
}

impl Scope {
    /// Whether a key of this scope may do what `needed` guards.
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Admin || self == needed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Ingest => "ingest",
            Scope::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Scope::Read),
            "ingest" => Ok(Scope::Ingest),
            "admin" => Ok(Scope::Admin),
            _ => Err(format!("unknown scope {s:?}: read, ingest or admin")),
        }
    }
}

/// `keys/api/<id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredKey {
    pub id: String,
    pub scope: Scope,
    /// Who or what holds it (free text, for the listing).
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// SHA-256 of the secret part, hex.
    pub secret_sha256: String,
}

/// `keys/api/<id>.revoked.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Revocation {
    id: String,
    revoked: String,
}

/// A key as `gco serve key list` shows it: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub scope: Scope,
    pub name: String,
    pub created: String,
    /// RFC 3339 time of revocation; `None` while the key is valid.
    pub revoked: Option<String>,
}

/// A key just created: the token is shown once and stored nowhere.
pub struct CreatedKey {
    pub info: KeyInfo,
    /// `gco_<id>_<secret>`.
    pub token: String,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

const PREFIX: &str = "gco_";
const ID_HEX: usize = 16;

fn key_path(id: &str) -> String {
    format!("{API_KEYS}/{id}.json")
}

fn revocation_path(id: &str) -> String {
    format!("{API_KEYS}/{id}.revoked.json")
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn valid_id(id: &str) -> bool {
    id.len() == ID_HEX
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Splits a token into (id, secret) when it has the shape of one.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = (rest.get(..ID_HEX)?, rest.get(ID_HEX..)?.strip_prefix('_')?);
    (valid_id(id) && !secret.is_empty()).then_some((id, secret))
}

/// Creates a key of `scope`; `created` is its RFC 3339 creation time.
pub async fn create(
    store: &Store,
    scope: Scope,
    name: &str,
    created: &str,
) -> Result<CreatedKey, LedgerError> {
    use base64::Engine;
    use rand::RngExt;
    let mut rng = rand::rng();
    let id = hex::encode(rng.random::<[u8; ID_HEX / 2]>());
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rng.random::<[u8; 32]>());
    let stored = StoredKey {
        id: id.clone(),
        scope,
        name: name.to_string(),
        created: created.to_string(),
        secret_sha256: sha256_hex(secret.as_bytes()),
    };
    let body = serde_json::to_vec_pretty(&stored).expect("a key serialises");
    match store.put_create(&key_path(&id), Bytes::from(body)).await? {
        PutOutcome::Created => {}
        // 64 random bits colliding with an existing id: refuse rather than overwrite.
        PutOutcome::AlreadyPresent => {
            return Err(LedgerError::Conflict {
                path: key_path(&id),
            });
        }
    }
    Ok(CreatedKey {
        info: KeyInfo {
            id: id.clone(),
            scope,
            name: name.to_string(),
            created: created.to_string(),
            revoked: None,
        },
        token: format!("{PREFIX}{id}_{secret}"),
    })
}

/// Every key, oldest id first, with its revocation.
pub async fn list(store: &Store) -> Result<Vec<KeyInfo>, LedgerError> {
    let (keys, revoked) = read_all(store).await?;
    Ok(keys
        .into_values()
        .map(|k| KeyInfo {
            revoked: revoked.get(&k.id).cloned(),
            id: k.id,
            scope: k.scope,
            name: k.name,
            created: k.created,
        })
        .collect())
}

/// Revokes key `id` at `at` (RFC 3339). Revoking a revoked key keeps the first time.
pub async fn revoke(store: &Store, id: &str, at: &str) -> Result<KeyInfo, LedgerError> {
    let keys = list(store).await?;
    let Some(mut key) = keys.into_iter().find(|k| k.id == id) else {
        return Err(LedgerError::Input(format!(
            "no API key {id:?} in the store (`gco serve key list` shows them)"
        )));
    };
    if key.revoked.is_some() {
        return Ok(key);
    }
    let body = serde_json::to_vec_pretty(&Revocation {
        id: id.to_string(),
        revoked: at.to_string(),
    })
    .expect("a revocation serialises");
    match store
        .put_create(&revocation_path(id), Bytes::from(body))
        .await
    {
        Ok(_) => key.revoked = Some(at.to_string()),
        // Revoked at the same moment by another process: it is revoked.
        Err(LedgerError::Conflict { .. }) => {
            key.revoked = list(store)
                .await?
                .into_iter()
                .find(|k| k.id == id)
                .and_then(|k| k.revoked);
        }
        Err(e) => return Err(e),
    }
    Ok(key)
}

async fn read_all(
    store: &Store,
) -> Result<(BTreeMap<String, StoredKey>, BTreeMap<String, String>), LedgerError> {
    let mut keys = BTreeMap::new();
    let mut revoked = BTreeMap::new();
    for meta in store.list(API_KEYS).await? {
        let path = meta.location.to_string();
        let Some(name) = path.strip_prefix(&format!("{API_KEYS}/")) else {
            continue;
        };
        let bytes = store.get(&path).await?;
        let bad = |e: serde_json::Error| {
            LedgerError::Input(format!("{path}: not an API key record: {e}"))
        };
        if let Some(id) = name.strip_suffix(".revoked.json") {
            let r: Revocation = serde_json::from_slice(&bytes).map_err(bad)?;
            if r.id != id {
                return Err(LedgerError::Input(format!("{path}: names key {:?}", r.id)));
            }
            revoked.insert(r.id, r.revoked);
        } else if let Some(id) = name.strip_suffix(".json") {
            let k: StoredKey = serde_json::from_slice(&bytes).map_err(bad)?;
            if k.id != id || !valid_id(id) {
                return Err(LedgerError::Input(format!("{path}: names key {:?}", k.id)));
            }
            keys.insert(k.id.clone(), k);
        }
    }
    Ok((keys, revoked))
}

/// The valid keys, as the server checks tokens against them.
#[derive(Debug, Default, Clone)]
pub struct KeySet {
    /// id -> (scope, SHA-256 of the secret).
    keys: BTreeMap<String, (Scope, [u8; 32])>,
}

/// Who presented a valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: String,
    pub scope: Scope,
}

impl KeySet {
    /// Reads the store's keys, leaving out revoked ones.
    pub async fn load(store: &Store) -> Result<Self, LedgerError> {
        let (keys, revoked) = read_all(store).await?;
        let mut set = KeySet::default();
        for (id, k) in keys {
            if revoked.contains_key(&id) {
                continue;
            }
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(&k.secret_sha256, &mut hash).is_err() {
                return Err(LedgerError::Input(format!(
                    "{}: secret_sha256 is not 64 hex digits",
                    key_path(&id)
                )));
            }
            set.keys.insert(id, (k.scope, hash));
        }
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The caller a token names, if it is a valid key's.
    pub fn check(&self, token: &str) -> Option<Caller> {
        let (id, secret) = parse_token(token)?;
        let (scope, hash) = self.keys.get(id)?;
        let presented: [u8; 32] = sha2::Sha256::digest(secret.as_bytes()).into();
        bool::from(presented.ct_eq(hash)).then(|| Caller {
            key_id: id.to_string(),
            scope: *scope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_checks_until_revoked_and_is_stored_only_as_a_hash() {
        let store = Store::memory();
        let k = create(&store, Scope::Ingest, "node n1", "2026-12-01T00:00:00Z")
            .await
            .unwrap();
        let (id, secret) = parse_token(&k.token).unwrap();
        assert_eq!(id, k.info.id);
        assert_eq!(secret.len(), 43);
        let stored = store.get(&key_path(id)).await.unwrap();
        assert!(!String::from_utf8_lossy(&stored).contains(secret));
        let set = KeySet::load(&store).await.unwrap();
        assert_eq!(
            set.check(&k.token),
            Some(Caller {
                key_id: id.to_string(),
                scope: Scope::Ingest
            })
        );
        // One character changed, a wrong id, no prefix: not a key.
        let mut wrong = k.token.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(set.check(&wrong), None);
        assert_eq!(
            set.check(&k.token.replacen(id, "0123456789abcdef", 1)),
            None
        );
        assert_eq!(set.check(&k.token[4..]), None);

        let r = revoke(&store, id, "2026-12-02T00:00:00Z").await.unwrap();
        assert_eq!(r.revoked.as_deref(), Some("2026-12-02T00:00:00Z"));
        // A second revocation keeps the first time.
        let again = revoke(&store, id, "2026-12-03T00:00:00Z").await.unwrap();
        assert_eq!(again.revoked.as_deref(), Some("2026-12-02T00:00:00Z"));
        assert!(KeySet::load(&store).await.unwrap().is_empty());
        assert_eq!(list(&store).await.unwrap(), vec![again]);
    }

    #[test]
    fn scopes_admin_allows_everything_others_only_themselves() {
        assert!(Scope::Admin.allows(Scope::Ingest));
        assert!(Scope::Admin.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Ingest));
        assert!(!Scope::Ingest.allows(Scope::Read));
        assert!(Scope::Read.allows(Scope::Read));
    }
}
