//! Records: what the shim writes. Types here are plain data filled on the calling thread;
//! encoding to JSON or text happens at the sink, on the writer thread where possible.

mod batch;
mod frames;
mod json;
pub mod syslog;
#[cfg(test)]
mod syslog_tests;
#[cfg(test)]
mod tests;
mod text;
mod time;
mod writer;

pub use time::{format_ts, parse_ts};
pub(crate) use writer::{stderr_line, Log};

use crate::call::{Args, Func, Outcome};
use crate::config::{Format, Mode};
use crate::key::{Fp, Key, KeyFp};
use crate::rules::{Rule, Severity};

/// What was done about a violation.
/// The record schema's names, written by the encoder and read by the command's report.
/// (Every record kind's round trip through both is tested in `cli`.)
pub mod schema {
    /// Fields every record has, in this order.
    pub const TS: &str = "ts";
    pub const SEQ: &str = "seq";
    pub const PID: &str = "pid";
    pub const TID: &str = "tid";
    pub const EVENT: &str = "event";
    /// The `event` values.
    pub const START: &str = "start";
    pub const CALL: &str = "call";
    pub const VIOLATION: &str = "violation";
    pub const SUMMARY: &str = "summary";
    pub const ERROR: &str = "error";
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Reported,
    Blocked,
    Aborted,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reported => "reported",
            Action::Blocked => "blocked",
            Action::Aborted => "aborted",
        }
    }
}

/// A key as a record names it: by its fingerprint, which the encoder computes from the
/// key's bytes (the raw bytes are written too only with `ACL_IPC_GUARD_SHOW_KEYS=1`).
/// `Id`: only the key's identity is known, from which no fingerprint can be made, and
/// `key_fp` is then null. The checks take the bytes of every key they name while they
/// hold the process's tables (`rules::Finding::key`), so a key another thread closes
/// before the record is made is still named; `Id` is a fallback that should not occur.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRef {
    Id(Fp),
    Key(Key),
}

impl KeyRef {
    /// The reference to the key with identity `fp`: by its bytes when they are known.
    pub fn of(fp: Fp, key: Option<Key>) -> KeyRef {
        key.map_or(KeyRef::Id(fp), KeyRef::Key)
    }

    /// The recorded fingerprint (a SHA-256 prefix, computed here: for encoders only).
    pub fn key_fp(&self) -> Option<KeyFp> {
        match self {
            KeyRef::Id(_) => None,
            KeyRef::Key(k) => Some(k.key_fp()),
        }
    }
}

#[derive(Debug)]
pub struct Violation {
    pub rule: Rule,
    pub severity: Severity,
    pub action: Action,
    /// The function whose call broke the rule; `None` for checks made at exit.
    pub func: Option<Func>,
    pub message: String,
    pub key: Option<KeyRef>,
    pub backtrace: Option<backtrace::Backtrace>,
}

/// The first record of every process (a fork child and a program after exec too): who it
/// is, so that logs from several hosts and containers can be told apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub version: &'static str,
    pub mode: Mode,
    pub exe: String,
    pub ledger: String,
    /// The host name (uname's nodename: in a container, the container's).
    pub host: String,
    /// The process's pid in the host's namespace, as the runtime reports it; `None` when
    /// the runtime could not be asked.
    pub bare_tgid: Option<i32>,
    /// For a fork child: the pid of the process that forked it.
    pub parent: Option<i32>,
}

#[derive(Debug)]
pub enum Body {
    Start(Box<Start>),
    Call {
        func: Func,
        args: Args,
        outcome: Outcome,
    },
    Violation(Box<Violation>),
    Summary {
        calls: u64,
        violations: Vec<(Rule, u64)>,
        blocked: u64,
        leaks: u64,
        dropped: u64,
    },
    Error {
        message: String,
    },
}

impl Body {
    pub fn event(&self) -> &'static str {
        match self {
            Body::Start(_) => schema::START,
            Body::Call { .. } => schema::CALL,
            Body::Violation(_) => schema::VIOLATION,
            Body::Summary { .. } => schema::SUMMARY,
            Body::Error { .. } => schema::ERROR,
        }
    }
}

/// On cache lines of its own (192 bytes: exactly three): a queued record touches three
/// lines, not four, and no line is shared by two records (one being read by the log
/// writer while a caller writes the next).
#[derive(Debug)]
#[repr(align(64))]
pub struct Record {
    pub seq: u64,
    /// Microseconds since the Unix epoch.
    pub ts_us: i64,
    pub pid: i32,
    pub tid: i32,
    pub body: Body,
}

/// Appends `rec` as one line (ending in `\n`) to `out`: JSON (one object per line, fixed
/// field order) or text (one line for people); both carry the same facts.
pub fn encode(rec: &mut Record, format: Format, show_keys: bool, out: &mut Vec<u8>) {
    // A violation's message names keys by identity (made on the calling thread, where no
    // fingerprint is computed): the key's fingerprint goes in its place here.
    if let Body::Violation(v) = &mut rec.body {
        if let Some(KeyRef::Key(k)) = v.key {
            k.name_in(&mut v.message);
        }
    }
    match format {
        Format::Json => json::record(rec, show_keys, out),
        Format::Text => text::record(rec, show_keys, out),
    }
    out.push(b'\n');
}
