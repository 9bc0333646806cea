//! Logs and metrics: the tracing set-up, the Prometheus recorder and the request metrics.
//!
//! Invariant: metric labels are bounded sets (route template, method, status class, provider);
//! never a URL, key, code or other user data.

pub mod logging;
pub mod metrics;
