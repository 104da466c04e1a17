//! Finding the real runtime's functions: `dlsym(RTLD_NEXT, name)` first; where that finds
//! nothing, or finds this library itself, `dlopen` of the configured real library and
//! `dlsym` in it. A found function is cached, so each is resolved once; a miss is retried
//! on the next call (the program may load the runtime later). The object that defines a
//! found function is pinned (never unloaded), so the cached address stays valid after the
//! program `dlclose`s the runtime it `dlopen`ed.
//!
//! Each intercepted function has a typed slot (`Real<F>`, `F` its real C signature), so a
//! call site gets a typed function pointer; the one conversion from an address is in
//! `typed`.

use crate::call::Func;
use crate::ffi::vendor::{aclError, aclrtIpcMemAttrType, aclrtMemMallocPolicy, aclrtServerPid};
use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// A function pointer type a slot can hold.
///
/// # Safety
/// Implemented only for `unsafe extern "C" fn` pointer types (the size of a data pointer),
/// each the C signature of the function whose slot holds it.
pub(crate) unsafe trait RealFn: Copy + 'static {}

/// The real runtime's `func`, found once and kept, with its real C signature `F`.
pub(crate) struct Real<F> {
    func: Func,
    addr: AtomicPtr<c_void>,
    _f: PhantomData<F>,
}

impl<F: RealFn> Real<F> {
    const fn new(func: Func) -> Real<F> {
        Real {
            func,
            addr: AtomicPtr::new(std::ptr::null_mut()),
            _f: PhantomData,
        }
    }

    /// The function this slot holds.
    pub(crate) fn func(&self) -> Func {
        self.func
    }

    /// The real function, or why there is none (looked up again on the next call: the
    /// program may load the runtime later).
    #[inline]
    pub(crate) fn get(&self, real_lib: &str) -> Result<F, Missing> {
        match self.cached() {
            Some(f) => Ok(f),
            None => {
                let addr = resolve_slow(self.func, real_lib)?;
                // Benign: threads that race here store the same address, and nothing but
                // that address (of code the loader mapped) is read through it.
                crate::valgrind::benign_atomic(&self.addr);
                self.addr.store(addr, Ordering::Release);
                Ok(typed(addr))
            }
        }
    }

    /// The real function if it was found before.
    #[inline]
    pub(crate) fn cached(&self) -> Option<F> {
        let addr = self.addr.load(Ordering::Acquire);
        (!addr.is_null()).then(|| typed(addr))
    }
}

/// The one conversion from a found address to a typed function pointer.
#[inline]
fn typed<F: RealFn>(addr: *mut c_void) -> F {
    debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: `addr` is non-NULL and was found under the vendor's name of the slot's
    // function, whose C signature `F` is (RealFn's contract); a function pointer has the
    // size and representation of a data pointer on every platform dlsym serves.
    unsafe { std::mem::transmute_copy::<*mut c_void, F>(&addr) }
}

/// The real functions' C signatures (the vendor's), one type per signature.
macro_rules! signatures {
    ($( $ty:ident = fn($($arg:ty),*); )*) => {
        $(
            pub(crate) type $ty = unsafe extern "C" fn($($arg),*) -> aclError;
            // SAFETY: an `unsafe extern "C" fn` pointer type, the vendor's signature of
            // the functions whose slots hold it (below).
            unsafe impl RealFn for $ty {}
        )*
    };
}

signatures! {
    ExportKeyFn = fn(*mut c_void, usize, *mut c_char, usize, u64);
    SetImportPidFn = fn(*const c_char, *mut i32, usize);
    InterServerFn = fn(*const c_char, *mut aclrtServerPid, usize);
    ImportByKeyFn = fn(*mut *mut c_void, *const c_char, u64);
    SetAttrFn = fn(*const c_char, aclrtIpcMemAttrType, u64);
    CloseFn = fn(*const c_char);
    BareTgidFn = fn(*mut i32);
    MallocFn = fn(*mut *mut c_void, usize, aclrtMemMallocPolicy);
    FreeFn = fn(*mut c_void);
}

/// One slot per intercepted function, with the function's real signature.
macro_rules! slots {
    ($( $slot:ident: Real<$ty:ident> = $func:ident; )*) => {
        $( pub(crate) static $slot: Real<$ty> = Real::new(Func::$func); )*

        /// The function of every slot, in declaration order.
        #[cfg(test)]
        const SLOT_FUNCS: &[Func] = &[$( Func::$func, )*];
    };
}

slots! {
    GET_EXPORT_KEY: Real<ExportKeyFn> = GetExportKey;
    SET_IMPORT_PID: Real<SetImportPidFn> = SetImportPid;
    IMPORT_PID_INTER_SERVER: Real<InterServerFn> = ImportPidInterServer;
    IMPORT_BY_KEY: Real<ImportByKeyFn> = ImportByKey;
    SET_ATTR: Real<SetAttrFn> = SetAttr;
    CLOSE: Real<CloseFn> = Close;
    DEVICE_GET_BARE_TGID: Real<BareTgidFn> = DeviceGetBareTgid;
    MALLOC: Real<MallocFn> = Malloc;
    MALLOC_ALIGN32: Real<MallocFn> = MallocAlign32;
    MALLOC_CACHED: Real<MallocFn> = MallocCached;
    FREE: Real<FreeFn> = Free;
}

/// The base address of the object `addr` belongs to.
fn object_base(addr: *const c_void) -> Option<usize> {
    // SAFETY: Dl_info is plain data (pointers and integers); all-zero is a valid value.
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
pub(crate) struct Missing(pub String);

/// Looks `func` up: RTLD_NEXT first, then the configured library. A found address that
/// is this library's own (its own `func`) counts as not found.
#[cold]
fn resolve_slow(func: Func, real_lib: &str) -> Result<*mut c_void, Missing> {
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
    Ok(found)
}

/// Keeps the object that defines `addr` loaded for the life of the process: a program that
/// `dlopen`ed the runtime (RTLD_GLOBAL, where RTLD_NEXT finds it) may `dlclose` it again,
/// and the cached address must not dangle. Best effort: where it fails, nothing changes.
fn pin(addr: *mut c_void) {
    // SAFETY: Dl_info is plain data (pointers and integers); all-zero is a valid value.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slot_per_intercepted_function_in_table_order() {
        assert_eq!(SLOT_FUNCS, &Func::ALL[..]);
    }
}
