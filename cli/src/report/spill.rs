//! Tables the streaming report needs for every key or address of the job, kept on disk
//! instead of in memory: a count per key fingerprint (how many records name it) and, per
//! process, the `seq` of the last free of each address. The first reading adds to them a
//! line at a time; the merge looks up only the few entries it is about to need.
//!
//! ```text
//! Builder: a map of at most RUN_ENTRIES keys ─► full: sorted, written out as a run
//! Table::merge(runs): the runs merged (values combined) into one sorted file
//!   + an index of each block's first key (one key in BLOCK: about half a byte per entry)
//! Table::get / any_in: the index, then one read of a block
//! ```
//!
//! Every file is an unlinked temporary file ([`super::stream::temp_file`]): gone with the
//! process, however it ends.

use super::fasthash::FastMap;
use super::stream::temp_file;
use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// How values of one key add up: a count's sum, a `seq`'s maximum.
pub type Combine = fn(u64, u64) -> u64;

pub fn sum(a: u64, b: u64) -> u64 {
    a.saturating_add(b)
}

pub fn max(a: u64, b: u64) -> u64 {
    a.max(b)
}

/// A key and its value as a run or a table holds them.
const ENTRY: usize = 24;

/// Distinct keys a builder holds before it writes them out (a map of about 270 KiB: the
/// census has two builders on each of its two threads).
const RUN_ENTRIES: usize = 1 << 12;

/// Runs merged at once (a read buffer and an open file each); more are merged in groups
/// of this many first.
const FAN_IN: usize = 32;

/// Entries per block of a table: what one look-up reads.
const BLOCK: usize = 32;

/// Additions kept in memory up to [`RUN_ENTRIES`] keys, then written out sorted.
pub struct Builder {
    mem: FastMap<u128, u64>,
    runs: Levels,
    combine: Combine,
    cap: usize,
    /// A run could not be written: the table would be wrong.
    pub failed: bool,
}

impl Builder {
    pub fn new(combine: Combine) -> Builder {
        Builder::with_cap(combine, RUN_ENTRIES)
    }

    fn with_cap(combine: Combine, cap: usize) -> Builder {
        Builder {
            mem: FastMap::default(),
            runs: Levels::default(),
            combine,
            cap: cap.max(1),
            failed: false,
        }
    }

    /// Adds `v` to `k`'s entry. After a run could not be written nothing more is kept:
    /// `into_runs` then fails, and the caller (on the main thread: this may run on a
    /// worker, which must not write to stderr while the main thread holds it) says so.
    pub fn add(&mut self, k: u128, v: u64) {
        if self.failed {
            return;
        }
        let combine = self.combine;
        self.mem
            .entry(k)
            .and_modify(|x| *x = combine(*x, v))
            .or_insert(v);
        if self.mem.len() >= self.cap && self.spill().is_err() {
            self.failed = true;
            self.mem.clear();
        }
    }

    fn spill(&mut self) -> io::Result<()> {
        let mut all: Vec<(u128, u64)> = self.mem.drain().collect();
        all.sort_unstable_by_key(|e| e.0);
        let f = write_run(&all)?;
        // The map's room goes back too: the next run starts small.
        self.mem = FastMap::default();
        self.runs.push(f, self.combine)
    }

    /// Everything added as one sorted run (`None` when nothing was).
    pub fn into_run(self) -> io::Result<Option<File>> {
        let combine = self.combine;
        one_run(self.into_runs()?, combine)
    }

    /// The sorted runs of everything added (none when nothing was).
    pub fn into_runs(mut self) -> io::Result<Vec<File>> {
        if self.failed {
            return Err(io::Error::other("a run could not be written"));
        }
        if !self.mem.is_empty() {
            self.spill()?;
        }
        Ok(self.runs.into_files())
    }
}

/// A [`Builder`]'s or [`Sorter`]'s runs on disk, by level: a level's [`FAN_IN`] runs are merged into one of
/// the next, so that an entry is written again once per level (as many as log₃₂ of the
/// runs), not once per [`gather`] of all the runs so far (which wrote the first runs over
/// again every 31 runs: 190 MB more written on 1 GiB of logs). A file open per run stays
/// below `FAN_IN` per level: a file of thousands of keys per process, thousands of
/// files, stay far below the limit of open files.
#[derive(Default)]
struct Levels(Vec<Vec<File>>);

impl Levels {
    fn push(&mut self, mut f: File, combine: Combine) -> io::Result<()> {
        let mut level = 0;
        loop {
            if self.0.len() == level {
                self.0.push(Vec::new());
            }
            self.0[level].push(f);
            if self.0[level].len() < FAN_IN {
                return Ok(());
            }
            let full = std::mem::take(&mut self.0[level]);
            f = Table::merge(full, combine)?.into_run()?;
            level += 1;
        }
    }

    fn into_files(self) -> Vec<File> {
        self.0.into_iter().flatten().collect()
    }
}

/// `sorted` written out as a run, ready to be read from its start.
fn write_run(sorted: &[(u128, u64)]) -> io::Result<File> {
    let mut w = BufWriter::with_capacity(1 << 16, temp_file()?);
    for &(k, v) in sorted {
        write_entry(&mut w, k, v)?;
    }
    let mut f = w.into_inner().map_err(|e| e.into_error())?;
    f.seek(SeekFrom::Start(0))?;
    Ok(f)
}

/// `runs` as one sorted run (`None` when there are none).
fn one_run(mut runs: Vec<File>, combine: Combine) -> io::Result<Option<File>> {
    if runs.len() > 1 {
        return Ok(Some(Table::merge(runs, combine)?.into_run()?));
    }
    Ok(runs.pop())
}

/// Entries of distinct keys kept in memory up to [`SORTER_ENTRIES`], then written out
/// sorted: a [`Builder`] for keys that never repeat (no map to look each one up in: a
/// push, and a sort per run).
pub struct Sorter {
    mem: Vec<(u128, u64)>,
    runs: Levels,
    cap: usize,
    failed: bool,
}

/// Entries a [`Sorter`] holds before it writes them out (256 KiB).
const SORTER_ENTRIES: usize = 1 << 13;

impl Sorter {
    pub fn new() -> Sorter {
        Sorter::with_cap(SORTER_ENTRIES)
    }

    fn with_cap(cap: usize) -> Sorter {
        Sorter {
            mem: Vec::new(),
            runs: Levels::default(),
            cap: cap.max(1),
            failed: false,
        }
    }

    /// Adds key `k` (not added before) with value `v`. After a run could not be written
    /// nothing more is kept, and [`Sorter::into_runs`] fails.
    pub fn add(&mut self, k: u128, v: u64) {
        if self.failed {
            return;
        }
        if self.mem.capacity() == 0 {
            self.mem.reserve_exact(self.cap);
        }
        self.mem.push((k, v));
        if self.mem.len() >= self.cap && self.spill().is_err() {
            self.failed = true;
            self.mem = Vec::new();
        }
    }

    fn spill(&mut self) -> io::Result<()> {
        self.mem.sort_unstable_by_key(|e| e.0);
        let f = write_run(&self.mem)?;
        self.mem.clear();
        self.runs.push(f, max)
    }

    /// The sorted runs of everything added (none when nothing was).
    pub fn into_runs(mut self) -> io::Result<Vec<File>> {
        if self.failed {
            return Err(io::Error::other("a run could not be written"));
        }
        if !self.mem.is_empty() {
            self.spill()?;
        }
        Ok(self.runs.into_files())
    }

    /// Everything added as one sorted run (`None` when nothing was).
    pub fn into_run(self) -> io::Result<Option<File>> {
        one_run(self.into_runs()?, max)
    }
}

/// Runs that reached [`FAN_IN`] merged into one (the values of a key combined).
pub fn gather(runs: &mut Vec<File>, combine: Combine) -> io::Result<()> {
    if runs.len() >= FAN_IN {
        let all = std::mem::take(runs);
        runs.push(Table::merge(all, combine)?.into_run()?);
    }
    Ok(())
}

fn write_entry(w: &mut impl Write, k: u128, v: u64) -> io::Result<()> {
    let mut e = [0u8; ENTRY];
    e[..16].copy_from_slice(&k.to_le_bytes());
    e[16..].copy_from_slice(&v.to_le_bytes());
    w.write_all(&e)
}

fn decode(e: &[u8]) -> (u128, u64) {
    let mut k = [0u8; 16];
    let mut v = [0u8; 8];
    k.copy_from_slice(&e[..16]);
    v.copy_from_slice(&e[16..ENTRY]);
    (u128::from_le_bytes(k), u64::from_le_bytes(v))
}

fn read_entry(r: &mut impl Read) -> io::Result<Option<(u128, u64)>> {
    let mut e = [0u8; ENTRY];
    match r.read_exact(&mut e) {
        Ok(()) => Ok(Some(decode(&e))),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sorted entries on disk, one per key, looked up a block at a time.
pub struct Table {
    file: Option<File>,
    len: usize,
    /// The first key of each block.
    index: Vec<u128>,
}

impl Table {
    /// The runs merged into one table, the values of a key combined.
    pub fn merge(mut runs: Vec<File>, combine: Combine) -> io::Result<Table> {
        while runs.len() > FAN_IN {
            let mut grouped = Vec::with_capacity(runs.len() / FAN_IN + 1);
            while !runs.is_empty() {
                let group: Vec<File> = runs.drain(..FAN_IN.min(runs.len())).collect();
                grouped.push(Table::merge(group, combine)?.into_run()?);
            }
            runs = grouped;
        }
        if runs.is_empty() {
            return Ok(Table {
                file: None,
                len: 0,
                index: Vec::new(),
            });
        }
        let mut readers: Vec<BufReader<File>> = runs
            .into_iter()
            .map(|f| BufReader::with_capacity(1 << 13, f))
            .collect();
        let mut heap = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some((k, v)) = read_entry(r)? {
                heap.push(Reverse((k, i, v)));
            }
        }
        let mut w = BufWriter::with_capacity(1 << 16, temp_file()?);
        let mut t = Table {
            file: None,
            len: 0,
            index: Vec::new(),
        };
        let mut cur: Option<(u128, u64)> = None;
        // The least entry is replaced in place by its run's next one (one sift down),
        // not popped and another pushed (two).
        while let Some(mut top) = heap.peek_mut() {
            let Reverse((k, i, v)) = *top;
            match read_entry(&mut readers[i])? {
                Some(next) => *top = Reverse((next.0, i, next.1)),
                None => {
                    PeekMut::pop(top);
                }
            }
            cur = match cur {
                Some((ck, cv)) if ck == k => Some((ck, combine(cv, v))),
                Some((ck, cv)) => {
                    t.push(&mut w, ck, cv)?;
                    Some((k, v))
                }
                None => Some((k, v)),
            };
        }
        if let Some((ck, cv)) = cur {
            t.push(&mut w, ck, cv)?;
        }
        t.file = Some(w.into_inner().map_err(|e| e.into_error())?);
        Ok(t)
    }

    /// The table's entries as one run, to merge with others.
    fn into_run(self) -> io::Result<File> {
        let mut f = match self.file {
            Some(f) => f,
            None => temp_file()?,
        };
        f.seek(SeekFrom::Start(0))?;
        Ok(f)
    }

    fn push(&mut self, w: &mut impl Write, k: u128, v: u64) -> io::Result<()> {
        if self.len.is_multiple_of(BLOCK) {
            self.index.push(k);
        }
        self.len += 1;
        write_entry(w, k, v)
    }

    /// The entries of block `b`.
    fn block(&self, b: usize, buf: &mut [u8; BLOCK * ENTRY]) -> io::Result<usize> {
        let Some(f) = &self.file else { return Ok(0) };
        let n = (self.len - b * BLOCK).min(BLOCK);
        f.read_exact_at(&mut buf[..n * ENTRY], (b * BLOCK * ENTRY) as u64)?;
        Ok(n)
    }

    /// The block that would hold key `k`.
    fn block_of(&self, k: u128) -> Option<usize> {
        self.index
            .partition_point(|&first| first <= k)
            .checked_sub(1)
    }

    /// The value of key `k`; `None` when it has none.
    pub fn get(&self, k: u128) -> io::Result<Option<u64>> {
        let Some(b) = self.block_of(k) else {
            return Ok(None);
        };
        let mut buf = [0u8; BLOCK * ENTRY];
        let n = self.block(b, &mut buf)?;
        let entries = buf[..n * ENTRY].chunks_exact(ENTRY).map(decode);
        Ok(entries
            .take_while(|e| e.0 <= k)
            .find(|e| e.0 == k)
            .map(|e| e.1))
    }

    /// Whether some key in `from..=to` has a value `pred` accepts. A table that cannot be
    /// read says yes (a key then waits for the end of the logs: late, never wrong).
    pub fn any_in(&self, from: u128, to: u128, pred: impl Fn(u64) -> bool) -> bool {
        let mut b = self.block_of(from).unwrap_or(0);
        let mut buf = [0u8; BLOCK * ENTRY];
        while b < self.index.len() && self.index[b] <= to {
            let Ok(n) = self.block(b, &mut buf) else {
                return true;
            };
            for (k, v) in buf[..n * ENTRY].chunks_exact(ENTRY).map(decode) {
                if k > to {
                    return false;
                }
                if k >= from && pred(v) {
                    return true;
                }
            }
            b += 1;
        }
        false
    }
}

/// Entries a [`Cursor`] reads at once (4 KiB).
const CURSOR_ENTRIES: usize = 170;

/// A table's entries in order, from a given key on, read [`CURSOR_ENTRIES`] at a time: for
/// a reader whose look-ups come in the table's own order (one read for many entries where
/// [`Table::get`] makes one per key). Memory: its buffer.
pub struct Cursor {
    table: Arc<Table>,
    /// The number of the entry after those in `buf`.
    next: usize,
    buf: Vec<u8>,
    /// The next entry's place in `buf`.
    at: usize,
    failed: bool,
}

impl Cursor {
    /// The entries of `table` from the first whose key is `from` or more.
    pub fn new(table: Arc<Table>, from: u128) -> Cursor {
        let next = table.block_of(from).map_or(0, |b| b * BLOCK);
        let mut c = Cursor {
            table,
            next,
            buf: Vec::new(),
            at: 0,
            failed: false,
        };
        while c.peek().is_some_and(|(k, _)| k < from) {
            c.at += ENTRY;
        }
        c
    }

    /// The next entry, not taken; `None` at the end (or when the table cannot be read).
    pub fn peek(&mut self) -> Option<(u128, u64)> {
        if self.at >= self.buf.len() {
            let f = self.table.file.as_ref()?;
            let n = (self.table.len.checked_sub(self.next)?).min(CURSOR_ENTRIES);
            if n == 0 {
                return None;
            }
            self.buf.resize(n * ENTRY, 0);
            if f.read_exact_at(&mut self.buf, (self.next * ENTRY) as u64)
                .is_err()
            {
                self.buf.clear();
                self.next = self.table.len;
                self.failed = true;
                return None;
            }
            self.next += n;
            self.at = 0;
        }
        Some(decode(&self.buf[self.at..self.at + ENTRY]))
    }

    /// The value of key `k`, when the entries from here on have one: those before `k` are
    /// passed over, `k`'s own is kept (for another look-up of `k`). `None` when the table
    /// has no entry `k` there (or cannot be read: see [`Cursor::failed`]).
    pub fn find(&mut self, k: u128) -> Option<u64> {
        loop {
            let (key, v) = self.peek()?;
            if key >= k {
                return (key == k).then_some(v);
            }
            self.at += ENTRY;
        }
    }

    /// A read of the table failed: the cursor went to its end.
    pub fn failed(&self) -> bool {
        self.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A builder that writes a run every few keys, merged: the same answers as a map.
    #[test]
    fn a_table_answers_as_a_map_through_runs_and_blocks() {
        // Up to 500 runs: merged in groups first.
        for cap in [1, 3, 7, 1000] {
            let mut b = Builder::with_cap(sum, cap);
            let mut m = BTreeMap::new();
            let mut b2 = Builder::with_cap(max, cap);
            let mut m2 = BTreeMap::new();
            for i in 0..500u64 {
                // Keys repeat across runs, spread over the whole u128 range.
                let k = u128::from(i * 7919 % 211) << 70 | u128::from(i % 5);
                b.add(k, i + 1);
                *m.entry(k).or_insert(0) += i + 1;
                b2.add(k, i % 37);
                let e = m2.entry(k).or_insert(0);
                *e = (*e).max(i % 37);
            }
            let mut runs = b.into_runs().unwrap();
            assert!(cap > 500 || runs.len() > 1);
            // A table can also be merged from the runs of several builders.
            let mut extra = Builder::with_cap(sum, cap);
            extra.add(u128::MAX, 4);
            runs.extend(extra.into_runs().unwrap());
            m.insert(u128::MAX, 4);
            let t = Table::merge(runs, sum).unwrap();
            assert_eq!(t.len, m.len());
            for (k, v) in &m {
                assert_eq!(t.get(*k).unwrap(), Some(*v), "{k:#x} at cap {cap}");
            }
            for k in [0u128, 5, 1 << 70 | 9, u128::MAX - 1] {
                assert_eq!(t.get(k).unwrap(), m.get(&k).copied());
            }
            let t2 = Table::merge(b2.into_runs().unwrap(), max).unwrap();
            // Range look-ups, against the map's, for ranges inside and across blocks.
            let keys: Vec<u128> = m2.keys().copied().collect();
            for w in keys.windows(3).step_by(5) {
                for (from, to) in [(w[0], w[0]), (w[0], w[2]), (w[0] + 1, w[2] - 1), (0, w[1])] {
                    for min in [0u64, 20, 36, 40] {
                        let want = m2.range(from..=to).any(|(_, &v)| v >= min);
                        assert_eq!(
                            t2.any_in(from, to, |v| v >= min),
                            want,
                            "{from:#x}..={to:#x} >= {min}"
                        );
                    }
                }
            }
        }
        // Runs of many builders gathered as they come: one run, the same table.
        let mut runs = Vec::new();
        let mut want = BTreeMap::new();
        for i in 0..(FAN_IN as u64 + 9) {
            let mut b = Builder::new(sum);
            b.add(u128::from(i % 7), i);
            *want.entry(u128::from(i % 7)).or_insert(0) += i;
            runs.extend(b.into_run().unwrap());
            gather(&mut runs, sum).unwrap();
            assert!(runs.len() < FAN_IN);
        }
        let t = Table::merge(runs, sum).unwrap();
        for (k, v) in &want {
            assert_eq!(t.get(*k).unwrap(), Some(*v));
        }
        // A sorter (keys that never repeat) gives the table a builder would.
        for cap in [1, 5, 1 << 13] {
            let mut so = Sorter::with_cap(cap);
            let mut m = BTreeMap::new();
            // At cap 1, 1100 runs: two levels merged, the rest left.
            for i in 0..1100u64 {
                let k = u128::from(i * 7919 % 1009) << 64 | u128::from(i);
                so.add(k, i);
                m.insert(k, i);
            }
            let runs = so.into_runs().unwrap();
            assert!(runs.len() < 3 * FAN_IN, "{} runs at cap {cap}", runs.len());
            let t = Table::merge(runs, max).unwrap();
            assert_eq!(t.len, m.len());
            let mut c = Cursor::new(Arc::new(t), 0);
            for (k, v) in &m {
                assert_eq!(c.find(*k), Some(*v), "{k:#x} at cap {cap}");
            }
        }
        assert!(Sorter::new().into_run().unwrap().is_none());
        // A cursor reads the entries in order from any key on, across its reads.
        let mut b = Builder::with_cap(sum, 100);
        let keys: Vec<u128> = (0..1000u128).map(|i| i * 3 + 7).collect();
        for &k in &keys {
            b.add(k, (k as u64) * 2);
        }
        let t = Arc::new(Table::merge(b.into_runs().unwrap(), sum).unwrap());
        for from in [0u128, 7, 8, 1500, 3 * 999 + 7, 5000] {
            let mut c = Cursor::new(t.clone(), from);
            let want: Vec<u128> = keys.iter().copied().filter(|&k| k >= from).collect();
            let mut got = Vec::new();
            while let Some((k, v)) = c.peek() {
                assert_eq!(v, (k as u64) * 2);
                assert_eq!(c.find(k), Some(v));
                assert_eq!(c.find(k), Some(v), "kept for another look-up");
                c.at += ENTRY;
                got.push(k);
            }
            assert_eq!(got, want, "from {from}");
        }
        // `find` passes over what lies before its key, and finds nothing missing.
        let mut c = Cursor::new(t.clone(), 0);
        assert_eq!(c.find(8), None);
        assert_eq!(c.peek().map(|e| e.0), Some(10));
        assert_eq!(c.find(3 * 500 + 7), Some((3 * 500 + 7) * 2));
        assert_eq!(c.find(u128::MAX), None);
        assert_eq!(c.peek(), None);
        assert!(!c.failed());
        // Nothing added: an empty table.
        let t = Table::merge(Builder::new(sum).into_runs().unwrap(), sum).unwrap();
        assert_eq!(t.get(0).unwrap(), None);
        assert!(!t.any_in(0, u128::MAX, |_| true));
        assert_eq!(Cursor::new(Arc::new(t), 0).peek(), None);
    }
}
