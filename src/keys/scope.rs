//! What an API key may do: its scopes. Each key-authenticated route names the one scope it needs
//! (the route table); a key holds a set of them, all by default.
//!
//! The set is a bit set (one byte), stored as a list of names so a record reads plainly, and
//! checked by the pipeline before dispatch with one AND.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One right of an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Read short links: list, restore, QR codes, groups, export.
    LinksRead,
    /// Create, change, delete and import short links and groups.
    LinksWrite,
    /// The checker: jobs, the blocking check, results, monitors.
    Checker,
    /// Webhook endpoints and their deliveries.
    Webhooks,
    /// The paid security check.
    SecurityCheck,
    /// Click statistics.
    Stats,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::LinksRead,
        Scope::LinksWrite,
        Scope::Checker,
        Scope::Webhooks,
        Scope::SecurityCheck,
        Scope::Stats,
    ];

    /// The name the API, the CLI and the stored record use.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::LinksRead => "links:read",
            Scope::LinksWrite => "links:write",
            Scope::Checker => "checker",
            Scope::Webhooks => "webhooks",
            Scope::SecurityCheck => "security_check",
            Scope::Stats => "stats",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text.trim())
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes(u8);

impl Default for Scopes {
    /// Every scope: keys made before scopes existed, and keys made without naming any.
    fn default() -> Scopes {
        Scopes::ALL
    }
}

impl Scopes {
    pub const ALL: Scopes = Scopes(0b11_1111);

    pub fn allows(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The scopes of the set, in [`Scope::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.allows(*s))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }

    /// The set of `names`: `Err` with the first unknown name; an empty list is refused too (a
    /// key that may do nothing is a mistake, not a choice).
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Scopes, String> {
        let mut bits = 0;
        for name in names {
            let scope = Scope::parse(name).ok_or_else(|| name.trim().to_owned())?;
            bits |= scope.bit();
        }
        if bits == 0 {
            return Err(String::new());
        }
        Ok(Scopes(bits))
    }

    /// Every scope's name, for messages.
    pub fn known() -> String {
        Scope::ALL.map(Scope::as_str).join(", ")
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Scope::as_str))
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scopes, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        Scopes::parse(names.iter().map(String::as_str)).map_err(|name| {
            serde::de::Error::custom(if name.is_empty() {
                "no scope".to_owned()
            } else {
                format!("unknown scope {name:?}")
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_parse_check_and_round_trip() {
        let set = Scopes::parse(["links:read", " stats"]).unwrap();
        assert!(set.allows(Scope::LinksRead));
        assert!(set.allows(Scope::Stats));
        assert!(!set.allows(Scope::LinksWrite));
        assert_eq!(set.names(), ["links:read", "stats"]);
        assert_eq!(
            Scopes::parse(["links:read", "admin"]),
            Err("admin".to_owned())
        );
        assert_eq!(Scopes::parse([]), Err(String::new()));
        for scope in Scope::ALL {
            assert!(Scopes::ALL.allows(scope));
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["links:read","stats"]"#);
        assert_eq!(serde_json::from_str::<Scopes>(&json).unwrap(), set);
        assert!(serde_json::from_str::<Scopes>(r#"["nope"]"#).is_err());
    }
}
