//! Key layouts the record modules share: an id followed by the 0x00 separator as the prefix of
//! its rows, and the range of keys under such a prefix. Ids never hold 0x00.

use std::ops::Bound;

/// `id ++ 0x00`: the prefix of the rows that belong to `id`.
pub fn prefixed(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 1 + 16);
    key.extend_from_slice(id.as_bytes());
    key.push(0);
    key
}

/// The keys under `prefix`, which ends in the 0x00 separator: up to the same bytes with 0x01
/// there, exclusive (whatever bytes follow the separator).
pub fn under(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    (Bound::Included(prefix.to_vec()), Bound::Excluded(end))
}

/// A range of owned keys as LMDB's range calls take it.
pub fn borrowed(range: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> (Bound<&[u8]>, Bound<&[u8]>) {
    fn map(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
        match b {
            Bound::Included(k) => Bound::Included(k.as_slice()),
            Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
            Bound::Unbounded => Bound::Unbounded,
        }
    }
    (map(&range.0), map(&range.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_under_an_id_holds_its_rows_and_no_other_ids() {
        let (lo, hi) = under(&prefixed("mon_a"));
        let inside = |k: &[u8]| {
            matches!(&lo, Bound::Included(l) if k >= l.as_slice())
                && matches!(&hi, Bound::Excluded(h) if k < h.as_slice())
        };
        assert!(inside(b"mon_a\0"));
        assert!(inside(b"mon_a\0\xff\xff\xff\xff"));
        assert!(!inside(b"mon_ab\0"));
        assert!(!inside(b"mon_\0"));
    }
}
