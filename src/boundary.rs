//! The edge between C and Rust: a thread-local re-entry guard (a call the real runtime
//! makes back into an intercepted function, or one from the shim's own threads, is only
//! forwarded) and panic containment (no panic crosses into C).

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The re-entry flag, one byte per thread, in the initial-exec TLS model: its address is
/// the thread pointer plus an offset the dynamic linker fixes at load time, two
/// instructions and no call. A `thread_local!` in a shared library is general-dynamic:
/// every access calls `__tls_get_addr` in the dynamic linker (about 20 instructions),
/// twice per intercepted call. Rust offers the model only on nightly, so the byte is
/// declared in assembly. When the shim is `dlopen`ed (Python's ctypes) the byte comes
/// from the static TLS space glibc keeps spare for such libraries (hundreds of bytes).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod flag {
    use std::cell::Cell;

    // Zero-initialised (`.tbss`): `false` in every thread, a fork child's included (it
    // copies its forking thread's, which is inside the shim only during the fork
    // handlers, themselves outside any intercepted call). Hidden: never exported, and
    // exports.map makes it local to the library anyway.
    std::arch::global_asm!(
        ".pushsection .tbss.acl_ipc_guard_inside,\"awT\",@nobits",
        ".globl acl_ipc_guard_inside",
        ".hidden acl_ipc_guard_inside",
        ".type acl_ipc_guard_inside,@object",
        ".size acl_ipc_guard_inside,1",
        "acl_ipc_guard_inside:",
        ".zero 1",
        ".popsection",
        // The thread's kernel id, cached (`tid`): 0 until asked, in the same model, so
        // that a record's tid costs two instructions instead of a call into the dynamic
        // linker.
        ".pushsection .tbss.acl_ipc_guard_tid,\"awT\",@nobits",
        ".balign 4",
        ".globl acl_ipc_guard_tid",
        ".hidden acl_ipc_guard_tid",
        ".type acl_ipc_guard_tid,@object",
        ".size acl_ipc_guard_tid,4",
        "acl_ipc_guard_tid:",
        ".zero 4",
        ".popsection",
    );

    /// This thread's address of the initial-exec TLS symbol `$sym` (declared above).
    macro_rules! this_thread {
        ($sym:literal) => {{
            let p: *const u8;
            // SAFETY: reads only: fs:0 holds the thread control block's own address (the
            // x86_64 TLS ABI) and the GOT entry the symbol's offset from it, so their sum
            // is this thread's copy.
            unsafe {
                std::arch::asm!(
                    "mov {p}, qword ptr fs:[0]",
                    concat!("add {p}, qword ptr [rip + ", $sym, "@GOTTPOFF]"),
                    p = out(reg) p,
                    options(pure, readonly, nostack),
                );
            }
            p
        }};
    }

    /// This thread's flag (valid for as long as the thread lives). Only `Cell<bool>` ever
    /// writes the byte, and it starts at 0.
    #[inline(always)]
    pub fn get() -> *const Cell<bool> {
        this_thread!("acl_ipc_guard_inside").cast()
    }

    /// This thread's cached kernel id (0: not asked yet), valid as long as the thread.
    /// The 4-byte, 4-aligned word is only ever written as a `Cell<i32>`.
    #[inline(always)]
    pub fn tid() -> *const Cell<i32> {
        this_thread!("acl_ipc_guard_tid").cast()
    }
}

/// The re-entry flag elsewhere: a plain `thread_local!`.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod flag {
    use std::cell::Cell;

    thread_local! {
        // `const` initialisation with types that need no destructor: the access is plain
        // TLS, with no allocation and no destructor registration, safe at any time.
        static INSIDE: Cell<bool> = const { Cell::new(false) };
        static TID: Cell<i32> = const { Cell::new(0) };
    }

    /// This thread's flag (valid for as long as the thread lives: a `const`
    /// thread-local without destructor).
    #[inline(always)]
    pub fn get() -> *const Cell<bool> {
        INSIDE.with(|c| c as *const Cell<bool>)
    }

    /// This thread's cached kernel id (0: not asked yet).
    #[inline(always)]
    pub fn tid() -> *const Cell<i32> {
        TID.with(|c| c as *const Cell<i32>)
    }
}

/// Held while the shim works on a call in this thread. It keeps the address of the
/// thread's flag, so that leaving costs no second look-up.
pub struct Entered(*const Cell<bool>);

impl Entered {
    /// `None` when this thread is already inside the shim.
    #[inline(always)]
    pub fn enter() -> Option<Entered> {
        let p = flag::get();
        // SAFETY: this thread's flag, alive as long as the thread.
        let c = unsafe { &*p };
        if c.get() {
            None
        } else {
            c.set(true);
            Some(Entered(p))
        }
    }
}

impl Drop for Entered {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: the flag of this thread (an `Entered` is neither Send nor Sync, being a
        // raw pointer), which lives as long as the thread.
        unsafe { (*self.0).set(false) };
    }
}

/// Marks a thread the shim started: whatever it calls is only forwarded.
pub fn mark_internal_thread() {
    // SAFETY: this thread's flag, alive as long as the thread.
    unsafe { (*flag::get()).set(true) };
}

/// Runs `f`, turning a panic into `None`.
pub fn contain<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// `contain`, inlined into its caller: for the quiet allocation path and the checked
/// path's two boundaries, where the call into an out-of-line `contain` and the copy of
/// the closure's captures cost more than the work (a panic is contained all the same).
#[inline(always)]
pub fn contain_inline<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// This thread's kernel thread id, cached.
pub fn tid() -> i32 {
    // SAFETY: this thread's cell, alive as long as the thread.
    let c = unsafe { &*flag::tid() };
    let t = c.get();
    if t != 0 {
        return t;
    }
    // SAFETY: gettid has no preconditions.
    let t = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
    c.set(t);
    t
}

/// After fork the forking thread has a new id (the child's pid).
pub fn reset_tid_after_fork() {
    // SAFETY: this thread's cell, alive as long as the thread.
    unsafe { (*flag::tid()).set(0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reentry_is_refused_until_the_guard_drops() {
        let g = Entered::enter().expect("first entry");
        assert!(Entered::enter().is_none());
        drop(g);
        assert!(Entered::enter().is_some());
    }

    /// Each thread has its own flag, clear when the thread starts, also while another
    /// thread is inside; one marked internal stays inside.
    #[test]
    fn the_flag_is_per_thread() {
        let _g = Entered::enter().expect("first entry");
        let other = std::thread::spawn(|| {
            let first = Entered::enter().is_some();
            let again = Entered::enter().is_some();
            mark_internal_thread();
            (first, again, Entered::enter().is_some())
        });
        assert_eq!(other.join().unwrap(), (true, true, false));
        assert!(Entered::enter().is_none(), "this thread is still inside");
    }

    #[test]
    fn panics_are_contained() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        assert_eq!(contain(|| -> i32 { panic!("boom") }), None);
        std::panic::set_hook(prev);
        assert_eq!(contain(|| 5), Some(5));
    }

    #[test]
    fn tid_is_cached_and_per_thread() {
        let main = tid();
        assert_eq!(main, tid());
        let other = std::thread::spawn(tid).join().unwrap();
        assert_ne!(main, other);
    }
}
