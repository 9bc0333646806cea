//! UC (UC网盘): `https://drive.uc.cn/s/<pwd_id>` (often `?public=1`; `?pwd=` optional), and the
//! `yun.uc.cn` / `uc.cn` forms some sites still write.
//!
//! UC is the quark service under other hosts (`docs/providers.md` §3.2): the same token-then-detail
//! sequence and the same code table (`quark.rs`), asked at `pc-api.uc.cn` with `pr=UCBrowser`.
//! UC requires `Origin: https://drive.uc.cn`; quark's parameters against UC answer a 403 HTML
//! page, which is not a verdict.

use url::Url;

use super::quark::{self, Family};
use super::{Parsed, host_in};
use crate::checker::client::UpstreamClient;
use crate::checker::share::ShareRef;
use crate::checker::verdict::Verdict;

/// Hosts of UC share links.
pub const SHARE_HOSTS: &[&str] = &["drive.uc.cn", "yun.uc.cn", "uc.cn"];

/// UC's API.
pub const UC: Family = Family {
    api: "https://pc-api.uc.cn/1/clouddrive/share/sharepage",
    query: "pr=UCBrowser&fr=pc",
    origin: "https://drive.uc.cn",
    referer: "https://drive.uc.cn/",
};

/// The share id of a UC URL.
pub fn parse(url: &Url) -> Option<Parsed> {
    host_in(url, SHARE_HOSTS)?;
    quark::share_path_id(url)
}

/// Asks UC about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    quark::check_family(client, share, &UC).await
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{UrlCase, assert_urls};
    use crate::checker::share::Provider;
    use crate::checker::verdict::{Reason, State};

    #[test]
    fn url_table() {
        let cases: &[UrlCase] = &[
            (
                "https://drive.uc.cn/s/e2d8a1c9f3b04",
                Some(("e2d8a1c9f3b04", None)),
            ),
            (
                "https://drive.uc.cn/s/e2d8a1c9f3b04?public=1",
                Some(("e2d8a1c9f3b04", None)),
            ),
            (
                "https://drive.uc.cn/s/e2d8a1c9f3b04?public=1&pwd=Ab12",
                Some(("e2d8a1c9f3b04", Some("Ab12"))),
            ),
            (
                "https://drive.uc.cn/s/e2d8a1c9f3b04?pwd=x9y8",
                Some(("e2d8a1c9f3b04", Some("x9y8"))),
            ),
            (
                "https://drive.uc.cn/s/e2d8a1c9f3b04#/list/share",
                Some(("e2d8a1c9f3b04", None)),
            ),
            (
                "http://DRIVE.UC.CN/s/e2d8a1c9f3b04/",
                Some(("e2d8a1c9f3b04", None)),
            ),
            (
                "https://yun.uc.cn/s/7f3e2d1c0b9a",
                Some(("7f3e2d1c0b9a", None)),
            ),
            (
                "https://uc.cn/s/7f3e2d1c0b9a?pwd=1234",
                Some(("7f3e2d1c0b9a", Some("1234"))),
            ),
            (
                "https://drive.uc.cn/s/7f3e2d1c0b9a?提取码:QQ11",
                Some(("7f3e2d1c0b9a", Some("QQ11"))),
            ),
            (
                "https://drive.uc.cn/s/7f3e2d1c0b9a?%E6%8F%90%E5%8F%96%E7%A0%81:QQ11",
                Some(("7f3e2d1c0b9a", Some("QQ11"))),
            ),
            // Near misses.
            ("https://drive.uc.cn/", None),
            ("https://drive.uc.cn/s/", None),
            ("https://drive.uc.cn/list/7f3e2d1c0b9a", None),
            ("https://drive.uc.cn/s/bad~id", None),
            ("https://drive.uc.cn.example.com/s/7f3e2d1c0b9a", None),
            ("https://www.uc.cn/s/7f3e2d1c0b9a", None),
        ];
        assert_urls(Provider::Uc, cases);
    }

    #[test]
    fn codes_seen_on_uc_use_the_quark_table() {
        // `docs/providers.md` §3.2: 0, 41008, 41010, 41012 observed on UC.
        let cases = [
            (
                404,
                41008,
                "需要提取码",
                State::Locked,
                Reason::PasswordRequired,
            ),
            (
                404,
                41010,
                "文件涉及违规内容",
                State::Invalid,
                Reason::ShareViolation,
            ),
            (
                404,
                41012,
                "好友已取消了分享",
                State::Invalid,
                Reason::ShareCancelled,
            ),
        ];
        for (status, code, message, state, reason) in cases {
            let body = format!(r#"{{"status":{status},"code":{code},"message":"{message}"}}"#);
            let verdict = super::quark::token_outcome(status, body.as_bytes()).unwrap_err();
            assert_eq!((verdict.state, verdict.reason), (state, reason), "{code}");
        }
        let ok = super::quark::token_outcome(
            200,
            br#"{"status":200,"code":0,"message":"ok","data":{"stoken":"s","title":"T"}}"#,
        )
        .unwrap();
        assert_eq!(ok.stoken, "s");
        // UC's answer to quark's parameters: a 403 HTML page, not a verdict.
        let html = super::quark::token_outcome(403, b"<html>403 Forbidden</html>").unwrap_err();
        assert_eq!(html.state, State::Unknown);
    }
}
