//! The share-link checker: recognizing share URLs, asking providers, and turning their answers into
//! conservative verdicts.
//!
//! Here: the verdict model, URL and pass-code recognition, text extraction, the pooled outbound
//! client and one adapter per provider (`docs/providers.md` holds the facts they rest on). The job
//! engine (queues, SSE, durability) builds on these and is not known here.

pub mod cache;
pub mod client;
pub mod extract;
pub mod passcode;
pub mod providers;
pub mod share;
pub mod verdict;
