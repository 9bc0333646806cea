//! `POST /api/v1/tools/security-check {"url": "…"}`: costs `security.points_per_check` points
//! (10 by default), debited through the key book (the writer thread's transaction, or in cluster
//! mode a compare-and-set on the cluster's record), so concurrent calls can never spend the same
//! points. A malformed URL (400) or a balance below the price (403 积分不足) is
//! refused before anything is debited.

use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::SecurityChecker;
use crate::error::ApiError;
use crate::http::response::{self, HttpResponse};
use crate::keys::KeyBook;
use crate::keys::KeyReq as Req;
use crate::keys::repo::DebitOutcome;
use crate::links;
use crate::links::LinkService;

/// Longest URL the check accepts at all (longer ones are 400; 2 KB already counts as a risk).
const MAX_URL: usize = 65_536;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    url: String,
}

#[derive(Serialize)]
struct Verdict<'a> {
    url: &'a str,
    safe: bool,
    level: &'static str,
    reason: String,
    risk_codes: Vec<&'static str>,
    points_deducted: u64,
    points_remaining: u64,
}

/// `POST /api/v1/tools/security-check`.
pub async fn check(
    security: &SecurityChecker,
    links: &LinkService,
    keys: &KeyBook,
    req: Req<'_>,
) -> Result<HttpResponse, ApiError> {
    let key = req.caller.clone().ok_or(ApiError::MissingApiKey)?;
    let parts = req.parts;
    let request_id = req.request_id;
    let own = links::api::own_hosts(links, parts);
    let body: Body = req.json()?;
    let text = body.url.trim();
    if text.is_empty() {
        return Err(ApiError::field("url", "不能为空"));
    }
    if text.len() > MAX_URL {
        return Err(ApiError::field(
            "url",
            format!("长度不能超过 {MAX_URL} 字节"),
        ));
    }
    if text.chars().any(|c| c.is_control() || c == ' ') {
        return Err(ApiError::field("url", "不能包含空格或控制字符"));
    }
    let url = url::Url::parse(text)
        .map_err(|err| ApiError::field("url", format!("不是合法的绝对 URL ({err})")))?;
    let price = security.points_per_check;
    if key.record.points < price {
        metrics::counter!("panlink_security_checks_total", "verdict" => "refused").increment(1);
        return Err(ApiError::InsufficientPoints);
    }
    let assessment = security.assess(&url, text.len(), &own).await;
    let debit = keys.debit(key.hash, &key.record.id, price).await?;
    let remaining = match debit {
        DebitOutcome::Debited { remaining } => remaining,
        DebitOutcome::Insufficient => {
            metrics::counter!("panlink_security_checks_total", "verdict" => "refused").increment(1);
            return Err(ApiError::InsufficientPoints);
        }
        DebitOutcome::Disabled => return Err(ApiError::KeyDisabled),
        DebitOutcome::KeyGone => return Err(ApiError::InvalidApiKey),
    };
    metrics::counter!("panlink_security_checks_total", "verdict" => assessment.level())
        .increment(1);
    metrics::counter!("panlink_points_spent_total").increment(price);
    Ok(response::envelope(
        StatusCode::OK,
        &Verdict {
            url: text,
            safe: assessment.safe(),
            level: assessment.level(),
            reason: assessment.reason(),
            risk_codes: assessment.risks.iter().map(|r| r.code()).collect(),
            points_deducted: price,
            points_remaining: remaining,
        },
        request_id,
    ))
}
