//! Integration tests: every test drives the real `panlink` binary over HTTP.
//! One test binary (faster linking on 2 cores), one module per area.

mod admin_api;
mod auth;
mod backup;
mod checker;
mod cli;
mod container;
mod crash;
mod disk;
mod edge;
mod export;
mod fairness;
mod faults;
mod handover;
mod harness;
mod hostile;
mod jobs;
mod lifecycle;
mod link_domains;
mod link_limits;
mod link_rules;
mod link_targets;
mod link_transfer;
mod links;
mod monitors;
mod observability;
mod readme;
mod receiver;
mod scopes;
mod security;
mod storage;
mod systemd;
mod tidy;
mod web;
mod webhooks;
