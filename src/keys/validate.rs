//! Validation of key fields, shared by the admin API and the `panlink keys` CLI.
//! Errors are Chinese phrases the API puts after the field name.

/// Most points a key may hold.
pub const MAX_POINTS: u64 = 1_000_000_000_000;

/// A key name: 1 to 64 characters after trimming, no control characters.
pub fn name(text: &str) -> Result<String, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        return Err("不能为空");
    }
    if text.chars().count() > 64 {
        return Err("不能超过 64 个字符");
    }
    if text.chars().any(char::is_control) {
        return Err("不能包含控制字符");
    }
    Ok(text.to_owned())
}

/// A points balance: at most [`MAX_POINTS`].
pub fn points(value: u64) -> Result<u64, &'static str> {
    if value > MAX_POINTS {
        return Err("不能超过 1000000000000");
    }
    Ok(value)
}

/// A points change, either way: at most [`MAX_POINTS`] in size.
pub fn points_delta(value: i64) -> Result<i64, &'static str> {
    if value.unsigned_abs() > MAX_POINTS {
        return Err("绝对值不能超过 1000000000000");
    }
    Ok(value)
}

/// A per-key rate or burst: 1 to 1 000 000.
pub fn rate(value: u32) -> Result<u32, &'static str> {
    if !(1..=1_000_000).contains(&value) {
        return Err("必须在 1 到 1000000 之间");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name("  site a ").unwrap(), "site a");
        assert!(name("   ").is_err());
        assert!(name(&"长".repeat(65)).is_err());
        assert!(name(&"长".repeat(64)).is_ok());
        assert!(name("a\u{0}b").is_err());
    }

    #[test]
    fn numbers() {
        assert!(points(MAX_POINTS).is_ok());
        assert!(points(MAX_POINTS + 1).is_err());
        assert!(points_delta(-5).is_ok());
        assert!(points_delta(i64::MIN).is_err());
        assert!(rate(0).is_err());
        assert!(rate(1).is_ok());
    }
}
