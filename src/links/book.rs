//! Where short links are created, changed and deleted.
//!
//! In single-node mode each change is one write of the local LMDB. In cluster mode the record
//! of system is the cluster's `panlink_links` bucket (link id → [`LinkRecord`]): a change is
//! accepted there first (a new link by create-if-absent, so an alias or code is handed out once
//! across the cluster; every other change by compare-and-set on the revision read, retried on a
//! conflict), then applied to this node's LMDB before the answer. Every node follows the bucket
//! into its LMDB ([`follower`]) and drops the cached entries it changed, so the redirect keeps
//! reading the local cache and LMDB only.
//!
//! Groups have a bucket of their own, `panlink_groups`, kept the same way. Clicks stay counted
//! and folded on each node; each fold's deltas also go, through the outbox, to the cluster's
//! `panlink_clicks` log, from which every other node folds them once; the human clicks folded
//! also count against this node's `max_clicks` counters. Every node puts every link's target
//! on its monitors' schedule; each share is checked by the one live node it falls to, and each
//! state change learned goes into the bucket (`watch.rs`), from which every node's copy takes it.
//!
//! It must not write a link's record to LMDB in cluster mode other than by applying a change
//! the bucket accepted (or, for the target state, as the monitor's verdict does locally).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::LinkService;
use super::record::{GroupRecord, LinkRecord};
use super::repo::{self, ChangeOutcome, InsertOutcome, LinkPatch, NewLink};
use super::watch;
use crate::cluster::bucket::{Bucket, Change, MAX_ATTEMPTS, WriteError};
use crate::cluster::log::{Log, Record};
use crate::cluster::{Cluster, ClusterError, Membership};
use crate::error::ApiError;
use crate::monitors::watch::{Scheduled, WatchHandle};
use crate::store::{Dbs, StoreError, codec, replica};
use crate::timefmt;

/// The cluster bucket of links: link id → [`LinkRecord`].
pub const LINKS_BUCKET: &str = "panlink_links";

/// The cluster bucket of link groups: `owner.group id` → [`GroupRecord`] (a group is never
/// changed or deleted; the default group, the same on every node, is not in it).
pub const GROUPS_BUCKET: &str = "panlink_groups";

/// The cluster bucket of import claims: `owner.<idempotency key in hex>.<row>` → the link id
/// that row of that import has; entries expire with the idempotency key.
pub const IMPORTS_BUCKET: &str = "panlink_imports";

/// How long an import's idempotency key is remembered, on one node and in the cluster.
pub const IMPORT_KEYS_KEPT: Duration = Duration::from_secs(24 * 3600);

/// The cluster log of clicks: each record is the clicks one node folded in one compaction
/// (`repo::encode_deltas`), published from its outbox.
pub const CLICKS_LOG: &str = "panlink_clicks";

/// How long the clicks log keeps a record: a node down longer than this misses the clicks of
/// the others meanwhile (its own are kept in its outbox until published).
const CLICKS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often the outbox is looked at for clicks to publish.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// The cluster's buckets and log of short links.
#[derive(Clone)]
pub struct LinkBuckets {
    pub links: Bucket,
    pub groups: Bucket,
    pub clicks: Log,
    pub imports: Bucket,
    /// The live nodes: which one checks a watched share.
    pub membership: Membership,
}

impl LinkBuckets {
    /// Opens (creating them if needed) the buckets of links and groups and the clicks' log.
    pub async fn open(cluster: &Cluster) -> Result<LinkBuckets, ClusterError> {
        Ok(LinkBuckets {
            links: cluster.bucket(LINKS_BUCKET).await?,
            groups: cluster.bucket(GROUPS_BUCKET).await?,
            clicks: cluster.log(CLICKS_LOG, CLICKS_KEPT).await?,
            imports: cluster
                .scratch_bucket(IMPORTS_BUCKET, IMPORT_KEYS_KEPT)
                .await?,
            membership: cluster.membership(),
        })
    }
}

/// Links offered at once to the bucket on a node's first join.
const OFFER_IN_FLIGHT: usize = 64;

const KIND: &str = "shared link";

/// Creates a link of `owner`: `Created` with its record, or why not.
pub async fn create(
    links: &LinkService,
    owner: &str,
    new: NewLink,
) -> Result<InsertOutcome, ApiError> {
    let code_len = links.config.code_length;
    let Some(LinkBuckets { links: bucket, .. }) = &links.cluster else {
        let owner = owner.to_owned();
        let targets = links.targets.clone();
        let (outcome, scheduled) = links
            .store
            .write(move |txn, dbs| {
                let now = timefmt::now_ms();
                let outcome = repo::insert(txn, dbs, &owner, new, code_len, now)?;
                let scheduled = match &outcome {
                    InsertOutcome::Created(link) => watch::watch(&targets, txn, dbs, link, now)?,
                    _ => None,
                };
                Ok((outcome, scheduled))
            })
            .await?;
        links.targets.schedule(scheduled.into_iter().collect());
        if let InsertOutcome::Created(link) = &outcome {
            links.cache.invalidate(&link.code);
        }
        return Ok(outcome);
    };
    let now = timefmt::now_ms();
    let group = new.group_id;
    let domain = new.domain.clone();
    let group_id = {
        let owner = owner.to_owned();
        links
            .store
            .write(move |txn, dbs| repo::resolve_group(txn, dbs, &owner, group, now))
            .await?
    };
    let Some(group_id) = group_id else {
        return Ok(InsertOutcome::GroupNotFound);
    };
    let record = repo::new_record(owner, new, group_id, now);
    insert_record(links, bucket, record, domain.as_deref(), code_len).await
}

/// Cluster mode: creates the link `record` on `domain` under its alias (its `code`), or under
/// the first free random code of `code_len` characters when it has none.
pub(super) async fn insert_record(
    links: &LinkService,
    bucket: &Bucket,
    mut record: LinkRecord,
    domain: Option<&str>,
    code_len: usize,
) -> Result<InsertOutcome, ApiError> {
    if record.custom {
        record.code = super::domains::link_id(domain, &record.code).into_owned();
        return put_at(links, bucket, record).await;
    }
    for code in repo::code_candidates(code_len) {
        record.code = super::domains::link_id(domain, &code).into_owned();
        match put_at(links, bucket, record.clone()).await? {
            InsertOutcome::AliasTaken => continue,
            created => return Ok(created),
        }
    }
    tracing::error!("no free short code after every try: raise links.code_length");
    Err(ApiError::Internal)
}

/// Creates the link `record` under its `code` (the link id) if the bucket has no link there:
/// `Created` with the record as stored here, or `AliasTaken`.
pub(super) async fn put_at(
    links: &LinkService,
    bucket: &Bucket,
    record: LinkRecord,
) -> Result<InsertOutcome, ApiError> {
    let revision = match bucket.create(&record.code, codec::encode(&record)).await {
        Ok(revision) => revision,
        Err(WriteError::Exists) => return Ok(InsertOutcome::AliasTaken),
        Err(err) => return Err(err.into()),
    };
    let stored = apply_own(links, revision, Own::Put { before: None }, record).await?;
    Ok(InsertOutcome::Created(Box::new(stored)))
}

/// Applies `patch` to `owner`'s link `code`.
pub async fn update(
    links: &LinkService,
    owner: &str,
    code: &str,
    patch: LinkPatch,
) -> Result<ChangeOutcome, ApiError> {
    let Some(LinkBuckets { links: bucket, .. }) = &links.cluster else {
        let owner = owner.to_owned();
        let target_code = code.to_owned();
        let targets = links.targets.clone();
        let (outcome, scheduled) = links
            .store
            .write(move |txn, dbs| {
                let now = timefmt::now_ms();
                let before = repo::get(txn, dbs, &target_code)?;
                let outcome = repo::update(txn, dbs, &owner, &target_code, patch, now)?;
                let mut scheduled = None;
                if let (ChangeOutcome::Done(after), Some(before)) = (&outcome, before) {
                    scheduled = rewatch(&targets, txn, dbs, &before, after, now)?;
                }
                Ok((outcome, scheduled))
            })
            .await?;
        links.targets.schedule(scheduled.into_iter().collect());
        links.cache.invalidate(code);
        links.limits.forget(code);
        return Ok(outcome);
    };
    if let Some(group) = patch.group_id {
        let owner = owner.to_owned();
        let known = links
            .store
            .write(move |txn, dbs| {
                repo::resolve_group(txn, dbs, &owner, Some(group), timefmt::now_ms())
            })
            .await?;
        if known.is_none() {
            return Ok(ChangeOutcome::GroupNotFound);
        }
    }
    for _ in 0..MAX_ATTEMPTS {
        let Some((mut record, revision)) = read(bucket, code).await? else {
            return Ok(ChangeOutcome::NotFound);
        };
        if record.owner != owner {
            return Ok(ChangeOutcome::NotFound);
        }
        let before = record.clone();
        patch.clone().apply(&mut record, timefmt::now_ms());
        match bucket.update(code, codec::encode(&record), revision).await {
            Ok(revision) => {
                let before = Some(Box::new(before));
                let stored = apply_own(links, revision, Own::Put { before }, record).await?;
                return Ok(ChangeOutcome::Done(Box::new(stored)));
            }
            Err(WriteError::Conflict) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(WriteError::Contended.into())
}

/// Deletes `owner`'s link `code` with its counters and statistics.
pub async fn delete(
    links: &LinkService,
    owner: &str,
    code: &str,
) -> Result<ChangeOutcome, ApiError> {
    let Some(LinkBuckets { links: bucket, .. }) = &links.cluster else {
        let owner = owner.to_owned();
        let target_code = code.to_owned();
        let outcome = links
            .store
            .write(move |txn, dbs| {
                let outcome = repo::delete(txn, dbs, &owner, &target_code)?;
                if let ChangeOutcome::Done(link) = &outcome {
                    watch::unwatch(txn, dbs, link)?;
                }
                Ok(outcome)
            })
            .await?;
        links.cache.invalidate(code);
        if let ChangeOutcome::Done(link) = &outcome {
            links.clicks.forget(&link.code);
            links.limits.forget(&link.code);
        }
        return Ok(outcome);
    };
    for _ in 0..MAX_ATTEMPTS {
        let Some((record, revision)) = read(bucket, code).await? else {
            return Ok(ChangeOutcome::NotFound);
        };
        if record.owner != owner {
            return Ok(ChangeOutcome::NotFound);
        }
        match bucket.delete(code, revision).await {
            Ok(revision) => {
                let gone = apply_own(links, revision, Own::Delete, record).await?;
                return Ok(ChangeOutcome::Done(Box::new(gone)));
            }
            Err(WriteError::Conflict) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(WriteError::Contended.into())
}

/// A change this node made, as it applies it at once.
enum Own {
    /// A new link (`before: None`) or a changed one: stored, and its target watched here if
    /// it is new or its share changed.
    Put {
        before: Option<Box<LinkRecord>>,
    },
    Delete,
}

/// Applies this node's own accepted change at once (the follower skips it when it arrives) and
/// drops what the memory held of the link; the record as stored here (as deleted, for a delete).
async fn apply_own(
    links: &LinkService,
    revision: u64,
    own: Own,
    record: LinkRecord,
) -> Result<LinkRecord, ApiError> {
    let targets = links.targets.clone();
    let code = record.code.clone();
    let deleting = matches!(own, Own::Delete);
    let (stored, scheduled) = links
        .store
        .write(move |txn, dbs| {
            let now = timefmt::now_ms();
            let newer = replica::advance(txn, dbs, LINKS_BUCKET, &record.code, revision)?;
            match own {
                Own::Put { before } => {
                    let stored = if newer {
                        repo::put_copy(txn, dbs, record)?.0
                    } else {
                        // A later change of the link was applied first: show what is stored.
                        repo::get(txn, dbs, &record.code)?.unwrap_or(record)
                    };
                    // Watching is idempotent: done here even when the follower stored it first.
                    let scheduled = match before {
                        None => watch::watch(&targets, txn, dbs, &stored, now)?,
                        Some(before) => rewatch(&targets, txn, dbs, &before, &stored, now)?,
                    };
                    Ok((stored, scheduled))
                }
                Own::Delete => {
                    if newer {
                        repo::delete(txn, dbs, &record.owner, &record.code)?;
                    }
                    watch::unwatch(txn, dbs, &record)?;
                    Ok((record, None))
                }
            }
        })
        .await?;
    links.targets.schedule(scheduled.into_iter().collect());
    forget_cached(links, &code, deleting);
    Ok(stored)
}

/// Moves the target watch from `before`'s share to `after`'s when the link's target or its wish
/// to be watched changed; what to schedule.
fn rewatch(
    targets: &WatchHandle,
    txn: &mut heed::RwTxn,
    dbs: &Dbs,
    before: &LinkRecord,
    after: &LinkRecord,
    now_ms: u64,
) -> Result<Option<Scheduled>, StoreError> {
    if before.url == after.url && before.watch_target == after.watch_target {
        return Ok(None);
    }
    watch::unwatch(txn, dbs, before)?;
    watch::watch(targets, txn, dbs, after, now_ms)
}

/// What the memory holds of link `code` after it changed here: its cache entry, its click-limit
/// counter, and (deleted) its clicks not yet flushed.
fn forget_cached(links: &LinkService, code: &str, deleted: bool) {
    links.cache.invalidate(code);
    links.limits.forget(code);
    if deleted {
        links.clicks.forget(code);
    }
}

/// In cluster mode, starts the tasks that apply the buckets of links and groups and the clicks'
/// log to this node's LMDB (until `stop`) and publish this node's clicks, and answers the
/// revisions the buckets had at start, which this node must reach before it has every link and
/// group ([`caught_up`]); `None` in single-node mode. A node that never followed the buckets
/// first offers them the links and groups it already has, each only if its id is free.
pub async fn follower(
    links: &Arc<LinkService>,
    stop: CancellationToken,
) -> Result<Option<[u64; 2]>, ApiError> {
    let Some(buckets) = links.cluster.clone() else {
        return Ok(None);
    };
    let resume = |bucket: &Bucket| {
        let bucket = bucket.clone();
        let store = Arc::clone(&links.store);
        async move {
            bucket.resume_point(&store).await.map_err(|err| {
                tracing::warn!(bucket = bucket.name(), error = %err, "reading where this node's copy resumes failed");
                ApiError::ClusterUnavailable
            })
        }
    };
    let groups_resume = resume(&buckets.groups).await?;
    let links_resume = resume(&buckets.links).await?;
    // The per-node numbers folded still hold when the log is read again from its start (the
    // cluster's data was reset), so nothing is folded twice.
    let (clicks_followed, _) = buckets
        .clicks
        .resume_point(&links.store)
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "reading where this node's clicks resume failed");
            ApiError::ClusterUnavailable
        })?;
    if groups_resume.first_join {
        offer_local_groups(links, &buckets.groups).await?;
    }
    if links_resume.first_join {
        offer_local_links(links, &buckets.links).await?;
    }
    watch_every_link(links).await?;
    spawn_followers(
        links,
        &buckets,
        [
            groups_resume.followed,
            links_resume.followed,
            clicks_followed,
        ],
        &stop,
    );
    Ok(Some([groups_resume.latest, links_resume.latest]))
}

/// Spawns the followers of groups, links and clicks from `from` (their positions applied) and
/// the clicks' publisher. Kept out of [`follower`]'s future: the tasks' futures are large in
/// debug builds, and built here only in cluster mode.
#[inline(never)]
fn spawn_followers(
    links: &Arc<LinkService>,
    buckets: &LinkBuckets,
    from: [u64; 3],
    stop: &CancellationToken,
) {
    let store = Arc::clone(&links.store);
    tokio::spawn(Box::pin(buckets.groups.clone().follow(
        from[0],
        stop.clone(),
        move |changes: Vec<Change>| {
            let store = Arc::clone(&store);
            async move {
                let last = changes.last().map_or(0, |change| change.revision);
                store
                    .write(move |txn, dbs| apply_groups(txn, dbs, &changes, Some(last)))
                    .await
            }
        },
    )));
    let service = Arc::clone(links);
    tokio::spawn(Box::pin(buckets.links.clone().follow(
        from[1],
        stop.clone(),
        move |changes: Vec<Change>| {
            let links = Arc::clone(&service);
            async move {
                let last = changes.last().map_or(0, |change| change.revision);
                let targets = links.targets.clone();
                let (applied, scheduled) = links
                    .store
                    .write(move |txn, dbs| apply(txn, dbs, &targets, &changes, last))
                    .await?;
                links.targets.schedule(scheduled);
                for (code, deleted) in applied {
                    forget_cached(&links, &code, deleted);
                }
                Ok::<(), StoreError>(())
            }
        },
    )));
    let service = Arc::clone(links);
    let me = buckets.clicks.node().to_owned();
    tokio::spawn(Box::pin(buckets.clicks.clone().follow(
        from[2],
        stop.clone(),
        move |records: Vec<Record>| {
            let links = Arc::clone(&service);
            let me = me.clone();
            async move {
                let folded = links
                    .store
                    .write(move |txn, dbs| apply_clicks(txn, dbs, &me, &records))
                    .await?;
                // The other nodes' human clicks count against this node's click limits too.
                for (code, human) in folded {
                    links.limits.add(&code, human);
                }
                Ok::<(), StoreError>(())
            }
        },
    )));
    tokio::spawn(Box::pin(buckets.clicks.clone().publish_outbox(
        Arc::clone(&links.store),
        PUBLISH_EVERY,
        stop.clone(),
    )));
}

/// Waits until the follower applied `revisions` (see [`follower`]).
pub async fn caught_up(
    links: &LinkService,
    revisions: [u64; 2],
    timeout: std::time::Duration,
) -> bool {
    match &links.cluster {
        Some(buckets) => {
            let (groups, links) = futures_util::future::join(
                buckets.groups.wait_applied(revisions[0], timeout),
                buckets.links.wait_applied(revisions[1], timeout),
            )
            .await;
            groups && links
        }
        None => true,
    }
}

/// Folds the other nodes' click records into this node's rows, each once: a record from this
/// node was folded here when it was made, and a node's record whose number is not above the last
/// folded from that node is one published twice. Answers the human clicks folded, by link.
fn apply_clicks(
    txn: &mut heed::RwTxn,
    dbs: &Dbs,
    me: &str,
    records: &[Record],
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut human = Vec::new();
    for record in records {
        if record.node == me
            || !replica::advance(txn, dbs, CLICKS_LOG, &record.node, record.number)?
        {
            continue;
        }
        match repo::decode_journal(&record.payload) {
            Some(deltas) => {
                repo::apply_clicks(txn, dbs, &deltas)?;
                human.extend(
                    deltas
                        .into_iter()
                        .filter(|delta| delta.counts.human > 0)
                        .map(|delta| (delta.code, delta.counts.human)),
                );
            }
            None => tracing::error!(
                node = record.node,
                number = record.number,
                "an unreadable clicks record in the cluster's log; skipped"
            ),
        }
    }
    if let Some(last) = records.last() {
        replica::set_followed(txn, dbs, CLICKS_LOG, last.sequence)?;
    }
    Ok(human)
}

/// Creates a group of `owner` named `name`.
pub async fn create_group(
    links: &LinkService,
    owner: &str,
    name: String,
) -> Result<GroupRecord, ApiError> {
    let now = timefmt::now_ms();
    let Some(LinkBuckets { groups: bucket, .. }) = &links.cluster else {
        let owner = owner.to_owned();
        return Ok(links
            .store
            .write(move |txn, dbs| repo::create_group(txn, dbs, &owner, name, now))
            .await?);
    };
    // The next id after the highest this node knows; one another node took meanwhile is
    // refused by the bucket, and the next is tried.
    let known = links
        .store
        .read(|txn, dbs| repo::last_group_id(txn, dbs, owner))?;
    for id in (known + 1..).take(MAX_ATTEMPTS) {
        let group = GroupRecord {
            id,
            name: name.clone(),
            created_at_ms: now,
        };
        let key = group_key(owner, id);
        match bucket.create(&key, codec::encode(&group)).await {
            Ok(revision) => {
                let change = Change {
                    key,
                    revision,
                    value: Some(codec::encode(&group).into()),
                };
                links
                    .store
                    .write(move |txn, dbs| {
                        apply_groups(txn, dbs, std::slice::from_ref(&change), None)
                    })
                    .await?;
                return Ok(group);
            }
            Err(WriteError::Exists) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(WriteError::Contended.into())
}

/// The groups bucket's key of `owner`'s group `id`.
fn group_key(owner: &str, id: u64) -> String {
    format!("{owner}.{id}")
}

/// Applies the groups bucket's `changes` to LMDB (each only if newer than what is stored for it)
/// and records `followed`.
fn apply_groups(
    txn: &mut heed::RwTxn,
    dbs: &Dbs,
    changes: &[Change],
    followed: Option<u64>,
) -> Result<(), StoreError> {
    for change in changes {
        if !replica::advance(txn, dbs, GROUPS_BUCKET, &change.key, change.revision)? {
            continue;
        }
        let owner = change.key.rsplit_once('.').map(|(owner, _)| owner);
        let group = change
            .value
            .as_ref()
            .and_then(|bytes| codec::decode::<GroupRecord>(bytes, "shared group").ok());
        match (owner, group) {
            (Some(owner), Some(group)) => repo::put_group(txn, dbs, owner, &group)?,
            // Groups are never deleted; anything else no version of panlink wrote.
            _ => tracing::error!(
                key = change.key,
                revision = change.revision,
                "an unreadable group in the cluster's bucket; skipped"
            ),
        }
    }
    if let Some(revision) = followed {
        replica::set_followed(txn, dbs, GROUPS_BUCKET, revision)?;
    }
    Ok(())
}

/// Offers the bucket every group this node's LMDB holds beyond the default ones (a node's first
/// join); a group whose key the bucket has already is left alone.
async fn offer_local_groups(links: &LinkService, bucket: &Bucket) -> Result<(), ApiError> {
    let local = links.store.read(repo::all_groups)?;
    for (owner, group) in local {
        if group.id == super::record::DEFAULT_GROUP_ID {
            continue;
        }
        match bucket
            .create(&group_key(&owner, group.id), codec::encode(&group))
            .await
        {
            Ok(_) | Err(WriteError::Exists) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Offers the bucket every link this node's LMDB holds (a node's first join), at most
/// [`OFFER_IN_FLIGHT`] at once; a link whose id the bucket has already is left alone.
async fn offer_local_links(links: &LinkService, bucket: &Bucket) -> Result<(), ApiError> {
    // A page of records at a time: a data dir may hold millions of links.
    const PAGE: usize = 1_000;
    let (mut offered, mut total) = (0, 0);
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page: Vec<(Vec<u8>, Vec<u8>)> = links.store.read(|txn, dbs| {
            let from = match &after {
                Some(key) => std::ops::Bound::Excluded(key.as_slice()),
                None => std::ops::Bound::Unbounded,
            };
            dbs.links
                .range(txn, &(from, std::ops::Bound::Unbounded))?
                .take(PAGE)
                .map(|entry| {
                    let (key, bytes) = entry?;
                    Ok((key.to_vec(), bytes.to_vec()))
                })
                .collect()
        })?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = Some(last.clone());
        total += page.len();
        let mut offers = futures_util::stream::iter(page)
            .map(|(code, record)| async move {
                let code = String::from_utf8_lossy(&code).into_owned();
                bucket.create(&code, record).await
            })
            .buffer_unordered(OFFER_IN_FLIGHT);
        while let Some(outcome) = offers.next().await {
            match outcome {
                Ok(_) => offered += 1,
                Err(WriteError::Exists) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    if total > 0 {
        tracing::info!(
            links = offered,
            of = total,
            "offered this node's links to the cluster on its first join"
        );
    }
    Ok(())
}

/// The `meta` entry that says every link in this copy has its target on the schedule.
const EVERY_LINK_WATCHED: &[u8] = b"links/every_link_watched";

/// Puts the target of every link in this node's copy on its monitors' schedule, once per data
/// dir (a `meta` entry marks it done): a copy made before every node watched every link's target
/// has only the targets of the links this node made, and the shares that fall to this node must
/// be on its schedule. A page of links per write; the scheduler, not started yet, loads them.
async fn watch_every_link(links: &LinkService) -> Result<(), StoreError> {
    const PAGE: usize = 1_000;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let targets = links.targets.clone();
        let from = after.take();
        let last = links
            .store
            .write(move |txn, dbs| {
                if dbs.meta.get(txn, EVERY_LINK_WATCHED)?.is_some() {
                    return Ok(None);
                }
                let bound = match &from {
                    Some(key) => std::ops::Bound::Excluded(key.as_slice()),
                    None => std::ops::Bound::Unbounded,
                };
                let page: Vec<(Vec<u8>, Vec<u8>)> = dbs
                    .links
                    .range(txn, &(bound, std::ops::Bound::Unbounded))?
                    .take(PAGE)
                    .map(|entry| {
                        let (key, bytes) = entry?;
                        Ok((key.to_vec(), bytes.to_vec()))
                    })
                    .collect::<Result<_, StoreError>>()?;
                let now = timefmt::now_ms();
                for (_, bytes) in &page {
                    if let Ok(link) = codec::decode::<LinkRecord>(bytes, KIND) {
                        watch::watch(&targets, txn, dbs, &link, now)?;
                    }
                }
                let last = page.last().map(|(key, _)| key.clone());
                if last.is_none() {
                    dbs.meta.put(txn, EVERY_LINK_WATCHED, b"1")?;
                }
                Ok(last)
            })
            .await?;
        match last {
            Some(key) => after = Some(key),
            None => return Ok(()),
        }
    }
}

/// The link `code` as the bucket holds it now, with its revision.
pub(super) async fn read(
    bucket: &Bucket,
    code: &str,
) -> Result<Option<(LinkRecord, u64)>, ApiError> {
    let Some((bytes, revision)) = bucket.entry(code).await.map_err(ApiError::from)? else {
        return Ok(None);
    };
    Ok(Some((codec::decode::<LinkRecord>(&bytes, KIND)?, revision)))
}

/// What a follower's write changed: the codes, each with whether it was deleted, and the
/// watched targets to schedule.
type Applied = (Vec<(String, bool)>, Vec<Scheduled>);

/// Applies the bucket's `changes` to LMDB (each only if newer than what is stored for its
/// link) and records `followed`; every node watches every link's target (the scheduler checks
/// a share only on the node it falls to, see `watch.rs`).
fn apply(
    txn: &mut heed::RwTxn,
    dbs: &Dbs,
    targets: &WatchHandle,
    changes: &[Change],
    followed: u64,
) -> Result<Applied, StoreError> {
    let now = timefmt::now_ms();
    let mut scheduled = Vec::new();
    let mut applied = Vec::with_capacity(changes.len());
    for change in changes {
        if !replica::advance(txn, dbs, LINKS_BUCKET, &change.key, change.revision)? {
            continue;
        }
        match &change.value {
            Some(bytes) => match codec::decode::<LinkRecord>(bytes, KIND) {
                Ok(link) if link.code == change.key => {
                    let (stored, old) = repo::put_copy(txn, dbs, link)?;
                    let watching = match old {
                        None => watch::watch(targets, txn, dbs, &stored, now)?,
                        Some(old) => rewatch(targets, txn, dbs, &old, &stored, now)?,
                    };
                    scheduled.extend(watching);
                    applied.push((change.key.clone(), false));
                }
                // Skipped, not retried: a value no version of panlink wrote would stop the
                // follower for good.
                _ => tracing::error!(
                    key = change.key,
                    revision = change.revision,
                    "an unreadable link in the cluster's bucket; skipped"
                ),
            },
            None => {
                if let Some(link) = repo::get(txn, dbs, &change.key)? {
                    repo::delete(txn, dbs, &link.owner, &link.code)?;
                    watch::unwatch(txn, dbs, &link)?;
                }
                applied.push((change.key.clone(), true));
            }
        }
    }
    replica::set_followed(txn, dbs, LINKS_BUCKET, followed)?;
    Ok((applied, scheduled))
}
