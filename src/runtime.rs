//! The shim's process-wide state and the path every intercepted call takes once it is
//! past the boundary: gather facts → rules → decide (report, block, abort) → forward →
//! update state and ledger → record. Initialised on the first intercepted call, never from
//! a library constructor.

use crate::boundary::{self, contain, Entered};
use crate::call::{codes, Args, Func, Out, Outcome};
use crate::capi::AclIpcGuardStats;
use crate::config::{Calls, Config, LedgerSetting, Mode};
use crate::key::{Fp, Key, KeyArg};
use crate::ledger::{self, Ledger};
use crate::real;
use crate::record::{Action, Body, KeyRef, Log, Violation};
use crate::rules::{
    check_after, check_before, Finding, Identity, ImportFacts, LedgerFacts, Rule, Severity,
};
use crate::state::{Export, ProcessState, Region};
use crate::sync::{self, Lock};
use once_cell::sync::OnceCell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

static RUNTIME: OnceCell<Runtime> = OnceCell::new();

pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

enum LedgerLink {
    NotOpened,
    Open(Arc<Ledger>),
    Unusable,
}

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
            config,
        };
        if rt.config.mode != Mode::Off {
            let ledger = match &rt.config.ledger {
                LedgerSetting::Off => "off".to_string(),
                LedgerSetting::Dir(d) => d.display().to_string(),
            };
            rt.log.push_through(
                pid,
                boundary::tid(),
                Body::Start {
                    version: env!("CARGO_PKG_VERSION"),
                    mode: rt.config.mode,
                    exe: exe_path(),
                    ledger,
                },
            );
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

    fn say_trouble(&'static self, t: Trouble, message: String) {
        if self.trouble_said[t.index()].swap(true, Ordering::Relaxed) {
            return;
        }
        self.log
            .push_through(self.pid(), boundary::tid(), Body::Error { message });
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

    // ------------------------------------------------------------ identity and ledger

    fn bare_tgid(&self) -> i32 {
        let b = self.bare_tgid.load(Ordering::Relaxed);
        if b > 0 {
            return b;
        }
        // Ask the runtime once, as the program would (the entry is guarded, so this is
        // not intercepted); fall back to getpid when it cannot tell.
        let mut asked = -1i32;
        if let Ok(addr) = real::resolve(Func::DeviceGetBareTgid, &self.config.real_lib) {
            // SAFETY: the real function has the vendor's signature.
            let f: extern "C" fn(*mut i32) -> i32 = unsafe { std::mem::transmute(addr) };
            if f(&mut asked) != 0 {
                asked = -1;
            }
        }
        let b = if asked > 0 { asked } else { self.pid() };
        self.bare_tgid.store(b, Ordering::Relaxed);
        b
    }

    /// The ledger, opened on first use; `None` when it is off or unusable (said once in
    /// an `error` record). Our lock is not held while the ledger works.
    fn ledger(&'static self) -> Option<Arc<Ledger>> {
        let LedgerSetting::Dir(dir) = &self.config.ledger else {
            return None;
        };
        // Asked before taking the lock: it may call into the real runtime.
        let bare_tgid = self.bare_tgid();
        let mut link = self.ledger.lock();
        if let LedgerLink::NotOpened = *link {
            let me = ledger::ProcId {
                pid: self.pid(),
                bare_tgid,
                start_ticks: ledger::start_ticks_of(self.pid()).unwrap_or(0),
            };
            *link = match Ledger::open(dir, me) {
                Ok(l) => LedgerLink::Open(Arc::new(l)),
                Err(e) => {
                    *link = LedgerLink::Unusable;
                    drop(link);
                    self.say_trouble(
                        Trouble::LedgerUnusable,
                        format!("ledger unusable, cross-process rules are off: {e}"),
                    );
                    return None;
                }
            };
        }
        match &*link {
            LedgerLink::Open(l) => Some(l.clone()),
            _ => None,
        }
    }

    /// Runs one ledger operation; a failure is said once in an `error` record and the
    /// cross-process rules skip this call.
    fn with_ledger<T>(
        &'static self,
        f: impl FnOnce(&Ledger) -> Result<T, ledger::LedgerError>,
    ) -> Option<T> {
        let l = self.ledger()?;
        match f(&l) {
            Ok(v) => Some(v),
            Err(e @ ledger::LedgerError::TableFull { .. }) => {
                self.say_trouble(
                    Trouble::LedgerFull,
                    format!("{e}; cross-process rules are not checked for keys it cannot hold"),
                );
                None
            }
            Err(e) => {
                self.say_trouble(
                    Trouble::LedgerFailed,
                    format!("ledger operation failed, cross-process rules skip it: {e}"),
                );
                None
            }
        }
    }

    fn ledger_facts(&'static self, args: &Args) -> LedgerFacts {
        match args {
            Args::ImportByKey {
                key: KeyArg::Key(k),
                ..
            } => {
                if self.state.lock().export(&k.fp).is_some() {
                    return LedgerFacts::None;
                }
                self.with_ledger(|l| l.import_view(lfp(k.fp)))
                    .flatten()
                    .map_or(LedgerFacts::None, |v| {
                        LedgerFacts::Import(ImportFacts {
                            exporter_pid: v.exporter.pid,
                            exporter_alive: v.exporter_alive,
                            whitelist_mode: v.whitelist_mode,
                            exporter_closed: v.exporter_closed,
                            memory_freed: v.memory_freed,
                            whitelisted_at_ns: v.whitelisted_at_ns,
                        })
                    })
            }
            Args::Close {
                key: KeyArg::Key(k),
            } => {
                {
                    let s = self.state.lock();
                    if s.export(&k.fp).is_none() || s.import(&k.fp).is_some() {
                        return LedgerFacts::None;
                    }
                }
                let open: Vec<i32> = self
                    .with_ledger(|l| l.open_importers(lfp(k.fp)))
                    .map(|o| o.procs.iter().map(|p| p.pid).collect())
                    .unwrap_or_default();
                if open.is_empty() {
                    LedgerFacts::None
                } else {
                    LedgerFacts::ExporterClose {
                        open_importers: open,
                    }
                }
            }
            _ => LedgerFacts::None,
        }
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
        let after_summary = self.finished.load(Ordering::Relaxed) && rule != Rule::ExitLeak;
        if (n > self.config.repeat_limit || after_summary) && !aborting {
            return;
        }
        let backtrace = (aborting || (severity == Severity::Error && self.config.backtrace))
            .then(backtrace::Backtrace::new_unresolved);
        self.log.push_through(
            self.pid(),
            boundary::tid(),
            Body::Violation(Box::new(Violation {
                rule,
                severity,
                action,
                func,
                message,
                key,
                backtrace,
            })),
        );
    }

    fn abort_now(&'static self) -> ! {
        let leaks = self.state.lock().open_keys().len() as u64;
        self.write_summary(leaks);
        self.log.flush();
        // SAFETY: abort never returns.
        unsafe { libc::abort() }
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
                    self.bare_tgid.load(Ordering::Relaxed)
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

        let mut outcome = if block {
            self.blocked.fetch_add(1, Ordering::Relaxed);
            Outcome {
                ret: codes::ACL_ERROR_INVALID_PARAM,
                forwarded: false,
                out: Out::default(),
                dur_ns: 0,
            }
        } else {
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
            }
        };

        let _ = contain(|| {
            let after = check_after(&args, &outcome);
            if !after.is_empty() && self.judge(func, after, None) {
                // Judged after the call: the program must not trust the value.
                self.blocked.fetch_add(1, Ordering::Relaxed);
                outcome.ret = codes::ACL_ERROR_INVALID_PARAM;
            }
            if outcome.forwarded && outcome.ret == codes::ACL_SUCCESS {
                self.update(&args, &outcome);
            }
            if record_call && !self.finished.load(Ordering::Relaxed) {
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
    fn update(&'static self, args: &Args, outcome: &Outcome) {
        match args {
            Args::Malloc { size, .. } => {
                if let Some(p) = outcome.out.dev_ptr {
                    self.state.lock().add_alloc(p, *size);
                }
            }
            Args::Free { dev_ptr } => {
                let freed: Vec<Fp> = {
                    let mut s = self.state.lock();
                    s.remove_alloc(*dev_ptr);
                    s.open_exports_of(*dev_ptr).map(|(fp, _)| *fp).collect()
                };
                for fp in freed {
                    self.with_ledger(|l| l.record_free(lfp(fp)));
                }
            }
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
                self.with_ledger(|l| l.record_export(lfp(key.fp), *flags == 0, *size as u64));
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

    // ------------------------------------------------------------ exit and fork

    fn write_summary(&'static self, leaks: u64) {
        let violations = Rule::ALL
            .iter()
            .filter_map(|r| {
                let n = self.per_rule[*r as usize].load(Ordering::Relaxed);
                (n > 0).then_some((*r, n))
            })
            .collect();
        let body = Body::Summary {
            calls: self.calls.load(Ordering::Relaxed),
            violations,
            blocked: self.blocked.load(Ordering::Relaxed),
            leaks,
            dropped: self.log.stats().dropped,
        };
        self.log.push_through(self.pid(), boundary::tid(), body);
    }

    /// At exit: `exit.leak` for every key still open, the summary, then the exit code.
    fn finish(&'static self) {
        if self.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        let open = self.state.lock().open_keys();
        let severity = self.config.severity(Rule::ExitLeak);
        if severity != Severity::Off {
            for (fp, exported) in &open {
                let what = if *exported {
                    "exported and never closed: importers may still map it, and the key stays registered"
                } else {
                    "imported and never closed with aclrtIpcMemClose"
                };
                self.report(
                    None,
                    Rule::ExitLeak,
                    severity,
                    Action::Reported,
                    format!("key {fp} was {what}"),
                    Some(self.key_ref(*fp, None)),
                );
            }
        }
        self.write_summary(open.len() as u64);
        self.log.flush();
        let open = match &*self.ledger.lock() {
            LedgerLink::Open(l) => Some(l.clone()),
            _ => None,
        };
        if let Some(l) = open {
            let _ = l.detach();
        }
        if let Some(code) = self.config.exitcode {
            if self.error_violations.load(Ordering::Relaxed) > 0 {
                // SAFETY: flushing stdio then leaving with the requested status.
                unsafe {
                    libc::fflush(std::ptr::null_mut());
                    libc::_exit(code);
                }
            }
        }
    }
}

/// The ledger's fingerprint type from ours.
fn lfp(fp: Fp) -> ledger::Fp {
    ledger::Fp(fp.0)
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
                let _ = contain(|| rt.say_trouble(Trouble::RealMissing(func), missing.0));
            }
            return codes::ACL_ERROR_API_NOT_SUPPORT;
        }
    };
    if entered.is_none() {
        return forward(real);
    }
    match contain(gather) {
        Some(args) => rt.run_call(func, args, || forward(real), read_out),
        None => forward(real),
    }
}

extern "C" fn at_exit() {
    if let Some(rt) = RUNTIME.get() {
        let _inside = Entered::enter();
        let _ = contain(|| rt.finish());
    }
}

extern "C" fn before_fork() {
    if let Some(rt) = RUNTIME.get() {
        rt.state.hold_for_fork();
        rt.ledger.hold_for_fork();
        rt.log.before_fork();
    }
}

extern "C" fn after_fork_parent() {
    if RUNTIME.get().is_some() {
        sync::release_fork_locks();
    }
}

extern "C" fn after_fork_child() {
    if let Some(rt) = RUNTIME.get() {
        let pid = getpid();
        boundary::reset_tid_after_fork();
        rt.pid.store(pid, Ordering::Relaxed);
        rt.bare_tgid.store(0, Ordering::Relaxed);
        rt.start_ns.store(own_start_ns(pid), Ordering::Relaxed);
        sync::release_fork_locks();
        rt.log.after_fork_child(pid);
        // The child owns none of its parent's keys or device memory.
        *rt.state.lock() = ProcessState::new();
        // The ledger is opened again, lazily, with the child's identity; dropping the
        // parent's handle only unmaps it.
        *rt.ledger.lock() = LedgerLink::NotOpened;
        for said in &rt.trouble_said {
            said.store(false, Ordering::Relaxed);
        }
        rt.finished.store(false, Ordering::Relaxed);
        rt.calls.store(0, Ordering::Relaxed);
        rt.violations.store(0, Ordering::Relaxed);
        rt.error_violations.store(0, Ordering::Relaxed);
        rt.blocked.store(0, Ordering::Relaxed);
        for c in &rt.per_rule {
            c.store(0, Ordering::Relaxed);
        }
    }
}
