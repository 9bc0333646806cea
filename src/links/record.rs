//! Short-link records as stored in LMDB, their keys, and the click counter encoding.
//!
//! Layout (every key byte-ordered so that prefix scans answer the API's questions):
//! - `links`: code → [`LinkRecord`] (versioned JSON).
//! - `link_owner`: owner key id ++ created_at_ms (u64 BE) ++ code → group id (u64 BE): a key's
//!   links newest first, filterable by group without decoding the records.
//! - `link_groups`: owner key id ++ group id (u64 BE) → [`GroupRecord`].
//! - `link_clicks`: code → [`ClickRow`]: totals and the current day's counts, eight u64 LE (human,
//!   bot, head, referrer hosts kept, day, that day's human, bot, head), then that day's human
//!   clicks by dimension and value (as a `link_day_dims` row holds them; nothing when analytics
//!   is off). Written by the first compaction that counts a click of the link, then one read and
//!   one write per link clicked, dimensions included.
//! - `link_days`: code ++ 0x00 ++ day number (u32 BE, days since 1970) → human, bot, head (u64 LE)
//!   of the days before the row's current day.
//! - `link_refs`: code ++ 0x00 ++ referrer host → human clicks from it (u64 LE).
//! - `link_tags`: owner key id ++ 0x00 ++ tag ++ 0x00 ++ created_at_ms (u64 BE) ++ code → empty: a
//!   key's links with a tag, newest first (tags hold no control characters, so no 0x00).
//! - `link_day_dims`: code ++ 0x00 ++ day (u32 BE, in the statistics' time zone) → a past day's
//!   human clicks by dimension and value, one row (see `repo::DayDims`): at most
//!   `MAX_DIM_VALUES` values per dimension plus "(other)". Written when the click row's day
//!   turns (its dimensions move here) and for clicks of a past day folded late.
//! - `link_dims`: the earlier layout (one row per link, day, dimension and value: the day's key
//!   ++ dimension (u8) ++ value → u64 LE); read only to move its rows into `link_day_dims`.
//!
//! Codes never contain 0x00, so `code ++ 0x00` is an exact prefix.

use serde::{Deserialize, Serialize};

use crate::checker::share::Provider;
use crate::checker::verdict::{Reason, State};

/// Who may follow a link without more ado.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessType {
    Open,
    Password,
}

impl AccessType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessType::Open => "open",
            AccessType::Password => "password",
        }
    }

    pub fn parse(text: &str) -> Option<AccessType> {
        match text {
            "open" => Some(AccessType::Open),
            "password" => Some(AccessType::Password),
            _ => None,
        }
    }
}

/// What a lookup says about a link right now. Expiry is computed at each lookup, never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStatus {
    Active,
    Expired,
    Disabled,
}

impl LinkStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkStatus::Active => "active",
            LinkStatus::Expired => "expired",
            LinkStatus::Disabled => "disabled",
        }
    }
}

/// A short link as stored under its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRecord {
    /// The link's id: its code, or `domain/code` on a domain other than the default
    /// ([`super::domains`]); every table and map of links is keyed by it.
    pub code: String,
    /// The target as the owner gave it (validated absolute http(s) URL).
    pub url: String,
    #[serde(default)]
    pub title: Option<String>,
    /// The code was chosen by the owner (an alias), not generated.
    #[serde(default)]
    pub custom: bool,
    /// Id of the API key that created the link.
    pub owner: String,
    pub group_id: u64,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    #[serde(default)]
    pub expire_at_ms: Option<u64>,
    pub access: AccessType,
    /// argon2id PHC string; present exactly when `access` is `Password`.
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    /// Where visitors go while the target share is dead.
    #[serde(default)]
    pub fallback_url: Option<String>,
    /// The target is a share and its state is watched.
    #[serde(default)]
    pub watch_target: bool,
    /// After this many human clicks the link answers like an expired one.
    #[serde(default)]
    pub max_clicks: Option<u64>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// UTM parameters added to the target's query at redirect.
    #[serde(default)]
    pub utm: Option<Utm>,
    /// Visitor rules, first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<super::rules::Rule>,
    /// The watched share's state, once checked (boxed: most links have none).
    #[serde(default)]
    pub target: Option<Box<TargetState>>,
}

/// UTM parameters of a link (each optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl Utm {
    /// `(utm_<name>, value)` of the parameters given.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("utm_source", &self.source),
            ("utm_medium", &self.medium),
            ("utm_campaign", &self.campaign),
            ("utm_term", &self.term),
            ("utm_content", &self.content),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
    }

    /// `url` with these parameters in its query, replacing any it had under the same names.
    pub fn apply(&self, url: &url::Url) -> url::Url {
        let names: Vec<&str> = self.pairs().map(|(name, _)| name).collect();
        if names.is_empty() {
            return url.clone();
        }
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| !names.contains(&name.as_ref()))
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
        let mut out = url.clone();
        {
            let mut query = out.query_pairs_mut();
            query.clear();
            query.extend_pairs(kept);
            query.extend_pairs(self.pairs());
        }
        out
    }
}

/// Key of `link_tags`.
pub fn tag_key(owner: &str, tag: &str, created_at_ms: u64, code: &str) -> Vec<u8> {
    let mut key = tag_prefix(owner, tag);
    key.extend_from_slice(&created_at_ms.to_be_bytes());
    key.extend_from_slice(code.as_bytes());
    key
}

/// `owner ++ 0x00 ++ tag ++ 0x00`: the prefix of a key's links with `tag` in `link_tags`.
pub fn tag_prefix(owner: &str, tag: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(owner.len() + tag.len() + 2 + 8 + 16);
    key.extend_from_slice(owner.as_bytes());
    key.push(0);
    key.extend_from_slice(tag.as_bytes());
    key.push(0);
    key
}

/// What the checker last concluded about a link's target share (`unknown` never replaces a
/// definite state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetState {
    pub provider: Provider,
    pub state: State,
    #[serde(default)]
    pub reason: Option<Reason>,
    #[serde(default)]
    pub share_name: Option<String>,
    pub checked_at_ms: u64,
    /// When it entered `state`.
    pub since_ms: u64,
}

impl LinkRecord {
    /// The code visitors type, without the domain.
    pub fn short_code(&self) -> &str {
        super::domains::split_id(&self.code).1
    }

    /// The link's domain; `None` for the default domain.
    pub fn domain(&self) -> Option<&str> {
        super::domains::split_id(&self.code).0
    }

    /// Whether the target share is known to be dead.
    pub fn target_dead(&self) -> bool {
        self.target
            .as_ref()
            .is_some_and(|t| t.state == State::Invalid)
    }
    /// The link's status at `now_ms`: disabled wins over expired.
    pub fn status_at(&self, now_ms: u64) -> LinkStatus {
        if self.disabled {
            LinkStatus::Disabled
        } else if self.expire_at_ms.is_some_and(|at| now_ms >= at) {
            LinkStatus::Expired
        } else {
            LinkStatus::Active
        }
    }
}

/// A group of links, per key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub id: u64,
    pub name: String,
    pub created_at_ms: u64,
}

/// The id of every key's default group (created when the key first needs it).
pub const DEFAULT_GROUP_ID: u64 = 1;
/// The default group's name.
pub const DEFAULT_GROUP_NAME: &str = "默认分组";

/// Click totals of one link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClickTotals {
    /// Redirects followed by people (GET, not a known bot).
    pub human: u64,
    /// Redirects followed by bots and link previewers.
    pub bot: u64,
    /// `HEAD` requests (never clicks).
    pub head: u64,
    /// Distinct referrer hosts stored for the link (bounded).
    pub ref_hosts: u64,
}

impl ClickTotals {
    pub fn encode(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (slot, value) in
            out.chunks_exact_mut(8)
                .zip([self.human, self.bot, self.head, self.ref_hosts])
        {
            slot.copy_from_slice(&value.to_le_bytes());
        }
        out
    }

    /// Decodes [`ClickTotals::encode`]; shorter values (older layouts) read as zeros.
    pub fn decode(bytes: &[u8]) -> ClickTotals {
        let word = |i: usize| {
            bytes
                .get(i * 8..i * 8 + 8)
                .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        };
        ClickTotals {
            human: word(0),
            bot: word(1),
            head: word(2),
            ref_hosts: word(3),
        }
    }

    pub fn add(&mut self, other: &ClickTotals) {
        self.human += other.human;
        self.bot += other.bot;
        self.head += other.head;
    }
}

/// The `link_clicks` row of one link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClickRow {
    pub totals: ClickTotals,
    /// The day `today` counts (days since 1970).
    pub day: u32,
    pub today: ClickTotals,
}

impl ClickRow {
    pub fn encode(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.totals.encode());
        out[32..64].copy_from_slice(
            &ClickTotals {
                ref_hosts: u64::from(self.day),
                ..self.today
            }
            .encode(),
        );
        out
    }

    pub fn decode(bytes: &[u8]) -> ClickRow {
        let totals = ClickTotals::decode(bytes);
        let mut today = ClickTotals::decode(bytes.get(32..).unwrap_or_default());
        let day = u32::try_from(today.ref_hosts).unwrap_or(0);
        today.ref_hosts = 0;
        ClickRow { totals, day, today }
    }
}

/// Key of `link_owner`.
pub fn owner_key(owner: &str, created_at_ms: u64, code: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(owner.len() + 8 + code.len());
    key.extend_from_slice(owner.as_bytes());
    key.extend_from_slice(&created_at_ms.to_be_bytes());
    key.extend_from_slice(code.as_bytes());
    key
}

/// Key of `link_groups`.
pub fn group_key(owner: &str, group_id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(owner.len() + 8);
    key.extend_from_slice(owner.as_bytes());
    key.extend_from_slice(&group_id.to_be_bytes());
    key
}

/// `code ++ 0x00`: the prefix of a link's rows in `link_days` and `link_refs`.
pub fn code_prefix(code: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(code.len() + 1 + 16);
    key.extend_from_slice(code.as_bytes());
    key.push(0);
    key
}

/// Key of `link_days`.
pub fn day_key(code: &str, day: u32) -> Vec<u8> {
    let mut key = code_prefix(code);
    key.extend_from_slice(&day.to_be_bytes());
    key
}

/// Key of `link_refs`.
pub fn ref_key(code: &str, host: &str) -> Vec<u8> {
    let mut key = code_prefix(code);
    key.extend_from_slice(host.as_bytes());
    key
}

/// Days since 1970-01-01 (UTC) of a unix-milliseconds instant.
pub fn day_of(ms: u64) -> u32 {
    u32::try_from(ms / 86_400_000).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn click_totals_round_trip_and_tolerate_short_values() {
        let totals = ClickTotals {
            human: 7,
            bot: 2,
            head: 1,
            ref_hosts: 3,
        };
        assert_eq!(ClickTotals::decode(&totals.encode()), totals);
        assert_eq!(ClickTotals::decode(&[]), ClickTotals::default());
        assert_eq!(ClickTotals::decode(&totals.encode()[..8]).human, 7);
    }

    #[test]
    fn click_rows_round_trip() {
        let row = ClickRow {
            totals: ClickTotals {
                human: 9,
                bot: 1,
                head: 2,
                ref_hosts: 4,
            },
            day: 20_000,
            today: ClickTotals {
                human: 3,
                bot: 0,
                head: 1,
                ref_hosts: 0,
            },
        };
        assert_eq!(ClickRow::decode(&row.encode()), row);
        assert_eq!(ClickRow::decode(&[]), ClickRow::default());
    }

    #[test]
    fn utm_parameters_replace_the_targets_own_and_keep_the_rest() {
        let utm = Utm {
            source: Some("forum".into()),
            campaign: Some("双十一".into()),
            ..Utm::default()
        };
        let url = url::Url::parse("https://example.com/p?a=1&utm_source=old&b=2#top").unwrap();
        assert_eq!(
            utm.apply(&url).as_str(),
            "https://example.com/p?a=1&b=2&utm_source=forum&utm_campaign=%E5%8F%8C%E5%8D%81%E4%B8%80#top"
        );
        let plain = url::Url::parse("https://example.com/").unwrap();
        assert_eq!(Utm::default().apply(&plain), plain);
    }

    #[test]
    fn status_prefers_disabled_then_expiry() {
        let mut link = LinkRecord {
            code: "abc".into(),
            url: "https://example.com/".into(),
            title: None,
            custom: false,
            owner: "k".into(),
            group_id: 1,
            created_at_ms: 0,
            updated_at_ms: 0,
            expire_at_ms: Some(1_000),
            access: AccessType::Open,
            password_hash: None,
            disabled: false,
            fallback_url: None,
            watch_target: true,
            max_clicks: None,
            tags: Vec::new(),
            utm: None,
            rules: Vec::new(),
            target: None,
        };
        assert_eq!(link.status_at(999), LinkStatus::Active);
        assert_eq!(link.status_at(1_000), LinkStatus::Expired);
        link.disabled = true;
        assert_eq!(link.status_at(0), LinkStatus::Disabled);
    }

    #[test]
    fn keys_sort_newest_last_and_prefixes_are_exact() {
        assert!(owner_key("k", 1, "z") < owner_key("k", 2, "a"));
        assert!(day_key("ab", 5).starts_with(&code_prefix("ab")));
        assert!(!day_key("abc", 5).starts_with(&code_prefix("ab")));
        assert_eq!(day_of(86_400_000 * 3 + 5), 3);
    }
}
