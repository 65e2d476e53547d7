//! Feeds arbitrary text to the configuration parser (`natrium::config`): the value tree,
//! then the options applied from it. Nothing may panic or overflow the stack, whatever the
//! nesting, and every error must carry a position or say what it is about.
//!
//! Inputs naming `include` are skipped: an include reads a file from the filesystem (an
//! absolute path escapes any directory given here), which is not the parser's business.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    if text.to_ascii_lowercase().contains("include") {
        return;
    }
    let origin = Path::new("/nonexistent/fuzz.conf");
    match natrium::config::parse_tree_str(text, origin) {
        Ok(_) => {
            if let Err(e) = natrium::config::parse_str(text, origin) {
                assert!(!e.to_string().is_empty());
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("/nonexistent/fuzz.conf:"), "no position: {msg}");
        }
    }
});
