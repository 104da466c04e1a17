fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    // Export exactly the vendor functions and our own API, nothing from dependencies.
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={dir}/exports.map");
    // A soname, so that programs linked with -lacl_ipc_guard find it by name when installed.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libacl_ipc_guard.so");
    println!("cargo:rerun-if-changed=exports.map");
}
