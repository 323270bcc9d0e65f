//! Node signing keys: algorithms, the [`Signer`] abstraction (key files here, a TPM in
//! the collector), public keys and key ids.
//!
//! Private keys are PKCS#8 PEM files, public keys SubjectPublicKeyInfo (SPKI) PEM. A key
//! id is the first 16 bytes of SHA-256 over the SPKI DER, in hex. Signatures are over
//! the batch payload bytes: Ed25519 (`EdDSA`), ECDSA P-256 with SHA-256 as 64 raw bytes
//! r||s (`ES256`), RSASSA-PKCS1-v1_5 with SHA-256 (`RS256`).

use std::fmt;
use std::path::Path;

use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::signature::{SignatureEncoding, Signer as _, Verifier as _};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{LedgerError, Result};

/// A signature algorithm, named as in JOSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    #[serde(rename = "EdDSA")]
    Ed25519,
    #[serde(rename = "ES256")]
    EcdsaP256,
    #[serde(rename = "RS256")]
    RsaPkcs1Sha256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "EdDSA",
            Algorithm::EcdsaP256 => "ES256",
            Algorithm::RsaPkcs1Sha256 => "RS256",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Algorithm::Ed25519,
            Algorithm::EcdsaP256,
            Algorithm::RsaPkcs1Sha256,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of key `gco keys generate` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ed25519,
    P256,
    Rsa3072,
    Rsa4096,
}

impl KeyType {
    pub fn algorithm(self) -> Algorithm {
        match self {
            KeyType::Ed25519 => Algorithm::Ed25519,
            KeyType::P256 => Algorithm::EcdsaP256,
            KeyType::Rsa3072 | KeyType::Rsa4096 => Algorithm::RsaPkcs1Sha256,
        }
    }
}

/// Something that signs batch payloads for one node key. Implemented by
/// [`KeyFileSigner`] here and by the collector's TPM signer.
pub trait Signer: Send + Sync {
    /// The public half, from which the key id derives.
    fn public_key(&self) -> &PublicKey;
    /// Signs `message` (the batch payload bytes) and returns the raw signature.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
    fn key_id(&self) -> &str {
        self.public_key().key_id()
    }
    fn algorithm(&self) -> Algorithm {
        self.public_key().algorithm()
    }
}

enum PrivateKey {
    Ed25519(Box<ed25519_dalek::SigningKey>),
    P256(Box<p256::ecdsa::SigningKey>),
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
}

/// A signer holding its private key in memory, loaded from a PKCS#8 PEM file.
pub struct KeyFileSigner {
    key: PrivateKey,
    public: PublicKey,
}

impl fmt::Debug for KeyFileSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("KeyFileSigner")
            .field("key_id", &self.public.key_id)
            .field("algorithm", &self.public.algorithm)
            .finish()
    }
}

fn key_err(what: &str, e: impl fmt::Display) -> LedgerError {
    LedgerError::Key(format!("{what}: {e}"))
}

impl KeyFileSigner {
    /// Generates a new key from the operating system's random source.
    pub fn generate(key_type: KeyType) -> Result<Self> {
        let mut rng = rand::rng();
        Self::generate_with(key_type, &mut rng)
    }

    /// Generates a key from the given cryptographic RNG (a seeded one gives the demo
    /// reproducible keys).
    pub fn generate_with<R: rand::CryptoRng + ?Sized>(
        key_type: KeyType,
        rng: &mut R,
    ) -> Result<Self> {
        let key = match key_type {
            KeyType::Ed25519 => {
                let mut seed = [0u8; 32];
                rng.fill_bytes(&mut seed);
                PrivateKey::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
            KeyType::P256 => loop {
                let mut bytes = [0u8; 32];
                rng.fill_bytes(&mut bytes);
                if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&bytes) {
                    break PrivateKey::P256(Box::new(k));
                }
            },
            KeyType::Rsa3072 | KeyType::Rsa4096 => {
                let bits = if key_type == KeyType::Rsa3072 {
                    3072
                } else {
                    4096
                };
                let k = rsa::PrivateKey::new(rng, bits)
                    .map_err(|e| key_err("RSA key generation", e))?;
                PrivateKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(k)))
            }
        };
        Self::from_private(key)
    }

    fn from_private(key: PrivateKey) -> Result<Self> {
        let (algorithm, der) = match &key {
            PrivateKey::Ed25519(k) => (Algorithm::Ed25519, k.verifying_key().to_public_key_der()),
            PrivateKey::P256(k) => (Algorithm::EcdsaP256, k.verifying_key().to_public_key_der()),
            PrivateKey::Rsa(k) => (
                Algorithm::RsaPkcs1Sha256,
                AsRef::<rsa::PrivateKey>::as_ref(k.as_ref())
                    .to_public_key()
                    .to_public_key_der(),
            ),
        };
        let der = der.map_err(|e| key_err("encoding public key", e))?;
        let public = PublicKey::from_spki_der(algorithm, der.as_bytes().to_vec())?;
        Ok(KeyFileSigner { key, public })
    }

    /// Parses a PKCS#8 PEM private key of any supported algorithm.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Self::from_private(PrivateKey::Ed25519(Box::new(k)));
        }
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Self::from_private(PrivateKey::P256(Box::new(k)));
        }
        match rsa::PrivateKey::from_pkcs8_pem(pem) {
            Ok(k) => {
                let bits = k.as_public_key().n_bits_precision();
                if bits < 3072 {
                    return Err(LedgerError::Key(format!(
                        "RSA key of {bits} bits is too small; gco requires 3072 or 4096 bits"
                    )));
                }
                Self::from_private(PrivateKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(k))))
            }
            Err(_) => Err(LedgerError::Key(
                "not a PKCS#8 PEM private key for Ed25519, ECDSA P-256 or RSA".into(),
            )),
        }
    }

    /// Loads a private key file written by `gco keys generate`.
    pub fn load(path: &Path) -> Result<Self> {
        let pem = std::fs::read_to_string(path).map_err(|e| LedgerError::io(path, e))?;
        Self::from_pkcs8_pem(&pem).map_err(|e| LedgerError::Key(format!("{}: {e}", path.display())))
    }

    /// The private key as PKCS#8 PEM. The caller must write it with restrictive
    /// permissions and never log it.
    pub fn to_pkcs8_pem(&self) -> Result<zeroize_string::Secret> {
        let pem = match &self.key {
            PrivateKey::Ed25519(k) => k.to_pkcs8_pem(LineEnding::LF),
            PrivateKey::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            PrivateKey::Rsa(k) => {
                AsRef::<rsa::PrivateKey>::as_ref(k.as_ref()).to_pkcs8_pem(LineEnding::LF)
            }
        }
        .map_err(|e| key_err("encoding private key", e))?;
        Ok(zeroize_string::Secret(pem.to_string()))
    }
}

/// A private key's PEM text; its `Debug` never shows the content.
pub mod zeroize_string {
    pub struct Secret(pub String);
    impl std::fmt::Debug for Secret {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Secret(<redacted>)")
        }
    }
}

impl Signer for KeyFileSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(match &self.key {
            PrivateKey::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
            PrivateKey::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_bytes().to_vec()
            }
            PrivateKey::Rsa(k) => k
                .try_sign(message)
                .map_err(|e| LedgerError::Signature(format!("RSA signing failed: {e}")))?
                .to_vec(),
        })
    }
}

/// A public key with its algorithm and key id.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    algorithm: Algorithm,
    spki_der: Vec<u8>,
    key_id: String,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.algorithm, self.key_id)
    }
}

/// SPKI DER as a PEM "PUBLIC KEY" (64-column base64 lines).
pub fn spki_pem(spki_der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(spki_der);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out
}

/// The key id of an SPKI DER public key.
pub fn key_id_of(spki_der: &[u8]) -> String {
    hex::encode(&Sha256::digest(spki_der)[..16])
}

impl PublicKey {
    /// Builds a public key from SPKI DER, checking it parses for `algorithm`.
    pub fn from_spki_der(algorithm: Algorithm, spki_der: Vec<u8>) -> Result<Self> {
        let detected = detect_algorithm(&spki_der)?;
        if detected != algorithm {
            return Err(LedgerError::Key(format!(
                "public key is {detected}, not {algorithm}"
            )));
        }
        let key_id = key_id_of(&spki_der);
        Ok(PublicKey {
            algorithm,
            spki_der,
            key_id,
        })
    }

    /// Parses an SPKI PEM public key of any supported algorithm.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let (label, doc) =
            rsa::pkcs8::Document::from_pem(pem).map_err(|e| key_err("not a PEM public key", e))?;
        if label != "PUBLIC KEY" {
            return Err(LedgerError::Key(format!(
                "expected a PEM \"PUBLIC KEY\" (SPKI), found {label:?}"
            )));
        }
        let der = doc.as_bytes().to_vec();
        let algorithm = detect_algorithm(&der)?;
        Self::from_spki_der(algorithm, der)
    }

    pub fn to_pem(&self) -> String {
        spki_pem(&self.spki_der)
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Verifies `signature` over `message`. Any failure (malformed signature or
    /// mismatch) is an error saying which.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        let bad = |e: &dyn fmt::Display| {
            LedgerError::Signature(format!("{} signature invalid: {e}", self.algorithm))
        };
        match self.algorithm {
            Algorithm::Ed25519 => {
                let k = ed25519_dalek::VerifyingKey::from_public_key_der(&self.spki_der)
                    .map_err(|e| bad(&e))?;
                let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|e| bad(&e))?;
                k.verify_strict(message, &sig).map_err(|e| bad(&e))
            }
            Algorithm::EcdsaP256 => {
                let k = p256::ecdsa::VerifyingKey::from_public_key_der(&self.spki_der)
                    .map_err(|e| bad(&e))?;
                let sig = p256::ecdsa::Signature::from_slice(signature).map_err(|e| bad(&e))?;
                k.verify(message, &sig).map_err(|e| bad(&e))
            }
            Algorithm::RsaPkcs1Sha256 => {
                let k = rsa::PublicKey::from_public_key_der(&self.spki_der).map_err(|e| bad(&e))?;
                let k = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(k);
                let sig = rsa::pkcs1v15::Signature::try_from(signature).map_err(|e| bad(&e))?;
                k.verify(message, &sig).map_err(|e| bad(&e))
            }
        }
    }
}

fn detect_algorithm(spki_der: &[u8]) -> Result<Algorithm> {
    if ed25519_dalek::VerifyingKey::from_public_key_der(spki_der).is_ok() {
        Ok(Algorithm::Ed25519)
    } else if p256::ecdsa::VerifyingKey::from_public_key_der(spki_der).is_ok() {
        Ok(Algorithm::EcdsaP256)
    } else if let Ok(k) = rsa::PublicKey::from_public_key_der(spki_der) {
        let bits = k.n_bits_precision();
        if bits < 3072 {
            return Err(LedgerError::Key(format!(
                "RSA public key of {bits} bits is too small; gco requires 3072 or 4096 bits"
            )));
        }
        Ok(Algorithm::RsaPkcs1Sha256)
    } else {
        Err(LedgerError::Key(
            "public key is not Ed25519, ECDSA P-256 or RSA SubjectPublicKeyInfo".into(),
        ))
    }
}

/// Writes a private key file readable only by its owner; refuses to replace a file.
pub fn write_private_key_file(path: &Path, signer: &KeyFileSigner) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let pem = signer.to_pkcs8_pem()?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).map_err(|e| LedgerError::io(path, e))?;
    f.write_all(pem.0.as_bytes())
        .map_err(|e| LedgerError::io(path, e))?;
    f.sync_all().map_err(|e| LedgerError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_algorithm_signs_verifies_and_round_trips() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        for kt in [KeyType::Ed25519, KeyType::P256, KeyType::Rsa3072] {
            let s = KeyFileSigner::generate_with(kt, &mut rng).unwrap();
            let sig = s.sign(b"payload").unwrap();
            s.public_key().verify(b"payload", &sig).unwrap();
            assert!(s.public_key().verify(b"payloaD", &sig).is_err());
            let again = KeyFileSigner::from_pkcs8_pem(&s.to_pkcs8_pem().unwrap().0).unwrap();
            assert_eq!(again.public_key(), s.public_key());
            let pk = PublicKey::from_pem(&s.public_key().to_pem()).unwrap();
            assert_eq!(&pk, s.public_key());
            assert_eq!(pk.algorithm(), kt.algorithm());
            assert_eq!(pk.key_id().len(), 32);
            assert!(!format!("{s:?}").contains("PRIVATE"));
        }
    }

    #[test]
    fn seeded_ed25519_key_is_reproducible() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(42);
        let s = KeyFileSigner::generate_with(KeyType::Ed25519, &mut rng).unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(42);
        let t = KeyFileSigner::generate_with(KeyType::Ed25519, &mut rng).unwrap();
        assert_eq!(s.key_id(), t.key_id());
        assert_eq!(s.sign(b"x").unwrap(), t.sign(b"x").unwrap());
    }
}
