//! 微云 (weiyun, Tencent): `https://share.weiyun.com/<key>`; the pass code beside the link
//! (`密码：xxxx`) or as `?pwd=`.
//!
//! The check (`docs/providers.md` §3.13) asks twice. First the share page, as a browser opens it:
//! its `wyctoken` cookie is the `g_tk` of the next step, and its text carries what public
//! checkers read (a pass-code form, or the words of a deleted, expired or blocked share). Then
//! the share-view API the page's own script calls (`WeiyunShareView`, command 12002, no login),
//! with the pass code. Only `retcode` 0 with a share name is valid; the page's words decide a
//! dead share only when the API did not open it, so a live share named "已删除" stays valid.

use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{Parsed, host_in, is_share_id, non_json_answer, query_value, transport_failure};
use crate::checker::client::UpstreamClient;
use crate::checker::share::ShareRef;
use crate::checker::verdict::{Reason, State, Verdict};

/// Hosts of weiyun share links.
pub const SHARE_HOSTS: &[&str] = &["share.weiyun.com"];
/// The share page (its path is the key).
const PAGE: &str = "https://share.weiyun.com/";
/// The share-view API the page's script calls without a login.
pub const API: &str = "https://share.weiyun.com/webapp/json/weiyunShareNoLogin/WeiyunShareView";

/// What the share page says when the API did not open the share, from public checkers' rules;
/// the first that appears decides.
const PAGE_MARKERS: &[(&str, State, Reason)] = &[
    ("违反相关法规", State::Invalid, Reason::ShareViolation),
    ("已过期", State::Invalid, Reason::ShareExpired),
    ("已被删除", State::Invalid, Reason::ShareCancelled),
    ("已经删除", State::Invalid, Reason::ShareCancelled),
    ("已删除", State::Invalid, Reason::ShareCancelled),
    ("目录无效", State::Invalid, Reason::ShareNotFound),
];

/// The key of a weiyun URL.
pub fn parse(url: &Url) -> Option<Parsed> {
    host_in(url, SHARE_HOSTS)?;
    let mut segments = url.path_segments()?.filter(|s| !s.is_empty());
    let key = segments.next()?;
    let only = segments.next().is_none();
    // `ftn_handler/…` is a download path, not a share.
    (only && !key.starts_with("ftn_handler") && is_share_id(key, 5, 40, b"-_"))
        .then(|| Parsed::id(key))
}

/// Asks weiyun about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    let page_url = format!("{PAGE}{}", share.id);
    let page = match client
        .get(&page_url, &[("accept", "text/html,application/xhtml+xml")])
        .await
    {
        Ok(page) => page,
        Err(err) => return transport_failure(&err),
    };
    if page.status != 200 {
        return non_json_answer(page.status);
    }
    let token = page.cookie("wyctoken").unwrap_or_else(|| "0".to_owned());
    let passcode = share.passcode.as_deref().unwrap_or("");
    let request = json!({
        "req_header": json!({
            "seq": 1, "type": 1, "cmd": 12002, "appid": 30113, "version": 3,
            "major_version": 3, "minor_version": 3, "fix_version": 3,
            "wx_openid": "", "user_flag": 0,
        })
        .to_string(),
        "req_body": json!({
            "ReqMsg_body": {
                "ext_req_head": {
                    "token_info": {"token_type": 0, "login_key_type": 1, "login_key_value": ""},
                    "language_info": {"language_type": 2052},
                },
                ".weiyun.WeiyunShareViewMsgReq_body": {
                    "share_pwd": passcode,
                    "share_key": share.id,
                },
            }
        })
        .to_string(),
    });
    let api_url = format!(
        "{API}?refer=chrome_windows&g_tk={}&r=0.5",
        query_value(&token)
    );
    let headers = [
        ("origin", "https://share.weiyun.com"),
        ("referer", page_url.as_str()),
    ];
    match client.post_json(&api_url, &headers, &request).await {
        Ok(answer) => verdict(
            answer.status,
            &answer.body,
            &page.body,
            share.passcode.is_some(),
        ),
        Err(err) => transport_failure(&err),
    }
}

#[derive(Deserialize)]
struct Answer {
    data: Option<AnswerData>,
}

#[derive(Deserialize)]
struct AnswerData {
    rsp_header: Option<RspHeader>,
    rsp_body: Option<RspBody>,
}

#[derive(Deserialize)]
struct RspHeader {
    retcode: Option<i64>,
}

#[derive(Deserialize)]
struct RspBody {
    #[serde(rename = "RspMsg_body")]
    msg: Option<ShareView>,
}

#[derive(Deserialize)]
struct ShareView {
    share_name: Option<String>,
    need_pwd: Option<serde_json::Value>,
    file_list: Option<Vec<serde::de::IgnoredAny>>,
    dir_list: Option<Vec<serde::de::IgnoredAny>>,
}

/// The verdict from the API's answer and, where it did not open the share, the page's text.
pub fn verdict(status: u16, api_body: &[u8], page: &[u8], sent_passcode: bool) -> Verdict {
    let Ok(answer) = serde_json::from_slice::<Answer>(api_body) else {
        return non_json_answer(status);
    };
    let Some(data) = answer.data else {
        return Verdict::unknown(Reason::UnrecognizedResponse, format!("HTTP {status}"));
    };
    let Some(retcode) = data.rsp_header.and_then(|h| h.retcode) else {
        return Verdict::unknown(Reason::UnrecognizedResponse, format!("HTTP {status}"));
    };
    let code = format!("retcode {retcode}");
    let view = data.rsp_body.and_then(|b| b.msg);
    if retcode == 0
        && let Some(view) = view
        && let Some(name) = view.share_name.filter(|n| !n.is_empty())
    {
        if super::json_int(view.need_pwd.as_ref()) == Some(1) && !sent_passcode {
            return Verdict::new(State::Locked, Reason::PasswordRequired).with_code(code);
        }
        let files = view.file_list.as_ref().map(Vec::len);
        let dirs = view.dir_list.as_ref().map(Vec::len);
        let count = match (files, dirs) {
            (None, None) => None,
            (files, dirs) => Some((files.unwrap_or(0) + dirs.unwrap_or(0)) as u64),
        };
        if count == Some(0) {
            // Nothing public says an empty listing is a dead share rather than, say, a note.
            return Verdict::unknown(Reason::ProviderUnverified, "empty listing".to_owned());
        }
        let mut verdict = Verdict::new(State::Valid, Reason::AllChecksPassed).with_code(code);
        verdict.share_name = Some(name);
        verdict.file_count = count;
        return verdict;
    }
    let page = String::from_utf8_lossy(page);
    if page.contains("\"need_pwd\":1") {
        // The share exists and wants a pass code. With one sent, no public source names the
        // refusal's retcode: the verdict stays unknown.
        return if sent_passcode {
            Verdict::unknown(Reason::ProviderUnverified, code)
        } else {
            Verdict::new(State::Locked, Reason::PasswordRequired).with_code(code)
        };
    }
    match PAGE_MARKERS
        .iter()
        .find(|(marker, ..)| page.contains(marker))
    {
        Some((_, state, reason)) => Verdict::new(*state, *reason).with_code(code),
        None => Verdict::unknown(Reason::ProviderUnverified, code),
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
            Provider::Weiyun,
            &[
                ("https://share.weiyun.com/5KMHVRY", Some(("5KMHVRY", None))),
                (
                    "http://share.weiyun.com/7528e49c4602425d88ce3b91ccde3b9b",
                    Some(("7528e49c4602425d88ce3b91ccde3b9b", None)),
                ),
                (
                    "https://share.weiyun.com/LAcjJGSz?pwd=ab12",
                    Some(("LAcjJGSz", Some("ab12"))),
                ),
                ("https://share.weiyun.com/", None),
                ("https://share.weiyun.com/ftn_handler/abcdef", None),
                ("https://share.weiyun.com/a/b", None),
                ("https://share.weiyun.com.example.net/5KMHVRY", None),
            ],
        );
    }

    fn api(retcode: i64, view: serde_json::Value) -> Vec<u8> {
        json!({"data": {"rsp_header": {"retcode": retcode, "retmsg": ""},
                        "rsp_body": {"RspMsg_body": view}}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn the_api_opens_a_share_and_the_page_only_decides_what_it_did_not_open() {
        let open = api(
            0,
            json!({"share_name": "已删除的照片", "file_list": [{}, {}], "dir_list": [{}]}),
        );
        // A live share whose name reads like a dead page's words is valid.
        let valid = verdict(200, &open, "分享已删除 已过期".as_bytes(), false);
        assert_eq!(
            (valid.state, valid.reason),
            (State::Valid, Reason::AllChecksPassed)
        );
        assert_eq!(valid.share_name.as_deref(), Some("已删除的照片"));
        assert_eq!(valid.file_count, Some(3));
        let refused = api(190049, json!({}));
        for (page, state, reason) in [
            ("该分享已被删除", State::Invalid, Reason::ShareCancelled),
            ("链接已过期", State::Invalid, Reason::ShareExpired),
            ("内容违反相关法规", State::Invalid, Reason::ShareViolation),
            ("目录无效", State::Invalid, Reason::ShareNotFound),
            (
                r#"{"need_pwd":1,"pwd":""}"#,
                State::Locked,
                Reason::PasswordRequired,
            ),
            (
                "<div id=app></div>",
                State::Unknown,
                Reason::ProviderUnverified,
            ),
        ] {
            let got = verdict(200, &refused, page.as_bytes(), false);
            assert_eq!((got.state, got.reason), (state, reason), "{page}");
            assert_eq!(got.provider_code.as_deref(), Some("retcode 190049"));
        }
        // A pass code sent and refused: no source names that retcode.
        let wrong = verdict(200, &refused, br#"{"need_pwd":1}"#, true);
        assert_eq!(wrong.reason, Reason::ProviderUnverified);
        // retcode 0 without a share, or with an empty listing, is not read as valid.
        assert_eq!(
            verdict(200, &api(0, json!({})), b"", false).state,
            State::Unknown
        );
        let empty = api(
            0,
            json!({"share_name": "x", "file_list": [], "dir_list": []}),
        );
        assert_eq!(verdict(200, &empty, b"", false).state, State::Unknown);
        // The API says the share wants a code.
        let locked = api(0, json!({"share_name": "x", "need_pwd": 1}));
        assert_eq!(verdict(200, &locked, b"", false).state, State::Locked);
        assert_eq!(
            verdict(502, b"bad gateway", b"", false).reason,
            Reason::UpstreamError
        );
    }
}
