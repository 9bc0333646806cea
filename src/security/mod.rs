//! The URL security check (`POST /api/v1/tools/security-check`): offline rules
//! ([`rules`]), a bundled and operator-extended blocklist ([`lists`]), and a DNS look-up under a
//! short timeout whose answers are checked against private ranges. Deterministic for a given
//! URL, blocklist and DNS answer; needs no network beyond the DNS query, and a failed query is
//! a finding (`unresolvable_host`), never an error.
//!
//! Invariant: a verdict is returned only after the commit that debits its points; nothing is
//! debited for a refused request (bad URL, too few points).

pub mod api;
pub mod lists;
pub mod rules;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use url::Url;

use crate::config::SecurityConfig;
use lists::{Blocklist, BlocklistError};
use rules::{Findings, Risk};

/// The verdict of one check.
#[derive(Debug)]
pub struct Assessment {
    pub risks: Vec<Risk>,
}

impl Assessment {
    /// No unsafe finding.
    pub fn safe(&self) -> bool {
        !self.risks.iter().any(|r| r.is_unsafe())
    }

    /// `safe`, `suspicious` or `unsafe`.
    pub fn level(&self) -> &'static str {
        if !self.safe() {
            "unsafe"
        } else if self.risks.is_empty() {
            "safe"
        } else {
            "suspicious"
        }
    }

    /// The findings in words (Chinese).
    pub fn reason(&self) -> String {
        if self.risks.is_empty() {
            return "未发现风险".to_owned();
        }
        self.risks
            .iter()
            .map(|r| r.reason())
            .collect::<Vec<_>>()
            .join("；")
    }
}

/// The checker: blocklist and resolver, built once at start-up.
pub struct SecurityChecker {
    blocklist: Blocklist,
    resolver: Option<TokioResolver>,
    dns_timeout: Duration,
    pub points_per_check: u64,
}

/// Why the checker could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(transparent)]
    Blocklist(#[from] BlocklistError),
}

impl SecurityChecker {
    pub fn new(config: &SecurityConfig) -> Result<SecurityChecker, SecurityError> {
        let blocklist = Blocklist::load(config.blocklist_file.as_deref())?;
        tracing::info!(domains = blocklist.len(), "security check blocklist loaded");
        let resolver = match build_resolver(config.dns_server, config.dns_timeout) {
            Ok(resolver) => Some(resolver),
            Err(err) => {
                tracing::warn!(error = %err, "no DNS resolver for the security check: every name will be `unresolvable_host`");
                None
            }
        };
        Ok(SecurityChecker {
            blocklist,
            resolver,
            dns_timeout: config.dns_timeout,
            points_per_check: config.points_per_check,
        })
    }

    /// Checks `url` (`raw_len`: its length as submitted; `own_hosts`: this service's hosts).
    pub async fn assess(&self, url: &Url, raw_len: usize, own_hosts: &[&str]) -> Assessment {
        let mut found = rules::inspect(url, raw_len, &self.blocklist, own_hosts);
        if let Some(name) = found.resolve.take() {
            self.resolve_into(&name, &mut found).await;
        }
        found.risks.sort();
        Assessment { risks: found.risks }
    }

    async fn resolve_into(&self, name: &str, found: &mut Findings) {
        let Some(resolver) = &self.resolver else {
            found.add(Risk::UnresolvableHost);
            return;
        };
        let lookup = tokio::time::timeout(self.dns_timeout, resolver.lookup_ip(format!("{name}.")));
        match lookup.await {
            Ok(Ok(answer)) => {
                let mut any = false;
                for ip in answer.iter() {
                    any = true;
                    if !rules::is_public_including_tunnels(ip) {
                        found.add(Risk::PrivateNetwork);
                    }
                }
                if !any {
                    found.add(Risk::UnresolvableHost);
                }
            }
            Ok(Err(_)) | Err(_) => found.add(Risk::UnresolvableHost),
        }
    }
}

fn build_resolver(
    server: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TokioResolver, hickory_resolver::net::NetError> {
    use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    let mut builder = match server {
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
                addr.ip(),
                true,
                vec![udp],
            )]);
            hickory_resolver::Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        }
        None => TokioResolver::builder_tokio()?,
    };
    let options = builder.options_mut();
    options.timeout = timeout;
    options.attempts = 1;
    options.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
    builder.build()
}
