//! Valgrind client requests, so that helgrind sees the shim's own synchronisation for what
//! it is (cargo feature `checker-annotations`; without it every function here is empty and
//! the normal build carries nothing of this).
//!
//! Helgrind understands pthread locks and thread creation and join, not atomics: std's
//! `Mutex` and `Once` are futex words changed with atomic instructions, so every access to
//! data they guard or publish looks like a race to it. The shim therefore says, through the
//! client-request interface valgrind documents (a fixed no-op instruction sequence that
//! valgrind recognises), when a `sync::Lock` is taken and released and when a value is
//! handed from one thread to another (`happens_before` / `happens_after`). Outside
//! valgrind the sequence does nothing: a few register rotations, no system call, no
//! memory access. Each annotation states an ordering the code really has (a wrong one
//! would hide a real race): see the callers.

#[cfg(feature = "checker-annotations")]
mod imp {
    /// Helgrind's requests (valgrind/helgrind.h, valgrind 3.x): tool base ('H','G') + index.
    const HG: usize = (b'H' as usize) << 24 | (b'G' as usize) << 16;
    pub const MUTEX_UNLOCK_PRE: usize = HG + 0x105;
    pub const MUTEX_UNLOCK_POST: usize = HG + 0x106;
    pub const USERSO_SEND_PRE: usize = HG + 0x121;
    pub const USERSO_RECV_POST: usize = HG + 0x122;
    pub const ARANGE_MAKE_UNTRACKED: usize = HG + 0x127;
    pub const MUTEX_LOCK_PRE: usize = HG + 0x131;
    pub const MUTEX_LOCK_POST: usize = HG + 0x132;

    /// One client request with two arguments; its answer is ignored (0 outside valgrind).
    #[inline(always)]
    pub fn request(code: usize, a1: usize, a2: usize) {
        let args: [usize; 6] = [code, a1, a2, 0, 0, 0];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the "special instruction" valgrind documents for amd64: rotations of rdi
        // by 64 bits in all (rdi unchanged) and xchg rbx,rbx (no change); valgrind reads
        // the request block at rax and writes its answer to rdx.
        unsafe {
            std::arch::asm!(
                "rol rdi, 3", "rol rdi, 13", "rol rdi, 61", "rol rdi, 51", "xchg rbx, rbx",
                in("rax") args.as_ptr(),
                inout("rdx") 0usize => _,
                options(nostack),
            );
        }
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the arm64 sequence: rotations of x12 by 128 bits in all and
        // orr x10,x10,x10; valgrind reads the request block at x4 and writes its answer
        // to x3.
        unsafe {
            std::arch::asm!(
                "ror x12, x12, #3", "ror x12, x12, #13", "ror x12, x12, #51", "ror x12, x12, #61",
                "orr x10, x10, x10",
                in("x4") args.as_ptr(),
                inout("x3") 0usize => _,
                options(nostack),
            );
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let _ = args;
    }
}

#[cfg(feature = "checker-annotations")]
use imp::*;

#[cfg(feature = "checker-annotations")]
fn addr<M>(m: &M) -> usize {
    m as *const M as usize
}

/// About to take the lock at `m`.
#[inline(always)]
pub fn lock_pre<M>(_m: &M) {
    #[cfg(feature = "checker-annotations")]
    request(MUTEX_LOCK_PRE, addr(_m), 0);
}

/// Took the lock at `m`, whose guarded data is `data`: the lock's own bytes (everything
/// of `m` outside `data`) are left untracked, since only atomic instructions touch them.
// Called by sync's guards (`Guard` exists with the feature only).
#[cfg_attr(not(feature = "checker-annotations"), allow(dead_code))]
#[inline(always)]
pub fn lock_post<M, T>(_m: &M, _data: &T) {
    #[cfg(feature = "checker-annotations")]
    {
        let (start, end) = (addr(_m), addr(_m) + std::mem::size_of::<M>());
        let (d0, d1) = (addr(_data), addr(_data) + std::mem::size_of::<T>());
        if d0 > start {
            request(ARANGE_MAKE_UNTRACKED, start, d0 - start);
        }
        if end > d1 {
            request(ARANGE_MAKE_UNTRACKED, d1, end - d1);
        }
        request(MUTEX_LOCK_POST, start, 1);
    }
}

/// About to release the lock at `m`.
// Called by sync's guards (`Guard` exists with the feature only).
#[cfg_attr(not(feature = "checker-annotations"), allow(dead_code))]
#[inline(always)]
pub fn unlock_pre<M>(_m: &M) {
    #[cfg(feature = "checker-annotations")]
    request(MUTEX_UNLOCK_PRE, addr(_m), 0);
}

/// Released the lock at `m`.
// Called by sync's guards (`Guard` exists with the feature only).
#[cfg_attr(not(feature = "checker-annotations"), allow(dead_code))]
#[inline(always)]
pub fn unlock_post<M>(_m: &M) {
    #[cfg(feature = "checker-annotations")]
    request(MUTEX_UNLOCK_POST, addr(_m), 0);
}

/// Everything this thread did so far happens before whatever a thread does after its
/// `happens_after(tag)` (helgrind's ANNOTATE_HAPPENS_BEFORE). Only where the code really
/// orders the two (a release store seen by an acquire load, a futex hand-off).
#[inline(always)]
pub fn happens_before<M>(_tag: &M) {
    #[cfg(feature = "checker-annotations")]
    request(USERSO_SEND_PRE, addr(_tag), 0);
}

/// See `happens_before` (ANNOTATE_HAPPENS_AFTER).
#[inline(always)]
pub fn happens_after<M>(_tag: &M) {
    #[cfg(feature = "checker-annotations")]
    request(USERSO_RECV_POST, addr(_tag), 0);
}

/// The bytes of `v` are only ever accessed as atomics whose every use is benign without
/// any ordering (a counter, a flag nothing is published through): helgrind, which cannot
/// tell an atomic store from a plain one, is told to leave them alone
/// (ANNOTATE_BENIGN_RACE_SIZED). Call it before another thread can see `v`.
#[inline(always)]
pub fn benign_atomic<M>(_v: &M) {
    #[cfg(feature = "checker-annotations")]
    request(ARANGE_MAKE_UNTRACKED, addr(_v), std::mem::size_of::<M>());
}

/// This thread took the pthread mutex at `m` and keeps it until it exits, when the kernel
/// (not a pthread call helgrind could see) releases it: helgrind is told it is released
/// now, or it would report every such thread as exiting with a lock held. The ledger's
/// liveness words (ledger/file.rs) are the only such mutexes; nothing they hold is data
/// that helgrind could check (no thread of the process waits on them).
#[inline(always)]
pub fn lock_left_to_kernel<M>(_m: &M) {
    #[cfg(feature = "checker-annotations")]
    {
        request(MUTEX_UNLOCK_PRE, addr(_m), 0);
        request(MUTEX_UNLOCK_POST, addr(_m), 0);
    }
}
