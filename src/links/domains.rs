//! The short-link domains (`links.domains`): which one a request is for, from its `Host`; a
//! link's id on its domain; the short URL of a link.
//!
//! A link's id is its code on the default domain and `domain/code` on any other (neither a code
//! nor a host name holds `/`). Everything keyed by a link (the `links` table, clicks, statistics,
//! tags, the cache, click limits) is keyed by the id, so the same code can live on two domains
//! and links made before domains were configured keep their keys.
//!
//! Must not: allocate on the redirect path (the id of a link on another domain is built in a
//! buffer on the stack), or read the `Host` when no domains are configured.

use std::borrow::Cow;

use http::request::Parts;

use crate::config::LinksConfig;

/// Bytes of the longest id: a domain (see `links.domains`), `/`, a code.
pub const MAX_ID_LEN: usize = 255;

/// The configured domains.
#[derive(Debug, Clone)]
pub struct Domains {
    /// `None`: no domains configured (one nameless domain).
    default: Option<Box<str>>,
    /// The configured domains other than the default, lowercase.
    others: Box<[Box<str>]>,
    strict: bool,
    scheme: Box<str>,
}

/// Which domain a request's `Host` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostDomain<'a> {
    Default,
    Other(&'a str),
    /// None of them, with `links.strict_host`: nothing is served.
    Refused,
}

impl Domains {
    pub fn new(config: &LinksConfig) -> Domains {
        let default = config
            .default_domain
            .clone()
            .or_else(|| config.domains.first().cloned());
        let others = config
            .domains
            .iter()
            .filter(|d| Some(*d) != default.as_ref())
            .map(|d| d.as_str().into())
            .collect();
        Domains {
            default: default.map(Into::into),
            others,
            strict: config.strict_host,
            scheme: config.domain_scheme.as_str().into(),
        }
    }

    /// Whether `links.domains` is set.
    pub fn configured(&self) -> bool {
        self.default.is_some()
    }

    /// The default domain's name, when domains are configured.
    pub fn default_name(&self) -> Option<&str> {
        self.default.as_deref()
    }

    /// The domain of a request, from its authority (HTTP/2) or `Host` header.
    pub fn of_request(&self, parts: &Parts) -> HostDomain<'_> {
        if !self.configured() {
            return HostDomain::Default;
        }
        let authority = parts.uri.authority().map(|a| a.as_str()).or_else(|| {
            parts
                .headers
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
        });
        self.of_host(authority.map(host_of))
    }

    fn of_host(&self, host: Option<&str>) -> HostDomain<'_> {
        let Some(host) = host.map(|h| h.strip_suffix('.').unwrap_or(h)) else {
            return self.unknown();
        };
        if self
            .default
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(host))
        {
            return HostDomain::Default;
        }
        match self.others.iter().find(|d| d.eq_ignore_ascii_case(host)) {
            Some(domain) => HostDomain::Other(domain),
            None => self.unknown(),
        }
    }

    fn unknown(&self) -> HostDomain<'_> {
        if self.strict {
            HostDomain::Refused
        } else {
            HostDomain::Default
        }
    }

    /// The domain to store for a link on the domain a request names (`None` or empty: the
    /// default domain, which is stored as no domain); else why it cannot be used, in Chinese.
    pub fn stored(&self, given: Option<&str>) -> Result<Option<&str>, String> {
        let Some(given) = given.map(str::trim).filter(|d| !d.is_empty()) else {
            return Ok(None);
        };
        if !self.configured() {
            return Err("本服务只有一个短链接域名（未配置 links.domains），不用填写".to_owned());
        }
        let given = given.trim_end_matches('.');
        if self
            .default
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(given))
        {
            return Ok(None);
        }
        match self.others.iter().find(|d| d.eq_ignore_ascii_case(given)) {
            Some(domain) => Ok(Some(domain)),
            None => Err(format!(
                "不是本服务的短链接域名；可用：{}",
                self.default
                    .iter()
                    .chain(self.others.iter())
                    .map(|d| &**d)
                    .collect::<Vec<_>>()
                    .join("、")
            )),
        }
    }

    /// The short URL of the link `code` on `domain` (`None`: the default), when domains are
    /// configured.
    pub fn short_url(&self, domain: Option<&str>, code: &str) -> Option<String> {
        let domain = domain.or(self.default.as_deref())?;
        Some(format!("{}://{domain}/{code}", self.scheme))
    }
}

/// A host without its port.
fn host_of(authority: &str) -> &str {
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    }
}

/// The id of the link `code` on `domain` (`None`: the default domain).
pub fn link_id<'a>(domain: Option<&str>, code: &'a str) -> Cow<'a, str> {
    match domain {
        None => Cow::Borrowed(code),
        Some(domain) => Cow::Owned(format!("{domain}/{code}")),
    }
}

/// [`link_id`] in `buffer` for the redirect; `None` if it would not fit (no such link).
pub fn link_id_in<'b>(
    domain: &str,
    code: &str,
    buffer: &'b mut [u8; MAX_ID_LEN],
) -> Option<&'b str> {
    let len = domain.len() + 1 + code.len();
    let out = buffer.get_mut(..len)?;
    out[..domain.len()].copy_from_slice(domain.as_bytes());
    out[domain.len()] = b'/';
    out[domain.len() + 1..].copy_from_slice(code.as_bytes());
    std::str::from_utf8(out).ok()
}

/// The domain part of a link id (`None`: the default domain) and its code.
pub fn split_id(id: &str) -> (Option<&str>, &str) {
    match id.split_once('/') {
        Some((domain, code)) => (Some(domain), code),
        None => (None, id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, RawConfig};

    fn domains(list: &[&str], default: &str, strict: bool) -> Domains {
        let mut config = Config::from_raw(RawConfig::default()).unwrap().links;
        config.domains = list.iter().map(|d| d.to_string()).collect();
        config.default_domain = (!default.is_empty()).then(|| default.to_owned());
        config.strict_host = strict;
        Domains::new(&config)
    }

    #[test]
    fn hosts_pick_their_domain_and_unknown_ones_the_default_unless_strict() {
        let two = domains(&["a.example", "b.example"], "b.example", false);
        assert_eq!(two.of_host(Some("B.Example")), HostDomain::Default);
        assert_eq!(
            two.of_host(Some("a.example.")),
            HostDomain::Other("a.example")
        );
        assert_eq!(two.of_host(Some("c.example")), HostDomain::Default);
        assert_eq!(two.of_host(None), HostDomain::Default);
        let strict = domains(&["a.example", "b.example"], "", true);
        assert_eq!(strict.default_name(), Some("a.example"));
        assert_eq!(strict.of_host(Some("c.example")), HostDomain::Refused);
        assert_eq!(
            strict.of_host(Some("b.example")),
            HostDomain::Other("b.example")
        );
        let none = domains(&[], "", true);
        assert!(!none.configured());
        assert_eq!(none.short_url(None, "abc"), None);
        assert_eq!(host_of("a.example:8080"), "a.example");
        assert_eq!(host_of("[::1]:80"), "::1");
    }

    #[test]
    fn ids_and_short_urls() {
        let two = domains(&["a.example", "b.example"], "", false);
        assert_eq!(two.stored(Some("a.example")), Ok(None));
        assert_eq!(two.stored(Some("B.Example.")), Ok(Some("b.example")));
        assert_eq!(two.stored(Some(" ")), Ok(None));
        let unknown = two.stored(Some("c.example")).unwrap_err();
        assert!(unknown.contains("a.example、b.example"), "{unknown}");
        assert!(domains(&[], "", false).stored(Some("a.example")).is_err());
        assert_eq!(link_id(None, "abc"), "abc");
        assert_eq!(link_id(Some("b.example"), "abc"), "b.example/abc");
        let mut buffer = [0u8; MAX_ID_LEN];
        assert_eq!(
            link_id_in("b.example", "abc", &mut buffer),
            Some("b.example/abc")
        );
        assert_eq!(link_id_in(&"d".repeat(250), "abcdef", &mut buffer), None);
        assert_eq!(split_id("b.example/abc"), (Some("b.example"), "abc"));
        assert_eq!(split_id("abc"), (None, "abc"));
        assert_eq!(
            two.short_url(Some("b.example"), "abc").as_deref(),
            Some("https://b.example/abc")
        );
        assert_eq!(
            two.short_url(None, "abc").as_deref(),
            Some("https://a.example/abc")
        );
    }
}
