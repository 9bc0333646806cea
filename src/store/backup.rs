//! Online backup and restore of a data dir, and a read of every table.
//!
//! A backup is LMDB's own consistent copy (`mdb_env_copy2` with compaction: it reads inside one
//! read transaction, so writers go on and the copy is one committed state), written beside the
//! other files of the data dir that are not LMDB's (`admin_token`). Restore puts a backup into a
//! data dir that no server holds. Neither knows what the records mean: the caller decodes them.
//!
//! Must not: write into a data dir a server holds, or leave a half-copied backup that looks
//! whole (the copy is made under a temporary name and renamed when complete).

use std::path::{Path, PathBuf};

use heed::CompactionOption;

use super::{StoreError, lmdb};
use crate::config::StorageConfig;

/// The file whose exclusive lock marks a data dir as served (taken by `panlink serve`).
pub const SERVE_LOCK_FILE: &str = "serve.lock";

/// Whether a server holds the data dir now (its `serve.lock` is locked).
pub fn served(data_dir: &Path) -> bool {
    use rustix::fs::{FlockOperation, flock};
    let Ok(file) = std::fs::File::open(data_dir.join(SERVE_LOCK_FILE)) else {
        return false;
    };
    if flock(&file, FlockOperation::NonBlockingLockShared).is_err() {
        return true;
    }
    let _ = flock(&file, FlockOperation::Unlock);
    false
}

/// Where LMDB's file sits inside a data dir or a backup.
const LMDB_SUBDIR: &str = "lmdb";
const DATA_FILE: &str = "data.mdb";

/// What a backup or a restore copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Bytes of the LMDB file written.
    pub data_bytes: u64,
    /// Other files copied beside it (by name).
    pub extra_files: Vec<String>,
}

/// Copies the data dir of `config` into `to` (which must not exist or be empty), while a server
/// may be running on it. `extra_files` are names of plain files in the data dir to copy too.
pub fn backup(config: &StorageConfig, to: &Path, extra_files: &[&str]) -> Result<Copied, String> {
    let source = config.lmdb_dir();
    if !source.join(DATA_FILE).exists() {
        return Err(format!(
            "{} holds no panlink data ({} is missing)",
            config.data_dir.display(),
            source.join(DATA_FILE).display()
        ));
    }
    ensure_empty_dir(to)?;
    let env = lmdb::open_env(&source, config.map_size_bytes, config.max_readers)
        .map_err(|err| format!("opening {}: {err}", source.display()))?;
    let target_dir = to.join(LMDB_SUBDIR);
    std::fs::create_dir_all(&target_dir)
        .map_err(|err| format!("creating {}: {err}", target_dir.display()))?;
    let partial = target_dir.join(format!("{DATA_FILE}.partial"));
    env.copy_to_path(&partial, CompactionOption::Enabled)
        .map_err(|err| format!("copying LMDB to {}: {err}", partial.display()))?;
    let data = target_dir.join(DATA_FILE);
    std::fs::rename(&partial, &data)
        .map_err(|err| format!("renaming {}: {err}", partial.display()))?;
    let data_bytes = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
    let extra_files = copy_files(&config.data_dir, to, extra_files)?;
    Ok(Copied {
        data_bytes,
        extra_files,
    })
}

/// Puts the backup in `from` into the data dir of `config`. Refuses when a server holds the data
/// dir, when `from` is no backup, and when the data dir already holds data, unless `replace`.
pub fn restore(
    config: &StorageConfig,
    from: &Path,
    extra_files: &[&str],
    replace: bool,
) -> Result<Copied, String> {
    let backup_file = from.join(LMDB_SUBDIR).join(DATA_FILE);
    if !backup_file.exists() {
        return Err(format!(
            "{} is no panlink backup ({} is missing)",
            from.display(),
            backup_file.display()
        ));
    }
    if served(&config.data_dir) {
        return Err(format!(
            "a panlink server is serving {}: stop it before restoring into it",
            config.data_dir.display()
        ));
    }
    let target_dir = config.lmdb_dir();
    let target = target_dir.join(DATA_FILE);
    if target.exists() && !replace {
        return Err(format!(
            "{} already holds data; add --replace to overwrite it (it is not in use)",
            config.data_dir.display()
        ));
    }
    std::fs::create_dir_all(&target_dir)
        .map_err(|err| format!("creating {}: {err}", target_dir.display()))?;
    // LMDB's lock file describes the readers of the old file: it goes with it.
    let _ = std::fs::remove_file(target_dir.join("lock.mdb"));
    let partial = target_dir.join(format!("{DATA_FILE}.partial"));
    std::fs::copy(&backup_file, &partial)
        .map_err(|err| format!("copying {}: {err}", backup_file.display()))?;
    std::fs::rename(&partial, &target)
        .map_err(|err| format!("renaming {}: {err}", partial.display()))?;
    let data_bytes = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    let extra_files = copy_files(from, &config.data_dir, extra_files)?;
    Ok(Copied {
        data_bytes,
        extra_files,
    })
}

/// Every named table of the environment at `lmdb_dir` with its entry count, after reading every
/// entry (a damaged page fails the read). `decode(table, value)` judges each value; the tables
/// and the count of values it refused are returned.
pub fn read_all(
    lmdb_dir: &Path,
    map_size: usize,
    max_readers: u32,
    tables: &[&str],
    mut decode: impl FnMut(&str, &[u8]) -> bool,
) -> Result<Vec<(String, u64, u64)>, StoreError> {
    let env = lmdb::open_env(lmdb_dir, map_size, max_readers)?;
    // Opened as the server opens them (a table a newer version added is created empty).
    let dbs = tables
        .iter()
        .map(|name| lmdb::create_db(&env, name))
        .collect::<Result<Vec<_>, _>>()?;
    let rtxn = env.read_txn()?;
    let mut out = Vec::with_capacity(tables.len());
    for (&name, db) in tables.iter().zip(dbs) {
        let (mut entries, mut refused) = (0u64, 0u64);
        for entry in db.iter(&rtxn)? {
            let (_, value) = entry?;
            entries += 1;
            if !decode(name, value) {
                refused += 1;
            }
        }
        out.push((name.to_owned(), entries, refused));
    }
    Ok(out)
}

fn ensure_empty_dir(dir: &Path) -> Result<(), String> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "{} is not empty: back up into a new or empty directory",
                    dir.display()
                ));
            }
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|err| format!("creating {}: {err}", dir.display()))
        }
        Err(err) => Err(format!("reading {}: {err}", dir.display())),
    }
}

fn copy_files(from: &Path, to: &Path, names: &[&str]) -> Result<Vec<String>, String> {
    let mut copied = Vec::new();
    for name in names {
        let source: PathBuf = from.join(name);
        if !source.exists() {
            continue;
        }
        std::fs::create_dir_all(to).map_err(|err| format!("creating {}: {err}", to.display()))?;
        std::fs::copy(&source, to.join(name))
            .map_err(|err| format!("copying {}: {err}", source.display()))?;
        copied.push((*name).to_owned());
    }
    Ok(copied)
}
