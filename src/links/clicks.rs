//! Click counting off the redirect's path: sharded in-memory counters, flushed in batches.
//!
//! A redirect touches one of 64 shards (a `parking_lot` mutex around a small map) and adds one to
//! its code's counter for today; no channel, no task, no write transaction per click. Each shard
//! lists the codes clicked since the last flush, so a flush visits only those.
//!
//! Counts then travel in two steps, each one write for all links:
//! 1. every `links.click_flush_ms` (and at shutdown) the live counts are appended to the click
//!    journal as ONE record (one LMDB put, whatever the number of links): durable, cheap;
//! 2. every `links.click_compact_ms` (and at shutdown) the journaled counts, aggregated per link
//!    and day over the whole interval, are folded into the links' rows and the journal is
//!    emptied; a link clicked 30 times in the interval costs one row update, not 30.
//!
//! Counts leave a stage only after the commit of the next one; a failed commit puts them back.
//! A crash loses at most one flush interval; the journal left behind is folded in at start-up.
//! Readers (restore, stats) add every in-memory stage to what the rows hold.
//!
//! `HEAD` requests are tallied apart and never count as clicks; requests whose `User-Agent` is a
//! known bot or link previewer (or is missing) count as bot visits, not clicks.
//!
//! A human click may also bring its visitor's kind ([`analytics`](super::analytics): device, OS,
//! browser, app, language, country, region; the referrer is the click's own): counted per link,
//! day and kind, one pointer comparison, and written out value by value only on the way to
//! storage. Memory stays bounded: per link and day at most [`KINDS_PER_FLUSH`] kinds between two
//! flushes; the clicks of more kinds, and the referrers, are counted per value, at most
//! [`DIM_VALUES_PER_FLUSH`] values per dimension, the rest under "(other)".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use compact_str::CompactString;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::analytics::{Dim, VisitorKind};
use super::record::ClickTotals;
use super::repo::{ClickDelta, JournalWriter, OTHER_REFERRERS};

/// Shards of the counters (a flush walks them one at a time).
pub const SHARDS: usize = 64;
/// Distinct referrer hosts kept per link between two flushes; more go to "(other)".
const REFS_PER_FLUSH: usize = 16;
/// Distinct values kept per link, day and dimension between two flushes; more go to "(other)".
pub const DIM_VALUES_PER_FLUSH: usize = 16;
/// Distinct visitor kinds counted as such per link and day between two flushes; the clicks of more
/// are counted value by value (bounded by [`DIM_VALUES_PER_FLUSH`]).
pub const KINDS_PER_FLUSH: usize = 8;

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

/// Where counts are on their way to storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Counted, not yet handed to the writer.
    Live = 0,
    /// In the journal write being committed.
    Flushing = 1,
    /// Durable in the journal, not yet folded into the link's rows.
    Journaled = 2,
    /// In the compaction write being committed.
    Compacting = 3,
}

const STAGES: usize = 4;

/// Counts per day of one stage.
type Days = SmallVec<[(u32, ClickTotals); 1]>;

#[derive(Default)]
struct RefCount {
    host: Box<str>,
    n: [u64; STAGES],
}

/// A dimension's value as the counters hold it: inline when short (most are: `ios`, `zh`,
/// `weibo.com`, `广东`), so an entry's counts live in one allocation.
enum DimValue {
    Inline { len: u8, bytes: [u8; 22] },
    Heap(Box<str>),
}

impl DimValue {
    fn new(text: &str) -> DimValue {
        if text.len() <= 22 {
            let mut bytes = [0; 22];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            DimValue::Inline {
                len: text.len() as u8,
                bytes,
            }
        } else {
            DimValue::Heap(text.into())
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The bytes, for the comparison of every click (no UTF-8 check there).
    fn as_bytes(&self) -> &[u8] {
        match self {
            DimValue::Inline { len, bytes } => &bytes[..usize::from(*len)],
            DimValue::Heap(text) => text.as_bytes(),
        }
    }
}

/// Human clicks of one value of one dimension on one day (48 bytes).
struct DimCount {
    value: DimValue,
    day: u32,
    dim: Dim,
    n: [u32; STAGES],
}

/// Human clicks of one kind of visitor on one day (32 bytes): each counts one for every value of
/// the kind.
struct KindCount {
    kind: Arc<VisitorKind>,
    day: u32,
    n: [u32; STAGES],
}

/// One link's human clicks by visitor, in one allocation that holds a typical link's (one kind of
/// visitor, one referrer) without another.
#[derive(Default)]
struct Visitors {
    /// Clicks per visitor kind.
    kinds: SmallVec<[KindCount; 2]>,
    /// Clicks per dimension and value: the referrer's, and those of kinds beyond
    /// [`KINDS_PER_FLUSH`].
    dims: SmallVec<[DimCount; 1]>,
}

#[derive(Default)]
struct Entry {
    /// Its code (the map's key; short codes are held inline, with no allocation of their own).
    key: CompactString,
    /// Per stage: (day, counts); inline for the one day nearly every stage holds, so that counting
    /// and flushing a click allocate nothing.
    days: [Days; STAGES],
    refs: Vec<RefCount>,
    /// Human clicks by visitor and referrer (none when analytics is off or no human clicked).
    visitors: Option<Box<Visitors>>,
    /// Listed in its shard's `touched` (it has live counts the next flush must take).
    touched: bool,
    /// The flush that took this entry's "flushing" counts; once that flush is committed they
    /// are journaled (moved lazily, so a committed flush needs no second walk).
    flushing_epoch: u64,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.days.iter().all(|days| days.is_empty())
            && self.refs.is_empty()
            && self.visitors.is_none()
    }

    fn kinds(&self) -> &[KindCount] {
        self.visitors.as_deref().map_or(&[], |v| &v.kinds)
    }

    fn dims(&self) -> &[DimCount] {
        self.visitors.as_deref().map_or(&[], |v| &v.dims)
    }

    fn visitors_mut(&mut self) -> &mut Visitors {
        self.visitors.get_or_insert_with(Box::default)
    }

    /// The clicks of `stage` by day, dimension and value: the kinds' values, then the values
    /// counted one by one (a value may come more than once; the sums are what count).
    fn dim_counts(&self, stage: Stage) -> impl Iterator<Item = (u32, Dim, &str, u64)> {
        let at = stage as usize;
        let of_kinds = self
            .kinds()
            .iter()
            .filter(move |k| k.n[at] > 0)
            .flat_map(move |k| {
                k.kind
                    .values()
                    .map(move |(dim, value)| (k.day, dim, value, u64::from(k.n[at])))
            });
        let of_values = self
            .dims()
            .iter()
            .filter(move |d| d.n[at] > 0)
            .map(move |d| (d.day, d.dim, d.value.as_str(), u64::from(d.n[at])));
        of_kinds.chain(of_values)
    }

    fn has_dims(&self, stage: Stage) -> bool {
        let at = stage as usize;
        self.dims().iter().any(|d| d.n[at] > 0) || self.kinds().iter().any(|k| k.n[at] > 0)
    }

    /// Moves the dimension counts of `from` into `to`.
    fn move_dims(&mut self, from: Stage, to: Stage) {
        let (from, to) = (from as usize, to as usize);
        let Some(visitors) = self.visitors.as_deref_mut() else {
            return;
        };
        for n in visitors
            .dims
            .iter_mut()
            .map(|d| &mut d.n)
            .chain(visitors.kinds.iter_mut().map(|k| &mut k.n))
        {
            let moved = std::mem::take(&mut n[from]);
            n[to] = n[to].saturating_add(moved);
        }
    }

    /// Moves the counts of `from` into `to`; the moved counts as a delta (`None`: nothing).
    fn shift(&mut self, code: &str, from: Stage, to: Stage, out: &mut Vec<ClickDelta>) {
        let first = out.len();
        let moved = std::mem::take(&mut self.days[from as usize]);
        for (day, counts) in &moved {
            add_on_day(&mut self.days[to as usize], *day, counts);
            out.push(ClickDelta {
                code: code.to_owned(),
                day: *day,
                counts: *counts,
                referrers: Vec::new(),
                dims: Vec::new(),
            });
        }
        for (day, dim, value, n) in self.dim_counts(from) {
            let at = match out[first..].iter().position(|delta| delta.day == day) {
                Some(at) => first + at,
                None => {
                    out.push(ClickDelta {
                        code: code.to_owned(),
                        day,
                        counts: ClickTotals::default(),
                        referrers: Vec::new(),
                        dims: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            out[at].dims.push((dim, value.to_owned(), n));
        }
        self.move_dims(from, to);
        let mut refs = Vec::new();
        for r in &mut self.refs {
            let n = std::mem::take(&mut r.n[from as usize]);
            if n > 0 {
                r.n[to as usize] += n;
                refs.push((r.host.to_string(), n));
            }
        }
        if !refs.is_empty() {
            match out.get_mut(first) {
                Some(delta) => delta.referrers = refs,
                None => out.push(ClickDelta {
                    code: code.to_owned(),
                    day: 0,
                    counts: ClickTotals::default(),
                    referrers: refs,
                    dims: Vec::new(),
                }),
            }
        }
    }

    /// Moves the counts of `from` into `to`, without reporting them.
    fn merge(&mut self, from: Stage, to: Stage) {
        if self.days[from as usize].is_empty()
            && self.refs.iter().all(|r| r.n[from as usize] == 0)
            && !self.has_dims(from)
        {
            return;
        }
        let moved = std::mem::take(&mut self.days[from as usize]);
        for (day, counts) in &moved {
            add_on_day(&mut self.days[to as usize], *day, counts);
        }
        for r in &mut self.refs {
            r.n[to as usize] += std::mem::take(&mut r.n[from as usize]);
        }
        self.move_dims(from, to);
    }

    /// Treats flushing counts of a committed flush as journaled.
    fn settle_flushed(&mut self, committed_epoch: u64) {
        if self.flushing_epoch <= committed_epoch {
            self.merge(Stage::Flushing, Stage::Journaled);
        }
    }

    /// Forgets the counts of `stage` (they are stored now).
    fn drop_stage(&mut self, stage: Stage) {
        self.days[stage as usize].clear();
        for r in &mut self.refs {
            r.n[stage as usize] = 0;
        }
        self.refs.retain(|r| r.n.iter().any(|&n| n > 0));
        if let Some(visitors) = self.visitors.as_deref_mut() {
            for d in visitors.dims.iter_mut() {
                d.n[stage as usize] = 0;
            }
            visitors.dims.retain(|d| d.n.iter().any(|&n| n > 0));
            for k in visitors.kinds.iter_mut() {
                k.n[stage as usize] = 0;
            }
            visitors.kinds.retain(|k| k.n.iter().any(|&n| n > 0));
            if visitors.dims.is_empty() && visitors.kinds.is_empty() {
                self.visitors = None;
            }
        }
    }

    /// Counts one human click of a visitor of `kind` on `day` (live).
    fn count_kind(&mut self, kind: &Arc<VisitorKind>, day: u32) {
        let live = Stage::Live as usize;
        let visitors = self.visitors_mut();
        // The same kind is nearly always the same `Arc` (each thread shares its kinds).
        if let Some(k) = visitors
            .kinds
            .iter_mut()
            .find(|k| k.day == day && Arc::ptr_eq(&k.kind, kind))
        {
            k.n[live] = k.n[live].saturating_add(1);
            return;
        }
        let kept = visitors
            .kinds
            .iter()
            .filter(|k| k.day == day && k.n[live] > 0)
            .count();
        if kept < KINDS_PER_FLUSH {
            let mut n = [0; STAGES];
            n[live] = 1;
            visitors.kinds.push(KindCount {
                kind: Arc::clone(kind),
                day,
                n,
            });
        } else {
            for (dim, value) in kind.values() {
                visitors.count_dim(dim, day, value);
            }
        }
    }
}

impl Visitors {
    /// Counts one human click's value of `dim` on `day` (live).
    fn count_dim(&mut self, dim: Dim, day: u32, value: &str) {
        let live = Stage::Live as usize;
        let same = |d: &DimCount, value: &str| {
            d.dim == dim && d.day == day && d.value.as_bytes() == value.as_bytes()
        };
        if let Some(d) = self.dims.iter_mut().find(|d| same(d, value)) {
            d.n[live] = d.n[live].saturating_add(1);
            return;
        }
        let kept = self
            .dims
            .iter()
            .filter(|d| d.dim == dim && d.day == day && d.n[live] > 0)
            .count();
        let value = if kept < DIM_VALUES_PER_FLUSH {
            value
        } else {
            OTHER_REFERRERS
        };
        match self.dims.iter_mut().find(|d| same(d, value)) {
            Some(d) => d.n[live] = d.n[live].saturating_add(1),
            None => {
                let mut n = [0; STAGES];
                n[live] = 1;
                self.dims.push(DimCount {
                    value: DimValue::new(value),
                    day,
                    dim,
                    n,
                });
            }
        }
    }
}

/// Adds `counts` to `day` in a stage's days (a `Days`) or a reader's (a `Vec`).
fn add_on_day<D>(days: &mut D, day: u32, counts: &ClickTotals)
where
    D: std::ops::DerefMut<Target = [(u32, ClickTotals)]> + Extend<(u32, ClickTotals)>,
{
    match days.iter_mut().find(|(d, _)| *d == day) {
        Some((_, total)) => total.add(counts),
        None => days.extend([(day, *counts)]),
    }
}

/// Room a shard's tables keep however empty they get; they shrink only from four times this or
/// four times their length (see [`ClickCounter::end_compaction`]).
const KEEP_ROOM: usize = 64;

/// One shard: the counters, and the codes clicked since the last flush (so that a flush visits
/// only those, not every link clicked in the last minute).
#[derive(Default)]
struct ShardState {
    map: FxHashMap<CompactString, Entry>,
    touched: Vec<CompactString>,
}

type Shard = Mutex<ShardState>;

/// One flush in progress (see [`ClickCounter::start_flush`]).
#[derive(Debug, Clone, Copy)]
pub struct FlushTicket {
    epoch: u64,
    committed: u64,
}

/// Clicks of one link still in memory: totals, per day, per referrer host.
#[derive(Debug, Default)]
pub struct Pending {
    pub totals: ClickTotals,
    pub days: Vec<(u32, ClickTotals)>,
    pub referrers: Vec<(String, u64)>,
    /// Human clicks per day, dimension and value.
    pub dims: Vec<(u32, Dim, String, u64)>,
}

/// The in-memory click counters.
pub struct ClickCounter {
    shards: Box<[Shard]>,
    /// The last flush begun.
    flush_epoch: AtomicU64,
    /// The last flush whose journal record is committed.
    committed_epoch: AtomicU64,
}

impl Default for ClickCounter {
    fn default() -> Self {
        ClickCounter {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            flush_epoch: AtomicU64::new(0),
            committed_epoch: AtomicU64::new(0),
        }
    }
}

impl ClickCounter {
    /// Counts one visit of `code` on `day` (of the statistics' calendar), and for a human click
    /// its visitor's `kind` (with the referrer, the click's dimensions) if given.
    pub fn record(
        &self,
        code: &str,
        visit: Visit,
        referrer: Option<&str>,
        kind: Option<&Arc<VisitorKind>>,
        day: u32,
    ) {
        let mut guard = self.shard(code).lock();
        let ShardState { map, touched } = &mut *guard;
        // One hash on the common path (the code was clicked before); two on a first click.
        let entry = match map.get_mut(code) {
            Some(entry) => entry,
            None => {
                let key = CompactString::from(code);
                map.entry(key.clone()).or_insert_with(|| Entry {
                    key,
                    ..Entry::default()
                })
            }
        };
        if !entry.touched {
            entry.touched = true;
            touched.push(entry.key.clone());
        }
        let live = &mut entry.days[Stage::Live as usize];
        let counts = match live.iter_mut().position(|(d, _)| *d == day) {
            Some(index) => &mut live[index].1,
            None => {
                live.push((day, ClickTotals::default()));
                &mut live.last_mut().expect("pushed").1
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
            let live_hosts = entry
                .refs
                .iter()
                .filter(|r| r.n[Stage::Live as usize] > 0)
                .count();
            let slot = match entry
                .refs
                .iter()
                .position(|r| r.host.eq_ignore_ascii_case(host))
            {
                Some(index) => index,
                None if live_hosts < REFS_PER_FLUSH => {
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
            entry.refs[slot].n[Stage::Live as usize] += 1;
        }
        if visit == Visit::Human
            && let Some(kind) = kind
        {
            entry.count_kind(kind, day);
            if let Some(host) = referrer {
                entry.visitors_mut().count_dim(Dim::Referrer, day, host);
            }
        }
    }

    /// Counts of `code` still in memory (every stage: they are not in the link's rows yet).
    pub fn pending(&self, code: &str) -> Pending {
        let shard = self.shard(code).lock();
        let Some(entry) = shard.map.get(code) else {
            return Pending::default();
        };
        let mut pending = Pending::default();
        for (day, counts) in entry.days.iter().flatten() {
            pending.totals.add(counts);
            add_on_day(&mut pending.days, *day, counts);
        }
        pending.referrers = entry
            .refs
            .iter()
            .map(|r| (r.host.to_string(), r.n.iter().sum::<u64>()))
            .filter(|(_, n)| *n > 0)
            .collect();
        for stage in [
            Stage::Live,
            Stage::Flushing,
            Stage::Journaled,
            Stage::Compacting,
        ] {
            for (day, dim, value, n) in entry.dim_counts(stage) {
                match pending
                    .dims
                    .iter_mut()
                    .find(|d| d.0 == day && d.1 == dim && d.2 == value)
                {
                    Some(d) => d.3 += n,
                    None => pending.dims.push((day, dim, value.to_owned(), n)),
                }
            }
        }
        pending
    }

    /// Forgets every count of `code` (its link was deleted).
    pub fn forget(&self, code: &str) {
        self.shard(code).lock().map.remove(code);
    }

    /// Starts a flush; then [`ClickCounter::flush_shard`] for every shard (`0..SHARDS`), which
    /// lets the caller yield between shards so that a flush never stalls the redirects.
    pub fn start_flush(&self) -> FlushTicket {
        FlushTicket {
            epoch: self.flush_epoch.fetch_add(1, Ordering::AcqRel) + 1,
            committed: self.committed_epoch.load(Ordering::Acquire),
        }
    }

    /// Moves shard `index`'s live counts to "flushing", appending them to `record`; returns how
    /// many links had some, and how many visits (human, bot and `HEAD`) that is.
    pub fn flush_shard(
        &self,
        flush: &FlushTicket,
        index: usize,
        record: &mut JournalWriter,
    ) -> (usize, u64) {
        let mut links = 0;
        let mut visits = 0;
        let mut guard = self.shards[index % SHARDS].lock();
        let ShardState { map, touched } = &mut *guard;
        let live = Stage::Live as usize;
        // Only the codes clicked since the last flush: a flush costs what was clicked, not what
        // is held in memory.
        for code in touched.drain(..) {
            let Some(entry) = map.get_mut(&*code) else {
                continue; // forgotten (deleted) since
            };
            entry.touched = false;
            entry.settle_flushed(flush.committed);
            let had = !entry.days[live].is_empty()
                || entry.refs.iter().any(|r| r.n[live] > 0)
                || entry.has_dims(Stage::Live);
            if !had {
                continue;
            }
            links += 1;
            let refs = || {
                entry
                    .refs
                    .iter()
                    .filter(|r| r.n[live] > 0)
                    .map(|r| (&*r.host, r.n[live]))
            };
            let days = &entry.days[live];
            if days.is_empty() {
                record.push(&code, 0, &ClickTotals::default(), refs(), [], []);
            }
            for (i, (day, counts)) in days.iter().enumerate() {
                // The referrers travel with the first day's delta.
                let refs = refs().take(if i == 0 { usize::MAX } else { 0 });
                let values = entry
                    .dims()
                    .iter()
                    .filter(|d| d.day == *day && d.n[live] > 0)
                    .map(|d| (d.dim, d.value.as_str(), u64::from(d.n[live])));
                let kinds = entry
                    .kinds()
                    .iter()
                    .filter(|k| k.day == *day && k.n[live] > 0)
                    .map(|k| (&k.kind, u64::from(k.n[live])));
                record.push(&code, *day, counts, refs, values, kinds);
                visits += counts.human + counts.bot + counts.head;
            }
            entry.merge(Stage::Live, Stage::Flushing);
            entry.flushing_epoch = flush.epoch;
        }
        (links, visits)
    }

    /// After the journal write: committed counts count as journaled from now on (no walk);
    /// failed ones are live again.
    pub fn end_flush(&self, committed: bool) {
        let epoch = self.flush_epoch.load(Ordering::Acquire);
        if committed {
            self.committed_epoch.store(epoch, Ordering::Release);
            return;
        }
        for shard in self.shards.iter() {
            let mut guard = shard.lock();
            let ShardState { map, touched } = &mut *guard;
            for entry in map.values_mut() {
                if entry.flushing_epoch == epoch {
                    entry.merge(Stage::Flushing, Stage::Live);
                    if !entry.touched {
                        entry.touched = true;
                        touched.push(entry.key.clone());
                    }
                }
            }
        }
    }

    /// Moves the journaled counts to "compacting" and returns them, one delta per link and day.
    pub fn begin_compaction(&self) -> Vec<ClickDelta> {
        let committed = self.committed_epoch.load(Ordering::Acquire);
        let mut deltas = Vec::new();
        for shard in self.shards.iter() {
            for (code, entry) in shard.lock().map.iter_mut() {
                entry.settle_flushed(committed);
                entry.shift(code, Stage::Journaled, Stage::Compacting, &mut deltas);
            }
        }
        deltas
    }

    /// After the compaction write: committed counts leave memory, and so do links with nothing
    /// left to store (a shard's tables then shrink if mostly empty); failed ones stay journaled.
    pub fn end_compaction(&self, committed: bool) {
        for shard in self.shards.iter() {
            let mut guard = shard.lock();
            if committed {
                guard.map.retain(|_, entry| {
                    entry.drop_stage(Stage::Compacting);
                    entry.touched || !entry.is_empty()
                });
                // A burst of clicked links grows the tables, which keep their room after the
                // links leave: give most of it back once they are mostly empty.
                let ShardState { map, touched } = &mut *guard;
                if map.capacity() > 4 * map.len().max(KEEP_ROOM) {
                    map.shrink_to((2 * map.len()).max(KEEP_ROOM));
                }
                if touched.capacity() > 4 * touched.len().max(KEEP_ROOM) {
                    touched.shrink_to((2 * touched.len()).max(KEEP_ROOM));
                }
            } else {
                for entry in guard.map.values_mut() {
                    entry.merge(Stage::Compacting, Stage::Journaled);
                }
            }
        }
    }

    fn shard(&self, code: &str) -> &Shard {
        &self.shards[super::shard_of(code, SHARDS)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::record::day_of;
    use crate::links::repo::decode_journal;

    /// A whole flush at once (the server's goes shard by shard, yielding in between).
    impl ClickCounter {
        /// Moves the live counts to "flushing" and returns how many links had some, with the
        /// journal record of them (encoded in place: no per-link allocation).
        fn begin_flush(&self) -> (usize, Vec<u8>) {
            let flush = self.start_flush();
            let mut links = 0;
            let mut record = JournalWriter::with_capacity(0);
            for shard in 0..SHARDS {
                links += self.flush_shard(&flush, shard, &mut record).0;
            }
            (links, record.finish())
        }
    }

    fn encode_journal(deltas: &[ClickDelta]) -> Vec<u8> {
        crate::links::repo::encode_deltas(deltas)
    }

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
        counter.record("abc", Visit::Human, Some("a.com"), None, day_of(now));
        counter.record("abc", Visit::Human, Some("A.com"), None, day_of(now));
        counter.record("abc", Visit::Bot, None, None, day_of(now));
        counter.record("abc", Visit::Head, None, None, day_of(now));
        counter.record("xyz", Visit::Human, None, None, day_of(now + 86_400_000));
        let Pending {
            totals: total,
            days,
            referrers: refs,
            ..
        } = counter.pending("abc");
        assert_eq!((total.human, total.bot, total.head), (2, 1, 1));
        assert_eq!(days, vec![(100, total)]);
        assert_eq!(refs, vec![("a.com".to_owned(), 2)]);

        let (links, _) = counter.begin_flush();
        assert_eq!(links, 2);
        // Still visible while the commit runs.
        assert_eq!(counter.pending("abc").totals.human, 2);
        counter.end_flush(false);
        let (links, record) = counter.begin_flush();
        assert_eq!(links, 2);
        let again = decode_journal(&record).unwrap();
        let abc = again.iter().find(|d| d.code == "abc").unwrap();
        assert_eq!(abc.counts.human, 2);
        assert_eq!(abc.referrers, vec![("a.com".to_owned(), 2)]);
        assert_eq!(decode_journal(&encode_journal(&again)).unwrap(), again);
        counter.end_flush(true);
        // Journaled: still pending for readers, nothing left to flush.
        assert_eq!(counter.pending("abc").totals.human, 2);
        assert_eq!(counter.begin_flush().0, 0);
        counter.end_flush(true);
        counter.record("abc", Visit::Human, None, None, day_of(now));
        let compacted = counter.begin_compaction();
        let abc = compacted.iter().find(|d| d.code == "abc").unwrap();
        assert_eq!(abc.counts.human, 2, "only journaled counts are compacted");
        counter.end_compaction(false);
        assert_eq!(counter.begin_compaction().len(), 2);
        counter.end_compaction(true);
        assert_eq!(
            counter.pending("abc").totals.human,
            1,
            "the live click stays"
        );
        assert!(decode_journal(&[5, b'a']).is_none());
    }

    #[test]
    fn tables_give_their_room_back_once_the_clicked_links_leave() {
        let counter = ClickCounter::default();
        let room = |counter: &ClickCounter| -> (usize, usize) {
            counter.shards.iter().fold((0, 0), |(map, touched), shard| {
                let shard = shard.lock();
                (
                    map + shard.map.capacity(),
                    touched + shard.touched.capacity(),
                )
            })
        };
        for i in 0..50_000 {
            counter.record(&format!("code{i}"), Visit::Human, None, None, 100);
        }
        let (map_before, touched_before) = room(&counter);
        assert!(map_before >= 50_000 && touched_before >= 50_000);
        counter.begin_flush();
        counter.end_flush(true);
        counter.begin_compaction();
        counter.end_compaction(true);
        assert_eq!(counter.pending("code7").totals.human, 0, "folded and gone");
        let (map_after, touched_after) = room(&counter);
        // What each shard keeps however empty: KEEP_ROOM and the tables' rounding up.
        let kept = SHARDS * 4 * KEEP_ROOM;
        assert!(map_after <= kept, "{map_after}");
        assert!(touched_after <= kept, "{touched_after}");
        // A later click still counts.
        counter.record("code7", Visit::Human, None, None, 101);
        assert_eq!(counter.pending("code7").totals.human, 1);
    }

    #[test]
    fn referrers_beyond_the_bound_go_to_other() {
        let counter = ClickCounter::default();
        for i in 0..40 {
            counter.record(
                "c",
                Visit::Human,
                Some(&format!("h{i}.com")),
                None,
                day_of(0),
            );
        }
        let refs = counter.pending("c").referrers;
        assert_eq!(refs.len(), REFS_PER_FLUSH + 1);
        let other = refs.iter().find(|(h, _)| h == OTHER_REFERRERS).unwrap();
        assert_eq!(other.1, 40 - REFS_PER_FLUSH as u64);
    }

    /// A visitor kind with one value.
    fn kind(dim: Dim, value: &str) -> Arc<VisitorKind> {
        let mut values = [None; crate::links::analytics::DIMS];
        values[dim as usize] = Some(value);
        Arc::new(VisitorKind::new(&values))
    }

    #[test]
    fn dimensions_are_counted_for_people_only_and_bounded_per_flush() {
        let counter = ClickCounter::default();
        let ios = kind(Dim::Os, "ios");
        counter.record("d", Visit::Human, Some("x.com"), Some(&ios), 5);
        counter.record("d", Visit::Bot, Some("x.com"), Some(&ios), 5);
        counter.record("d", Visit::Head, None, Some(&ios), 5);
        // Another `Arc` of an equal kind (from another thread) counts the same values.
        counter.record("d", Visit::Human, None, Some(&kind(Dim::Os, "ios")), 5);
        let names: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
        for name in &names {
            counter.record("d", Visit::Human, None, Some(&kind(Dim::Country, name)), 5);
        }
        let dims = counter.pending("d").dims;
        let os: Vec<_> = dims.iter().filter(|d| d.1 == Dim::Os).collect();
        assert_eq!(os.len(), 1);
        assert_eq!(os[0].3, 2, "the bot and the HEAD are not in the dimensions");
        let referrers: Vec<_> = dims.iter().filter(|d| d.1 == Dim::Referrer).collect();
        assert_eq!((referrers.len(), referrers[0].3), (1, 1));
        // Kinds beyond the bound are counted value by value, themselves bounded: the 40 countries
        // take at most that many places in memory, the rest is "(other)".
        let countries: Vec<_> = dims.iter().filter(|d| d.1 == Dim::Country).collect();
        assert!(countries.len() <= KINDS_PER_FLUSH + DIM_VALUES_PER_FLUSH + 1);
        let other = countries.iter().find(|d| d.2 == OTHER_REFERRERS).unwrap();
        assert_eq!(
            other.3,
            40 - (countries.len() - 1) as u64,
            "every click is counted once"
        );
        // They travel with the day's delta through the journal.
        let (_, record) = counter.begin_flush();
        let deltas = decode_journal(&record).unwrap();
        let sum: u64 = deltas[0].dims.iter().map(|d| d.2).sum();
        assert_eq!(sum, 2 + 1 + 40);
        counter.end_flush(true);
        let compacted = counter.begin_compaction();
        assert_eq!(compacted[0].dims.iter().map(|d| d.2).sum::<u64>(), 43);
        counter.end_compaction(true);
        assert!(counter.pending("d").dims.is_empty());
    }
}
