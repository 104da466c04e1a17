//! The rules: their table (ids, severities, vendor rules) and the checks, one file per
//! API call. Checks are pure functions of plain facts (the call's arguments, this
//! process's state, what the ledger knows): no FFI, no files, no threads. They say what is
//! wrong and nothing else; deciding what to do about a finding (report, block, abort,
//! count) is the runtime's job (`runtime::entry`).
//!
//! A new rule: a row in `table.rs`, and the check in the file of the call it is about.

mod a3;
mod bare_tgid;
mod close;
mod cross;
mod export;
mod free;
mod import;
mod setpid;
mod table;
#[cfg(test)]
mod tests;

pub use cross::{exporter_close_rule, import_rules};
pub use table::{Rule, RuleInfo, Severity, RULES};

use crate::call::{Args, Outcome};
use crate::key::{Fp, Key, KeyArg};
use crate::state::View;

/// One broken rule, described for the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub message: String,
    pub key_fp: Option<Fp>,
    /// The key named by `key_fp`, taken while the checks held the state (the call's key,
    /// or an open key of this process), so that its record can name it by fingerprint
    /// even if another thread closes the key before the record is made.
    pub key: Option<Key>,
}

/// Who "this process" is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub pid: i32,
    /// The bare tgid the runtime reports (the host pid in a container).
    pub bare_tgid: i32,
    /// When the process started, CLOCK_BOOTTIME ns (10 ms granularity, truncated).
    pub start_ns: u64,
}

/// What the ledger said about the key of an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportFacts {
    pub exporter_pid: i32,
    pub exporter_alive: bool,
    pub whitelist_mode: bool,
    pub exporter_closed: bool,
    pub memory_freed: bool,
    /// When this process's bare tgid was first whitelisted for the key.
    pub whitelisted_at_ns: Option<u64>,
    /// The list holds this process's `getpid()` where that is not its bare tgid (a
    /// container's pid, whitelisted instead of the host's).
    pub own_pid_listed: bool,
}

/// Cross-process facts gathered for the call before the checks run.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum LedgerFacts {
    /// No ledger, or it does not know the key.
    #[default]
    None,
    Import(ImportFacts),
    /// The exporter is closing: live importers that have not closed.
    ExporterClose {
        open_importers: Vec<i32>,
    },
}

/// Checks that can be judged before the call is made: one check function per API call.
pub fn check_before(
    args: &Args,
    state: &View,
    me: &Identity,
    ledger: &LedgerFacts,
) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    match args {
        Args::GetExportKey {
            dev_ptr,
            size,
            key_buf,
            len,
            flags,
            ..
        } => export::check(&mut f, state, *dev_ptr, *size, *key_buf, *len, *flags),
        Args::SetImportPid {
            key,
            pid_ptr,
            pids,
            num,
        } => setpid::check(&mut f, state, me, key, *pid_ptr, pids.as_deref(), *num),
        Args::ImportPidInterServer {
            key,
            server_pids,
            entries,
            num,
        } => a3::check_interserver(&mut f, key, *server_pids, entries.as_deref(), *num),
        Args::ImportByKey {
            out_ptr,
            key,
            flags,
        } => import::check(&mut f, state, me, ledger, *out_ptr, key, *flags),
        Args::SetAttr {
            key,
            attr_type,
            attr,
        } => a3::check_setattr(&mut f, key, *attr_type, *attr),
        Args::Close { key } => close::check(&mut f, state, ledger, key),
        Args::DeviceGetBareTgid { out_ptr } => bare_tgid::check(&mut f, *out_ptr),
        Args::Malloc { .. } => {}
        Args::Free { dev_ptr } => free::check(&mut f, state, *dev_ptr),
    }
    // The keys the findings name, while the state cannot change.
    let arg = args.key().and_then(KeyArg::key);
    for x in &mut f.0 {
        x.key = x.key_fp.and_then(|fp| match arg {
            Some(k) if k.fp == fp => Some(*k),
            _ => state.raw_key(&fp),
        });
    }
    f.0
}

/// Checks that can only be judged from the call's outcome.
pub fn check_after(args: &Args, outcome: &Outcome) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    if let Args::DeviceGetBareTgid { .. } = args {
        bare_tgid::check_after(&mut f, outcome);
    }
    f.0
}

/// The findings of one call, as the checks add them.
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, rule: Rule, key_fp: Option<Fp>, message: String) {
        self.0.push(Finding {
            rule,
            message,
            key_fp,
            key: None,
        });
    }

    /// The key-argument rules shared by SetImportPid, ImportByKey and Close: the key's
    /// identity, inline; a broken key's finding out of line.
    #[inline]
    fn key(&mut self, key: &KeyArg, null: Rule, unterminated: Rule) -> Option<Fp> {
        match key {
            KeyArg::Key(k) => Some(k.fp),
            _ => {
                self.broken_key(key, null, unterminated);
                None
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn broken_key(&mut self, key: &KeyArg, null: Rule, unterminated: Rule) {
        let Some(problem) = key_problem(key) else {
            return;
        };
        let (rule, message) = match key {
            KeyArg::Null => (null, problem.to_string()),
            _ => (
                unterminated,
                format!("{problem} (a key is at most 64 characters and a NUL)"),
            ),
        };
        self.add(rule, None, message);
    }
}

/// What is wrong with a key argument, if anything.
fn key_problem(key: &KeyArg) -> Option<&'static str> {
    match key {
        KeyArg::Null => Some("key is NULL"),
        KeyArg::Unterminated => Some("key has no NUL in its first 65 bytes"),
        KeyArg::Key(_) => None,
    }
}
