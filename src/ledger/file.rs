//! The ledger directory and file: checked opening, race-free creation, the shared mapping
//! and its process-shared robust mutex.
//!
//! One descriptor per process is kept open on the file: it carries the process's
//! liveness lock (an open-file-description lock on one byte past the end of the file,
//! released by the kernel when the process dies, whatever pid namespace it lives in) and
//! serves to grow the file. Unlinking goes by name, checked against the mapped inode.
//!
//! The liveness lock answers "is it alive?" exactly but costs a system call per question.
//! The liveness words (`Live` in format.rs) answer "alive" without one: a thread of the
//! process keeps the entry's robust mutex locked, and a thread id in the mutex's word
//! means that thread, hence its process, has not exited (see `Map::alive_by_word`), as
//! long as the thread keeps glibc's robust list: one that replaces it later (its own
//! `set_robust_list`) leaves its id in the word after it dies. So the word is asked only
//! where a wrong "alive" can hide a verdict, never invent one (ledger/mod.rs). Any other
//! word (holder gone, never armed, another owner) sends the question to the lock.

use super::format::{Geometry, Header, IndexEntry, Live, CHUNK, FILE_NAME, LOCK_BASE, POOL_CHUNK};
use super::proc::errno;
use super::table::Tables;
use super::LedgerError;
use crate::clock::clock_ns;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// How long a locker waits for a holder before giving up on the call (a holder keeps the
/// lock for microseconds; waiting this long means it is stopped, e.g. in a debugger).
pub(crate) const LOCK_TIMEOUT: Duration = Duration::from_secs(1);

struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: the descriptor is owned by this value.
        unsafe { libc::close(self.0) };
    }
}

fn cstring(path: &Path) -> Result<CString, LedgerError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| LedgerError::Io {
        path: path.to_path_buf(),
        op: "use the path",
        errno: libc::EINVAL,
    })
}

fn io(path: &Path, op: &'static str, errno: i32) -> LedgerError {
    LedgerError::Io {
        path: path.to_path_buf(),
        op,
        errno,
    }
}

fn insecure(path: &Path, reason: String) -> LedgerError {
    LedgerError::Insecure {
        path: path.to_path_buf(),
        reason,
    }
}

fn fstat(fd: libc::c_int) -> Result<libc::stat, i32> {
    // SAFETY: zeroed stat is a valid out-buffer.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) == 0 {
            Ok(st)
        } else {
            Err(errno())
        }
    }
}

/// Device and inode (their types differ between architectures).
#[allow(clippy::unnecessary_cast)]
fn dev_ino(st: &libc::stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

fn euid() -> libc::uid_t {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() }
}

/// Opens the ledger directory, creating it (mode 0700) if missing. Refuses a symbolic
/// link, a non-directory, a directory owned by another user or one that group or others
/// can write to (0755 and 0750, as `mkdir` leaves them, are fine: the file inside is
/// 0600).
fn open_dir(dir: &Path, create: bool) -> Result<Fd, LedgerError> {
    let c = cstring(dir)?;
    let mut created = false;
    if create {
        // SAFETY: c is NUL-terminated.
        if unsafe { libc::mkdir(c.as_ptr(), 0o700) } == 0 {
            created = true;
        } else {
            let e = errno();
            if e != libc::EEXIST {
                return Err(io(dir, "create the directory", e));
            }
        }
    }
    // SAFETY: zeroed stat is a valid out-buffer; c is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::lstat(c.as_ptr(), &mut st) } == 0
        && st.st_mode & libc::S_IFMT == libc::S_IFLNK
    {
        return Err(insecure(dir, "is a symbolic link".into()));
    }
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: c is NUL-terminated.
    let fd = unsafe { libc::open(c.as_ptr(), flags) };
    if fd < 0 {
        return Err(match errno() {
            libc::ELOOP => insecure(dir, "is a symbolic link".into()),
            libc::ENOTDIR => insecure(dir, "is not a directory".into()),
            e => io(dir, "open the directory", e),
        });
    }
    let fd = Fd(fd);
    let st = fstat(fd.0).map_err(|e| io(dir, "stat the directory", e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(insecure(dir, "is not a directory".into()));
    }
    if st.st_uid != euid() {
        return Err(insecure(
            dir,
            format!(
                "is owned by uid {}, not by this user (uid {})",
                st.st_uid,
                euid()
            ),
        ));
    }
    if created {
        // The umask may have taken bits away; 0700 is what the ledger needs.
        // SAFETY: fd is a directory we own.
        unsafe { libc::fchmod(fd.0, 0o700) };
    } else if st.st_mode & 0o022 != 0 {
        return Err(insecure(
            dir,
            format!(
                "is writable by group or others (mode {:04o}), so another user could replace the ledger (chmod go-w)",
                st.st_mode & 0o7777
            ),
        ));
    }
    Ok(fd)
}

/// The mapped ledger file and this process's descriptor on it.
pub(crate) struct Map {
    base: NonNull<u8>,
    pub geo: Geometry,
    pub dev: u64,
    pub ino: u64,
    /// The descriptor holding this process's liveness lock; -1 once given up (a fork
    /// child gives up its parent's).
    fd: AtomicI32,
    /// The liveness word this process holds in this file: attach entry << 32 | the
    /// holder's thread id; 0 when none.
    armed: AtomicU64,
    /// The process that mapped the file (a fork child inherits the mapping and the values
    /// of `armed` and `fd`, not the word or the right to give up the lock).
    owner_pid: i32,
    /// A thread of this process took a liveness mutex of this file: the mapping is then
    /// never unmapped, since that thread's robust list (glibc's, and the kernel's walk of
    /// it when the thread exits) may run through the mutex for as long as it lives. The
    /// mutex is never given back from user space (`disarm`).
    stranded: AtomicBool,
}

// SAFETY: the mapping is shared memory; all access to the tables goes through the mutex,
// the header is immutable after creation.
unsafe impl Send for Map {}
unsafe impl Sync for Map {}

impl Drop for Map {
    fn drop(&mut self) {
        self.disarm();
        if self.stranded.load(Ordering::Relaxed) {
            // The mapping stays, and with it a reference to the descriptor's open file
            // description, which would keep this process's liveness lock: give it up.
            if self.mine() && self.fd() >= 0 {
                let mut l = lock_req(libc::F_UNLCK, 0);
                l.l_len = 0; // every entry's byte, to the end
                             // SAFETY: a valid flock request on our descriptor.
                unsafe { libc::fcntl(self.fd(), libc::F_OFD_SETLK, &mut l) };
            }
        } else {
            // SAFETY: base/file_size is exactly the mapping made in map_fd.
            unsafe { libc::munmap(self.base.as_ptr().cast(), self.geo.file_size) };
        }
        self.close_fd();
    }
}

fn map_fd(fd: libc::c_int, len: usize) -> Result<NonNull<u8>, i32> {
    // SAFETY: a fresh shared mapping of a file of at least `len` bytes.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(errno());
    }
    NonNull::new(p.cast::<u8>()).ok_or(libc::ENOMEM)
}

static TMP_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Times a lock was recovered from a dead owner (tests only).
#[cfg(test)]
pub(crate) static RECOVERIES: AtomicU32 = AtomicU32::new(0);

/// Opens the ledger file in `dir`, creating it for `keys` keys if missing. Several
/// processes may race: each builds a complete file under a private name and hard-links it
/// into place; the first link wins and the others open the winner's file (whose capacity
/// then holds for everyone).
pub(crate) fn open_or_create(dir: &Path, keys: usize) -> Result<Map, LedgerError> {
    let dfd = open_dir(dir, true)?;
    let file = dir.join(FILE_NAME);
    let name = cstring(Path::new(FILE_NAME))?;
    for _ in 0..64 {
        let flags = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: name is NUL-terminated; dfd is open.
        let fd = unsafe { libc::openat(dfd.0, name.as_ptr(), flags) };
        if fd >= 0 {
            return open_existing(Fd(fd), &file);
        }
        match errno() {
            libc::ENOENT => {}
            libc::ELOOP => return Err(insecure(&file, "is a symbolic link".into())),
            e => return Err(io(&file, "open", e)),
        }
        if let Some(map) = create(&dfd, dir, &name, keys)? {
            return Ok(map);
        }
        // Lost the race to another creator: open theirs.
    }
    Err(io(&file, "open", libc::EAGAIN))
}

/// Reads and checks the header of an open ledger file: its geometry.
fn read_geometry(fd: &Fd, file: &Path, size: u64) -> Result<Geometry, LedgerError> {
    let incompatible = |reason: String| LedgerError::Incompatible {
        path: file.to_path_buf(),
        reason,
    };
    // SAFETY: a zeroed Header is a valid out-buffer (plain integers and a mutex).
    let mut h: Header = unsafe { std::mem::zeroed() };
    let want = std::mem::size_of::<Header>();
    // SAFETY: h is `want` bytes of writable memory.
    let n = unsafe { libc::pread(fd.0, ptr::addr_of_mut!(h).cast(), want, 0) };
    if n != want as isize {
        return Err(incompatible(format!(
            "it is {size} bytes long, too short for a ledger header (not a ledger, or cut short)"
        )));
    }
    let g = Geometry::of_header(&h).ok_or_else(|| {
        incompatible(
            "its header does not match this version's layout (written by another version, or damaged)"
                .into(),
        )
    })?;
    if size != g.file_size as u64 {
        return Err(incompatible(format!(
            "its size is {size} bytes where its header says {}",
            g.file_size
        )));
    }
    Ok(g)
}

fn open_existing(fd: Fd, file: &Path) -> Result<Map, LedgerError> {
    let st = fstat(fd.0).map_err(|e| io(file, "stat", e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(insecure(file, "is not a regular file".into()));
    }
    if st.st_uid != euid() {
        return Err(insecure(
            file,
            format!(
                "is owned by uid {}, not by this user (uid {})",
                st.st_uid,
                euid()
            ),
        ));
    }
    if st.st_mode & 0o077 != 0 {
        return Err(insecure(
            file,
            format!(
                "is accessible by group or others (mode {:04o})",
                st.st_mode & 0o7777
            ),
        ));
    }
    let geo = read_geometry(&fd, file, st.st_size as u64)?;
    let base = map_fd(fd.0, geo.file_size).map_err(|e| io(file, "map", e))?;
    let (dev, ino) = dev_ino(&st);
    Ok(Map::new(base, geo, dev, ino, fd))
}

/// Builds a complete ledger under a temporary name and links it in. None when another
/// process linked first.
fn create(dfd: &Fd, dir: &Path, name: &CString, keys: usize) -> Result<Option<Map>, LedgerError> {
    // SAFETY: no preconditions.
    let pid = unsafe { libc::getpid() };
    let mut tmp = None;
    for _ in 0..16 {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let t = format!(
            ".{FILE_NAME}.{pid}.{}.{n}.tmp",
            clock_ns(libc::CLOCK_MONOTONIC)
        );
        let c = cstring(Path::new(&t))?;
        let flags =
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: c is NUL-terminated; dfd is open.
        let fd = unsafe { libc::openat(dfd.0, c.as_ptr(), flags, 0o600 as libc::c_uint) };
        if fd >= 0 {
            tmp = Some((Fd(fd), c));
            break;
        }
        let e = errno();
        if e != libc::EEXIST {
            return Err(io(&dir.join(t), "create", e));
        }
    }
    let Some((fd, tmp_name)) = tmp else {
        return Err(io(dir, "create a temporary file in", libc::EEXIST));
    };
    // Whatever happens next, the temporary name goes away.
    struct Unlink<'a>(&'a Fd, &'a CString);
    impl Drop for Unlink<'_> {
        fn drop(&mut self) {
            // SAFETY: both are valid; failure leaves a stray temporary file only.
            unsafe { libc::unlinkat(self.0 .0, self.1.as_ptr(), 0) };
        }
    }
    let _unlink = Unlink(dfd, &tmp_name);
    let file = dir.join(FILE_NAME);
    let geo = Geometry::new(keys);

    // SAFETY: fd is our new file.
    unsafe { libc::fchmod(fd.0, 0o600) };
    // SAFETY: fd is our new file.
    if unsafe { libc::ftruncate(fd.0, geo.file_size as libc::off_t) } != 0 {
        return Err(io(&file, "size", errno()));
    }
    // Space for the header, the tables, the first slots and pool entries, so that
    // touching them can never raise SIGBUS when /dev/shm fills up.
    for (from, to) in [
        (0, geo.slots_end(CHUNK)),
        (geo.pool_end(0), geo.pool_end(POOL_CHUNK)),
    ] {
        // SAFETY: fd is our new file.
        let r =
            unsafe { libc::posix_fallocate(fd.0, from as libc::off_t, (to - from) as libc::off_t) };
        if r != 0 {
            return Err(io(&file, "allocate space for", r));
        }
    }
    let st = fstat(fd.0).map_err(|e| io(&file, "stat", e))?;
    let base = map_fd(fd.0, geo.file_size).map_err(|e| io(&file, "map", e))?;
    let (dev, ino) = dev_ino(&st);
    let map = Map::new(base, geo, dev, ino, Fd(-1));
    // SAFETY: nobody else can see the file yet; the header is ours to write.
    unsafe {
        let h = &mut *map.base.as_ptr().cast::<Header>();
        geo.fill(h);
        let r = init_robust_mutex(h.mutex.get());
        if r != 0 {
            return Err(io(&file, "initialise the lock of", r));
        }
        for slot in 0..geo.attach as u32 {
            if let Some(l) = map.live(slot) {
                // A failure leaves a word this version never arms (see `arm`).
                init_robust_mutex(l.mutex.get());
            }
        }
        let t = Tables::at(map.base.as_ptr(), &geo);
        t.c.backed = CHUNK as u32;
        t.c.pool_backed = POOL_CHUNK as u32;
    }
    // SAFETY: both names are NUL-terminated, dfd is open.
    if unsafe { libc::linkat(dfd.0, tmp_name.as_ptr(), dfd.0, name.as_ptr(), 0) } != 0 {
        return match errno() {
            libc::EEXIST => Ok(None),
            e => Err(io(&file, "link into place", e)),
        };
    }
    // The descriptor now serves the file under its real name.
    map.fd.store(fd.0, Ordering::Relaxed);
    std::mem::forget(fd);
    Ok(Some(map))
}

/// Initialises a process-shared, robust, error-checking mutex in place.
unsafe fn init_robust_mutex(m: *mut libc::pthread_mutex_t) -> i32 {
    // SAFETY (all): attr is initialised before use and destroyed after; m is writable.
    unsafe {
        let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
        let mut r = libc::pthread_mutexattr_init(&mut attr);
        if r != 0 {
            return r;
        }
        r = libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
        if r == 0 {
            r = libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
        }
        if r == 0 {
            // A thread that locks again (from a signal handler, say) gets EDEADLK at once
            // instead of waiting for the timeout.
            r = libc::pthread_mutexattr_settype(&mut attr, libc::PTHREAD_MUTEX_ERRORCHECK);
        }
        if r == 0 {
            r = libc::pthread_mutex_init(m, &attr);
        }
        libc::pthread_mutexattr_destroy(&mut attr);
        r
    }
}

/// The kernel's robust-futex bits in a mutex word (linux/futex.h).
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;

/// Byte offset of glibc's `__kind` in `pthread_mutex_t` (x86_64 and aarch64: after
/// `__lock`, `__count`, `__owner`, `__nusers`).
const KIND_OFFSET: usize = 16;

/// What this process learnt of glibc's robust mutexes (`probe_words`): 0 not yet, 1 the
/// liveness words cannot be used here, else 1 << 63 | list offset << 32 | kind.
static WORDS: AtomicU64 = AtomicU64::new(0);

/// How glibc lays out the ledger's mutexes, as learnt by `probe_words`.
#[derive(Clone, Copy)]
struct Words {
    /// The `__kind` glibc writes for them (process-shared, robust, error-checking).
    kind: i32,
    /// Where in a mutex the entry of a thread's robust list is (what the list points to).
    list_off: usize,
}

/// The first word (`__lock`) of a mutex, as the kernel's robust-futex code sees it.
fn word_of(m: *mut libc::pthread_mutex_t) -> &'static AtomicU32 {
    // SAFETY: a pthread_mutex_t is at least 4-aligned and 40 bytes long; the word is only
    // read and compare-exchanged atomically here (glibc and the kernel do the same).
    unsafe { &*m.cast::<AtomicU32>() }
}

fn kind_of(m: *mut libc::pthread_mutex_t) -> i32 {
    // SAFETY: in bounds of the mutex, 4-aligned; read atomically as above.
    unsafe { (*m.cast::<u8>().add(KIND_OFFSET).cast::<AtomicI32>()).load(Ordering::Relaxed) }
}

fn gettid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// The first entry of the robust list the kernel has for the calling thread (what it
/// walks when the thread exits); None when the thread has none.
fn kernel_list_first() -> Option<usize> {
    let mut head: *mut libc::c_void = ptr::null_mut();
    let mut len: libc::size_t = 0;
    // SAFETY: the query writes to the two locals only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            0,
            ptr::addr_of_mut!(head),
            ptr::addr_of_mut!(len),
        )
    };
    if r != 0 || head.is_null() {
        return None;
    }
    // SAFETY: the head is this thread's `struct robust_list_head` (in glibc's thread
    // descriptor), whose first field is the pointer to the first entry.
    Some(unsafe { ptr::read_volatile(head.cast::<usize>()) })
}

/// How the ledger's mutexes are laid out, when liveness words hold here: glibc keeps the
/// owner's thread id in the mutex's first word, and a mutex this thread locks is first on
/// the robust list the kernel has for the thread (both checked on a private mutex locked
/// and unlocked once per process). None: every liveness question goes to the liveness
/// lock, as before liveness words existed.
fn words() -> Option<Words> {
    if cfg!(not(target_pointer_width = "64")) {
        // KIND_OFFSET is the 64-bit layout's.
        return None;
    }
    let mut w = WORDS.load(Ordering::Relaxed);
    if w == 0 {
        w = match probe_words() {
            Some(p) => 1 << 63 | (p.list_off as u64) << 32 | u64::from(p.kind as u32),
            None => 1,
        };
        WORDS.store(w, Ordering::Relaxed);
    }
    (w >> 63 == 1).then_some(Words {
        kind: w as u32 as i32,
        list_off: (w >> 32 & 0xff) as usize,
    })
}

fn probe_words() -> Option<Words> {
    // SAFETY (all): a zeroed mutex initialised, locked, unlocked and destroyed in place.
    unsafe {
        let mut m: libc::pthread_mutex_t = std::mem::zeroed();
        let mp = ptr::addr_of_mut!(m);
        if init_robust_mutex(mp) != 0 {
            return None;
        }
        let kind = kind_of(mp);
        let mut found = None;
        if libc::pthread_mutex_trylock(mp) == 0 {
            let off = kernel_list_first().map(|first| first.wrapping_sub(mp as usize));
            let own = word_of(mp).load(Ordering::Relaxed) & FUTEX_TID_MASK == gettid();
            libc::pthread_mutex_unlock(mp);
            let freed = word_of(mp).load(Ordering::Relaxed) == 0;
            let size = std::mem::size_of::<libc::pthread_mutex_t>();
            if let Some(off) = off.filter(|&o| o < size && own && freed) {
                found = Some(Words {
                    kind,
                    list_off: off,
                });
            }
        }
        libc::pthread_mutex_destroy(mp);
        found
    }
}

/// Holds the ledger lock; gives access to the shared tables.
pub(crate) struct Guard<'a> {
    map: &'a Map,
    /// The previous holder died with the lock held; the data was repaired.
    pub recovered: bool,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // SAFETY: this guard holds the mutex.
        unsafe { libc::pthread_mutex_unlock(self.map.mutex()) };
    }
}

impl<'a> Guard<'a> {
    pub fn data(&mut self) -> Tables<'_> {
        // SAFETY: the mutex is held, so no other thread or process touches the tables;
        // the borrow does not outlive the guard.
        unsafe { Tables::at(self.map.base.as_ptr(), &self.map.geo) }
    }

    pub fn map(&self) -> &'a Map {
        self.map
    }
}

/// Tries to take a held ledger mutex again for a short while (about the time a holder
/// keeps it) before the caller sleeps on it. glibc's robust mutexes do not spin: a thread
/// that finds one held sleeps in the kernel at once, and the holder's unlock must then wake
/// it with a system call (a futex shared between processes, which the kernel looks up by
/// page: both about a microsecond on this project's VM). With threads of one process on
/// two cores taking turns at the ledger, that made 8 exporting threads 2.7-5x one.
/// Only `pthread_mutex_trylock`, with pauses between tries, so that checkers that follow
/// the pthread calls see nothing new, and the tries leave the holder's line alone most of
/// the time. Returns what the last try returned (EBUSY: still held).
fn spin_for(m: *mut libc::pthread_mutex_t) -> i32 {
    /// Tries, and pauses between two tries: about 2 µs in all on x86 (a pause is some
    /// 40-140 cycles), as long as std's mutex spins before it sleeps.
    const TRIES: u32 = 16;
    const PAUSES: u32 = 8;
    let mut r = libc::EBUSY;
    for _ in 0..TRIES {
        for _ in 0..PAUSES {
            std::hint::spin_loop();
        }
        // SAFETY: m is an initialised process-shared mutex in our mapping.
        r = unsafe { libc::pthread_mutex_trylock(m) };
        if r != libc::EBUSY {
            break;
        }
    }
    r
}

/// An OFD lock request on the liveness byte of attach entry `slot`.
fn lock_req(kind: libc::c_int, slot: u32) -> libc::flock {
    // SAFETY: flock is plain integers.
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = kind as libc::c_short;
    l.l_whence = libc::SEEK_SET as libc::c_short;
    l.l_start = (LOCK_BASE + u64::from(slot)) as libc::off_t;
    l.l_len = 1;
    l
}

impl Map {
    fn new(base: NonNull<u8>, geo: Geometry, dev: u64, ino: u64, fd: Fd) -> Map {
        let map = Map {
            base,
            geo,
            dev,
            ino,
            fd: AtomicI32::new(fd.0),
            armed: AtomicU64::new(0),
            // SAFETY: no preconditions.
            owner_pid: unsafe { libc::getpid() },
            stranded: AtomicBool::new(false),
        };
        std::mem::forget(fd);
        // Learnt once per process, before the first question that needs it.
        words();
        map
    }

    /// A prefetch of the index entry where `fp`'s probe starts (see `Ledger::prefetch`).
    #[inline]
    pub fn prefetch_index(&self, fp: &[u8; 8]) {
        let at = self.geo.off_index
            + super::table::home_in(fp, self.geo.index) * std::mem::size_of::<IndexEntry>();
        // wrapping_add: only an address, never dereferenced here.
        super::table::prefetch(self.base.as_ptr().wrapping_add(at));
    }

    fn header(&self) -> &Header {
        // SAFETY: the header is written before the file becomes visible and never again.
        unsafe { &*self.base.as_ptr().cast::<Header>() }
    }

    /// Whether key slot `body` holds `fp` and no importer was ever recorded in it (none in
    /// its chain, none dropped for want of room), read without the ledger's lock: then an
    /// `open_importers` question about it can only answer "none". The two words are
    /// stored with Release by `Tables::add_importer` (under the lock) and read here with
    /// Acquire; an import recorded after the read is one the locked question, asked at
    /// that moment, would not have seen either. False: ask under the lock.
    pub fn slot_never_imported(&self, body: u32, fp: &[u8; 8]) -> bool {
        use super::format::Slot;
        use std::mem::{offset_of, size_of};
        if body as usize >= self.geo.keys {
            return false;
        }
        let at = self.geo.off_slots + body as usize * size_of::<Slot>();
        // SAFETY: a slot of the mapping (`body` is below the capacity, and a slot this
        // process recorded an export in has file space); its words are naturally aligned
        // (slots are 8-aligned, `Slot` is `repr(C)`), and the three read here are only
        // read atomically without the lock. Nothing is written.
        unsafe {
            let slot = self.base.as_ptr().add(at);
            let word = |off: usize| AtomicU32::from_ptr(slot.add(off).cast::<u32>());
            let imp_head = word(offset_of!(Slot, imp_head));
            let imp_dropped = word(offset_of!(Slot, imp_dropped));
            let key = AtomicU64::from_ptr(slot.add(offset_of!(Slot, fp)).cast::<u64>());
            crate::valgrind::benign_atomic(imp_head);
            crate::valgrind::benign_atomic(imp_dropped);
            crate::valgrind::benign_atomic(key);
            imp_head.load(Ordering::Acquire) == 0
                && imp_dropped.load(Ordering::Acquire) == 0
                && key.load(Ordering::Relaxed) == u64::from_ne_bytes(*fp)
        }
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.header().mutex.get()
    }

    fn fd(&self) -> libc::c_int {
        self.fd.load(Ordering::Relaxed)
    }

    /// Gives up this process's descriptor (and with it the liveness lock it holds
    /// through it). A fork child calls it for the descriptor it inherited, which is its
    /// parent's open file description: keeping it would keep the parent's lock alive.
    pub fn close_fd(&self) {
        let fd = self.fd.swap(-1, Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: the descriptor was ours.
            unsafe { libc::close(fd) };
        }
    }

    /// Opens a descriptor of this process's own on the file (after `close_fd`). False
    /// when the name no longer leads to this mapping's file.
    #[cfg(test)]
    pub fn reopen_fd(&self, dir: &Path) -> Result<bool, LedgerError> {
        let file = dir.join(FILE_NAME);
        let c = cstring(&file)?;
        let flags = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: c is NUL-terminated.
        let fd = unsafe { libc::open(c.as_ptr(), flags) };
        if fd < 0 {
            return match errno() {
                libc::ENOENT => Ok(false),
                e => Err(io(&file, "open", e)),
            };
        }
        let fd = Fd(fd);
        let st = fstat(fd.0).map_err(|e| io(&file, "stat", e))?;
        if dev_ino(&st) != (self.dev, self.ino) {
            return Ok(false);
        }
        self.close_fd();
        self.fd.store(fd.0, Ordering::Relaxed);
        std::mem::forget(fd);
        Ok(true)
    }

    /// Takes the liveness lock of attach entry `slot` for this process; false when
    /// another process holds it (or there is no descriptor).
    pub fn take_liveness(&self, slot: u32) -> bool {
        let mut l = lock_req(libc::F_WRLCK, slot);
        // SAFETY: a valid flock request on our descriptor.
        self.fd() >= 0 && unsafe { libc::fcntl(self.fd(), libc::F_OFD_SETLK, &mut l) } == 0
    }

    pub fn drop_liveness(&self, slot: u32) {
        self.disarm();
        let mut l = lock_req(libc::F_UNLCK, slot);
        if self.fd() >= 0 {
            // SAFETY: a valid flock request on our descriptor.
            unsafe { libc::fcntl(self.fd(), libc::F_OFD_SETLK, &mut l) };
        }
    }

    /// Whether some other open file description (another process, or another ledger
    /// handle) holds the liveness lock of `slot`. None when it cannot be told.
    pub fn liveness_held(&self, slot: u32) -> Option<bool> {
        let mut l = lock_req(libc::F_WRLCK, slot);
        if self.fd() < 0 {
            return None;
        }
        // SAFETY: a valid flock request on our descriptor.
        if unsafe { libc::fcntl(self.fd(), libc::F_OFD_GETLK, &mut l) } != 0 {
            return None;
        }
        Some(i32::from(l.l_type) != libc::F_UNLCK)
    }

    /// Whether this process mapped the file (not a fork child that inherited the map).
    fn mine(&self) -> bool {
        // SAFETY: no preconditions.
        self.owner_pid == unsafe { libc::getpid() }
    }

    /// The liveness word of attach entry `slot`.
    fn live(&self, slot: u32) -> Option<&Live> {
        if slot as usize >= self.geo.attach {
            return None;
        }
        let at = self.geo.off_live + slot as usize * std::mem::size_of::<Live>();
        // SAFETY: in bounds of the mapping (the geometry puts attach entries' words there)
        // and 64-aligned; its fields are only accessed atomically or through glibc.
        let l = unsafe { &*self.base.as_ptr().add(at).cast::<Live>() };
        // Read without the ledger's lock (`alive_by_word`, by importers and by this
        // process's log writer) and changed under it: atomics helgrind cannot see as such.
        crate::valgrind::benign_atomic(l);
        Some(l)
    }

    /// Whether the liveness word of `slot` says that the process with `ticket` is alive:
    /// a thread of it holds the mutex. True is exact while the holder keeps glibc's robust
    /// list (the kernel takes the holder's thread id out of the word before the process's
    /// descriptors, hence its liveness lock, are released), which was checked when the word
    /// was taken but cannot be afterwards (module doc); false means "ask the liveness
    /// lock". No system call, no lock.
    ///
    /// The ticket is read before and after the word: whoever takes over the entry clears
    /// it before taking the mutex (`arm`), so a word taken by another process is never
    /// read together with the ticket asked about.
    pub fn alive_by_word(&self, slot: u32, ticket: u64) -> bool {
        if ticket == 0 || words().is_none() {
            return false;
        }
        let Some(l) = self.live(slot) else {
            return false;
        };
        if l.ticket.load(Ordering::Acquire) != ticket {
            return false;
        }
        let held = word_of(l.mutex.get()).load(Ordering::Acquire) & FUTEX_TID_MASK != 0;
        held && l.ticket.load(Ordering::Relaxed) == ticket
    }

    /// Makes sure a live thread of this process holds the liveness word of `slot`, which
    /// this process (`ticket`) has just registered or owns: with the ledger lock held. A
    /// few loads when the word is already held; else the calling thread takes the mutex
    /// and keeps it (the previous holder exited: the word said so). A word that holds
    /// anything else (another process's thread, waiters, a foreign layout) is left alone,
    /// and this process's liveness is then told by its liveness lock only.
    ///
    /// Inline: the common case (this process's holder still holds the word, under this
    /// ticket) is a few loads on every lock of the ledger; anything else is `arm_slow`.
    #[inline]
    pub fn arm(&self, slot: u32, ticket: u64) {
        if let Some(l) = self.live(slot) {
            let mine = self.armed.load(Ordering::Relaxed);
            if mine >> 32 == u64::from(slot)
                && mine as u32 != 0
                && word_of(l.mutex.get()).load(Ordering::Acquire) & FUTEX_TID_MASK == mine as u32
                && l.ticket.load(Ordering::Relaxed) == ticket
            {
                return;
            }
        }
        self.arm_slow(slot, ticket);
    }

    /// `arm` when the word is not simply held already: everything, looked at afresh.
    #[inline(never)]
    fn arm_slow(&self, slot: u32, ticket: u64) {
        let Some(l) = self.live(slot) else {
            return;
        };
        let m = l.mutex.get();
        let w = word_of(m);
        let mine = self.armed.load(Ordering::Relaxed);
        let now = w.load(Ordering::Acquire);
        if mine >> 32 == u64::from(slot) && mine as u32 != 0 {
            if now & FUTEX_TID_MASK == mine as u32 {
                if l.ticket.load(Ordering::Relaxed) != ticket {
                    l.ticket.store(ticket, Ordering::Release);
                }
                return;
            }
            // The holder exited (the kernel released the mutex).
            self.armed.store(0, Ordering::Relaxed);
        } else if mine != 0 {
            self.disarm();
        }
        // Asked only here: a word this process holds (above) was taken with the layout
        // known.
        let Some(layout) = words() else {
            return;
        };
        if l.ticket.load(Ordering::Relaxed) != ticket {
            // Taken over from another process: readers of its ticket must not see this
            // process's holder as its own (the fence orders this store before the word's
            // change below, for whoever reads the word with Acquire).
            l.ticket.store(0, Ordering::Relaxed);
        }
        fence(Ordering::Release);
        if kind_of(m) != layout.kind {
            return;
        }
        // A holder that died left OWNER_DIED and no thread id: give the word back its free
        // state, so that the mutex is taken without the EOWNERDEAD round (nothing it
        // guards needs repair).
        if now == FUTEX_OWNER_DIED
            && w.compare_exchange(FUTEX_OWNER_DIED, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if now != 0 && now != FUTEX_OWNER_DIED {
            return;
        }
        // SAFETY: an initialised process-shared robust mutex in our mapping (its kind
        // checked above).
        let r = unsafe { libc::pthread_mutex_trylock(m) };
        if r != 0 && r != libc::EOWNERDEAD {
            return;
        }
        if r == libc::EOWNERDEAD {
            // SAFETY: we own the mutex in the owner-died state.
            unsafe { libc::pthread_mutex_consistent(m) };
        }
        if kernel_list_first() != Some(m as usize + layout.list_off) {
            // Not on the list the kernel walks when this thread exits (a thread whose
            // robust list is not glibc's): its word could outlive it. Not taken. (Just
            // locked by this thread, its list links are glibc's own.)
            // SAFETY: this thread holds the mutex.
            unsafe { libc::pthread_mutex_unlock(m) };
            return;
        }
        self.stranded.store(true, Ordering::Relaxed);
        crate::valgrind::lock_left_to_kernel(l);
        let tid = w.load(Ordering::Relaxed) & FUTEX_TID_MASK;
        if tid != gettid() {
            // Not this thread's id (a stale cached one?): the kernel would not clear it.
            return;
        }
        l.ticket.store(ticket, Ordering::Release);
        self.armed
            .store(u64::from(slot) << 32 | u64::from(tid), Ordering::Relaxed);
    }

    /// Stops the liveness word this process holds from speaking for it (at detach, and
    /// before the mapping goes): its ticket is cleared, so readers ask the liveness lock.
    /// The mutex itself stays held until its thread exits and the kernel releases it: it
    /// is never unlocked from user space, as glibc would then follow the links it keeps
    /// in the shared file, which any process of the user can overwrite (a crash of the
    /// host); the mapping stays (`stranded`). A fork child that inherited the value of
    /// `armed` (a map `forget_after_fork` could not reach) leaves the parent's word alone.
    pub fn disarm(&self) {
        let mine = self.armed.swap(0, Ordering::Relaxed);
        if mine == 0 || !self.mine() {
            return;
        }
        if let Some(l) = self.live((mine >> 32) as u32) {
            l.ticket.store(0, Ordering::Release);
        }
    }

    /// In a fork child: the liveness word the parent holds is not the child's (glibc
    /// empties the child's robust list), nothing to give back. No allocation.
    pub fn forget_armed(&self) {
        self.armed.store(0, Ordering::Relaxed);
        self.stranded.store(false, Ordering::Relaxed);
    }

    /// Takes the lock. A holder that died is recovered from (the mutex is made consistent
    /// and the data repaired); a holder that keeps it longer than LOCK_TIMEOUT makes this
    /// fail with ETIMEDOUT.
    #[inline]
    pub fn lock(&self) -> Result<Guard<'_>, i32> {
        let m = self.mutex();
        // SAFETY: m is an initialised process-shared mutex in our mapping.
        let r = unsafe { libc::pthread_mutex_trylock(m) };
        if r == 0 {
            return Ok(Guard {
                map: self,
                recovered: false,
            });
        }
        self.lock_slow(m, r)
    }

    /// `lock` when the first try did not simply take the mutex (`r` its answer): held
    /// (spin, then sleep on it), or its holder died (recover).
    #[inline(never)]
    fn lock_slow(&self, m: *mut libc::pthread_mutex_t, mut r: i32) -> Result<Guard<'_>, i32> {
        if r == libc::EBUSY {
            r = spin_for(m);
        }
        if r == libc::EBUSY {
            let now = clock_ns(libc::CLOCK_REALTIME) + LOCK_TIMEOUT.as_nanos() as u64;
            let ts = libc::timespec {
                tv_sec: (now / 1_000_000_000) as libc::time_t,
                tv_nsec: (now % 1_000_000_000) as _,
            };
            loop {
                // SAFETY: as above.
                r = unsafe { libc::pthread_mutex_timedlock(m, &ts) };
                if r != libc::EINTR {
                    break;
                }
            }
        }
        match r {
            0 => Ok(Guard {
                map: self,
                recovered: false,
            }),
            libc::EOWNERDEAD => {
                // SAFETY: we own the mutex in the owner-died state.
                unsafe { libc::pthread_mutex_consistent(m) };
                #[cfg(test)]
                RECOVERIES.fetch_add(1, Ordering::Relaxed);
                let mut g = Guard {
                    map: self,
                    recovered: true,
                };
                g.data().repair();
                Ok(g)
            }
            e => Err(e),
        }
    }

    /// Gives file space to bytes `[from, to)` through this process's descriptor.
    pub fn back(&self, dir: &Path, from: usize, to: usize) -> Result<(), LedgerError> {
        let file = dir.join(FILE_NAME);
        if to <= from {
            return Ok(());
        }
        // SAFETY: fd is the mapped file (or -1, which fails with EBADF).
        let r = unsafe {
            libc::posix_fallocate(self.fd(), from as libc::off_t, (to - from) as libc::off_t)
        };
        if r != 0 {
            return Err(io(&file, "allocate space for", r));
        }
        Ok(())
    }

    /// Unlinks the file's name if it still refers to this mapping. Call with the lock
    /// held: the name only ever changes under the lock of the file it names, so the check
    /// and the unlink cannot be overtaken.
    pub fn unlink_name(&self, dir: &Path) {
        let Ok(dfd) = open_dir(dir, false) else {
            return;
        };
        let Ok(name) = cstring(Path::new(FILE_NAME)) else {
            return;
        };
        // SAFETY: zeroed stat is a valid out-buffer; name is NUL-terminated.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::fstatat(dfd.0, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        if r == 0 && dev_ino(&st) == (self.dev, self.ino) {
            // SAFETY: as above.
            unsafe { libc::unlinkat(dfd.0, name.as_ptr(), 0) };
        }
    }
}
