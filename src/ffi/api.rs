//! The library's own C API: version, counters, flush.

use crate::boundary::{contain, Entered};
use crate::call::codes;
use crate::runtime::{Runtime, Stats, VERSION};
use std::os::raw::{c_char, c_int};

/// Counters of this process since it started (or since fork, in a child).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AclIpcGuardStats {
    /// Intercepted calls seen (in every mode but `off`).
    pub calls: u64,
    /// Rule violations found, including those past the repeat limit.
    pub violations: u64,
    /// Calls not forwarded, or turned into 100000, in `enforce` mode.
    pub blocked: u64,
    /// Records lost: the queue was full, or the log could not be written.
    pub dropped: u64,
    /// Keys this process exported and has not closed.
    pub live_exports: u64,
    /// Keys this process imported and has not closed.
    pub live_imports: u64,
}

impl From<Stats> for AclIpcGuardStats {
    fn from(s: Stats) -> AclIpcGuardStats {
        AclIpcGuardStats {
            calls: s.calls,
            violations: s.violations,
            blocked: s.blocked,
            dropped: s.dropped,
            live_exports: s.live_exports,
            live_imports: s.live_imports,
        }
    }
}

/// The library's version, a static NUL-terminated string.
#[no_mangle]
pub extern "C" fn aclIpcGuardVersion() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// Fills `*out` with this process's counters. Returns 0, or 100000 when `out` is NULL.
///
/// # Safety
/// `out` must be NULL or point to writable memory for one `AclIpcGuardStats`.
#[no_mangle]
pub unsafe extern "C" fn aclIpcGuardGetStats(out: *mut AclIpcGuardStats) -> c_int {
    if out.is_null() {
        return codes::ACL_ERROR_INVALID_PARAM;
    }
    let _inside = Entered::enter();
    let stats = contain(|| Runtime::get().stats()).unwrap_or_default();
    // SAFETY: `out` is not NULL and points to writable memory for one AclIpcGuardStats
    // (the caller's contract).
    unsafe { out.write(stats.into()) };
    codes::ACL_SUCCESS
}

/// Writes every queued record before returning. Returns 0.
#[no_mangle]
pub extern "C" fn aclIpcGuardFlush() -> c_int {
    let _inside = Entered::enter();
    let _ = contain(|| {
        if let Some(rt) = Runtime::try_get() {
            rt.flush();
        }
    });
    codes::ACL_SUCCESS
}
