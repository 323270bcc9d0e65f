//! The monthly run against hand-computed figures, determinism, versions, shards/merge,
//! and bad input.

use std::collections::BTreeMap;

use gco_grid_data::series::{FetchMeta, Point, write_points};
use gco_grid_data::{Basis, MgPerKwh, Signal};
use gco_ledger::keys::KeyType;
use gco_ledger::registry::{Registration, register};
use gco_ledger::time::parse_utc;
use gco_ledger::{
    ChainHead, ChainWriter, KeyFileSigner, Measurement, Millijoules, Record, RecordKind, Signer,
    Store,
};
use gco_pipelines::config::{Hardware, Instrument, Site};
use gco_pipelines::{Job, Outcome, Period, PipelineConfig};
use polars::prelude::*;
use rand::SeedableRng;

fn t(s: &str) -> i64 {
    parse_utc(s).unwrap()
}

fn signer(seed: u8) -> KeyFileSigner {
    let mut rng = rand_chacha::ChaCha8Rng::from_seed([seed; 32]);
    KeyFileSigner::generate_with(KeyType::Ed25519, &mut rng).unwrap()
}

#[allow(clippy::too_many_arguments)]
fn rec(
    kind: RecordKind,
    id: Option<&str>,
    model: Option<&str>,
    start: &str,
    secs: i64,
    mj: i64,
    gpus: usize,
    tokens: Option<(u64, u64)>,
) -> Record {
    let s = t(start);
    Record {
        seq: 0,
        kind,
        inference_id: id.map(str::to_string),
        node_id: String::new(),
        model_id: model.map(str::to_string),
        model_version: model.map(|_| "v1".to_string()),
        start: s,
        end: s + secs * 1_000_000,
        energy: Millijoules(mj),
        measurement: Measurement::Simulated,
        gpus: (0..gpus).map(|g| g.to_string()).collect(),
        prompt_tokens: tokens.map(|t| t.0),
        completion_tokens: tokens.map(|t| t.1),
    }
}

const ID0: &str = "00000000-0000-4000-8000-000000000000";
const ID2: &str = "00000000-0000-4000-8000-000000000002";

/// One FR node, three records: an inference in an hour with cached average and
/// marginal points, the hour's idle row, and an inference in an hour with no cached
/// point (the cascade's annual figure answers).
async fn fixture(store: &Store) -> KeyFileSigner {
    let s = signer(1);
    register(
        store,
        &Registration {
            node_id: "n1".into(),
            public_key: s.public_key().clone(),
            zone: "FR".into(),
            site: "paris".into(),
            valid_from: t("2026-09-01T00:00:00Z"),
            valid_to: None,
        },
        t("2026-09-01T00:00:00Z"),
    )
    .await
    .unwrap();
    let mut w = ChainWriter::new(&s, ChainHead::genesis("n1"));
    let records = vec![
        rec(
            RecordKind::Inference,
            Some(ID0),
            Some("m"),
            "2026-10-01T00:10:00Z",
            2,
            3_600_000,
            2,
            Some((100, 900)),
        ),
        rec(
            RecordKind::Idle,
            None,
            None,
            "2026-10-01T00:00:00Z",
            3600,
            36_000_000,
            1,
            None,
        ),
        rec(
            RecordKind::Inference,
            Some(ID2),
            Some("m"),
            "2026-10-01T01:30:00Z",
            1,
            8_400_000,
            1,
            Some((50, 150)),
        ),
    ];
    for b in w.seal(records).unwrap() {
        store.put_batch(&b).await.unwrap();
    }
    let point = |signal, mg| Point {
        zone: "FR".into(),
        time: t("2026-10-01T00:00:00Z"),
        period_s: 3600,
        value: MgPerKwh(mg),
        signal,
        basis: Basis::Lifecycle,
        estimated: false,
        source: "electricitymaps".into(),
    };
    for (signal, mg) in [(Signal::Average, 50_000), (Signal::Marginal, 400_000)] {
        write_points(
            store,
            &FetchMeta {
                source: "electricitymaps".into(),
                zone: "FR".into(),
                request: format!("test {}", signal.as_str()),
                fetched_at: t("2026-10-02T00:00:00Z"),
                response: serde_json::json!({}),
                synthetic: false,
                covers: None,
            },
            &[point(signal, mg)],
        )
        .await
        .unwrap();
    }
    s
}

fn config() -> PipelineConfig {
    PipelineConfig {
        organisation: "Acme".into(),
        sites: BTreeMap::from([(
            "paris".into(),
            Site {
                pue: 1.2,
                scope: Default::default(),
                hardware: Some("h100".into()),
            },
        )]),
        // 315.576 kg over 10 years (315,576,000 s): exactly 1 mg per GPU-second.
        hardware: BTreeMap::from([(
            "h100".into(),
            Hardware {
                embodied_kg_per_gpu: 315.576,
                lifetime_years: 10.0,
                source: "test figure".into(),
            },
        )]),
        // 8 Wh of guarantees of origin at 0 g/kWh for October: half of the 16 Wh.
        instruments: vec![Instrument {
            id: "GO-1".into(),
            kind: "go".into(),
            zone: "FR".into(),
            from: chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            to: chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            mwh: 0.000008,
            factor_g_per_kwh: 0.0,
        }],
        residual_mix: BTreeMap::from([("FR".into(), 60.0)]),
        ..Default::default()
    }
}

fn job<'a>(store: &'a Store, cfg: &'a PipelineConfig) -> Job<'a> {
    Job {
        store,
        cfg,
        period: Period::parse("2026-10").unwrap(),
        // Store objects carry the wall-clock write time: an as-of after any test run.
        as_of: t("2100-01-01T00:00:00Z"),
        code_version: "test".into(),
        progress: None,
        member_roots: false,
        allow_empty: false,
        lease: gco_ledger::LeaseOptions::new("test", std::time::Duration::from_secs(10)),
    }
}

async fn frame(store: &Store, path: &str) -> DataFrame {
    let bytes = store.get(path).await.unwrap();
    ParquetReader::new(std::io::Cursor::new(bytes))
        .finish()
        .unwrap()
}

/// An aggregate table (Decimal128 sums), read with arrow-rs as pyarrow would.
async fn aggregate(store: &Store, path: &str) -> arrow_array::RecordBatch {
    let bytes = store.get(path).await.unwrap();
    let mut r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    r.next().unwrap().unwrap()
}

fn agg_strs(b: &arrow_array::RecordBatch, c: &str) -> Vec<String> {
    b.column_by_name(c)
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect()
}

fn i64s(df: &DataFrame, c: &str) -> Vec<Option<i64>> {
    df.column(c)
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .collect()
}

fn strs(df: &DataFrame, c: &str) -> Vec<Option<String>> {
    df.column(c)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

/// Every object under `prefix` with its bytes.
async fn objects(store: &Store, prefix: &str) -> BTreeMap<String, bytes::Bytes> {
    let mut out = BTreeMap::new();
    for m in store.list(prefix).await.unwrap() {
        let p = m.location.to_string();
        out.insert(p.clone(), store.get(&p).await.unwrap());
    }
    out
}

#[tokio::test]
async fn hand_computed_figures_to_the_nanogram() {
    let store = Store::memory();
    fixture(&store).await;
    let cfg = config();
    let out = job(&store, &cfg).run(false).await.unwrap();
    let Outcome::Created { version, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(version, 1);
    let rows = frame(
        &store,
        "emissions/period=2026-10/version=0001/rows/date=2026-10-01/part-00000.parquet",
    )
    .await;
    assert_eq!(rows.height(), 3);
    // Sorted by (node, seq): the seal keeps the given order.
    assert_eq!(
        i64s(&rows, "it_energy_mj"),
        [Some(3_600_000), Some(36_000_000), Some(8_400_000)]
    );
    // x 1.2
    assert_eq!(
        i64s(&rows, "facility_energy_mj"),
        [Some(4_320_000), Some(43_200_000), Some(10_080_000)]
    );
    // The FR annual figure answers the 01:30 row (no cached point covers it).
    let annual = gco_grid_data::Resolver::new(Default::default())
        .unwrap()
        .resolve("FR", t("2026-10-01T01:30:00Z"), Signal::Average)
        .unwrap();
    let fr = annual.value_mg_per_kwh;
    assert_eq!(
        i64s(&rows, "intensity_mg_per_kwh"),
        [Some(50_000), Some(50_000), Some(fr)]
    );
    assert_eq!(
        strs(&rows, "intensity_fallback_level"),
        [
            Some("provider_measured".into()),
            Some("provider_measured".into()),
            Some(
                serde_json::to_value(annual.fallback_level)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .into()
            )
        ]
    );
    assert_eq!(
        strs(&rows, "intensity_source")[0].as_deref(),
        Some("electricitymaps")
    );
    assert_eq!(
        strs(&rows, "intensity_source")[2].as_deref(),
        Some(annual.source.as_str())
    );
    // 0.0012 kWh x 50 g = 0.06 g; 0.012 kWh x 50 g = 0.6 g.
    let loc2 = (10_080_000i128 * fr as i128 * 2 + 3600) / 7200;
    assert_eq!(
        i64s(&rows, "location_ng"),
        [Some(60_000_000), Some(600_000_000), Some(loc2 as i64)]
    );
    // MOER 400 g/kWh where cached, else none.
    assert_eq!(
        i64s(&rows, "marginal_ng"),
        [Some(480_000_000), Some(4_800_000_000), None]
    );
    // 1 mg per GPU-second: 2 GPUs x 2 s, none for idle, 1 GPU x 1 s.
    assert_eq!(
        i64s(&rows, "embodied_ng"),
        [Some(4_000_000), Some(0), Some(1_000_000)]
    );
    // SCI = E x I(marginal where cached) + M; per 1k tokens.
    let sci2 = loc2 as i64 + 1_000_000;
    assert_eq!(i64s(&rows, "sci_ng"), [Some(484_000_000), None, Some(sci2)]);
    assert_eq!(
        i64s(&rows, "sci_ng_per_1k_tokens"),
        [Some(484_000_000), None, Some(sci2 * 1000 / 200)]
    );
    // Market: half the 57.6e6 mJ is covered at 0 g, the rest at the 60 g residual mix:
    // facility x 0.5 x 60,000 / 3600.
    assert_eq!(
        i64s(&rows, "market_ng"),
        [Some(36_000_000), Some(360_000_000), Some(84_000_000)]
    );
    assert_eq!(
        i64s(&rows, "market_covered_mj"),
        [Some(2_160_000), Some(21_600_000), Some(5_040_000)]
    );
    assert_eq!(
        strs(&rows, "market_method")[0].as_deref(),
        Some("instruments+residual_mix")
    );

    // Aggregates are the sums of the rows.
    let org = aggregate(
        &store,
        "emissions/period=2026-10/version=0001/aggregates/organisation_month.parquet",
    )
    .await;
    assert_eq!(agg_strs(&org, "organisation"), ["Acme"]);
    assert_eq!(agg_strs(&org, "scope"), ["scope2"]);
    let sum = |c: &str| -> Vec<i128> {
        org.column_by_name(c)
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::Decimal128Array>()
            .unwrap()
            .iter()
            .map(|v| v.unwrap())
            .collect()
    };
    assert_eq!(sum("facility_energy_mj"), [57_600_000]);
    assert_eq!(sum("location_ng"), [660_000_000 + loc2]);
    assert_eq!(sum("market_ng"), [480_000_000]);
    assert_eq!(sum("marginal_ng"), [5_280_000_000]);
    assert_eq!(sum("embodied_ng"), [5_000_000]);
    assert_eq!(sum("sci_ng"), [484_000_000 + sci2 as i128]);
    let model = aggregate(
        &store,
        "emissions/period=2026-10/version=0001/aggregates/model_day.parquet",
    )
    .await;
    assert_eq!(agg_strs(&model, "model_id"), ["(idle/overhead)", "m"]);
    let inferences: Vec<u64> = model
        .column_by_name("inferences")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::UInt64Array>()
        .unwrap()
        .values()
        .to_vec();
    assert_eq!(inferences, [0, 2]);
    // detail_month: by model, site, zone, scope, measurement and intensity provenance;
    // the annual fallback's row carries exactly the third record's figures.
    let detail = aggregate(
        &store,
        "emissions/period=2026-10/version=0001/aggregates/detail_month.parquet",
    )
    .await;
    let sources = agg_strs(&detail, "intensity_source");
    let location: Vec<i128> = detail
        .column_by_name("location_ng")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::Decimal128Array>()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(location.iter().sum::<i128>(), 660_000_000 + loc2);
    let annual_row = sources.iter().position(|s| *s == annual.source).unwrap();
    assert_eq!(location[annual_row], loc2);
    assert_eq!(agg_strs(&detail, "model_id")[annual_row], "m");

    // The manifest: inputs, coverage, allocation, outputs with hashes.
    let m: serde_json::Value = serde_json::from_slice(
        &store
            .get("runs/period=2026-10/version=0001/manifest.json")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(m["coverage"]["records_sealed"], 3);
    assert_eq!(m["coverage"]["records_accounted"], 3);
    assert_eq!(m["coverage"]["batches_excluded"], 0);
    assert_eq!(
        m["instruments"]["instruments"][0]["allocated_mj"],
        28_800_000
    );
    assert_eq!(m["instruments"]["instruments"][0]["unallocated_mj"], 0);
    assert_eq!(m["totals"]["all"]["market_ng"], "480000000");
    assert_eq!(m["outputs"].as_array().unwrap().len(), 7);
    assert_eq!(m["as_of"], "2100-01-01T00:00:00.000000Z");
    // Staging is gone.
    assert!(
        objects(&store, "runs/period=2026-10/staging")
            .await
            .is_empty()
    );

    // A rerun with the same inputs is a no-op, even at a later as-of.
    let mut j = job(&store, &cfg);
    j.as_of = t("2100-02-01T00:00:00Z");
    assert!(matches!(
        j.run(false).await.unwrap(),
        Outcome::UpToDate { version: 1, .. }
    ));
}

#[tokio::test]
async fn reruns_and_shards_give_identical_bytes_and_late_data_makes_a_new_version() {
    let a = Store::memory();
    let s = fixture(&a).await;
    let cfg = PipelineConfig {
        chunk_records: 2,
        ..config()
    };
    // More days, so that shards differ.
    let mut w = ChainWriter::new(&s, gco_ledger::batch::chain_head(&a, "n1").await.unwrap());
    for day in 2..=9 {
        let start = format!("2026-10-{day:02}T12:00:00Z");
        for b in w
            .seal(vec![
                rec(
                    RecordKind::Idle,
                    None,
                    None,
                    &start,
                    60,
                    1000 * day,
                    1,
                    None,
                ),
                rec(RecordKind::Idle, None, None, &start, 30, 7, 1, None),
                rec(RecordKind::Idle, None, None, &start, 10, 9, 1, None),
            ])
            .unwrap()
        {
            a.put_batch(&b).await.unwrap();
        }
    }
    let ledger = objects(&a, "").await;
    let copy = || async {
        let s = Store::memory();
        for (p, b) in &ledger {
            s.put_overwrite_for_tests(p, b.clone()).await.unwrap();
        }
        s
    };
    let b = copy().await;
    let c = copy().await;
    job(&a, &cfg).run(false).await.unwrap();
    job(&b, &cfg).run(false).await.unwrap();
    for i in 0..3 {
        assert!(matches!(
            job(&c, &cfg).run_shard(i, 3).await.unwrap(),
            Outcome::Staged { .. }
        ));
    }
    // A merge with a shard missing says which.
    let d = copy().await;
    job(&d, &cfg).run_shard(1, 3).await.unwrap();
    let err = job(&d, &cfg).merge().await.unwrap_err().to_string();
    assert!(err.contains("shards [0, 2] of 3 are not staged"), "{err}");
    job(&c, &cfg).merge().await.unwrap();
    let (oa, ob, oc) = (
        objects(&a, "emissions").await,
        objects(&b, "emissions").await,
        objects(&c, "emissions").await,
    );
    assert_eq!(oa.len(), 9 + 6, "a rows file per day + 6 aggregates");
    assert_eq!(oa, ob, "two runs: identical bytes");
    assert_eq!(oa, oc, "3 shards + merge: identical bytes to one process");

    // Late data: a new batch for day 10 arrives; the rerun writes version 2 beside 1.
    for b in w
        .seal(vec![rec(
            RecordKind::Idle,
            None,
            None,
            "2026-10-10T00:00:00Z",
            5,
            5,
            1,
            None,
        )])
        .unwrap()
    {
        a.put_batch(&b).await.unwrap();
    }
    let out = job(&a, &cfg).run(false).await.unwrap();
    let Outcome::Created {
        version, changes, ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(version, 2);
    let ch = changes.unwrap();
    assert_eq!(ch.previous_version, 1);
    assert_eq!(ch.inputs_added.len(), 1);
    assert_eq!(
        (ch.records_accounted_before, ch.records_accounted_after),
        (27, 28)
    );
    // Version 1 is untouched.
    let v1: BTreeMap<_, _> = objects(&a, "emissions/period=2026-10/version=0001").await;
    assert_eq!(
        v1,
        oa.into_iter()
            .filter(|(k, _)| k.contains("version=0001"))
            .collect()
    );
}

#[tokio::test]
async fn a_batch_changed_after_sealing_does_not_count_towards_the_market_figures() {
    // A batch whose energy was changed after it was sealed still reads, so the
    // one-process run's pre-pass counts it in the period's consumption, but it fails
    // verification. The run must see that the verified rows consumed less, drop what
    // it wrote, and give the bytes a sharded run gives (whose finalisation allocates
    // to the verified rows only).
    let a = Store::memory();
    let s = fixture(&a).await;
    let mut w = ChainWriter::new(&s, gco_ledger::batch::chain_head(&a, "n1").await.unwrap());
    let mut changed = Vec::new();
    for b in w
        .seal(vec![rec(
            RecordKind::Idle,
            None,
            None,
            "2026-10-03T00:00:00Z",
            60,
            7_200_000,
            1,
            None,
        )])
        .unwrap()
    {
        let (seal, mut recs) = gco_ledger::batch::read_batch(&b.path, b.bytes.clone()).unwrap();
        recs[0].energy.0 += 3_600_000;
        let bytes = gco_ledger::batch::encode_parquet(&recs, &seal).unwrap();
        a.put_overwrite_for_tests(&b.path, bytes).await.unwrap();
        changed.push(b.path.clone());
    }
    let ledger = objects(&a, "").await;
    let b = Store::memory();
    for (p, bytes) in &ledger {
        b.put_overwrite_for_tests(p, bytes.clone()).await.unwrap();
    }
    // What a run that crashed while finalising left of the unpublished version: a
    // file with other bytes, and one this run does not write.
    for part in ["part-00000", "part-00007"] {
        a.put_overwrite_for_tests(
            &format!("emissions/period=2026-10/version=0001/rows/date=2026-10-01/{part}.parquet"),
            bytes::Bytes::from_static(b"partial"),
        )
        .await
        .unwrap();
    }
    let cfg = config();
    let Outcome::Created { summary, .. } = job(&a, &cfg).run(false).await.unwrap() else {
        panic!()
    };
    assert_eq!(summary.coverage.batches_excluded, 1);
    assert_eq!(summary.coverage.excluded[0].object, changed[0]);
    for i in 0..2 {
        job(&b, &cfg).run_shard(i, 2).await.unwrap();
    }
    job(&b, &cfg).merge().await.unwrap();
    let one = objects(&a, "emissions").await;
    assert_eq!(
        one.len(),
        1 + 6,
        "one rows file (the verified day) + 6 aggregates"
    );
    assert_eq!(
        one,
        objects(&b, "emissions").await,
        "same bytes as a sharded run"
    );
    // The verified 16 Wh: 8 Wh covered by the guarantee, 8 Wh at the residual mix.
    let rows = frame(
        &a,
        "emissions/period=2026-10/version=0001/rows/date=2026-10-01/part-00000.parquet",
    )
    .await;
    let covered: i64 = i64s(&rows, "market_covered_mj").iter().flatten().sum();
    assert_eq!(covered, 28_800_000);
    assert!(objects(&a, "runs/period=2026-10/staging").await.is_empty());
}

#[tokio::test]
async fn bad_input_is_listed_and_counts_reconcile() {
    let store = Store::memory();
    fixture(&store).await;
    // A batch from a node nobody registered, and a corrupt object.
    let stranger = signer(9);
    let mut w = ChainWriter::new(&stranger, ChainHead::genesis("ghost"));
    for b in w
        .seal(vec![rec(
            RecordKind::Idle,
            None,
            None,
            "2026-10-05T00:00:00Z",
            10,
            123,
            1,
            None,
        )])
        .unwrap()
    {
        store.put_batch(&b).await.unwrap();
    }
    store
        .put_overwrite_for_tests(
            "records/date=2026-10-06/node=n1/00000000000000000003-00000000000000000003-0000000000000000.parquet",
            bytes::Bytes::from_static(b"not parquet"),
        )
        .await
        .unwrap();
    let cfg = config();
    let out = job(&store, &cfg).run(false).await.unwrap();
    let Outcome::Created { summary, .. } = out else {
        panic!("{out:?}")
    };
    let c = &summary.coverage;
    assert_eq!(
        (c.batches, c.batches_verified, c.batches_excluded),
        (3, 1, 2)
    );
    assert_eq!((c.records_sealed, c.records_verified), (4, 3));
    assert_eq!(
        c.records_accounted + c.records_quarantined,
        c.records_verified
    );
    let codes: Vec<&str> = c.excluded.iter().map(|e| e.code.as_str()).collect();
    assert!(codes.contains(&"not_parquet"), "{codes:?}");
    assert_eq!(codes.len(), 2, "{codes:?}");

    // Under the abort policy the same ledger stops the run, naming the objects.
    let strict = PipelineConfig {
        on_unverified: gco_pipelines::config::OnUnverified::Abort,
        ..config()
    };
    let err = job(&store, &strict)
        .run(true)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 batches failed verification"), "{err}");
    assert!(err.contains("not_parquet"), "{err}");
    // Nothing of the aborted version is left.
    assert!(
        objects(&store, "emissions/period=2026-10/version=0002")
            .await
            .is_empty()
    );

    // A month with no data: nothing, unless asked for; then an empty, explicit version.
    let mut j = job(&store, &cfg);
    j.period = Period::parse("2026-12").unwrap();
    assert!(matches!(j.run(false).await.unwrap(), Outcome::Empty { .. }));
    assert!(objects(&store, "runs/period=2026-12").await.is_empty());
    j.allow_empty = true;
    let Outcome::Created { summary, .. } = j.run(false).await.unwrap() else {
        panic!()
    };
    assert_eq!(summary.coverage.batches, 0);
    assert_eq!(summary.totals["all"].rows, 0);

    // A certificate claimed twice is refused before anything runs.
    let mut dup = config();
    dup.instruments.push(dup.instruments[0].clone());
    assert!(
        dup.validate()
            .unwrap_err()
            .to_string()
            .contains("listed twice")
    );
}

#[tokio::test]
async fn registry_events_after_the_as_of_are_not_read() {
    let store = Store::memory();
    let s = fixture(&store).await;
    let cfg = config();
    // T = the last write so far; a revocation of the node's key recorded after T.
    let written = objects_meta_max(&store).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    gco_ledger::registry::revoke(
        &store,
        "n1",
        s.key_id(),
        t("2026-09-15T00:00:00Z"),
        "test",
        t("2026-10-05T00:00:00Z"),
    )
    .await
    .unwrap();
    // As of T the key was good: every batch verifies.
    let mut before = job(&store, &cfg);
    before.as_of = written;
    let Outcome::Created { summary, .. } = before.run(false).await.unwrap() else {
        panic!("expected a new version")
    };
    assert_eq!(summary.coverage.batches_excluded, 0);
    assert_eq!(summary.coverage.records_accounted, 3);
    // With the revocation read, the batch is excluded as signed by a revoked key.
    let Outcome::Created { summary, .. } = job(&store, &cfg).run(false).await.unwrap() else {
        panic!("expected a new version")
    };
    assert_eq!(summary.coverage.batches_excluded, 1);
    assert_eq!(summary.coverage.records_accounted, 0);
    assert_eq!(summary.coverage.excluded[0].code, "key_revoked");
}

async fn objects_meta_max(store: &Store) -> i64 {
    store
        .list("")
        .await
        .unwrap()
        .iter()
        .map(|m| m.last_modified.timestamp_micros())
        .max()
        .unwrap()
}

#[tokio::test]
async fn member_roots_from_the_run_equal_those_recomputed_from_the_ledger() {
    use gco_pipelines::certify::{self, Granularity};
    let a = Store::memory();
    fixture(&a).await;
    let ledger = objects(&a, "").await;
    // Chunks of two records: a day spans several chunks.
    let cfg = PipelineConfig {
        chunk_records: 2,
        ..config()
    };
    let mut j = job(&a, &cfg);
    j.member_roots = true;
    let Outcome::Created {
        version,
        member_roots: Some(from_run),
        ..
    } = j.run(false).await.unwrap()
    else {
        panic!("no member roots from the run")
    };
    let run = certify::load_run(&a, Period::parse("2026-10").unwrap(), Some(version))
        .await
        .unwrap();
    let recomputed = certify::member_roots(&a, &run).await.unwrap();
    assert_eq!(*from_run, recomputed);
    let org: Vec<_> = from_run
        .iter()
        .filter(|((g, _), _)| *g == Granularity::OrganisationMonth)
        .map(|(k, (_, n))| (k.1.clone(), *n))
        .collect();
    assert_eq!(
        org,
        vec![(vec!["Acme".to_string(), "scope2".to_string()], 2)]
    );
    assert!(objects(&a, "runs/period=2026-10/staging").await.is_empty());

    // Shards stage their leaf hashes too: the merge gives the same roots.
    let c = Store::memory();
    for (p, b) in &ledger {
        c.put_overwrite_for_tests(p, b.clone()).await.unwrap();
    }
    for i in 0..2 {
        job(&c, &cfg).run_shard(i, 2).await.unwrap();
    }
    let mut m = job(&c, &cfg);
    m.member_roots = true;
    let Outcome::Created {
        member_roots: Some(merged),
        ..
    } = m.merge().await.unwrap()
    else {
        panic!("no member roots from the merge")
    };
    assert_eq!(merged, from_run);
}

#[tokio::test]
async fn a_record_stored_twice_is_counted_once() {
    // The fixture's three records, then n1 signs the same three again (a replayed
    // import): a valid chain, every signature good. The replay is excluded with the
    // repeats named, and every output is byte for byte the one of the ledger without it.
    let clean = Store::memory();
    fixture(&clean).await;
    let twice = Store::memory();
    let s = fixture(&twice).await;
    let (_, originals) = {
        let path = objects(&twice, "records").await.into_keys().next().unwrap();
        gco_ledger::batch::read_batch(&path, twice.get(&path).await.unwrap()).unwrap()
    };
    let mut w = ChainWriter::new(
        &s,
        gco_ledger::batch::chain_head(&twice, "n1").await.unwrap(),
    );
    let replay = w.seal(originals).unwrap();
    for b in &replay {
        twice.put_batch(b).await.unwrap();
    }
    let cfg = config();
    let Outcome::Created { summary, .. } = job(&twice, &cfg).run(false).await.unwrap() else {
        panic!("a version")
    };
    assert_eq!(summary.coverage.batches_excluded, 1);
    let excluded = &summary.coverage.excluded;
    assert_eq!(excluded[0].object, replay[0].path);
    let manifest: serde_json::Value = serde_json::from_slice(
        &twice
            .get("runs/period=2026-10/version=0001/manifest.json")
            .await
            .unwrap(),
    )
    .unwrap();
    let entry = manifest["inputs"]["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["object"] == replay[0].path.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["verified"], false);
    let codes: Vec<&str> = entry["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    // Two inferences and the idle hour.
    assert_eq!(codes.len(), 3);
    assert_eq!(
        codes
            .iter()
            .filter(|c| **c == "duplicate_inference_id")
            .count(),
        2
    );
    assert_eq!(
        codes.iter().filter(|c| **c == "duplicate_record").count(),
        1
    );
    job(&clean, &cfg).run(false).await.unwrap();
    let (a, b) = (
        objects(&twice, "emissions").await,
        objects(&clean, "emissions").await,
    );
    assert_eq!(a, b, "the same rows and aggregates as without the replay");
}

#[tokio::test]
async fn the_manifest_reads_back_typed_and_a_missing_field_is_named() {
    let a = Store::memory();
    fixture(&a).await;
    let cfg = config();
    job(&a, &cfg).run(false).await.unwrap();
    let path = "runs/period=2026-10/version=0001/manifest.json";
    let bytes = a.get(path).await.unwrap();
    let m = gco_pipelines::manifest::RunManifest::from_slice(path, &bytes).unwrap();
    // The typed manifest writes back the very bytes the run stored.
    assert_eq!(m.to_bytes().unwrap(), bytes.to_vec());
    assert_eq!((m.period.as_str(), m.version, m.shards), ("2026-10", 1, 1));
    assert_eq!(m.totals("all").rows, m.coverage.records_accounted);

    // A field removed (an older or damaged manifest) is an error naming it, at the top
    // level and nested; so is a sum that is not an integer.
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let damaged = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = value.clone();
        edit(&mut v);
        let err = gco_pipelines::manifest::RunManifest::from_slice(
            path,
            &serde_json::to_vec(&v).unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with(path), "{err}");
        err
    };
    let err = damaged(&|v| {
        v.as_object_mut().unwrap().remove("coverage");
    });
    assert!(err.contains("missing field `coverage`"), "{err}");
    let err = damaged(&|v| {
        v["coverage"]
            .as_object_mut()
            .unwrap()
            .remove("records_accounted");
    });
    assert!(err.contains("missing field `records_accounted`"), "{err}");
    let err = damaged(&|v| v["totals"]["all"]["location_ng"] = serde_json::json!("12x"));
    assert!(err.contains("\"12x\" is not an integer"), "{err}");
    let err = damaged(&|v| {
        v["totals"].as_object_mut().unwrap().remove("all");
    });
    assert!(err.contains("missing field `totals.all`"), "{err}");
    let err = damaged(&|v| v["format"] = serde_json::json!("gco-run-manifest/0"));
    assert!(err.contains("gco-run-manifest/0"), "{err}");

    // A rerun over a damaged latest manifest stops, naming the field, rather than
    // taking its counts as zero.
    let mut v = value.clone();
    v["plan"].as_object_mut().unwrap().remove("id");
    a.put_overwrite_for_tests(path, serde_json::to_vec(&v).unwrap().into())
        .await
        .unwrap();
    let err = format!("{:#}", job(&a, &cfg).run(false).await.unwrap_err());
    assert!(err.contains("missing field `id`"), "{err}");
}

#[tokio::test]
async fn a_rows_file_has_exactly_the_declared_schema() {
    use arrow_schema::{DataType, TimeUnit};
    use gco_pipelines::schema::{ROWS, Type};
    let a = Store::memory();
    fixture(&a).await;
    let cfg = config();
    job(&a, &cfg).run(false).await.unwrap();
    let rows = objects(&a, "emissions/period=2026-10/version=0001/rows/").await;
    assert!(!rows.is_empty());
    for (path, bytes) in rows {
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let got: Vec<(String, DataType)> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let want: Vec<(String, DataType)> = ROWS
            .iter()
            .map(|(name, t)| {
                let dt = match t {
                    Type::Str => DataType::Utf8View,
                    Type::U32 => DataType::UInt32,
                    Type::U64 => DataType::UInt64,
                    Type::I64 => DataType::Int64,
                    Type::Bool => DataType::Boolean,
                    Type::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                };
                (name.to_string(), dt)
            })
            .collect();
        assert_eq!(got, want, "{path}");
    }
}
