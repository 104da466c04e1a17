//! What particular functions add to the generic path (`entry`), all in one place: the
//! facts their rules need, the allocation calls' short path, and what a successful call
//! changes in this process's state and in the ledger.

use super::cross_process::lfp;
use super::Runtime;
use crate::boundary::{contain, contain_inline};
use crate::call::{codes, Args, Func, Out, Outcome, MAX_PIDS};
use crate::key::{Fp, KeyArg};
use crate::ledger;
use crate::rules::{Identity, ImportFacts, LedgerFacts};
use crate::state::{Export, View};
use std::sync::atomic::Ordering;

impl Func {
    /// The program asks for the bare tgid itself: the `start` record is written with the
    /// call's record, naming the program's own answer, instead of asking the runtime first.
    pub(super) fn answers_bare_tgid(self) -> bool {
        self == Func::DeviceGetBareTgid
    }

    /// Its rules compare pids with this process's bare tgid: the runtime is asked for it
    /// if the program has not asked yet.
    fn compares_bare_tgid(self) -> bool {
        matches!(self, Func::SetImportPid | Func::ImportByKey)
    }
}

/// What the rules see besides the arguments and this process's state.
pub(super) struct Facts {
    pub me: Identity,
    pub ledger: LedgerFacts,
    /// What the ledger said before the call that the update after it needs too.
    pub known: Known,
    /// The state as the rules see it, when gathering the facts took the call's key's
    /// stripe and nothing since needed it released: the rules read it under this same
    /// hold (one hold instead of two).
    pub held: Option<View<'static>>,
}

/// Ledger answers gathered before the call and used again after it, so that the ledger
/// is not locked once more for them.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Known {
    /// The exported size of the key an import names.
    pub export_size: Option<u64>,
    /// The import, recorded in the ledger with its view (one hold of the ledger's lock
    /// instead of two): taken back if the import is not made (`not_made`).
    pub import_recorded: Option<ledger::ImportRecorded>,
}

/// Gathers the facts for the rules before the call: the memory the runtime will read
/// anyway (pid arrays), who this process is, what the ledger knows about the key.
pub(super) fn facts_before(rt: &'static Runtime, func: Func, args: &mut Args) -> Facts {
    if pids_are_read_by_runtime(rt, args) {
        // SAFETY: the real runtime reads this array for these arguments.
        unsafe { args.read_pid_lists() };
    }
    // Who this process is, before the ledger's facts: asking the runtime for the bare
    // tgid may call into it (and the dynamic loader, while it is not found), and an
    // import's facts come back with its key's stripe held for the rules.
    let me = Identity {
        pid: rt.pid(),
        bare_tgid: if func.compares_bare_tgid() {
            rt.bare_tgid()
        } else {
            rt.bare_tgid.load(Ordering::Relaxed).max(0)
        },
        start_ns: rt.start_ns.load(Ordering::Relaxed),
    };
    let (ledger, known, held) = ledger_facts(rt, args);
    Facts {
        me,
        ledger,
        known,
        held,
    }
}

/// True when the real runtime, given these arguments, gets as far as reading the pid
/// array: the key is this process's open export with a whitelist, and pointer and count
/// are sane.
fn pids_are_read_by_runtime(rt: &Runtime, args: &Args) -> bool {
    match args {
        Args::SetImportPid {
            key: KeyArg::Key(k),
            pid_ptr,
            num,
            ..
        } => {
            *pid_ptr != 0
                && (1..=MAX_PIDS).contains(num)
                && rt
                    .state
                    .keys_of(&k.fp)
                    .export(&k.fp)
                    .is_some_and(|e| !e.validation_disabled())
        }
        _ => false,
    }
}

/// What the ledger knows that the cross-process rules of this call need, what of it the
/// update after the call needs again, and the rules' view if its stripe is still held.
fn ledger_facts(rt: &'static Runtime, args: &Args) -> (LedgerFacts, Known, Option<View<'static>>) {
    match args {
        Args::ImportByKey {
            key: KeyArg::Key(k),
            ..
        } => {
            // The ledger first, then the key's stripe once, kept for the rules. The ledger
            // records the import in the same hold as its view (read before the recording,
            // so the rules see what they saw before); `update` then has no ledger work
            // left, and `not_made` takes it back. A key this process exported itself
            // (rare) is asked about too, since which it is is known only under the
            // stripe's lock: its view is dropped (no ledger facts), its recording kept.
            rt.prefetch_ledger(k.fp);
            let (facts, known) = rt
                .with_ledger(|l| l.import_view_recorded(lfp(k.fp)))
                .flatten()
                .map_or((LedgerFacts::None, Known::default()), |(v, recorded)| {
                    let facts = LedgerFacts::Import(ImportFacts {
                        exporter_pid: v.exporter.host_pid(),
                        exporter_alive: v.exporter_alive,
                        whitelist_mode: v.whitelist_mode,
                        exporter_closed: v.exporter_closed,
                        memory_freed: v.memory_freed,
                        whitelisted_at_ns: v.whitelisted_at_ns,
                        own_pid_listed: v.own_pid_listed,
                    });
                    (
                        facts,
                        Known {
                            export_size: v.size,
                            import_recorded: Some(recorded),
                        },
                    )
                });
            let s = rt.state.view(Some(&k.fp));
            if s.export(&k.fp).is_some() {
                let known = Known {
                    import_recorded: known.import_recorded,
                    ..Known::default()
                };
                return (LedgerFacts::None, known, Some(s));
            }
            (facts, known, Some(s))
        }
        Args::Close {
            key: KeyArg::Key(k),
        } => {
            {
                let s = rt.state.view(Some(&k.fp));
                // The import asked only of an export (an importer's close has none).
                let at = match s.export(&k.fp) {
                    Some(e) if s.import(&k.fp).is_none() => e.ledger_at,
                    _ => return (LedgerFacts::None, Known::default(), Some(s)),
                };
                // No importer ever recorded for the key: "none", without the ledger's
                // lock (a few atomic loads in its mapping, so the stripe's lock stays
                // held for the rules).
                if at.is_some_and(|at| {
                    rt.ledger_if_open()
                        .is_some_and(|l| l.no_importer_yet(lfp(k.fp), at))
                }) {
                    return (LedgerFacts::None, Known::default(), Some(s));
                }
            }
            rt.prefetch_ledger(k.fp);
            let open: Vec<i32> = rt
                .with_ledger(|l| l.open_importers(lfp(k.fp)))
                .map(|o| o.procs.iter().map(|p| p.host_pid()).collect())
                .unwrap_or_default();
            let facts = if open.is_empty() {
                LedgerFacts::None
            } else {
                LedgerFacts::ExporterClose {
                    open_importers: open,
                }
            };
            (facts, Known::default(), None)
        }
        _ => (LedgerFacts::None, Known::default(), None),
    }
}

/// The allocation calls without a record: an allocation has no rule to break, and a free
/// can break one only while this process has keys open or imported addresses to
/// remember. Then the tracking is all there is to do, and the call is counted here (in its
/// allocation's shard where it can be, not in the counter every thread writes). `None`:
/// take the whole path (the call is not counted yet).
/// `Some` only for `Args::Malloc` and `Args::Free`, which own nothing (the caller need
/// not drop them).
#[inline]
pub(super) fn short_path(
    rt: &'static Runtime,
    args: &Args,
    forward: impl Fn() -> i32,
    read_out: &impl Fn() -> Out,
) -> Option<i32> {
    match *args {
        Args::Malloc { size, .. } => {
            let ret = forward();
            quiet_malloc_done(rt, ret, size, || read_out().dev_ptr);
            Some(ret)
        }
        Args::Free { dev_ptr } => quiet_free(rt, dev_ptr, forward),
        _ => None,
    }
}

/// A malloc without a record, after the call (`ret`): its tracking, and its count. Only
/// its shard's lock (which counts the call); while keys or closed imports are about, the
/// call is counted with the others and the allocation added as the whole path does.
#[inline(always)]
pub(super) fn quiet_malloc_done(
    rt: &'static Runtime,
    ret: i32,
    size: usize,
    dev_ptr: impl FnOnce() -> Option<usize>,
) {
    let counted = ret == codes::ACL_SUCCESS
        && dev_ptr().is_some_and(|p| {
            contain_inline(|| {
                rt.allocs.quiet_insert(p, size) || {
                    rt.state.add_alloc(p, size);
                    false
                }
            })
            .unwrap_or(false)
        });
    if !counted {
        rt.calls.add(1);
    }
}

/// A free without a record: one shard's lock, taking the allocation out before the call
/// and putting it back if the call fails. `None` (nothing done, not counted, not
/// forwarded) while keys are open or imports remembered: then the whole path.
#[inline(always)]
pub(super) fn quiet_free(
    rt: &'static Runtime,
    dev_ptr: usize,
    forward: impl FnOnce() -> i32,
) -> Option<i32> {
    let Some(Some(removed)) = contain_inline(|| rt.allocs.quiet_remove(dev_ptr)) else {
        return None;
    };
    let ret = forward();
    if let (Some(size), true) = (removed, ret != codes::ACL_SUCCESS) {
        let _ = contain(|| rt.state.add_alloc(dev_ptr, size));
    }
    Some(ret)
}

/// A change to the state made just before a call is forwarded, settled after it.
pub(super) struct Pending {
    dev_ptr: usize,
    /// The allocation taken out, if the shim knew it.
    size: Option<usize>,
    /// The keys still exported from it.
    keys: Vec<Fp>,
}

/// Just before forwarding: a free takes its allocation, and the keys still exported from
/// it, out of the state. Once the runtime has unmapped the memory, another thread may be
/// given the same address and export it before this one is back; that newer allocation
/// and its keys must not be taken for the ones freed here.
pub(super) fn before_forward(rt: &'static Runtime, args: &Args) -> Option<Pending> {
    match args {
        Args::Free { dev_ptr } => {
            // The allocation out first: an export of it made after this is of whatever
            // the runtime hands out next at the address, not of this memory.
            let size = rt.state.remove_alloc(*dev_ptr);
            Some(Pending {
                dev_ptr: *dev_ptr,
                size,
                keys: rt.state.exports_freed_with(*dev_ptr),
            })
        }
        _ => None,
    }
}

/// After the call: a free that succeeded marks its keys' memory freed in the ledger; one
/// that failed puts the allocation back.
pub(super) fn after_forward(rt: &'static Runtime, pending: Pending, ret: i32) {
    if ret == codes::ACL_SUCCESS {
        for fp in pending.keys {
            rt.with_ledger(|l| l.record_free(lfp(fp)));
        }
    } else if let Some(size) = pending.size {
        rt.state.add_alloc(pending.dev_ptr, size);
    }
}

/// After a call that was blocked or failed (or judged after the call): an import the
/// ledger recorded before it is taken back.
pub(super) fn not_made(rt: &'static Runtime, known: Known) {
    if let Some(r) = known.import_recorded {
        rt.with_ledger(|l| l.undo_import(r));
    }
}

/// State and ledger after a call that succeeded (`known`: what the ledger said before
/// the call).
pub(super) fn update(rt: &'static Runtime, args: &Args, outcome: &mut Outcome, known: Known) {
    match args {
        Args::Malloc { size, .. } => {
            if let Some(p) = outcome.out.dev_ptr {
                rt.state.add_alloc(p, *size);
            }
        }
        // Done around the call (`before_forward`, `after_forward`).
        Args::Free { .. } => {}
        Args::GetExportKey {
            dev_ptr,
            size,
            flags,
            key: Some(key),
            ..
        } => {
            // A new key's index entry is a cache miss: start it before the ledger's lock.
            rt.prefetch_ledger(key.fp);
            // The ledger first, so that the key's stripe is changed in one hold, with
            // where the ledger put the key. Nobody else can close the key in between: the
            // program learns it only when this call returns.
            let ledger_at = match rt
                .try_ledger(|l| l.record_export_at(lfp(key.fp), *flags == 0, *size as u64))
            {
                Ok(at) => at,
                Err(()) => {
                    outcome.untracked = true;
                    None
                }
            };
            let alloc_base = rt.state.alloc_holding(*dev_ptr).map(|(base, _)| base);
            rt.state.add_export_key(
                *key,
                Export {
                    dev_ptr: *dev_ptr,
                    size: *size,
                    flags: *flags,
                    alloc_base,
                    whitelist: Vec::new(),
                    ledger_at,
                },
            );
        }
        Args::SetImportPid {
            key: KeyArg::Key(k),
            pids: Some(pids),
            ..
        } => {
            rt.state.add_whitelist(&k.fp, pids);
            let now = ledger::now_boot_ns();
            rt.with_ledger(|l| l.record_whitelist(lfp(k.fp), pids, now));
        }
        Args::ImportByKey {
            key: KeyArg::Key(k),
            ..
        } => {
            if let Some(addr) = outcome.out.dev_ptr {
                // The size the ledger gave before the call (the key's export cannot have
                // changed while this process imported it), else asked now.
                let size = known
                    .export_size
                    .or_else(|| rt.with_ledger(|l| l.export_size(lfp(k.fp))).flatten())
                    .map(|s| s as usize);
                rt.state.add_import_key(*k, addr, size);
                if known.import_recorded.is_none()
                    && rt.with_ledger(|l| l.record_import(lfp(k.fp))) == Some(false)
                {
                    rt.say_key_not_in_ledger();
                }
            } else {
                not_made(rt, known);
            }
        }
        Args::Close {
            key: KeyArg::Key(k),
        } => {
            // As the runtime does: a process that imported its own key closes the import
            // first, the export with its next close.
            let closed = rt.state.close_key(&k.fp);
            if closed {
                rt.with_ledger(|l| l.record_close(lfp(k.fp)));
            }
        }
        Args::DeviceGetBareTgid { .. } => {
            if let Some(p) = outcome.out.pid.filter(|p| *p > 0) {
                rt.bare_tgid.store(p, Ordering::Relaxed);
            }
        }
        _ => {}
    }
}
