//! The switch parser over arbitrary environments: each input line `NAME=VALUE` sets a
//! variable (the last one wins); no panic, and a parse that yields a configuration.
#![no_main]

use acl_ipc_guard::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (uid_bytes, rest) = data.split_at(data.len().min(1));
    // Root and not root are the cases the parser tells apart.
    let uid = if uid_bytes.first().is_some_and(|b| b & 1 == 1) {
        0
    } else {
        1000
    };
    let text = String::from_utf8_lossy(rest);
    let vars: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let lookup = |name: &str| {
        vars.iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    };
    let (_config, _warnings) = Config::from_lookup(lookup, uid);
});
