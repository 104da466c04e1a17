//! The log: a bounded queue in front of one sink, drained by a writer thread so that the
//! calling thread never waits on disk for `call` records. Records that must not be lost
//! (`violation`, `error`, `start`, `summary`) are written through: the calling thread
//! drains the queue itself, in `seq` order, before it returns. The records one drain takes
//! are written together (`batch`: one `write()` per 64 KiB), before the drain returns.
//! When the queue is full a `call` record is dropped and counted; its `seq` is still
//! taken, so the gap shows the loss.
//!
//! The sink is a file (or stderr), or a syslog socket (`syslog.rs`): one datagram per
//! record, never waited on for long; a record the daemon does not take is dropped and
//! counted the same way.

use super::batch::LineBatch;
use super::syslog::{self, Socket};
use super::{encode, Body, Record};
use crate::clock::{monotonic_ns, now_ns};
use crate::config::{Config, Format, LogTarget};
use crate::sync::{Doorbell, Lock, PlainLock};
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How many `call` records may wait for the writer thread.
pub const QUEUE_CAPACITY: usize = 16 * 1024;

/// How long the writer keeps looking for more records after writing, before it sleeps
/// (µs). A producer rings only a sleeping writer, and each ring is a system call on the
/// calling thread (a futex wake, about a microsecond on a virtual machine): a writer that
/// slept as soon as it had caught up made nearly every IPC call of a busy program pay
/// one. While it looks it is awake, so a record waits no longer than when it is rung
/// (give or take `POLL_NS`), and nothing queued waits for a timeout: a process that ends with `_exit()` (Python's
/// `multiprocessing` children do) right after its last call loses no more than before.
/// An earlier version let the writer nap for 1 ms unrung instead, which lost such a
/// child's last records.
const LOOK_US: i64 = 50;

/// How often the writer looks for a new record while it looks for more (`LOOK_US`), ns.
/// Between looks it reads only the clock: each look takes the producers' line (the
/// queue's lock and counter) away from them, and a writer that looked continuously made
/// nearly every record wait for that line to come back. So a record waits for the writer
/// up to this long more than it would if rung, and a drain takes the records of this
/// long at once.
const POLL_NS: i64 = 2000;

/// How often at most the writer runs its `idle` work (it also wakes for it: its sleeps
/// end after `SLEEP_MS` unrung).
const IDLE_EVERY_NS: i64 = 50_000_000;
const SLEEP_MS: i64 = 200;

/// How many records' worth of each queue buffer stays backed by memory while the writer
/// sleeps: the pages past them, touched by a burst, are given back then
/// (`Log::release_burst_pages`).
const KEEP_RECORDS: usize = 1024;

/// A value on cache lines of its own: the producers' and the writer's shared words do not
/// drag their neighbours between cores.
#[repr(align(64))]
struct OwnLine<T>(T);

impl<T> std::ops::Deref for OwnLine<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A queue buffer for `capacity` records, allocated up front. Only address space: a page
/// is backed when a record is first written into it, and stays (drains keep the buffer)
/// until the writer gives it back after a burst. Empty if the allocation fails: it then
/// grows as records come, as any `Vec` does.
fn queue_buffer(enabled: bool, capacity: usize) -> Vec<Record> {
    let mut v = Vec::new();
    if enabled {
        let _ = v.try_reserve_exact(capacity);
    }
    v
}

struct Queue {
    /// The records waiting for the writer, oldest first. Its buffer is allocated once for
    /// the queue's whole capacity (`queue_buffer`): a record is written into pages that an
    /// earlier batch touched already, never into a buffer being regrown.
    items: Vec<Record>,
    next_seq: u64,
    /// The time of the last record queued, µs: records given a time read before they were
    /// queued never go back before it (`push_at`).
    last_ts_us: i64,
}

/// What a producer writes for every record besides the record itself.
struct Front {
    /// A `PlainLock`: taken for a few dozen instructions per record, by every record.
    queue: PlainLock<Queue>,
    /// The `seq` of the last record queued, which the writer watches while it looks for
    /// more, without the queue's lock (the records themselves pass under the lock). It
    /// reads it every `POLL_NS` at most, not continuously: every read takes the line from
    /// the producer, whose next record then waits for it.
    queued: AtomicU64,
}

struct Sink {
    fd: i32,
    /// We opened `fd` (and close it after fork when the path names the pid).
    owned: bool,
    /// The records being written, encoded.
    lines: LineBatch,
    /// The queue's other buffer: a drain swaps it in, so the queue keeps its capacity.
    spare: Vec<Record>,
    write_failed: bool,
    /// A record was written only in part (the disk filled up mid-line): the next record
    /// starts on a new line, so that one torn line never swallows a whole one.
    torn: bool,
    /// The most records one drain took since the writer last gave a burst's pages back.
    burst: usize,
    /// The syslog socket, when the log goes to syslog (then `fd` is unused), and the
    /// buffer its datagrams are made in.
    syslog: Option<Socket>,
    datagram: Vec<u8>,
}

pub struct Log {
    format: Format,
    show_keys: bool,
    target: LogTarget,
    /// The syslog HOSTNAME field (uname's nodename), when the log goes to syslog.
    host: String,
    capacity: usize,
    /// The queue and its counter, on one line: a producer writes one line besides the
    /// record, and the writer takes that line once per look and once per drain.
    front: OwnLine<Front>,
    /// The writer stores its state here when it sleeps and wakes; a producer reads it.
    wake: OwnLine<Doorbell>,
    /// Taken by the writer for every drain: away from what producers read on every record
    /// (the flags and the capacity below).
    sink: OwnLine<Lock<Sink>>,
    dropped: AtomicU64,
    writer_running: AtomicBool,
    /// Set in a fork child: its `call` records are written by the calling thread before
    /// the call returns, as the write-through records are. Fork children often end with
    /// `_exit()` right after their last call (Python `multiprocessing` workers, started
    /// by fork or by a fork server, always do), which no `atexit` sees: a child that
    /// imported, closed and left lost every call record nine times in ten, and a pool's
    /// workers logging to a slow syslog socket most of theirs. A write per call (a few
    /// microseconds) is the price there; the parent keeps its writer thread's hand-off.
    calls_through: AtomicBool,
    /// Set once the summary is written: later records are refused.
    closed: AtomicBool,
    /// Run by the writer thread now and then (`IDLE_EVERY_NS`): work for a thread that
    /// lives as long as the process (the runtime keeps the ledger's liveness word held).
    idle: Option<fn()>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    pub dropped: u64,
}

/// Writes one line on stderr, bypassing any buffering; for the shim's own trouble.
pub fn stderr_line(msg: &str) {
    let line = format!("acl-ipc-guard: {msg}\n");
    // SAFETY: writing a valid buffer to fd 2.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
    }
}

/// A log path with `%p` replaced by the pid and `%h` by the host name (uname's nodename,
/// `/` in it written `_`; `unknown` when there is none): in containers every process may
/// be pid 1, and the host name (the pod's, the container's) tells their files apart.
fn expand_path(template: &str, pid: i32) -> String {
    let mut path = template.replace("%p", &pid.to_string());
    if path.contains("%h") {
        let host = crate::runtime::host_name().replace(['/', '\0'], "_");
        let host = if host.is_empty() {
            "unknown".to_string()
        } else {
            host
        };
        path = path.replace("%h", &host);
    }
    path
}

#[cfg(test)]
#[test]
fn a_log_path_names_the_pid_and_the_host() {
    let host = crate::runtime::host_name();
    assert!(!host.is_empty(), "this machine has a host name");
    assert_eq!(expand_path("/l/job.%p.json", 42), "/l/job.42.json");
    assert_eq!(
        expand_path("/l/%h/job.%h.%p.json", 7),
        format!("/l/{host}/job.{host}.7.json")
    );
    assert_eq!(expand_path("/l/plain.json", 7), "/l/plain.json");
}

/// Opens a log file the safe way: append, create 0600, close-on-exec, never through a
/// symlink.
fn open_log(path: &str) -> Result<i32, String> {
    let c = CString::new(path).map_err(|_| format!("log path {path:?} holds a NUL"))?;
    // SAFETY: c is a valid C string; flags and mode are plain integers.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0o600 as libc::c_uint,
        )
    };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        Err(format!(
            "cannot open log {path}: {err}; records are not written, the program carries on"
        ))
    } else {
        Ok(fd)
    }
}

/// Gives back the pages of an empty buffer's capacity past its first `KEEP_RECORDS`
/// records (they read as zeros if touched again: unused capacity holds nothing).
fn release_tail(buf: &Vec<Record>) {
    if !buf.is_empty() {
        return;
    }
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as usize,
        _ => return,
    };
    let size = std::mem::size_of::<Record>();
    let base = buf.as_ptr() as usize;
    let start = (base + KEEP_RECORDS * size).next_multiple_of(page);
    let end = (base + buf.capacity() * size) / page * page;
    if end > start {
        // SAFETY: [start, end) lies inside the buffer's own allocation, in capacity that
        // holds no record (the buffer is empty and only this thread reaches it, under the
        // sink's lock); MADV_DONTNEED on it only drops its pages.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// Asks for the three cache lines of the record slot at `addr` in the state a write
/// needs (owned by this core), without waiting for them. Only a hint: it never faults,
/// on any address; 0 asks for nothing. `prefetchw` on x86-64 (a no-op on CPUs without
/// it), `prfm pstl1keep` on arm64, nothing elsewhere.
#[inline(always)]
fn prefetch_record(addr: usize) {
    // A record is three lines (test `a_queued_record_stays_within_three_cache_lines`).
    if addr == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees, writes nothing and never faults,
    // whatever the address.
    unsafe {
        std::arch::asm!(
            "prefetchw byte ptr [{0}]",
            "prefetchw byte ptr [{0} + 64]",
            "prefetchw byte ptr [{0} + 128]",
            in(reg) addr,
            options(nostack, preserves_flags, readonly)
        );
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above (prefetch hints).
    unsafe {
        std::arch::asm!(
            "prfm pstl1keep, [{0}]",
            "prfm pstl1keep, [{0}, #64]",
            "prfm pstl1keep, [{0}, #128]",
            in(reg) addr,
            options(nostack, preserves_flags, readonly)
        );
    }
}

fn now_us() -> i64 {
    now_ns() / 1000
}

/// How far a record's given time may lie behind the last queued one and still be taken as
/// a race between threads (the record then gets the last time): further back, the clock
/// was set back, and the record keeps its own.
const REORDER_US: i64 = 1000;

/// A queued record's time: `given` (read by the caller before the record was queued), or
/// `now()`; a given time a little before the `last` queued record's becomes that.
fn record_time(given: Option<i64>, last: i64, now: impl FnOnce() -> i64) -> i64 {
    match given {
        Some(t) if t < last && last - t <= REORDER_US => last,
        Some(t) => t,
        None => now(),
    }
}

#[cfg(test)]
#[test]
fn record_times_keep_seq_order_but_follow_a_clock_set_back() {
    let now = || 5_000_000;
    assert_eq!(record_time(None, 7, now), 5_000_000);
    assert_eq!(record_time(Some(2_000), 1_500, now), 2_000);
    // Another thread queued its record first with a later time: take that time.
    assert_eq!(record_time(Some(2_000), 2_400, now), 2_400);
    // The clock went back by a second: the record keeps its own time.
    assert_eq!(record_time(Some(2_000), 1_002_000, now), 2_000);
}

impl Log {
    /// Creates the log and opens its sink; an open failure is said once on stderr.
    pub fn new(config: &Config, pid: i32) -> Log {
        Log::with_capacity(config, pid, QUEUE_CAPACITY)
    }

    pub fn with_capacity(config: &Config, pid: i32, capacity: usize) -> Log {
        let mut socket = None;
        let mut host = String::new();
        let mut said = false;
        let (fd, owned) = match &config.log {
            LogTarget::Syslog(path) => {
                let (s, lost) = Socket::open(path);
                if let Some(lost) = lost {
                    stderr_line(&format!(
                        "{}; records are dropped (and counted) until it takes them, the program carries on",
                        lost.describe(path)
                    ));
                    said = true;
                }
                socket = Some(s);
                host = syslog::host_field(&crate::runtime::host_name());
                (-1, false)
            }
            LogTarget::Off => (-1, false),
            LogTarget::Stderr => (2, false),
            LogTarget::File(t) => match open_log(&expand_path(t, pid)) {
                Ok(fd) => (fd, true),
                Err(msg) => {
                    stderr_line(&msg);
                    (-1, false)
                }
            },
        };
        let enabled = config.log != LogTarget::Off;
        Log {
            format: config.format,
            show_keys: config.show_keys,
            target: config.log.clone(),
            host,
            capacity,
            front: OwnLine(Front {
                queue: PlainLock::new(Queue {
                    items: queue_buffer(enabled, capacity),
                    next_seq: 1,
                    last_ts_us: 0,
                }),
                queued: AtomicU64::new(0),
            }),
            wake: OwnLine(Doorbell::new()),
            sink: OwnLine(Lock::new(Sink {
                fd,
                owned,
                lines: LineBatch::new(),
                spare: queue_buffer(enabled, capacity),
                burst: 0,
                // A syslog socket that could not be reached said so already: its losses
                // are not said again.
                write_failed: said,
                torn: false,
                syslog: socket,
                datagram: Vec::new(),
            })),
            dropped: AtomicU64::new(0),
            writer_running: AtomicBool::new(false),
            calls_through: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            idle: None,
        }
    }

    /// Gives the writer thread `f` to run now and then (`IDLE_EVERY_NS`), also when no
    /// record comes; a panic in it is contained (the writer carries on).
    pub fn with_idle(mut self, f: fn()) -> Log {
        self.idle = Some(f);
        self
    }

    /// Tells helgrind (feature `checker-annotations`) which atomics are read and written
    /// without any ordering, before another thread can see them: the drop counter, and
    /// flags nothing is published through (`closed`: the records behind it are in the
    /// queue, behind its lock; `writer_running`: the thread it stands for is started by
    /// pthread_create, which helgrind sees).
    pub fn benign_for_checker(&self) {
        crate::valgrind::benign_atomic(&self.dropped);
        crate::valgrind::benign_atomic(&self.front.queued);
        crate::valgrind::benign_atomic(&self.writer_running);
        crate::valgrind::benign_atomic(&self.closed);
    }

    /// False when `ACL_IPC_GUARD_LOG=off`: nothing is queued at all.
    pub fn enabled(&self) -> bool {
        self.target != LogTarget::Off
    }

    pub fn stats(&self) -> LogStats {
        LogStats {
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }

    /// Queues a record for the writer thread; when the queue is full it is dropped and
    /// counted. `ts_us`: the record's time if the caller read it already (the end of the
    /// call it is about), else it is read now; it never goes back a little before the last
    /// queued record's (`REORDER_US`), so that time order stays `seq` order.
    pub fn push_at(&'static self, pid: i32, tid: i32, body: Body, ts_us: Option<i64>) {
        let Some(next) = self.enqueue(pid, tid, body, true, ts_us) else {
            return;
        };
        if self.calls_through.load(Ordering::Relaxed) {
            self.flush();
            // The writer thread still runs, for its `idle` work (the ledger's liveness
            // word, which must be held as long as the process lives).
            if !self.writer_running.load(Ordering::Acquire) {
                self.start_writer();
            }
            return;
        }
        if self.writer_running.load(Ordering::Acquire) || self.start_writer() {
            // Only a sleeping writer is woken; one that is writing or looking for more
            // (`LOOK_US`) takes the record without a system call here.
            self.wake.ring();
        } else {
            self.flush();
        }
        // The next record's lines were last read by the writer (a drain that reused
        // this buffer): asked for now, they move while the program goes on, and the next
        // record is written into lines this core owns, with the lock held for less.
        prefetch_record(next);
    }

    /// Writes a record, and everything queued before it, before returning.
    pub fn push_through(&self, pid: i32, tid: i32, body: Body) {
        self.push_through_at(pid, tid, body, None);
    }

    /// [`Log::push_through`] with the record's time given (`None`: now).
    pub fn push_through_at(&self, pid: i32, tid: i32, body: Body, ts_us: Option<i64>) {
        if self.enqueue(pid, tid, body, false, ts_us).is_some() {
            self.flush();
        }
    }

    /// Gives the record its `seq` and queues it; returns the address of the queue's next
    /// free slot (0 when its buffer is full), or None when the log is off or, for a
    /// `bounded` record, the queue is full (the record is then counted as dropped).
    fn enqueue(
        &self,
        pid: i32,
        tid: i32,
        body: Body,
        bounded: bool,
        ts_us: Option<i64>,
    ) -> Option<usize> {
        if !self.enabled() || self.closed.load(Ordering::Acquire) {
            return None;
        }
        let mut q = self.front.queue.lock();
        let seq = q.next_seq;
        q.next_seq += 1;
        if bounded && q.items.len() >= self.capacity {
            drop(q);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let ts_us = record_time(ts_us, q.last_ts_us, now_us);
        q.last_ts_us = ts_us;
        let len = q.items.len();
        if len < q.items.capacity() {
            // Built in its slot, field by field: the body is copied once, from the
            // caller's frame, and no temporary record is made.
            let slot = q.items.spare_capacity_mut().as_mut_ptr().cast::<Record>();
            // SAFETY: `slot` is the first unused slot of the buffer's capacity (len <
            // capacity), valid for writes and aligned; every field is written before
            // `set_len` makes it part of the queue, and nothing reads it before.
            unsafe {
                std::ptr::addr_of_mut!((*slot).seq).write(seq);
                std::ptr::addr_of_mut!((*slot).ts_us).write(ts_us);
                std::ptr::addr_of_mut!((*slot).pid).write(pid);
                std::ptr::addr_of_mut!((*slot).tid).write(tid);
                std::ptr::addr_of_mut!((*slot).body).write(body);
                q.items.set_len(len + 1);
            }
        } else {
            // A write-through record past the capacity (or a buffer that could not be
            // allocated up front): the buffer grows.
            q.items.push(Record {
                seq,
                ts_us,
                pid,
                tid,
                body,
            });
        }
        // Under the queue's lock: a plain store, no read-modify-write.
        self.front.queued.store(seq, Ordering::Relaxed);
        let next = match q.items.spare_capacity_mut().first() {
            Some(slot) => slot.as_ptr() as usize,
            None => 0,
        };
        Some(next)
    }

    /// Writes what is queued and refuses every later record (after the summary at exit).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.flush();
    }

    /// Writes everything queued before this call, in order, from the calling thread. It
    /// takes the queue once (what was queued until then), so a busy
    /// program cannot keep it writing.
    ///
    /// Whatever was queued before it began is written before it returns: either it takes
    /// that record itself, or another drain (the writer's) took it first, and that drain
    /// writes all it took before it lets go of the sink, which this one waits for.
    pub fn flush(&self) {
        if !self.enabled() {
            return;
        }
        let mut sink = self.sink.lock();
        let sink = &mut *sink;
        // One hold of the queue's lock per drain (the producers' line is taken from them
        // once), swapping in the empty spare buffer.
        let mut batch = std::mem::take(&mut sink.spare);
        std::mem::swap(&mut batch, &mut self.front.queue.lock().items);
        sink.burst = sink.burst.max(batch.len());
        for mut rec in batch.drain(..) {
            // The summary counts every record lost before it: what is pending is
            // written first, so that its losses are counted too.
            if let Body::Summary { dropped, .. } = &mut rec.body {
                self.write_lines(sink);
                *dropped = self.dropped.load(Ordering::Relaxed);
            }
            if sink.syslog.is_some() {
                self.send_record(sink, &mut rec);
            } else if sink.fd < 0 {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            } else {
                sink.lines
                    .push(|out| encode(&mut rec, self.format, self.show_keys, out));
                if sink.lines.full() {
                    self.write_lines(sink);
                }
            }
        }
        self.write_lines(sink);
        // The buffer keeps its capacity: the next records go into pages already backed.
        sink.spare = batch;
    }

    /// Writes the encoded records to the sink, counting what could not be written.
    fn write_lines(&self, sink: &mut Sink) {
        if sink.lines.is_empty() {
            return;
        }
        let fd = sink.fd;
        let written = sink.lines.write_out(&mut sink.torn, &mut |b: &[u8]| {
            // SAFETY: b is a valid, initialised buffer.
            let n = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        if written.lost > 0 {
            self.dropped.fetch_add(written.lost, Ordering::Relaxed);
        }
        if let Some(err) = written.error {
            if !sink.write_failed {
                sink.write_failed = true;
                stderr_line(&format!(
                    "cannot write the log: {err}; records are being lost, the program carries on"
                ));
            }
        }
    }

    /// One RFC 5424 datagram: the header, then the record as the file sink writes it,
    /// without its line break.
    fn send_record(&self, sink: &mut Sink, rec: &mut Record) {
        let mut buf = std::mem::take(&mut sink.datagram);
        buf.clear();
        syslog::header(rec, &self.host, &mut buf);
        encode(rec, self.format, self.show_keys, &mut buf);
        buf.pop();
        let sent = match sink.syslog.as_mut() {
            Some(socket) => socket.send(&buf),
            None => Ok(()),
        };
        if let Err(lost) = sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if !sink.write_failed {
                sink.write_failed = true;
                if let LogTarget::Syslog(path) = &self.target {
                    stderr_line(&format!(
                        "{}; records are being dropped (and counted), the program carries on",
                        lost.describe(path)
                    ));
                }
            }
        }
        sink.datagram = buf;
    }

    /// Starts the writer thread; false if it cannot be started (records are then written
    /// through by the calling thread).
    fn start_writer(&'static self) -> bool {
        if self
            .writer_running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return true;
        }
        let spawned = std::thread::Builder::new()
            .name("acl-ipc-guard-log".into())
            .spawn(move || self.writer_loop());
        if spawned.is_err() {
            self.writer_running.store(false, Ordering::Release);
            return false;
        }
        true
    }

    fn writer_loop(&'static self) {
        crate::boundary::mark_internal_thread();
        let mut idle_at = 0;
        loop {
            let seen = self.front.queued.load(Ordering::Relaxed);
            self.flush();
            if !self.more_within(seen, LOOK_US) {
                self.release_burst_pages();
                self.wake
                    .sleep_unless(|| !self.front.queue.lock().items.is_empty(), SLEEP_MS);
            }
            if let Some(f) = self.idle {
                let now = now_ns();
                if now >= idle_at {
                    idle_at = now + IDLE_EVERY_NS;
                    let _ = std::panic::catch_unwind(f);
                }
            }
        }
    }

    /// Before the writer sleeps: if a drain took more than `KEEP_RECORDS` since the last
    /// time, the pages of both queue buffers past their first `KEEP_RECORDS` records are
    /// given back to the system (their contents are unused capacity). The queue's buffer
    /// is swapped out for it only while it is empty, and given back outside the queue's
    /// lock, so a producer never waits for the system call.
    fn release_burst_pages(&self) {
        let mut sink = self.sink.lock();
        if sink.burst <= KEEP_RECORDS {
            return;
        }
        sink.burst = 0;
        release_tail(&sink.spare);
        {
            let mut q = self.front.queue.lock();
            if !q.items.is_empty() {
                // Not idle after all: the buffer is in use; its turn comes another time.
                return;
            }
            std::mem::swap(&mut q.items, &mut sink.spare);
        }
        release_tail(&sink.spare);
    }

    /// Whether a record is queued beyond the `seen` count within `us` microseconds,
    /// looked for without sleeping (the writer stays awake: producers do not ring it),
    /// every `POLL_NS`: between looks it yields its core once and reads only the clock, so
    /// the producers' line stays with them and records gather for one drain.
    fn more_within(&self, seen: u64, us: i64) -> bool {
        // The monotonic clock: a wall clock set back must not keep the writer from looking.
        let start = monotonic_ns() as i64;
        let until = start + us * 1000;
        let mut look_at = start;
        loop {
            look_at += POLL_NS;
            // Gives the core to any thread waiting for it: on a machine with more runnable
            // threads than cores, a woken writer often gets the core of the thread that
            // rang it, and looking there for `LOOK_US` kept that thread, whose records it
            // looks for, from running (bench, 2 loaded cores: p99 of an export+close
            // 60 us -> 1.4 us). Alone on its core it returns at once.
            // SAFETY: sched_yield has no preconditions.
            unsafe { libc::sched_yield() };
            let now = loop {
                for _ in 0..16 {
                    std::hint::spin_loop();
                }
                let now = monotonic_ns() as i64;
                if now >= look_at {
                    break now;
                }
            };
            if self.front.queued.load(Ordering::Relaxed) != seen {
                return true;
            }
            if now >= until {
                return false;
            }
        }
    }

    /// Before fork: write what is queued and hold both locks so that the child gets them
    /// in a consistent state (released by `sync::release_fork_locks`).
    pub fn before_fork(&'static self) {
        self.flush();
        self.sink.hold_for_fork();
        self.front.queue.hold_for_fork();
    }

    /// In the child after fork: no writer thread exists here; a path with `%p` gets the
    /// child's own file.
    pub fn after_fork_child(&self, pid: i32) {
        self.writer_running.store(false, Ordering::Release);
        self.calls_through.store(true, Ordering::Relaxed);
        self.closed.store(false, Ordering::Release);
        self.wake.reset();
        // Records other threads queued between the parent's flush and the fork are the
        // parent's to write. The child is a process of its own: its records count from 1
        // again, beginning with its own `start`.
        {
            let mut q = self.front.queue.lock();
            q.items.clear();
            q.next_seq = 1;
        }
        // Its drops are its own: the parent's are in the parent's summary.
        self.dropped.store(0, Ordering::Relaxed);
        if let LogTarget::File(t) = &self.target {
            if t.contains("%p") {
                let mut sink = self.sink.lock();
                if sink.owned && sink.fd >= 0 {
                    // SAFETY: closing our own descriptor.
                    unsafe { libc::close(sink.fd) };
                }
                match open_log(&expand_path(t, pid)) {
                    Ok(fd) => {
                        sink.fd = fd;
                        sink.owned = true;
                    }
                    Err(msg) => {
                        stderr_line(&msg);
                        sink.fd = -1;
                        sink.owned = false;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;
    use crate::record::syslog_tests::call;

    /// How many pages of [start, start + len) are backed by memory now.
    fn resident((start, len): (usize, usize)) -> usize {
        let page = 4096;
        let first = start / page * page;
        let pages = (start + len).div_ceil(page) - first / page;
        let mut v = vec![0u8; pages];
        // SAFETY: the range lies in one live allocation of this process; v has a byte for
        // each of its pages.
        let r = unsafe { libc::mincore(first as *mut libc::c_void, pages * page, v.as_mut_ptr()) };
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
        v.iter().filter(|b| *b & 1 == 1).count()
    }

    /// A burst past `KEEP_RECORDS` grows nothing (both buffers hold the capacity from the
    /// start); the pages it touched are given back while the queue is idle, and the records
    /// queued after that (into pages that read as zeros again) are written whole, in `seq`
    /// order, none lost.
    #[test]
    fn a_bursts_pages_are_given_back_and_the_buffers_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json").to_str().unwrap().to_string();
        let p = path.clone();
        let (config, bad) =
            Config::from_lookup(|n| (n == crate::config::var::LOG).then(|| p.clone()), 1);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(config.format, Format::Json);
        let log = Log::with_capacity(&config, 4242, 4096);
        let buffers = |log: &Log| {
            let q = log.front.queue.lock().items.as_ptr() as usize;
            let s = log.sink.lock().spare.as_ptr() as usize;
            let mut b = [q, s];
            b.sort();
            b
        };
        let before = buffers(&log);
        for round in 0..3 {
            for _ in 0..3000 {
                assert!(log.enqueue(4242, 4243, call(), true, None).is_some());
            }
            log.flush();
            assert_eq!(log.sink.lock().burst, 3000, "round {round}");
            // The drained buffer (now the spare) had its 3,000 records' pages backed.
            let drained = log.sink.lock().spare.as_ptr() as usize;
            let size = std::mem::size_of::<Record>();
            let head = (drained, KEEP_RECORDS * size);
            let tail = (drained + (KEEP_RECORDS + 100) * size, 1800 * size);
            assert!(
                resident(tail) > 0,
                "round {round}: the burst's pages are backed"
            );
            log.release_burst_pages();
            assert_eq!(
                resident(tail),
                0,
                "round {round}: the burst's pages given back"
            );
            assert!(resident(head) > 0, "the first records' pages are kept");
            assert_eq!(log.sink.lock().burst, 0);
            assert_eq!(buffers(&log), before, "the same two buffers, never regrown");
            assert_eq!(log.front.queue.lock().items.capacity(), 4096);
            assert_eq!(log.sink.lock().spare.capacity(), 4096);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let seqs: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(seqs, (1..=9000).collect::<Vec<u64>>());
        assert_eq!(log.stats().dropped, 0);
    }
}
