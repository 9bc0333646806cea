//! `Last-Event-ID` parsing, from the header and from `?last_event_id=`: never panics; a value it
//! accepts is the number the text spells (surrounding white space aside), and anything else is a
//! 400, never a silent replay from another position.
#![no_main]

use libfuzzer_sys::fuzz_target;
use panlink::sse::last_event_id;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = http::HeaderValue::from_bytes(data) {
        if let Ok(id) = last_event_id(Some(&header), None) {
            let text = std::str::from_utf8(data).expect("an accepted header is text").trim();
            assert!(text.is_empty() || text.parse::<u32>() == Ok(id), "{text:?} -> {id}");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let query = format!("last_event_id={text}");
        let _ = last_event_id(None, Some(&query));
    }
});
