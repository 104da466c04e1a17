//! The committed header must be exactly what cbindgen generates from the sources now.
//! Regenerate with `ACL_IPC_GUARD_BLESS=1 cargo test --test header`.

use std::path::Path;

#[test]
fn committed_header_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let path = root.join("include/acl_ipc_guard.h");
    if std::env::var_os("ACL_IPC_GUARD_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write header");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/acl_ipc_guard.h is stale; regenerate it with `ACL_IPC_GUARD_BLESS=1 cargo test --test header`"
    );
}
