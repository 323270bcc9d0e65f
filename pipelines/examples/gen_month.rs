//! Writes a synthetic month of ledger data for the pipeline benchmark:
//! `cargo run --release -p gco-pipelines --example gen_month -- DIR RECORDS [NODES]`
//! NODES (default 16) nodes in 4 zones, October 2026, one sealed batch per node and day (the ledger's
//! limit is 100,000 records per batch), four models, an hourly synthetic grid series
//! per zone.

use gco_grid_data::{MgPerKwh, synthetic};
use gco_ledger::keys::KeyType;
use gco_ledger::registry::{Registration, register};
use gco_ledger::time::parse_utc;
use gco_ledger::{
    ChainHead, ChainWriter, KeyFileSigner, Measurement, Millijoules, Record, RecordKind, Signer,
    Store,
};
use rand::{Rng, RngExt, SeedableRng};

const ZONES: [&str; 4] = ["FR", "DE", "US-CA", "SE-SE3"];
const MODELS: [&str; 4] = ["llama-70b", "llama-8b", "mistral-7b", "mixtral-8x7b"];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).expect("DIR");
    let total: u64 = args.get(2).expect("RECORDS").parse()?;
    let store = Store::open(&format!("file://{dir}"), &Default::default())?;
    let t0 = parse_utc("2026-10-01T00:00:00Z").map_err(|e| e.to_string())?;
    let day_us = 86_400_000_000i64;
    let nodes: u64 = match args.get(3) {
        Some(n) => n.parse()?,
        None => 16,
    };
    let per_node_day = total / nodes / 31;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for n in 0..nodes {
        let node = format!("bench-{n:02}");
        let key = KeyFileSigner::generate_with(KeyType::Ed25519, &mut rng)?;
        register(
            &store,
            &Registration {
                node_id: node.clone(),
                public_key: key.public_key().clone(),
                zone: ZONES[n as usize % 4].into(),
                site: format!("site-{}", n % 4),
                valid_from: t0 - day_us,
                valid_to: None,
            },
            t0 - day_us,
        )
        .await?;
        let mut w = ChainWriter::new(&key, ChainHead::genesis(node.clone()));
        for d in 0..31i64 {
            let mut recs = Vec::with_capacity(per_node_day as usize);
            for i in 0..per_node_day {
                let start = t0 + d * day_us + (i as i64 * day_us / per_node_day as i64);
                let mut id = [0u8; 16];
                rng.fill_bytes(&mut id);
                let h = hex::encode(id);
                recs.push(Record {
                    seq: 0,
                    kind: RecordKind::Inference,
                    inference_id: Some(format!(
                        "{}-{}-4{}-8{}-{}",
                        &h[..8],
                        &h[8..12],
                        &h[13..16],
                        &h[17..20],
                        &h[20..]
                    )),
                    node_id: String::new(),
                    model_id: Some(MODELS[(i % 4) as usize].into()),
                    model_version: Some("v1".into()),
                    start,
                    end: start + rng.random_range(100_000..20_000_000),
                    energy: Millijoules(rng.random_range(1_000..5_000_000)),
                    measurement: Measurement::Simulated,
                    gpus: vec![(i % 8).to_string()],
                    prompt_tokens: Some(rng.random_range(10..4000)),
                    completion_tokens: Some(rng.random_range(10..1000)),
                });
            }
            let batches = w.seal(recs)?;
            gco_ledger::batch::upload(&store, &batches, 8, &|_| {}).await?;
        }
        eprintln!("{node}: {} records", per_node_day * 31);
    }
    for z in ZONES {
        let pts = synthetic::hourly(z, MgPerKwh(300_000), t0, t0 + 31 * day_us, 1);
        gco_grid_data::series::write_points(
            &store,
            &synthetic::meta(z, MgPerKwh(300_000), 1, t0, (t0, t0 + 31 * day_us)),
            &pts,
        )
        .await?;
    }
    println!("{}", per_node_day * 31 * nodes);
    Ok(())
}
