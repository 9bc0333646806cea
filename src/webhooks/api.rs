//! `/api/v1/webhooks`: create (the secret is shown once), list, read, edit, delete, ping, the
//! deliveries of a webhook and a redelivery. Answers are the `{code, msg, data, request_id}`
//! envelope; a webhook belongs to the key that made it (others get 404).

use std::sync::Arc;

use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::change::{Change, Patch};
use super::record::{self, DeliveryRecord, DeliveryStatus, WebhookRecord};
use super::{EventType, Webhooks, event, target};
use crate::error::ApiError;
use crate::http::request::query_param;
use crate::http::response::{self, HttpResponse};
use crate::keys::KeyReq as Req;
use crate::keys::secret::random_base62;
use crate::timefmt;

const ID_PREFIX: &str = "wh_";
const ID_BODY_LEN: usize = 12;
const SECRET_PREFIX: &str = "whsec_";
const MAX_DESCRIPTION: usize = 256;
/// Deliveries per page of `GET …/deliveries`.
const PAGE: usize = 50;

fn owner_of(req: &Req<'_>) -> Result<String, ApiError> {
    req.caller
        .as_ref()
        .map(|key| key.record.id.clone())
        .ok_or(ApiError::MissingApiKey)
}

fn looks_like_id(text: &str) -> bool {
    text.strip_prefix(ID_PREFIX).is_some_and(|body| {
        body.len() == ID_BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

#[derive(Serialize)]
struct WebhookView<'a> {
    id: &'a str,
    url: &'a str,
    events: &'a [EventType],
    description: Option<&'a str>,
    disabled: bool,
    disabled_reason: Option<&'a str>,
    created_at: String,
    updated_at: String,
    failing_since: Option<String>,
    last_success_at: Option<String>,
    /// Only in the answer to creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
}

fn view(hook: &WebhookRecord, with_secret: bool) -> WebhookView<'_> {
    WebhookView {
        id: &hook.id,
        url: &hook.url,
        events: &hook.events,
        description: hook.description.as_deref(),
        disabled: hook.disabled,
        disabled_reason: hook.disabled_reason.as_deref(),
        created_at: timefmt::rfc3339_ms(hook.created_at_ms),
        updated_at: timefmt::rfc3339_ms(hook.updated_at_ms),
        failing_since: hook.failing_since_ms.map(timefmt::rfc3339_ms),
        last_success_at: hook.last_success_ms.map(timefmt::rfc3339_ms),
        secret: with_secret.then_some(hook.secret.as_str()),
    }
}

#[derive(Serialize)]
struct DeliveryView<'a> {
    id: String,
    webhook_id: &'a str,
    event: EventType,
    status: DeliveryStatus,
    attempts: u32,
    created_at: String,
    last_attempt_at: Option<String>,
    last_status_code: Option<u16>,
    last_error: Option<&'a str>,
    next_attempt_at: Option<String>,
    delivered_at: Option<String>,
    /// The body every attempt sends.
    payload: Option<&'a serde_json::value::RawValue>,
}

fn delivery_view(d: &DeliveryRecord) -> DeliveryView<'_> {
    DeliveryView {
        id: event::delivery_id(d.seq),
        webhook_id: &d.webhook_id,
        event: d.event,
        status: d.status,
        attempts: d.attempts,
        created_at: timefmt::rfc3339_ms(d.created_at_ms),
        last_attempt_at: d.last_attempt_at_ms.map(timefmt::rfc3339_ms),
        last_status_code: d.last_status_code,
        last_error: d.last_error.as_deref(),
        next_attempt_at: d.next_attempt_at_ms.map(timefmt::rfc3339_ms),
        delivered_at: d.delivered_at_ms.map(timefmt::rfc3339_ms),
        payload: serde_json::from_str(&d.body).ok(),
    }
}

/// Checks a URL's shape and where it leads.
async fn checked_url(hooks: &Webhooks, text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    let url =
        target::parse(text, hooks.config.allow_http).map_err(|why| ApiError::field("url", why))?;
    target::check_reachable(&hooks.client, &url, hooks.config.allow_private)
        .await
        .map_err(|why| ApiError::field("url", why))?;
    Ok(url.to_string())
}

fn checked_events(names: &[String]) -> Result<Vec<EventType>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::field("events", "至少订阅一种事件"));
    }
    let mut events = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let kind = EventType::subscribable(name).ok_or_else(|| {
            let known: Vec<&str> = EventType::SUBSCRIBABLE.iter().map(|k| k.as_str()).collect();
            ApiError::field(
                format!("events[{i}]"),
                format!("未知事件，可选：{}", known.join("、")),
            )
        })?;
        if !events.contains(&kind) {
            events.push(kind);
        }
    }
    Ok(events)
}

fn checked_description(text: Option<String>) -> Result<Option<String>, ApiError> {
    let text = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    if let Some(text) = &text
        && (text.chars().count() > MAX_DESCRIPTION || text.chars().any(char::is_control))
    {
        return Err(ApiError::field(
            "description",
            format!("最多 {MAX_DESCRIPTION} 个字符，且不能包含控制字符"),
        ));
    }
    Ok(text)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    url: String,
    events: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}

/// `POST /api/v1/webhooks` → 201 with the secret, shown this once.
pub async fn create(hooks: &Arc<Webhooks>, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let owner = owner_of(&req)?;
    let body: CreateBody = req.json()?;
    let url = checked_url(hooks, &body.url).await?;
    let events = checked_events(&body.events)?;
    let description = checked_description(body.description)?;
    let now = timefmt::now_ms();
    let hook = WebhookRecord {
        id: format!("{ID_PREFIX}{}", random_base62(ID_BODY_LEN)),
        owner,
        url,
        events,
        description,
        secret: format!("{SECRET_PREFIX}{}", random_base62(32)),
        disabled: false,
        disabled_reason: None,
        created_at_ms: now,
        updated_at_ms: now,
        failing_since_ms: None,
        last_success_ms: None,
        stored_deliveries: 0,
    };
    let limit = hooks.config.max_per_key;
    let hook = hooks
        .change(Change::Create { hook, limit })
        .await?
        .hook
        .ok_or(ApiError::LimitReached {
            what: "每个密钥的 webhook",
            limit: limit as u64,
        })?;
    Ok(response::envelope(
        StatusCode::CREATED,
        &view(&hook, true),
        req.request_id,
    ))
}

/// `GET /api/v1/webhooks`.
pub fn list(hooks: &Webhooks, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let owner = owner_of(&req)?;
    let all = hooks
        .store
        .read(|txn, dbs| record::webhooks_of(txn, dbs, &owner))?;
    #[derive(Serialize)]
    struct Listing<'a> {
        items: Vec<WebhookView<'a>>,
    }
    let items = all.iter().map(|hook| view(hook, false)).collect();
    Ok(response::envelope(
        StatusCode::OK,
        &Listing { items },
        req.request_id,
    ))
}

/// The caller's webhook of the path's `id`.
fn own_webhook(hooks: &Webhooks, req: &Req<'_>) -> Result<WebhookRecord, ApiError> {
    let owner = owner_of(req)?;
    let id = req.param("id");
    if !looks_like_id(id) {
        return Err(ApiError::NotFound("webhook"));
    }
    hooks
        .store
        .read(|txn, dbs| record::get_webhook(txn, dbs, id))?
        .filter(|hook| hook.owner == owner)
        .ok_or(ApiError::NotFound("webhook"))
}

/// `GET /api/v1/webhooks/{id}`.
pub fn get(hooks: &Webhooks, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let hook = own_webhook(hooks, &req)?;
    Ok(response::envelope(
        StatusCode::OK,
        &view(&hook, false),
        req.request_id,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// `PATCH /api/v1/webhooks/{id}`: `url`, `events`, `description` (empty clears it), `disabled`.
/// Turning a webhook back on clears its failing state; its pending deliveries go out again.
pub async fn patch(hooks: &Arc<Webhooks>, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let hook = own_webhook(hooks, &req)?;
    let body: PatchBody = req.json()?;
    let url = match &body.url {
        Some(text) => Some(checked_url(hooks, text).await?),
        None => None,
    };
    let events = body.events.as_deref().map(checked_events).transpose()?;
    let description = body
        .description
        .map(|text| checked_description(Some(text)))
        .transpose()?;
    let patch = Patch {
        url,
        events,
        description,
        disabled: body.disabled,
    };
    let updated = hooks
        .change(Change::Patch {
            id: hook.id,
            patch,
            at_ms: timefmt::now_ms(),
        })
        .await?
        .hook
        .ok_or(ApiError::NotFound("webhook"))?;
    Ok(response::envelope(
        StatusCode::OK,
        &view(&updated, false),
        req.request_id,
    ))
}

/// `DELETE /api/v1/webhooks/{id}`: the webhook and its deliveries.
pub async fn delete(hooks: &Arc<Webhooks>, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let hook = own_webhook(hooks, &req)?;
    let id = hook.id.clone();
    hooks.change(Change::Delete { id: id.clone() }).await?;
    #[derive(Serialize)]
    struct Deleted<'a> {
        id: &'a str,
        deleted: bool,
    }
    Ok(response::envelope(
        StatusCode::OK,
        &Deleted {
            id: &id,
            deleted: true,
        },
        req.request_id,
    ))
}

/// `POST /api/v1/webhooks/{id}/ping` → 202: a `ping` delivery is queued (it goes out like any
/// other; read its outcome from the deliveries).
pub async fn ping(hooks: &Arc<Webhooks>, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let hook = own_webhook(hooks, &req)?;
    let delivery = hooks
        .change(Change::Ping {
            id: hook.id,
            at_ms: timefmt::now_ms(),
        })
        .await?
        .delivery
        .ok_or(ApiError::NotFound("webhook"))?;
    Ok(response::envelope(
        StatusCode::ACCEPTED,
        &delivery_view(&delivery),
        req.request_id,
    ))
}

/// `GET /api/v1/webhooks/{id}/deliveries?status=&cursor=`: newest first, 50 a page.
pub fn deliveries(hooks: &Webhooks, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let hook = own_webhook(hooks, &req)?;
    let query = req.parts.uri.query();
    let status = match query_param(query, "status") {
        None | Some("") => None,
        Some(text) => Some(
            DeliveryStatus::parse(text).ok_or(ApiError::InvalidParameter {
                name: "status",
                reason: "必须是 pending、delivered 或 failed".into(),
            })?,
        ),
    };
    let before = match query_param(query, "cursor") {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| ApiError::InvalidParameter {
                    name: "cursor",
                    reason: "必须是上一页返回的 next_cursor".into(),
                })?,
        ),
    };
    let (items, next) = hooks
        .store
        .read(|txn, dbs| record::deliveries_page(txn, dbs, &hook.id, before, status, PAGE))?;
    #[derive(Serialize)]
    struct Page<'a> {
        items: Vec<DeliveryView<'a>>,
        next_cursor: Option<String>,
    }
    let page = Page {
        items: items.iter().map(delivery_view).collect(),
        next_cursor: next.map(|seq| seq.to_string()),
    };
    Ok(response::envelope(StatusCode::OK, &page, req.request_id))
}

/// `POST /api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver` → 202: the delivery is due
/// again at once, with a new retry window, the same id and body.
pub async fn redeliver(hooks: &Arc<Webhooks>, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let hook = own_webhook(hooks, &req)?;
    let seq =
        event::parse_delivery_id(req.param("delivery_id")).ok_or(ApiError::NotFound("投递记录"))?;
    let delivery = hooks
        .change(Change::Redeliver {
            id: hook.id,
            seq,
            at_ms: timefmt::now_ms(),
        })
        .await?
        .delivery
        .ok_or(ApiError::NotFound("投递记录"))?;
    Ok(response::envelope(
        StatusCode::ACCEPTED,
        &delivery_view(&delivery),
        req.request_id,
    ))
}
