//! The table algorithms that run on a mapped ledger under its lock: the fingerprint
//! index (open addressing, backward-shift deletion), slot allocation and reuse, the pool's
//! whitelist and importer chains, the attach table, and recovery after a holder died. The
//! regions they work on are described in `format.rs`.
//!
//! Every number read back from the file is bounds-checked before use: the file is shared
//! with other processes and may hold anything a crashed or buggy writer left, which can
//! give wrong answers but never out-of-bounds access or an endless loop.

use super::format::{
    Ctl, Entry, Geometry, IndexEntry, Slot, Who, IMPORTERS_MAX, KEEP_FINISHED, NO_SLOT, POOL_CHUNK,
    WHITELIST_MAX,
};
use crate::key::Fp;
use std::sync::atomic::{AtomicU32, Ordering};

/// Where the probe for `fp` starts in an index of `len` entries (a power of two).
#[inline]
pub(crate) fn home_in(fp: &[u8; 8], len: usize) -> usize {
    // Fingerprints are already uniform; the multiply also spreads made-up test ones.
    let bits = len.trailing_zeros();
    if bits == 0 {
        return 0;
    }
    (u64::from_le_bytes(*fp).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

/// Asks the CPU to start loading the cache line at `p` (nothing elsewhere than x86_64).
/// Not a read: `p` need not be valid, and nothing is accessed that could race.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and has no effect the program can observe.
    #[allow(unused_unsafe)]
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Stores a slot's word that `Map::slot_never_imported` reads without the lock (the
/// lock is held here), with Release: a reader that sees it sees the entry it names.
fn store_shared(w: &mut u32, v: u32) {
    // SAFETY: `w` is a valid, aligned, exclusively borrowed u32.
    let a = unsafe { AtomicU32::from_ptr(w) };
    crate::valgrind::benign_atomic(a);
    a.store(v, Ordering::Release);
}

/// What an export says about its key.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Exported {
    pub whitelist_mode: bool,
    pub size: u64,
}

/// What `Tables::add_importer` changed, so that `Tables::undo_importer` can take it back.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Added {
    /// A new pool entry at the head of the key's importer chain.
    New { entry: usize },
    /// An entry already in the chain (this process's own, or a closed one of another
    /// process), and what it held before.
    Changed { entry: usize, before: Entry },
    /// No entry could be had: the importer was only counted.
    Dropped,
}

/// The tables of a mapped ledger, borrowed while the mutex is held.
pub(crate) struct Tables<'a> {
    pub c: &'a mut Ctl,
    pub attach: &'a mut [Who],
    pub index: &'a mut [IndexEntry],
    free: &'a mut [u32],
    ring: &'a mut [u32],
    pub slots: &'a mut [Slot],
    pool: &'a mut [Entry],
}

impl<'a> Tables<'a> {
    /// The tables of the mapping at `base`.
    ///
    /// # Safety
    /// `base` points to at least `g.file_size` bytes laid out by `g`, aligned to 64,
    /// that nothing else accesses while the result lives (the ledger mutex is held, or
    /// the memory is private).
    pub unsafe fn at(base: *mut u8, g: &Geometry) -> Tables<'a> {
        use std::slice::from_raw_parts_mut as slice;
        // SAFETY (all): the regions are disjoint, in bounds and aligned per `g`; the
        // caller guarantees exclusive access.
        unsafe {
            Tables {
                c: &mut *base.add(g.off_ctl).cast::<Ctl>(),
                attach: slice(base.add(g.off_attach).cast(), g.attach),
                index: slice(base.add(g.off_index).cast(), g.index),
                free: slice(base.add(g.off_free).cast(), g.keys),
                ring: slice(base.add(g.off_ring).cast(), g.keys),
                slots: slice(base.add(g.off_slots).cast(), g.keys),
                pool: slice(base.add(g.off_pool).cast(), g.pool),
            }
        }
    }

    fn keys_cap(&self) -> usize {
        self.slots.len()
    }

    fn home(&self, fp: &[u8; 8]) -> usize {
        home_in(fp, self.index.len())
    }

    /// Starts loading the index entry of the key the next `reclaim_finished` would take
    /// (the oldest finished one), so that its cache miss overlaps the new key's instead of
    /// following it. A hint only.
    fn prefetch_reclaim(&self) {
        let cap = self.keys_cap();
        if self.c.ring_len as usize >= KEEP_FINISHED && cap > 0 {
            let body = self.ring[self.c.ring_head as usize % cap] as usize;
            if let Some(e) = self
                .slots
                .get(body)
                .and_then(|s| self.index.get(self.home(&s.fp)))
            {
                prefetch(e);
            }
        }
    }

    fn mask(&self) -> usize {
        self.index.len() - 1
    }

    // ------------------------------------------------------------ the index

    /// Position and slot of `fp`.
    pub fn find(&self, fp: &[u8; 8]) -> Option<(usize, usize)> {
        let mut pos = self.home(fp);
        for _ in 0..self.index.len() {
            let e = &self.index[pos];
            if e.body == 0 {
                return None;
            }
            if e.fp == *fp && (e.body as usize) <= self.keys_cap() {
                return Some((pos, e.body as usize - 1));
            }
            pos = (pos + 1) & self.mask();
        }
        None
    }

    pub fn body(&self, fp: &Fp) -> Option<usize> {
        self.find(&fp.0).map(|(_, b)| b)
    }

    pub fn slot(&self, fp: &Fp) -> Option<&Slot> {
        self.body(fp).map(|b| &self.slots[b])
    }

    pub fn slot_mut(&mut self, fp: &Fp) -> Option<&mut Slot> {
        self.body(fp).map(move |b| &mut self.slots[b])
    }

    /// Adds `fp` → `body`; `fp` must not be present. False only if the index is full,
    /// which the slot count rules out.
    fn insert(&mut self, fp: [u8; 8], body: usize) -> bool {
        let mut pos = self.home(&fp);
        for _ in 0..self.index.len() {
            if self.index[pos].body == 0 {
                self.index[pos] = IndexEntry {
                    fp,
                    body: body as u32 + 1,
                    _pad: 0,
                };
                return true;
            }
            pos = (pos + 1) & self.mask();
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
        for _ in 0..self.index.len() {
            j = (j + 1) & self.mask();
            if self.index[j].body == 0 {
                break;
            }
            let h = self.home(&self.index[j].fp);
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
        self.c.used = self.c.used.saturating_sub(1);
    }

    /// Removes `fp`'s entry and frees its slot and its chains.
    pub fn remove(&mut self, fp: &[u8; 8]) {
        if let Some((pos, body)) = self.find(fp) {
            self.remove_at(pos);
            self.free_chains(body);
            self.push_free(body);
        }
    }

    // ------------------------------------------------------------ slots

    fn push_free(&mut self, body: usize) {
        let len = self.c.free_len as usize;
        if len < self.free.len() {
            self.free[len] = body as u32;
            self.c.free_len = len as u32 + 1;
        }
    }

    /// Takes a slot for a new key: a free one; the oldest finished one if more than
    /// KEEP_FINISHED are kept; a never used one that has file space; and, when the file
    /// cannot grow (full size, or `may_grow` false), the oldest finished one. None: grow
    /// the file or collect garbage.
    fn alloc_body(&mut self, may_grow: bool) -> Option<usize> {
        let cap = self.keys_cap();
        while self.c.free_len > 0 {
            self.c.free_len = (self.c.free_len - 1).min(cap as u32 - 1);
            let b = self.free[self.c.free_len as usize] as usize;
            if b < cap {
                return Some(b);
            }
        }
        if self.c.ring_len as usize >= KEEP_FINISHED {
            if let Some(b) = self.reclaim_finished() {
                return Some(b);
            }
        }
        let backed = (self.c.backed as usize).min(cap);
        if (self.c.next_fresh as usize) < backed {
            self.c.next_fresh += 1;
            return Some(self.c.next_fresh as usize - 1);
        }
        if !may_grow || backed >= cap {
            return self.reclaim_finished();
        }
        None
    }

    fn reset_slot(&mut self, body: usize, fp: Fp, exporter: Who, e: Exported) {
        self.free_chains(body);
        self.slots[body] = Slot {
            fp: fp.0,
            exporter,
            size: e.size,
            whitelist_mode: u8::from(e.whitelist_mode),
            ..Slot::default()
        };
    }

    /// Records an export of `fp` by `who`: the slot is started afresh if the key is known.
    /// False when no slot is free (see `alloc_body`).
    #[cfg(test)]
    pub fn export(&mut self, fp: Fp, who: Who, e: Exported, may_grow: bool) -> bool {
        self.export_at(fp, who, e, may_grow).is_some()
    }

    /// `export`, saying which slot the key is in.
    pub fn export_at(&mut self, fp: Fp, who: Who, e: Exported, may_grow: bool) -> Option<usize> {
        if self.c.free_len == 0 {
            self.prefetch_reclaim();
        }
        if let Some(body) = self.body(&fp) {
            self.reset_slot(body, fp, who, e);
            return Some(body);
        }
        let body = self.alloc_body(may_grow)?;
        // A reclaimed or reused slot may still hold chains.
        self.reset_slot(body, fp, who, e);
        if self.insert(fp.0, body) {
            self.c.used = self.c.used.saturating_add(1);
            Some(body)
        } else {
            self.push_free(body);
            None
        }
    }

    /// Slots `[backed, new)` now have file space.
    pub fn set_backed(&mut self, new: usize) {
        if new > self.c.backed as usize {
            self.c.backed = new.min(self.keys_cap()) as u32;
        }
    }

    /// True when a new key needs more file space first.
    pub fn needs_backing(&self) -> bool {
        self.c.free_len == 0
            && self.c.next_fresh >= self.c.backed
            && (self.c.backed as usize) < self.keys_cap()
    }

    /// Queues a slot that just finished for later reuse.
    pub fn push_finished(&mut self, body: usize) {
        let cap = self.keys_cap();
        if self.c.ring_len as usize >= cap {
            // Make room: reclaim the oldest (or drop stale entries).
            if let Some(b) = self.reclaim_finished() {
                self.push_free(b);
            }
        }
        let len = (self.c.ring_len as usize).min(cap - 1);
        let at = (self.c.ring_head as usize % cap + len) % cap;
        self.ring[at] = body as u32;
        self.c.ring_len = len as u32 + 1;
    }

    /// Takes the oldest finished slot off the ring, removes its key from the index and
    /// returns it. Ring entries whose slot was reused or re-exported since are skipped.
    fn reclaim_finished(&mut self) -> Option<usize> {
        let cap = self.keys_cap();
        while self.c.ring_len > 0 {
            let head = self.c.ring_head as usize % cap;
            let body = self.ring[head] as usize;
            self.c.ring_head = ((head + 1) % cap) as u32;
            self.c.ring_len = (self.c.ring_len - 1).min(cap as u32);
            if body >= cap || self.slots[body].finished == 0 {
                continue;
            }
            let fp = self.slots[body].fp;
            if let Some((pos, b)) = self.find(&fp) {
                if b == body {
                    self.remove_at(pos);
                    self.free_chains(body);
                    return Some(body);
                }
            }
        }
        None
    }

    /// Marks the slot finished (and queues it) if the exporter and all importers closed.
    #[cfg(test)]
    pub fn maybe_finish(&mut self, fp: &Fp) {
        if let Some(body) = self.body(fp) {
            self.maybe_finish_at(body);
        }
    }

    /// `maybe_finish` of the key in slot `body`.
    pub fn maybe_finish_at(&mut self, body: usize) {
        if self.slots[body].finished == 0 && self.is_finished_now(body) {
            self.slots[body].finished = 1;
            self.push_finished(body);
        }
    }

    /// The exporter has closed and every importer the slot knows of has closed.
    pub fn is_finished_now(&self, body: usize) -> bool {
        self.slots[body].exporter_closed != 0 && self.open_importers(body).next().is_none()
    }

    /// The slots of the keys in the table.
    pub fn bodies(&self) -> impl Iterator<Item = usize> + '_ {
        let cap = self.keys_cap();
        self.index
            .iter()
            .filter(move |e| e.body != 0 && e.body as usize <= cap)
            .map(|e| e.body as usize - 1)
    }

    // ------------------------------------------------------------ chains

    /// The entries of a chain starting at `head` (+1 encoded), at most the pool's size.
    fn chain(&self, head: u32) -> impl Iterator<Item = usize> + '_ {
        let pool = &*self.pool;
        let mut next = head;
        let mut left = pool.len();
        std::iter::from_fn(move || {
            if next == 0 || next as usize > pool.len() || left == 0 {
                return None;
            }
            left -= 1;
            let i = next as usize - 1;
            next = pool[i].next;
            Some(i)
        })
    }

    /// A pool entry, or None when the pool is exhausted (or needs backing).
    fn alloc_entry(&mut self) -> Option<usize> {
        let cap = self.pool.len();
        if self.c.pool_free != 0 && (self.c.pool_free as usize) <= cap {
            let i = self.c.pool_free as usize - 1;
            self.c.pool_free = self.pool[i].next;
            self.c.pool_free_len = self.c.pool_free_len.saturating_sub(1);
            return Some(i);
        }
        self.c.pool_free = 0;
        self.c.pool_free_len = 0;
        let backed = (self.c.pool_backed as usize).min(cap);
        if (self.c.pool_fresh as usize) < backed {
            self.c.pool_fresh += 1;
            return Some(self.c.pool_fresh as usize - 1);
        }
        None
    }

    fn free_entry(&mut self, i: usize) {
        self.pool[i] = Entry {
            next: self.c.pool_free,
            ..Entry::default()
        };
        self.c.pool_free = i as u32 + 1;
        self.c.pool_free_len = self.c.pool_free_len.saturating_add(1);
    }

    /// Pool entries that can be handed out without growing the file.
    pub fn pool_spare(&self) -> usize {
        self.c.pool_free_len as usize
            + (self.c.pool_backed as usize).saturating_sub(self.c.pool_fresh as usize)
    }

    pub fn pool_can_grow(&self) -> bool {
        (self.c.pool_backed as usize) < self.pool.len()
    }

    pub fn set_pool_backed(&mut self, new: usize) {
        if new > self.c.pool_backed as usize {
            self.c.pool_backed = new.min(self.pool.len()) as u32;
        }
    }

    /// Returns a slot's chains to the pool.
    fn free_chains(&mut self, body: usize) {
        let heads = [self.slots[body].wl_head, self.slots[body].imp_head];
        for head in heads {
            // Walked as `chain` walks (bounded, stops at a link out of range), reading each
            // link before the entry is freed: no list to collect, so no allocation under
            // the lock (this runs on an export that reuses a finished key's slot).
            let (mut next, mut left) = (head, self.pool.len());
            while next != 0 && next as usize <= self.pool.len() && left > 0 {
                left -= 1;
                let i = next as usize - 1;
                next = self.pool[i].next;
                self.free_entry(i);
            }
        }
        let s = &mut self.slots[body];
        s.wl_head = 0;
        s.imp_head = 0;
        s.wl_len = 0;
        s.imp_len = 0;
    }

    /// Adds a whitelisted pid; a pid already on the list keeps its earliest time.
    pub fn add_whitelist(&mut self, body: usize, pid: i32, set_ns: u64) {
        let head = self.slots[body].wl_head;
        let known = self
            .chain(head)
            .find(|&i| self.pool[i].who.bare_tgid == pid);
        if let Some(i) = known {
            let e = &mut self.pool[i].who;
            e.ticket = e.ticket.min(set_ns);
            return;
        }
        let room = self.slots[body].wl_len < WHITELIST_MAX;
        match room.then(|| self.alloc_entry()).flatten() {
            Some(i) => {
                self.pool[i] = Entry {
                    next: head,
                    closed: 0,
                    who: Who::new(set_ns, 0, pid, NO_SLOT),
                };
                let s = &mut self.slots[body];
                s.wl_head = i as u32 + 1;
                s.wl_len += 1;
            }
            None => {
                let s = &mut self.slots[body];
                s.wl_dropped = s.wl_dropped.saturating_add(1);
            }
        }
    }

    /// When `pid` was first whitelisted.
    pub fn whitelisted_at(&self, body: usize, pid: i32) -> Option<u64> {
        self.chain(self.slots[body].wl_head)
            .map(|i| &self.pool[i].who)
            .filter(|w| w.bare_tgid == pid)
            .map(|w| w.ticket)
            .min()
    }

    /// Records `who` as an importer with the key open (one entry per process). When no
    /// entry can be had, one of a process that closed is reused; otherwise the importer
    /// is only counted. Says what it changed, for `undo_importer`.
    pub fn add_importer(&mut self, body: usize, who: &Who) -> Added {
        let head = self.slots[body].imp_head;
        let mine = self.chain(head).find(|&i| self.pool[i].who.same(who));
        let added = if let Some(i) = mine {
            let before = self.pool[i];
            self.pool[i].closed = 0;
            self.pool[i].who.bare_tgid = who.bare_tgid;
            Added::Changed { entry: i, before }
        } else if let Some(i) = (self.slots[body].imp_len < IMPORTERS_MAX)
            .then(|| self.alloc_entry())
            .flatten()
        {
            self.pool[i] = Entry {
                next: head,
                closed: 0,
                who: *who,
            };
            let s = &mut self.slots[body];
            store_shared(&mut s.imp_head, i as u32 + 1);
            s.imp_len += 1;
            Added::New { entry: i }
        } else {
            let closed = self.chain(head).find(|&i| self.pool[i].closed != 0);
            match closed {
                Some(i) => {
                    let before = self.pool[i];
                    self.pool[i].closed = 0;
                    self.pool[i].who = *who;
                    Added::Changed { entry: i, before }
                }
                None => {
                    let s = &mut self.slots[body];
                    let dropped = s.imp_dropped.saturating_add(1);
                    store_shared(&mut s.imp_dropped, dropped);
                    Added::Dropped
                }
            }
        };
        self.slots[body].finished = 0;
        added
    }

    /// Takes back what `add_importer(body, who)` did (`added`), as far as the tables
    /// still show it: the entry it opened is still `who`'s and open. A new entry leaves
    /// its chain (and the pool), a changed one gets its former contents, a dropped
    /// importer is uncounted; the key finishes again if it had.
    pub fn undo_importer(&mut self, body: usize, who: &Who, added: Added) {
        let open_mine = |d: &Self, i: usize| {
            d.chain(d.slots[body].imp_head).any(|j| j == i)
                && d.pool[i].closed == 0
                && d.pool[i].who.same(who)
        };
        match added {
            Added::New { entry } if open_mine(self, entry) => {
                let next = self.pool[entry].next;
                let head = self.slots[body].imp_head;
                if head as usize == entry + 1 {
                    store_shared(&mut self.slots[body].imp_head, next);
                } else {
                    let prev = self
                        .chain(head)
                        .find(|&p| self.pool[p].next as usize == entry + 1);
                    if let Some(p) = prev {
                        self.pool[p].next = next;
                    }
                }
                self.slots[body].imp_len = self.slots[body].imp_len.saturating_sub(1);
                self.free_entry(entry);
            }
            Added::Changed { entry, before } if open_mine(self, entry) => {
                self.pool[entry] = Entry {
                    next: self.pool[entry].next,
                    ..before
                };
            }
            Added::Dropped => {
                let s = &mut self.slots[body];
                let dropped = s.imp_dropped.saturating_sub(1);
                store_shared(&mut s.imp_dropped, dropped);
            }
            _ => return,
        }
        self.maybe_finish_at(body);
    }

    /// Marks `who`'s import closed; false when it had none open.
    pub fn close_importer(&mut self, body: usize, who: &Who) -> bool {
        let found = self
            .chain(self.slots[body].imp_head)
            .find(|&i| self.pool[i].closed == 0 && self.pool[i].who.same(who));
        match found {
            Some(i) => {
                self.pool[i].closed = 1;
                true
            }
            None => false,
        }
    }

    /// Importers that have not closed.
    pub fn open_importers(&self, body: usize) -> impl Iterator<Item = &Who> + '_ {
        self.chain(self.slots[body].imp_head)
            .filter(|&i| self.pool[i].closed == 0)
            .map(|i| &self.pool[i].who)
    }

    // ------------------------------------------------------------ processes

    /// The processes whose liveness matters: exporters that have not closed, importers that
    /// have not closed, and attached processes; without duplicates.
    pub fn parties(&self) -> Vec<Who> {
        let mut all: Vec<Who> = Vec::new();
        for b in self.bodies() {
            if self.slots[b].exporter_closed == 0 {
                all.push(self.slots[b].exporter);
            }
            all.extend(self.open_importers(b).copied());
        }
        all.extend(self.attach.iter().filter(|w| !w.is_free()).copied());
        all.sort_unstable_by_key(|w| w.ticket);
        all.dedup_by(|a, b| a.same(b));
        all
    }

    /// Frees every slot whose exporter has closed or died and whose open importers all
    /// died, and clears the attach entries of dead processes. Returns slots freed.
    pub fn collect(&mut self, dead: &[Who]) -> usize {
        let mut dead: Vec<u64> = dead.iter().map(|w| w.ticket).collect();
        dead.sort_unstable();
        let is_dead = |w: &Who| dead.binary_search(&w.ticket).is_ok();
        let doomed: Vec<[u8; 8]> = self
            .bodies()
            .filter(|&b| {
                let s = &self.slots[b];
                (s.exporter_closed != 0 || is_dead(&s.exporter))
                    && self.open_importers(b).all(is_dead)
            })
            .map(|b| self.slots[b].fp)
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

    /// A new ticket.
    pub fn next_ticket(&mut self) -> u64 {
        self.c.last_ticket = self.c.last_ticket.wrapping_add(1).max(1);
        self.c.last_ticket
    }

    /// Puts `who` in attach entry `slot` (which the caller has locked).
    pub fn register_at(&mut self, slot: usize, who: &Who) {
        if slot < self.attach.len() {
            self.attach[slot] = *who;
        }
    }

    pub fn unregister(&mut self, who: &Who) {
        if let Some(w) = self.attach.get_mut(who.slot as usize) {
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

    /// The ticket in attach entry `slot` (0: free or out of range).
    pub fn attach_ticket(&self, slot: u32) -> u64 {
        self.attach.get(slot as usize).map_or(0, |w| w.ticket)
    }

    // ------------------------------------------------------------ recovery

    /// Why the counters cannot have been written by this code (the file is damaged), or
    /// None. A few comparisons, cheap enough for every lock.
    #[inline]
    pub fn counters_damage(&self) -> Option<String> {
        let (keys, pool) = (self.keys_cap() as u64, self.pool.len() as u64);
        let c = &*self.c;
        // The common answer first, as plain comparisons (this runs on every lock); the
        // table below names the first bound broken.
        let fine = c.retired <= 2
            && u64::from(c.used) <= keys
            && u64::from(c.backed) <= keys
            && c.next_fresh <= c.backed
            && u64::from(c.free_len) <= keys
            && u64::from(c.ring_len) <= keys
            && u64::from(c.ring_head) <= keys.saturating_sub(1)
            && u64::from(c.pool_backed) <= pool.max(POOL_CHUNK as u64)
            && u64::from(c.pool_fresh) <= pool.min(c.pool_backed.into())
            && c.pool_free <= c.pool_fresh;
        if fine {
            return None;
        }
        self.broken_counter()
    }

    /// The first counter above its bound, named (`counters_damage` found one).
    #[cold]
    #[inline(never)]
    fn broken_counter(&self) -> Option<String> {
        let (keys, pool) = (self.keys_cap() as u64, self.pool.len() as u64);
        let c = &*self.c;
        let bounds: [(&str, u32, u64); 10] = [
            ("retired", c.retired, 2),
            ("used", c.used, keys),
            ("backed", c.backed, keys),
            ("next_fresh", c.next_fresh, c.backed.into()),
            ("free_len", c.free_len, keys),
            ("ring_len", c.ring_len, keys),
            ("ring_head", c.ring_head, keys.saturating_sub(1)),
            // A new file says its first chunk is backed even when the pool is smaller.
            ("pool_backed", c.pool_backed, pool.max(POOL_CHUNK as u64)),
            ("pool_fresh", c.pool_fresh, pool.min(c.pool_backed.into())),
            ("pool_free", c.pool_free, c.pool_fresh.into()),
        ];
        bounds
            .iter()
            .find(|&&(_, v, max)| u64::from(v) > max)
            .map(|&(name, v, max)| format!("counter {name} is {v}, above its bound {max}"))
    }

    /// Why the tables cannot have been written by this code, or None: the counters'
    /// bounds, and an index that names exactly `used` slots, each within the table. One
    /// pass over the index (2 entries per key of capacity, already backed): run when a
    /// process opens the file and when the table seems full, never per call.
    pub fn damage(&self) -> Option<String> {
        if let Some(why) = self.counters_damage() {
            return Some(why);
        }
        let cap = self.keys_cap();
        let mut named = 0u64;
        for e in self.index.iter().filter(|e| e.body != 0) {
            if e.body as usize > cap {
                return Some(format!("an index entry names slot {} of {cap}", e.body - 1));
            }
            named += 1;
        }
        (named != u64::from(self.c.used)).then(|| {
            format!(
                "the index names {named} keys where the counter says {}",
                self.c.used
            )
        })
    }

    /// Restores the table's invariants after a process died holding the lock: rebuilds
    /// the index (dropping duplicates and entries that point nowhere), the used count,
    /// the free stack and the pool's free chain, and clamps the counters. A key whose
    /// update was cut short may keep a half-done change (one field or list entry), which
    /// can only make one answer about that key wrong.
    pub fn repair(&mut self) {
        let cap = self.keys_cap();
        let mut seen = vec![false; cap];
        let mut keep: Vec<([u8; 8], usize)> = Vec::new();
        for e in self.index.iter() {
            let b = e.body as usize;
            if b == 0 || b > cap || seen[b - 1] {
                continue;
            }
            seen[b - 1] = true;
            keep.push((e.fp, b - 1));
        }
        // One entry per key, too (keep the first slot found; the others become free).
        keep.sort_by_key(|&(fp, _)| fp);
        keep.dedup_by_key(|&mut (fp, _)| fp);
        seen.iter_mut().for_each(|s| *s = false);
        for &(_, body) in &keep {
            seen[body] = true;
        }
        for e in self.index.iter_mut() {
            *e = IndexEntry::default();
        }
        let mut top = 0usize;
        for &(fp, body) in &keep {
            self.insert(fp, body);
            top = top.max(body + 1);
        }
        self.c.used = keep.len() as u32;
        self.c.backed = (self.c.backed as usize).clamp(top, cap) as u32;
        self.c.next_fresh = (self.c.next_fresh as usize).clamp(top, self.c.backed as usize) as u32;
        self.c.free_len = 0;
        for body in (0..self.c.next_fresh as usize).rev() {
            if !seen[body] {
                self.slots[body].wl_head = 0;
                self.slots[body].imp_head = 0;
                self.push_free(body);
            }
        }
        self.c.ring_head %= cap as u32;
        self.c.ring_len = self.c.ring_len.min(cap as u32);
        // The pool: entries reachable from a kept key's chains (each once) stay; every
        // other entry handed out so far is free. A chain cut by a shared entry ends there.
        let pool_cap = self.pool.len();
        self.c.pool_backed = (self.c.pool_backed as usize).min(pool_cap) as u32;
        self.c.pool_fresh = self.c.pool_fresh.min(self.c.pool_backed);
        let mut used = vec![false; pool_cap];
        for &(_, body) in &keep {
            for which in 0..2 {
                let s = &self.slots[body];
                let head = if which == 0 { s.wl_head } else { s.imp_head };
                let mut prev: Option<usize> = None;
                let mut n = 0u32;
                let mut next = head;
                while next != 0 && (next as usize) <= self.c.pool_fresh as usize {
                    let i = next as usize - 1;
                    if used[i] {
                        break;
                    }
                    used[i] = true;
                    n += 1;
                    prev = Some(i);
                    next = self.pool[i].next;
                }
                // Cut the chain where it left the valid entries.
                match prev {
                    Some(p) => self.pool[p].next = 0,
                    None => {
                        let s = &mut self.slots[body];
                        if which == 0 {
                            s.wl_head = 0;
                        } else {
                            s.imp_head = 0;
                        }
                    }
                }
                let s = &mut self.slots[body];
                if which == 0 {
                    s.wl_len = n;
                } else {
                    s.imp_len = n;
                }
            }
        }
        self.c.pool_free = 0;
        self.c.pool_free_len = 0;
        for i in (0..self.c.pool_fresh as usize).rev() {
            if !used[i] {
                self.free_entry(i);
            }
        }
    }
}

/// A private, zeroed ledger image of `g`'s size, for tests.
#[cfg(test)]
pub(crate) struct Image {
    buf: Vec<u64>,
    pub g: Geometry,
}

#[cfg(test)]
impl Image {
    pub fn new(keys: usize) -> Image {
        let g = Geometry::new(keys);
        let mut img = Image {
            buf: vec![0u64; g.file_size / 8 + 8],
            g,
        };
        // 64-byte alignment for the Ctl block.
        assert_eq!(img.base() as usize % 8, 0);
        let t = img.tables();
        t.c.backed = g.keys as u32;
        t.c.pool_backed = g.pool as u32;
        img
    }

    fn base(&mut self) -> *mut u8 {
        let p = self.buf.as_mut_ptr() as usize;
        (p.next_multiple_of(64)) as *mut u8
    }

    pub fn tables(&mut self) -> Tables<'_> {
        let g = self.g;
        // SAFETY: the buffer is at least file_size bytes past the aligned base, and the
        // returned tables borrow self mutably.
        unsafe { Tables::at(self.base(), &g) }
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::{Header, CHUNK, DEFAULT_KEYS, MIN_KEYS};
    use super::*;

    fn fp(n: u32) -> Fp {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&n.to_le_bytes());
        Fp(b)
    }

    fn who(t: u64) -> Who {
        Who::new(t, t as i32, t as i32 + 1000, t as u32)
    }

    fn ex(whitelist_mode: bool) -> Exported {
        Exported {
            whitelist_mode,
            size: 4096,
        }
    }

    /// Every key reachable and the counters add up.
    fn check(d: &Tables, keys: &[Fp]) {
        for k in keys {
            assert!(d.slot(k).is_some(), "{k} lost");
        }
        let n = d.index.iter().filter(|e| e.body != 0).count();
        assert_eq!(n, d.c.used as usize);
        assert_eq!(n, keys.len());
    }

    #[test]
    fn geometry_round_trips_through_the_header_and_scales_with_keys() {
        let g = Geometry::new(DEFAULT_KEYS);
        assert_eq!(g.keys, 65_536);
        assert_eq!(g.index, 131_072);
        // SAFETY: Header is plain integers plus a mutex, for which zero is a valid value.
        let mut h: Header = unsafe { std::mem::zeroed() };
        g.fill(&mut h);
        assert_eq!(Geometry::of_header(&h), Some(g));
        h.keys = 1000;
        assert_eq!(
            Geometry::of_header(&h),
            None,
            "a changed capacity must not match"
        );
        let big = Geometry::new(200_000);
        assert!(big.file_size > g.file_size);
        assert_eq!(Geometry::new(1).keys, MIN_KEYS);
        // Per key: one slot, two index entries, two stack entries, four pool entries.
        let per_key = (g.file_size - g.off_slots) / g.keys;
        assert!(per_key <= 72 + 4 * 32 + 64, "{per_key} bytes per key");
    }

    #[test]
    fn insert_find_remove_keep_every_key_reachable() {
        let mut img = Image::new(4096);
        let mut d = img.tables();
        let mut live: Vec<Fp> = Vec::new();
        // Made-up fingerprints that collide on purpose: same home position.
        let mut colliding = Vec::new();
        for n in 0..20000u32 {
            let f = fp(n);
            if d.home(&f.0) == d.home(&fp(0).0) {
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
    }

    #[test]
    fn full_table_reuses_finished_slots_oldest_first() {
        let mut img = Image::new(MIN_KEYS);
        let mut d = img.tables();
        for n in 0..MIN_KEYS as u32 {
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
        let mut img = Image::new(4096);
        let mut d = img.tables();
        d.c.backed = CHUNK as u32;
        let mut n = 0u32;
        // Keys exported and closed: the file grows (false asks for more space) until
        // KEEP_FINISHED are remembered, then the oldest is reused.
        while (n as usize) < KEEP_FINISHED + 10 {
            if !d.export(fp(n), who(1), ex(false), true) {
                assert!(d.needs_backing());
                let b = d.c.backed as usize + CHUNK;
                d.set_backed(b);
                continue;
            }
            d.slot_mut(&fp(n)).unwrap().exporter_closed = 1;
            d.maybe_finish(&fp(n));
            n += 1;
        }
        assert_eq!(d.c.used as usize, KEEP_FINISHED);
        assert!(d.slot(&fp(9)).is_none());
        assert!(d.slot(&fp(10)).is_some());
        assert!((d.c.next_fresh as usize) <= KEEP_FINISHED + 1);
    }

    #[test]
    fn stale_ring_entries_are_skipped() {
        let mut img = Image::new(MIN_KEYS);
        let mut d = img.tables();
        d.c.backed = 2;
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
    fn whitelists_and_importers_chain_through_the_pool_and_are_bounded() {
        let mut img = Image::new(MIN_KEYS);
        let mut d = img.tables();
        assert!(d.export(fp(1), who(1), ex(true), true));
        let b = d.body(&fp(1)).unwrap();
        for pid in 1..=100 {
            d.add_whitelist(b, pid, 1000 + pid as u64);
        }
        d.add_whitelist(b, 3, 5);
        d.add_whitelist(b, 3, 50_000);
        assert_eq!(d.whitelisted_at(b, 3), Some(5));
        assert_eq!(d.whitelisted_at(b, 100), Some(1100));
        assert_eq!(d.whitelisted_at(b, 101), None);
        assert_eq!(d.slots[b].wl_len, 100);
        assert_eq!(d.slots[b].wl_dropped, 0);
        for t in 10..50 {
            d.add_importer(b, &who(t));
        }
        assert_eq!(d.open_importers(b).count(), 40);
        assert!(d.close_importer(b, &who(10)));
        assert!(!d.close_importer(b, &who(10)));
        d.add_importer(b, &who(77));
        d.add_importer(b, &who(77));
        assert_eq!(d.open_importers(b).filter(|w| w.ticket == 77).count(), 1);
        // The pool (4 per key: 256 entries) runs out: later entries are only counted.
        assert!(d.export(fp(2), who(1), ex(true), true));
        let b2 = d.body(&fp(2)).unwrap();
        for pid in 1..=200 {
            d.add_whitelist(b2, pid, 1);
        }
        assert!(d.slots[b2].wl_dropped > 0);
        assert_eq!(d.pool_spare(), 0);
        // Removing a key gives its entries back.
        d.remove(&fp(1).0);
        assert_eq!(d.pool_spare(), 141);
        assert_eq!(d.c.pool_free_len, 141);
    }

    #[test]
    fn repair_rebuilds_index_free_stack_and_pool() {
        let mut img = Image::new(4096);
        let mut d = img.tables();
        for n in 0..100u32 {
            assert!(d.export(fp(n), who(1), ex(false), true));
            let b = d.body(&fp(n)).unwrap();
            d.add_whitelist(b, 7, 1);
            d.add_importer(b, &who(2));
        }
        for n in 0..50u32 {
            d.remove(&fp(n).0);
        }
        // A writer died half-way through a move: a duplicate entry and a dangling one.
        let (pos, _) = d.find(&fp(60).0).unwrap();
        let dup = d.index[pos];
        let n = d.index.len();
        let free_pos = (0..n).find(|&p| d.index[p].body == 0).unwrap();
        d.index[free_pos] = dup;
        let free_pos2 = (0..n).find(|&p| d.index[p].body == 0).unwrap();
        d.index[free_pos2] = IndexEntry {
            fp: [9; 8],
            body: 1_000_000,
            _pad: 0,
        };
        d.c.free_len = 12345;
        d.c.ring_head = 99_999;
        d.c.pool_free = 7_777_777;
        d.repair();
        let keys: Vec<Fp> = (50..100).map(fp).collect();
        check(&d, &keys);
        assert_eq!(d.c.free_len, 50);
        assert_eq!(d.c.pool_free_len, 100, "the removed keys' entries are free");
        let b = d.body(&fp(70)).unwrap();
        assert_eq!(d.whitelisted_at(b, 7), Some(1));
        assert_eq!(d.open_importers(b).count(), 1);
        for n in 0..50u32 {
            assert!(d.export(fp(1000 + n), who(1), ex(false), true));
        }
        assert_eq!(d.c.used, 100);
        assert_eq!(d.c.next_fresh, 100);
    }

    #[test]
    fn collect_frees_keys_of_dead_processes() {
        let mut img = Image::new(MIN_KEYS);
        let mut d = img.tables();
        assert!(d.export(fp(1), who(1), ex(false), true)); // exporter 1 dead, no importer
        assert!(d.export(fp(2), who(1), ex(false), true)); // exporter dead, importer 3 alive
        let b2 = d.body(&fp(2)).unwrap();
        d.add_importer(b2, &who(3));
        assert!(d.export(fp(3), who(2), ex(false), true)); // exporter alive
        assert!(d.export(fp(4), who(2), ex(false), true)); // exporter closed, importer 1 dead
        let b4 = d.body(&fp(4)).unwrap();
        d.add_importer(b4, &who(1));
        d.slots[b4].exporter_closed = 1;
        d.register_at(1, &who(1));
        d.register_at(2, &who(2));
        assert_eq!(d.attached().count(), 2);
        assert_eq!(d.parties().len(), 3);
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
    fn sizes_are_within_budget() {
        assert_eq!(std::mem::size_of::<IndexEntry>(), 16);
        assert_eq!(std::mem::size_of::<Who>(), 24);
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        assert_eq!(std::mem::size_of::<Slot>(), 72);
    }
}
