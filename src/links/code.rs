//! Short codes: random generation, alias rules and the reserved words.
//!
//! Generated codes are random base62 from the OS source (unbiased: rejection sampling), checked
//! for uniqueness by a no-overwrite put in the write transaction that stores them (see
//! `repo::insert`). Aliases are `[A-Za-z0-9_-]`, 3 to 64 characters. Codes are case-sensitive, but
//! a reserved word is refused in any case, so `/API` cannot shadow `/api` for a reader.

/// Shortest and longest alias.
pub const ALIAS_MIN: usize = 3;
pub const ALIAS_MAX: usize = 64;

/// Words that are, or may become, top-level routes. Every literal first segment of the route table
/// must be here: the route table's own test checks it (links know no routes).
pub const RESERVED: &[&str] = &[
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
    // `/api/v1/links/batch`, `/export` and `/import` are literal routes: a link coded so could
    // not be restored.
    "batch",
    "export",
    "import",
    "guide.md",
    // `POST /check`, the blocking check.
    "check",
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

/// Whether `code` is a reserved word, in any letter case.
pub fn is_reserved(code: &str) -> bool {
    RESERVED.iter().any(|word| word.eq_ignore_ascii_case(code))
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
    fn generated_codes_have_the_asked_length_and_alphabet() {
        for len in [4, 6, 9] {
            let code = generate(len);
            assert_eq!(code.len(), len);
            assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        assert_ne!(generate(12), generate(12));
    }
}
