//! The edge with C: the vendor's entry points the shim intercepts, the library's own C
//! API, the vendor's C types, and every read of the caller's memory. Thin: each entry point
//! converts its arguments at the boundary and hands over to `runtime::entry`; nothing here
//! decides what is a violation. The header `include/acl_ipc_guard.h` is generated from
//! these files by cbindgen (`cbindgen.toml`).

pub mod api;
pub mod intercepted;
pub(crate) mod raw;
pub mod vendor;
