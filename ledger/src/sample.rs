//! Sample records for tests and benchmarks (deterministic, never used on a data path):
//! a small three-day ledger of one node, and demo-like records at any size.

use rand::{Rng, RngExt};

use crate::record::{Measurement, Millijoules, Record, RecordKind};
use crate::time::{MICROS_PER_DAY, Micros};

/// 30 records of `node` from `t0` (a UTC midnight): 10 a day for 3 days, one a minute,
/// each 2 s long, energy `1000 + i` mJ and `100 + i` prompt tokens; every tenth an idle
/// row. Sealed by day, they make three batches of 10.
pub fn three_days(node: &str, t0: Micros) -> Vec<Record> {
    (0..30i64)
        .map(|i| {
            let start = t0 + (i / 10) * MICROS_PER_DAY + (i % 10) * 60_000_000;
            let inference = i % 10 != 9;
            Record {
                seq: 0,
                kind: if inference {
                    RecordKind::Inference
                } else {
                    RecordKind::Idle
                },
                inference_id: inference.then(|| format!("{node}-inf-{i:03}")),
                node_id: node.to_string(),
                model_id: inference.then(|| "llama-3.1-8b".to_string()),
                model_version: None,
                start,
                end: start + 2_000_000,
                energy: Millijoules(1000 + i),
                measurement: Measurement::EnergyCounter,
                gpus: vec!["0".into()],
                prompt_tokens: Some(100 + i as u64),
                completion_tokens: None,
            }
        })
        .collect()
}

/// `n` demo-like inference records from `t0`: random 128-bit hex inference ids, about
/// 24 a minute, durations 0.1 to 20 s at 250 to 650 W, models in turn from `models`,
/// random token counts. The node id is left empty (the chain writer's node is used).
pub fn demo_like(n: usize, t0: Micros, models: &[&str], rng: &mut impl Rng) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let mut id = [0u8; 16];
            rng.fill_bytes(&mut id);
            let start = t0 + i as i64 * 2_500_000 + rng.random_range(0..1_000_000);
            let ms: i64 = rng.random_range(100..20_000);
            Record {
                seq: 0,
                kind: RecordKind::Inference,
                inference_id: Some(hex::encode(id)),
                node_id: String::new(),
                model_id: models.get(i % models.len().max(1)).map(|m| m.to_string()),
                model_version: Some("2024-07".into()),
                start,
                end: start + ms * 1000,
                energy: Millijoules(ms * rng.random_range(250..650)),
                measurement: Measurement::EnergyCounter,
                gpus: vec![(i % 8).to_string()],
                prompt_tokens: Some(rng.random_range(32..4096)),
                completion_tokens: Some(rng.random_range(16..1024)),
            }
        })
        .collect()
}
