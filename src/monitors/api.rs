//! `/api/v1/monitors`: create, list, read, edit (add and remove links, interval, pause, name,
//! webhooks), delete, start a run now, and list a monitor's links with their states and
//! transitions. Answers are the `{code, msg, data, request_id}` envelope; a monitor belongs to
//! the key that made it (others get 404).

use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::Monitors;
use super::change::{Change, MonitorPatch, NewMonitor, Refusal};
use super::record::{self, FinishedRun, LinkRecord, MonitorRecord, Run, StateCounts};
use crate::checker::extract;
use crate::checker::providers::{self, Recognized};
use crate::checker::share::{Provider, ShareRef};
use crate::checker::verdict::{Reason, State};
use crate::error::ApiError;
use crate::http::request::query_param;
use crate::http::response::{self, HttpResponse};
use crate::keys::secret::random_base62;
use crate::keys::{KeyReq as Req, Plan};
use crate::timefmt;
use crate::webhooks;

const ID_PREFIX: &str = "mon_";
const ID_BODY_LEN: usize = 12;
const MAX_NAME: usize = 64;
/// Longest URL a monitor keeps.
const MAX_URL_BYTES: usize = 2048;
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 500;
/// The longest interval.
const MAX_INTERVAL_S: u64 = 365 * 86_400;

fn looks_like_id(text: &str) -> bool {
    text.strip_prefix(ID_PREFIX).is_some_and(|body| {
        body.len() == ID_BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// A URL that was not taken, and why.
#[derive(Debug, Serialize)]
struct Rejected {
    index: usize,
    url: String,
    reason: &'static str,
}

/// Share links of a request: `urls` one by one, then those found in `text`. Linear; callers run
/// it on the blocking pool.
fn parse_links(
    urls: Vec<String>,
    text: Option<String>,
) -> (Vec<(String, ShareRef)>, Vec<Rejected>) {
    let mut found = Vec::with_capacity(urls.len());
    let mut rejected = Vec::new();
    for (index, url) in urls.into_iter().enumerate() {
        let url = url.trim().to_owned();
        if url.len() > MAX_URL_BYTES {
            let cut: String = url.chars().take(64).collect();
            rejected.push(Rejected {
                index,
                url: cut,
                reason: "url_too_long",
            });
            continue;
        }
        match providers::recognize(&url, None) {
            Recognized::Share(share) => found.push((url, share)),
            Recognized::Unsupported => rejected.push(Rejected {
                index,
                url,
                reason: "unsupported_provider",
            }),
            Recognized::InvalidUrl => rejected.push(Rejected {
                index,
                url,
                reason: "invalid_url",
            }),
        }
    }
    if let Some(text) = text {
        for share in extract::shares_in_text(&text) {
            if share.url.len() <= MAX_URL_BYTES {
                found.push((share.url, share.share));
            }
        }
    }
    (found, rejected)
}

async fn parse_links_off_workers(
    urls: Vec<String>,
    text: Option<String>,
) -> Result<(Vec<(String, ShareRef)>, Vec<Rejected>), ApiError> {
    tokio::task::spawn_blocking(move || parse_links(urls, text))
        .await
        .map_err(|_| ApiError::Internal)
}

fn checked_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(ApiError::field(
            "name",
            format!("须为 1 到 {MAX_NAME} 个字符，且不能包含控制字符"),
        ));
    }
    Ok(name.to_owned())
}

fn checked_interval(monitors: &Monitors, interval_s: u64) -> Result<u32, ApiError> {
    let min = monitors.config.min_interval_s;
    if interval_s < min || interval_s > MAX_INTERVAL_S {
        return Err(ApiError::field(
            "interval_s",
            format!("须在 {min} 到 {MAX_INTERVAL_S} 秒之间"),
        ));
    }
    Ok(interval_s as u32)
}

fn link_limit(monitors: &Monitors, plan: Plan) -> u64 {
    match plan {
        Plan::Free => monitors.config.free_max_links_per_key,
        Plan::Premium => monitors.config.premium_max_links_per_key,
    }
}

/// Why a write refused.
#[derive(Serialize)]
struct RunView {
    number: u32,
    started_at: String,
    checked: u64,
    changed: u64,
}

#[derive(Serialize)]
struct FinishedRunView {
    number: u32,
    started_at: String,
    finished_at: String,
    checked: u64,
    changed: u64,
    counts: StateCounts,
}

#[derive(Serialize)]
struct MonitorView<'a> {
    id: &'a str,
    name: &'a str,
    interval_s: u32,
    paused: bool,
    webhook_ids: &'a [String],
    links: u64,
    counts: StateCounts,
    run: RunView,
    last_run: Option<FinishedRunView>,
    /// Only in the answer of `GET /api/v1/monitors/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_due_at: Option<Option<String>>,
    created_at: String,
    updated_at: String,
}

fn run_view(run: &Run) -> RunView {
    RunView {
        number: run.number,
        started_at: timefmt::rfc3339_ms(run.started_at_ms),
        checked: run.checked,
        changed: run.changed,
    }
}

fn finished_view(run: &FinishedRun) -> FinishedRunView {
    FinishedRunView {
        number: run.number,
        started_at: timefmt::rfc3339_ms(run.started_at_ms),
        finished_at: timefmt::rfc3339_ms(run.finished_at_ms),
        checked: run.checked,
        changed: run.changed,
        counts: run.counts,
    }
}

fn view(m: &MonitorRecord) -> MonitorView<'_> {
    MonitorView {
        id: &m.id,
        name: &m.name,
        interval_s: m.interval_s,
        paused: m.paused,
        webhook_ids: &m.webhook_ids,
        links: m.links,
        counts: m.counts,
        run: run_view(&m.run),
        last_run: m.last_run.as_ref().map(finished_view),
        next_due_at: None,
        created_at: timefmt::rfc3339_ms(m.created_at_ms),
        updated_at: timefmt::rfc3339_ms(m.updated_at_ms),
    }
}

/// The answer to a change that added links.
#[derive(Serialize)]
struct Changed<'a> {
    #[serde(flatten)]
    monitor: MonitorView<'a>,
    added: usize,
    duplicates: u64,
    removed: u64,
    not_found: u64,
    rejected: Vec<Rejected>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    interval_s: Option<u64>,
    #[serde(default)]
    webhook_ids: Vec<String>,
}

/// That every id of `ids` names a webhook of `owner` (checked before a change is made: the
/// webhooks are another product's, and in cluster mode another log's, so the change's apply
/// cannot depend on them).
fn check_webhooks(monitors: &Monitors, owner: &str, ids: &[String]) -> Result<(), ApiError> {
    for (index, id) in ids.iter().enumerate() {
        let ok = monitors
            .store
            .read(|txn, dbs| webhooks::record::get_webhook(txn, dbs, id))?
            .is_some_and(|h| h.owner == owner);
        if !ok {
            return Err(Refusal::Webhook(index).into());
        }
    }
    Ok(())
}

/// `POST /api/v1/monitors` → 201.
pub async fn create(monitors: &Monitors, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = req.caller.clone().ok_or(ApiError::MissingApiKey)?;
    let body: CreateBody = req.json()?;
    let name = checked_name(&body.name)?;
    let interval_s = checked_interval(
        monitors,
        body.interval_s
            .unwrap_or(monitors.config.default_interval_s),
    )?;
    let (found, rejected) = parse_links_off_workers(body.urls, body.text).await?;
    check_webhooks(monitors, &key.record.id, &body.webhook_ids)?;
    let create = Change::Create(NewMonitor {
        id: format!("{ID_PREFIX}{}", random_base62(ID_BODY_LEN)),
        owner: key.record.id.clone(),
        name,
        interval_s,
        webhook_ids: body.webhook_ids,
        urls: found.into_iter().map(|(url, _)| url).collect(),
        max_monitors: monitors.config.max_per_key as u64,
        max_links: link_limit(monitors, key.record.plan),
        at_ms: timefmt::now_ms(),
        cluster: monitors.shared.is_some(),
    });
    let applied = monitors.change(create).await?;
    if let Some(refusal) = applied.refused {
        return Err(refusal.into());
    }
    let monitor = applied.monitor.ok_or(ApiError::Internal)?;
    let answer = Changed {
        monitor: view(&monitor),
        added: applied.added,
        duplicates: applied.duplicates,
        removed: 0,
        not_found: 0,
        rejected,
    };
    Ok(response::envelope(
        StatusCode::CREATED,
        &answer,
        req.request_id,
    ))
}

/// `GET /api/v1/monitors`.
pub fn list(monitors: &Monitors, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = req.caller.as_ref().ok_or(ApiError::MissingApiKey)?;
    let all = monitors
        .store
        .read(|txn, dbs| record::monitors_of(txn, dbs, &key.record.id))?;
    #[derive(Serialize)]
    struct Listing<'a> {
        items: Vec<MonitorView<'a>>,
    }
    let items = all.iter().filter(|m| !m.hidden).map(view).collect();
    Ok(response::envelope(
        StatusCode::OK,
        &Listing { items },
        req.request_id,
    ))
}

/// The caller's monitor of the path's `id`.
fn own_monitor(monitors: &Monitors, req: &Req<'_>) -> Result<MonitorRecord, ApiError> {
    let key = req.caller.as_ref().ok_or(ApiError::MissingApiKey)?;
    let id = req.param("id");
    if !looks_like_id(id) {
        return Err(ApiError::NotFound("监控"));
    }
    monitors
        .store
        .read(|txn, dbs| record::get_monitor(txn, dbs, id))?
        .filter(|m| m.owner == key.record.id && !m.hidden)
        .ok_or(ApiError::NotFound("监控"))
}

/// Every link of a monitor, read off the async workers.
async fn all_links<T: Send + 'static>(
    monitors: &Monitors,
    id: &str,
    pick: impl Fn(&LinkRecord) -> T + Send + 'static,
) -> Result<Vec<T>, ApiError> {
    let store = std::sync::Arc::clone(&monitors.store);
    let id = id.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        store.read(|txn, dbs| {
            record::walk_links(txn, dbs, &id, 0, |link| {
                out.push(pick(&link));
                true
            })
        })?;
        Ok::<_, crate::store::StoreError>(out)
    })
    .await
    .map_err(|_| ApiError::Internal)?
    .map_err(ApiError::from)
}

/// `GET /api/v1/monitors/{id}`: with `next_due_at`, the soonest check of its links.
pub async fn get(monitors: &Monitors, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let monitor = own_monitor(monitors, &req)?;
    let dues = all_links(monitors, &monitor.id, |link| link.next_due_s).await?;
    let next = dues
        .into_iter()
        .min()
        .filter(|_| !monitor.paused)
        .map(|s| timefmt::rfc3339_ms(u64::from(s) * 1000));
    let mut shown = view(&monitor);
    shown.next_due_at = Some(next);
    Ok(response::envelope(StatusCode::OK, &shown, req.request_id))
}

#[derive(Serialize)]
struct TransitionView {
    from: State,
    to: State,
    at: String,
    reason: Reason,
}

#[derive(Serialize)]
struct LastResult {
    state: State,
    reason: Reason,
}

#[derive(Serialize)]
struct LinkView {
    id: u32,
    url: String,
    provider: Provider,
    state: State,
    reason: Option<Reason>,
    share_name: Option<String>,
    since: String,
    last_checked_at: Option<String>,
    last_result: Option<LastResult>,
    next_check_at: Option<String>,
    transitions: Vec<TransitionView>,
}

fn link_view(link: LinkRecord, paused: bool) -> LinkView {
    LinkView {
        id: link.id,
        url: link.url,
        provider: link.provider,
        state: link.state,
        reason: link.reason,
        share_name: link.share_name,
        since: timefmt::rfc3339_ms(link.since_ms),
        last_checked_at: link.last_checked_ms.map(timefmt::rfc3339_ms),
        last_result: link
            .last_result
            .map(|(state, reason)| LastResult { state, reason }),
        next_check_at: (!paused).then(|| timefmt::rfc3339_ms(u64::from(link.next_due_s) * 1000)),
        transitions: link
            .transitions
            .into_iter()
            .map(|t| TransitionView {
                from: t.from,
                to: t.to,
                at: timefmt::rfc3339_ms(t.at_ms),
                reason: t.reason,
            })
            .collect(),
    }
}

fn parse_state(text: &str) -> Option<State> {
    match text {
        "valid" => Some(State::Valid),
        "invalid" => Some(State::Invalid),
        "locked" => Some(State::Locked),
        "unknown" => Some(State::Unknown),
        _ => None,
    }
}

/// `GET /api/v1/monitors/{id}/links?state=&cursor=&limit=`: in link order.
pub async fn links(monitors: &Monitors, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let monitor = own_monitor(monitors, &req)?;
    let query = req.parts.uri.query();
    let mut states = Vec::new();
    if let Some(text) = query_param(query, "state").filter(|t| !t.is_empty()) {
        for part in text.split(',') {
            states.push(parse_state(part.trim()).ok_or(ApiError::InvalidParameter {
                name: "state",
                reason: "可选 valid、invalid、locked、unknown，逗号分隔".into(),
            })?);
        }
    }
    let from = match query_param(query, "cursor").filter(|t| !t.is_empty()) {
        None => 0,
        Some(text) => text
            .parse::<u32>()
            .map_err(|_| ApiError::InvalidParameter {
                name: "cursor",
                reason: "必须是上一页返回的 next_cursor".into(),
            })?,
    };
    let limit = match query_param(query, "limit").filter(|t| !t.is_empty()) {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or(ApiError::InvalidParameter {
                name: "limit",
                reason: format!("须在 1 到 {MAX_PAGE} 之间").into(),
            })?,
    };
    let store = std::sync::Arc::clone(&monitors.store);
    let id = monitor.id.clone();
    let (page, next) = tokio::task::spawn_blocking(move || {
        let mut page = Vec::new();
        let mut next = None;
        store.read(|txn, dbs| {
            record::walk_links(txn, dbs, &id, from, |link| {
                if page.len() == limit {
                    next = Some(link.id);
                    return false;
                }
                if states.is_empty() || states.contains(&link.state) {
                    page.push(link);
                }
                true
            })
        })?;
        Ok::<_, crate::store::StoreError>((page, next))
    })
    .await
    .map_err(|_| ApiError::Internal)??;
    #[derive(Serialize)]
    struct Page {
        items: Vec<LinkView>,
        next_cursor: Option<String>,
    }
    let page = Page {
        items: page
            .into_iter()
            .map(|l| link_view(l, monitor.paused))
            .collect(),
        next_cursor: next.map(|n| n.to_string()),
    };
    Ok(response::envelope(StatusCode::OK, &page, req.request_id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    interval_s: Option<u64>,
    #[serde(default)]
    paused: Option<bool>,
    #[serde(default)]
    webhook_ids: Option<Vec<String>>,
    #[serde(default)]
    add_urls: Vec<String>,
    #[serde(default)]
    remove_urls: Vec<String>,
}

/// `PATCH /api/v1/monitors/{id}`.
pub async fn patch(monitors: &Monitors, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = req.caller.clone().ok_or(ApiError::MissingApiKey)?;
    let monitor = own_monitor(monitors, &req)?;
    let body: PatchBody = req.json()?;
    let name = body.name.as_deref().map(checked_name).transpose()?;
    let interval_s = body
        .interval_s
        .map(|s| checked_interval(monitors, s))
        .transpose()?;
    let (found, rejected) = parse_links_off_workers(body.add_urls, None).await?;
    let removals: Vec<u64> = body
        .remove_urls
        .iter()
        .map(|url| match providers::recognize(url, None) {
            Recognized::Share(share) => {
                crate::jobs::record::match_key(Some((share.provider, &share.id)), url)
            }
            _ => crate::jobs::record::match_key(None, url),
        })
        .collect();
    if let Some(ids) = &body.webhook_ids {
        check_webhooks(monitors, &key.record.id, ids)?;
    }
    let patch = Change::Patch(MonitorPatch {
        id: monitor.id,
        owner: key.record.id.clone(),
        name,
        interval_s,
        urls: found.into_iter().map(|(url, _)| url).collect(),
        removals,
        paused: body.paused,
        webhook_ids: body.webhook_ids,
        max_links: link_limit(monitors, key.record.plan),
        at_ms: timefmt::now_ms(),
    });
    let applied = monitors.change(patch).await?;
    if let Some(refusal) = applied.refused {
        return Err(refusal.into());
    }
    let monitor = applied.monitor.ok_or(ApiError::NotFound("监控"))?;
    let answer = Changed {
        monitor: view(&monitor),
        added: applied.added,
        duplicates: applied.duplicates,
        removed: applied.removed,
        not_found: applied.not_found,
        rejected,
    };
    Ok(response::envelope(StatusCode::OK, &answer, req.request_id))
}

/// `DELETE /api/v1/monitors/{id}`: the monitor and its links.
pub async fn delete(monitors: &Monitors, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let monitor = own_monitor(monitors, &req)?;
    let id = monitor.id;
    monitors.change(Change::Delete { id: id.clone() }).await?;
    #[derive(Serialize)]
    struct Deleted {
        id: String,
        deleted: bool,
    }
    Ok(response::envelope(
        StatusCode::OK,
        &Deleted { id, deleted: true },
        req.request_id,
    ))
}

/// `POST /api/v1/monitors/{id}/run` → 202: every link is due now, in a new run. At most once
/// per `monitors.run_min_gap_s` (429 sooner).
pub async fn run(monitors: &Monitors, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let monitor = own_monitor(monitors, &req)?;
    let now = timefmt::now_ms();
    let gap = u64::try_from(monitors.config.run_min_gap.as_millis()).unwrap_or(u64::MAX);
    if let Some(last) = monitor.run_requested_at_ms
        && now < last.saturating_add(gap)
    {
        let wait = (last + gap - now).div_ceil(1000);
        return Err(ApiError::RateLimited {
            retry_after_s: u32::try_from(wait).unwrap_or(u32::MAX).max(1),
        });
    }
    if monitor.paused {
        return Err(ApiError::Conflict(
            "监控已暂停，请先恢复（paused: false）".into(),
        ));
    }
    let applied = monitors
        .change(Change::Run {
            id: monitor.id,
            at_ms: now,
        })
        .await?;
    let started = applied.monitor.ok_or(ApiError::NotFound("监控"))?;
    let count = applied.run_links;
    #[derive(Serialize)]
    struct Started<'a> {
        monitor_id: &'a str,
        run: u32,
        links: usize,
    }
    Ok(response::envelope(
        StatusCode::ACCEPTED,
        &Started {
            monitor_id: &started.id,
            run: started.run.number,
            links: count,
        },
        req.request_id,
    ))
}
