//! The kinds of event a webhook can receive, and the JSON body of one delivery.
//!
//! It must not know where events come from: jobs, monitors and short links name the kind and
//! hand over the `data`.

use serde::{Deserialize, Serialize};

use crate::timefmt;

/// A kind of event. `ping` is sent on request only; the others are subscribed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "ping")]
    Ping,
    #[serde(rename = "job.completed")]
    JobCompleted,
    #[serde(rename = "link.dead")]
    LinkDead,
    #[serde(rename = "link.revived")]
    LinkRevived,
    #[serde(rename = "monitor.run_completed")]
    MonitorRunCompleted,
    #[serde(rename = "shortlink.target_dead")]
    ShortlinkTargetDead,
    #[serde(rename = "shortlink.target_revived")]
    ShortlinkTargetRevived,
    #[serde(rename = "link.clicked")]
    LinkClicked,
}

impl EventType {
    /// The kinds a webhook may subscribe to.
    pub const SUBSCRIBABLE: [EventType; 7] = [
        EventType::JobCompleted,
        EventType::LinkDead,
        EventType::LinkRevived,
        EventType::MonitorRunCompleted,
        EventType::ShortlinkTargetDead,
        EventType::ShortlinkTargetRevived,
        EventType::LinkClicked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Ping => "ping",
            EventType::JobCompleted => "job.completed",
            EventType::LinkDead => "link.dead",
            EventType::LinkRevived => "link.revived",
            EventType::MonitorRunCompleted => "monitor.run_completed",
            EventType::ShortlinkTargetDead => "shortlink.target_dead",
            EventType::ShortlinkTargetRevived => "shortlink.target_revived",
            EventType::LinkClicked => "link.clicked",
        }
    }

    /// A subscribable kind by its name.
    pub fn subscribable(name: &str) -> Option<EventType> {
        EventType::SUBSCRIBABLE
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// The public id of the delivery with sequence number `seq`.
pub fn delivery_id(seq: u64) -> String {
    format!("dlv_{seq:016x}")
}

/// The sequence number in a public delivery id.
pub fn parse_delivery_id(id: &str) -> Option<u64> {
    let hex = id.strip_prefix("dlv_")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The body of a delivery, sent byte for byte on every attempt:
/// `{"id", "type", "created_at", "data"}`.
pub fn body(seq: u64, kind: EventType, created_at_ms: u64, data: &serde_json::Value) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        id: String,
        #[serde(rename = "type")]
        kind: EventType,
        created_at: String,
        data: &'a serde_json::Value,
    }
    serde_json::to_string(&Body {
        id: delivery_id(seq),
        kind,
        created_at: timefmt::rfc3339_ms(created_at_ms),
        data,
    })
    .expect("delivery bodies serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ping_is_not_subscribable() {
        for kind in EventType::SUBSCRIBABLE {
            assert_eq!(EventType::subscribable(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(EventType::subscribable("ping"), None);
        assert_eq!(EventType::subscribable("link.Dead"), None);
    }

    #[test]
    fn delivery_ids_round_trip() {
        for seq in [1, 255, u64::MAX] {
            assert_eq!(parse_delivery_id(&delivery_id(seq)), Some(seq));
        }
        assert_eq!(parse_delivery_id("dlv_12"), None);
        assert_eq!(parse_delivery_id("xyz_0000000000000001"), None);
        assert_eq!(parse_delivery_id("dlv_zzzzzzzzzzzzzzzz"), None);
    }
}
