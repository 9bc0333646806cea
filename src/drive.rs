//! The registry of drives: the name of every cloud drive panlink knows, as configuration, the
//! API and storage spell it. A leaf module: it imports nothing of panlink, so configuration
//! (`checker.proxy_providers`) and the checker can both name a drive without importing each
//! other. What a drive's links look like and how it is asked live in `checker/providers/`.

use serde::{Deserialize, Serialize};

/// The cloud drives panlink knows.
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
    Lanzou,
    Pikpak,
    Ctfile,
    Weiyun,
    Onedrive,
    Guangya,
}

impl Provider {
    pub const ALL: [Provider; 15] = [
        Provider::Quark,
        Provider::Uc,
        Provider::Baidu,
        Provider::Tianyi,
        Provider::Pan123,
        Provider::Pan115,
        Provider::Aliyun,
        Provider::Xunlei,
        Provider::Cmcc,
        Provider::Lanzou,
        Provider::Pikpak,
        Provider::Ctfile,
        Provider::Weiyun,
        Provider::Onedrive,
        Provider::Guangya,
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
            Provider::Lanzou => "lanzou",
            Provider::Pikpak => "pikpak",
            Provider::Ctfile => "ctfile",
            Provider::Weiyun => "weiyun",
            Provider::Onedrive => "onedrive",
            Provider::Guangya => "guangya",
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
            Provider::Lanzou => "蓝奏云",
            Provider::Pikpak => "PikPak",
            Provider::Ctfile => "城通网盘",
            Provider::Weiyun => "腾讯微云",
            Provider::Onedrive => "OneDrive",
            Provider::Guangya => "光鸭云盘",
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
