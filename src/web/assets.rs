//! Files embedded in the binary and how they are served: `ETag` revalidation (304), gzip when the
//! client accepts it (compressed once, at build time, by `build.rs`), and caching headers.
//!
//! Invariant: nothing here reads the file system or compresses per request; every body is a
//! `&'static [u8]`, except the guide page's, rendered and gzipped once at start-up.

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, ETAG, HeaderMap, IF_NONE_MATCH, VARY,
};
use http::{HeaderValue, StatusCode};

use crate::http::response::{self, HttpResponse};

/// One file embedded at build time.
#[derive(Debug)]
pub struct StaticAsset {
    /// Its name under `/static/` (`site.css`, `swagger-ui/swagger-ui-bundle.js`, …).
    pub name: &'static str,
    pub content_type: &'static str,
    /// `"<crc32>-<length>"`, quoted as the header wants it.
    pub etag: &'static str,
    pub raw: &'static [u8],
    pub gzip: &'static [u8],
}

/// Every file under `/static/`, sorted by the directory it came from, then by name.
pub static STATIC_ASSETS: &[StaticAsset] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The pages and documents served at their own routes: `admin.html`, `docs.html`,
/// `redoc.html`, `guide.md`, `openapi.json`.
pub static DOCUMENTS: &[StaticAsset] = include!(concat!(env!("OUT_DIR"), "/web_documents.rs"));

/// The file under `/static/` named `name`.
pub fn find(name: &str) -> Option<&'static StaticAsset> {
    STATIC_ASSETS.iter().find(|asset| asset.name == name)
}

/// The document named `name` (one of [`DOCUMENTS`]; the names are fixed in `build.rs`).
pub fn document(name: &str) -> &'static StaticAsset {
    DOCUMENTS
        .iter()
        .find(|asset| asset.name == name)
        .unwrap_or_else(|| panic!("build.rs embeds {name}"))
}

/// How long a client may keep a response without asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Pages and documents: always revalidated (`ETag` makes that a cheap 304).
    Revalidate,
    /// Scripts, styles and vendored bundles: a day, then revalidated.
    Day,
}

impl Caching {
    fn header(self) -> HeaderValue {
        match self {
            Caching::Revalidate => HeaderValue::from_static("no-cache"),
            Caching::Day => HeaderValue::from_static("public, max-age=86400"),
        }
    }
}

/// A body ready to serve: plain and gzipped bytes with their validator.
#[derive(Debug, Clone)]
pub struct Servable {
    pub content_type: HeaderValue,
    pub etag: HeaderValue,
    pub raw: Bytes,
    pub gzip: Bytes,
}

impl Servable {
    /// From an embedded file (no copy: the bytes stay in the binary).
    pub fn from_static(asset: &'static StaticAsset) -> Servable {
        Servable {
            content_type: HeaderValue::from_static(asset.content_type),
            etag: HeaderValue::from_static(asset.etag),
            raw: Bytes::from_static(asset.raw),
            gzip: Bytes::from_static(asset.gzip),
        }
    }

    /// From bytes built at start-up (a page with the configured base URL filled in).
    pub fn rendered(content_type: &'static str, raw: Vec<u8>) -> Servable {
        use std::hash::{BuildHasher, Hasher};
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&raw).expect("gzip in memory");
        let gzip = encoder.finish().expect("gzip in memory");
        let mut hasher = rustc_hash::FxBuildHasher.build_hasher();
        hasher.write(&raw);
        let etag = format!("\"r{:016x}-{:x}\"", hasher.finish(), raw.len());
        Servable {
            content_type: HeaderValue::from_static(content_type),
            etag: HeaderValue::from_str(&etag).expect("hex is a valid header value"),
            raw: Bytes::from(raw),
            gzip: Bytes::from(gzip),
        }
    }

    /// The response to a `GET`/`HEAD` with these request headers.
    pub fn serve(&self, request: &HeaderMap, caching: Caching) -> HttpResponse {
        let not_modified = request
            .get(IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| {
                tags.split(',')
                    .map(|tag| tag.trim().trim_start_matches("W/"))
                    .any(|tag| tag == "*" || tag.as_bytes() == self.etag.as_bytes())
            });
        let mut response = if not_modified {
            response::empty(StatusCode::NOT_MODIFIED)
        } else if accepts_gzip(request) {
            let mut response =
                response::with_body(StatusCode::OK, self.content_type.clone(), self.gzip.clone());
            response
                .headers_mut()
                .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        } else {
            response::with_body(StatusCode::OK, self.content_type.clone(), self.raw.clone())
        };
        let headers = response.headers_mut();
        headers.insert(ETAG, self.etag.clone());
        headers.insert(CACHE_CONTROL, caching.header());
        headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        headers.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        if self.content_type.as_bytes().starts_with(b"text/html") {
            response::secure_page(headers, response::PAGE_CSP);
        }
        response
    }
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*`, without `q=0`).
pub fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                let p = p.trim();
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::header::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br;q=1, GZIP;q=0.5"
        )])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "*")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "br")])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn every_embedded_file_is_gzipped_and_round_trips() {
        use std::io::Read;
        assert!(find("swagger-ui/swagger-ui-bundle.js").is_some());
        assert!(find("redoc/redoc.standalone.js").is_some());
        for asset in STATIC_ASSETS.iter().chain(DOCUMENTS) {
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(asset.gzip)
                .read_to_end(&mut raw)
                .unwrap();
            assert_eq!(raw, asset.raw, "{}", asset.name);
            assert!(asset.etag.starts_with('"') && asset.etag.ends_with('"'));
        }
    }

    #[test]
    fn vendored_files_match_their_recorded_checksums() {
        use sha2::{Digest, Sha256};
        let versions = include_str!("vendor/VERSIONS");
        let mut checked = 0;
        for line in versions.lines().filter(|l| l.contains("  ")) {
            let (sum, name) = line.split_once("  ").unwrap();
            let asset = find(name).unwrap_or_else(|| panic!("{name} is not embedded"));
            let digest = Sha256::digest(asset.raw);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, sum, "{name} differs from scripts/vendor-web.sh's copy");
            checked += 1;
        }
        assert!(checked >= 6, "VERSIONS lists the vendored files");
    }
}
