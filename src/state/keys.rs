//! One stripe's keys: the open exports and imports whose fingerprints fall in it
//! (`ProcessState` keeps `STRIPES` of these, each under a lock of its own). Plain data: the
//! stripe's lock, and what the other stripes and the allocation table hold, are the
//! state's business.

use super::FpMap;
use crate::key::{Fp, Key};

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

    /// The allocation it was made from (or, for memory the shim did not see allocated,
    /// where its range starts): what a free of that address leaves it without.
    pub fn base(&self) -> usize {
        self.alloc_base.unwrap_or(self.dev_ptr)
    }
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

impl Import {
    /// True when `addr` lies in the imported range (its first byte when the size is not
    /// known).
    pub fn holds(&self, addr: usize) -> bool {
        match self.size {
            Some(size) => addr >= self.addr && addr - self.addr < size.max(1),
            None => addr == self.addr,
        }
    }
}

/// Open exports: a small index from fingerprint to a place in `slots`, where the exports
/// themselves are; a closed export's place is the next one taken. With tens of thousands
/// of keys open a map holding the exports themselves spread a new key's entry over some
/// 9 MiB (72-byte entries at half load), a cache and TLB miss on each export; the index
/// holds 16-byte entries (2 MiB at 65,536 keys), and the place an export and close reuse
/// stays warm.
#[derive(Default, Debug)]
pub(super) struct ExportTable {
    index: FpMap<u32>,
    pub(super) slots: Vec<Export>,
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
    #[inline]
    pub(super) fn get(&self, fp: &Fp) -> Option<&Export> {
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

    /// Closes the export of `fp`, if open: its place holds `Export::CLOSED` again (its
    /// whitelist freed there).
    fn discard(&mut self, fp: &Fp) -> bool {
        let Some(i) = self.index.remove(fp) else {
            return false;
        };
        self.slots[i as usize] = Export::CLOSED;
        self.keys[i as usize] = None;
        self.free[crate::sync::this_stripe()].push(i);
        true
    }

    /// `discard`, with a copy of what it closed (tests).
    #[cfg(test)]
    fn remove(&mut self, fp: &Fp) -> Option<Export> {
        let e = self.get(fp).cloned()?;
        self.discard(fp);
        Some(e)
    }

    fn key(&self, fp: &Fp) -> Option<Key> {
        self.index.get(fp).and_then(|&i| self.keys[i as usize])
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

/// What a successful close did to a stripe's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Closed {
    /// Nothing open under the key.
    Nothing,
    /// One of several references to an import.
    Reference,
    /// The import, for good; it was at `addr`, imported with `key` (when given).
    Import { addr: usize, key: Option<Key> },
    /// The export.
    Export,
}

/// One stripe's open exports and imports.
#[derive(Default, Debug)]
pub struct Keys {
    pub(super) exports: ExportTable,
    imports: FpMap<Import>,
}

impl Keys {
    #[inline]
    pub fn export(&self, fp: &Fp) -> Option<&Export> {
        self.exports.get(fp)
    }

    #[inline]
    pub fn import(&self, fp: &Fp) -> Option<&Import> {
        self.imports.get(fp)
    }

    /// The key of an open export or import with identity `fp`, when it was given.
    pub fn raw_key(&self, fp: &Fp) -> Option<Key> {
        self.exports
            .key(fp)
            .or_else(|| self.imports.get(fp).and_then(|i| i.key))
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.exports.index.is_empty() && self.imports.is_empty()
    }

    pub(super) fn live_exports(&self) -> usize {
        self.exports.index.len()
    }

    pub(super) fn live_imports(&self) -> usize {
        self.imports.len()
    }

    pub(super) fn add_export(&mut self, fp: Fp, export: Export, key: Option<Key>) {
        self.exports.insert(fp, export, key);
    }

    pub(super) fn add_whitelist(&mut self, fp: &Fp, pids: &[i32]) {
        if let Some(e) = self.exports.get_mut(fp) {
            e.whitelist.extend_from_slice(pids);
        }
    }

    #[cfg(test)]
    pub(super) fn remove_export(&mut self, fp: &Fp) -> Option<Export> {
        self.exports.remove(fp)
    }

    /// An import; repeated imports of one key count references.
    pub(super) fn add_import(
        &mut self,
        fp: Fp,
        key: Option<Key>,
        addr: usize,
        size: Option<usize>,
    ) {
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
    }

    /// A successful close of `fp`, as the runtime does it: a process that imported its own
    /// key closes the import first (one reference at a time), the export with its next
    /// close. `imports_only`: an import or nothing.
    #[inline]
    pub(super) fn close(&mut self, fp: &Fp, imports_only: bool) -> Closed {
        use std::collections::hash_map::Entry;
        let Entry::Occupied(mut o) = self.imports.entry(*fp) else {
            return match !imports_only && self.exports.discard(fp) {
                true => Closed::Export,
                false => Closed::Nothing,
            };
        };
        o.get_mut().refs -= 1;
        if o.get().refs != 0 {
            return Closed::Reference;
        }
        let import = o.remove();
        Closed::Import {
            addr: import.addr,
            key: import.key,
        }
    }

    /// The open import holding `addr`, if one does.
    pub(super) fn import_holding(&self, addr: usize) -> Option<Fp> {
        self.imports
            .iter()
            .find(|(_, imp)| imp.holds(addr))
            .map(|(fp, _)| *fp)
    }

    /// The open import returned at `addr`, if one was: its key, when given.
    pub(super) fn imported_at(&self, addr: usize) -> Option<Option<Key>> {
        self.imports
            .values()
            .find(|i| i.addr == addr)
            .map(|i| i.key)
    }

    /// Open exports made from the allocation starting at `base` (`Export::base`).
    pub(super) fn exports_of(&self, base: usize) -> impl Iterator<Item = &Fp> {
        self.exports
            .iter()
            .filter(move |(_, e)| e.base() == base)
            .map(|(fp, _)| fp)
    }

    /// Every open key, with whether it is an export and its bytes when given.
    pub(super) fn open(&self) -> impl Iterator<Item = (Fp, bool, Option<Key>)> + '_ {
        let exports = self.exports.index.keys().map(|fp| (*fp, true));
        let imports = self.imports.keys().map(|fp| (*fp, false));
        exports
            .chain(imports)
            .map(|(fp, exported)| (fp, exported, self.raw_key(&fp)))
    }
}
