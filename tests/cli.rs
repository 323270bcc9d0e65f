//! End-to-end tests that drive the `gco` binary like a user: keys, registry, import with
//! quarantine, stats, verify (including a tampered store) and the demo.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn gco(store: &Path) -> Command {
    let mut c = Command::cargo_bin("gco").unwrap();
    c.arg("--store").arg(format!("file://{}", store.display()));
    c.env_remove("GCO_STORE").env_remove("GCO_CONFIG");
    c
}

fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

/// Generates a key and registers node `node` valid from 2026-10-01.
fn setup_node(dir: &Path, store: &Path, node: &str, alg: &str) -> std::path::PathBuf {
    let key = dir.join(format!("{node}.key"));
    let out = gco(store)
        .args(["--json", "keys", "generate", "--algorithm", alg, "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out.stdout);
    assert_eq!(v["key_id"].as_str().unwrap().len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    gco(store)
        .args([
            "node",
            "register",
            "--node",
            node,
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

#[test]
fn import_quarantines_bad_rows_and_reconciles() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ledger");
    let key = setup_node(dir.path(), &store, "node-a", "p256");
    let input = dir.path().join("import.csv");
    std::fs::copy("tests/data/import.csv", &input).unwrap();
    let out = gco(&store)
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
        .arg(&key)
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out.stdout);
    assert_eq!(v["rows"], 11);
    assert_eq!(v["accepted"], 4);
    assert_eq!(v["quarantined"], 7);
    // 600000 + 1050000 + 20000000 + 1200000
    assert_eq!(v["energy_mj"], 22_850_000);
    // Two dates (10-05 and 10-06) -> two batches.
    assert_eq!(v["batches_created"], 2);

    let q = std::fs::read_to_string(dir.path().join("import.csv.quarantine.jsonl")).unwrap();
    let q: Vec<Value> = q
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reasons: Vec<(u64, String)> = q
        .iter()
        .map(|v| {
            (
                v["row"].as_u64().unwrap(),
                v["reasons"][0].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // File line numbers (the header is line 1).
    let expect = [
        (5, "end 2026-10-05T10:01:59.000000Z is before start"),
        (6, "energy_mj -5 is negative"),
        (7, "exceeds the plausible 2000 W per GPU"),
        (
            8,
            "duplicate inference_id \"req-002\", first seen at line 3",
        ),
        (9, "is in the future"),
        (
            10,
            "start: \"2026-10-05T10:06:00\" is not an RFC 3339 timestamp",
        ),
        (
            11,
            "energy_mj must be an integer number of millijoules, found \"12.5\"",
        ),
    ];
    assert_eq!(reasons.len(), expect.len());
    for ((row, why), (erow, ewhy)) in reasons.iter().zip(expect) {
        assert_eq!(*row, erow);
        assert!(why.contains(ewhy), "row {row}: {why:?} lacks {ewhy:?}");
    }
    assert_eq!(q[0]["input"]["inference_id"], "req-004");

    // Importing the same file again accepts nothing new: every id is already there.
    let out = gco(&store)
        .args([
            "--json",
            "ledger",
            "import",
            "--node",
            "node-a",
            "--as-of",
            "2026-11-01T00:00:00Z",
            "--strict",
            "--key",
        ])
        .arg(&key)
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "--strict exits 1 when rows were quarantined"
    );
    let v = json(&out.stdout);
    assert_eq!(
        (v["accepted"].as_u64(), v["quarantined"].as_u64()),
        (Some(0), Some(11))
    );

    // A JSON Lines file continues the same chain.
    let out = gco(&store)
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
        .arg(&key)
        .args(["--input", "tests/data/import.jsonl", "--quarantine"])
        .arg(dir.path().join("q.jsonl"))
        .output()
        .unwrap();
    let v = json(&out.stdout);
    assert_eq!(
        (
            v["rows"].as_u64(),
            v["accepted"].as_u64(),
            v["quarantined"].as_u64()
        ),
        (Some(5), Some(2), Some(3))
    );
    assert_eq!(v["seq_first"], 4);
    let q = std::fs::read_to_string(dir.path().join("q.jsonl")).unwrap();
    assert!(q.contains("model_id must be a string, found a number"));
    assert!(q.contains("invalid JSON"));

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
    assert_eq!(v["records"], 6);
    assert_eq!(v["energy_mj"], 22_850_000 + 350_000 + 252_000_000);

    let out = gco(&store)
        .args([
            "--json",
            "ledger",
            "stats",
            "--from",
            "2026-10-05",
            "--to",
            "2026-10-05",
        ])
        .output()
        .unwrap();
    let v = json(&out.stdout);
    assert_eq!(v["records"], 5);
    let rows = v["rows"].as_array().unwrap();
    let find = |m: Option<&str>| {
        rows.iter()
            .find(|r| r["model_id"].as_str() == m)
            .unwrap()
            .clone()
    };
    assert_eq!(find(Some("llama-3.1-8b"))["records"], 2);
    assert_eq!(find(Some("llama-3.1-8b"))["energy_mj"], 1_650_000);
    assert_eq!(find(None)["energy_mj"], 252_000_000);
}

#[test]
fn import_refuses_unregistered_key_and_unknown_columns() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ledger");
    let key = setup_node(dir.path(), &store, "node-a", "ed25519");
    let other = dir.path().join("other.key");
    gco(&store)
        .args(["keys", "generate", "--out"])
        .arg(&other)
        .assert()
        .success();
    let out = gco(&store)
        .args([
            "ledger",
            "import",
            "--node",
            "node-a",
            "--input",
            "tests/data/import.csv",
            "--key",
        ])
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not registered for node node-a"));

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "inference_id,energy_j\nx,1\n").unwrap();
    let out = gco(&store)
        .args(["ledger", "import", "--node", "node-a", "--key"])
        .arg(&key)
        .arg("--input")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown column(s) [\"energy_j\"]"));
    assert!(!store.join("records").exists(), "nothing written");
}

#[test]
fn demo_is_reproducible_and_verify_catches_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let run = || {
        let out = Command::cargo_bin("gco")
            .unwrap()
            .env_remove("GCO_STORE")
            .args([
                "--json", "demo", "--days", "2", "--nodes", "2", "--seed", "7", "--dir",
            ])
            .arg(&d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json(&out.stdout)
    };
    let first = run();
    assert_eq!(first["verified"], true);
    // Exact figures for seed 7: the simulation is deterministic. 96 node-hours, plus a
    // batch per node where a day's last idle rows follow the next day's first records,
    // plus the final idle rows sealed at shutdown.
    assert_eq!(first["batches"], 100);
    assert_eq!(first["batches_created"], 100);
    assert_eq!(first["requests"], 18_965);
    assert_eq!(first["requests_after_period"], 1);
    assert_eq!(first["inferences"], 18_965);
    // One idle/overhead row per GPU per hour: 2 nodes x 8 GPUs x 48 h.
    assert_eq!(first["idle_records"], 768);
    assert_eq!(first["records"], 19_733);
    assert_eq!(first["inference_energy_mj"], 66_670_742_730i64);
    assert_eq!(first["idle_energy_mj"], 187_917_688_039i64);
    assert_eq!(first["energy_mj"], 254_588_430_769i64);
    let second = run();
    assert_eq!(second["batches_created"], 0);
    assert_eq!(second["batches_already_present"], 100);
    assert_eq!(second["bytes"], first["bytes"]);

    // Flip one byte in the middle of one batch: verify exits 1 and names the object.
    let day = d.join("records/date=2026-10-02/node=demo-node-02");
    let victim = std::fs::read_dir(&day)
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&victim, bytes).unwrap();
    let out = gco(&d)
        .args(["--json", "ledger", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out.stdout);
    assert_eq!(v["ok"], false);
    let name = victim.file_name().unwrap().to_str().unwrap();
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["object"].as_str().unwrap().ends_with(name)),
        "{v}"
    );
    assert_eq!(v["batches_valid"], 99);
}

#[test]
fn node_registry_lists_and_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ledger");
    let key = setup_node(dir.path(), &store, "node-r", "rsa3072");
    let out = gco(&store)
        .args(["--json", "keys", "show"])
        .arg(&key)
        .output()
        .unwrap();
    let key_id = json(&out.stdout)["key_id"].as_str().unwrap().to_string();
    let out = gco(&store)
        .args(["--json", "node", "list"])
        .output()
        .unwrap();
    let v = json(&out.stdout);
    assert_eq!(v["keys"][0]["node_id"], "node-r");
    assert_eq!(v["keys"][0]["algorithm"], "RS256");
    assert_eq!(v["keys"][0]["key_id"], key_id.as_str());
    gco(&store)
        .args([
            "node",
            "revoke",
            "--node",
            "node-r",
            "--key-id",
            &key_id,
            "--reason",
            "decommissioned",
        ])
        .args([
            "--effective-at",
            "2026-10-15T00:00:00Z",
            "--now",
            "2026-10-15T00:00:00Z",
        ])
        .assert()
        .success();
    let v = json(
        &gco(&store)
            .args(["--json", "node", "list"])
            .output()
            .unwrap()
            .stdout,
    );
    assert_eq!(v["keys"][0]["revoked_at"], "2026-10-15T00:00:00.000000Z");
    // A zone the catalog does not know is refused with the closest ids.
    let out = gco(&store)
        .args([
            "node",
            "register",
            "--node",
            "node-z",
            "--zone",
            "US-CAL",
            "--site",
            "x",
            "--public-key",
        ])
        .arg(key.with_extension("key.pub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown zone \"US-CAL\"; closest:") && err.contains("US-CA"),
        "{err}"
    );
    // Revoking a key the node never had is a usage error.
    let out = gco(&store)
        .args([
            "node", "revoke", "--node", "node-r", "--key-id", "00", "--reason", "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A private key never appears in output.
    let out = gco(&store)
        .args(["keys", "show"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("PRIVATE"));
}

#[test]
fn bad_store_url_is_a_usage_error() {
    let out = Command::cargo_bin("gco")
        .unwrap()
        .args(["--store", "ftp://x/y", "ledger", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported scheme \"ftp\""));
}

/// With `--json`, a failed command also prints one object on stdout whose `code` is the
/// library's stable code (docs/errors.md), through the binary's own context.
#[test]
fn json_errors_carry_the_libraries_stable_codes() {
    let d = tempfile::tempdir().unwrap();
    let failed = |args: &[&str]| {
        let out = gco(d.path()).arg("--json").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        json(&out.stdout)["error"].clone()
    };
    let out = d.path().join("out");
    let e = failed(&[
        "report",
        "csrd",
        "--period",
        "2026-10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(e["code"], "not_found", "{e}");
    assert_eq!(
        e["message"],
        format!(
            "no emissions run for 2026-10 in file://{}: run `gco run --period YYYY-MM` (or `gco backfill`) first",
            d.path().display()
        )
    );
    let e = failed(&["report", "ai-act", "--model", "m", "--period", "2026-1x"]);
    assert_eq!(e["code"], "usage", "{e}");
    assert_eq!(
        (&e["message"], &e["causes"]),
        (
            &Value::from("--period \"2026-1x\": a year (2026) or a month (2026-10)"),
            &serde_json::json!(["period \"2026-1x\" is not a month YYYY-MM"])
        )
    );
    let out = Command::cargo_bin("gco")
        .unwrap()
        .args(["--json", "--store", "ftp://x/y", "ledger", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json(&out.stdout)["error"]["code"], "store_url");
}
#[test]
fn grid_show_answers_offline_with_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ledger");
    let show = |zone: &str| {
        let out = gco(&store)
            .args([
                "--json",
                "grid",
                "show",
                "--at",
                "2026-10-01T12:00:00Z",
                "--zone",
                zone,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{zone}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        json(&out.stdout)
    };
    let fr = show("FR");
    assert_eq!(
        (
            fr["value_mg_per_kwh"].as_i64(),
            fr["fallback_level"].as_str()
        ),
        (Some(56_039), Some("country_annual"))
    );
    assert_eq!(fr["data_time"], "2023-01-01T00:00:00.000000Z");
    assert_eq!(show("IS")["value_mg_per_kwh"], 27_680);
    let camx = show("US-EGRID-CAMX");
    assert_eq!(
        (
            camx["value_mg_per_kwh"].as_i64(),
            camx["fallback_level"].as_str(),
            camx["basis"].as_str()
        ),
        (Some(225_636), Some("regional_annual"), Some("direct"))
    );
    assert_eq!(show("gcp:europe-west1")["value_mg_per_kwh"], 122_000);
    let bc = show("CA-BC");
    assert_eq!(bc["fallback_level"], "regional_annual");

    let out = gco(&store)
        .args(["grid", "show", "--zone", "FRA", "--at", "2026-10-01"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown zone \"FRA\"; closest: FR"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The demo's synthetic series is found in the cache: level 0, marked synthetic.
    let d = dir.path().join("demo");
    Command::cargo_bin("gco")
        .unwrap()
        .env_remove("GCO_STORE")
        .args(["demo", "--days", "1", "--nodes", "1", "--dir"])
        .arg(&d)
        .assert()
        .success();
    let out = gco(&d)
        .args([
            "--json",
            "grid",
            "show",
            "--zone",
            "FR",
            "--at",
            "2026-10-01T12:30:00Z",
        ])
        .output()
        .unwrap();
    let v = json(&out.stdout);
    assert_eq!(
        (
            v["fallback_level"].as_str(),
            v["source"].as_str(),
            v["data_period"].as_str()
        ),
        (Some("provider_measured"), Some("synthetic"), Some("PT1H"))
    );
}

/// `gco run` over the demo's ledger: the same ledger, configuration and --as-of give
/// byte-identical outputs with one Polars thread and with the default pool; a rerun is
/// a no-op.
#[test]
fn run_is_byte_identical_across_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for (name, threads) in [("a", Some("1")), ("b", None)] {
        let d = dir.path().join(name);
        let demo = Command::cargo_bin("gco")
            .unwrap()
            .env_remove("GCO_STORE")
            .args([
                "--json", "demo", "--days", "2", "--nodes", "2", "--seed", "3", "--dir",
            ])
            .arg(&d)
            .output()
            .unwrap();
        assert!(
            demo.status.success(),
            "{}",
            String::from_utf8_lossy(&demo.stderr)
        );
        let v = json(&demo.stdout);
        assert_eq!(v["emissions"][0]["period"], "2026-10");
        assert_eq!(v["emissions"][0]["result"]["outcome"], "created");
        let run = || {
            let mut c = Command::cargo_bin("gco").unwrap();
            c.env_remove("GCO_STORE")
                .env_remove("POLARS_MAX_THREADS")
                .arg("--config")
                .arg(d.join("gco.toml"))
                .args([
                    "--json",
                    "run",
                    "--period",
                    "2026-10",
                    "--as-of",
                    "2100-01-01T00:00:00Z",
                ]);
            if let Some(t) = threads {
                c.env("POLARS_MAX_THREADS", t);
            }
            c.output().unwrap()
        };
        // The demo's own run has these inputs already: nothing to do.
        let out = run();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(json(&out.stdout)["outcome"], "up_to_date");
        let forced = Command::cargo_bin("gco")
            .unwrap()
            .env_remove("GCO_STORE")
            .envs(threads.map(|t| ("POLARS_MAX_THREADS", t)))
            .arg("--config")
            .arg(d.join("gco.toml"))
            .args([
                "--json",
                "run",
                "--period",
                "2026-10",
                "--as-of",
                "2100-01-01T00:00:00Z",
                "--force",
            ])
            .output()
            .unwrap();
        assert!(
            forced.status.success(),
            "{}",
            String::from_utf8_lossy(&forced.stderr)
        );
        let v = json(&forced.stdout);
        assert_eq!(v["version"], 2);
        let mut files = std::collections::BTreeMap::new();
        for sub in [
            "emissions/period=2026-10",
            "runs/period=2026-10/version=0002",
        ] {
            for e in walk(&d.join(sub)) {
                let rel = e.strip_prefix(&d).unwrap().to_string_lossy().to_string();
                files.insert(rel, std::fs::read(&e).unwrap());
            }
        }
        outputs.push(files);
    }
    assert_eq!(outputs[0].len(), 2 * (2 + 6) + 1, "{:?}", outputs[0].keys());
    assert_eq!(outputs[0], outputs[1]);
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
