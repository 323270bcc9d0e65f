//! Prometheus metrics of the collector (text exposition at `/metrics`).

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Every metric the collector exports. Cheap to update from any thread.
pub struct Metrics {
    registry: Registry,
    pub gpu_energy_mj: Family<Labels, Counter>,
    pub gpu_power_mw: Family<Labels, Gauge>,
    pub gpu_read_errors: Counter,
    pub counter_resets: Family<Labels, Counter>,
    pub spans_started: Counter,
    pub spans_ended: Counter,
    pub spans_rejected: Family<Labels, Counter>,
    pub spans_timed_out: Counter,
    pub spans_open: Gauge,
    pub attributed_mj: Counter,
    pub idle_mj: Counter,
    pub records: Family<Labels, Counter>,
    pub batches_sealed: Counter,
    pub spool_bytes: Gauge,
    pub spool_batches: Gauge,
    pub spool_overflow: Gauge,
    pub overflow_spans: Counter,
    pub overflow_mj: Counter,
    pub uploads: Counter,
    pub upload_failures: Counter,
    pub last_upload: Gauge<i64, AtomicI64>,
    pub proxy_requests: Family<Labels, Counter>,
}

pub fn label(k: &'static str, v: impl Into<String>) -> Labels {
    vec![(k, v.into())]
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("gco");
        macro_rules! reg {
            ($name:literal, $help:literal, $m:expr) => {{
                let m = $m;
                r.register($name, $help, m.clone());
                m
            }};
        }
        Metrics {
            gpu_energy_mj: reg!(
                "gpu_energy_millijoules",
                "Energy measured per GPU",
                Family::default()
            ),
            gpu_power_mw: reg!(
                "gpu_power_milliwatts",
                "Last power reading per GPU",
                Family::default()
            ),
            gpu_read_errors: reg!(
                "gpu_read_errors",
                "Failed GPU readings (the interval grows)",
                Counter::default()
            ),
            counter_resets: reg!(
                "gpu_counter_resets",
                "Energy counter resets (driver reloads)",
                Family::default()
            ),
            spans_started: reg!(
                "spans_started",
                "Inference spans started",
                Counter::default()
            ),
            spans_ended: reg!("spans_ended", "Inference spans ended", Counter::default()),
            spans_rejected: reg!(
                "spans_rejected",
                "Span calls refused, by reason",
                Family::default()
            ),
            spans_timed_out: reg!(
                "spans_timed_out",
                "Spans ended by --max-span without tokens",
                Counter::default()
            ),
            spans_open: reg!(
                "spans_open",
                "Spans started and not yet ended",
                Gauge::default()
            ),
            attributed_mj: reg!(
                "attributed_energy_millijoules",
                "Energy attributed to inferences",
                Counter::default()
            ),
            idle_mj: reg!(
                "idle_energy_millijoules",
                "Energy no inference claimed (idle/overhead)",
                Counter::default()
            ),
            records: reg!(
                "records",
                "Records written to the spool, by kind",
                Family::default()
            ),
            batches_sealed: reg!(
                "batches_sealed",
                "Signed batches sealed",
                Counter::default()
            ),
            spool_bytes: reg!(
                "spool_bytes",
                "Bytes in the local spool (log and sealed batches)",
                Gauge::default()
            ),
            spool_batches: reg!(
                "spool_batches",
                "Sealed batches waiting for upload",
                Gauge::default()
            ),
            spool_overflow: reg!(
                "spool_overflow",
                "1 while the spool is over --spool-max-bytes",
                Gauge::default()
            ),
            overflow_spans: reg!(
                "spool_overflow_spans",
                "Inferences folded into per-model overflow rows while the spool was full",
                Counter::default()
            ),
            overflow_mj: reg!(
                "spool_overflow_energy_millijoules",
                "Energy of inferences folded into overflow rows",
                Counter::default()
            ),
            uploads: reg!(
                "uploads",
                "Batches confirmed by the store",
                Counter::default()
            ),
            upload_failures: reg!(
                "upload_failures",
                "Failed upload attempts",
                Counter::default()
            ),
            last_upload: reg!(
                "last_upload_timestamp_seconds",
                "Unix time of the last confirmed upload",
                Gauge::<i64, AtomicI64>::default()
            ),
            proxy_requests: reg!(
                "proxy_requests",
                "Requests through the proxy, by upstream status class",
                Family::default()
            ),
            registry: r,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut s, &self.registry);
        s
    }
}
