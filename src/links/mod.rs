//! Short links: the API (`/api/v1/links…`, `/api/v1/groups`), the public redirect (`/{code}`),
//! click counting, statistics and QR codes.
//!
//! Reads on the redirect path go through [`cache::LinkCache`] (memory, else one short LMDB read
//! transaction); writes go through the group-commit writer; clicks are counted in memory
//! ([`clicks::ClickCounter`]) and flushed in batches.
//!
//! Invariant: the redirect never waits on the writer and never opens a write transaction.
//! Invariant: a link is keyed everywhere by its id ([`domains`]): its code on the default domain,
//! `domain/code` on another; what a user sees is the code and the domain apart.
//! Invariant: a link's target, password hash and statistics are shown only to the key that owns
//! it, except the target of an open link, which any key may restore.

pub mod analytics;
pub mod api;
pub mod book;
pub mod cache;
pub mod clicked;
pub mod clicks;
pub mod code;
pub mod domains;
pub mod limit;
pub mod pages;
pub mod password;
pub mod qr;
pub mod record;
pub mod redirect;
pub mod repo;
pub mod rules;
pub mod stats;
pub mod target;
pub mod transfer;
pub mod visitor;
pub mod watch;

use std::sync::Arc;

use http::HeaderValue;
use metrics::Counter;

use crate::config::{LinksConfig, ServerConfig};
use crate::store::Store;

/// Which of `shards` in-memory shards holds `code` (link cache, click counter).
///
/// The shard maps are `FxHashMap`s keyed by the same code with the same hash. hashbrown picks a
/// bucket from the hash's low bits and tags it with the top 7, so the shard must come from bits
/// neither uses: taking it from the low bits (`hash % 64`, as this code once did) left every key
/// of a shard with the same low 6 bits, i.e. starting its probe in one bucket of 64 (the warm
/// look-up bench: 212 ns then, 175–180 ns now; README, Performance). Not persisted: the shard of a
/// code may change between versions.
pub fn shard_of(code: &str, shards: usize) -> usize {
    use std::hash::BuildHasher;
    let hash = rustc_hash::FxBuildHasher.hash_one(code);
    (hash >> 32) as usize % shards
}

/// Redirect outcomes, as metric label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectOutcome {
    Found,
    NotFound,
    Expired,
    Disabled,
    PasswordForm,
    PasswordOk,
    PasswordWrong,
    PasswordLimited,
    /// The target share is dead: the 410 page.
    TargetDead,
    /// The target share is dead: to the link's fallback.
    TargetFallback,
    /// A visitor rule sent the visitor to its own URL.
    Rule,
    /// A visitor rule showed the "open in your browser" page.
    OpenInBrowser,
}

impl RedirectOutcome {
    const ALL: [RedirectOutcome; 12] = [
        RedirectOutcome::Found,
        RedirectOutcome::NotFound,
        RedirectOutcome::Expired,
        RedirectOutcome::Disabled,
        RedirectOutcome::PasswordForm,
        RedirectOutcome::PasswordOk,
        RedirectOutcome::PasswordWrong,
        RedirectOutcome::PasswordLimited,
        RedirectOutcome::TargetDead,
        RedirectOutcome::TargetFallback,
        RedirectOutcome::Rule,
        RedirectOutcome::OpenInBrowser,
    ];

    fn label(self) -> &'static str {
        match self {
            RedirectOutcome::Found => "found",
            RedirectOutcome::NotFound => "not_found",
            RedirectOutcome::Expired => "expired",
            RedirectOutcome::Disabled => "disabled",
            RedirectOutcome::PasswordForm => "password_form",
            RedirectOutcome::PasswordOk => "password_ok",
            RedirectOutcome::PasswordWrong => "password_wrong",
            RedirectOutcome::PasswordLimited => "password_limited",
            RedirectOutcome::TargetDead => "target_dead",
            RedirectOutcome::TargetFallback => "target_fallback",
            RedirectOutcome::Rule => "rule",
            RedirectOutcome::OpenInBrowser => "open_in_browser",
        }
    }
}

/// The short-link state every request shares.
pub struct LinkService {
    pub store: Arc<Store>,
    /// [`DataDirRole`] as its number.
    role: std::sync::atomic::AtomicU8,
    pub config: LinksConfig,
    /// `server.public_base_url`: the base of the short URLs handed out, and one of this service's
    /// own hosts (a link may not point at them).
    pub public_base_url: Option<String>,
    /// `server.listen`: the base of short URLs when neither the configuration nor the request
    /// names a host.
    pub listen: std::net::SocketAddr,
    /// The hosts that lead to this service whatever the request says: the public base URL's,
    /// `links.own_hosts`, the listen address (unless it is every address) and `localhost`,
    /// which stands for every loopback name and address ([`target::canonical_host`]).
    pub own_hosts: Vec<String>,
    /// `links.domains`: the domain of each request and link.
    pub domains: domains::Domains,
    pub cache: Arc<cache::LinkCache>,
    /// Watching share targets through the monitors' scheduler.
    pub targets: crate::monitors::watch::WatchHandle,
    pub clicks: Arc<clicks::ClickCounter>,
    /// Exact click counts of the links with `max_clicks`.
    pub limits: Arc<limit::ClickLimits>,
    /// The cluster's buckets of links and groups in cluster mode ([`book`]); `None` in
    /// single-node mode.
    pub cluster: Option<book::LinkBuckets>,
    pub attempts: password::AttemptLimiter,
    pub hasher: password::Hasher,
    /// `Cache-Control` of redirects, e.g. `private, max-age=90`.
    pub redirect_cache_control: HeaderValue,
    /// Registered once: the redirect path does no metric-registry lookup.
    redirects: [Counter; RedirectOutcome::ALL.len()],
    /// The statistics' calendar (`links.stats_timezone`).
    pub clock: analytics::StatsClock,
    /// `links.geoip_db`, when one is configured and opens.
    pub geo: Option<analytics::GeoDb>,
    /// When clicks were last folded into storage (the start of the next `link.clicked` period).
    last_compaction_ms: std::sync::atomic::AtomicU64,
    /// The size of the last click journal record (the next one's first allocation).
    last_journal_bytes: std::sync::atomic::AtomicUsize,
}

/// See [`LinkService::own_hosts`].
pub fn own_hosts(server: &ServerConfig, config: &LinksConfig) -> Vec<String> {
    let mut hosts: Vec<String> = config.own_hosts.clone();
    hosts.extend(config.domains.iter().cloned());
    hosts.push("localhost".to_owned());
    if let Some(base) = &server.public_base_url {
        let authority = base.split_once("://").map_or("", |(_, rest)| rest);
        hosts.push(
            api::host_of_authority(authority.split('/').next().unwrap_or_default()).to_owned(),
        );
    }
    if !server.listen.ip().is_unspecified() {
        hosts.push(server.listen.ip().to_string());
    }
    hosts
}

impl LinkService {
    /// Builds the service; call after the metrics recorder is installed.
    pub fn new(
        store: Arc<Store>,
        config: &LinksConfig,
        server: &ServerConfig,
        targets: crate::monitors::watch::WatchHandle,
        cluster: Option<book::LinkBuckets>,
    ) -> LinkService {
        LinkService {
            role: std::sync::atomic::AtomicU8::new(DataDirRole::InCharge as u8),
            targets,
            store,
            config: config.clone(),
            public_base_url: server.public_base_url.clone(),
            listen: server.listen,
            own_hosts: own_hosts(server, config),
            domains: domains::Domains::new(config),
            cache: Arc::new(cache::LinkCache::new(config.cache_max_entries)),
            clicks: Arc::default(),
            limits: Arc::default(),
            cluster,
            attempts: password::AttemptLimiter::new(
                config.password_max_failures,
                config.password_window,
            ),
            hasher: password::Hasher::new(),
            redirect_cache_control: HeaderValue::from_str(&format!(
                "private, max-age={}",
                config.redirect_max_age_s
            ))
            .expect("a number is a valid header value"),
            redirects: RedirectOutcome::ALL
                .map(|o| metrics::counter!("panlink_redirects_total", "outcome" => o.label())),
            last_compaction_ms: std::sync::atomic::AtomicU64::new(crate::timefmt::now_ms()),
            last_journal_bytes: std::sync::atomic::AtomicUsize::new(0),
            clock: analytics::StatsClock::new(&config.stats_timezone)
                .unwrap_or_else(|_| analytics::StatsClock::new("UTC").expect("UTC is a zone")),
            geo: config.geoip_db.as_deref().and_then(|path| {
                analytics::GeoDb::open(path)
                    .inspect_err(|err| tracing::error!(error = %err, "cannot read links.geoip_db: no geo statistics"))
                    .ok()
            }),
        }
    }

    /// What the monitors' scheduler tells of every verdict on a watched target.
    pub fn target_watcher(&self) -> Arc<dyn crate::monitors::watch::TargetWatcher> {
        Arc::new(watch::LinkTargets {
            cache: Arc::clone(&self.cache),
            default_domain: self.domains.default_name().map(str::to_owned),
            shared: self.cluster.as_ref().map(|buckets| watch::SharedTargets {
                links: buckets.links.clone(),
                membership: buckets.membership.clone(),
            }),
            changed: parking_lot::Mutex::default(),
        })
    }

    /// Human clicks of `code` counted so far: stored and still in memory (and, before this
    /// server is in charge, what the click journal of the server before it holds: this one does
    /// not fold it, and has not read it into memory).
    pub fn human_clicks(&self, code: &str) -> u64 {
        let foreign_journal = self.role() == DataDirRole::Standby;
        let stored = self
            .store
            .read(|txn, dbs| {
                let mut human = repo::click_totals(txn, dbs, code)?.human;
                if foreign_journal {
                    human += repo::journaled_human_clicks(txn, dbs, code)?;
                }
                Ok(human)
            })
            .unwrap_or(0);
        stored + self.clicks.pending(code).totals.human
    }

    /// Where this server stands toward the data dir (see [`DataDirRole`]). Links are read from
    /// storage on every redirect unless it is in charge; taking charge also starts the click
    /// limits again from the stored counts (the server before has written its last clicks by
    /// then).
    pub fn set_role(&self, role: DataDirRole) {
        self.role
            .store(role as u8, std::sync::atomic::Ordering::Release);
        self.cache.set_shared(role != DataDirRole::InCharge);
        if role == DataDirRole::InCharge {
            self.limits.forget_all();
        }
    }

    fn role(&self) -> DataDirRole {
        match self.role.load(std::sync::atomic::Ordering::Acquire) {
            0 => DataDirRole::Standby,
            1 => DataDirRole::InCharge,
            _ => DataDirRole::HandedOver,
        }
    }

    /// Counts one redirect request by outcome.
    pub fn count(&self, outcome: RedirectOutcome) {
        self.redirects[outcome as usize].increment(1);
    }

    /// Appends the clicks counted since the last flush to the click journal: one put. When the
    /// write fails, the clicks stay in memory for the next flush and are returned here.
    pub async fn flush_clicks(&self, store: &Store) -> Result<(), UnflushedClicks> {
        self.attempts.forget_expired();
        // One shard at a time (each visits only its codes clicked since the last flush), yielding
        // in between, so the redirects served by the same workers never wait for the whole flush.
        let flush = self.clicks.start_flush();
        let mut links = 0;
        let mut visits = 0;
        // Sized like the last record: a busy flush's record is megabytes, and growing it by
        // doubling copies it over and over.
        let mut entry = repo::JournalWriter::with_capacity(
            self.last_journal_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        for shard in 0..clicks::SHARDS {
            let (shard_links, shard_visits) = self.clicks.flush_shard(&flush, shard, &mut entry);
            links += shard_links;
            visits += shard_visits;
            tokio::task::yield_now().await;
        }
        if links == 0 {
            return Ok(());
        }
        self.last_journal_bytes
            .store(entry.deltas_bytes(), std::sync::atomic::Ordering::Relaxed);
        let entry = entry.finish();
        let committed = committed_or_logged(
            store
                .write(move |txn, dbs| repo::append_journal(txn, dbs, &entry))
                .await,
            links,
            "could not journal clicks; will retry",
        );
        // Committed: O(1) (the counts become "journaled" lazily); failed: a walk, off the workers.
        let counter = Arc::clone(&self.clicks);
        let _ = tokio::task::spawn_blocking(move || counter.end_flush(committed)).await;
        if committed {
            metrics::counter!("panlink_link_clicks_journaled_total").increment(visits);
            Ok(())
        } else {
            Err(UnflushedClicks { links, visits })
        }
    }

    /// Folds the journaled clicks into the links' rows and empties the journal: one write, in
    /// which each key whose webhooks want `link.clicked` gets one delivery with its links' counts
    /// since the last fold. Answers the webhooks to wake (after the commit).
    pub async fn compact_clicks(
        &self,
        store: &Store,
        events: crate::webhooks::EventSink,
    ) -> Vec<String> {
        let counter = Arc::clone(&self.clicks);
        let Ok(deltas) = tokio::task::spawn_blocking(move || counter.begin_compaction()).await
        else {
            return Vec::new();
        };
        if deltas.is_empty() {
            return Vec::new();
        }
        let links = deltas.len();
        let until = crate::timefmt::now_ms();
        let since = self
            .last_compaction_ms
            .swap(until, std::sync::atomic::Ordering::AcqRel);
        let default_domain = self.domains.default_name().map(str::to_owned);
        // Cluster mode: the other nodes fold the same clicks from the cluster's log; the record
        // goes to the outbox in this write, so the fold here never commits without it.
        let shared = self.cluster.as_ref().map(|_| repo::encode_deltas(&deltas));
        let result = store
            .write(move |txn, dbs| {
                repo::apply_clicks(txn, dbs, &deltas)?;
                repo::clear_journal(txn, dbs)?;
                if let Some(record) = &shared {
                    crate::store::outbox::push(txn, dbs, book::CLICKS_LOG, record)?;
                }
                clicked::queue(
                    txn,
                    dbs,
                    &deltas,
                    (since, until),
                    default_domain.as_deref(),
                    events,
                )
            })
            .await;
        let (committed, woken) = match result {
            Ok(woken) => (true, woken),
            Err(err) => (
                committed_or_logged(
                    Err(err),
                    links,
                    "could not fold clicks into the rows; will retry",
                ),
                Vec::new(),
            ),
        };
        let counter = Arc::clone(&self.clicks);
        let _ = tokio::task::spawn_blocking(move || counter.end_compaction(committed)).await;
        woken
    }

    /// Folds a click journal left by a crash into the rows (in cluster mode with its records
    /// for the other nodes), and moves dimension counts of the earlier layout into the current
    /// one (start-up, before serving).
    pub fn recover_clicks(&self, store: &Store) -> Result<(), crate::store::StoreError> {
        let outbox_log = self.cluster.as_ref().map(|_| book::CLICKS_LOG);
        let moved = store.write_now(repo::move_old_dims)?;
        if moved > 0 {
            tracing::info!(
                rows = moved,
                "moved click dimensions of the earlier layout into one row per link and day"
            );
        }
        let replayed = store.write_now(|txn, dbs| repo::replay_journal(txn, dbs, outbox_log))?;
        if replayed > 0 {
            tracing::info!(
                records = replayed,
                "folded the click journal of the last run into the rows"
            );
        }
        Ok(())
    }
}

/// Where a server stands toward its data dir during a handover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirRole {
    /// Serving beside the server before it, which still runs the data dir's duties (and folds
    /// its own click journal).
    Standby = 0,
    /// The only server: it caches links and folds the click journal.
    InCharge = 1,
    /// Its listener went to a new server; it finishes what it answers.
    HandedOver = 2,
}

/// Whether a click write committed; a failure is logged (its counts stay in memory and are
/// written again next time).
/// Clicks a flush could not write (they stay in memory for the next one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnflushedClicks {
    pub links: usize,
    pub visits: u64,
}

fn committed_or_logged(
    outcome: Result<(), crate::store::StoreError>,
    links: usize,
    what: &'static str,
) -> bool {
    match outcome {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = %err, links, "{what}");
            false
        }
    }
}

#[cfg(test)]
mod shard_tests {
    use std::hash::BuildHasher;

    #[test]
    fn a_shards_keys_spread_over_the_buckets_of_its_map() {
        // The keys of one shard must not share the low bits hashbrown takes the bucket from.
        let codes: Vec<String> = (0..20_000).map(|n| format!("c{n:06}")).collect();
        let in_shard: Vec<&String> = codes
            .iter()
            .filter(|code| super::shard_of(code, 64) == 7)
            .collect();
        assert!(in_shard.len() > 200, "{} codes in shard 7", in_shard.len());
        let low_bits: std::collections::HashSet<u64> = in_shard
            .iter()
            .map(|code| rustc_hash::FxBuildHasher.hash_one(code.as_str()) & 63)
            .collect();
        assert!(
            low_bits.len() > 48,
            "only {} of 64 bucket starts",
            low_bits.len()
        );
    }

    #[test]
    fn every_shard_gets_codes() {
        let mut counts = [0usize; 64];
        for n in 0..20_000 {
            counts[super::shard_of(&format!("c{n:06}"), 64)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 200), "{counts:?}");
    }
}
