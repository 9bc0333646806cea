//! The versioned record codec.
//!
//! Every stored record is one version byte followed by the payload. Version 1 is JSON (serde), so
//! fields can be added with `#[serde(default)]` without a migration, and a later compact format can
//! take version 2 while old records stay readable. Decoding never panics on arbitrary bytes.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

/// The codec version written today.
pub const CURRENT_VERSION: u8 = 1;

/// Encodes `record` as `[CURRENT_VERSION] ++ JSON`.
pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(CURRENT_VERSION);
    serde_json::to_writer(&mut out, record).expect("records serialize to JSON");
    out
}

/// Decodes a record written by [`encode`]; `kind` names the record in errors and logs.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], kind: &'static str) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&1, payload)) => {
            serde_json::from_slice(payload).map_err(|_| StoreError::Corrupt(kind))
        }
        _ => Err(StoreError::Corrupt(kind)),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Rec {
        a: u64,
        b: String,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct RecV2 {
        a: u64,
        b: String,
        #[serde(default)]
        c: Option<u32>,
    }

    #[test]
    fn round_trip_and_forward_compatible() {
        let bytes = encode(&Rec {
            a: 7,
            b: "x".into(),
        });
        assert_eq!(bytes[0], CURRENT_VERSION);
        assert_eq!(
            decode::<Rec>(&bytes, "rec").unwrap(),
            Rec {
                a: 7,
                b: "x".into()
            }
        );
        let newer: RecV2 = decode(&bytes, "rec").unwrap();
        assert_eq!(newer.c, None);
    }

    #[test]
    fn unknown_version_and_garbage_are_errors() {
        assert!(matches!(
            decode::<Rec>(&[], "rec"),
            Err(StoreError::Corrupt("rec"))
        ));
        assert!(decode::<Rec>(&[9, b'{', b'}'], "rec").is_err());
        assert!(decode::<Rec>(&[1, 0xff, 0xfe], "rec").is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<Rec>(&bytes, "rec");
        }
    }
}
