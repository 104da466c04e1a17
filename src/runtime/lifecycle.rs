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

pub(super) extern "C" fn before_fork() {
    if let Some(rt) = RUNTIME.get() {
        // First: a thread writing the start record takes the log's locks under it.
        rt.start_lock.hold_for_fork();
        rt.state.hold_for_fork();
        rt.allocs.hold_for_fork();
        rt.ledger.hold_for_fork();
        rt.log.before_fork();
    }
}

pub(super) extern "C" fn after_fork_parent() {
    if RUNTIME.get().is_some() {
        sync::release_fork_locks();
    }
}

pub(super) extern "C" fn after_fork_child() {
    if let Some(rt) = RUNTIME.get() {
        let pid = getpid();
        boundary::reset_tid_after_fork();
        // A process of its own: its first record will be its own `start`, naming the
        // process that forked it, at seq 1.
        let parent = rt.pid.load(Ordering::Relaxed);
        rt.parent.store(parent, Ordering::Relaxed);
        rt.started.store(false, Ordering::Release);
        rt.pid.store(pid, Ordering::Relaxed);
        rt.bare_tgid.store(0, Ordering::Relaxed);
        rt.start_ns.store(own_start_ns(pid), Ordering::Relaxed);
        rt.began_us
            .store(crate::clock::now_ns() / 1000, Ordering::Relaxed);
        sync::release_fork_locks();
        rt.log.after_fork_child(pid);
        // The child owns none of its parent's keys or device memory.
        rt.allocs.clear();
        rt.state.clear_keys();
        // The ledger is opened again, lazily, with the child's identity; dropping the
        // parent's handle only unmaps it.
        // The inherited descriptor shares the parent's liveness lock: give it up, or the
        // parent would look alive for as long as this child lives.
        let mut link = rt.ledger.lock();
        // No other thread is left to use the parent's handle: it may be dropped.
        rt.ledger_open
            .store(std::ptr::null_mut(), Ordering::Release);
        if let LedgerLink::Open(l) = &*link {
            l.forget_after_fork();
        }
        *link = LedgerLink::NotOpened;
        drop(link);
        for said in &rt.trouble_said {
            said.store(false, Ordering::Relaxed);
        }
        rt.finished.store(false, Ordering::Relaxed);
        rt.calls.reset();
        rt.violations.store(0, Ordering::Relaxed);
        rt.error_violations.store(0, Ordering::Relaxed);
        rt.blocked.store(0, Ordering::Relaxed);
        for c in &rt.per_rule {
            c.store(0, Ordering::Relaxed);
        }
    }
}
