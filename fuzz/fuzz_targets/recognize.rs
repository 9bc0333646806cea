//! Share-link recognition and pass-code extraction over arbitrary text: never panics, and every
//! share found in text is a URL its provider's parser accepts, read back as the same share id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use panlink::checker::extract::shares_in_text;
use panlink::checker::providers::{Recognized, recognize};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = recognize(text, None);
    for found in shares_in_text(text) {
        let Recognized::Share(share) = recognize(&found.url, None) else {
            panic!("{:?} was found but is not a share", found.url);
        };
        assert_eq!(share.provider, found.share.provider);
        assert_eq!(share.id, found.share.id);
        if let Some(code) = &found.share.passcode {
            assert!(!code.is_empty() && code.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }
});
