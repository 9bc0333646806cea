//! `GET /api/v1/me`: the calling key's own account (plan, points, effective rate limit, scopes).

use http::StatusCode;
use serde::Serialize;

use super::KeyReq as Req;
use crate::config::KeysConfig;
use crate::error::ApiError;
use crate::http::response::{self, HttpResponse};

/// `GET /api/v1/me`.
pub fn me(config: &KeysConfig, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    #[derive(Serialize)]
    struct Me<'a> {
        id: &'a str,
        name: &'a str,
        plan: &'static str,
        points: u64,
        rate_per_s: u32,
        burst: u32,
        scopes: Vec<&'static str>,
    }
    let key = req.caller.as_ref().ok_or(ApiError::MissingApiKey)?;
    let record = &key.record;
    Ok(response::envelope(
        StatusCode::OK,
        &Me {
            id: &record.id,
            name: &record.name,
            plan: record.plan.as_str(),
            points: record.points,
            rate_per_s: record.rate_per_s.unwrap_or(config.default_rate_per_s),
            burst: record.burst.unwrap_or(config.default_burst),
            scopes: record.scopes.names(),
        },
        req.request_id,
    ))
}
