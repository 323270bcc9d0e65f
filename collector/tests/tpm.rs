//! The TPM signer against a software TPM (swtpm, started by scripts/test; its TCTI in
//! GCO_TEST_TCTI). A batch sealed by the registered TPM key verifies; one sealed by
//! another TPM key fails.
#![cfg(feature = "tpm")]

use gco_collector::tpm::TpmSigner;
use gco_ledger::registry::{Registration, register};
use gco_ledger::verify::{VerifyOptions, verify};
use gco_ledger::{
    Algorithm, ChainHead, ChainWriter, Measurement, Millijoules, Record, RecordKind, Signer, Store,
};

fn tcti() -> String {
    std::env::var("GCO_TEST_TCTI").expect(
        "GCO_TEST_TCTI is not set: the tpm tests need a running swtpm (scripts/test starts one), \
         e.g. GCO_TEST_TCTI=swtpm:host=127.0.0.1,port=2321",
    )
}

fn records(node: &str) -> Vec<Record> {
    (0..5)
        .map(|i| Record {
            seq: 0,
            kind: RecordKind::Inference,
            inference_id: Some(format!("tpm-{i}")),
            node_id: node.into(),
            model_id: Some("m".into()),
            model_version: None,
            start: 1_790_812_800_000_000 + i * 1_000_000,
            end: 1_790_812_800_000_000 + i * 1_000_000 + 500_000,
            energy: Millijoules(1000 + i),
            measurement: Measurement::EnergyCounter,
            gpus: vec!["0".into()],
            prompt_tokens: None,
            completion_tokens: None,
        })
        .collect()
}

#[tokio::test]
async fn tpm_signed_batches_verify_and_another_tpm_key_fails() {
    let a = TpmSigner::open(&tcti(), "node-a").unwrap();
    // Re-derived from the fixed template: the same key every time.
    let a2 = TpmSigner::open(&tcti(), "node-a").unwrap();
    assert_eq!(a.key_id(), a2.key_id());
    drop(a2);
    let b = TpmSigner::open(&tcti(), "node-b").unwrap();
    assert_ne!(a.key_id(), b.key_id());
    assert_eq!(a.algorithm(), Algorithm::EcdsaP256);

    let c = TpmSigner::open(&tcti(), "node-c").unwrap();
    let store = Store::memory();
    for (node, key) in [("tpm-node-1", &a), ("tpm-node-2", &c)] {
        register(
            &store,
            &Registration {
                node_id: node.into(),
                public_key: key.public_key().clone(),
                zone: "DE".into(),
                site: "fra".into(),
                valid_from: 0,
                valid_to: None,
            },
            0,
        )
        .await
        .unwrap();
    }
    let mut w = ChainWriter::new(&a, ChainHead::genesis("tpm-node-1")).with_max_batch_records(2);
    let good = w.seal(records("tpm-node-1")).unwrap();
    assert_eq!(good.len(), 3);
    for bt in &good {
        store.put_batch(bt).await.unwrap();
    }
    let report = verify(&store, &VerifyOptions::default()).await.unwrap();
    assert!(report.ok, "{:?}", report.problems);
    assert_eq!(report.records_valid, 5);

    // Node 2 is registered with TPM key c, but its batches are signed by TPM key b.
    let mut w = ChainWriter::new(&b, ChainHead::genesis("tpm-node-2"));
    for bt in w.seal(records("tpm-node-2")).unwrap() {
        store.put_batch(&bt).await.unwrap();
    }
    let report = verify(&store, &VerifyOptions::default()).await.unwrap();
    assert!(!report.ok);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.object.contains("node=tpm-node-2")),
        "{:?}",
        report.problems
    );
    assert!(
        report
            .problems
            .iter()
            .all(|p| !p.object.contains("node=tpm-node-1"))
    );
}
