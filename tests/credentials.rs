//! Credentials end to end through the binary: the demo issues them; `certificate show`
//! finds one inference's credentials; `vc verify` accepts them with the whole evidence
//! chain and refuses a changed claim, a wrong key, a broken inclusion proof and a
//! revoked credential; issuing again is a no-op; `run --credentials` issues a new run.

mod common;

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn gco(store: &Path) -> Command {
    let mut c = Command::cargo_bin("gco").unwrap();
    c.arg("--store").arg(format!("file://{}", store.display()));
    c.env_remove("GCO_STORE")
        .env_remove("GCO_CONFIG")
        .env_remove("GCO_ISSUER_DIR");
    c
}

fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

fn ok(out: std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out.stdout)
}

/// `gco --json vc verify` on `input`: (exit code, report).
/// `gco demo` of one day and one node into `d`.
fn demo(d: &Path, seed: u32, peak_rate: u32, extra: &[&str]) -> Value {
    let (seed, rate) = (seed.to_string(), peak_rate.to_string());
    ok(Command::cargo_bin("gco")
        .unwrap()
        .env_remove("GCO_STORE")
        .args([
            "--json", "demo", "--days", "1", "--nodes", "1", "--seed", &seed,
        ])
        .args(["--peak-rate", &rate])
        .args(extra)
        .arg("--dir")
        .arg(d)
        .output()
        .unwrap())
}

fn verify(d: &Path, input: &str, extra: &[&str]) -> (i32, Value) {
    let did = d.join("did.json");
    let out = gco(d)
        .args([
            "--json",
            "vc",
            "verify",
            input,
            "--did-document",
            did.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), json(&out.stdout))
}

#[test]
fn demo_credentials_verify_and_every_tampering_fails() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let demo = demo(&d, 3, 40, &["--legacy"]);
    // Exact counts for seed 3: per inference 3 formats, 5 model-days + 5 model-months
    // (4 models and idle) + 1 organisation-month, each in 2 formats.
    let inferences = demo["inferences"].as_u64().unwrap();
    let c = &demo["credentials"][0];
    assert_eq!(c["member_inferences"].as_u64().unwrap(), inferences);
    assert_eq!(
        c["credentials"]["inference/vc-jwt"].as_u64().unwrap(),
        inferences
    );
    assert_eq!(
        c["credentials"]["inference/vc-di"].as_u64().unwrap(),
        inferences
    );
    assert_eq!(
        c["credentials"]["inference/legacy"].as_u64().unwrap(),
        inferences
    );
    assert_eq!(c["credentials"]["model_day/vc-jwt"], 5);
    assert_eq!(c["credentials"]["model_month/vc-di"], 5);
    assert_eq!(c["credentials"]["organisation_month/vc-jwt"], 1);
    assert_eq!(demo["credentials_sample_verified"], 5);

    // Lookup by inference id: one credential per format.
    let iid = common::middle_inference_id(&d);
    let shown = ok(gco(&d)
        .args(["--json", "certificate", "show", &iid])
        .output()
        .unwrap());
    let shown = shown.as_array().unwrap();
    let formats: Vec<&str> = shown
        .iter()
        .map(|s| s["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["vc-jwt", "vc-di", "legacy"]);
    let doc = |f: &str| {
        shown.iter().find(|s| s["format"] == f).unwrap()["document"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let missing = gco(&d)
        .args(["certificate", "show", "no-such-inference"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));

    // Valid in every format, with the chain down to the node's batch.
    let ledger = format!("file://{}", d.display());
    for f in ["vc-jwt", "vc-di", "legacy"] {
        let (code, r) = verify(&d, &doc(f), &["--ledger", &ledger]);
        assert_eq!(code, 0, "{f}: {r}");
        assert_eq!(r["format"], f);
        if f != "legacy" {
            let checked = r["checked"].as_array().unwrap();
            assert!(
                checked
                    .iter()
                    .any(|c| c.as_str().unwrap().contains("node signature")),
                "{r}"
            );
            assert_eq!(r["credential_subject"]["inferenceId"], iid.as_str());
        }
    }
    // Without a status source the check is refused rather than skipped silently.
    let (code, r) = verify(&d, &doc("vc-jwt"), &[]);
    assert_eq!((code, r["code"].as_str()), (1, Some("usage")), "{r}");

    // A changed claim: the signature fails.
    let token = doc("vc-jwt");
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["credentialSubject"]["locationBasedNg"] = "1".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    let (code, r) = verify(&d, &forged, &["--ledger", &ledger]);
    assert_eq!(
        (code, r["code"].as_str()),
        (1, Some("bad_signature")),
        "{r}"
    );

    // A wrong key: another issuer's DID document under the same DID.
    let other = dir.path().join("other");
    ok(gco(&d)
        .args([
            "--json",
            "issuer",
            "init",
            "--domain",
            "carbon.demo.example",
            "--now",
            "2026-11-01T00:00:00Z",
            "--issuer-dir",
        ])
        .arg(&other)
        .output()
        .unwrap());
    let other_did = dir.path().join("other-did.json");
    assert!(
        gco(&d)
            .args(["issuer", "did", "--issuer-dir"])
            .arg(&other)
            .arg("--out")
            .arg(&other_did)
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = gco(&d)
        .args([
            "--json",
            "vc",
            "verify",
            &token,
            "--ledger",
            &ledger,
            "--did-document",
        ])
        .arg(&other_did)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        json(&out.stdout)["error"]
            .as_str()
            .unwrap()
            .contains("no verification method"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A broken inclusion proof, even when properly signed by the issuer, fails.
    let issuer = gco_credentials::Issuer::load(&d.join("issuer")).unwrap();
    let signer = issuer.signer(gco_credentials::Purpose::Vc).unwrap();
    let mut broken = claims.clone();
    broken["credentialSubject"]["locationBasedNg"] = serde_json::from_slice::<Value>(
        &b64.decode(parts[1]).unwrap(),
    )
    .unwrap()["credentialSubject"]["locationBasedNg"]
        .clone();
    let proof = broken["evidence"][0]["inclusionProof"]
        .as_array_mut()
        .unwrap();
    proof[0] = Value::String("00".repeat(32));
    let resigned = gco_credentials::vc::sign_vc_jwt(&signer, &broken).unwrap();
    let (code, r) = verify(&d, &resigned, &["--ledger", &ledger]);
    assert_eq!(code, 1, "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("inclusion proof"),
        "{r}"
    );

    // Revoked: gco vc revoke by id, then the same token fails as revoked.
    let id = claims["id"].as_str().unwrap().to_string();
    let rev = ok(gco(&d)
        .args([
            "--json",
            "vc",
            "revoke",
            &id,
            "--period",
            "2026-10",
            "--reason",
            "restated",
            "--now",
            "2026-11-26T00:00:00Z",
            "--issuer-dir",
        ])
        .arg(d.join("issuer"))
        .output()
        .unwrap());
    assert_eq!(rev["already_revoked"], false);
    let (code, r) = verify(&d, &token, &["--ledger", &ledger]);
    assert_eq!((code, r["code"].as_str()), (1, Some("revoked")), "{r}");
    // Another inference's credential stays valid.
    let (code, r) = verify(&d, &shown_other(&d, &iid), &["--ledger", &ledger]);
    assert_eq!(code, 0, "{r}");

    // Issuing the same version again writes nothing.
    let again = ok(gco(&d)
        .args([
            "--json",
            "vc",
            "issue",
            "--period",
            "2026-10",
            "--issuer-dir",
        ])
        .arg(d.join("issuer"))
        .output()
        .unwrap());
    assert_eq!(again["outcome"], "up_to_date");
}

/// The vc-jwt credential of some other inference.
fn shown_other(d: &Path, not: &str) -> String {
    common::inference_credentials(d)
        .into_iter()
        .find(|(k, f, _)| k != not && f == "vc-jwt")
        .unwrap()
        .2
}

#[test]
fn run_with_credentials_issues_aggregates_with_a_did_key_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    // A demo ledger; then a did:key issuer and a forced new run that issues.
    demo(&d, 5, 10, &[]);
    let issuer_dir = dir.path().join("issuer");
    let init = ok(gco(&d)
        .args([
            "--json",
            "issuer",
            "init",
            "--algorithm",
            "p256",
            "--now",
            "2026-11-01T00:00:00Z",
            "--issuer-dir",
        ])
        .arg(&issuer_dir)
        .output()
        .unwrap());
    assert!(init["did"].as_str().unwrap().starts_with("did:key:zDna"));
    let out = ok(gco(&d)
        .args(["--json", "--config"])
        .arg(d.join("gco.toml"))
        .args([
            "run",
            "--period",
            "2026-10",
            "--force",
            "--as-of",
            "2100-01-01T00:00:00Z",
            "--credentials",
            "--issuer-dir",
        ])
        .arg(&issuer_dir)
        .output()
        .unwrap());
    assert_eq!(out["run"]["version"], 2);
    assert_eq!(out["credentials"]["outcome"], "created");
    assert_eq!(
        out["credentials"]["credentials"]["organisation_month/vc-jwt"],
        1
    );
    // vc-di needs Ed25519.
    let refused = gco(&d)
        .args([
            "vc",
            "issue",
            "--period",
            "2026-10",
            "--version",
            "1",
            "--format",
            "vc-di",
            "--issuer-dir",
        ])
        .arg(&issuer_dir)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Ed25519"));
    // The did:key credential verifies with no DID document at all (ES256).
    use arrow_array::cast::AsArray;
    let bytes =
        std::fs::read(d.join("certificates/period=2026-10/version=0002/aggregates.parquet"))
            .unwrap();
    let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes),
    )
    .unwrap()
    .build()
    .unwrap()
    .next()
    .unwrap()
    .unwrap();
    let token = b.column(6).as_string::<i32>().value(0).to_string();
    let out = gco(&d)
        .args([
            "--json",
            "vc",
            "verify",
            &token,
            "--at",
            "2100-01-02T00:00:00Z",
            "--ledger",
        ])
        .arg(format!("file://{}", d.display()))
        .output()
        .unwrap();
    let r = json(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{r}");
    assert!(
        r["verification_method"]
            .as_str()
            .unwrap()
            .starts_with("did:key:zDna")
    );
}
