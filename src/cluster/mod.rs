//! Cluster mode on NATS JetStream: this node's connection to the cluster's NATS servers, its
//! heartbeats in the `panlink_nodes` key-value bucket, the live nodes as that bucket's watch
//! shows them (for `/health` and `/pool`), and what products keep their state in: replicated
//! buckets ([`bucket`]), logs ([`log`]) and work queues ([`work`]).
//!
//! It knows the engine and no product; it must not interpret product state. With
//! `cluster.nats_urls` empty nothing here runs and NATS is never contacted. The design that
//! builds on it (keys, links, clicks and checks on JetStream) is `docs/cluster.md`.
//!
//! Invariant: a node starts in cluster mode only against nats-server 2.10 or newer (older
//! servers accept concurrent compare-and-set writes against one revision; docs/cluster.md).

pub mod bucket;
pub mod changes;
mod follow;
pub mod log;
pub mod work;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::ClusterConfig;
use bucket::{Bucket, BucketView};

/// The bucket of node heartbeats: one key per node, its entries expire after `node_ttl`.
pub const NODES_BUCKET: &str = "panlink_nodes";

/// The pause between two attempts to reach NATS at start-up.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// The oldest nats-server cluster mode accepts.
pub const MIN_SERVER_VERSION: (u64, u64, u64) = (2, 10, 0);

/// Why joining the cluster failed (start-up stops; the message names what to change).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("connecting to NATS ({urls}): {reason}")]
    Connect { urls: String, reason: String },
    #[error(
        "nats-server {version} at {server} is older than {min}: cluster mode needs 2.10 or newer (older servers accept concurrent compare-and-set writes; docs/cluster.md)",
        min = version_text(MIN_SERVER_VERSION)
    )]
    ServerTooOld { version: String, server: String },
    #[error(
        "opening the JetStream bucket or stream {bucket} with {replicas} replicas: {reason} (is JetStream on, and are there cluster.replicas servers?)"
    )]
    Bucket {
        bucket: &'static str,
        replicas: usize,
        reason: String,
    },
}

fn version_text((major, minor, patch): (u64, u64, u64)) -> String {
    format!("{major}.{minor}.{patch}")
}

/// `major.minor.patch` of a server's version string ("2.15.1", "2.11.0-RC.1"); `None` if it is
/// not one.
pub fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let core = text.trim().trim_start_matches('v');
    let core = core.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|part| part.parse::<u64>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// What a node says of itself in its heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeInfo {
    pub node_id: String,
    /// The address its HTTP server listens on.
    pub listen: String,
    /// panlink's version.
    pub version: String,
    pub started_at_ms: u64,
    /// Its lanes' load when it sent the heartbeat, as the layer above describes it (this module
    /// carries it without reading it).
    #[serde(default)]
    pub load: serde_json::Value,
}

/// The JetStream side: the nodes' bucket's Raft group, as its stream reports it.
#[derive(Debug, Clone, Serialize)]
pub struct JetStreamView {
    /// The JetStream cluster's name (none for a lone server).
    pub cluster: Option<String>,
    /// The server leading the bucket's group.
    pub leader: Option<String>,
    /// The other servers holding a copy, and whether each is current.
    pub replicas: Vec<ReplicaView>,
    /// Entries in the nodes' bucket.
    pub node_entries: u64,
    /// The work queues' consumers that have messages waiting or handed out (idle ones are left
    /// out).
    pub work: Vec<work::TakerView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplicaView {
    pub server: String,
    pub current: bool,
    pub offline: bool,
    /// Operations it is behind the leader.
    pub lag: u64,
}

/// A live node as `/health` shows it.
#[derive(Debug, Serialize)]
pub struct NodeView {
    #[serde(flatten)]
    pub info: NodeInfo,
    /// Time since its last heartbeat reached this node.
    pub heartbeat_age_ms: u64,
}

/// The cluster as this node sees it, for `/health` and `/pool`.
#[derive(Debug, Serialize)]
pub struct ClusterView {
    pub node_id: String,
    pub nats_connected: bool,
    pub nats_server_version: String,
    pub replicas: usize,
    /// Nodes with a heartbeat younger than `cluster.node_ttl_ms`, by id (this one included).
    pub nodes: Vec<NodeView>,
    /// As of the last heartbeat; `None` until one read it, or while NATS is out of reach.
    pub jetstream: Option<JetStreamView>,
    /// The product buckets this node keeps a local copy of, and how far its copy is.
    pub buckets: Vec<BucketView>,
}

/// This node's membership.
pub struct Cluster {
    me: NodeInfo,
    client: async_nats::Client,
    jetstream: async_nats::jetstream::Context,
    nodes_bucket: kv::Store,
    /// The JetStream side as the last heartbeat read it.
    jetstream_view: Mutex<Option<JetStreamView>>,
    ttl: Duration,
    replicas: usize,
    server_version: String,
    /// Every node whose heartbeat the watch delivered, with when it arrived here.
    seen: Arc<Mutex<HashMap<String, (NodeInfo, Instant)>>>,
    /// Told of every entry the watch delivers (a heartbeat, a node leaving).
    seen_changed: tokio::sync::Notify,
    /// Bumped whenever the set of live nodes changes ([`Membership::changes`]).
    live_changes: tokio::sync::watch::Sender<u64>,
    /// The product buckets opened so far.
    buckets: Mutex<Vec<Bucket>>,
    /// The product logs opened so far.
    logs: Mutex<Vec<log::Log>>,
    /// The product work queues opened so far.
    work_queues: Mutex<Vec<work::WorkQueue>>,
}

impl Cluster {
    /// Joins the cluster `config` names (`None` in single-node mode, without contacting NATS):
    /// connects, checks the server's version, opens the nodes' bucket and sends a first heartbeat.
    pub async fn join(
        config: &ClusterConfig,
        listen: SocketAddr,
        started_at_ms: u64,
    ) -> Result<Option<Arc<Cluster>>, ClusterError> {
        if config.nats_urls.is_empty() {
            return Ok(None);
        }
        let urls = config.nats_urls.join(",");
        let node_id = config
            .node_id
            .clone()
            .unwrap_or_else(|| default_node_id(listen));
        let connect_error = |reason: String| ClusterError::Connect {
            urls: urls.clone(),
            reason,
        };
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("panlink {node_id}"))
            .connection_timeout(config.connect_timeout);
        if let Some(path) = &config.credentials_file {
            options = options.credentials_file(path).await.map_err(|err| {
                connect_error(format!("reading credentials {}: {err}", path.display()))
            })?;
        }
        let addresses = config
            .nats_urls
            .iter()
            .map(|url| url.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| connect_error(err.to_string()))?;
        // Nodes and NATS servers often start together: a refused connection, or a new cluster
        // without a JetStream leader yet, is tried again until `connect_timeout`.
        let deadline = tokio::time::Instant::now() + config.connect_timeout;
        let client = loop {
            let attempt =
                tokio::time::timeout_at(deadline, options.clone().connect(addresses.clone())).await;
            match attempt {
                Ok(Ok(client)) => break client,
                Ok(Err(err)) if tokio::time::Instant::now() + RETRY_PAUSE < deadline => {
                    tracing::debug!(error = %err, "NATS not reachable yet; trying again");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Ok(Err(err)) => return Err(connect_error(err.to_string())),
                Err(_) => {
                    return Err(connect_error(format!(
                        "no answer within {:?}",
                        config.connect_timeout
                    )));
                }
            }
        };
        let info = client.server_info();
        match parse_version(&info.version) {
            Some(version) if version >= MIN_SERVER_VERSION => {}
            _ => {
                return Err(ClusterError::ServerTooOld {
                    version: info.version.clone(),
                    server: format!("{}:{}", info.host, info.port),
                });
            }
        }
        let jetstream = async_nats::jetstream::new(client.clone());
        let bucket = kv::Config {
            bucket: NODES_BUCKET.to_owned(),
            description: "panlink nodes' heartbeats".to_owned(),
            history: 1,
            max_age: config.node_ttl,
            num_replicas: config.replicas,
            ..Default::default()
        };
        let nodes_bucket = loop {
            match jetstream.create_or_update_key_value(bucket.clone()).await {
                Ok(store) => break store,
                Err(err) if tokio::time::Instant::now() + RETRY_PAUSE < deadline => {
                    tracing::debug!(error = %err, "JetStream not ready yet; trying again");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(err) => {
                    return Err(ClusterError::Bucket {
                        bucket: NODES_BUCKET,
                        replicas: config.replicas,
                        reason: err.to_string(),
                    });
                }
            }
        };
        let cluster = Arc::new(Cluster {
            me: NodeInfo {
                node_id,
                listen: listen.to_string(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                started_at_ms,
                load: serde_json::Value::Null,
            },
            client,
            jetstream,
            nodes_bucket,
            jetstream_view: Mutex::new(None),
            ttl: config.node_ttl,
            replicas: config.replicas,
            server_version: info.version.clone(),
            seen: Arc::default(),
            seen_changed: tokio::sync::Notify::new(),
            live_changes: tokio::sync::watch::Sender::new(0),
            buckets: Mutex::new(Vec::new()),
            logs: Mutex::new(Vec::new()),
            work_queues: Mutex::new(Vec::new()),
        });
        wait_for_leader(NODES_BUCKET, &cluster.nodes_bucket.stream).await;
        // A stream just created in a new cluster may refuse writes until its group has formed.
        loop {
            match cluster.heartbeat(serde_json::Value::Null).await {
                Ok(_) => break,
                Err(reason) if tokio::time::Instant::now() + RETRY_PAUSE < deadline => {
                    tracing::debug!(
                        reason,
                        "the nodes' bucket is not writable yet; trying again"
                    );
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(reason) => {
                    return Err(ClusterError::Bucket {
                        bucket: NODES_BUCKET,
                        replicas: config.replicas,
                        reason,
                    });
                }
            }
        }
        tracing::info!(
            node_id = cluster.me.node_id,
            nats_server = cluster.server_version,
            "joined the cluster"
        );
        Ok(Some(cluster))
    }

    fn opening_failed(&self, name: &'static str, err: impl std::fmt::Display) -> ClusterError {
        ClusterError::Bucket {
            bucket: name,
            replicas: self.replicas,
            reason: err.to_string(),
        }
    }

    /// Opens (creating it if needed) the product bucket `name`: `cluster.replicas` copies, one
    /// value per key kept (a key's history is the products' own business).
    pub async fn bucket(&self, name: &'static str) -> Result<Bucket, ClusterError> {
        let bucket = self.open_bucket(name, Duration::ZERO).await?;
        self.buckets.lock().push(bucket.clone());
        Ok(bucket)
    }

    /// Opens (creating it if needed) a bucket of short-lived entries that no node copies: each
    /// value expires `max_age` after it was written. It is read and written only through its
    /// keys, so `/health` does not list it among the followed buckets.
    pub async fn scratch_bucket(
        &self,
        name: &'static str,
        max_age: Duration,
    ) -> Result<Bucket, ClusterError> {
        self.open_bucket(name, max_age).await
    }

    /// `max_age` zero: values never expire.
    async fn open_bucket(
        &self,
        name: &'static str,
        max_age: Duration,
    ) -> Result<Bucket, ClusterError> {
        let config = kv::Config {
            bucket: name.to_owned(),
            history: 1,
            num_replicas: self.replicas,
            max_age,
            ..Default::default()
        };
        let store = self
            .jetstream
            .create_or_update_key_value(config)
            .await
            .map_err(|err| self.opening_failed(name, err))?;
        wait_for_leader(name, &store.stream).await;
        Ok(Bucket {
            name,
            store,
            jetstream: self.jetstream.clone(),
            progress: Arc::default(),
        })
    }

    /// Opens (creating it if needed) the product stream `name` over subjects `<name>.>`:
    /// `cluster.replicas` copies, a message published twice within two minutes kept once, and
    /// `config`'s retention.
    async fn stream(
        &self,
        name: &'static str,
        config: async_nats::jetstream::stream::Config,
    ) -> Result<async_nats::jetstream::stream::Stream, ClusterError> {
        let config = async_nats::jetstream::stream::Config {
            name: name.to_owned(),
            subjects: vec![format!("{name}.>")],
            num_replicas: self.replicas,
            duplicate_window: Duration::from_secs(120),
            ..config
        };
        let stream = self
            .jetstream
            .get_or_create_stream(config)
            .await
            .map_err(|err| self.opening_failed(name, err))?;
        wait_for_leader(name, &stream).await;
        Ok(stream)
    }

    /// Opens (creating it if needed) the product log `name`: records kept for `max_age` (see
    /// [`Cluster::stream`]).
    pub async fn log(
        &self,
        name: &'static str,
        max_age: Duration,
    ) -> Result<log::Log, ClusterError> {
        let config = async_nats::jetstream::stream::Config {
            max_age,
            ..Default::default()
        };
        let log = log::Log {
            name,
            node: self.me.node_id.clone(),
            jetstream: self.jetstream.clone(),
            stream: self.stream(name, config).await?,
            progress: Arc::default(),
        };
        self.logs.lock().push(log.clone());
        Ok(log)
    }

    /// Opens (creating it if needed) the product work queue `name`: each message kept until a
    /// node acknowledges it (see [`Cluster::stream`]).
    pub async fn work_queue(&self, name: &'static str) -> Result<work::WorkQueue, ClusterError> {
        let config = async_nats::jetstream::stream::Config {
            retention: async_nats::jetstream::stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        };
        let queue = work::WorkQueue {
            name,
            jetstream: self.jetstream.clone(),
            stream: self.stream(name, config).await?,
        };
        self.work_queues.lock().push(queue.clone());
        Ok(queue)
    }

    /// Sends heartbeats (each with `load()`, this node's load now) and follows the others' until
    /// `stop`, then leaves (deletes this node's entry, so the others drop it at once rather than
    /// after `node_ttl`).
    pub async fn run(
        self: Arc<Self>,
        stop: CancellationToken,
        load: impl Fn() -> serde_json::Value + Send + 'static,
    ) {
        // The JetStream view is read on its own beat: a request to a server that just died waits
        // for the client's timeout, and heartbeats must never wait for it.
        tokio::spawn(Box::pin(Arc::clone(&self).read_views(stop.clone())));
        tokio::spawn(Box::pin(Arc::clone(&self).watch_live_set(stop.clone())));
        let mut beat = tokio::time::interval(self.ttl / 3);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The revision of this node's last heartbeat: leaving deletes only that one, never the
        // entry of a server that took this one's place (a handover) with the same id.
        let mut last_beat = None;
        let mut watch = None;
        // When the watch last delivered: it delivers this node's own heartbeats too, so one
        // silent for longer than `ttl` is stuck (a watch on a server killed may wait forever
        // without an error) and is opened again.
        let mut last_entry = Instant::now();
        loop {
            tokio::select! {
                _ = beat.tick() => {
                    match self.heartbeat(load()).await {
                        Ok(revision) => last_beat = Some(revision),
                        Err(err) => tracing::warn!(error = %err, "a cluster heartbeat failed"),
                    }
                    if watch.is_some() && last_entry.elapsed() > self.ttl {
                        tracing::warn!("the watch of the cluster's nodes went quiet; reopening");
                        watch = None;
                    }
                    // (Re)opened here, so that a failing watch is retried once per heartbeat.
                    if watch.is_none() {
                        last_entry = Instant::now();
                        match self.nodes_bucket.watch_all().await {
                            Ok(stream) => watch = Some(stream),
                            Err(err) => tracing::warn!(error = %err, "watching the cluster's nodes failed; retrying"),
                        }
                    }
                }
                entry = next_entry(&mut watch) => match entry {
                    Some(Ok(entry)) => {
                        last_entry = Instant::now();
                        self.apply(entry);
                    }
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "the watch of the cluster's nodes failed; reopening");
                        watch = None;
                    }
                    None => watch = None,
                },
                () = stop.cancelled() => break,
            }
        }
        if let Err(err) = self
            .nodes_bucket
            .delete_expect_revision(&self.me.node_id, last_beat)
            .await
        {
            tracing::warn!(error = %err, "leaving the cluster's node list failed; the entry expires instead");
        }
        let _ = self.client.flush().await;
    }

    /// Tells [`Membership::changes`] whenever the live nodes change, until `stop`: wakes on
    /// every entry the watch delivers and when the oldest live heartbeat reaches `ttl`, so a node
    /// that went silent is seen gone at once, and nothing polls in between.
    async fn watch_live_set(self: Arc<Self>, stop: CancellationToken) {
        let mut live: Vec<String> = Vec::new();
        loop {
            let (now_live, next_expiry) = {
                let seen = self.seen.lock();
                let alive = || seen.iter().filter(|(_, (_, at))| at.elapsed() < self.ttl);
                let mut ids: Vec<String> = alive().map(|(id, _)| id.clone()).collect();
                ids.sort_unstable();
                (ids, alive().map(|(_, (_, at))| *at + self.ttl).min())
            };
            if now_live != live {
                live = now_live;
                self.live_changes.send_modify(|generation| *generation += 1);
            }
            let expiry = async {
                match next_expiry {
                    // A millisecond past it, so that the heartbeat has aged out when it wakes.
                    Some(at) => {
                        tokio::time::sleep_until((at + Duration::from_millis(1)).into()).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.seen_changed.notified() => {}
                () = expiry => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Reads the JetStream view for `/health` every third of `ttl` until `stop`.
    async fn read_views(self: Arc<Self>, stop: CancellationToken) {
        let mut every = tokio::time::interval(self.ttl / 3);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {
                    let view = self.read_jetstream().await;
                    *self.jetstream_view.lock() = view;
                }
                () = stop.cancelled() => return,
            }
        }
    }

    /// Puts this node's entry; its revision.
    async fn heartbeat(&self, load: serde_json::Value) -> Result<u64, String> {
        let beat = NodeInfo {
            load,
            ..self.me.clone()
        };
        let value = serde_json::to_vec(&beat).expect("a node's info serializes");
        self.nodes_bucket
            .put(&self.me.node_id, value.into())
            .await
            .map_err(|err| err.to_string())
    }

    /// The nodes' bucket's group as its stream reports it now (`None` if NATS does not answer).
    async fn read_jetstream(&self) -> Option<JetStreamView> {
        let stream = self
            .jetstream
            .get_stream(format!("KV_{NODES_BUCKET}"))
            .await
            .ok()?;
        let info = stream.cached_info();
        let cluster = info.cluster.as_ref();
        Some(JetStreamView {
            cluster: cluster.and_then(|c| c.name.clone()),
            leader: cluster.and_then(|c| c.leader.clone()),
            replicas: cluster
                .map(|c| {
                    c.replicas
                        .iter()
                        .map(|peer| ReplicaView {
                            server: peer.name.clone(),
                            current: peer.current,
                            offline: peer.offline,
                            lag: peer.lag.unwrap_or(0),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            node_entries: info.state.messages,
            work: self.busy_work().await,
        })
    }

    /// The work queues' consumers with messages waiting or handed out, as NATS reports them now.
    async fn busy_work(&self) -> Vec<work::TakerView> {
        let queues = self.work_queues.lock().clone();
        let mut busy = Vec::new();
        for queue in queues {
            busy.extend(queue.busy().await);
        }
        busy
    }

    fn apply(&self, entry: kv::Entry) {
        let mut seen = self.seen.lock();
        match entry.operation {
            kv::Operation::Put => match serde_json::from_slice::<NodeInfo>(&entry.value) {
                Ok(info) => {
                    seen.insert(entry.key, (info, Instant::now()));
                }
                Err(err) => {
                    tracing::warn!(key = entry.key, error = %err, "an unreadable node heartbeat")
                }
            },
            kv::Operation::Delete | kv::Operation::Purge => {
                seen.remove(&entry.key);
            }
        }
        self.seen_changed.notify_one();
    }

    /// Who is alive, for work shared out among the live nodes without a message per share.
    pub fn membership(&self) -> Membership {
        Membership {
            me: self.me.node_id.clone(),
            seen: Arc::clone(&self.seen),
            ttl: self.ttl,
            live_changes: self.live_changes.subscribe(),
        }
    }

    /// The cluster as this node sees it now.
    pub fn view(&self) -> ClusterView {
        let mut nodes: Vec<NodeView> = self
            .seen
            .lock()
            .values()
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(info, at)| NodeView {
                info: info.clone(),
                heartbeat_age_ms: u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX),
            })
            .collect();
        nodes.sort_by(|a, b| a.info.node_id.cmp(&b.info.node_id));
        ClusterView {
            node_id: self.me.node_id.clone(),
            nats_connected: self.is_connected(),
            nats_server_version: self.server_version.clone(),
            replicas: self.replicas,
            nodes,
            jetstream: self.jetstream_view.lock().clone(),
            buckets: self
                .buckets
                .lock()
                .iter()
                .map(Bucket::view)
                .chain(self.logs.lock().iter().map(log::Log::view))
                .collect(),
        }
    }

    /// Whether the connection to NATS is up now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

/// The live nodes as this node's heartbeat watch sees them: a cheap handle for deciding which
/// node does a piece of work that any node could do ([`Membership::falls_here`]).
#[derive(Clone)]
pub struct Membership {
    me: String,
    seen: Arc<Mutex<HashMap<String, (NodeInfo, Instant)>>>,
    ttl: Duration,
    live_changes: tokio::sync::watch::Receiver<u64>,
}

impl Membership {
    /// A receiver that changes whenever the live nodes do (so whenever [`falls_here`] may answer
    /// differently): work waiting for a key to fall to this node waits on it instead of asking
    /// again on a timer.
    ///
    /// [`falls_here`]: Membership::falls_here
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.live_changes.clone()
    }

    /// Whether `key` falls to this node among the live ones ([`rendezvous_owner`]). Every node
    /// with the same view answers the same; while views differ (a node just started, died, or
    /// is cut off) a key may fall to two nodes, or for one heartbeat's time to a dead one, so
    /// the work must be harmless done twice. This node always counts itself alive.
    pub fn falls_here(&self, key: u64) -> bool {
        let seen = self.seen.lock();
        let live = seen
            .iter()
            .filter(|(id, (_, at))| **id != self.me && at.elapsed() < self.ttl)
            .map(|(id, _)| id.as_str())
            .chain(std::iter::once(self.me.as_str()));
        rendezvous_owner(live, key) == Some(self.me.as_str())
    }
}

/// The key a named thing (a webhook, a monitor) falls to a node by ([`Membership::falls_here`]):
/// FxHash, which has no seed, so the same on every node.
pub fn key_of(name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = rustc_hash::FxHasher::default();
    name.hash(&mut hasher);
    hasher.finish()
}

/// The node among `nodes` that `key` goes to by rendezvous hashing: the one with the highest
/// score of (node, key). A node's loss moves only its own keys, each to the node scoring next
/// (spread over the others); a node's arrival takes about `1/n` of the keys from each.
pub fn rendezvous_owner<'a>(nodes: impl IntoIterator<Item = &'a str>, key: u64) -> Option<&'a str> {
    nodes
        .into_iter()
        .max_by_key(|node| (rendezvous_score(node, key), *node))
}

/// FNV-1a of the node id, mixed with the key by SplitMix64's finalizer: the same on every node
/// and every build (no seeded hasher).
fn rendezvous_score(node: &str, key: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in node.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = hash ^ key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How long opening a bucket or stream waits for its group to elect a leader.
const LEADER_WAIT: Duration = Duration::from_secs(10);

/// Waits, up to [`LEADER_WAIT`], until `stream` has a leader: one just created in a cluster
/// that is still forming refuses writes until then ("no stream found"). Gives up quietly: the
/// first write then reports what is wrong.
async fn wait_for_leader(name: &str, stream: &async_nats::jetstream::stream::Stream) {
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    loop {
        match stream.get_info().await {
            // A single server without clustering reports no group: it leads.
            Ok(info) if info.cluster.as_ref().is_none_or(|c| c.leader.is_some()) => return,
            Ok(_) => tracing::debug!(name, "no leader of the stream yet; waiting"),
            Err(err) => {
                tracing::debug!(name, error = %err, "reading the stream's state failed; waiting")
            }
        }
        if tokio::time::Instant::now() + RETRY_PAUSE >= deadline {
            tracing::warn!(name, "the stream has no leader yet; going on");
            return;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// The next entry of the watch, or never while there is none (the heartbeat reopens it).
async fn next_entry(watch: &mut Option<kv::Watch>) -> Option<Result<kv::Entry, kv::WatcherError>> {
    match watch {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// The host name, then `-` and the listen port: unique per host and port.
fn default_node_id(listen: SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(50)
        .collect();
    let host = if host.is_empty() { "node".into() } else { host };
    format!("{host}-{}", listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions_are_read_and_compared() {
        assert_eq!(parse_version("2.15.1"), Some((2, 15, 1)));
        assert_eq!(parse_version("v2.11.0-RC.1"), Some((2, 11, 0)));
        assert_eq!(parse_version("2.10"), Some((2, 10, 0)));
        assert_eq!(parse_version("dev"), None);
        assert!(parse_version("2.9.10").unwrap() < MIN_SERVER_VERSION);
        assert!(parse_version("2.10.0").unwrap() >= MIN_SERVER_VERSION);
    }

    #[test]
    fn a_default_node_id_is_a_valid_key_with_the_port() {
        let id = default_node_id("127.0.0.1:8080".parse().unwrap());
        assert!(id.ends_with("-8080"), "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn rendezvous_spreads_keys_and_a_lost_node_moves_only_its_own() {
        let three = ["node-a", "node-b", "node-c"];
        let two = ["node-a", "node-b"];
        let mut per_node = HashMap::new();
        for key in 0..3000u64 {
            let key = key.wrapping_mul(0x2545_f491_4f6c_dd1d);
            let owner = rendezvous_owner(three, key).unwrap();
            *per_node.entry(owner).or_insert(0) += 1;
            // The order the nodes are listed in does not matter.
            assert_eq!(
                rendezvous_owner(three.iter().rev().copied(), key),
                Some(owner)
            );
            let after = rendezvous_owner(two, key).unwrap();
            if owner != "node-c" {
                assert_eq!(after, owner, "key {key} moved though its node stayed");
            }
        }
        for node in three {
            let share = per_node[node];
            assert!((800..1200).contains(&share), "{node} got {share} of 3000");
        }
        assert_eq!(rendezvous_owner([], 7), None);
    }
}
