//! Short links in LMDB: transaction-level functions run by the writer thread (writes) or in a
//! short read transaction (reads). Layout in [`super::record`].

use heed::{PutFlags, RoTxn, RwTxn};

use std::sync::Arc;

use super::analytics::{Dim, VisitorKind};
use super::code;
use super::record::{
    self, AccessType, ClickRow, ClickTotals, DEFAULT_GROUP_ID, DEFAULT_GROUP_NAME, GroupRecord,
    LinkRecord,
};
use crate::store::{Dbs, StoreError, codec};

const KIND: &str = "link";
const GROUP_KIND: &str = "link group";
/// Random codes tried per length before the code grows by one character.
const TRIES_PER_LENGTH: usize = 4;
/// Lengths tried beyond the configured one before giving up (astronomically unlikely).
const MAX_EXTRA_LENGTH: usize = 4;
/// Distinct referrer hosts stored per link; later ones count under [`OTHER_REFERRERS`].
pub const MAX_REF_HOSTS: u64 = 100;
/// The bucket for referrer hosts beyond [`MAX_REF_HOSTS`].
pub const OTHER_REFERRERS: &str = "(other)";

/// A link to create; everything validated by the caller.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub url: String,
    pub title: Option<String>,
    pub alias: Option<String>,
    /// A domain of `links.domains` other than the default (`None`: the default domain).
    pub domain: Option<String>,
    pub group_id: Option<u64>,
    pub expire_at_ms: Option<u64>,
    pub access: AccessType,
    pub password_hash: Option<String>,
    pub fallback_url: Option<String>,
    /// Watch the target if it is a share (the owner's wish; default yes).
    pub watch_target: bool,
    pub max_clicks: Option<u64>,
    pub tags: Vec<String>,
    pub utm: Option<record::Utm>,
    pub rules: Vec<super::rules::Rule>,
}

/// The outcome of [`insert`].
#[derive(Debug)]
pub enum InsertOutcome {
    /// Boxed: the other outcomes carry nothing.
    Created(Box<LinkRecord>),
    AliasTaken,
    GroupNotFound,
}

/// Stores a new link of `owner`: the alias, or a random code of `code_len` characters put with
/// no-overwrite in this transaction (retried on collision, lengthened if collisions repeat).
pub fn insert(
    txn: &mut RwTxn,
    dbs: &Dbs,
    owner: &str,
    new: NewLink,
    code_len: usize,
    now_ms: u64,
) -> Result<InsertOutcome, StoreError> {
    let Some(group_id) = resolve_group(txn, dbs, owner, new.group_id, now_ms)? else {
        return Ok(InsertOutcome::GroupNotFound);
    };
    let domain = new.domain.clone();
    let id = |code: &str| super::domains::link_id(domain.as_deref(), code).into_owned();
    let mut record = new_record(owner, new, group_id, now_ms);
    if record.custom {
        record.code = id(&record.code);
        if !put_new(txn, dbs, &record)? {
            return Ok(InsertOutcome::AliasTaken);
        }
    } else {
        let mut stored = false;
        for code in code_candidates(code_len) {
            record.code = id(&code);
            if put_new(txn, dbs, &record)? {
                stored = true;
                break;
            }
        }
        if !stored {
            return Err(StoreError::Corrupt("link code space"));
        }
    }
    reindex(txn, dbs, None, &record)?;
    // No click row yet: the first flush that counts a click writes it. (A deleted link's rows are
    // removed with it, so a code used again starts from nothing.) Two puts per create, one of
    // them at a random place in the B-tree, keep group commits small.
    Ok(InsertOutcome::Created(Box::new(record)))
}

/// The group a new link of `owner` goes to: `group`, or the default group (made if missing);
/// `None` if `group` is not one of `owner`'s.
pub fn resolve_group(
    txn: &mut RwTxn,
    dbs: &Dbs,
    owner: &str,
    group: Option<u64>,
    now_ms: u64,
) -> Result<Option<u64>, StoreError> {
    let id = group.unwrap_or(DEFAULT_GROUP_ID);
    Ok(group_exists(txn, dbs, owner, id, now_ms)?.then_some(id))
}

/// The record of a new link of `owner` in `group_id`; its `code` is the alias without the
/// domain, or empty when a random code is to be drawn.
pub fn new_record(owner: &str, new: NewLink, group_id: u64, now_ms: u64) -> LinkRecord {
    LinkRecord {
        custom: new.alias.is_some(),
        code: new.alias.unwrap_or_default(),
        url: new.url,
        title: new.title,
        owner: owner.to_owned(),
        group_id,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
        expire_at_ms: new.expire_at_ms,
        access: new.access,
        password_hash: new.password_hash,
        disabled: false,
        fallback_url: new.fallback_url,
        watch_target: new.watch_target,
        max_clicks: new.max_clicks,
        tags: new.tags,
        utm: new.utm,
        rules: new.rules,
        target: None,
    }
}

/// Random codes to try for a new link, in order: [`TRIES_PER_LENGTH`] of `code_len`
/// characters, then as many one character longer, up to [`MAX_EXTRA_LENGTH`] more (reserved
/// words skipped). Each code asked for after the first counts as a collision.
pub fn code_candidates(code_len: usize) -> impl Iterator<Item = String> {
    (0..=MAX_EXTRA_LENGTH)
        .flat_map(move |extra| (0..TRIES_PER_LENGTH).map(move |_| code_len + extra))
        .enumerate()
        .map(move |(attempt, len)| {
            if attempt > 0 {
                metrics::counter!("panlink_link_code_collisions_total").increment(1);
            }
            if len > code_len && attempt % TRIES_PER_LENGTH == 0 {
                tracing::warn!(len, "short codes collide often: raise links.code_length");
            }
            code::generate(len)
        })
        .filter(|code| !code::is_reserved(code))
}

/// Makes the indexes of a link (its owner's list, its tags) say what `new` says, where they said
/// what `old` said (`None`: a new link).
fn reindex(
    txn: &mut RwTxn,
    dbs: &Dbs,
    old: Option<&LinkRecord>,
    new: &LinkRecord,
) -> Result<(), StoreError> {
    let listed = |link: &LinkRecord| record::owner_key(&link.owner, link.created_at_ms, &link.code);
    match old {
        Some(old) if listed(old) == listed(new) && old.group_id == new.group_id => {}
        _ => {
            if let Some(old) = old {
                dbs.link_owner.delete(txn, &listed(old))?;
            }
            dbs.link_owner
                .put(txn, &listed(new), &new.group_id.to_be_bytes())?;
        }
    }
    match old {
        Some(old)
            if old.tags == new.tags
                && old.owner == new.owner
                && old.created_at_ms == new.created_at_ms => {}
        _ => {
            if let Some(old) = old {
                delete_tags(txn, dbs, old)?;
            }
            put_tags(txn, dbs, new)?;
        }
    }
    Ok(())
}

/// Stores `link` as another copy of it says it is (cluster mode): its record and indexes,
/// replacing what was stored under its code; the record as stored, and the one it replaced.
///
/// The target state stays this node's own while the link's target is unchanged: the node that
/// watches the share learns it, and a copy without it must not erase it.
pub fn put_copy(
    txn: &mut RwTxn,
    dbs: &Dbs,
    mut link: LinkRecord,
) -> Result<(LinkRecord, Option<LinkRecord>), StoreError> {
    let old = get(txn, dbs, &link.code)?;
    match &old {
        Some(old) if old.owner != link.owner => {
            // Another owner's link under the same code: it was deleted and the code reused.
            delete(txn, dbs, &old.owner, &old.code)?;
            reindex(txn, dbs, None, &link)?;
        }
        _ => {
            if let Some(old) = &old
                && link.target.is_none()
                && old.url == link.url
                && link.watch_target
            {
                link.target.clone_from(&old.target);
            }
            reindex(txn, dbs, old.as_ref(), &link)?;
        }
    }
    dbs.links
        .put(txn, link.code.as_bytes(), &codec::encode(&link))?;
    Ok((link, old))
}

/// Puts `record` under its code unless the code is taken; `false` when taken.
fn put_new(txn: &mut RwTxn, dbs: &Dbs, record: &LinkRecord) -> Result<bool, StoreError> {
    match dbs.links.put_with_flags(
        txn,
        PutFlags::NO_OVERWRITE,
        record.code.as_bytes(),
        &codec::encode(record),
    ) {
        Ok(()) => Ok(true),
        Err(heed::Error::Mdb(heed::MdbError::KeyExist)) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// The link stored under `code`.
pub fn get(txn: &RoTxn, dbs: &Dbs, code: &str) -> Result<Option<LinkRecord>, StoreError> {
    dbs.links
        .get(txn, code.as_bytes())?
        .map(|bytes| codec::decode(bytes, KIND))
        .transpose()
}

/// One page of `owner`'s links, newest first, optionally of one group; with the total count.
pub fn list(
    txn: &RoTxn,
    dbs: &Dbs,
    owner: &str,
    group: Option<u64>,
    page: usize,
    page_size: usize,
) -> Result<(usize, Vec<LinkRecord>), StoreError> {
    let skip = page.saturating_sub(1).saturating_mul(page_size);
    let mut total = 0;
    let mut out = Vec::with_capacity(page_size.min(1024));
    for entry in dbs.link_owner.rev_prefix_iter(txn, owner.as_bytes())? {
        let (key, value) = entry?;
        if let Some(group) = group
            && value != group.to_be_bytes()
        {
            continue;
        }
        total += 1;
        if total > skip && out.len() < page_size {
            let code = key
                .get(owner.len() + 8..)
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                .ok_or(StoreError::Corrupt("link index"))?;
            if let Some(link) = get(txn, dbs, code)? {
                out.push(link);
            }
        }
    }
    Ok((total, out))
}

/// The ids of every link of `owner` (oldest first).
pub fn codes_of(txn: &RoTxn, dbs: &Dbs, owner: &str) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for entry in dbs.link_owner.prefix_iter(txn, owner.as_bytes())? {
        let (key, _) = entry?;
        let code = key
            .get(owner.len() + 8..)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .ok_or(StoreError::Corrupt("link index"))?;
        out.push(code.to_owned());
    }
    Ok(out)
}

/// A change to a link; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct LinkPatch {
    pub url: Option<String>,
    /// `Some(None)` clears the title.
    pub title: Option<Option<String>>,
    /// `Some(None)` clears the expiry.
    pub expire_at_ms: Option<Option<u64>>,
    /// New access type with its password hash (`None` for open).
    pub access: Option<(AccessType, Option<String>)>,
    pub disabled: Option<bool>,
    pub group_id: Option<u64>,
    /// `Some(None)` clears the fallback.
    pub fallback_url: Option<Option<String>>,
    pub watch_target: Option<bool>,
    /// `Some(None)` removes the limit.
    pub max_clicks: Option<Option<u64>>,
    pub tags: Option<Vec<String>>,
    /// `Some(None)` removes the UTM parameters.
    pub utm: Option<Option<record::Utm>>,
    /// `Some(vec![])` removes every rule.
    pub rules: Option<Vec<super::rules::Rule>>,
}

/// The outcome of [`update`] and [`delete`].
#[derive(Debug)]
pub enum ChangeOutcome {
    /// Boxed: the other outcomes carry nothing.
    Done(Box<LinkRecord>),
    NotFound,
    GroupNotFound,
}

/// Applies `patch` to `owner`'s link `code` (another key's link is `NotFound`).
pub fn update(
    txn: &mut RwTxn,
    dbs: &Dbs,
    owner: &str,
    code: &str,
    patch: LinkPatch,
    now_ms: u64,
) -> Result<ChangeOutcome, StoreError> {
    let Some(mut link) = get(txn, dbs, code)?.filter(|link| link.owner == owner) else {
        return Ok(ChangeOutcome::NotFound);
    };
    if let Some(group) = patch.group_id
        && !group_exists(txn, dbs, owner, group, now_ms)?
    {
        return Ok(ChangeOutcome::GroupNotFound);
    }
    let old = link.clone();
    patch.apply(&mut link, now_ms);
    reindex(txn, dbs, Some(&old), &link)?;
    dbs.links.put(txn, code.as_bytes(), &codec::encode(&link))?;
    Ok(ChangeOutcome::Done(Box::new(link)))
}

impl LinkPatch {
    /// Changes `link` as the patch says (its group must have been checked), at `now_ms`.
    pub fn apply(self, link: &mut LinkRecord, now_ms: u64) {
        if let Some(group) = self.group_id {
            link.group_id = group;
        }
        if let Some(url) = self.url {
            if url != link.url {
                // Another target: what was known of the old one does not hold.
                link.target = None;
            }
            link.url = url;
        }
        if let Some(fallback) = self.fallback_url {
            link.fallback_url = fallback;
        }
        if let Some(max) = self.max_clicks {
            link.max_clicks = max;
        }
        if let Some(tags) = self.tags {
            link.tags = tags;
        }
        if let Some(rules) = self.rules {
            link.rules = rules;
        }
        if let Some(utm) = self.utm {
            link.utm = utm;
        }
        if let Some(watch) = self.watch_target {
            if !watch {
                link.target = None;
            }
            link.watch_target = watch;
        }
        if let Some(title) = self.title {
            link.title = title;
        }
        if let Some(expire) = self.expire_at_ms {
            link.expire_at_ms = expire;
        }
        if let Some((access, hash)) = self.access {
            link.access = access;
            link.password_hash = hash;
        }
        if let Some(disabled) = self.disabled {
            link.disabled = disabled;
        }
        link.updated_at_ms = now_ms;
    }
}

/// Deletes `owner`'s link `code` with its counters and statistics.
pub fn delete(
    txn: &mut RwTxn,
    dbs: &Dbs,
    owner: &str,
    code: &str,
) -> Result<ChangeOutcome, StoreError> {
    let Some(link) = get(txn, dbs, code)?.filter(|link| link.owner == owner) else {
        return Ok(ChangeOutcome::NotFound);
    };
    dbs.links.delete(txn, code.as_bytes())?;
    dbs.link_owner
        .delete(txn, &record::owner_key(owner, link.created_at_ms, code))?;
    dbs.link_clicks.delete(txn, code.as_bytes())?;
    delete_tags(txn, dbs, &link)?;
    clear_stats(txn, dbs, code)?;
    Ok(ChangeOutcome::Done(Box::new(link)))
}

fn put_tags(txn: &mut RwTxn, dbs: &Dbs, link: &LinkRecord) -> Result<(), StoreError> {
    for tag in &link.tags {
        let key = record::tag_key(&link.owner, tag, link.created_at_ms, &link.code);
        dbs.link_tags.put(txn, &key, &[])?;
    }
    Ok(())
}

fn delete_tags(txn: &mut RwTxn, dbs: &Dbs, link: &LinkRecord) -> Result<(), StoreError> {
    for tag in &link.tags {
        let key = record::tag_key(&link.owner, tag, link.created_at_ms, &link.code);
        dbs.link_tags.delete(txn, &key)?;
    }
    Ok(())
}

/// A page of `owner`'s links with `tag`, newest first, in `group` if given: `(total, page)`.
pub fn list_tagged(
    txn: &RoTxn,
    dbs: &Dbs,
    owner: &str,
    tag: &str,
    group: Option<u64>,
    page: usize,
    page_size: usize,
) -> Result<(usize, Vec<LinkRecord>), StoreError> {
    let prefix = record::tag_prefix(owner, tag);
    let skip = page.saturating_sub(1).saturating_mul(page_size);
    let mut total = 0;
    let mut out = Vec::with_capacity(page_size.min(1024));
    for entry in dbs.link_tags.rev_prefix_iter(txn, &prefix)? {
        let (key, _) = entry?;
        let code = key
            .get(prefix.len() + 8..)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .ok_or(StoreError::Corrupt("link tag index"))?;
        let Some(link) = get(txn, dbs, code)? else {
            continue;
        };
        if group.is_some_and(|g| g != link.group_id) {
            continue;
        }
        total += 1;
        if total > skip && out.len() < page_size {
            out.push(link);
        }
    }
    Ok((total, out))
}

/// Deletes the per-day, referrer and dimension rows of `code`.
fn clear_stats(txn: &mut RwTxn, dbs: &Dbs, code: &str) -> Result<(), StoreError> {
    let prefix = record::code_prefix(code);
    for db in [dbs.link_days, dbs.link_refs, dbs.link_day_dims] {
        let keys: Vec<Vec<u8>> = db
            .prefix_iter(txn, &prefix)?
            .map(|entry| entry.map(|(key, _)| key.to_vec()))
            .collect::<Result<_, _>>()?;
        for key in keys {
            db.delete(txn, &key)?;
        }
    }
    Ok(())
}

/// Creates a group of `owner` with the next id.
pub fn create_group(
    txn: &mut RwTxn,
    dbs: &Dbs,
    owner: &str,
    name: String,
    now_ms: u64,
) -> Result<GroupRecord, StoreError> {
    ensure_default_group(txn, dbs, owner, now_ms)?;
    let group = GroupRecord {
        id: last_group_id(txn, dbs, owner)? + 1,
        name,
        created_at_ms: now_ms,
    };
    put_group(txn, dbs, owner, &group)?;
    Ok(group)
}

/// The highest id of `owner`'s groups (the default group's, if it has no other).
pub fn last_group_id(txn: &RoTxn, dbs: &Dbs, owner: &str) -> Result<u64, StoreError> {
    let last = match dbs
        .link_groups
        .rev_prefix_iter(txn, owner.as_bytes())?
        .next()
    {
        Some(entry) => codec::decode::<GroupRecord>(entry?.1, GROUP_KIND)?.id,
        None => 0,
    };
    Ok(last.max(DEFAULT_GROUP_ID))
}

/// Stores `owner`'s `group` (new, or as another copy says it is).
pub fn put_group(
    txn: &mut RwTxn,
    dbs: &Dbs,
    owner: &str,
    group: &GroupRecord,
) -> Result<(), StoreError> {
    dbs.link_groups.put(
        txn,
        &record::group_key(owner, group.id),
        &codec::encode(group),
    )?;
    Ok(())
}

/// Every stored group with its owner.
pub fn all_groups(txn: &RoTxn, dbs: &Dbs) -> Result<Vec<(String, GroupRecord)>, StoreError> {
    let mut out = Vec::new();
    for entry in dbs.link_groups.iter(txn)? {
        let (key, bytes) = entry?;
        // The key is the owner's id followed by the group id (u64 BE).
        let owner = key
            .len()
            .checked_sub(8)
            .and_then(|end| std::str::from_utf8(&key[..end]).ok())
            .ok_or(StoreError::Corrupt(GROUP_KIND))?;
        out.push((owner.to_owned(), codec::decode(bytes, GROUP_KIND)?));
    }
    Ok(out)
}

/// `owner`'s groups, by id; the default group is always first (stored or not yet).
pub fn list_groups(
    txn: &RoTxn,
    dbs: &Dbs,
    owner: &str,
    owner_created_at_ms: u64,
) -> Result<Vec<GroupRecord>, StoreError> {
    let mut groups = Vec::new();
    for entry in dbs.link_groups.prefix_iter(txn, owner.as_bytes())? {
        groups.push(codec::decode::<GroupRecord>(entry?.1, GROUP_KIND)?);
    }
    if groups.first().is_none_or(|g| g.id != DEFAULT_GROUP_ID) {
        groups.insert(0, default_group(owner_created_at_ms));
    }
    Ok(groups)
}

/// Whether `owner` has group `id` (the default group always exists; it is stored on first use).
fn group_exists(
    txn: &mut RwTxn,
    dbs: &Dbs,
    owner: &str,
    id: u64,
    now_ms: u64,
) -> Result<bool, StoreError> {
    if id == DEFAULT_GROUP_ID {
        ensure_default_group(txn, dbs, owner, now_ms)?;
        return Ok(true);
    }
    Ok(dbs
        .link_groups
        .get(txn, &record::group_key(owner, id))?
        .is_some())
}

fn ensure_default_group(
    txn: &mut RwTxn,
    dbs: &Dbs,
    owner: &str,
    now_ms: u64,
) -> Result<(), StoreError> {
    let key = record::group_key(owner, DEFAULT_GROUP_ID);
    if dbs.link_groups.get(txn, &key)?.is_none() {
        dbs.link_groups
            .put(txn, &key, &codec::encode(&default_group(now_ms)))?;
    }
    Ok(())
}

fn default_group(created_at_ms: u64) -> GroupRecord {
    GroupRecord {
        id: DEFAULT_GROUP_ID,
        name: DEFAULT_GROUP_NAME.to_owned(),
        created_at_ms,
    }
}

/// Stored click totals of `code`.
pub fn click_totals(txn: &RoTxn, dbs: &Dbs, code: &str) -> Result<ClickTotals, StoreError> {
    Ok(click_row(txn, dbs, code)?.unwrap_or_default().totals)
}

fn click_row(txn: &RoTxn, dbs: &Dbs, code: &str) -> Result<Option<ClickRow>, StoreError> {
    Ok(dbs
        .link_clicks
        .get(txn, code.as_bytes())?
        .map(ClickRow::decode))
}

/// Per-day counts (human, bot, head) of `code` from day `first` on.
pub fn click_days(
    txn: &RoTxn,
    dbs: &Dbs,
    code: &str,
    first: u32,
) -> Result<Vec<(u32, ClickTotals)>, StoreError> {
    let prefix = record::code_prefix(code);
    let mut out = Vec::new();
    for entry in dbs.link_days.prefix_iter(txn, &prefix)? {
        let (key, value) = entry?;
        let day = key
            .get(prefix.len()..)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .ok_or(StoreError::Corrupt("link day"))?;
        if day >= first {
            out.push((day, ClickTotals::decode(value)));
        }
    }
    if let Some(row) = click_row(txn, dbs, code)?
        && row.day >= first
        && row.today != ClickTotals::default()
    {
        out.push((row.day, row.today));
    }
    Ok(out)
}

/// Referrer hosts of `code` with their human clicks, most first.
pub fn referrers(txn: &RoTxn, dbs: &Dbs, code: &str) -> Result<Vec<(String, u64)>, StoreError> {
    let prefix = record::code_prefix(code);
    let mut out = Vec::new();
    for entry in dbs.link_refs.prefix_iter(txn, &prefix)? {
        let (key, value) = entry?;
        let host = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
        out.push((host, ClickTotals::decode(value).human));
    }
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

/// Clicks counted in memory for one link on one day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClickDelta {
    pub code: String,
    pub day: u32,
    pub counts: ClickTotals,
    pub referrers: Vec<(String, u64)>,
    /// Human clicks per dimension and value, on `day`.
    pub dims: Vec<(Dim, String, u64)>,
}

/// Values kept per link, day and dimension in storage, besides "(other)".
pub const MAX_DIM_VALUES: usize = 20;

/// One link's clicks of one day by dimension and value, as the `link_day_dims` row holds them:
/// per value, the dimension (u8), the clicks (u64 LE), the value's length (u8) and bytes. The
/// values borrow the row's bytes or the counts being added.
#[derive(Default)]
struct DayDims<'a> {
    values: Vec<(Dim, &'a [u8], u64)>,
}

impl<'a> DayDims<'a> {
    fn decode(mut bytes: &'a [u8]) -> Option<DayDims<'a>> {
        let mut values = Vec::with_capacity(bytes.len() / 16);
        while let [dim, rest @ ..] = bytes {
            let dim = Dim::from_byte(*dim)?;
            let (clicks, rest) = rest.split_first_chunk::<8>()?;
            let (len, rest) = rest.split_first()?;
            let (value, rest) = rest.split_at_checked(usize::from(*len))?;
            values.push((dim, value, u64::from_le_bytes(*clicks)));
            bytes = rest;
        }
        Some(DayDims { values })
    }

    /// Appends the values as `(day, dim, value, clicks)` with owned text.
    fn owned_into(self, day: u32, out: &mut Vec<(u32, Dim, String, u64)>) {
        for (dim, value, clicks) in self.values {
            let text = String::from_utf8_lossy(value).into_owned();
            out.push((day, dim, text, clicks));
        }
    }

    fn encoded_len(&self) -> usize {
        self.values.iter().map(|v| 10 + v.1.len()).sum()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        for (dim, value, clicks) in &self.values {
            // Values come cut to 255 bytes at a character boundary (the journal's bound).
            let value = &value[..value.len().min(255)];
            out.push(dim.byte());
            out.extend_from_slice(&clicks.to_le_bytes());
            out.push(value.len() as u8);
            out.extend_from_slice(value);
        }
    }

    /// Adds `clicks` of `value`, keeping the most clicked values of its dimension: a new value
    /// takes the place of the least clicked one when it already has more clicks, which then goes
    /// to "(other)" (the space-saving way to keep the top values in bounded room).
    fn add(&mut self, dim: Dim, value: &'a [u8], clicks: u64) {
        let other = OTHER_REFERRERS.as_bytes();
        if let Some(kept) = self
            .values
            .iter_mut()
            .find(|(d, v, _)| *d == dim && *v == value)
        {
            kept.2 += clicks;
            return;
        }
        let mut kept = 0;
        let mut least: Option<usize> = None;
        for (i, (d, v, n)) in self.values.iter().enumerate() {
            if *d == dim && *v != other {
                kept += 1;
                if least.is_none_or(|l| *n < self.values[l].2) {
                    least = Some(i);
                }
            }
        }
        if value != other && kept < MAX_DIM_VALUES {
            self.values.push((dim, value, clicks));
            return;
        }
        let mut to_other = clicks;
        if value != other
            && let Some(least) = least
            && clicks > self.values[least].2
        {
            to_other = std::mem::replace(&mut self.values[least], (dim, value, clicks)).2;
        }
        match self
            .values
            .iter_mut()
            .find(|(d, v, _)| *d == dim && *v == other)
        {
            Some(bucket) => bucket.2 += to_other,
            None => self.values.push((dim, other, to_other)),
        }
    }
}

/// Adds one link's clicks of a past `day` by dimension and value to its `link_day_dims` row: one
/// read and one write. (The current day's are in the link's `link_clicks` row.)
fn add_day_dims<'a>(
    txn: &mut RwTxn,
    dbs: &Dbs,
    code: &str,
    day: u32,
    dims: impl IntoIterator<Item = (Dim, &'a [u8], u64)>,
) -> Result<(), StoreError> {
    let key = record::day_key(code, day);
    let stored = dbs
        .link_day_dims
        .get(txn, &key)?
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let mut row = DayDims::decode(&stored).ok_or(StoreError::Corrupt("link day dimensions"))?;
    for (dim, value, clicks) in dims {
        row.add(dim, value, clicks);
    }
    Ok(dbs.link_day_dims.put(txn, &key, &row.encode())?)
}

/// Moves the rows of the earlier layout (`link_dims`: one per link, day, dimension and value)
/// into `link_day_dims`; the number moved. Idempotent: moved rows are deleted in the same write.
pub fn move_old_dims(txn: &mut RwTxn, dbs: &Dbs) -> Result<usize, StoreError> {
    let mut old = Vec::new();
    for entry in dbs.link_dims.iter(txn)? {
        let (key, value) = entry?;
        old.push((key.to_vec(), value.to_vec()));
    }
    for (key, value) in &old {
        let parsed = key.iter().position(|&b| b == 0).and_then(|zero| {
            let code = std::str::from_utf8(&key[..zero]).ok()?;
            let rest = &key[zero + 1..];
            let day = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
            let dim = Dim::from_byte(*rest.get(4)?)?;
            let text = std::str::from_utf8(&rest[5..]).ok()?;
            let clicks = u64::from_le_bytes(value.as_slice().try_into().ok()?);
            Some((code, day, dim, text, clicks))
        });
        match parsed {
            Some((code, day, dim, text, clicks)) => {
                add_day_dims(txn, dbs, code, day, [(dim, text.as_bytes(), clicks)])?
            }
            None => tracing::error!("skipping an undecodable row of the earlier dimension layout"),
        }
    }
    dbs.link_dims.clear(txn)?;
    Ok(old.len())
}

/// A link's clicks by dimension and value on days `from..=to`: `(day, dim, value, clicks)`.
pub fn dims_between(
    txn: &RoTxn,
    dbs: &Dbs,
    code: &str,
    from: u32,
    to: u32,
) -> Result<Vec<(u32, Dim, String, u64)>, StoreError> {
    let start = record::day_key(code, from);
    let end = record::day_key(code, to.saturating_add(1));
    let range = (
        std::ops::Bound::Included(start.as_slice()),
        std::ops::Bound::Excluded(end.as_slice()),
    );
    let prefix_len = record::code_prefix(code).len();
    let mut out = Vec::new();
    for entry in dbs.link_day_dims.range(txn, &range)? {
        let (key, bytes) = entry?;
        let day = key
            .get(prefix_len..)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes);
        let (Some(day), Some(row)) = (day, DayDims::decode(bytes)) else {
            return Err(StoreError::Corrupt("link day dimensions"));
        };
        row.owned_into(day, &mut out);
    }
    // The current day's, in the link's click row (a day may have both: a sum is what counts).
    if let Some(bytes) = dbs.link_clicks.get(txn, code.as_bytes())? {
        let day = ClickRow::decode(bytes).day;
        let today = DayDims::decode(bytes.get(64..).unwrap_or_default())
            .ok_or(StoreError::Corrupt("link click row"))?;
        if (from..=to).contains(&day) {
            today.owned_into(day, &mut out);
        }
    }
    Ok(out)
}

/// Adds counted clicks to the stored totals, days and referrers; the clicks of a deleted link are
/// dropped. Per link and compaction: one read and one write of its row (the current day lives in
/// it; a past day moves to `link_days` once, when the next day begins), and a read of the link
/// itself for its first clicks.
pub fn apply_clicks(txn: &mut RwTxn, dbs: &Dbs, deltas: &[ClickDelta]) -> Result<(), StoreError> {
    for delta in deltas {
        let stored = dbs
            .link_clicks
            .get(txn, delta.code.as_bytes())?
            .map(<[u8]>::to_vec);
        let mut row = match &stored {
            Some(bytes) => ClickRow::decode(bytes),
            // The first clicks of a link that still exists (a deleted one's are dropped).
            None if dbs.links.get(txn, delta.code.as_bytes())?.is_some() => ClickRow {
                day: delta.day,
                ..ClickRow::default()
            },
            None => continue,
        };
        // The current day's dimensions ride in the same row, after its 64 bytes.
        let tail = stored
            .as_deref()
            .and_then(|b| b.get(64..))
            .unwrap_or_default();
        let mut today_dims = DayDims::decode(tail).ok_or(StoreError::Corrupt("link click row"))?;
        row.totals.add(&delta.counts);
        if delta.counts != ClickTotals::default() {
            if delta.day == row.day {
                row.today.add(&delta.counts);
            } else if delta.day > row.day {
                if row.today != ClickTotals::default() {
                    add_to_day(txn, dbs, &delta.code, row.day, &row.today)?;
                }
                if !today_dims.values.is_empty() {
                    let past = std::mem::take(&mut today_dims.values);
                    add_day_dims(txn, dbs, &delta.code, row.day, past)?;
                }
                row.day = delta.day;
                row.today = delta.counts;
            } else {
                // Counted before midnight, flushed after the row moved on (rare).
                add_to_day(txn, dbs, &delta.code, delta.day, &delta.counts)?;
            }
        }
        for (host, clicks) in &delta.referrers {
            let mut key = record::ref_key(&delta.code, host);
            let mut count = match dbs.link_refs.get(txn, &key)? {
                Some(bytes) => ClickTotals::decode(bytes).human,
                None if row.totals.ref_hosts < MAX_REF_HOSTS => {
                    row.totals.ref_hosts += 1;
                    0
                }
                None => {
                    key = record::ref_key(&delta.code, OTHER_REFERRERS);
                    dbs.link_refs
                        .get(txn, &key)?
                        .map_or(0, |bytes| ClickTotals::decode(bytes).human)
                }
            };
            count += clicks;
            dbs.link_refs.put(txn, &key, &count.to_le_bytes())?;
        }
        if delta.day == row.day {
            for (dim, value, clicks) in &delta.dims {
                today_dims.add(*dim, value.as_bytes(), *clicks);
            }
        } else if !delta.dims.is_empty() {
            // Another day's (counted before midnight and flushed after, rare): its own row.
            let dims = delta.dims.iter().map(|(d, v, n)| (*d, v.as_bytes(), *n));
            add_day_dims(txn, dbs, &delta.code, delta.day, dims)?;
        }
        let mut bytes = Vec::with_capacity(64 + today_dims.encoded_len());
        bytes.extend_from_slice(&row.encode());
        today_dims.encode_into(&mut bytes);
        dbs.link_clicks.put(txn, delta.code.as_bytes(), &bytes)?;
    }
    Ok(())
}

fn add_to_day(
    txn: &mut RwTxn,
    dbs: &Dbs,
    code: &str,
    day: u32,
    counts: &ClickTotals,
) -> Result<(), StoreError> {
    let key = record::day_key(code, day);
    let mut stored = dbs
        .link_days
        .get(txn, &key)?
        .map(ClickTotals::decode)
        .unwrap_or_default();
    stored.add(counts);
    dbs.link_days.put(txn, &key, &stored.encode()[..24])?;
    Ok(())
}

/// Appends one click journal record (the encoded deltas of one flush).
pub fn append_journal(txn: &mut RwTxn, dbs: &Dbs, entry: &[u8]) -> Result<(), StoreError> {
    let next = match dbs.link_click_log.last(txn)? {
        Some((key, _)) => <[u8; 8]>::try_from(key)
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt("click journal key"))?
            .wrapping_add(1),
        None => 1,
    };
    dbs.link_click_log.put(txn, &next.to_be_bytes(), entry)?;
    Ok(())
}

/// Empties the click journal (its counts are in the rows now).
pub fn clear_journal(txn: &mut RwTxn, dbs: &Dbs) -> Result<(), StoreError> {
    dbs.link_click_log.clear(txn)?;
    Ok(())
}

/// Human clicks of `code` in the click journal (counted, not yet folded into its row).
pub fn journaled_human_clicks(txn: &RoTxn, dbs: &Dbs, code: &str) -> Result<u64, StoreError> {
    let mut human = 0;
    for entry in dbs.link_click_log.iter(txn)? {
        let deltas = decode_journal(entry?.1).unwrap_or_default();
        human += deltas
            .iter()
            .filter(|delta| delta.code == code)
            .map(|delta| delta.counts.human)
            .sum::<u64>();
    }
    Ok(human)
}

/// Folds a journal left by a crash into the rows and empties it; the number of records folded.
/// Undecodable records are skipped (and logged), never fatal.
pub fn replay_journal(
    txn: &mut RwTxn,
    dbs: &Dbs,
    outbox_log: Option<&str>,
) -> Result<usize, StoreError> {
    let mut entries = Vec::new();
    for entry in dbs.link_click_log.iter(txn)? {
        entries.push(entry?.1.to_vec());
    }
    for bytes in &entries {
        match decode_journal(bytes) {
            Some(deltas) => {
                apply_clicks(txn, dbs, &deltas)?;
                // Cluster mode: the other nodes fold the same record from the cluster's log.
                if let Some(log) = outbox_log {
                    crate::store::outbox::push(txn, dbs, log, bytes)?;
                }
            }
            None => tracing::error!("skipping an undecodable click journal record"),
        }
    }
    clear_journal(txn, dbs)?;
    Ok(entries.len())
}

/// The first two bytes of a click journal record of the second format (with dimensions): no
/// record of the first format starts so (a code is never 255 bytes and never holds 0x02).
pub const JOURNAL_V2: [u8; 2] = [0xFF, 0x02];
/// The first two bytes of a record of the third format (dimensions and visitor kinds).
pub const JOURNAL_V3: [u8; 2] = [0xFF, 0x03];

/// A click journal record being written, in the third format:
/// - [`JOURNAL_V3`], then the offset of the kinds' table (u32);
/// - per delta: the code (u8 length + bytes), the day (u32), human, bot, head (u64); the
///   referrers (u16 count; u8 length + host, u64 clicks each); the values counted one by one
///   (u16 count; dimension u8, u8 length + value, u64 clicks each); the visitor kinds (u16 count;
///   kind number u32, u64 clicks each: every value of the kind has these clicks);
/// - the kinds' table: u32 count; per kind, u8 count of values, each a dimension u8 and u8 length
///   + value.
///
/// Integers are little-endian. A kind is written once per record however many links it clicked:
/// a click's six or eight values cost the journal a number, not their bytes.
pub struct JournalWriter {
    out: Vec<u8>,
    /// Kinds by identity (the `Arc`'s address, kept alive by `kinds` meanwhile) → their number.
    numbers: rustc_hash::FxHashMap<usize, u32>,
    kinds: Vec<Arc<VisitorKind>>,
}

impl JournalWriter {
    /// A record whose deltas are expected to take about `bytes`.
    pub fn with_capacity(bytes: usize) -> JournalWriter {
        let mut out = Vec::with_capacity(bytes.max(6));
        out.extend_from_slice(&JOURNAL_V3);
        out.extend_from_slice(&0u32.to_le_bytes());
        JournalWriter {
            out,
            numbers: rustc_hash::FxHashMap::default(),
            kinds: Vec::new(),
        }
    }

    /// Appends one delta.
    pub fn push<'a>(
        &mut self,
        code: &str,
        day: u32,
        counts: &ClickTotals,
        refs: impl IntoIterator<Item = (&'a str, u64)>,
        values: impl IntoIterator<Item = (Dim, &'a str, u64)>,
        kinds: impl IntoIterator<Item = (&'a Arc<VisitorKind>, u64)>,
    ) {
        let JournalWriter {
            out,
            numbers,
            kinds: known,
        } = self;
        // Codes are at most 64 bytes and hosts at most 253 (both checked where they come from).
        push_text(out, code);
        out.extend_from_slice(&day.to_le_bytes());
        for n in [counts.human, counts.bot, counts.head] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        push_list(out, refs, |out, (host, n)| {
            push_text(out, host);
            out.extend_from_slice(&n.to_le_bytes());
        });
        push_list(out, values, |out, (dim, value, n)| {
            out.push(dim.byte());
            push_text(out, value);
            out.extend_from_slice(&n.to_le_bytes());
        });
        push_list(out, kinds, |out, (kind, n)| {
            let next = known.len() as u32;
            let number = *numbers
                .entry(Arc::as_ptr(kind) as usize)
                .or_insert_with(|| {
                    known.push(Arc::clone(kind));
                    next
                });
            out.extend_from_slice(&number.to_le_bytes());
            out.extend_from_slice(&n.to_le_bytes());
        });
    }

    /// The deltas' bytes so far (the table not counted).
    pub fn deltas_bytes(&self) -> usize {
        self.out.len()
    }

    /// The record: the deltas, then the kinds' table.
    pub fn finish(self) -> Vec<u8> {
        let mut out = self.out;
        let table = u32::try_from(out.len()).unwrap_or(u32::MAX);
        out[2..6].copy_from_slice(&table.to_le_bytes());
        out.extend_from_slice(&(self.kinds.len() as u32).to_le_bytes());
        for kind in &self.kinds {
            let at = out.len();
            out.push(0);
            let mut count = 0u8;
            for (dim, value) in kind.values() {
                out.push(dim.byte());
                push_text(&mut out, value);
                count += 1;
            }
            out[at] = count;
        }
        out
    }
}

/// A u16 count, then each item as `write` puts it (at most `u16::MAX`; the count is written once
/// the items are, since they come from an iterator).
fn push_list<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T),
) {
    let at = out.len();
    out.extend_from_slice(&0u16.to_le_bytes());
    let mut count: u16 = 0;
    for item in items.into_iter().take(usize::from(u16::MAX)) {
        write(out, item);
        count += 1;
    }
    out[at..at + 2].copy_from_slice(&count.to_le_bytes());
}

/// A u8 length and the text, cut to 255 bytes at a character boundary.
fn push_text(out: &mut Vec<u8>, text: &str) {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.push(end as u8);
    out.extend_from_slice(&text.as_bytes()[..end]);
}

/// `deltas` as one journal record (what [`decode_journal`] reads back): how a node's folded
/// clicks travel to the others in cluster mode.
pub fn encode_deltas(deltas: &[ClickDelta]) -> Vec<u8> {
    let mut out = JournalWriter::with_capacity(deltas.len() * 40);
    for delta in deltas {
        out.push(
            &delta.code,
            delta.day,
            &delta.counts,
            delta.referrers.iter().map(|(host, n)| (host.as_str(), *n)),
            delta
                .dims
                .iter()
                .map(|(dim, value, n)| (*dim, value.as_str(), *n)),
            [],
        );
    }
    out.finish()
}

/// Decodes a click journal record of any format; `None` if the bytes are not one.
pub fn decode_journal(mut bytes: &[u8]) -> Option<Vec<ClickDelta>> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = bytes.split_at_checked(n)?;
        *bytes = rest;
        Some(head)
    }
    fn u64_of(bytes: &mut &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(take(bytes, 8)?.try_into().ok()?))
    }
    fn u16_of(bytes: &mut &[u8]) -> Option<u16> {
        Some(u16::from_le_bytes(take(bytes, 2)?.try_into().ok()?))
    }
    fn u32_of(bytes: &mut &[u8]) -> Option<u32> {
        Some(u32::from_le_bytes(take(bytes, 4)?.try_into().ok()?))
    }
    fn text_of(bytes: &mut &[u8]) -> Option<String> {
        let len = usize::from(take(bytes, 1)?[0]);
        Some(std::str::from_utf8(take(bytes, len)?).ok()?.to_owned())
    }
    let format = if bytes.starts_with(&JOURNAL_V3) {
        3
    } else if bytes.starts_with(&JOURNAL_V2) {
        2
    } else {
        1
    };
    let mut kinds: Vec<Vec<(Dim, String)>> = Vec::new();
    if format == 3 {
        let whole = bytes;
        bytes = &bytes[JOURNAL_V3.len()..];
        let table = usize::try_from(u32_of(&mut bytes)?).ok()?;
        let mut rest = whole.get(table..)?;
        bytes = whole.get(JOURNAL_V3.len() + 4..table)?;
        for _ in 0..u32_of(&mut rest)? {
            let count = take(&mut rest, 1)?[0];
            let mut values = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                let dim = Dim::from_byte(take(&mut rest, 1)?[0])?;
                values.push((dim, text_of(&mut rest)?));
            }
            kinds.push(values);
        }
    } else if format == 2 {
        bytes = &bytes[JOURNAL_V2.len()..];
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let code = text_of(&mut bytes)?;
        let day = u32_of(&mut bytes)?;
        let counts = ClickTotals {
            human: u64_of(&mut bytes)?,
            bot: u64_of(&mut bytes)?,
            head: u64_of(&mut bytes)?,
            ref_hosts: 0,
        };
        let refs = u16_of(&mut bytes)?;
        let mut referrers = Vec::with_capacity(usize::from(refs));
        for _ in 0..refs {
            let host = text_of(&mut bytes)?;
            referrers.push((host, u64_of(&mut bytes)?));
        }
        let mut dims = Vec::new();
        if format >= 2 {
            for _ in 0..u16_of(&mut bytes)? {
                let dim = Dim::from_byte(take(&mut bytes, 1)?[0])?;
                let value = text_of(&mut bytes)?;
                dims.push((dim, value, u64_of(&mut bytes)?));
            }
        }
        if format >= 3 {
            for _ in 0..u16_of(&mut bytes)? {
                let kind = kinds.get(usize::try_from(u32_of(&mut bytes)?).ok()?)?;
                let n = u64_of(&mut bytes)?;
                dims.extend(kind.iter().map(|(dim, value)| (*dim, value.clone(), n)));
            }
        }
        out.push(ClickDelta {
            code,
            day,
            counts,
            referrers,
            dims,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn store() -> (tempfile::TempDir, std::sync::Arc<Store>) {
        Store::temporary()
    }

    #[test]
    fn a_dimension_keeps_its_most_clicked_values_and_the_rest_as_other() {
        let (_dir, store) = store();
        let add = |txn: &mut RwTxn, dbs: &Dbs, day: u32, dim: Dim, value: &str, n: u64| {
            add_day_dims(txn, dbs, "c", day, [(dim, value.as_bytes(), n)])
        };
        store
            .write_now(|txn, dbs| {
                // Twenty values with 2 clicks each fill the room.
                for n in 0..MAX_DIM_VALUES {
                    add(txn, dbs, 7, Dim::Os, &format!("v{n}"), 2)?;
                }
                // One click of a new value: less than the least kept, so it goes to "(other)".
                add(txn, dbs, 7, Dim::Os, "rare", 1)?;
                // Five clicks of another: it takes the least kept value's place, whose two clicks
                // go to "(other)".
                add(txn, dbs, 7, Dim::Os, "popular", 5)?;
                // Clicks the counters already put in "(other)" join it, taking no value's place.
                add(txn, dbs, 7, Dim::Os, OTHER_REFERRERS, 3)?;
                // Another day and dimension have room of their own.
                add(txn, dbs, 8, Dim::Os, "rare", 1)?;
                add(txn, dbs, 7, Dim::Country, "CN", 4)
            })
            .unwrap();
        let rows = store
            .read(|txn, dbs| dims_between(txn, dbs, "c", 7, 8))
            .unwrap();
        let get = |day: u32, dim: Dim, value: &str| {
            rows.iter()
                .find(|(d, m, v, _)| *d == day && *m == dim && v == value)
                .map(|r| r.3)
        };
        assert_eq!(get(7, Dim::Os, "popular"), Some(5));
        assert_eq!(get(7, Dim::Os, "rare"), None);
        assert_eq!(get(7, Dim::Os, OTHER_REFERRERS), Some(1 + 2 + 3));
        let kept = rows
            .iter()
            .filter(|(d, m, v, _)| *d == 7 && *m == Dim::Os && v != OTHER_REFERRERS)
            .count();
        assert_eq!(kept, MAX_DIM_VALUES);
        let total: u64 = rows
            .iter()
            .filter(|(d, m, ..)| *d == 7 && *m == Dim::Os)
            .map(|r| r.3)
            .sum();
        assert_eq!(
            total,
            2 * MAX_DIM_VALUES as u64 + 1 + 5 + 3,
            "no click is lost"
        );
        assert_eq!(get(8, Dim::Os, "rare"), Some(1));
        assert_eq!(get(7, Dim::Country, "CN"), Some(4));
        // Deleting the link's statistics takes these rows too.
        store
            .write_now(|txn, dbs| clear_stats(txn, dbs, "c"))
            .unwrap();
        assert!(
            store
                .read(|txn, dbs| dims_between(txn, dbs, "c", 0, 99))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_current_days_dimensions_ride_in_the_click_row_and_move_out_when_the_day_turns() {
        let (_dir, store) = store();
        // The fold only asks whether the link exists.
        store
            .write_now(|txn, dbs| Ok(dbs.links.put(txn, b"c", b"{}")?))
            .unwrap();
        let delta = |day: u32, human: u64, dims: &[(Dim, &str, u64)]| ClickDelta {
            code: "c".to_owned(),
            day,
            counts: ClickTotals {
                human,
                ..ClickTotals::default()
            },
            referrers: Vec::new(),
            dims: dims
                .iter()
                .map(|(d, v, n)| (*d, (*v).to_owned(), *n))
                .collect(),
        };
        let fold = |deltas: Vec<ClickDelta>| {
            store
                .write_now(move |txn, dbs| apply_clicks(txn, dbs, &deltas))
                .unwrap()
        };
        let dims = |from, to| {
            let mut rows = store
                .read(|txn, dbs| dims_between(txn, dbs, "c", from, to))
                .unwrap();
            rows.sort();
            rows
        };
        fold(vec![delta(7, 2, &[(Dim::Os, "ios", 2)])]);
        fold(vec![delta(
            7,
            1,
            &[(Dim::Os, "ios", 1), (Dim::Language, "zh", 1)],
        )]);
        // Day 7's are in the click row: no row of their own yet.
        let own_rows = store
            .read(|txn, dbs| Ok(dbs.link_day_dims.len(txn)?))
            .unwrap();
        assert_eq!(own_rows, 0);
        assert_eq!(
            dims(7, 7),
            vec![
                (7, Dim::Os, "ios".to_owned(), 3),
                (7, Dim::Language, "zh".to_owned(), 1)
            ]
        );
        // Day 8 begins: day 7's move to their own row; a late click of day 7 joins them there.
        fold(vec![
            delta(8, 1, &[(Dim::Os, "android", 1)]),
            delta(7, 1, &[(Dim::Os, "ios", 1)]),
        ]);
        assert_eq!(
            dims(0, 99),
            vec![
                (7, Dim::Os, "ios".to_owned(), 4),
                (7, Dim::Language, "zh".to_owned(), 1),
                (8, Dim::Os, "android".to_owned(), 1)
            ]
        );
        assert_eq!(dims(8, 8), vec![(8, Dim::Os, "android".to_owned(), 1)]);
        let totals = store.read(|txn, dbs| click_totals(txn, dbs, "c")).unwrap();
        assert_eq!(
            totals.human, 5,
            "the row's counts are unchanged by the dimensions it holds"
        );
    }

    #[test]
    fn rows_of_the_earlier_dimension_layout_move_into_one_row_per_day() {
        let (_dir, store) = store();
        let old_key = |day: u32, dim: Dim, value: &str| {
            let mut key = record::day_key("c", day);
            key.push(dim.byte());
            key.extend_from_slice(value.as_bytes());
            key
        };
        store
            .write_now(|txn, dbs| {
                dbs.link_dims
                    .put(txn, &old_key(7, Dim::Os, "ios"), &3u64.to_le_bytes())?;
                dbs.link_dims
                    .put(txn, &old_key(7, Dim::Os, "android"), &2u64.to_le_bytes())?;
                dbs.link_dims
                    .put(txn, &old_key(8, Dim::Country, "CN"), &1u64.to_le_bytes())?;
                // The day also has counts in the current layout: they add up.
                add_day_dims(txn, dbs, "c", 7, [(Dim::Os, "ios".as_bytes(), 1)])
            })
            .unwrap();
        assert_eq!(store.write_now(move_old_dims).unwrap(), 3);
        assert_eq!(store.write_now(move_old_dims).unwrap(), 0, "moved once");
        let mut rows = store
            .read(|txn, dbs| dims_between(txn, dbs, "c", 0, 99))
            .unwrap();
        rows.sort();
        assert_eq!(
            rows,
            vec![
                (7, Dim::Os, "android".to_owned(), 2),
                (7, Dim::Os, "ios".to_owned(), 4),
                (8, Dim::Country, "CN".to_owned(), 1),
            ]
        );
    }

    #[test]
    fn journal_records_of_every_format_decode() {
        let counts = ClickTotals {
            human: 2,
            bot: 1,
            head: 0,
            ref_hosts: 0,
        };
        // The third format: values one by one, and kinds written once for the whole record.
        let mut values = [None; crate::links::analytics::DIMS];
        values[Dim::Os as usize] = Some("ios");
        values[Dim::Language as usize] = Some("zh");
        let kind = Arc::new(VisitorKind::new(&values));
        let mut third = JournalWriter::with_capacity(0);
        third.push(
            "abc",
            9,
            &counts,
            [("x.com", 2)],
            [(Dim::Referrer, "x.com", 2)],
            [(&kind, 2)],
        );
        third.push("de", 9, &counts, [], [], [(&kind, 1)]);
        let third = third.finish();
        assert!(third.starts_with(&JOURNAL_V3));
        let decoded = decode_journal(&third).unwrap();
        assert_eq!(decoded[0].referrers, vec![("x.com".to_owned(), 2)]);
        assert_eq!(
            decoded[0].dims,
            vec![
                (Dim::Referrer, "x.com".to_owned(), 2),
                (Dim::Os, "ios".to_owned(), 2),
                (Dim::Language, "zh".to_owned(), 2)
            ]
        );
        assert_eq!((decoded[1].code.as_str(), decoded[1].dims.len()), ("de", 2));
        // A record cut short is not one.
        assert!(decode_journal(&third[..third.len() - 1]).is_none());
        // The first format (before dimensions): no marker, no dimension section; the second adds
        // the values one by one.
        let mut first = vec![3];
        first.extend_from_slice(b"abc");
        first.extend_from_slice(&9u32.to_le_bytes());
        for n in [2u64, 1, 0] {
            first.extend_from_slice(&n.to_le_bytes());
        }
        first.extend_from_slice(&0u16.to_le_bytes());
        let old = decode_journal(&first).unwrap();
        assert_eq!((old[0].code.as_str(), old[0].counts.human), ("abc", 2));
        assert!(old[0].dims.is_empty());
        let mut second = JOURNAL_V2.to_vec();
        second.extend_from_slice(&first);
        second.extend_from_slice(&1u16.to_le_bytes());
        second.extend_from_slice(&[Dim::Os.byte(), 3]);
        second.extend_from_slice(b"ios");
        second.extend_from_slice(&2u64.to_le_bytes());
        let decoded = decode_journal(&second).unwrap();
        assert_eq!(decoded[0].dims, vec![(Dim::Os, "ios".to_owned(), 2)]);
    }
}
