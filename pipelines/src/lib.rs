//! gco batch jobs: the monthly emissions run over the ledger (verify, enrich through the
//! registry, as-of join with grid intensity, location/market/marginal/embodied/SCI
//! figures, aggregates, run manifest), backfills, and sharded runs with a merge.
//! Methods and formats: docs/pipeline.md.

pub mod aggregate;
pub mod certify;
pub mod document;
pub mod error;
pub mod index;
pub mod job;
pub mod lookup;
pub mod manifest;
pub mod market;
pub mod math;
pub mod period;
pub mod revoke;
pub mod rows;
pub mod schema;
pub mod tsa;
pub mod verify;

pub use config::PipelineConfig;
pub use error::{Kind, PipelineError};
/// `[pipeline]` in gco.toml (crate gco-config).
pub use gco_config::pipeline as config;
pub use job::{Job, Outcome};
pub use manifest::Plan;

/// Progress callback: (stage, done, total).
pub type Progress = std::sync::Arc<dyn Fn(&str, u64, u64) + Send + Sync>;
pub use period::Period;
