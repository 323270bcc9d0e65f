//! VC-JOSE issuance on one core: a per-inference credential shaped as gco issues it
//! (subject, ledger evidence with a 16-hash inclusion proof, run evidence), serialised
//! and signed as a compact `vc+jwt` JWS, EdDSA and ES256; plus verification. Each
//! timed pass follows a warm-up; the serialisation and signature rows show their shares.
//!
//! `cargo bench -p gco-credentials --bench vc_jose [-- COUNT]`; figures in
//! docs/benchmarks.md with the machine they ran on.

use std::time::Instant;

use gco_credentials::issuer::Signer;
use gco_credentials::jose::Jws;
use gco_credentials::key::{IssuerKey, KeyKind};
use gco_credentials::vc;
use rand::SeedableRng;
use serde_json::json;

fn credential(i: u64) -> serde_json::Value {
    let h = |k: u64| format!("{:064x}", k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    json!({
        "@context": [vc::VC_CONTEXT, vc::GCO_CONTEXT],
        "id": format!("urn:gco:credential:{:032x}", i),
        "type": ["VerifiableCredential", vc::CREDENTIAL_TYPE],
        "issuer": "did:web:carbon.example.com",
        "validFrom": "2026-11-03T02:00:00Z",
        "credentialSchema": {"id": vc::SCHEMA_ID, "type": "JsonSchema"},
        "credentialStatus": {"id": format!("https://carbon.example.com/status/2026-10/0001/inferences#{i}"),
            "type": "BitstringStatusListEntry", "statusPurpose": "revocation",
            "statusListIndex": i.to_string(), "statusListCredential": "https://carbon.example.com/status/2026-10/0001/inferences"},
        "credentialSubject": {"type": vc::SUBJECT_TYPE, "granularity": "inference", "period": "2026-10",
            "organisation": "Acme AI", "inferenceId": format!("{:032x}", i * 7919), "model": "llama-3.1-8b-instruct",
            "modelVersion": "2024-07", "nodeId": "gpu-node-03", "seq": i, "start": "2026-10-03T12:00:00.123456Z",
            "end": "2026-10-03T12:00:01.523456Z", "zone": "FR", "scope": "scope2", "itEnergyMj": "437500",
            "facilityEnergyMj": "546875", "intensityMgPerKwh": "45391", "locationBasedNg": "6895",
            "marketBasedNg": "0", "marginalNg": null, "embodiedNg": "1110", "sciNg": "8005"},
        "evidence": [{"type": ["LedgerRecordEvidence"], "batch": "records/date=2026-10-03/node=gpu-node-03/00000000000000100000-00000000000000140000-0123456789abcdef.parquet",
            "batchHash": h(1), "merkleRoot": h(2), "nodeKeyId": "0123456789abcdef0123456789abcdef", "signatureAlgorithm": "EdDSA",
            "nodeSignature": "A".repeat(86), "leafHash": h(i), "leafIndex": i % 40_000, "treeSize": 40_000,
            "inclusionProof": (0..16).map(|k| h(i + k)).collect::<Vec<_>>()},
            {"type": ["EmissionsRunEvidence"], "runManifest": "runs/period=2026-10/version=0001/manifest.json", "runManifestSha256": h(3), "runVersion": 1}]
    })
}

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let creds: Vec<_> = (0..n).map(credential).collect();
    println!("| operation | credentials | seconds | per second (1 core) |");
    println!("|---|---:|---:|---:|");
    for kind in [KeyKind::Ed25519, KeyKind::P256] {
        let key = IssuerKey::generate(kind, &mut rng).expect("key");
        let signer = Signer {
            alg: key.public().default_alg(),
            kid: "did:web:carbon.example.com#0123456789abcdef0123456789abcdef".into(),
            multikey_vm: String::new(),
            issuer: "did:web:carbon.example.com".into(),
            key,
        };
        // Warm-up: the first pass otherwise also pays the page faults of fresh token memory.
        for c in creds.iter().take(2_000) {
            std::hint::black_box(vc::sign_vc_jwt(&signer, c).expect("sign"));
        }
        let t = Instant::now();
        let mut total = 0usize;
        for c in &creds {
            total += std::hint::black_box(serde_json::to_vec(c).expect("json")).len();
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "| serialise JSON alone ({} B) | {n} | {s:.3} | {:.0} |",
            total / creds.len().max(1),
            n as f64 / s
        );
        let t = Instant::now();
        let tokens: Vec<String> = creds
            .iter()
            .map(|c| vc::sign_vc_jwt(&signer, c).expect("sign"))
            .collect();
        let s = t.elapsed().as_secs_f64();
        println!(
            "| sign vc+jwt {} | {n} | {s:.3} | {:.0} |",
            signer.alg,
            n as f64 / s
        );
        // The share of that which is the signature alone, over the same signing inputs.
        let inputs: Vec<&str> = tokens
            .iter()
            .map(|t| &t[..t.rfind('.').unwrap_or(0)])
            .collect();
        let t = Instant::now();
        for i in &inputs {
            std::hint::black_box(signer.key.sign(signer.alg, i.as_bytes()).expect("sign"));
        }
        let s = t.elapsed().as_secs_f64();
        let avg = inputs.iter().map(|i| i.len()).sum::<usize>() / inputs.len().max(1);
        println!(
            "| signature only {} ({avg} B input) | {n} | {s:.3} | {:.0} |",
            signer.alg,
            n as f64 / s
        );
        let t = Instant::now();
        for tok in &tokens {
            let j = Jws::parse(tok).expect("parse");
            j.verify(signer.key.public()).expect("verify");
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "| verify vc+jwt {} | {n} | {s:.3} | {:.0} |",
            signer.alg,
            n as f64 / s
        );
    }
}
