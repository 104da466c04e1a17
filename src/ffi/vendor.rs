//! The vendor's C types and flag values, as the header declares them when the vendor's own
//! headers are not on the include path. Enumerations are plain integers on the Rust side,
//! so that a value the vendor's enum does not name (a bad argument, or or-ed flag bits) is
//! still a valid Rust value. The flag macros are written into the header by cbindgen.toml,
//! spelled exactly as the vendor spells them and each guarded by `#ifndef`.

#![allow(non_camel_case_types)]

use std::os::raw::c_int;

/// The vendor's return code: 0 is `ACL_SUCCESS`.
#[cfg(not(acl_ipc_guard_vendor_headers))]
pub type aclError = c_int;

/// How `aclrtMalloc` places memory (`ACL_MEM_MALLOC_*`, with optional or-ed flag bits).
#[cfg(not(acl_ipc_guard_vendor_headers))]
pub type aclrtMemMallocPolicy = c_int;

/// The attribute `aclrtIpcMemSetAttr` sets; only `ACL_RT_IPC_MEM_ATTR_ACCESS_LINK` (0).
#[cfg(not(acl_ipc_guard_vendor_headers))]
pub type aclrtIpcMemAttrType = c_int;

/// One server's pids for `aclrtIpcMemImportPidInterServer`.
#[cfg(not(acl_ipc_guard_vendor_headers))]
#[repr(C)]
pub struct aclrtServerPid {
    pub sdid: u32,
    pub pid: *mut i32,
    pub num: usize,
}
