//! The service's Prometheus metrics (`GET /metrics`, OpenMetrics text format): requests by route,
//! method and status, request latency, images scored, queue depth, batch sizes and inference
//! time. One [`Metrics`] is shared by the HTTP layer and the inference workers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::time::Duration;

/// Labels of one HTTP request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route pattern (`/v1/score`), or `unmatched` for unknown paths, so a scan of random
    /// URLs cannot create unbounded label values.
    pub route: String,
    pub method: String,
    pub status: u16,
}

/// Labels of the latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

/// Labels of the image counter: `scored`, `error` (the image could not be read or graded) or
/// `abandoned` (the client gave up before its turn came, so it was never graded).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    images: Family<OutcomeLabels, Counter>,
    queue_depth: Gauge,
    batch_size: Histogram,
    inference: Histogram,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~33 s: a queued batch of large photos on a small machine takes seconds.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    /// Registers every metric; `queue_capacity` is exported as a constant gauge so dashboards
    /// can show the depth as a share of it.
    pub fn new(queue_capacity: usize, max_batch: usize) -> Self {
        let mut registry = Registry::with_prefix("shotgrade");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from receiving a request to sending its response head, by route",
            Unit::Seconds,
            latency.clone(),
        );
        let images = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "images",
            "Images taken from the queue, by outcome (scored, error, abandoned)",
            images.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Images waiting for an inference worker",
            queue_depth.clone(),
        );
        let capacity = Gauge::<i64>::default();
        capacity.set(queue_capacity as i64);
        registry.register(
            "queue_capacity",
            "Images that may wait before requests are refused with 503",
            capacity,
        );
        let batch_size = Histogram::new(
            (0..)
                .map(|p| f64::from(1u32 << p))
                .take_while(|&b| b < max_batch as f64)
                .chain([max_batch as f64]),
        );
        registry.register(
            "batch_size",
            "Images graded together in one pass",
            batch_size.clone(),
        );
        let inference = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register_with_unit(
            "batch_inference",
            "Time to decode and grade one batch",
            Unit::Seconds,
            inference.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            images,
            queue_depth,
            batch_size,
            inference,
        }
    }

    pub fn record_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// One graded batch of `size` images, `errors` of which could not be graded.
    pub fn record_batch(&self, size: usize, errors: usize, took: Duration) {
        self.batch_size.observe(size as f64);
        self.inference.observe(took.as_secs_f64());
        self.count_images("scored", size - errors.min(size));
        self.count_images("error", errors);
    }

    pub fn count_images(&self, outcome: &'static str, n: usize) {
        if n > 0 {
            self.images
                .get_or_create(&OutcomeLabels { outcome })
                .inc_by(n as u64);
        }
    }

    /// Images waiting now.
    pub fn queue_depth(&self) -> i64 {
        self.queue_depth.get()
    }

    pub(crate) fn queue_depth_add(&self, n: i64) {
        self.queue_depth.inc_by(n);
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_batches_and_depth() {
        let m = Metrics::new(64, 16);
        m.record_request("/v1/score", "POST", 200, Duration::from_millis(30));
        m.record_request("/v1/score", "POST", 200, Duration::from_millis(50));
        m.record_request("unmatched", "GET", 404, Duration::from_millis(1));
        m.record_batch(3, 1, Duration::from_millis(120));
        m.queue_depth_add(5);
        m.queue_depth_add(-2);
        let text = m.render();
        assert!(
            text.contains(
                r#"shotgrade_http_requests_total{route="/v1/score",method="POST",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"status="404""#));
        assert!(text.contains(r#"shotgrade_images_total{outcome="scored"} 2"#));
        assert!(text.contains(r#"shotgrade_images_total{outcome="error"} 1"#));
        assert!(text.contains("shotgrade_queue_depth 3"));
        assert!(text.contains("shotgrade_queue_capacity 64"));
        assert!(text.contains("shotgrade_batch_size_count 1"));
        assert!(text.contains("shotgrade_batch_size_sum 3"));
        assert!(text.contains(r#"shotgrade_batch_size_bucket{le="16.0"} 1"#));
        assert!(
            text.contains(r#"shotgrade_http_request_duration_seconds_count{route="/v1/score"} 2"#)
        );
        assert!(text.contains("shotgrade_batch_inference_seconds_sum 0.12"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn batch_buckets_end_at_the_max_batch() {
        let m = Metrics::new(8, 12);
        m.record_batch(12, 0, Duration::from_millis(1));
        let text = m.render();
        for le in ["1.0", "2.0", "4.0", "8.0", "12.0"] {
            assert!(
                text.contains(&format!(r#"shotgrade_batch_size_bucket{{le="{le}"}} "#)),
                "bucket {le} missing:\n{text}"
            );
        }
        assert!(!text.contains(r#"le="16.0""#));
    }
}
