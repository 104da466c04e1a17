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
//! One file, `<dir>/ledger.v5` (mode 0600), mapped shared by every process and opened once
//! per process; see `format.rs` for what is in it (and `table.rs` for the algorithms on it). Its capacity in keys is set by the
//! process that creates it ([`DEFAULT_KEYS`], 65,536, unless `ACL_IPC_GUARD_LEDGER_KEYS`
//! says otherwise). Whitelists (up to the vendor's 32,768 pids per key) and importers live
//! in a shared pool of entries chained per key. The fixed tables and the first 64 slots and
//! 1,024 pool entries get file space up front (about 3 MiB at the default capacity);
//! more is allocated in chunks as keys accumulate, so that a full `/dev/shm` makes an
//! export fail with an error instead of killing the program with SIGBUS when it touches a
//! page of a sparse file.
//!
//! A process-shared robust mutex in the file serialises every change. A process that dies
//! holding it is recovered from (see [`Ledger`]).
//!
//! # Who is who, and who is alive
//!
//! Processes of one job may live in different pid namespaces (containers sharing the
//! directory): a pid names nobody for sure, and another namespace's `/proc` cannot be
//! seen. So each process that opens the ledger gets a ticket (a number never handed out
//! again in that file) and an attach entry, and takes an open-file-description lock on
//! that entry's byte of the file (past its end). The kernel releases the lock when the
//! process dies, in whatever namespace. A process is alive while its attach entry still
//! holds its ticket and its lock is held: one `fcntl(F_OFD_GETLK)`, no `/proc`. Its bare
//! tgid (the host pid, what whitelists hold) and its own pid are labels for people.
//!
//! The question an import asks (is the exporter gone?) is answered before that system
//! call, by the entry's liveness word: a robust mutex a thread of the process keeps
//! locked, which the kernel marks when that thread exits or dies (see `file.rs`,
//! `Map::alive_by_word`). A thread id in it means "alive" (but for a holder that replaced
//! its robust list, so the word is asked only where a wrong "alive" hides a verdict:
//! `alive_hiding_only`); anything else is asked of the lock. Each ledger operation makes
//! sure a live thread of this process holds its own word (`Map::arm`, a few loads when
//! it does).
//!
//! A process that closes the ledger's descriptor behind the shim's back (a daemon closing
//! every descriptor, say) gives up its lock and is taken for gone from then on; that can
//! hide an ordering mistake, never invent one.
//!
//! # Cost
//!
//! Recording an export, a whitelist, an import, a close or a free is one uncontended lock,
//! a hash probe and a few stores: no allocation. An import's view and its recording share
//! one hold (`import_view_recorded`; taken back by `undo_import` when the import is not
//! made). That view and `open_importers` add a few loads per process whose liveness they
//! report, and one `fcntl` for each (for the view: for an exporter whose liveness word does
//! not say "alive"). Growing the file and collecting garbage (table full) are the only
//! slow paths.
//!
//! # Lifetime of a key's record
//!
//! A key is "finished" once its exporter and every importer have closed it. The last
//! 512 finished keys stay in the table, so that a late importer still learns that the
//! exporter closed; older ones are reused first (and any finished key when the file cannot
//! grow). When the table is full, keys whose exporter closed or died and whose importers
//! all died are freed too. A key exported again after it closed starts afresh. Keys of a
//! process that exits are kept (a late importer learns that the exporter exited) until the
//! table needs room or the file is removed.
//!
//! # Removal
//!
//! [`Ledger::detach`] (at exit) deregisters; when no other live process is attached and no
//! key is left open (by any process, live or exited), the file is marked retired under the
//! lock and unlinked. A process that later finds its file retired (it takes the lock and reads the
//! mark, one memory read per operation) opens or creates the file afresh, so an opener
//! racing with the removal never keeps using an unlinked file. Removing the directory or
//! file by hand while a job runs splits the job between two files; don't.

mod file;
mod format;
mod proc;
mod table;
#[cfg(test)]
mod tests;

pub use crate::key::Fp;
pub use format::{
    ATTACH as ATTACH_CAPACITY, DEFAULT_KEYS, FILE_NAME, IMPORTERS_MAX, MAX_KEYS, MIN_KEYS,
    WHITELIST_MAX,
};
pub use proc::{now_boot_ns, start_ticks_of, ticks_to_ns, ProcId};

use crate::sync::Lock as Mutex;
use file::{Guard, Map};
use format::{Who, CHUNK, NO_SLOT, POOL_CHUNK};
use std::fmt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};
use table::{Exported, Tables};

/// Why the ledger could not do something. Every variant names the path concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerError {
    /// A system call failed.
    Io {
        path: PathBuf,
        op: &'static str,
        errno: i32,
    },
    /// The directory or file is not safe to use (symbolic link, wrong owner, writable by
    /// group or others, not a directory).
    Insecure { path: PathBuf, reason: String },
    /// The file was written by a version with another layout.
    Incompatible { path: PathBuf, reason: String },
    /// Every key slot holds a key that is still in use; the key is not tracked.
    TableFull { path: PathBuf, keys: usize },
    /// The file's header is right but its tables hold what this code never writes
    /// (overwritten by something else): nothing it says can be trusted.
    Damaged { path: PathBuf, reason: String },
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
            LedgerError::TableFull { path, keys } => write!(
                f,
                "ledger {}: full ({keys} keys in use; ACL_IPC_GUARD_LEDGER_KEYS sets the capacity of a new ledger); keys exported from now on are not tracked across processes until keys close",
                path.display()
            ),
            LedgerError::Damaged { path, reason } => write!(
                f,
                "ledger {}: damaged ({reason})",
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
    /// The list holds this process's own pid (`getpid()`, in its pid namespace) where
    /// that is not its bare tgid: the container mistake, said as such.
    pub own_pid_listed: bool,
    /// Size of the exported range, when the exporter gave one.
    pub size: Option<u64>,
}

/// An import recorded together with its view (`Ledger::import_view_recorded`), to be
/// taken back (`Ledger::undo_import`) if the import is not made.
#[derive(Clone, Copy, Debug)]
pub struct ImportRecorded {
    map: usize,
    body: u32,
    fp: Fp,
    added: table::Added,
}

/// Importers of a key that have not closed it and are alive (this process excluded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenImporters {
    pub procs: Vec<ProcId>,
    /// Importers that did not fit in the ledger: their state is unknown.
    pub untracked: u32,
}

/// Where this process recorded an export: the file's mapping (a replaced one is kept
/// until the `Ledger` is dropped, so its address names no other while the handle lives)
/// and the key's slot in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportAt {
    map: usize,
    body: u32,
}

/// A process's handle on the ledger. `Send + Sync`; one per process is enough.
///
/// Failures: opening fails on a directory or file that is not safe to use, on a file of
/// another layout, or on a system call error; each operation fails only when the lock
/// cannot be taken within a second (a holder stopped in a debugger) or, for
/// `record_export`, when the table is full or file space cannot be allocated. When a
/// process dies holding the lock, the next locker gets EOWNERDEAD, marks the lock
/// consistent and repairs the tables (index, free lists, counters); at worst the one key
/// the dead process was updating keeps a half-done change.
///
/// After `fork`, the child must call [`Ledger::after_fork_child`] before it records
/// anything (it then attaches as itself), or [`Ledger::forget_after_fork`] before it
/// drops the handle: the descriptor it inherited shares its parent's liveness lock.
///
/// Dropping a `Ledger` unmaps it and gives up its lock without deregistering; call
/// [`Ledger::detach`] first when the process is done with it.
pub struct Ledger {
    dir: PathBuf,
    /// Capacity of a ledger file this process creates.
    keys: usize,
    /// The current mapping. Mappings replaced after a retirement are kept in `old` until
    /// the ledger is dropped, since other threads may still be using them.
    cur: AtomicPtr<Map>,
    // Boxed: other threads may hold references into a replaced Map, so it must not move.
    #[allow(clippy::vec_box)]
    old: Mutex<Vec<Box<Map>>>,
    reopen: Mutex<()>,
    pid: AtomicI32,
    bare_tgid: AtomicI32,
    ticket: AtomicU64,
    slot: AtomicU32,
    /// Set by `detach`: a later operation attaches again (with the same ticket).
    detached: std::sync::atomic::AtomicBool,
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
    Full,
}

/// Within `window` ns of `then` (0 = never).
fn recent(then: u64, now: u64, window: u64) -> bool {
    then != 0 && now.saturating_sub(then) < window
}

const RETRY_WINDOW_NS: u64 = 1_000_000_000;

/// False only when `w` is known to have gone: its attach entry holds another ticket, or
/// nobody holds its liveness lock. A process without an attach entry cannot be judged
/// and counts as alive (the answer that never reports a process as gone).
fn alive_in(map: &Map, d: &Tables, me: &Who, w: &Who) -> bool {
    alive_by_tables(d, me, w).unwrap_or_else(|| alive_by_lock(map, w))
}

/// The part of `alive_in` the tables answer (under the lock); None: ask the liveness
/// lock of `w`'s attach entry (`alive_by_lock`, a system call best made after the
/// ledger's lock is released, so that other processes do not wait on it).
fn alive_by_tables(d: &Tables, me: &Who, w: &Who) -> Option<bool> {
    if w.same(me) || w.slot == NO_SLOT || w.ticket == 0 {
        return Some(true);
    }
    if d.attach_ticket(w.slot) != w.ticket {
        return Some(false);
    }
    None
}

/// Whether someone holds the liveness lock of `w`'s attach entry (true when it cannot be
/// told). Asked after the ledger's lock is released, a process that died meanwhile and
/// whose entry was taken by a new one at once passes for alive: that can hide a verdict,
/// never invent one, as the answer could change a moment later anyway.
fn alive_by_lock(map: &Map, w: &Who) -> bool {
    map.liveness_held(w.slot) != Some(false)
}

/// `alive_by_lock`, first asking `w`'s liveness word (no system call when a thread of it
/// holds the word). Only for questions where a wrong "alive" can only hide a verdict (is
/// an importer's source gone?): a holder thread that replaced its robust list after it
/// took the word leaves its id there when it dies (file.rs), and answering "alive" for
/// it where "alive" makes a violation (an importer still open when its exporter closes)
/// would invent one.
fn alive_hiding_only(map: &Map, w: &Who) -> bool {
    map.alive_by_word(w.slot, w.ticket) || alive_by_lock(map, w)
}

impl Ledger {
    /// Opens (creating if needed, with room for `keys` keys) the ledger in `dir` and
    /// attaches `me`. `dir` is created with mode 0700 if missing; its parent must exist.
    pub fn open(dir: &Path, me: ProcId, keys: usize) -> Result<Ledger, LedgerError> {
        let (map, who) = attach(dir, keys, me.pid, me.bare_tgid)?;
        Ok(Ledger {
            dir: dir.to_path_buf(),
            keys,
            cur: AtomicPtr::new(Box::into_raw(Box::new(map))),
            old: Mutex::new(Vec::new()),
            reopen: Mutex::new(()),
            pid: AtomicI32::new(who.pid),
            bare_tgid: AtomicI32::new(who.bare_tgid),
            ticket: AtomicU64::new(who.ticket),
            slot: AtomicU32::new(who.slot),
            detached: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The ledger file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Who this process is to the ledger.
    #[cfg(test)]
    pub fn me(&self) -> ProcId {
        self.who().proc_id()
    }

    /// Keys the current file holds at most.
    pub fn capacity(&self) -> usize {
        self.map().geo.keys
    }

    /// In a forked child that goes on using the ledger: give up the descriptors inherited
    /// from the parent (they hold its liveness lock) and attach as `me`. The shim itself
    /// opens the ledger afresh in a fork child (`forget_after_fork`, then a new `open`);
    /// this path is exercised by the ledger's fork tests only.
    #[cfg(test)]
    pub fn after_fork_child(&self, me: ProcId) -> Result<(), LedgerError> {
        self.forget_after_fork();
        self.pid.store(me.pid, Relaxed);
        self.bare_tgid.store(me.bare_tgid, Relaxed);
        let map = self.map();
        if !map.reopen_fd(&self.dir)? {
            // The file was replaced meanwhile: the next operation opens the new one.
            let (fresh, who) = attach(&self.dir, self.keys, me.pid, me.bare_tgid)?;
            self.set_who(&who);
            self.replace(map, fresh);
            return Ok(());
        }
        let mut g = map.lock().map_err(|e| self.lock_err(e))?;
        let who = register(&mut g, me.pid, me.bare_tgid, None);
        drop(g);
        self.set_who(&who);
        Ok(())
    }

    /// In a forked child that will not use the ledger: closes the descriptors inherited
    /// from the parent, so that the parent's liveness lock dies with the parent. No
    /// allocation; safe in a `pthread_atfork` child handler.
    pub fn forget_after_fork(&self) {
        self.map().close_fd();
        self.map().forget_armed();
        if let Some(old) = self.old.try_lock() {
            for m in old.iter() {
                m.close_fd();
                m.forget_armed();
            }
        }
    }

    /// `record_export_at` without the place (tests, fuzzing).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn record_export(
        &self,
        fp: Fp,
        whitelist_mode: bool,
        size: u64,
    ) -> Result<(), LedgerError> {
        self.record_export_at(fp, whitelist_mode, size).map(|_| ())
    }

    /// Records that this process exported `fp` (flags 0 = whitelist mode) for `size`
    /// bytes, and says where, for [`Ledger::no_importer_yet`]. A key known to the ledger
    /// (the same key exported again after it closed) starts afresh.
    pub fn record_export_at(
        &self,
        fp: Fp,
        whitelist_mode: bool,
        size: u64,
    ) -> Result<ExportAt, LedgerError> {
        let who = self.who();
        let exported = Exported {
            whitelist_mode,
            size,
        };
        let mut collected = false;
        let mut space_err = None;
        for _ in 0..MAX_KEYS / CHUNK + 4 {
            let (map, next) = {
                let mut g = self.lock()?;
                let m = g.map();
                let mut d = g.data();
                // The clock only when a failure was noted (rare): a read per export is
                // some 25 ns on this project's VM.
                let fail = d.c.last_space_fail_ns;
                let may_grow = fail == 0 || !recent(fail, now_boot_ns(), RETRY_WINDOW_NS);
                if let Some(body) = d.export_at(fp, who, exported, may_grow) {
                    return Ok(ExportAt {
                        map: m as *const Map as usize,
                        body: body as u32,
                    });
                }
                let next = if may_grow && d.needs_backing() {
                    Next::Grow(d.c.backed as usize + CHUNK)
                } else if !collected
                    && !recent(d.c.last_fruitless_gc_ns, now_boot_ns(), RETRY_WINDOW_NS)
                {
                    collected = true;
                    let dead: Vec<Who> = d
                        .parties()
                        .into_iter()
                        .filter(|w| !alive_in(m, &d, &who, w))
                        .collect();
                    if d.collect(&dead) == 0 {
                        d.c.last_fruitless_gc_ns = now_boot_ns().max(1);
                    }
                    continue;
                } else {
                    Next::Full
                };
                (m as *const Map, next)
            };
            match next {
                Next::Grow(n) => {
                    // SAFETY: mappings live as long as self (see `cur`).
                    let map = unsafe { &*map };
                    let (from, to) = (map.geo.slots_end(0), map.geo.slots_end(n));
                    let grown = map.back(&self.dir, from, to);
                    let mut g = self.lock()?;
                    if !ptr::eq(g.map(), map) {
                        continue; // retired meanwhile: start again on the new file
                    }
                    match grown {
                        Ok(()) => g.data().set_backed(n),
                        Err(e) => {
                            // Make do without growing for a while.
                            g.data().c.last_space_fail_ns = now_boot_ns().max(1);
                            space_err = Some(e);
                        }
                    }
                }
                Next::Full => break,
            }
        }
        // A table that has no room for one more key is either full of keys in use or
        // damaged (garbage in the index looks like keys everywhere): tell which.
        if let Some(reason) = self.lock()?.data().damage() {
            return Err(LedgerError::Damaged {
                path: self.path(),
                reason,
            });
        }
        Err(space_err.unwrap_or(LedgerError::TableFull {
            path: self.path(),
            keys: self.capacity(),
        }))
    }

    /// Makes sure `need` pool entries can be had, growing the file if it must.
    fn ensure_pool(&self, need: usize) -> Result<(), LedgerError> {
        let (map, want) = {
            let mut g = self.lock()?;
            let m = g.map();
            let d = g.data();
            if d.pool_spare() >= need || !d.pool_can_grow() {
                return Ok(());
            }
            let want = d.c.pool_backed as usize + need.div_ceil(POOL_CHUNK) * POOL_CHUNK;
            (m as *const Map, want)
        };
        // SAFETY: mappings live as long as self (see `cur`).
        let map = unsafe { &*map };
        let r = map.back(&self.dir, map.geo.pool_end(0), map.geo.pool_end(want));
        let mut g = self.lock()?;
        if ptr::eq(g.map(), map) && r.is_ok() {
            g.data().set_pool_backed(want);
        }
        r
    }

    /// The lock, with `need` pool entries to be had without growing the file when it can
    /// grow: one lock when the pool has room (the common case), else the file is grown
    /// first (a failure to grow leaves fewer entries: callers count what does not fit).
    fn lock_with_pool(&self, need: usize) -> Result<Guard<'_>, LedgerError> {
        {
            let mut g = self.lock()?;
            let d = g.data();
            if d.pool_spare() >= need || !d.pool_can_grow() {
                return Ok(g);
            }
        }
        let _ = self.ensure_pool(need);
        self.lock()
    }

    /// Records that the exporter whitelisted `pids` at `set_ns` (CLOCK_BOOTTIME). Pids not
    /// above 0 are skipped; a pid already on the list keeps its earliest time. Unknown
    /// keys are ignored.
    pub fn record_whitelist(&self, fp: Fp, pids: &[i32], set_ns: u64) -> Result<(), LedgerError> {
        // Pids that do not fit are counted and make "not whitelisted" uncertain.
        let mut g = self.lock_with_pool(pids.len())?;
        let mut d = g.data();
        if let Some(b) = d.body(&fp) {
            for &pid in pids.iter().filter(|&&p| p > 0) {
                d.add_whitelist(b, pid, set_ns);
            }
        }
        Ok(())
    }

    /// What the ledger knows about `fp` for an import by this process; None when the key
    /// is unknown. The exporter's liveness: its liveness word, else one `fcntl`.
    #[cfg(test)]
    pub fn import_view(&self, fp: Fp) -> Result<Option<ImportView>, LedgerError> {
        Ok(self.view_for_import(fp, false)?.map(|(v, _)| v))
    }

    /// `import_view`, and, in the same hold of the lock, `record_import`: for an import
    /// about to be forwarded, so that an import that succeeds takes the lock once before
    /// the call instead of twice. The view is what it would be without the recording (it
    /// is read first). If the import is then not made (blocked, or failed), the caller
    /// takes the recording back with `undo_import`. Meanwhile the import counts as open:
    /// the exporter, closing at that moment, is told of it, as it would be a moment
    /// later had the import succeeded.
    pub fn import_view_recorded(
        &self,
        fp: Fp,
    ) -> Result<Option<(ImportView, ImportRecorded)>, LedgerError> {
        Ok(self
            .view_for_import(fp, true)?
            .and_then(|(v, r)| r.map(|r| (v, r))))
    }

    fn view_for_import(
        &self,
        fp: Fp,
        record: bool,
    ) -> Result<Option<(ImportView, Option<ImportRecorded>)>, LedgerError> {
        let me = self.who();
        let target = me.host_pid();
        let mut g = if record {
            self.lock_with_pool(1)?
        } else {
            self.lock()?
        };
        let m = g.map();
        let mut d = g.data();
        let Some(b) = d.body(&fp) else {
            return Ok(None);
        };
        let s = &d.slots[b];
        let exporter = s.exporter;
        let known_alive = alive_by_tables(&d, &me, &exporter);
        let mut view = ImportView {
            exporter: exporter.proc_id(),
            exporter_alive: known_alive.unwrap_or(true),
            whitelist_mode: s.whitelist_mode != 0,
            exporter_closed: s.exporter_closed != 0,
            memory_freed: s.memory_freed != 0,
            whitelisted_at_ns: d.whitelisted_at(b, target),
            whitelist_overflow: s.wl_dropped != 0,
            own_pid_listed: me.pid != target && me.pid > 0 && d.whitelisted_at(b, me.pid).is_some(),
            size: (s.size != 0).then_some(s.size),
        };
        let recorded = record.then(|| ImportRecorded {
            map: m as *const Map as usize,
            body: b as u32,
            fp,
            added: d.add_importer(b, &me),
        });
        drop(g);
        if known_alive.is_none() {
            view.exporter_alive = alive_hiding_only(m, &exporter);
        }
        Ok(Some((view, recorded)))
    }

    /// Takes back an import recorded by `import_view_recorded` that was not made. Nothing
    /// when the key's record has changed hands since (the file replaced, the key exported
    /// afresh) or this process's import of it is no longer open.
    pub fn undo_import(&self, r: ImportRecorded) -> Result<(), LedgerError> {
        let who = self.who();
        let mut g = self.lock()?;
        if !ptr::eq(g.map(), r.map as *const Map) {
            return Ok(());
        }
        let mut d = g.data();
        if d.body(&r.fp) == Some(r.body as usize) {
            d.undo_importer(r.body as usize, &who, r.added);
        }
        Ok(())
    }

    /// Size of the range exported under `fp`, when the ledger knows the key and its size.
    pub fn export_size(&self, fp: Fp) -> Result<Option<u64>, LedgerError> {
        let mut g = self.lock()?;
        Ok(g.data()
            .slot(&fp)
            .and_then(|s| (s.size != 0).then_some(s.size)))
    }

    /// Records that this process imported `fp` (once per process: importing again, or
    /// again after closing, reopens the same entry). Unknown keys are ignored. The caller
    /// counts references itself and calls `record_close` when the last one closes.
    /// False when the ledger does not know the key (its export was never recorded here).
    pub fn record_import(&self, fp: Fp) -> Result<bool, LedgerError> {
        let who = self.who();
        let mut g = self.lock_with_pool(1)?;
        let mut d = g.data();
        let Some(b) = d.body(&fp) else {
            return Ok(false);
        };
        d.add_importer(b, &who);
        Ok(true)
    }

    /// Records that this process closed `fp`: its open import if it has one, else its
    /// export if it is the exporter.
    pub fn record_close(&self, fp: Fp) -> Result<CloseRole, LedgerError> {
        let who = self.who();
        let mut g = self.lock()?;
        let mut d = g.data();
        let Some(b) = d.body(&fp) else {
            return Ok(CloseRole::Unknown);
        };
        let role = if d.close_importer(b, &who) {
            CloseRole::Importer
        } else if d.slots[b].exporter.same(&who) && d.slots[b].exporter_closed == 0 {
            d.slots[b].exporter_closed = 1;
            CloseRole::Exporter
        } else {
            return Ok(CloseRole::Unknown);
        };
        d.maybe_finish_at(b);
        Ok(role)
    }

    /// Importers of `fp` other than this process that have not closed it and are alive.
    /// One `fcntl` per such importer (not its liveness word: a wrong "alive" here would
    /// make a violation); no allocation when there is none.
    pub fn open_importers(&self, fp: Fp) -> Result<OpenImporters, LedgerError> {
        let who = self.who();
        let mut g = self.lock()?;
        let m = g.map();
        let d = g.data();
        let Some(b) = d.body(&fp) else {
            return Ok(OpenImporters::default());
        };
        // Those the tables cannot rule out; their liveness locks are asked after the
        // ledger's lock is released.
        let maybe: Vec<(Who, Option<bool>)> = d
            .open_importers(b)
            .filter(|w| !w.same(&who))
            .map(|w| (*w, alive_by_tables(&d, &who, w)))
            .filter(|&(_, known)| known != Some(false))
            .collect();
        let untracked = d.slots[b].imp_dropped;
        drop(g);
        let procs = maybe
            .iter()
            .filter(|(w, known)| known.unwrap_or_else(|| alive_by_lock(m, w)))
            .map(|(w, _)| w.proc_id())
            .collect();
        Ok(OpenImporters { procs, untracked })
    }

    /// True when `open_importers(fp)` can only answer "none", told without the lock: the
    /// key is still where this process recorded its export (`at`, in the file in use) and
    /// no importer was ever recorded for it, nor dropped for want of room. An import
    /// recorded while this runs is either seen (false) or ordered after this question, as
    /// it would be after a locked one (see `Map::slot_never_imported`). False says
    /// nothing: ask `open_importers`.
    pub fn no_importer_yet(&self, fp: Fp, at: ExportAt) -> bool {
        let map = self.map();
        ptr::eq(map, at.map as *const Map) && map.slot_never_imported(at.body, &fp.0)
    }

    /// Records that the exporter freed the memory behind `fp`.
    pub fn record_free(&self, fp: Fp) -> Result<(), LedgerError> {
        let mut g = self.lock()?;
        if let Some(s) = g.data().slot_mut(&fp) {
            s.memory_freed = 1;
        }
        Ok(())
    }

    /// Tells helgrind (`checker-annotations` builds) that the handle's own words read
    /// without the ledger's lock are benign races: `keep_liveness`'s first look at
    /// `detached`, `slot` and `ticket` is a hint, decided again under the lock. Call it
    /// once the handle is in its final place (its `Arc`), before another thread sees it.
    pub fn annotate_for_checkers(&self) {
        crate::valgrind::benign_atomic(&self.detached);
        crate::valgrind::benign_atomic(&self.slot);
        crate::valgrind::benign_atomic(&self.ticket);
    }

    /// At process exit: deregisters this process, forgets attached processes that died,
    /// and removes the file when no other live process is attached or named by a key
    /// (this one counts as gone). The ledger stays usable: a later operation reopens a
    /// fresh file if this one was removed.
    pub fn detach(&self) -> Result<(), LedgerError> {
        let me = self.who();
        let map = self.map();
        let mut g = map.lock().map_err(|e| self.lock_err(e))?;
        finish_retire(&mut g, &self.dir);
        let mut d = g.data();
        if d.c.retired != 0 {
            return Ok(());
        }
        d.unregister(&me);
        map.drop_liveness(me.slot);
        self.detached.store(true, Release);
        if d.c.attach_overflow != 0 {
            return Ok(());
        }
        let attached: Vec<Who> = d.attached().copied().collect();
        let dead: Vec<Who> = attached
            .iter()
            .filter(|w| !alive_in(map, &d, &me, w))
            .copied()
            .collect();
        d.forget_attached(&dead);
        // A key left open (exported or imported, never closed) by any process, this one,
        // a live one or one that has exited, keeps the file: an importer that starts later
        // must still learn that its exporter is gone, whichever process happened to exit
        // last. Such keys are reused when the table needs room.
        let keep = d.attached().next().is_some() || !d.parties().is_empty();
        if !keep {
            d.c.retired = 1;
            map.unlink_name(&self.dir);
            g.data().c.retired = 2;
        }
        Ok(())
    }

    /// For a thread that outlives the process's other threads (the log writer): takes this
    /// process's liveness word again when the thread that held it has exited, so that
    /// importers are told "alive" without a system call even when this process makes no
    /// further ledger call. A few loads while the word is held; otherwise one lock of the
    /// ledger. Never attaches or reopens: nothing is done after `detach`, on a retired
    /// file, or when the lock cannot be had.
    pub fn keep_liveness(&self) {
        let (slot, ticket) = (self.slot.load(Relaxed), self.ticket.load(Relaxed));
        let map = self.map();
        if map.alive_by_word(slot, ticket) || self.detached.load(Acquire) {
            return;
        }
        let Ok(mut g) = map.lock() else {
            return;
        };
        finish_retire(&mut g, &self.dir);
        // `detach` sets the flag under this lock: read under it, it cannot be missed.
        if g.data().c.retired != 0 || self.detached.load(Acquire) {
            return;
        }
        if g.data().attach_ticket(slot) == ticket {
            g.map().arm(slot, ticket);
        }
    }

    fn who(&self) -> Who {
        Who::new(
            self.ticket.load(Relaxed),
            self.pid.load(Relaxed),
            self.bare_tgid.load(Relaxed),
            self.slot.load(Relaxed),
        )
    }

    fn set_who(&self, w: &Who) {
        self.ticket.store(w.ticket, Relaxed);
        self.slot.store(w.slot, Relaxed);
    }

    fn lock_err(&self, errno: i32) -> LedgerError {
        LedgerError::Lock {
            path: self.path(),
            errno,
        }
    }

    /// Asks the CPU to start loading the index entry where `fp`'s search begins, so that
    /// the cache miss (the index spans megabytes; a new key lands anywhere in it) overlaps
    /// the caller's other work instead of stalling the ledger's critical section. Takes no
    /// lock and reads nothing: a hint, which changes no result.
    #[inline]
    pub fn prefetch(&self, fp: Fp) {
        self.map().prefetch_index(&fp.0);
    }

    fn map(&self) -> &Map {
        // SAFETY: cur always points to a live Map; replaced ones are kept until drop.
        unsafe { &*self.cur.load(Acquire) }
    }

    /// Takes the lock of a live (not retired) file, reopening when the current one was
    /// retired.
    fn lock(&self) -> Result<Guard<'_>, LedgerError> {
        for _ in 0..8 {
            let map = self.map();
            let mut g = map.lock().map_err(|e| self.lock_err(e))?;
            finish_retire(&mut g, &self.dir);
            let d = g.data();
            if d.c.retired == 0 {
                if let Some(reason) = d.counters_damage() {
                    return Err(LedgerError::Damaged {
                        path: self.path(),
                        reason,
                    });
                }
                // The liveness word: still held (a few loads), or taken again by this
                // thread when its holder thread exited.
                let (slot, ticket) = (self.slot.load(Relaxed), self.ticket.load(Relaxed));
                let attached = d.attach_ticket(slot) == ticket;
                // Read before it is swapped: a swap on every lock would be a write to a
                // line every thread of the process shares.
                if self.detached.load(Relaxed) && self.detached.swap(false, AcqRel) {
                    // Used again after `detach`: attach again as the same process.
                    let w = self.who();
                    let who = register(&mut g, w.pid, w.bare_tgid, Some(w.ticket));
                    self.set_who(&who);
                    let (slot, ticket) = (self.slot.load(Relaxed), self.ticket.load(Relaxed));
                    if g.data().attach_ticket(slot) == ticket {
                        g.map().arm(slot, ticket);
                    }
                } else if attached {
                    map.arm(slot, ticket);
                }
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
        if !ptr::eq(self.cur.load(Acquire), stale) {
            return Ok(());
        }
        let w = self.who();
        let (fresh, who) = attach(&self.dir, self.keys, w.pid, w.bare_tgid)?;
        self.set_who(&who);
        self.replace(stale, fresh);
        Ok(())
    }

    fn replace(&self, stale: &Map, fresh: Map) {
        let cur = self.cur.load(Acquire);
        if !ptr::eq(cur, stale) {
            return;
        }
        stale.close_fd();
        self.cur.store(Box::into_raw(Box::new(fresh)), Release);
        // SAFETY: cur came from Box::into_raw; it stays alive in `old`.
        self.old.lock().push(unsafe { Box::from_raw(cur) });
    }
}

impl Who {
    fn proc_id(&self) -> ProcId {
        ProcId {
            pid: self.pid,
            bare_tgid: self.bare_tgid,
            ticket: self.ticket,
        }
    }
}

/// If the previous holder died while retiring the file, finishes the job.
fn finish_retire(g: &mut Guard<'_>, dir: &Path) {
    if g.recovered && g.data().c.retired == 1 {
        g.map().unlink_name(dir);
        g.data().c.retired = 2;
    }
}

/// Gives this process a ticket and an attach entry whose liveness lock it takes: a free
/// entry, or one whose process is gone (nobody holds its lock). Without one (the table is
/// full of live processes) the process still gets a ticket, but others cannot see it die,
/// and the file is never removed.
fn register(g: &mut Guard<'_>, pid: i32, bare_tgid: i32, ticket: Option<u64>) -> Who {
    let map = g.map();
    let mut d = g.data();
    let ticket = ticket.unwrap_or_else(|| d.next_ticket());
    let n = d.attach.len();
    let free_first = (0..n)
        .filter(|&i| d.attach[i].is_free())
        .chain((0..n).filter(|&i| !d.attach[i].is_free()));
    for i in free_first {
        if map.take_liveness(i as u32) {
            let who = Who::new(ticket, pid, bare_tgid, i as u32);
            d.register_at(i, &who);
            map.arm(i as u32, ticket);
            return who;
        }
    }
    d.c.attach_overflow = 1;
    Who::new(ticket, pid, bare_tgid, NO_SLOT)
}

/// Opens the live ledger file in `dir` and attaches this process to it.
fn attach(dir: &Path, keys: usize, pid: i32, bare_tgid: i32) -> Result<(Map, Who), LedgerError> {
    let path = || dir.join(FILE_NAME);
    for _ in 0..64 {
        let map = file::open_or_create(dir, keys)?;
        let who = {
            let mut g = map.lock().map_err(|e| LedgerError::Lock {
                path: path(),
                errno: e,
            })?;
            finish_retire(&mut g, dir);
            if g.data().c.retired != 0 {
                // Retired, yet its name still leads here: its remover could not unlink it
                // (or the word is corrupt). Unlink it now, under its lock, and start over.
                g.map().unlink_name(dir);
                None
            } else if let Some(reason) = g.data().damage() {
                return Err(LedgerError::Damaged {
                    path: path(),
                    reason,
                });
            } else {
                Some(register(&mut g, pid, bare_tgid, None))
            }
        };
        match who {
            Some(who) => return Ok((map, who)),
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

#[cfg(test)]
impl Ledger {
    /// Device and inode of the mapped file.
    pub(crate) fn file_id(&self) -> (u64, u64) {
        let m = self.map();
        (m.dev, m.ino)
    }

    pub(crate) fn with_data<R>(&self, f: impl FnOnce(&mut Tables) -> R) -> R {
        let mut g = self.lock().expect("lock");
        let mut d = g.data();
        f(&mut d)
    }

    /// Takes the lock, runs `f` and never releases the lock: the owner-death tests call it
    /// in a child that then exits.
    pub(crate) fn lock_and_forget(&self, f: impl FnOnce(&mut Tables)) {
        let mut g = self.lock().expect("lock");
        f(&mut g.data());
        std::mem::forget(g);
    }
}
