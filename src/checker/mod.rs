//! The share-link checker: recognizing share URLs, asking providers, and turning their answers into
//! conservative verdicts.
//!
//! So far: the verdict model, URL and pass-code recognition, text extraction, the pooled outbound
//! client, and the quark and baidu adapters. The job engine (queues, SSE, durability) builds on
//! these (issue 3).

pub mod cache;
pub mod client;
pub mod extract;
pub mod passcode;
pub mod providers;
pub mod share;
pub mod verdict;
