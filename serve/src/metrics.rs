//! Prometheus metrics of the server (OpenMetrics text at `/metrics`): requests and
//! their latency by route pattern, method and status; ingestion outcomes.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;
type Latency = Family<Labels, Histogram, fn() -> Histogram>;

/// Latency buckets: 100 us doubling to about 1.6 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

/// Every metric the server exports. Cheap to update from any thread.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Latency,
    ingest: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gco");
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            requests.clone(),
        );
        let latency: Latency = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route pattern",
            latency.clone(),
        );
        let ingest = Family::<Labels, Counter>::default();
        registry.register(
            "ingest_batches",
            "Batches posted to the ingestion gateway, by outcome (created, present, conflict, refused)",
            ingest.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            ingest,
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn count(&self, method: &str, route: &str, status: u16) {
        self.requests
            .get_or_create(&vec![
                ("method", method.to_string()),
                ("route", route.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
    }

    /// Counts one answered request of a route and the time it took.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.count(method, route, status);
        self.latency
            .get_or_create(&vec![
                ("method", method.to_string()),
                ("route", route.to_string()),
            ])
            .observe(seconds);
    }

    /// Counts one batch posted to the gateway.
    pub fn ingested(&self, outcome: &'static str) {
        self.ingest
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
