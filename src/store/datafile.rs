//! A look at LMDB's data file before it is memory-mapped: a file shorter than the pages its
//! newest meta page refers to would make the first read of a missing page a `SIGBUS`, killing
//! the process without a word. This reads the file with ordinary `pread`s and refuses it instead.
//!
//! The quick check compares the file's length with the meta page's last page number. LMDB notes
//! that a healthy file may be shorter than that (pages allocated and freed within the last
//! transaction are never written), so a short file is then walked: every page reachable from the
//! free and main trees (branch pages, named databases' roots, overflow runs) must lie inside the
//! file. Only the layout of a 64-bit little-endian build of LMDB 0.9/mdb.master is read.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: u32 = 0xBEEF_C0DE;
/// `offsetof(MDB_page, mp_ptrs)` on 64-bit builds.
const PAGE_HEADER: usize = 16;
/// `offsetof(MDB_node, mn_data)`.
const NODE_HEADER: usize = 8;
const P_BRANCH: u16 = 0x01;
const P_LEAF: u16 = 0x02;
const P_OVERFLOW: u16 = 0x04;
const P_META: u16 = 0x08;
const P_LEAF2: u16 = 0x20;
const F_BIGDATA: u16 = 0x01;
const F_SUBDATA: u16 = 0x02;
/// An empty tree's root.
const P_INVALID: u64 = u64::MAX;
/// `sizeof(MDB_db)`: md_pad u32, md_flags u16, md_depth u16, five u64 (root last).
const DB_RECORD: usize = 48;

/// Why a data file cannot be opened safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncated {
    pub path: PathBuf,
    pub len: u64,
    /// Bytes the file must have at least to hold the pages its trees refer to.
    pub needed: u64,
}

impl std::fmt::Display for Truncated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the data file {} is truncated: it has {} bytes, but its committed pages need at least {} \
             (a copy that did not finish, or a file cut short?). panlink will not open it, since \
             reading a missing page would crash the process; restore the data dir from a backup",
            self.path.display(),
            self.len,
            self.needed
        )
    }
}

struct Meta {
    page_size: u64,
    last_page: u64,
    txn_id: u64,
    roots: [u64; 2],
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The meta record of a meta page (`page` starts at the page header).
fn meta_of(page: &[u8]) -> Option<Meta> {
    if u16_at(page, 10)? & P_META == 0 {
        return None;
    }
    let meta = &page[PAGE_HEADER..];
    if u32_at(meta, 0)? != MAGIC {
        return None;
    }
    // magic, version, address, mapsize, then the free and main trees' records.
    let dbs = 4 + 4 + 8 + 8;
    let free = dbs;
    let main = dbs + DB_RECORD;
    Some(Meta {
        page_size: u64::from(u32_at(meta, free)?),
        roots: [u64_at(meta, free + 40)?, u64_at(meta, main + 40)?],
        last_page: u64_at(meta, dbs + 2 * DB_RECORD)?,
        txn_id: u64_at(meta, dbs + 2 * DB_RECORD + 8)?,
    })
}

/// Checks `data.mdb` at `path`; a missing or empty file (a new environment) passes, and so does a
/// file that is not an LMDB file at all (LMDB itself refuses that one, cleanly).
pub fn check(path: &Path) -> Result<(), Truncated> {
    let Ok(file) = File::open(path) else {
        return Ok(());
    };
    let len = file.metadata().map_or(0, |m| m.len());
    if len == 0 {
        return Ok(());
    }
    let mut first = vec![0u8; 4096];
    let read = file.read_at(&mut first, 0).unwrap_or(0);
    let Some(meta0) = meta_of(&first[..read]) else {
        return Ok(());
    };
    let page_size = meta0.page_size;
    if !(512..=65_536).contains(&page_size) {
        return Ok(());
    }
    let truncated = |needed: u64| Truncated {
        path: path.to_owned(),
        len,
        needed,
    };
    let mut second = vec![0u8; page_size as usize];
    if len < 2 * page_size || file.read_at(&mut second, page_size).ok() != Some(second.len()) {
        return Err(truncated(2 * page_size));
    }
    let meta = match meta_of(&second) {
        Some(meta1) if meta1.txn_id > meta0.txn_id => meta1,
        _ => meta0,
    };
    if len >= (meta.last_page + 1).saturating_mul(page_size) {
        return Ok(());
    }
    let pages = len / page_size;
    match furthest_reachable(&file, page_size, pages, meta.roots) {
        Some(beyond) => Err(truncated((beyond + 1).saturating_mul(page_size))),
        None => Ok(()),
    }
}

/// The first page found reachable from `roots` that lies at or beyond `pages`, if any.
fn furthest_reachable(file: &File, page_size: u64, pages: u64, roots: [u64; 2]) -> Option<u64> {
    let mut stack: Vec<u64> = roots.into_iter().filter(|r| *r != P_INVALID).collect();
    let mut seen = HashSet::new();
    let mut page = vec![0u8; page_size as usize];
    while let Some(pgno) = stack.pop() {
        if !seen.insert(pgno) {
            continue;
        }
        if pgno >= pages {
            return Some(pgno);
        }
        if file.read_at(&mut page, pgno * page_size).ok() != Some(page.len()) {
            return Some(pgno);
        }
        let flags = u16_at(&page, 10).unwrap_or(0);
        if flags & (P_BRANCH | P_LEAF) == 0 || flags & P_LEAF2 != 0 {
            continue;
        }
        let lower = usize::from(u16_at(&page, 12).unwrap_or(0));
        let keys = lower.saturating_sub(PAGE_HEADER) / 2;
        for i in 0..keys {
            let Some(offset) = u16_at(&page, PAGE_HEADER + 2 * i).map(usize::from) else {
                break;
            };
            let (Some(lo), Some(hi), Some(node_flags), Some(key_size)) = (
                u16_at(&page, offset),
                u16_at(&page, offset + 2),
                u16_at(&page, offset + 4),
                u16_at(&page, offset + 6),
            ) else {
                break;
            };
            if flags & P_BRANCH != 0 {
                stack.push(u64::from(lo) | u64::from(hi) << 16 | u64::from(node_flags) << 32);
                continue;
            }
            let data = offset + NODE_HEADER + usize::from(key_size);
            if node_flags & F_BIGDATA != 0 {
                let Some(first) = u64_at(&page, data) else {
                    continue;
                };
                let mut head = [0u8; PAGE_HEADER];
                if first >= pages
                    || file.read_at(&mut head, first * page_size).ok() != Some(PAGE_HEADER)
                {
                    return Some(first);
                }
                let run = u64::from(u32_at(&head, 12).unwrap_or(1)).max(1);
                if u16_at(&head, 10).unwrap_or(0) & P_OVERFLOW != 0 && first + run > pages {
                    return Some(first + run - 1);
                }
            } else if node_flags & F_SUBDATA != 0
                && let Some(root) = u64_at(&page, data + 40)
                && root != P_INVALID
            {
                stack.push(root);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::Store;

    /// The meta page of the last committed transaction (LMDB writes the two in turn).
    fn newest_meta(file: &File) -> Meta {
        let mut first = vec![0u8; 4096];
        file.read_at(&mut first, 0).unwrap();
        let meta0 = meta_of(&first).unwrap();
        let mut second = vec![0u8; meta0.page_size as usize];
        file.read_at(&mut second, meta0.page_size).unwrap();
        match meta_of(&second) {
            Some(meta1) if meta1.txn_id > meta0.txn_id => meta1,
            _ => meta0,
        }
    }

    /// A data dir with named databases, small values and overflow values, closed.
    fn filled() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::StorageConfig {
            data_dir: dir.path().to_owned(),
            map_size_bytes: 64 << 20,
            max_readers: 126,
            max_batch_ops: 16,
        };
        let store = Store::open(&config).unwrap();
        store
            .write_now(|txn, dbs| {
                for n in 0u32..3_000 {
                    dbs.links.put(txn, &n.to_be_bytes(), &[7u8; 100])?;
                }
                for n in 0u32..40 {
                    dbs.events.put(txn, &n.to_be_bytes(), &vec![9u8; 20_000])?;
                }
                Ok(())
            })
            .unwrap();
        store.close(Duration::from_secs(5));
        drop(store);
        let file = config.lmdb_dir().join("data.mdb");
        (dir, file)
    }

    #[test]
    fn an_intact_file_passes_and_every_reachable_page_is_inside_it() {
        let (_dir, path) = filled();
        assert_eq!(check(&path), Ok(()));
        let file = File::open(&path).unwrap();
        let len = file.metadata().unwrap().len();
        let meta = newest_meta(&file);
        assert_eq!(
            furthest_reachable(&file, meta.page_size, len / meta.page_size, meta.roots),
            None
        );
    }

    #[test]
    fn a_file_cut_to_half_is_refused_and_named() {
        let (_dir, path) = filled();
        let len = std::fs::metadata(&path).unwrap().len();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let refused = check(&path).unwrap_err();
        assert_eq!(refused.len, len / 2);
        assert!(refused.needed > len / 2);
        assert!(refused.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn the_walk_finds_a_missing_page_the_quick_check_cannot_see() {
        // A file whose meta says it ends early, as after pages freed in the last transaction:
        // the walk still finds pages of the trees beyond the cut.
        let (_dir, path) = filled();
        let file = File::open(&path).unwrap();
        let len = file.metadata().unwrap().len();
        let meta = newest_meta(&file);
        let pages = len / meta.page_size;
        assert!(furthest_reachable(&file, meta.page_size, pages / 2, meta.roots).is_some());
        assert!(furthest_reachable(&file, meta.page_size, 3, meta.roots).is_some());
    }

    #[test]
    fn a_missing_or_foreign_file_is_left_to_lmdb() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check(&dir.path().join("data.mdb")), Ok(()));
        let foreign = dir.path().join("foreign.mdb");
        std::fs::write(&foreign, b"not an lmdb file").unwrap();
        assert_eq!(check(&foreign), Ok(()));
    }
}
