//! Click counting off the redirect's path: sharded in-memory counters, flushed in batches.
//!
//! A redirect touches one of 64 shards (a `parking_lot` mutex around a small map) and adds one to
//! its code's counter for today; no channel, no task, no write transaction per click. The
//! background task calls [`ClickCounter::flush`] every `links.click_flush_ms` (and once more at
//! shutdown): the counts move to a "flushing" slot, go to the writer as one operation (one
//! commit for every link clicked since the last flush), and leave memory only after that commit;
//! a failed commit puts them back. So a clean shutdown loses no click and a crash at most one
//! interval's. Readers (restore, stats) add what is still in memory to what is stored.
//!
//! `HEAD` requests are tallied apart and never count as clicks; requests whose `User-Agent` is a
//! known bot or link previewer (or is missing) count as bot visits, not clicks.

use std::hash::BuildHasher;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use parking_lot::Mutex;
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::record::{ClickTotals, day_of};
use super::repo::{ClickDelta, OTHER_REFERRERS};

const SHARDS: usize = 64;
/// Distinct referrer hosts kept per link between two flushes; more go to "(other)".
const REFS_PER_FLUSH: usize = 16;
/// Flushes without a click after which a link's counter leaves memory.
const IDLE_FLUSHES: u32 = 120;

/// What kind of visit a redirect request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    Human,
    Bot,
    Head,
}

/// Substrings (ASCII, any case) of user agents that are crawlers, link previewers or HTTP
/// libraries, after the lists of isbot and CrawlerDetect, plus Chinese search engines and apps'
/// preview fetchers.
const BOT_MARKERS: &[&str] = &[
    "bot",
    "crawl",
    "spider",
    "slurp",
    "preview",
    "facebookexternalhit",
    "facebookcatalog",
    "embedly",
    "quora link",
    "outbrain",
    "pinterest",
    "vkshare",
    "w3c_validator",
    "whatsapp",
    "telegram",
    "skypeuripreview",
    "bitlybot",
    "headlesschrome",
    "phantomjs",
    "lighthouse",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "httpx",
    "curl/",
    "wget/",
    "go-http-client",
    "okhttp",
    "java/",
    "apache-httpclient",
    "libwww-perl",
    "node-fetch",
    "axios/",
    "postman",
    "insomnia",
    "k6/",
    "scrapy",
    "yisou",
    "sogou",
    "360spider",
    "haosou",
    "bytespider",
    "petalbot",
    "mediapartners",
    "feedfetcher",
    "google-read-aloud",
    "ia_archiver",
    "archive.org",
];

fn bot_matcher() -> &'static AhoCorasick {
    static MATCHER: OnceLock<AhoCorasick> = OnceLock::new();
    MATCHER.get_or_init(|| {
        AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(BOT_MARKERS)
            .expect("the bot markers compile")
    })
}

/// Whether a `User-Agent` value is a bot (a missing or empty one is).
pub fn is_bot(user_agent: Option<&[u8]>) -> bool {
    match user_agent {
        None => true,
        Some(ua) if ua.iter().all(u8::is_ascii_whitespace) => true,
        Some(ua) => bot_matcher().is_match(ua),
    }
}

/// The host of a `Referer` value, if it has a sane one (lowercase, without port or user info).
pub fn referrer_host(referer: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(referer).ok()?;
    let rest = text.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host_port.split(':').next()?,
    };
    let sane = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    sane.then_some(host)
}

#[derive(Default)]
struct RefCount {
    host: Box<str>,
    live: u64,
    flushing: u64,
}

#[derive(Default)]
struct Entry {
    /// (day, counts) not yet handed to the writer.
    live: Vec<(u32, ClickTotals)>,
    /// (day, counts) handed to the writer, not yet committed.
    flushing: Vec<(u32, ClickTotals)>,
    refs: Vec<RefCount>,
    idle_flushes: u32,
}

fn add_on_day(days: &mut Vec<(u32, ClickTotals)>, day: u32, counts: &ClickTotals) {
    match days.iter_mut().find(|(d, _)| *d == day) {
        Some((_, total)) => total.add(counts),
        None => days.push((day, *counts)),
    }
}

type Shard = Mutex<FxHashMap<Box<str>, Entry>>;

/// Clicks of one link still in memory: totals, per day, per referrer host.
#[derive(Debug, Default)]
pub struct Pending {
    pub totals: ClickTotals,
    pub days: Vec<(u32, ClickTotals)>,
    pub referrers: Vec<(String, u64)>,
}

/// The in-memory click counters.
pub struct ClickCounter {
    shards: Box<[Shard]>,
}

impl Default for ClickCounter {
    fn default() -> Self {
        ClickCounter {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(FxHashMap::default()))
                .collect(),
        }
    }
}

impl ClickCounter {
    /// Counts one visit of `code` at `now_ms`.
    pub fn record(&self, code: &str, visit: Visit, referrer: Option<&str>, now_ms: u64) {
        let day = day_of(now_ms);
        let mut shard = self.shard(code).lock();
        if !shard.contains_key(code) {
            shard.insert(code.into(), Entry::default());
        }
        let entry = shard.get_mut(code).expect("inserted above");
        entry.idle_flushes = 0;
        let counts = match entry.live.iter_mut().find(|(d, _)| *d == day) {
            Some((_, counts)) => counts,
            None => {
                entry.live.push((day, ClickTotals::default()));
                &mut entry.live.last_mut().expect("pushed").1
            }
        };
        match visit {
            Visit::Human => counts.human += 1,
            Visit::Bot => counts.bot += 1,
            Visit::Head => counts.head += 1,
        }
        if visit == Visit::Human
            && let Some(host) = referrer
        {
            let slot = match entry
                .refs
                .iter()
                .position(|r| r.host.eq_ignore_ascii_case(host))
            {
                Some(index) => index,
                None if entry.refs.len() < REFS_PER_FLUSH => {
                    entry.refs.push(RefCount {
                        host: host.to_ascii_lowercase().into(),
                        ..RefCount::default()
                    });
                    entry.refs.len() - 1
                }
                None => match entry.refs.iter().position(|r| &*r.host == OTHER_REFERRERS) {
                    Some(index) => index,
                    None => {
                        entry.refs.push(RefCount {
                            host: OTHER_REFERRERS.into(),
                            ..RefCount::default()
                        });
                        entry.refs.len() - 1
                    }
                },
            };
            entry.refs[slot].live += 1;
        }
    }

    /// Counts of `code` still in memory.
    pub fn pending(&self, code: &str) -> Pending {
        let shard = self.shard(code).lock();
        let Some(entry) = shard.get(code) else {
            return Default::default();
        };
        let mut total = ClickTotals::default();
        let mut days = Vec::new();
        for (day, counts) in entry.live.iter().chain(&entry.flushing) {
            total.add(counts);
            add_on_day(&mut days, *day, counts);
        }
        let referrers = entry
            .refs
            .iter()
            .filter(|r| r.live + r.flushing > 0)
            .map(|r| (r.host.to_string(), r.live + r.flushing))
            .collect();
        Pending {
            totals: total,
            days,
            referrers,
        }
    }

    /// Moves every live count to "flushing" and returns them as deltas for the writer.
    pub fn begin_flush(&self) -> Vec<ClickDelta> {
        let mut deltas = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            shard.retain(|code, entry| {
                if entry.live.is_empty() && entry.refs.iter().all(|r| r.live == 0) {
                    entry.idle_flushes += 1;
                    return entry.idle_flushes < IDLE_FLUSHES || !entry.flushing.is_empty();
                }
                let first = deltas.len();
                for (day, counts) in entry.live.drain(..) {
                    add_on_day(&mut entry.flushing, day, &counts);
                    deltas.push(ClickDelta {
                        code: code.to_string(),
                        day,
                        counts,
                        referrers: Vec::new(),
                    });
                }
                let refs: Vec<(String, u64)> = entry
                    .refs
                    .iter_mut()
                    .filter(|r| r.live > 0)
                    .map(|r| {
                        r.flushing += r.live;
                        let moved = r.live;
                        r.live = 0;
                        (r.host.to_string(), moved)
                    })
                    .collect();
                match deltas.get_mut(first) {
                    Some(delta) => delta.referrers = refs,
                    None if !refs.is_empty() => deltas.push(ClickDelta {
                        code: code.to_string(),
                        day: 0,
                        counts: ClickTotals::default(),
                        referrers: refs,
                    }),
                    None => {}
                }
                true
            });
        }
        deltas
    }

    /// Ends a flush: on success the flushed counts leave memory (they are stored now); on failure
    /// they go back to the live counts for the next flush.
    pub fn end_flush(&self, committed: bool) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            for entry in shard.values_mut() {
                let flushing = std::mem::take(&mut entry.flushing);
                if !committed {
                    for (day, counts) in &flushing {
                        add_on_day(&mut entry.live, *day, counts);
                    }
                }
                for r in &mut entry.refs {
                    if !committed {
                        r.live += r.flushing;
                    }
                    r.flushing = 0;
                }
                entry.refs.retain(|r| r.live > 0);
            }
        }
    }

    fn shard(&self, code: &str) -> &Shard {
        &self.shards[(FxBuildHasher.hash_one(code) as usize) % SHARDS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bots_and_people() {
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "facebookexternalhit/1.1",
            "TelegramBot (like TwitterBot)",
            "Mozilla/5.0 (compatible; Baiduspider/2.0)",
            "Sogou web spider/4.0",
            "curl/8.5.0",
            "python-requests/2.31",
            "Slackbot-LinkExpanding 1.0",
            "WhatsApp/2.23",
            "Mozilla/5.0 (Linux) HeadlessChrome/120",
        ] {
            assert!(is_bot(Some(ua.as_bytes())), "{ua}");
        }
        for ua in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) MicroMessenger/8.0.40",
            "Mozilla/5.0 (Linux; Android 14) Quark/6.9",
        ] {
            assert!(!is_bot(Some(ua.as_bytes())), "{ua}");
        }
        assert!(is_bot(None));
        assert!(is_bot(Some(b"  ")));
    }

    #[test]
    fn referrer_hosts() {
        assert_eq!(
            referrer_host(b"https://www.Example.com:8443/a?b#c"),
            Some("www.Example.com")
        );
        assert_eq!(referrer_host(b"http://u:p@x.cn/"), Some("x.cn"));
        assert_eq!(
            referrer_host(b"android-app://com.tencent.mm/"),
            Some("com.tencent.mm")
        );
        assert_eq!(referrer_host(b"no scheme"), None);
        assert_eq!(referrer_host(b"https:///path"), None);
        assert_eq!(referrer_host(b"https://bad host/"), None);
    }

    #[test]
    fn flush_moves_counts_once_and_failure_puts_them_back() {
        let counter = ClickCounter::default();
        let now = 86_400_000 * 100;
        counter.record("abc", Visit::Human, Some("a.com"), now);
        counter.record("abc", Visit::Human, Some("A.com"), now);
        counter.record("abc", Visit::Bot, None, now);
        counter.record("abc", Visit::Head, None, now);
        counter.record("xyz", Visit::Human, None, now + 86_400_000);
        let Pending {
            totals: total,
            days,
            referrers: refs,
        } = counter.pending("abc");
        assert_eq!((total.human, total.bot, total.head), (2, 1, 1));
        assert_eq!(days, vec![(100, total)]);
        assert_eq!(refs, vec![("a.com".to_owned(), 2)]);

        let deltas = counter.begin_flush();
        assert_eq!(deltas.len(), 2);
        // Still visible while the commit runs.
        assert_eq!(counter.pending("abc").totals.human, 2);
        counter.end_flush(false);
        let again = counter.begin_flush();
        let abc = again.iter().find(|d| d.code == "abc").unwrap();
        assert_eq!(abc.counts.human, 2);
        assert_eq!(abc.referrers, vec![("a.com".to_owned(), 2)]);
        counter.end_flush(true);
        assert_eq!(counter.pending("abc").totals, ClickTotals::default());
        assert!(counter.begin_flush().is_empty());
    }

    #[test]
    fn referrers_beyond_the_bound_go_to_other() {
        let counter = ClickCounter::default();
        for i in 0..40 {
            counter.record("c", Visit::Human, Some(&format!("h{i}.com")), 0);
        }
        let refs = counter.pending("c").referrers;
        assert_eq!(refs.len(), REFS_PER_FLUSH + 1);
        let other = refs.iter().find(|(h, _)| h == OTHER_REFERRERS).unwrap();
        assert_eq!(other.1, 40 - REFS_PER_FLUSH as u64);
    }
}
