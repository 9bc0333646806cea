//! Finding share links in free text (a forum post): every URL of a supported provider, with the
//! pass code written in the URL or right after it (`提取码: abcd`, `（访问码：abcd）`, …).

use std::sync::LazyLock;

use regex::Regex;

use super::passcode;
use super::providers::{self, Recognized};
use super::share::ShareRef;

/// An http(s) URL: up to whitespace, quotes, angle brackets or CJK punctuation.
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)https?://[^\s"'<>，。；、！？（）【】《》「」]+"#)
        .expect("the URL pattern compiles")
});

/// How far after a URL a pass code may be announced, in characters.
const CODE_WINDOW_CHARS: usize = 40;

/// A share found in text, with the URL as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub url: String,
    pub share: ShareRef,
}

/// Every supported share link in `text`, in order, without duplicates (same share and code).
pub fn shares_in_text(text: &str) -> Vec<Found> {
    let matches: Vec<_> = URL.find_iter(text).collect();
    let mut found: Vec<Found> = Vec::new();
    for (index, m) in matches.iter().enumerate() {
        let url = m
            .as_str()
            .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']']);
        let Recognized::Share(mut share) = providers::recognize(url, None) else {
            continue;
        };
        if share.passcode.is_none() {
            let end = matches
                .get(index + 1)
                .map_or(text.len(), |next| next.start());
            let after: String = text[m.end()..end].chars().take(CODE_WINDOW_CHARS).collect();
            share.passcode = passcode::from_text(&after);
        }
        if !found.iter().any(|f| f.share == share) {
            found.push(Found {
                url: url.to_owned(),
                share,
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::share::Provider;

    #[test]
    fn a_forum_post_with_several_links_and_codes() {
        let post = "资源合集：\n链接: https://pan.baidu.com/s/1AbCd9xyz 提取码: w2x9 复制这段内容后打开\n\
                    夸克：https://pan.quark.cn/s/39749e1fb630（提取码：ab12）\n\
                    无码：https://pan.quark.cn/s/aaaa1111bbbb。\n\
                    https://example.com/not/a/share 密码: 9999\n\
                    重复 https://pan.quark.cn/s/39749e1fb630 提取码：ab12\n\
                    带参数 https://pan.baidu.com/s/1ZzYy88ww?pwd=qq11";
        let found = shares_in_text(post);
        let summary: Vec<(Provider, &str, Option<&str>)> = found
            .iter()
            .map(|f| {
                (
                    f.share.provider,
                    f.share.id.as_str(),
                    f.share.passcode.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (Provider::Baidu, "AbCd9xyz", Some("w2x9")),
                (Provider::Quark, "39749e1fb630", Some("ab12")),
                (Provider::Quark, "aaaa1111bbbb", None),
                (Provider::Baidu, "ZzYy88ww", Some("qq11")),
            ]
        );
        assert_eq!(found[2].url, "https://pan.quark.cn/s/aaaa1111bbbb");
    }

    #[test]
    fn a_code_is_not_borrowed_from_the_next_link() {
        let post =
            "https://pan.quark.cn/s/aaaa1111bbbb https://pan.baidu.com/s/1AbCd9xyz 提取码: w2x9";
        let found = shares_in_text(post);
        assert_eq!(found[0].share.passcode, None);
        assert_eq!(found[1].share.passcode.as_deref(), Some("w2x9"));
    }

    #[test]
    fn nothing_in_plain_text() {
        assert!(shares_in_text("没有链接，提取码: 1234").is_empty());
        assert!(shares_in_text("").is_empty());
    }
}
