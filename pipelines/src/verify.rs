//! Verifying a credential end to end (`gco vc verify`, the demo, the coming HTTP
//! service's VC-API verify endpoint).

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use gco_credentials::issuer::Resolver;
use gco_credentials::vc::{self, Format};
use gco_ledger::Store;
use serde::Serialize;
use serde_json::Value;

use crate::certify;

/// A credential that passed every check asked for.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// What was checked, in order.
    pub checked: Vec<String>,
    pub credential_subject: Value,
    pub format: String,
    pub id: String,
    pub issuer: String,
    /// What could not be checked with what was given.
    pub not_checked: Vec<String>,
    pub valid: bool,
    pub verification_method: String,
}

/// Every check of `gco vc verify`: signature, issuer, validity window, schema, the
/// inclusion proof a per-inference credential carries, revocation status (from
/// `status_list`, a status list token, or the store), and with a store the evidence
/// chain down to the node's signed batch. An error names the first failed one (a
/// [`gco_credentials::Error`] carries its stable code).
pub async fn verify_credential(
    text: &str,
    resolver: &Resolver,
    at: DateTime<Utc>,
    status_list: Option<&str>,
    store: Option<&Store>,
    skip_status: bool,
) -> Result<Verified> {
    let checked = vc::check(text, resolver, at)?;
    let mut done = vec![
        format!(
            "signature ({}, {})",
            checked.alg, checked.verification_method
        ),
        "issuer, validity window, VC 2.0 context and type".to_string(),
    ];
    if checked.format != Format::Legacy {
        done.push("schema".into());
    }
    let mut not_checked = Vec::new();
    // Inclusion proof inside the credential: checkable offline.
    if let Some(ev) = checked.claims["evidence"]
        .as_array()
        .and_then(|e| e.iter().find(|x| x["type"][0] == "LedgerRecordEvidence"))
    {
        check_inclusion(ev)?;
        done.push("record inclusion proof against the batch's Merkle root".into());
    }
    match (&checked.status, skip_status) {
        (None, _) => {}
        (Some(_), true) => not_checked.push("revocation status (--skip-status)".to_string()),
        (Some(s), false) => {
            let token = match (status_list, store) {
                (Some(t), _) => t.to_string(),
                (None, Some(store)) => {
                    let path = certify::status_list_path(&s.list)?;
                    String::from_utf8(store.get(&path).await?.to_vec())?
                }
                (None, None) => bail!(
                    "the credential has a revocation status: pass --status-list FILE or --ledger URL (or --skip-status)"
                ),
            };
            vc::check_status(s, &checked.issuer, &token, resolver, at)?;
            done.push(format!("not revoked ({} #{})", s.list, s.index));
        }
    }
    match store {
        Some(store) if checked.format != Format::Legacy => {
            let chain = certify::verify_chain(store, &checked.claims).await?;
            done.extend(chain.checked);
        }
        Some(_) => not_checked.push("evidence chain (a legacy certificate carries none)".into()),
        None => not_checked.push("evidence chain to the ledger (--ledger URL)".into()),
    }
    Ok(Verified {
        checked: done,
        credential_subject: checked
            .claims
            .get("credentialSubject")
            .cloned()
            .unwrap_or_else(|| checked.claims.clone()),
        format: checked.format.as_str().to_string(),
        id: checked.id,
        issuer: checked.issuer,
        not_checked,
        valid: true,
        verification_method: checked.verification_method,
    })
}

fn check_inclusion(ev: &Value) -> Result<()> {
    use gco_ledger::hash::{from_hex, verify_inclusion};
    let h = |k: &str| {
        from_hex(ev[k].as_str().unwrap_or("")).ok_or_else(|| {
            gco_credentials::Error::Invalid(format!("evidence {k} is not a 32-byte hex hash"))
        })
    };
    let path = ev["inclusionProof"]
        .as_array()
        .ok_or_else(|| gco_credentials::Error::Invalid("evidence has no inclusionProof".into()))?
        .iter()
        .map(|p| {
            from_hex(p.as_str().unwrap_or("")).ok_or_else(|| {
                gco_credentials::Error::Invalid("inclusionProof entry is not hex".into())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (index, size) = (
        ev["leafIndex"].as_u64().unwrap_or(u64::MAX),
        ev["treeSize"].as_u64().unwrap_or(0),
    );
    if !verify_inclusion(&h("leafHash")?, index, size, &path, &h("merkleRoot")?) {
        return Err(gco_credentials::Error::Invalid(
            "the record's inclusion proof does not lead to the batch's Merkle root".into(),
        )
        .into());
    }
    Ok(())
}
