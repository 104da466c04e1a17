//! The C entry points with the vendor's signatures. Each one only gathers its arguments
//! into plain data (through `raw`), names its real function's slot, how to forward and
//! what to read back, and hands over to `runtime::entry::intercept`.

#![allow(non_snake_case, clippy::missing_safety_doc)]

use super::raw;
use super::vendor::{aclError, aclrtIpcMemAttrType, aclrtMemMallocPolicy, aclrtServerPid};
use crate::call::{Args, Out};
use crate::key::KeyArg;
use crate::real::{self, MallocFn, Real};
use crate::runtime::entry::{forward_only, intercept, quiet_free, quiet_malloc};
use std::ffi::c_void;
use std::os::raw::c_char;

/// Shares `size` bytes of device memory at `devPtr` with other processes: writes a key of
/// at most 64 characters and a NUL into `key` (`len` is fixed at 65). `flags` is
/// `ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT` (pid whitelist on) or
/// `ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION`.
#[no_mangle]
pub unsafe extern "C" fn aclrtIpcMemGetExportKey(
    devPtr: *mut c_void,
    size: usize,
    key: *mut c_char,
    len: usize,
    flags: u64,
) -> aclError {
    intercept(
        &real::GET_EXPORT_KEY,
        || Args::GetExportKey {
            dev_ptr: devPtr as usize,
            size,
            key_buf: key as usize,
            len,
            flags,
            // Read after success (`Args::read_export_key`).
            key: None,
        },
        // SAFETY (each `f(..)` below): the real function, called with the program's own
        // arguments, unchanged.
        |f| unsafe { f(devPtr, size, key, len, flags) },
        Out::default,
    )
}

/// Whitelists `num` (1 to 31) bare tgids for a key this process exported.
#[no_mangle]
pub unsafe extern "C" fn aclrtIpcMemSetImportPid(
    key: *const c_char,
    pid: *mut i32,
    num: usize,
) -> aclError {
    intercept(
        &real::SET_IMPORT_PID,
        || Args::SetImportPid {
            // SAFETY (each `raw::key`): a key argument, read as the runtime reads it.
            key: unsafe { raw::key(key) },
            pid_ptr: pid as usize,
            pids: None,
            num,
        },
        |f| unsafe { f(key, pid, num) },
        Out::default,
    )
}

/// Whitelists pids on other servers of an A3 super-node for a key this process exported.
#[no_mangle]
pub unsafe extern "C" fn aclrtIpcMemImportPidInterServer(
    key: *const c_char,
    serverPids: *mut aclrtServerPid,
    num: usize,
) -> aclError {
    intercept(
        &real::IMPORT_PID_INTER_SERVER,
        || {
            let key = unsafe { raw::key(key) };
            Args::ImportPidInterServer {
                key,
                server_pids: serverPids as usize,
                // The runtime checks the entries once the key is there; the pid arrays
                // themselves it reads only later (the path reads them after success).
                entries: match key {
                    // SAFETY: with a key, the runtime reads the entries.
                    KeyArg::Key(_) => unsafe { raw::server_entries(serverPids, num) },
                    _ => None,
                },
                num,
            }
        },
        |f| unsafe { f(key, serverPids, num) },
        Out::default,
    )
}

/// Maps the memory another process exported under `key` and writes its address to
/// `*devPtr`. `flags` is `ACL_RT_IPC_MEM_IMPORT_FLAG_DEFAULT` or `_ENABLE_PEER_ACCESS`.
#[no_mangle]
pub unsafe extern "C" fn aclrtIpcMemImportByKey(
    devPtr: *mut *mut c_void,
    key: *const c_char,
    flags: u64,
) -> aclError {
    intercept(
        &real::IMPORT_BY_KEY,
        || Args::ImportByKey {
            out_ptr: devPtr as usize,
            key: unsafe { raw::key(key) },
            flags,
        },
        |f| unsafe { f(devPtr, key, flags) },
        // SAFETY: after success the runtime wrote the address through `devPtr`.
        || out_dev_ptr(unsafe { raw::out_ptr(devPtr) }),
    )
}

/// Sets an attribute of shared memory (A3 super-node systems).
#[no_mangle]
pub unsafe extern "C" fn aclrtIpcMemSetAttr(
    key: *const c_char,
    r#type: aclrtIpcMemAttrType,
    attr: u64,
) -> aclError {
    intercept(
        &real::SET_ATTR,
        || Args::SetAttr {
            key: unsafe { raw::key(key) },
            attr_type: r#type as u32,
            attr,
        },
        |f| unsafe { f(key, r#type, attr) },
        Out::default,
    )
}

/// Closes a key: in an importer it unmaps, in the exporter it destroys the key. Importers
/// close first, the exporter last.
#[no_mangle]
pub unsafe extern "C" fn aclrtIpcMemClose(key: *const c_char) -> aclError {
    intercept(
        &real::CLOSE,
        || Args::Close {
            key: unsafe { raw::key(key) },
        },
        |f| unsafe { f(key) },
        Out::default,
    )
}

/// Writes this process's bare tgid (the host pid, also in a container) to `*pid`.
#[no_mangle]
pub unsafe extern "C" fn aclrtDeviceGetBareTgid(pid: *mut i32) -> aclError {
    intercept(
        &real::DEVICE_GET_BARE_TGID,
        || Args::DeviceGetBareTgid {
            out_ptr: pid as usize,
        },
        |f| unsafe { f(pid) },
        // SAFETY: after success the runtime wrote the pid through `pid`.
        || Out {
            pid: Some(unsafe { raw::out_i32(pid) }),
            ..Out::default()
        },
    )
}

/// The three allocation calls share one signature and one path: mode `off` forwards at
/// once; the rest is out of line (`malloc_checked`), so that the forwarding path sets up
/// nothing for it.
///
/// # Safety
/// The entry points' own: `devPtr` is what the program passed to the allocation call.
#[inline(always)]
unsafe fn malloc_like(
    real: &'static Real<MallocFn>,
    devPtr: *mut *mut c_void,
    size: usize,
    policy: aclrtMemMallocPolicy,
) -> aclError {
    match forward_only(real) {
        // SAFETY: the real function, with the program's own arguments.
        Some(f) => unsafe { f(devPtr, size, policy) },
        // SAFETY: the caller's.
        None => unsafe { malloc_checked(real, devPtr, size, policy) },
    }
}

/// The quiet path inlined; the rest (`malloc_full`) out of line, so that nothing here is
/// set up for it.
///
/// # Safety
/// As `malloc_like`.
#[inline(never)]
unsafe fn malloc_checked(
    real: &'static Real<MallocFn>,
    devPtr: *mut *mut c_void,
    size: usize,
    policy: aclrtMemMallocPolicy,
) -> aclError {
    quiet_malloc(
        real,
        size,
        // SAFETY: the real function, with the program's own arguments.
        |f| unsafe { f(devPtr, size, policy) },
        // SAFETY: called after success: the runtime wrote the address through `devPtr`.
        || unsafe { raw::out_ptr(devPtr) },
    )
    // SAFETY: the caller's.
    .unwrap_or_else(|| unsafe { malloc_full(real, devPtr, size, policy) })
}

/// # Safety
/// As `malloc_like`.
#[cold]
#[inline(never)]
unsafe fn malloc_full(
    real: &'static Real<MallocFn>,
    devPtr: *mut *mut c_void,
    size: usize,
    policy: aclrtMemMallocPolicy,
) -> aclError {
    intercept(
        real,
        || Args::Malloc {
            out_ptr: devPtr as usize,
            size,
            policy: policy as u32,
        },
        |f| unsafe { f(devPtr, size, policy) },
        // SAFETY: after success the runtime wrote the address through `devPtr`.
        || out_dev_ptr(unsafe { raw::out_ptr(devPtr) }),
    )
}

/// Allocates device memory.
#[no_mangle]
pub unsafe extern "C" fn aclrtMalloc(
    devPtr: *mut *mut c_void,
    size: usize,
    policy: aclrtMemMallocPolicy,
) -> aclError {
    // SAFETY: the program's own arguments.
    unsafe { malloc_like(&real::MALLOC, devPtr, size, policy) }
}

/// Allocates device memory, 32-byte aligned.
#[no_mangle]
pub unsafe extern "C" fn aclrtMallocAlign32(
    devPtr: *mut *mut c_void,
    size: usize,
    policy: aclrtMemMallocPolicy,
) -> aclError {
    // SAFETY: the program's own arguments.
    unsafe { malloc_like(&real::MALLOC_ALIGN32, devPtr, size, policy) }
}

/// Allocates cached device memory.
#[no_mangle]
pub unsafe extern "C" fn aclrtMallocCached(
    devPtr: *mut *mut c_void,
    size: usize,
    policy: aclrtMemMallocPolicy,
) -> aclError {
    // SAFETY: the program's own arguments.
    unsafe { malloc_like(&real::MALLOC_CACHED, devPtr, size, policy) }
}

/// Frees device memory this process allocated (never memory it imported).
#[no_mangle]
pub unsafe extern "C" fn aclrtFree(devPtr: *mut c_void) -> aclError {
    match forward_only(&real::FREE) {
        // SAFETY: the real function, with the program's own argument.
        Some(f) => unsafe { f(devPtr) },
        // SAFETY: the program's own argument.
        None => unsafe { free_checked(devPtr) },
    }
}

/// `aclrtFree` past mode `off`, out of line as `malloc_checked`.
///
/// # Safety
/// `devPtr` is what the program passed to `aclrtFree`.
#[inline(never)]
unsafe fn free_checked(devPtr: *mut c_void) -> aclError {
    // SAFETY: the real function, with the program's own argument.
    quiet_free(&real::FREE, devPtr as usize, |f| unsafe { f(devPtr) })
        // SAFETY: the caller's.
        .unwrap_or_else(|| unsafe { free_full(devPtr) })
}

/// # Safety
/// As `free_checked`.
#[cold]
#[inline(never)]
unsafe fn free_full(devPtr: *mut c_void) -> aclError {
    intercept(
        &real::FREE,
        || Args::Free {
            dev_ptr: devPtr as usize,
        },
        |f| unsafe { f(devPtr) },
        Out::default,
    )
}

fn out_dev_ptr(dev_ptr: usize) -> Out {
    Out {
        dev_ptr: Some(dev_ptr),
        ..Out::default()
    }
}
