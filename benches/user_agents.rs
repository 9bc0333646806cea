//! The visitor rules' user-agent parsing, on the real strings of tests/fixtures/user_agents.tsv:
//! - the choice of crate: `woothee` (what panlink uses) against `uaparser` with uap-core's
//!   `regexes.yaml` (the most complete open rule set), cost per parse and OS accuracy, printed
//!   before the timings. uaparser runs only when `UAP_REGEXES` names the file
//!   (`scripts/bench-user-agents.sh` fetches uap-core from npm and sets it);
//! - the cost of three rules on the redirect: `rules::first_match` with a remembered user agent
//!   (the common case: a popular link's visitors share few user agents) and with a new one each
//!   time, against a link without rules (the reference: what every plain link pays).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use panlink::links::rules::{self, Rule};
use panlink::links::visitor::{self, Os};

/// (os, user agent) of every fixture row.
fn fixture() -> Vec<(&'static str, &'static str)> {
    include_str!("../tests/fixtures/user_agents.tsv")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols[0], cols[3])
        })
        .collect()
}

fn os_name(os: Option<Os>) -> &'static str {
    match os {
        Some(Os::Ios) => "ios",
        Some(Os::Android) => "android",
        Some(Os::Windows) => "windows",
        Some(Os::Macos) => "macos",
        Some(Os::Linux) => "linux",
        None => "-",
    }
}

fn uap_os_name(family: &str) -> &'static str {
    match family {
        "iOS" => "ios",
        "Android" => "android",
        "Mac OS X" => "macos",
        "Linux" | "Ubuntu" => "linux",
        f if f.starts_with("Windows") => "windows",
        _ => "-",
    }
}

fn candidates(c: &mut Criterion) {
    use uaparser::Parser;
    let rows = fixture();
    let right = rows
        .iter()
        .filter(|(os, ua)| os_name(visitor::parse(ua).os) == *os)
        .count();
    println!(
        "woothee: OS right for {right} of {} user agents",
        rows.len()
    );
    let uap = std::env::var("UAP_REGEXES")
        .ok()
        .map(|path| uaparser::UserAgentParser::from_yaml(&path).expect("uap-core regexes.yaml"));
    if let Some(uap) = &uap {
        let right = rows
            .iter()
            .filter(|(os, ua)| uap_os_name(&uap.parse_os(ua).family) == *os)
            .count();
        println!(
            "uaparser: OS right for {right} of {} user agents",
            rows.len()
        );
    } else {
        println!("uaparser: skipped (UAP_REGEXES is not set)");
    }
    let mut group = c.benchmark_group("user-agent parse, fixture strings in turn");
    let mut i = 0usize;
    let mut next = || {
        i = (i + 1) % rows.len();
        rows[i].1
    };
    group.bench_function("woothee + app tokens (visitor::parse)", |b| {
        b.iter(|| visitor::parse(black_box(next())))
    });
    if let Some(uap) = &uap {
        group.bench_function("uaparser: OS + device", |b| {
            b.iter(|| {
                let ua = black_box(next());
                (
                    uap.parse_os(ua).family.len(),
                    uap.parse_device(ua).family.len(),
                )
            })
        });
    }
    group.finish();
}

fn three_rules(c: &mut Criterion) {
    let rules: Vec<Rule> = serde_json::from_value(serde_json::json!([
        {"if": {"app": ["wechat", "qq"]}, "action": "open_in_browser"},
        {"if": {"os": ["ios"]}, "url": "https://example.com/ios"},
        {"if": {"language": ["ja"]}, "url": "https://example.com/ja"}
    ]))
    .unwrap();
    let desktop: &[u8] = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    let language: &[u8] = b"zh-CN,zh;q=0.9,en;q=0.8";
    let fresh: Vec<Vec<u8>> = (0..4096)
        .map(|i| {
            format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/{i}.0.0.0 Safari/537.36")
                .into_bytes()
        })
        .collect();
    let mut group = c.benchmark_group("visitor rules on the redirect (none matching)");
    group.bench_function("reference: a link without rules", |b| {
        b.iter(|| rules::first_match(black_box(&[]), Some(desktop), Some(language)))
    });
    group.bench_function("3 rules, remembered user agent", |b| {
        b.iter(|| rules::first_match(black_box(&rules), Some(black_box(desktop)), Some(language)))
    });
    let mut i = 0usize;
    group.bench_function("3 rules, a new user agent each time", |b| {
        b.iter(|| {
            i = (i + 1) % fresh.len();
            rules::first_match(black_box(&rules), Some(&fresh[i]), Some(language))
        })
    });
    group.finish();
}

criterion_group!(benches, candidates, three_rules);
criterion_main!(benches);
