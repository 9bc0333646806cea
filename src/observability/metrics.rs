//! Prometheus metrics: the recorder (real histograms with buckets, not summaries), the helpers the
//! HTTP edge calls, and the `/metrics` handler.

use std::sync::OnceLock;
use std::time::Duration;

use http::{Method, StatusCode};
use metrics::{
    Counter, Histogram, counter, describe_counter, describe_gauge, describe_histogram, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rustc_hash::FxHashMap;

const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Reads the bytes the process's allocator has handed out; the binary, which chooses the
/// allocator, installs it (the library does not know which allocator it runs on).
static HEAP_READER: OnceLock<fn() -> Option<u64>> = OnceLock::new();

/// Installs the reader of `panlink_heap_allocated_bytes`.
pub fn set_heap_reader(reader: fn() -> Option<u64>) {
    let _ = HEAP_READER.set(reader);
}

/// Bytes allocated on the heap now, if the binary said how to read it.
pub fn heap_allocated() -> Option<u64> {
    HEAP_READER.get().and_then(|read| read())
}

/// Per worker thread: (route address, route length, method, status class) → its metric handles.
type RequestHandles = FxHashMap<(usize, usize, &'static str, &'static str), (Counter, Histogram)>;

/// The process's metrics recorder and the helpers the edge uses.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the global recorder once per process and returns a handle to it.
    pub fn install() -> Metrics {
        let handle = HANDLE.get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("panlink_lmdb_batch_ops".into()),
                        BATCH_BUCKETS,
                    )
                })
                .expect("bucket lists are non-empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            handle
        });
        Metrics {
            handle: handle.clone(),
        }
    }

    /// Housekeeping the exporter needs periodically (histogram storage is drained here).
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Counts a finished request by route template, method and status class.
    pub fn observe_request(
        &self,
        route: &'static str,
        method: &Method,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        let class = status_class(status);
        // The handles are looked up in the global registry once per worker thread and label set,
        // then kept in a thread-local map (route templates are `&'static str`: keyed by address and length).
        thread_local! {
            static HANDLES: std::cell::RefCell<RequestHandles> = std::cell::RefCell::default();
        }
        HANDLES.with_borrow_mut(|handles| {
            let (requests, duration) = handles
                .entry((route.as_ptr() as usize, route.len(), method, class))
                .or_insert_with(|| {
                    (
                        counter!("panlink_http_requests_total", "route" => route, "method" => method, "status" => class),
                        histogram!("panlink_http_request_duration_seconds", "route" => route, "method" => method),
                    )
                });
            requests.increment(1);
            duration.record(elapsed.as_secs_f64());
        });
    }

    /// The Prometheus text of every metric.
    pub fn render_text(&self) -> String {
        self.handle.render()
    }
}

fn describe() {
    describe_counter!(
        "panlink_http_requests_total",
        "HTTP requests by route template, method and status class"
    );
    describe_histogram!(
        "panlink_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to produce the response head, by route template"
    );
    describe_counter!(
        "panlink_http_shed_total",
        "Requests or connections refused with 503 to protect the server"
    );
    describe_counter!(
        "panlink_http_write_stalled_total",
        "Connections dropped because their client took none of their bytes for http.write_stall_timeout_ms"
    );
    describe_gauge!("panlink_http_open_connections", "Open client connections");
    describe_gauge!("panlink_http_in_flight", "Requests being handled");
    describe_histogram!(
        "panlink_lmdb_commit_seconds",
        metrics::Unit::Seconds,
        "LMDB group-commit latency"
    );
    describe_histogram!("panlink_lmdb_batch_ops", "Write operations per LMDB commit");
    describe_gauge!(
        "panlink_lmdb_disk_bytes",
        metrics::Unit::Bytes,
        "Size of the LMDB data file"
    );
    describe_gauge!(
        "panlink_heap_allocated_bytes",
        metrics::Unit::Bytes,
        "Bytes the allocator has handed out and not taken back (jemalloc's stats.allocated)"
    );
    describe_gauge!(
        "panlink_monitor_scheduled_links",
        "Entries of the monitors' schedule (links waiting for their next check)"
    );
    describe_gauge!(
        "panlink_monitor_schedule_bytes",
        metrics::Unit::Bytes,
        "Heap the monitors' schedule holds"
    );
    describe_gauge!(
        "panlink_monitor_checks_in_flight",
        "Monitor re-checks handed to the background lanes and not yet recorded"
    );
    describe_gauge!(
        "panlink_monitor_checks_recorded",
        "Monitor re-checks recorded since start"
    );
    describe_counter!(
        "panlink_webhook_attempts_total",
        "Webhook delivery attempts, by outcome (delivered, refused, failed)"
    );
    describe_gauge!(
        "panlink_uptime_seconds",
        metrics::Unit::Seconds,
        "Seconds since the server started"
    );
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
