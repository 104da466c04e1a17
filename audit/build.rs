fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    // Export only the rtld-audit entry points ld.so looks up.
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={dir}/exports.map");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libacl_ipc_guard_audit.so");
    println!("cargo:rerun-if-changed=exports.map");
}
