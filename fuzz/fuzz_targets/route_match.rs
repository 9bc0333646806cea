//! Route matching over arbitrary methods and paths: never panics, and every captured parameter is
//! a non-empty slice of the path without a '/'.
#![no_main]

use libfuzzer_sys::fuzz_target;
use panlink::http::router::Match;

fuzz_target!(|data: &[u8]| {
    let (method, path) = match data.iter().position(|&b| b == b' ') {
        Some(split) => (&data[..split], &data[split + 1..]),
        None => (&b"GET"[..], data),
    };
    let Ok(method) = http::Method::from_bytes(method) else { return };
    let Ok(path) = std::str::from_utf8(path) else { return };
    let router = panlink::api::routes::router().expect("the route table compiles");
    if let Match::Found { params, .. } = router.find(&method, path) {
        for (_, value) in params.iter() {
            assert!(!value.is_empty() && !value.contains('/'));
            assert!(path.contains(value));
        }
    }
});
