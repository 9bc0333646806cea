//! 城通网盘 (ctfile): `https://<host>/f/<uid>-<fid>-<chk>` on `ctfile.com` (and its `url<n>.`
//! subdomains) and the vest domain `474b.com`; `/file/<uid>-<fid>` for the two-part ids; the
//! pass code as `?p=` or beside the link. Folders (`/d/<id>`) are recognised and not asked.
//!
//! The check (`docs/providers.md` §3.12): `GET https://webapi.ctfile.com/getfile.php` with the id
//! and pass code, as the share page's own script and public download helpers do. `code` 200 with
//! a `file` is valid. The public sources read no other code: every other answer is `unknown` /
//! `provider_unverified` (never dead), with the code in `provider_code`.

use serde::Deserialize;
use url::Url;

use super::{Parsed, host_under, json_int, non_json_answer, query_value, transport_failure};
use crate::checker::client::UpstreamClient;
use crate::checker::share::ShareRef;
use crate::checker::verdict::{Reason, State, Verdict};

/// Domains of ctfile share links (any subdomain of them too).
pub const SHARE_HOSTS: &[&str] = &["ctfile.com", "474b.com"];
/// The API the checker asks.
pub const API: &str = "https://webapi.ctfile.com/getfile.php";
/// Where the share page's script runs (its `Origin` and `Referer`).
const ORIGIN: &str = "https://ctfile.com";

/// The id of a ctfile URL: `f-…` / `file-…` / `d-…` prefixed by the kind of share, so that a
/// folder is told apart without a request.
pub fn parse(url: &Url) -> Option<Parsed> {
    host_under(url, SHARE_HOSTS)?;
    let mut segments = url.path_segments()?;
    let kind = segments.next()?;
    let id = segments.next()?;
    let parts = id.split('-').count();
    let well_formed =
        id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && (4..=64).contains(&id.len());
    let kind = match (kind, parts) {
        ("f", 3) => "f",
        ("file", 2) => "file",
        ("d", 2..=3) => "d",
        _ => return None,
    };
    let mut parsed = Parsed::id(format!("{kind}-{id}"));
    parsed.passcode = url
        .query_pairs()
        .find(|(name, _)| name == "p")
        .map(|(_, value)| value.into_owned())
        .filter(|v| !v.is_empty());
    well_formed.then_some(parsed)
}

/// Asks ctfile about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    let Some((kind, id)) = share.id.split_once('-') else {
        return Verdict::unknown(Reason::UnrecognizedResponse, None);
    };
    if kind == "d" {
        return Verdict::unknown(Reason::ProviderUnverified, "folder".to_owned());
    }
    let url = format!(
        "{API}?path={kind}&f={}&passcode={}&token=false&r=0.5&ref={}",
        query_value(id),
        query_value(share.passcode.as_deref().unwrap_or("")),
        query_value(ORIGIN)
    );
    let headers = [("origin", ORIGIN), ("referer", "https://ctfile.com/")];
    match client.get(&url, &headers).await {
        Ok(exchange) => verdict(exchange.status, &exchange.body),
        Err(err) => transport_failure(&err),
    }
}

#[derive(Deserialize)]
struct Answer {
    code: Option<serde_json::Value>,
    file: Option<FileInfo>,
}

#[derive(Deserialize)]
struct FileInfo {
    file_name: Option<String>,
}

/// `getfile.php`'s answer.
pub fn verdict(status: u16, body: &[u8]) -> Verdict {
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return non_json_answer(status);
    };
    let code = json_int(answer.code.as_ref());
    match (code, answer.file) {
        (Some(200), Some(file)) => {
            let mut verdict = Verdict::new(State::Valid, Reason::AllChecksPassed);
            verdict.share_name = file.file_name.filter(|n| !n.is_empty());
            verdict.file_count = Some(1);
            verdict
        }
        (Some(code), _) => Verdict::unknown(Reason::ProviderUnverified, format!("code {code}")),
        (None, _) => Verdict::unknown(Reason::UnrecognizedResponse, format!("HTTP {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::providers::test_support::assert_urls;
    use crate::checker::share::Provider;

    #[test]
    fn urls() {
        assert_urls(
            Provider::Ctfile,
            &[
                (
                    "https://url89.ctfile.com/f/55050874-1246660795-6464f6",
                    Some(("f-55050874-1246660795-6464f6", None)),
                ),
                (
                    "https://474b.com/f/55050874-1246660795-6464f6?p=7548",
                    Some(("f-55050874-1246660795-6464f6", Some("7548"))),
                ),
                (
                    "https://ctfile.com/file/8067059-498942848",
                    Some(("file-8067059-498942848", None)),
                ),
                (
                    "https://url01.ctfile.com/d/8067059-12345-abcdef",
                    Some(("d-8067059-12345-abcdef", None)),
                ),
                ("https://ctfile.com/f/onlyone", None),
                ("https://ctfile.com/", None),
                ("https://ctfile.com.example.net/f/1-2-3x", None),
            ],
        );
    }

    #[test]
    fn only_code_200_with_a_file_is_read() {
        let ok = verdict(
            200,
            r#"{"code":200,"file":{"file_name":"a.zip","file_size":"1 MB","file_chk":"x"}}"#
                .as_bytes(),
        );
        assert_eq!(
            (ok.state, ok.reason),
            (State::Valid, Reason::AllChecksPassed)
        );
        assert_eq!(ok.share_name.as_deref(), Some("a.zip"));
        let other = verdict(200, r#"{"code":404,"message":"文件不存在"}"#.as_bytes());
        assert_eq!(
            (other.state, other.reason),
            (State::Unknown, Reason::ProviderUnverified)
        );
        assert_eq!(other.provider_code.as_deref(), Some("code 404"));
        assert_eq!(verdict(200, br#"{"code":200}"#).state, State::Unknown);
        assert_eq!(verdict(503, b"busy").reason, Reason::UpstreamError);
    }
}
