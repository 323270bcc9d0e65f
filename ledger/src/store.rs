//! Object storage chosen by URL, the ledger's partition layout and create-only writes.
//!
//! `file://DIR` (or a bare path), `memory://`, `s3://BUCKET[/PREFIX]`, `gs://...` and
//! `az://...`. Cloud credentials and endpoints come from the usual environment variables
//! (`AWS_*`, `GOOGLE_*`, `AZURE_*`) and from options given in the configuration file.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    ClientConfigKey, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
};

use crate::error::{LedgerError, Result};
use crate::seal::Seal;

/// Top-level folder of the signed record batches.
use crate::layout::RECORDS as RECORDS_PREFIX;

/// The ledger's object store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    display: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.display)
    }
}

/// What a create-only write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// The object was already there with identical bytes (an idempotent retry).
    AlreadyPresent,
}

/// Path of a sealed batch: `records/date=YYYY-MM-DD/node=<id>/<name>.parquet`.
pub fn batch_path(seal: &Seal) -> String {
    format!(
        "{RECORDS_PREFIX}/date={}/node={}/{}",
        seal.date,
        seal.node_id,
        seal.object_name()
    )
}

/// The parts of a batch path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLocation {
    pub date: String,
    pub node_id: String,
    pub name: String,
}

impl BatchLocation {
    /// The sequence range the object name carries ([`object_seq_range`]).
    pub fn seq_range(&self) -> Option<(u64, u64)> {
        object_seq_range(&self.name)
    }
}

/// `(seq_first, seq_last)` from a batch object name as [`Seal::object_name`] writes it,
/// `SEQFIRST-SEQLAST-HASH.parquet`; `None` for any other name. A name is not signed:
/// use it to plan work, never as a record count or a figure.
pub fn object_seq_range(name: &str) -> Option<(u64, u64)> {
    let mut parts = name.strip_suffix(".parquet")?.splitn(3, '-');
    let first = parts.next()?.parse().ok()?;
    let last = parts.next()?.parse().ok()?;
    parts.next()?;
    Some((first, last))
}

/// Splits `records/date=D/node=N/NAME.parquet`; anything else is `None`.
pub fn parse_batch_path(path: &str) -> Option<BatchLocation> {
    let mut parts = path.split('/');
    let (r, d, n, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if r != RECORDS_PREFIX || parts.next().is_some() || !name.ends_with(".parquet") {
        return None;
    }
    Some(BatchLocation {
        date: d.strip_prefix("date=")?.to_string(),
        node_id: n.strip_prefix("node=")?.to_string(),
        name: name.to_string(),
    })
}

/// A node id: 1 to 64 characters from `A-Z a-z 0-9 . _ -`, not starting with `.` —
/// safe in object paths, hive partition values and file names.
pub fn validate_node_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "node id {id:?} is invalid: use 1-64 characters from A-Z a-z 0-9 . _ - (not starting with '.')"
        ))
    }
}

/// Limits for cloud stores: a request fails after 15 s (object_store's 5 s to
/// connect) and retries stop 15 s after the first attempt, so a hung endpoint fails a
/// command in about 30 s. `store_options` `timeout` / `connect_timeout` (e.g.
/// `"60s"`) override them.
const REQUEST_TIMEOUT: &str = "15s";

fn retry_config() -> object_store::RetryConfig {
    object_store::RetryConfig {
        retry_timeout: std::time::Duration::from_secs(15),
        ..Default::default()
    }
}

fn url_err(url: &str, reason: impl std::fmt::Display) -> LedgerError {
    LedgerError::StoreUrl {
        url: redact(url),
        reason: reason.to_string(),
    }
}

/// A store URL without query string or user info (SAS tokens, passwords).
pub fn redact(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or("");
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let host_end = rest.find('/').unwrap_or(rest.len());
            match rest[..host_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => no_query.to_string(),
            }
        }
        None => no_query.to_string(),
    }
}

impl Store {
    /// Wraps an existing object store (tests use `InMemory`).
    pub fn from_object_store(inner: Arc<dyn ObjectStore>, display: impl Into<String>) -> Self {
        Store {
            inner,
            display: display.into(),
        }
    }

    /// A fresh in-memory store.
    pub fn memory() -> Self {
        Self::from_object_store(Arc::new(object_store::memory::InMemory::new()), "memory://")
    }

    /// Opens the store named by `url`. `options` are object_store configuration keys
    /// (`endpoint`, `region`, `allow_http`, ...) layered over the environment.
    pub fn open(url: &str, options: &BTreeMap<String, String>) -> Result<Self> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("file".to_string(), url),
        };
        match scheme.as_str() {
            "file" => {
                let dir = std::path::Path::new(if rest.is_empty() { "." } else { rest });
                std::fs::create_dir_all(dir)
                    .map_err(|e| url_err(url, format!("cannot create {}: {e}", dir.display())))?;
                let abs = std::fs::canonicalize(dir).map_err(|e| url_err(url, e))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&abs)
                    .map_err(|e| url_err(url, e))?;
                Ok(Self::from_object_store(
                    Arc::new(fs),
                    format!("file://{}", abs.display()),
                ))
            }
            "memory" => Ok(Self::memory()),
            "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" => {
                let parsed = url::Url::parse(url).map_err(|e| url_err(url, e))?;
                let bucket_url =
                    format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or(""));
                let prefix = parsed.path().trim_matches('/').to_string();
                let store: Arc<dyn ObjectStore> = match scheme.as_str() {
                    "s3" | "s3a" => {
                        use object_store::aws::AmazonS3ConfigKey as K;
                        let mut b = object_store::aws::AmazonS3Builder::from_env()
                            .with_url(&bucket_url)
                            .with_config(K::Client(ClientConfigKey::Timeout), REQUEST_TIMEOUT)
                            .with_retry(retry_config());
                        for (k, v) in options {
                            let key = k
                                .parse()
                                .map_err(|e| url_err(url, format!("option {k:?}: {e}")))?;
                            b = b.with_config(key, v);
                        }
                        // Without credentials object_store asks the cloud's instance
                        // metadata endpoint; gco does that only when told where it is.
                        let any = [
                            K::AccessKeyId,
                            K::WebIdentityTokenFile,
                            K::ContainerCredentialsRelativeUri,
                            K::ContainerCredentialsFullUri,
                            K::MetadataEndpoint,
                        ]
                        .iter()
                        .any(|k| b.get_config_value(k).is_some_and(|v| !v.is_empty()));
                        if !any && b.get_config_value(&K::SkipSignature).as_deref() != Some("true")
                        {
                            return Err(url_err(
                                url,
                                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a web identity / container role); to use the instance metadata service set AWS_METADATA_ENDPOINT or store_options.aws_metadata_endpoint",
                            ));
                        }
                        Arc::new(b.build().map_err(|e| url_err(url, e))?)
                    }
                    "gs" => {
                        let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                            .with_url(&bucket_url)
                            .with_config(
                                object_store::gcp::GoogleConfigKey::Client(
                                    ClientConfigKey::Timeout,
                                ),
                                REQUEST_TIMEOUT,
                            )
                            .with_retry(retry_config());
                        for (k, v) in options {
                            let key = k
                                .parse()
                                .map_err(|e| url_err(url, format!("option {k:?}: {e}")))?;
                            b = b.with_config(key, v);
                        }
                        Arc::new(b.build().map_err(|e| url_err(url, e))?)
                    }
                    _ => {
                        let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                            .with_url(&bucket_url)
                            .with_config(
                                object_store::azure::AzureConfigKey::Client(
                                    ClientConfigKey::Timeout,
                                ),
                                REQUEST_TIMEOUT,
                            )
                            .with_retry(retry_config());
                        for (k, v) in options {
                            let key = k
                                .parse()
                                .map_err(|e| url_err(url, format!("option {k:?}: {e}")))?;
                            b = b.with_config(key, v);
                        }
                        Arc::new(b.build().map_err(|e| url_err(url, e))?)
                    }
                };
                let store = if prefix.is_empty() {
                    store
                } else {
                    Arc::new(PrefixStore::new(store, prefix.as_str()))
                };
                Ok(Self::from_object_store(store, redact(url)))
            }
            other => Err(url_err(
                url,
                format!(
                    "unsupported scheme {other:?}; use file://, memory://, s3://, gs:// or az://"
                ),
            )),
        }
    }

    /// The store's URL, safe to print.
    pub fn url(&self) -> &str {
        &self.display
    }

    /// Writes `bytes` at `path` only if no object is there. An existing object with the
    /// same bytes is an idempotent success; different bytes are a [`LedgerError::Conflict`].
    pub async fn put_create(&self, path: &str, bytes: Bytes) -> Result<PutOutcome> {
        let p = Path::from(path);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .inner
            .put_opts(&p, PutPayload::from_bytes(bytes.clone()), opts)
            .await
        {
            Ok(_) => Ok(PutOutcome::Created),
            Err(object_store::Error::AlreadyExists { .. }) => {
                let existing = self.get(path).await?;
                if existing == bytes {
                    Ok(PutOutcome::AlreadyPresent)
                } else {
                    Err(LedgerError::Conflict {
                        path: path.to_string(),
                    })
                }
            }
            Err(e) => Err(LedgerError::store(path, e)),
        }
    }

    pub async fn get(&self, path: &str) -> Result<Bytes> {
        let p = Path::from(path);
        let r = self
            .inner
            .get(&p)
            .await
            .map_err(|e| LedgerError::store(path, e))?;
        r.bytes().await.map_err(|e| LedgerError::store(path, e))
    }

    pub async fn get_range(&self, path: &str, range: std::ops::Range<u64>) -> Result<Bytes> {
        let p = Path::from(path);
        self.inner
            .get_range(&p, range)
            .await
            .map_err(|e| LedgerError::store(path, e))
    }

    /// Every object under `prefix`, sorted by path.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let p = Path::from(prefix);
        let mut out: Vec<ObjectMeta> = self
            .inner
            .list(Some(&p))
            .try_collect()
            .await
            .map_err(|e| LedgerError::store(prefix, e))?;
        out.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(out)
    }

    /// Deletes a pipeline staging object (`runs/.../staging/...`): the only deletion
    /// outside tests. Ledger, registry and output objects are never deleted.
    pub async fn delete_staging(&self, path: &str) -> Result<()> {
        if !crate::layout::is_staging(path) {
            return Err(LedgerError::Input(format!(
                "refusing to delete {path}: only runs/.../staging/ objects are scratch"
            )));
        }
        self.inner
            .delete(&Path::from(path))
            .await
            .map_err(|e| LedgerError::store(path, e))
    }

    /// Deletes `path`, an output of a run version that is not published: under that
    /// version's `emissions/period=P/version=V/`, whose manifest
    /// (`runs/period=P/version=V/manifest.json`, written last: its commit point) does
    /// not exist. A one-process run (`gco_pipelines::job::Job::run`) removes this way
    /// what a crashed run left of the version it is about to write, and what it wrote
    /// itself when it must compute the rows again.
    pub async fn delete_unpublished(&self, path: &str, manifest: &str) -> Result<()> {
        let outputs = crate::layout::outputs_of_manifest(manifest);
        if !outputs.is_some_and(|o| path.starts_with(&o)) {
            return Err(LedgerError::Input(format!(
                "refusing to delete {path}: only outputs of the unpublished run version of {manifest} are removable"
            )));
        }
        match self.inner.head(&Path::from(manifest)).await {
            Err(object_store::Error::NotFound { .. }) => {}
            Ok(_) => {
                return Err(LedgerError::Input(format!(
                    "refusing to delete {path}: its version is published ({manifest} exists)"
                )));
            }
            Err(e) => return Err(LedgerError::store(manifest, e)),
        }
        self.inner
            .delete(&Path::from(path))
            .await
            .map_err(|e| LedgerError::store(path, e))
    }

    /// Replaces a credential status list (`certificates/.../status/<list>.jwt`): the one
    /// kind of object that is rewritten (revocation sets a bit and re-signs the list).
    pub async fn put_status_list(&self, path: &str, bytes: Bytes) -> Result<()> {
        if !crate::layout::is_status_list(path) {
            return Err(LedgerError::Input(format!(
                "refusing to overwrite {path}: only certificates/.../status/*.jwt lists are mutable"
            )));
        }
        self.inner
            .put(&Path::from(path), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|e| LedgerError::store(path, e))
    }

    /// Writes an object unconditionally. Only for tests that tamper with a ledger.
    #[doc(hidden)]
    pub async fn put_overwrite_for_tests(&self, path: &str, bytes: Bytes) -> Result<()> {
        self.inner
            .put(&Path::from(path), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|e| LedgerError::store(path, e))
    }

    /// Deletes an object. Only for tests that tamper with a ledger.
    #[doc(hidden)]
    pub async fn delete_for_tests(&self, path: &str) -> Result<()> {
        self.inner
            .delete(&Path::from(path))
            .await
            .map_err(|e| LedgerError::store(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_and_urls_are_redacted() {
        let loc = parse_batch_path("records/date=2026-10-01/node=n1/0-1-ab.parquet").unwrap();
        assert_eq!(loc.date, "2026-10-01");
        assert_eq!(loc.node_id, "n1");
        assert_eq!(loc.seq_range(), Some((0, 1)));
        let name = format!("{:020}-{:020}-0123456789abcdef.parquet", 40_000, 80_644);
        assert_eq!(object_seq_range(&name), Some((40_000, 80_644)));
        assert_eq!(object_seq_range("x.parquet"), None);
        assert_eq!(object_seq_range("1-2.parquet"), None);
        assert_eq!(object_seq_range("1-2-ab.json"), None);
        assert!(parse_batch_path("records/date=2026-10-01/n1/x.parquet").is_none());
        assert!(parse_batch_path("records/date=2026-10-01/node=n1/x.json").is_none());
        assert_eq!(redact("az://c/p?sig=SECRET"), "az://c/p");
        assert_eq!(redact("s3://user:pw@bucket/p"), "s3://***@bucket/p");
        assert!(validate_node_id("gpu-node-01.eu").is_ok());
        assert!(validate_node_id("../x").is_err());
        assert!(validate_node_id("a/b").is_err());
    }

    #[tokio::test]
    async fn create_only_is_idempotent_and_refuses_overwrite() {
        let s = Store::memory();
        let b = Bytes::from_static(b"one");
        assert_eq!(
            s.put_create("x/y", b.clone()).await.unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            s.put_create("x/y", b).await.unwrap(),
            PutOutcome::AlreadyPresent
        );
        assert!(matches!(
            s.put_create("x/y", Bytes::from_static(b"two")).await,
            Err(LedgerError::Conflict { .. })
        ));
        assert_eq!(s.get("x/y").await.unwrap(), Bytes::from_static(b"one"));
        assert_eq!(s.list("x").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn only_outputs_of_an_unpublished_version_are_deleted() {
        let s = Store::memory();
        let v2 = "emissions/period=2026-10/version=0002/rows/date=2026-10-01/part-00000.parquet";
        let v1 = "emissions/period=2026-10/version=0001/rows/date=2026-10-01/part-00000.parquet";
        let m2 = "runs/period=2026-10/version=0002/manifest.json";
        let m1 = "runs/period=2026-10/version=0001/manifest.json";
        for p in [v1, v2, "records/date=2026-10-01/node=n/x.parquet"] {
            s.put_create(p, Bytes::from_static(b"x")).await.unwrap();
        }
        s.put_create(m1, Bytes::from_static(b"{}")).await.unwrap();
        // Another version's output, a ledger object, a published version: refused.
        for (p, m) in [
            (v1, m2),
            ("records/date=2026-10-01/node=n/x.parquet", m2),
            (v1, m1),
            (v2, "runs/period=2026-10/version=0002/other.json"),
        ] {
            assert!(
                matches!(s.delete_unpublished(p, m).await, Err(LedgerError::Input(_))),
                "{p} with {m}"
            );
        }
        s.delete_unpublished(v2, m2).await.unwrap();
        assert!(s.get(v2).await.is_err());
        assert_eq!(s.list("emissions").await.unwrap().len(), 1);
        assert_eq!(s.list("records").await.unwrap().len(), 1);
    }
}
