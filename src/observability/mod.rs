//! Logs, metrics and the meta endpoints (`/`, `/health`, `/metrics`).
//!
//! Invariant: metric labels are bounded sets (route template, method, status class, provider);
//! never a URL, key, code or other user data.

pub mod health;
pub mod logging;
pub mod metrics;
