//! PikPak: `https://mypikpak.com/s/<share_id>` (`?pwd=` optional).
//!
//! PikPak is the xunlei drive service under other hosts (`docs/providers.md` §3.11): the same
//! captcha-token-then-share sequence and the same `share_status` table (`xunlei.rs`), asked at
//! `user.mypikpak.net` and `api-drive.mypikpak.net` as PikPak's web client, with that client's
//! own id and `captcha_sign` salts (OpenList's `pikpak_share` driver). From mainland China the
//! service may answer `PROHIBITED` (sharing unavailable in the region): `unknown`, never dead.

use url::Url;

use super::xunlei::{self, Family};
use super::{Parsed, host_in, is_share_id};
use crate::checker::client::UpstreamClient;
use crate::checker::share::ShareRef;
use crate::checker::verdict::Verdict;

/// Hosts of PikPak share links.
pub const SHARE_HOSTS: &[&str] = &["mypikpak.com", "www.mypikpak.com"];

/// PikPak's web client (`mypikpak.com`).
pub const PIKPAK: Family = Family {
    captcha_url: "https://user.mypikpak.net/v1/shield/captcha/init",
    api: "https://api-drive.mypikpak.net/drive/v1/share",
    origin: "https://mypikpak.com",
    referer: "https://mypikpak.com/",
    client_id: "YUMx5nI8ZU8Ap8pm",
    device_id: "9e6bf4a3c0b74a1d8d5f2e7c1a0b3d4f",
    client_version: "2.0.0",
    package_name: "mypikpak.com",
    salts: &[
        "C9qPpZLN8ucRTaTiUMWYS9cQvWOE",
        "+r6CQVxjzJV6LCV",
        "F",
        "pFJRC",
        "9WXYIDGrwTCz2OiVlgZa90qpECPD6olt",
        "/750aCr4lm/Sly/c",
        "RB+DT/gZCrbV",
        "",
        "CyLsf7hdkIRxRm215hl",
        "7xHvLi2tOYP0Y92b",
        "ZGTXXxu8E/MIWaEDB+Sm/",
        "1UI3",
        "E7fP5Pfijd+7K+t6Tg/NhuLq0eEUVChpJSkrKxpO",
        "ihtqpG6FMt65+Xk+tWUH2",
        "NhXXU9rg4XXdzo7u5o",
    ],
    // OpenList's driver writes the method in capitals (`GET:` + the path).
    action: "GET:/drive/v1/share",
    session: "pikpak.captcha_token",
};

/// The share id of a PikPak URL.
pub fn parse(url: &Url) -> Option<Parsed> {
    host_in(url, SHARE_HOSTS)?;
    let id = url.path().strip_prefix("/s/")?.split('/').next()?;
    is_share_id(id, 4, 64, b"-_").then(|| Parsed::id(id))
}

/// Asks PikPak about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    xunlei::check_family(client, share, &PIKPAK).await
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_urls;
    use super::*;
    use crate::checker::share::Provider;

    #[test]
    fn url_table() {
        assert_urls(
            Provider::Pikpak,
            &[
                (
                    "https://mypikpak.com/s/VO8BcRb-XXXXXXXXXXXXXX",
                    Some(("VO8BcRb-XXXXXXXXXXXXXX", None)),
                ),
                (
                    "https://mypikpak.com/s/VNabc123?pwd=ab12",
                    Some(("VNabc123", Some("ab12"))),
                ),
                (
                    "https://www.mypikpak.com/s/VNabc123/",
                    Some(("VNabc123", None)),
                ),
                ("https://mypikpak.com/", None),
                ("https://mypikpak.com/drive/all", None),
                ("https://mypikpak.com.example.net/s/VNabc123", None),
            ],
        );
    }

    #[test]
    fn the_signature_is_the_md5_chain_of_pikpaks_own_group() {
        let sign = xunlei::captcha_sign(&PIKPAK, PIKPAK.device_id, "1700000000000");
        assert!(sign.starts_with("1.") && sign.len() == 34, "{sign}");
        assert_ne!(
            sign,
            xunlei::captcha_sign(&xunlei::XUNLEI, PIKPAK.device_id, "1700000000000"),
            "another client's group signs differently"
        );
    }
}
