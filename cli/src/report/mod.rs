//! `acl-ipc-guard report [--json] LOG…`: reads the JSON-lines logs of the processes of a
//! job back, merges them into one time order, builds one timeline per key fingerprint,
//! lists the violations by rule and re-checks the cross-process rules from the call records
//! alone (so a job that ran without a shared ledger is still judged).
//!
//! Layers, each a pure function but the last:
//!
//! ```text
//! parse (line → record) ─► analyze (merge, processes, gaps, timelines, re-check) ─► render (text | JSON)
//!                                                                                      ▲
//! main: arguments, reading the files ──────────────────────────────────────────────────┘
//! ```

mod analyze;
mod parse;
mod render;
#[cfg(test)]
mod tests;

pub use analyze::analyze;
pub use parse::PidArg;
pub use render::{render_json, render_text};

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};

pub const USAGE: &str = "usage: acl-ipc-guard report [--json] LOG...
  Merges the JSON-lines logs of the processes of a job (any order, one file per process or
  shared), prints one timeline per key, the violations by rule, and re-checks the
  cross-process ordering from the records. LOG may be - for standard input.
  --json   print one JSON object instead of text
Exit status: 0 no error violation, 1 error violations found, 2 usage error or no log readable.";

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
}

/// One event of a key's timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub ts: String,
    pub ts_us: i64,
    /// The process (index into `Report::processes`) and its pid.
    pub process: usize,
    pub pid: i64,
    pub seq: u64,
    pub func: String,
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

fn opt_num(v: Option<u64>) -> String {
    v.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

fn pids_text(p: &[i64]) -> String {
    let v: Vec<String> = p.iter().map(i64::to_string).collect();
    format!("[{}]", v.join(", "))
}

fn hex_value(v: Option<u64>) -> Value {
    v.map_or(Value::Null, |a| format!("{a:#x}").into())
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

    /// One line for people.
    pub fn desc(&self) -> String {
        match &self.detail {
            Detail::Export {
                dev_ptr,
                size,
                flags,
            } => {
                let mode = match flags {
                    Some(0) => " (whitelist mode)",
                    Some(1) => " (pid validation disabled)",
                    _ => "",
                };
                let dev = dev_ptr.map_or_else(|| "?".to_owned(), |a| format!("{a:#x}"));
                format!(
                    "devPtr={dev} size={} flags={}{mode}",
                    opt_num(*size),
                    opt_num(*flags)
                )
            }
            Detail::Whitelist { pids, num } => match pids {
                PidArg::List(p) => format!("pids {} num {}", pids_text(p), opt_num(*num)),
                PidArg::Null | PidArg::Absent => "pid NULL".to_owned(),
                PidArg::Unread(p) => format!("pid {p} (not read) num {}", opt_num(*num)),
            },
            Detail::InterServer { server_pids, num } => match server_pids {
                Some(entries) => {
                    let parts: Vec<String> = entries
                        .iter()
                        .map(|(s, p)| format!("sdid {s}: {}", pids_text(p)))
                        .collect();
                    format!("serverPids {{{}}} num {}", parts.join("; "), opt_num(*num))
                }
                None => "serverPids NULL".to_owned(),
            },
            Detail::SetAttr { attr_type, attr } => {
                format!("type {} attr {}", opt_num(*attr_type), opt_num(*attr))
            }
            Detail::Import { address, flags } => match address {
                Some(a) => format!("-> {a:#x} (flags {})", opt_num(*flags)),
                None => format!("flags {}", opt_num(*flags)),
            },
            Detail::Close { role } => format!("role {role}"),
            Detail::Free { dev_ptr, role } => match *role {
                "importer" => format!("devPtr={dev_ptr:#x} (an imported address)"),
                _ => format!("devPtr={dev_ptr:#x} (exported memory)"),
            },
            Detail::Violation(v) => {
                let action = v
                    .action
                    .as_deref()
                    .map(|a| format!(", {a}"))
                    .unwrap_or_default();
                format!(
                    "{} ({}{action}, {}): {}",
                    v.rule,
                    v.severity,
                    v.source.as_str(),
                    v.message
                )
            }
        }
    }

    /// The kind-specific fields, for `--json`.
    pub fn fields(&self, m: &mut Map<String, Value>) {
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_owned(), v);
        };
        let num = |v: Option<u64>| v.map_or(Value::Null, Value::from);
        match &self.detail {
            Detail::Export {
                dev_ptr,
                size,
                flags,
            } => {
                put("devPtr", hex_value(*dev_ptr));
                put("size", num(*size));
                put("flags", num(*flags));
            }
            Detail::Whitelist { pids, num: n } => {
                put("pids", pids.list().into());
                put("num", num(*n));
            }
            Detail::InterServer {
                server_pids,
                num: n,
            } => {
                let entries = server_pids.as_ref().map_or(Value::Null, |es| {
                    es.iter()
                        .map(|(sdid, pids)| serde_json::json!({"sdid": sdid, "pid": pids}))
                        .collect()
                });
                put("serverPids", entries);
                put("num", num(*n));
            }
            Detail::SetAttr { attr_type, attr } => {
                put("type", num(*attr_type));
                put("attr", num(*attr));
            }
            Detail::Import { address, flags } => {
                put("address", hex_value(*address));
                put("flags", num(*flags));
            }
            Detail::Close { role } => put("role", (*role).into()),
            Detail::Free { dev_ptr, role } => {
                put("devPtr", hex_value(Some(*dev_ptr)));
                put("role", (*role).into());
            }
            Detail::Violation(v) => {
                put("rule", v.rule.clone().into());
                put("severity", v.severity.clone().into());
                put("source", v.source.as_str().into());
                put("action", v.action.clone().map_or(Value::Null, Value::from));
                put("message", v.message.clone().into());
            }
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
}

impl Report {
    pub fn count(&self, severity: &str) -> usize {
        self.violations
            .iter()
            .filter(|v| v.severity == severity)
            .count()
    }

    /// 1 if any `error` violation (from the logs or the re-check), else 0.
    pub fn exit_status(&self) -> i32 {
        i32::from(self.count("error") > 0)
    }
}

/// The `report` command; `args` follow `acl-ipc-guard report`. Returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run(args, &mut stdout.lock(), &mut stderr.lock())
}

/// [`main`] with its output streams given. Write errors (a closed pipe) are ignored: the
/// exit status still tells the verdict.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut json = false;
    let mut paths: Vec<&str> = Vec::new();
    let mut options_done = false;
    for a in args {
        match a.as_str() {
            p if options_done => paths.push(p),
            "--json" => json = true,
            "-h" | "--help" => {
                let _ = writeln!(out, "{USAGE}");
                return 0;
            }
            "--" => options_done = true,
            o if o.starts_with('-') && o != "-" => {
                let _ = writeln!(err, "acl-ipc-guard report: unknown option {o:?}\n{USAGE}");
                return 2;
            }
            p => paths.push(p),
        }
    }
    if paths.is_empty() {
        let _ = writeln!(err, "acl-ipc-guard report: no log file given\n{USAGE}");
        return 2;
    }
    let inputs: Vec<Input> = paths.iter().map(|p| read_input(p)).collect();
    for i in &inputs {
        if let Err(e) = &i.content {
            let _ = writeln!(err, "acl-ipc-guard report: cannot read {}: {e}", i.name);
        }
    }
    if inputs.iter().all(|i| i.content.is_err()) {
        let _ = writeln!(err, "acl-ipc-guard report: no log could be read");
        return 2;
    }
    let report = analyze(&inputs);
    let mut w = std::io::BufWriter::new(out);
    let _ = if json {
        serde_json::to_writer_pretty(&mut w, &render_json(&report))
            .map_err(std::io::Error::from)
            .and_then(|()| w.write_all(b"\n"))
    } else {
        w.write_all(render_text(&report).as_bytes())
    }
    .and_then(|()| w.flush());
    report.exit_status()
}

fn read_input(path: &str) -> Input {
    let content = if path == "-" {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b).map(|_| b)
    } else {
        std::fs::read(path)
    };
    Input {
        name: path.to_owned(),
        content: content.map_err(|e| e.to_string()),
    }
}
