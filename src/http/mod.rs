//! The HTTP edge: hyper connections, the hand-rolled router, the request pipeline, and the
//! helpers handlers use to read requests and build responses.
//!
//! Invariant: handlers never build error bodies (they return [`crate::error::ApiError`]), never
//! check credentials themselves (the route table says what a route needs), and never open a write
//! transaction (they go through the store's writer).

pub mod body;
pub mod connection;
pub mod prefixed_io;
pub mod request;
pub mod response;
pub mod router;
pub mod routes;
pub mod server;
pub mod service;
pub mod slots;
