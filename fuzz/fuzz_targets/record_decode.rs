//! The record codec: decoding arbitrary bytes never panics, and what decodes re-encodes to the
//! same record. The click journal's decoder (every format) never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use panlink::keys::KeyRecord;
use panlink::store::codec;

fuzz_target!(|data: &[u8]| {
    let _ = panlink::links::repo::decode_journal(data);
    if let Ok(record) = codec::decode::<KeyRecord>(data, "key") {
        let again = codec::encode(&record);
        assert_eq!(codec::decode::<KeyRecord>(&again, "key").unwrap(), record);
    }
});
