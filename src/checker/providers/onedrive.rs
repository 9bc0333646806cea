//! OneDrive: personal shares (`https://1drv.ms/<kind>/…`, `https://onedrive.live.com/?…` with
//! `id`, `resid`, `cid` or `redeem`) and business personal shares (`https://<tenant>-my.sharepoint.com/…/personal/…`).
//!
//! The check of a personal share (`docs/providers.md` §3.14), as OneDrive's web app reads a link
//! it is shown without a login: an anonymous "Badger" token from the token service (kept for
//! hours, shared by all checks), then the share API with the link itself as the share id
//! (`u!` + the URL in unpadded base64url) and `Prefer: autoredeem`. A drive item with a name is
//! valid; `404 itemNotFound` is gone; every other refusal is `unknown`.
//!
//! A business share lives on its tenant's own host, which the checker would have to take from the
//! link: it never does (the providers' invariant), so those links are recognised and answered
//! `unknown` / `provider_unverified` without a request.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{Parsed, host_in, non_json_answer, transport_failure, unlisted_code};
use crate::checker::client::UpstreamClient;
use crate::checker::share::ShareRef;
use crate::checker::verdict::{Reason, State, Verdict};

/// Hosts of OneDrive personal share links (business ones are `*-my.sharepoint.com`).
pub const SHARE_HOSTS: &[&str] = &["1drv.ms", "onedrive.live.com", "photos.onedrive.com"];
/// The suffix of business personal-site hosts.
const BUSINESS_SUFFIX: &str = "-my.sharepoint.com";
/// The service that issues anonymous tokens to OneDrive's web app.
pub const TOKEN_API: &str = "https://api-badgerp.svc.ms/v1.0/token";
/// The share API for personal shares.
pub const SHARES_API: &str = "https://my.microsoftpersonalcontent.com/_api/v2.0/shares/";
/// The web app's id, for which the token service issues anonymous tokens.
const APP_ID: &str = "5cbed6ac-a083-4e14-b191-b4ba07653de2";
/// The same app's numeric id, sent as a header by public clients.
const APP_NUMBER: &str = "1141147648";
/// Tokens are said to last a week; a new one is asked for well before.
const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);
const SESSION: &str = "onedrive.badger_token";
/// Longer links are not share links (and would make an unwieldy share id).
const MAX_URL: usize = 512;

/// The share id of a OneDrive URL: the link itself without its fragment.
pub fn parse(url: &Url) -> Option<Parsed> {
    let host = url.host_str()?.to_ascii_lowercase();
    let business = host.ends_with(BUSINESS_SUFFIX) && host.len() > BUSINESS_SUFFIX.len();
    let personal = host_in(url, SHARE_HOSTS);
    let shaped = if business {
        url.path().contains("/personal/")
    } else if personal == Some("1drv.ms") {
        url.path_segments()
            .is_some_and(|s| s.filter(|p| !p.is_empty()).count() >= 2)
    } else if personal.is_some() {
        url.query_pairs()
            .any(|(k, v)| matches!(k.as_ref(), "id" | "resid" | "cid" | "redeem") && !v.is_empty())
            || url.path().starts_with("/redir")
    } else {
        return None;
    };
    let mut share = url.clone();
    share.set_fragment(None);
    let _ = share.set_scheme("https");
    (shaped && share.as_str().len() <= MAX_URL).then(|| Parsed::id(share.as_str()))
}

/// The share API's id for a sharing link.
pub fn share_id(link: &str) -> String {
    format!("u!{}", URL_SAFE_NO_PAD.encode(link))
}

/// Asks OneDrive about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    let business = Url::parse(&share.id)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.ends_with(BUSINESS_SUFFIX)))
        .unwrap_or(false);
    if business {
        return Verdict::unknown(Reason::ProviderUnverified, "business share".to_owned());
    }
    let url = format!(
        "{SHARES_API}{}/driveitem?$select=id,name,size,file,folder",
        share_id(&share.id)
    );
    let mut verdict = Verdict::unknown(Reason::UpstreamError, None);
    // A token the share API refuses is dropped and asked for once more.
    for _ in 0..2 {
        let mut failure = None;
        let Some(token) = client
            .session(SESSION, || fetch_token(client, &mut failure))
            .await
        else {
            return failure.unwrap_or(verdict);
        };
        let authorization = format!("Badger {token}");
        let headers = [
            ("accept", "application/json"),
            ("authorization", authorization.as_str()),
            ("prefer", "autoredeem"),
            ("appid", APP_NUMBER),
        ];
        verdict = match client.get(&url, &headers).await {
            Ok(answer) => item_verdict(answer.status, &answer.body),
            Err(err) => return transport_failure(&err),
        };
        if verdict.provider_code.as_deref() != Some("HTTP 401") {
            break;
        }
        client.forget_session(SESSION);
    }
    verdict
}

/// One token request; on failure, the verdict to give is left in `failure`.
async fn fetch_token(
    client: &UpstreamClient,
    failure: &mut Option<Verdict>,
) -> Option<(String, Option<Duration>)> {
    let headers = [("appid", APP_NUMBER), ("accept", "application/json")];
    let outcome = match client
        .post_json(TOKEN_API, &headers, &json!({"appId": APP_ID}))
        .await
    {
        Ok(answer) => token_outcome(answer.status, &answer.body),
        Err(err) => Err(transport_failure(&err)),
    };
    match outcome {
        Ok(token) => Some((token, Some(TOKEN_LIFETIME))),
        Err(verdict) => {
            *failure = Some(verdict);
            None
        }
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
}

/// The token service's answer: the token, or the verdict of a check that cannot go on. A refusal
/// other than a rate limit or a server error blinds every OneDrive check, so it is
/// `request_rejected` (counted by the breaker), never a verdict on a share.
fn token_outcome(status: u16, body: &[u8]) -> Result<String, Verdict> {
    let token = serde_json::from_slice::<TokenAnswer>(body)
        .ok()
        .and_then(|a| a.token)
        .filter(|t| !t.is_empty());
    match (status, token) {
        (200..=299, Some(token)) => Ok(token),
        (429 | 500..=599, _) => Err(non_json_answer(status)),
        _ => Err(Verdict::unknown(
            Reason::RequestRejected,
            format!("token HTTP {status}"),
        )),
    }
}

#[derive(Deserialize)]
struct Item {
    name: Option<String>,
    file: Option<serde::de::IgnoredAny>,
    folder: Option<Folder>,
}

#[derive(Deserialize)]
struct Folder {
    #[serde(rename = "childCount")]
    child_count: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<String>,
}

/// The share API's answer.
pub fn item_verdict(status: u16, body: &[u8]) -> Verdict {
    if (200..300).contains(&status) {
        let Ok(item) = serde_json::from_slice::<Item>(body) else {
            return Verdict::unknown(Reason::UnrecognizedResponse, format!("HTTP {status}"));
        };
        let Some(name) = item.name.filter(|n| !n.is_empty()) else {
            return Verdict::unknown(Reason::UnrecognizedResponse, format!("HTTP {status}"));
        };
        let count = match (item.file, item.folder) {
            (Some(_), _) => Some(1),
            (None, Some(folder)) => folder.child_count,
            (None, None) => None,
        };
        let mut verdict = if count == Some(0) {
            Verdict::new(State::Invalid, Reason::EmptyShare)
        } else {
            Verdict::new(State::Valid, Reason::AllChecksPassed)
        };
        verdict.share_name = Some(name);
        verdict.file_count = count;
        return verdict.with_code(format!("HTTP {status}"));
    }
    let code = serde_json::from_slice::<ErrorAnswer>(body)
        .ok()
        .and_then(|a| a.error)
        .and_then(|e| e.code);
    match (status, code.as_deref()) {
        (404, Some("itemNotFound")) => {
            Verdict::new(State::Invalid, Reason::ShareNotFound).with_code("itemNotFound".to_owned())
        }
        // Not shared with everyone, or the token refused: nothing says the share is gone.
        (401 | 403, _) => Verdict::unknown(Reason::ProviderUnverified, format!("HTTP {status}")),
        (_, Some(code)) => {
            let (state, reason) = unlisted_code(status);
            Verdict::new(state, reason).with_code(code.to_owned())
        }
        (_, None) => non_json_answer(status),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_urls;
    use super::*;
    use crate::checker::share::Provider;

    #[test]
    fn url_table() {
        assert_urls(
            Provider::Onedrive,
            &[
                (
                    "https://1drv.ms/v/c/49e18460ed20d89c/IQA0-4CgNI50R5PRqh3dLEGoAXDFVRoySH969JO0uU1c3mQ?e=35jiOO",
                    Some((
                        "https://1drv.ms/v/c/49e18460ed20d89c/IQA0-4CgNI50R5PRqh3dLEGoAXDFVRoySH969JO0uU1c3mQ?e=35jiOO",
                        None,
                    )),
                ),
                (
                    "http://1drv.ms/w/s!Alg0feQmCv2rnRFd60DQOmMa-Oh_?e=buaRtp#x",
                    Some((
                        "https://1drv.ms/w/s!Alg0feQmCv2rnRFd60DQOmMa-Oh_?e=buaRtp",
                        None,
                    )),
                ),
                (
                    "https://onedrive.live.com/redir?resid=ABFD0A26E47D3458!4699&e=OggA4s",
                    Some((
                        "https://onedrive.live.com/redir?resid=ABFD0A26E47D3458!4699&e=OggA4s",
                        None,
                    )),
                ),
                (
                    "https://onedrive.live.com/?authkey=%21AF3r&id=ABFD0A26E47D3458%213729&cid=ABFD0A26E47D3458",
                    Some((
                        "https://onedrive.live.com/?authkey=%21AF3r&id=ABFD0A26E47D3458%213729&cid=ABFD0A26E47D3458",
                        None,
                    )),
                ),
                (
                    "https://contoso-my.sharepoint.com/:u:/g/personal/alice_contoso_com/EbCdEf",
                    Some((
                        "https://contoso-my.sharepoint.com/:u:/g/personal/alice_contoso_com/EbCdEf",
                        None,
                    )),
                ),
                ("https://1drv.ms/", None),
                ("https://1drv.ms/f", None),
                ("https://onedrive.live.com/about/en-us/", None),
                ("https://contoso.sharepoint.com/sites/team/doc", None),
                ("https://-my.sharepoint.com/personal/x/y", None),
                ("https://1drv.ms.example.net/f/s!abc", None),
            ],
        );
    }

    #[test]
    fn share_ids_are_the_link_in_base64url() {
        // The encoding Microsoft documents for sharing URLs (unpadded base64url behind `u!`); the
        // `redeem` parameter of this link's redirect, in OneDrive's own answer, is the same text.
        assert_eq!(
            share_id("https://1drv.ms/u/s!Alg0feQmCv2rpFvu444hg5yVqDcK?e=OggA4s"),
            "u!aHR0cHM6Ly8xZHJ2Lm1zL3UvcyFBbGcwZmVRbUN2MnJwRnZ1NDQ0aGc1eVZxRGNLP2U9T2dnQTRz"
        );
    }

    #[test]
    fn item_answers() {
        let file = item_verdict(200, br#"{"id":"A!1","name":"a.mkv","size":3,"file":{}}"#);
        assert_eq!(
            (file.state, file.reason, file.file_count),
            (State::Valid, Reason::AllChecksPassed, Some(1))
        );
        assert_eq!(file.share_name.as_deref(), Some("a.mkv"));
        let folder = item_verdict(200, br#"{"name":"d","folder":{"childCount":4}}"#);
        assert_eq!(folder.file_count, Some(4));
        let empty = item_verdict(200, br#"{"name":"d","folder":{"childCount":0}}"#);
        assert_eq!(
            (empty.state, empty.reason),
            (State::Invalid, Reason::EmptyShare)
        );
        let gone = item_verdict(404, br#"{"error":{"code":"itemNotFound","message":"x"}}"#);
        assert_eq!(
            (gone.state, gone.reason),
            (State::Invalid, Reason::ShareNotFound)
        );
        // A 404 that is not the API's itemNotFound (a gateway page) is not dead.
        assert_eq!(item_verdict(404, b"<html>").state, State::Unknown);
        for status in [401, 403] {
            let refused = item_verdict(status, br#"{"error":{"code":"accessDenied"}}"#);
            assert_eq!(refused.reason, Reason::ProviderUnverified);
        }
        assert_eq!(
            item_verdict(429, br#"{"error":{"code":"activityLimitReached"}}"#).reason,
            Reason::RateLimited
        );
        assert_eq!(item_verdict(200, br#"{"id":"x"}"#).state, State::Unknown);
        assert_eq!(item_verdict(503, b"busy").reason, Reason::UpstreamError);
    }

    #[test]
    fn token_answers() {
        assert_eq!(
            token_outcome(
                200,
                br#"{"token":"t1","expiryTimeUtc":"2026-12-10T00:00:00Z"}"#
            ),
            Ok("t1".to_owned())
        );
        assert_eq!(
            token_outcome(400, b"{}").unwrap_err().reason,
            Reason::RequestRejected
        );
        assert_eq!(
            token_outcome(200, b"{}").unwrap_err().reason,
            Reason::RequestRejected
        );
        assert_eq!(
            token_outcome(429, b"").unwrap_err().reason,
            Reason::RateLimited
        );
    }
}
