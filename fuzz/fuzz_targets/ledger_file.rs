//! Arbitrary bytes as the ledger file `ledger.v5`: opening it and a few operations on it
//! either work or end in an error the shim can say (and then turn cross-process rules
//! off); never a crash or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::os::unix::fs::PermissionsExt;

fuzz_target!(|data: &[u8]| {
    // The first byte (its count) says how many operations to run after opening.
    let (ops, file) = match data.split_first() {
        Some((n, rest)) => rest.split_at(rest.len().min(usize::from(n % 16) * 2)),
        None => (&data[..0], data),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger_dir = dir.path().join("ledger");
    std::fs::create_dir(&ledger_dir).expect("ledger dir");
    std::fs::set_permissions(&ledger_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = ledger_dir.join("ledger.v5");
    std::fs::write(&path, file).expect("write ledger");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    if let Err(e) = acl_ipc_guard::fuzzing::open_ledger_file(&ledger_dir, ops) {
        assert!(!e.is_empty());
    }
});
