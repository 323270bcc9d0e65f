//! Verifying a credential end to end (`gco vc verify`, the demo, the coming HTTP
//! service's VC-API verify endpoint).

use crate::error::{Result, fail};
use chrono::{DateTime, Utc};
use gco_credentials::issuer::Resolver;
use gco_credentials::vc::{self, Format};
use gco_ledger::hash::to_hex;
use gco_ledger::{Registry, Store};
use serde::Serialize;
use serde_json::Value;

use crate::error::failure;

use crate::certify::{self, Granularity, load_run, member_roots, read_aggregates, sha256_hex};
use crate::period::Period;

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
                (None, None) => fail!(
                    Usage,
                    "the credential has a revocation status: pass --status-list FILE or --ledger URL (or --skip-status)"
                ),
            };
            vc::check_status(s, &checked.issuer, &token, resolver, at)?;
            done.push(format!("not revoked ({} #{})", s.list, s.index));
        }
    }
    match store {
        Some(store) if checked.format != Format::Legacy => {
            let chain = verify_chain(store, &checked.claims).await?;
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

/// What `verify_chain` checked.
#[derive(Debug, Clone, Serialize)]
pub struct ChainCheck {
    pub checked: Vec<String>,
}

/// Checks a verified credential's evidence against the ledger in `store`: the run
/// manifest's hash; for an inference, the node's signed batch (verified as the ledger
/// verifier does), the record and its inclusion proof; for an aggregate, the member
/// root recomputed from the ledger and the figures in the run's aggregate table.
pub async fn verify_chain(store: &Store, credential: &Value) -> Result<ChainCheck> {
    let subject = &credential["credentialSubject"];
    let evidence = credential["evidence"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let run_ev = evidence
        .iter()
        .find(|e| e["type"][0] == "EmissionsRunEvidence")
        .ok_or_else(|| failure!(Evidence, "the credential has no EmissionsRunEvidence"))?;
    let mut checked = Vec::new();
    let manifest_path = run_ev["runManifest"].as_str().unwrap_or("");
    let bytes = store.get(manifest_path).await?;
    if Some(sha256_hex(&bytes).as_str()) != run_ev["runManifestSha256"].as_str() {
        fail!(
            Evidence,
            "{manifest_path}: the run manifest differs from the one the credential names (SHA-256)"
        );
    }
    checked.push(format!("run manifest {manifest_path} (SHA-256)"));
    let period = Period::parse(subject["period"].as_str().unwrap_or(""))?;
    // Not truncated: a runVersion of 2^32 + 1 must not check against version 1.
    let version = run_ev["runVersion"]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| failure!(Evidence, "runVersion missing or not a run version"))?;
    let run = load_run(store, period, Some(version)).await?;
    let granularity = Granularity::parse(subject["granularity"].as_str().unwrap_or(""))?;
    if granularity == Granularity::Inference {
        let ev = evidence
            .iter()
            .find(|e| e["type"][0] == "LedgerRecordEvidence")
            .ok_or_else(|| {
                failure!(
                    Evidence,
                    "an inference credential needs LedgerRecordEvidence"
                )
            })?;
        let path = ev["batch"].as_str().unwrap_or("");
        let bytes = store.get(path).await?;
        let registry = Registry::load(store).await?;
        let check = gco_ledger::verify::check_object(path, bytes.clone(), &registry);
        if let Some(p) = check.problems.first() {
            fail!(
                Evidence,
                "{path}: the node's batch does not verify: {} {}",
                p.code,
                p.message
            );
        }
        checked.push(format!(
            "batch {path}: seal, rows, Merkle root, node signature, registry"
        ));
        let (seal, records) = gco_ledger::batch::read_batch(path, bytes)?;
        for (field, want) in [
            ("batchHash", &seal.batch_hash),
            ("merkleRoot", &seal.merkle_root),
            ("nodeKeyId", &seal.key_id),
            ("nodeSignature", &seal.signature),
        ] {
            if ev[field].as_str() != Some(want.as_str()) {
                fail!(Evidence, "evidence {field} differs from the batch's seal");
            }
        }
        let index = ev["leafIndex"]
            .as_u64()
            .ok_or_else(|| failure!(Evidence, "leafIndex missing"))? as usize;
        let record = records
            .get(index)
            .ok_or_else(|| failure!(Evidence, "leafIndex {index} is outside the batch"))?;
        if to_hex(&record.leaf_hash()) != ev["leafHash"].as_str().unwrap_or("") {
            fail!(
                Evidence,
                "the record at leafIndex {index} has another leaf hash"
            );
        }
        let same = record.inference_id.as_deref() == subject["inferenceId"].as_str()
            && record.node_id == subject["nodeId"].as_str().unwrap_or("")
            && Some(record.seq) == subject["seq"].as_u64()
            && Some(record.energy.0.to_string().as_str()) == subject["itEnergyMj"].as_str();
        if !same {
            fail!(
                Evidence,
                "the ledger record differs from the credential's inference, node, seq or energy"
            );
        }
        checked.push(format!(
            "record {index} of {path}: inference id, node, seq, energy"
        ));
    } else {
        let roots = member_roots(store, &run).await?;
        let key: Vec<String> = match granularity {
            Granularity::ModelDay => vec![
                subject["date"].as_str().unwrap_or("").into(),
                subject["model"].as_str().unwrap_or("").into(),
                subject["scope"].as_str().unwrap_or("").into(),
            ],
            Granularity::ModelMonth => vec![
                subject["model"].as_str().unwrap_or("").into(),
                subject["scope"].as_str().unwrap_or("").into(),
            ],
            _ => vec![
                subject["organisation"].as_str().unwrap_or("").into(),
                subject["scope"].as_str().unwrap_or("").into(),
            ],
        };
        let empty = (to_hex(&gco_credentials::merkle::empty_root()), 0u64);
        let (root, count) = roots.get(&(granularity, key.clone())).unwrap_or(&empty);
        if subject["members"]["root"].as_str() != Some(root.as_str())
            || subject["members"]["count"].as_u64() != Some(*count)
        {
            fail!(
                Evidence,
                "member root of {} differs from the one recomputed from the ledger ({count} inferences)",
                key.join("/")
            );
        }
        checked.push(format!(
            "member root over {count} inferences recomputed from the ledger"
        ));
        let aggs = read_aggregates(store, &run).await?;
        let a = aggs
            .iter()
            .find(|a| a.granularity == granularity && a.key == key)
            .ok_or_else(|| {
                failure!(
                    Evidence,
                    "the run has no {} aggregate {}",
                    granularity.as_str(),
                    key.join("/")
                )
            })?;
        for (claim, col) in [
            ("itEnergyMj", "it_energy_mj"),
            ("facilityEnergyMj", "facility_energy_mj"),
            ("locationBasedNg", "location_ng"),
            ("marketBasedNg", "market_ng"),
            ("embodiedNg", "embodied_ng"),
            ("sciNg", "sci_ng"),
        ] {
            if subject[claim].as_str() != Some(a.sums[col].as_str()) {
                fail!(Evidence, "{claim} differs from the run's aggregate table");
            }
        }
        checked.push("figures equal the run's aggregate table".into());
    }
    Ok(ChainCheck { checked })
}
