//! Validation of key fields, shared by the admin API and the `panlink keys` CLI. A refusal is an
//! [`Invalid`]: the API shows it in Chinese after the field name, the CLI in English.

/// Most points a key may hold.
pub const MAX_POINTS: u64 = 1_000_000_000_000;

/// Why a key field was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Empty,
    NameTooLong,
    ControlCharacters,
    PointsTooLarge,
    DeltaTooLarge,
    RateOutOfRange,
}

impl Invalid {
    /// The phrase the API puts after the field name.
    pub fn zh(self) -> &'static str {
        match self {
            Invalid::Empty => "不能为空",
            Invalid::NameTooLong => "不能超过 64 个字符",
            Invalid::ControlCharacters => "不能包含控制字符",
            Invalid::PointsTooLarge => "不能超过 1000000000000",
            Invalid::DeltaTooLarge => "绝对值不能超过 1000000000000",
            Invalid::RateOutOfRange => "必须在 1 到 1000000 之间",
        }
    }

    /// The phrase the CLI puts after the argument's name.
    pub fn en(self) -> &'static str {
        match self {
            Invalid::Empty => "must not be empty",
            Invalid::NameTooLong => "must be at most 64 characters",
            Invalid::ControlCharacters => "must not contain control characters",
            Invalid::PointsTooLarge => "must be at most 1000000000000",
            Invalid::DeltaTooLarge => "must be at most 1000000000000 either way",
            Invalid::RateOutOfRange => "must be between 1 and 1000000",
        }
    }
}

/// A key name: 1 to 64 characters after trimming, no control characters.
pub fn name(text: &str) -> Result<String, Invalid> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Invalid::Empty);
    }
    if text.chars().count() > 64 {
        return Err(Invalid::NameTooLong);
    }
    if text.chars().any(char::is_control) {
        return Err(Invalid::ControlCharacters);
    }
    Ok(text.to_owned())
}

/// A points balance: at most [`MAX_POINTS`].
pub fn points(value: u64) -> Result<u64, Invalid> {
    if value > MAX_POINTS {
        return Err(Invalid::PointsTooLarge);
    }
    Ok(value)
}

/// A points change, either way: at most [`MAX_POINTS`] in size.
pub fn points_delta(value: i64) -> Result<i64, Invalid> {
    if value.unsigned_abs() > MAX_POINTS {
        return Err(Invalid::DeltaTooLarge);
    }
    Ok(value)
}

/// A per-key rate or burst: 1 to 1 000 000.
pub fn rate(value: u32) -> Result<u32, Invalid> {
    if !(1..=1_000_000).contains(&value) {
        return Err(Invalid::RateOutOfRange);
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
