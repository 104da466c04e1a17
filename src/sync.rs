//! Locks and a wake-up that survive `fork()`. Their whole state lives in the object (a
//! futex word), never in a process-wide table of parked threads, so a fork child that
//! inherits them sees no trace of its parent's threads. Around a fork, the forking thread
//! holds every lock (so no other thread is half-way through an update) and releases them
//! again in the parent and in the child.

use crate::valgrind;
use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

/// A mutex that ignores poisoning (a panic is contained at the boundary; the data it
/// guarded is still the best there is). With the cargo feature `checker-annotations`,
/// helgrind is told when it is taken and released (see `valgrind.rs`): std's mutex is a
/// futex word it cannot see as a lock.
#[derive(Debug, Default)]
pub struct Lock<T>(Mutex<T>);

/// The held lock; derefs to the data.
#[cfg(not(feature = "checker-annotations"))]
pub type Guard<'a, T> = std::sync::MutexGuard<'a, T>;

/// The held lock; derefs to the data. Tells helgrind when it is released.
#[cfg(feature = "checker-annotations")]
pub struct Guard<'a, T> {
    lock: &'a Mutex<T>,
    /// Always Some until dropped.
    inner: Option<std::sync::MutexGuard<'a, T>>,
}

#[cfg(feature = "checker-annotations")]
impl<T> std::ops::Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner.as_deref().expect("held until dropped")
    }
}

#[cfg(feature = "checker-annotations")]
impl<T> std::ops::DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.inner.as_deref_mut().expect("held until dropped")
    }
}

#[cfg(feature = "checker-annotations")]
impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        valgrind::unlock_pre(self.lock);
        drop(self.inner.take());
        valgrind::unlock_post(self.lock);
    }
}

/// The guard of a lock just taken (`inner`), after telling helgrind.
#[cfg(feature = "checker-annotations")]
fn held<'a, T>(lock: &'a Mutex<T>, inner: std::sync::MutexGuard<'a, T>) -> Guard<'a, T> {
    valgrind::lock_post(lock, &*inner);
    Guard {
        lock,
        inner: Some(inner),
    }
}

#[cfg(not(feature = "checker-annotations"))]
#[inline(always)]
fn held<'a, T>(_lock: &'a Mutex<T>, inner: Guard<'a, T>) -> Guard<'a, T> {
    inner
}

impl<T> Lock<T> {
    pub const fn new(value: T) -> Lock<T> {
        Lock(Mutex::new(value))
    }

    pub fn lock(&self) -> Guard<'_, T> {
        valgrind::lock_pre(&self.0);
        held(&self.0, self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The lock if nobody holds it (in a fork child, a holder may be a thread that no
    /// longer exists).
    pub fn try_lock(&self) -> Option<Guard<'_, T>> {
        let inner = match self.0.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(held(&self.0, inner))
    }
}

/// A lock for the shortest critical sections (the allocation table's shards): a futex
/// word and the data, no poisoning. Taking it free is one compare-and-swap, releasing it
/// one swap; nothing else (std's `Mutex` adds a look at the process's panic count on
/// both sides, which a lock that ignores poisoning has no use for). A thread that finds
/// it taken spins briefly, then sleeps on the futex. Survives `fork()` as `Lock` does
/// (`hold_for_fork`), and tells helgrind the same (feature `checker-annotations`).
pub struct PlainLock<T> {
    /// 0: free; 1: taken; 2: taken, and a thread may sleep on it.
    state: AtomicU32,
    value: std::cell::UnsafeCell<T>,
}

// SAFETY: the data is reached only through a guard, which exists in one thread at a time
// (the state word's acquire/release hand it over); T moves between threads with it.
unsafe impl<T: Send> Sync for PlainLock<T> {}

impl<T: Default> Default for PlainLock<T> {
    fn default() -> PlainLock<T> {
        PlainLock::new(T::default())
    }
}

impl<T> std::fmt::Debug for PlainLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlainLock")
    }
}

/// The held `PlainLock`; derefs to the data.
pub struct PlainGuard<'a, T> {
    lock: &'a PlainLock<T>,
    /// Neither Send nor Sync: released by the thread that took it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl<T> PlainLock<T> {
    pub const fn new(value: T) -> PlainLock<T> {
        PlainLock {
            state: AtomicU32::new(0),
            value: std::cell::UnsafeCell::new(value),
        }
    }

    #[inline(always)]
    pub fn lock(&self) -> PlainGuard<'_, T> {
        valgrind::lock_pre(self);
        if self
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        // SAFETY: the lock is held; only this thread reads the data now.
        valgrind::lock_post(self, unsafe { &*self.value.get() });
        PlainGuard {
            lock: self,
            _not_send: std::marker::PhantomData,
        }
    }

    /// The lock if nobody holds it (helgrind is told only of a success, as a lock taken).
    pub fn try_lock(&self) -> Option<PlainGuard<'_, T>> {
        if self
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        valgrind::lock_pre(self);
        // SAFETY: the lock is held; only this thread reads the data now.
        valgrind::lock_post(self, unsafe { &*self.value.get() });
        Some(PlainGuard {
            lock: self,
            _not_send: std::marker::PhantomData,
        })
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        // A holder is inside a few dozen instructions: worth a short wait before sleeping.
        for _ in 0..64 {
            std::hint::spin_loop();
            if self.state.load(Ordering::Relaxed) == 0
                && self
                    .state
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        // Taken with the mark "a thread may sleep": the releaser then wakes one.
        while self.state.swap(2, Ordering::Acquire) != 0 {
            futex_wait(&self.state, 2, None);
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_one(&self) {
        futex_wake(&self.state, 1);
    }
}

impl<T: 'static> PlainLock<T> {
    /// Takes the lock for the duration of a fork: released by `release_fork_locks`.
    pub fn hold_for_fork(&'static self) {
        let guard: Box<dyn Any> = Box::new(self.lock());
        FORK_GUARDS.with(|g| g.borrow_mut().push(guard));
    }
}

impl<T> std::ops::Deref for PlainGuard<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: the lock is held by this guard.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> std::ops::DerefMut for PlainGuard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the lock is held by this guard, which is borrowed mutably.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for PlainGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        valgrind::unlock_pre(self.lock);
        if self.lock.state.swap(0, Ordering::Release) == 2 {
            self.lock.wake_one();
        }
        valgrind::unlock_post(self.lock);
    }
}

/// A value made once, by the first thread that asks for it, then shared for good (never
/// dropped). Unlike a `OnceLock<T>`, whose value is moved into place after the making
/// closure returns, the value is complete before its address is published with one atomic
/// swap: that is what lets helgrind be told exactly (`happens_before` just before the
/// publication, `happens_after` after every read that finds it), since it sees neither a
/// futex nor acquire/release atomics. Its whole state is one futex word (`EMPTY`, `MAKING`,
/// `MADE`) and the pointer, so a fork child that inherits it half made (by a thread the child
/// does not have) can start again with [`Published::forget_in_child`]; a `std::sync::Once`
/// would keep the child waiting for good.
pub struct Published<T> {
    value: AtomicPtr<T>,
    state: AtomicU32,
}

const EMPTY: u32 = 0;
const MAKING: u32 = 1;
const MADE: u32 = 2;

impl<T> Published<T> {
    pub const fn new() -> Published<T> {
        Published {
            value: AtomicPtr::new(std::ptr::null_mut()),
            state: AtomicU32::new(EMPTY),
        }
    }

    /// The value if it has been made.
    #[inline(always)]
    pub fn get(&'static self) -> Option<&'static T> {
        let p = self.value.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        valgrind::happens_after(self);
        // SAFETY: a non-null pointer here came from Box::into_raw in `make` and is never
        // freed; the acquire load pairs with its release publication.
        Some(unsafe { &*p })
    }

    /// True while a thread is making the value.
    pub fn is_being_made(&'static self) -> bool {
        self.state.load(Ordering::Acquire) == MAKING
    }

    /// The value, made by `make` (once, whichever thread comes first; the others wait)
    /// if it has not been yet. If `make` panics, the next caller tries again.
    #[inline(always)]
    pub fn get_or_make(&'static self, make: impl FnOnce() -> Box<T>) -> &'static T {
        match self.get() {
            Some(v) => v,
            None => self.make(make),
        }
    }

    #[cold]
    fn make(&'static self, make: impl FnOnce() -> Box<T>) -> &'static T {
        // Its turns are told to helgrind through the value's publication (`happens_before`
        // and `happens_after`), not through this word, which helgrind sees only as memory.
        valgrind::benign_atomic(&self.state);
        // Taken by the one turn that makes the value (it returns, or unwinds, right after).
        let mut make = Some(make);
        loop {
            match self
                .state
                .compare_exchange(EMPTY, MAKING, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => {
                    /// Gives the turn back (and wakes the waiters) should `make` panic.
                    struct Unmade<'a>(&'a AtomicU32);
                    impl Drop for Unmade<'_> {
                        fn drop(&mut self) {
                            self.0.store(EMPTY, Ordering::Release);
                            futex_wake(self.0, i32::MAX);
                        }
                    }
                    let unmade = Unmade(&self.state);
                    let make = make.take().expect("one making per call");
                    let p = Box::into_raw(make());
                    std::mem::forget(unmade);
                    valgrind::happens_before(self);
                    // A swap, not a store: helgrind takes an atomic read-modify-write for a
                    // read, so the threads that read the pointer before it was set do not
                    // race with it.
                    self.value.swap(p, Ordering::Release);
                    self.state.store(MADE, Ordering::Release);
                    futex_wake(&self.state, i32::MAX);
                }
                Err(MADE) => {}
                Err(_) => futex_wait(&self.state, MAKING, None),
            }
            if let Some(v) = self.get() {
                return v;
            }
        }
    }

    /// In a fork child, which has one thread: forgets a value its parent had made or was
    /// making, so that the child's next `get_or_make` makes its own. The old value (if any)
    /// is left as it is (its memory is the child's copy; never freed).
    pub fn forget_in_child(&'static self) {
        self.value.store(std::ptr::null_mut(), Ordering::Release);
        self.state.store(EMPTY, Ordering::Release);
    }
}

/// Sleeps while `word` holds `expected`, until woken or `timeout` passes (the caller
/// looks again: a return says nothing).
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<&libc::timespec>) {
    let timeout = timeout.map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: a futex wait on a valid, aligned u32 (returns at once if it no longer holds
    // `expected`), with a null or valid timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            timeout,
        );
    }
}

/// Wakes up to `n` threads sleeping on `word`.
fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: a futex wake on a valid, aligned u32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            n,
        );
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

/// True while this thread holds locks it took with `hold_for_fork`.
pub fn holding_fork_locks() -> bool {
    FORK_GUARDS.with(|g| !g.borrow().is_empty())
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

/// Wakes one sleeping thread without a syscall when nobody sleeps. Only the ring that
/// marks the sleeper awake makes the system call, so the producers that come before the
/// woken thread runs again do not each make one.
#[derive(Debug, Default)]
pub struct Doorbell {
    rings: AtomicU32,
    /// AWAKE or SLEEPING.
    state: AtomicU32,
}

const AWAKE: u32 = 0;
const SLEEPING: u32 = 1;

impl Doorbell {
    pub const fn new() -> Doorbell {
        Doorbell {
            rings: AtomicU32::new(0),
            state: AtomicU32::new(AWAKE),
        }
    }

    /// Wakes the sleeper, if there is one.
    pub fn ring(&self) {
        if self.state.load(Ordering::SeqCst) == SLEEPING
            && self
                .state
                .compare_exchange(SLEEPING, AWAKE, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            self.rings.fetch_add(1, Ordering::SeqCst);
            futex_wake(&self.rings, 1);
        }
    }

    /// Sleeps until rung (or `timeout_ms` passes) unless `has_work()` says there is work.
    pub fn sleep_unless(&self, has_work: impl Fn() -> bool, timeout_ms: i64) {
        let seen = self.rings.load(Ordering::SeqCst);
        // Stored before `has_work` looks, and a producer looks at it after it queued:
        // (SeqCst) one of the two sees the other, so no work is left asleep.
        self.state.store(SLEEPING, Ordering::SeqCst);
        if !has_work() {
            let ts = libc::timespec {
                tv_sec: (timeout_ms / 1000) as libc::time_t,
                tv_nsec: ((timeout_ms % 1000) * 1_000_000) as _,
            };
            futex_wait(&self.rings, seen, Some(&ts));
        }
        self.state.store(AWAKE, Ordering::SeqCst);
    }

    /// In a fork child: nobody sleeps here.
    pub fn reset(&self) {
        self.state.store(AWAKE, Ordering::SeqCst);
    }
}

/// A counter that many threads add to at once: one word per stripe, each on cache lines
/// of its own, a thread adding to the stripe its stack lies in. A single shared word is
/// written by every call of every thread, so two threads on two cores pass its line back
/// and forth on each call (and with it whatever else lies on that line); with stripes two
/// threads meet only when their stacks hash alike. Read by summing the stripes: a read
/// racing additions sees some of them, as a read of one word would.
pub struct Striped {
    stripes: [Stripe; STRIPES],
}

/// Stripes of a `Striped` counter (and of anything else kept per stripe, see
/// `this_stripe`): more than the threads a program usually calls from.
pub const STRIPES: usize = 16;

#[repr(align(128))]
struct Stripe(AtomicU64);

impl Default for Striped {
    fn default() -> Striped {
        Striped::new()
    }
}

impl std::fmt::Debug for Striped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Striped({})", self.sum())
    }
}

impl Striped {
    pub const fn new() -> Striped {
        Striped {
            stripes: [const { Stripe(AtomicU64::new(0)) }; STRIPES],
        }
    }

    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.stripes[this_stripe()]
            .0
            .fetch_add(n, Ordering::Relaxed);
    }

    pub fn sum(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// Back to 0 (a fork child, which has a single thread).
    pub fn reset(&self) {
        for s in &self.stripes {
            s.0.store(0, Ordering::Relaxed);
        }
    }

    /// Tells helgrind (feature `checker-annotations`) that the stripes are counters,
    /// written and read without ordering.
    pub fn benign_for_checker(&self) {
        for s in &self.stripes {
            valgrind::benign_atomic(&s.0);
        }
    }
}

/// The calling thread's stripe, below STRIPES, from the megabyte its stack lies in
/// (threads' stacks are separate mappings, 8 MiB apart by default; the frames of one
/// thread's calls seldom straddle a megabyte boundary, so its calls mostly agree): no
/// thread-local look-up, which in a shared library is a call into the dynamic linker. Any
/// stripe would be correct; this one is only likely to differ from other threads' and to
/// stay the same for a thread.
#[inline(always)]
pub fn this_stripe() -> usize {
    let probe = 0u8;
    let sp = std::hint::black_box(&probe) as *const u8 as u64;
    ((sp >> 20).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) as usize % STRIPES
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
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
    fn many_rings_before_the_sleeper_runs_make_one_wake() {
        let bell = Arc::new(Doorbell::new());
        let b = bell.clone();
        // A sleep of 30 s: only a ring ends it in time.
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            b.sleep_unless(|| false, 30_000);
            start.elapsed()
        });
        while bell.state.load(Ordering::SeqCst) != SLEEPING {
            std::thread::yield_now();
        }
        let rings = bell.rings.load(Ordering::SeqCst);
        for _ in 0..100 {
            bell.ring();
        }
        assert_eq!(
            bell.rings.load(Ordering::SeqCst),
            rings + 1,
            "one wake (one system call) for a hundred rings"
        );
        let slept = t.join().unwrap();
        assert!(slept < Duration::from_secs(20), "woken by the ring");
        assert_eq!(bell.state.load(Ordering::SeqCst), AWAKE);
    }

    #[test]
    fn published_is_made_once_for_every_thread() {
        static VALUE: Published<AtomicU32> = Published::new();
        static MADE: AtomicU32 = AtomicU32::new(0);
        assert!(VALUE.get().is_none());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(|| {
                    let v = VALUE.get_or_make(|| {
                        MADE.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        Box::new(AtomicU32::new(7))
                    });
                    v.fetch_add(1, Ordering::SeqCst);
                    v as *const AtomicU32 as usize
                })
            })
            .collect();
        let seen: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(MADE.load(Ordering::SeqCst), 1, "made once");
        assert!(seen.iter().all(|p| *p == seen[0]), "one value for all");
        assert_eq!(VALUE.get().unwrap().load(Ordering::SeqCst), 15);
    }

    #[test]
    fn published_is_made_again_after_a_panic() {
        static VALUE: Published<u32> = Published::new();
        let first = std::panic::catch_unwind(|| VALUE.get_or_make(|| panic!("not now")));
        assert!(first.is_err());
        assert!(VALUE.get().is_none());
        assert_eq!(*VALUE.get_or_make(|| Box::new(3)), 3);
        assert_eq!(*VALUE.get_or_make(|| Box::new(4)), 3);
    }

    /// What a fork child does with a value its parent's other thread was making, or had
    /// made but the child cannot take over: forgotten, it is made again, once.
    #[test]
    fn published_is_made_afresh_after_forget_in_child() {
        static VALUE: Published<u32> = Published::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let maker = std::thread::spawn(move || {
            *VALUE.get_or_make(|| {
                tx.send(()).unwrap();
                go_rx.recv().unwrap();
                Box::new(1)
            })
        });
        rx.recv().unwrap();
        assert!(VALUE.is_being_made() && VALUE.get().is_none());
        // (A child has no maker: here the maker waits until the value is made again.)
        VALUE.forget_in_child();
        assert!(!VALUE.is_being_made());
        assert_eq!(*VALUE.get_or_make(|| Box::new(2)), 2, "made again at once");
        go_tx.send(()).unwrap();
        let _ = maker.join();
        VALUE.forget_in_child();
        assert!(VALUE.get().is_none(), "a made value forgotten");
        assert_eq!(*VALUE.get_or_make(|| Box::new(3)), 3);
        assert_eq!(*VALUE.get_or_make(|| Box::new(4)), 3);
    }

    /// Threads taking turns (on 2 cores 8 threads also sleep on the futex, preempted
    /// holders included): no increment lost; held for a fork, it is taken by nobody else
    /// until released.
    #[test]
    fn plain_lock_excludes_and_wakes() {
        static COUNT: PlainLock<u64> = PlainLock::new(0);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..20_000 {
                        *COUNT.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*COUNT.lock(), 160_000);
        COUNT.hold_for_fork();
        let waiter = std::thread::spawn(|| {
            *COUNT.lock() += 1;
        });
        // The waiter marks the lock before it sleeps on it.
        while COUNT.state.load(Ordering::SeqCst) != 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!waiter.is_finished(), "held: the waiter cannot have it");
        release_fork_locks();
        waiter.join().unwrap();
        assert_eq!(*COUNT.lock(), 160_001);
        assert_eq!(COUNT.state.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn striped_counter_sums_every_threads_additions() {
        static N: Striped = Striped::new();
        let threads: Vec<_> = (0..8)
            .map(|i| std::thread::spawn(move || (0..10_000).for_each(|_| N.add(i + 1))))
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(N.sum(), 10_000 * (1..=8).sum::<u64>());
        N.reset();
        assert_eq!(N.sum(), 0);
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
