//! RFC 3161 time-stamps of a credentials version: a TSA signs the SHA-256 of the
//! version's `index.json` (which lists every credential file with its SHA-256); the
//! response is stored beside it as `index.json.tsr`, create-only.

use crate::error::{Context, Result, fail, failure};
use gco_ledger::Store;
use serde::Serialize;
use sha2::Digest;

/// A stored time-stamp of an index (the fields `gco vc issue --json` prints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexTimeStamp {
    /// `genTime` as the TSA wrote it.
    pub gen_time: String,
    pub index_sha256: String,
    /// Where the response is stored (`.../index.json.tsr`).
    pub path: String,
    pub policy: String,
    pub serial: String,
}

/// How long the TSA may take to answer.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Has the TSA at `url` time-stamp the index at `index_path`, unless a response is
/// stored already (which is checked against the index and kept). The URL may carry
/// credentials: errors name its host only.
pub async fn timestamp_index(store: &Store, index_path: &str, url: &str) -> Result<IndexTimeStamp> {
    let tsr_path = format!("{index_path}.tsr");
    let index = store.get(index_path).await?;
    let digest: [u8; 32] = sha2::Sha256::digest(&index).into();
    let describe = |ts: gco_credentials::tsp::TimeStamp| IndexTimeStamp {
        gen_time: ts.gen_time,
        index_sha256: hex::encode(digest),
        path: tsr_path.clone(),
        policy: ts.policy,
        serial: ts.serial,
    };
    if let Ok(existing) = store.get(&tsr_path).await {
        let ts = gco_credentials::tsp::read_response(&existing, &digest)
            .with_context(|| format!("{tsr_path} is not a time-stamp of {index_path}"))?;
        return Ok(describe(ts));
    }
    let nonce: u64 = rand::random();
    let request = gco_credentials::tsp::request(&digest, nonce);
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| failure!(Internal, "starting an HTTP client: {}", e.without_url()))?;
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "the TSA".into());
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/timestamp-query")
        .body(request)
        .send()
        .await
        .map_err(|e| {
            failure!(
                Remote,
                "posting the time-stamp request to {host}: {}",
                e.without_url()
            )
        })?;
    let status = resp.status();
    if !status.is_success() {
        fail!(Remote, "the TSA at {host} answered HTTP {status}");
    }
    let body = resp.bytes().await.map_err(|e| {
        failure!(
            Remote,
            "reading the TSA's answer from {host}: {}",
            e.without_url()
        )
    })?;
    let ts = gco_credentials::tsp::check_response(&body, &digest, nonce)?;
    store.put_create(&tsr_path, body).await?;
    Ok(describe(ts))
}
