//! The stored API key record and its public view.

use serde::{Deserialize, Serialize};

use super::scope::Scopes;
use crate::timefmt;

/// What a key's owner paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Free,
    Premium,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Premium => "premium",
        }
    }

    pub fn parse(text: &str) -> Option<Plan> {
        match text {
            "free" => Some(Plan::Free),
            "premium" => Some(Plan::Premium),
            _ => None,
        }
    }
}

/// An API key as stored (under the SHA-256 of its secret). Never holds the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub plan: Plan,
    pub points: u64,
    pub disabled: bool,
    pub created_at_ms: u64,
    #[serde(default)]
    pub last_used_at_ms: Option<u64>,
    /// Authenticated requests, as flushed from the in-memory counters.
    #[serde(default)]
    pub requests: u64,
    /// Requests per second for this key; `None` → `keys.default_rate_per_s`.
    #[serde(default)]
    pub rate_per_s: Option<u32>,
    /// Burst size for this key; `None` → `keys.default_burst`.
    #[serde(default)]
    pub burst: Option<u32>,
    /// What the key may do (every scope for records made before scopes existed).
    #[serde(default)]
    pub scopes: Scopes,
}

/// The JSON shape of a key in the admin API: everything but the secret.
#[derive(Debug, Serialize)]
pub struct KeyView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub plan: &'static str,
    pub points: u64,
    pub disabled: bool,
    pub status: &'static str,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub requests: u64,
    pub rate_per_s: Option<u32>,
    pub burst: Option<u32>,
    pub scopes: Vec<&'static str>,
}

impl KeyRecord {
    /// The admin view, with `pending_requests` not yet flushed to storage added in.
    pub fn view(&self, pending_requests: u64, pending_last_used_ms: Option<u64>) -> KeyView<'_> {
        let last_used = match (self.last_used_at_ms, pending_last_used_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        KeyView {
            id: &self.id,
            name: &self.name,
            plan: self.plan.as_str(),
            points: self.points,
            disabled: self.disabled,
            status: if self.disabled { "disabled" } else { "active" },
            created_at: timefmt::rfc3339_ms(self.created_at_ms),
            last_used_at: last_used.map(timefmt::rfc3339_ms),
            requests: self.requests + pending_requests,
            rate_per_s: self.rate_per_s,
            burst: self.burst,
            scopes: self.scopes.names(),
        }
    }
}
