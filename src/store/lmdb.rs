//! Opening the LMDB environment: the one place in panlink that uses `unsafe`.
//!
//! Invariant: nothing else in the crate opens, resizes or changes the flags of the environment.

use std::path::Path;

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, WithoutTls};

use super::StoreError;

/// How many named databases the environment may hold (room for later record kinds).
const MAX_DBS: u32 = 32;

/// A raw byte-keyed, byte-valued database; records go through [`super::codec`].
pub type RawDb = Database<'static, Bytes, Bytes>;

/// Opens (creating if needed) the environment in `dir`.
///
/// `WithoutTls` makes read transactions `Send` and lets one thread hold several, which suits a
/// tokio runtime whose tasks move between threads.
#[allow(unsafe_code)]
pub fn open_env(
    dir: &Path,
    map_size: usize,
    max_readers: u32,
) -> Result<Env<WithoutTls>, StoreError> {
    std::fs::create_dir_all(dir).map_err(|err| StoreError::Lmdb(heed::Error::Io(err)))?;
    // A data file cut short would be mapped and then crash the process at its first missing page.
    super::datafile::check(&dir.join("data.mdb")).map_err(StoreError::Truncated)?;
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options
        .map_size(map_size)
        .max_dbs(MAX_DBS)
        .max_readers(max_readers);
    // SAFETY: `EnvOpenOptions::open` is unsafe because LMDB memory-maps the file: it is undefined
    // behaviour if the file is truncated or modified other than through LMDB while it is mapped,
    // or if the same environment is opened twice in one process. panlink opens the environment
    // once per process (heed refuses a second open of the same path with `EnvAlreadyOpened`), the
    // data dir is private to panlink (other panlink processes such as `panlink keys …` go through
    // LMDB's own inter-process lock file), and it must not live on a network file system, which
    // the README states. A truncated file is refused above, before it is mapped.
    let env = unsafe { options.open(dir) }?;
    Ok(env)
}

/// Creates (or opens) the named database `name`, in its own short write transaction.
pub fn create_db(env: &Env<WithoutTls>, name: &str) -> Result<RawDb, StoreError> {
    let wtxn = env.write_txn()?;
    let db = env
        .create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
            Ok(CommitOrAbort::<_, ()>::Commit(
                opener.create_database::<Bytes, Bytes>(wtxn, Some(name))?,
            ))
        })?
        .unwrap_commit();
    Ok(db)
}
