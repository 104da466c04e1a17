//! The table of this process's live allocations, by start address, split into shards by
//! address so that threads allocating at once mostly take different locks.
//!
//! Each shard keeps its allocations in two places:
//!
//! - `recent`: the last few allocations it took, in a small array scanned linearly. A
//!   malloc+free pair, the commonest pattern, is then an append and a scan of a few words,
//!   on one cache line that stays warm however many allocations are live.
//! - `older`: an ordered map for everything that outlived `RECENT` newer allocations of
//!   its shard. Ordered by address, so a runtime that hands out addresses in order keeps
//!   working at the same end of it (warm nodes), and "which allocation holds this address"
//!   is a logarithmic look-up. Any address pattern (random, reused, huge sizes) stays
//!   logarithmic.

use crate::key::Key;
use crate::state::AddrHasher;
use crate::sync::PlainLock;
use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasherDefault;
use std::ops::Deref;
use std::sync::atomic::{AtomicU32, Ordering};

/// Allocations a shard keeps in its array before moving the oldest into its ordered map.
const RECENT: usize = 8;

/// One shard's allocations, `(base, size)`, no base twice.
#[derive(Debug, Default)]
pub(crate) struct AllocTable {
    recent: [(usize, usize); RECENT],
    recent_len: usize,
    /// No base in `recent` is above this (an upper bound), so an allocation above every
    /// recent one skips the scan for a duplicate.
    recent_max: usize,
    /// The slot of `recent` to move out when it is full (round robin).
    evict: usize,
    older: BTreeMap<usize, usize>,
    /// No base in `older` is above this (an upper bound: not lowered by removals), so a
    /// runtime handing out ever higher addresses never looks there for a duplicate.
    older_max: Option<usize>,
    /// Allocation calls counted here, under this shard's lock, rather than in the
    /// process's one counter that every thread would write.
    calls: u64,
    /// Addresses in this shard's granules that imports returned and closes gave back,
    /// until an allocation hands the address out again (an import that returns it again
    /// leaves it here: see `ProcessState::import_of`): a free of one is still a free of
    /// imported memory. Kept here, by address, so that an
    /// importer's close and the next allocation take only this shard's lock.
    // Spelled out, not as a type alias: cbindgen (the header's generator, which reads
    // every item of the crate) fails on an alias of a HashSet or HashMap with a hasher.
    closed_imports: HashSet<usize, BuildHasherDefault<AddrHasher>>,
    /// The keys of this shard's last few closed imports (allocated at the first): a free
    /// of one of those addresses names its key, so that the violation stands on the key's
    /// timeline. Only the last few: a key beside every remembered address (75 bytes where
    /// the address is 8) made every importer's close slower, by some 100 ns a call with
    /// tens of thousands of addresses remembered (bench, import+close).
    recent_closed_keys: Option<Box<RecentClosedKeys>>,
}

/// How many closed imports' keys a shard keeps (`AllocTable::recent_closed_keys`).
const RECENT_CLOSED_KEYS: usize = 8;

/// A ring of `(address, key)` of a shard's last closed imports.
#[derive(Debug)]
struct RecentClosedKeys {
    at: [usize; RECENT_CLOSED_KEYS],
    keys: [Option<Key>; RECENT_CLOSED_KEYS],
    next: usize,
}

impl RecentClosedKeys {
    fn set(&mut self, addr: usize, key: Option<Key>) {
        let i = match self.at.iter().position(|&a| a == addr) {
            Some(i) => i,
            None => {
                let i = self.next;
                self.next = (i + 1) % RECENT_CLOSED_KEYS;
                i
            }
        };
        self.at[i] = addr;
        self.keys[i] = key;
    }

    fn get(&self, addr: usize) -> Option<Key> {
        let i = self.at.iter().position(|&a| a == addr)?;
        self.keys[i]
    }
}

impl AllocTable {
    /// Adds `[base, base + size)`; an allocation already recorded at `base` (whose free
    /// the shim did not see) is replaced.
    pub(crate) fn insert(&mut self, base: usize, size: usize) {
        if base <= self.recent_max {
            for e in &mut self.recent[..self.recent_len] {
                if e.0 == base {
                    e.1 = size;
                    return;
                }
            }
        } else {
            self.recent_max = base;
        }
        if self.older_max.is_some_and(|m| base <= m) {
            self.older.remove(&base);
        }
        if self.recent_len < RECENT {
            self.recent[self.recent_len] = (base, size);
            self.recent_len += 1;
            return;
        }
        // The oldest out; the newest goes last, where a free looks first.
        let (old_base, old_size) = self.recent[self.evict];
        self.recent[self.evict] = self.recent[RECENT - 1];
        self.recent[RECENT - 1] = (base, size);
        self.evict = (self.evict + 1) % (RECENT - 1);
        self.older.insert(old_base, old_size);
        self.older_max = Some(self.older_max.map_or(old_base, |m| m.max(old_base)));
    }

    /// Removes the allocation starting at `base`; its size if there was one.
    pub(crate) fn remove(&mut self, base: usize) -> Option<usize> {
        // Newest last: a free of the allocation just made finds it first.
        for i in (0..self.recent_len).rev() {
            if self.recent[i].0 == base {
                let size = self.recent[i].1;
                self.recent_len -= 1;
                self.recent[i] = self.recent[self.recent_len];
                return Some(size);
            }
        }
        if self.older.is_empty() {
            return None;
        }
        let size = self.older.remove(&base);
        if self.older.is_empty() {
            self.older_max = None;
        }
        size
    }

    /// The size of the allocation starting at `base`, if there is one: a scan of the
    /// recent ones and one look-up in the ordered map, cheaper than `floor`'s range walk.
    pub(crate) fn at(&self, base: usize) -> Option<usize> {
        for &(b, s) in &self.recent[..self.recent_len] {
            if b == base {
                return Some(s);
            }
        }
        if self.older_max.is_some_and(|m| base <= m) {
            self.older.get(&base).copied()
        } else {
            None
        }
    }

    /// The allocation with the highest base at or below `addr`, whether it holds `addr`
    /// or not.
    pub(crate) fn floor(&self, addr: usize) -> Option<(usize, usize)> {
        let mut best = self.older.range(..=addr).next_back().map(|(b, s)| (*b, *s));
        for &(b, s) in &self.recent[..self.recent_len] {
            if b <= addr && best.is_none_or(|(bb, _)| b > bb) {
                best = Some((b, s));
            }
        }
        best
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.recent_len + self.older.len()
    }
}

#[cfg(test)]
impl AllocTable {
    fn recent_newest(&self) -> usize {
        self.recent[self.recent_len - 1].0
    }
}

/// The shards' granule: 4 MiB (a shift).
const GRANULE: u32 = 22;

/// Shards: enough that 8 threads seldom meet, few enough that a range question (which asks
/// each) stays cheap.
const SHARDS: usize = 16;

/// A shard on cache lines of its own, so that threads working in different shards do not
/// pass a line between them.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(PlainLock<AllocTable>);

/// Every live allocation of this process, sharded by address.
#[derive(Debug, Default)]
pub(crate) struct Allocs {
    shards: [Shard; SHARDS],
    /// Nonzero while this process may have keys open or closed imports remembered: a
    /// free must then take the whole path, and a malloc must go through the state. One
    /// bit per part that may hold some, each set and cleared under that part's lock: bit
    /// `i` for the state's key stripe `i` (`KEY_PARTS`), bit `KEY_PARTS + j` for shard
    /// `j`'s closed imports. Written only when a part's bit changes, so that calls on
    /// parts already marked only read the line.
    keys_or_imports: AtomicU32,
}

/// The bits of `Allocs::keys_or_imports` that the state's key stripes own.
pub(crate) const KEY_PARTS: usize = crate::sync::STRIPES;
const _: () = assert!(KEY_PARTS + SHARDS <= 32, "one bit per part");

impl Allocs {
    #[inline]
    fn shard(&self, base: usize) -> &PlainLock<AllocTable> {
        &self.shards[shard_of(base)].0
    }

    /// Adds `[base, base + size)` (replacing an allocation recorded at `base`); the
    /// address no longer names a closed import.
    pub(crate) fn insert(&self, base: usize, size: usize) {
        let mut t = self.shard(base).lock();
        t.insert(base, size);
        self.forget_closed_in(&mut t, base);
    }

    fn forget_closed_in(&self, t: &mut AllocTable, addr: usize) {
        if !t.closed_imports.is_empty()
            && t.closed_imports.remove(&addr)
            && t.closed_imports.is_empty()
        {
            self.unmark(KEY_PARTS + shard_of(addr));
        }
    }

    /// Remembers that an import returned at `addr`, of `key`, was closed for good.
    pub(crate) fn add_closed(&self, addr: usize, key: Option<Key>) {
        let mut t = self.shard(addr).lock();
        t.closed_imports.insert(addr);
        if key.is_some() || t.recent_closed_keys.is_some() {
            t.recent_closed_keys
                .get_or_insert_with(|| {
                    Box::new(RecentClosedKeys {
                        at: [0; RECENT_CLOSED_KEYS],
                        keys: [None; RECENT_CLOSED_KEYS],
                        next: 0,
                    })
                })
                .set(addr, key);
        }
        self.mark(KEY_PARTS + shard_of(addr));
    }

    /// When an import returned at `addr` was closed and the address not handed out again
    /// since: the key it was imported with, when given and among the shard's last few.
    pub(crate) fn closed_import(&self, addr: usize) -> Option<Option<Key>> {
        if !self.marked(KEY_PARTS + shard_of(addr)) {
            return None;
        }
        let t = self.shard(addr).lock();
        if !t.closed_imports.contains(&addr) {
            return None;
        }
        Some(t.recent_closed_keys.as_ref().and_then(|r| r.get(addr)))
    }

    /// True while any shard remembers closed imports.
    #[cfg(test)]
    pub(crate) fn has_closed(&self) -> bool {
        self.keys_or_imports.load(Ordering::SeqCst) >> KEY_PARTS != 0
    }

    pub(crate) fn remove(&self, base: usize) -> Option<usize> {
        self.shard(base).lock().remove(base)
    }

    /// The allocation holding `addr`, as `(base, size)` (a size of 0 holds its base).
    pub(crate) fn holding(&self, addr: usize) -> Option<(usize, usize)> {
        // Every base in `addr`'s granule is in `addr`'s shard: a floor found there within
        // the granule is the floor of all shards. Otherwise the allocation may start in
        // an earlier granule, kept by any shard: ask each.
        // An allocation's own base (what programs export most) by an exact look-up
        // first: bases are unique, so the allocation starting at `addr` is its floor.
        let own = {
            let t = self.shard(addr).lock();
            if let Some(size) = t.at(addr) {
                return Some((addr, size));
            }
            t.floor(addr)
        };
        let best = match own {
            Some((base, _)) if base >> GRANULE == addr >> GRANULE => own,
            _ => self
                .shards
                .iter()
                .filter_map(|s| s.0.lock().floor(addr))
                .max_by_key(|(base, _)| *base),
        };
        let (base, size) = best?;
        (addr - base < size.max(1)).then_some((base, size))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().len()).sum()
    }

    /// The calls counted by the quiet paths.
    pub(crate) fn calls(&self) -> u64 {
        self.shards.iter().map(|s| s.0.lock().calls).sum()
    }

    /// Forgets every allocation (a fork child owns none of its parent's).
    pub(crate) fn clear(&self) {
        for s in &self.shards {
            *s.0.lock() = AllocTable::default();
        }
        self.keys_or_imports.store(0, Ordering::SeqCst);
    }

    /// Tells helgrind (feature `checker-annotations`) that `keys_or_imports` is an
    /// atomic whose readers need no ordering with its writers: each bit is set under its
    /// part's lock and read under a shard's, and a free racing an export of the same
    /// memory is the program's own race, judged either way.
    pub(crate) fn benign_for_checker(&self) {
        crate::valgrind::benign_atomic(&self.keys_or_imports);
    }

    /// True while part `part` (see `keys_or_imports`) may hold keys or closed imports.
    pub(crate) fn marked(&self, part: usize) -> bool {
        self.keys_or_imports.load(Ordering::SeqCst) & (1 << part) != 0
    }

    /// Part `part` holds keys or closed imports now (called under its lock); the shared
    /// word is written only if its bit was clear.
    pub(crate) fn mark(&self, part: usize) {
        if !self.marked(part) {
            self.keys_or_imports.fetch_or(1 << part, Ordering::SeqCst);
        }
    }

    /// Part `part` holds none any more (called under its lock).
    pub(crate) fn unmark(&self, part: usize) {
        if self.marked(part) {
            self.keys_or_imports
                .fetch_and(!(1 << part), Ordering::SeqCst);
        }
    }

    /// True while some part may hold keys or closed imports.
    fn keys_or_imports(&self) -> bool {
        self.keys_or_imports.load(Ordering::SeqCst) != 0
    }

    /// A malloc's tracking without the state, the call counted: `false` (nothing done,
    /// not counted) while keys or imports are about, when the state must see the new
    /// address.
    #[inline]
    pub(crate) fn quiet_insert(&self, base: usize, size: usize) -> bool {
        let mut shard = self.shard(base).lock();
        if self.keys_or_imports() {
            return false;
        }
        shard.insert(base, size);
        shard.calls += 1;
        true
    }

    /// A free's tracking without the state, the call counted: `None` (nothing done, not
    /// counted) while keys or imports are about, when a free can break a rule; else the
    /// size of the allocation taken out, if it was known.
    #[inline]
    pub(crate) fn quiet_remove(&self, base: usize) -> Option<Option<usize>> {
        let mut shard = self.shard(base).lock();
        if self.keys_or_imports() {
            return None;
        }
        shard.calls += 1;
        Some(shard.remove(base))
    }
}

/// The shard of an allocation: by its 4 MiB granule, so that a thread working its way
/// up through addresses stays in one shard for a while and threads given different
/// ranges mostly use different shards.
#[inline]
fn shard_of(base: usize) -> usize {
    let granule = (base >> GRANULE) as u64;
    (granule.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) as usize % SHARDS
}

impl Allocs {
    /// Holds every shard across a fork (after the state's key stripes, in shard order).
    pub(crate) fn hold_for_fork(&'static self) {
        for s in &self.shards {
            s.0.hold_for_fork();
        }
    }
}

/// The table a `ProcessState` works on: the runtime's (which the allocation calls' short
/// path also reaches without the state), or one of its own (tests, fuzzing).
#[derive(Debug)]
pub(crate) enum AllocsRef {
    Shared(&'static Allocs),
    Own(Box<Allocs>),
}

impl Default for AllocsRef {
    fn default() -> AllocsRef {
        AllocsRef::Own(Box::default())
    }
}

impl Deref for AllocsRef {
    type Target = Allocs;
    fn deref(&self) -> &Allocs {
        match self {
            AllocsRef::Shared(a) => a,
            AllocsRef::Own(a) => a,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so failures repeat.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn model_holding(m: &BTreeMap<usize, usize>, addr: usize) -> Option<(usize, usize)> {
        let (&b, &s) = m.range(..=addr).next_back()?;
        (addr - b < s.max(1)).then_some((b, s))
    }

    /// Random inserts, removes and range questions against a BTreeMap, with addresses
    /// drawn from a small pool (so reuse and duplicates happen) and from everywhere.
    #[test]
    fn matches_an_ordered_map_under_random_operations() {
        for (seed, pool) in [(1u64, 64usize), (7, 4096), (99, 0)] {
            let mut rng = Rng(seed);
            let t = Allocs::default();
            let mut model = BTreeMap::new();
            for step in 0..60_000 {
                let r = rng.next();
                let base = if pool > 0 {
                    0x7f00_0000_0000 + (r as usize % pool) * 0x1000
                } else {
                    r as usize
                };
                let size = [0usize, 1, 0x1000, 0x20_0000, usize::MAX / 4][(r >> 60) as usize % 5];
                match rng.next() % 3 {
                    0 => {
                        t.insert(base, size);
                        model.insert(base, size);
                    }
                    1 => assert_eq!(t.remove(base), model.remove(&base), "step {step}"),
                    _ => {
                        // Half the questions at a base exactly (the exact look-up
                        // `holding` tries first), half anywhere near one.
                        let r = rng.next();
                        let probe = if r.is_multiple_of(2) {
                            base
                        } else {
                            base.wrapping_add((r % 0x3000) as usize)
                        };
                        assert_eq!(
                            t.holding(probe),
                            model_holding(&model, probe),
                            "step {step}, probe {probe:#x}"
                        );
                    }
                }
                assert_eq!(t.len(), model.len());
            }
        }
    }

    #[test]
    fn an_address_handed_out_again_replaces_the_old_record() {
        let mut t = AllocTable::default();
        for i in 0..20 {
            t.insert(0x1000 * (i + 1), 0x1000);
        }
        // 0x1000 is in the ordered map by now; its free was never seen.
        t.insert(0x1000, 0x40);
        // The newest is where a free looks first, also once the array is full.
        assert_eq!(t.recent_newest(), 0x1000);
        assert_eq!(t.len(), 20);
        assert_eq!(t.floor(0x1010), Some((0x1000, 0x40)));
        assert_eq!(t.remove(0x1000), Some(0x40));
        assert_eq!(t.remove(0x1000), None);
        t.insert(0x50000, 3);
        assert_eq!(t.recent_newest(), 0x50000);
        // And within the array.
        t.insert(0x90000, 1);
        t.insert(0x90000, 2);
        assert_eq!(t.remove(0x90000), Some(2));
        assert_eq!(t.remove(0x90000), None);
    }

    #[test]
    fn range_questions_at_the_boundaries() {
        let t = Allocs::default();
        t.insert(0x10000, 0x3000);
        t.insert(0x13000, 0x1000);
        t.insert(0x20000, 0);
        let top = usize::MAX - 0xfff;
        t.insert(top, 0x1000);
        assert_eq!(t.holding(0xffff), None);
        assert_eq!(t.holding(0x10000), Some((0x10000, 0x3000)));
        assert_eq!(t.holding(0x12fff), Some((0x10000, 0x3000)));
        assert_eq!(t.holding(0x13000), Some((0x13000, 0x1000)));
        assert_eq!(t.holding(0x14000), None);
        assert_eq!(
            t.holding(0x20000),
            Some((0x20000, 0)),
            "size 0 holds its base"
        );
        assert_eq!(t.holding(0x20001), None);
        assert_eq!(t.holding(usize::MAX), Some((top, 0x1000)));
        assert_eq!(t.holding(0), None);
        // A huge allocation in a low shard holds an address whose granule is elsewhere.
        t.insert(0x1_0000_0000, 0x10_0000_0000);
        assert_eq!(
            t.holding(0x8_1234_5678),
            Some((0x1_0000_0000, 0x10_0000_0000))
        );
    }

    #[test]
    fn a_million_in_order_and_out_of_order() {
        let t = Allocs::default();
        let n = 1_000_000usize;
        for i in 0..n {
            t.insert(0x1000_0000 + i * 0x2000, 0x1000);
        }
        assert_eq!(t.len(), n);
        // Pairs past the end, as a malloc+free loop makes them.
        for i in n..n + 1000 {
            let b = 0x1000_0000 + i * 0x2000;
            t.insert(b, 0x1000);
            assert_eq!(t.remove(b), Some(0x1000));
        }
        let probe = 0x1000_0000 + 777_777 * 0x2000 + 0x10;
        assert_eq!(t.holding(probe), Some((probe - 0x10, 0x1000)));
        assert_eq!(t.holding(probe + 0x1000), None);
        // Freed in a scattered order: every one found once.
        let mut rng = Rng(5);
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, rng.next() as usize % (i + 1));
        }
        for i in order {
            assert_eq!(t.remove(0x1000_0000 + i * 0x2000), Some(0x1000));
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_shard_names_the_keys_of_its_last_closed_imports_only() {
        let t = Allocs::default();
        let key = |i: usize| Key::from_bytes(format!("key-{i}").as_bytes());
        // Addresses of one shard: the same granule hash.
        let mut addrs = (1..)
            .map(|i| i * 0x10_0000)
            .filter(|&a| shard_of(a) == shard_of(0x10_0000));
        let first: Vec<usize> = addrs.by_ref().take(RECENT_CLOSED_KEYS + 1).collect();
        for (i, &a) in first.iter().enumerate() {
            t.add_closed(a, Some(key(i)));
        }
        // The oldest is still a closed import, its key no longer kept; the rest named.
        assert_eq!(t.closed_import(first[0]), Some(None));
        for (i, &a) in first.iter().enumerate().skip(1) {
            assert_eq!(t.closed_import(a), Some(Some(key(i))), "closed import {i}");
        }
        // Closed again without a key: no stale key named.
        t.add_closed(first[1], None);
        assert_eq!(t.closed_import(first[1]), Some(None));
        // Handed out by an allocation: not a closed import at all.
        t.insert(first[2], 4096);
        assert_eq!(t.closed_import(first[2]), None);
        assert_eq!(t.closed_import(0x1234_5000), None);
    }

    #[test]
    fn quiet_paths_stand_aside_while_keys_are_about() {
        let t = Allocs::default();
        assert!(t.quiet_insert(0x5000, 0x1000));
        t.mark(3);
        assert!(!t.quiet_insert(0x6000, 0x1000));
        assert_eq!(t.quiet_remove(0x5000), None);
        assert_eq!(t.len(), 1, "nothing changed");
        t.unmark(3);
        assert_eq!(t.quiet_remove(0x5000), Some(Some(0x1000)));
        assert_eq!(t.quiet_remove(0x5000), Some(None));
        assert_eq!(t.calls(), 3, "counted when done quietly only");
        t.insert(0x7000, 1);
        t.add_closed(0x9000, None);
        t.clear();
        assert_eq!((t.len(), t.calls()), (0, 0));
        assert!(
            t.quiet_insert(0x7000, 1),
            "a fork child starts without keys"
        );
    }
}
