//! `gco serve`'s ingestion gateway and access control, as clients use them: the real
//! binary on loopback over a `file://` store. Every ledger tamper class posted is
//! refused with 422 and its verifier code and nothing is written; a re-post is 200
//! with one object stored; API keys give 401/403/429 as documented; a revoked key
//! stops working; no key appears in the server's log at debug verbosity; a
//! collector delivers its batches through the gateway with no store access; HTTPS
//! with a generated certificate.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use gco_ledger::batch::{ChainHead, ChainWriter, SealedBatch, encode_parquet, read_batch};
use gco_ledger::keys::{KeyType, write_private_key_file};
use gco_ledger::registry::{Registration, register, revoke};
use gco_ledger::time::parse_utc;
use gco_ledger::{KeyFileSigner, Record, Signer, Store};
use rand::SeedableRng;
use serde_json::Value;

const DAY_US: i64 = 86_400_000_000;

fn gco() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gco"));
    c.env_remove("GCO_STORE")
        .env_remove("GCO_CONFIG")
        .env_remove("GCO_LOG")
        .env_remove("GCO_UPLOAD_KEY")
        .env_remove("GCO_UPLOAD_URL");
    c
}

fn t0() -> i64 {
    parse_utc("2026-10-01T00:00:00Z").unwrap()
}

fn key(seed: u64) -> KeyFileSigner {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    KeyFileSigner::generate_with(KeyType::Ed25519, &mut rng).unwrap()
}

/// 30 records: 10 per day for 3 days, each 2 s long, energy 1000 + i mJ.
fn records(node: &str) -> Vec<Record> {
    gco_ledger::sample::three_days(node, t0())
}

async fn register_node(store: &Store, node: &str, k: &KeyFileSigner, valid_from: i64) {
    let reg = Registration {
        node_id: node.into(),
        public_key: k.public_key().clone(),
        zone: "FR".into(),
        site: "paris".into(),
        valid_from,
        valid_to: None,
    };
    register(store, &reg, valid_from.min(t0())).await.unwrap();
}

fn chain(k: &KeyFileSigner, node: &str) -> Vec<SealedBatch> {
    ChainWriter::new(k, ChainHead::genesis(node))
        .seal(records(node))
        .unwrap()
}

/// `b` with its rows changed by `f` and its seal kept.
fn rewritten(b: &SealedBatch, f: impl FnOnce(&mut Vec<Record>)) -> Bytes {
    let (seal, mut recs) = read_batch(&b.path, b.bytes.clone()).unwrap();
    f(&mut recs);
    encode_parquet(&recs, &seal).unwrap()
}

/// `b`'s rows and seal written with other Parquet settings (no compression): the same
/// batch under the same name, other bytes.
fn reencoded(b: &SealedBatch) -> Bytes {
    let (seal, recs) = read_batch(&b.path, b.bytes.clone()).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(vec![
            parquet::file::metadata::KeyValue::new("gco.schema_version".into(), "1".to_string()),
            parquet::file::metadata::KeyValue::new("gco.seal".into(), seal.to_json()),
        ]))
        .build();
    let batch = gco_ledger::record::to_record_batch(&recs).unwrap();
    let mut buf = Vec::new();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    Bytes::from(buf)
}

/// The server process (stderr to a file, read by the log checks); killed on drop.
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(store: &str, dir: &Path, name: &str, args: &[&str]) -> Server {
    let log = dir.join(format!("{name}.log"));
    let mut child = gco()
        .args([
            "--store",
            store,
            "--json",
            "-vv",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        panic!(
            "{e}: {line:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    Server {
        child,
        url: v["listening"].as_str().unwrap().to_string(),
        log,
    }
}

/// `gco serve key create --scope SCOPE`: the token, shown once.
fn create_key(store: &str, scope: &str) -> String {
    let out = gco()
        .args(["--store", store, "--json", "serve", "key", "create"])
        .args(["--scope", scope, "--name", &format!("test {scope}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["scope"], scope);
    v["key"].as_str().unwrap().to_string()
}

struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    async fn post(&self, token: Option<&str>, body: Bytes) -> (u16, Value) {
        let mut r = self
            .http
            .post(format!("{}/api/v1/batches", self.url))
            .header("content-type", "application/vnd.apache.parquet")
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, token: Option<&str>, path: &str) -> reqwest::Response {
        let mut r = self.http.get(format!("{}{path}", self.url));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    /// Posts a batch that must be refused: 422 with exactly these problem codes.
    async fn refused(&self, token: &str, body: Bytes, codes: &[&str], what: &str) {
        let (status, v) = self.post(Some(token), body).await;
        assert_eq!(status, 422, "{what}: {v}");
        assert_eq!(v["error"]["code"], "batch_refused", "{what}");
        let mut got: Vec<&str> = v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["code"].as_str().unwrap())
            .collect();
        got.sort_unstable();
        got.dedup();
        assert_eq!(got, codes, "{what}: {v}");
    }
}

/// Sealed batches left anywhere under `dir`.
fn parquet_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                parquet_files(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "parquet"))
            }
        })
        .sum()
}

async fn stored_paths(store: &Store) -> Vec<String> {
    store
        .list("records")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.location.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_stores_what_verifies_and_refuses_every_tamper_class() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("store").display());
    let store = Store::open(&url, &Default::default()).unwrap();
    let (k1, k2, k5, k6) = (key(1), key(2), key(5), key(6));
    register_node(&store, "n1", &k1, t0()).await;
    register_node(&store, "n2", &k2, t0()).await;
    // n5's key is valid only from day 2; n6's is revoked from day 2 at noon.
    register_node(&store, "n5", &k5, t0() + DAY_US).await;
    register_node(&store, "n6", &k6, t0()).await;
    revoke(
        &store,
        "n6",
        k6.key_id(),
        t0() + DAY_US + DAY_US / 2,
        "key leaked",
        t0() + 3 * DAY_US,
    )
    .await
    .unwrap();

    let ingest = create_key(&url, "ingest");
    let read = create_key(&url, "read");
    let limited = create_key(&url, "read");
    let config = dir.path().join("gco.toml");
    std::fs::write(
        &config,
        "[serve]\nrate_limit = 1\nrate_burst = 60\nkey_refresh_seconds = 1\n",
    )
    .unwrap();
    let server = start_server(
        &url,
        dir.path(),
        "server",
        &["--config", config.to_str().unwrap()],
    );
    let c = Client {
        http: reqwest::Client::new(),
        url: server.url.clone(),
    };
    let (n1, n2) = (chain(&k1, "n1"), chain(&k2, "n2"));

    // Access: no key, a mistyped key, the wrong scope.
    let (status, v) = c.post(None, n1[0].bytes.clone()).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let mistyped = format!("{}x", &ingest[..ingest.len() - 1]);
    assert_eq!(c.post(Some(&mistyped), n1[0].bytes.clone()).await.0, 401);
    let (status, v) = c.post(Some(&read), n1[0].bytes.clone()).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let r = c.get(None, "/api/v1/runs").await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"].to_str().unwrap(),
        "Bearer realm=\"gco\""
    );
    assert_eq!(c.get(Some(&ingest), "/api/v1/runs").await.status(), 403);
    assert_eq!(c.get(Some(&read), "/api/v1/runs").await.status(), 200);
    assert!(
        stored_paths(&store).await.is_empty(),
        "nothing written by refused requests"
    );

    // The first batch: 201 with its seal's figures; the same bytes again: 200, one object.
    let (status, v) = c.post(Some(&ingest), n1[0].bytes.clone()).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["path"], n1[0].path.as_str());
    assert_eq!(
        (
            v["seq_first"].as_i64(),
            v["seq_last"].as_i64(),
            v["records"].as_i64()
        ),
        (Some(0), Some(9), Some(10))
    );
    // Energy 1000 + i mJ for i = 0..9.
    assert_eq!(v["energy_mj"].as_i64(), Some(10_045));
    assert_eq!(v["created"], true);
    let (status, v) = c.post(Some(&ingest), n1[0].bytes.clone()).await;
    assert_eq!((status, v["created"].as_bool()), (200, Some(false)));
    assert_eq!(stored_paths(&store).await, vec![n1[0].path.clone()]);
    assert_eq!(store.get(&n1[0].path).await.unwrap(), n1[0].bytes);

    // The same batch under the same name with other bytes: 409, the stored one kept.
    let (status, v) = c.post(Some(&ingest), reencoded(&n1[0])).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{v}"
    );
    assert_eq!(store.get(&n1[0].path).await.unwrap(), n1[0].bytes);

    // Chain position: day 3 before day 2 is a gap; then both in order.
    c.refused(&ingest, n1[2].bytes.clone(), &["chain_gap"], "gap")
        .await;
    assert_eq!(c.post(Some(&ingest), n1[1].bytes.clone()).await.0, 201);
    assert_eq!(c.post(Some(&ingest), n1[2].bytes.clone()).await.0, 201);

    // A second successor of n1's first batch, validly signed: a fork.
    let (seal0, _) = read_batch(&n1[0].path, n1[0].bytes.clone()).unwrap();
    let after0 = ChainHead {
        node_id: "n1".into(),
        next_seq: 10,
        prev_batch_hash: seal0.batch_hash_bytes().unwrap(),
    };
    let mut alt = records("n1")[10..15].to_vec();
    alt[0].energy.0 = 1;
    let fork = ChainWriter::new(&k1, after0).seal(alt).unwrap().remove(0);
    c.refused(&ingest, fork.bytes.clone(), &["chain_fork"], "fork")
        .await;
    // A batch re-using sequence numbers 5.. after another predecessor: a replay.
    let mid = ChainHead {
        node_id: "n1".into(),
        next_seq: 5,
        prev_batch_hash: [7u8; 32],
    };
    let replay = ChainWriter::new(&k1, mid)
        .seal(records("n1")[0..3].to_vec())
        .unwrap()
        .remove(0);
    c.refused(&ingest, replay.bytes.clone(), &["chain_overlap"], "replay")
        .await;
    // n2 continues from a batch that is not its predecessor: a broken link.
    assert_eq!(c.post(Some(&ingest), n2[0].bytes.clone()).await.0, 201);
    let wrong_prev = ChainHead {
        node_id: "n2".into(),
        next_seq: 10,
        prev_batch_hash: [7u8; 32],
    };
    let unlinked = ChainWriter::new(&k2, wrong_prev)
        .seal(records("n2")[10..20].to_vec())
        .unwrap()
        .remove(0);
    c.refused(
        &ingest,
        unlinked.bytes.clone(),
        &["chain_broken_link"],
        "link",
    )
    .await;
    // The first batch of a node must follow genesis.
    let n6_late = chain(&k6, "n6");
    let not_genesis = ChainWriter::new(
        &k6,
        ChainHead {
            node_id: "n6".into(),
            next_seq: 0,
            prev_batch_hash: [9u8; 32],
        },
    )
    .seal(records("n6")[0..5].to_vec())
    .unwrap()
    .remove(0);
    c.refused(
        &ingest,
        not_genesis.bytes.clone(),
        &["chain_broken_link"],
        "genesis",
    )
    .await;

    // Rows changed under an intact seal (n2's day 2, which the chain would accept).
    let b = &n2[1];
    let cases: Vec<(&str, Bytes, Vec<&str>)> = vec![
        (
            "changed value",
            rewritten(b, |r| r[3].model_id = Some("llama-3.1-70b".into())),
            vec!["merkle_mismatch"],
        ),
        (
            "changed energy",
            rewritten(b, |r| r[0].energy.0 += 1),
            vec!["merkle_mismatch", "seal_mismatch"],
        ),
        (
            "removed row",
            rewritten(b, |r| {
                r.remove(4);
            }),
            vec!["merkle_mismatch", "seal_mismatch", "seq_mismatch"],
        ),
        (
            "inserted row",
            rewritten(b, |r| {
                let mut extra = r[4].clone();
                extra.inference_id = Some("forged".into());
                r.insert(5, extra);
            }),
            vec!["merkle_mismatch", "seal_mismatch", "seq_mismatch"],
        ),
        (
            "reordered rows",
            rewritten(b, |r| r.swap(2, 6)),
            vec!["merkle_mismatch", "seq_mismatch"],
        ),
        (
            "row outside the partition date",
            rewritten(b, |r| {
                r[3].start = t0() - 1;
                r[3].end = t0();
            }),
            vec!["date_mismatch", "merkle_mismatch", "seal_mismatch"],
        ),
        (
            "truncated",
            b.bytes.slice(..b.bytes.len() / 2),
            vec!["not_parquet"],
        ),
        (
            "not Parquet",
            Bytes::from_static(b"id,energy\n1,2\n"),
            vec!["not_parquet"],
        ),
        ("empty body", Bytes::new(), vec!["not_parquet"]),
    ];
    for (what, body, codes) in cases {
        c.refused(&ingest, body, &codes, what).await;
    }
    // The seal changed: its hash and signature no longer hold.
    let (mut seal, recs) = read_batch(&b.path, b.bytes.clone()).unwrap();
    seal.energy_mj -= 500;
    c.refused(
        &ingest,
        encode_parquet(&recs, &seal).unwrap(),
        &["bad_seal", "bad_signature", "seal_mismatch"],
        "seal field",
    )
    .await;
    // Rows, Merkle root and batch hash changed consistently, but not re-signed.
    let (mut seal, mut recs) = read_batch(&b.path, b.bytes.clone()).unwrap();
    recs[0].energy.0 += 1;
    seal.energy_mj += 1;
    let leaves: Vec<_> = recs.iter().map(|r| r.leaf_hash()).collect();
    seal.merkle_root = hex::encode(gco_ledger::hash::merkle_root(&leaves));
    seal.batch_hash = hex::encode(seal.compute_batch_hash().unwrap());
    c.refused(
        &ingest,
        encode_parquet(&recs, &seal).unwrap(),
        &["bad_signature"],
        "not re-signed",
    )
    .await;
    // Re-sealed by a key nobody registered, keeping the chain.
    let (seal, recs) = read_batch(&b.path, b.bytes.clone()).unwrap();
    let head = ChainHead {
        node_id: "n2".into(),
        next_seq: 10,
        prev_batch_hash: seal.prev_hash_bytes().unwrap(),
    };
    let forged = ChainWriter::new(&key(99), head)
        .seal(recs)
        .unwrap()
        .remove(0);
    c.refused(
        &ingest,
        forged.bytes.clone(),
        &["unknown_key"],
        "unregistered key",
    )
    .await;
    // energy_mj as a float column.
    {
        use arrow_array::{Float64Array, RecordBatch};
        use arrow_schema::{DataType, Field, Schema};
        use std::sync::Arc;
        let (seal, recs) = read_batch(&b.path, b.bytes.clone()).unwrap();
        let good = gco_ledger::record::to_record_batch(&recs).unwrap();
        let mut fields: Vec<Field> = good
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[8] = Field::new("energy_mj", DataType::Float64, false);
        let mut cols = good.columns().to_vec();
        cols[8] = Arc::new(Float64Array::from(
            recs.iter().map(|r| r.energy.0 as f64).collect::<Vec<_>>(),
        ));
        let bad = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(
            &mut buf,
            bad.schema(),
            Some(gco_ledger::batch::writer_properties(&seal)),
        )
        .unwrap();
        w.write(&bad).unwrap();
        w.close().unwrap();
        c.refused(&ingest, Bytes::from(buf), &["wrong_schema"], "float energy")
            .await;
    }
    // Keys outside their validity: revoked before the batch ends, not yet valid.
    c.refused(
        &ingest,
        n6_late[2].bytes.clone(),
        &["key_revoked"],
        "revoked key",
    )
    .await;
    let n5 = chain(&k5, "n5");
    c.refused(
        &ingest,
        n5[0].bytes.clone(),
        &["key_out_of_window"],
        "key not yet valid",
    )
    .await;

    // What was accepted, and only that, is in the store, and the ledger verifies.
    let mut expected = vec![
        n1[0].path.clone(),
        n1[1].path.clone(),
        n1[2].path.clone(),
        n2[0].path.clone(),
    ];
    expected.sort();
    assert_eq!(stored_paths(&store).await, expected);
    let out = gco()
        .args(["--store", &url, "--json", "ledger", "verify"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["records"], 40);

    // The collector's view of a node's chain through the gateway.
    let r = c.get(Some(&ingest), "/api/v1/nodes/n1/chain").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let (seal2, _) = read_batch(&n1[2].path, n1[2].bytes.clone()).unwrap();
    assert_eq!(v["next_seq"], 30);
    assert_eq!(v["prev_batch_hash"], seal2.batch_hash.as_str());
    assert_eq!(v["keys"], serde_json::json!([k1.key_id()]));

    // Rate limit: 60 at once, then 429 with Retry-After, for that key only.
    let mut statuses = Vec::new();
    for _ in 0..70 {
        let r = c.get(Some(&limited), "/api/v1/runs").await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(r.headers()["retry-after"].to_str().unwrap(), "1");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "rate_limited");
            break;
        }
    }
    let ok = statuses.iter().take_while(|s| **s == 200).count();
    assert!(
        (60..70).contains(&ok) && statuses.last() == Some(&429),
        "{statuses:?}"
    );
    assert_eq!(c.get(Some(&read), "/api/v1/runs").await.status(), 200);

    // Ingestion outcomes in /metrics: 4 created, 1 present, 1 conflict, 20 refused.
    let metrics = c.get(None, "/metrics").await.text().await.unwrap();
    for (outcome, n) in [
        ("created", 4),
        ("present", 1),
        ("conflict", 1),
        ("refused", 20),
    ] {
        let line = format!("gco_ingest_batches_total{{outcome=\"{outcome}\"}} {n}");
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }

    // A revoked key is refused once the server rereads the keys (every second here).
    let id = &read[4..20];
    let out = gco()
        .args(["--store", &url, "--json", "serve", "key", "revoke", id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = gco()
        .args(["--store", &url, "--json", "serve", "key", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    let keys: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 3);
    for token in [&ingest, &read, &limited] {
        assert!(!listed.contains(&token[21..]), "a listing shows no secret");
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(c.get(Some(&read), "/api/v1/runs").await.status(), 401);

    // A read-only server refuses writes whatever the key.
    let ro = start_server(&url, dir.path(), "read-only", &["--read-only"]);
    let c_ro = Client {
        http: reqwest::Client::new(),
        url: ro.url.clone(),
    };
    let (status, v) = c_ro.post(Some(&ingest), n2[1].bytes.clone()).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("read_only"))
    );
    drop(ro);
    drop(server);

    // No token, nor its secret part, in either log at debug verbosity; key ids are there.
    for log in [
        dir.path().join("server.log"),
        dir.path().join("read-only.log"),
    ] {
        let text = std::fs::read_to_string(&log).unwrap();
        for token in [&ingest, &read, &limited, &mistyped] {
            assert!(
                !text.contains(&token[21..]),
                "{}: a key's secret is in the log",
                log.display()
            );
        }
    }
    let text = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(
        text.contains(&ingest[4..20]),
        "the access log names the key id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_delivers_through_the_gateway_without_store_access() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("store").display());
    let store = Store::open(&url, &Default::default()).unwrap();
    let signer = KeyFileSigner::generate(KeyType::Ed25519).unwrap();
    let key_path = dir.path().join("gw.key");
    write_private_key_file(&key_path, &signer).unwrap();
    register_node(&store, "gw-node", &signer, t0()).await;
    let ingest = create_key(&url, "ingest");
    let server = start_server(&url, dir.path(), "server", &[]);

    // The collector gets no --store: a store it could reach would be a bucket path.
    let mut collector = gco()
        .args([
            "--json",
            "--store",
            "file:///nonexistent/no-access",
            "collect",
        ])
        .args(["--node", "gw-node", "--simulate", "1", "--key"])
        .arg(&key_path)
        .arg("--spool")
        .arg(dir.path().join("spool"))
        .args([
            "--sample-interval",
            "10ms",
            "--seal-max-age",
            "200ms",
            "--idle-window",
            "1s",
        ])
        .args(["--span-listen", "127.0.0.1:0", "--upload-backoff-max", "1s"])
        .args(["--upload-url", &server.url])
        .env("GCO_UPLOAD_KEY", &ingest)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("collector.log")).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(collector.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        panic!(
            "{e}: {line:?}\n{}",
            std::fs::read_to_string(dir.path().join("collector.log")).unwrap_or_default()
        )
    });
    assert_eq!(ready["event"], "ready");
    assert_eq!(ready["store"], format!("{}/", server.url));
    let api = ready["span_api"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    for i in 0..12 {
        let id = format!("gw-{i:02}");
        let r = http
            .post(format!("{api}/v1/spans"))
            .body(format!("{{\"inference_id\":\"{id}\",\"model\":\"m1\"}}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = http
            .post(format!("{api}/v1/spans/{id}/end"))
            .body("{\"prompt_tokens\":5,\"completion_tokens\":7}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = Command::new("kill")
        .args(["-TERM", &collector.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(collector.wait().unwrap().success());
    assert_eq!(
        parquet_files(&dir.path().join("spool")),
        0,
        "the spool is drained"
    );

    // Every span is in the store exactly once, and the ledger verifies.
    let mut ids = Vec::new();
    let paths = stored_paths(&store).await;
    assert!(!paths.is_empty());
    for p in &paths {
        let (_, recs) = read_batch(p, store.get(p).await.unwrap()).unwrap();
        ids.extend(recs.into_iter().filter_map(|r| r.inference_id));
    }
    ids.sort();
    assert_eq!(
        ids,
        (0..12).map(|i| format!("gw-{i:02}")).collect::<Vec<_>>()
    );
    let out = gco()
        .args(["--store", &url, "--json", "ledger", "verify"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let metrics = http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!(
        "gco_ingest_batches_total{{outcome=\"created\"}} {}",
        paths.len()
    );
    assert!(metrics.contains(&line), "{line}\n{metrics}");
    let log = std::fs::read_to_string(dir.path().join("collector.log")).unwrap()
        + &std::fs::read_to_string(&server.log).unwrap();
    assert!(!log.contains(&ingest[21..]), "the key's secret is in a log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("store").display());
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let read = create_key(&url, "read");
    let server = start_server(
        &url,
        dir.path(),
        "tls",
        &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    let port = server.url.rsplit(':').next().unwrap().to_string();
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    for version in [
        reqwest::tls::Version::TLS_1_3,
        reqwest::tls::Version::TLS_1_2,
    ] {
        let http = reqwest::Client::builder()
            .tls_certs_only([root.clone()])
            .min_tls_version(version)
            .max_tls_version(version)
            .resolve("localhost", format!("127.0.0.1:{port}").parse().unwrap())
            .build()
            .unwrap();
        let base = format!("https://localhost:{port}");
        let r = http.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{version:?}");
        let r = http
            .get(format!("{base}/api/v1/runs"))
            .bearer_auth(&read)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "{\"runs\":[]}");
    }
    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    // A key file that is not a key: the error names the file, not its content.
    let bad = dir.path().join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXRoaW5n\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = gco()
        .args(["--store", &url, "serve", "--listen", "127.0.0.1:0"])
        .args([
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.pem") && !err.contains("c2VjcmV0"),
        "{err}"
    );
}
