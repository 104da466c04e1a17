//! Every read of the caller's memory the shim makes, in a few small functions. Each reads
//! only what the real runtime reads too, never further, so the caller's memory is trusted
//! exactly as far as the runtime trusts it: a pointer that would crash the runtime may
//! crash these reads, and nothing else is touched.

use crate::call::{ServerEntry, MAX_PIDS, MAX_SERVER_ENTRIES};
use crate::ffi::vendor::aclrtServerPid;
use crate::key::{Key, KeyArg, KEY_LEN};
use std::ffi::c_void;
use std::os::raw::c_char;

/// Reads a key argument byte by byte up to its NUL, at most 65 bytes: never further than
/// the runtime's own `strnlen` would.
///
/// # Safety
/// `key` is NULL or readable up to its first NUL or for 65 bytes, whichever comes first
/// (what the runtime requires of a key).
pub(crate) unsafe fn key(key: *const c_char) -> KeyArg {
    if key.is_null() {
        return KeyArg::Null;
    }
    let mut buf = [0u8; KEY_LEN];
    for (i, slot) in buf.iter_mut().enumerate() {
        // SAFETY: bytes 0..=i are before the first NUL or at it, within 65 bytes (caller).
        let b = unsafe { key.add(i).read() } as u8;
        *slot = b;
        if b == 0 {
            // buf holds the key's i bytes, then zeros.
            return KeyArg::Key(Key::from_buf(buf, i));
        }
    }
    KeyArg::Unterminated
}

/// The address a successful call wrote through a `void **` out-pointer.
///
/// # Safety
/// `out` is the out-pointer the runtime just wrote through successfully.
pub(crate) unsafe fn out_ptr(out: *mut *mut c_void) -> usize {
    // SAFETY: the runtime wrote a pointer there (caller).
    unsafe { out.read() as usize }
}

/// The value a successful call wrote through an `int32_t *` out-pointer.
///
/// # Safety
/// `out` is the out-pointer the runtime just wrote through successfully.
pub(crate) unsafe fn out_i32(out: *mut i32) -> i32 {
    // SAFETY: the runtime wrote an int32_t there (caller).
    unsafe { out.read() }
}

/// A pid array of `num` entries at `ptr`, where pointer and count are sane (non-NULL,
/// 1..=31); `None` otherwise.
///
/// # Safety
/// Called only where the runtime reads this array for these arguments (it then requires
/// `num` readable `int32_t`s at `ptr`).
pub(crate) unsafe fn pids(ptr: usize, num: usize) -> Option<Vec<i32>> {
    if ptr == 0 || num == 0 || num > MAX_PIDS {
        return None;
    }
    // SAFETY: non-NULL, `num` entries the runtime reads too (caller); the vendor's pid
    // arrays are `int32_t *`, so aligned for i32.
    Some(unsafe { std::slice::from_raw_parts(ptr as *const i32, num) }.to_vec())
}

/// The `aclrtServerPid` entries of `aclrtIpcMemImportPidInterServer`, where the array is
/// there and the count is sane (non-NULL, 1..=64); the pid arrays they point to are not
/// read here.
///
/// # Safety
/// Called only where the runtime reads `num` entries at `entries`.
pub(crate) unsafe fn server_entries(
    entries: *const aclrtServerPid,
    num: usize,
) -> Option<Vec<ServerEntry>> {
    if entries.is_null() || !(1..=MAX_SERVER_ENTRIES).contains(&num) {
        return None;
    }
    // SAFETY: non-NULL, `num` entries the runtime reads too (caller).
    let entries = unsafe { std::slice::from_raw_parts(entries, num) };
    Some(
        entries
            .iter()
            .map(|e| ServerEntry {
                sdid: e.sdid,
                pid_ptr: e.pid as usize,
                num: e.num,
                pids: None,
            })
            .collect(),
    )
}
