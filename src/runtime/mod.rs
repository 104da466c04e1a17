//! The shim's process-wide state: the configuration, this process's state and ledger
//! link, the log, the counters. Initialised on the first intercepted call, never from a
//! library constructor. The per-call path is `entry` (what particular functions add is in
//! `per_func`); the cross-process side (bare tgid, ledger) is in `cross_process`; exit,
//! abort and fork in `lifecycle`.

use crate::allocs::Allocs;
use crate::boundary::{self, contain, Entered};
use crate::call::Func;
use crate::config::{Config, LedgerSetting, Mode};

use crate::ledger;
use crate::record::{Action, Body, KeyRef, Log, Start, Violation};
use crate::rules::{Rule, Severity};
use crate::state::ProcessState;
use crate::sync::{self, Lock, Published, Striped};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};

mod cross_process;
pub(crate) mod entry;
mod lifecycle;
mod per_func;

use cross_process::LedgerLink;
use lifecycle::{at_exit, PARENT_OF_FORGETFUL_CHILD};

static RUNTIME: Published<Runtime> = Published::new();

/// Set when the runtime is initialised in mode `off`: from then on every call is only
/// forwarded, and the entry points look at nothing else (`entry::intercept`).
static ONLY_FORWARD: AtomicBool = AtomicBool::new(false);

/// True once the runtime is known to be in mode `off`.
#[inline(always)]
pub(crate) fn only_forwarding() -> bool {
    ONLY_FORWARD.load(Ordering::Relaxed)
}

pub(crate) const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// Causes of `error` records, each written once per process.
#[derive(Clone, Copy)]
enum Trouble {
    RealMissing(Func),
    LedgerUnusable,
    LedgerFull,
    LedgerFailed,
    /// A key this process imported (the runtime accepted it) is not in its ledger.
    LedgerKeyUnknown,
}

/// How many kinds of trouble are said once each (`Trouble::index` below it).
const TROUBLE_KINDS: usize = Func::ALL.len() + 4;

impl Trouble {
    fn index(self) -> usize {
        match self {
            Trouble::RealMissing(f) => f as usize,
            Trouble::LedgerUnusable => Func::ALL.len(),
            Trouble::LedgerFull => Func::ALL.len() + 1,
            Trouble::LedgerFailed => Func::ALL.len() + 2,
            Trouble::LedgerKeyUnknown => Func::ALL.len() + 3,
        }
    }
}

/// This process's counters, as the C API reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    pub calls: u64,
    pub violations: u64,
    pub blocked: u64,
    pub dropped: u64,
    pub live_exports: u64,
    pub live_imports: u64,
}

pub(crate) struct Runtime {
    config: Config,
    log: Log,
    /// Locked in parts (a stripe per key, a shard per address): see `state`.
    state: ProcessState,
    /// The state's allocation table, which the allocation calls' short path reaches
    /// without the state (lock order: a key stripe's, then a shard's).
    allocs: &'static Allocs,
    ledger: Lock<LedgerLink>,
    /// The open ledger of `ledger`, for the calls that use it without taking that lock
    /// (null: not open). Set once it is open; a handle it named is never freed while
    /// other threads may hold it (see `cross_process`).
    ledger_open: std::sync::atomic::AtomicPtr<ledger::Ledger>,
    pid: AtomicI32,
    /// 0 until known: from the program's own aclrtDeviceGetBareTgid, or asked when needed.
    bare_tgid: AtomicI32,
    start_ns: AtomicU64,
    /// When the shim began in this process (its runtime was made, or the fork), in
    /// microseconds of the records' clock: the `start` record's time, so that it is never
    /// later than a record after it, however long its writing waits.
    began_us: AtomicI64,
    /// Calls counted on the whole path (the quiet allocation calls count in their
    /// allocation's shard): striped, as every thread adds to it on every call.
    calls: Striped,
    violations: AtomicU64,
    error_violations: AtomicU64,
    blocked: AtomicU64,
    per_rule: [AtomicU64; Rule::COUNT],
    trouble_said: [AtomicBool; TROUBLE_KINDS],
    finished: AtomicBool,
    /// This process's `start` record is written (every process writes its own, a fork
    /// child too, before any other record).
    started: AtomicBool,
    /// Held while the `start` record is being written, so that no other thread's record
    /// comes before it.
    start_lock: Lock<()>,
    /// A fork child: the pid of the process that forked it; 0 otherwise.
    parent: AtomicI32,
    /// The allocation calls get no record and the mode is not `off`: they take the quiet
    /// path (`entry::quiet_memory_begin`).
    quiet_memory: bool,
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
pub(crate) fn host_name() -> String {
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
    pub(crate) fn get() -> &'static Runtime {
        RUNTIME.get_or_make(|| {
            let rt = Box::new(Runtime::init());
            rt.benign_for_checker();
            rt
        })
    }

    /// Tells helgrind (feature `checker-annotations`) which of the runtime's atomics are
    /// read and written without any ordering, before another thread can see them: caches
    /// of one value (pid, bare tgid, start time), flags nothing is published through (the
    /// data behind them is behind a lock: `started`, the start record in the log's
    /// queue), counters, and what a fork child resets while it has a single thread.
    fn benign_for_checker(&self) {
        use crate::valgrind::benign_atomic;
        benign_atomic(&self.pid);
        benign_atomic(&self.bare_tgid);
        benign_atomic(&self.start_ns);
        benign_atomic(&self.began_us);
        benign_atomic(&self.started);
        benign_atomic(&self.parent);
        benign_atomic(&self.finished);
        self.calls.benign_for_checker();
        benign_atomic(&self.violations);
        benign_atomic(&self.error_violations);
        benign_atomic(&self.blocked);
        benign_atomic(&self.per_rule);
        benign_atomic(&self.trouble_said);
        // The pointer itself (its data is published with happens_before/after).
        benign_atomic(&self.ledger_open);
        self.allocs.benign_for_checker();
        crate::key::benign_for_checker();
        self.log.benign_for_checker();
        // sha2 detects the CPU's SHA extensions on its first use and caches the answer in
        // a private relaxed atomic (crate cpufeatures), which helgrind takes for a race
        // between the first thread that encodes a key's record and the next. Detected
        // here instead, before the runtime is published, it happens before every later use.
        #[cfg(feature = "checker-annotations")]
        let _ = crate::key::KeyFp::of(b"");
    }

    /// The runtime if some call has initialised it.
    pub(crate) fn try_get() -> Option<&'static Runtime> {
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
        } else if matches!(config.ledger, crate::config::LedgerSetting::Dir(_)) {
            // The writer lives as long as the process: it keeps the liveness word held.
            Log::new(&config, pid).with_idle(cross_process::keep_liveness)
        } else {
            Log::new(&config, pid)
        };
        // One per process, for the process's life (the runtime is never dropped).
        let allocs: &'static Allocs = Box::leak(Box::default());
        let rt = Runtime {
            log,
            state: ProcessState::with_allocs(allocs),
            allocs,
            ledger: Lock::new(LedgerLink::NotOpened),
            ledger_open: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
            pid: AtomicI32::new(pid),
            bare_tgid: AtomicI32::new(0),
            start_ns: AtomicU64::new(own_start_ns(pid)),
            began_us: AtomicI64::new(crate::clock::now_ns() / 1000),
            calls: Striped::new(),
            violations: AtomicU64::new(0),
            error_violations: AtomicU64::new(0),
            blocked: AtomicU64::new(0),
            per_rule: [const { AtomicU64::new(0) }; Rule::COUNT],
            trouble_said: [const { AtomicBool::new(false) }; TROUBLE_KINDS],
            finished: AtomicBool::new(false),
            started: AtomicBool::new(false),
            start_lock: Lock::new(()),
            parent: AtomicI32::new(PARENT_OF_FORGETFUL_CHILD.swap(0, Ordering::Relaxed)),
            quiet_memory: config.mode != Mode::Off && config.calls != crate::config::Calls::All,
            config,
        };
        if rt.config.mode == Mode::Off {
            // Benign: a thread that still reads false takes the full path, which finds
            // mode `off` in the configuration and only forwards too.
            crate::valgrind::benign_atomic(&ONLY_FORWARD);
            ONLY_FORWARD.store(true, Ordering::Relaxed);
        }
        // The `start` record is written by the first call past the boundary
        // (`ensure_started`), not here: asking the runtime for the bare tgid from inside
        // this initialisation could come back into it.
        // (The fork handlers are registered when the library is loaded: lifecycle.rs.)
        if rt.config.mode != Mode::Off {
            // SAFETY: registering a plain extern "C" handler.
            unsafe {
                libc::atexit(at_exit);
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
    #[inline]
    fn ensure_started(&'static self, ask: bool) {
        if !self.started.load(Ordering::Acquire) {
            self.write_start(ask);
        }
    }

    /// `ensure_started` once it found the start not written yet.
    #[cold]
    #[inline(never)]
    fn write_start(&'static self, ask: bool) {
        let _g = self.start_lock.lock();
        if self.started.load(Ordering::Acquire) {
            return;
        }
        if self.log.enabled() {
            let start = self.start_body(ask);
            // Its time is when the shim began, not now: the call whose record made it
            // (the program's own first bare-tgid question) ended before it is written, and
            // writing it (the host name, the executable's path, the runtime's answer) may
            // wait on a loaded machine for longer than the log puts right (1 ms); a call
            // record earlier than its process's start would not be its process's.
            let began = self.began_us.load(Ordering::Relaxed);
            self.log.push_through_at(
                self.pid(),
                boundary::tid(),
                Body::Start(Box::new(start)),
                Some(began),
            );
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

    /// Writes the `error` record of `t` unless this process already did; true if it did
    /// now.
    fn say_trouble(&'static self, t: Trouble, message: String) -> bool {
        if self.trouble_said[t.index()].swap(true, Ordering::Relaxed) {
            return false;
        }
        self.write_through(Body::Error { message });
        true
    }

    pub(crate) fn stats(&self) -> Stats {
        let live_exports = self.state.live_exports() as u64;
        let live_imports = self.state.live_imports() as u64;
        Stats {
            calls: self.calls.sum() + self.allocs.calls(),
            violations: self.violations.load(Ordering::Relaxed),
            blocked: self.blocked.load(Ordering::Relaxed),
            dropped: self.log.stats().dropped,
            live_exports,
            live_imports,
        }
    }

    pub(crate) fn flush(&self) {
        self.log.flush();
    }

    // ------------------------------------------------------------ records

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
}
