//! The HTTP toolkit: the server loop over hyper connections (timers, caps, graceful drain), the
//! hand-rolled router, requests (body reading at a pace, JSON decoding, [`request::Req`]),
//! responses and the one error renderer, per-owner concurrency slots.
//!
//! Invariant: `http/` knows no product and no application: it imports configuration, the error
//! vocabulary and the store's error only; the application plugs in through
//! [`server::Handler`] and the route table it gives [`router::Router`].

pub mod body;
pub mod connection;
pub mod request;
pub mod response;
pub mod router;
pub mod server;
pub mod signal;
pub mod slots;
pub mod watched_io;
