//! Finding share links in free text (a forum post): every URL of a supported provider, with the
//! pass code written in the URL or right after it (`提取码: abcd`, `（访问码：abcd）`, …).
//!
//! Linear in the text: one regex pass, a bounded look-ahead per URL, and a hash set for the
//! duplicate check (a post of 100 000 links must not cost 10¹⁰ comparisons). Callers with large
//! texts run it off the async workers.

use std::collections::HashSet;
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
    let mut seen: HashSet<ShareRef> = HashSet::new();
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
        if seen.insert(share.clone()) {
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
    fn a_post_with_every_drive() {
        let post = "【合集】\n\
            1. https://pan.quark.cn/s/39749e1fb630 提取码：ab12\n\
            2. https://drive.uc.cn/s/e2d8a1c9f3b04?public=1\n\
            3. 链接：https://pan.baidu.com/s/1AbCd9xyz?pwd=w2x9 复制这段内容打开\n\
            4. https://cloud.189.cn/t/yYvIvyVfY7rm（访问码：k7k7）\n\
            5. https://www.123pan.com/s/oec7Vv-OXIWh.html 提取码:JZMM\n\
            6. https://115cdn.com/s/swfsfjg3h7i?password=cd34#\n\
            7. 阿里 https://www.alipan.com/s/qLVgamB72nu/folder/6412a6b1 密码: 8x8x\n\
            8. https://pan.xunlei.com/s/VNxY3kq1rVhL6cQ8mAa1?pwd=x7x7#\n\
            9. 移动云盘 https://caiyun.139.com/m/i?2qidGwZUXqwqo 提取码:5m5m\n\
            10. 蓝奏 https://wwi.lanzoux.com/iRwihgmkl0j 密码:a1b2\n\
            11. https://mypikpak.com/s/VNabc123xyz?pwd=p1p1\n\
            12. 城通 https://url89.ctfile.com/f/55050874-1246660795-6464f6?p=7548\n\
            13. 微云：https://share.weiyun.com/5KMHVRY 密码：wy12\n\
            14. OneDrive https://1drv.ms/f/c/0dbf39bbc36d89/EgAbCdEf?e=x1Y2z3\n\
            15. 光鸭 https://www.guangyapan.com/s/1926585463106830337_al8cmYXLP9l33ld2#/share 提取码：iv5k";
        let summary: Vec<(Provider, String, Option<String>)> = shares_in_text(post)
            .into_iter()
            .map(|f| (f.share.provider, f.share.id, f.share.passcode))
            .collect();
        let expected = [
            (Provider::Quark, "39749e1fb630", Some("ab12")),
            (Provider::Uc, "e2d8a1c9f3b04", None),
            (Provider::Baidu, "AbCd9xyz", Some("w2x9")),
            (Provider::Tianyi, "yYvIvyVfY7rm", Some("k7k7")),
            (Provider::Pan123, "oec7Vv-OXIWh", Some("JZMM")),
            (Provider::Pan115, "swfsfjg3h7i", Some("cd34")),
            (Provider::Aliyun, "qLVgamB72nu", Some("8x8x")),
            (Provider::Xunlei, "VNxY3kq1rVhL6cQ8mAa1", Some("x7x7")),
            (Provider::Cmcc, "2qidGwZUXqwqo", Some("5m5m")),
            (Provider::Lanzou, "iRwihgmkl0j", Some("a1b2")),
            (Provider::Pikpak, "VNabc123xyz", Some("p1p1")),
            (
                Provider::Ctfile,
                "f-55050874-1246660795-6464f6",
                Some("7548"),
            ),
            (Provider::Weiyun, "5KMHVRY", Some("wy12")),
            (
                Provider::Onedrive,
                "https://1drv.ms/f/c/0dbf39bbc36d89/EgAbCdEf?e=x1Y2z3",
                None,
            ),
            (
                Provider::Guangya,
                "1926585463106830337_al8cmYXLP9l33ld2",
                Some("iv5k"),
            ),
        ]
        .map(|(p, id, code)| (p, id.to_owned(), code.map(str::to_owned)));
        assert_eq!(summary, expected);
    }

    #[test]
    fn a_code_is_not_borrowed_from_the_next_link() {
        let post =
            "https://pan.quark.cn/s/aaaa1111bbbb https://pan.baidu.com/s/1AbCd9xyz 提取码: w2x9";
        let found = shares_in_text(post);
        assert_eq!(found[0].share.passcode, None);
        assert_eq!(found[1].share.passcode.as_deref(), Some("w2x9"));
    }

    proptest::proptest! {
        /// The fuzz target's property (`fuzz/fuzz_targets/recognize.rs`) over text built from
        /// share-link pieces, so that it runs in every test run.
        #[test]
        fn every_share_found_in_text_is_accepted_by_its_provider(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("https://pan.quark.cn/s/".to_owned()),
                    proptest::strategy::Just("https://cloud.189.cn/t/".to_owned()),
                    proptest::strategy::Just("https://cloud.189.cn/web/share?code=".to_owned()),
                    proptest::strategy::Just("https://1.share.123pan.cn/123pan/".to_owned()),
                    proptest::strategy::Just("https://caiyun.139.com/m/i?".to_owned()),
                    proptest::strategy::Just("https://yun.139.com/shareweb/#/w/i/".to_owned()),
                    proptest::strategy::Just("https://pan.baidu.com/share/init?surl=".to_owned()),
                    proptest::strategy::Just("http://115.com/s/".to_owned()),
                    proptest::strategy::Just("（访问码：".to_owned()),
                    proptest::strategy::Just(" 提取码: ".to_owned()),
                    proptest::strategy::Just("?pwd=".to_owned()),
                    proptest::strategy::Just("#password=".to_owned()),
                    "[a-zA-Z0-9_%.-]{0,14}",
                    "\\PC{0,4}",
                ],
                0..12,
            )
        ) {
            let text = pieces.concat();
            for found in shares_in_text(&text) {
                let Recognized::Share(share) = providers::recognize(&found.url, None) else {
                    panic!("{:?} was found but is not a share", found.url);
                };
                proptest::prop_assert_eq!(share.provider, found.share.provider);
                proptest::prop_assert_eq!(&share.id, &found.share.id);
            }
        }
    }

    #[test]
    fn repeats_anywhere_in_a_long_post_are_dropped_once() {
        let mut post = String::new();
        for n in 0..5_000 {
            post.push_str(&format!("https://pan.quark.cn/s/{n:012x} 提取码：ab12\n"));
        }
        post.push_str("https://pan.quark.cn/s/000000000000 提取码：ab12\n");
        let found = shares_in_text(&post);
        assert_eq!(found.len(), 5_000, "the repeat at the end is dropped");
        assert_eq!(found[0].share.passcode.as_deref(), Some("ab12"));
    }

    #[test]
    fn nothing_in_plain_text() {
        assert!(shares_in_text("没有链接，提取码: 1234").is_empty());
        assert!(shares_in_text("").is_empty());
    }
}
