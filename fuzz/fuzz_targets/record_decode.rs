//! The record codec: decoding arbitrary bytes never panics, and what decodes re-encodes to the
//! same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use panlink::keys::KeyRecord;
use panlink::store::codec;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = codec::decode::<KeyRecord>(data, "key") {
        let again = codec::encode(&record);
        assert_eq!(codec::decode::<KeyRecord>(&again, "key").unwrap(), record);
    }
});
