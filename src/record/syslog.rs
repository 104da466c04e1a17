//! The syslog sink (`ACL_IPC_GUARD_LOG=syslog` or `syslog:SOCKET`): each record is one
//! RFC 5424 datagram on a local unix socket, its message the record exactly as the file
//! sink writes it (without the line break). The socket is never waited on for long: a
//! record that finds the daemon absent, or its queue full past a short grace, is dropped
//! and counted, and the socket is connected again when the daemon comes back.

use super::time::{format_ts, push_num};
use super::{Action, Body, Record};
use crate::clock::monotonic_ns;
use crate::rules::Severity;
use std::io;

/// Facility `user` (1), the one syslog(3) uses for a program that names none.
pub const FACILITY: u8 = 1;
/// RFC 5424 APP-NAME.
pub const APP_NAME: &str = "acl-ipc-guard";
/// The socket `syslog` alone means.
pub const DEFAULT_SOCKET: &str = "/dev/log";

/// How long one record may wait for room in a full socket queue.
pub const GRACE_MS: i64 = 100;
/// After a record waited in vain, records that find no room are dropped at once for this
/// long, so a stuck daemon costs the program one grace per interval, not one per record.
pub const NO_WAIT_NS: u64 = 1_000_000_000;
/// A socket that lost its daemon is connected again at most this often.
pub const RECONNECT_NS: u64 = 100_000_000;

/// RFC 5424 severities.
pub mod sev {
    pub const CRIT: u8 = 2;
    pub const ERR: u8 = 3;
    pub const WARNING: u8 = 4;
    pub const NOTICE: u8 = 5;
    pub const INFO: u8 = 6;
    pub const DEBUG: u8 = 7;
}

/// The syslog severity of a record (the README's "Syslog" table).
pub fn severity(body: &Body) -> u8 {
    match body {
        Body::Start(_) | Body::Summary { .. } => sev::INFO,
        Body::Call { .. } => sev::DEBUG,
        Body::Violation(v) if v.action == Action::Aborted => sev::CRIT,
        Body::Violation(v) => match v.severity {
            Severity::Error => sev::ERR,
            Severity::Warning => sev::WARNING,
            Severity::Off => sev::NOTICE,
        },
        Body::Error { .. } => sev::ERR,
    }
}

/// A HOSTNAME field: printable US-ASCII without spaces, at most 255 bytes; `-` if none.
pub fn host_field(host: &str) -> String {
    let h: String = host
        .bytes()
        .filter(|b| (33..=126).contains(b))
        .take(255)
        .map(char::from)
        .collect();
    if h.is_empty() {
        "-".to_string()
    } else {
        h
    }
}

/// Appends the RFC 5424 header of `rec`, up to and including the space before MSG:
/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - `. `host` is a `host_field`.
pub fn header(rec: &Record, host: &str, out: &mut Vec<u8>) {
    out.push(b'<');
    push_num(out, i64::from(FACILITY * 8 + severity(&rec.body)), 1);
    out.extend_from_slice(b">1 ");
    format_ts(rec.ts_us, out);
    out.push(b' ');
    out.extend_from_slice(host.as_bytes());
    out.push(b' ');
    out.extend_from_slice(APP_NAME.as_bytes());
    out.push(b' ');
    push_num(out, i64::from(rec.pid), 1);
    out.push(b' ');
    out.extend_from_slice(rec.body.event().as_bytes());
    out.extend_from_slice(b" - ");
}

/// Why a record did not reach the daemon.
#[derive(Debug)]
pub enum Lost {
    /// Nobody listens on the socket (absent, or the daemon is gone).
    Absent(io::Error),
    /// The daemon's queue stayed full.
    Full,
    /// The daemon would not take it (too big, not a datagram socket, ...).
    Refused(io::Error),
}

impl Lost {
    pub fn describe(&self, path: &str) -> String {
        match self {
            Lost::Absent(e) => format!("cannot reach syslog at {path}: {e}"),
            Lost::Full => format!(
                "syslog at {path} takes no more records (its queue stayed full for {GRACE_MS} ms)"
            ),
            Lost::Refused(e) => format!("syslog at {path} refuses a record: {e}"),
        }
    }
}

/// A datagram socket connected to the daemon's socket. One descriptor for the life of the
/// process (a fork child shares it: datagrams do not interleave); it is connected again,
/// not replaced, when the daemon comes back.
pub struct Socket {
    fd: i32,
    addr: libc::sockaddr_un,
    addr_len: libc::socklen_t,
    connected: bool,
    /// Monotonic time before which no reconnection is tried.
    retry_at: u64,
    /// Monotonic time before which a full queue is not waited on.
    no_wait_until: u64,
}

impl Socket {
    /// Makes the socket and connects it; the error (if any) is the first loss to say.
    pub fn open(path: &str) -> (Socket, Option<Lost>) {
        // SAFETY: sockaddr_un is plain data.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_bytes();
        let fits = bytes.len() < addr.sun_path.len() && !bytes.contains(&0);
        if fits {
            for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
                *d = *s as libc::c_char;
            }
        }
        let addr_len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as u32;
        // SAFETY: plain socket creation.
        let fd = unsafe {
            libc::socket(
                libc::AF_UNIX,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        let mut s = Socket {
            fd,
            addr,
            addr_len,
            connected: false,
            retry_at: 0,
            no_wait_until: 0,
        };
        let err = if fd < 0 {
            Some(Lost::Refused(io::Error::last_os_error()))
        } else if !fits {
            // The configuration refuses such paths; kept for a direct caller.
            Some(Lost::Refused(io::Error::from_raw_os_error(
                libc::ENAMETOOLONG,
            )))
        } else {
            s.connect().err()
        };
        (s, err)
    }

    fn connect(&mut self) -> Result<(), Lost> {
        self.retry_at = monotonic_ns() + RECONNECT_NS;
        // SAFETY: addr is an initialised sockaddr_un of addr_len bytes.
        let rc = unsafe {
            libc::connect(
                self.fd,
                (&self.addr as *const libc::sockaddr_un).cast(),
                self.addr_len,
            )
        };
        if rc == 0 {
            self.connected = true;
            return Ok(());
        }
        self.connected = false;
        let e = io::Error::last_os_error();
        Err(match e.raw_os_error() {
            Some(libc::EPROTOTYPE) => Lost::Refused(io::Error::other(
                "it is not a datagram socket (stream sockets are not supported)",
            )),
            _ => Lost::Absent(e),
        })
    }

    /// Sends one message, waiting at most `GRACE_MS` for room; connects again first if
    /// the daemon was gone and it is time to look.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), Lost> {
        if self.fd < 0 {
            return Err(Lost::Refused(io::Error::from_raw_os_error(libc::EBADF)));
        }
        if !self.connected {
            if monotonic_ns() < self.retry_at {
                return Err(Lost::Absent(io::Error::from_raw_os_error(libc::ENOTCONN)));
            }
            self.connect()?;
        }
        let mut reconnected = false;
        let mut deadline: Option<u64> = None;
        loop {
            // SAFETY: msg is a valid buffer; fd is our socket.
            let n = unsafe {
                libc::send(
                    self.fd,
                    msg.as_ptr().cast(),
                    msg.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error().unwrap_or(0) {
                libc::EINTR => continue,
                libc::EAGAIN | libc::ENOBUFS => {
                    let now = monotonic_ns();
                    if now < self.no_wait_until {
                        return Err(Lost::Full);
                    }
                    let end = *deadline.get_or_insert(now + GRACE_MS as u64 * 1_000_000);
                    if now >= end || !self.wait_writable(end - now) {
                        self.no_wait_until = monotonic_ns() + NO_WAIT_NS;
                        return Err(Lost::Full);
                    }
                }
                // The daemon is gone (or was restarted: its socket is a new one): connect
                // again once, now, and resend.
                libc::ECONNREFUSED
                | libc::ENOTCONN
                | libc::ECONNRESET
                | libc::EPIPE
                | libc::ENOENT
                    if !reconnected =>
                {
                    reconnected = true;
                    self.connected = false;
                    self.connect()?;
                }
                libc::ECONNREFUSED
                | libc::ENOTCONN
                | libc::ECONNRESET
                | libc::EPIPE
                | libc::ENOENT => {
                    self.connected = false;
                    return Err(Lost::Absent(e));
                }
                _ => return Err(Lost::Refused(e)),
            }
        }
    }

    /// Waits until the socket has room, at most `ns`; false if it has none by then.
    fn wait_writable(&self, ns: u64) -> bool {
        let mut p = libc::pollfd {
            fd: self.fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        let ms = ns.div_ceil(1_000_000).min(i32::MAX as u64) as i32;
        // SAFETY: p is a valid pollfd array of one.
        let rc = unsafe { libc::poll(&mut p, 1, ms) };
        // Interrupted: the send is simply tried again.
        rc != 0
    }
}
