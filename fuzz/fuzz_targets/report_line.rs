//! One log line, arbitrary text: `parse_line` classifies it without panicking.
#![no_main]

use acl_ipc_guard_cli::report::parse::{parse_line, Line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Line::Malformed(why) = parse_line(0, &text) {
        assert!(!why.is_empty());
    }
});
