//! The ledger file's layout and the table logic that runs on it under the lock.
//!
//! Everything here is plain `repr(C)` integers, so an all-zero file is a valid empty
//! ledger, and every number read back is bounds-checked before use: the file is shared
//! with other processes and may hold anything a crashed or buggy writer left, which can
//! give wrong answers but never out-of-bounds access.
//!
//! ```text
//! Table
//! ├── Header   magic, version, sizes (checked on open), the process-shared robust mutex
//! └── Data     everything below is only touched with the mutex held
//!     ├── counters: retired, used, next_fresh, backed, free_len, ring_head/len, ...
//!     ├── attach[1024]      processes using the file (Who; pid 0 = free)
//!     ├── index[8192]       open addressing by fingerprint, linear probing, no tombstones
//!     │                     (backward-shift deletion); each entry names a slot
//!     ├── free[4096]        stack of slots free for reuse
//!     ├── ring[4096]        FIFO of finished slots, reclaimed oldest first when needed
//!     └── slots[4096]       one per key: exporter, flags, whitelist[64], importers[32]
//! ```

use super::proc::ProcId;
use crate::key::Fp;

/// The file's name inside the ledger directory.
pub const FILE_NAME: &str = "ledger.v1";
pub const MAGIC: [u8; 8] = *b"AIGLEDGR";
pub const VERSION: u32 = 1;
/// Keys the ledger tracks at once.
pub const SLOTS: usize = 4096;
/// Index positions: twice the slots, so the load factor stays at most 1/2.
pub const INDEX: usize = 2 * SLOTS;
const INDEX_BITS: u32 = INDEX.trailing_zeros();
/// Processes that can be attached at once (more are allowed, but then the file is never
/// removed).
pub const ATTACH: usize = 1024;
/// Whitelisted pids remembered per key (the vendor allows 31 per call).
pub const WHITELIST: usize = 64;
/// Importing processes remembered per key.
pub const IMPORTERS: usize = 32;
/// Slots are backed by file space in chunks of this many (see `Data::backed`).
pub const CHUNK: usize = 64;
/// Finished keys (closed by everyone) remembered before the oldest is reused even though
/// the file could grow: late importers of the most recently closed keys still learn that
/// the exporter closed, without /dev/shm filling up with history.
pub const KEEP_FINISHED: usize = 512;

/// A process as stored in the file: its identity plus the pid namespace it lives in.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Who {
    pub pid: i32,
    pub bare_tgid: i32,
    pub start_ticks: u64,
    /// Inode of the pid namespace, 0 when unknown.
    pub ns: u64,
}

impl Who {
    pub fn new(p: ProcId, ns: u64) -> Who {
        Who {
            pid: p.pid,
            bare_tgid: p.bare_tgid,
            start_ticks: p.start_ticks,
            ns,
        }
    }

    pub fn proc_id(&self) -> ProcId {
        ProcId {
            pid: self.pid,
            bare_tgid: self.bare_tgid,
            start_ticks: self.start_ticks,
        }
    }

    /// The same process (the bare tgid is only a label).
    pub fn same(&self, o: &Who) -> bool {
        self.pid == o.pid && self.start_ticks == o.start_ticks && self.ns == o.ns
    }

    fn order(&self) -> (i32, u64, u64) {
        (self.pid, self.start_ticks, self.ns)
    }

    pub fn is_free(&self) -> bool {
        self.pid == 0
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WlEntry {
    pub pid: i32,
    _pad: u32,
    pub set_ns: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ImpEntry {
    pub who: Who,
    pub closed: u32,
    _pad: u32,
}

/// One key.
#[repr(C)]
pub(crate) struct Slot {
    pub fp: [u8; 8],
    pub exporter: Who,
    /// Size of the exported range in bytes (0 = unknown).
    pub size: u64,
    pub whitelist_mode: u8,
    pub exporter_closed: u8,
    pub memory_freed: u8,
    /// Exporter closed and no importer open: kept only to answer late questions, and
    /// queued on the ring for reuse.
    pub finished: u8,
    wl_len: u32,
    /// Whitelist entries that did not fit.
    pub wl_dropped: u32,
    imp_len: u32,
    /// Importers that did not fit.
    pub imp_dropped: u32,
    wl: [WlEntry; WHITELIST],
    imp: [ImpEntry; IMPORTERS],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IndexEntry {
    pub fp: [u8; 8],
    /// Slot number + 1; 0 = empty position.
    pub body: u32,
    _pad: u32,
}

/// Fixed at creation, checked by every opener, never written afterwards.
#[repr(C)]
pub(crate) struct Header {
    pub magic: [u8; 8],
    pub version: u32,
    pub header_size: u32,
    pub file_size: u64,
    pub slots: u32,
    pub index: u32,
    pub attach: u32,
    pub whitelist: u32,
    pub importers: u32,
    pub slot_size: u32,
    /// Changed by other threads and processes at any time, hence the cell.
    pub mutex: std::cell::UnsafeCell<libc::pthread_mutex_t>,
}

/// Everything the mutex protects.
#[repr(C, align(64))]
pub(crate) struct Data {
    /// 0 live; 1 being retired (the file is being unlinked); 2 retired. A process that
    /// finds it non-zero opens the ledger afresh.
    pub retired: u32,
    /// Set when the attach table overflowed: the file is then never removed.
    pub attach_overflow: u32,
    /// Slots referenced by the index.
    pub used: u32,
    /// Slots `[0, next_fresh)` have been handed out at least once.
    pub next_fresh: u32,
    /// Slots `[0, backed)` have file space allocated (so touching them cannot SIGBUS when
    /// /dev/shm is full).
    pub backed: u32,
    pub free_len: u32,
    pub ring_head: u32,
    pub ring_len: u32,
    /// CLOCK_BOOTTIME of the last garbage collection that freed nothing, or of the last
    /// failure to allocate file space: neither is retried for a while.
    pub last_fruitless_gc_ns: u64,
    pub last_space_fail_ns: u64,
    pub attach: [Who; ATTACH],
    pub index: [IndexEntry; INDEX],
    pub free: [u32; SLOTS],
    pub ring: [u32; SLOTS],
    pub slots: [Slot; SLOTS],
}

#[repr(C)]
pub(crate) struct Table {
    pub hdr: Header,
    pub data: Data,
}

/// Size of the ledger file.
pub const FILE_SIZE: usize = std::mem::size_of::<Table>();
const _: () = assert!(FILE_SIZE <= 16 << 20);
const _: () = assert!(INDEX.is_power_of_two() && SLOTS < u32::MAX as usize);

impl Header {
    /// The values a compatible file holds.
    pub fn expected() -> [u64; 9] {
        [
            u64::from(VERSION),
            std::mem::size_of::<Header>() as u64,
            FILE_SIZE as u64,
            SLOTS as u64,
            INDEX as u64,
            ATTACH as u64,
            WHITELIST as u64,
            IMPORTERS as u64,
            std::mem::size_of::<Slot>() as u64,
        ]
    }

    pub fn actual(&self) -> [u64; 9] {
        [
            u64::from(self.version),
            u64::from(self.header_size),
            self.file_size,
            u64::from(self.slots),
            u64::from(self.index),
            u64::from(self.attach),
            u64::from(self.whitelist),
            u64::from(self.importers),
            u64::from(self.slot_size),
        ]
    }

    /// Writes the fixed fields (not the mutex).
    pub fn fill(&mut self) {
        self.magic = MAGIC;
        self.version = VERSION;
        self.header_size = std::mem::size_of::<Header>() as u32;
        self.file_size = FILE_SIZE as u64;
        self.slots = SLOTS as u32;
        self.index = INDEX as u32;
        self.attach = ATTACH as u32;
        self.whitelist = WHITELIST as u32;
        self.importers = IMPORTERS as u32;
        self.slot_size = std::mem::size_of::<Slot>() as u32;
    }
}

/// What an export says about its key.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Exported {
    pub whitelist_mode: bool,
    pub size: u64,
}

fn home(fp: &[u8; 8]) -> usize {
    // Fingerprints are already uniform; the multiply also spreads made-up test ones.
    (u64::from_le_bytes(*fp).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - INDEX_BITS)) as usize
}

const MASK: usize = INDEX - 1;

impl Slot {
    /// Starts the slot afresh for a new export.
    pub fn reset(&mut self, fp: Fp, exporter: Who, whitelist_mode: bool, size: u64) {
        self.fp = fp.0;
        self.exporter = exporter;
        self.size = size;
        self.whitelist_mode = u8::from(whitelist_mode);
        self.exporter_closed = 0;
        self.memory_freed = 0;
        self.finished = 0;
        self.wl_len = 0;
        self.wl_dropped = 0;
        self.imp_len = 0;
        self.imp_dropped = 0;
    }

    pub fn whitelist(&self) -> &[WlEntry] {
        &self.wl[..(self.wl_len as usize).min(WHITELIST)]
    }

    pub fn importers(&self) -> &[ImpEntry] {
        &self.imp[..(self.imp_len as usize).min(IMPORTERS)]
    }

    /// Adds a whitelisted pid; a pid already on the list keeps its earliest time.
    pub fn add_whitelist(&mut self, pid: i32, set_ns: u64) {
        let len = (self.wl_len as usize).min(WHITELIST);
        if let Some(e) = self.wl[..len].iter_mut().find(|e| e.pid == pid) {
            e.set_ns = e.set_ns.min(set_ns);
        } else if len < WHITELIST {
            self.wl[len] = WlEntry {
                pid,
                _pad: 0,
                set_ns,
            };
            self.wl_len = len as u32 + 1;
        } else {
            self.wl_dropped = self.wl_dropped.saturating_add(1);
        }
    }

    /// When `pid` was first whitelisted.
    pub fn whitelisted_at(&self, pid: i32) -> Option<u64> {
        self.whitelist()
            .iter()
            .filter(|e| e.pid == pid)
            .map(|e| e.set_ns)
            .min()
    }

    /// Records `who` as an importer with the key open (one entry per process). When the
    /// list is full, an entry of a process that closed is reused; otherwise the importer
    /// is only counted.
    pub fn add_importer(&mut self, who: &Who) {
        let len = (self.imp_len as usize).min(IMPORTERS);
        if let Some(e) = self.imp[..len].iter_mut().find(|e| e.who.same(who)) {
            e.closed = 0;
            e.who.bare_tgid = who.bare_tgid;
        } else if len < IMPORTERS {
            self.imp[len] = ImpEntry {
                who: *who,
                closed: 0,
                _pad: 0,
            };
            self.imp_len = len as u32 + 1;
        } else if let Some(e) = self.imp[..len].iter_mut().find(|e| e.closed != 0) {
            *e = ImpEntry {
                who: *who,
                closed: 0,
                _pad: 0,
            };
        } else {
            self.imp_dropped = self.imp_dropped.saturating_add(1);
        }
        self.finished = 0;
    }

    /// Marks `who`'s import closed; false when it had none open.
    pub fn close_importer(&mut self, who: &Who) -> bool {
        let len = (self.imp_len as usize).min(IMPORTERS);
        match self.imp[..len]
            .iter_mut()
            .find(|e| e.closed == 0 && e.who.same(who))
        {
            Some(e) => {
                e.closed = 1;
                true
            }
            None => false,
        }
    }

    pub fn open_importers(&self) -> impl Iterator<Item = &Who> {
        self.importers()
            .iter()
            .filter(|e| e.closed == 0)
            .map(|e| &e.who)
    }

    /// The exporter has closed and every importer the slot knows of has closed.
    pub fn is_finished_now(&self) -> bool {
        self.exporter_closed != 0 && self.open_importers().next().is_none()
    }
}

impl Data {
    /// Position and slot of `fp`.
    pub fn find(&self, fp: &[u8; 8]) -> Option<(usize, usize)> {
        let mut pos = home(fp);
        for _ in 0..INDEX {
            let e = &self.index[pos];
            if e.body == 0 {
                return None;
            }
            if e.fp == *fp && (e.body as usize) <= SLOTS {
                return Some((pos, e.body as usize - 1));
            }
            pos = (pos + 1) & MASK;
        }
        None
    }

    pub fn slot(&self, fp: &Fp) -> Option<&Slot> {
        self.find(&fp.0).map(|(_, b)| &self.slots[b])
    }

    pub fn slot_mut(&mut self, fp: &Fp) -> Option<&mut Slot> {
        self.find(&fp.0).map(move |(_, b)| &mut self.slots[b])
    }

    /// Adds `fp` → `body`; `fp` must not be present. False only if the index is full,
    /// which the slot count rules out.
    fn insert(&mut self, fp: [u8; 8], body: usize) -> bool {
        let mut pos = home(&fp);
        for _ in 0..INDEX {
            if self.index[pos].body == 0 {
                self.index[pos] = IndexEntry {
                    fp,
                    body: body as u32 + 1,
                    _pad: 0,
                };
                return true;
            }
            pos = (pos + 1) & MASK;
        }
        false
    }

    /// Empties index position `hole` and moves later entries of the probe run back so
    /// that every entry stays reachable from its home (no tombstones). Each move copies
    /// before it clears, so a writer dying half-way leaves a duplicate (harmless; `repair`
    /// drops it), never a lost entry.
    fn remove_at(&mut self, mut hole: usize) {
        self.index[hole] = IndexEntry::default();
        let mut j = hole;
        for _ in 0..INDEX {
            j = (j + 1) & MASK;
            if self.index[j].body == 0 {
                break;
            }
            let h = home(&self.index[j].fp);
            let stays = if hole <= j {
                hole < h && h <= j
            } else {
                hole < h || h <= j
            };
            if !stays {
                self.index[hole] = self.index[j];
                self.index[j] = IndexEntry::default();
                hole = j;
            }
        }
        self.used = self.used.saturating_sub(1);
    }

    /// Removes `fp`'s entry and frees its slot.
    pub fn remove(&mut self, fp: &[u8; 8]) {
        if let Some((pos, body)) = self.find(fp) {
            self.remove_at(pos);
            self.push_free(body);
        }
    }

    fn push_free(&mut self, body: usize) {
        let len = self.free_len as usize;
        if len < SLOTS {
            self.free[len] = body as u32;
            self.free_len = len as u32 + 1;
        }
    }

    /// Takes a slot for a new key: a free one; the oldest finished one if more than
    /// KEEP_FINISHED are kept; a never used one that has file space; and, when the file
    /// cannot grow (full size, or `may_grow` false), the oldest finished one. None: grow
    /// the file or collect garbage.
    fn alloc_body(&mut self, may_grow: bool) -> Option<usize> {
        while self.free_len > 0 {
            self.free_len = (self.free_len - 1).min(SLOTS as u32 - 1);
            let b = self.free[self.free_len as usize] as usize;
            if b < SLOTS {
                return Some(b);
            }
        }
        if self.ring_len as usize >= KEEP_FINISHED {
            if let Some(b) = self.reclaim_finished() {
                return Some(b);
            }
        }
        let backed = (self.backed as usize).min(SLOTS);
        if (self.next_fresh as usize) < backed {
            self.next_fresh += 1;
            return Some(self.next_fresh as usize - 1);
        }
        if !may_grow || backed >= SLOTS {
            return self.reclaim_finished();
        }
        None
    }

    /// Records an export of `fp` by `who`: the slot is started afresh if the key is known.
    /// False when no slot is free (see `alloc_body`).
    pub fn export(&mut self, fp: Fp, who: Who, e: Exported, may_grow: bool) -> bool {
        if let Some(s) = self.slot_mut(&fp) {
            s.reset(fp, who, e.whitelist_mode, e.size);
            return true;
        }
        let Some(body) = self.alloc_body(may_grow) else {
            return false;
        };
        self.slots[body].reset(fp, who, e.whitelist_mode, e.size);
        if self.insert(fp.0, body) {
            self.used = self.used.saturating_add(1);
            true
        } else {
            self.push_free(body);
            false
        }
    }

    /// Slots `[backed, new)` now have file space.
    pub fn set_backed(&mut self, new: usize) {
        if new > self.backed as usize {
            self.backed = new.min(SLOTS) as u32;
        }
    }

    /// True when a new key needs more file space first.
    pub fn needs_backing(&self) -> bool {
        self.free_len == 0 && self.next_fresh >= self.backed && (self.backed as usize) < SLOTS
    }

    /// Queues a slot that just finished for later reuse.
    pub fn push_finished(&mut self, body: usize) {
        if self.ring_len as usize >= SLOTS {
            // Make room: reclaim the oldest (or drop stale entries).
            if let Some(b) = self.reclaim_finished() {
                self.push_free(b);
            }
        }
        let len = (self.ring_len as usize).min(SLOTS - 1);
        let at = (self.ring_head as usize % SLOTS + len) % SLOTS;
        self.ring[at] = body as u32;
        self.ring_len = len as u32 + 1;
    }

    /// Takes the oldest finished slot off the ring, removes its key from the index and
    /// returns it. Ring entries whose slot was reused or re-exported since are skipped.
    fn reclaim_finished(&mut self) -> Option<usize> {
        while self.ring_len > 0 {
            let head = self.ring_head as usize % SLOTS;
            let body = self.ring[head] as usize;
            self.ring_head = ((head + 1) % SLOTS) as u32;
            self.ring_len = (self.ring_len - 1).min(SLOTS as u32);
            if body >= SLOTS || self.slots[body].finished == 0 {
                continue;
            }
            let fp = self.slots[body].fp;
            if let Some((pos, b)) = self.find(&fp) {
                if b == body {
                    self.remove_at(pos);
                    return Some(body);
                }
            }
        }
        None
    }

    /// Marks the slot finished (and queues it) if the exporter and all importers closed.
    pub fn maybe_finish(&mut self, fp: &Fp) {
        if let Some((_, body)) = self.find(&fp.0) {
            let s = &mut self.slots[body];
            if s.finished == 0 && s.is_finished_now() {
                s.finished = 1;
                self.push_finished(body);
            }
        }
    }

    /// The keys in the table, with their slots.
    pub fn keys(&self) -> impl Iterator<Item = (&[u8; 8], &Slot)> {
        self.index
            .iter()
            .filter(|e| e.body != 0 && e.body as usize <= SLOTS)
            .map(|e| (&e.fp, &self.slots[e.body as usize - 1]))
    }

    /// The processes whose liveness matters: exporters that have not closed, importers that
    /// have not closed, and attached processes; without duplicates.
    pub fn parties(&self) -> Vec<Who> {
        let mut all: Vec<Who> = Vec::new();
        for (_, s) in self.keys() {
            if s.exporter_closed == 0 {
                all.push(s.exporter);
            }
            all.extend(s.open_importers().copied());
        }
        all.extend(self.attach.iter().filter(|w| !w.is_free()).copied());
        all.sort_unstable_by_key(Who::order);
        all.dedup_by(|a, b| a.same(b));
        all
    }

    /// Frees every slot whose exporter has closed or died and whose open importers all
    /// died, and clears the attach entries of dead processes. Returns slots freed.
    pub fn collect(&mut self, dead: &[Who]) -> usize {
        let mut dead = dead.to_vec();
        dead.sort_unstable_by_key(Who::order);
        let is_dead = |w: &Who| dead.binary_search_by_key(&w.order(), Who::order).is_ok();
        let doomed: Vec<[u8; 8]> = self
            .keys()
            .filter(|(_, s)| {
                (s.exporter_closed != 0 || is_dead(&s.exporter)) && s.open_importers().all(is_dead)
            })
            .map(|(fp, _)| *fp)
            .collect();
        for fp in &doomed {
            self.remove(fp);
        }
        for w in self.attach.iter_mut() {
            if !w.is_free() && is_dead(w) {
                *w = Who::default();
            }
        }
        doomed.len()
    }

    /// Adds `who` to the attach table (once). False when the table is full.
    pub fn register(&mut self, who: &Who) -> bool {
        if self.attach.iter().any(|w| w.same(who)) {
            return true;
        }
        match self.attach.iter_mut().find(|w| w.is_free()) {
            Some(w) => {
                *w = *who;
                true
            }
            None => false,
        }
    }

    pub fn unregister(&mut self, who: &Who) {
        for w in self.attach.iter_mut() {
            if w.same(who) {
                *w = Who::default();
            }
        }
    }

    /// Clears the attach entries of processes in `dead`.
    pub fn forget_attached(&mut self, dead: &[Who]) {
        for w in self.attach.iter_mut() {
            if !w.is_free() && dead.iter().any(|d| d.same(w)) {
                *w = Who::default();
            }
        }
    }

    pub fn attached(&self) -> impl Iterator<Item = &Who> {
        self.attach.iter().filter(|w| !w.is_free())
    }

    /// Restores the table's invariants after a process died holding the lock: rebuilds
    /// the index (dropping duplicates and entries that point nowhere), the used count and
    /// the free stack, and clamps the counters. A key whose update was cut short may keep
    /// a half-done change (one field or list entry), which can only make one answer about
    /// that key wrong.
    pub fn repair(&mut self) {
        let mut seen = [0u64; SLOTS / 64];
        let mut keep: Vec<([u8; 8], usize)> = Vec::new();
        for e in self.index.iter() {
            let b = e.body as usize;
            if b == 0 || b > SLOTS {
                continue;
            }
            let body = b - 1;
            let (w, bit) = (body / 64, 1u64 << (body % 64));
            if seen[w] & bit != 0 {
                continue;
            }
            seen[w] |= bit;
            keep.push((e.fp, body));
        }
        // One entry per key, too (keep the first slot found; the others become free).
        keep.sort_by_key(|&(fp, _)| fp);
        keep.dedup_by_key(|&mut (fp, _)| fp);
        seen = [0u64; SLOTS / 64];
        for &(_, body) in &keep {
            seen[body / 64] |= 1u64 << (body % 64);
        }
        for e in self.index.iter_mut() {
            *e = IndexEntry::default();
        }
        let mut top = 0usize;
        for &(fp, body) in &keep {
            self.insert(fp, body);
            top = top.max(body + 1);
        }
        self.used = keep.len() as u32;
        self.backed = (self.backed as usize).clamp(top, SLOTS) as u32;
        self.next_fresh = (self.next_fresh as usize).clamp(top, self.backed as usize) as u32;
        self.free_len = 0;
        for body in (0..self.next_fresh as usize).rev() {
            if seen[body / 64] & (1u64 << (body % 64)) == 0 {
                self.push_free(body);
            }
        }
        self.ring_head %= SLOTS as u32;
        self.ring_len = self.ring_len.min(SLOTS as u32);
    }
}

#[cfg(test)]
pub(crate) fn boxed_data() -> Box<Data> {
    use std::alloc::{alloc_zeroed, Layout};
    let layout = Layout::new::<Data>();
    // SAFETY: Data is plain integers, so all-zero is a valid value; the pointer comes from
    // the global allocator with Data's layout, as Box requires.
    unsafe {
        let p = alloc_zeroed(layout).cast::<Data>();
        assert!(!p.is_null());
        Box::from_raw(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u32) -> Fp {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&n.to_le_bytes());
        Fp(b)
    }

    fn who(pid: i32) -> Who {
        Who {
            pid,
            bare_tgid: pid,
            start_ticks: 7,
            ns: 1,
        }
    }

    fn ex(whitelist_mode: bool) -> Exported {
        Exported {
            whitelist_mode,
            size: 4096,
        }
    }

    fn data() -> Box<Data> {
        let mut d = boxed_data();
        d.backed = SLOTS as u32;
        d
    }

    /// Every key reachable and the counters add up.
    fn check(d: &Data, keys: &[Fp]) {
        for k in keys {
            assert!(d.slot(k).is_some(), "{k} lost");
        }
        let n = d.index.iter().filter(|e| e.body != 0).count();
        assert_eq!(n, d.used as usize);
        assert_eq!(n, keys.len());
    }

    #[test]
    fn insert_find_remove_keep_every_key_reachable() {
        let mut d = data();
        let mut live: Vec<Fp> = Vec::new();
        // Made-up fingerprints that collide on purpose: same home position.
        let mut colliding = Vec::new();
        for n in 0..20000u32 {
            let f = fp(n);
            if home(&f.0) == home(&fp(0).0) {
                colliding.push(f);
            }
            if colliding.len() == 6 {
                break;
            }
        }
        for f in &colliding {
            assert!(d.export(*f, who(1), ex(false), true));
            live.push(*f);
        }
        for n in 0..3000u32 {
            assert!(d.export(fp(100_000 + n), who(1), ex(true), true));
            live.push(fp(100_000 + n));
        }
        check(&d, &live);
        // Remove every third key, including colliding ones in the middle of a run.
        let mut kept = Vec::new();
        for (i, f) in live.iter().enumerate() {
            if i % 3 == 1 {
                d.remove(&f.0);
            } else {
                kept.push(*f);
            }
        }
        check(&d, &kept);
        assert!(d.slot(&fp(100_001)).is_none() || kept.contains(&fp(100_001)));
    }

    #[test]
    fn full_table_reuses_finished_slots_oldest_first() {
        let mut d = data();
        for n in 0..SLOTS as u32 {
            assert!(d.export(fp(n), who(1), ex(false), true));
        }
        assert!(
            !d.export(fp(99_999), who(1), ex(false), true),
            "no slot left"
        );
        for n in [5u32, 9] {
            d.slot_mut(&fp(n)).unwrap().exporter_closed = 1;
            d.maybe_finish(&fp(n));
        }
        assert!(d.export(fp(99_999), who(1), ex(false), true));
        assert!(
            d.slot(&fp(5)).is_none(),
            "the oldest finished key made room"
        );
        assert!(d.slot(&fp(9)).is_some());
        assert!(d.export(fp(99_998), who(1), ex(false), true));
        assert!(d.slot(&fp(9)).is_none());
        assert!(!d.export(fp(99_997), who(1), ex(false), true));
    }

    #[test]
    fn finished_keys_are_remembered_up_to_a_limit() {
        let mut d = data();
        d.backed = CHUNK as u32;
        let mut n = 0u32;
        // Keys exported and closed: the file grows (None asks for more space) until
        // KEEP_FINISHED are remembered, then the oldest is reused.
        while (n as usize) < KEEP_FINISHED + 10 {
            if !d.export(fp(n), who(1), ex(false), true) {
                assert!(d.needs_backing());
                d.set_backed(d.backed as usize + CHUNK);
                continue;
            }
            d.slot_mut(&fp(n)).unwrap().exporter_closed = 1;
            d.maybe_finish(&fp(n));
            n += 1;
        }
        assert_eq!(d.used as usize, KEEP_FINISHED);
        assert!(d.slot(&fp(9)).is_none());
        assert!(d.slot(&fp(10)).is_some());
        assert!((d.next_fresh as usize) <= KEEP_FINISHED + 1);
    }

    #[test]
    fn stale_ring_entries_are_skipped() {
        let mut d = data();
        d.backed = 2;
        assert!(d.export(fp(1), who(1), ex(false), true));
        assert!(d.export(fp(2), who(1), ex(false), true));
        d.slot_mut(&fp(1)).unwrap().exporter_closed = 1;
        d.maybe_finish(&fp(1));
        // Re-exported (same key again): no longer finished.
        assert!(d.export(fp(1), who(1), ex(false), true));
        assert!(!d.export(fp(3), who(1), ex(false), false));
        assert!(d.slot(&fp(1)).is_some());
    }

    #[test]
    fn whitelist_and_importer_lists_are_bounded() {
        let mut d = data();
        assert!(d.export(fp(1), who(1), ex(true), true));
        let s = d.slot_mut(&fp(1)).unwrap();
        for pid in 1..=100 {
            s.add_whitelist(pid, 1000 + pid as u64);
        }
        s.add_whitelist(3, 5);
        s.add_whitelist(3, 50_000);
        assert_eq!(s.whitelisted_at(3), Some(5));
        assert_eq!(s.whitelisted_at(64), Some(1064));
        assert_eq!(s.whitelisted_at(65), None);
        assert_eq!(s.wl_dropped, 36);
        for pid in 10..50 {
            s.add_importer(&who(pid));
        }
        assert_eq!(s.importers().len(), IMPORTERS);
        assert_eq!(s.imp_dropped, 8);
        assert!(s.close_importer(&who(10)));
        assert!(!s.close_importer(&who(10)));
        s.add_importer(&who(77));
        assert_eq!(s.open_importers().filter(|w| w.pid == 77).count(), 1);
        s.add_importer(&who(77));
        assert_eq!(s.open_importers().count(), IMPORTERS);
    }

    #[test]
    fn repair_rebuilds_index_and_free_stack() {
        let mut d = data();
        for n in 0..100u32 {
            assert!(d.export(fp(n), who(1), ex(false), true));
        }
        for n in 0..50u32 {
            d.remove(&fp(n).0);
        }
        // A writer died half-way through a move: a duplicate entry and a dangling one.
        let (pos, _) = d.find(&fp(60).0).unwrap();
        let dup = d.index[pos];
        let free_pos = (0..INDEX).find(|&p| d.index[p].body == 0).unwrap();
        d.index[free_pos] = dup;
        let free_pos2 = (0..INDEX).find(|&p| d.index[p].body == 0).unwrap();
        d.index[free_pos2] = IndexEntry {
            fp: [9; 8],
            body: 1_000_000,
            _pad: 0,
        };
        d.free_len = 12345;
        d.ring_head = 99_999;
        d.repair();
        let keys: Vec<Fp> = (50..100).map(fp).collect();
        check(&d, &keys);
        assert_eq!(d.free_len, 50);
        for n in 0..50u32 {
            assert!(d.export(fp(1000 + n), who(1), ex(false), true));
        }
        assert_eq!(d.used, 100);
        assert_eq!(d.next_fresh, 100);
    }

    #[test]
    fn collect_frees_keys_of_dead_processes() {
        let mut d = data();
        assert!(d.export(fp(1), who(1), ex(false), true)); // exporter 1 dead, no importer
        assert!(d.export(fp(2), who(1), ex(false), true)); // exporter dead, importer 3 alive
        d.slot_mut(&fp(2)).unwrap().add_importer(&who(3));
        assert!(d.export(fp(3), who(2), ex(false), true)); // exporter alive
        assert!(d.export(fp(4), who(2), ex(false), true)); // exporter closed, importer 1 dead
        d.slot_mut(&fp(4)).unwrap().add_importer(&who(1));
        d.slot_mut(&fp(4)).unwrap().exporter_closed = 1;
        assert!(d.register(&who(1)));
        assert!(d.register(&who(2)));
        assert!(d.register(&who(2)));
        assert_eq!(d.attached().count(), 2);
        assert_eq!(d.parties().len(), 3);
        d.slot_mut(&fp(3)).unwrap().exporter_closed = 1;
        assert_eq!(d.parties().len(), 3, "1 and 2 are attached, 3 imports");
        d.slot_mut(&fp(3)).unwrap().exporter_closed = 0;
        assert_eq!(d.collect(&[who(1)]), 2);
        assert!(d.slot(&fp(1)).is_none());
        assert!(d.slot(&fp(2)).is_some());
        assert!(d.slot(&fp(3)).is_some());
        assert!(d.slot(&fp(4)).is_none());
        assert_eq!(d.attached().count(), 1);
        d.unregister(&who(2));
        assert_eq!(d.attached().count(), 0);
    }

    #[test]
    fn layout_is_within_budget() {
        assert_eq!(std::mem::size_of::<IndexEntry>(), 16);
        assert_eq!(std::mem::size_of::<Who>(), 24);
    }
}
