//! The process around the calls: the summary and `exit.leak` at exit, the exit code,
//! abort, and fork (locks held across it, the child made a process of its own).

use super::*;

impl Runtime {
    pub(super) fn abort_now(&'static self) -> ! {
        let leaks = self.state.open_keys().len() as u64;
        self.write_summary(leaks);
        self.log.flush();
        // SAFETY: abort never returns.
        unsafe { libc::abort() }
    }

    pub(super) fn write_summary(&'static self, leaks: u64) {
        let violations = Rule::ALL
            .iter()
            .filter_map(|r| {
                let n = self.per_rule[*r as usize].load(Ordering::Relaxed);
                (n > 0).then_some((*r, n))
            })
            .collect();
        let body = Body::Summary {
            calls: self.calls.sum() + self.allocs.calls(),
            violations,
            blocked: self.blocked.load(Ordering::Relaxed),
            leaks,
            dropped: self.log.stats().dropped,
        };
        self.write_through(body);
    }

    /// At exit: `exit.leak` for every key still open, the summary, then the exit code.
    pub(super) fn finish(&'static self) {
        if self.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        // A process that made no call since it began (a fork child that only exits)
        // writes its start now, before its summary.
        self.ensure_started(true);
        // The keys' bytes taken with the list.
        let open = self.state.open_keys();
        let severity = self.config.severity(Rule::ExitLeak);
        if severity != Severity::Off {
            for (fp, exported, key) in &open {
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
                    Some(KeyRef::of(*fp, *key)),
                );
            }
        }
        self.write_summary(open.len() as u64);
        // The summary is the last record: a thread still inside a call writes nothing more.
        self.log.close();
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

pub(super) extern "C" fn at_exit() {
    if let Some(rt) = RUNTIME.get() {
        let _inside = Entered::enter();
        let _ = contain(|| rt.finish());
    }
}

/// The fork handlers are registered when the library is loaded, before any thread can be
/// making the runtime: registered by its making (as they once were), a fork while another
/// thread made it gave a child that waited for that making for good.
#[used]
#[link_section = ".init_array"]
static REGISTER_FORK_HANDLERS: extern "C" fn() = register_fork_handlers;

extern "C" fn register_fork_handlers() {
    // SAFETY: registering plain extern "C" handlers; glibc is ready when constructors run.
    unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_parent),
            Some(after_fork_child),
        );
    }
}

/// The runtime's locks are held across the fork, so the child finds none half-way
/// through an update. A runtime that is not made yet (or is in mode `off`) holds nothing.
extern "C" fn before_fork() {
    if let Some(rt) = RUNTIME.get() {
        if rt.config.mode != Mode::Off {
            // First: a thread writing the start record takes the log's locks under it.
            rt.start_lock.hold_for_fork();
            rt.state.hold_for_fork();
            rt.allocs.hold_for_fork();
            rt.ledger.hold_for_fork();
            rt.log.before_fork();
        }
    }
}

extern "C" fn after_fork_parent() {
    sync::release_fork_locks();
}

/// In the child: a runtime whose locks the forking thread held becomes the child's own
/// (`child_owns`). One it did not hold was being made by another thread when the fork
/// came, or was made (and its locks perhaps taken) between `before_fork` and the fork: the
/// threads that would finish or release it are not in the child, so the child forgets it
/// and makes its own at its next call.
extern "C" fn after_fork_child() {
    boundary::reset_tid_after_fork();
    if sync::holding_fork_locks() {
        if let Some(rt) = RUNTIME.get() {
            rt.child_owns();
        }
        return;
    }
    match RUNTIME.get() {
        Some(rt) if rt.config.mode == Mode::Off => {}
        Some(rt) => rt.forget_in_child(),
        None if RUNTIME.is_being_made() => forget_runtime_in_child(),
        None => {}
    }
}

impl Runtime {
    /// The parent's runtime, held across the fork, made the child's.
    fn child_owns(&'static self) {
        let pid = getpid();
        // A process of its own: its first record will be its own `start`, naming the
        // process that forked it, at seq 1.
        let parent = self.pid.load(Ordering::Relaxed);
        self.parent.store(parent, Ordering::Relaxed);
        self.started.store(false, Ordering::Release);
        self.pid.store(pid, Ordering::Relaxed);
        self.bare_tgid.store(0, Ordering::Relaxed);
        self.start_ns.store(own_start_ns(pid), Ordering::Relaxed);
        self.began_us
            .store(crate::clock::now_ns() / 1000, Ordering::Relaxed);
        sync::release_fork_locks();
        self.log.after_fork_child(pid);
        // The child owns none of its parent's keys or device memory.
        self.allocs.clear();
        self.state.clear_keys();
        // The ledger is opened again, lazily, with the child's identity; dropping the
        // parent's handle only unmaps it.
        // The inherited descriptor shares the parent's liveness lock: give it up, or the
        // parent would look alive for as long as this child lives.
        let mut link = self.ledger.lock();
        // No other thread is left to use the parent's handle: it may be dropped.
        self.ledger_open
            .store(std::ptr::null_mut(), Ordering::Release);
        if let LedgerLink::Open(l) = &*link {
            l.forget_after_fork();
        }
        *link = LedgerLink::NotOpened;
        drop(link);
        for said in &self.trouble_said {
            said.store(false, Ordering::Relaxed);
        }
        self.finished.store(false, Ordering::Relaxed);
        self.calls.reset();
        self.violations.store(0, Ordering::Relaxed);
        self.error_violations.store(0, Ordering::Relaxed);
        self.blocked.store(0, Ordering::Relaxed);
        for c in &self.per_rule {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// A runtime the child cannot take over (see `after_fork_child`), forgotten. What it
    /// leaves behind that the parent still relies on is given up: the ledger's descriptor
    /// (it shares the parent's liveness lock). The child's own runtime names the parent.
    fn forget_in_child(&'static self) {
        if let Some(l) = self.ledger_if_open() {
            l.forget_after_fork();
        }
        forget_runtime_in_child();
    }
}

/// The parent of a fork child that forgot the runtime it inherited, for the `start` record
/// of the runtime it makes itself; 0 otherwise.
pub(super) static PARENT_OF_FORGETFUL_CHILD: AtomicI32 = AtomicI32::new(0);

/// Forgets the runtime (made or being made) in a fork child.
fn forget_runtime_in_child() {
    // SAFETY: getppid cannot fail.
    PARENT_OF_FORGETFUL_CHILD.store(unsafe { libc::getppid() }, Ordering::Relaxed);
    RUNTIME.forget_in_child();
}
