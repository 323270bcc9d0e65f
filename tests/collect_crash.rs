//! `gco collect` killed with SIGKILL while spans are in flight, restarted on the same
//! spool three times, then stopped with SIGTERM: every span whose end was acknowledged
//! is in the verified ledger exactly once, and no record appears twice.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gco_ledger::keys::{KeyType, write_private_key_file};
use gco_ledger::{KeyFileSigner, Signer, Store};

fn gco() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gco"));
    c.env_remove("GCO_STORE").env_remove("GCO_CONFIG");
    c
}

/// Starts the collector; returns the child and its span API base URL.
fn start(store: &str, key: &Path, spool: &Path) -> (Child, String) {
    let mut child = gco()
        .args([
            "--store",
            store,
            "--json",
            "collect",
            "--node",
            "crash-node",
            "--simulate",
            "2",
        ])
        .arg("--key")
        .arg(key)
        .arg("--spool")
        .arg(spool)
        .args([
            "--sample-interval",
            "10ms",
            "--seal-max-age",
            "200ms",
            "--idle-window",
            "1s",
        ])
        .args(["--span-listen", "127.0.0.1:0", "--upload-backoff-max", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(ready["event"], "ready");
    (child, ready["span_api"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_lose_no_acknowledged_span() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger");
    let store_url = format!("file://{}", ledger.display());
    let key = dir.path().join("crash-node.key");
    let signer = KeyFileSigner::generate(KeyType::Ed25519).unwrap();
    write_private_key_file(&key, &signer).unwrap();
    let pub_path = dir.path().join("crash-node.pub");
    std::fs::write(&pub_path, signer.public_key().to_pem()).unwrap();
    let st = gco()
        .args([
            "--store",
            &store_url,
            "node",
            "register",
            "--node",
            "crash-node",
            "--zone",
            "FR",
        ])
        .args([
            "--site",
            "paris",
            "--valid-from",
            "2026-01-01",
            "--now",
            "2026-01-01T00:00:00Z",
        ])
        .arg("--public-key")
        .arg(&pub_path)
        .status()
        .unwrap();
    assert!(st.success());
    let spool = dir.path().join("spool");
    let client = reqwest::Client::new();
    let mut acked: Vec<String> = Vec::new();
    let mut left_open: Vec<String> = Vec::new();
    for round in 0..4 {
        let (mut child, api) = start(&store_url, &key, &spool);
        // Spans left open by the previous incarnation survive the crash: end them now.
        for id in left_open.drain(..) {
            let r = client
                .post(format!("{api}/v1/spans/{id}/end"))
                .body("{\"completion_tokens\":3}")
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                200,
                "span {id} opened before the kill is still open"
            );
            acked.push(id);
        }
        for i in 0..40 {
            let id = format!("r{round}-s{i}");
            let r = client
                .post(format!("{api}/v1/spans"))
                .body(format!(
                    "{{\"inference_id\":\"{id}\",\"model\":\"m{}\"}}",
                    i % 3
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            if i % 10 == 9 {
                left_open.push(id);
                continue;
            }
            let r = client
                .post(format!("{api}/v1/spans/{id}/end"))
                .body("{\"prompt_tokens\":5,\"completion_tokens\":7}")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            acked.push(id);
            tokio::time::sleep(Duration::from_millis(5 + (i % 7) * 3)).await;
        }
        if round < 3 {
            // SIGKILL: no handler runs, nothing is flushed or sealed on the way out.
            child.kill().unwrap();
            child.wait().unwrap();
        } else {
            for id in left_open.drain(..) {
                client
                    .post(format!("{api}/v1/spans/{id}/end"))
                    .send()
                    .await
                    .unwrap();
                acked.push(id);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let st = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(st.success());
            let status = child.wait().unwrap();
            assert!(status.success(), "{status:?}");
        }
    }
    assert_eq!(acked.len(), 160);
    let store = Store::open(&store_url, &Default::default()).unwrap();
    let mut count: HashMap<String, u32> = HashMap::new();
    let mut seqs = Vec::new();
    for m in store.list("records").await.unwrap() {
        let p = m.location.to_string();
        let (_, recs) = gco_ledger::batch::read_batch(&p, store.get(&p).await.unwrap()).unwrap();
        for r in recs {
            seqs.push(r.seq);
            if let Some(id) = r.inference_id {
                *count.entry(id).or_default() += 1;
            }
        }
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "no record twice, no gap"
    );
    for id in &acked {
        assert_eq!(count.get(id), Some(&1), "acknowledged span {id}");
    }
    assert!(count.values().all(|&n| n == 1));
    let st = gco()
        .args(["--store", &store_url, "ledger", "verify"])
        .status()
        .unwrap();
    assert!(st.success(), "the ledger verifies after three kills");
}
