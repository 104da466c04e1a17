//! The ledger: the cross-process view of each exported IPC key, shared by the processes of
//! one job through a directory (`ACL_IPC_GUARD_LEDGER`), with no daemon.
//!
//! Each process records what it does with a key (export, whitelist, import, close, free)
//! and asks questions whose answers feed the cross-process rules; the rules themselves live
//! elsewhere, this module only stores facts and answers with plain data. Keys are named by
//! their fingerprint; raw keys are never stored.
//!
//! # Storage
//!
//! One file, `<dir>/ledger.v1` (mode 0600, size [`FILE_SIZE`], 8.4 MiB), mapped shared by
//! every process and opened once per process; see `layout.rs` for what is in it. It holds
//! [`KEY_CAPACITY`] keys, each with up to [`WHITELIST_CAPACITY`] whitelisted pids and
//! [`IMPORTER_CAPACITY`] importing processes (more are counted and the answers say so).
//! Only the header, the tables and the first 64 key slots (2 KiB each) get file space up
//! front (about 320 KiB); more is allocated 64 slots at a time as keys accumulate, so that
//! a full `/dev/shm` makes an export fail with an error instead of killing the program
//! with SIGBUS when it touches a page of a sparse file.
//!
//! A process-shared robust mutex in the file serialises every change. Nothing slow happens
//! under it: `/proc` reads for liveness happen after the facts were copied out. A process
//! that dies holding it is recovered from (see [`Ledger`]).
//!
//! # Cost
//!
//! Recording an export, a whitelist, an import, a close or a free is one uncontended lock,
//! a hash probe and a few stores: no system call, no allocation. `import_view` adds one
//! `/proc/<pid>/stat` read (the exporter's liveness), `open_importers` one per importer
//! that has not closed. Growing the file (every 64 new keys) and collecting garbage (table
//! full) are the only slow paths.
//!
//! # Lifetime of a key's record
//!
//! A key is "finished" once its exporter and every importer have closed it. The last
//! 512 finished keys stay in the table, so that a late importer still learns that the
//! exporter closed; older ones are reused first (and any finished key when the file cannot
//! grow). When the table is full, keys whose exporter closed or died and whose importers
//! all died are freed too (one `/proc` read per process named, at most once a second).
//! A key exported again after it closed starts afresh. Keys of a process that exits are
//! kept (a late importer learns that the exporter exited) until the table needs room or
//! the file is removed.
//!
//! # Liveness
//!
//! A process is its pid plus start time ([`ProcId`]); it is alive while `/proc/<pid>/stat`
//! exists with that start time and it is not a zombie. Processes recorded from another pid
//! namespace cannot be checked and count as alive, as do processes `/proc` cannot tell
//! about: the ledger then errs towards never claiming that a process has gone.
//!
//! # Removal
//!
//! Each process registers in the file's attach table on open. [`Ledger::detach`] (at
//! exit) deregisters; when no other live process is attached and no live process is named
//! by a key, the file is marked retired under the lock and unlinked. A process that later
//! finds its file retired (it takes the lock and reads the mark, one memory read per
//! operation) opens or creates the file afresh, so an opener racing with the removal never
//! keeps using an unlinked file. Removing the directory or file by hand while a job runs
//! splits the job between two files; don't.

mod file;
mod layout;
mod proc;
#[cfg(test)]
mod tests;

pub use crate::key::Fp;
pub use layout::{
    ATTACH as ATTACH_CAPACITY, FILE_NAME, FILE_SIZE, IMPORTERS as IMPORTER_CAPACITY,
    SLOTS as KEY_CAPACITY, WHITELIST as WHITELIST_CAPACITY,
};
pub use proc::{clock_ticks_per_sec, is_alive, now_boot_ns, start_ticks_of, ticks_to_ns, ProcId};

use crate::sync::Lock as Mutex;
use file::{Guard, Map};
use layout::{Exported, Who, CHUNK, IMPORTERS, SLOTS};
use proc::{liveness, pid_ns_id, Liveness};
use std::fmt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering::*};

/// Why the ledger could not do something. Every variant names the path concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerError {
    /// A system call failed.
    Io {
        path: PathBuf,
        op: &'static str,
        errno: i32,
    },
    /// The directory or file is not private to this user (symbolic link, wrong owner,
    /// group- or world-accessible, not a directory).
    Insecure { path: PathBuf, reason: String },
    /// The file was written by a version with another layout.
    Incompatible { path: PathBuf, reason: String },
    /// Every key slot holds a key that is still in use; the key is not tracked.
    TableFull { path: PathBuf },
    /// The lock could not be taken (another process holds it for too long: ETIMEDOUT).
    Lock { path: PathBuf, errno: i32 },
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::Io { path, op, errno } => write!(
                f,
                "ledger {}: cannot {op}: {}",
                path.display(),
                std::io::Error::from_raw_os_error(*errno)
            ),
            LedgerError::Insecure { path, reason } => {
                write!(f, "ledger {}: refused: {reason}", path.display())
            }
            LedgerError::Incompatible { path, reason } => {
                write!(f, "ledger {}: incompatible file: {reason}", path.display())
            }
            LedgerError::TableFull { path } => write!(
                f,
                "ledger {}: table full ({KEY_CAPACITY} keys in use); this key is not tracked across processes",
                path.display()
            ),
            LedgerError::Lock { path, errno } => write!(
                f,
                "ledger {}: cannot take the lock: {}",
                path.display(),
                std::io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

impl std::error::Error for LedgerError {}

/// What [`Ledger::record_close`] closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseRole {
    /// This process exported the key; the exporter's close is now recorded.
    Exporter,
    /// This process's import of the key is now recorded as closed.
    Importer,
    /// The key is unknown, or this process has nothing open under it.
    Unknown,
}

/// What an importer needs to know about a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportView {
    pub exporter: ProcId,
    /// False only when the exporter is known to have exited.
    pub exporter_alive: bool,
    /// Exported with flags 0: importers must be whitelisted.
    pub whitelist_mode: bool,
    pub exporter_closed: bool,
    pub memory_freed: bool,
    /// When this process's bare tgid (its pid if the bare tgid is not positive) was first
    /// whitelisted for the key, CLOCK_BOOTTIME ns.
    pub whitelisted_at_ns: Option<u64>,
    /// Some whitelisted pids did not fit in the ledger: "not whitelisted" is then
    /// uncertain.
    pub whitelist_overflow: bool,
    /// Size of the exported range, when the exporter gave one.
    pub size: Option<u64>,
}

/// Importers of a key that have not closed it and are alive (this process excluded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenImporters {
    pub procs: Vec<ProcId>,
    /// Importers that did not fit in the ledger: their state is unknown.
    pub untracked: u32,
}

/// A process's handle on the ledger. `Send + Sync`; one per process is enough.
///
/// Failures: opening fails on a directory or file that is not private to the user, on a
/// file of another layout, or on a system call error; each operation fails only when the
/// lock cannot be taken within a second (a holder stopped in a debugger) or, for
/// `record_export`, when the table is full or file space cannot be allocated. When a
/// process dies holding the lock, the next locker gets EOWNERDEAD, marks the lock
/// consistent and repairs the tables (index, free list, counters); at worst the one key
/// the dead process was updating keeps a half-done change.
///
/// After `fork`, the child must call [`Ledger::after_fork_child`] before it records
/// anything, or it acts as its parent. The shared lock lives in the file, so a parent
/// thread holding it during the fork does not block the child for longer than usual.
///
/// Dropping a `Ledger` unmaps it without deregistering; call [`Ledger::detach`] first
/// when the process is done with it.
pub struct Ledger {
    dir: PathBuf,
    /// The current mapping. Mappings replaced after a retirement are kept in `old` until
    /// the ledger is dropped, since other threads may still be using them.
    cur: AtomicPtr<Map>,
    // Boxed: other threads may hold references into a replaced Map, so it must not move.
    #[allow(clippy::vec_box)]
    old: Mutex<Vec<Box<Map>>>,
    reopen: Mutex<()>,
    pid: AtomicI32,
    bare_tgid: AtomicI32,
    start_ticks: AtomicU64,
    ns: AtomicU64,
}

impl Drop for Ledger {
    fn drop(&mut self) {
        // SAFETY: cur came from Box::into_raw and nobody else can use it now.
        drop(unsafe { Box::from_raw(*self.cur.get_mut()) });
    }
}

/// A retried step of an operation that is not done under one lock.
enum Next {
    Grow(usize),
    Collect(Vec<Who>),
    Full,
}

/// Within `window` ns of `then` (0 = never).
fn recent(then: u64, now: u64, window: u64) -> bool {
    then != 0 && now.saturating_sub(then) < window
}

const RETRY_WINDOW_NS: u64 = 1_000_000_000;

impl Ledger {
    /// Opens (creating if needed) the ledger in `dir` and registers `me`. `dir` is created
    /// with mode 0700 if missing; its parent must exist.
    pub fn open(dir: &Path, me: ProcId) -> Result<Ledger, LedgerError> {
        let ns = pid_ns_id();
        let map = attach(dir, &Who::new(me, ns))?;
        Ok(Ledger {
            dir: dir.to_path_buf(),
            cur: AtomicPtr::new(Box::into_raw(Box::new(map))),
            old: Mutex::new(Vec::new()),
            reopen: Mutex::new(()),
            pid: AtomicI32::new(me.pid),
            bare_tgid: AtomicI32::new(me.bare_tgid),
            start_ticks: AtomicU64::new(me.start_ticks),
            ns: AtomicU64::new(ns),
        })
    }

    /// The ledger file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Who this process is to the ledger.
    pub fn me(&self) -> ProcId {
        self.who().proc_id()
    }

    /// Records the bare tgid once the caller learns it (used for whitelist look-ups and in
    /// later records).
    pub fn set_bare_tgid(&self, bare_tgid: i32) {
        self.bare_tgid.store(bare_tgid, Relaxed);
    }

    /// In a forked child (from a `pthread_atfork` child handler, say): become `me`
    /// (normally `ProcId::current(..)`) and register. Allocation-free unless the attach
    /// table is full.
    pub fn after_fork_child(&self, me: ProcId) -> Result<(), LedgerError> {
        self.pid.store(me.pid, Relaxed);
        self.bare_tgid.store(me.bare_tgid, Relaxed);
        self.start_ticks.store(me.start_ticks, Relaxed);
        self.ns.store(pid_ns_id(), Relaxed);
        let who = self.who();
        let registered = self.lock()?.data().register(&who);
        if !registered {
            register_slow(self.map(), &self.dir, &who)?;
        }
        Ok(())
    }

    /// Records that this process exported `fp` (flags 0 = whitelist mode) for `size`
    /// bytes. A key known to the ledger (the same key exported again after it closed)
    /// starts afresh.
    pub fn record_export(
        &self,
        fp: Fp,
        whitelist_mode: bool,
        size: u64,
    ) -> Result<(), LedgerError> {
        let who = self.who();
        let exported = Exported {
            whitelist_mode,
            size,
        };
        let mut collected = false;
        let mut space_err = None;
        for _ in 0..SLOTS / CHUNK + 4 {
            let (map, next) = {
                let mut g = self.lock()?;
                let d = g.data();
                let may_grow = d.last_space_fail_ns == 0
                    || !recent(d.last_space_fail_ns, now_boot_ns(), RETRY_WINDOW_NS);
                if d.export(fp, who, exported, may_grow) {
                    return Ok(());
                }
                let next = if may_grow && d.needs_backing() {
                    Next::Grow(d.backed as usize + CHUNK)
                } else if !collected
                    && !recent(d.last_fruitless_gc_ns, now_boot_ns(), RETRY_WINDOW_NS)
                {
                    Next::Collect(d.parties())
                } else {
                    Next::Full
                };
                (g.map() as *const Map, next)
            };
            match next {
                Next::Grow(n) => {
                    // SAFETY: mappings live as long as self (see `cur`).
                    let grown = unsafe { &*map }.back_slots(&self.dir, n);
                    let mut g = self.lock()?;
                    if !ptr::eq(g.map(), map) {
                        continue; // retired meanwhile: start again on the new file
                    }
                    match grown {
                        Ok(true) => g.data().set_backed(n),
                        Ok(false) => {
                            return Err(LedgerError::Io {
                                path: self.path(),
                                op: "grow (the file was removed or replaced by hand)",
                                errno: libc::ESTALE,
                            })
                        }
                        Err(e) => {
                            // Make do without growing for a while.
                            g.data().last_space_fail_ns = now_boot_ns().max(1);
                            space_err = Some(e);
                        }
                    }
                }
                Next::Collect(parties) => {
                    collected = true;
                    let dead: Vec<Who> = parties.into_iter().filter(|w| !self.alive(w)).collect();
                    let mut g = self.lock()?;
                    if g.data().collect(&dead) == 0 {
                        g.data().last_fruitless_gc_ns = now_boot_ns().max(1);
                    }
                }
                Next::Full => break,
            }
        }
        Err(space_err.unwrap_or(LedgerError::TableFull { path: self.path() }))
    }

    /// Records that the exporter whitelisted `pids` at `set_ns` (CLOCK_BOOTTIME). Pids not
    /// above 0 are skipped; a pid already on the list keeps its earliest time. Unknown
    /// keys are ignored.
    pub fn record_whitelist(&self, fp: Fp, pids: &[i32], set_ns: u64) -> Result<(), LedgerError> {
        let mut g = self.lock()?;
        if let Some(s) = g.data().slot_mut(&fp) {
            for &pid in pids.iter().filter(|&&p| p > 0) {
                s.add_whitelist(pid, set_ns);
            }
        }
        Ok(())
    }

    /// What the ledger knows about `fp` for an import by this process; None when the key
    /// is unknown. Reads `/proc` once (the exporter's liveness), outside the lock.
    pub fn import_view(&self, fp: Fp) -> Result<Option<ImportView>, LedgerError> {
        let me = self.who();
        let target = if me.bare_tgid > 0 {
            me.bare_tgid
        } else {
            me.pid
        };
        let (exporter, mut view) = {
            let mut g = self.lock()?;
            let Some(s) = g.data().slot(&fp) else {
                return Ok(None);
            };
            let view = ImportView {
                exporter: s.exporter.proc_id(),
                exporter_alive: true,
                whitelist_mode: s.whitelist_mode != 0,
                exporter_closed: s.exporter_closed != 0,
                memory_freed: s.memory_freed != 0,
                whitelisted_at_ns: s.whitelisted_at(target),
                whitelist_overflow: s.wl_dropped != 0,
                size: (s.size != 0).then_some(s.size),
            };
            (s.exporter, view)
        };
        view.exporter_alive = self.exporter_alive(&exporter);
        Ok(Some(view))
    }

    /// Size of the range exported under `fp`, when the ledger knows the key and its size.
    /// No `/proc` read (unlike `import_view`).
    pub fn export_size(&self, fp: Fp) -> Result<Option<u64>, LedgerError> {
        let mut g = self.lock()?;
        Ok(g.data()
            .slot(&fp)
            .and_then(|s| (s.size != 0).then_some(s.size)))
    }

    /// Records that this process imported `fp` (once per process: importing again, or
    /// again after closing, reopens the same entry). Unknown keys are ignored. The caller
    /// counts references itself and calls `record_close` when the last one closes.
    pub fn record_import(&self, fp: Fp) -> Result<(), LedgerError> {
        let who = self.who();
        let mut g = self.lock()?;
        if let Some(s) = g.data().slot_mut(&fp) {
            s.add_importer(&who);
        }
        Ok(())
    }

    /// Records that this process closed `fp`: its open import if it has one, else its
    /// export if it is the exporter.
    pub fn record_close(&self, fp: Fp) -> Result<CloseRole, LedgerError> {
        let who = self.who();
        let mut g = self.lock()?;
        let d = g.data();
        let Some(s) = d.slot_mut(&fp) else {
            return Ok(CloseRole::Unknown);
        };
        let role = if s.close_importer(&who) {
            CloseRole::Importer
        } else if s.exporter.same(&who) && s.exporter_closed == 0 {
            s.exporter_closed = 1;
            CloseRole::Exporter
        } else {
            return Ok(CloseRole::Unknown);
        };
        d.maybe_finish(&fp);
        Ok(role)
    }

    /// Importers of `fp` other than this process that have not closed it and are alive.
    /// Reads `/proc` once per such importer, outside the lock; no allocation when there is
    /// none.
    pub fn open_importers(&self, fp: Fp) -> Result<OpenImporters, LedgerError> {
        let who = self.who();
        let mut found = [Who::default(); IMPORTERS];
        let mut n = 0;
        let untracked = {
            let mut g = self.lock()?;
            let Some(s) = g.data().slot(&fp) else {
                return Ok(OpenImporters::default());
            };
            for w in s.open_importers().filter(|w| !w.same(&who)) {
                found[n] = *w;
                n += 1;
            }
            s.imp_dropped
        };
        let procs = found[..n]
            .iter()
            .filter(|w| self.alive(w))
            .map(Who::proc_id)
            .collect();
        Ok(OpenImporters { procs, untracked })
    }

    /// Records that the exporter freed the memory behind `fp`.
    pub fn record_free(&self, fp: Fp) -> Result<(), LedgerError> {
        let mut g = self.lock()?;
        if let Some(s) = g.data().slot_mut(&fp) {
            s.memory_freed = 1;
        }
        Ok(())
    }

    /// At process exit: deregisters this process, forgets attached processes that died,
    /// and removes the file when no other live process is attached or named by a key
    /// (this one counts as gone). The ledger stays usable: a later operation reopens a
    /// fresh file if this one was removed.
    pub fn detach(&self) -> Result<(), LedgerError> {
        let me = self.who();
        let map = self.map();
        let lock_err = |e| LedgerError::Lock {
            path: self.path(),
            errno: e,
        };
        let (attached, parties) = {
            let mut g = map.lock().map_err(lock_err)?;
            finish_retire(&mut g, &self.dir);
            let d = g.data();
            if d.retired != 0 {
                return Ok(());
            }
            d.unregister(&me);
            if d.attach_overflow != 0 {
                return Ok(());
            }
            let attached: Vec<Who> = d.attached().copied().collect();
            (attached, d.parties())
        };
        let mut dead = Vec::new();
        let mut retire = true;
        for w in attached {
            if self.alive(&w) {
                retire = false;
            } else {
                dead.push(w);
            }
        }
        // A key this process leaves open (exported or imported, never closed) keeps the
        // file: a later importer must still learn that its exporter is gone. The next job
        // collects it.
        if parties.iter().any(|w| w.same(&me)) {
            retire = false;
        }
        if retire {
            retire = !parties
                .iter()
                .filter(|w| !w.same(&me) && !dead.iter().any(|d| d.same(w)))
                .any(|w| self.alive(w));
        }
        let mut g = map.lock().map_err(lock_err)?;
        let d = g.data();
        if d.retired != 0 {
            return Ok(());
        }
        d.forget_attached(&dead);
        if retire && d.attach_overflow == 0 && d.attached().next().is_none() {
            d.retired = 1;
            g.map().unlink_name(&self.dir);
            g.data().retired = 2;
        }
        Ok(())
    }

    fn who(&self) -> Who {
        Who {
            pid: self.pid.load(Relaxed),
            bare_tgid: self.bare_tgid.load(Relaxed),
            start_ticks: self.start_ticks.load(Relaxed),
            ns: self.ns.load(Relaxed),
        }
    }

    fn map(&self) -> &Map {
        // SAFETY: cur always points to a live Map; replaced ones are kept until drop.
        unsafe { &*self.cur.load(Acquire) }
    }

    /// False only when `w` is known to have exited.
    fn alive(&self, w: &Who) -> bool {
        let my_ns = self.ns.load(Relaxed);
        if w.ns != 0 && my_ns != 0 && w.ns != my_ns {
            return true;
        }
        liveness(w.pid, w.start_ticks) != Liveness::Dead
    }

    /// `alive` for the exporter of an import, where a stale "alive" costs at most a missed
    /// `import.source-gone` (the runtime refuses the import anyway): cached briefly.
    fn exporter_alive(&self, w: &Who) -> bool {
        let my_ns = self.ns.load(Relaxed);
        if w.ns != 0 && my_ns != 0 && w.ns != my_ns {
            return true;
        }
        alive_cached(w.pid, w.start_ticks)
    }

    /// Takes the lock of a live (not retired) file, reopening when the current one was
    /// retired.
    fn lock(&self) -> Result<Guard<'_>, LedgerError> {
        for _ in 0..8 {
            let map = self.map();
            let mut g = map.lock().map_err(|e| LedgerError::Lock {
                path: self.path(),
                errno: e,
            })?;
            finish_retire(&mut g, &self.dir);
            if g.data().retired == 0 {
                return Ok(g);
            }
            drop(g);
            self.reopen(map)?;
        }
        Err(LedgerError::Io {
            path: self.path(),
            op: "reopen (retired repeatedly)",
            errno: libc::EAGAIN,
        })
    }

    /// Replaces the retired mapping `stale` by a fresh one (unless another thread did).
    fn reopen(&self, stale: &Map) -> Result<(), LedgerError> {
        let _one = self.reopen.lock();
        let cur = self.cur.load(Acquire);
        if !ptr::eq(cur, stale) {
            return Ok(());
        }
        let fresh = attach(&self.dir, &self.who())?;
        self.cur.store(Box::into_raw(Box::new(fresh)), Release);
        // SAFETY: cur came from Box::into_raw; it stays alive in `old`.
        self.old.lock().push(unsafe { Box::from_raw(cur) });
        Ok(())
    }
}

/// If the previous holder died while retiring the file, finishes the job.
fn finish_retire(g: &mut Guard<'_>, dir: &Path) {
    if g.recovered && g.data().retired == 1 {
        g.map().unlink_name(dir);
        g.data().retired = 2;
    }
}

/// Opens the live ledger file in `dir` and registers `who` in it.
fn attach(dir: &Path, who: &Who) -> Result<Map, LedgerError> {
    let path = || dir.join(FILE_NAME);
    for _ in 0..64 {
        let map = file::open_or_create(dir)?;
        let registered = {
            let mut g = map.lock().map_err(|e| LedgerError::Lock {
                path: path(),
                errno: e,
            })?;
            finish_retire(&mut g, dir);
            if g.data().retired != 0 {
                // Retired, yet its name still leads here: its remover could not unlink it
                // (or the word is corrupt). Unlink it now, under its lock, and start over.
                g.map().unlink_name(dir);
                None
            } else {
                Some(g.data().register(who))
            }
        };
        match registered {
            Some(true) => return Ok(map),
            Some(false) => {
                register_slow(&map, dir, who)?;
                return Ok(map);
            }
            // Retired and unlinked: the name now leads to a fresh file (or none).
            None => std::thread::yield_now(),
        }
    }
    Err(LedgerError::Io {
        path: path(),
        op: "open (retired repeatedly)",
        errno: libc::EAGAIN,
    })
}

/// The attach table is full: forget dead processes and try again; if still full, mark the
/// overflow (the file is then never removed).
fn register_slow(map: &Map, dir: &Path, who: &Who) -> Result<(), LedgerError> {
    let lock_err = |e| LedgerError::Lock {
        path: dir.join(FILE_NAME),
        errno: e,
    };
    let attached: Vec<Who> = map
        .lock()
        .map_err(lock_err)?
        .data()
        .attached()
        .copied()
        .collect();
    let ns = who.ns;
    let dead: Vec<Who> = attached
        .into_iter()
        .filter(|w| {
            (w.ns == 0 || ns == 0 || w.ns == ns) && liveness(w.pid, w.start_ticks) == Liveness::Dead
        })
        .collect();
    let mut g = map.lock().map_err(lock_err)?;
    let d = g.data();
    d.forget_attached(&dead);
    if !d.register(who) {
        d.attach_overflow = 1;
    }
    Ok(())
}

#[cfg(test)]
impl Ledger {
    /// Device and inode of the mapped file.
    pub(crate) fn file_id(&self) -> (u64, u64) {
        let m = self.map();
        (m.dev, m.ino)
    }

    pub(crate) fn with_data<R>(&self, f: impl FnOnce(&mut layout::Data) -> R) -> R {
        let mut g = self.lock().expect("lock");
        f(g.data())
    }

    /// Takes the lock, runs `f` and never releases the lock: the owner-death tests call it
    /// in a child that then exits.
    pub(crate) fn lock_and_forget(&self, f: impl FnOnce(&mut layout::Data)) {
        let mut g = self.lock().expect("lock");
        f(g.data());
        std::mem::forget(g);
    }
}

/// How long a `/proc` verification of a process's identity is trusted.
const ALIVE_TRUST_NS: u64 = 100_000_000;

/// Liveness with a short memory: `kill(pid, 0)` answers "gone" at the cost of one
/// syscall; a process whose identity (pid and start time) `/proc` confirmed within the
/// last 100 ms is taken to be the same process without reading `/proc` again. That keeps
/// an import within its budget; the price is that an exporter which became a zombie, or
/// whose pid was reused, in the last 100 ms is still counted as alive.
fn alive_cached(pid: i32, start_ticks: u64) -> bool {
    static VERIFIED: std::sync::Mutex<[(i32, u64, u64); 16]> =
        std::sync::Mutex::new([(0, 0, 0); 16]);
    // SAFETY: kill with signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    {
        return false;
    }
    let now = now_boot_ns();
    let slot = (pid as u32 as usize) % 16;
    {
        let cache = VERIFIED.lock().unwrap_or_else(|e| e.into_inner());
        let (p, t, at) = cache[slot];
        if p == pid && t == start_ticks && now.saturating_sub(at) < ALIVE_TRUST_NS {
            return true;
        }
    }
    let verdict = liveness(pid, start_ticks);
    if verdict == Liveness::Alive {
        VERIFIED.lock().unwrap_or_else(|e| e.into_inner())[slot] = (pid, start_ticks, now);
    }
    verdict != Liveness::Dead
}
