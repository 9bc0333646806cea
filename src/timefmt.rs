//! Wall-clock time as stored (unix milliseconds) and as shown (RFC 3339, UTC).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the unix epoch, now.
pub fn now_ms() -> u64 {
    let now = OffsetDateTime::now_utc();
    u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// `ms` (unix milliseconds) as RFC 3339 in UTC with second precision, e.g. `2026-11-22T08:00:00Z`.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// `ms` as RFC 3339 in UTC with millisecond precision, e.g. `2026-11-22T08:00:00.250Z` (exports
/// that must keep the exact instant and the order of records made in the same second).
pub fn rfc3339_millis(ms: u64) -> String {
    let seconds = rfc3339_ms(ms);
    match seconds.strip_suffix('Z') {
        Some(head) => format!("{head}.{:03}Z", ms % 1000),
        None => seconds,
    }
}

/// `ms` as Beijing time for people, e.g. `2026-11-22 16:00（北京时间）` (pages for visitors in
/// China; the API keeps RFC 3339 in UTC).
pub fn beijing_minute(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let Ok(at) = OffsetDateTime::from_unix_timestamp(secs) else {
        return String::new();
    };
    let at = at.to_offset(time::macros::offset!(+8));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}（北京时间）",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// RFC 3339 text as unix milliseconds (`None` if it is not RFC 3339 or before 1970).
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let at = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_seconds() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(1_798_761_599_999), "2026-12-31T23:59:59Z");
        assert_eq!(
            rfc3339_millis(1_798_761_599_009),
            "2026-12-31T23:59:59.009Z"
        );
        assert!(now_ms() > 1_700_000_000_000);
        assert_eq!(
            parse_rfc3339_ms("2026-12-31T23:59:59Z"),
            Some(1_798_761_599_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2027-01-01T07:59:59.500+08:00"),
            Some(1_798_761_599_500)
        );
        assert_eq!(parse_rfc3339_ms("-1"), None);
        assert_eq!(
            beijing_minute(1_798_761_599_999),
            "2027-01-01 07:59（北京时间）"
        );
    }
}
