//! The mock of OneDrive's personal shares (`docs/providers.md` §3.14): the token service issues
//! anonymous tokens for the web app's id; the share API decodes the `u!` id back to the link,
//! takes the case from the link's last path segment, and answers a drive item or Microsoft's
//! error shape (`{"error": {"code", "message"}}`). It refuses a token it did not issue (401) and
//! a request without `Prefer: autoredeem` (403), as public clients report.
//!
//! Beside the shared table: `revoke…` makes the service forget every token it issued, the first
//! time that id is asked (tokens expiring), then answers as the rest of the id.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::outcome::Case;
use super::{MockRequest, MockState};

/// The token service's and the share API's hosts.
pub const HOSTS: &[&str] = &["api-badgerp.svc.ms", "my.microsoftpersonalcontent.com"];
const APP_ID: &str = "5cbed6ac-a083-4e14-b191-b4ba07653de2";

fn error(status: StatusCode, code: &str) -> Response<Full<Bytes>> {
    super::json(
        status,
        &json!({"error": {"code": code, "message": format!("mock: {code}")}}),
    )
}

pub async fn answer(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    if req.method == Method::POST && req.path == "/v1.0/token" {
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        if body["appId"] != APP_ID {
            return error(StatusCode::BAD_REQUEST, "invalidRequest");
        }
        return super::json(
            StatusCode::OK,
            &json!({"token": state.issue_token(), "expiryTimeUtc": "2099-01-01T00:00:00Z"}),
        );
    }
    let Some(encoded) = req
        .path
        .strip_prefix("/_api/v2.0/shares/u!")
        .and_then(|rest| rest.strip_suffix("/driveitem"))
    else {
        return error(StatusCode::NOT_FOUND, "invalidRequest");
    };
    let link = URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| url::Url::parse(&text).ok());
    let Some(link) = link else {
        return error(StatusCode::BAD_REQUEST, "invalidRequest");
    };
    let mut id = link
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_owned))
        .unwrap_or_default();
    if let Some(rest) = id.strip_prefix("revoke") {
        if state.first_time(&format!("onedrive-revoke:{id}")) {
            state.revoke_tokens();
        }
        id = rest.to_owned();
    }
    let authorized = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Badger "))
        .is_some_and(|token| state.token_issued(token));
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    if req.headers.get("prefer").and_then(|v| v.to_str().ok()) != Some("autoredeem") {
        return error(StatusCode::FORBIDDEN, "accessDenied");
    }
    let folder = |children: u64| {
        super::json(
            StatusCode::OK,
            &json!({"id": "ABFD0A26E47D3458!4699", "name": format!("mock-{id}"), "size": 3072,
                    "folder": {"childCount": children}}),
        )
    };
    match state.settle("onedrive", &id).await {
        Case::Ok | Case::OkExpiring(_) => folder(3),
        Case::Empty => folder(0),
        Case::Gone | Case::NotFound | Case::Expired | Case::Banned => {
            error(StatusCode::NOT_FOUND, "itemNotFound")
        }
        // A personal share has no pass code: a link not shared with everyone is refused.
        Case::Locked => error(StatusCode::FORBIDDEN, "accessDenied"),
        Case::Limited => error(StatusCode::TOO_MANY_REQUESTS, "activityLimitReached"),
        Case::Error | Case::Slow => super::server_error(),
        Case::Junk => super::html_page(),
    }
}
