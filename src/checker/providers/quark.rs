//! Quark (夸克网盘): `https://pan.quark.cn/s/<pwd_id>` (`?pwd=` optional).
//!
//! The check (`docs/providers.md` §3.1): `POST …/share/sharepage/token` with `{pwd_id, passcode}`;
//! `code 0` with a non-empty `stoken` means the share exists; then `GET …/share/sharepage/detail`
//! with the stoken tells an empty share from a valid one and gives the file count. Error codes come
//! with HTTP 404/403, so the body is read whatever the status.
//!
//! UC (`uc.rs`) is the same service under other hosts: it shares this request sequence and code
//! table through [`Family`].

use serde::Deserialize;
use url::Url;

use super::{
    Parsed, host_in, is_share_id, non_json_answer, query_value, transport_failure, unlisted_code,
};
use crate::checker::client::UpstreamClient;
use crate::checker::share::ShareRef;
use crate::checker::verdict::{Expiry, Reason, State, Verdict};

/// Hosts of quark share links. `pan.qoark.cn` is a short host that link-search sites hand out and
/// that redirects to `pan.quark.cn` with the same id (`docs/providers.md` §3.1).
pub const SHARE_HOSTS: &[&str] = &["pan.quark.cn", "quark.cn", "pan.qoark.cn"];

/// A drive of the quark family: its API prefix, fixed query and the page its requests come from.
#[derive(Debug)]
pub struct Family {
    /// The API origin and path prefix (`…/1/clouddrive/share/sharepage`).
    pub api: &'static str,
    /// The fixed query (`pr=…&fr=pc`).
    pub query: &'static str,
    /// The share page's origin, sent as `Origin` (UC requires it).
    pub origin: &'static str,
    /// Sent as `Referer`.
    pub referer: &'static str,
}

/// Quark's API.
pub const QUARK: Family = Family {
    api: "https://drive-pc.quark.cn/1/clouddrive/share/sharepage",
    query: "pr=ucpro&fr=pc",
    origin: "https://pan.quark.cn",
    referer: "https://pan.quark.cn/",
};

/// `expired_at` at or after 2100-01-01 is quark's "never expires" sentinel.
const PERMANENT_SENTINEL_MS: u64 = 4_102_416_000_000;

/// The share id of a quark URL.
pub fn parse(url: &Url) -> Option<Parsed> {
    host_in(url, SHARE_HOSTS)?;
    share_path_id(url)
}

/// The id of a quark-family `/s/<pwd_id>` path.
pub(super) fn share_path_id(url: &Url) -> Option<Parsed> {
    let id = url.path().strip_prefix("/s/")?.split('/').next()?;
    is_share_id(id, 4, 64, b"").then(|| Parsed::id(id))
}

/// Asks quark about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    check_family(client, share, &QUARK).await
}

/// Asks a quark-family drive about `share`: token, then detail.
pub async fn check_family(client: &UpstreamClient, share: &ShareRef, family: &Family) -> Verdict {
    let headers = [("referer", family.referer), ("origin", family.origin)];
    let body = serde_json::json!({
        "pwd_id": share.id,
        "passcode": share.passcode.as_deref().unwrap_or(""),
        "support_visit_limit_private_share": true,
    });
    let token = match client
        .post_json(
            &format!("{}/token?{}", family.api, family.query),
            &headers,
            &body,
        )
        .await
    {
        Ok(exchange) => token_outcome(exchange.status, &exchange.body),
        Err(err) => return transport_failure(&err),
    };
    let token = match token {
        Ok(token) => token,
        Err(verdict) => return verdict,
    };
    let detail_url = format!(
        "{}/detail?{}&pwd_id={}&stoken={}&pdir_fid=0&force=0&_page=1&_size=50&_fetch_banner=0&_fetch_share=1&_fetch_total=1&_sort=file_type:asc,updated_at:desc",
        family.api,
        family.query,
        query_value(&share.id),
        query_value(&token.stoken)
    );
    match client.get(&detail_url, &headers).await {
        Ok(exchange) => detail_verdict(exchange.status, &exchange.body, token),
        Err(err) => transport_failure(&err),
    }
}

/// What the token step learned about a share that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub stoken: String,
    pub title: Option<String>,
    pub expiry: Expiry,
}

#[derive(Debug, Deserialize)]
struct Envelope<D> {
    code: Option<i64>,
    data: Option<D>,
    metadata: Option<Metadata>,
}

#[derive(Debug, Deserialize)]
struct TokenData {
    stoken: Option<String>,
    title: Option<String>,
    expired_type: Option<i64>,
    expired_at: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct DetailData {
    /// Only counted: each entry is skipped, not built.
    list: Option<Vec<serde::de::IgnoredAny>>,
    share: Option<DetailShare>,
    #[serde(default)]
    is_expire: bool,
}

#[derive(Debug, Deserialize)]
struct DetailShare {
    title: Option<String>,
    /// 1 on every public capture of a working share; other values are not explained anywhere.
    status: Option<i64>,
    #[serde(default)]
    partial_violation: bool,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    #[serde(rename = "_total")]
    total: Option<u64>,
}

/// The token step's code table: `Ok` when the share exists, else the final verdict.
pub fn token_outcome(status: u16, body: &[u8]) -> Result<Token, Verdict> {
    let Ok(envelope) = serde_json::from_slice::<Envelope<TokenData>>(body) else {
        return Err(non_json_answer(status));
    };
    let Some(code) = envelope.code else {
        return Err(Verdict::unknown(
            Reason::UnrecognizedResponse,
            format!("HTTP {status}"),
        ));
    };
    let raw = Some(code.to_string());
    let (state, reason) = match code {
        0 => {
            // Drift guard: `code 0` without a stoken is not proof of anything.
            let data = envelope.data;
            let Some(stoken) = data
                .as_ref()
                .and_then(|d| d.stoken.clone())
                .filter(|s| !s.is_empty())
            else {
                return Err(Verdict::unknown(Reason::UnrecognizedResponse, raw));
            };
            let data = data.expect("checked above");
            let expiry = match (data.expired_type, data.expired_at) {
                (Some(1), _) => Expiry::Permanent,
                (_, Some(at)) if at >= PERMANENT_SENTINEL_MS => Expiry::Permanent,
                (_, Some(at)) if at > 0 => Expiry::At(at),
                _ => Expiry::Unknown,
            };
            return Ok(Token {
                stoken,
                title: data.title.filter(|t| !t.is_empty()),
                expiry,
            });
        }
        41004 | 41006 => (State::Invalid, Reason::ShareNotFound),
        41009 | 41012 => (State::Invalid, Reason::ShareCancelled),
        41011 | 41019 => (State::Invalid, Reason::ShareExpired),
        41010 | 41031 => (State::Invalid, Reason::ShareViolation),
        41008 => (State::Locked, Reason::PasswordRequired),
        41007 => (State::Locked, Reason::PasswordWrong),
        // Throttling, and `14021 file not found` with HTTP 400 for a live share under risk
        // control: both count toward the provider's breaker.
        41021 | 14021 => (State::Unknown, Reason::RateLimited),
        _ => unlisted_code(status),
    };
    Err(Verdict::new(state, reason).with_code(raw))
}

/// The detail step's verdict for a share whose token step succeeded.
pub fn detail_verdict(status: u16, body: &[u8], token: Token) -> Verdict {
    let Ok(envelope) = serde_json::from_slice::<Envelope<DetailData>>(body) else {
        return non_json_answer(status);
    };
    let raw = envelope.code.map(|c| c.to_string());
    let (Some(0), Some(data)) = (envelope.code, envelope.data) else {
        let reason = if status == 429 {
            Reason::RateLimited
        } else {
            Reason::UnrecognizedResponse
        };
        return Verdict::unknown(reason, raw);
    };
    let Some(list) = data.list else {
        return Verdict::unknown(Reason::UnrecognizedResponse, raw);
    };
    let share_status = data.share.as_ref().and_then(|s| s.status);
    let partial_violation = data.share.as_ref().is_some_and(|s| s.partial_violation);
    let name = data
        .share
        .and_then(|s| s.title)
        .filter(|t| !t.is_empty())
        .or(token.title);
    if list.is_empty() {
        // Nothing to take either way; the flags only say why.
        let reason = if data.is_expire {
            Reason::ShareExpired
        } else if partial_violation && share_status.is_some_and(|s| s > 1) {
            Reason::ShareViolation
        } else {
            Reason::EmptyShare
        };
        let mut verdict = Verdict::new(State::Invalid, reason).with_code(raw);
        verdict.share_name = name;
        verdict.file_count = Some(0);
        return verdict;
    }
    // Files listed, but a share status no source explains, or the share says it has expired:
    // not proof of life (`docs/providers.md` §3.1).
    if data.is_expire || share_status.is_some_and(|s| s != 1) {
        let code = match share_status {
            Some(s) if s != 1 => format!("share.status={s}"),
            _ => "is_expire".to_owned(),
        };
        let mut verdict = Verdict::unknown(Reason::UnrecognizedResponse, Some(code));
        verdict.share_name = name;
        return verdict;
    }
    let total = envelope
        .metadata
        .and_then(|m| m.total)
        .unwrap_or(list.len() as u64);
    Verdict {
        state: State::Valid,
        reason: Reason::AllChecksPassed,
        share_name: name,
        file_count: Some(total),
        expiry: token.expiry,
        provider_code: raw,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{UrlCase, assert_urls};
    use super::*;
    use crate::checker::share::Provider;

    #[test]
    fn url_table() {
        let cases: &[UrlCase] = &[
            (
                "https://pan.quark.cn/s/39749e1fb630",
                Some(("39749e1fb630", None)),
            ),
            (
                "https://pan.quark.cn/s/39749e1fb630?pwd=abcd",
                Some(("39749e1fb630", Some("abcd"))),
            ),
            (
                "https://pan.quark.cn/s/39749e1fb630#/list/share",
                Some(("39749e1fb630", None)),
            ),
            (
                "https://pan.quark.cn/s/39749e1fb630#/list/share/abc-名字",
                Some(("39749e1fb630", None)),
            ),
            (
                "https://pan.quark.cn/s/39749e1fb630?pwd=Zx9y#/list/share",
                Some(("39749e1fb630", Some("Zx9y"))),
            ),
            (
                "https://pan.quark.cn/s/39749e1fb630?提取码:ab12",
                Some(("39749e1fb630", Some("ab12"))),
            ),
            (
                "https://pan.quark.cn/s/39749e1fb630?%E6%8F%90%E5%8F%96%E7%A0%81%EF%BC%9Aab12",
                Some(("39749e1fb630", Some("ab12"))),
            ),
            (
                "https://pan.quark.cn/s/39749e1fb630#pwd=q1q1",
                Some(("39749e1fb630", Some("q1q1"))),
            ),
            (
                "http://PAN.QUARK.CN/s/39749e1fb630",
                Some(("39749e1fb630", None)),
            ),
            ("https://quark.cn/s/abc123def", Some(("abc123def", None))),
            (
                "https://pan.qoark.cn/s/39749e1fb630?pwd=ab12",
                Some(("39749e1fb630", Some("ab12"))),
            ),
            (
                "https://pan.quark.cn/s/39749e1fb630/",
                Some(("39749e1fb630", None)),
            ),
            // Near misses.
            ("https://pan.quark.cn/x/39749e1fb630", None),
            ("https://pan.quark.cn/s/", None),
            ("https://pan.quark.cn.evil.com/s/39749e1fb630", None),
            ("https://pan.quark.cn/s/bad-id!", None),
            ("https://drive.quark.cn/s/39749e1fb630", None),
        ];
        assert_urls(Provider::Quark, cases);
    }

    fn token(status: u16, body: &str) -> Result<Token, Verdict> {
        token_outcome(status, body.as_bytes())
    }

    fn err(status: u16, body: &str) -> (State, Reason, Option<String>) {
        let verdict = token(status, body).expect_err("a final verdict");
        (verdict.state, verdict.reason, verdict.provider_code)
    }

    #[test]
    fn token_success_with_stoken_and_expiry() {
        let ok = token(
            200,
            r#"{"status":200,"code":0,"message":"ok","data":{"stoken":"abc","title":"T","expired_type":1,"expired_at":4102416000000,"share_type":1,"url_type":1}}"#,
        )
        .unwrap();
        assert_eq!(ok.stoken, "abc");
        assert_eq!(ok.title.as_deref(), Some("T"));
        assert_eq!(ok.expiry, Expiry::Permanent);
        let dated = token(
            200,
            r#"{"code":0,"data":{"stoken":"s","expired_type":3,"expired_at":1800000000000}}"#,
        )
        .unwrap();
        assert_eq!(dated.expiry, Expiry::At(1_800_000_000_000));
    }

    #[test]
    fn drift_guard_code_zero_without_stoken_is_not_valid() {
        let (state, reason, code) = err(200, r#"{"status":200,"code":0,"message":"ok"}"#);
        assert_eq!(
            (state, reason),
            (State::Unknown, Reason::UnrecognizedResponse)
        );
        assert_eq!(code.as_deref(), Some("0"));
        let (state, _, _) = err(
            200,
            r#"{"status":200,"code":0,"message":"ok","data":{"stoken":""}}"#,
        );
        assert_eq!(state, State::Unknown);
    }

    #[test]
    fn every_documented_code() {
        let cases = [
            (
                404,
                41004,
                "文件不存在",
                State::Invalid,
                Reason::ShareNotFound,
            ),
            (
                404,
                41006,
                "分享不存在",
                State::Invalid,
                Reason::ShareNotFound,
            ),
            (
                404,
                41009,
                "分享文件已删除",
                State::Invalid,
                Reason::ShareCancelled,
            ),
            (
                404,
                41012,
                "好友已取消了分享",
                State::Invalid,
                Reason::ShareCancelled,
            ),
            (
                404,
                41011,
                "分享地址已失效",
                State::Invalid,
                Reason::ShareExpired,
            ),
            (
                404,
                41019,
                "分享地址已过期",
                State::Invalid,
                Reason::ShareExpired,
            ),
            (
                404,
                41010,
                "文件涉及违规内容",
                State::Invalid,
                Reason::ShareViolation,
            ),
            (
                403,
                41031,
                "分享者用户封禁链接查看受限",
                State::Invalid,
                Reason::ShareViolation,
            ),
            (
                404,
                41008,
                "需要提取码",
                State::Locked,
                Reason::PasswordRequired,
            ),
            (
                404,
                41007,
                "提取码错误，请检查后再试。",
                State::Locked,
                Reason::PasswordWrong,
            ),
            (404, 41021, "", State::Unknown, Reason::RateLimited),
            (
                400,
                14021,
                "file not found",
                State::Unknown,
                Reason::RateLimited,
            ),
            // Uncertain codes stay unknown (`docs/providers.md` §3.1).
            (404, 41013, "", State::Unknown, Reason::UnrecognizedResponse),
            (
                404,
                41027,
                "分享不存在",
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (404, 41001, "", State::Unknown, Reason::UnrecognizedResponse),
            (404, 41002, "", State::Unknown, Reason::UnrecognizedResponse),
            (404, 31001, "", State::Unknown, Reason::UnrecognizedResponse),
            (
                404,
                41005,
                "选中的文件违规，不支持分享",
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (404, 41026, "", State::Unknown, Reason::UnrecognizedResponse),
            (404, 41024, "", State::Unknown, Reason::UnrecognizedResponse),
            (404, 41025, "", State::Unknown, Reason::UnrecognizedResponse),
            (404, 41029, "", State::Unknown, Reason::UnrecognizedResponse),
            (404, 41030, "", State::Unknown, Reason::UnrecognizedResponse),
            (500, 99999, "", State::Unknown, Reason::UpstreamError),
        ];
        for (status, code, message, state, reason) in cases {
            let body = format!(r#"{{"status":{status},"code":{code},"message":"{message}"}}"#);
            let got = err(status, &body);
            assert_eq!((got.0, got.1), (state, reason), "code {code}");
            assert_eq!(got.2, Some(code.to_string()));
        }
    }

    #[test]
    fn non_json_and_missing_code_are_unknown() {
        assert_eq!(
            err(200, "<!DOCTYPE html><html>quark</html>").1,
            Reason::UnrecognizedResponse
        );
        assert_eq!(err(429, "").1, Reason::RateLimited);
        assert_eq!(err(502, "bad gateway").1, Reason::UpstreamError);
        assert_eq!(
            err(200, r#"{"status":200,"message":"ok"}"#).1,
            Reason::UnrecognizedResponse
        );
    }

    fn some_token() -> Token {
        Token {
            stoken: "s".into(),
            title: Some("from token".into()),
            expiry: Expiry::Permanent,
        }
    }

    #[test]
    fn detail_valid_empty_and_drift() {
        let valid = detail_verdict(
            200,
            br#"{"status":200,"code":0,"data":{"is_owner":0,"list":[{"fid":"f","file_name":"a.mp4","dir":false,"file_type":1,"size":100,"share_fid_token":"t"}],"share":{"title":"T"}},"metadata":{"_total":1,"_size":50,"_count":1}}"#,
            some_token(),
        );
        assert_eq!(
            (valid.state, valid.reason),
            (State::Valid, Reason::AllChecksPassed)
        );
        assert_eq!(valid.share_name.as_deref(), Some("T"));
        assert_eq!(valid.file_count, Some(1));
        assert_eq!(valid.expiry, Expiry::Permanent);

        let empty = detail_verdict(
            200,
            br#"{"status":200,"code":0,"data":{"list":[]},"metadata":{"_total":0}}"#,
            some_token(),
        );
        assert_eq!(
            (empty.state, empty.reason),
            (State::Invalid, Reason::EmptyShare)
        );
        assert_eq!(empty.share_name.as_deref(), Some("from token"));

        let no_list = detail_verdict(200, br#"{"status":200,"code":0,"data":{}}"#, some_token());
        assert_eq!(no_list.state, State::Unknown);
        let html = detail_verdict(200, b"<html></html>", some_token());
        assert_eq!(html.state, State::Unknown);
        let error = detail_verdict(
            404,
            br#"{"status":404,"code":41004,"message":"x"}"#,
            some_token(),
        );
        assert_eq!(
            error.state,
            State::Unknown,
            "a detail error after a good token is not proof of death"
        );
    }

    /// The risk-control answer of a live share, verbatim from a public report (the token step).
    #[test]
    fn risk_control_file_not_found_is_a_rate_limit() {
        let (state, reason, code) = err(
            400,
            r#"{"status":400,"code":14021,"message":"file not found","req_id":"97q4la-24b3a39641bc34","timestamp":1735306930,"metadata":{"_t_group":"0:_s_vp:1","_g_group":"3:_s_vtp:1;0:_s_vp:1;4:_s_wl:1;2:_s_bp:1"}}"#,
        );
        assert_eq!((state, reason), (State::Unknown, Reason::RateLimited));
        assert_eq!(code.as_deref(), Some("14021"));
    }

    /// Share status and expiry flags of the detail step (bodies reconstructed from the fields
    /// public checkers read; a working share's `"share":{"status":1,"partial_violation":false}`
    /// is verbatim from a public test fixture).
    #[test]
    fn detail_share_status_and_expiry() {
        let detail = |body: &str| detail_verdict(200, body.as_bytes(), some_token());
        let listed = |share: &str, extra: &str| {
            detail(&format!(
                r#"{{"status":200,"code":0,"data":{{"list":[{{"fid":"0ba1aa9545d6424db4205113426181f2"}}],"share":{share}{extra}}}}}"#
            ))
        };
        let ok = listed(
            r#"{"status":1,"partial_violation":false,"size":42704901049}"#,
            "",
        );
        assert_eq!(
            (ok.state, ok.reason),
            (State::Valid, Reason::AllChecksPassed)
        );
        let some_blocked = listed(r#"{"status":1,"partial_violation":true}"#, "");
        assert_eq!(some_blocked.state, State::Valid, "other files remain");
        for share in [
            r#"{"status":3}"#,
            r#"{"status":2,"partial_violation":true}"#,
            r#"{"status":7}"#,
        ] {
            let v = listed(share, "");
            assert_eq!(
                (v.state, v.reason),
                (State::Unknown, Reason::UnrecognizedResponse),
                "{share}"
            );
            assert!(v.provider_code.unwrap().starts_with("share.status="));
        }
        let expired = listed(r#"{"status":1}"#, r#","is_expire":true"#);
        assert_eq!(expired.state, State::Unknown);
        assert_eq!(expired.provider_code.as_deref(), Some("is_expire"));
        let empty = |extra: &str| {
            detail(&format!(
                r#"{{"status":200,"code":0,"data":{{"list":[]{extra}}}}}"#
            ))
        };
        assert_eq!(empty("").reason, Reason::EmptyShare);
        assert_eq!(empty(r#","is_expire":true"#).reason, Reason::ShareExpired);
        assert_eq!(
            empty(r#","share":{"status":2,"partial_violation":true}"#).reason,
            Reason::ShareViolation
        );
        assert_eq!(empty(r#","share":{"status":3}"#).state, State::Invalid);
    }
}
