//! The issuer: its keys (a directory with `issuer.json` and one PKCS#8 file per key),
//! its DIDs (`did:web` for an organisation, rotatable; `did:key` for offline use) and
//! the DID document to host. Resolution of verification methods for verifiers.
//!
//! Rotation adds a key and retires the previous one for new credentials; retired keys
//! stay in the DID document, so credentials signed with them still verify.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result, malformed};
use crate::key::{Alg, IssuerKey, KeyKind, PublicKey};

pub const ISSUER_FILE: &str = "issuer.json";

/// What a key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// W3C credentials (VC-JOSE, Data Integrity) and status lists.
    Vc,
    /// The legacy RS256 certificate JWS.
    Legacy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    pub key_id: String,
    pub kind: KeyKind,
    pub purpose: Purpose,
    /// SPKI PEM.
    pub public_key: String,
    pub created: String,
    /// Set when a newer key of the same purpose took over; still verifiable.
    pub retired: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerFile {
    pub version: u32,
    /// `did:web:...` when the issuer publishes a DID document; else the issuer is the
    /// `did:key` of its current credential key.
    pub did_web: Option<String>,
    pub keys: Vec<KeyEntry>,
}

/// An issuer directory, loaded.
#[derive(Debug, Clone)]
pub struct Issuer {
    dir: PathBuf,
    pub file: IssuerFile,
}

/// `did:web` for a domain and optional path (`example.com`, `example.com/issuers/carbon`,
/// `localhost:8443`): a port's colon is percent-encoded, path segments join with ':'.
pub fn did_web(domain_and_path: &str) -> Result<String> {
    let s = domain_and_path
        .trim()
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let mut parts = s.split('/');
    let host = parts.next().unwrap_or("");
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
    {
        return Err(Error::Invalid(format!(
            "{domain_and_path:?} is not a host name (e.g. carbon.example.com or example.com/issuers/carbon)"
        )));
    }
    let mut did = format!("did:web:{}", host.replace(':', "%3A"));
    for seg in parts {
        if seg.is_empty()
            || !seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(Error::Invalid(format!(
                "bad path segment {seg:?} in {domain_and_path:?}"
            )));
        }
        did.push(':');
        did.push_str(seg);
    }
    Ok(did)
}

/// Where a `did:web` document is served (`/.well-known/did.json` without a path).
pub fn did_web_url(did: &str) -> Option<String> {
    let rest = did.strip_prefix("did:web:")?;
    let mut parts = rest.split(':');
    let host = parts.next()?.replace("%3A", ":");
    let path: Vec<&str> = parts.collect();
    Some(if path.is_empty() {
        format!("https://{host}/.well-known/did.json")
    } else {
        format!("https://{host}/{}/did.json", path.join("/"))
    })
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).map_err(|e| Error::io(path, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

impl Issuer {
    /// Creates an issuer directory with a credential key (and, with `legacy`, an RSA key
    /// for the legacy JWS). Refuses a directory that already holds an issuer.
    pub fn init<R: rand::CryptoRng + ?Sized>(
        dir: &Path,
        domain: Option<&str>,
        kind: KeyKind,
        legacy: bool,
        created: &str,
        rng: &mut R,
    ) -> Result<Self> {
        let file = dir.join(ISSUER_FILE);
        if file.exists() {
            return Err(Error::Invalid(format!(
                "{} already holds an issuer; use `gco issuer rotate` for a new key",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir.join("keys")).map_err(|e| Error::io(dir, e))?;
        let mut issuer = Issuer {
            dir: dir.to_path_buf(),
            file: IssuerFile {
                version: 1,
                did_web: domain.map(did_web).transpose()?,
                keys: Vec::new(),
            },
        };
        issuer.add_key(Purpose::Vc, kind, created, rng)?;
        if legacy {
            issuer.add_key(Purpose::Legacy, KeyKind::Rsa, created, rng)?;
        }
        issuer.save()?;
        Ok(issuer)
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(ISSUER_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Invalid(format!(
                    "no issuer in {}: run `gco issuer init` first",
                    dir.display()
                ))
            } else {
                Error::io(&path, e)
            }
        })?;
        let file: IssuerFile = serde_json::from_str(&text)
            .map_err(|e| malformed(format!("{}: {e}", path.display())))?;
        Ok(Issuer {
            dir: dir.to_path_buf(),
            file,
        })
    }

    fn save(&self) -> Result<()> {
        let path = self.dir.join(ISSUER_FILE);
        let tmp = self.dir.join(".issuer.json.tmp");
        let text = serde_json::to_string_pretty(&self.file).map_err(malformed)? + "\n";
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }

    fn add_key<R: rand::CryptoRng + ?Sized>(
        &mut self,
        purpose: Purpose,
        kind: KeyKind,
        created: &str,
        rng: &mut R,
    ) -> Result<String> {
        if purpose == Purpose::Legacy && kind != KeyKind::Rsa {
            return Err(Error::Key(
                "the legacy certificate key must be RSA (RS256)".into(),
            ));
        }
        let key = IssuerKey::generate(kind, rng)?;
        let key_id = key.public().key_id();
        write_secret(&self.key_path(&key_id), &key.to_pkcs8_pem()?)?;
        for k in &mut self.file.keys {
            if k.purpose == purpose && k.retired.is_none() {
                k.retired = Some(created.to_string());
            }
        }
        self.file.keys.push(KeyEntry {
            key_id: key_id.clone(),
            kind,
            purpose,
            public_key: key.public().to_pem(),
            created: created.to_string(),
            retired: None,
        });
        Ok(key_id)
    }

    /// Adds a new key for `purpose` and retires the previous one. Returns its key id.
    pub fn rotate<R: rand::CryptoRng + ?Sized>(
        &mut self,
        purpose: Purpose,
        kind: KeyKind,
        created: &str,
        rng: &mut R,
    ) -> Result<String> {
        if self.file.did_web.is_none() && purpose == Purpose::Vc {
            return Err(Error::Invalid(
                "a did:key issuer cannot rotate (the DID is the key); init with --domain for did:web"
                    .into(),
            ));
        }
        let id = self.add_key(purpose, kind, created, rng)?;
        self.save()?;
        Ok(id)
    }

    fn key_path(&self, key_id: &str) -> PathBuf {
        self.dir.join("keys").join(format!("{key_id}.pem"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn active(&self, purpose: Purpose) -> Result<&KeyEntry> {
        self.file
            .keys
            .iter()
            .rev()
            .find(|k| k.purpose == purpose && k.retired.is_none())
            .ok_or_else(|| match purpose {
                Purpose::Vc => Error::Invalid("the issuer has no credential key".into()),
                Purpose::Legacy => Error::Invalid(
                    "the issuer has no legacy RSA key: run `gco issuer rotate --purpose legacy`"
                        .into(),
                ),
            })
    }

    /// The issuer's DID: its did:web, else the did:key of its first credential key.
    pub fn did(&self) -> Result<String> {
        if let Some(d) = &self.file.did_web {
            return Ok(d.clone());
        }
        let first = self
            .file
            .keys
            .iter()
            .find(|k| k.purpose == Purpose::Vc)
            .ok_or_else(|| Error::Invalid("the issuer has no credential key".into()))?;
        Ok(PublicKey::from_pem(&first.public_key)?.did_key())
    }

    /// The DID URL of a key: `did:web:...#<key id>` or `did:key:z...#z...`.
    pub fn kid(&self, entry: &KeyEntry) -> Result<String> {
        let public = PublicKey::from_pem(&entry.public_key)?;
        Ok(match &self.file.did_web {
            Some(d) => format!("{d}#{}", entry.key_id),
            None => {
                let mb = public.multibase();
                format!("did:key:{mb}#{mb}")
            }
        })
    }

    /// The DID URL of a key's Multikey verification method (Data Integrity proofs).
    pub fn multikey_vm(&self, entry: &KeyEntry) -> Result<String> {
        let public = PublicKey::from_pem(&entry.public_key)?;
        let mb = public.multibase();
        Ok(match &self.file.did_web {
            Some(d) => format!("{d}#{mb}"),
            None => format!("did:key:{mb}#{mb}"),
        })
    }

    /// The active key for `purpose` with its private half, ready to sign.
    pub fn signer(&self, purpose: Purpose) -> Result<Signer> {
        let entry = self.active(purpose)?.clone();
        self.signer_of(purpose, entry)
    }

    /// The key `key_id` of `purpose`, active or retired, ready to sign: what signs a
    /// credential on request with the key its version was issued under.
    pub fn signer_by_id(&self, purpose: Purpose, key_id: &str) -> Result<Signer> {
        let entry = self
            .file
            .keys
            .iter()
            .find(|k| k.purpose == purpose && k.key_id == key_id)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the issuer in {} has no key {key_id}, which signed these credentials",
                    self.dir.display()
                ))
            })?
            .clone();
        self.signer_of(purpose, entry)
    }

    fn signer_of(&self, purpose: Purpose, entry: KeyEntry) -> Result<Signer> {
        let path = self.key_path(&entry.key_id);
        let pem = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let key = IssuerKey::from_pkcs8_pem(&pem)?;
        if key.public().key_id() != entry.key_id {
            return Err(Error::Key(format!(
                "{} does not hold key {}",
                path.display(),
                entry.key_id
            )));
        }
        Ok(Signer {
            kid: self.kid(&entry)?,
            multikey_vm: self.multikey_vm(&entry)?,
            issuer: self.did()?,
            alg: match purpose {
                Purpose::Vc => key.public().default_alg(),
                Purpose::Legacy => Alg::RS256,
            },
            key,
        })
    }

    /// The DID document to host at [`did_web_url`] (did:web), or the did:key document.
    pub fn did_document(&self) -> Result<Value> {
        let did = self.did()?;
        let mut vms = Vec::new();
        let mut assertion = Vec::new();
        for entry in &self.file.keys {
            if self.file.did_web.is_none() && self.kid(entry)?.split('#').next() != Some(&did) {
                continue; // a did:key document holds only its own key
            }
            let public = PublicKey::from_pem(&entry.public_key)?;
            let kid = self.kid(entry)?;
            vms.push(json!({
                "id": kid, "type": "JsonWebKey", "controller": did,
                "publicKeyJwk": public.jwk(&kid),
            }));
            assertion.push(Value::String(kid.clone()));
            if public.kind() == KeyKind::Ed25519 {
                let mk = self.multikey_vm(entry)?;
                if mk != kid {
                    vms.push(json!({
                        "id": mk, "type": "Multikey", "controller": did,
                        "publicKeyMultibase": public.multibase(),
                    }));
                    assertion.push(Value::String(mk));
                } else {
                    vms.pop();
                    vms.push(json!({
                        "id": kid, "type": "Multikey", "controller": did,
                        "publicKeyMultibase": public.multibase(),
                        "publicKeyJwk": public.jwk(&kid),
                    }));
                }
            }
        }
        Ok(json!({
            "@context": [
                "https://www.w3.org/ns/did/v1",
                "https://w3id.org/security/multikey/v1",
                "https://w3id.org/security/jwk/v1"
            ],
            "id": did,
            "verificationMethod": vms,
            "assertionMethod": assertion,
        }))
    }

    /// The public keys as a JWK Set (for plain JOSE verifiers of the legacy JWS).
    pub fn jwks(&self) -> Result<Value> {
        let keys = self
            .file
            .keys
            .iter()
            .map(|e| Ok(PublicKey::from_pem(&e.public_key)?.jwk(&self.kid(e)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(json!({ "keys": keys }))
    }
}

/// The did:key document of one key (what a did:key resolver derives from the DID).
pub fn did_key_document(public: &PublicKey) -> Value {
    let mb = public.multibase();
    let did = format!("did:key:{mb}");
    let vm = format!("{did}#{mb}");
    json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "verificationMethod": [{"id": vm, "type": "Multikey", "controller": did, "publicKeyMultibase": mb}],
        "assertionMethod": [vm],
    })
}

/// An active issuer key with its identifiers.
#[derive(Debug)]
pub struct Signer {
    pub key: IssuerKey,
    /// DID URL for the JOSE `kid`.
    pub kid: String,
    /// DID URL of the Multikey verification method (Data Integrity).
    pub multikey_vm: String,
    pub issuer: String,
    pub alg: Alg,
}

/// Resolves DID URLs to public keys: `did:key` by decoding, others from the DID
/// documents given (a hosted `did.json`, or the local issuer's).
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    documents: Vec<Value>,
}

impl Resolver {
    pub fn new(documents: Vec<Value>) -> Self {
        Resolver { documents }
    }

    pub fn resolve(&self, did_url: &str) -> Result<PublicKey> {
        let (did, fragment) = did_url.split_once('#').ok_or_else(|| {
            Error::Invalid(format!("{did_url:?} is not a DID URL with a #fragment"))
        })?;
        if let Some(mb) = did.strip_prefix("did:key:") {
            if fragment != mb {
                return Err(Error::Invalid(format!(
                    "{did_url}: a did:key verification method must be #{mb}"
                )));
            }
            return PublicKey::from_multibase(mb);
        }
        let doc = self
            .documents
            .iter()
            .find(|d| d.get("id").and_then(Value::as_str) == Some(did))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "no DID document for {did}: pass it with --did-document (hosted at {})",
                    did_web_url(did).unwrap_or_else(|| "its DID method's location".into())
                ))
            })?;
        let vms = doc
            .get("verificationMethod")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let matches = |id: &str| id == did_url || id == format!("#{fragment}");
        let vm = vms
            .iter()
            .find(|v| v.get("id").and_then(Value::as_str).is_some_and(matches))
            .ok_or_else(|| {
                Error::Invalid(format!("{did} has no verification method #{fragment}"))
            })?;
        let asserts = doc
            .get("assertionMethod")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x.as_str().is_some_and(matches)));
        if !asserts {
            return Err(Error::Invalid(format!(
                "{did_url} is not an assertionMethod of {did}"
            )));
        }
        if let Some(jwk) = vm.get("publicKeyJwk") {
            return PublicKey::from_jwk(jwk);
        }
        if let Some(mb) = vm.get("publicKeyMultibase").and_then(Value::as_str) {
            return PublicKey::from_multibase(mb);
        }
        Err(Error::Invalid(format!(
            "{did_url} has no publicKeyJwk or publicKeyMultibase"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn did_web_names() {
        assert_eq!(
            did_web("carbon.example.com").unwrap(),
            "did:web:carbon.example.com"
        );
        assert_eq!(
            did_web("example.com/issuers/carbon").unwrap(),
            "did:web:example.com:issuers:carbon"
        );
        assert_eq!(
            did_web("localhost:8443").unwrap(),
            "did:web:localhost%3A8443"
        );
        assert_eq!(
            did_web_url("did:web:example.com:issuers:carbon").unwrap(),
            "https://example.com/issuers/carbon/did.json"
        );
        assert_eq!(
            did_web_url("did:web:carbon.example.com").unwrap(),
            "https://carbon.example.com/.well-known/did.json"
        );
        assert!(did_web("exa mple.com").is_err());
    }

    #[test]
    fn rotation_keeps_old_keys_resolvable() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let t0 = "2026-11-01T00:00:00Z";
        let mut issuer = Issuer::init(
            dir.path(),
            Some("carbon.example.com"),
            KeyKind::Ed25519,
            true,
            t0,
            &mut rng,
        )
        .unwrap();
        assert!(Issuer::init(dir.path(), None, KeyKind::Ed25519, false, t0, &mut rng).is_err());
        let old = issuer.signer(Purpose::Vc).unwrap();
        assert_eq!(old.issuer, "did:web:carbon.example.com");
        assert_eq!(old.alg, Alg::EdDSA);
        let new_id = issuer
            .rotate(Purpose::Vc, KeyKind::P256, "2026-11-02T00:00:00Z", &mut rng)
            .unwrap();
        let issuer = Issuer::load(dir.path()).unwrap();
        let new = issuer.signer(Purpose::Vc).unwrap();
        assert_eq!(new.kid, format!("did:web:carbon.example.com#{new_id}"));
        assert_eq!(new.alg, Alg::ES256);
        let resolver = Resolver::new(vec![issuer.did_document().unwrap()]);
        for s in [&old, &new] {
            assert_eq!(&resolver.resolve(&s.kid).unwrap(), s.key.public());
        }
        assert_eq!(
            &resolver.resolve(&old.multikey_vm).unwrap(),
            old.key.public()
        );
        // A retired key still signs by its id (a version issued before the rotation);
        // an id the issuer lacks, or of the other purpose, is named in the error.
        let old_id = old.key.public().key_id();
        let again = issuer.signer_by_id(Purpose::Vc, &old_id).unwrap();
        assert_eq!(
            (again.kid.as_str(), again.alg),
            (old.kid.as_str(), Alg::EdDSA)
        );
        assert_eq!(again.key.public(), old.key.public());
        let e = issuer.signer_by_id(Purpose::Legacy, &old_id).unwrap_err();
        assert!(e.to_string().contains(&old_id), "{e}");
        let legacy = issuer.signer(Purpose::Legacy).unwrap();
        assert_eq!(legacy.alg, Alg::RS256);
        assert_eq!(&resolver.resolve(&legacy.kid).unwrap(), legacy.key.public());
        assert!(resolver.resolve("did:web:carbon.example.com#nope").is_err());
        assert!(resolver.resolve("did:web:other.example#x").is_err());
        // Key files are owner-only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let entry = &issuer.file.keys[0];
            let mode = std::fs::metadata(
                dir.path()
                    .join("keys")
                    .join(format!("{}.pem", entry.key_id)),
            )
            .unwrap()
            .permissions()
            .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn did_key_issuer_resolves_offline() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let mut issuer = Issuer::init(
            dir.path(),
            None,
            KeyKind::Ed25519,
            false,
            "2026-11-01T00:00:00Z",
            &mut rng,
        )
        .unwrap();
        let s = issuer.signer(Purpose::Vc).unwrap();
        assert!(s.issuer.starts_with("did:key:z6Mk"));
        assert_eq!(
            &Resolver::default().resolve(&s.kid).unwrap(),
            s.key.public()
        );
        assert!(
            issuer
                .rotate(Purpose::Vc, KeyKind::Ed25519, "x", &mut rng)
                .is_err()
        );
    }
}
