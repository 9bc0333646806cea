//! Merging the configuration sources: defaults ← TOML file ← environment.
//!
//! The environment overlay is generic: every key present in the default table gets the variable
//! `PANLINK_<SECTION>_<KEY>` (upper case), parsed according to the type of its default value. So a
//! key added to [`super::raw`] gets its override without further code.

use toml::{Table, Value};

use super::{ConfigError, RawConfig};

/// Short environment names kept for convenience, and the key each one sets.
pub const SHORT_ENV_ALIASES: &[(&str, &str, &str)] = &[
    ("PANLINK_LISTEN", "server", "listen"),
    ("PANLINK_DATA_DIR", "storage", "data_dir"),
    ("PANLINK_ADMIN_TOKEN", "admin", "token"),
    ("PANLINK_PUBLIC_BASE_URL", "server", "public_base_url"),
];

/// The environment variable that overrides `section.key` (a per-drive section `drives.quark`
/// gives `PANLINK_DRIVES_QUARK_<KEY>`).
pub fn env_name(section: &str, key: &str) -> String {
    format!(
        "PANLINK_{}_{}",
        section.replace('.', "_").to_uppercase(),
        key.to_uppercase()
    )
}

/// Every section of `defaults` with its table, by its dotted name: a table whose values are all
/// tables (the per-drive sections) gives one section per inner table.
fn sections(defaults: &Table) -> Vec<(String, &Table)> {
    let mut out = Vec::new();
    for (name, value) in defaults {
        let Value::Table(table) = value else { continue };
        if !table.is_empty() && table.values().all(Value::is_table) {
            for (inner, value) in table {
                if let Value::Table(inner_table) = value {
                    out.push((format!("{name}.{inner}"), inner_table));
                }
            }
        } else {
            out.push((name.clone(), table));
        }
    }
    out
}

/// Every `(section, key)` of the configuration, in definition order.
pub fn all_keys() -> Vec<(String, String)> {
    let defaults = default_table();
    let mut keys = Vec::new();
    for (section, table) in sections(&defaults) {
        for key in table.keys() {
            keys.push((section.clone(), key.clone()));
        }
    }
    keys
}

/// Sorts the `PANLINK_*` variable names of the environment: a name that addresses a configuration
/// section (`PANLINK_HTTP_…`) but no key of it stops start-up, as an unknown key in the file does
/// (a typo must not silently leave a default in force); any other `PANLINK_*` name that is no
/// key and no short form (a client script's `PANLINK_KEY`, say) is returned, to be warned about.
pub fn check_env_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, ConfigError> {
    let keys = all_keys();
    let known = |name: &str| {
        keys.iter()
            .any(|(section, key)| env_name(section, key) == name)
            || SHORT_ENV_ALIASES.iter().any(|(alias, _, _)| *alias == name)
    };
    let mut ignored = Vec::new();
    for name in names {
        let Some(rest) = name.strip_prefix("PANLINK_") else {
            continue;
        };
        if known(name) {
            continue;
        }
        let section = keys.iter().map(|(section, _)| section).find(|section| {
            rest.starts_with(&format!("{}_", section.replace('.', "_").to_uppercase()))
        });
        if let Some(section) = section {
            let mut choices: Vec<String> = keys
                .iter()
                .filter(|(s, _)| s == section)
                .map(|(s, k)| env_name(s, k))
                .collect();
            choices.dedup();
            return Err(ConfigError(format!(
                "environment variable {name} names no key of the `{section}` section; its keys are {}",
                choices.join(", ")
            )));
        }
        // A family of sections (`drives.quark`, …) named with a member it does not have.
        let family = keys
            .iter()
            .filter_map(|(section, _)| section.split_once('.').map(|(family, _)| family))
            .find(|family| rest.starts_with(&format!("{}_", family.to_uppercase())));
        if let Some(family) = family {
            let mut members: Vec<&str> = keys
                .iter()
                .filter_map(|(section, _)| section.strip_prefix(&format!("{family}.")))
                .collect();
            members.dedup();
            return Err(ConfigError(format!(
                "environment variable {name} names no `{family}` section; they are {}",
                members.join(", ")
            )));
        }
        ignored.push(name.to_owned());
    }
    Ok(ignored)
}

/// Parses `text` (from `origin`, for messages), applies the environment and decodes the result.
pub fn merge(
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RawConfig, ConfigError> {
    let mut table: Table = text
        .parse()
        .map_err(|err| ConfigError(format!("{origin}: {err}")))?;
    let defaults = default_table();
    for (section, section_defaults) in sections(&defaults) {
        for (key, default) in section_defaults {
            let mut names = vec![env_name(&section, key)];
            names.extend(
                SHORT_ENV_ALIASES
                    .iter()
                    .filter(|(_, s, k)| *s == section && k == key)
                    .map(|(name, _, _)| (*name).to_owned()),
            );
            // The long form wins over a short alias when both are set.
            let Some((name, text)) = names.iter().find_map(|n| env(n).map(|v| (n, v))) else {
                continue;
            };
            let value = parse_like(default, &text).ok_or_else(|| {
                ConfigError(format!(
                    "environment variable {name}={text:?} (key `{section}.{key}`): expected {}",
                    describe(default)
                ))
            })?;
            let mut section_table = &mut table;
            for part in section.split('.') {
                let entry = section_table
                    .entry(part.to_owned())
                    .or_insert_with(|| Value::Table(Table::new()));
                let Value::Table(inner) = entry else {
                    return Err(ConfigError(format!(
                        "{origin}: `{section}` must be a table"
                    )));
                };
                section_table = inner;
            }
            section_table.insert(key.clone(), value);
        }
    }
    RawConfig::deserialize_table(table).map_err(|err| ConfigError(format!("{origin}: {err}")))
}

impl RawConfig {
    /// Decodes the merged table; an error names the key (`http.max_connections`) and says what
    /// it expects in plain words rather than Rust's type names.
    fn deserialize_table(table: Table) -> Result<RawConfig, String> {
        serde_path_to_error::deserialize(Value::Table(table).into_deserializer()).map_err(
            |err: serde_path_to_error::Error<toml::de::Error>| {
                let key = err.path().to_string();
                let message = err.into_inner().message().to_owned();
                format!("`{key}`: {}", plain_type_names(&message))
            },
        )
    }
}

/// serde's "expected usize" and the like, in words an operator reads.
fn plain_type_names(message: &str) -> String {
    const NAMES: &[(&str, &str)] = &[
        ("expected usize", "expected a whole number (0 or more)"),
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected u32", "expected a whole number (0 or more)"),
        ("expected u16", "expected a whole number (0 or more)"),
        ("expected f64", "expected a number"),
        ("expected a borrowed string", "expected a string"),
    ];
    NAMES
        .iter()
        .fold(message.to_owned(), |text, (rust, plain)| {
            text.replace(rust, plain)
        })
}

fn default_table() -> Table {
    Table::try_from(RawConfig::default()).expect("the default configuration serializes")
}

/// Parses an environment value as the same TOML type as `default`.
fn parse_like(default: &Value, text: &str) -> Option<Value> {
    let text = text.trim();
    match default {
        Value::String(_) => Some(Value::String(text.to_owned())),
        Value::Integer(_) => text.parse::<i64>().ok().map(Value::Integer),
        Value::Float(_) => text.parse::<f64>().ok().map(Value::Float),
        Value::Boolean(_) => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Some(Value::Boolean(false)),
            _ => None,
        },
        Value::Array(_) => format!("v = {text}")
            .parse::<Table>()
            .ok()
            .and_then(|mut t| t.remove("v")),
        Value::Datetime(_) | Value::Table(_) => None,
    }
}

fn describe(default: &Value) -> &'static str {
    match default {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "true or false",
        Value::Array(_) => "a TOML array, e.g. [\"a\", \"b\"]",
        Value::Datetime(_) | Value::Table(_) => "a value",
    }
}

use serde::de::IntoDeserializer;

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn env_overrides_file_and_parses_types() {
        let env = env_of(&[
            ("PANLINK_HTTP_MAX_CONNECTIONS", "77"),
            ("PANLINK_HTTP_HTTP2", "false"),
            ("PANLINK_SERVER_LOG_FORMAT", "json"),
        ]);
        let raw = merge("[http]\nmax_connections = 5\n", "t", &env).unwrap();
        assert_eq!(raw.http.max_connections, 77);
        assert!(!raw.http.http2);
        assert_eq!(raw.server.log_format, "json");
    }

    #[test]
    fn short_aliases_apply_and_long_form_wins() {
        let env = env_of(&[("PANLINK_LISTEN", "0.0.0.0:9")]);
        assert_eq!(merge("", "t", &env).unwrap().server.listen, "0.0.0.0:9");
        let env = env_of(&[
            ("PANLINK_DATA_DIR", "/short"),
            ("PANLINK_STORAGE_DATA_DIR", "/long"),
        ]);
        assert_eq!(merge("", "t", &env).unwrap().storage.data_dir, "/long");
    }

    #[test]
    fn bad_env_value_names_variable_and_key() {
        let env = env_of(&[("PANLINK_HTTP_MAX_IN_FLIGHT", "lots")]);
        let err = merge("", "t", &env).unwrap_err().to_string();
        assert!(err.contains("PANLINK_HTTP_MAX_IN_FLIGHT"), "{err}");
        assert!(err.contains("http.max_in_flight"), "{err}");
        assert!(err.contains("integer"), "{err}");
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let err = merge("[http]\nmax_conections = 5\n", "f.toml", &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_conections"), "{err}");
    }

    #[test]
    fn unknown_env_names_of_a_section_are_refused_and_others_set_aside() {
        let err = check_env_names(["PANLINK_HTTP_MAX_CONECTIONS"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("PANLINK_HTTP_MAX_CONECTIONS"), "{err}");
        assert!(err.contains("PANLINK_HTTP_MAX_CONNECTIONS"), "{err}");
        let ignored = check_env_names([
            "PANLINK_HTTP_MAX_CONNECTIONS",
            "PANLINK_LISTEN",
            "PANLINK_KEY",
            "HOME",
        ])
        .unwrap();
        assert_eq!(ignored, vec!["PANLINK_KEY".to_owned()]);
    }

    #[test]
    fn a_value_of_the_wrong_type_names_the_key_in_plain_words() {
        let err = merge(
            "[http]\nmax_connections = \"many\"\n",
            "f.toml",
            &env_of(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`http.max_connections`"), "{err}");
        assert!(err.contains("a whole number"), "{err}");
        assert!(!err.contains("usize"), "{err}");
        let env = env_of(&[("PANLINK_HTTP_MAX_CONNECTIONS", "-1")]);
        let err = merge("", "t", &env).unwrap_err().to_string();
        assert!(
            err.contains("`http.max_connections`") && err.contains("a whole number"),
            "{err}"
        );
    }

    #[test]
    fn every_key_has_an_env_name() {
        let keys = all_keys();
        assert!(keys.len() > 15);
        assert!(keys.contains(&("admin".into(), "token".into())));
        assert_eq!(
            env_name("http", "max_body_bytes"),
            "PANLINK_HTTP_MAX_BODY_BYTES"
        );
    }
}
