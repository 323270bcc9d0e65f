//! Issuer keys and public keys: Ed25519, ECDSA P-256 and RSA, the JOSE algorithms each
//! signs with, JWK and Multikey (multibase) forms, key ids.
//!
//! A key id is the ledger's: hex of the first 16 bytes of SHA-256 over the public key's
//! SubjectPublicKeyInfo DER, so one key has one id everywhere in gco.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rsa::pkcs1::{DecodeRsaPublicKey, EncodeRsaPublicKey};
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer as _, Verifier as _};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::error::{Error, Result, malformed};
use crate::multibase;

/// A JOSE signature algorithm (RFC 7518 names). `none` and HMAC are not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    EdDSA,
    ES256,
    RS256,
    PS256,
}

impl Alg {
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::EdDSA => "EdDSA",
            Alg::ES256 => "ES256",
            Alg::RS256 => "RS256",
            Alg::PS256 => "PS256",
        }
    }
    /// Parses a JOSE `alg`; `none`, HS256 and anything else are refused by name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "EdDSA" => Ok(Alg::EdDSA),
            "ES256" => Ok(Alg::ES256),
            "RS256" => Ok(Alg::RS256),
            "PS256" => Ok(Alg::PS256),
            "none" => Err(Error::Invalid("alg \"none\" is refused".into())),
            other => Err(Error::Invalid(format!(
                "alg {other:?} is not accepted (EdDSA, ES256, RS256, PS256)"
            ))),
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of issuer key `gco issuer init` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Ed25519,
    P256,
    /// RSA 3072.
    Rsa,
}

impl KeyKind {
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ed25519" | "eddsa" => Ok(KeyKind::Ed25519),
            "p256" | "p-256" | "es256" => Ok(KeyKind::P256),
            "rsa" | "rsa3072" => Ok(KeyKind::Rsa),
            other => Err(Error::Key(format!(
                "unknown key type {other:?}: ed25519, p256 or rsa"
            ))),
        }
    }
}

enum Private {
    Ed25519(Box<Ed25519Signer>),
    P256(Box<p256::ecdsa::SigningKey>),
    Rsa(Box<RsaSigners>),
}

/// An RSA key with its PKCS#1 v1.5 and PSS signers built once (each holds the
/// precomputed CRT values; rebuilding them per signature dominated signing time).
struct RsaSigners {
    key: rsa::PrivateKey,
    pkcs1: rsa::pkcs1v15::SigningKey<Sha256>,
    pss: rsa::pss::SigningKey<Sha256>,
}

/// An Ed25519 key held twice: as ed25519-dalek's key (PKCS#8, public key) and as
/// AWS-LC's key pair, which signs. Ed25519 signatures are deterministic, so both give the
/// same bytes (a test checks); AWS-LC's assembly makes a credential-sized signature about
/// twice as fast, and signing is the bulk of per-inference issuance.
struct Ed25519Signer {
    key: ed25519_dalek::SigningKey,
    pair: aws_lc_rs::signature::Ed25519KeyPair,
}

fn ed25519_private(key: ed25519_dalek::SigningKey) -> Result<Private> {
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_and_public_key(
        key.as_bytes(),
        key.verifying_key().as_bytes(),
    )
    .map_err(|e| key_err("Ed25519 key", e))?;
    Ok(Private::Ed25519(Box::new(Ed25519Signer { key, pair })))
}

fn rsa_private(key: rsa::PrivateKey) -> Private {
    Private::Rsa(Box::new(RsaSigners {
        pkcs1: rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone()),
        pss: rsa::pss::SigningKey::<Sha256>::new(key.clone()),
        key,
    }))
}

/// A private issuer key held in memory. Its `Debug` never shows key material.
pub struct IssuerKey {
    key: Private,
    public: PublicKey,
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IssuerKey({:?} {})",
            self.public.kind(),
            self.public.key_id()
        )
    }
}

fn key_err(what: &str, e: impl fmt::Display) -> Error {
    Error::Key(format!("{what}: {e}"))
}

impl IssuerKey {
    /// Generates a key from the given cryptographic RNG.
    pub fn generate<R: rand::CryptoRng + ?Sized>(kind: KeyKind, rng: &mut R) -> Result<Self> {
        let key = match kind {
            KeyKind::Ed25519 => {
                let mut seed = [0u8; 32];
                rng.fill_bytes(&mut seed);
                ed25519_private(ed25519_dalek::SigningKey::from_bytes(&seed))?
            }
            KeyKind::P256 => loop {
                let mut bytes = [0u8; 32];
                rng.fill_bytes(&mut bytes);
                if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&bytes) {
                    break Private::P256(Box::new(k));
                }
            },
            KeyKind::Rsa => rsa_private(
                rsa::PrivateKey::new(rng, 3072).map_err(|e| key_err("RSA key generation", e))?,
            ),
        };
        Self::from_private(key)
    }

    /// An Ed25519 key from its 32-byte seed (the W3C test vectors publish theirs).
    pub fn ed25519_from_seed(seed: &[u8; 32]) -> Result<Self> {
        Self::from_private(ed25519_private(ed25519_dalek::SigningKey::from_bytes(
            seed,
        ))?)
    }

    fn from_private(key: Private) -> Result<Self> {
        let public = match &key {
            Private::Ed25519(k) => PublicKey::Ed25519(k.key.verifying_key()),
            Private::P256(k) => PublicKey::P256(*k.verifying_key()),
            Private::Rsa(k) => {
                let k = &k.key;
                let bits = k.as_public_key().n_bits_precision();
                if bits < 2048 {
                    return Err(Error::Key(format!(
                        "RSA key of {bits} bits is too small (2048 at least, 3072 generated)"
                    )));
                }
                PublicKey::Rsa(Box::new(k.to_public_key()))
            }
        };
        Ok(IssuerKey { key, public })
    }

    /// Parses a PKCS#8 PEM private key of any supported kind.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Self::from_private(ed25519_private(k)?);
        }
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Self::from_private(Private::P256(Box::new(k)));
        }
        match rsa::PrivateKey::from_pkcs8_pem(pem) {
            Ok(k) => Self::from_private(rsa_private(k)),
            Err(_) => Err(Error::Key(
                "not a PKCS#8 PEM private key for Ed25519, ECDSA P-256 or RSA".into(),
            )),
        }
    }

    /// The private key as PKCS#8 PEM, for a file written with mode 0600.
    pub fn to_pkcs8_pem(&self) -> Result<String> {
        let pem = match &self.key {
            Private::Ed25519(k) => k.key.to_pkcs8_pem(LineEnding::LF),
            Private::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            Private::Rsa(k) => k.key.to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(|e| key_err("encoding private key", e))?;
        Ok(pem.to_string())
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `message` with `alg`, which must suit the key (RSA: RS256 or PS256).
    pub fn sign(&self, alg: Alg, message: &[u8]) -> Result<Vec<u8>> {
        Ok(match (&self.key, alg) {
            (Private::Ed25519(k), Alg::EdDSA) => k.pair.sign(message).as_ref().to_vec(),
            (Private::P256(k), Alg::ES256) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_bytes().to_vec()
            }
            (Private::Rsa(k), Alg::RS256) => k
                .pkcs1
                .try_sign(message)
                .map_err(|e| Error::Key(format!("RS256 signing failed: {e}")))?
                .to_vec(),
            (Private::Rsa(k), Alg::PS256) => k
                .pss
                .try_sign_with_rng(&mut rand::rng(), message)
                .map_err(|e| Error::Key(format!("PS256 signing failed: {e}")))?
                .to_vec(),
            (_, alg) => {
                return Err(Error::Key(format!(
                    "a {:?} key cannot sign {alg}",
                    self.public.kind()
                )));
            }
        })
    }
}

/// A public key of any supported kind.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    Rsa(Box<rsa::PublicKey>),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({:?} {})", self.kind(), self.key_id())
    }
}

// Multicodec prefixes (varint) of the did:key / Multikey encodings.
const MC_ED25519_PUB: [u8; 2] = [0xed, 0x01];
const MC_P256_PUB: [u8; 2] = [0x80, 0x24];
const MC_RSA_PUB: [u8; 2] = [0x85, 0x24];
const MC_ED25519_PRIV: [u8; 2] = [0x80, 0x26];

impl PublicKey {
    pub fn kind(&self) -> KeyKind {
        match self {
            PublicKey::Ed25519(_) => KeyKind::Ed25519,
            PublicKey::P256(_) => KeyKind::P256,
            PublicKey::Rsa(_) => KeyKind::Rsa,
        }
    }

    /// The algorithm a credential is signed with by default: EdDSA, ES256, PS256.
    pub fn default_alg(&self) -> Alg {
        match self {
            PublicKey::Ed25519(_) => Alg::EdDSA,
            PublicKey::P256(_) => Alg::ES256,
            PublicKey::Rsa(_) => Alg::PS256,
        }
    }

    pub fn spki_der(&self) -> Vec<u8> {
        let der = match self {
            PublicKey::Ed25519(k) => k.to_public_key_der(),
            PublicKey::P256(k) => k.to_public_key_der(),
            PublicKey::Rsa(k) => k.to_public_key_der(),
        };
        // Encoding a valid in-memory key cannot fail.
        der.map(|d| d.as_bytes().to_vec()).unwrap_or_default()
    }

    /// The gco key id (as the ledger's): SHA-256 of the SPKI DER, first 16 bytes, hex.
    pub fn key_id(&self) -> String {
        gco_ledger::keys::key_id_of(&self.spki_der())
    }

    pub fn to_pem(&self) -> String {
        gco_ledger::keys::spki_pem(&self.spki_der())
    }

    pub fn from_pem(pem: &str) -> Result<Self> {
        if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            return Ok(PublicKey::Ed25519(k));
        }
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(PublicKey::P256(k));
        }
        rsa::PublicKey::from_public_key_pem(pem)
            .map(|k| PublicKey::Rsa(Box::new(k)))
            .map_err(|_| Error::Key("not an Ed25519, P-256 or RSA SPKI PEM public key".into()))
    }

    /// Verifies a JOSE signature. `alg` must suit the key.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> Result<()> {
        let bad = |e: &dyn fmt::Display| Error::Signature(format!("{alg}: {e}"));
        match (self, alg) {
            (PublicKey::Ed25519(k), Alg::EdDSA) => {
                let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|e| bad(&e))?;
                k.verify_strict(message, &sig).map_err(|e| bad(&e))
            }
            (PublicKey::P256(k), Alg::ES256) => {
                let sig = p256::ecdsa::Signature::from_slice(signature).map_err(|e| bad(&e))?;
                k.verify(message, &sig).map_err(|e| bad(&e))
            }
            (PublicKey::Rsa(k), Alg::RS256) => {
                let v = rsa::pkcs1v15::VerifyingKey::<Sha256>::new((**k).clone());
                let sig = rsa::pkcs1v15::Signature::try_from(signature).map_err(|e| bad(&e))?;
                v.verify(message, &sig).map_err(|e| bad(&e))
            }
            (PublicKey::Rsa(k), Alg::PS256) => {
                let v = rsa::pss::VerifyingKey::<Sha256>::new((**k).clone());
                let sig = rsa::pss::Signature::try_from(signature).map_err(|e| bad(&e))?;
                v.verify(message, &sig).map_err(|e| bad(&e))
            }
            (_, alg) => Err(Error::Invalid(format!(
                "alg {alg} does not match the {:?} key {}",
                self.kind(),
                self.key_id()
            ))),
        }
    }

    /// The public JWK (RFC 7517), with `kid`.
    pub fn jwk(&self, kid: &str) -> Value {
        match self {
            PublicKey::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(k.as_bytes()), "kid": kid})
            }
            PublicKey::P256(k) => {
                let point = k.to_sec1_point(false);
                let b = point.as_bytes();
                json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&b[1..33]), "y": B64.encode(&b[33..65]), "kid": kid})
            }
            PublicKey::Rsa(k) => json!({
                "kty": "RSA",
                "n": B64.encode(k.n_bytes()),
                "e": B64.encode(k.e().to_be_bytes_trimmed_vartime()),
                "kid": kid,
            }),
        }
    }

    /// Reads a public JWK (private members are refused: a JWK with `d` is a secret).
    pub fn from_jwk(jwk: &Value) -> Result<Self> {
        let field = |name: &str| -> Result<Vec<u8>> {
            let s = jwk
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| malformed(format!("JWK has no {name:?}")))?;
            B64.decode(s)
                .map_err(|e| malformed(format!("JWK {name:?} is not base64url: {e}")))
        };
        if jwk.get("d").is_some() {
            return Err(Error::Key(
                "a JWK with a private part (\"d\") is refused".into(),
            ));
        }
        let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or("");
        let crv = jwk.get("crv").and_then(Value::as_str).unwrap_or("");
        match (kty, crv) {
            ("OKP", "Ed25519") => {
                let x: [u8; 32] = field("x")?
                    .try_into()
                    .map_err(|_| malformed("Ed25519 JWK x is not 32 bytes"))?;
                ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map(PublicKey::Ed25519)
                    .map_err(|e| key_err("Ed25519 JWK", e))
            }
            ("EC", "P-256") => {
                let mut sec1 = vec![4u8];
                sec1.extend(field("x")?);
                sec1.extend(field("y")?);
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map(PublicKey::P256)
                    .map_err(|e| key_err("P-256 JWK", e))
            }
            ("RSA", _) => {
                let n = rsa::BoxedUint::from_be_slice_vartime(&field("n")?);
                let e = rsa::BoxedUint::from_be_slice_vartime(&field("e")?);
                rsa::PublicKey::new(n, e)
                    .map(|k| PublicKey::Rsa(Box::new(k)))
                    .map_err(|e| key_err("RSA JWK", e))
            }
            _ => Err(Error::Key(format!(
                "unsupported JWK kty {kty:?} crv {crv:?}"
            ))),
        }
    }

    /// The Multikey / did:key form: multibase base58btc of multicodec-prefixed bytes
    /// (Ed25519 `z6Mk...`, P-256 compressed `zDna...`, RSA PKCS#1 DER).
    pub fn multibase(&self) -> String {
        let mut bytes = Vec::new();
        match self {
            PublicKey::Ed25519(k) => {
                bytes.extend(MC_ED25519_PUB);
                bytes.extend(k.as_bytes());
            }
            PublicKey::P256(k) => {
                bytes.extend(MC_P256_PUB);
                bytes.extend(k.to_sec1_point(true).as_bytes());
            }
            PublicKey::Rsa(k) => {
                bytes.extend(MC_RSA_PUB);
                bytes.extend(
                    k.to_pkcs1_der()
                        .map(|d| d.as_bytes().to_vec())
                        .unwrap_or_default(),
                );
            }
        }
        multibase::encode_base58btc(&bytes)
    }

    pub fn from_multibase(s: &str) -> Result<Self> {
        let bytes = multibase::decode_base58btc(s)?;
        if bytes.len() < 2 {
            return Err(malformed("multikey too short"));
        }
        let (prefix, rest) = bytes.split_at(2);
        match [prefix[0], prefix[1]] {
            MC_ED25519_PUB => {
                let x: [u8; 32] = rest
                    .try_into()
                    .map_err(|_| malformed("Ed25519 multikey is not 32 bytes"))?;
                ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map(PublicKey::Ed25519)
                    .map_err(|e| key_err("Ed25519 multikey", e))
            }
            MC_P256_PUB => p256::ecdsa::VerifyingKey::from_sec1_bytes(rest)
                .map(PublicKey::P256)
                .map_err(|e| key_err("P-256 multikey", e)),
            MC_RSA_PUB => rsa::PublicKey::from_pkcs1_der(rest)
                .map(|k| PublicKey::Rsa(Box::new(k)))
                .map_err(|e| key_err("RSA multikey", e)),
            _ => Err(malformed(format!(
                "unsupported multikey prefix {:02x}{:02x}",
                prefix[0], prefix[1]
            ))),
        }
    }

    /// `did:key:<multibase>`: an offline DID that is the key itself.
    pub fn did_key(&self) -> String {
        format!("did:key:{}", self.multibase())
    }
}

/// Reads an Ed25519 private Multikey (`z3u2...`, multicodec 0x1300), as the W3C test
/// vectors publish their secret key.
pub fn ed25519_from_private_multibase(s: &str) -> Result<IssuerKey> {
    let bytes = multibase::decode_base58btc(s)?;
    if bytes.len() != 34 || bytes[..2] != MC_ED25519_PRIV {
        return Err(malformed("not an Ed25519 private multikey"));
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&bytes[2..]);
    IssuerKey::ed25519_from_seed(&seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn aws_lc_and_dalek_give_the_same_ed25519_signature() {
        use ed25519_dalek::Signer;
        let seed = [42u8; 32];
        let key = IssuerKey::ed25519_from_seed(&seed).unwrap();
        let dalek = ed25519_dalek::SigningKey::from_bytes(&seed);
        for len in [0usize, 1, 127, 128, 4_300] {
            let msg: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let ours = key.sign(Alg::EdDSA, &msg).unwrap();
            assert_eq!(ours, dalek.sign(&msg).to_bytes().to_vec(), "length {len}");
            key.public().verify(Alg::EdDSA, &msg, &ours).unwrap();
        }
    }

    #[test]
    fn every_kind_signs_verifies_and_round_trips_through_pem_jwk_multikey() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for (kind, algs) in [
            (KeyKind::Ed25519, vec![Alg::EdDSA]),
            (KeyKind::P256, vec![Alg::ES256]),
            (KeyKind::Rsa, vec![Alg::RS256, Alg::PS256]),
        ] {
            let k = IssuerKey::generate(kind, &mut rng).unwrap();
            for alg in algs {
                let sig = k.sign(alg, b"payload").unwrap();
                k.public().verify(alg, b"payload", &sig).unwrap();
                assert!(k.public().verify(alg, b"payloaD", &sig).is_err());
            }
            let again = IssuerKey::from_pkcs8_pem(&k.to_pkcs8_pem().unwrap()).unwrap();
            assert_eq!(again.public(), k.public());
            let kid = k.public().key_id();
            assert_eq!(kid.len(), 32);
            assert_eq!(
                &PublicKey::from_jwk(&k.public().jwk(&kid)).unwrap(),
                k.public()
            );
            assert_eq!(
                &PublicKey::from_multibase(&k.public().multibase()).unwrap(),
                k.public()
            );
            assert_eq!(
                &PublicKey::from_pem(&k.public().to_pem()).unwrap(),
                k.public()
            );
            assert!(!format!("{k:?}").contains("PRIVATE"));
        }
    }

    #[test]
    fn algorithm_must_suit_the_key() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let k = IssuerKey::generate(KeyKind::Ed25519, &mut rng).unwrap();
        assert!(k.sign(Alg::ES256, b"x").is_err());
        let sig = k.sign(Alg::EdDSA, b"x").unwrap();
        assert!(matches!(
            k.public().verify(Alg::RS256, b"x", &sig),
            Err(Error::Invalid(_))
        ));
        assert!(Alg::parse("none").is_err());
        assert!(Alg::parse("HS256").is_err());
    }

    #[test]
    fn multikey_prefixes_match_the_did_key_spec() {
        // The W3C vc-di-eddsa test key pair.
        let k = ed25519_from_private_multibase("z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq")
            .unwrap();
        assert_eq!(
            k.public().multibase(),
            "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
        );
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let p = IssuerKey::generate(KeyKind::P256, &mut rng).unwrap();
        assert!(p.public().did_key().starts_with("did:key:zDna"));
    }
}
