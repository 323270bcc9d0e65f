//! Revocation: sets a credential's bit in its version's status list and re-signs the
//! list (the one object of a store that is rewritten), recording why in
//! `certificates/period=P/version=NNNN/revocations/<list>-<index>.json` (create-only).
//! The caller holds the period's certificates lease (`layout::certificates`).

use crate::error::{Context, Result, fail, failure};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use gco_credentials::issuer::Resolver;
use gco_credentials::status::Bitstring;
use gco_credentials::vc;
use gco_credentials::{Issuer, Purpose};
use gco_ledger::{Lease, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::certify;
use crate::period::Period;

/// What to revoke.
pub struct Request<'a> {
    pub issuer: &'a Issuer,
    /// Resolves the issuer's DID (to check the credential and the stored list).
    pub resolver: &'a Resolver,
    /// The credential (a VC-JOSE token or a Data Integrity document), or its `urn:` id
    /// to look up among the version's stored credentials.
    pub credential: &'a str,
    pub period: Period,
    /// The credentials version [default: the period's latest run version].
    pub version: Option<u32>,
    pub reason: &'a str,
    /// RFC 3339, whole seconds: when the revocation is recorded.
    pub now: &'a str,
}

/// The stored record of one revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// Whether the bit was set already (a repeated revocation changes nothing).
    pub already_revoked: bool,
    pub id: String,
    pub index: usize,
    pub reason: String,
    pub revoked_at: String,
    pub status_list: String,
}

/// Revokes `req.credential`; fenced by `lease` right before the list is rewritten.
pub async fn revoke(store: &Store, req: &Request<'_>, lease: &Lease) -> Result<Revocation> {
    let at = DateTime::parse_from_rfc3339(req.now)?.with_timezone(&Utc);
    let period = req.period;
    let version = match req.version {
        Some(v) => v,
        None => certify::load_run(store, period, None).await?.version,
    };
    let prefix = certify::version_prefix(&period.to_string(), version);
    // The credential itself (token or document), or its id looked up in the store.
    let (id, list, index) = if req.credential.starts_with("urn:") {
        find_status(store, &prefix, req.credential).await?
    } else {
        let checked = vc::check(req.credential, req.resolver, at)?;
        let s = checked
            .status
            .ok_or_else(|| failure!(Usage, "the credential has no revocation status entry"))?;
        (checked.id, s.list, s.index)
    };
    let path = certify::status_list_path(&list)?;
    if !path.starts_with(&prefix) {
        fail!(
            Usage,
            "the credential's status list {list} is not of {period} version {version}"
        );
    }
    let token = String::from_utf8(store.get(&path).await?.to_vec())
        .with_context(|| format!("{path} is not a status list token"))?;
    // The stored list must be ours (signature, issuer); its validity window is not the
    // question here, so it is checked at its own validFrom.
    let payload = gco_credentials::jose::Jws::parse(&token)?.payload_json()?;
    let valid_from = payload["validFrom"]
        .as_str()
        .ok_or_else(|| {
            failure!(
                Inconsistent,
                "{path}: the stored status list has no validFrom"
            )
        })?
        .to_string();
    let list_from = DateTime::parse_from_rfc3339(&valid_from)
        .with_context(|| format!("{path}: validFrom {valid_from:?}"))?
        .with_timezone(&Utc);
    let current = vc::check(&token, req.resolver, list_from)
        .context("the stored status list does not verify")?;
    if current.issuer != req.issuer.did()? {
        fail!(
            Conflict,
            "the stored status list {list} is issued by {}, not by this issuer",
            current.issuer
        );
    }
    let encoded = current.claims["credentialSubject"]["encodedList"]
        .as_str()
        .ok_or_else(|| {
            failure!(
                Inconsistent,
                "{path}: the stored status list has no encodedList"
            )
        })?;
    let mut bits = Bitstring::decode(encoded)?;
    let already = bits.get(index)?;
    bits.set(index, true)?;
    let signer = req.issuer.signer(Purpose::Vc)?;
    let new = vc::status_list_credential(&signer, &list, "revocation", &bits, &valid_from)?;
    let list_name = list.rsplit('/').next().unwrap_or("list");
    let record = Revocation {
        already_revoked: already,
        id,
        index,
        reason: req.reason.to_string(),
        revoked_at: req.now.to_string(),
        status_list: list.clone(),
    };
    let record_path = format!("{prefix}/revocations/{list_name}-{index:010}.json");
    let record = match store
        .put_create(
            &record_path,
            Bytes::from(crate::document::to_bytes(&record)?),
        )
        .await
    {
        Ok(_) => record,
        // A record of this credential is stored already: a repeated revocation (the
        // bit is set), or one killed between writing the record and the list. Either
        // way the first record stands and the list is (re)written with the bit set.
        Err(gco_ledger::LedgerError::Conflict { .. }) => {
            let stored: Revocation = serde_json::from_slice(&store.get(&record_path).await?)
                .with_context(|| format!("{record_path} is not a revocation record"))?;
            if stored.id != record.id || stored.index != index {
                fail!(
                    Conflict,
                    "{record_path} records the revocation of {} (index {}), not of {}",
                    stored.id,
                    stored.index,
                    record.id
                );
            }
            Revocation {
                already_revoked: already,
                ..stored
            }
        }
        Err(e) => return Err(e.into()),
    };
    // Fenced: a writer that lost the lease must not overwrite a newer list.
    lease.check().await?;
    store
        .put_status_list(&path, Bytes::from(new.into_bytes()))
        .await?;
    Ok(record)
}

/// The status entry (id, list, index) of the stored credential `id` of a version.
async fn find_status(store: &Store, prefix: &str, id: &str) -> Result<(String, String, usize)> {
    let mut files = vec![format!("{prefix}/aggregates.parquet")];
    for m in store.list(&format!("{prefix}/inferences/")).await? {
        files.push(m.location.to_string());
    }
    for f in files {
        let Ok(bytes) = store.get(&f).await else {
            continue;
        };
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?
            .build()?;
        for batch in reader {
            let batch = batch?;
            let ids = crate::schema::text_named(&batch, "id", &f)?;
            let docs = crate::schema::text_named(&batch, "document", &f)?;
            for r in 0..batch.num_rows() {
                if ids.value(r) == id {
                    let doc = docs.value(r);
                    let claims: Value = if doc.starts_with('{') {
                        serde_json::from_str(doc)?
                    } else {
                        gco_credentials::jose::Jws::parse(doc)?.payload_json()?
                    };
                    let s = &claims["credentialStatus"];
                    let index = s["statusListIndex"]
                        .as_str()
                        .and_then(|i| i.parse().ok())
                        .ok_or_else(|| failure!(Inconsistent, "{id} has no status index"))?;
                    let list = s["statusListCredential"]
                        .as_str()
                        .ok_or_else(|| failure!(Inconsistent, "{id} has no status list"))?;
                    return Ok((id.to_string(), list.to_string(), index));
                }
            }
        }
    }
    fail!(NotFound, "no credential {id} under {prefix}")
}
