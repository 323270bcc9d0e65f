//! gco collector: measures each inference's GPU energy on a node and puts it, signed
//! and hash-chained, into the ledger.
//!
//! - [`gpu`]: the GPU source trait and interval arithmetic (counters, resets, power),
//!   with [`nvml`] (real GPUs) and [`sim`] (simulated GPUs) behind it;
//! - [`attribution`]: interval-by-interval division of energy among inference spans,
//!   with the idle remainder, exact in millijoules;
//! - [`wal`] and [`engine`]: the crash-safe spool, sealing and checkpoints;
//! - [`runtime`]: the live threads and the uploader, to the store or through `gco
//!   serve`'s ingestion gateway ([`gateway`]); [`http`]: span API, metrics and
//!   the OpenAI-compatible proxy; [`metrics`]: Prometheus;
//! - `tpm` (feature `tpm`): node keys held in a TPM 2.0.

pub mod attribution;
pub mod engine;
pub mod error;
pub mod gateway;
pub mod gpu;
pub mod http;
pub mod metrics;
pub mod nvml;
pub mod runtime;
pub mod sim;
#[cfg(feature = "tpm")]
pub mod tpm;
pub mod wal;

pub use attribution::{AttributionConfig, Attributor, SpanError};
pub use engine::{Command, Engine, EngineConfig, Reply};
pub use error::{CollectorError, Kind};
pub use gpu::{GpuInfo, GpuSource, Reading};
pub use sim::SimGpus;
