//! Locks and a wake-up that survive `fork()`. Their whole state lives in the object (a
//! futex word), never in a process-wide table of parked threads, so a fork child that
//! inherits them sees no trace of its parent's threads. Around a fork, the forking thread
//! holds every lock (so no other thread is half-way through an update) and releases them
//! again in the parent and in the child.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A mutex that ignores poisoning (a panic is contained at the boundary; the data it
/// guarded is still the best there is).
#[derive(Debug, Default)]
pub struct Lock<T>(Mutex<T>);

impl<T> Lock<T> {
    pub const fn new(value: T) -> Lock<T> {
        Lock(Mutex::new(value))
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lock if nobody holds it (in a fork child, a holder may be a thread that no
    /// longer exists).
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.0.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

impl<T: 'static> Lock<T> {
    /// Takes the lock for the duration of a fork: released by `release_fork_locks`.
    pub fn hold_for_fork(&'static self) {
        let guard: Box<dyn Any> = Box::new(self.lock());
        FORK_GUARDS.with(|g| g.borrow_mut().push(guard));
    }
}

thread_local! {
    static FORK_GUARDS: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// Releases, in reverse order, every lock the forking thread took with `hold_for_fork`.
pub fn release_fork_locks() {
    FORK_GUARDS.with(|g| {
        let mut g = g.borrow_mut();
        while let Some(guard) = g.pop() {
            drop(guard);
        }
    });
}

/// Wakes one sleeping thread without a syscall when nobody sleeps.
#[derive(Debug, Default)]
pub struct Doorbell {
    rings: AtomicU32,
    sleeping: AtomicBool,
}

impl Doorbell {
    pub const fn new() -> Doorbell {
        Doorbell {
            rings: AtomicU32::new(0),
            sleeping: AtomicBool::new(false),
        }
    }

    /// Wakes the sleeper, if there is one.
    pub fn ring(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            self.rings.fetch_add(1, Ordering::SeqCst);
            // SAFETY: a futex wake on a valid, aligned u32.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.rings.as_ptr(),
                    libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                    1,
                );
            }
        }
    }

    /// Sleeps until rung (or `timeout_ms` passes) unless `has_work()` says there is work.
    pub fn sleep_unless(&self, has_work: impl Fn() -> bool, timeout_ms: i64) {
        let seen = self.rings.load(Ordering::SeqCst);
        self.sleeping.store(true, Ordering::SeqCst);
        if !has_work() {
            let ts = libc::timespec {
                tv_sec: timeout_ms / 1000,
                tv_nsec: (timeout_ms % 1000) * 1_000_000,
            };
            // SAFETY: a futex wait on a valid, aligned u32 with a valid timeout.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.rings.as_ptr(),
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    seen,
                    &ts as *const libc::timespec,
                );
            }
        }
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// In a fork child: nobody sleeps here.
    pub fn reset(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn doorbell_wakes_a_sleeper() {
        let bell = Arc::new(Doorbell::new());
        let work = Arc::new(AtomicBool::new(false));
        let (b, w) = (bell.clone(), work.clone());
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            while !w.load(Ordering::SeqCst) {
                b.sleep_unless(|| w.load(Ordering::SeqCst), 10_000);
            }
            start.elapsed()
        });
        std::thread::sleep(Duration::from_millis(50));
        work.store(true, Ordering::SeqCst);
        bell.ring();
        let slept = t.join().unwrap();
        assert!(
            slept < Duration::from_secs(5),
            "woken by the ring, not the timeout"
        );
    }

    #[test]
    fn fork_locks_are_released_in_order() {
        static A: Lock<u32> = Lock::new(1);
        static B: Lock<u32> = Lock::new(2);
        A.hold_for_fork();
        B.hold_for_fork();
        assert!(A.0.try_lock().is_err());
        release_fork_locks();
        assert_eq!(*A.lock() + *B.lock(), 3);
    }
}
