//! The admin JSON API for API keys: list, create, change, delete.

use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::http::response::{self, HttpResponse};
use crate::keys::KeyGate;
use crate::keys::KeyReq as Req;
use crate::keys::repo::{self, KeyPatch, NewKey, UpdateOutcome};
use crate::keys::{KeyView, Plan, Scopes, secret, validate};
use crate::timefmt;

/// `GET /admin/api/keys`: every key with its usage (never a secret).
pub fn list(keys: &KeyGate, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    #[derive(Serialize)]
    struct Listing<'a> {
        total: usize,
        keys: Vec<KeyView<'a>>,
    }
    let records = keys.store().read(repo::list)?;
    let keys: Vec<KeyView<'_>> = records
        .iter()
        .map(|(hash, record)| {
            let (requests, last_used) = keys.pending_usage(hash);
            record.view(requests, last_used)
        })
        .collect();
    Ok(response::envelope(
        StatusCode::OK,
        &Listing {
            total: keys.len(),
            keys,
        },
        req.request_id,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    plan: Option<Plan>,
    #[serde(default)]
    points: Option<u64>,
    #[serde(default)]
    rate_per_s: Option<u32>,
    #[serde(default)]
    burst: Option<u32>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

/// `scopes` of a request body: known names, at least one.
fn scopes_field(names: &[String]) -> Result<Scopes, ApiError> {
    Scopes::parse(names.iter().map(String::as_str)).map_err(|unknown| {
        if unknown.is_empty() {
            ApiError::field("scopes", "至少包含一项")
        } else {
            ApiError::field(
                "scopes",
                format!("不认识 {unknown:?}，可选：{}", Scopes::known()),
            )
        }
    })
}

/// `POST /admin/api/keys`: 201 with the secret `key` (shown this once) and the key's record.
pub async fn create(keys: &KeyGate, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let request_id = req.request_id;
    let body: CreateBody = req.json()?;
    let new = NewKey {
        name: validate::name(&body.name).map_err(|why| ApiError::field("name", why.zh()))?,
        plan: body.plan.unwrap_or(Plan::Free),
        points: validate::points(body.points.unwrap_or(0))
            .map_err(|why| ApiError::field("points", why.zh()))?,
        rate_per_s: body
            .rate_per_s
            .map(validate::rate)
            .transpose()
            .map_err(|why| ApiError::field("rate_per_s", why.zh()))?,
        burst: body
            .burst
            .map(validate::rate)
            .transpose()
            .map_err(|why| ApiError::field("burst", why.zh()))?,
        scopes: body
            .scopes
            .as_deref()
            .map(scopes_field)
            .transpose()?
            .unwrap_or_default(),
    };
    let now = timefmt::now_ms();
    let (secret, record) = keys.book().create(new, now).await?;
    tracing::info!(key_id = %record.id, name = %record.name, "API key created");

    #[derive(Serialize)]
    struct Created<'a> {
        key: &'a str,
        #[serde(flatten)]
        record: KeyView<'a>,
    }
    Ok(response::envelope(
        StatusCode::CREATED,
        &Created {
            key: &secret,
            record: record.view(0, None),
        },
        request_id,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    plan: Option<Plan>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    add_points: Option<i64>,
    #[serde(default)]
    rate_per_s: Option<u32>,
    #[serde(default)]
    burst: Option<u32>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

/// `PATCH /admin/api/keys/{id}`: `{disabled?, plan?, add_points?, name?, rate_per_s?, burst?,
/// scopes?}`.
pub async fn patch(keys: &KeyGate, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let request_id = req.request_id;
    let id = key_id(&req)?;
    let body: PatchBody = req.json()?;
    let patch = KeyPatch {
        name: body
            .name
            .as_deref()
            .map(validate::name)
            .transpose()
            .map_err(|why| ApiError::field("name", why.zh()))?,
        plan: body.plan,
        disabled: body.disabled,
        add_points: body
            .add_points
            .map(validate::points_delta)
            .transpose()
            .map_err(|why| ApiError::field("add_points", why.zh()))?,
        rate_per_s: body
            .rate_per_s
            .map(validate::rate)
            .transpose()
            .map_err(|why| ApiError::field("rate_per_s", why.zh()))?,
        burst: body
            .burst
            .map(validate::rate)
            .transpose()
            .map_err(|why| ApiError::field("burst", why.zh()))?,
        scopes: body.scopes.as_deref().map(scopes_field).transpose()?,
    };
    if patch.is_empty() {
        return Err(ApiError::field(
            "body",
            "至少提供 name、plan、disabled、add_points、rate_per_s、burst、scopes 之一",
        ));
    }
    let outcome = keys.book().update(&id, patch).await?;
    match outcome {
        UpdateOutcome::Updated { hash, record } => {
            tracing::info!(key_id = %record.id, "API key changed");
            let (requests, last_used) = keys.pending_usage(&hash);
            Ok(response::envelope(
                StatusCode::OK,
                &record.view(requests, last_used),
                request_id,
            ))
        }
        UpdateOutcome::NotFound => Err(ApiError::NotFound("密钥")),
        UpdateOutcome::PointsWouldBeNegative { balance } => Err(ApiError::Conflict(
            format!("积分余额为 {balance}，扣减后不能为负数").into(),
        )),
    }
}

/// `DELETE /admin/api/keys/{id}`.
pub async fn delete(keys: &KeyGate, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    #[derive(Serialize)]
    struct Deleted<'a> {
        id: &'a str,
        deleted: bool,
    }
    let id = key_id(&req)?;
    let deleted = keys.book().delete(&id).await?;
    if !deleted {
        return Err(ApiError::NotFound("密钥"));
    }
    tracing::info!(key_id = %id, "API key deleted");
    Ok(response::envelope(
        StatusCode::OK,
        &Deleted {
            id: &id,
            deleted: true,
        },
        req.request_id,
    ))
}

/// The `{id}` parameter; a malformed id cannot exist, so it is a 404 like an unknown one.
fn key_id(req: &Req<'_>) -> Result<String, ApiError> {
    let id = req.param("id");
    if !secret::looks_like_id(id) {
        return Err(ApiError::NotFound("密钥"));
    }
    Ok(id.to_owned())
}
