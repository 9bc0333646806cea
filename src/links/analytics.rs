//! What a click says about its visitor, for the statistics: device type, OS, browser, in-app
//! browser (from `User-Agent`, read by [`visitor`](super::visitor) and remembered per thread),
//! referrer host, preferred language, and country and region when an IP database is configured
//! (`links.geoip_db`, MaxMind's `.mmdb` format). And the day a click belongs to, in the statistics'
//! time zone (`links.stats_timezone`).
//!
//! Privacy: only these coarse values are ever counted; the IP address and the user agent are read
//! and forgotten. Cost: no allocation for a remembered user agent, address or visitor kind; each
//! thread keeps its own small tables (no lock, no shared cache line), and a click counts a shared
//! [`VisitorKind`], not its values one by one.
//!
//! Must not: store or log an address or a user agent.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;

use super::visitor;

/// A dimension of the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    Device = 0,
    Os = 1,
    Browser = 2,
    App = 3,
    Referrer = 4,
    Language = 5,
    Country = 6,
    Region = 7,
}

/// How many dimensions there are.
pub const DIMS: usize = 8;

impl Dim {
    pub const ALL: [Dim; DIMS] = [
        Dim::Device,
        Dim::Os,
        Dim::Browser,
        Dim::App,
        Dim::Referrer,
        Dim::Language,
        Dim::Country,
        Dim::Region,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Device => "device",
            Dim::Os => "os",
            Dim::Browser => "browser",
            Dim::App => "app",
            Dim::Referrer => "referrer",
            Dim::Language => "language",
            Dim::Country => "country",
            Dim::Region => "region",
        }
    }

    pub fn parse(text: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.as_str() == text.trim())
    }

    /// Its byte in stored keys and in the click journal.
    pub fn byte(self) -> u8 {
        self as u8
    }

    pub fn from_byte(byte: u8) -> Option<Dim> {
        Dim::ALL.get(usize::from(byte)).copied()
    }
}

/// The value counted for a visitor the headers say nothing about.
pub const UNKNOWN: &str = "unknown";
/// The value of the in-app dimension outside every app.
pub const NO_APP: &str = "none";

/// The values of one click, by dimension (`None`: not counted, e.g. no geo database).
type Values<'a> = [Option<&'a str>; DIMS];

/// Longest country or region value kept (a region's name is cut at a character boundary).
const GEO_VALUE_MAX: usize = 48;

/// A small inline string: what the per-thread address table holds without allocating.
#[derive(Clone, Copy)]
struct Inline {
    len: u8,
    bytes: [u8; GEO_VALUE_MAX],
}

impl Inline {
    fn new(text: &str) -> Inline {
        let mut end = text.len().min(GEO_VALUE_MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; GEO_VALUE_MAX];
        bytes[..end].copy_from_slice(&text.as_bytes()[..end]);
        Inline {
            len: end as u8,
            bytes,
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

/// What the IP database says of one address.
#[derive(Clone, Copy)]
struct Place {
    country: Option<Inline>,
    region: Option<Inline>,
}

#[derive(Deserialize)]
struct GeoRecord<'a> {
    #[serde(borrow, default)]
    country: Option<GeoCountry<'a>>,
    #[serde(borrow, default)]
    subdivisions: Vec<GeoSubdivision<'a>>,
}

#[derive(Deserialize)]
struct GeoCountry<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct GeoSubdivision<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: Option<GeoNames<'a>>,
}

#[derive(Deserialize)]
struct GeoNames<'a> {
    #[serde(borrow, default, rename = "zh-CN")]
    chinese: Option<&'a str>,
    #[serde(borrow, default, rename = "en")]
    english: Option<&'a str>,
}

/// An IP database in MaxMind's format (GeoIP2 / GeoLite2 City or Country, or any database with
/// the same `country.iso_code` and `subdivisions[].names` fields), read into memory once.
pub struct GeoDb {
    reader: maxminddb::Reader<Vec<u8>>,
    /// Told apart in the per-thread tables, so a reloaded database is never answered from an old
    /// one's entries.
    id: u64,
}

impl GeoDb {
    /// Opens `path`; the error says why in English (for the start-up message).
    pub fn open(path: &std::path::Path) -> Result<GeoDb, String> {
        let bytes = std::fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?;
        let reader = maxminddb::Reader::from_source(bytes)
            .map_err(|err| format!("{} is not a MaxMind DB file: {err}", path.display()))?;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(GeoDb {
            reader,
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// The database's own description of itself, for `/health`.
    pub fn kind(&self) -> &str {
        &self.reader.metadata.database_type
    }

    fn place(&self, ip: IpAddr) -> Place {
        let record = self
            .reader
            .lookup(ip)
            .ok()
            .and_then(|found| found.decode::<GeoRecord<'_>>().ok().flatten());
        let Some(record) = record else {
            return Place {
                country: None,
                region: None,
            };
        };
        let country = record.country.and_then(|c| c.iso_code).map(Inline::new);
        let region = record.subdivisions.first().and_then(|s| {
            s.names
                .as_ref()
                .and_then(|n| n.chinese.or(n.english))
                .or(s.iso_code)
                .map(Inline::new)
        });
        Place { country, region }
    }
}

/// Remembered addresses per thread (a power of two), direct-mapped.
const PLACE_SLOTS: usize = 256;

thread_local! {
    static PLACES: RefCell<Vec<Option<(u64, IpAddr, Place)>>> =
        RefCell::new(vec![None; PLACE_SLOTS]);
}

/// The dimension values of one kind of visitor: every dimension but the referrer (which depends on
/// the page the link was posted on, not on the visitor, and is counted apart). A human click
/// counts a shared reference to its kind; the values are written out only when the counts travel
/// to storage, so a click costs one pointer comparison however many dimensions there are.
#[derive(Debug, PartialEq, Eq)]
pub struct VisitorKind {
    values: [Option<Box<str>>; DIMS],
}

impl VisitorKind {
    /// The kind of a visitor with these values (the referrer's is ignored).
    pub fn new(values: &Values<'_>) -> VisitorKind {
        let mut kept: [Option<Box<str>>; DIMS] = Default::default();
        for (dim, value) in Dim::ALL.into_iter().zip(values) {
            if dim != Dim::Referrer {
                kept[dim as usize] = value.map(Box::from);
            }
        }
        VisitorKind { values: kept }
    }

    /// `(dimension, value)` of every dimension counted for this kind.
    pub fn values(&self) -> impl Iterator<Item = (Dim, &str)> {
        Dim::ALL
            .into_iter()
            .zip(&self.values)
            .filter_map(|(dim, value)| value.as_deref().map(|v| (dim, v)))
    }

    fn matches(&self, values: &Values<'_>) -> bool {
        self.values
            .iter()
            .zip(values)
            .enumerate()
            .all(|(dim, (kept, value))| dim == Dim::Referrer as usize || kept.as_deref() == *value)
    }
}

/// Remembered visitor kinds per thread (a power of two), direct-mapped.
const KIND_SLOTS: usize = 256;

thread_local! {
    static KINDS: RefCell<Vec<Option<Arc<VisitorKind>>>> =
        RefCell::new(vec![None; KIND_SLOTS]);
}

/// Works out the visitor's kind for one human click and calls `then` with it: the user agent and
/// the address are looked up in this thread's tables, then the kind itself (an allocation only
/// for a kind this thread has not seen lately).
pub fn with_visitor<R>(
    user_agent: Option<&[u8]>,
    accept_language: Option<&[u8]>,
    ip: IpAddr,
    geo: Option<&GeoDb>,
    then: impl FnOnce(&Arc<VisitorKind>) -> R,
) -> R {
    let profile = user_agent
        .and_then(|ua| std::str::from_utf8(ua).ok())
        .map(visitor::profile_of)
        .unwrap_or_default();
    let mut language_buffer = [0u8; 8];
    let language =
        accept_language.and_then(|h| visitor::preferred_language(h, &mut language_buffer));
    let mut values: Values<'_> = [None; DIMS];
    values[Dim::Device as usize] = Some(profile.device.map_or(UNKNOWN, |d| d.name()));
    values[Dim::Os as usize] = Some(profile.os.map_or(UNKNOWN, |o| o.name()));
    values[Dim::Browser as usize] = Some(profile.browser.map_or(UNKNOWN, |b| b.name()));
    values[Dim::App as usize] = Some(profile.app.map_or(NO_APP, |a| a.name()));
    values[Dim::Language as usize] = Some(language.unwrap_or(UNKNOWN));
    let place = geo.map(|geo| {
        let slot = rustc_hash::FxBuildHasher.hash_one(ip) as usize & (PLACE_SLOTS - 1);
        PLACES.with(|places| {
            let mut places = places.borrow_mut();
            match &places[slot] {
                Some((id, seen, place)) if *id == geo.id && *seen == ip => *place,
                _ => {
                    let place = geo.place(ip);
                    places[slot] = Some((geo.id, ip, place));
                    place
                }
            }
        })
    });
    if let Some(place) = &place {
        let country = place.country.as_ref().map(Inline::as_str);
        let region = place.region.as_ref().map(Inline::as_str);
        values[Dim::Country as usize] = Some(country.unwrap_or(UNKNOWN));
        values[Dim::Region as usize] = Some(region.unwrap_or(UNKNOWN));
    }
    let mut hasher = rustc_hash::FxHasher::default();
    for value in &values {
        match value {
            Some(text) => {
                hasher.write(text.as_bytes());
                hasher.write_u8(0xFF);
            }
            None => hasher.write_u8(0),
        }
    }
    let slot = hasher.finish() as usize & (KIND_SLOTS - 1);
    KINDS.with(|kinds| {
        let mut kinds = kinds.borrow_mut();
        let kind = match &mut kinds[slot] {
            Some(kind) if kind.matches(&values) => kind,
            other => other.insert(Arc::new(VisitorKind::new(&values))),
        };
        then(kind)
    })
}

/// The client address of a request: the left-most `X-Forwarded-For` entry when the peer is one
/// of the trusted proxies (`links.trusted_proxies`), else the peer itself.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&[u8]>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    forwarded_for
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| h.split(',').next())
        .and_then(|first| first.trim().parse().ok())
        .unwrap_or(peer)
}

/// The statistics' calendar: which day (days since 1970-01-01 in the configured time zone) an
/// instant belongs to, and the date of such a day.
pub struct StatsClock {
    zone: jiff::tz::TimeZone,
    name: String,
    /// Told apart in the per-thread memory of the current day (an address could be reused by
    /// another clock after this one is dropped).
    id: u64,
}

/// A day's bounds as one thread last computed them: `[start, end)` in unix ms, and its number.
#[derive(Clone, Copy)]
struct DaySpan {
    start_ms: i64,
    end_ms: i64,
    day: u32,
}

thread_local! {
    static DAY: std::cell::Cell<Option<(u64, DaySpan)>> = const { std::cell::Cell::new(None) };
}

impl StatsClock {
    /// The clock of the IANA zone `name` (e.g. `Asia/Shanghai`, `UTC`).
    pub fn new(name: &str) -> Result<StatsClock, String> {
        let zone = jiff::tz::TimeZone::get(name)
            .map_err(|err| format!("unknown time zone {name:?}: {err}"))?;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(StatsClock {
            zone,
            name: name.to_owned(),
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The day of `ms` (unix milliseconds). Each thread remembers the bounds of the last day it
    /// computed, so a click costs two comparisons.
    pub fn day_of(&self, ms: u64) -> u32 {
        let at = i64::try_from(ms).unwrap_or(i64::MAX);
        if let Some((clock, span)) = DAY.get()
            && clock == self.id
            && (span.start_ms..span.end_ms).contains(&at)
        {
            return span.day;
        }
        let span = self.span_of(at);
        DAY.set(Some((self.id, span)));
        span.day
    }

    fn span_of(&self, at: i64) -> DaySpan {
        let fallback = DaySpan {
            start_ms: at,
            end_ms: at + 1,
            day: u32::try_from(at.div_euclid(86_400_000)).unwrap_or(0),
        };
        let Ok(timestamp) = jiff::Timestamp::from_millisecond(at) else {
            return fallback;
        };
        let date = timestamp.to_zoned(self.zone.clone()).date();
        let start = date.to_zoned(self.zone.clone()).ok();
        let end = date
            .tomorrow()
            .ok()
            .and_then(|next| next.to_zoned(self.zone.clone()).ok());
        let day = date
            .since(jiff::civil::date(1970, 1, 1))
            .ok()
            .and_then(|span| u32::try_from(span.get_days()).ok());
        match (start, end, day) {
            (Some(start), Some(end), Some(day)) => DaySpan {
                start_ms: start.timestamp().as_millisecond(),
                end_ms: end.timestamp().as_millisecond(),
                day,
            },
            _ => fallback,
        }
    }

    /// The date (`YYYY-MM-DD`) of day number `day`.
    pub fn date_of(day: u32) -> String {
        jiff::civil::date(1970, 1, 1)
            .checked_add(jiff::Span::new().days(i64::from(day)))
            .map(|d| d.to_string())
            .unwrap_or_default()
    }

    /// The day number of a date `YYYY-MM-DD`.
    pub fn day_of_date(text: &str) -> Option<u32> {
        let date: jiff::civil::Date = text.trim().parse().ok()?;
        let span = date.since(jiff::civil::date(1970, 1, 1)).ok()?;
        u32::try_from(span.get_days()).ok()
    }

    /// Today's day number.
    pub fn today(&self) -> u32 {
        self.day_of(crate::timefmt::now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_turn_at_midnight_of_the_zone() {
        let shanghai = StatsClock::new("Asia/Shanghai").unwrap();
        let utc = StatsClock::new("UTC").unwrap();
        // 2026-12-03T15:59:59.999Z is 23:59:59.999 in Shanghai; a millisecond later it is the 4th.
        let before = crate::timefmt::parse_rfc3339_ms("2026-12-03T15:59:59.999Z").unwrap();
        let after = before + 1;
        assert_eq!(StatsClock::date_of(shanghai.day_of(before)), "2026-12-03");
        assert_eq!(StatsClock::date_of(shanghai.day_of(after)), "2026-12-04");
        // The remembered span answers again, and a thread that asks another clock is not fooled.
        assert_eq!(StatsClock::date_of(shanghai.day_of(before)), "2026-12-03");
        assert_eq!(StatsClock::date_of(utc.day_of(after)), "2026-12-03");
        assert_eq!(
            StatsClock::date_of(utc.day_of(after + 8 * 3_600_000)),
            "2026-12-04"
        );
        assert_eq!(
            StatsClock::day_of_date("2026-12-04"),
            Some(shanghai.day_of(after))
        );
        assert_eq!(StatsClock::day_of_date("2026-13-01"), None);
        // A zone with daylight saving: its short day is still one day.
        let paris = StatsClock::new("Europe/Paris").unwrap();
        let spring = crate::timefmt::parse_rfc3339_ms("2026-03-29T12:00:00Z").unwrap();
        assert_eq!(StatsClock::date_of(paris.day_of(spring)), "2026-03-29");
        assert!(StatsClock::new("Mars/Olympus").is_err());
    }

    #[test]
    fn client_addresses() {
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let proxy = [peer];
        let xff = Some(b"203.0.113.7, 10.0.0.1".as_slice());
        assert_eq!(client_ip(peer, xff, &proxy).to_string(), "203.0.113.7");
        assert_eq!(
            client_ip(peer, xff, &[]),
            peer,
            "an untrusted peer's header is ignored"
        );
        assert_eq!(client_ip(peer, Some(b"junk"), &proxy), peer);
    }

    #[test]
    fn values_of_a_click() {
        let ua = b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.40";
        let ip = "127.0.0.1".parse().unwrap();
        let values_of = |kind: &Arc<VisitorKind>| -> Vec<(Dim, String)> {
            kind.values().map(|(d, v)| (d, v.to_owned())).collect()
        };
        let first = with_visitor(
            Some(ua),
            Some(b"zh-CN,zh;q=0.9,en;q=0.8"),
            ip,
            None,
            Arc::clone,
        );
        let got = values_of(&first);
        let get = |dim: Dim| got.iter().find(|(d, _)| *d == dim).map(|(_, v)| v.as_str());
        assert_eq!(get(Dim::Device), Some("mobile"));
        assert_eq!(get(Dim::Os), Some("ios"));
        assert_eq!(get(Dim::App), Some("wechat"));
        assert_eq!(get(Dim::Language), Some("zh"));
        assert_eq!(get(Dim::Referrer), None, "the referrer is counted apart");
        assert_eq!(get(Dim::Country), None, "no database, no geo");
        // The same visitor again is the same kind, shared; another language is another kind.
        let again = with_visitor(Some(ua), Some(b"zh-CN"), ip, None, Arc::clone);
        assert!(Arc::ptr_eq(&first, &again));
        let english = with_visitor(Some(ua), Some(b"en-US"), ip, None, Arc::clone);
        assert!(!Arc::ptr_eq(&first, &english));
        assert_eq!(
            values_of(&english)
                .iter()
                .find(|(d, _)| *d == Dim::Language)
                .map(|(_, v)| v.as_str()),
            Some("en")
        );
        let bare = with_visitor(None, None, "::1".parse().unwrap(), None, |k| values_of(k));
        let get = |dim: Dim| bare.iter().find(|(d, _)| *d == dim).map(|(_, v)| v.clone());
        assert_eq!(get(Dim::Os).as_deref(), Some(UNKNOWN));
        assert_eq!(get(Dim::App).as_deref(), Some(NO_APP));
    }
}
