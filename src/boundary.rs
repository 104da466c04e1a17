//! The edge between C and Rust: a thread-local re-entry guard (a call the real runtime
//! makes back into an intercepted function, or one from the shim's own threads, is only
//! forwarded) and panic containment (no panic crosses into C).

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    // `const` initialisation with a type that needs no destructor: the access is plain
    // TLS, with no allocation and no destructor registration, safe at any time.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
    static TID: Cell<i32> = const { Cell::new(0) };
}

/// Held while the shim works on a call in this thread. It keeps the address of the
/// thread's flag, so that leaving costs no second thread-local look-up (in a shared
/// library each one is a call into the dynamic linker).
pub struct Entered(*const Cell<bool>);

impl Entered {
    /// `None` when this thread is already inside the shim.
    #[inline]
    pub fn enter() -> Option<Entered> {
        INSIDE.with(|c| {
            if c.get() {
                None
            } else {
                c.set(true);
                Some(Entered(c as *const Cell<bool>))
            }
        })
    }
}

impl Drop for Entered {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the flag of this thread (an `Entered` is neither Send nor Sync, being a
        // raw pointer), a plain `const` thread-local without destructor: it lives as long
        // as the thread.
        unsafe { (*self.0).set(false) };
    }
}

/// Marks a thread the shim started: whatever it calls is only forwarded.
pub fn mark_internal_thread() {
    INSIDE.with(|c| c.set(true));
}

/// Runs `f`, turning a panic into `None`.
pub fn contain<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// This thread's kernel thread id, cached.
pub fn tid() -> i32 {
    TID.with(|c| {
        let t = c.get();
        if t != 0 {
            return t;
        }
        // SAFETY: gettid has no preconditions.
        let t = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
        c.set(t);
        t
    })
}

/// After fork the forking thread has a new id (the child's pid).
pub fn reset_tid_after_fork() {
    TID.with(|c| c.set(0));
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
