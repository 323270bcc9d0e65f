//! VC-JOSE issuance on one core: a per-inference credential built as gco issues it
//! (`gco_credentials::shape`: subject, ledger evidence with a 16-hash inclusion proof,
//! run evidence), serialised and signed as a compact `vc+jwt` JWS, EdDSA and ES256; plus verification. Each
//! timed pass follows a warm-up; the serialisation and signature rows show their shares.
//! Each EdDSA row is timed over several passes (default 5): the median and the spread,
//! since a shared VM's speed moves between passes.
//!
//! `cargo bench -p gco-credentials --bench vc_jose [-- COUNT [PASSES]]`; figures in
//! docs/benchmarks.md with the machine they ran on.

use std::time::Instant;

use gco_credentials::issuer::Signer;
use gco_credentials::jose::Jws;
use gco_credentials::key::{IssuerKey, KeyKind};
use gco_credentials::shape::{
    Credential, Figure, Hex32, HexList, InferenceCredential, InferenceGranularity,
    InferenceSubject, InferenceSubjectType, LedgerEvidence, LedgerEvidenceType, RunEvidence,
    StatusEntry,
};
use gco_credentials::vc;
use rand::SeedableRng;

/// The inputs of one per-inference credential, as the run holds them before issuing.
struct Row {
    id: String,
    inference_id: String,
    seq: u64,
    start: String,
    end: String,
    leaf: [u8; 32],
    proof: Vec<[u8; 32]>,
}

fn row(i: u64) -> Row {
    let h = |k: u64| {
        let mut out = [0u8; 32];
        for (j, c) in out.chunks_mut(8).enumerate() {
            c.copy_from_slice(
                &(k + j as u64)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .to_le_bytes(),
            );
        }
        out
    };
    Row {
        id: format!("urn:gco:credential:{:032x}", i),
        inference_id: format!("{:032x}", i * 7919),
        seq: i,
        start: "2026-10-03T12:00:00.123456Z".into(),
        end: "2026-10-03T12:00:01.523456Z".into(),
        leaf: h(i),
        proof: (0..16).map(|k| h(i + k)).collect(),
    }
}

const STATUS_LIST: &str = "https://carbon.example.com/status/2026-10/0001/inferences";
const BATCH: &str = "records/date=2026-10-03/node=gpu-node-03/00000000000000100000-00000000000000140000-0123456789abcdef.parquet";
const HASH: &str = "b7c1a5f0e4d3c2b1a09f8e7d6c5b4a392817f6e5d4c3b2a1908f7e6d5c4b3a29";

/// The credential as `gco run --credentials` builds it (`gco_credentials::shape`).
fn credential<'a>(r: &'a Row, signature: &'a str) -> InferenceCredential<'a> {
    let fig = |v: i64| Figure(Some(v));
    Credential::new(
        &r.id,
        "did:web:carbon.example.com",
        "2026-11-03T02:00:00Z",
        StatusEntry {
            list: STATUS_LIST,
            index: r.seq,
        },
        InferenceSubject {
            embodied_ng: fig(1110),
            end: &r.end,
            facility_energy_mj: fig(546_875),
            granularity: InferenceGranularity,
            inference_id: &r.inference_id,
            intensity_mg_per_kwh: fig(45_391),
            it_energy_mj: fig(437_500),
            location_based_ng: fig(6895),
            marginal_ng: Figure(None),
            market_based_ng: fig(0),
            model: Some("llama-3.1-8b-instruct"),
            model_version: Some("2024-07"),
            node_id: "gpu-node-03",
            organisation: "Acme AI",
            period: "2026-10",
            sci_ng: fig(8005),
            scope: "scope2",
            seq: r.seq,
            start: &r.start,
            kind: InferenceSubjectType,
            zone: "FR",
        },
        (
            LedgerEvidence {
                batch: BATCH,
                batch_hash: HASH,
                inclusion_proof: HexList(&r.proof),
                leaf_hash: Hex32(&r.leaf),
                leaf_index: r.seq % 40_000,
                merkle_root: HASH,
                node_key_id: "0123456789abcdef0123456789abcdef",
                node_signature: signature,
                signature_algorithm: "EdDSA",
                tree_size: 40_000,
                kind: LedgerEvidenceType,
            },
            RunEvidence::new("runs/period=2026-10/version=0001/manifest.json", HASH, 1),
        ),
    )
}

/// Times `passes` runs of `f` over `n` credentials; returns the rates, credentials/s.
fn rates(passes: usize, n: u64, mut f: impl FnMut()) -> Vec<f64> {
    (0..passes)
        .map(|_| {
            let t = Instant::now();
            f();
            n as f64 / t.elapsed().as_secs_f64()
        })
        .collect()
}

/// One table row: the median rate, and the spread when there was more than one pass.
fn row_out(what: &str, n: u64, mut r: Vec<f64>) {
    r.sort_by(f64::total_cmp);
    let median = r[r.len() / 2];
    let spread = if r.len() > 1 {
        format!(" ({:.0}-{:.0})", r[0], r[r.len() - 1])
    } else {
        String::new()
    };
    println!("| {what} | {n} | {} | {median:.0}{spread} |", r.len());
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u64>().ok());
    let n = args.next().unwrap_or(20_000);
    let passes = args.next().unwrap_or(5) as usize;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let rows: Vec<Row> = (0..n).map(row).collect();
    let node_signature = "A".repeat(86);
    println!("| operation | credentials | passes | per second, 1 core: median (min-max) |");
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
        let alg = signer.alg;
        // ES256 is five times slower and not a target: one pass.
        let passes = if kind == KeyKind::Ed25519 { passes } else { 1 };
        let sign = |r: &Row| vc::sign_vc_jwt(&signer, &credential(r, &node_signature));
        // Warm-up: the first pass otherwise also pays the page faults of fresh token memory.
        for r in rows.iter().take(2_000) {
            std::hint::black_box(sign(r).expect("sign"));
        }
        let mut size = 0;
        let r = rates(passes, n, || {
            for r in &rows {
                let c = credential(r, &node_signature);
                size = std::hint::black_box(serde_json::to_vec(&c).expect("json")).len();
            }
        });
        row_out(
            &format!("build and serialise the JSON alone ({size} B)"),
            n,
            r,
        );
        if kind == KeyKind::Ed25519 {
            // What the issuance did before the typed shape: a serde_json::Value per credential.
            let r = rates(passes, n, || {
                for r in &rows {
                    let v = serde_json::to_value(credential(r, &node_signature)).expect("value");
                    std::hint::black_box(serde_json::to_vec(&v).expect("json"));
                }
            });
            row_out("the same through a serde_json::Value", n, r);
        }
        let mut tokens = Vec::new();
        let r = rates(passes, n, || {
            tokens = rows.iter().map(|r| sign(r).expect("sign")).collect();
        });
        row_out(
            &format!("**sign vc+jwt {alg}** (build, serialise, base64url, sign)"),
            n,
            r,
        );
        // The share of that which is the signature alone, over the same signing inputs.
        let inputs: Vec<&str> = tokens
            .iter()
            .map(|t| &t[..t.rfind('.').unwrap_or(0)])
            .collect();
        let avg = inputs.iter().map(|i| i.len()).sum::<usize>() / inputs.len().max(1);
        let r = rates(passes, n, || {
            for i in &inputs {
                std::hint::black_box(signer.key.sign(alg, i.as_bytes()).expect("sign"));
            }
        });
        row_out(
            &format!("signature alone {alg} ({avg} B signing input)"),
            n,
            r,
        );
        let r = rates(passes.min(3), n, || {
            for tok in &tokens {
                let j = Jws::parse(tok).expect("parse");
                j.verify(signer.key.public()).expect("verify");
            }
        });
        row_out(&format!("verify vc+jwt {alg}"), n, r);
    }
}
