//! Data Integrity proofs with the `eddsa-jcs-2022` cryptosuite (W3C vc-di-eddsa 1.0):
//!
//! ```text
//! proofConfig = proof options without proofValue, with the document's @context
//! hashData    = SHA-256(JCS(proofConfig)) || SHA-256(JCS(document without proof))
//! proofValue  = "z" + base58btc(Ed25519(hashData))
//! ```

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result, malformed};
use crate::jcs;
use crate::key::{Alg, IssuerKey, PublicKey};
use crate::multibase;

pub const CRYPTOSUITE: &str = "eddsa-jcs-2022";

/// The 64 bytes that are signed: proof-configuration hash, then document hash.
pub fn hash_data(proof_config: &Value, document: &Value) -> Result<Vec<u8>> {
    let mut out = Sha256::digest(jcs::to_vec(proof_config)?).to_vec();
    out.extend(Sha256::digest(jcs::to_vec(document)?));
    Ok(out)
}

/// The proof configuration for `document`: type, cryptosuite, created,
/// verificationMethod, proofPurpose and the document's `@context`.
pub fn proof_config(document: &Value, verification_method: &str, created: &str) -> Value {
    let mut config = json!({
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": "assertionMethod",
    });
    if let Some(ctx) = document.get("@context") {
        config["@context"] = ctx.clone();
    }
    config
}

/// Returns `document` with an `eddsa-jcs-2022` proof added.
pub fn sign(
    document: &Value,
    key: &IssuerKey,
    verification_method: &str,
    created: &str,
) -> Result<Value> {
    let Value::Object(doc) = document else {
        return Err(malformed("a Data Integrity document must be a JSON object"));
    };
    if doc.contains_key("proof") {
        return Err(Error::Invalid("the document already has a proof".into()));
    }
    let mut proof = proof_config(document, verification_method, created);
    let sig = key.sign(Alg::EdDSA, &hash_data(&proof, document)?)?;
    proof["proofValue"] = Value::String(multibase::encode_base58btc(&sig));
    let mut signed = doc.clone();
    signed.insert("proof".into(), proof);
    Ok(Value::Object(signed))
}

/// What a verified proof said.
#[derive(Debug, Clone)]
pub struct Verified {
    pub verification_method: String,
    pub created: String,
}

/// Verifies the single `eddsa-jcs-2022` proof of `document`; `resolve` turns the
/// verification method into a public key.
pub fn verify(document: &Value, resolve: impl Fn(&str) -> Result<PublicKey>) -> Result<Verified> {
    let Value::Object(doc) = document else {
        return Err(malformed("a Data Integrity document must be a JSON object"));
    };
    let proof = match doc.get("proof") {
        Some(Value::Object(p)) => p,
        Some(_) => {
            return Err(Error::Invalid(
                "only a single proof object is supported (no proof sets)".into(),
            ));
        }
        None => return Err(Error::Invalid("the document has no proof".into())),
    };
    let s = |name: &str| -> Result<&str> {
        proof
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Invalid(format!("proof has no {name:?}")))
    };
    if s("type")? != "DataIntegrityProof" || s("cryptosuite")? != CRYPTOSUITE {
        return Err(Error::Invalid(format!(
            "proof is not a DataIntegrityProof with cryptosuite {CRYPTOSUITE}"
        )));
    }
    if s("proofPurpose")? != "assertionMethod" {
        return Err(Error::Invalid("proofPurpose is not assertionMethod".into()));
    }
    let vm = s("verificationMethod")?.to_string();
    let created = s("created")?.to_string();
    let sig = multibase::decode_base58btc(s("proofValue")?)?;
    let mut unsecured: Map<String, Value> = doc.clone();
    unsecured.remove("proof");
    let mut config = proof.clone();
    config.remove("proofValue");
    // A proof's @context, when present, must be the document's (vc-di-eddsa 3.3.1).
    if let Some(ctx) = config.get("@context")
        && Some(ctx) != doc.get("@context")
    {
        return Err(Error::Invalid(
            "proof @context differs from the document's".into(),
        ));
    }
    let unsecured = Value::Object(unsecured);
    let config = Value::Object(config);
    let key = resolve(&vm)?;
    if !matches!(key, PublicKey::Ed25519(_)) {
        return Err(Error::Invalid(format!(
            "{vm} is not an Ed25519 key ({CRYPTOSUITE})"
        )));
    }
    key.verify(Alg::EdDSA, &hash_data(&config, &unsecured)?, &sig)?;
    Ok(Verified {
        verification_method: vm,
        created,
    })
}

#[cfg(test)]
mod tests {
    //! The W3C vc-di-eddsa specification's test vectors for eddsa-jcs-2022
    //! (tests/data/vc-di-eddsa/, see its README for provenance).
    use super::*;
    use crate::key::ed25519_from_private_multibase;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vc-di-eddsa");

    fn read(name: &str) -> String {
        std::fs::read_to_string(format!("{DIR}/{name}")).unwrap()
    }
    fn json(name: &str) -> Value {
        serde_json::from_str(&read(name)).unwrap()
    }

    #[test]
    fn reproduces_the_w3c_eddsa_jcs_2022_vectors_exactly() {
        let pair = json("keyPair.json");
        let key =
            ed25519_from_private_multibase(pair["privateKeyMultibase"].as_str().unwrap()).unwrap();
        assert_eq!(
            key.public().multibase(),
            pair["publicKeyMultibase"].as_str().unwrap()
        );
        let signed = json("signedJCS.json");
        let mut unsigned = signed.clone();
        unsigned.as_object_mut().unwrap().remove("proof");
        assert_eq!(
            String::from_utf8(jcs::to_vec(&unsigned).unwrap()).unwrap(),
            read("canonDocJCS.txt").trim()
        );
        let vm = signed["proof"]["verificationMethod"].as_str().unwrap();
        let created = signed["proof"]["created"].as_str().unwrap();
        let config = proof_config(&unsigned, vm, created);
        assert_eq!(config, json("proofConfigJCS.json"));
        // The second half of hashData is the document hash. (The repository's
        // proof-hash files belong to an older draft whose verificationMethod was a
        // did:key; the signature below covers the current proof configuration.)
        let hash = hash_data(&config, &unsigned).unwrap();
        assert_eq!(hex::encode(&hash[32..]), read("docHashJCS.txt").trim());
        let ours = sign(&unsigned, &key, vm, created).unwrap();
        assert_eq!(ours, signed, "same proofValue as the specification");
        let sig =
            multibase::decode_base58btc(ours["proof"]["proofValue"].as_str().unwrap()).unwrap();
        assert_eq!(hex::encode(sig), read("sigHexJCS.txt").trim());

        let public = key.public().clone();
        let resolve = |m: &str| {
            assert_eq!(m, vm);
            Ok(public.clone())
        };
        verify(&signed, resolve).unwrap();
        // A changed claim fails.
        let mut changed = signed.clone();
        changed["credentialSubject"]["alumniOf"] = "Another School".into();
        assert!(matches!(
            verify(&changed, |_| Ok(public.clone())),
            Err(Error::Signature(_))
        ));
        // A changed proof option (created) fails too: it is signed.
        let mut later = signed.clone();
        later["proof"]["created"] = "2024-01-01T00:00:00Z".into();
        assert!(verify(&later, |_| Ok(public.clone())).is_err());
    }
}
