//! Finding the real runtime's functions: `dlsym(RTLD_NEXT, name)` first; where that finds
//! nothing, or finds this library itself, `dlopen` of the configured real library and
//! `dlsym` in it. A found function is cached, so each is resolved once; a miss is retried
//! on the next call (the program may load the runtime later). The object that defines a
//! found function is pinned (never unloaded), so the cached address stays valid after the
//! program `dlclose`s the runtime it `dlopen`ed.

use crate::call::Func;
use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicUsize, Ordering};

static SLOTS: [AtomicUsize; 11] = [const { AtomicUsize::new(0) }; 11];

/// The base address of the object `addr` belongs to.
fn object_base(addr: *const c_void) -> Option<usize> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads addr and fills info.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 {
        None
    } else {
        Some(info.dli_fbase as usize)
    }
}

fn own_base() -> Option<usize> {
    static BASE: AtomicUsize = AtomicUsize::new(0);
    let b = BASE.load(Ordering::Relaxed);
    if b != 0 {
        return Some(b);
    }
    let b = object_base(own_base as *const c_void)?;
    BASE.store(b, Ordering::Relaxed);
    Some(b)
}

fn is_own(addr: *mut c_void) -> bool {
    match (object_base(addr), own_base()) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Why a real function could not be found.
#[derive(Debug, Clone)]
pub struct Missing(pub String);

/// The address of the real `func`, or why there is none.
#[inline]
pub fn resolve(func: Func, real_lib: &str) -> Result<usize, Missing> {
    let cached = SLOTS[func as usize].load(Ordering::Acquire);
    if cached != 0 {
        return Ok(cached);
    }
    resolve_slow(func, real_lib)
}

#[cold]
fn resolve_slow(func: Func, real_lib: &str) -> Result<usize, Missing> {
    let slot = &SLOTS[func as usize];
    let name = CString::new(func.name()).expect("names have no NUL");
    // SAFETY: dlsym with RTLD_NEXT and a valid name.
    let next = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    let found = if !next.is_null() && !is_own(next) {
        next
    } else {
        let lib = CString::new(real_lib)
            .map_err(|_| Missing("ACL_IPC_GUARD_REAL_LIB holds a NUL".into()))?;
        // SAFETY: dlopen with a valid path; the handle is kept for the life of the process.
        let handle = unsafe { libc::dlopen(lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if handle.is_null() {
            // SAFETY: dlerror returns a thread-local string or NULL.
            let why = unsafe {
                let e = libc::dlerror();
                if e.is_null() {
                    "unknown error".to_string()
                } else {
                    std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
                }
            };
            return Err(Missing(format!(
                "real {} not found: not in a library loaded after the shim, and dlopen({real_lib}) failed: {why}; the call returns ACL_ERROR_API_NOT_SUPPORT (200001)",
                func.name()
            )));
        }
        // SAFETY: valid handle and name.
        let sym = unsafe { libc::dlsym(handle, name.as_ptr()) };
        if sym.is_null() || is_own(sym) {
            return Err(Missing(format!(
                "real {} not found: {real_lib} does not define it (or is this shim); the call returns ACL_ERROR_API_NOT_SUPPORT (200001)",
                func.name()
            )));
        }
        sym
    };
    pin(found);
    slot.store(found as usize, Ordering::Release);
    Ok(found as usize)
}

/// Keeps the object that defines `addr` loaded for the life of the process: a program that
/// `dlopen`ed the runtime (RTLD_GLOBAL, where RTLD_NEXT finds it) may `dlclose` it again,
/// and the cached address must not dangle. Best effort: where it fails, nothing changes.
fn pin(addr: *mut c_void) {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads addr and fills info.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return;
    }
    // SAFETY: dli_fname is the loaded object's NUL-terminated name; NOLOAD opens nothing
    // new, NODELETE marks the loaded object permanent. The reference is kept.
    unsafe {
        if *info.dli_fname != 0
            && libc::dlopen(
                info.dli_fname,
                libc::RTLD_NOLOAD | libc::RTLD_NODELETE | libc::RTLD_LAZY,
            )
            .is_null()
        {
            libc::dlerror(); // leave no error of ours for the program's next dlerror()
        }
    }
}
