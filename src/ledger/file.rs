//! The ledger directory and file: checked opening, race-free creation, the shared mapping
//! and its process-shared robust mutex.
//!
//! No file descriptor is kept: the file is mapped and closed, so a program that closes
//! descriptors it does not know about cannot break the ledger. The rare operations that
//! need the file again (growing its backing, unlinking it) open it by name and check that
//! the name still refers to the mapped inode.

use super::layout::{Data, Header, Slot, Table, CHUNK, FILE_NAME, FILE_SIZE, MAGIC, SLOTS};
use super::proc::{clock_ns, errno};
use super::LedgerError;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};
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
/// can access.
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
    } else if st.st_mode & 0o077 != 0 {
        return Err(insecure(
            dir,
            format!(
                "is accessible by group or others (mode {:04o}); it must be private (chmod 700)",
                st.st_mode & 0o7777
            ),
        ));
    }
    Ok(fd)
}

/// The mapped ledger file.
pub(crate) struct Map {
    base: NonNull<Table>,
    pub dev: u64,
    pub ino: u64,
}

// SAFETY: the mapping is shared memory; all access to Data goes through the mutex, the
// header is immutable after creation.
unsafe impl Send for Map {}
unsafe impl Sync for Map {}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: base/FILE_SIZE is exactly the mapping made in map_fd.
        unsafe { libc::munmap(self.base.as_ptr().cast(), FILE_SIZE) };
    }
}

fn map_fd(fd: libc::c_int) -> Result<NonNull<Table>, i32> {
    // SAFETY: a fresh shared mapping of a file of at least FILE_SIZE bytes.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            FILE_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(errno());
    }
    NonNull::new(p.cast::<Table>()).ok_or(libc::ENOMEM)
}

static TMP_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Times a lock was recovered from a dead owner (tests only).
#[cfg(test)]
pub(crate) static RECOVERIES: AtomicU32 = AtomicU32::new(0);

/// Opens the ledger file in `dir`, creating it if missing. Several processes may race:
/// each builds a complete file under a private name and hard-links it into place; the
/// first link wins and the others open the winner's file.
pub(crate) fn open_or_create(dir: &Path) -> Result<Map, LedgerError> {
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
        if let Some(map) = create(&dfd, dir, &name)? {
            return Ok(map);
        }
        // Lost the race to another creator: open theirs.
    }
    Err(io(&file, "open", libc::EAGAIN))
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
    if st.st_size as u64 != FILE_SIZE as u64 {
        return Err(LedgerError::Incompatible {
            path: file.to_path_buf(),
            reason: format!(
                "its size is {} bytes where this version expects {} (written by another version?)",
                st.st_size, FILE_SIZE
            ),
        });
    }
    let base = map_fd(fd.0).map_err(|e| io(file, "map", e))?;
    let (dev, ino) = dev_ino(&st);
    let map = Map { base, dev, ino };
    let hdr = map.header();
    if hdr.magic != MAGIC || hdr.actual() != Header::expected() {
        return Err(LedgerError::Incompatible {
            path: file.to_path_buf(),
            reason: "its header does not match this version's layout (written by another version?)"
                .into(),
        });
    }
    Ok(map)
}

/// Builds a complete ledger under a temporary name and links it in. None when another
/// process linked first.
fn create(dfd: &Fd, dir: &Path, name: &CString) -> Result<Option<Map>, LedgerError> {
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

    // SAFETY: fd is our new file.
    unsafe { libc::fchmod(fd.0, 0o600) };
    // SAFETY: fd is our new file.
    if unsafe { libc::ftruncate(fd.0, FILE_SIZE as libc::off_t) } != 0 {
        return Err(io(&file, "size", errno()));
    }
    let st = fstat(fd.0).map_err(|e| io(&file, "stat", e))?;
    let base = map_fd(fd.0).map_err(|e| io(&file, "map", e))?;
    let (dev, ino) = dev_ino(&st);
    let map = Map { base, dev, ino };
    // Space for the header, the tables and the first slots, so that touching them can
    // never raise SIGBUS when /dev/shm fills up.
    // SAFETY: fd is our new file.
    let r = unsafe { libc::posix_fallocate(fd.0, 0, map.slots_end(CHUNK) as libc::off_t) };
    if r != 0 {
        return Err(io(&file, "allocate space for", r));
    }
    // SAFETY: nobody else can see the file yet; the header is ours to write.
    unsafe {
        let t = map.base.as_ptr();
        (*t).hdr.fill();
        let r = init_robust_mutex((*t).hdr.mutex.get());
        if r != 0 {
            return Err(io(&file, "initialise the lock of", r));
        }
        (*t).data.backed = CHUNK as u32;
    }
    // SAFETY: both names are NUL-terminated, dfd is open.
    if unsafe { libc::linkat(dfd.0, tmp_name.as_ptr(), dfd.0, name.as_ptr(), 0) } != 0 {
        return match errno() {
            libc::EEXIST => Ok(None),
            e => Err(io(&file, "link into place", e)),
        };
    }
    Ok(Some(map))
}

/// Initialises a process-shared, robust, error-checking mutex in place.
unsafe fn init_robust_mutex(m: *mut libc::pthread_mutex_t) -> i32 {
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

/// Holds the ledger lock; gives access to the shared data.
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

impl Guard<'_> {
    pub fn data(&mut self) -> &mut Data {
        // SAFETY: the mutex is held, so no other thread or process touches Data; the
        // reference does not outlive the guard.
        unsafe { &mut *ptr::addr_of_mut!((*self.map.base.as_ptr()).data) }
    }

    pub fn map(&self) -> &Map {
        self.map
    }
}

impl Map {
    /// Byte offset in the file of the end of slot `n` (`n == 0`: the start of the slots).
    fn slots_end(&self, n: usize) -> usize {
        let t = self.base.as_ptr();
        // SAFETY: only computes an address inside the mapping.
        let slots = unsafe { ptr::addr_of!((*t).data.slots) } as usize - t as usize;
        slots + n.min(SLOTS) * std::mem::size_of::<Slot>()
    }

    fn header(&self) -> &Header {
        // SAFETY: the header is written before the file becomes visible and never again.
        unsafe { &*ptr::addr_of!((*self.base.as_ptr()).hdr) }
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        // SAFETY: in bounds of the mapping.
        unsafe { (*ptr::addr_of!((*self.base.as_ptr()).hdr.mutex)).get() }
    }

    /// Takes the lock. A holder that died is recovered from (the mutex is made consistent
    /// and the data repaired); a holder that keeps it longer than LOCK_TIMEOUT makes this
    /// fail with ETIMEDOUT.
    pub fn lock(&self) -> Result<Guard<'_>, i32> {
        let m = self.mutex();
        // SAFETY: m is an initialised process-shared mutex in our mapping.
        let mut r = unsafe { libc::pthread_mutex_trylock(m) };
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

    /// Gives file space to slots `[0, n)`. Opens the file by name; false when the name no
    /// longer refers to this mapping (the file was retired).
    pub fn back_slots(&self, dir: &Path, n: usize) -> Result<bool, LedgerError> {
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
        let (from, to) = (self.slots_end(0), self.slots_end(n));
        // SAFETY: fd is the mapped file.
        let r =
            unsafe { libc::posix_fallocate(fd.0, from as libc::off_t, (to - from) as libc::off_t) };
        if r != 0 {
            return Err(io(&file, "allocate space for", r));
        }
        Ok(true)
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
