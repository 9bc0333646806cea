//! What a check concludes about one share link.
//!
//! Verdicts are conservative: only [`State::Invalid`] says a link is dead, and only a provider
//! answer that is known to mean "gone" produces it. Anything unrecognised, an HTML shell, a
//! timeout or a rate limit is [`State::Unknown`].

use serde::{Deserialize, Serialize};

/// The coarse outcome: only `Invalid` means the link is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Valid,
    Invalid,
    /// The share exists but needs a pass code, or rejected the one given.
    Locked,
    /// panlink could not tell.
    Unknown,
}

/// The fine-grained reason of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    AllChecksPassed,
    EmptyShare,
    ShareCancelled,
    ShareExpired,
    ShareNotFound,
    ShareViolation,
    PasswordRequired,
    PasswordWrong,
    /// The provider is still reviewing the share: it may yet be published or blocked.
    UnderReview,
    RateLimited,
    Timeout,
    /// The provider answered with a server error, or the exchange broke off midway.
    UpstreamError,
    /// The provider could not be reached: its name did not resolve or the connection failed.
    UpstreamUnreachable,
    UnrecognizedResponse,
    UnsupportedProvider,
    InvalidUrl,
    Cancelled,
    /// The provider refused the form of panlink's request itself (not the share): every check of
    /// that provider is blind until the adapter is fixed.
    RequestRejected,
    /// The provider answered with an anti-bot challenge panlink could not pass (a shape it does
    /// not know, or a second challenge after solving one).
    AntiBotChallenge,
    /// The provider's public evidence does not tell what this answer means for the share, so
    /// panlink does not guess.
    ProviderUnverified,
}

impl Reason {
    /// Every reason, in declaration order ([`index`](Self::index) is the position here).
    pub const ALL: [Reason; 20] = [
        Reason::AllChecksPassed,
        Reason::EmptyShare,
        Reason::ShareCancelled,
        Reason::ShareExpired,
        Reason::ShareNotFound,
        Reason::ShareViolation,
        Reason::PasswordRequired,
        Reason::PasswordWrong,
        Reason::UnderReview,
        Reason::RateLimited,
        Reason::Timeout,
        Reason::UpstreamError,
        Reason::UpstreamUnreachable,
        Reason::UnrecognizedResponse,
        Reason::UnsupportedProvider,
        Reason::InvalidUrl,
        Reason::Cancelled,
        Reason::RequestRejected,
        Reason::AntiBotChallenge,
        Reason::ProviderUnverified,
    ];

    /// The reason's position in [`ALL`](Self::ALL).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether another attempt later may give a different answer (the engine retries these).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Reason::RateLimited
                | Reason::Timeout
                | Reason::UpstreamError
                | Reason::UpstreamUnreachable
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AllChecksPassed => "all_checks_passed",
            Reason::EmptyShare => "empty_share",
            Reason::ShareCancelled => "share_cancelled",
            Reason::ShareExpired => "share_expired",
            Reason::ShareNotFound => "share_not_found",
            Reason::ShareViolation => "share_violation",
            Reason::PasswordRequired => "password_required",
            Reason::PasswordWrong => "password_wrong",
            Reason::UnderReview => "under_review",
            Reason::RateLimited => "rate_limited",
            Reason::Timeout => "timeout",
            Reason::UpstreamError => "upstream_error",
            Reason::UpstreamUnreachable => "upstream_unreachable",
            Reason::UnrecognizedResponse => "unrecognized_response",
            Reason::UnsupportedProvider => "unsupported_provider",
            Reason::InvalidUrl => "invalid_url",
            Reason::Cancelled => "cancelled",
            Reason::RequestRejected => "request_rejected",
            Reason::AntiBotChallenge => "anti_bot_challenge",
            Reason::ProviderUnverified => "provider_unverified",
        }
    }
}

/// When a share expires, as far as its provider says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Permanent,
    /// Unix milliseconds.
    At(u64),
    Unknown,
}

impl Expiry {
    /// `永久有效`, `剩余 N 天` (rounded up), `已过期`, or `None` when unknown.
    pub fn label(self, now_ms: u64) -> Option<String> {
        match self {
            Expiry::Permanent => Some("永久有效".to_owned()),
            Expiry::At(at) if at <= now_ms => Some("已过期".to_owned()),
            Expiry::At(at) => {
                let days = (at - now_ms).div_ceil(86_400_000);
                Some(format!("剩余 {days} 天"))
            }
            Expiry::Unknown => None,
        }
    }

    pub fn expires_at_ms(self) -> Option<u64> {
        match self {
            Expiry::At(at) => Some(at),
            Expiry::Permanent | Expiry::Unknown => None,
        }
    }
}

/// The verdict on one share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub state: State,
    pub reason: Reason,
    pub share_name: Option<String>,
    pub file_count: Option<u64>,
    pub expiry: Expiry,
    /// The provider's raw code (`41008`, `-21`, `ShareLink.Cancelled`, `HTTP 429`, …).
    pub provider_code: Option<String>,
}

impl Verdict {
    /// A verdict with no details beyond state and reason.
    pub fn new(state: State, reason: Reason) -> Verdict {
        Verdict {
            state,
            reason,
            share_name: None,
            file_count: None,
            expiry: Expiry::Unknown,
            provider_code: None,
        }
    }

    /// `unknown` with `reason`, the provider's code attached.
    pub fn unknown(reason: Reason, code: impl Into<Option<String>>) -> Verdict {
        Verdict::new(State::Unknown, reason).with_code(code)
    }

    pub fn with_code(mut self, code: impl Into<Option<String>>) -> Verdict {
        self.provider_code = code.into();
        self
    }

    /// Whether the link is valid.
    pub fn is_valid(&self) -> bool {
        self.state == State::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed_once_at_its_index() {
        for (at, reason) in Reason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), at, "{reason:?}");
        }
        // A reason added to the enum but not to `ALL` would index past its end.
        assert_eq!(Reason::ProviderUnverified.index() + 1, Reason::ALL.len());
    }

    #[test]
    fn expiry_labels() {
        let day = 86_400_000;
        assert_eq!(Expiry::Permanent.label(0).as_deref(), Some("永久有效"));
        assert_eq!(Expiry::At(7 * day).label(0).as_deref(), Some("剩余 7 天"));
        assert_eq!(
            Expiry::At(7 * day - 1).label(0).as_deref(),
            Some("剩余 7 天")
        );
        assert_eq!(Expiry::At(day / 2).label(0).as_deref(), Some("剩余 1 天"));
        assert_eq!(Expiry::At(5).label(5).as_deref(), Some("已过期"));
        assert_eq!(Expiry::Unknown.label(0), None);
    }

    #[test]
    fn only_transient_reasons_are_retried() {
        assert!(Reason::RateLimited.is_transient());
        assert!(Reason::Timeout.is_transient());
        assert!(!Reason::ShareNotFound.is_transient());
        assert!(!Reason::UnrecognizedResponse.is_transient());
    }

    #[test]
    fn reasons_serialize_as_their_names() {
        for reason in [
            Reason::AllChecksPassed,
            Reason::PasswordWrong,
            Reason::UnsupportedProvider,
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }
}
