//! API keys: secrets, stored records, the authentication gate and the operations the admin API
//! and the `panlink keys` CLI share.
//!
//! Invariant: no secret is stored, logged or put in a metric; only its SHA-256 is kept.

pub mod api;
pub mod gate;
pub mod record;
pub mod repo;
pub mod scope;
pub mod secret;
pub mod validate;

pub use gate::{AuthedKey, KeyGate};

/// A request as the key routes' handlers see it: its caller is the API key it proved.
pub type KeyReq<'a> = crate::http::request::Req<'a, AuthedKey>;
pub use record::{KeyRecord, KeyView, Plan};
pub use scope::{Scope, Scopes};
