//! Checker jobs: the HTTP API, the engine that checks their links, durable records, and the
//! public pool counters.
//!
//! Invariant: a result is published (SSE, counts) only after the commit that stores it; every item
//! gets exactly one result event; event ids of a job are 1, 2, 3 … without gaps.

pub mod api;
pub mod engine;
pub mod health;
pub mod pool;
pub mod record;
