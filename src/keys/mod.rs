//! API keys: secrets, stored records, the authentication gate, the operations the admin API
//! and the `panlink keys` CLI share, and the book through which a server changes keys (local, or
//! the cluster's bucket first in cluster mode).
//!
//! Invariant: no secret is stored, logged or put in a metric; only its SHA-256 is kept.

pub mod api;
pub mod book;
pub mod gate;
pub mod record;
pub mod repo;
pub mod scope;
pub mod secret;
pub mod validate;

pub use book::KeyBook;
pub use gate::{AuthedKey, KeyGate};

/// A request as the key routes' handlers see it: its caller is the API key it proved.
pub type KeyReq<'a> = crate::http::request::Req<'a, AuthedKey>;
pub use record::{KeyRecord, KeyView, Plan};
pub use scope::{Scope, Scopes};
