//! panlink: a share-link checker for nine Chinese cloud drives and a short-link service, served by
//! one process over a hand-rolled router on hyper, with LMDB for everything durable.
//!
//! `unsafe` is denied crate-wide and allowed in exactly one function, `store::lmdb::open_env`,
//! which opens the memory-mapped LMDB environment (a `#![forbid]` here could not be relaxed there;
//! a test checks that no other `allow(unsafe_code)` exists).
#![deny(unsafe_code)]

pub mod admin;
pub mod api;
pub mod checker;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod drive;
pub mod error;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod links;
pub mod mock;
pub mod monitors;
pub mod netguard;
pub mod observability;
pub mod security;
pub mod sse;
pub mod store;
pub mod timefmt;
pub mod web;
pub mod webhooks;
