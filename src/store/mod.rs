//! Durable storage: one LMDB environment, named databases, one group-commit writer.
//!
//! Reads are short read transactions on the caller's thread ([`Store::read`]). Writes are closures
//! handed to the writer thread ([`Store::write`]), which applies many of them in one transaction and
//! acknowledges each caller only after the commit that covers its write. Command-line
//! tools that run beside a server use [`Store::write_now`]: LMDB's lock file serialises writers
//! across processes, so both see each other's commits at once.

pub mod backup;
pub mod codec;
pub mod datafile;
pub mod keys;
pub mod lmdb;
pub mod outbox;
pub mod replica;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use heed::{Env, RoTxn, RwTxn, WithoutTls};

pub use lmdb::RawDb;
pub use writer::WriterStats;

use crate::config::StorageConfig;

/// A storage failure. `MapFull`, `DiskFull`, `ReadOnly` and `WriterGone` are expected
/// conditions with their own API errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("LMDB map is full (raise storage.map_size_mb)")]
    MapFull,
    /// The file system refused to grow the data file (`ENOSPC`, `EDQUOT`, `EFBIG`).
    #[error("the disk under the data dir is full")]
    DiskFull,
    /// The file system under the data dir is read-only (`EROFS`).
    #[error("the data dir is on a read-only file system")]
    ReadOnly,
    #[error("the storage writer has stopped")]
    WriterGone,
    #[error("LMDB: {0}")]
    Lmdb(heed::Error),
    #[error("undecodable {0} record")]
    Corrupt(&'static str),
    /// `data.mdb` is shorter than the pages it refers to (checked before it is mapped).
    #[error("{0}")]
    Truncated(datafile::Truncated),
}

impl From<heed::Error> for StoreError {
    fn from(err: heed::Error) -> Self {
        if matches!(err, heed::Error::Mdb(heed::MdbError::MapFull)) {
            return StoreError::MapFull;
        }
        match os_code(&err) {
            Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => StoreError::DiskFull,
            Some(libc::EROFS) => StoreError::ReadOnly,
            _ => StoreError::Lmdb(err),
        }
    }
}

/// Below this many bytes free (to unprivileged writers) the file system under the data dir is
/// full for every purpose: a batch commit writes more than that.
const FULL_BELOW_BYTES: u64 = 1 << 20;

impl StoreError {
    /// A failed commit, read against the file system under `dir`. LMDB reports a write that the
    /// file system took only part of as a bare `EIO` ("short write, filesystem full?" in
    /// `mdb_page_flush`), not as `ENOSPC`; when the file system has no room left, that is
    /// [`StoreError::DiskFull`]. Any other `EIO` stays an I/O error.
    pub fn of_commit(err: heed::Error, dir: &std::path::Path) -> StoreError {
        let no_room = || {
            rustix::fs::statvfs(dir)
                .is_ok_and(|fs| is_full(fs.f_bavail.saturating_mul(fs.f_frsize)))
        };
        if os_code(&err) == Some(libc::EIO) && no_room() {
            return StoreError::DiskFull;
        }
        StoreError::from(err)
    }

    /// The same failure for another waiter of a batch that failed as a whole: the condition
    /// kinds are kept, other errors keep their text.
    pub fn for_another_op(&self) -> StoreError {
        match self {
            StoreError::MapFull => StoreError::MapFull,
            StoreError::DiskFull => StoreError::DiskFull,
            StoreError::ReadOnly => StoreError::ReadOnly,
            StoreError::WriterGone => StoreError::WriterGone,
            StoreError::Corrupt(what) => StoreError::Corrupt(what),
            StoreError::Truncated(found) => StoreError::Truncated(found.clone()),
            StoreError::Lmdb(err) => {
                StoreError::Lmdb(heed::Error::Io(std::io::Error::other(err.to_string())))
            }
        }
    }
}

/// The OS error code inside a heed error, whichever way heed spells it.
fn os_code(err: &heed::Error) -> Option<i32> {
    match err {
        heed::Error::Mdb(heed::MdbError::Other(code)) => Some(*code),
        heed::Error::Io(io) => io.raw_os_error(),
        _ => None,
    }
}

/// Whether a file system with `available` bytes free is full (see [`FULL_BELOW_BYTES`]).
fn is_full(available: u64) -> bool {
    available < FULL_BELOW_BYTES
}

/// Whether the file system under `dir` has room for a batch commit (an unreadable one counts as
/// having room: the commit itself is the test).
fn disk_has_room(dir: &std::path::Path) -> bool {
    rustix::fs::statvfs(dir).map_or(true, |fs| !is_full(fs.f_bavail.saturating_mul(fs.f_frsize)))
}

/// What the last commit said about the storage, for `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The last commit went through.
    Ok,
    /// The last commit was refused: the map or the disk is full.
    Full,
    /// The last commit was refused: the file system is read-only.
    ReadOnly,
    /// The last commit failed otherwise.
    Failing,
}

impl Condition {
    fn of(commit: &Result<(), StoreError>) -> Condition {
        match commit {
            Ok(()) => Condition::Ok,
            Err(StoreError::MapFull | StoreError::DiskFull) => Condition::Full,
            Err(StoreError::ReadOnly) => Condition::ReadOnly,
            Err(_) => Condition::Failing,
        }
    }

    /// The condition after a commit, `was` the one before it. A failure decides at once. A
    /// success after [`Condition::Full`] clears it only when the disk has room for a batch again
    /// (`disk_has_room`): a small commit (a usage counter) can squeeze into the last free pages of
    /// a full disk, and `/health` must not say `ok` while writes of normal size still fail.
    fn after(
        was: Condition,
        commit: &Result<(), StoreError>,
        disk_has_room: impl FnOnce() -> bool,
    ) -> Condition {
        match (was, Condition::of(commit)) {
            (Condition::Full, Condition::Ok) if !disk_has_room() => Condition::Full,
            (_, now) => now,
        }
    }

    fn from_u8(value: u8) -> Condition {
        match value {
            0 => Condition::Ok,
            1 => Condition::Full,
            2 => Condition::ReadOnly,
            _ => Condition::Failing,
        }
    }

    fn as_u8(self) -> u8 {
        self as u8
    }
}

/// The named databases. Keys and values are raw bytes; record types encode themselves.
#[derive(Clone, Copy)]
pub struct Dbs {
    /// SHA-256 of an API key secret → `KeyRecord`.
    pub keys: RawDb,
    /// Key id → SHA-256 of its secret.
    pub key_ids: RawDb,
    /// Small named values (schema version, counters).
    pub meta: RawDb,
    /// Job id → `JobRecord`.
    pub jobs: RawDb,
    /// Job id ++ item id (u32, big-endian) → `ItemRecord`.
    pub items: RawDb,
    /// Job id ++ event id (u32, big-endian) → the result event's JSON.
    pub events: RawDb,
    /// Short links and their indexes and counters (layout in `links::record`).
    pub links: RawDb,
    pub link_owner: RawDb,
    pub link_groups: RawDb,
    pub link_clicks: RawDb,
    pub link_days: RawDb,
    pub link_refs: RawDb,
    /// Click journal: sequence (u64 BE) → the deltas of one flush (`links::clicks`).
    pub link_click_log: RawDb,
    /// A key's links by tag (`links::record::tag_key`).
    pub link_tags: RawDb,
    /// Rows of imports made with an idempotency key (`links::transfer`).
    pub link_imports: RawDb,
    /// Human clicks per link and day by dimension and value (layout in `links::record`).
    pub link_day_dims: RawDb,
    /// The earlier layout of the same, moved into `link_day_dims` at start-up.
    pub link_dims: RawDb,
    /// Webhooks and their deliveries (layout in `webhooks::record`).
    pub webhooks: RawDb,
    pub webhook_owner: RawDb,
    pub deliveries: RawDb,
    pub delivery_due: RawDb,
    /// Monitors and their links (layout in `monitors::record`).
    pub monitors: RawDb,
    pub monitor_owner: RawDb,
    pub monitor_links: RawDb,
    pub monitor_urls: RawDb,
    /// Cluster mode: the revisions this node's copies of replicated buckets applied
    /// ([`replica`]).
    pub replica_revisions: RawDb,
    /// Cluster mode: records waiting to be published to a cluster log ([`outbox`]).
    pub cluster_outbox: RawDb,
}

/// The name of every table [`Store::open`] creates (for tools that read them all).
pub const TABLES: [&str; 27] = [
    "keys",
    "key_ids",
    "meta",
    "jobs",
    "items",
    "events",
    "links",
    "link_owner",
    "link_groups",
    "link_clicks",
    "link_days",
    "link_refs",
    "link_click_log",
    "link_tags",
    "link_imports",
    "link_day_dims",
    "link_dims",
    "webhooks",
    "webhook_owner",
    "deliveries",
    "delivery_due",
    "monitors",
    "monitor_owner",
    "monitor_links",
    "monitor_urls",
    "replica_revisions",
    "cluster_outbox",
];

/// The storage handle shared by the whole process.
pub struct Store {
    env: Env<WithoutTls>,
    dbs: Dbs,
    writer: writer::WriterHandle,
}

impl Store {
    /// A store in a new temporary directory (16 MiB map), for unit tests.
    #[cfg(test)]
    pub fn temporary() -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(&crate::config::StorageConfig {
            data_dir: dir.path().to_owned(),
            map_size_bytes: 16 << 20,
            max_readers: 126,
            max_batch_ops: 16,
        })
        .expect("a temporary store opens");
        (dir, store)
    }

    /// Opens the environment under `config.data_dir` and starts the writer thread.
    pub fn open(config: &StorageConfig) -> Result<Arc<Store>, StoreError> {
        let env = lmdb::open_env(
            &config.lmdb_dir(),
            config.map_size_bytes,
            config.max_readers,
        )?;
        // Readers left behind by a process that was killed hold pages hostage; clear them.
        let _ = env.clear_stale_readers();
        let dbs = Dbs {
            keys: lmdb::create_db(&env, "keys")?,
            key_ids: lmdb::create_db(&env, "key_ids")?,
            meta: lmdb::create_db(&env, "meta")?,
            jobs: lmdb::create_db(&env, "jobs")?,
            items: lmdb::create_db(&env, "items")?,
            events: lmdb::create_db(&env, "events")?,
            links: lmdb::create_db(&env, "links")?,
            link_owner: lmdb::create_db(&env, "link_owner")?,
            link_groups: lmdb::create_db(&env, "link_groups")?,
            link_clicks: lmdb::create_db(&env, "link_clicks")?,
            link_days: lmdb::create_db(&env, "link_days")?,
            link_refs: lmdb::create_db(&env, "link_refs")?,
            link_click_log: lmdb::create_db(&env, "link_click_log")?,
            link_tags: lmdb::create_db(&env, "link_tags")?,
            link_imports: lmdb::create_db(&env, "link_imports")?,
            link_day_dims: lmdb::create_db(&env, "link_day_dims")?,
            link_dims: lmdb::create_db(&env, "link_dims")?,
            webhooks: lmdb::create_db(&env, "webhooks")?,
            webhook_owner: lmdb::create_db(&env, "webhook_owner")?,
            deliveries: lmdb::create_db(&env, "deliveries")?,
            delivery_due: lmdb::create_db(&env, "delivery_due")?,
            monitors: lmdb::create_db(&env, "monitors")?,
            monitor_owner: lmdb::create_db(&env, "monitor_owner")?,
            monitor_links: lmdb::create_db(&env, "monitor_links")?,
            monitor_urls: lmdb::create_db(&env, "monitor_urls")?,
            replica_revisions: lmdb::create_db(&env, "replica_revisions")?,
            cluster_outbox: lmdb::create_db(&env, "cluster_outbox")?,
        };
        let writer = writer::WriterHandle::spawn(env.clone(), dbs, config.max_batch_ops);
        Ok(Arc::new(Store { env, dbs, writer }))
    }

    /// The database handles.
    pub fn dbs(&self) -> &Dbs {
        &self.dbs
    }

    /// Runs `f` in a short read transaction. Never hold one across an `.await`.
    pub fn read<R>(
        &self,
        f: impl FnOnce(&RoTxn, &Dbs) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let rtxn = self.env.read_txn()?;
        f(&rtxn, &self.dbs)
    }

    /// Queues `op` for the writer and waits for the commit that covers it.
    ///
    /// `op` runs inside a nested transaction: if it returns an error, only its own changes are
    /// rolled back and the rest of the batch commits. Domain outcomes ("not found", "taken") belong
    /// in `R`, not in the error.
    pub async fn write<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut RwTxn, &Dbs) -> Result<R, StoreError> + Send + 'static,
    {
        self.writer.submit(op).await
    }

    /// Runs `op` in its own write transaction on this thread and commits it. For the CLI and
    /// start-up, never for request handlers (they use [`Store::write`]).
    pub fn write_now<R>(
        &self,
        op: impl FnOnce(&mut RwTxn, &Dbs) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut wtxn = self.env.write_txn()?;
        let out = op(&mut wtxn, &self.dbs)?;
        wtxn.commit()
            .map_err(|err| StoreError::of_commit(err, self.env.path()))?;
        Ok(out)
    }

    /// Bytes the data file takes on disk.
    pub fn disk_size(&self) -> u64 {
        self.env.real_disk_size().unwrap_or(0)
    }

    /// Counters of the writer (commits, ops, last batch size).
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// What the writer's last commit said about the storage.
    pub fn condition(&self) -> Condition {
        self.writer.condition()
    }

    /// Stops taking writes, commits everything queued, waits for the writer thread (at most
    /// `deadline`) and flushes the environment to disk.
    pub fn close(&self, deadline: Duration) {
        self.writer.close(deadline);
        if let Err(err) = self.env.force_sync() {
            tracing::error!(error = %err, "LMDB final sync failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_are_told_apart_by_kind() {
        let io = |code| heed::Error::Io(std::io::Error::from_raw_os_error(code));
        let mdb = |code| heed::Error::Mdb(heed::MdbError::Other(code));
        assert!(matches!(
            StoreError::from(heed::Error::Mdb(heed::MdbError::MapFull)),
            StoreError::MapFull
        ));
        for code in [libc::ENOSPC, libc::EDQUOT, libc::EFBIG] {
            assert!(matches!(StoreError::from(io(code)), StoreError::DiskFull));
            assert!(matches!(StoreError::from(mdb(code)), StoreError::DiskFull));
        }
        assert!(matches!(
            StoreError::from(io(libc::EROFS)),
            StoreError::ReadOnly
        ));
        assert!(matches!(
            StoreError::from(mdb(libc::EROFS)),
            StoreError::ReadOnly
        ));
        assert!(matches!(
            StoreError::from(io(libc::EIO)),
            StoreError::Lmdb(_)
        ));
        // Every waiter of a failed batch gets the same kind.
        assert!(matches!(
            StoreError::DiskFull.for_another_op(),
            StoreError::DiskFull
        ));
        assert!(matches!(
            StoreError::ReadOnly.for_another_op(),
            StoreError::ReadOnly
        ));
    }

    #[test]
    fn a_short_write_is_a_full_disk_only_when_the_disk_has_no_room() {
        let mdb_eio = || heed::Error::Mdb(heed::MdbError::Other(libc::EIO));
        let io_eio = || heed::Error::Io(std::io::Error::from_raw_os_error(libc::EIO));
        // The build's own temp dir has room: an EIO there is an I/O error, whichever way heed
        // spells it; other kinds keep their meaning.
        let roomy = tempfile::tempdir().unwrap();
        assert!(matches!(
            StoreError::of_commit(mdb_eio(), roomy.path()),
            StoreError::Lmdb(_)
        ));
        assert!(matches!(
            StoreError::of_commit(io_eio(), roomy.path()),
            StoreError::Lmdb(_)
        ));
        assert!(matches!(
            StoreError::of_commit(heed::Error::Mdb(heed::MdbError::MapFull), roomy.path()),
            StoreError::MapFull
        ));
        // A dir that cannot be examined does not make an error a full disk.
        assert!(matches!(
            StoreError::of_commit(mdb_eio(), std::path::Path::new("/no/such/dir")),
            StoreError::Lmdb(_)
        ));
        assert!(is_full(0));
        assert!(is_full(FULL_BELOW_BYTES - 1));
        assert!(!is_full(FULL_BELOW_BYTES));
    }

    #[test]
    fn full_clears_only_with_room_on_the_disk() {
        let ok = Ok(());
        assert_eq!(
            Condition::after(Condition::Full, &ok, || false),
            Condition::Full
        );
        assert_eq!(
            Condition::after(Condition::Full, &ok, || true),
            Condition::Ok
        );
        assert_eq!(
            Condition::after(Condition::ReadOnly, &ok, || false),
            Condition::Ok
        );
        let full = Err(StoreError::DiskFull);
        assert_eq!(
            Condition::after(Condition::Ok, &full, || true),
            Condition::Full
        );
        let read_only = Err(StoreError::ReadOnly);
        assert_eq!(
            Condition::after(Condition::Full, &read_only, || true),
            Condition::ReadOnly
        );
    }

    #[test]
    fn the_last_commit_decides_the_condition() {
        assert_eq!(Condition::of(&Ok(())), Condition::Ok);
        assert_eq!(Condition::of(&Err(StoreError::MapFull)), Condition::Full);
        assert_eq!(Condition::of(&Err(StoreError::DiskFull)), Condition::Full);
        assert_eq!(
            Condition::of(&Err(StoreError::ReadOnly)),
            Condition::ReadOnly
        );
        assert_eq!(
            Condition::of(&Err(StoreError::WriterGone)),
            Condition::Failing
        );
        for condition in [
            Condition::Ok,
            Condition::Full,
            Condition::ReadOnly,
            Condition::Failing,
        ] {
            assert_eq!(Condition::from_u8(condition.as_u8()), condition);
        }
    }
}
