//! Every tamper class `gco ledger verify` must detect, each on a small deterministic
//! ledger in memory: 2 nodes, 3 days, batches of 10 records.

use bytes::Bytes;
use gco_ledger::batch::{ChainHead, ChainWriter, SealedBatch, encode_parquet, read_batch, upload};
use gco_ledger::keys::KeyType;
use gco_ledger::registry::{Registration, register, revoke};
use gco_ledger::time::parse_utc;
use gco_ledger::verify::{VerifyOptions, verify};
use gco_ledger::{KeyFileSigner, Record, Signer, Store, VerifyReport};
use rand::SeedableRng;

const DAY_US: i64 = 86_400_000_000;

fn t0() -> i64 {
    parse_utc("2026-10-01T00:00:00Z").unwrap()
}

fn key(seed: u64) -> KeyFileSigner {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    KeyFileSigner::generate_with(KeyType::Ed25519, &mut rng).unwrap()
}

/// 30 records per node: 10 per day, each 2 s long, energy 1000 + i mJ.
fn records(node: &str) -> Vec<Record> {
    gco_ledger::sample::three_days(node, t0())
}

/// Registers `node` with `k`'s public key from `valid_from`.
async fn register_node(
    store: &Store,
    node: &str,
    k: &KeyFileSigner,
    (zone, site): (&str, &str),
    valid_from: i64,
) {
    let reg = Registration {
        node_id: node.into(),
        public_key: k.public_key().clone(),
        zone: zone.into(),
        site: site.into(),
        valid_from,
        valid_to: None,
    };
    register(store, &reg, valid_from.min(t0())).await.unwrap();
}

struct Ledger {
    store: Store,
    /// Batches of node n1 in chain order.
    n1: Vec<SealedBatch>,
    k1: KeyFileSigner,
}

async fn ledger() -> Ledger {
    let store = Store::memory();
    let (k1, k2) = (key(1), key(2));
    for (node, k) in [("n1", &k1), ("n2", &k2)] {
        register_node(&store, node, k, ("FR", "paris"), t0()).await;
    }
    let mut n1 = Vec::new();
    for (node, k) in [("n1", &k1), ("n2", &k2)] {
        let batches = ChainWriter::new(k, ChainHead::genesis(node))
            .seal(records(node))
            .unwrap();
        assert_eq!(batches.len(), 3, "one batch per day");
        upload(&store, &batches, 4, &|_| {}).await.unwrap();
        if node == "n1" {
            n1 = batches;
        }
    }
    Ledger { store, n1, k1 }
}

async fn check(store: &Store) -> VerifyReport {
    verify(store, &VerifyOptions::default()).await.unwrap()
}

/// The (code, object, row) triples of a report.
fn codes(r: &VerifyReport) -> Vec<(&'static str, String, Option<u64>)> {
    r.problems
        .iter()
        .map(|p| (p.code, p.object.clone(), p.row))
        .collect()
}

fn has(r: &VerifyReport, code: &str, object: &str) -> bool {
    r.problems
        .iter()
        .any(|p| p.code == code && p.object == object)
}

/// Rewrites batch `b` with `records` and the original seal.
async fn rewrite(store: &Store, b: &SealedBatch, f: impl FnOnce(&mut Vec<Record>)) {
    let (seal, mut recs) = read_batch(&b.path, b.bytes.clone()).unwrap();
    f(&mut recs);
    let bytes = encode_parquet(&recs, &seal).unwrap();
    store.put_overwrite_for_tests(&b.path, bytes).await.unwrap();
}

#[tokio::test]
async fn clean_ledger_passes_with_exact_totals() {
    let l = ledger().await;
    let r = check(&l.store).await;
    assert!(r.ok, "{:?}", codes(&r));
    assert_eq!(r.objects, 6);
    assert_eq!(r.batches_valid, 6);
    assert_eq!(r.nodes, 2);
    assert_eq!(r.records, 60);
    // 2 nodes x sum(1000 + i for i in 0..30) = 2 x 30435
    assert_eq!(r.energy_mj, 60_870);
    assert_eq!(r.energy_mj_valid, 60_870);
    assert_eq!(r.registry_keys, 2);
}

#[tokio::test]
async fn uploading_a_batch_twice_leaves_one_object() {
    let l = ledger().await;
    let (created, present) = upload(&l.store, &l.n1, 2, &|_| {}).await.unwrap();
    assert_eq!((created, present), (0, 3));
    assert_eq!(l.store.list("records").await.unwrap().len(), 6);
    assert!(check(&l.store).await.ok);
}

#[tokio::test]
async fn changed_value_in_a_row() {
    let l = ledger().await;
    let b = &l.n1[1];
    rewrite(&l.store, b, |r| {
        r[3].model_id = Some("llama-3.1-70b".into())
    })
    .await;
    let r = check(&l.store).await;
    assert_eq!(codes(&r), vec![("merkle_mismatch", b.path.clone(), None)]);
    assert_eq!(r.batches_valid, 5);
    assert_eq!(r.records_valid, 50);

    rewrite(&l.store, &l.n1[2], |r| r[0].energy.0 += 1).await;
    let r = check(&l.store).await;
    assert!(has(&r, "merkle_mismatch", &l.n1[2].path));
    assert!(r.problems.iter().any(|p| p.code == "seal_mismatch"
        && p.message.contains("rows sum to 10246 mJ, seal says 10245")));
}

#[tokio::test]
async fn removed_inserted_and_reordered_rows() {
    for case in ["remove", "insert", "reorder"] {
        let l = ledger().await;
        let b = &l.n1[0];
        rewrite(&l.store, b, |r| match case {
            "remove" => {
                r.remove(4);
            }
            "insert" => {
                let mut extra = r[4].clone();
                extra.inference_id = Some("forged".into());
                r.insert(5, extra);
            }
            _ => r.swap(2, 6),
        })
        .await;
        let r = check(&l.store).await;
        assert!(!r.ok, "{case}");
        assert!(
            has(&r, "merkle_mismatch", &b.path),
            "{case}: {:?}",
            codes(&r)
        );
        let rows: Vec<Option<u64>> = r
            .problems
            .iter()
            .filter(|p| p.code == "seq_mismatch")
            .map(|p| p.row)
            .collect();
        match case {
            "remove" => assert_eq!(rows, (4..9).map(Some).collect::<Vec<_>>()),
            "insert" => assert_eq!(rows, (5..11).map(Some).collect::<Vec<_>>()),
            _ => assert_eq!(rows, vec![Some(2), Some(6)]),
        }
        if case != "reorder" {
            assert!(has(&r, "seal_mismatch", &b.path), "{case}");
        }
    }
}

#[tokio::test]
async fn rows_outside_the_partition_date_are_named() {
    let l = ledger().await;
    let b = &l.n1[0]; // partition date 2026-10-01
    rewrite(&l.store, b, |r| {
        for (i, start) in [
            (3, t0() - 1),          // 2026-09-30T23:59:59.999999Z
            (5, t0() + DAY_US),     // 2026-10-02T00:00:00Z
            (7, t0() + DAY_US - 1), // the day's last microsecond: inside
        ] {
            r[i].start = start;
            r[i].end = start + 1;
        }
    })
    .await;
    let r = check(&l.store).await;
    let rows: Vec<(String, Option<u64>, String)> = r
        .problems
        .iter()
        .filter(|p| p.code == "date_mismatch")
        .map(|p| (p.object.clone(), p.row, p.message.clone()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                b.path.clone(),
                Some(3),
                "start 2026-09-30T23:59:59.999999Z is outside partition date 2026-10-01".into()
            ),
            (
                b.path.clone(),
                Some(5),
                "start 2026-10-02T00:00:00.000000Z is outside partition date 2026-10-01".into()
            ),
        ]
    );
}

#[tokio::test]
async fn removed_batch_in_the_middle_of_a_chain() {
    let l = ledger().await;
    l.store.delete_for_tests(&l.n1[1].path).await.unwrap();
    let r = check(&l.store).await;
    assert_eq!(codes(&r), vec![("chain_gap", l.n1[2].path.clone(), None)]);
    assert!(r.problems[0].message.contains("records 10..19 are missing"));
}

#[tokio::test]
async fn batch_copied_under_another_name_or_node() {
    let l = ledger().await;
    let b = &l.n1[1];
    let renamed = b.path.replace(".parquet", "-copy.parquet");
    l.store.put_create(&renamed, b.bytes.clone()).await.unwrap();
    let r = check(&l.store).await;
    assert!(has(&r, "path_mismatch", &renamed), "{:?}", codes(&r));
    assert!(has(&r, "duplicate_batch", &renamed));
    assert!(
        !r.problems.iter().any(|p| p.object == b.path),
        "the original stays valid"
    );

    let l = ledger().await;
    let moved = l.n1[1].path.replace("node=n1", "node=n2");
    l.store
        .put_create(&moved, l.n1[1].bytes.clone())
        .await
        .unwrap();
    let r = check(&l.store).await;
    assert!(has(&r, "path_mismatch", &moved));
    assert!(has(&r, "duplicate_batch", &moved));
    assert_eq!(r.problems.len(), 2, "{:?}", codes(&r));
}

#[tokio::test]
async fn batch_signed_by_an_unregistered_key() {
    let l = ledger().await;
    // An attacker re-seals day 2 with changed energy under their own key, keeping the chain.
    let (seal, mut recs) = read_batch(&l.n1[1].path, l.n1[1].bytes.clone()).unwrap();
    for r in &mut recs {
        r.energy.0 /= 2;
    }
    let attacker = key(99);
    let head = ChainHead {
        node_id: "n1".into(),
        next_seq: seal.seq_first as u64,
        prev_batch_hash: seal.prev_hash_bytes().unwrap(),
    };
    let forged = ChainWriter::new(&attacker, head)
        .seal(recs)
        .unwrap()
        .remove(0);
    l.store.delete_for_tests(&l.n1[1].path).await.unwrap();
    l.store.put_batch(&forged).await.unwrap();
    let r = check(&l.store).await;
    assert!(has(&r, "unknown_key", &forged.path), "{:?}", codes(&r));
    // The next batch no longer links to it either.
    assert!(
        has(&r, "chain_broken_link", &l.n1[2].path),
        "{:?}",
        codes(&r)
    );
}

#[tokio::test]
async fn tampered_footer() {
    // Seal field changed: the batch hash and signature no longer match.
    let l = ledger().await;
    let b = &l.n1[0];
    let (mut seal, recs) = read_batch(&b.path, b.bytes.clone()).unwrap();
    seal.energy_mj -= 500;
    l.store
        .put_overwrite_for_tests(&b.path, encode_parquet(&recs, &seal).unwrap())
        .await
        .unwrap();
    let r = check(&l.store).await;
    assert!(has(&r, "bad_seal", &b.path), "{:?}", codes(&r));
    assert!(has(&r, "bad_signature", &b.path));
    assert!(has(&r, "seal_mismatch", &b.path));

    // Merkle root and batch hash recomputed consistently, but not re-signed.
    let l = ledger().await;
    let b = &l.n1[0];
    let (mut seal, mut recs) = read_batch(&b.path, b.bytes.clone()).unwrap();
    recs[0].energy.0 += 1;
    seal.energy_mj += 1;
    let leaves: Vec<_> = recs.iter().map(|r| r.leaf_hash()).collect();
    seal.merkle_root = hex::encode(gco_ledger::hash::merkle_root(&leaves));
    seal.batch_hash = hex::encode(seal.compute_batch_hash().unwrap());
    l.store
        .put_overwrite_for_tests(&b.path, encode_parquet(&recs, &seal).unwrap())
        .await
        .unwrap();
    let r = check(&l.store).await;
    assert!(has(&r, "bad_signature", &b.path), "{:?}", codes(&r));
    assert!(has(&r, "chain_broken_link", &l.n1[1].path));

    // Raw bytes of the footer flipped.
    let l = ledger().await;
    let b = &l.n1[2];
    let mut raw = b.bytes.to_vec();
    let n = raw.len();
    raw[n - 20] ^= 0xff;
    l.store
        .put_overwrite_for_tests(&b.path, Bytes::from(raw))
        .await
        .unwrap();
    let r = check(&l.store).await;
    assert!(!r.ok);
    assert!(
        r.problems.iter().any(|p| p.object == b.path),
        "{:?}",
        codes(&r)
    );
}

#[tokio::test]
async fn truncated_or_non_parquet_object() {
    let l = ledger().await;
    let b = &l.n1[0];
    l.store
        .put_overwrite_for_tests(&b.path, b.bytes.slice(..b.bytes.len() / 2))
        .await
        .unwrap();
    let stray = "records/date=2026-10-02/node=n1/00000000000000000099-00000000000000000099-0000000000000000.parquet";
    l.store
        .put_create(stray, Bytes::from_static(b"id,energy\n1,2\n"))
        .await
        .unwrap();
    let r = check(&l.store).await;
    assert!(has(&r, "not_parquet", &b.path), "{:?}", codes(&r));
    assert!(has(&r, "not_parquet", stray));
    // The chain still needs batch 0: its seal is gone with it.
    assert!(has(&r, "chain_gap", &l.n1[1].path));
}

#[tokio::test]
async fn wrong_schema() {
    use arrow_array::{Float64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;
    let l = ledger().await;
    let b = &l.n1[0];
    let (seal, recs) = read_batch(&b.path, b.bytes.clone()).unwrap();
    // energy_mj as a float column, seal kept.
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
    l.store
        .put_overwrite_for_tests(&b.path, Bytes::from(buf))
        .await
        .unwrap();
    let r = check(&l.store).await;
    assert_eq!(codes(&r), vec![("wrong_schema", b.path.clone(), None)]);

    // A footer declaring another schema version.
    let l = ledger().await;
    let b = &l.n1[0];
    let (seal, recs) = read_batch(&b.path, b.bytes.clone()).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(vec![
            parquet::file::metadata::KeyValue::new("gco.schema_version".into(), "2".to_string()),
            parquet::file::metadata::KeyValue::new("gco.seal".into(), seal.to_json()),
        ]))
        .build();
    let batch = gco_ledger::record::to_record_batch(&recs).unwrap();
    let mut buf = Vec::new();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    l.store
        .put_overwrite_for_tests(&b.path, Bytes::from(buf))
        .await
        .unwrap();
    let r = check(&l.store).await;
    assert!(has(&r, "wrong_schema", &b.path), "{:?}", codes(&r));
}

#[tokio::test]
async fn revoked_and_out_of_window_keys() {
    let l = ledger().await;
    // Revoked from day 2, 12:00: batches ending after that fail, day 1 stays valid.
    let at = t0() + DAY_US + DAY_US / 2;
    revoke(
        &l.store,
        "n1",
        l.k1.key_id(),
        at,
        "key leaked",
        t0() + 3 * DAY_US,
    )
    .await
    .unwrap();
    let r = check(&l.store).await;
    assert!(!has(&r, "key_revoked", &l.n1[0].path));
    assert!(
        !has(&r, "key_revoked", &l.n1[1].path),
        "day-2 records end at 00:09, before the revocation"
    );
    assert!(has(&r, "key_revoked", &l.n1[2].path), "{:?}", codes(&r));

    // A node whose key is valid only from day 2: its day-1 batch is out of window.
    let store = Store::memory();
    let k = key(5);
    register_node(&store, "n5", &k, ("DE", "fra"), t0() + DAY_US).await;
    let batches = ChainWriter::new(&k, ChainHead::genesis("n5"))
        .seal(records("n5"))
        .unwrap();
    upload(&store, &batches, 2, &|_| {}).await.unwrap();
    let r = check(&store).await;
    assert_eq!(
        codes(&r),
        vec![("key_out_of_window", batches[0].path.clone(), None)]
    );
}

#[tokio::test]
async fn forks_and_replays() {
    let l = ledger().await;
    // A second, different successor of batch 0 (a fork), validly signed by the node key.
    let (seal0, _) = read_batch(&l.n1[0].path, l.n1[0].bytes.clone()).unwrap();
    let head = ChainHead {
        node_id: "n1".into(),
        next_seq: seal0.seq_last as u64 + 1,
        prev_batch_hash: seal0.batch_hash_bytes().unwrap(),
    };
    let mut alt = records("n1")[10..15].to_vec();
    alt[0].energy.0 = 1;
    let fork = ChainWriter::new(&l.k1, head).seal(alt).unwrap().remove(0);
    l.store.put_batch(&fork).await.unwrap();
    let r = check(&l.store).await;
    let forked: Vec<_> = r
        .problems
        .iter()
        .filter(|p| p.code == "chain_fork")
        .collect();
    assert_eq!(forked.len(), 1, "{:?}", codes(&r));
    assert!(forked[0].object == fork.path || forked[0].object == l.n1[1].path);
}

#[tokio::test]
async fn windowed_verification() {
    let l = ledger().await;
    let opts = VerifyOptions {
        from: Some(chrono::NaiveDate::from_ymd_opt(2026, 10, 2).unwrap()),
        to: Some(chrono::NaiveDate::from_ymd_opt(2026, 10, 2).unwrap()),
        ..Default::default()
    };
    let r = verify(&l.store, &opts).await.unwrap();
    assert!(r.ok, "{:?}", codes(&r));
    assert_eq!((r.objects, r.records), (2, 20));
    // The chain into the window is still checked from the earlier batches' footers.
    l.store.delete_for_tests(&l.n1[0].path).await.unwrap();
    let r = verify(&l.store, &opts).await.unwrap();
    assert_eq!(codes(&r), vec![("chain_gap", l.n1[1].path.clone(), None)]);
}

#[tokio::test]
async fn an_empty_store_or_window_does_not_pass() {
    let r = check(&Store::memory()).await;
    assert_eq!(codes(&r), vec![("no_batches", "records".to_string(), None)]);
    let l = ledger().await;
    let opts = VerifyOptions {
        from: Some(chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()),
        ..Default::default()
    };
    let r = verify(&l.store, &opts).await.unwrap();
    assert!(!r.ok);
    assert_eq!(r.problems[0].code, "no_batches");
}

/// A validly signed chain that holds records twice (a replayed import, a second
/// writer): every signature and link holds, and the repeats are still found, each
/// occurrence after the first named with the first.
#[tokio::test]
async fn records_stored_twice_in_a_valid_chain() {
    let l = ledger().await;
    // n1 appends day 2 (rows 10..19: nine inferences and one idle interval) again,
    // correctly chained and signed after its third batch.
    let again: Vec<Record> = records("n1")[10..20].to_vec();
    let mut w = ChainWriter::new(
        &l.k1,
        gco_ledger::batch::chain_head(&l.store, "n1").await.unwrap(),
    );
    let replay = w.seal(again).unwrap();
    assert_eq!(replay.len(), 1);
    upload(&l.store, &replay, 1, &|_| {}).await.unwrap();
    let r = check(&l.store).await;
    assert!(!r.ok);
    let original = &l.n1[1].path;
    let copy = &replay[0].path;
    let mut found: Vec<(&str, u64)> = r
        .problems
        .iter()
        .map(|p| {
            assert_eq!(&p.object, copy, "{p:?}");
            assert!(
                p.message
                    .contains(&format!("of {original} row {}", p.row.unwrap())),
                "{p:?}"
            );
            (p.code, p.row.unwrap())
        })
        .collect();
    found.sort();
    let mut expected: Vec<(&str, u64)> = (0..9).map(|i| ("duplicate_inference_id", i)).collect();
    expected.push(("duplicate_record", 9));
    expected.sort();
    assert_eq!(found, expected);
    // The copy is not a valid batch; the originals are.
    assert_eq!(r.batches_valid, 6);
    assert_eq!(r.records_valid, 60);
}

/// Energies whose sum passes 2^63 mJ are a problem, never a saturated total.
#[tokio::test]
async fn energy_past_64_bits_is_a_problem() {
    let l = ledger().await;
    let b = &l.n1[0];
    rewrite(&l.store, b, |r| {
        r[0].energy.0 = i64::MAX;
        r[1].energy.0 = i64::MAX;
    })
    .await;
    let r = check(&l.store).await;
    assert!(has(&r, "energy_overflow", &b.path), "{:?}", codes(&r));
    assert!(
        r.problems
            .iter()
            .any(|p| p.code == "energy_overflow" && p.row == Some(1))
    );
}

/// Inputs the fuzzers found that make the Parquet decoder (arrow-rs) panic: the
/// verifier reports them as `not_parquet` and the import refuses them, no panic.
#[test]
fn malformed_parquet_the_decoder_panics_on_is_a_problem_not_a_crash() {
    let registry = gco_ledger::Registry::default();
    // The first is a sealed batch the verifier decodes; the second has no seal (the
    // verifier stops at the footer) and panics the decoder in the import.
    for (name, verifier_code) in [
        ("fuzz-dict-page-without-dictionary.parquet", "not_parquet"),
        ("fuzz-negative-column-offset.parquet", "missing_seal"),
    ] {
        let bytes = std::fs::read(format!("tests/data/{name}")).unwrap();
        let path = "records/date=2026-10-01/node=n1/00000000000000000000-00000000000000000009-0123456789abcdef.parquet";
        let c = gco_ledger::verify::check_object(path, Bytes::from(bytes.clone()), &registry);
        assert!(
            c.problems.iter().any(|p| p.code == verifier_code),
            "{name}: {:?}",
            c.problems
        );
        let policy = gco_ledger::import::ImportPolicy::new(t0());
        let out = gco_ledger::import::import_bytes(
            std::path::Path::new(name),
            Bytes::from(bytes),
            "n1",
            &policy,
            &Default::default(),
        );
        match out {
            Err(e) => assert!(e.to_string().contains(name), "{e}"),
            Ok(o) => assert_eq!(o.rows as usize, o.accepted.len() + o.quarantined.len()),
        }
        if verifier_code == "missing_seal" {
            let e = gco_ledger::import::import_bytes(
                std::path::Path::new(name),
                Bytes::from(std::fs::read(format!("tests/data/{name}")).unwrap()),
                "n1",
                &policy,
                &Default::default(),
            )
            .unwrap_err();
            assert!(
                e.to_string()
                    .contains("the Parquet decoder failed on malformed data"),
                "{e}"
            );
        }
    }
}

/// A chain that reaches i64::MAX: a second batch claiming seq i64::MAX again is an
/// overlap, not accepted because the next expected seq saturated at i64::MAX.
#[tokio::test]
async fn a_replay_at_the_end_of_the_seq_range_is_an_overlap() {
    let store = Store::memory();
    let k = key(3);
    register_node(&store, "n3", &k, ("FR", "paris"), t0()).await;
    let head = ChainHead {
        next_seq: (i64::MAX - 1) as u64,
        ..ChainHead::genesis("n3")
    };
    let first = ChainWriter::new(&k, head)
        .seal(records("n3")[0..2].to_vec())
        .unwrap()
        .remove(0);
    upload(&store, std::slice::from_ref(&first), 1, &|_| {})
        .await
        .unwrap();
    // Its records before i64::MAX - 1 are not in the store: that gap is all there is.
    let r = check(&store).await;
    assert_eq!(codes(&r), [("chain_gap", first.path.clone(), None)]);
    let (seal, _) = read_batch(&first.path, first.bytes.clone()).unwrap();
    assert_eq!((seal.seq_first, seal.seq_last), (i64::MAX - 1, i64::MAX));
    let replay_head = ChainHead {
        node_id: "n3".into(),
        next_seq: i64::MAX as u64,
        prev_batch_hash: seal.batch_hash_bytes().unwrap(),
    };
    let replay = ChainWriter::new(&k, replay_head)
        .seal(records("n3")[2..3].to_vec())
        .unwrap()
        .remove(0);
    store.put_batch(&replay).await.unwrap();
    let r = check(&store).await;
    assert!(has(&r, "chain_overlap", &replay.path), "{:?}", codes(&r));
}
