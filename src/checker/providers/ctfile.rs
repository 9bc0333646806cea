//! 城通网盘 (ctfile): `https://<host>/f/<uid>-<fid>-<chk>` on `ctfile.com` (and its `url<n>.`
//! subdomains) and its vest domains (`474b.com`, `545c.com`, `u062.com`, …); `/file/<uid>-<fid>`
//! for the two-part ids; folders under `/d/` or `/dir/`; the pass code as `?p=` or beside the link.
//!
//! The check (`docs/providers.md` §3.12): `GET https://webapi.ctfile.com/getfile.php` (a folder:
//! `getdir.php`) with the id and pass code, as the share page's own script and public download
//! helpers do. Its `code`: 200 opens the share, 401 asks for a pass code, 404 is gone. Every other
//! code is `unknown` / `provider_unverified` (never dead), with the code in `provider_code`.

use serde::Deserialize;
use url::Url;

use super::{Parsed, host_under, json_int, non_json_answer, query_value, transport_failure};
use crate::checker::client::UpstreamClient;
use crate::checker::share::ShareRef;
use crate::checker::verdict::{Reason, State, Verdict};

/// Domains of ctfile share links (any subdomain of them too).
pub const SHARE_HOSTS: &[&str] = &[
    "ctfile.com",
    "474b.com",
    "545c.com",
    "u062.com",
    "t00y.com",
    "2k.us",
    "tc5.us",
];
/// The API the checker asks about a file share.
pub const FILE_API: &str = "https://webapi.ctfile.com/getfile.php";
/// The API the checker asks about a folder share.
pub const FOLDER_API: &str = "https://webapi.ctfile.com/getdir.php";
/// Where the share page's script runs (its `Origin` and `Referer`).
const ORIGIN: &str = "https://ctfile.com";

/// The id of a ctfile URL: `f-…` / `file-…` / `d-…` prefixed by the kind of share, so that a
/// folder is asked at its own API.
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
        ("d" | "dir", 1..=3) => "d",
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
    let passcode = share.passcode.as_deref().unwrap_or("");
    let url = if kind == "d" {
        format!(
            "{FOLDER_API}?path=d&d={}&folder_id=&passcode={}&token=0&r=0.5&ref={}",
            query_value(id),
            query_value(passcode),
            query_value(ORIGIN)
        )
    } else {
        format!(
            "{FILE_API}?path={kind}&f={}&passcode={}&token=false&r=0.5&ref={}",
            query_value(id),
            query_value(passcode),
            query_value(ORIGIN)
        )
    };
    let headers = [("origin", ORIGIN), ("referer", "https://ctfile.com/")];
    match client.get(&url, &headers).await {
        Ok(exchange) => verdict(
            exchange.status,
            &exchange.body,
            kind == "d",
            share.passcode.is_some(),
        ),
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

/// `getfile.php`'s (or, for a `folder`, `getdir.php`'s) answer.
pub fn verdict(status: u16, body: &[u8], folder: bool, sent_passcode: bool) -> Verdict {
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return non_json_answer(status);
    };
    let Some(code) = json_int(answer.code.as_ref()) else {
        return Verdict::unknown(Reason::UnrecognizedResponse, format!("HTTP {status}"));
    };
    let (state, reason) = match (code, answer.file) {
        (200, Some(file)) if !folder => {
            let mut verdict = Verdict::new(State::Valid, Reason::AllChecksPassed);
            verdict.share_name = file.file_name.filter(|n| !n.is_empty());
            verdict.file_count = Some(1);
            return verdict.with_code(format!("code {code}"));
        }
        // A folder's answer is read by its code alone: its body is a listing URL.
        (200, _) if folder => (State::Valid, Reason::AllChecksPassed),
        (401, _) if sent_passcode => (State::Locked, Reason::PasswordWrong),
        (401, _) => (State::Locked, Reason::PasswordRequired),
        (404, _) => (State::Invalid, Reason::ShareNotFound),
        _ => (State::Unknown, Reason::ProviderUnverified),
    };
    Verdict::new(state, reason).with_code(format!("code {code}"))
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
                (
                    "https://545c.com/dir/31280009-41236855-b1e4a2",
                    Some(("d-31280009-41236855-b1e4a2", None)),
                ),
                (
                    "https://u062.com/file/7493734-430123871?p=6688",
                    Some(("file-7493734-430123871", Some("6688"))),
                ),
                (
                    "https://t00y.com/f/19917834-1248566935-4f1bd6",
                    Some(("f-19917834-1248566935-4f1bd6", None)),
                ),
                ("https://ctfile.com/f/onlyone", None),
                ("https://ctfile.com/", None),
                ("https://ctfile.com.example.net/f/1-2-3x", None),
            ],
        );
    }

    #[test]
    fn code_table() {
        let file = |body: &str, code: bool| verdict(200, body.as_bytes(), false, code);
        let ok = file(
            r#"{"code":200,"file":{"file_name":"a.zip","file_size":"1 MB","file_chk":"x"}}"#,
            false,
        );
        assert_eq!(
            (ok.state, ok.reason),
            (State::Valid, Reason::AllChecksPassed)
        );
        assert_eq!(ok.share_name.as_deref(), Some("a.zip"));
        assert_eq!(ok.file_count, Some(1));
        let gone = file(r#"{"code":404,"message":"文件不存在"}"#, false);
        assert_eq!(
            (gone.state, gone.reason),
            (State::Invalid, Reason::ShareNotFound)
        );
        assert_eq!(gone.provider_code.as_deref(), Some("code 404"));
        let ask = |code| file(r#"{"code":401,"message":"x"}"#, code).reason;
        assert_eq!(ask(false), Reason::PasswordRequired);
        assert_eq!(ask(true), Reason::PasswordWrong);
        // 503 and 504 are read as "failed" by one helper only; panlink does not call them dead.
        for code in [503, 504, 302, 0] {
            let other = file(&format!(r#"{{"code":{code}}}"#), false);
            assert_eq!(
                (other.state, other.reason),
                (State::Unknown, Reason::ProviderUnverified),
                "{code}"
            );
        }
        // A file answer without the file is not read as valid.
        assert_eq!(file(r#"{"code":200}"#, false).state, State::Unknown);
        let folder = verdict(200, br#"{"code":200,"file":{"url":"/x"}}"#, true, false);
        assert_eq!(folder.state, State::Valid);
        assert_eq!(folder.file_count, None);
        assert_eq!(
            verdict(503, b"busy", false, false).reason,
            Reason::UpstreamError
        );
        assert_eq!(
            verdict(200, br#"{"message":"x"}"#, false, false).reason,
            Reason::UnrecognizedResponse
        );
    }
}
