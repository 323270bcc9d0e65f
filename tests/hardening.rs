//! The ways a hostile or careless user could make gco publish wrong figures with exit
//! code 0, each driven through the binary: concurrent writers, repeated inputs,
//! magnitudes past 64 bits, empty inputs and retried or interrupted commands.

use std::path::Path;
use std::process::{Command as Std, Stdio};

use assert_cmd::Command;
use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

fn gco(store: &Path) -> Command {
    let mut c = Command::cargo_bin("gco").unwrap();
    c.arg("--store").arg(format!("file://{}", store.display()));
    c.env_remove("GCO_STORE").env_remove("GCO_CONFIG");
    c
}

/// Asserts that a command exited 0, showing its stderr when it did not.
fn succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

/// A registered node-a with a P-256 key file.
fn node(dir: &Path, store: &Path) -> std::path::PathBuf {
    let key = dir.join("node-a.key");
    gco(store)
        .args(["keys", "generate", "--algorithm", "p256", "--out"])
        .arg(&key)
        .assert()
        .success();
    gco(store)
        .args([
            "node",
            "register",
            "--node",
            "node-a",
            "--zone",
            "FR",
            "--site",
            "paris-dc1",
        ])
        .args([
            "--valid-from",
            "2026-10-01",
            "--now",
            "2026-10-01T00:00:00Z",
            "--public-key",
        ])
        .arg(key.with_extension("key.pub"))
        .assert()
        .success();
    key
}

fn import_cmd(store: &Path, key: &Path, input: &Path) -> Std {
    let mut c = Std::cargo_bin("gco").unwrap();
    c.env_remove("GCO_STORE").env_remove("GCO_CONFIG");
    c.arg("--store")
        .arg(format!("file://{}", store.display()))
        .args([
            "--json",
            "ledger",
            "import",
            "--node",
            "node-a",
            "--as-of",
            "2026-11-01T00:00:00Z",
            "--key",
        ])
        .arg(key)
        .arg("--input")
        .arg(input);
    c
}

#[test]
fn two_concurrent_imports_of_one_file_leave_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ledger");
    let key = node(dir.path(), &store);
    let input = dir.path().join("import.jsonl");
    std::fs::copy("tests/data/import.jsonl", &input).unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            import_cmd(&store, &key, &input)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut accepted = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        succeeded(&out);
        let v = json(&out.stdout);
        assert_eq!(v["rows"], 5);
        accepted.push(v["accepted"].as_u64().unwrap());
    }
    accepted.sort();
    // One import took the two good rows (an inference and an idle interval); the other
    // waited for the node's lease and found both already in the ledger.
    assert_eq!(accepted, [0, 2]);
    // Each quarantine went to its own file, none overwritten.
    assert!(dir.path().join("import.jsonl.quarantine.jsonl").exists());
    assert!(dir.path().join("import.jsonl.quarantine-2.jsonl").exists());
    let out = gco(&store)
        .args(["--json", "ledger", "verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = json(&out.stdout);
    assert_eq!(v["records"], 2);
    assert_eq!(v["energy_mj"], 350_000 + 252_000_000);

    // A third import, now in sequence: the idle interval is refused as a repeat too.
    let out = import_cmd(&store, &key, &input).output().unwrap();
    let v = json(&out.stdout);
    assert_eq!(
        (v["accepted"].as_u64(), v["quarantined"].as_u64()),
        (Some(0), Some(5))
    );
    let q = std::fs::read_to_string(dir.path().join("import.jsonl.quarantine-3.jsonl")).unwrap();
    assert!(q.contains("the idle interval 2026-10-05T11:00:00.000000Z .. 2026-10-05T12:00:00.000000Z of GPUs [\\\"0\\\", \\\"1\\\"] is already in the ledger"), "{q}");
    assert!(
        q.contains("inference_id \\\"j-1\\\" is already in the ledger"),
        "{q}"
    );
    // An explicit quarantine path that exists is refused before anything is written.
    let out = import_cmd(&store, &key, &input)
        .arg("--quarantine")
        .arg(dir.path().join("import.jsonl.quarantine.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exists; name another with --quarantine")
    );
}

#[test]
fn implausible_magnitudes_are_quarantined_and_the_month_is_unaffected() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ledger");
    let key = node(dir.path(), &store);
    let input = dir.path().join("big.jsonl");
    let long_model = "m".repeat(300);
    std::fs::write(
        &input,
        [
            r#"{"inference_id": "ok-1", "model_id": "llama", "start": "2026-10-05T10:00:00Z", "end": "2026-10-05T10:00:02Z", "energy_mj": 600000, "gpus": ["0"]}"#.to_string(),
            // 6e18 mJ with an empty GPU list: the power bound still applies.
            r#"{"inference_id": "huge", "model_id": "llama", "start": "2026-10-05T10:00:00Z", "end": "2026-10-05T10:00:02Z", "energy_mj": 6000000000000000000, "gpus": []}"#.to_string(),
            format!(r#"{{"inference_id": "long", "model_id": "{long_model}", "start": "2026-10-05T10:00:00Z", "end": "2026-10-05T10:00:02Z", "energy_mj": 1000, "gpus": ["0"]}}"#),
            r#"{"inference_id": "ctl", "model_id": "a\u0007b", "start": "2026-10-05T10:00:00Z", "end": "2026-10-05T10:00:02Z", "energy_mj": 1000, "gpus": ["0"]}"#.to_string(),
        ]
        .join("\n"),
    )
    .unwrap();
    let out = import_cmd(&store, &key, &input).output().unwrap();
    succeeded(&out);
    let v = json(&out.stdout);
    assert_eq!(
        (v["accepted"].as_u64(), v["quarantined"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(v["energy_mj"], 600_000);
    let q = std::fs::read_to_string(dir.path().join("big.jsonl.quarantine.jsonl")).unwrap();
    let reasons: Vec<String> = q
        .lines()
        .map(|l| json(l.as_bytes())["reasons"].to_string())
        .collect();
    assert!(reasons[0].contains("gpus is empty"), "{}", reasons[0]);
    assert!(
        reasons[0].contains("exceeds the plausible 2000 W per GPU"),
        "{}",
        reasons[0]
    );
    assert!(
        reasons[1].contains("model_id is 300 bytes long, more than 256"),
        "{}",
        reasons[1]
    );
    assert!(
        reasons[2].contains("model_id contains control characters"),
        "{}",
        reasons[2]
    );
}

#[test]
fn an_empty_store_is_not_a_month_of_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("empty");
    let out = gco(&store)
        .args([
            "--json",
            "run",
            "--period",
            "2026-10",
            "--as-of",
            "2026-11-01T00:00:00Z",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out.stdout)["outcome"], "empty");
    assert!(!store.join("runs").exists(), "nothing is published");
    let out = gco(&store)
        .args([
            "--json",
            "backfill",
            "--from",
            "2026-09",
            "--to",
            "2026-10",
            "--as-of",
            "2026-11-01T00:00:00Z",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!store.join("runs").exists());
    // Asked for, an empty month is written (and says 0 records).
    let out = gco(&store)
        .args([
            "--json",
            "run",
            "--period",
            "2026-10",
            "--as-of",
            "2026-11-01T00:00:00Z",
            "--allow-empty",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out.stdout);
    assert_eq!(
        (v["outcome"].as_str(), v["version"].as_u64()),
        (Some("created"), Some(1))
    );
    assert_eq!(v["summary"]["coverage"]["records_accounted"], 0);
}

/// A demo store of 1 day, 1 node (its run published as version 1).
fn demo(dir: &Path) -> std::path::PathBuf {
    let d = dir.join("demo");
    let out = Command::cargo_bin("gco")
        .unwrap()
        .env_remove("GCO_STORE")
        .args([
            "--json",
            "demo",
            "--days",
            "1",
            "--nodes",
            "1",
            "--peak-rate",
            "5",
            "--dir",
        ])
        .arg(&d)
        .output()
        .unwrap();
    succeeded(&out);
    d
}

fn run_cmd(d: &Path, extra: &[&str]) -> Std {
    let mut c = Std::cargo_bin("gco").unwrap();
    c.env_remove("GCO_STORE")
        .arg("--config")
        .arg(d.join("gco.toml"))
        .args([
            "--json",
            "run",
            "--period",
            "2026-10",
            "--as-of",
            "2100-01-01T00:00:00Z",
        ])
        .args(extra);
    c
}

/// Every output a manifest lists exists with its SHA-256.
fn assert_complete(d: &Path, version: u32) {
    let m: Value = serde_json::from_slice(
        &std::fs::read(d.join(format!(
            "runs/period=2026-10/version={version:04}/manifest.json"
        )))
        .unwrap(),
    )
    .unwrap();
    let outputs = m["outputs"].as_array().unwrap();
    assert!(!outputs.is_empty());
    for o in outputs {
        let p = d.join(o["path"].as_str().unwrap());
        let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let sha = hex_sha(&bytes);
        assert_eq!(o["sha256"].as_str(), Some(sha.as_str()), "{}", p.display());
    }
}

fn hex_sha(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn racing_runs_never_publish_a_version_that_lacks_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = demo(dir.path());
    let children: Vec<_> = (0..3)
        .map(|_| {
            run_cmd(&d, &["--force"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut versions = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        succeeded(&out);
        versions.push(json(&out.stdout)["version"].as_u64().unwrap());
    }
    versions.sort();
    // One writer at a time: three whole versions after the demo's.
    assert_eq!(versions, [2, 3, 4]);
    for v in 1..=4 {
        assert_complete(&d, v);
    }
    // The leases were released: a run now starts at once and finds its inputs done.
    let out = run_cmd(&d, &["--lock-wait", "0s"]).output().unwrap();
    succeeded(&out);
    assert_eq!(json(&out.stdout)["outcome"], "up_to_date");
}

#[test]
fn a_retried_merge_or_shard_after_publishing_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let d = demo(dir.path());
    for i in 0..2 {
        let out = run_cmd(&d, &["--force", "--shard", &format!("{i}/2")])
            .output()
            .unwrap();
        succeeded(&out);
    }
    let out = run_cmd(&d, &["--merge"]).output().unwrap();
    succeeded(&out);
    // The demo's version already has exactly these inputs: nothing to merge.
    assert_eq!(json(&out.stdout)["outcome"], "up_to_date");
    for extra in [["--merge"].as_slice(), ["--shard", "1/2"].as_slice()] {
        let out = run_cmd(&d, extra).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(json(&out.stdout)["outcome"], "up_to_date", "{extra:?}");
    }
    assert_complete(&d, 1);
}

#[test]
fn an_interrupted_audit_package_reruns_to_a_verifiable_package() {
    let dir = tempfile::tempdir().unwrap();
    let d = demo(dir.path());
    let zip = dir.path().join("out/audit.zip");
    // What a package killed while writing left: its scratch file, never the zip.
    std::fs::create_dir_all(zip.parent().unwrap()).unwrap();
    std::fs::write(
        dir.path().join("out/.audit.zip.partial-999999"),
        b"PK\x03\x04 half",
    )
    .unwrap();
    let package = || {
        Command::cargo_bin("gco")
            .unwrap()
            .env_remove("GCO_STORE")
            .arg("--config")
            .arg(d.join("gco.toml"))
            .args(["audit", "package", "--period", "2026-10", "--issuer-dir"])
            .arg(d.join("issuer"))
            .arg("--out")
            .arg(&zip)
            .output()
            .unwrap()
    };
    let out = package();
    succeeded(&out);
    let first = std::fs::read(&zip).unwrap();
    // A rerun (a retried job) is a no-op: same bytes.
    let out = package();
    succeeded(&out);
    assert_eq!(std::fs::read(&zip).unwrap(), first);
    let out = Command::cargo_bin("gco")
        .unwrap()
        .args(["audit", "verify"])
        .arg(&zip)
        .arg("--did-document")
        .arg(d.join("did.json"))
        .output()
        .unwrap();
    succeeded(&out);
    let names: Vec<String> = std::fs::read_dir(zip.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains(&format!("partial-{}", std::process::id())))
    );
}

/// An S3 endpoint that accepts connections and never answers fails the command in
/// bounded time; without credentials the instance metadata endpoint is not asked.
#[test]
fn a_hung_s3_endpoint_fails_in_bounded_time_and_no_metadata_endpoint_is_asked() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s); // read nothing, answer nothing
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gco.toml");
    std::fs::write(&config, "[store_options]\ntimeout = \"1s\"\n").unwrap();
    let s3 = |c: &mut Command| {
        c.env_remove("GCO_STORE")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_METADATA_ENDPOINT")
            .env("AWS_ENDPOINT", format!("http://127.0.0.1:{port}"))
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .arg("--config")
            .arg(&config)
            .args(["--store", "s3://bucket/ledger", "ledger", "verify"]);
    };
    let started = std::time::Instant::now();
    let mut c = Command::cargo_bin("gco").unwrap();
    s3(&mut c);
    let out = c
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < std::time::Duration::from_secs(40), "{took:?}");
    let mut c = Command::cargo_bin("gco").unwrap();
    s3(&mut c);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no S3 credentials"), "{err}");
}

/// Concurrent revocations rewrite one status list: under the certificates lease none
/// of their bits is lost.
#[test]
fn concurrent_revocations_each_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let d = demo(dir.path());
    let mut creds = aggregate_jwts(&d);
    creds.truncate(4);
    assert_eq!(creds.len(), 4);
    let children: Vec<_> = creds
        .iter()
        .map(|(id, _)| {
            let mut c = Std::cargo_bin("gco").unwrap();
            c.env_remove("GCO_STORE")
                .arg("--config")
                .arg(d.join("gco.toml"))
                .args([
                    "vc", "revoke", id, "--period", "2026-10", "--reason", "restated",
                ])
                .args(["--now", "2026-11-26T00:00:00Z", "--issuer-dir"])
                .arg(d.join("issuer"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        succeeded(&out);
    }
    for (id, token) in &creds {
        assert_revoked(&d, id, token);
    }
}

/// The demo's aggregate VC-JOSE credentials: (id, token).
fn aggregate_jwts(d: &Path) -> Vec<(String, String)> {
    use arrow_array::cast::AsArray;
    let bytes =
        std::fs::read(d.join("certificates/period=2026-10/version=0001/aggregates.parquet"))
            .unwrap();
    let mut creds = Vec::new();
    for b in parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes),
    )
    .unwrap()
    .build()
    .unwrap()
    {
        let b = b.unwrap();
        let col = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let (id, format, doc) = (col("id"), col("format"), col("document"));
        for i in 0..b.num_rows() {
            if format.value(i) == "vc-jwt" {
                creds.push((id.value(i).to_string(), doc.value(i).to_string()));
            }
        }
    }
    creds
}

/// `gco vc verify` of `token` against the demo's ledger says revoked (exit 1).
fn assert_revoked(d: &Path, id: &str, token: &str) {
    let f = d.join("token.jwt");
    std::fs::write(&f, token).unwrap();
    let out = Command::cargo_bin("gco")
        .unwrap()
        .env_remove("GCO_STORE")
        .arg("--config")
        .arg(d.join("gco.toml"))
        .args(["--json", "vc", "verify"])
        .arg(&f)
        .arg("--did-document")
        .arg(d.join("did.json"))
        .arg("--ledger")
        .arg(format!("file://{}", d.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{id}");
    let v = json(&out.stdout);
    assert_eq!(v["code"], "revoked", "{id}: {v}");
}

/// A revocation killed after it stored its record and before it rewrote the status
/// list: the rerun (another time, another reason) completes it and keeps the first
/// record.
#[test]
fn a_revocation_killed_before_the_status_list_was_written_completes_on_rerun() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let d = demo(dir.path());
    let (id, token) = aggregate_jwts(&d).remove(0);
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let status = &claims["credentialStatus"];
    let list = status["statusListCredential"].as_str().unwrap();
    let index: usize = status["statusListIndex"].as_str().unwrap().parse().unwrap();
    let list_name = list.rsplit('/').next().unwrap();
    let record_path = d.join(format!(
        "certificates/period=2026-10/version=0001/revocations/{list_name}-{index:010}.json"
    ));
    std::fs::create_dir_all(record_path.parent().unwrap()).unwrap();
    let first = serde_json::json!({
        "already_revoked": false, "id": id, "index": index, "reason": "first try",
        "revoked_at": "2026-11-25T00:00:00Z", "status_list": list,
    });
    std::fs::write(&record_path, serde_json::to_vec_pretty(&first).unwrap()).unwrap();
    let out = Command::cargo_bin("gco")
        .unwrap()
        .env_remove("GCO_STORE")
        .arg("--config")
        .arg(d.join("gco.toml"))
        .args(["--json", "vc", "revoke", &id, "--period", "2026-10"])
        .args([
            "--reason",
            "second try",
            "--now",
            "2026-11-26T00:00:00Z",
            "--issuer-dir",
        ])
        .arg(d.join("issuer"))
        .output()
        .unwrap();
    succeeded(&out);
    let v = json(&out.stdout);
    assert_eq!(
        (v["reason"].as_str(), v["already_revoked"].as_bool()),
        (Some("first try"), Some(false))
    );
    let stored: Value = serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    assert_eq!(stored, first);
    assert_revoked(&d, &id, &token);
}

/// An import that fails (here: a column import does not read) lets go of the node's
/// lease at once: the next import need not wait for it to expire.
#[test]
fn a_failed_import_releases_the_nodes_lease() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ledger");
    let key = node(dir.path(), &store);
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "inference_id,watts\nr-1,5\n").unwrap();
    let out = import_cmd(&store, &key, &bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown column"));
    let input = dir.path().join("import.jsonl");
    std::fs::copy("tests/data/import.jsonl", &input).unwrap();
    let out = import_cmd(&store, &key, &input)
        .args(["--lock-wait", "0s"])
        .output()
        .unwrap();
    succeeded(&out);
    assert_eq!(json(&out.stdout)["accepted"], 2);
}

#[test]
fn zero_limits_are_usage_errors_not_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let collect = ["collect", "--node", "n1", "--key", "k"];
    let import = [
        "ledger", "import", "--input", "x.csv", "--node", "n1", "--key", "k",
    ];
    for (command, flag, zero) in [
        (&collect[..], "--seal-max-records", "0"),
        (&collect[..], "--idle-window", "0s"),
        (&collect[..], "--max-span", "0s"),
        (&import[..], "--max-batch-records", "0"),
        (&import[..], "--max-gpu-watts", "0"),
    ] {
        let out = gco(&store)
            .args(command)
            .args([flag, zero])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {zero}: {err}");
        assert!(err.contains(flag), "{flag} {zero}: {err}");
    }
    // Nothing was written.
    assert!(!store.exists());
}
