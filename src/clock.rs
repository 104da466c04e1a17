//! The clocks the shim reads, in nanoseconds: one `clock_gettime` wrapper for the record
//! times (wall clock), the ledger's timeouts and start times, and the syslog sink's retry
//! intervals (monotonic).

/// `clock` in nanoseconds (0 before the epoch of that clock, never negative).
pub(crate) fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The wall-clock time in ns since the Unix epoch (records' time).
pub fn now_ns() -> i64 {
    clock_ns(libc::CLOCK_REALTIME) as i64
}

/// CLOCK_MONOTONIC in nanoseconds: for intervals.
pub(crate) fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}
