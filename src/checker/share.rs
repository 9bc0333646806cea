//! Providers and share references: which cloud drive a link belongs to, its normalized id and
//! pass code, and the key used for the result cache and de-duplication.

pub use crate::drive::Provider;

/// A recognized share link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShareRef {
    pub provider: Provider,
    /// The provider's share id, normalized (e.g. baidu's without the leading `1`).
    pub id: String,
    /// The pass code, if one came with the link.
    pub passcode: Option<String>,
    /// The link's own host, for a provider whose API answers per host (123pan's mirror domains).
    /// Always one of that adapter's fixed hosts, never a name taken verbatim from a user.
    pub host: Option<&'static str>,
}

impl ShareRef {
    /// The key of the result cache and of in-flight de-duplication: the same share asked with the
    /// same pass code is the same question.
    pub fn key(&self) -> String {
        format!(
            "{}:{}{}{}:{}",
            self.provider.as_str(),
            self.host.unwrap_or(""),
            if self.host.is_some() { "/" } else { "" },
            self.id,
            self.passcode.as_deref().unwrap_or("")
        )
    }
}
