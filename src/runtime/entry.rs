//! The path every intercepted call takes, top to bottom:
//!
//! ```text
//! boundary ─► facts ─► rules ─► decide ─► forward ─► state and ledger ─► record
//! ```
//!
//! Everything here is generic: what a particular function adds (the facts its rules need,
//! what its success changes, the allocation calls' short path) is in `per_func`. The whole
//! path runs inside one panic boundary per call; where the shim fails (panics), the call
//! is forwarded as if the shim were not there, or, when the real function has been called
//! already, what it returned is returned.

use super::{only_forwarding, per_func, Runtime, Trouble};
use crate::boundary::{self, contain, contain_inline, Entered};
use crate::call::{codes, Args, Func, Out, Outcome};
use crate::clock::now_ns;
use crate::config::{Mode, DEFAULT_REAL_LIB};
use crate::key::KeyArg;
use crate::real::{FreeFn, MallocFn, Real, RealFn};
use crate::record::{Action, Body, KeyRef};
use crate::rules::{check_after, check_before, Finding, Severity};
use std::cell::Cell;
use std::sync::atomic::Ordering;

/// Handles one call of an intercepted function. `gather` reads the arguments at the
/// boundary, `forward` calls the real function, `read_out` reads what a successful call
/// wrote through its out-pointers.
///
/// In mode `off`, once the runtime is initialised and the real function found, this is one
/// relaxed load of the mode, one of the function's slot, and the call (`intercept` is
/// inlined into each entry point; the rest of the path is `intercept_full`).
#[inline(always)]
pub(crate) fn intercept<F: RealFn>(
    real: &'static Real<F>,
    gather: impl FnOnce() -> Args,
    forward: impl Fn(F) -> i32,
    read_out: impl Fn() -> Out,
) -> i32 {
    if let Some(f) = forward_only(real) {
        return forward(f);
    }
    intercept_full(real, gather, forward, read_out)
}

/// The real function, when the call is only to be forwarded: mode `off`, the runtime
/// initialised and the function found. Two relaxed loads, for the entry points to test
/// before anything else.
#[inline(always)]
pub(crate) fn forward_only<F: RealFn>(real: &'static Real<F>) -> Option<F> {
    if only_forwarding() {
        real.cached()
    } else {
        None
    }
}

/// The quiet path of an allocation call (`aclrtMalloc`, `aclrtMallocAlign32`,
/// `aclrtMallocCached`), for the entry point to inline: no record, only the tracking and
/// the count. `None`: nothing done, take `intercept`. `size` is the call's argument,
/// `dev_ptr` reads the address a successful call wrote.
#[inline(always)]
pub(crate) fn quiet_malloc(
    real: &'static Real<MallocFn>,
    size: usize,
    forward: impl FnOnce(MallocFn) -> i32,
    dev_ptr: impl FnOnce() -> usize,
) -> Option<i32> {
    let (rt, f, _inside) = quiet_memory_begin(real)?;
    let ret = forward(f);
    per_func::quiet_malloc_done(rt, ret, size, || Some(dev_ptr()));
    Some(ret)
}

/// The quiet path of `aclrtFree`, as `quiet_malloc`; `None` also while keys are open or
/// imports remembered, when a free can break a rule.
#[inline(always)]
pub(crate) fn quiet_free(
    real: &'static Real<FreeFn>,
    dev_ptr: usize,
    forward: impl FnOnce(FreeFn) -> i32,
) -> Option<i32> {
    let (rt, f, _inside) = quiet_memory_begin(real)?;
    per_func::quiet_free(rt, dev_ptr, || forward(f))
}

#[inline(never)]
fn intercept_full<F: RealFn>(
    real: &'static Real<F>,
    gather: impl FnOnce() -> Args,
    forward: impl Fn(F) -> i32,
    read_out: impl Fn() -> Out,
) -> i32 {
    // The whole path runs inside one panic boundary. What it has got to is kept outside:
    // the real function once found, and the program's answer once settled (what the
    // runtime returned, or the code of a blocked call), so that a panic anywhere only
    // forwards the call, or returns the answer already settled: a call judged blocked is
    // never forwarded because the shim failed after judging it.
    let found: Cell<Option<F>> = Cell::new(None);
    let returned: Cell<Option<i32>> = Cell::new(None);
    let call = |f: F| {
        let ret = forward(f);
        returned.set(Some(ret));
        ret
    };
    let r = contain_inline(|| {
        // (The allocation calls tried their quiet path, `quiet_malloc` / `quiet_free`,
        // before coming here.) The boundary: the runtime (initialised on first use), the
        // re-entry guard, the real function.
        let (rt, f, inside) = match begin(real) {
            Begin::Check(rt, f, inside) => (rt, f, inside),
            Begin::Forward(f) => {
                found.set(Some(f));
                return call(f);
            }
            Begin::Missing => return codes::ACL_ERROR_API_NOT_SUPPORT,
        };
        found.set(Some(f));
        // Facts: the arguments as read at the boundary.
        let args = gather();
        if !rt.records_calls_of(real.func()) {
            if let Some(ret) = per_func::short_path(rt, &args, || call(f), &read_out) {
                return ret;
            }
        }
        rt.calls.add(1);
        checked_call(rt, real.func(), f, inside, args, call, read_out, &returned)
    });
    match (r, returned.get(), found.get()) {
        (Some(ret), _, _) => ret,
        (None, Some(ret), _) => ret,
        (None, None, Some(f)) => forward(f),
        (None, None, None) => forward_after_failure(real, forward),
    }
}

/// The quiet allocation path's boundary: the runtime, initialised and past this process's
/// start, calls of `real`'s function get no record, the real function is found, and this
/// thread is not inside the shim already. `None`: take the generic path (which also
/// handles every case left out here). Nothing here can panic: loads and the thread's flag.
#[inline(always)]
fn quiet_memory_begin<F: RealFn>(real: &'static Real<F>) -> Option<(&'static Runtime, F, Entered)> {
    let rt = Runtime::try_get()?;
    if !rt.quiet_memory
        || rt.finished.load(Ordering::Relaxed)
        || !rt.started.load(Ordering::Acquire)
    {
        return None;
    }
    let f = real.cached()?;
    let inside = Entered::enter()?;
    Some((rt, f, inside))
}

/// Rules, decision, forwarding, state and ledger, record: the path of a call past its
/// boundary (`inside` is held until it returns), inside the caller's panic boundary.
/// `forward` calls the real function and settles `answer` (what the program gets should
/// the shim panic later); a block settles it too.
#[allow(clippy::too_many_arguments)]
fn checked_call<F: RealFn>(
    rt: &'static Runtime,
    func: Func,
    f: F,
    _inside: Entered,
    mut args: Args,
    forward: impl Fn(F) -> i32,
    read_out: impl Fn() -> Out,
    answer: &Cell<Option<i32>>,
) -> i32 {
    let record_call = rt.records_calls_of(func);

    // Rules and decision, before the call, in a boundary of their own: should they fail,
    // the call is forwarded unjudged and the state still learns what it did.
    let (block, known) = contain_inline(|| {
        let mut facts = per_func::facts_before(rt, func, &mut args);
        let findings = {
            let view = facts
                .held
                .take()
                .unwrap_or_else(|| rt.state.view(args.key().and_then(KeyArg::fp).as_ref()));
            check_before(&args, &view, &facts.me, &facts.ledger)
        };
        let block = !findings.is_empty() && rt.judge(func, findings);
        (block, facts.known)
    })
    .unwrap_or_default();

    // Forward, or not.
    let (mut outcome, ended_us) = if block {
        answer.set(Some(codes::ACL_ERROR_INVALID_PARAM));
        rt.blocked.fetch_add(1, Ordering::Relaxed);
        (
            Outcome {
                ret: codes::ACL_ERROR_INVALID_PARAM,
                forwarded: false,
                out: Out::default(),
                dur_ns: 0,
                untracked: false,
            },
            None,
        )
    } else {
        let pending = match args {
            Args::Free { .. } => per_func::before_forward(rt, &args),
            _ => None,
        };
        // The call's start and end, read once each: the end is also the record's time.
        // Not read when no record can be written (`ACL_IPC_GUARD_LOG=off`): two clock
        // reads are some 50 ns of an IPC call on a virtual machine.
        let t0 = (record_call && rt.log.enabled()).then(now_ns);
        let ret = forward(f);
        if let Some(p) = pending {
            per_func::after_forward(rt, p, ret);
        }
        let t1 = t0.map(|t0| (t0, now_ns()));
        let dur_ns = t1.map_or(0, |(t0, t1)| t1.saturating_sub(t0) as u64);
        let out = if ret == codes::ACL_SUCCESS {
            // SAFETY: the runtime accepted the call: it read the pid arrays, wrote the key.
            // Dispatched here, inline, so that the calls that have neither (a close, an
            // import) pay a compare, not two calls.
            match args {
                Args::GetExportKey { .. } => unsafe { args.read_export_key() },
                Args::SetImportPid { .. } | Args::ImportPidInterServer { .. } => unsafe {
                    args.read_pid_lists()
                },
                _ => {}
            }
            read_out()
        } else {
            Out::default()
        };
        (
            Outcome {
                ret,
                forwarded: true,
                out,
                dur_ns,
                untracked: false,
            },
            t1.map(|(_, t1)| t1 / 1000),
        )
    };

    // Rules that need the outcome, and their decision.
    let after = check_after(&args, &outcome);
    if !after.is_empty() && rt.judge(func, after) {
        // Judged after the call: the program must not trust the value.
        rt.blocked.fetch_add(1, Ordering::Relaxed);
        outcome.ret = codes::ACL_ERROR_INVALID_PARAM;
        answer.set(Some(outcome.ret));
    }
    // State and ledger.
    if outcome.forwarded && outcome.ret == codes::ACL_SUCCESS {
        per_func::update(rt, &args, &mut outcome, known);
    } else {
        per_func::not_made(rt, known);
    }
    // Record: none built when the log is off (it would only be dropped).
    if record_call {
        rt.ensure_started(false);
    }
    if record_call && rt.log.enabled() {
        rt.log.push_at(
            rt.pid(),
            boundary::tid(),
            Body::Call {
                func,
                args,
                outcome,
            },
            ended_us,
        );
    } else {
        args.dispose();
    }
    outcome.ret
}

/// How a call begins.
enum Begin<F> {
    /// Take the whole path, inside the re-entry guard.
    Check(&'static Runtime, F, Entered),
    /// Only forward: mode `off`, the process is exiting (after the summary), or this
    /// thread is inside the shim already (the runtime calling back, the shim's own thread).
    Forward(F),
    /// The real function cannot be found (said once); the call returns 200001.
    Missing,
}

/// Runs inside the caller's panic boundary.
fn begin<F: RealFn>(real: &'static Real<F>) -> Begin<F> {
    let rt = Runtime::get();
    let func = real.func();
    // After the summary (the process is exiting) calls from other threads are only
    // forwarded: the summary is the last record.
    let entered = if rt.config.mode == Mode::Off || rt.finished.load(Ordering::Relaxed) {
        None
    } else {
        Entered::enter()
    };
    let f = match real.get(&rt.config.real_lib) {
        Ok(f) => f,
        Err(missing) => {
            if entered.is_some() {
                // An intercepted call like any other: the summary and the stats count it
                // (they count every intercepted call), though it never reached a runtime.
                rt.calls.add(1);
                // say_trouble writes the start record first.
                rt.say_trouble(Trouble::RealMissing(func), missing.0);
            }
            return Begin::Missing;
        }
    };
    let Some(inside) = entered else {
        return Begin::Forward(f);
    };
    // The start record first. When the program's first call asks for the bare tgid
    // itself, the runtime is not asked twice: the start is written with the call's record,
    // naming the program's own answer.
    if !func.answers_bare_tgid() {
        rt.ensure_started(true);
    }
    Begin::Check(rt, f, inside)
}

/// The shim itself failed before the call could begin (it panicked): the call goes to the
/// real function as if the shim were not there, found where it was found before or in the
/// default library.
#[cold]
fn forward_after_failure<F: RealFn>(real: &'static Real<F>, forward: impl Fn(F) -> i32) -> i32 {
    let f = real
        .cached()
        .or_else(|| contain(|| real.get(DEFAULT_REAL_LIB).ok()).flatten());
    match f {
        Some(f) => forward(f),
        None => codes::ACL_ERROR_API_NOT_SUPPORT,
    }
}

impl Runtime {
    /// Whether calls of `func` get a `call` record (`ACL_IPC_GUARD_CALLS`).
    fn records_calls_of(&self, func: Func) -> bool {
        match self.config.calls {
            crate::config::Calls::All => true,
            crate::config::Calls::Ipc => !func.is_memory(),
            crate::config::Calls::None => false,
        }
    }

    /// The one choke point that decides what to do about findings: the severity (the
    /// rule's, or the user's override), the action by mode, the record. Returns whether
    /// the call must be blocked; in `abort` mode an `error` finding ends the process here.
    fn judge(&'static self, func: Func, findings: Vec<Finding>) -> bool {
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
            let key = f.key_fp.map(|fp| KeyRef::of(fp, f.key));
            self.report(Some(func), f.rule, severity, action, f.message, key);
        }
        if abort {
            self.abort_now();
        }
        block
    }
}
