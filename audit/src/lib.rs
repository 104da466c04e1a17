//! `libacl_ipc_guard_audit.so`: an rtld-audit module (`LD_AUDIT`, see rtld-audit(7)) that
//! sends the intercepted functions to the shim however the program found them.
//!
//! A preloaded library only wins symbol look-ups that search the global scope. A program
//! that asks the runtime itself, `dlsym(dlopen("libascendcl.so"), name)` (torch_npu before
//! 2026-04, Python `ctypes`), gets the runtime's own function and bypasses the shim. ld.so
//! reports every such binding to an audit module (`la_symbind64`, with `LA_SYMB_DLSYM` for
//! dlsym results), and the module may hand back another address: for the eleven
//! intercepted names we hand back the shim's function of the same name.
//!
//! Left alone (the address ld.so found is returned unchanged):
//! - bindings whose definition is in the shim already (linked programs, `RTLD_DEFAULT`,
//!   `RTLD_NEXT` from the program);
//! - references from an object that itself defines the name: the shim's own look-ups of the
//!   real functions, other interposers forwarding with `RTLD_NEXT`, a library's calls to its
//!   own functions; redirecting them would loop or count a call twice;
//! - everything outside the base link-map namespace (`dlmopen`), and everything while no
//!   shim is loaded.
//!
//! The callbacks run inside ld.so with its lock held, in this module's own namespace: they
//! call no libc or ld.so function, allocate nothing and cannot panic. The shim's addresses
//! are read from its dynamic symbol table in memory (`l_addr`, `l_ld`) and cached.

use std::ffi::{c_char, c_uint};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The newest audit interface version we implement (2: la_symbind also for bind-now).
const LAV_CURRENT: c_uint = 2;
/// la_objopen: report bindings to this object.
const LA_FLG_BINDTO: c_uint = 0x01;
/// The default link-map namespace.
const LM_ID_BASE: libc::Lmid_t = 0;

/// The start of glibc's `struct link_map` (the part <link.h> makes public).
#[repr(C)]
pub struct LinkMap {
    l_addr: usize,
    l_name: *const c_char,
    l_ld: *const Dyn,
    l_next: *const LinkMap,
    l_prev: *const LinkMap,
}

/// `Elf64_Dyn`.
#[repr(C)]
struct Dyn {
    d_tag: i64,
    d_val: u64,
}

const DT_NULL: i64 = 0;
const DT_HASH: i64 = 4;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_STRSZ: i64 = 10;
const DT_GNU_HASH: i64 = 0x6fff_fef5;
const SHN_UNDEF: u16 = 0;
const STT_FUNC: u8 = 2;

/// The intercepted functions (the shim's `Func`, in its order).
const NAMES: [&[u8]; 11] = [
    b"aclrtIpcMemGetExportKey",
    b"aclrtIpcMemSetImportPid",
    b"aclrtIpcMemImportPidInterServer",
    b"aclrtIpcMemImportByKey",
    b"aclrtIpcMemSetAttr",
    b"aclrtIpcMemClose",
    b"aclrtDeviceGetBareTgid",
    b"aclrtMalloc",
    b"aclrtMallocAlign32",
    b"aclrtMallocCached",
    b"aclrtFree",
];
/// Every name starts with it: the cheap test made for every binding in the process.
const PREFIX: &[u8] = b"aclrt";
/// The shim's file name starts with it (a preloaded path, or a dependency found by name).
const SHIM_NAME: &[u8] = b"libacl_ipc_guard.so";
/// This module's own file name starts with it.
const SELF_NAME: &[u8] = b"libacl_ipc_guard_audit";

/// The shim's link_map (also its cookie), 0 while no shim is loaded.
static SHIM: AtomicUsize = AtomicUsize::new(0);
/// The shim's address of each name: 0 not looked up yet, `NOT_FOUND`, or the address.
static SHIM_ADDR: [AtomicUsize; 11] = [const { AtomicUsize::new(0) }; 11];
const NOT_FOUND: usize = usize::MAX;

/// ld.so asks which interface version we speak; 0 would unload us.
#[no_mangle]
pub extern "C" fn la_version(version: c_uint) -> c_uint {
    version.min(LAV_CURRENT)
}

/// Called for each object loaded (the program, preloads, dependencies, dlopen).
///
/// # Safety
/// Called by ld.so with a valid link_map and cookie.
#[no_mangle]
pub unsafe extern "C" fn la_objopen(
    map: *mut LinkMap,
    lmid: libc::Lmid_t,
    cookie: *mut usize,
) -> c_uint {
    if map.is_null() || lmid != LM_ID_BASE {
        return 0;
    }
    if !cookie.is_null() {
        // The link_map is the cookie (ld.so's default too): la_symbind64 then knows the
        // objects on both sides of a binding.
        *cookie = map as usize;
    }
    let name = basename((*map).l_name);
    if starts_with(name, SELF_NAME) {
        return 0;
    }
    if starts_with(name, SHIM_NAME) {
        if SHIM
            .compare_exchange(0, map as usize, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            for a in &SHIM_ADDR {
                a.store(0, Ordering::Release);
            }
        }
        return 0;
    }
    LA_FLG_BINDTO
}

/// Called when an object is unloaded: forget the shim if it goes.
///
/// # Safety
/// Called by ld.so with the cookie la_objopen saw.
#[no_mangle]
pub unsafe extern "C" fn la_objclose(cookie: *mut usize) -> c_uint {
    if !cookie.is_null() {
        let map = *cookie;
        if map != 0 && SHIM.load(Ordering::Acquire) == map {
            SHIM.store(0, Ordering::Release);
            for a in &SHIM_ADDR {
                a.store(0, Ordering::Release);
            }
        }
    }
    0
}

/// Called for each binding to an object la_objopen flagged (PLT and bind-now relocations,
/// dlsym results): the address to use instead of the one found.
///
/// # Safety
/// Called by ld.so with a valid symbol, cookies and name.
#[no_mangle]
pub unsafe extern "C" fn la_symbind64(
    sym: *mut libc::Elf64_Sym,
    _ndx: c_uint,
    refcook: *mut usize,
    defcook: *mut usize,
    _flags: *mut c_uint,
    symname: *const c_char,
) -> usize {
    if sym.is_null() {
        return 0;
    }
    let found = (*sym).st_value as usize;
    if symname.is_null() || !cstr_starts_with(symname, PREFIX) {
        return found;
    }
    let Some(idx) = NAMES.iter().position(|n| cstr_eq(symname, n)) else {
        return found;
    };
    let shim = SHIM.load(Ordering::Acquire);
    if shim == 0 || refcook.is_null() || defcook.is_null() {
        return found;
    }
    let (referrer, definer) = (*refcook, *defcook);
    if definer == shim || referrer == shim || referrer == 0 {
        return found;
    }
    // An object that defines the name itself and looks it up elsewhere is forwarding to
    // the next definition (an interposer), or calling its own function: not the program.
    if lookup(referrer as *const LinkMap, symname).is_some() {
        return found;
    }
    match shim_addr(shim, idx) {
        Some(addr) => addr,
        None => found,
    }
}

/// The shim's function `NAMES[idx]`, looked up once.
unsafe fn shim_addr(shim: usize, idx: usize) -> Option<usize> {
    let slot = SHIM_ADDR.get(idx)?;
    let cached = slot.load(Ordering::Acquire);
    let addr = if cached != 0 {
        cached
    } else {
        let name = NAMES.get(idx)?;
        let a = lookup_bytes(shim as *const LinkMap, name).unwrap_or(NOT_FOUND);
        slot.store(a, Ordering::Release);
        a
    };
    (addr != NOT_FOUND).then_some(addr)
}

/// The address of the function `name` (NUL-terminated) the object `map` defines.
unsafe fn lookup(map: *const LinkMap, name: *const c_char) -> Option<usize> {
    let len = cstr_len(name, 256)?;
    lookup_bytes(map, std::slice::from_raw_parts(name as *const u8, len))
}

/// What the dynamic section of an object says about its symbols.
struct Tables {
    base: usize,
    symtab: usize,
    strtab: usize,
    strsz: usize,
    hash: usize,
    gnu_hash: usize,
}

unsafe fn tables(map: *const LinkMap) -> Option<Tables> {
    if map.is_null() || (*map).l_ld.is_null() {
        return None;
    }
    let base = (*map).l_addr;
    let mut t = Tables {
        base,
        symtab: 0,
        strtab: 0,
        strsz: usize::MAX,
        hash: 0,
        gnu_hash: 0,
    };
    // ld.so relocates these entries in place on most architectures (x86_64 included) and
    // leaves them as offsets on some: an address below the load base is an offset.
    let ptr = |v: u64| {
        let v = v as usize;
        if v != 0 && v < base {
            v.wrapping_add(base)
        } else {
            v
        }
    };
    let mut d = (*map).l_ld;
    for _ in 0..4096 {
        let Dyn { d_tag, d_val } = d.read();
        match d_tag {
            DT_NULL => break,
            DT_HASH => t.hash = ptr(d_val),
            DT_GNU_HASH => t.gnu_hash = ptr(d_val),
            DT_SYMTAB => t.symtab = ptr(d_val),
            DT_STRTAB => t.strtab = ptr(d_val),
            DT_STRSZ => t.strsz = d_val as usize,
            _ => {}
        }
        d = d.add(1);
    }
    (t.symtab != 0 && t.strtab != 0 && (t.hash != 0 || t.gnu_hash != 0)).then_some(t)
}

/// The address of the defined function `name` in `map`, through its GNU or SysV hash table.
unsafe fn lookup_bytes(map: *const LinkMap, name: &[u8]) -> Option<usize> {
    let t = tables(map)?;
    let matches = |i: u32| -> Option<usize> {
        let sym = (t.symtab as *const libc::Elf64_Sym).add(i as usize).read();
        if sym.st_shndx == SHN_UNDEF || sym.st_value == 0 || sym.st_info & 0xf != STT_FUNC {
            return None;
        }
        let off = sym.st_name as usize;
        if off >= t.strsz || !cstr_eq((t.strtab + off) as *const c_char, name) {
            return None;
        }
        Some(t.base.wrapping_add(sym.st_value as usize))
    };
    if t.gnu_hash != 0 {
        gnu_lookup(t.gnu_hash, name, matches)
    } else {
        sysv_lookup(t.hash, name, matches)
    }
}

unsafe fn gnu_lookup(
    table: usize,
    name: &[u8],
    matches: impl Fn(u32) -> Option<usize>,
) -> Option<usize> {
    let h = name
        .iter()
        .fold(5381u32, |h, &c| h.wrapping_mul(33).wrapping_add(c as u32));
    let head = table as *const u32;
    let (nbuckets, symoffset, bloom_size, bloom_shift) = (
        head.read(),
        head.add(1).read(),
        head.add(2).read(),
        head.add(3).read(),
    );
    if nbuckets == 0 || bloom_size == 0 {
        return None;
    }
    let bloom = head.add(4) as *const u64;
    let word = bloom.add(((h / 64) % bloom_size) as usize).read();
    let mask = (1u64 << (h % 64)) | (1u64 << (h.wrapping_shr(bloom_shift) % 64));
    if word & mask != mask {
        return None;
    }
    let buckets = bloom.add(bloom_size as usize) as *const u32;
    let chain = buckets.add(nbuckets as usize);
    let mut i = buckets.add((h % nbuckets) as usize).read();
    if i < symoffset {
        return None;
    }
    for _ in 0..1 << 20 {
        let ch = chain.add((i - symoffset) as usize).read();
        if ch | 1 == h | 1 {
            if let Some(a) = matches(i) {
                return Some(a);
            }
        }
        if ch & 1 != 0 {
            break;
        }
        i = i.wrapping_add(1);
    }
    None
}

unsafe fn sysv_lookup(
    table: usize,
    name: &[u8],
    matches: impl Fn(u32) -> Option<usize>,
) -> Option<usize> {
    let h = name.iter().fold(0u32, |h, &c| {
        let h = (h << 4).wrapping_add(c as u32);
        let g = h & 0xf000_0000;
        (h ^ (g >> 24)) & !g
    });
    let head = table as *const u32;
    let (nbucket, nchain) = (head.read(), head.add(1).read());
    if nbucket == 0 {
        return None;
    }
    let bucket = head.add(2);
    let chain = bucket.add(nbucket as usize);
    let mut i = bucket.add((h % nbucket) as usize).read();
    for _ in 0..nchain {
        if i == 0 || i >= nchain {
            break;
        }
        if let Some(a) = matches(i) {
            return Some(a);
        }
        i = chain.add(i as usize).read();
    }
    None
}

/// The part of a path after its last '/' (the whole path if none), without the NUL.
unsafe fn basename<'a>(path: *const c_char) -> &'a [u8] {
    if path.is_null() {
        return &[];
    }
    let len = cstr_len(path, 4096).unwrap_or(0);
    let all = std::slice::from_raw_parts(path as *const u8, len);
    match all.iter().rposition(|&c| c == b'/') {
        Some(slash) => all.get(slash + 1..).unwrap_or(&[]),
        None => all,
    }
}

fn starts_with(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len()) == Some(prefix)
}

/// The length of a C string, if it ends within `max` bytes.
unsafe fn cstr_len(s: *const c_char, max: usize) -> Option<usize> {
    (0..max).find(|&i| *s.add(i) == 0)
}

/// Whether the C string `s` starts with `prefix` (reads no further than a mismatch).
unsafe fn cstr_starts_with(s: *const c_char, prefix: &[u8]) -> bool {
    prefix
        .iter()
        .enumerate()
        .all(|(i, &c)| *s.add(i) as u8 == c)
}

/// Whether the C string `s` is exactly `name`.
unsafe fn cstr_eq(s: *const c_char, name: &[u8]) -> bool {
    cstr_starts_with(s, name) && *s.add(name.len()) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::c_void;

    /// libc's handle and link_map in this test process.
    fn libc_map() -> (*mut c_void, *const LinkMap) {
        unsafe {
            let h = libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
            assert!(!h.is_null());
            let mut map: *mut c_void = std::ptr::null_mut();
            assert_eq!(
                libc::dlinfo(
                    h,
                    libc::RTLD_DI_LINKMAP,
                    &mut map as *mut *mut c_void as *mut c_void
                ),
                0
            );
            (h, map as *const LinkMap)
        }
    }

    #[test]
    fn the_dynamic_symbol_table_gives_what_dlsym_gives() {
        let (h, map) = libc_map();
        for name in ["getpid", "write", "read", "sysconf"] {
            let c = format!("{name}\0");
            let want = unsafe { libc::dlsym(h, c.as_ptr() as *const c_char) } as usize;
            assert_ne!(want, 0, "{name}");
            assert_eq!(
                unsafe { lookup_bytes(map, name.as_bytes()) },
                Some(want),
                "{name}"
            );
            assert_eq!(
                unsafe { lookup(map, c.as_ptr() as *const c_char) },
                Some(want),
                "{name}"
            );
        }
    }

    #[test]
    fn names_not_defined_are_not_found() {
        let (_, map) = libc_map();
        for name in ["aclrtMalloc", "getpi", "getpidx", ""] {
            assert_eq!(
                unsafe { lookup_bytes(map, name.as_bytes()) },
                None,
                "{name}"
            );
        }
        assert_eq!(unsafe { lookup_bytes(std::ptr::null(), b"getpid") }, None);
    }

    #[test]
    fn names_are_compared_whole() {
        let s = c"aclrtMallocCached".as_ptr();
        unsafe {
            assert!(cstr_starts_with(s, PREFIX));
            assert!(cstr_eq(s, b"aclrtMallocCached"));
            assert!(!cstr_eq(s, b"aclrtMalloc"));
            assert!(!cstr_eq(s, b"aclrtMallocCachedX"));
        }
        assert_eq!(NAMES.iter().position(|n| unsafe { cstr_eq(s, n) }), Some(9));
        let path = c"/opt/x/libacl_ipc_guard.so.0".as_ptr();
        assert!(starts_with(unsafe { basename(path) }, SHIM_NAME));
        let own = c"libacl_ipc_guard_audit.so".as_ptr();
        assert!(!starts_with(unsafe { basename(own) }, SHIM_NAME));
        assert!(starts_with(unsafe { basename(own) }, SELF_NAME));
    }

    #[test]
    fn versions_are_never_newer_than_ours() {
        assert_eq!(la_version(1), 1);
        assert_eq!(la_version(2), 2);
        assert_eq!(la_version(7), LAV_CURRENT);
    }
}
