//! This process's view of device memory and keys: live allocations (by start address, so
//! "which allocation holds this address" is a logarithmic look-up even with millions live;
//! the table itself is `allocs`, which the allocation calls also reach without this
//! state's lock), open exports, open imports with their reference counts, and addresses of
//! closed imports. The rules read it, the entry points update it after a call succeeds.

use crate::allocs::{Allocs, AllocsRef};
use crate::key::{Fp, Key};
use std::collections::{HashMap, HashSet};
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

/// An export this process made and has not closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    pub dev_ptr: usize,
    pub size: usize,
    pub flags: u64,
    /// The start of the allocation the range lies in, when the shim saw it.
    pub alloc_base: Option<usize>,
    pub whitelist: Vec<i32>,
    /// Where the ledger recorded it, once it did: the exporter's close asks there,
    /// without the ledger's lock, whether any importer ever came.
    pub ledger_at: Option<crate::ledger::ExportAt>,
}

impl Export {
    /// What a closed export's place holds until it is taken again.
    const CLOSED: Export = Export {
        dev_ptr: 0,
        size: 0,
        flags: 0,
        alloc_base: None,
        whitelist: Vec::new(),
        ledger_at: None,
    };

    pub fn validation_disabled(&self) -> bool {
        self.flags == 1
    }
}

/// Open exports: a small index from fingerprint to a place in `slots`, where the exports
/// themselves are; a closed export's place is the next one taken. With tens of thousands
/// of keys open a map holding the exports themselves spread a new key's entry over some
/// 9 MiB (72-byte entries at half load), a cache and TLB miss on each export; the index
/// holds 16-byte entries (2 MiB at 65,536 keys), and the place an export and close reuse
/// stays warm.
#[derive(Default, Debug)]
struct ExportTable {
    index: FpMap<u32>,
    slots: Vec<Export>,
    /// Beside each place, the export's key when the caller gave it: records name keys by
    /// a fingerprint made from the key's bytes, and a violation or `exit.leak` may name
    /// an open key that is not its call's argument.
    keys: Vec<Option<Key>>,
    /// Places of closed exports, the last closed on top, by the stripe of the thread that
    /// closed them (`sync::this_stripe`): a thread's next export takes the place its own
    /// last close left, whose lines its core holds, rather than one another thread just
    /// wrote (two lines of export and two of key passed between the cores per export).
    /// Another stripe's place when its own has none, so the places never outnumber the
    /// most exports open at once.
    free: [Vec<u32>; crate::sync::STRIPES],
}

impl ExportTable {
    fn get(&self, fp: &Fp) -> Option<&Export> {
        self.index.get(fp).map(|&i| &self.slots[i as usize])
    }

    fn get_mut(&mut self, fp: &Fp) -> Option<&mut Export> {
        self.index.get(fp).map(|&i| &mut self.slots[i as usize])
    }

    fn insert(&mut self, fp: Fp, export: Export, key: Option<Key>) {
        use std::collections::hash_map::Entry;
        match self.index.entry(fp) {
            Entry::Occupied(o) => {
                let i = *o.get() as usize;
                self.slots[i] = export;
                self.keys[i] = key;
            }
            Entry::Vacant(v) => {
                let i = match take_free(&mut self.free) {
                    Some(i) => {
                        self.slots[i as usize] = export;
                        self.keys[i as usize] = key;
                        i
                    }
                    None => {
                        self.slots.push(export);
                        self.keys.push(key);
                        (self.slots.len() - 1) as u32
                    }
                };
                v.insert(i);
            }
        }
    }

    fn remove(&mut self, fp: &Fp) -> Option<Export> {
        let i = self.index.remove(fp)?;
        let e = std::mem::replace(&mut self.slots[i as usize], Export::CLOSED);
        self.keys[i as usize] = None;
        self.free[crate::sync::this_stripe()].push(i);
        Some(e)
    }

    fn key(&self, fp: &Fp) -> Option<Key> {
        self.index.get(fp).and_then(|&i| self.keys[i as usize])
    }

    fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn keys(&self) -> impl Iterator<Item = &Fp> {
        self.index.keys()
    }

    fn iter(&self) -> impl Iterator<Item = (&Fp, &Export)> {
        self.index
            .iter()
            .map(|(fp, &i)| (fp, &self.slots[i as usize]))
    }
}

/// A closed export's place (`ExportTable::free`): the calling thread's stripe's last,
/// else any.
fn take_free(free: &mut [Vec<u32>]) -> Option<u32> {
    if let Some(i) = free[crate::sync::this_stripe()].pop() {
        return Some(i);
    }
    free.iter_mut().find_map(Vec::pop)
}

/// An import this process holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    pub addr: usize,
    /// Size of the shared range when the ledger knew it.
    pub size: Option<usize>,
    pub refs: u32,
    /// The key, when the caller gave it (as `ExportTable::keys`).
    pub key: Option<Key>,
}

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

/// Live allocations are in `allocs` (sharded by address, each shard under a lock of its
/// own); the rest is plain data under the runtime's one state lock. Whether keys are open
/// or closed imports remembered is copied into `allocs` after every change, so that the
/// allocation calls can tell without this state whether they may skip it.
#[derive(Default, Debug)]
pub struct ProcessState {
    allocs: AllocsRef,
    exports: ExportTable,
    imports: FpMap<Import>,
    // Spelled out, not as a type alias: cbindgen (the header's generator, which reads every
    // item of the crate) fails on an alias of a two-parameter HashSet.
    closed_imports: HashSet<usize, BuildHasherDefault<AddrHasher>>,
}

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

    /// Copies `has_keys_or_imports` where the allocation calls look.
    fn keys_changed(&self) {
        self.allocs.set_keys_or_imports(self.has_keys_or_imports());
    }

    // ---- allocations ----

    pub fn add_alloc(&mut self, base: usize, size: usize) {
        self.allocs.insert(base, size);
        // The address is handed out again: it no longer names a closed import.
        if !self.closed_imports.is_empty() && self.closed_imports.remove(&base) {
            self.keys_changed();
        }
    }

    /// Removes the allocation starting at `base`; returns its size if there was one.
    pub fn remove_alloc(&mut self, base: usize) -> Option<usize> {
        self.allocs.remove(base)
    }

    /// True while a free could break a rule: keys are open, or closed imports remembered.
    pub fn has_keys_or_imports(&self) -> bool {
        !(self.exports.is_empty() && self.imports.is_empty() && self.closed_imports.is_empty())
    }

    pub fn live_allocs(&self) -> usize {
        self.allocs.len()
    }

    /// Where `addr` lies: an allocation of ours, an import, or nowhere we know.
    pub fn region_of(&self, addr: usize) -> Region {
        if let Some((base, size)) = self.allocs.holding(addr) {
            return Region::Allocated { base, size };
        }
        for (fp, imp) in &self.imports {
            let inside = match imp.size {
                Some(size) => addr >= imp.addr && addr - imp.addr < size.max(1),
                None => addr == imp.addr,
            };
            if inside {
                return Region::Imported { fp: *fp };
            }
        }
        Region::Unknown
    }

    // ---- exports ----

    pub fn export(&self, fp: &Fp) -> Option<&Export> {
        self.exports.get(fp)
    }

    /// An export whose key is known by its identity only (records naming it give no
    /// fingerprint).
    /// (Tests: the call path always has the key, and closes with `close_key`.)
    #[cfg(test)]
    pub fn add_export(&mut self, fp: Fp, export: Export) {
        self.exports.insert(fp, export, None);
        self.keys_changed();
    }

    /// An export, with its key kept for the records that name it.
    pub fn add_export_key(&mut self, key: Key, export: Export) {
        self.exports.insert(key.fp, export, Some(key));
        self.keys_changed();
    }

    pub fn add_whitelist(&mut self, fp: &Fp, pids: &[i32]) {
        if let Some(e) = self.exports.get_mut(fp) {
            e.whitelist.extend_from_slice(pids);
        }
    }

    pub fn remove_export(&mut self, fp: &Fp) -> Option<Export> {
        let e = self.exports.remove(fp);
        self.keys_changed();
        e
    }

    /// The key of an open export or import with identity `fp`, when it was given.
    pub fn raw_key(&self, fp: &Fp) -> Option<Key> {
        self.exports
            .key(fp)
            .or_else(|| self.imports.get(fp).and_then(|i| i.key))
    }

    /// Open exports whose memory is the allocation starting at `base` (or, for memory the
    /// shim did not see allocated, whose range starts at `base`).
    pub fn open_exports_of(&self, base: usize) -> impl Iterator<Item = (&Fp, &Export)> {
        self.exports
            .iter()
            .filter(move |(_, e)| e.alloc_base.unwrap_or(e.dev_ptr) == base)
    }

    pub fn live_exports(&self) -> usize {
        self.exports.len()
    }

    // ---- imports ----

    pub fn import(&self, fp: &Fp) -> Option<&Import> {
        self.imports.get(fp)
    }

    /// Records a successful import of a key known by its identity only; repeated imports
    /// of one key count references.
    /// (Tests: the call path always has the key, and closes with `close_key`.)
    #[cfg(test)]
    pub fn add_import(&mut self, fp: Fp, addr: usize, size: Option<usize>) {
        self.import_of(fp, None, addr, size);
    }

    /// Records a successful import, with its key kept for the records that name it.
    pub fn add_import_key(&mut self, key: Key, addr: usize, size: Option<usize>) {
        self.import_of(key.fp, Some(key), addr, size);
    }

    fn import_of(&mut self, fp: Fp, key: Option<Key>, addr: usize, size: Option<usize>) {
        if !self.closed_imports.is_empty() {
            self.closed_imports.remove(&addr);
        }
        self.imports
            .entry(fp)
            .and_modify(|i| {
                i.refs += 1;
                i.key = i.key.or(key);
            })
            .or_insert(Import {
                addr,
                size,
                refs: 1,
                key,
            });
        self.keys_changed();
    }

    /// Drops one reference; returns true when this closed the import for good.
    /// (Tests and fuzzing: the call path closes with `close_key`.)
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn close_import(&mut self, fp: &Fp) -> bool {
        self.close_import_or(fp, |_| false)
    }

    /// A successful close of `fp`, as the runtime does it: a process that imported its own
    /// key closes the import first (one reference), the export with its next close. True
    /// when this closed the import or the export for good.
    pub fn close_key(&mut self, fp: &Fp) -> bool {
        self.close_import_or(fp, |s| s.remove_export(fp).is_some())
    }

    /// `close_import`, or `otherwise` when `fp` is not imported.
    fn close_import_or(&mut self, fp: &Fp, otherwise: impl FnOnce(&mut Self) -> bool) -> bool {
        use std::collections::hash_map::Entry;
        let Entry::Occupied(mut o) = self.imports.entry(*fp) else {
            return otherwise(self);
        };
        o.get_mut().refs -= 1;
        if o.get().refs != 0 {
            return false;
        }
        let addr = o.remove().addr;
        self.closed_imports.insert(addr);
        self.keys_changed();
        true
    }

    /// True when `addr` was returned by an import, open or closed since (until the address
    /// is handed out again by an allocation or import).
    pub fn is_imported_addr(&self, addr: usize) -> bool {
        self.closed_imports.contains(&addr) || self.imports.values().any(|i| i.addr == addr)
    }

    pub fn live_imports(&self) -> usize {
        self.imports.len()
    }

    /// Keys still open, for `exit.leak`: exports first, then imports, each sorted.
    pub fn open_keys(&self) -> Vec<(Fp, bool)> {
        let mut exports: Vec<_> = self.exports.keys().map(|fp| (*fp, true)).collect();
        let mut imports: Vec<_> = self.imports.keys().map(|fp| (*fp, false)).collect();
        exports.sort();
        imports.sort();
        exports.extend(imports);
        exports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fp {
        Fp([n; 8])
    }

    #[test]
    fn region_lookup() {
        let mut s = ProcessState::new();
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
        let mut s = ProcessState::new();
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
        let mut s = ProcessState::new();
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
        let ex = |p: usize| Export {
            dev_ptr: p,
            size: 0x1000,
            flags: 0,
            alloc_base: Some(p),
            whitelist: vec![],
            ledger_at: None,
        };
        let mut s = ProcessState::new();
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
            s.exports.slots.len(),
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
        assert_eq!(s.open_exports_of(0x7777_0000).count(), 1);
        assert_eq!(s.open_exports_of(0).count(), 0, "key 0 was closed");
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
            s.exports.slots.len(),
            100,
            "no place added while another thread's closed ones were free"
        );
    }

    /// A key this process exported and imported: the first close takes the import (one
    /// reference at a time), the next the export; then nothing is left to close.
    #[test]
    fn close_key_takes_the_import_first() {
        let mut s = ProcessState::new();
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
        let mut s = ProcessState::new();
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
        assert_eq!(s.open_exports_of(0x10000).count(), 1);
        assert_eq!(s.open_exports_of(0x11000).count(), 0);
        assert_eq!(s.open_exports_of(0x90000).count(), 1);
        s.add_whitelist(&fp(1), &[5, 6]);
        assert_eq!(s.export(&fp(1)).unwrap().whitelist, vec![5, 6]);
        assert_eq!(s.open_keys(), vec![(fp(1), true), (fp(2), true)]);
        assert!(s.remove_export(&fp(1)).is_some());
        assert_eq!(s.live_exports(), 1);
        let k = Key::from_bytes(b"k");
        s.add_import_key(k, 0x5000, None);
        assert_eq!(s.raw_key(&k.fp), Some(k));
        assert!(s.close_import(&k.fp));
        assert_eq!(s.raw_key(&k.fp), None, "forgotten once closed");
        // An open export's key, until it is closed.
        let e = Key::from_bytes(b"e");
        let export = s.export(&fp(2)).cloned().unwrap();
        s.add_export_key(e, export);
        assert_eq!(s.raw_key(&e.fp), Some(e));
        assert_eq!(s.raw_key(&fp(2)), None, "added by identity only");
        assert!(s.remove_export(&e.fp).is_some());
        assert_eq!(s.raw_key(&e.fp), None, "forgotten once closed");
    }
}
