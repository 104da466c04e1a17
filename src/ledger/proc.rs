//! Who a process is to the ledger, when it started, and the boot-time clock.
//!
//! A process's start is field 22 of `/proc/<pid>/stat` (clock ticks since boot, usually
//! 100 per second): boot-relative, so the same in every pid namespace, and comparable with
//! CLOCK_BOOTTIME. Only a process's own start is read here; whether other processes are
//! alive the ledger learns from their locks, not from `/proc`.
//!
//! Everything here reads `/proc` into stack buffers: no allocation, so it is usable in a
//! freshly forked child.

use crate::clock::clock_ns;
use std::ffi::CStr;

/// A process as the ledger knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ProcId {
    /// The pid in its own pid namespace (`getpid()` there).
    pub pid: i32,
    /// The bare tgid the runtime reports (the host pid in a container); whitelists hold
    /// these.
    pub bare_tgid: i32,
    /// The ledger's name for it, unique within one ledger file (0 until attached).
    pub ticket: u64,
}

impl ProcId {
    /// This process, with the bare tgid the caller learnt (pass `getpid()` when unknown).
    #[cfg(test)]
    pub fn current(bare_tgid: i32) -> ProcId {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        ProcId {
            pid,
            bare_tgid,
            ticket: 0,
        }
    }

    /// The pid to name it by for people and whitelists: the bare tgid when known.
    pub fn host_pid(&self) -> i32 {
        if self.bare_tgid > 0 {
            self.bare_tgid
        } else {
            self.pid
        }
    }
}

/// Clock ticks per second, the unit of `/proc/<pid>/stat` start times.
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Converts a start time in clock ticks to CLOCK_BOOTTIME nanoseconds.
///
/// The kernel truncates a process's start to the tick, so the result is at most one tick
/// (10 ms) earlier than the real start: a process whitelisted after it started is never
/// judged to have started after its whitelisting; one started less than a tick after it
/// may be missed.
pub fn ticks_to_ns(ticks: u64) -> u64 {
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(clock_ticks_per_sec());
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// CLOCK_BOOTTIME in nanoseconds: the clock process start times are measured on.
pub fn now_boot_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

/// The two fields of a stat line the ledger needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    pub state: u8,
    pub start_ticks: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself
/// hold spaces and parentheses, so the fields after it are found from the last `)`.
pub(crate) fn parse_stat(line: &[u8]) -> Option<Stat> {
    let close = line.iter().rposition(|&b| b == b')')?;
    let mut fields = line[close + 1..]
        .split(|&b| b == b' ' || b == b'\n')
        .filter(|f| !f.is_empty());
    // Fields after the name start at field 3 (state); start time is field 22.
    let state = *fields.next()?.first()?;
    let start = fields.nth(18)?;
    let mut ticks: u64 = 0;
    for &b in start {
        if !b.is_ascii_digit() {
            return None;
        }
        ticks = ticks.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(Stat {
        state,
        start_ticks: ticks,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadStat {
    Ok(Stat),
    /// No such process.
    Gone,
    /// `/proc` could not tell (not mounted, no permission, garbled).
    Unreadable,
}

/// Writes `/proc/<pid>/stat` and a NUL into `buf`.
fn stat_path(pid: i32, buf: &mut [u8; 32]) -> &CStr {
    let mut digits = [0u8; 10];
    let mut n = pid.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut at = 0;
    for &b in b"/proc/" {
        buf[at] = b;
        at += 1;
    }
    for i in (0..len).rev() {
        buf[at] = digits[i];
        at += 1;
    }
    for &b in b"/stat\0" {
        buf[at] = b;
        at += 1;
    }
    CStr::from_bytes_with_nul(&buf[..at]).unwrap_or_default()
}

pub(crate) fn read_stat(pid: i32) -> ReadStat {
    if pid <= 0 {
        return ReadStat::Gone;
    }
    let mut pbuf = [0u8; 32];
    let path = stat_path(pid, &mut pbuf);
    // SAFETY: path is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return match errno() {
            libc::ENOENT | libc::ESRCH => ReadStat::Gone,
            _ => ReadStat::Unreadable,
        };
    }
    // A stat line is bounded: a name of at most 64 bytes and 50 numbers.
    let mut buf = [0u8; 1536];
    let mut len = 0;
    let mut gone = false;
    while len < buf.len() {
        // SAFETY: reads into the unused tail of buf.
        let r = unsafe { libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len) };
        if r > 0 {
            len += r as usize;
        } else if r == 0 {
            break;
        } else {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            gone = e == libc::ESRCH;
            break;
        }
    }
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    if gone || len == 0 {
        // The process went away between open and read.
        return ReadStat::Gone;
    }
    match parse_stat(&buf[..len]) {
        Some(s) => ReadStat::Ok(s),
        None => ReadStat::Unreadable,
    }
}

/// Start time of a live process in clock ticks, or None when it does not exist (or
/// `/proc` cannot say).
pub fn start_ticks_of(pid: i32) -> Option<u64> {
    match read_stat(pid) {
        ReadStat::Ok(s) => Some(s.start_ticks),
        _ => None,
    }
}

pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_spaces_and_parentheses_in_the_name() {
        let mut line =
            b"4242 (we(ir) d) ) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 ".to_vec();
        // Field 22: the 19th field after the state.
        line.extend_from_slice(b"987654 19 20\n");
        let s = parse_stat(&line).unwrap();
        assert_eq!(s.state, b'R');
        assert_eq!(s.start_ticks, 987654);
        assert_eq!(parse_stat(b"12 (x) S 1 2"), None);
        assert_eq!(parse_stat(b"no parenthesis"), None);
    }

    #[test]
    fn own_start_time_is_in_the_past() {
        let me = ProcId::current(0);
        let ticks = start_ticks_of(me.pid).expect("own stat");
        assert!(ticks > 0);
        assert!(ticks_to_ns(ticks) <= now_boot_ns());
        assert_eq!(start_ticks_of(-5), None);
    }

    #[test]
    fn stat_path_formats() {
        let mut b = [0u8; 32];
        assert_eq!(stat_path(1, &mut b).to_bytes(), b"/proc/1/stat");
        assert_eq!(
            stat_path(2147483647, &mut b).to_bytes(),
            b"/proc/2147483647/stat"
        );
    }
}
