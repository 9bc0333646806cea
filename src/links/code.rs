//! Short codes: random generation, alias rules and the reserved words.
//!
//! Generated codes are random base62 from the OS source (unbiased: rejection sampling), checked
//! for uniqueness by a no-overwrite put in the write transaction that stores them (see
//! `repo::insert`). Aliases are `[A-Za-z0-9_-]`, 3 to 64 characters. Codes are case-sensitive, but
//! a reserved word is refused in any case, so `/API` cannot shadow `/api` for a reader.

use std::sync::OnceLock;

use crate::http::routes;

/// Shortest and longest alias.
pub const ALIAS_MIN: usize = 3;
pub const ALIAS_MAX: usize = 64;

/// Words that are, or may become, top-level routes; the route table's own first segments are
/// added by [`is_reserved`].
const RESERVED: &[&str] = &[
    "api",
    "admin",
    "docs",
    "redoc",
    "openapi.json",
    "openapi",
    "jobs",
    "pool",
    "health",
    "metrics",
    "static",
    "assets",
    "favicon.ico",
    "robots.txt",
    "guide",
    "web",
    "ui",
    "login",
    "logout",
    "well-known",
    ".well-known",
    "sitemap.xml",
    // `/api/v1/links/batch` is a literal route: a link coded `batch` could not be restored.
    "batch",
];

/// A code's characters and length as accepted anywhere (generated or alias): what the redirect
/// looks up. Anything else is answered 404 without a lookup.
pub fn is_code_shape(text: &str) -> bool {
    (1..=ALIAS_MAX).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Why an alias is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasProblem {
    Length,
    Characters,
    Reserved,
}

/// Checks an owner-chosen alias.
pub fn check_alias(alias: &str) -> Result<(), AliasProblem> {
    if !(ALIAS_MIN..=ALIAS_MAX).contains(&alias.chars().count()) {
        return Err(AliasProblem::Length);
    }
    if !is_code_shape(alias) {
        return Err(AliasProblem::Characters);
    }
    if is_reserved(alias) {
        return Err(AliasProblem::Reserved);
    }
    Ok(())
}

/// Whether `code` is a reserved word (any letter case): a listed word or the first segment of any
/// route in the table.
pub fn is_reserved(code: &str) -> bool {
    static FROM_ROUTES: OnceLock<Vec<&'static str>> = OnceLock::new();
    let from_routes = FROM_ROUTES.get_or_init(|| {
        routes::table()
            .iter()
            .filter_map(|route| first_literal_segment(route.pattern))
            .collect()
    });
    RESERVED
        .iter()
        .chain(from_routes)
        .any(|word| word.eq_ignore_ascii_case(code))
}

/// The first path segment of a route pattern when it is a literal (`/api/v1/x` → `api`).
pub fn first_literal_segment(pattern: &'static str) -> Option<&'static str> {
    let first = pattern.trim_start_matches('/').split('/').next()?;
    (!first.is_empty() && !first.starts_with('{')).then_some(first)
}

/// A random base62 code of `len` characters.
pub fn generate(len: usize) -> String {
    crate::keys::secret::random_base62(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases() {
        assert_eq!(check_alias("my-link_1"), Ok(()));
        assert_eq!(check_alias("ab"), Err(AliasProblem::Length));
        assert_eq!(check_alias(&"a".repeat(65)), Err(AliasProblem::Length));
        assert_eq!(check_alias(&"a".repeat(64)), Ok(()));
        assert_eq!(check_alias("a b"), Err(AliasProblem::Characters));
        assert_eq!(check_alias("中文码"), Err(AliasProblem::Characters));
        assert_eq!(check_alias("a/b"), Err(AliasProblem::Characters));
        assert_eq!(check_alias("api"), Err(AliasProblem::Reserved));
        assert_eq!(check_alias("HEALTH"), Err(AliasProblem::Reserved));
        assert_eq!(check_alias("Metrics"), Err(AliasProblem::Reserved));
    }

    #[test]
    fn every_top_level_route_segment_is_reserved() {
        for route in routes::table() {
            if let Some(segment) = first_literal_segment(route.pattern) {
                assert!(is_reserved(segment), "{segment} of {}", route.pattern);
            }
        }
        for word in [
            "docs",
            "redoc",
            "openapi.json",
            "static",
            "admin",
            "jobs",
            "pool",
        ] {
            assert!(is_reserved(word), "{word}");
        }
        assert!(!is_reserved("abc123"));
    }

    #[test]
    fn generated_codes_have_the_asked_length_and_alphabet() {
        for len in [4, 6, 9] {
            let code = generate(len);
            assert_eq!(code.len(), len);
            assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        assert_ne!(generate(12), generate(12));
    }
}
