//! Every read of the caller's memory the shim makes, in a few small functions. Each reads
//! only what the real runtime reads too, never further, so the caller's memory is trusted
//! exactly as far as the runtime trusts it: a pointer that would crash the runtime may
//! crash these reads, and nothing else is touched.

use crate::call::{ServerEntry, MAX_PIDS, MAX_SERVER_ENTRIES};
use crate::ffi::vendor::aclrtServerPid;
use crate::key::{Key, KeyArg, KEY_LEN};
use std::ffi::c_void;
use std::os::raw::c_char;

/// Reads a key argument up to its NUL, at most 65 bytes: its length is found by the C
/// library's own `strnlen` (the function the runtime bounds a key with), which never
/// reads past the NUL or the 65th byte in a way that could fault (its wide reads stay
/// inside aligned words, so inside the page of a byte it may read), and only the key's
/// bytes are copied. A 64-character key costs some 50 instructions this way, where a
/// loop over its bytes cost about 300 (one key read per IPC call).
///
/// # Safety
/// `key` is NULL or readable up to its first NUL or for 65 bytes, whichever comes first
/// (what the runtime requires of a key).
pub(crate) unsafe fn key(key: *const c_char) -> KeyArg {
    if key.is_null() {
        return KeyArg::Null;
    }
    // SAFETY: readable up to its NUL or for 65 bytes (caller), which bound strnlen.
    let len = unsafe { libc::strnlen(key, KEY_LEN) };
    if len >= KEY_LEN {
        return KeyArg::Unterminated;
    }
    let mut buf = [0u8; KEY_LEN];
    // SAFETY: the `len` bytes before the NUL are readable (caller), and `len` < 65 fits
    // `buf`, which does not overlap the caller's memory.
    unsafe { std::ptr::copy_nonoverlapping(key.cast::<u8>(), buf.as_mut_ptr(), len) };
    // buf holds the key's `len` bytes, then zeros.
    KeyArg::Key(Key::from_buf(buf, len))
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
