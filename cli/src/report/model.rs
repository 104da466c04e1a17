//! What the report's stages hand each other: the logs as given, the processes found in
//! them, each key's timeline and the violations. Data only; no reading, no printing.

use super::parse::PidArg;
use std::collections::{BTreeMap, HashMap};

/// One log as given: its name and its bytes (or why they could not be read).
#[derive(Clone, Debug)]
pub struct Input {
    pub name: String,
    pub content: Result<Vec<u8>, String>,
}

impl Input {
    #[cfg(test)]
    pub fn text(name: &str, text: &str) -> Self {
        Input {
            name: name.to_owned(),
            content: Ok(text.as_bytes().to_vec()),
        }
    }
}

/// Per file: how its lines were read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub path: String,
    /// Why it could not be read; `None` when it was.
    pub error: Option<String>,
    pub records: usize,
    pub text_lines: usize,
    pub skipped: usize,
}

/// A line that starts with `{` but is not a usable record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// How a process's end is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Its `summary` record, at this time.
    Exited(String),
    /// No summary, but another program image with the same pid started at this time (an
    /// exec, or the pid was reused): it ended by then.
    Replaced(String),
    /// No summary: killed, or still running; treated as alive after its last record.
    Unknown,
}

/// One process (one program image): known by its host, pid and `start` record, since pids
/// collide across hosts and containers and are reused. Logs of older versions may lack the
/// start record of a fork child, or the host: such a process is known by its pid and its
/// first record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: i64,
    /// How the report names it: its pid, with `@host` when the logs come from several hosts
    /// and `#n` when that host's pid ran several images (an exec, a reused pid). Unique.
    pub tag: String,
    pub host: Option<String>,
    pub start_ts: Option<String>,
    pub version: Option<String>,
    pub mode: Option<String>,
    pub exe: Option<String>,
    pub ledger: Option<String>,
    /// Its bare tgid as its start record (or its own aclrtDeviceGetBareTgid call) says.
    pub bare_tgid: Option<i64>,
    /// A fork child: its parent's pid as the start record says ...
    pub parent_pid: Option<i64>,
    /// ... and the parent process, when it is in the logs.
    pub parent: Option<usize>,
    pub end: End,
    pub first_seq: u64,
    pub last_seq: u64,
    pub last_ts: String,
    pub records: usize,
    pub files: Vec<String>,
    /// `dropped` of its summary.
    pub dropped: Option<u64>,
    pub has_start: bool,
}

impl Process {
    /// A process known by its pid (and host) and one record's `seq` and time, nothing else
    /// yet: what its other records say is added as they are read.
    pub fn first_seen(pid: i64, host: Option<String>, seq: u64, ts: String) -> Process {
        Process {
            pid,
            tag: String::new(),
            host,
            start_ts: None,
            version: None,
            mode: None,
            exe: None,
            ledger: None,
            bare_tgid: None,
            parent_pid: None,
            parent: None,
            end: End::Unknown,
            first_seq: seq,
            last_seq: seq,
            last_ts: ts,
            records: 0,
            files: Vec::new(),
            dropped: None,
            has_start: false,
        }
    }

    /// A process the rendering tests name: pid, tag and host, `seq` 1 to 2.
    #[cfg(test)]
    pub fn named(pid: i64, tag: &str, host: Option<&str>) -> Process {
        Process {
            tag: tag.into(),
            last_seq: 2,
            ..Process::first_seen(pid, host.map(str::to_owned), 1, String::new())
        }
    }
}

/// Records lost: `seq` `from..=to` of process `process` (pid `pid`) are missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    pub process: usize,
    pub pid: i64,
    pub from: u64,
    pub to: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Log,
    Recheck,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Log => "log",
            Source::Recheck => "recheck",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub rule: String,
    pub severity: String,
    /// The process (index into `Report::processes`) and its pid.
    pub process: usize,
    pub pid: i64,
    pub func: String,
    pub key_fp: Option<String>,
    pub source: Source,
    pub ts: String,
    pub ts_us: i64,
    /// The violation record's seq (log) or the judged call's (re-check).
    pub seq: u64,
    pub message: String,
    /// `reported`/`blocked`/`aborted` for a log violation; `None` for a re-check one.
    pub action: Option<String>,
    /// How many violations this entry stands for: 1, but for the entry of a process's
    /// violations of a rule past `ACL_IPC_GUARD_REPEAT_LIMIT` (`func` `summary`): as many
    /// as its summary counted beyond the records written. Every count of the report
    /// (per rule, the verdict) adds these up, so it agrees with the summaries.
    pub count: u64,
}

/// One event of a key's timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub ts: super::parse::Ts,
    pub ts_us: i64,
    /// The process (index into `Report::processes`) and its pid.
    pub process: usize,
    pub pid: i64,
    pub seq: u64,
    pub func: super::parse::Name,
    /// The call's return value; `None` for a violation.
    pub ret: Option<i64>,
    /// ok, failed (ret ≠ 0) or blocked (not forwarded); `None` for a violation.
    pub status: Option<&'static str>,
    pub detail: Detail,
}

/// What an event is, with the facts that matter for it.
#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    Export {
        dev_ptr: Option<u64>,
        size: Option<u64>,
        flags: Option<u64>,
    },
    Whitelist {
        pids: PidArg,
        num: Option<u64>,
    },
    InterServer {
        /// (sdid, pids) per entry; `None` when the array was NULL.
        server_pids: Option<Vec<(u64, Vec<i64>)>>,
        num: Option<u64>,
    },
    SetAttr {
        attr_type: Option<u64>,
        attr: Option<u64>,
    },
    Import {
        /// The imported address, on success.
        address: Option<u64>,
        flags: Option<u64>,
    },
    Close {
        role: &'static str,
    },
    Free {
        dev_ptr: u64,
        /// `exporter` (the exported memory) or `importer` (an imported address).
        role: &'static str,
    },
    Violation(Box<Violation>),
}

impl Event {
    /// export, whitelist, interserver, setattr, import, close, free, violation
    pub fn kind(&self) -> &'static str {
        match &self.detail {
            Detail::Export { .. } => "export",
            Detail::Whitelist { .. } => "whitelist",
            Detail::InterServer { .. } => "interserver",
            Detail::SetAttr { .. } => "setattr",
            Detail::Import { .. } => "import",
            Detail::Close { .. } => "close",
            Detail::Free { .. } => "free",
            Detail::Violation(_) => "violation",
        }
    }
}

/// The shim's own trouble (`error` records).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShimError {
    pub ts: String,
    pub process: usize,
    pub pid: i64,
    pub message: String,
}

/// Everything `report` found.
#[derive(Clone, Debug)]
pub struct Report {
    pub files: Vec<FileInfo>,
    /// Records used (after dropping exact duplicates).
    pub records: usize,
    pub duplicates: usize,
    pub text_lines: usize,
    pub skipped: Vec<Skipped>,
    pub processes: Vec<Process>,
    pub gaps: Vec<Gap>,
    /// By rule, then time.
    pub violations: Vec<Violation>,
    /// Fingerprint → its events in time order.
    pub keys: BTreeMap<String, Vec<Event>>,
    pub errors: Vec<ShimError>,
    /// Keys whose export the ledger could not hold (it was full): their cross-process
    /// rules were not judged live. Sorted.
    pub untracked_keys: Vec<String>,
    /// What only `--trace` draws: every call with its thread and duration. Empty unless
    /// asked for ([`super::analyze_with`]).
    pub trace: TraceRecords,
}

/// Every call record (memory calls too), and the thread of each violation record, for the
/// trace (`report --trace`).
#[derive(Clone, Debug, Default)]
pub struct TraceRecords {
    /// In the merged time order.
    pub calls: Vec<CallRecord>,
    /// (process, seq) of a `violation` record → the thread that wrote it.
    pub violation_tids: HashMap<(usize, u64), i64>,
}

/// One `call` record as the trace draws it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// The process (index into `Report::processes`).
    pub process: usize,
    /// The calling thread (the pid when the record has no `tid`).
    pub tid: i64,
    pub seq: u64,
    /// The record's time: the call had returned by then.
    pub ts_us: i64,
    /// `dur_ns` (0 when absent).
    pub dur_ns: u64,
    pub func: String,
    pub ret: Option<i64>,
    /// ok, failed or blocked.
    pub status: &'static str,
    /// The key it names (`args.key_fp`) or made (`out.key_fp`).
    pub key_fp: Option<String>,
}

impl Report {
    /// How many violations of `severity` the job had: written, counted only in a
    /// summary (past the repeat limit) or found by the re-check.
    pub fn count(&self, severity: &str) -> u64 {
        self.violations
            .iter()
            .filter(|v| v.severity == severity)
            .map(|v| v.count)
            .sum()
    }

    /// 1 if any `error` violation (from the logs or the re-check), else 0.
    pub fn exit_status(&self) -> i32 {
        i32::from(self.count("error") > 0)
    }
}

/// A pid list for people: `[1, 2]`.
pub fn pids_text(p: &[i64]) -> String {
    let v: Vec<String> = p.iter().map(i64::to_string).collect();
    format!("[{}]", v.join(", "))
}
