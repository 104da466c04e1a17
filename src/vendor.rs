//! The vendor's C types and flag values, as the header declares them when the vendor's own
//! headers are not on the include path. Enumerations are plain integers on the Rust side,
//! so that a value the vendor's enum does not name (a bad argument, or or-ed flag bits) is
//! still a valid Rust value.

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

#[cfg(not(acl_ipc_guard_vendor_headers))]
pub const ACL_SUCCESS: c_int = 0;
#[cfg(not(acl_ipc_guard_vendor_headers))]
pub const ACL_ERROR_INVALID_PARAM: c_int = 100000;
#[cfg(not(acl_ipc_guard_vendor_headers))]
pub const ACL_ERROR_API_NOT_SUPPORT: c_int = 200001;

/// Export flag: pid whitelist on; the exporter must call aclrtIpcMemSetImportPid.
#[cfg(not(acl_ipc_guard_vendor_headers))]
pub const ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT: u64 = 0x0;
/// Export flag: no whitelist; the key alone grants access (a bearer capability).
#[cfg(not(acl_ipc_guard_vendor_headers))]
pub const ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION: u64 = 0x1;
/// Import flag: default.
#[cfg(not(acl_ipc_guard_vendor_headers))]
pub const ACL_RT_IPC_MEM_IMPORT_FLAG_DEFAULT: u64 = 0x0;
/// Import flag: enable peer access.
#[cfg(not(acl_ipc_guard_vendor_headers))]
pub const ACL_RT_IPC_MEM_IMPORT_FLAG_ENABLE_PEER_ACCESS: u64 = 0x1;
/// `aclrtIpcMemAttrType` value.
#[cfg(not(acl_ipc_guard_vendor_headers))]
pub const ACL_RT_IPC_MEM_ATTR_ACCESS_LINK: aclrtIpcMemAttrType = 0;
/// Access link attribute value: SIO.
#[cfg(not(acl_ipc_guard_vendor_headers))]
pub const ACL_RT_IPC_MEM_ATTR_ACCESS_LINK_SIO: c_int = 0;
/// Access link attribute value: HCCS.
#[cfg(not(acl_ipc_guard_vendor_headers))]
pub const ACL_RT_IPC_MEM_ATTR_ACCESS_LINK_HCCS: c_int = 1;
