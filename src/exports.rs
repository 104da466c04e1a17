//! The C entry points with the vendor's signatures. Each one only gathers its arguments
//! into plain data, names how to forward and what to read back, and hands over to
//! `runtime::intercept`; nothing here decides what is a violation.

#![allow(non_snake_case, clippy::missing_safety_doc)]

use crate::call::{Args, Func, Out, ServerEntry, MAX_SERVER_ENTRIES};
use crate::key::{KeyArg, KEY_LEN};
use crate::runtime::intercept;
use crate::vendor::{aclError, aclrtIpcMemAttrType, aclrtMemMallocPolicy, aclrtServerPid};
use std::ffi::c_void;
use std::mem::transmute;
use std::os::raw::c_char;

/// Reads a key argument byte by byte up to its NUL, at most 65 bytes: never further than
/// the runtime's own `strnlen` would.
unsafe fn read_key(key: *const c_char) -> KeyArg {
    if key.is_null() {
        return KeyArg::Null;
    }
    let mut buf = [0u8; KEY_LEN];
    for (i, slot) in buf.iter_mut().enumerate() {
        let b = *key.add(i) as u8;
        *slot = b;
        if b == 0 {
            return KeyArg::from_prefix(&buf[..=i]);
        }
    }
    KeyArg::Unterminated
}

unsafe fn read_out_ptr(p: *mut *mut c_void) -> Out {
    Out {
        dev_ptr: Some(*p as usize),
        ..Out::default()
    }
}

type ExportKeyFn = extern "C" fn(*mut c_void, usize, *mut c_char, usize, u64) -> aclError;
type SetImportPidFn = extern "C" fn(*const c_char, *mut i32, usize) -> aclError;
type InterServerFn = extern "C" fn(*const c_char, *mut aclrtServerPid, usize) -> aclError;
type ImportByKeyFn = extern "C" fn(*mut *mut c_void, *const c_char, u64) -> aclError;
type SetAttrFn = extern "C" fn(*const c_char, aclrtIpcMemAttrType, u64) -> aclError;
type CloseFn = extern "C" fn(*const c_char) -> aclError;
type BareTgidFn = extern "C" fn(*mut i32) -> aclError;
type MallocFn = extern "C" fn(*mut *mut c_void, usize, aclrtMemMallocPolicy) -> aclError;
type FreeFn = extern "C" fn(*mut c_void) -> aclError;

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
        Func::GetExportKey,
        || Args::GetExportKey {
            dev_ptr: devPtr as usize,
            size,
            key_buf: key as usize,
            len,
            flags,
        },
        |f| transmute::<usize, ExportKeyFn>(f)(devPtr, size, key, len, flags),
        || Out {
            key: read_key(key).key().copied(),
            ..Out::default()
        },
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
        Func::SetImportPid,
        || Args::SetImportPid {
            key: read_key(key),
            pid_ptr: pid as usize,
            pids: None,
            num,
        },
        |f| transmute::<usize, SetImportPidFn>(f)(key, pid, num),
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
        Func::ImportPidInterServer,
        || {
            let key = read_key(key);
            Args::ImportPidInterServer {
                key,
                server_pids: serverPids as usize,
                // The runtime checks the entries once key and array are there; the pid arrays
                // themselves it reads only later (the runtime path reads them after success).
                entries: (matches!(key, KeyArg::Key(_))
                    && !serverPids.is_null()
                    && (1..=MAX_SERVER_ENTRIES).contains(&num))
                .then(|| {
                    std::slice::from_raw_parts(serverPids, num)
                        .iter()
                        .map(|e| ServerEntry {
                            sdid: e.sdid,
                            pid_ptr: e.pid as usize,
                            num: e.num,
                            pids: None,
                        })
                        .collect()
                }),
                num,
            }
        },
        |f| transmute::<usize, InterServerFn>(f)(key, serverPids, num),
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
        Func::ImportByKey,
        || Args::ImportByKey {
            out_ptr: devPtr as usize,
            key: read_key(key),
            flags,
        },
        |f| transmute::<usize, ImportByKeyFn>(f)(devPtr, key, flags),
        || read_out_ptr(devPtr),
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
        Func::SetAttr,
        || Args::SetAttr {
            key: read_key(key),
            attr_type: r#type as u32,
            attr,
        },
        |f| transmute::<usize, SetAttrFn>(f)(key, r#type, attr),
        Out::default,
    )
}

/// Closes a key: in an importer it unmaps, in the exporter it destroys the key. Importers
/// close first, the exporter last.
#[no_mangle]
pub unsafe extern "C" fn aclrtIpcMemClose(key: *const c_char) -> aclError {
    intercept(
        Func::Close,
        || Args::Close { key: read_key(key) },
        |f| transmute::<usize, CloseFn>(f)(key),
        Out::default,
    )
}

/// Writes this process's bare tgid (the host pid, also in a container) to `*pid`.
#[no_mangle]
pub unsafe extern "C" fn aclrtDeviceGetBareTgid(pid: *mut i32) -> aclError {
    intercept(
        Func::DeviceGetBareTgid,
        || Args::DeviceGetBareTgid {
            out_ptr: pid as usize,
        },
        |f| transmute::<usize, BareTgidFn>(f)(pid),
        || Out {
            pid: Some(*pid),
            ..Out::default()
        },
    )
}

unsafe fn malloc_like(
    func: Func,
    devPtr: *mut *mut c_void,
    size: usize,
    policy: aclrtMemMallocPolicy,
) -> aclError {
    intercept(
        func,
        || Args::Malloc {
            out_ptr: devPtr as usize,
            size,
            policy: policy as u32,
        },
        |f| transmute::<usize, MallocFn>(f)(devPtr, size, policy),
        || read_out_ptr(devPtr),
    )
}

/// Allocates device memory.
#[no_mangle]
pub unsafe extern "C" fn aclrtMalloc(
    devPtr: *mut *mut c_void,
    size: usize,
    policy: aclrtMemMallocPolicy,
) -> aclError {
    malloc_like(Func::Malloc, devPtr, size, policy)
}

/// Allocates device memory, 32-byte aligned.
#[no_mangle]
pub unsafe extern "C" fn aclrtMallocAlign32(
    devPtr: *mut *mut c_void,
    size: usize,
    policy: aclrtMemMallocPolicy,
) -> aclError {
    malloc_like(Func::MallocAlign32, devPtr, size, policy)
}

/// Allocates cached device memory.
#[no_mangle]
pub unsafe extern "C" fn aclrtMallocCached(
    devPtr: *mut *mut c_void,
    size: usize,
    policy: aclrtMemMallocPolicy,
) -> aclError {
    malloc_like(Func::MallocCached, devPtr, size, policy)
}

/// Frees device memory this process allocated (never memory it imported).
#[no_mangle]
pub unsafe extern "C" fn aclrtFree(devPtr: *mut c_void) -> aclError {
    intercept(
        Func::Free,
        || Args::Free {
            dev_ptr: devPtr as usize,
        },
        |f| transmute::<usize, FreeFn>(f)(devPtr),
        Out::default,
    )
}
