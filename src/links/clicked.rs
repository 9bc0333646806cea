//! The `link.clicked` event: when clicks are folded into storage, each key whose webhooks want it
//! gets ONE delivery with the counts of its links clicked since the last fold, written in that
//! same write (never one delivery per click).
//!
//! Bounded: a delivery names at most [`MAX_CODES`] links (the most clicked) and says how many
//! more there were.

use std::collections::BTreeMap;

use heed::RwTxn;

use super::record::ClickTotals;
use super::repo::{self, ClickDelta};
use crate::store::{Dbs, StoreError};
use crate::timefmt;
use crate::webhooks::record::{Event, all_webhook_ids, get_webhook, webhooks_of};
use crate::webhooks::{EventSink, EventType};

/// Links named in one delivery at most.
pub const MAX_CODES: usize = 1000;

/// Queues one `link.clicked` delivery per key with a subscribed webhook, for the clicks of
/// `deltas` counted in `period` (unix ms, from the last fold to this one); answers the webhooks
/// to wake after the commit.
pub fn queue(
    txn: &mut RwTxn,
    dbs: &Dbs,
    deltas: &[ClickDelta],
    (since_ms, until_ms): (u64, u64),
    default_domain: Option<&str>,
    events: EventSink,
) -> Result<Vec<String>, StoreError> {
    // Most folds have no subscriber at all: then no link is read.
    let mut subscribed = false;
    for id in all_webhook_ids(txn, dbs)? {
        if get_webhook(txn, dbs, &id)?
            .is_some_and(|h| !h.disabled && h.wants(EventType::LinkClicked))
        {
            subscribed = true;
            break;
        }
    }
    if !subscribed {
        return Ok(Vec::new());
    }
    let mut per_link: BTreeMap<&str, ClickTotals> = BTreeMap::new();
    for delta in deltas {
        per_link.entry(&delta.code).or_default().add(&delta.counts);
    }
    // Owner → its links and their counts; owners without a webhook wanting the event are
    // skipped before anything is built for them.
    let mut per_owner: BTreeMap<String, Vec<(&str, ClickTotals)>> = BTreeMap::new();
    let mut wants: BTreeMap<String, bool> = BTreeMap::new();
    for (code, totals) in per_link {
        if totals == ClickTotals::default() {
            continue;
        }
        let Some(link) = repo::get(txn, dbs, code)? else {
            continue;
        };
        let owner = link.owner;
        let wanted = match wants.get(&owner) {
            Some(w) => *w,
            None => {
                let w = webhooks_of(txn, dbs, &owner)?
                    .iter()
                    .any(|h| !h.disabled && h.wants(EventType::LinkClicked));
                wants.insert(owner.clone(), w);
                w
            }
        };
        if wanted {
            per_owner.entry(owner).or_default().push((code, totals));
        }
    }
    let now = timefmt::now_ms();
    let mut woken = Vec::new();
    for (owner, mut links) in per_owner {
        let total = links.iter().fold(ClickTotals::default(), |mut t, (_, c)| {
            t.add(c);
            t
        });
        links.sort_by(|a, b| b.1.human.cmp(&a.1.human).then_with(|| a.0.cmp(b.0)));
        let more = links.len().saturating_sub(MAX_CODES);
        links.truncate(MAX_CODES);
        let data = serde_json::json!({
            "since": timefmt::rfc3339_millis(since_ms),
            "until": timefmt::rfc3339_millis(until_ms),
            "totals": {"human": total.human, "bot": total.bot, "head": total.head},
            "links": links.iter().map(|(id, c)| {
                let (domain, code) = super::domains::split_id(id);
                serde_json::json!({
                    "code": code,
                    "domain": domain.or(default_domain),
                    "human": c.human,
                    "bot": c.bot,
                    "head": c.head,
                })
            }).collect::<Vec<_>>(),
            "more_links": more,
        });
        let event = Event {
            kind: EventType::LinkClicked,
            data: &data,
            at_ms: now,
        };
        woken.extend(events.for_owner(txn, dbs, &owner, &event, None)?);
    }
    Ok(woken)
}
