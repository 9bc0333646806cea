//! The short-link API: create (one or a batch), restore, list, edit, delete, groups, statistics
//! and QR codes. Every answer is the `{code, msg, data, request_id}` envelope; errors go through
//! the one error table.
//!
//! Choices where the spec is silent (README "Short links" has the list): a link's target, stats
//! and edits belong to the key that created it (others get 404); any key may restore an open
//! link; empty strings in optional create fields mean "absent"; a deleted code may be taken again.

use http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::domains::{self, Domains};
use super::record::{AccessType, ClickTotals, GroupRecord, LinkRecord, LinkStatus, Utm};
use super::repo::{self, ChangeOutcome, InsertOutcome, LinkPatch, NewLink};
use super::{book, code, password, qr, rules, target, watch};
use http::request::Parts;

use super::LinkService;
use crate::error::ApiError;
use crate::http::request::query_param;
use crate::http::response::{self, HttpResponse};
use crate::keys::KeyReq as Req;
use crate::keys::{AuthedKey, Plan};
use crate::timefmt;

/// Days of the per-day statistics.
/// Referrer hosts in the statistics.
const MAX_TITLE: usize = 512;
const MAX_GROUP_NAME: usize = 64;

/// The body of `POST /api/v1/links` and of each batch item.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    url: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    alias: Option<String>,
    /// One of `links.domains`; absent: the default domain.
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    group_id: Option<u64>,
    #[serde(default)]
    expire_at: Option<String>,
    #[serde(default)]
    access_type: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    fallback_url: Option<String>,
    #[serde(default)]
    watch_target: Option<bool>,
    #[serde(default)]
    max_clicks: Option<u64>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    utm: Option<UtmBody>,
    /// Read by [`rules::parse`], which names the path of a bad value.
    #[serde(default)]
    rules: Option<Value>,
}

/// UTM parameters as a request gives them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UtmBody {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    medium: Option<String>,
    #[serde(default)]
    campaign: Option<String>,
    #[serde(default)]
    term: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

const MAX_TAGS: usize = 10;
const MAX_TAG_CHARS: usize = 32;
const MAX_UTM_CHARS: usize = 256;

fn check_tags(tags: Vec<String>, name: &str) -> Result<Vec<String>, ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::field(
            name.to_owned(),
            format!("最多 {MAX_TAGS} 个标签"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for (i, tag) in tags.into_iter().enumerate() {
        let tag = tag.trim().to_owned();
        if tag.is_empty()
            || tag.chars().count() > MAX_TAG_CHARS
            || tag.chars().any(char::is_control)
        {
            return Err(ApiError::field(
                format!("{name}[{i}]"),
                format!("须为 1 到 {MAX_TAG_CHARS} 个字符，且不能包含控制字符"),
            ));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

fn check_utm(body: UtmBody, name: &str) -> Result<Option<Utm>, ApiError> {
    let one = |value: Option<String>, part: &str| -> Result<Option<String>, ApiError> {
        let value = nonempty(value);
        if let Some(v) = &value
            && (v.chars().count() > MAX_UTM_CHARS || v.chars().any(char::is_control))
        {
            return Err(ApiError::field(
                format!("{name}.{part}"),
                format!("最多 {MAX_UTM_CHARS} 个字符，且不能包含控制字符"),
            ));
        }
        Ok(value)
    };
    let utm = Utm {
        source: one(body.source, "source")?,
        medium: one(body.medium, "medium")?,
        campaign: one(body.campaign, "campaign")?,
        term: one(body.term, "term")?,
        content: one(body.content, "content")?,
    };
    Ok((utm != Utm::default()).then_some(utm))
}

/// A validated create body; the password is hashed just before the write.
pub(super) struct Validated {
    pub(super) new: NewLink,
    pub(super) password: Option<String>,
}

/// What validation needs to know about the caller and the request.
pub struct Context<'a> {
    pub plan: Plan,
    pub max_url_len: usize,
    pub own_hosts: Vec<&'a str>,
    pub domains: &'a Domains,
}

impl<'a> Context<'a> {
    pub(super) fn of(links: &'a LinkService, parts: &'a Parts, key: &AuthedKey) -> Context<'a> {
        Context {
            plan: key.record.plan,
            max_url_len: links.config.max_url_len,
            own_hosts: own_hosts(links, parts),
            domains: &links.domains,
        }
    }
}

/// The domain a create body names, as stored (`None`: the default domain).
fn check_domain(
    given: Option<String>,
    ctx: &Context<'_>,
    name: &str,
) -> Result<Option<String>, ApiError> {
    ctx.domains
        .stored(given.as_deref())
        .map(|d| d.map(str::to_owned))
        .map_err(|why| ApiError::field(name.to_owned(), why))
}

fn nonempty(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

fn field(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn check_url(text: &str, ctx: &Context<'_>, name: &str) -> Result<(), ApiError> {
    let url = target::parse(text, ctx.max_url_len)
        .map_err(|why| ApiError::field(name.to_owned(), why))?;
    if target::is_own_host(&url, &ctx.own_hosts) {
        return Err(ApiError::field(
            name.to_owned(),
            "不能为本服务的短链接再生成短链接",
        ));
    }
    Ok(())
}

fn check_title(title: Option<String>, name: &str) -> Result<Option<String>, ApiError> {
    let title = nonempty(title);
    if let Some(title) = &title
        && (title.chars().count() > MAX_TITLE || title.chars().any(char::is_control))
    {
        return Err(ApiError::field(
            name.to_owned(),
            format!("最多 {MAX_TITLE} 个字符，且不能包含控制字符"),
        ));
    }
    Ok(title)
}

fn check_rules(value: &Value, ctx: &Context<'_>, name: &str) -> Result<Vec<rules::Rule>, ApiError> {
    if value.is_null() {
        return Ok(Vec::new());
    }
    rules::parse(value, name, |url, path| check_url(url, ctx, path))
}

fn check_max_clicks(max: Option<u64>, name: &str) -> Result<Option<u64>, ApiError> {
    match max {
        Some(0) => Err(ApiError::field(name.to_owned(), "至少为 1")),
        other => Ok(other),
    }
}

fn check_expiry(text: &str, name: &str) -> Result<u64, ApiError> {
    let at = timefmt::parse_rfc3339_ms(text).ok_or_else(|| {
        ApiError::field(
            name.to_owned(),
            "必须是 ISO 8601 时间，如 2024-12-31T23:59:59Z 或 2024-12-31T23:59:59+08:00",
        )
    })?;
    if at <= timefmt::now_ms() {
        return Err(ApiError::field(name.to_owned(), "不能早于当前时间"));
    }
    Ok(at)
}

/// The create body of an imported row: what a CSV file can say of a link.
pub(super) fn import_body(
    url: String,
    alias: Option<String>,
    title: Option<String>,
    tags: Vec<String>,
    domain: Option<String>,
    max_clicks: Option<u64>,
) -> CreateBody {
    CreateBody {
        url,
        title,
        alias,
        domain,
        group_id: None,
        expire_at: None,
        access_type: None,
        password: None,
        fallback_url: None,
        watch_target: None,
        max_clicks,
        tags: Some(tags),
        utm: None,
        rules: None,
    }
}

pub(super) fn validate(
    body: CreateBody,
    ctx: &Context<'_>,
    prefix: &str,
) -> Result<Validated, ApiError> {
    let url = body.url.trim().to_owned();
    check_url(&url, ctx, &field(prefix, "url"))?;
    let title = check_title(body.title, &field(prefix, "title"))?;
    let alias = nonempty(body.alias);
    if let Some(alias) = &alias {
        if ctx.plan != Plan::Premium {
            return Err(ApiError::PlanNotAllowed("自定义短码"));
        }
        match code::check_alias(alias) {
            Ok(()) => {}
            Err(code::AliasProblem::Reserved) => return Err(ApiError::AliasReserved),
            Err(code::AliasProblem::Length) => {
                return Err(ApiError::field(
                    field(prefix, "alias"),
                    format!("长度须为 {} 到 {} 个字符", code::ALIAS_MIN, code::ALIAS_MAX),
                ));
            }
            Err(code::AliasProblem::Characters) => {
                return Err(ApiError::field(
                    field(prefix, "alias"),
                    "只能包含字母、数字、下划线和连字符",
                ));
            }
        }
    }
    let expire_at_ms = nonempty(body.expire_at)
        .map(|text| check_expiry(&text, &field(prefix, "expire_at")))
        .transpose()?;
    let access = match nonempty(body.access_type).as_deref() {
        None => AccessType::Open,
        Some(text) => AccessType::parse(text).ok_or_else(|| {
            ApiError::field(field(prefix, "access_type"), "必须是 open 或 password")
        })?,
    };
    let password = match (access, body.password) {
        (AccessType::Password, Some(pw)) => {
            password::check(&pw).map_err(|why| ApiError::field(field(prefix, "password"), why))?;
            Some(pw)
        }
        (AccessType::Password, None) => {
            return Err(ApiError::field(
                field(prefix, "password"),
                "access_type 为 password 时必须提供密码",
            ));
        }
        (AccessType::Open, Some(pw)) if !pw.is_empty() => {
            return Err(ApiError::field(
                field(prefix, "password"),
                "只有 access_type 为 password 的链接才能设置密码",
            ));
        }
        (AccessType::Open, _) => None,
    };
    let fallback_url = nonempty(body.fallback_url);
    if let Some(fallback) = &fallback_url {
        check_url(fallback, ctx, &field(prefix, "fallback_url"))?;
    }
    Ok(Validated {
        new: NewLink {
            url,
            title,
            alias,
            domain: check_domain(body.domain, ctx, &field(prefix, "domain"))?,
            group_id: body.group_id,
            expire_at_ms,
            access,
            password_hash: None,
            fallback_url,
            watch_target: body.watch_target.unwrap_or(true),
            max_clicks: check_max_clicks(body.max_clicks, &field(prefix, "max_clicks"))?,
            tags: check_tags(body.tags.unwrap_or_default(), &field(prefix, "tags"))?,
            utm: body
                .utm
                .map(|utm| check_utm(utm, &field(prefix, "utm")))
                .transpose()?
                .flatten(),
            rules: body
                .rules
                .map(|value| check_rules(&value, ctx, &field(prefix, "rules")))
                .transpose()?
                .unwrap_or_default(),
        },
        password,
    })
}

/// The hosts under which this service is reached: the fixed ones and the request's `Host`.
/// Links to them would lead back here.
pub fn own_hosts<'a>(links: &'a LinkService, parts: &'a Parts) -> Vec<&'a str> {
    let requested = request_authority(parts).map(host_of_authority);
    links
        .own_hosts
        .iter()
        .map(String::as_str)
        .chain(requested)
        .collect()
}

pub(crate) fn host_of_authority(authority: &str) -> &str {
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    }
}

fn request_authority(parts: &Parts) -> Option<&str> {
    parts
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            parts
                .headers
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
        })
        .filter(|host| {
            !host.is_empty()
                && host.len() <= 255
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
}

/// `server.public_base_url`, else `http(s)://` + the request's host (`X-Forwarded-Proto` picks
/// the scheme behind a TLS proxy).
pub fn base_url(links: &LinkService, parts: &Parts) -> String {
    if let Some(base) = &links.public_base_url {
        return base.clone();
    }
    let scheme = match parts.headers.get("x-forwarded-proto").map(|v| v.as_bytes()) {
        Some(b"https") => "https",
        _ => "http",
    };
    let host = request_authority(parts)
        .map(str::to_owned)
        .unwrap_or_else(|| links.listen.to_string());
    format!("{scheme}://{host}")
}

#[derive(Serialize)]
struct ClickView {
    human: u64,
    bot: u64,
    head: u64,
}

#[derive(Serialize)]
struct LinkView<'a> {
    code: &'a str,
    /// The link's domain (`links.domains`); null when none are configured.
    domain: Option<&'a str>,
    alias: Option<&'a str>,
    url: &'a str,
    title: Option<&'a str>,
    full_short_url: String,
    access_type: &'static str,
    status: &'static str,
    /// Why an expired link expired: `expire_at` or `max_clicks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    expired_reason: Option<&'static str>,
    max_clicks: Option<u64>,
    tags: &'a [String],
    utm: Option<&'a Utm>,
    rules: &'a [rules::Rule],
    group_id: u64,
    created_at: String,
    updated_at: String,
    expire_at: Option<String>,
    fallback_url: Option<&'a str>,
    watch_target: bool,
    /// The target share's state: null when the target is no share or not checked yet.
    target: Option<TargetView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    click: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    clicks: Option<ClickView>,
}

#[derive(Serialize)]
struct TargetView {
    provider: crate::checker::share::Provider,
    state: crate::checker::verdict::State,
    reason: Option<crate::checker::verdict::Reason>,
    share_name: Option<String>,
    checked_at: String,
    since: String,
}

/// The short URL of `link`: on its domain when domains are configured, else under the base URL
/// of the service ([`base_url`]).
pub fn full_short_url(links: &LinkService, link: &LinkRecord, parts: &Parts) -> String {
    short_url(links, link, || base_url(links, parts))
}

fn short_url(links: &LinkService, link: &LinkRecord, base: impl FnOnce() -> String) -> String {
    links
        .domains
        .short_url(link.domain(), link.short_code())
        .unwrap_or_else(|| format!("{}/{}", base(), link.short_code()))
}

fn view<'a>(
    links: &'a LinkService,
    link: &'a LinkRecord,
    base: &str,
    totals: Option<ClickTotals>,
) -> LinkView<'a> {
    let mut status = link.status_at(timefmt::now_ms());
    let mut expired_reason = (status == LinkStatus::Expired).then_some("expire_at");
    if status == LinkStatus::Active
        && let (Some(max), Some(totals)) = (link.max_clicks, totals)
        && totals.human >= max
    {
        status = LinkStatus::Expired;
        expired_reason = Some("max_clicks");
    }
    LinkView {
        code: link.short_code(),
        domain: link.domain().or(links.domains.default_name()),
        alias: link.custom.then_some(link.short_code()),
        url: &link.url,
        title: link.title.as_deref(),
        full_short_url: short_url(links, link, || base.to_owned()),
        access_type: link.access.as_str(),
        status: status.as_str(),
        expired_reason,
        max_clicks: link.max_clicks,
        tags: &link.tags,
        utm: link.utm.as_ref(),
        rules: &link.rules,
        group_id: link.group_id,
        created_at: timefmt::rfc3339_ms(link.created_at_ms),
        updated_at: timefmt::rfc3339_ms(link.updated_at_ms),
        expire_at: link.expire_at_ms.map(timefmt::rfc3339_ms),
        fallback_url: link.fallback_url.as_deref(),
        watch_target: link.watch_target,
        target: link.target.as_ref().map(|t| TargetView {
            provider: t.provider,
            state: t.state,
            reason: t.reason,
            share_name: t.share_name.clone(),
            checked_at: timefmt::rfc3339_ms(t.checked_at_ms),
            since: timefmt::rfc3339_ms(t.since_ms),
        }),
        click: totals.map(|t| t.human),
        clicks: totals.map(|t| ClickView {
            human: t.human,
            bot: t.bot,
            head: t.head,
        }),
    }
}

/// Stored clicks plus those still in memory.
fn totals_of(links: &LinkService, code: &str) -> Result<ClickTotals, ApiError> {
    let mut totals = links
        .store
        .read(|txn, dbs| repo::click_totals(txn, dbs, code))?;
    totals.add(&links.clicks.pending(code).totals);
    Ok(totals)
}

pub(super) fn key_of(req: &Req<'_>) -> Result<AuthedKey, ApiError> {
    req.caller.clone().ok_or(ApiError::MissingApiKey)
}

/// Hashes the password of a validated link, if it has one.
async fn hash_password(links: &LinkService, item: &mut Validated) -> Result<(), ApiError> {
    if let Some(pw) = item.password.take() {
        item.new.password_hash = Some(links.hasher.hash(pw).await?);
    }
    Ok(())
}

fn insert_error(outcome: &InsertOutcome, prefix: &str) -> Option<ApiError> {
    match outcome {
        InsertOutcome::Created(_) => None,
        InsertOutcome::AliasTaken => Some(ApiError::AliasTaken),
        InsertOutcome::GroupNotFound => {
            Some(ApiError::field(field(prefix, "group_id"), "分组不存在"))
        }
    }
}

/// `POST /api/v1/links`.
pub async fn create(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req)?;
    let base = base_url(links, req.parts);
    let ctx = Context::of(links, req.parts, &key);
    let request_id = req.request_id;
    let body: CreateBody = req.json()?;
    let mut item = validate(body, &ctx, "")?;
    hash_password(links, &mut item).await?;
    let outcome = book::create(links, &key.record.id, item.new).await?;
    if let Some(err) = insert_error(&outcome, "") {
        return Err(err);
    }
    let InsertOutcome::Created(link) = outcome else {
        return Err(ApiError::Internal);
    };
    metrics::counter!("panlink_links_created_total", "via" => "single").increment(1);
    Ok(response::envelope(
        StatusCode::OK,
        &view(links, &link, &base, None),
        request_id,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    items: Vec<Value>,
}

#[derive(Serialize)]
pub(super) struct BatchError {
    code: u16,
    error: &'static str,
    msg: String,
}

#[derive(Serialize)]
struct BatchItem<'a> {
    index: usize,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<LinkView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<BatchError>,
}

pub(super) fn batch_error(err: &ApiError) -> BatchError {
    let spec = err.spec();
    BatchError {
        code: spec.code,
        error: spec.slug,
        msg: spec.message.into_owned(),
    }
}

/// `POST /api/v1/links/batch`: up to `links.batch_max_items` create bodies; the valid ones are
/// created in one commit, each item answered in order with its link or its error.
pub async fn create_batch(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req)?;
    let base = base_url(links, req.parts);
    let ctx = Context::of(links, req.parts, &key);
    let request_id = req.request_id;
    let body: BatchBody = req.json()?;
    let limit = links.config.batch_max_items;
    if body.items.is_empty() || body.items.len() > limit {
        return Err(ApiError::field(
            "items",
            format!("须包含 1 到 {limit} 个链接"),
        ));
    }
    let count = body.items.len();
    let mut errors: Vec<Option<ApiError>> = Vec::with_capacity(count);
    let mut valid: Vec<(usize, Validated)> = Vec::with_capacity(count);
    for (index, value) in body.items.into_iter().enumerate() {
        let prefix = format!("items[{index}]");
        let parsed = serde_path_to_error::deserialize::<_, CreateBody>(value).map_err(|err| {
            let path = err.path().to_string();
            let path = if path == "." {
                prefix.clone()
            } else {
                format!("{prefix}.{path}")
            };
            ApiError::field(path, err.into_inner().to_string())
        });
        match parsed.and_then(|body| validate(body, &ctx, &prefix)) {
            Ok(item) => {
                valid.push((index, item));
                errors.push(None);
            }
            Err(err) => errors.push(Some(err)),
        }
    }
    // Validate everything first, then hash every password of the batch in parallel.
    let mut passwords = Vec::new();
    let mut with_password = Vec::new();
    for (slot, (_, item)) in valid.iter_mut().enumerate() {
        if let Some(password) = item.password.take() {
            passwords.push(password);
            with_password.push(slot);
        }
    }
    let most = links.config.batch_max_password_links;
    if passwords.len() > most {
        return Err(ApiError::field(
            "items",
            format!("一次最多 {most} 个带密码的链接（每个密码需单独计算哈希），请分批提交"),
        ));
    }
    let hashes = links.hasher.hash_all(passwords).await?;
    for (slot, hash) in with_password.into_iter().zip(hashes) {
        valid[slot].1.new.password_hash = Some(hash);
    }
    let valid: Vec<(usize, NewLink)> = valid
        .into_iter()
        .map(|(index, item)| (index, item.new))
        .collect();
    let owner = key.record.id.clone();
    let outcomes = if links.cluster.is_some() {
        // Cluster mode: each link is its own create in the cluster's bucket.
        let mut outcomes = Vec::with_capacity(valid.len());
        for (index, new) in valid {
            outcomes.push((index, book::create(links, &owner, new).await?));
        }
        outcomes
    } else {
        let code_len = links.config.code_length;
        let targets = links.targets.clone();
        let (outcomes, scheduled) = links
            .store
            .write(move |txn, dbs| {
                let now = timefmt::now_ms();
                let mut out = Vec::with_capacity(valid.len());
                let mut scheduled = Vec::new();
                for (index, new) in valid {
                    let outcome = repo::insert(txn, dbs, &owner, new, code_len, now)?;
                    if let InsertOutcome::Created(link) = &outcome {
                        scheduled.extend(watch::watch(&targets, txn, dbs, link, now)?);
                    }
                    out.push((index, outcome));
                }
                Ok((out, scheduled))
            })
            .await?;
        links.targets.schedule(scheduled);
        outcomes
    };
    let mut created: Vec<Option<LinkRecord>> = (0..count).map(|_| None).collect();
    for (index, outcome) in outcomes {
        match insert_error(&outcome, &format!("items[{index}]")) {
            Some(err) => errors[index] = Some(err),
            None => {
                if let InsertOutcome::Created(link) = outcome {
                    links.cache.invalidate(&link.code);
                    created[index] = Some(*link);
                }
            }
        }
    }
    let made = created.iter().flatten().count();
    metrics::counter!("panlink_links_created_total", "via" => "batch").increment(made as u64);
    let items: Vec<BatchItem<'_>> = created
        .iter()
        .zip(&errors)
        .enumerate()
        .map(|(index, (link, err))| BatchItem {
            index,
            ok: link.is_some(),
            data: link.as_ref().map(|l| view(links, l, &base, None)),
            error: err.as_ref().map(batch_error),
        })
        .collect();
    #[derive(Serialize)]
    struct BatchView<'a> {
        total: usize,
        created: usize,
        failed: usize,
        items: Vec<BatchItem<'a>>,
    }
    Ok(response::envelope(
        StatusCode::OK,
        &BatchView {
            total: count,
            created: made,
            failed: count - made,
            items,
        },
        request_id,
    ))
}

/// The id of the link a request's path names: its `{code}` on the domain of `?domain=` (absent:
/// the default domain). 404 for a malformed code, 400 for a domain that is not configured.
fn requested_id(links: &LinkService, req: &Req<'_>) -> Result<String, ApiError> {
    let code = req.param("code");
    if !code::is_code_shape(code) {
        return Err(ApiError::NotFound("短码"));
    }
    let stored = links
        .domains
        .stored(query_param(req.parts.uri.query(), "domain"))
        .map_err(|why| ApiError::InvalidParameter {
            name: "domain",
            reason: why.into(),
        })?;
    Ok(domains::link_id(stored, code).into_owned())
}

/// The link of the request's path as the API sees it (404 for an unknown or malformed code).
fn load(links: &LinkService, req: &Req<'_>) -> Result<LinkRecord, ApiError> {
    let id = requested_id(links, req)?;
    links
        .store
        .read(|txn, dbs| repo::get(txn, dbs, &id))?
        .ok_or(ApiError::NotFound("短码"))
}

/// The link of the request's path if `key` owns it (else 404: another key's link is not
/// disclosed).
pub(super) fn load_owned(
    links: &LinkService,
    req: &Req<'_>,
    key: &AuthedKey,
) -> Result<LinkRecord, ApiError> {
    load(links, req).and_then(|link| {
        if link.owner == key.record.id {
            Ok(link)
        } else {
            Err(ApiError::NotFound("短码"))
        }
    })
}

/// `GET /api/v1/links/{code}` ("restore").
pub fn restore(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req)?;
    let link = load(links, &req)?;
    if link.access == AccessType::Password && link.owner != key.record.id {
        return Err(ApiError::PasswordProtected);
    }
    let totals = totals_of(links, &link.code)?;
    Ok(response::envelope(
        StatusCode::OK,
        &view(links, &link, &base_url(links, req.parts), Some(totals)),
        req.request_id,
    ))
}

fn page_param(
    req: &Req<'_>,
    name: &'static str,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match query_param(req.parts.uri.query(), name) {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or(ApiError::InvalidParameter {
                name,
                reason: format!("必须是 1 到 {max} 之间的整数").into(),
            }),
    }
}

/// `GET /api/v1/links?group_id=&page=&page_size=`: the caller's links, newest first.
pub fn list(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req)?;
    let page = page_param(&req, "page", 1, 1_000_000)?;
    let page_size = page_param(&req, "page_size", 20, 100)?;
    let group = match query_param(req.parts.uri.query(), "group_id") {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| ApiError::InvalidParameter {
                    name: "group_id",
                    reason: "必须是整数".into(),
                })?,
        ),
    };
    let owner = key.record.id.as_str();
    // Tags are often Chinese: the query carries them percent-encoded (or with `+` for spaces).
    let tag = query_param(req.parts.uri.query(), "tag")
        .filter(|t| !t.is_empty())
        .map(|t| {
            url::form_urlencoded::parse(format!("t={t}").as_bytes())
                .next()
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        });
    let (total, listed) = links.store.read(|txn, dbs| match tag.as_deref() {
        Some(tag) => repo::list_tagged(txn, dbs, owner, tag, group, page, page_size),
        None => repo::list(txn, dbs, owner, group, page, page_size),
    })?;
    let base = base_url(links, req.parts);
    let mut items = Vec::with_capacity(listed.len());
    for link in &listed {
        items.push(view(
            links,
            link,
            &base,
            Some(totals_of(links, &link.code)?),
        ));
    }
    #[derive(Serialize)]
    struct ListView<'a> {
        total: usize,
        page: usize,
        page_size: usize,
        items: Vec<LinkView<'a>>,
    }
    Ok(response::envelope(
        StatusCode::OK,
        &ListView {
            total,
            page,
            page_size,
            items,
        },
        req.request_id,
    ))
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    expire_at: Option<Option<String>>,
    #[serde(default)]
    access_type: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    group_id: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    fallback_url: Option<Option<String>>,
    #[serde(default)]
    watch_target: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    max_clicks: Option<Option<u64>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    utm: Option<Option<UtmBody>>,
    /// `[]` or `null` removes every rule.
    #[serde(default, deserialize_with = "present")]
    rules: Option<Option<Value>>,
}

/// `PATCH /api/v1/links/{code}` (owner only).
pub async fn patch(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req)?;
    let base = base_url(links, req.parts);
    let ctx = Context::of(links, req.parts, &key);
    let request_id = req.request_id;
    let current = load_owned(links, &req, &key)?;
    let code = current.code.clone();
    let body: PatchBody = req.json()?;
    let mut patch = LinkPatch::default();
    if let Some(url) = body.url {
        let url = url.trim().to_owned();
        check_url(&url, &ctx, "url")?;
        patch.url = Some(url);
    }
    if let Some(title) = body.title {
        patch.title = Some(check_title(title, "title")?);
    }
    if let Some(expire) = body.expire_at {
        patch.expire_at_ms = Some(match nonempty(expire) {
            None => None,
            Some(text) => Some(check_expiry(&text, "expire_at")?),
        });
    }
    if let Some(status) = body.status {
        patch.disabled = Some(match status.as_str() {
            "active" => false,
            "disabled" => true,
            _ => return Err(ApiError::field("status", "必须是 active 或 disabled")),
        });
    }
    patch.group_id = body.group_id;
    if let Some(fallback) = body.fallback_url {
        let fallback = nonempty(fallback);
        if let Some(text) = &fallback {
            check_url(text, &ctx, "fallback_url")?;
        }
        patch.fallback_url = Some(fallback);
    }
    patch.watch_target = body.watch_target;
    if let Some(max) = body.max_clicks {
        patch.max_clicks = Some(check_max_clicks(max, "max_clicks")?);
    }
    if let Some(tags) = body.tags {
        patch.tags = Some(check_tags(tags, "tags")?);
    }
    if let Some(utm) = body.utm {
        patch.utm = Some(utm.map(|u| check_utm(u, "utm")).transpose()?.flatten());
    }
    if let Some(value) = body.rules {
        patch.rules = Some(match value {
            None => Vec::new(),
            Some(value) => check_rules(&value, &ctx, "rules")?,
        });
    }
    let access = match body.access_type.as_deref() {
        None => None,
        Some(text) => Some(
            AccessType::parse(text)
                .ok_or_else(|| ApiError::field("access_type", "必须是 open 或 password"))?,
        ),
    };
    let target_access = access.unwrap_or(current.access);
    match (target_access, body.password) {
        (AccessType::Password, Some(pw)) => {
            password::check(&pw).map_err(|why| ApiError::field("password", why))?;
            patch.access = Some((AccessType::Password, Some(links.hasher.hash(pw).await?)));
        }
        (AccessType::Password, None) if current.access == AccessType::Open => {
            return Err(ApiError::field(
                "password",
                "改为 password 访问时必须提供密码",
            ));
        }
        (AccessType::Password, None) => {}
        (AccessType::Open, Some(_)) => {
            return Err(ApiError::field(
                "password",
                "只有 access_type 为 password 的链接才能设置密码",
            ));
        }
        (AccessType::Open, None) => {
            if current.access == AccessType::Password {
                patch.access = Some((AccessType::Open, None));
            }
        }
    }
    let empty = patch.url.is_none()
        && patch.title.is_none()
        && patch.expire_at_ms.is_none()
        && patch.disabled.is_none()
        && patch.group_id.is_none()
        && patch.access.is_none()
        && patch.fallback_url.is_none()
        && patch.watch_target.is_none()
        && patch.max_clicks.is_none()
        && patch.tags.is_none()
        && patch.utm.is_none()
        && patch.rules.is_none()
        && access.is_none();
    if empty {
        return Err(ApiError::field("body", "没有要修改的字段"));
    }
    let outcome = book::update(links, &key.record.id, &code, patch).await?;
    match outcome {
        ChangeOutcome::Done(link) => {
            let totals = totals_of(links, &link.code)?;
            Ok(response::envelope(
                StatusCode::OK,
                &view(links, &link, &base, Some(totals)),
                request_id,
            ))
        }
        ChangeOutcome::NotFound => Err(ApiError::NotFound("短码")),
        ChangeOutcome::GroupNotFound => Err(ApiError::field("group_id", "分组不存在")),
    }
}

/// `DELETE /api/v1/links/{code}` (owner only; others get 404).
pub async fn delete(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req)?;
    let code = requested_id(links, &req)?;
    let outcome = book::delete(links, &key.record.id, &code).await?;
    match outcome {
        ChangeOutcome::Done(link) => {
            #[derive(Serialize)]
            struct Deleted<'a> {
                code: &'a str,
                domain: Option<&'a str>,
                deleted: bool,
            }
            Ok(response::envelope(
                StatusCode::OK,
                &Deleted {
                    code: link.short_code(),
                    domain: link.domain().or(links.domains.default_name()),
                    deleted: true,
                },
                req.request_id,
            ))
        }
        _ => Err(ApiError::NotFound("短码")),
    }
}

/// `GET /api/v1/links/{code}/qr?format=svg|png&size=`: the short URL as a QR image.
pub fn qr_code(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    key_of(&req)?;
    // Any key may have the QR of any link: it carries only the short URL, not the target.
    let link = load(links, &req)?;
    let query = req.parts.uri.query();
    let format = match query_param(query, "format") {
        None | Some("") => qr::Format::Svg,
        Some(text) => qr::Format::parse(text).ok_or(ApiError::InvalidParameter {
            name: "format",
            reason: "必须是 svg 或 png".into(),
        })?,
    };
    let size = match query_param(query, "size") {
        None | Some("") => qr::DEFAULT_SIZE,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (qr::MIN_SIZE..=qr::MAX_SIZE).contains(n))
            .ok_or(ApiError::InvalidParameter {
                name: "size",
                reason: format!("必须是 {} 到 {} 之间的整数", qr::MIN_SIZE, qr::MAX_SIZE).into(),
            })?,
    };
    let url = full_short_url(links, &link, req.parts);
    let image = qr::render(&url, format, size).map_err(|err| {
        tracing::error!(error = %err, "QR encoding failed");
        ApiError::Internal
    })?;
    let mut response = response::with_body(
        StatusCode::OK,
        http::HeaderValue::from_static(format.content_type()),
        image,
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("private, max-age=3600"),
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    name: String,
}

#[derive(Serialize)]
struct GroupView<'a> {
    id: u64,
    name: &'a str,
    created_at: String,
}

fn group_view(group: &GroupRecord) -> GroupView<'_> {
    GroupView {
        id: group.id,
        name: &group.name,
        created_at: timefmt::rfc3339_ms(group.created_at_ms),
    }
}

/// `POST /api/v1/groups`.
pub async fn create_group(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req)?;
    let request_id = req.request_id;
    let body: GroupBody = req.json()?;
    let name = body.name.trim().to_owned();
    if name.is_empty()
        || name.chars().count() > MAX_GROUP_NAME
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::field(
            "name",
            format!("须为 1 到 {MAX_GROUP_NAME} 个字符，且不能包含控制字符"),
        ));
    }
    let group = book::create_group(links, &key.record.id, name).await?;
    Ok(response::envelope(
        StatusCode::OK,
        &group_view(&group),
        request_id,
    ))
}

/// `GET /api/v1/groups`: the caller's groups, the default group (id 1) first.
pub fn list_groups(links: &LinkService, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req)?;
    let groups = links
        .store
        .read(|txn, dbs| repo::list_groups(txn, dbs, &key.record.id, key.record.created_at_ms))?;
    let items: Vec<GroupView<'_>> = groups.iter().map(group_view).collect();
    #[derive(Serialize)]
    struct Groups<'a> {
        items: Vec<GroupView<'a>>,
    }
    Ok(response::envelope(
        StatusCode::OK,
        &Groups { items },
        req.request_id,
    ))
}
