//! Node keys held in a TPM 2.0 (feature `tpm`).
//!
//! The key is an ECDSA P-256 primary key in the owner hierarchy, re-derived on every
//! start from a fixed template (the TPM's hierarchy seed never leaves it, so the same
//! TPM and label always give the same key, and nothing is stored on disk). The label
//! goes into the template's `unique` field, so one TPM can hold several node keys.
//! Signatures are ES256 (raw r||s), which verify like any P-256 key file signature.
//! ECDSA rather than RSA-PSS: hardware TPMs use a PSS salt length that JWS verifiers
//! reject (see docs/collector.md).
//!
//! The ESAPI context is not `Send`, so it lives on its own thread; signing requests go
//! to it over a channel. One signature per sealed batch, never per record.

use std::str::FromStr;
use std::sync::Mutex;
use std::sync::mpsc;

use crate::error::{Context as _, Result, failure};
use gco_ledger::keys::{Algorithm, PublicKey, Signer};
use gco_ledger::{LedgerError, Result as LedgerResult};
use p256::pkcs8::EncodePublicKey;
use sha2::{Digest as _, Sha256};
use tss_esapi::Context;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::structures::{
    Digest, EccParameter, EccPoint, EccScheme, HashScheme, Public, PublicBuilder,
    PublicEccParametersBuilder, Signature, SignatureScheme,
};
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use tss_esapi::{TctiNameConf, handles::KeyHandle};

/// The TCTI used when none is configured (`TPM2TOOLS_TCTI` / `TCTI` override it).
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

type Job = (Vec<u8>, mpsc::Sender<Result<Vec<u8>, String>>);

pub struct TpmSigner {
    public: PublicKey,
    tx: Mutex<mpsc::Sender<Job>>,
}

fn template(label: &str) -> Result<Public> {
    let attrs = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_sign_encrypt(true)
        .with_decrypt(false)
        .with_restricted(false)
        .build()?;
    // The label, hashed, in the unique field: a different label is a different key.
    let unique: [u8; 32] = Sha256::digest(format!("gco node key: {label}")).into();
    Ok(PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attrs)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_unrestricted_signing_key(
                EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
                EccCurve::NistP256,
            )
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::new(
            EccParameter::try_from(unique.to_vec())?,
            EccParameter::default(),
        ))
        .build()?)
}

fn pad32(b: &[u8]) -> Result<[u8; 32]> {
    if b.len() > 32 {
        return Err(failure!(Tpm, "ECC value of {} bytes", b.len()));
    }
    let mut out = [0u8; 32];
    out[32 - b.len()..].copy_from_slice(b);
    Ok(out)
}

fn open_key(tcti: &str, label: &str) -> Result<(Context, KeyHandle, PublicKey)> {
    let conf = TctiNameConf::from_str(tcti).with_context(|| format!("TCTI {tcti:?}"))?;
    let mut ctx = Context::new(conf).with_context(|| {
        format!("opening the TPM through {tcti:?} (is the TPM/simulator reachable and the user allowed?)")
    })?;
    let key = ctx
        .execute_with_nullauth_session(|c| {
            c.create_primary(Hierarchy::Owner, template(label)?, None, None, None, None)
                .map_err(crate::error::CollectorError::from)
        })
        .context("deriving the node key in the TPM (create primary)")?;
    let Public::Ecc { unique, .. } = key.out_public else {
        return Err(failure!(Tpm, "the TPM returned a non-ECC key"));
    };
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(&pad32(unique.x().value())?);
    sec1.extend_from_slice(&pad32(unique.y().value())?);
    let pk = p256::PublicKey::from_sec1_bytes(&sec1)
        .map_err(|e| failure!(Tpm, "TPM public key: {e}"))?;
    let der = pk
        .to_public_key_der()
        .map_err(|e| failure!(Tpm, "encoding the TPM public key: {e}"))?;
    let public = PublicKey::from_spki_der(Algorithm::EcdsaP256, der.as_bytes().to_vec())?;
    Ok((ctx, key.key_handle, public))
}

fn sign_with(ctx: &mut Context, key: KeyHandle, message: &[u8]) -> Result<Vec<u8>> {
    let digest = Digest::try_from(Sha256::digest(message).to_vec())?;
    let validation = TPMT_TK_HASHCHECK {
        tag: TPM2_ST_HASHCHECK,
        hierarchy: TPM2_RH_NULL,
        digest: Default::default(),
    };
    let sig = ctx.execute_with_nullauth_session(|c| {
        c.sign(
            key,
            digest,
            SignatureScheme::EcDsa {
                hash_scheme: HashScheme::new(HashingAlgorithm::Sha256),
            },
            validation.try_into()?,
        )
        .map_err(crate::error::CollectorError::from)
    })?;
    let Signature::EcDsa(s) = sig else {
        return Err(failure!(Tpm, "the TPM returned a non-ECDSA signature"));
    };
    let mut out = pad32(s.signature_r().value())?.to_vec();
    out.extend_from_slice(&pad32(s.signature_s().value())?);
    // Low-S form, as the ledger's verifier (and most JOSE libraries) expect.
    let sig = p256::ecdsa::Signature::from_slice(&out)
        .map_err(|e| failure!(Tpm, "TPM signature: {e}"))?;
    Ok(sig.normalize_s().to_bytes().to_vec())
}

impl TpmSigner {
    /// Derives the node key `label` in the TPM reached through `tcti`
    /// (e.g. `device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=2321`).
    pub fn open(tcti: &str, label: &str) -> Result<Self> {
        let (tcti, label) = (tcti.to_string(), label.to_string());
        let (ready_tx, ready_rx) = mpsc::channel::<Result<PublicKey, String>>();
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("gco-tpm".into())
            .spawn(move || {
                let (mut ctx, key, public) = match open_key(&tcti, &label) {
                    Ok(k) => k,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{e:#}")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(public));
                for (msg, reply) in rx {
                    let _ =
                        reply.send(sign_with(&mut ctx, key, &msg).map_err(|e| format!("{e:#}")));
                }
                // Transient objects use TPM slots: give it back.
                let _ = ctx.flush_context(key.into());
            })?;
        let public = ready_rx
            .recv()
            .map_err(|_| failure!(Internal, "the TPM thread ended before it answered"))?
            .map_err(|e| failure!(Tpm, "{e}"))?;
        Ok(TpmSigner {
            public,
            tx: Mutex::new(tx),
        })
    }
}

impl Signer for TpmSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> LedgerResult<Vec<u8>> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .lock()
            .map_err(|_| LedgerError::Key("TPM signer lock poisoned".into()))?
            .send((message.to_vec(), tx))
            .map_err(|_| LedgerError::Key("the TPM thread has stopped".into()))?;
        rx.recv()
            .map_err(|_| LedgerError::Key("the TPM thread has stopped".into()))?
            .map_err(|e| LedgerError::Key(format!("TPM signing failed: {e}")))
    }
}
