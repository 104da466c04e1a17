//! The shim's process-wide state and the path every intercepted call takes once it is
//! past the boundary: gather facts → rules → decide (report, block, abort) → forward →
//! update state and ledger → record. Initialised on the first intercepted call, never from
//! a library constructor. The cross-process side (bare tgid, ledger) is in
//! `cross_process`, exit, abort and fork in `lifecycle`.

use crate::boundary::{self, contain, Entered};
use crate::call::{codes, Args, Func, Out, Outcome};
use crate::capi::AclIpcGuardStats;
use crate::config::{Calls, Config, LedgerSetting, Mode};
use crate::key::{Fp, Key, KeyArg};
use crate::ledger::{self, Ledger};
use crate::real;
use crate::record::{Action, Body, KeyRef, Log, Start, Violation};
use crate::rules::{
    check_after, check_before, Finding, Identity, ImportFacts, LedgerFacts, Rule, Severity,
};
use crate::state::{Export, ProcessState, Region};
use crate::sync::{self, Lock};
use once_cell::sync::OnceCell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

mod cross_process;
mod lifecycle;

use cross_process::{lfp, LedgerLink};
use lifecycle::{after_fork_child, after_fork_parent, at_exit, before_fork};

static RUNTIME: OnceCell<Runtime> = OnceCell::new();

pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// Causes of `error` records, each written once per process.
#[derive(Clone, Copy)]
enum Trouble {
    RealMissing(Func),
    LedgerUnusable,
    LedgerFull,
    LedgerFailed,
}

impl Trouble {
    fn index(self) -> usize {
        match self {
            Trouble::RealMissing(f) => f as usize,
            Trouble::LedgerUnusable => Func::ALL.len(),
            Trouble::LedgerFull => Func::ALL.len() + 1,
            Trouble::LedgerFailed => Func::ALL.len() + 2,
        }
    }
}

pub struct Runtime {
    pub config: Config,
    log: Log,
    state: Lock<ProcessState>,
    ledger: Lock<LedgerLink>,
    pid: AtomicI32,
    /// 0 until known: from the program's own aclrtDeviceGetBareTgid, or asked when needed.
    bare_tgid: AtomicI32,
    start_ns: AtomicU64,
    calls: AtomicU64,
    violations: AtomicU64,
    error_violations: AtomicU64,
    blocked: AtomicU64,
    per_rule: [AtomicU64; Rule::COUNT],
    trouble_said: [AtomicBool; Func::ALL.len() + 3],
    finished: AtomicBool,
    /// This process's `start` record is written (every process writes its own, a fork
    /// child too, before any other record).
    started: AtomicBool,
    /// Held while the `start` record is being written, so that no other thread's record
    /// comes before it.
    start_lock: Lock<()>,
    /// A fork child: the pid of the process that forked it; 0 otherwise.
    parent: AtomicI32,
}

fn getpid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() }
}

fn own_start_ns(pid: i32) -> u64 {
    ledger::start_ticks_of(pid)
        .map(ledger::ticks_to_ns)
        .unwrap_or(0)
}

fn exe_path() -> String {
    std::fs::read_link("/proc/self/exe")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// The host name as `uname` reports it (its nodename); empty if it cannot tell.
fn host_name() -> String {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid out-pointer.
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    let bytes: Vec<u8> = u
        .nodename
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Runtime {
    /// The runtime, initialised on first use (from the first intercepted call).
    pub fn get() -> &'static Runtime {
        RUNTIME.get_or_init(Runtime::init)
    }

    /// The runtime if some call has initialised it.
    pub fn try_get() -> Option<&'static Runtime> {
        RUNTIME.get()
    }

    fn init() -> Runtime {
        let (config, bad) = Config::from_env();
        for msg in &bad {
            crate::record::stderr_line(msg);
        }
        let pid = getpid();
        let log = if config.mode == Mode::Off {
            let mut quiet = config.clone();
            quiet.log = crate::config::LogTarget::Off;
            Log::new(&quiet, pid)
        } else {
            Log::new(&config, pid)
        };
        let rt = Runtime {
            log,
            state: Lock::new(ProcessState::new()),
            ledger: Lock::new(LedgerLink::NotOpened),
            pid: AtomicI32::new(pid),
            bare_tgid: AtomicI32::new(0),
            start_ns: AtomicU64::new(own_start_ns(pid)),
            calls: AtomicU64::new(0),
            violations: AtomicU64::new(0),
            error_violations: AtomicU64::new(0),
            blocked: AtomicU64::new(0),
            per_rule: [const { AtomicU64::new(0) }; Rule::COUNT],
            trouble_said: [const { AtomicBool::new(false) }; Func::ALL.len() + 3],
            finished: AtomicBool::new(false),
            started: AtomicBool::new(false),
            start_lock: Lock::new(()),
            parent: AtomicI32::new(0),
            config,
        };
        // The `start` record is written by the first call past the boundary
        // (`ensure_started`), not here: asking the runtime for the bare tgid from inside
        // this initialisation could come back into it.
        if rt.config.mode != Mode::Off {
            // SAFETY: registering plain extern "C" handlers.
            unsafe {
                libc::atexit(at_exit);
                libc::pthread_atfork(
                    Some(before_fork),
                    Some(after_fork_parent),
                    Some(after_fork_child),
                );
            }
        }
        rt
    }

    fn pid(&self) -> i32 {
        self.pid.load(Ordering::Relaxed)
    }

    /// Writes this process's `start` record unless it is written already. Called inside
    /// the boundary (the thread's re-entry guard is held), so the runtime's answer to the
    /// bare-tgid question cannot come back into the shim; other threads wait on
    /// `start_lock` until it is written, so nothing comes before it. `ask`: the runtime
    /// may be asked for the bare tgid; otherwise the start names it only if the program
    /// asked already.
    fn ensure_started(&'static self, ask: bool) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let _g = self.start_lock.lock();
        if self.started.load(Ordering::Acquire) {
            return;
        }
        if self.log.enabled() {
            let start = self.start_body(ask);
            self.log
                .push_through(self.pid(), boundary::tid(), Body::Start(Box::new(start)));
        }
        self.started.store(true, Ordering::Release);
    }

    fn start_body(&'static self, ask: bool) -> Start {
        let ledger = match &self.config.ledger {
            LedgerSetting::Off => "off".to_string(),
            LedgerSetting::Dir(d) => d.display().to_string(),
        };
        // The program's own answer if it asked already, else the runtime's, asked once
        // (and kept for the ledger); none when the runtime cannot be found.
        let known = self.bare_tgid.load(Ordering::Relaxed);
        let bare_tgid = if known > 0 {
            Some(known)
        } else if ask {
            self.runtime_bare_tgid()
        } else {
            None
        };
        let parent = self.parent.load(Ordering::Relaxed);
        Start {
            version: env!("CARGO_PKG_VERSION"),
            mode: self.config.mode,
            exe: exe_path(),
            ledger,
            host: host_name(),
            bare_tgid,
            parent: (parent > 0).then_some(parent),
        }
    }

    /// Writes a record, and everything queued before it, before returning; this
    /// process's `start` comes first. The runtime is not asked for the bare tgid here: a
    /// record written before the start is one of an aclrtDeviceGetBareTgid call (whose own
    /// answer the start then names) or of the shim's trouble.
    fn write_through(&'static self, body: Body) {
        self.ensure_started(false);
        self.log.push_through(self.pid(), boundary::tid(), body);
    }

    fn say_trouble(&'static self, t: Trouble, message: String) {
        if self.trouble_said[t.index()].swap(true, Ordering::Relaxed) {
            return;
        }
        self.write_through(Body::Error { message });
    }

    pub fn stats(&self) -> AclIpcGuardStats {
        let (live_exports, live_imports) = {
            let s = self.state.lock();
            (s.live_exports() as u64, s.live_imports() as u64)
        };
        AclIpcGuardStats {
            calls: self.calls.load(Ordering::Relaxed),
            violations: self.violations.load(Ordering::Relaxed),
            blocked: self.blocked.load(Ordering::Relaxed),
            dropped: self.log.stats().dropped,
            live_exports,
            live_imports,
        }
    }

    pub fn flush(&self) {
        self.log.flush();
    }

    // ------------------------------------------------------------ the call path

    /// Decides what to do about findings: writes their records and returns whether the
    /// call must be blocked. In `abort` mode an `error` finding ends the process here.
    fn judge(&'static self, func: Func, findings: Vec<Finding>, key: Option<Key>) -> bool {
        let mut block = false;
        let mut abort = false;
        for f in findings {
            let severity = self.config.severity(f.rule);
            if severity == Severity::Off {
                continue;
            }
            let action = match (self.config.mode, severity) {
                (Mode::Enforce, Severity::Error) => Action::Blocked,
                (Mode::Abort, Severity::Error) => Action::Aborted,
                _ => Action::Reported,
            };
            block |= action == Action::Blocked;
            abort |= action == Action::Aborted;
            let key = f.key_fp.map(|fp| self.key_ref(fp, key));
            self.report(Some(func), f.rule, severity, action, f.message, key);
        }
        if abort {
            self.abort_now();
        }
        block
    }

    /// A record's reference to a key: with its raw bytes where the shim has them.
    fn key_ref(&self, fp: Fp, arg: Option<Key>) -> KeyRef {
        match arg {
            Some(k) if k.fp == fp => KeyRef::Key(k),
            _ => self
                .state
                .lock()
                .raw_key(&fp)
                .map_or(KeyRef::Fp(fp), KeyRef::Key),
        }
    }

    fn report(
        &'static self,
        func: Option<Func>,
        rule: Rule,
        severity: Severity,
        action: Action,
        message: String,
        key: Option<KeyRef>,
    ) {
        self.violations.fetch_add(1, Ordering::Relaxed);
        if severity == Severity::Error {
            self.error_violations.fetch_add(1, Ordering::Relaxed);
        }
        let n = self.per_rule[rule as usize].fetch_add(1, Ordering::Relaxed) + 1;
        // The record that explains an abort is always written, with its backtrace.
        let aborting = action == Action::Aborted;
        if n > self.config.repeat_limit && !aborting {
            return;
        }
        let backtrace = (aborting || (severity == Severity::Error && self.config.backtrace))
            .then(backtrace::Backtrace::new_unresolved);
        self.write_through(Body::Violation(Box::new(Violation {
            rule,
            severity,
            action,
            func,
            message,
            key,
            backtrace,
        })));
    }

    /// Everything after the boundary for one call. `forward` calls the real function.
    pub fn run_call(
        &'static self,
        func: Func,
        mut args: Args,
        forward: impl Fn() -> i32,
        read_out: impl Fn() -> Out,
    ) -> i32 {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let record_call = match self.config.calls {
            Calls::All => true,
            Calls::Ipc => !func.is_memory(),
            Calls::None => false,
        };
        if !record_call {
            if let Some(ret) = self.memory_fast_path(&args, &forward, &read_out) {
                return ret;
            }
        }
        let key = args.key().and_then(KeyArg::key).copied();

        if self.pids_are_read_by_runtime(&args) {
            // SAFETY: the real runtime reads this array for these arguments.
            unsafe { args.read_pid_lists() };
        }
        let block = contain(|| {
            let facts = self.ledger_facts(&args);
            let me = Identity {
                pid: self.pid(),
                bare_tgid: if matches!(args, Args::SetImportPid { .. } | Args::ImportByKey { .. }) {
                    self.bare_tgid()
                } else {
                    self.bare_tgid.load(Ordering::Relaxed).max(0)
                },
                start_ns: self.start_ns.load(Ordering::Relaxed),
            };
            let mut state = self.state.lock();
            if let Args::GetExportKey { .. } = args {
                state.sync_index();
            }
            let findings = check_before(&args, &state, &me, &facts);
            drop(state);
            if findings.is_empty() {
                false
            } else {
                self.judge(func, findings, key)
            }
        })
        .unwrap_or(false);

        // A free takes its allocation, and the keys still exported from it, out of the
        // state before the call: once the runtime has unmapped the memory, another thread
        // may be given the same address and export it before this one is back, and that
        // newer allocation and its keys must not be taken for the ones freed here.
        let mut before_free = None;
        let mut outcome = if block {
            self.blocked.fetch_add(1, Ordering::Relaxed);
            Outcome {
                ret: codes::ACL_ERROR_INVALID_PARAM,
                forwarded: false,
                out: Out::default(),
                dur_ns: 0,
                untracked: false,
            }
        } else {
            if let Args::Free { dev_ptr } = args {
                before_free = contain(|| {
                    let mut s = self.state.lock();
                    let keys: Vec<Fp> = s.open_exports_of(dev_ptr).map(|(fp, _)| *fp).collect();
                    (dev_ptr, s.remove_alloc(dev_ptr), keys)
                });
            }
            let t0 = record_call.then(Instant::now);
            let ret = forward();
            let dur_ns = t0.map_or(0, |t| t.elapsed().as_nanos() as u64);
            let out = if ret == codes::ACL_SUCCESS {
                // SAFETY: the runtime read the pid arrays and accepted them.
                unsafe { args.read_pid_lists() };
                read_out()
            } else {
                Out::default()
            };
            Outcome {
                ret,
                forwarded: true,
                out,
                dur_ns,
                untracked: false,
            }
        };

        let _ = contain(|| {
            let after = check_after(&args, &outcome);
            if !after.is_empty() && self.judge(func, after, None) {
                // Judged after the call: the program must not trust the value.
                self.blocked.fetch_add(1, Ordering::Relaxed);
                outcome.ret = codes::ACL_ERROR_INVALID_PARAM;
            }
            if let Some((dev_ptr, size, keys)) = before_free.take() {
                if outcome.ret == codes::ACL_SUCCESS {
                    for fp in keys {
                        self.with_ledger(|l| l.record_free(lfp(fp)));
                    }
                } else if let Some(size) = size {
                    self.state.lock().add_alloc(dev_ptr, size);
                }
            }
            if outcome.forwarded && outcome.ret == codes::ACL_SUCCESS {
                self.update(&args, &mut outcome);
            }
            if record_call {
                self.ensure_started(false);
                self.log.push(
                    self.pid(),
                    boundary::tid(),
                    Body::Call {
                        func,
                        args,
                        outcome,
                    },
                );
            }
        });
        outcome.ret
    }

    /// True when the real runtime, given these arguments, gets as far as reading the pid
    /// array: the key is this process's open export with a whitelist, and pointer and count
    /// are sane.
    fn pids_are_read_by_runtime(&self, args: &Args) -> bool {
        match args {
            Args::SetImportPid {
                key: KeyArg::Key(k),
                pid_ptr,
                num,
                ..
            } => {
                *pid_ptr != 0
                    && (1..=crate::call::MAX_PIDS).contains(num)
                    && self
                        .state
                        .lock()
                        .export(&k.fp)
                        .is_some_and(|e| !e.validation_disabled())
            }
            _ => false,
        }
    }

    /// The allocation calls without a record: an allocation has no rule to break, and a
    /// free can break one only while this process has keys open or imported addresses to
    /// remember. Then the tracking is all there is to do. `None`: take the full path.
    fn memory_fast_path(
        &'static self,
        args: &Args,
        forward: &impl Fn() -> i32,
        read_out: &impl Fn() -> Out,
    ) -> Option<i32> {
        match args {
            Args::Malloc { size, .. } => {
                let ret = forward();
                if ret == codes::ACL_SUCCESS {
                    if let Some(p) = read_out().dev_ptr {
                        let _ = contain(|| self.state.lock().add_alloc(p, *size));
                    }
                }
                Some(ret)
            }
            Args::Free { dev_ptr } => {
                // One lock: take the allocation out before the call, put it back if the
                // call fails.
                let removed = {
                    let mut state = self.state.lock();
                    if state.has_keys_or_imports() {
                        return None;
                    }
                    state.remove_alloc(*dev_ptr)
                };
                let ret = forward();
                if let (Some(size), true) = (removed, ret != codes::ACL_SUCCESS) {
                    let _ = contain(|| self.state.lock().add_alloc(*dev_ptr, size));
                }
                Some(ret)
            }
            _ => None,
        }
    }

    /// State and ledger after a call that succeeded.
    fn update(&'static self, args: &Args, outcome: &mut Outcome) {
        match args {
            Args::Malloc { size, .. } => {
                if let Some(p) = outcome.out.dev_ptr {
                    self.state.lock().add_alloc(p, *size);
                }
            }
            // Done around the call (run_call, `before_free`).
            Args::Free { .. } => {}
            Args::GetExportKey {
                dev_ptr,
                size,
                flags,
                ..
            } => {
                let Some(key) = outcome.out.key else { return };
                {
                    let mut s = self.state.lock();
                    let alloc_base = match s.region_of(*dev_ptr) {
                        Region::Allocated { base, .. } => Some(base),
                        _ => None,
                    };
                    s.remember_key(key);
                    s.add_export(
                        key.fp,
                        Export {
                            dev_ptr: *dev_ptr,
                            size: *size,
                            flags: *flags,
                            alloc_base,
                            whitelist: Vec::new(),
                        },
                    );
                }
                outcome.untracked = self
                    .try_ledger(|l| l.record_export(lfp(key.fp), *flags == 0, *size as u64))
                    .is_err();
            }
            Args::SetImportPid {
                key: KeyArg::Key(k),
                pids: Some(pids),
                ..
            } => {
                self.state.lock().add_whitelist(&k.fp, pids);
                let now = ledger::now_boot_ns();
                self.with_ledger(|l| l.record_whitelist(lfp(k.fp), pids, now));
            }
            Args::ImportByKey {
                key: KeyArg::Key(k),
                ..
            } => {
                if let Some(addr) = outcome.out.dev_ptr {
                    let size = self
                        .with_ledger(|l| l.export_size(lfp(k.fp)))
                        .flatten()
                        .map(|s| s as usize);
                    let mut s = self.state.lock();
                    s.remember_key(*k);
                    s.add_import(k.fp, addr, size);
                    drop(s);
                    self.with_ledger(|l| l.record_import(lfp(k.fp)));
                }
            }
            Args::Close {
                key: KeyArg::Key(k),
            } => {
                // As the runtime does: a process that imported its own key closes the
                // import first, the export with its next close.
                let closed = {
                    let mut s = self.state.lock();
                    if s.import(&k.fp).is_some() {
                        s.close_import(&k.fp)
                    } else {
                        s.remove_export(&k.fp).is_some()
                    }
                };
                if closed {
                    self.with_ledger(|l| l.record_close(lfp(k.fp)));
                }
            }
            Args::DeviceGetBareTgid { .. } => {
                if let Some(p) = outcome.out.pid.filter(|p| *p > 0) {
                    self.bare_tgid.store(p, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

/// Entry point logic shared by every intercepted function: the re-entry guard, the kill
/// switch, resolving the real function, and containment of anything that goes wrong.
pub fn intercept(
    func: Func,
    gather: impl FnOnce() -> Args,
    forward: impl Fn(usize) -> i32,
    read_out: impl Fn() -> Out,
) -> i32 {
    let rt = Runtime::get();
    // After the summary (the process is exiting) calls from other threads are only
    // forwarded: the summary is the last record.
    let entered = if rt.config.mode == Mode::Off || rt.finished.load(Ordering::Relaxed) {
        None
    } else {
        Entered::enter()
    };
    let real = match real::resolve(func, &rt.config.real_lib) {
        Ok(addr) => addr,
        Err(missing) => {
            if entered.is_some() {
                // say_trouble writes the start record first.
                let _ = contain(|| rt.say_trouble(Trouble::RealMissing(func), missing.0));
            }
            return codes::ACL_ERROR_API_NOT_SUPPORT;
        }
    };
    if entered.is_none() {
        return forward(real);
    }
    // The start record first. When the program's first call asks for the bare tgid
    // itself, the runtime is not asked twice: the start is written with the call's record,
    // naming the program's own answer.
    if func != Func::DeviceGetBareTgid {
        let _ = contain(|| rt.ensure_started(true));
    }
    match contain(gather) {
        Some(args) => rt.run_call(func, args, || forward(real), read_out),
        None => forward(real),
    }
}
