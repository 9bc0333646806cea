//! Visitor rules of a short link: conditions on the visitor (OS, device, in-app browser, language)
//! and what to do when they match (send to another URL, or show the "open in your browser" page).
//! Owns their stored form, their validation from a request body (every error names its path, such
//! as `rules[1].if.os[0]`) and the choice of the first matching rule.
//!
//! Must not: read the user agent for a link without rules, or for rules that only look at the
//! language. The `country` condition is refused until a geo database can be configured.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::visitor::{self, App, Device, Os, Profile};
use crate::error::ApiError;

/// Rules per link.
pub const MAX_RULES: usize = 10;
/// Values per condition.
const MAX_VALUES: usize = 20;

/// The conditions of a rule; every one given must match (an empty rule matches everyone).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub os: Vec<Os>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device: Vec<Device>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app: Vec<App>,
    /// Primary language subtags, lowercase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub language: Vec<String>,
}

impl Conditions {
    fn needs_user_agent(&self) -> bool {
        !(self.os.is_empty() && self.device.is_empty() && self.app.is_empty())
    }

    fn matches(&self, profile: &Profile, language: Option<&str>) -> bool {
        fn one_of<T: PartialEq>(wanted: &[T], actual: Option<T>) -> bool {
            wanted.is_empty() || actual.is_some_and(|a| wanted.contains(&a))
        }
        one_of(&self.os, profile.os)
            && one_of(&self.device, profile.device)
            && one_of(&self.app, profile.app)
            && (self.language.is_empty()
                || language.is_some_and(|l| self.language.iter().any(|w| w == l)))
    }
}

/// What a rule does instead of the plain redirect, besides a `url` of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A page asking the visitor to open the link in the system browser (in-app browsers of
    /// WeChat and QQ block many drive domains).
    OpenInBrowser,
}

/// One rule, stored as the API shows it: `{"if": {…}, "url": "…"}` or `{"if": {…}, "action":
/// "open_in_browser"}`; exactly one of `url` and `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(rename = "if", default)]
    pub when: Conditions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// The index of the first rule that matches the visitor of these headers.
pub fn first_match(
    rules: &[Rule],
    user_agent: Option<&[u8]>,
    accept_language: Option<&[u8]>,
) -> Option<usize> {
    let profile = if rules.iter().any(|rule| rule.when.needs_user_agent()) {
        user_agent
            .and_then(|ua| std::str::from_utf8(ua).ok())
            .map(visitor::profile_of)
            .unwrap_or_default()
    } else {
        Profile::default()
    };
    let mut buffer = [0u8; 8];
    let language = if rules.iter().any(|rule| !rule.when.language.is_empty()) {
        accept_language.and_then(|header| visitor::preferred_language(header, &mut buffer))
    } else {
        None
    };
    rules
        .iter()
        .position(|rule| rule.when.matches(&profile, language))
}

/// Reads `rules` of a request body (`path` is where it sits, e.g. `rules` or `items[2].rules`);
/// `check_url(url, path)` validates a rule's target like the link's own.
pub fn parse(
    value: &Value,
    path: &str,
    check_url: impl Fn(&str, &str) -> Result<(), ApiError>,
) -> Result<Vec<Rule>, ApiError> {
    let Value::Array(items) = value else {
        return Err(ApiError::field(path.to_owned(), "必须是规则数组"));
    };
    if items.len() > MAX_RULES {
        return Err(ApiError::field(
            path.to_owned(),
            format!("最多 {MAX_RULES} 条规则"),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_rule(item, &format!("{path}[{i}]"), &check_url))
        .collect()
}

fn parse_rule(
    value: &Value,
    path: &str,
    check_url: &impl Fn(&str, &str) -> Result<(), ApiError>,
) -> Result<Rule, ApiError> {
    let Value::Object(fields) = value else {
        return Err(ApiError::field(
            path.to_owned(),
            "必须是对象，如 {\"if\": {\"os\": [\"ios\"]}, \"url\": \"https://…\"}",
        ));
    };
    if let Some(name) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "if" | "url" | "action"))
    {
        return Err(ApiError::field(
            format!("{path}.{name}"),
            "未知字段：规则只有 if、url 和 action",
        ));
    }
    let when = match fields.get("if") {
        None | Some(Value::Null) => Conditions::default(),
        Some(Value::Object(conditions)) => parse_conditions(conditions, &format!("{path}.if"))?,
        Some(_) => {
            return Err(ApiError::field(
                format!("{path}.if"),
                "必须是对象，如 {\"app\": [\"wechat\"]}",
            ));
        }
    };
    let url = match fields.get("url") {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) => {
            let url = url.trim().to_owned();
            check_url(&url, &format!("{path}.url"))?;
            Some(url)
        }
        Some(_) => return Err(ApiError::field(format!("{path}.url"), "必须是字符串")),
    };
    let action = match fields.get("action") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text == "open_in_browser" => Some(Action::OpenInBrowser),
        Some(_) => {
            return Err(ApiError::field(
                format!("{path}.action"),
                "只能是 open_in_browser（跳转到其他地址请用 url）",
            ));
        }
    };
    if url.is_some() == action.is_some() {
        return Err(ApiError::field(
            path.to_owned(),
            "url 和 action 须且只能给出一个",
        ));
    }
    Ok(Rule { when, url, action })
}

fn parse_conditions(fields: &Map<String, Value>, path: &str) -> Result<Conditions, ApiError> {
    let mut out = Conditions::default();
    for (name, value) in fields {
        let here = format!("{path}.{name}");
        match name.as_str() {
            "os" => out.os = parse_values(value, &here, Os::parse, Os::NAMES)?,
            "device" => out.device = parse_values(value, &here, Device::parse, Device::NAMES)?,
            "app" => out.app = parse_values(value, &here, App::parse, App::NAMES)?,
            "language" => out.language = parse_values(value, &here, language_tag, &[])?,
            "country" => {
                return Err(ApiError::field(
                    here,
                    "按国家/地区匹配需要 IP 地理数据库，本服务尚未配置",
                ));
            }
            _ => {
                return Err(ApiError::field(
                    here,
                    "未知条件：可用 os、device、app、language",
                ));
            }
        }
    }
    Ok(out)
}

/// A primary language subtag as a rule names it (`zh`, `en`), lowercased.
fn language_tag(text: &str) -> Option<String> {
    ((2..=8).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| text.to_ascii_lowercase())
}

fn parse_values<T: PartialEq>(
    value: &Value,
    path: &str,
    read: impl Fn(&str) -> Option<T>,
    names: &[&str],
) -> Result<Vec<T>, ApiError> {
    let allowed = if names.is_empty() {
        "语言主标签，如 zh、en、ja（不带地区）".to_owned()
    } else {
        format!("可用值：{}", names.join("、"))
    };
    let Value::Array(items) = value else {
        return Err(ApiError::field(
            path.to_owned(),
            format!("必须是数组；{allowed}"),
        ));
    };
    if items.is_empty() || items.len() > MAX_VALUES {
        return Err(ApiError::field(
            path.to_owned(),
            format!("须有 1 到 {MAX_VALUES} 个值"),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let parsed = item.as_str().and_then(&read).ok_or_else(|| {
            ApiError::field(format!("{path}[{i}]"), format!("无效的值；{allowed}"))
        })?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: Value) -> Result<Vec<Rule>, String> {
        parse(&value, "rules", |url, path| {
            if url.starts_with("https://") {
                Ok(())
            } else {
                Err(ApiError::field(path.to_owned(), "bad url"))
            }
        })
        .map_err(|err| match err {
            ApiError::InvalidField { field, .. } => field.into_owned(),
            other => format!("{other:?}"),
        })
    }

    #[test]
    fn errors_name_the_path_of_the_bad_value() {
        let bad = |value: Value| read(value).unwrap_err();
        assert_eq!(
            bad(
                json!([{"if": {"os": ["ios"]}, "url": "https://a"}, {"if": {"os": ["beos"]}, "url": "https://b"}])
            ),
            "rules[1].if.os[0]"
        );
        assert_eq!(
            bad(json!([{"if": {"planet": ["mars"]}, "action": "open_in_browser"}])),
            "rules[0].if.planet"
        );
        assert_eq!(
            bad(json!([{"if": {"country": ["CN"]}, "url": "https://a"}])),
            "rules[0].if.country"
        );
        assert_eq!(
            bad(json!([{"if": {"app": []}, "url": "https://a"}])),
            "rules[0].if.app"
        );
        assert_eq!(
            bad(json!([{"if": {"language": ["zh-CN"]}, "url": "https://a"}])),
            "rules[0].if.language[0]"
        );
        assert_eq!(
            bad(json!([{"url": "https://a", "action": "open_in_browser"}])),
            "rules[0]"
        );
        assert_eq!(bad(json!([{"if": {}}])), "rules[0]");
        assert_eq!(bad(json!([{"url": "ftp://a"}])), "rules[0].url");
        assert_eq!(bad(json!([{"action": "close"}])), "rules[0].action");
        assert_eq!(
            bad(json!([{"url": "https://a", "then": 1}])),
            "rules[0].then"
        );
        assert_eq!(bad(json!({"os": "ios"})), "rules");
        assert_eq!(bad(json!(vec![json!({"url": "https://a"}); 11])), "rules");
    }

    #[test]
    fn good_rules_read_as_stored_and_serialize_back_to_the_api_shape() {
        let given = json!([
            {"if": {"os": ["ios", "ios"], "device": ["mobile"]}, "url": " https://a.example/ios "},
            {"if": {"app": ["wechat", "qq"]}, "action": "open_in_browser"},
            {"if": {"language": ["EN"]}, "url": "https://a.example/en"},
            {"url": "https://a.example/else"}
        ]);
        let rules = read(given).unwrap();
        assert_eq!(rules[0].when.os, vec![Os::Ios]);
        assert_eq!(rules[0].url.as_deref(), Some("https://a.example/ios"));
        assert_eq!(rules[2].when.language, vec!["en".to_owned()]);
        assert_eq!(
            serde_json::to_value(&rules).unwrap(),
            json!([
                {"if": {"os": ["ios"], "device": ["mobile"]}, "url": "https://a.example/ios"},
                {"if": {"app": ["wechat", "qq"]}, "action": "open_in_browser"},
                {"if": {"language": ["en"]}, "url": "https://a.example/en"},
                {"if": {}, "url": "https://a.example/else"}
            ])
        );
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let rules = read(json!([
            {"if": {"app": ["wechat"]}, "action": "open_in_browser"},
            {"if": {"os": ["ios"]}, "url": "https://a/ios"},
            {"if": {"language": ["ja"]}, "url": "https://a/ja"},
        ]))
        .unwrap();
        let iphone = b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        let wechat_iphone = b"Mozilla/5.0 (iPhone; CPU iPhone OS 9_0 like Mac OS X) AppleWebKit/601.1.46 (KHTML, like Gecko) Mobile/13A344 MicroMessenger/6.2.7 NetType/WIFI Language/zh_CN";
        let desktop = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        assert_eq!(first_match(&rules, Some(wechat_iphone), None), Some(0));
        assert_eq!(first_match(&rules, Some(iphone), Some(b"ja")), Some(1));
        assert_eq!(
            first_match(&rules, Some(desktop), Some(b"ja-JP,en;q=0.5")),
            Some(2)
        );
        assert_eq!(first_match(&rules, Some(desktop), Some(b"en")), None);
        assert_eq!(first_match(&rules, None, None), None);
        assert_eq!(first_match(&[], Some(iphone), None), None);
    }
}
