//! Configuration: parsed once, validated once, then passed around as typed values.
//!
//! Each key is declared once, in [`settings`], with its doc, default and rule; from there come
//! [`RawConfig`] (`config.toml` one to one, serde) and [`Config`] (what the rest of the program
//! receives: durations, socket addresses, paths, checked ranges), and `config.toml` itself
//! (`panlink default-config` prints it; a test keeps the shipped file equal). Sources, lowest
//! first: built-in defaults, the TOML file, then environment variables `PANLINK_<SECTION>_<KEY>`
//! (plus the short forms in [`sources::SHORT_ENV_ALIASES`]). Nothing else in the program reads the
//! environment.

#[macro_use]
mod declare;
pub mod rules;
mod settings;
pub mod sources;

use std::path::Path;

pub use declare::{PerDrive, PerDriveRaw};
pub use settings::{
    AdminConfig, CacheTtl, CheckConfig, CheckerConfig, ClusterConfig, Config, DriveConfig,
    HttpConfig, JobsConfig, KeysConfig, LinksConfig, LogColor, LogFormat, MonitorsConfig,
    ProviderCookies, RawConfig, SecurityConfig, ServerConfig, StorageConfig, WebhooksConfig,
};

/// A configuration problem that stops start-up. The message names the key and what it accepts.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// The opening comment of `config.toml`.
const TEMPLATE_HEADER: &str = "\
panlink configuration. Every key is shown with its built-in default: delete any line and the
default applies. Every key can be overridden by an environment variable PANLINK_<SECTION>_<KEY>,
e.g. PANLINK_HTTP_MAX_CONNECTIONS=5000, or in a drive's section
PANLINK_DRIVES_BAIDU_ENABLED=false; the short forms PANLINK_LISTEN, PANLINK_DATA_DIR,
PANLINK_ADMIN_TOKEN and PANLINK_PUBLIC_BASE_URL also work. An invalid value stops start-up with
a message naming the key and what it accepts. This file is printed by `panlink default-config`.";

/// `config.toml` with every key at its default, documented (what `panlink default-config` prints).
pub fn default_config_toml() -> String {
    declare::template(TEMPLATE_HEADER, &settings::documented_sections())
}

impl Config {
    /// Loads the configuration: `path` if given (it must exist), else `./config.toml` if present,
    /// else the built-in defaults; then the environment overrides read through `env`.
    pub fn load(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let (text, origin) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|err| {
                    ConfigError(format!("cannot read config file {}: {err}", path.display()))
                })?;
                (text, path.display().to_string())
            }
            None => match std::fs::read_to_string("config.toml") {
                Ok(text) => (text, "./config.toml".to_owned()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    (String::new(), "built-in defaults".to_owned())
                }
                Err(err) => return Err(ConfigError(format!("cannot read ./config.toml: {err}"))),
            },
        };
        let raw = sources::merge(&text, &origin, env)?;
        Config::from_raw(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_validate() {
        let config = Config::from_raw(RawConfig::default()).unwrap();
        assert_eq!(config.server.listen.port(), 8080);
        assert_eq!(config.storage.data_dir, PathBuf::from("data"));
        assert!(config.admin.token.is_none());
    }

    #[test]
    fn out_of_range_names_key_and_range() {
        let raw = sources::merge("[http]\nmax_connections = 0\n", "test", &no_env).unwrap();
        let err = Config::from_raw(raw).unwrap_err().to_string();
        assert!(err.contains("http.max_connections"), "{err}");
        assert!(err.contains("between 1 and 1000000"), "{err}");
        let raw = sources::merge("[http]\nlisten_backlog = 70000\n", "test", &no_env).unwrap();
        let err = Config::from_raw(raw).unwrap_err().to_string();
        assert!(err.contains("http.listen_backlog"), "{err}");
        assert!(err.contains("between 1 and 65535"), "{err}");
    }

    #[test]
    fn each_drive_has_its_own_section_from_the_file_or_the_environment() {
        use crate::drive::Provider;
        let env = |name: &str| (name == "PANLINK_DRIVES_QUARK_RATE_PER_S").then(|| "7".to_owned());
        let raw = sources::merge("[drives.baidu]\nenabled = false\n", "t", &env).unwrap();
        let config = Config::from_raw(raw).unwrap();
        assert!(!config.drives.of(Provider::Baidu).enabled);
        assert_eq!(config.drives.of(Provider::Baidu).rate_per_s, 0);
        assert_eq!(config.drives.of(Provider::Quark).rate_per_s, 7);
        assert!(config.drives.of(Provider::Cmcc).enabled);
        let err = sources::merge("[drives.nodrive]\nenabled = false\n", "t", &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nodrive"), "{err}");
        let raw = sources::merge("[drives.uc]\nconcurrency = 20000\n", "t", &no_env).unwrap();
        let err = Config::from_raw(raw).unwrap_err().to_string();
        assert!(err.contains("drives.uc.concurrency"), "{err}");
        let err = sources::check_env_names(["PANLINK_DRIVES_UC_SPEED"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("PANLINK_DRIVES_UC_RATE_PER_S"), "{err}");
        let err = sources::check_env_names(["PANLINK_DRIVES_NODRIVE_ENABLED"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("quark") && err.contains("lanzou"), "{err}");
    }

    #[test]
    fn provider_cookies_are_checked_and_never_printed() {
        let load = |text: &str| Config::from_raw(sources::merge(text, "t", &no_env).unwrap());
        let config = load("[checker]\ncookies = [\"baidu=BDUSS=secret-1; STOKEN=x\"]\n").unwrap();
        let cookies = &config.checker.cookies;
        assert_eq!(
            cookies.of(crate::drive::Provider::Baidu),
            Some("BDUSS=secret-1; STOKEN=x")
        );
        assert_eq!(cookies.of(crate::drive::Provider::Quark), None);
        let printed = format!("{config:?}");
        assert!(!printed.contains("secret-1"), "{printed}");
        assert!(printed.contains("baidu=<redacted>"), "{printed}");
        for bad in ["nodrive=a", "baidu", "baidu=", "baidu=a\\u0007b"] {
            let err = load(&format!("[checker]\ncookies = [\"{bad}\"]\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("checker.cookies"), "{bad}: {err}");
            assert!(!err.contains("a\u{7}b"), "{err}");
        }
        assert!(load("[checker]\ncookies = [\"baidu=a\", \"baidu=b\"]\n").is_err());
    }

    #[test]
    fn short_domains_are_checked_alone_and_together() {
        let load = |text: &str| Config::from_raw(sources::merge(text, "t", &no_env).unwrap());
        let config = load("[links]\ndomains = [\"S.Example.com.\", \"go.example.cn\"]\n").unwrap();
        assert_eq!(config.links.domains, ["s.example.com", "go.example.cn"]);
        assert_eq!(config.links.default_domain, None);
        let err = load("[links]\ndomains = [\"a.example\"]\ndefault_domain = \"b.example\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("links.default_domain"), "{err}");
        for bad in ["a.example:8080", "https://a.example", "a.example/x"] {
            let err = load(&format!("[links]\ndomains = [{bad:?}]\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("links.domains"), "{bad}: {err}");
        }
        let long = format!("{}.example", "a".repeat(200));
        assert!(load(&format!("[links]\ndomains = [{long:?}]\n")).is_err());
        assert!(load("[links]\ndomains = [\"a.example\", \"A.example\"]\n").is_err());
        assert!(load("[links]\ndomain_scheme = \"ftp\"\n").is_err());
    }

    #[test]
    fn bad_listen_and_log_format_are_named() {
        let raw = sources::merge("[server]\nlisten = \"nope\"\n", "t", &no_env).unwrap();
        assert!(
            Config::from_raw(raw)
                .unwrap_err()
                .to_string()
                .contains("server.listen")
        );
        let raw = sources::merge("[server]\nlog_format = \"xml\"\n", "t", &no_env).unwrap();
        assert!(
            Config::from_raw(raw)
                .unwrap_err()
                .to_string()
                .contains("server.log_format")
        );
    }

    #[test]
    fn public_base_url_is_trimmed_and_checked() {
        let raw = sources::merge(
            "[server]\npublic_base_url = \"https://s.example/\"\n",
            "t",
            &no_env,
        )
        .unwrap();
        let config = Config::from_raw(raw).unwrap();
        assert_eq!(
            config.server.public_base_url.as_deref(),
            Some("https://s.example")
        );
        let raw =
            sources::merge("[server]\npublic_base_url = \"s.example\"\n", "t", &no_env).unwrap();
        assert!(Config::from_raw(raw).is_err());
    }

    /// `config.toml` at the repository root is the template printed from the declarations, and
    /// it parses back to the defaults.
    #[test]
    fn shipped_config_toml_is_printed_from_the_declarations() {
        let shipped = include_str!("../../config.toml");
        let printed = default_config_toml();
        assert!(
            shipped == printed,
            "config.toml differs from the declared keys: run `cargo run -- default-config > config.toml`"
        );
        let raw = sources::merge(&printed, "config.toml", &no_env).unwrap();
        assert_eq!(raw, RawConfig::default());
        for (section, key) in sources::all_keys() {
            let documented = printed
                .split(&format!("[{section}]"))
                .nth(1)
                .is_some_and(|rest| rest.lines().any(|l| l.starts_with(&format!("{key} = "))));
            assert!(documented, "the template misses `{section}.{key}`");
        }
    }

    #[test]
    fn every_key_has_a_doc_and_the_template_stays_narrow() {
        for section in settings::documented_sections() {
            for key in &section.keys {
                assert!(
                    !key.doc.is_empty(),
                    "`{}.{}` has no doc",
                    section.name,
                    key.name
                );
            }
        }
        for line in default_config_toml().lines().filter(|l| l.starts_with('#')) {
            assert!(line.chars().count() <= 100, "too long: {line}");
        }
    }

    #[test]
    fn proxies_are_checked() {
        let raw = sources::merge(
            "[checker]\nproxies = [\"http://u:p@10.0.0.1:3128\"]\nproxy_providers = [\"baidu\"]\n",
            "t",
            &no_env,
        )
        .unwrap();
        let config = Config::from_raw(raw).unwrap();
        assert_eq!(config.checker.proxies.len(), 1);
        assert_eq!(
            config.checker.proxy_providers,
            vec![crate::drive::Provider::Baidu]
        );
        for bad in [
            "[checker]\nproxies = [\"socks5://h:1\"]\n",
            "[checker]\nproxies = [\"http://h\"]\n",
            "[checker]\nproxy_providers = [\"dropbox\"]\n",
        ] {
            let raw = sources::merge(bad, "t", &no_env).unwrap();
            assert!(
                Config::from_raw(raw)
                    .unwrap_err()
                    .to_string()
                    .contains("checker.prox"),
                "{bad}"
            );
        }
        let env = |name: &str| {
            (name == "PANLINK_CHECKER_PROXIES").then(|| "[\"http://127.0.0.1:8888\"]".to_owned())
        };
        let config = Config::from_raw(sources::merge("", "t", &env).unwrap()).unwrap();
        assert_eq!(config.checker.proxies[0].port_u16(), Some(8888));
    }

    #[test]
    fn checked_keys_name_themselves() {
        for (text, key) in [
            ("[links]\nredirect_status = 303\n", "links.redirect_status"),
            ("[storage]\ndata_dir = \" \"\n", "storage.data_dir"),
            (
                "[security]\ndns_server = \"localhost\"\n",
                "security.dns_server",
            ),
            ("[checker]\nuser_agent = \"\"\n", "checker.user_agent"),
            (
                "[checker]\nretry_budget_ratio = 1.5\n",
                "checker.retry_budget_ratio",
            ),
            ("[server]\nlog_level = \"info,=x=\"\n", "server.log_level"),
            ("[server]\nlog_level = \"warning\"\n", "server.log_level"),
            ("[server]\nlog_level = \"verbose\"\n", "server.log_level"),
            (
                "[server]\nlog_level = \"panlink=debugg\"\n",
                "server.log_level",
            ),
        ] {
            let raw = sources::merge(text, "t", &no_env).unwrap();
            let err = Config::from_raw(raw).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let raw = sources::merge("[storage]\nmap_size_mb = 2\n", "t", &no_env).unwrap();
        assert_eq!(
            Config::from_raw(raw).unwrap().storage.map_size_bytes,
            2 << 20
        );
    }

    #[test]
    fn log_levels_and_directives_are_accepted() {
        for filter in [
            "info",
            "WARN",
            "off",
            "info,panlink=debug",
            "panlink=trace,hyper=warn",
        ] {
            let text = format!("[server]\nlog_level = {filter:?}\n");
            let raw = sources::merge(&text, "t", &no_env).unwrap();
            assert!(Config::from_raw(raw).is_ok(), "{filter}");
        }
    }

    #[test]
    fn short_admin_token_is_refused() {
        let raw = sources::merge("[admin]\ntoken = \"short\"\n", "t", &no_env).unwrap();
        assert!(
            Config::from_raw(raw)
                .unwrap_err()
                .to_string()
                .contains("admin.token")
        );
    }
}
