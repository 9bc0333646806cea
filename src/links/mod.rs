//! Short links: the API (`/api/v1/links…`, `/api/v1/groups`), the public redirect (`/{code}`),
//! click counting, statistics and QR codes.
//!
//! Reads on the redirect path go through [`cache::LinkCache`] (memory, else one short LMDB read
//! transaction); writes go through the group-commit writer; clicks are counted in memory
//! ([`clicks::ClickCounter`]) and flushed in batches.
//!
//! Invariant: the redirect never waits on the writer and never opens a write transaction.
//! Invariant: a link's target, password hash and statistics are shown only to the key that owns
//! it, except the target of an open link, which any key may restore.

pub mod api;
pub mod cache;
pub mod clicks;
pub mod code;
pub mod pages;
pub mod password;
pub mod qr;
pub mod record;
pub mod redirect;
pub mod repo;
pub mod target;

use http::HeaderValue;
use metrics::Counter;

use crate::config::LinksConfig;
use crate::store::Store;

/// Redirect outcomes, as metric label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectOutcome {
    Found,
    NotFound,
    Expired,
    Disabled,
    PasswordForm,
    PasswordOk,
    PasswordWrong,
    PasswordLimited,
}

impl RedirectOutcome {
    const ALL: [RedirectOutcome; 8] = [
        RedirectOutcome::Found,
        RedirectOutcome::NotFound,
        RedirectOutcome::Expired,
        RedirectOutcome::Disabled,
        RedirectOutcome::PasswordForm,
        RedirectOutcome::PasswordOk,
        RedirectOutcome::PasswordWrong,
        RedirectOutcome::PasswordLimited,
    ];

    fn label(self) -> &'static str {
        match self {
            RedirectOutcome::Found => "found",
            RedirectOutcome::NotFound => "not_found",
            RedirectOutcome::Expired => "expired",
            RedirectOutcome::Disabled => "disabled",
            RedirectOutcome::PasswordForm => "password_form",
            RedirectOutcome::PasswordOk => "password_ok",
            RedirectOutcome::PasswordWrong => "password_wrong",
            RedirectOutcome::PasswordLimited => "password_limited",
        }
    }
}

/// The short-link state every request shares.
pub struct LinkService {
    pub cache: cache::LinkCache,
    pub clicks: clicks::ClickCounter,
    pub attempts: password::AttemptLimiter,
    pub hasher: password::Hasher,
    /// `Cache-Control` of redirects, e.g. `private, max-age=90`.
    pub redirect_cache_control: HeaderValue,
    /// Registered once: the redirect path does no metric-registry lookup.
    redirects: [Counter; RedirectOutcome::ALL.len()],
}

impl LinkService {
    /// Builds the service; call after the metrics recorder is installed.
    pub fn new(config: &LinksConfig) -> LinkService {
        LinkService {
            cache: cache::LinkCache::new(config.cache_max_entries),
            clicks: clicks::ClickCounter::default(),
            attempts: password::AttemptLimiter::new(
                config.password_max_failures,
                config.password_window,
            ),
            hasher: password::Hasher::new(),
            redirect_cache_control: HeaderValue::from_str(&format!(
                "private, max-age={}",
                config.redirect_max_age_s
            ))
            .expect("a number is a valid header value"),
            redirects: RedirectOutcome::ALL
                .map(|o| metrics::counter!("panlink_redirects_total", "outcome" => o.label())),
        }
    }

    /// Counts one redirect request by outcome.
    pub fn count(&self, outcome: RedirectOutcome) {
        self.redirects[outcome as usize].increment(1);
    }

    /// Writes the clicks counted in memory (one write for all of them).
    pub async fn flush_clicks(&self, store: &Store) {
        let deltas = self.clicks.begin_flush();
        if deltas.is_empty() {
            self.attempts.forget_expired();
            return;
        }
        let links = deltas.len();
        let committed = match store
            .write(move |txn, dbs| repo::apply_clicks(txn, dbs, &deltas))
            .await
        {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = %err, links, "could not store clicks; will retry");
                false
            }
        };
        self.clicks.end_flush(committed);
        self.attempts.forget_expired();
    }
}
