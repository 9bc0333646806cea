//! The public redirect: `GET /{code}` (and `HEAD`), and `POST /{code}` for password links.
//!
//! The lookup is the link cache (memory, else one short LMDB read); the click is one increment of
//! an in-memory counter. Expiry is checked on every lookup. A password link shows a form; the form
//! posts back here and a right password answers `303 See Other` to the target (never 307/308,
//! which would make the browser post the password to the target). A link's visitor rules are
//! read after the target's state and before the password form: a rule's page (open in your
//! browser) comes first, a rule's URL replaces the target once the password is right.

use http::header::{ACCEPT_LANGUAGE, CACHE_CONTROL, LOCATION, REFERER, RETRY_AFTER, USER_AGENT};
use http::{HeaderValue, Method, StatusCode};
use serde::Deserialize;

use super::LinkService;
use super::cache::CachedLink;
use super::clicks::{self, Visit};
use super::domains::{self, HostDomain};
use super::record::{AccessType, LinkStatus};
use super::{RedirectOutcome, analytics, api, code, pages, rules};
use crate::error::ApiError;
use crate::http::request::{self, RequestId};
use crate::http::response::{self, HttpResponse};
use crate::keys::KeyReq as Req;
use crate::timefmt;

/// `GET /{code}`.
pub fn follow(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let now = timefmt::now_ms();
    let link = match usable_link(links, req.parts, req.param("code"), now)? {
        Ok(link) => link,
        Err(page) => return Ok(page),
    };
    if let Some(fallback) = dead_target_fallback(links, &link) {
        return redirect(
            links,
            &link,
            fallback,
            &req,
            links.config.redirect_status,
            now,
        );
    }
    let location = match visitor_rule(links, &link, req.parts, req.request_id) {
        RuleChoice::Page(page) => return Ok(page),
        RuleChoice::Location(location) => location,
    };
    if link.record.access == AccessType::Password {
        links.count(RedirectOutcome::PasswordForm);
        return Ok(pages::password_form(
            link.record.short_code(),
            link.record.title.as_deref(),
            StatusCode::OK,
            None,
        ));
    }
    let location = counted_location(links, &link, location, req.request_id)?;
    redirect(
        links,
        &link,
        location,
        &req,
        links.config.redirect_status,
        now,
    )
}

/// The fallback to send a visitor to when the link's target share is dead and it has one.
fn dead_target_fallback<'a>(links: &LinkService, link: &'a CachedLink) -> Option<&'a HeaderValue> {
    if !link.record.target_dead() {
        return None;
    }
    let fallback = link.fallback.as_ref()?;
    links.count(RedirectOutcome::TargetFallback);
    Some(fallback)
}

/// What the visitor rules say for this request.
enum RuleChoice<'a> {
    /// A page instead of a redirect.
    Page(HttpResponse),
    /// A rule's own target, or `None`: the link's target.
    Location(Option<&'a HeaderValue>),
}

/// The first visitor rule that matches this request's visitor, if the link has rules (its page
/// is counted here; a redirect to its URL where it happens). A plain link costs one emptiness
/// test here.
fn visitor_rule<'a>(
    links: &LinkService,
    link: &'a CachedLink,
    parts: &http::request::Parts,
    request_id: &RequestId,
) -> RuleChoice<'a> {
    let rules = &link.record.rules;
    if rules.is_empty() {
        return RuleChoice::Location(None);
    }
    let headers = &parts.headers;
    let Some(index) = rules::first_match(
        rules,
        headers.get(USER_AGENT).map(HeaderValue::as_bytes),
        headers.get(ACCEPT_LANGUAGE).map(HeaderValue::as_bytes),
    ) else {
        return RuleChoice::Location(None);
    };
    if rules[index].action == Some(rules::Action::OpenInBrowser) {
        links.count(RedirectOutcome::OpenInBrowser);
        let short_url = api::full_short_url(links, &link.record, parts);
        return RuleChoice::Page(pages::open_in_browser(
            &short_url,
            link.record.title.as_deref(),
        ));
    }
    // A rule's URL is validated at creation; one that still makes no header sends the visitor
    // to the link's own target rather than nowhere.
    if link.rule_locations[index].is_none() {
        tracing::error!(
            request_id = request_id.as_str(),
            code = link.record.code,
            rule = index,
            "rule target is not a valid URL"
        );
    }
    RuleChoice::Location(link.rule_locations[index].as_ref())
}

/// Where an open link sends its visitor: a matched rule's URL, else the link's target; counted.
fn counted_location<'a>(
    links: &LinkService,
    link: &'a CachedLink,
    rule_location: Option<&'a HeaderValue>,
    request_id: &RequestId,
) -> Result<&'a HeaderValue, ApiError> {
    match rule_location {
        Some(location) => {
            links.count(RedirectOutcome::Rule);
            Ok(location)
        }
        None => {
            links.count(RedirectOutcome::Found);
            target_location(link, request_id)
        }
    }
}

/// The link's target as a `Location`.
fn target_location<'a>(
    link: &'a CachedLink,
    request_id: &RequestId,
) -> Result<&'a HeaderValue, ApiError> {
    link.location.as_ref().ok_or_else(|| {
        tracing::error!(
            request_id = request_id.as_str(),
            code = link.record.code,
            "stored target is not a valid URL"
        );
        ApiError::Internal
    })
}

#[derive(Deserialize)]
struct PasswordBody {
    password: String,
}

/// `POST /{code}`: the password form's submission.
pub async fn unlock(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let now = timefmt::now_ms();
    let link = match usable_link(links, req.parts, req.param("code"), now)? {
        Ok(link) => link,
        Err(page) => return Ok(page),
    };
    let id = link.record.code.as_str();
    let code = link.record.short_code();
    if let Some(fallback) = dead_target_fallback(links, &link) {
        return redirect(links, &link, fallback, &req, StatusCode::SEE_OTHER, now);
    }
    let rule_location = match visitor_rule(links, &link, req.parts, req.request_id) {
        RuleChoice::Page(page) => return Ok(page),
        RuleChoice::Location(location) => location,
    };
    if link.record.access == AccessType::Open {
        let location = counted_location(links, &link, rule_location, req.request_id)?;
        return redirect(links, &link, location, &req, StatusCode::SEE_OTHER, now);
    }
    let ip = req.peer.ip();
    if let Some(wait_s) = links.attempts.blocked(id, ip) {
        links.count(RedirectOutcome::PasswordLimited);
        let mut page = pages::password_form(
            code,
            link.record.title.as_deref(),
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!("密码错误次数过多，请 {wait_s} 秒后再试")),
        );
        page.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(wait_s));
        return Ok(page);
    }
    let parts = req.parts;
    let body = &req.body;
    let password = if request::is_json_content_type(&parts.headers) {
        request::parse_json::<PasswordBody>(body)?.password
    } else {
        url::form_urlencoded::parse(body)
            .find(|(name, _)| name == "password")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    let hash = link.record.password_hash.clone().unwrap_or_default();
    if !password.is_empty() && links.hasher.verify(password, hash).await? {
        links.attempts.succeeded(id, ip);
        links.count(RedirectOutcome::PasswordOk);
        let location = match rule_location {
            Some(location) => location,
            None => target_location(&link, req.request_id)?,
        };
        return redirect(
            links,
            &link,
            location,
            &req,
            StatusCode::SEE_OTHER,
            timefmt::now_ms(),
        );
    }
    links.attempts.failed(id, ip);
    links.count(RedirectOutcome::PasswordWrong);
    Ok(pages::password_form(
        code,
        link.record.title.as_deref(),
        StatusCode::FORBIDDEN,
        Some("密码错误，请重试"),
    ))
}

/// The link under `code` on the request's domain if it can be followed now, else the page to
/// answer.
fn usable_link(
    links: &LinkService,
    parts: &http::request::Parts,
    code: &str,
    now_ms: u64,
) -> Result<Result<std::sync::Arc<CachedLink>, HttpResponse>, ApiError> {
    let mut buffer = [0u8; domains::MAX_ID_LEN];
    let id = match links.domains.of_request(parts) {
        _ if !code::is_code_shape(code) => None,
        HostDomain::Default => Some(code),
        HostDomain::Other(domain) => domains::link_id_in(domain, code, &mut buffer),
        HostDomain::Refused => None,
    };
    let found = match id {
        Some(id) => links.cache.lookup(&links.store, id)?,
        None => None,
    };
    let Some(link) = found else {
        links.count(RedirectOutcome::NotFound);
        return Ok(Err(pages::not_found()));
    };
    match link.record.status_at(now_ms) {
        LinkStatus::Active if link.record.target_dead() && link.fallback.is_none() => {
            links.count(RedirectOutcome::TargetDead);
            Ok(Err(pages::share_dead(&link.record)))
        }
        LinkStatus::Active => Ok(Ok(link)),
        LinkStatus::Expired => {
            links.count(RedirectOutcome::Expired);
            Ok(Err(pages::expired()))
        }
        LinkStatus::Disabled => {
            links.count(RedirectOutcome::Disabled);
            Ok(Err(pages::disabled()))
        }
    }
}

/// Counts the visit and answers the redirect to `location`.
fn redirect(
    links: &LinkService,
    link: &CachedLink,
    location: &HeaderValue,
    req: &Req<'_>,
    status: StatusCode,
    now_ms: u64,
) -> Result<HttpResponse, ApiError> {
    let parts = req.parts;
    let headers = &parts.headers;
    let visit = if parts.method == Method::HEAD {
        Visit::Head
    } else if clicks::is_bot(headers.get(USER_AGENT).map(HeaderValue::as_bytes)) {
        Visit::Bot
    } else {
        Visit::Human
    };
    if let Some(max) = link.record.max_clicks {
        let code = link.record.code.as_str();
        let counted = || links.human_clicks(code);
        let allowed = match visit {
            Visit::Human => links.limits.take(code, max, counted),
            Visit::Bot | Visit::Head => !links.limits.exhausted(code, max, counted),
        };
        if !allowed {
            links.count(RedirectOutcome::Expired);
            return Ok(pages::expired());
        }
    }
    let referrer = headers
        .get(REFERER)
        .and_then(|value| clicks::referrer_host(value.as_bytes()));
    let day = links.clock.day_of(now_ms);
    let code = link.record.code.as_str();
    if visit == Visit::Human && links.config.analytics {
        let ip = analytics::client_ip(
            req.peer.ip(),
            headers.get("x-forwarded-for").map(HeaderValue::as_bytes),
            &links.config.trusted_proxies,
        );
        analytics::with_visitor(
            headers.get(USER_AGENT).map(HeaderValue::as_bytes),
            headers.get(ACCEPT_LANGUAGE).map(HeaderValue::as_bytes),
            ip,
            links.geo.as_ref(),
            |kind| links.clicks.record(code, visit, referrer, Some(kind), day),
        );
    } else {
        links.clicks.record(code, visit, referrer, None, day);
    }
    Ok(redirect_response(
        status,
        location,
        &links.redirect_cache_control,
    ))
}

/// The redirect itself: status, `Location`, `Cache-Control`, no body. Both header values are
/// prepared once (per link, per service), so this only bumps reference counts.
pub fn redirect_response(
    status: StatusCode,
    location: &HeaderValue,
    cache_control: &HeaderValue,
) -> HttpResponse {
    let mut response = response::empty(status);
    let out = response.headers_mut();
    out.insert(LOCATION, location.clone());
    out.insert(CACHE_CONTROL, cache_control.clone());
    response
}
