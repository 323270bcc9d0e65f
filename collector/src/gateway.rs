//! Where sealed batches go: straight to the object store, or through `gco serve`'s
//! ingestion gateway (`--upload-url`), so that a node needs no bucket credentials,
//! only an `ingest` API key. Both are create-only and idempotent: a batch already
//! stored with the same bytes is a success, so a retry after a lost acknowledgement
//! is harmless (docs/collector.md, "Delivery").

use std::time::Duration;

use gco_ledger::batch::ChainHead;
use gco_ledger::{PutOutcome, Store};
use serde::Deserialize;

use crate::error::{CollectorError, Kind};

/// The gateway's base URL and the node's API key. The key never appears in a log,
/// an error or a `Debug` print.
pub struct Gateway {
    base: reqwest::Url,
    token: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// What `GET /api/v1/nodes/{node}/chain` answers.
#[derive(Debug, Deserialize)]
pub struct NodeChain {
    pub node_id: String,
    pub next_seq: u64,
    pub prev_batch_hash: String,
    /// Key ids registered for the node and not revoked.
    pub keys: Vec<String>,
}

impl Gateway {
    /// `base` is the server's URL (`https://gco.example:8443`); `token` an API key of
    /// scope `ingest`.
    pub fn new(base: &str, token: String) -> Result<Self, CollectorError> {
        let mut base = reqwest::Url::parse(base).map_err(|e| {
            CollectorError::new(
                Kind::Usage,
                format!("--upload-url {base:?} is not a URL: {e}"),
            )
        })?;
        if !matches!(base.scheme(), "http" | "https")
            || !base.username().is_empty()
            || base.password().is_some()
        {
            return Err(CollectorError::new(
                Kind::Usage,
                "--upload-url must be http(s)://HOST[:PORT][/PATH] without credentials (the key goes in GCO_UPLOAD_KEY)",
            ));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        Ok(Gateway {
            base,
            token,
            client,
        })
    }

    /// The base URL, for logs.
    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    fn endpoint(&self, path: &str) -> Result<reqwest::Url, CollectorError> {
        self.base.join(path).map_err(|e| {
            CollectorError::new(
                Kind::Usage,
                format!("--upload-url: cannot form {path}: {e}"),
            )
        })
    }

    /// The node's chain as the store holds it, and the keys registered for it.
    pub async fn chain(&self, node_id: &str) -> Result<NodeChain, CollectorError> {
        let url = self.endpoint(&format!("api/v1/nodes/{node_id}/chain"))?;
        let r = self.client.get(url).bearer_auth(&self.token).send().await?;
        let status = r.status();
        if !status.is_success() {
            return Err(refusal(
                status,
                &r.text().await.unwrap_or_default(),
                "reading the node's chain",
            ));
        }
        Ok(r.json().await?)
    }

    /// [`Gateway::chain`] as a [`ChainHead`].
    pub async fn chain_head(&self, node_id: &str) -> Result<ChainHead, CollectorError> {
        let c = self.chain(node_id).await?;
        let prev = gco_ledger::hash::from_hex(&c.prev_batch_hash).ok_or_else(|| {
            CollectorError::new(
                Kind::Remote,
                "the gateway's prev_batch_hash is not 64 hex digits",
            )
        })?;
        Ok(ChainHead {
            node_id: c.node_id,
            next_seq: c.next_seq,
            prev_batch_hash: prev,
        })
    }

    /// Posts one sealed batch: 201 created, 200 already there.
    pub async fn post_batch(&self, bytes: Vec<u8>) -> Result<PutOutcome, CollectorError> {
        let r = self
            .client
            .post(self.endpoint("api/v1/batches")?)
            .bearer_auth(&self.token)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/vnd.apache.parquet",
            )
            .body(bytes)
            .send()
            .await?;
        match r.status().as_u16() {
            201 => Ok(PutOutcome::Created),
            200 => Ok(PutOutcome::AlreadyPresent),
            _ => {
                let status = r.status();
                Err(refusal(
                    status,
                    &r.text().await.unwrap_or_default(),
                    "posting a batch",
                ))
            }
        }
    }
}

/// An error from the gateway's answer: its status, code and message (and the
/// problems' codes for a refused batch), never the request's key.
fn refusal(status: reqwest::StatusCode, body: &str, what: &str) -> CollectorError {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let code = v["error"]["code"].as_str().unwrap_or("");
    let message = v["error"]["message"].as_str().unwrap_or("");
    let problems: Vec<&str> = v["problems"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["code"].as_str()).collect())
        .unwrap_or_default();
    let kind = match status.as_u16() {
        409 => Kind::Conflict,
        401 | 403 => Kind::Usage,
        _ => Kind::Remote,
    };
    let mut text = format!("the ingestion gateway answered {status} {what}");
    if !code.is_empty() {
        text.push_str(&format!(" ({code}: {message})"));
    }
    if !problems.is_empty() {
        text.push_str(&format!("; problems: {}", problems.join(", ")));
    }
    CollectorError::new(kind, text)
}

/// Where the uploader writes.
#[derive(Debug, Clone)]
pub enum Destination {
    Store(Store),
    Gateway(std::sync::Arc<Gateway>),
}

impl Destination {
    /// For logs: the store URL (redacted) or the gateway's base URL.
    pub fn url(&self) -> String {
        match self {
            Destination::Store(s) => s.url().to_string(),
            Destination::Gateway(g) => g.url().to_string(),
        }
    }

    /// Writes one sealed batch at `path` (its deterministic name) create-only.
    pub async fn put(&self, path: &str, bytes: Vec<u8>) -> Result<PutOutcome, CollectorError> {
        match self {
            Destination::Store(s) => Ok(s.put_create(path, bytes.into()).await?),
            Destination::Gateway(g) => g.post_batch(bytes).await,
        }
    }
}
