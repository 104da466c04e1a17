//! The report of text and `--json` in memory bounded by the live keys and the processes,
//! not by the size of the logs: the logs are read twice, a line at a time.
//!
//! ```text
//! census (each file alone, 2 threads): its processes, what they say, the holes in their
//!   `seq`, the log's violations; is the file in order? How many records name each key and
//!   the last free of each address go to sorted tables on disk ([`super::spill`]), which
//!   the merge reads an entry at a time: memory does not grow with the job's keys. So
//!   does each record that creates a key, joined after the census with the counts into
//!   the order each file's parser needs them ([`super::ahead`]: read in sequence, not
//!   looked up with a `pread` each).
//! merge (k-way, in the time order of the whole report) ─► the re-check's sweep, which
//!   hands back each key once it is finished ─► its timeline goes to a spill file
//! ```
//!
//! The merge runs on three threads: one parses the files (a bounded queue of records per
//! file, see [`parse_files`]), this one merges and sweeps, one renders the finished keys
//! into the spill file (a bounded queue of keys).
//!
//! The answer is the one the in-memory report ([`super::analyze`]) gives, but for the order
//! of the keys, which come in the order they finished. That holds when every file is in
//! the report's time order and no process's `seq` repeats (no duplicates, every process in
//! one file), which the census checks: logs the shim wrote one file per process (`%p`) are.
//! Otherwise (a shared file whose writers interleaved out of time order, a file given twice,
//! hand-made logs) [`report`] answers `None` and the caller reads them into memory as before.

use super::ahead::{self, Ahead};
use super::fasthash::FastMap;
use super::model::{Event, FileInfo, Gap, Process, Report, Skipped, TraceRecords};
use super::parse::{self, Body, Fp, Line, Rec};
use super::processes::{self, Identifier, ProcKey};
use super::recheck::{self, Sweep};
use super::render;
use super::spill;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One log given: a path, or standard input spooled to an unlinked file (it is read twice).
pub struct Log {
    pub name: String,
    src: Result<Src, String>,
    /// The bytes the census read: the merge reads no more (a log still being written).
    len: u64,
    /// How far (µs) a record's time lies behind an earlier line's at most, in this file
    /// (the census finds it): the merge holds the file's records that long to put them in
    /// its order. `None`: the file is in that order already.
    lag_us: Option<i64>,
}

enum Src {
    Path(PathBuf),
    Spooled(File),
}

impl Log {
    pub fn open(path: &Path) -> Log {
        let name = path.to_string_lossy().into_owned();
        let src = if path.as_os_str() == "-" {
            spool(&mut io::stdin().lock()).map(Src::Spooled)
        } else {
            File::open(path).map(|_| Src::Path(path.to_owned()))
        };
        Log {
            name,
            src: src.map_err(|e| e.to_string()),
            len: 0,
            lag_us: None,
        }
    }

    pub fn error(&self) -> Option<&str> {
        self.src.as_ref().err().map(String::as_str)
    }

    fn reader(&self) -> io::Result<Box<dyn Read + Send>> {
        match self.src.as_ref().map_err(|e| io::Error::other(e.clone()))? {
            Src::Path(p) => Ok(Box::new(File::open(p)?)),
            Src::Spooled(f) => {
                let mut f = f.try_clone()?;
                f.seek(SeekFrom::Start(0))?;
                Ok(Box::new(f))
            }
        }
    }
}

/// A file of our own, already unlinked: gone with the process whatever happens.
pub fn temp_file() -> io::Result<File> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir();
    loop {
        let n = N.fetch_add(1, AtomicOrdering::Relaxed);
        let p = dir.join(format!(".acl-ipc-guard-report.{}.{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => {
                let _ = std::fs::remove_file(&p);
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn spool(input: &mut dyn Read) -> io::Result<File> {
    let mut f = temp_file()?;
    io::copy(input, &mut f)?;
    Ok(f)
}

/// Reads a log a line at a time: each line's number and text (lossy UTF-8, as before).
/// A line is parsed where it lies in the buffer: copying each line out (`read_until`)
/// cost a pass over every byte of the logs, in both readings.
struct Lines {
    r: io::Take<Box<dyn Read + Send>>,
    buf: Vec<u8>,
    /// The current line: `buf[at..end]` (without its newline).
    at: usize,
    end: usize,
    /// Where the next line starts; how far it was searched for its newline; the bytes read.
    next: usize,
    searched: usize,
    filled: usize,
    /// `buf[..ascii]` is known to be ASCII: its lines need no UTF-8 check of their own (one
    /// `is_ascii` per read instead of a `from_utf8` per line, in both readings).
    ascii: usize,
    eof: bool,
    line: usize,
    bytes: u64,
}

impl Lines {
    /// A reader of at most `limit` bytes of `r`, `cap` bytes at a time (more for a longer
    /// line).
    fn new(r: Box<dyn Read + Send>, limit: u64, cap: usize) -> Self {
        Lines {
            r: r.take(limit),
            buf: vec![0; cap.max(16)],
            at: 0,
            end: 0,
            next: 0,
            searched: 0,
            filled: 0,
            ascii: 0,
            eof: false,
            line: 0,
            bytes: 0,
        }
    }

    /// The next line (without its newline); `Ok(false)` at the end.
    fn next(&mut self) -> io::Result<bool> {
        loop {
            let from = self.searched.max(self.next);
            if let Some(n) = memchr::memchr(b'\n', &self.buf[from..self.filled]) {
                return Ok(self.take_line(from + n, from + n + 1));
            }
            self.searched = self.filled;
            if self.eof {
                if self.next == self.filled {
                    return Ok(false);
                }
                return Ok(self.take_line(self.filled, self.filled));
            }
            // The part line to the front; a line longer than the buffer doubles it.
            if self.next > 0 {
                self.buf.copy_within(self.next..self.filled, 0);
                self.filled -= self.next;
                self.searched -= self.next;
                // A non-ASCII byte before the part line kept stops counting no longer.
                self.ascii = match self.ascii.checked_sub(self.next) {
                    Some(a) => a,
                    None if self.buf[..self.filled].is_ascii() => self.filled,
                    None => 0,
                };
                self.next = 0;
            }
            if self.filled == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.r.read(&mut self.buf[self.filled..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    let read = self.filled..self.filled + n;
                    if self.ascii == self.filled && self.buf[read].is_ascii() {
                        self.ascii += n;
                    }
                    self.filled += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The line from `next` to `end`, the next one from `after`.
    fn take_line(&mut self, end: usize, after: usize) -> bool {
        self.at = self.next;
        self.end = end;
        self.bytes += (after - self.next) as u64;
        self.next = after;
        self.line += 1;
        true
    }

    fn text(&self) -> &[u8] {
        &self.buf[self.at..self.end]
    }

    /// The current line as text: as it lies when it is valid UTF-8, else a lossy copy.
    fn text_str(&self) -> Cow<'_, str> {
        let t = self.text();
        if self.end <= self.ascii {
            // SAFETY: `buf[..ascii]` was checked ASCII when read (`next`) and `buf` was not
            // written since (a read writes only into `buf[filled..]`, `filled` >= `ascii`; the shift to the
            // front recomputes `ascii`); this line lies inside it, and ASCII is UTF-8.
            debug_assert!(t.is_ascii());
            return Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(t) });
        }
        match std::str::from_utf8(t) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(t),
        }
    }

    fn parse(&self, file: usize) -> Line {
        parse::parse_line_hashed(file, &self.text_str(), false)
    }

    /// [`Lines::parse`] for the census: what it uses only ([`parse::parse_line_census`]).
    fn parse_census(&self, file: usize) -> Line {
        parse::parse_line_census(file, &self.text_str())
    }
}

/// The census reads two files at a time, in large reads; the merge reads all of them at
/// once, with a buffer each.
const CENSUS_BUFFER: usize = 1 << 18;
const MERGE_BUFFER: usize = 1 << 16;

/// The order of the whole report: ts, pid, process, seq, event, the line's hash.
fn order(a: (&ProcKey, &Rec), b: (&ProcKey, &Rec)) -> Ordering {
    let ((ka, ra), (kb, rb)) = (a, b);
    (ra.ts_us, ra.pid, ka, ra.seq, &ra.event, ra.hash)
        .cmp(&(rb.ts_us, rb.pid, kb, rb.seq, &rb.event, rb.hash))
}

/// A process as one file shows it.
struct Acc {
    proc: Process,
    /// Its first record, for numbering the processes as the merge meets them.
    first: (ProcKey, Rec),
    /// The next `seq` expected.
    expect: u64,
    gaps: Vec<(u64, u64)>,
    /// Its number in its file: its freed addresses are `Census::frees`'s keys under it.
    local: u64,
    /// It frees some address.
    frees: bool,
}

/// What the first reading found in one file.
#[derive(Default)]
struct Census {
    info: Option<FileInfo>,
    skipped: Vec<Skipped>,
    len: u64,
    procs: FastMap<ProcKey, Acc>,
    logged: HashSet<(String, ProcKey, Option<String>)>,
    logged_free: HashSet<ProcKey>,
    untracked: BTreeSet<String>,
    /// How many records name each fingerprint (its hash), as a sorted run on disk.
    pending: Option<File>,
    /// Each process's freed addresses with the `seq` of the last free of each, as a sorted
    /// run on disk (see [`recheck::free_prefix`]).
    frees: Option<File>,
    /// The keys the file's records create, in order, as a sorted run on disk (see
    /// [`ahead`]).
    created: Option<File>,
    /// A temporary file could not be written.
    spill_failed: bool,
    ledger_error: bool,
    /// Some record is the shim's `error`: the report's `errors`, which stand before its
    /// `keys`, are known only once the merge has met them all.
    shim_error: bool,
    /// A process's `seq` repeats, or the file's records go back in time further than
    /// `MAX_LAG_US`: the streaming report cannot promise the in-memory one's answer.
    unordered: bool,
    /// How far a record's time lies behind the latest time before it in the file, at most.
    lag_us: i64,
    /// Some record goes before the line above it in the merge's order (by time, or, at
    /// the same time, by pid, process or `seq`): the merge must sort the file.
    unsorted: bool,
}

/// How far back in time a record may lie behind an earlier line of its file for the
/// streaming report (which then holds that much of the file to sort it): a record that a
/// thread queued after another thread's later one, when the first was preempted for a
/// while. Further back (a clock set back by hand), the logs are read into memory.
const MAX_LAG_US: i64 = 250_000;

/// A temporary file's step on the main thread: its failure is said under `-v`, and the
/// caller leaves the job to the in-memory report (`None`).
fn merged<T>(r: io::Result<T>) -> Option<T> {
    r.map_err(|e| {
        tracing::info!("a temporary file for the report failed ({e}); reading the logs into memory")
    })
    .ok()
}

fn census(fi: usize, log: &Log) -> Census {
    let mut c = Census::default();
    let mut info = FileInfo {
        path: log.name.clone(),
        error: None,
        records: 0,
        text_lines: 0,
        skipped: 0,
    };
    let reader = match log.reader() {
        Ok(r) => r,
        Err(e) => {
            info.error = Some(e.to_string());
            c.info = Some(info);
            return c;
        }
    };
    let mut lines = Lines::new(reader, u64::MAX, CENSUS_BUFFER);
    let mut ident = Identifier::default();
    let mut latest = i64::MIN;
    let mut prev: Option<(ProcKey, Rec)> = None;
    // Per pid: the time of the first record of its current process in this file (its
    // start, or its first line), and the latest time of any of its records.
    let mut spans: FastMap<i64, (i64, i64)> = FastMap::default();
    // Per pid: the last (ts, seq, not a start) its records had in this file.
    let mut by_pid: FastMap<i64, (i64, u64, bool)> = FastMap::default();
    let mut pending = spill::Builder::new(spill::sum);
    let mut frees = spill::Builder::new(spill::max);
    let mut created = spill::Sorter::new();
    // How many records that create a key (a call's `out.key_fp`) the file had so far.
    let mut creating = 0u64;
    loop {
        match lines.next() {
            Ok(true) => {}
            Ok(false) => break,
            Err(_) => {
                // A read that fails half-way: the in-memory report says so as before.
                c.unordered = true;
                break;
            }
        }
        let r = match lines.parse_census(fi) {
            Line::Blank => continue,
            Line::Text => {
                info.text_lines += 1;
                continue;
            }
            Line::Malformed(reason) => {
                info.skipped += 1;
                c.skipped.push(Skipped {
                    file: log.name.clone(),
                    line: lines.line,
                    reason,
                });
                continue;
            }
            Line::Record(r) => r,
        };
        info.records += 1;
        let at = (r.ts_us, r.seq, r.event != "start");
        // A pid's records go forward in `seq`; in time they may go back a little (threads
        // racing to the log's queue), which the merge's window puts right.
        if by_pid
            .insert(r.pid, at)
            .is_some_and(|was| was > at && !(at.1 > was.1 && was.0 - at.0 <= MAX_LAG_US))
        {
            c.unordered = true;
        }
        // The in-memory report tells a pid's processes apart in time order: a record that
        // goes back before the first of its process, or a start before an earlier
        // process's last record, would be given to another process there.
        let is_start = r.event == "start";
        match spans.get_mut(&r.pid) {
            Some((first, last)) => {
                if (is_start && r.ts_us <= *last) || (!is_start && r.ts_us < *first) {
                    c.unordered = true;
                }
                if is_start {
                    *first = r.ts_us;
                }
                *last = (*last).max(r.ts_us);
            }
            None => {
                spans.insert(r.pid, (r.ts_us, r.ts_us));
            }
        }
        let key = ident.key(&r);
        if prev
            .as_ref()
            .is_some_and(|(pk, pr)| order((pk, pr), (&key, &r)) == Ordering::Greater)
        {
            c.unsorted = true;
        }
        if r.ts_us < latest {
            c.lag_us = c.lag_us.max(latest - r.ts_us);
            if c.lag_us > MAX_LAG_US {
                c.unordered = true;
            }
        }
        latest = latest.max(r.ts_us);
        let [named, creates] = recheck::named_fps(&r);
        if let Some(fp) = named {
            pending.add(recheck::Pending::key(recheck::fp_hash(fp)), 1);
        }
        // A call's `out.key_fp`, whose count the merge's parser needs.
        if let Some(fp) = creates {
            let h = recheck::fp_hash(fp);
            pending.add(recheck::Pending::key(h), 1);
            if let Some(k) = ahead::created(h, fi, creating) {
                created.add(k, 0);
            }
            creating += 1;
        }
        match &r.body {
            Body::Violation(v) => {
                if v.rule == recheck::FREE_IMPORTED {
                    c.logged_free.insert(key.clone());
                }
                c.logged
                    .insert((v.rule.clone(), key.clone(), v.key_fp.clone()));
            }
            Body::Call(call) if call.untracked && call.ok() => {
                if let Some(fp) = &call.out_key_fp {
                    c.untracked.insert(fp.to_string());
                }
            }
            _ => {}
        }
        c.ledger_error |= recheck::is_ledger_error(&r);
        c.shim_error |= matches!(r.body, Body::Error { .. });
        let local = c.procs.len() as u64;
        let acc = c.procs.entry(key.clone()).or_insert_with(|| Acc {
            proc: processes::new_process(&key, &r),
            first: (key.clone(), r.clone()),
            expect: if key.started { 1 } else { r.seq },
            gaps: Vec::new(),
            local,
            frees: false,
        });
        if let Body::Call(call) = &r.body {
            if let Some(a) = call.dev_ptr.filter(|_| call.func == "aclrtFree") {
                frees.add(
                    recheck::free_key(recheck::free_prefix(fi, acc.local), a),
                    r.seq,
                );
                acc.frees = true;
            }
        }
        processes::account(&mut acc.proc, &r, &log.name);
        if r.seq < acc.expect {
            // A seq seen twice (a duplicate) or going back.
            c.unordered = true;
        } else if r.seq > acc.expect {
            acc.gaps.push((acc.expect, r.seq - 1));
        }
        acc.expect = r.seq.saturating_add(1);
        prev = Some((key, r));
    }
    c.len = lines.bytes;
    c.info = Some(info);
    // One run of each for the file (one open file each), merged with the other files'
    // once all are read.
    let tables = (|| -> io::Result<_> {
        Ok((pending.into_run()?, frees.into_run()?, created.into_run()?))
    })();
    match tables {
        Ok((pending, frees, created)) => {
            (c.pending, c.frees, c.created) = (pending, frees, created)
        }
        Err(_) => c.spill_failed = true,
    }
    c
}

/// The records of one file in its order, each with its process, for the merge.
struct Reader {
    lines: Lines,
    fi: usize,
    ident: Identifier,
    /// The file's lag (`Census::lag_us`): records are held until no line still to come
    /// can go before them; `None` for a file already in the merge's order.
    lag_us: Option<i64>,
    window: BinaryHeap<Head>,
    latest: i64,
    eof: bool,
    /// The first reading's counts of records per fingerprint: a key a record creates is
    /// looked up here, off the merge's thread (its first record is most often the one).
    counts: Arc<spill::Table>,
    /// The same counts in the order this file's records need them, when known.
    ahead: Option<Ahead>,
}

impl Reader {
    fn new(
        lines: Lines,
        fi: usize,
        lag_us: Option<i64>,
        counts: Arc<spill::Table>,
        ahead: Option<Ahead>,
    ) -> Reader {
        Reader {
            lines,
            fi,
            ident: Identifier::default(),
            lag_us,
            counts,
            ahead,
            window: BinaryHeap::new(),
            latest: i64::MIN,
            eof: false,
        }
    }

    /// The file's next record in the report's time order.
    fn next(&mut self) -> Option<(ProcKey, Rec)> {
        let Some(lag_us) = self.lag_us else {
            return self.next_line();
        };
        loop {
            // Every line still to come lies at or after `latest - lag_us`: a held record
            // before that goes first.
            if let Some(h) = self.window.peek() {
                if self.eof || h.1.ts_us < self.latest.saturating_sub(lag_us) {
                    let Head(k, r, _) = self.window.pop()?;
                    return Some((k, r));
                }
            }
            match self.next_line() {
                Some((k, r)) => {
                    self.latest = self.latest.max(r.ts_us);
                    self.window.push(Head(k, r, self.fi));
                }
                None if self.window.is_empty() => return None,
                None => self.eof = true,
            }
        }
    }

    fn next_line(&mut self) -> Option<(ProcKey, Rec)> {
        loop {
            if !matches!(self.lines.next(), Ok(true)) {
                return None;
            }
            if let Line::Record(mut r) = self.lines.parse(self.fi) {
                if let Body::Call(c) = &mut r.body {
                    if let Some(fp) = &c.out_key_fp {
                        let known = self
                            .ahead
                            .as_mut()
                            .and_then(|a| a.next(recheck::fp_hash(fp)));
                        c.out_fp_count = Some(
                            known.unwrap_or_else(|| recheck::Pending::look_up(&self.counts, fp)),
                        );
                    }
                }
                let key = self.ident.key(&r);
                return Some((key, r));
            }
        }
    }
}

/// Some records of one file, in its order: what a parser hands the merge at a time.
type Batch = Vec<(ProcKey, Rec)>;

/// The records of one file for the merge, parsed by another thread ([`parse_files`]).
struct Feed {
    rx: Receiver<Batch>,
    /// The batch being merged, and where: its records are read where they lie.
    batch: Batch,
    pos: usize,
    /// Tells the parser that this file's queue has room again, handing back the batch
    /// merged: its records are dropped by the thread that made them (freeing another
    /// thread's allocations cost both threads dearly in the allocator) and its room reused.
    room: Sender<Batch>,
}

impl Feed {
    /// The file's next record; `None` at its end.
    fn peek(&self) -> Option<&(ProcKey, Rec)> {
        self.batch.get(self.pos)
    }

    fn head(&mut self) -> Option<&mut (ProcKey, Rec)> {
        self.batch.get_mut(self.pos)
    }

    /// On to the file's next record.
    fn advance(&mut self) {
        self.pos += 1;
        self.fill();
    }

    fn fill(&mut self) {
        while self.pos >= self.batch.len() {
            // The parser has hung up: the file is at its end (or the parser is gone).
            let Ok(b) = self.rx.recv() else {
                self.batch.clear();
                self.pos = 0;
                return;
            };
            let used = std::mem::replace(&mut self.batch, b);
            self.pos = 0;
            let _ = self.room.send(used);
        }
    }
}

/// One file's parsing in [`parse_files`].
struct Parsing {
    rd: Reader,
    tx: Option<SyncSender<Batch>>,
    /// A batch the queue had no room for yet.
    held: Option<Batch>,
    eof: bool,
}

/// A parser thread's work: the files of its group, each parsed a batch at a time into its
/// bounded queue, for as long as a queue has room; when none has, it waits until the
/// merge takes a batch (`room`, which brings back the batch the merge is done with). It
/// ends when every file is parsed or the merge is gone. Memory: at most `QUEUED + 2`
/// batches per file (queued, held, being merged), and those the merge handed back since
/// the parser last looked (it looks before each batch it parses), with four empty ones
/// kept for reuse.
fn parse_files(mut files: Vec<Parsing>, room: Receiver<Batch>, batch: usize) {
    // Batches the merge handed back, emptied here: reused for the next ones.
    let mut spare: Vec<Batch> = Vec::new();
    let keep = |spare: &mut Vec<Batch>, mut b: Batch| {
        b.clear();
        if spare.len() < 4 && b.capacity() >= batch {
            spare.push(b);
        }
    };
    loop {
        let mut moved = false;
        let mut live = false;
        for f in &mut files {
            let Some(tx) = &f.tx else { continue };
            live = true;
            loop {
                // What the merge is done with is taken back before each new batch, so
                // that no more than the batches in flight ever hold records, even
                // while one file keeps this loop (a merge faster than the parser always
                // has room for it: one file, or files whose times do not overlap).
                // Each one taken back says the merge took a batch from some queue,
                // perhaps one already found full this round: another round looks again
                // (waiting on `room` now would miss that word).
                while let Ok(b) = room.try_recv() {
                    keep(&mut spare, b);
                    moved = true;
                }
                if f.held.is_none() && !f.eof {
                    let mut b = spare.pop().unwrap_or_else(|| Vec::with_capacity(batch));
                    while b.len() < batch {
                        match f.rd.next() {
                            Some(x) => b.push(x),
                            None => {
                                f.eof = true;
                                break;
                            }
                        }
                    }
                    f.held = (!b.is_empty()).then_some(b);
                }
                let Some(b) = f.held.take() else {
                    // Parsed to the end and all handed over: the merge sees the end.
                    f.tx = None;
                    moved = true;
                    break;
                };
                match tx.try_send(b) {
                    Ok(()) => moved = true,
                    Err(TrySendError::Full(b)) => {
                        f.held = Some(b);
                        break;
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        f.tx = None;
                        break;
                    }
                }
            }
        }
        if !live {
            return;
        }
        if !moved {
            match room.recv() {
                Ok(b) => keep(&mut spare, b),
                Err(_) => return,
            }
        }
    }
}

/// Batches queued per file, beside the one held and the one being merged.
const QUEUED: usize = 1;

/// A file's next record in the merge's heap: the earliest comes out first.
struct Head(ProcKey, Rec, usize);

impl PartialEq for Head {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Head {
    fn cmp(&self, o: &Self) -> Ordering {
        order((&o.0, &o.1), (&self.0, &self.1)).then(o.2.cmp(&self.2))
    }
}

/// The merge's heap: the numbers of the files that have a next record, the earliest record
/// first (in the report's order, then by file). The records stay where they are (a record is
/// about 200 bytes; moving each through a heap of them cost the merge a fifth of its time).
struct Files(Vec<usize>);

type Heads = [Option<Feed>];

impl Files {
    fn new(heads: &Heads) -> Files {
        let mut h = Files(Vec::with_capacity(heads.len()));
        for fi in 0..heads.len() {
            if heads[fi].as_ref().and_then(Feed::peek).is_some() {
                h.0.push(fi);
                h.up(heads, h.0.len() - 1);
            }
        }
        h
    }

    fn first(&self) -> Option<usize> {
        self.0.first().copied()
    }

    /// File `a`'s record goes before file `b`'s.
    fn before(heads: &Heads, a: usize, b: usize) -> bool {
        let head = |i: usize| heads[i].as_ref().and_then(Feed::peek);
        match (head(a), head(b)) {
            (Some((ka, ra)), Some((kb, rb))) => {
                order((ka, ra), (kb, rb)).then(a.cmp(&b)) == Ordering::Less
            }
            _ => false,
        }
    }

    /// The first file's record was taken and the file moved on to its next one (or to its
    /// end): the heap put right.
    fn next(&mut self, heads: &Heads) {
        let Some(&top) = self.0.first() else { return };
        if heads[top].as_ref().and_then(Feed::peek).is_none() {
            self.0.swap_remove(0);
        }
        self.down(heads, 0);
    }

    fn up(&mut self, heads: &Heads, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if !Self::before(heads, self.0[i], self.0[parent]) {
                break;
            }
            self.0.swap(i, parent);
            i = parent;
        }
    }

    fn down(&mut self, heads: &Heads, mut i: usize) {
        let n = self.0.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut least = i;
            if l < n && Self::before(heads, self.0[l], self.0[least]) {
                least = l;
            }
            if r < n && Self::before(heads, self.0[r], self.0[least]) {
                least = r;
            }
            if least == i {
                return;
            }
            self.0.swap(i, least);
            i = least;
        }
    }
}

/// The report of `logs` as text, or JSON with `json`, written to `out`; its exit status.
/// `None` when the logs are not in the order the streaming report needs (see the module's
/// notes): nothing has been written then.
pub fn report(
    logs: &mut [Log],
    json: bool,
    out: &mut (dyn Write + Send),
) -> Option<(i32, io::Result<()>)> {
    let t = Instant::now();
    // The census, two files at a time (the machine this was built for has 2 cores).
    let next = AtomicUsize::new(0);
    let found: Mutex<Vec<(usize, Census)>> = Mutex::new(Vec::new());
    // The files' runs of counts and of freed addresses, merged as they pile up: an open
    // file each, and a job may have a thousand logs.
    let runs: Mutex<(Vec<File>, Vec<File>, Vec<File>)> =
        Mutex::new((Vec::new(), Vec::new(), Vec::new()));
    std::thread::scope(|s| {
        for _ in 0..2.min(logs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, AtomicOrdering::Relaxed);
                let Some(log) = logs.get(i) else { break };
                let mut c = census(i, log);
                let (p, f, m) = (c.pending.take(), c.frees.take(), c.created.take());
                let mut r = runs.lock().unwrap_or_else(|e| e.into_inner());
                let (pending, frees, created) = &mut *r;
                pending.extend(p);
                frees.extend(f);
                created.extend(m);
                if spill::gather(pending, spill::sum)
                    .and_then(|()| spill::gather(frees, spill::max))
                    .and_then(|()| spill::gather(created, spill::max))
                    .is_err()
                {
                    c.spill_failed = true;
                }
                drop(r);
                found.lock().unwrap_or_else(|e| e.into_inner()).push((i, c));
            });
        }
    });
    let (pending, frees, created) = runs.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut found = found.into_inner().unwrap_or_else(|e| e.into_inner());
    found.sort_by_key(|(i, _)| *i);
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut accs: Vec<Acc> = Vec::new();
    let mut seen: HashSet<ProcKey> = HashSet::new();
    let mut logged_k = HashSet::new();
    let mut logged_free_k = HashSet::new();
    let mut untracked = BTreeSet::new();
    // Per process found that frees some address: its prefix in the table of freed addresses.
    let mut freeing: FastMap<ProcKey, u64> = FastMap::default();
    let mut ledger_error = false;
    let mut shim_error = false;
    for (i, c) in found {
        if c.spill_failed {
            tracing::info!(
                "no room for the report's temporary files; reading the logs into memory"
            );
            return None;
        }
        if c.unordered {
            tracing::info!(
                "{}: not in time order; reading the logs into memory",
                logs[i].name
            );
            return None;
        }
        logs[i].len = c.len;
        logs[i].lag_us = c.unsorted.then_some(c.lag_us);
        files.extend(c.info);
        skipped.extend(c.skipped);
        for (k, acc) in c.procs {
            if !seen.insert(k) {
                // One process in several files (or a file given twice).
                tracing::info!("a process in several files; reading the logs into memory");
                return None;
            }
            if acc.frees {
                freeing.insert(acc.first.0.clone(), recheck::free_prefix(i, acc.local));
            }
            accs.push(acc);
        }
        logged_k.extend(c.logged);
        logged_free_k.extend(c.logged_free);
        untracked.extend(c.untracked);
        ledger_error |= c.ledger_error;
        shim_error |= c.shim_error;
    }
    skipped.sort_by(|a: &Skipped, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    // `-v`: what the in-memory report says of its stages, in the same words.
    for (l, f) in logs.iter().zip(&files) {
        if f.error.is_none() {
            tracing::info!("read {}: {} bytes", l.name, l.len);
        }
    }
    tracing::info!(
        "parsing: {} records from {} files in {:.1?}",
        files.iter().map(|f| f.records).sum::<usize>(),
        files.len(),
        t.elapsed()
    );
    super::analyze::say_files(&files);
    let t = Instant::now();
    // Number the processes as the merge meets them.
    accs.sort_by(|a, b| order((&a.first.0, &a.first.1), (&b.first.0, &b.first.1)));
    let index: FastMap<ProcKey, usize> = accs
        .iter()
        .enumerate()
        .map(|(i, a)| (a.first.0.clone(), i))
        .collect();
    let anchors: Vec<i64> = accs.iter().map(|a| a.first.0.anchor_us).collect();
    let first_ts: Vec<String> = accs.iter().map(|a| a.first.1.ts.to_string()).collect();
    let mut gaps = Vec::new();
    let mut procs: Vec<Process> = Vec::with_capacity(accs.len());
    // The freed addresses of all files in one table on disk.
    let frees = Arc::new(merged(spill::Table::merge(frees, spill::max))?);
    let mut last_free: Vec<recheck::Frees> = Vec::with_capacity(accs.len());
    for (i, a) in accs.into_iter().enumerate() {
        last_free.push(freeing.remove(&a.first.0).map(|p| (frees.clone(), p)));
        for (from, to) in a.gaps {
            gaps.push(Gap {
                process: i,
                pid: a.proc.pid,
                from,
                to,
            });
        }
        procs.push(a.proc);
    }
    gaps.sort_by_key(|g| (g.pid, g.process, g.from));
    let replaced_by = processes::link_processes(&mut procs, &anchors, &first_ts);
    let logged = logged_k
        .into_iter()
        .map(|(rule, k, fp)| (rule, index[&k], fp))
        .collect();
    let logged_free = logged_free_k.into_iter().map(|k| index[&k]).collect();
    let shared = !ledger_error && recheck::shared_ledger(&procs);
    let records: usize = procs.iter().map(|p| p.records).sum();
    // The counts of all files in one table on disk.
    let pending = recheck::Pending::new(merged(spill::Table::merge(pending, spill::sum))?);
    let counts = pending.table();
    // The counts again in the order each file's parser needs them; without them (a
    // table that could not be written) each key is looked up as before.
    let answers = spill::Table::merge(created, spill::max)
        .and_then(|created| ahead::join(created, counts.clone()))
        .map(Arc::new)
        .map_err(|e| tracing::info!("the report's counts in order failed ({e}); looking them up"))
        .ok();
    super::analyze::say_ordering(&procs, 0, gaps.len(), t);

    // The merge and the sweep; finished keys go out as they finish. With `--json` and no
    // shim `error` record in the logs, all that stands before `keys` (`duplicates`,
    // `errors`, `files`, `gaps`) is known now: the keys go straight to `out`. Otherwise
    // they wait in a temporary file (1.5x the logs' size with `--json`, written and read
    // back) until the members before them are known; until the report is written then,
    // any trouble (no temporary file, a full disk) leaves the job to the in-memory report.
    let early = Report {
        text_lines: 0,
        records: 0,
        duplicates: 0,
        untracked_keys: Vec::new(),
        files: files.clone(),
        skipped: Vec::new(),
        processes: Vec::new(),
        gaps: gaps.clone(),
        violations: Vec::new(),
        keys: Default::default(),
        errors: Vec::new(),
        trace: TraceRecords::default(),
    };
    let head = if json && !shim_error {
        Some(json_parts(&early).ok()?)
    } else {
        None
    };
    drop(early);
    let (sink, first) = match &head {
        Some((whole, open)) => (
            Sink::Out(io::BufWriter::with_capacity(1 << 16, out)),
            Some(whole[..*open].to_vec()),
        ),
        None => (
            Sink::Spill(
                io::BufWriter::with_capacity(1 << 16, merged(temp_file())?),
                out,
            ),
            None,
        ),
    };
    // The files are parsed by `PARSERS` threads (a group of files each) while this one
    // merges; a batch is smaller the more files there are, so that the records queued
    // stay about `QUEUED_RECORDS` whatever their number.
    const PARSERS: usize = 1;
    const QUEUED_RECORDS: usize = 4096;
    let batch = (QUEUED_RECORDS / logs.len().max(1)).clamp(4, 64);
    let groups = PARSERS.min(logs.len()).max(1);
    let mut work: Vec<(Vec<Parsing>, Receiver<Batch>)> = Vec::new();
    let mut rooms = Vec::new();
    for _ in 0..groups {
        let (tx, rx) = channel();
        work.push((Vec::new(), rx));
        rooms.push(tx);
    }
    let mut feeds: Vec<Option<Feed>> = Vec::new();
    for (fi, log) in logs.iter().enumerate() {
        let Ok(r) = log.reader() else {
            feeds.push(None);
            continue;
        };
        let (tx, rx) = sync_channel(QUEUED);
        work[fi % groups].0.push(Parsing {
            rd: Reader::new(
                Lines::new(r, log.len, MERGE_BUFFER),
                fi,
                log.lag_us,
                counts.clone(),
                answers.as_ref().map(|a| Ahead::new(a.clone(), fi)),
            ),
            tx: Some(tx),
            held: None,
            eof: false,
        });
        feeds.push(Some(Feed {
            rx,
            batch: Vec::new(),
            pos: 0,
            room: rooms[fi % groups].clone(),
        }));
    }
    drop(rooms);
    let direct = first.is_some();
    let merged = std::thread::scope(|s| {
        for (files, room) in work {
            s.spawn(move || parse_files(files, room, batch));
        }
        merge(
            feeds,
            &index,
            &procs,
            (
                replaced_by,
                (logged, logged_free),
                shared,
                pending,
                last_free,
            ),
            json,
            sink,
            first,
        )
    });
    let Some((judged, keys, sink, written)) = merged else {
        if direct {
            // Part of the report is out already: no second one after it. Only a log
            // that changed between the two readings (a process the first never met)
            // brings this.
            tracing::warn!("a log changed while the report read it; the report is cut short");
            return Some((2, Err(io::Error::other("a log changed while it was read"))));
        }
        return None;
    };
    let report = Report {
        text_lines: files.iter().map(|f| f.text_lines).sum(),
        records,
        duplicates: 0,
        untracked_keys: untracked.into_iter().collect(),
        files,
        skipped,
        processes: procs,
        gaps,
        violations: judged.violations,
        keys: Default::default(),
        errors: judged.errors,
        trace: TraceRecords::default(),
    };
    let t = Instant::now();
    let res = match sink {
        Sink::Out(mut w) => written.and_then(|()| {
            let (whole, open) = json_parts(&report)?;
            debug_assert!(head.is_some_and(|(h, o)| h[..o] == whole[..open]));
            if keys > 0 {
                w.write_all(b"\n  ")?;
            }
            w.write_all(&whole[open..])?;
            w.flush()
        }),
        Sink::Spill(spill, out) => {
            // A key that could not be written out leaves the job to the in-memory report.
            written.ok()?;
            let mut spill = spill.into_inner().ok()?;
            spill.seek(SeekFrom::Start(0)).ok()?;
            (|| {
                let mut w = io::BufWriter::new(out);
                if json {
                    let (whole, open) = json_parts(&report)?;
                    w.write_all(&whole[..open])?;
                    if keys > 0 {
                        w.write_all(b"\n")?;
                        io::copy(&mut spill, &mut w)?;
                        w.write_all(b"\n  ")?;
                    }
                    w.write_all(&whole[open..])?;
                } else {
                    let (head, tail) = render::render_text_parts(&report);
                    w.write_all(head.as_bytes())?;
                    if keys == 0 {
                        w.write_all(b"  none\n")?;
                    }
                    io::copy(&mut spill, &mut w)?;
                    w.write_all(tail.as_bytes())?;
                }
                w.flush()
            })()
        }
    };
    tracing::info!("rendering: {:.1?}", t.elapsed());
    Some((report.exit_status(), res))
}

/// The report as JSON with `keys` empty, and where that member's `{}` closes: the keys
/// go in there.
fn json_parts(report: &Report) -> io::Result<(Vec<u8>, usize)> {
    let mut whole = Vec::new();
    render::write_json(report, &mut whole)?;
    const EMPTY: &[u8] = b"\n  \"keys\": {}";
    let at = whole
        .windows(EMPTY.len())
        .position(|x| x == EMPTY)
        .ok_or_else(|| io::Error::other("no keys member"))?;
    Ok((whole, at + EMPTY.len() - 1))
}

/// Where the merge's finished keys are written: the output itself, or a temporary file
/// that holds them until the members before them are known (and the output, for then).
enum Sink<'a> {
    Out(io::BufWriter<&'a mut (dyn Write + Send)>),
    Spill(io::BufWriter<File>, &'a mut (dyn Write + Send)),
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Out(w) => w.write(buf),
            Sink::Spill(w, _) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Out(w) => w.write_all(buf),
            Sink::Spill(w, _) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Out(w) => w.flush(),
            Sink::Spill(w, _) => w.flush(),
        }
    }
}

/// What the sweep needs besides the processes: see [`Sweep::with`].
type SweepArgs = (
    Vec<Option<usize>>,
    recheck::Logged,
    bool,
    recheck::Pending,
    Vec<recheck::Frees>,
);

/// The merge of the files' records into one time order, through the re-check's sweep;
/// each finished key written to `sink`, after `first` when given (the output's head: a
/// failed write then stops the writing, not the merge, whose verdict still counts). The
/// judged rest, the number of keys, the sink and how its writing went; `None` on trouble
/// (see [`report`]).
#[allow(clippy::too_many_arguments)]
fn merge<'a>(
    mut feeds: Vec<Option<Feed>>,
    index: &FastMap<ProcKey, usize>,
    procs: &[Process],
    (replaced_by, logged, shared, pending, last_free): SweepArgs,
    json: bool,
    mut sink: Sink<'a>,
    first: Option<Vec<u8>>,
) -> Option<(recheck::Judged, usize, Sink<'a>, io::Result<()>)> {
    let t = Instant::now();

    let mut sweep = Sweep::with(procs, replaced_by, logged, shared, Some(pending));
    sweep.set_last_free(last_free);
    let (mut finished_early, mut at_end) = (0usize, 0usize);
    // Finished keys are written out by a thread of their own (rendering them is a good
    // part of the work), a bounded queue of them at a time: a few batches smooth the
    // hand-over; more only hold memory while the writer waits on a slow disk (64 batches
    // held about 3 MiB of keys when each write took 3 ms).
    // Two batches of 64 keys queued hold as many keys as four of 32 did, with half the
    // wake-ups of the writer; with the batch being written and the one being filled, at
    // most 4 x 64 finished keys are in flight.
    const KEY_BATCHES_QUEUED: usize = 2;
    let (tx, rx) = sync_channel::<Vec<(Fp, Vec<Event>)>>(KEY_BATCHES_QUEUED);
    let (judged, written) = std::thread::scope(|s| {
        let writer = s.spawn(move || -> (Sink<'a>, io::Result<()>) {
            let drain = first.is_some();
            let mut res = match &first {
                Some(head) => sink.write_all(head),
                None => Ok(()),
            };
            let mut member = Vec::new();
            for (written, (fp, events)) in rx.iter().flatten().enumerate() {
                if res.is_err() {
                    if drain {
                        // The output is gone (a closed pipe): the keys are dropped, the
                        // merge goes on for the verdict.
                        continue;
                    }
                    break;
                }
                member.clear();
                if json {
                    if written > 0 {
                        member.extend_from_slice(b",\n");
                    } else if drain {
                        // After the output's head, as the temporary file's copy has it.
                        member.push(b'\n');
                    }
                    render::key_member(&fp, &events, procs, &mut member);
                } else {
                    member.extend_from_slice(render::key_text(&fp, &events, procs).as_bytes());
                }
                res = sink.write_all(&member);
            }
            (sink, res)
        });
        let mut judged = (|| {
            const KEYS_PER_SEND: usize = 64;
            let mut done = Vec::with_capacity(KEYS_PER_SEND);
            // Each file's next record stays in its batch; the heap orders the files' numbers.
            for f in feeds.iter_mut().flatten() {
                f.fill();
            }
            let mut heap = Files::new(&feeds);
            // Per file, the process of its last record (a file is mostly one process):
            // comparing keys is cheaper than hashing one.
            let mut last: Vec<Option<(ProcKey, usize)>> = vec![None; feeds.len()];
            while let Some(fi) = heap.first() {
                let Some(f) = feeds[fi].as_mut() else { break };
                let Some((k, r)) = f.head() else { break };
                r.proc_idx = match &last[fi] {
                    Some((lk, p)) if lk == k => *p,
                    _ => {
                        // `None`: not in the census (a file that changed between the readings).
                        let p = *index.get(k)?;
                        last[fi] = Some((k.clone(), p));
                        p
                    }
                };
                sweep.record(r);
                if !sweep.finished.is_empty() {
                    finished_early += sweep.finished.len();
                    done.append(&mut sweep.finished);
                    // A few keys at a time: fewer wake-ups of the writer. A writer gone
                    // (a write failed) tells why below.
                    if done.len() >= KEYS_PER_SEND
                        && tx
                            .send(std::mem::replace(
                                &mut done,
                                Vec::with_capacity(KEYS_PER_SEND),
                            ))
                            .is_err()
                    {
                        break;
                    }
                }
                f.advance();
                heap.next(&feeds);
            }
            let _ = tx.send(done);
            Some(sweep.into_parts())
        })();
        if let Some(j) = &mut judged {
            at_end = j.keys.len();
            let left = std::mem::take(&mut j.keys).into_iter();
            let _ = tx.send(left.map(|(fp, events)| (Fp::from(fp), events)).collect());
        }
        drop(tx);
        (judged, writer.join().ok())
    });
    let (judged, (sink, res)) = (judged?, written?);
    let keys = finished_early + at_end;
    tracing::info!(
        "re-check: {} keys, {} violations in {:.1?} (merged a line at a time; {} keys written out before the logs ended)",
        keys,
        judged.violations.len(),
        t.elapsed(),
        finished_early
    );
    Some((judged, keys, sink, res))
}

/// What the logs held when not one of their lines is a JSON record.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct NoRecord {
    /// Lines of the shim's text format (`ACL_IPC_GUARD_FORMAT=text`).
    pub text_lines: usize,
    /// Every other line that is not blank: each with its file, line and why.
    pub other: Vec<Skipped>,
}

/// `None` as soon as some line of `logs` is a JSON record (the first line of a log the
/// shim wrote in that format, so this costs one line); otherwise what the logs held
/// instead, every line of them read. A log that cannot be read (or stops being readable)
/// adds nothing: `report` has named it already.
pub fn no_record(logs: &[Log]) -> Option<NoRecord> {
    let mut found = NoRecord::default();
    for (fi, log) in logs.iter().enumerate() {
        let Ok(r) = log.reader() else { continue };
        let mut lines = Lines::new(r, u64::MAX, MERGE_BUFFER);
        while let Ok(true) = lines.next() {
            match lines.parse(fi) {
                Line::Record(_) => return None,
                Line::Blank => {}
                Line::Text => found.text_lines += 1,
                Line::Malformed(reason) => found.other.push(Skipped {
                    file: log.name.clone(),
                    line: lines.line,
                    reason,
                }),
            }
        }
    }
    Some(found)
}

impl Log {
    /// The whole log, for the in-memory report.
    pub fn input(&self) -> super::model::Input {
        let content = self.reader().and_then(|mut r| {
            let mut b = Vec::new();
            r.read_to_end(&mut b).map(|_| b)
        });
        super::model::Input {
            name: self.name.clone(),
            content: content.map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod lines_tests {
    use super::*;

    /// Every line of `text` as `Lines` gives them, read `cap` bytes at a time, with the
    /// bytes it counted.
    fn read(text: &[u8], cap: usize, limit: u64) -> (Vec<Vec<u8>>, u64) {
        let mut l = Lines::new(Box::new(io::Cursor::new(text.to_vec())), limit, cap);
        let mut out = Vec::new();
        while l.next().expect("a cursor reads") {
            out.push(l.text().to_vec());
            assert_eq!(l.line, out.len());
        }
        (out, l.bytes)
    }

    #[test]
    fn lines_split_as_read_until_did_at_any_buffer_size() {
        let long = "x".repeat(100);
        let texts = [
            String::new(),
            "\n".into(),
            "a".into(),
            "a\n".into(),
            "a\r\nbb\n\nccc".into(),
            format!("{long}\n{long}{long}\nshort\n{long}"),
            format!("\n\n{long}\n\n"),
        ];
        for text in &texts {
            let mut want: Vec<Vec<u8>> = text.split('\n').map(|l| l.as_bytes().to_vec()).collect();
            if text.ends_with('\n') || text.is_empty() {
                want.pop();
            }
            for cap in [1, 16, 17, 64, 1 << 16] {
                let (got, bytes) = read(text.as_bytes(), cap, u64::MAX);
                assert_eq!(got, want, "{text:?} at {cap}");
                assert_eq!(bytes, text.len() as u64, "{text:?} at {cap}");
            }
        }
        // A limit (what the census read) ends the last line where it falls.
        let (got, bytes) = read(b"abc\ndef\nghi\n", 16, 6);
        assert_eq!(got, vec![b"abc".to_vec(), b"de".to_vec()]);
        assert_eq!(bytes, 6);
    }

    /// Every line's text as `Lines` gives it to the parser, read `cap` bytes at a time, and
    /// whether it came by the ASCII path (checked once per read, not per line).
    fn texts(text: &[u8], cap: usize) -> Vec<(String, bool)> {
        let mut l = Lines::new(Box::new(io::Cursor::new(text.to_vec())), u64::MAX, cap);
        let mut out = Vec::new();
        while l.next().expect("a cursor reads") {
            out.push((l.text_str().into_owned(), l.end <= l.ascii));
        }
        out
    }

    #[test]
    fn a_line_is_text_as_before_whether_or_not_its_buffer_is_ascii() {
        let long = "y".repeat(40);
        // Non-ASCII that is UTF-8, bytes that are not, a sequence cut by the line's end,
        // lines after them (the ASCII path must not take those), and plain lines.
        let mut text: Vec<u8> = Vec::new();
        text.extend_from_slice(format!("plain\n{long}\n").as_bytes());
        text.extend_from_slice("caf\u{e9} \u{6f22}\n".as_bytes());
        text.extend_from_slice(b"bad \xff byte\n");
        text.extend_from_slice(b"cut \xe6\xbc\n\xa2 rest\n");
        text.extend_from_slice(format!("{long}\nlast {long}\n").as_bytes());
        let want: Vec<String> = text
            .split(|&b| b == b'\n')
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .take(8)
            .collect();
        for cap in [1, 7, 16, 64, 1 << 16] {
            let got = texts(&text, cap);
            let lines: Vec<String> = got.iter().map(|(t, _)| t.clone()).collect();
            assert_eq!(lines, want, "at {cap}");
            for (t, fast) in &got {
                assert!(!fast || t.is_ascii(), "{t:?} took the ASCII path at {cap}");
            }
        }
        // One read of it all: a non-ASCII byte in a read keeps all of it off the ASCII path.
        assert!(texts(&text, 1 << 16).iter().all(|(_, f)| !f));
        // Small reads: the lines after the non-ASCII ones take it again.
        let got = texts(&text, 16);
        assert!(got[0].1 && got[7].1, "{got:?}");
        // All ASCII: every line by the ASCII path.
        let plain = format!("a\n{long}\n\nb");
        assert!(texts(plain.as_bytes(), 16).iter().all(|(_, f)| *f));
    }
}
