//! Compact JWS (RFC 7515): signing with a fixed protected header and verification that
//! refuses `alg: none`, algorithms that do not suit the key and malformed segments.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value};

use crate::error::{Error, Result, malformed};
use crate::key::{Alg, IssuerKey, PublicKey};

/// Signs `payload` (already serialized JSON) under a protected header with `alg`, `kid`
/// and `typ`. Header members are written in sorted order, so a token is reproducible
/// for EdDSA and RS256 (deterministic signatures).
pub fn sign(key: &IssuerKey, alg: Alg, kid: &str, typ: &str, payload: &[u8]) -> Result<String> {
    let header = serde_json::json!({"alg": alg.as_str(), "kid": kid, "typ": typ});
    let header = serde_json::to_vec(&header).map_err(malformed)?;
    let mut token =
        String::with_capacity((header.len() + payload.len()) * 4 / 3 + 100 + 6 * 64 / 3);
    B64.encode_string(&header, &mut token);
    token.push('.');
    B64.encode_string(payload, &mut token);
    let sig = key.sign(alg, token.as_bytes())?;
    token.push('.');
    B64.encode_string(sig, &mut token);
    Ok(token)
}

/// A compact JWS split and decoded, not yet verified.
#[derive(Debug, Clone)]
pub struct Jws {
    pub header: Map<String, Value>,
    pub alg: Alg,
    pub payload: Vec<u8>,
    signing_input_len: usize,
    signature: Vec<u8>,
    token: String,
}

impl Jws {
    pub fn parse(token: &str) -> Result<Self> {
        let token = token.trim();
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(
                "not a compact JWS (three base64url parts separated by '.')",
            ));
        };
        let header_bytes = B64
            .decode(h)
            .map_err(|e| malformed(format!("JWS header is not base64url: {e}")))?;
        let header: Map<String, Value> = serde_json::from_slice(&header_bytes)
            .map_err(|e| malformed(format!("JWS header is not a JSON object: {e}")))?;
        if header.contains_key("crit") {
            return Err(Error::Invalid(
                "JWS header \"crit\" is not supported".into(),
            ));
        }
        let alg = Alg::parse(header.get("alg").and_then(Value::as_str).unwrap_or(""))?;
        let payload = B64
            .decode(p)
            .map_err(|e| malformed(format!("JWS payload is not base64url: {e}")))?;
        let signature = B64
            .decode(s)
            .map_err(|e| malformed(format!("JWS signature is not base64url: {e}")))?;
        Ok(Jws {
            header,
            alg,
            payload,
            signing_input_len: h.len() + 1 + p.len(),
            signature,
            token: token.to_string(),
        })
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    /// Checks the signature with `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<()> {
        key.verify(
            self.alg,
            &self.token.as_bytes()[..self.signing_input_len],
            &self.signature,
        )
    }

    pub fn payload_json(&self) -> Result<Value> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| malformed(format!("JWS payload is not JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyKind;
    use rand::SeedableRng;

    #[test]
    fn sign_parse_verify_and_tamper() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let k = IssuerKey::generate(KeyKind::Ed25519, &mut rng).unwrap();
        let t = sign(&k, Alg::EdDSA, "did:key:x#y", "vc+jwt", br#"{"a":1}"#).unwrap();
        let j = Jws::parse(&t).unwrap();
        assert_eq!(j.header_str("typ"), Some("vc+jwt"));
        j.verify(k.public()).unwrap();
        // A changed payload (same header and signature) fails.
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], B64.encode(br#"{"a":2}"#), parts[2]);
        assert!(matches!(
            Jws::parse(&forged).unwrap().verify(k.public()),
            Err(Error::Signature(_))
        ));
        // alg none is refused before any key is looked at.
        let none = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), parts[1]);
        assert!(Jws::parse(&none).is_err());
        // Deterministic for EdDSA.
        assert_eq!(
            t,
            sign(&k, Alg::EdDSA, "did:key:x#y", "vc+jwt", br#"{"a":1}"#).unwrap()
        );
    }
}
