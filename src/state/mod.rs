//! This process's view of device memory and keys: live allocations (by start address, so
//! "which allocation holds this address" is a logarithmic look-up even with millions live),
//! open exports, open imports with their reference counts, and addresses of closed
//! imports. The rules read it (through a `View`), the entry points update it after a call
//! succeeds.
//!
//! It is split so that threads working on different keys and allocations take different
//! locks and write different cache lines:
//!
//! - the keys (exports, imports, their key bytes) in `STRIPES` stripes chosen by the key's
//!   fingerprint (`keys`), each under a lock of its own on lines of its own: a call on a
//!   key takes only its stripe's lock;
//! - live allocations and the addresses of closed imports in the allocation table's
//!   shards, by address (`allocs`), which the allocation calls also reach alone;
//! - the few questions about addresses across keys (which import holds an address, which
//!   exports a free leaves without memory) ask every stripe in turn: they come from the
//!   calls without a key (an export of memory the shim did not see allocated, a free
//!   while keys are open), never from an export or import of the common case.
//!
//! Lock order: a key stripe, then an allocation shard; never two stripes at once (except
//! a fork, which takes them all in order).

mod keys;
mod view;

pub use keys::{Export, Import, Keys};
pub use view::View;

use crate::allocs::{Allocs, AllocsRef, KEY_PARTS};
use crate::key::{Fp, Key};
use crate::sync::{PlainGuard, PlainLock, STRIPES};
use keys::Closed;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes an address (or a fingerprint) with one multiplication: they are already well
/// spread, and the tables keyed by them are on every call's path.
#[derive(Default)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits, and a multiply's low bits depend
        // only on the input's low bits, which page-aligned addresses lack: fold the well
        // mixed high half down (the top bits, the table's tags, stay as they are).
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.write_usize(n as usize);
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64 ^ (n as u64 >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(test)]
#[test]
fn page_aligned_addresses_spread_over_the_low_bits() {
    use std::hash::BuildHasher;
    let b = BuildHasherDefault::<AddrHasher>::default();
    let mut seen = std::collections::HashSet::new();
    for i in 0..1000usize {
        seen.insert(b.hash_one(0x7f12_3400_0000usize + i * 4096) & 2047);
    }
    assert!(
        seen.len() > 500,
        "1,000 pages fall in {} of 2,048 buckets",
        seen.len()
    );
}
type FpMap<V> = HashMap<Fp, V, BuildHasherDefault<AddrHasher>>;

/// Where an address lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// In an allocation `[base, base + size)` this process made.
    Allocated {
        base: usize,
        size: usize,
    },
    /// In memory imported under this key.
    Imported {
        fp: Fp,
    },
    Unknown,
}

/// A stripe of keys on cache lines of its own.
#[derive(Default, Debug)]
#[repr(align(128))]
struct KeyStripe(PlainLock<Keys>);

/// The stripe of a key: its fingerprint's bits, spread (fingerprints are hashes already,
/// but a multiply costs nothing and keeps made-up ones in tests apart).
#[inline]
fn stripe_of(fp: &Fp) -> usize {
    (fp.as_u64().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) as usize % STRIPES
}

/// Live allocations and closed imports are in `allocs` (sharded by address, each shard
/// under a lock of its own); keys in `stripes`, each under a lock of its own. Whether a
/// part holds keys or closed imports is marked in `allocs` (one bit per part) as it
/// changes, so that the allocation calls can tell without this state whether they may
/// skip it.
#[derive(Default, Debug)]
pub struct ProcessState {
    allocs: AllocsRef,
    stripes: [KeyStripe; STRIPES],
}

const _: () = assert!(STRIPES <= KEY_PARTS, "one bit per stripe");

impl ProcessState {
    /// A state with an allocation table of its own.
    pub fn new() -> ProcessState {
        ProcessState::default()
    }

    /// A state working on the runtime's allocation table (emptied by the caller when the
    /// state starts afresh).
    pub(crate) fn with_allocs(allocs: &'static Allocs) -> ProcessState {
        ProcessState {
            allocs: AllocsRef::Shared(allocs),
            ..ProcessState::default()
        }
    }

    /// The stripe holding `fp`'s keys, locked.
    #[inline]
    pub fn keys_of(&self, fp: &Fp) -> PlainGuard<'_, Keys> {
        self.stripes[stripe_of(fp)].0.lock()
    }

    /// What the rules see for a call on `key` (none: a call without one).
    #[inline]
    pub fn view(&self, key: Option<&Fp>) -> View<'_> {
        View::new(self, key.map(|fp| (stripe_of(fp), self.keys_of(fp))))
    }

    /// Asks `ask` of each stripe that may hold keys, in turn, until it answers (`held`: a
    /// stripe the caller holds already, asked through its guard). With a stripe held the
    /// others are only tried (a thread holding one stripe never waits for another: two
    /// such threads could wait for each other) and one another thread holds is skipped;
    /// the call path never asks this with a stripe held.
    fn each_stripe<R>(
        &self,
        held: Option<(usize, &Keys)>,
        mut ask: impl FnMut(&Keys) -> Option<R>,
    ) -> Option<R> {
        for (i, s) in self.stripes.iter().enumerate() {
            // Unmarked: it holds no keys (marked under its lock before it holds one).
            if !self.allocs.marked(i) {
                continue;
            }
            let r = match held {
                Some((h, k)) if h == i => ask(k),
                Some(_) => s.0.try_lock().and_then(|k| ask(&k)),
                None => ask(&s.0.lock()),
            };
            if r.is_some() {
                return r;
            }
        }
        None
    }

    /// Marks stripe `i` as holding keys (under its lock, as a key is added: a free that
    /// finds the stripe empty clears the mark under the same lock, so a mark is never
    /// cleared while the stripe holds a key).
    fn mark(&self, i: usize) {
        self.allocs.mark(i);
    }

    // ---- allocations ----

    /// An allocation (which no longer names a closed import, if it did).
    pub fn add_alloc(&self, base: usize, size: usize) {
        self.allocs.insert(base, size);
    }

    /// Removes the allocation starting at `base`; returns its size if there was one.
    pub fn remove_alloc(&self, base: usize) -> Option<usize> {
        self.allocs.remove(base)
    }

    /// The allocation holding `addr`, as `(base, size)`.
    pub fn alloc_holding(&self, addr: usize) -> Option<(usize, usize)> {
        self.allocs.holding(addr)
    }

    /// True while a free could break a rule: keys are open, or closed imports remembered.
    /// (Tests: the allocation calls read the marks instead.)
    #[cfg(test)]
    pub fn has_keys_or_imports(&self) -> bool {
        self.allocs.has_closed() || self.stripes.iter().any(|s| !s.0.lock().is_empty())
    }

    #[cfg(test)]
    pub fn live_allocs(&self) -> usize {
        self.allocs.len()
    }

    /// Where `addr` lies: an allocation of ours, an import, or nowhere we know.
    pub fn region_of(&self, addr: usize) -> Region {
        if let Some((base, size)) = self.allocs.holding(addr) {
            return Region::Allocated { base, size };
        }
        match self.import_holding(addr, None) {
            Some((fp, _)) => Region::Imported { fp },
            None => Region::Unknown,
        }
    }

    /// The open import holding `addr`, if one does, and its key bytes when they were
    /// given (taken in the same hold of its stripe).
    fn import_holding(
        &self,
        addr: usize,
        held: Option<(usize, &Keys)>,
    ) -> Option<(Fp, Option<Key>)> {
        self.each_stripe(held, |k| {
            k.import_holding(addr).map(|fp| (fp, k.raw_key(&fp)))
        })
    }

    // ---- exports ----

    /// A copy of the open export `fp` (tests; the call path asks its stripe).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn export(&self, fp: &Fp) -> Option<Export> {
        self.keys_of(fp).export(fp).cloned()
    }

    /// An export whose key is known by its identity only (records naming it give no
    /// fingerprint).
    /// (Tests: the call path always has the key, and closes with `close_key`.)
    #[cfg(test)]
    pub fn add_export(&self, fp: Fp, export: Export) {
        let mut k = self.keys_of(&fp);
        k.add_export(fp, export, None);
        self.mark(stripe_of(&fp));
    }

    /// An export, with its key kept for the records that name it.
    pub fn add_export_key(&self, key: Key, export: Export) {
        let mut k = self.keys_of(&key.fp);
        k.add_export(key.fp, export, Some(key));
        self.mark(stripe_of(&key.fp));
    }

    pub fn add_whitelist(&self, fp: &Fp, pids: &[i32]) {
        self.keys_of(fp).add_whitelist(fp, pids);
    }

    /// (Tests: the call path closes with `close_key`.)
    #[cfg(test)]
    pub fn remove_export(&self, fp: &Fp) -> Option<Export> {
        self.keys_of(fp).remove_export(fp)
    }

    /// The key of an open export or import with identity `fp`, when it was given.
    pub fn raw_key(&self, fp: &Fp) -> Option<Key> {
        self.keys_of(fp).raw_key(fp)
    }

    /// Open exports whose memory is the allocation starting at `base` (or, for memory the
    /// shim did not see allocated, whose range starts at `base`): what a free of `base`
    /// leaves without memory. Asks every marked stripe, and clears the marks of those
    /// found holding no keys any more: a stripe's mark is set as its first key comes and
    /// cleared here, rather than at its last close, so that a thread exporting and closing
    /// one key at a time does not write the shared marks twice per pair; a free takes the
    /// whole path while any is marked.
    pub fn exports_freed_with(&self, base: usize) -> Vec<Fp> {
        let mut fps = Vec::new();
        for (i, s) in self.stripes.iter().enumerate() {
            if self.allocs.marked(i) {
                let k = s.0.lock();
                if k.is_empty() {
                    self.allocs.unmark(i);
                }
                fps.extend(k.exports_of(base));
            }
        }
        fps
    }

    /// The first open export of `base` (`exports_freed_with`), asking no further, with its
    /// key bytes when they were given (taken in the same hold of its stripe).
    fn first_export_of(
        &self,
        base: usize,
        held: Option<(usize, &Keys)>,
    ) -> Option<(Fp, Option<Key>)> {
        self.each_stripe(held, |k| {
            let fp = *k.exports_of(base).next()?;
            Some((fp, k.raw_key(&fp)))
        })
    }

    pub fn live_exports(&self) -> usize {
        self.stripes.iter().map(|s| s.0.lock().live_exports()).sum()
    }

    // ---- imports ----

    /// A copy of the open import `fp` (tests; the call path asks its stripe).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn import(&self, fp: &Fp) -> Option<Import> {
        self.keys_of(fp).import(fp).cloned()
    }

    /// Records a successful import of a key known by its identity only; repeated imports
    /// of one key count references.
    /// (Tests: the call path always has the key, and closes with `close_key`.)
    #[cfg(test)]
    pub fn add_import(&self, fp: Fp, addr: usize, size: Option<usize>) {
        self.import_of(fp, None, addr, size);
    }

    /// Records a successful import, with its key kept for the records that name it.
    pub fn add_import_key(&self, key: Key, addr: usize, size: Option<usize>) {
        self.import_of(key.fp, Some(key), addr, size);
    }

    /// (A closed import's address handed out again by an import stays among the closed
    /// ones: while the import is open the address is imported either way, and its close
    /// puts it there again. Only an allocation takes it out.)
    fn import_of(&self, fp: Fp, key: Option<Key>, addr: usize, size: Option<usize>) {
        let mut k = self.keys_of(&fp);
        k.add_import(fp, key, addr, size);
        self.mark(stripe_of(&fp));
    }

    /// Drops one reference; returns true when this closed the import for good.
    /// (Tests and fuzzing: the call path closes with `close_key`.)
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn close_import(&self, fp: &Fp) -> bool {
        self.close(fp, true)
    }

    /// A successful close of `fp`, as the runtime does it: a process that imported its own
    /// key closes the import first (one reference), the export with its next close. True
    /// when this closed the import or the export for good.
    pub fn close_key(&self, fp: &Fp) -> bool {
        self.close(fp, false)
    }

    fn close(&self, fp: &Fp, imports_only: bool) -> bool {
        let mut k = self.keys_of(fp);
        match k.close(fp, imports_only) {
            Closed::Nothing | Closed::Reference => false,
            Closed::Export => true,
            Closed::Import { addr, key } => {
                // Under the stripe's lock: the address is never neither open nor closed.
                self.allocs.add_closed(addr, key);
                true
            }
        }
    }

    /// True when `addr` was returned by an import, open or closed since (until an
    /// allocation hands the address out again).
    pub fn is_imported_addr(&self, addr: usize) -> bool {
        self.import_returned_at(addr, None).is_some()
    }

    /// When `addr` was returned by an import, open or closed since (until an allocation
    /// hands the address out again): the key it was imported with, when given.
    fn import_returned_at(&self, addr: usize, held: Option<(usize, &Keys)>) -> Option<Option<Key>> {
        self.allocs
            .closed_import(addr)
            .or_else(|| self.each_stripe(held, |k| k.imported_at(addr)))
    }

    pub fn live_imports(&self) -> usize {
        self.stripes.iter().map(|s| s.0.lock().live_imports()).sum()
    }

    // ---- the whole process ----

    /// Keys still open, for `exit.leak`: exports first, then imports, each sorted by
    /// fingerprint; with each its bytes when they were given (taken with the list, so that
    /// another thread's close cannot leave a listed key without them).
    pub fn open_keys(&self) -> Vec<(Fp, bool, Option<Key>)> {
        let mut open = Vec::new();
        for s in &self.stripes {
            open.extend(s.0.lock().open());
        }
        open.sort_by_key(|&(fp, exported, _)| (!exported, fp));
        open
    }

    /// Holds every stripe across a fork, in order (before the allocation shards).
    pub(crate) fn hold_for_fork(&'static self) {
        for s in &self.stripes {
            s.0.hold_for_fork();
        }
    }

    /// Forgets every key (a fork child owns none of its parent's; the caller empties the
    /// allocation table, and its marks, itself).
    pub(crate) fn clear_keys(&self) {
        for s in &self.stripes {
            *s.0.lock() = Keys::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fp {
        Fp([n; 8])
    }

    /// The `n`th of the fingerprints that fall in stripe `stripe`.
    fn fp_in(stripe: usize, n: usize) -> Fp {
        (0u64..)
            .map(|i| Fp(i.to_le_bytes()))
            .filter(|f| stripe_of(f) == stripe)
            .nth(n)
            .unwrap()
    }

    /// Places taken in stripe `i`'s export table.
    fn places(s: &ProcessState, i: usize) -> usize {
        s.stripes[i].0.lock().exports.slots.len()
    }

    #[test]
    fn region_lookup() {
        let s = ProcessState::new();
        s.add_alloc(0x10000, 0x3000);
        s.add_alloc(0x20000, 0x1000);
        assert_eq!(
            s.region_of(0x10000),
            Region::Allocated {
                base: 0x10000,
                size: 0x3000
            }
        );
        assert_eq!(
            s.region_of(0x12fff),
            Region::Allocated {
                base: 0x10000,
                size: 0x3000
            }
        );
        assert_eq!(s.region_of(0x13000), Region::Unknown);
        assert_eq!(s.region_of(0xffff), Region::Unknown);
        s.add_import(fp(1), 0x50000, None);
        assert_eq!(s.region_of(0x50000), Region::Imported { fp: fp(1) });
        assert_eq!(s.region_of(0x51000), Region::Unknown);
        s.add_import(fp(2), 0x60000, Some(0x2000));
        assert_eq!(s.region_of(0x61000), Region::Imported { fp: fp(2) });
        assert_eq!(s.remove_alloc(0x10000), Some(0x3000));
        assert_eq!(s.region_of(0x10000), Region::Unknown);
        // The same answers once the allocation has moved out of its shard's recent array
        // into the ordered map (64 newer allocations in the same 4 MiB granule).
        s.add_alloc(0x10000, 0x3000);
        for i in 0..64 {
            s.add_alloc(0x100000 + i * 0x1000, 0x1000);
        }
        assert_eq!(
            s.region_of(0x12fff),
            Region::Allocated {
                base: 0x10000,
                size: 0x3000
            }
        );
        assert_eq!(s.region_of(0x13000), Region::Unknown);
        s.add_alloc(0x30000, 0x1000);
        assert_eq!(
            s.region_of(0x30010),
            Region::Allocated {
                base: 0x30000,
                size: 0x1000
            }
        );
        assert_eq!(s.remove_alloc(0x10000), Some(0x3000));
        assert_eq!(s.remove_alloc(0x30000), Some(0x1000));
        assert_eq!(s.remove_alloc(0x30000), None);
        assert_eq!(s.live_allocs(), 65);
    }

    #[test]
    fn a_million_allocations_stay_fast_to_search() {
        // 100,000 range questions over 1,000,000 allocations: a linear search would make
        // this 10^11 steps (hours); a logarithmic one is a fraction of a second.
        let s = ProcessState::new();
        let at = |i: usize| 0x1000_0000 + i * 0x2000;
        for i in 0..1_000_000usize {
            s.add_alloc(at(i), 0x1000);
        }
        assert_eq!(s.live_allocs(), 1_000_000);
        let mut x = 12345usize;
        for _ in 0..100_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (x >> 33) % 1_000_000;
            let off = (x >> 20) & 0x1fff;
            let want = if off < 0x1000 {
                Region::Allocated {
                    base: at(i),
                    size: 0x1000,
                }
            } else {
                Region::Unknown
            };
            assert_eq!(s.region_of(at(i) + off), want);
        }
        assert_eq!(s.remove_alloc(at(777_777)), Some(0x1000));
        assert_eq!(s.region_of(at(777_777) + 0x10), Region::Unknown);
        assert_eq!(s.live_allocs(), 999_999);
    }

    #[test]
    fn imports_count_references_and_remember_closed_addresses() {
        let s = ProcessState::new();
        s.add_import(fp(1), 0x7000, None);
        s.add_import(fp(1), 0x7000, None);
        assert_eq!(s.import(&fp(1)).unwrap().refs, 2);
        assert!(!s.close_import(&fp(1)));
        assert!(s.is_imported_addr(0x7000));
        assert!(s.close_import(&fp(1)));
        assert_eq!(s.live_imports(), 0);
        assert!(s.is_imported_addr(0x7000), "closed imports are remembered");
        s.add_alloc(0x7000, 0x1000);
        assert!(
            !s.is_imported_addr(0x7000),
            "until the address is handed out again"
        );
        assert!(!s.close_import(&fp(9)));
    }

    #[test]
    fn closed_exports_places_are_reused_without_mixing_keys() {
        // The keys of one stripe, whose places are that stripe's.
        let fp = |n: u8| fp_in(5, n as usize);
        let ex = |p: usize| Export {
            dev_ptr: p,
            size: 0x1000,
            flags: 0,
            alloc_base: Some(p),
            whitelist: vec![],
            ledger_at: None,
        };
        let s = ProcessState::new();
        for n in 0..100u8 {
            s.add_export(fp(n), ex(n as usize * 0x1000));
        }
        // Close every other key, then open new ones: they take the closed places.
        for n in (0..100u8).step_by(2) {
            assert_eq!(
                s.remove_export(&fp(n)).map(|e| e.dev_ptr),
                Some(n as usize * 0x1000)
            );
            assert!(s.remove_export(&fp(n)).is_none(), "closed once");
        }
        for n in 100..150u8 {
            s.add_export(fp(n), ex(n as usize * 0x1000));
        }
        assert_eq!(
            places(&s, 5),
            100,
            "no place added while closed ones were free"
        );
        // The same key exported again replaces its export in place.
        s.add_export(fp(101), ex(0x7777_0000));
        assert_eq!(s.live_exports(), 100);
        for n in 0..150u8 {
            let want = match n {
                101 => Some(0x7777_0000),
                _ if n < 100 && n % 2 == 0 => None,
                _ => Some(n as usize * 0x1000),
            };
            assert_eq!(s.export(&fp(n)).map(|e| e.dev_ptr), want, "key {n}");
        }
        s.add_whitelist(&fp(149), &[7]);
        assert_eq!(s.export(&fp(149)).unwrap().whitelist, vec![7]);
        assert_eq!(s.exports_freed_with(0x7777_0000).len(), 1);
        assert_eq!(s.exports_freed_with(0).len(), 0, "key 0 was closed");
        // Places closed by other threads (other stripes) are taken too: closed on a
        // thread whose stack lies in another stripe than this one's (threads are started
        // until one does; their stacks are separate mappings).
        let mine = crate::sync::this_stripe();
        let mut closed = false;
        for _ in 0..64 {
            std::thread::scope(|sc| {
                sc.spawn(|| {
                    if crate::sync::this_stripe() != mine {
                        for n in 100..150u8 {
                            assert!(s.remove_export(&fp(n)).is_some());
                        }
                        closed = true;
                    }
                });
            });
            if closed {
                break;
            }
        }
        assert!(closed, "no thread with a stripe other than this one's");
        for n in 150..200u8 {
            s.add_export(fp(n), ex(n as usize * 0x1000));
        }
        assert_eq!(
            places(&s, 5),
            100,
            "no place added while another thread's closed ones were free"
        );
    }

    /// A key this process exported and imported: the first close takes the import (one
    /// reference at a time), the next the export; then nothing is left to close.
    #[test]
    fn close_key_takes_the_import_first() {
        let s = ProcessState::new();
        s.add_export(
            fp(3),
            Export {
                dev_ptr: 0x30000,
                size: 0x1000,
                flags: 0,
                alloc_base: None,
                whitelist: vec![],
                ledger_at: None,
            },
        );
        s.add_import(fp(3), 0x70000, None);
        s.add_import(fp(3), 0x70000, None);
        assert!(!s.close_key(&fp(3)), "one of two references");
        assert!(s.export(&fp(3)).is_some() && s.import(&fp(3)).is_some());
        assert!(s.close_key(&fp(3)), "the import, for good");
        assert!(s.import(&fp(3)).is_none() && s.export(&fp(3)).is_some());
        assert!(s.is_imported_addr(0x70000));
        assert!(s.close_key(&fp(3)), "then the export");
        assert!(s.export(&fp(3)).is_none());
        assert!(!s.close_key(&fp(3)));
    }

    #[test]
    fn exports_by_allocation() {
        let s = ProcessState::new();
        s.add_export(
            fp(1),
            Export {
                dev_ptr: 0x11000,
                size: 0x1000,
                flags: 0,
                alloc_base: Some(0x10000),
                whitelist: vec![],
                ledger_at: None,
            },
        );
        s.add_export(
            fp(2),
            Export {
                dev_ptr: 0x90000,
                size: 0x1000,
                flags: 1,
                alloc_base: None,
                whitelist: vec![],
                ledger_at: None,
            },
        );
        assert_eq!(s.exports_freed_with(0x10000).len(), 1);
        assert_eq!(s.exports_freed_with(0x11000).len(), 0);
        assert_eq!(s.exports_freed_with(0x90000).len(), 1);
        s.add_whitelist(&fp(1), &[5, 6]);
        assert_eq!(s.export(&fp(1)).unwrap().whitelist, vec![5, 6]);
        assert_eq!(
            s.open_keys(),
            vec![(fp(1), true, None), (fp(2), true, None)]
        );
        assert!(s.remove_export(&fp(1)).is_some());
        assert_eq!(s.live_exports(), 1);
        let k = Key::from_bytes(b"k");
        s.add_import_key(k, 0x5000, None);
        assert_eq!(s.raw_key(&k.fp), Some(k));
        assert!(s.close_import(&k.fp));
        assert_eq!(s.raw_key(&k.fp), None, "forgotten once closed");
        // An open export's key, until it is closed.
        let e = Key::from_bytes(b"e");
        let export = s.export(&fp(2)).unwrap();
        s.add_export_key(e, export);
        assert_eq!(s.raw_key(&e.fp), Some(e));
        assert_eq!(s.raw_key(&fp(2)), None, "added by identity only");
        assert!(s.remove_export(&e.fp).is_some());
        assert_eq!(s.raw_key(&e.fp), None, "forgotten once closed");
    }
}

/// The striping itself: which locks a call takes, and the questions across stripes.
#[cfg(test)]
mod stripe_tests {
    use super::*;

    /// The `n`th of the fingerprints that fall in stripe `stripe`.
    fn fp_in(stripe: usize, n: usize) -> Fp {
        (0u64..)
            .map(|i| Fp(i.to_le_bytes()))
            .filter(|f| stripe_of(f) == stripe)
            .nth(n)
            .unwrap()
    }

    fn export_at(p: usize) -> Export {
        Export {
            dev_ptr: p,
            size: 0x1000,
            flags: 0,
            alloc_base: Some(p),
            whitelist: vec![],
            ledger_at: None,
        }
    }

    #[test]
    fn keys_of_different_stripes_take_different_locks() {
        let s = ProcessState::new();
        let (a, b) = (fp_in(2, 0), fp_in(9, 0));
        s.add_export(a, export_at(0x10000));
        s.add_import(b, 0x70000, None);
        // The rules of a call on `a` hold `a`'s stripe: `b`'s stays free for others.
        let view = s.view(Some(&a));
        assert!(view.export(&a).is_some());
        assert!(s.stripes[9].0.try_lock().is_some(), "b's stripe is free");
        assert!(s.stripes[2].0.try_lock().is_none(), "a's stripe is held");
        std::thread::scope(|sc| {
            sc.spawn(|| {
                assert!(s.close_import(&b));
                s.add_import(b, 0x80000, Some(0x1000));
            });
        });
        drop(view);
        assert_eq!(s.import(&b).map(|i| i.addr), Some(0x80000));
        assert_eq!((s.live_exports(), s.live_imports()), (1, 1));
        // Each stripe holds its own keys only.
        assert_eq!(s.stripes[2].0.lock().live_exports(), 1);
        assert_eq!(s.stripes[9].0.lock().live_imports(), 1);
        assert!(s
            .stripes
            .iter()
            .enumerate()
            .all(|(i, k)| i == 2 || i == 9 || k.0.lock().is_empty()));
    }

    #[test]
    fn questions_across_keys_are_answered_from_every_stripe() {
        let s = ProcessState::new();
        s.add_alloc(0x100000, 0x10000);
        let k1 = Key::from_bytes(b"exported from the allocation");
        let k2 = Key::from_bytes(b"imported, in another stripe");
        let (e1, e2) = (fp_in(0, 1), fp_in(15, 1));
        s.add_export(e1, export_at(0x100000));
        s.add_export(e2, export_at(0x100000));
        s.add_export_key(k1, export_at(0x100000));
        s.add_import_key(k2, 0x900000, Some(0x2000));
        assert_eq!(
            s.open_keys().iter().map(|k| k.1).collect::<Vec<_>>(),
            [true, true, true, false],
            "exports first"
        );
        let mut freed = s.exports_freed_with(0x100000);
        freed.sort();
        let mut want = vec![e1, e2, k1.fp];
        want.sort();
        assert_eq!(freed, want, "every stripe's exports of the allocation");
        assert_eq!(s.region_of(0x901000), Region::Imported { fp: k2.fp });
        assert!(s.is_imported_addr(0x900000) && !s.is_imported_addr(0x901000));
        // A call without a key (an export, a free) asks through a view of no stripe, and
        // gets the key bytes the answer named.
        let v = s.view(None);
        assert_eq!(v.region_of(0x901000), Region::Imported { fp: k2.fp });
        assert_eq!(v.raw_key(&k2.fp), Some(k2));
        assert!(v.an_export_of(0x100000).is_some());
        assert!(v.import_returned_at(0x900000).is_some());
        assert_eq!(v.raw_key(&k1.fp), Some(k1));
        drop(v);
        // A view holding one stripe answers about the others too while they are free.
        let v = s.view(Some(&e1));
        assert_eq!(v.region_of(0x900010), Region::Imported { fp: k2.fp });
        assert_eq!(v.raw_key(&k1.fp), Some(k1));
        drop(v);
        // Closed: the address is still one a free must not take, in the allocation
        // table's shard, until an allocation hands it out again.
        assert!(s.close_key(&k2.fp));
        assert_eq!(s.region_of(0x900000), Region::Unknown);
        assert!(s.is_imported_addr(0x900000));
        s.add_import_key(k2, 0x900000, None);
        assert!(s.close_key(&k2.fp));
        assert!(s.is_imported_addr(0x900000), "imported and closed again");
        s.add_alloc(0x900000, 0x1000);
        assert!(!s.is_imported_addr(0x900000));
    }

    #[test]
    fn marks_follow_the_stripes_and_a_fork_style_reset_empties_them_all() {
        let s = ProcessState::new();
        assert!(!s.has_keys_or_imports());
        assert!(
            s.allocs.quiet_insert(0x5000, 0x1000),
            "no keys: the quiet path"
        );
        let fps: Vec<Fp> = (0..STRIPES).map(|i| fp_in(i, 0)).collect();
        for (i, fp) in fps.iter().enumerate() {
            s.add_export(*fp, export_at(0x10000 * (i + 1)));
            assert!(s.allocs.marked(i));
        }
        s.add_import(fp_in(3, 1), 0x7000, None);
        assert!(s.has_keys_or_imports());
        assert_eq!(
            s.allocs.quiet_remove(0x5000),
            None,
            "a free takes the whole path"
        );
        // Closed: the stripe's mark stays until a free finds it empty.
        for fp in &fps {
            assert!(s.close_key(fp));
        }
        assert!(s.allocs.marked(0));
        assert!(s.exports_freed_with(0x5000).is_empty());
        assert!(
            !s.allocs.marked(0),
            "cleared by the free that found it empty"
        );
        assert!(s.allocs.marked(3), "stripe 3 still holds an import");
        assert_eq!(s.allocs.quiet_remove(0x5000), None);
        // A fork child: every stripe and shard emptied, every mark cleared.
        for fp in &fps {
            s.add_export(*fp, export_at(0x1000));
        }
        s.close_import(&fp_in(3, 1));
        assert!(s.allocs.has_closed());
        s.clear_keys();
        s.allocs.clear();
        assert!(!s.has_keys_or_imports());
        assert!(s.stripes.iter().all(|k| k.0.lock().is_empty()));
        assert!(s.open_keys().is_empty());
        assert!(!s.is_imported_addr(0x7000));
        assert_eq!(
            s.allocs.quiet_remove(0x5000),
            Some(None),
            "the quiet path again"
        );
    }
}
