//! The cross-process side of the call path: who this process is (its bare tgid) and the
//! ledger, opened on first use, asked for the facts the ledger rules need, and told what
//! happened. Its trouble is said once in an `error` record; the ledger rules then skip.

use super::{Runtime, Trouble};
use crate::config::LedgerSetting;
use crate::key::Fp;
use crate::ledger::{self, Ledger};
use crate::real;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The ledger as this process sees it.
pub(super) enum LedgerLink {
    NotOpened,
    Open(Arc<Ledger>),
    Unusable,
}

impl Runtime {
    /// This process's bare tgid for whitelist checks and the ledger: what the runtime
    /// reports, or the pid when it cannot tell.
    pub(super) fn bare_tgid(&self) -> i32 {
        self.runtime_bare_tgid().unwrap_or_else(|| self.pid())
    }

    /// The bare tgid as the runtime reports it: the program's own answer if it asked,
    /// else the runtime asked once (the entry is guarded, so this is not intercepted).
    /// None when the runtime cannot be found or cannot tell (it wrote a negative pid).
    pub(super) fn runtime_bare_tgid(&self) -> Option<i32> {
        // 0: not asked yet; -1: asked, no answer.
        match self.bare_tgid.load(Ordering::Relaxed) {
            b if b > 0 => return Some(b),
            -1 => return None,
            _ => {}
        }
        // Not found yet (the program may load the runtime later): ask again next time.
        let f = real::DEVICE_GET_BARE_TGID.get(&self.config.real_lib).ok()?;
        let mut asked = -1i32;
        // SAFETY: the real aclrtDeviceGetBareTgid with a valid out-pointer.
        if unsafe { f(&mut asked) } != 0 {
            asked = -1;
        }
        let b = if asked > 0 { asked } else { -1 };
        self.bare_tgid.store(b, Ordering::Relaxed);
        (b > 0).then_some(b)
    }

    /// The ledger, opened on first use; `None` when it is off or unusable (said once in
    /// an `error` record). Our lock is not held while the ledger works.
    pub(super) fn ledger(&'static self) -> Option<Arc<Ledger>> {
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
                ticket: 0,
            };
            *link = match Ledger::open(dir, me, self.config.ledger_keys) {
                Ok(l) => {
                    let l = Arc::new(l);
                    l.annotate_for_checkers();
                    // The release store publishes the handle; helgrind is told so.
                    crate::valgrind::happens_before(&self.ledger_open);
                    self.ledger_open
                        .store(Arc::as_ptr(&l).cast_mut(), Ordering::Release);
                    LedgerLink::Open(l)
                }
                Err(e) => {
                    *link = LedgerLink::Unusable;
                    drop(link);
                    if let ledger::LedgerError::Insecure { path, .. } = &e {
                        crate::record::stderr_line(&format!(
                            "ledger directory {} refused, cross-process rules are off: use a real directory (not a symbolic link) owned by you and not writable by group or others (chmod go-w), or set ACL_IPC_GUARD_LEDGER to another one",
                            path.display()
                        ));
                    }
                    self.give_up_ledger(&e);
                    return None;
                }
            };
        }
        match &*link {
            LedgerLink::Open(l) => Some(l.clone()),
            _ => None,
        }
    }

    /// An open ledger found unusable: no call uses it from now on. Other threads may be
    /// inside it through `ledger_open`, so the handle is kept (leaked: once per process
    /// at most, the file's mapping and one descriptor).
    fn give_up_open_ledger(&self) {
        let mut link = self.ledger.lock();
        self.ledger_open
            .store(std::ptr::null_mut(), Ordering::Release);
        if let LedgerLink::Open(l) = std::mem::replace(&mut *link, LedgerLink::Unusable) {
            std::mem::forget(l);
        }
    }

    /// A key this process imported, which the runtime accepted, is not in the ledger: its
    /// exporter runs without the shim, or records into another ledger (another
    /// `ACL_IPC_GUARD_LEDGER`, or the same path in a container with its own /dev/shm). The
    /// cross-process rules cannot see such a key; silent, that looked like a job that kept
    /// them, and `report`, seeing one ledger path in every start, trusted it. Said once, in
    /// an `error` record (which tells `report` to judge the close order from the logs) and
    /// on stderr.
    pub(super) fn say_key_not_in_ledger(&'static self) {
        let LedgerSetting::Dir(dir) = &self.config.ledger else {
            return;
        };
        let message = format!(
            "ledger {}: a key this process imported is not in it: its exporter runs without the shim, or with another ledger (another ACL_IPC_GUARD_LEDGER, or this path in a container with its own /dev/shm: share one ledger directory between the job's containers), or found this ledger full; the cross-process rules cannot see such keys",
            dir.display()
        );
        if self.say_trouble(Trouble::LedgerKeyUnknown, message.clone()) {
            crate::record::stderr_line(&message);
        }
    }

    /// The ledger cannot be used (not opened, or found damaged): said once in an `error`
    /// record naming the file; a damaged file, and a directory or file that cannot be
    /// made or opened or was written by another version, are said on stderr too, as
    /// nobody else will notice them when the log goes to a file (the program runs on,
    /// without the cross-process rules: a check that turns itself off says so).
    fn give_up_ledger(&'static self, e: &ledger::LedgerError) {
        let said = self.say_trouble(
            Trouble::LedgerUnusable,
            format!("ledger unusable, cross-process rules are off: {e}"),
        );
        if !said {
            return;
        }
        match e {
            ledger::LedgerError::Damaged { path, .. } => crate::record::stderr_line(&format!(
                "ledger file {} is damaged, cross-process rules are off in this process: remove the file once no process of the job is running (or set ACL_IPC_GUARD_LEDGER to another directory)",
                path.display()
            )),
            ledger::LedgerError::Io { .. } | ledger::LedgerError::Incompatible { .. } => {
                crate::record::stderr_line(&format!(
                    "{e}; cross-process rules are off in this process (set ACL_IPC_GUARD_LEDGER to a directory this process can create or use)"
                ))
            }
            _ => {}
        }
    }

    /// Starts loading the ledger's index entry for `fp` (see `Ledger::prefetch`) when the
    /// ledger is open, so the miss overlaps this process's own bookkeeping that comes
    /// first. Nothing when it is not open: opening is for the operations themselves.
    pub(super) fn prefetch_ledger(&self, fp: Fp) {
        let open = self.ledger_open.load(Ordering::Acquire);
        if !open.is_null() {
            crate::valgrind::happens_after(&self.ledger_open);
            // SAFETY: as in `try_ledger`: the handle of an `Open` link is never freed.
            unsafe { &*open }.prefetch(lfp(fp));
        }
    }

    /// The ledger when it is open (never opens it).
    pub(super) fn ledger_if_open(&self) -> Option<&Ledger> {
        let open = self.ledger_open.load(Ordering::Acquire);
        if open.is_null() {
            return None;
        }
        crate::valgrind::happens_after(&self.ledger_open);
        // SAFETY: as in `try_ledger`: the handle of an `Open` link is never freed while
        // another thread may use it.
        Some(unsafe { &*open })
    }

    /// Runs one ledger operation; a failure is said once in an `error` record and the
    /// cross-process rules skip this call.
    pub(super) fn with_ledger<T>(
        &'static self,
        f: impl FnOnce(&Ledger) -> Result<T, ledger::LedgerError>,
    ) -> Option<T> {
        self.try_ledger(f).ok().flatten()
    }

    /// `with_ledger`, telling a failed operation (`Err`, already said once) from no ledger
    /// at all (`Ok(None)`).
    pub(super) fn try_ledger<T>(
        &'static self,
        f: impl FnOnce(&Ledger) -> Result<T, ledger::LedgerError>,
    ) -> Result<Option<T>, ()> {
        // Once open, without this process's lock or a reference count: three of each per
        // IPC call, on lines every thread shares, would make threads queue here.
        let open = self.ledger_open.load(Ordering::Acquire);
        let r = if open.is_null() {
            let Some(l) = self.ledger() else {
                return Ok(None);
            };
            f(&l)
        } else {
            crate::valgrind::happens_after(&self.ledger_open);
            // SAFETY: `ledger_open` names the handle of an `Open` link, which is never
            // freed while another thread may use it (`give_up_open_ledger`; a fork
            // child drops its parent's with no other thread left).
            f(unsafe { &*open })
        };
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e @ ledger::LedgerError::Damaged { .. }) => {
                // Nothing more is asked of a file found damaged after it was opened.
                self.give_up_open_ledger();
                self.give_up_ledger(&e);
                Err(())
            }
            Err(e @ ledger::LedgerError::TableFull { .. }) => {
                self.say_trouble(
                    Trouble::LedgerFull,
                    format!("{e}; such keys are marked \"ledger\":\"untracked\" in their export records and listed by `acl-ipc-guard report`"),
                );
                Err(())
            }
            Err(e) => {
                self.say_trouble(
                    Trouble::LedgerFailed,
                    format!("ledger operation failed, cross-process rules skip it: {e}"),
                );
                Err(())
            }
        }
    }
}

/// The ledger's fingerprint type from ours.
pub(super) fn lfp(fp: Fp) -> ledger::Fp {
    ledger::Fp(fp.0)
}

/// The log writer's idle work (`Log::with_idle`): once the ledger is open, keeps this
/// process's liveness word held by a live thread (`Ledger::keep_liveness`), so that a
/// program whose exporting thread has exited still answers importers without their
/// `fcntl`, within about `SLEEP_MS` of that thread's exit. Never opens the ledger.
pub(super) fn keep_liveness() {
    let Some(rt) = Runtime::try_get() else {
        return;
    };
    let open = rt.ledger_open.load(Ordering::Acquire);
    if open.is_null() {
        return;
    }
    crate::valgrind::happens_after(&rt.ledger_open);
    // SAFETY: as in `try_ledger`: the handle of an `Open` link is never freed while
    // another thread may use it.
    unsafe { &*open }.keep_liveness();
}
