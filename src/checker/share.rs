//! Providers and share references: which cloud drive a link belongs to, its normalized id and
//! pass code, and the key used for the result cache and de-duplication.

use serde::{Deserialize, Serialize};

/// The nine cloud drives panlink knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Quark,
    Uc,
    Baidu,
    Tianyi,
    Pan123,
    Pan115,
    Aliyun,
    Xunlei,
    Cmcc,
}

impl Provider {
    pub const ALL: [Provider; 9] = [
        Provider::Quark,
        Provider::Uc,
        Provider::Baidu,
        Provider::Tianyi,
        Provider::Pan123,
        Provider::Pan115,
        Provider::Aliyun,
        Provider::Xunlei,
        Provider::Cmcc,
    ];

    /// The API name (`quark`, `pan123`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Quark => "quark",
            Provider::Uc => "uc",
            Provider::Baidu => "baidu",
            Provider::Tianyi => "tianyi",
            Provider::Pan123 => "pan123",
            Provider::Pan115 => "pan115",
            Provider::Aliyun => "aliyun",
            Provider::Xunlei => "xunlei",
            Provider::Cmcc => "cmcc",
        }
    }

    /// The name users know (`夸克网盘`, …).
    pub fn display_name(self) -> &'static str {
        match self {
            Provider::Quark => "夸克网盘",
            Provider::Uc => "UC网盘",
            Provider::Baidu => "百度网盘",
            Provider::Tianyi => "天翼云盘",
            Provider::Pan123 => "123云盘",
            Provider::Pan115 => "115网盘",
            Provider::Aliyun => "阿里云盘",
            Provider::Xunlei => "迅雷云盘",
            Provider::Cmcc => "中国移动云盘",
        }
    }

    /// Position in [`Provider::ALL`], for per-provider arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn parse(text: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

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
