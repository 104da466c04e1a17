//! The ledger file's format: its regions, their records, and where each lies for a
//! capacity. The algorithms that run on them under the lock are in `table.rs`.
//!
//! Everything here is plain `repr(C)` integers, so an all-zero file is a valid empty
//! ledger, and every number read back is bounds-checked before use: the file is shared
//! with other processes and may hold anything a crashed or buggy writer left, which can
//! give wrong answers but never out-of-bounds access or an endless loop.
//!
//! The capacity (keys) is chosen by the process that creates the file and written in its
//! header; every region's place follows from it ([`Geometry`]).
//!
//! ```text
//! Header    magic, version, capacities (checked on open), the process-shared robust mutex
//! Ctl       counters: retired, used, next_fresh, backed, free stack, ring, tickets, pool
//! attach[A]  processes using the file (Who; ticket 0 = free); entry i is "alive" while
//!            its process holds an OFD lock on byte LOCK_BASE + i of the file
//! live[A]    per attach entry, a robust mutex one thread of its process keeps locked and
//!            the ticket it speaks for: a fast "alive" without a system call (file.rs)
//! index[2K]  open addressing by key identity, linear probing, no tombstones
//!            (backward-shift deletion); each entry names a slot
//! free[K]    stack of slots free for reuse
//! ring[K]    FIFO of finished slots, reclaimed oldest first when needed
//! slots[K]   one per key: exporter, flags, heads of its whitelist and importer chains
//! pool[4K]   32-byte entries for whitelists and importers, chained per key
//! ```

/// The file's name inside the ledger directory (the number is the layout version, so a
/// job mixing versions keeps two ledgers instead of refusing each other's). Version 4:
/// keys are indexed by the shim's own 64-bit identity of a key (`key::Fp`), no longer by
/// the SHA-256 prefix records show, so a process of an older version must not share it.
/// Version 5: the header's mutex starts a cache line of its own (it straddled two, so
/// every hold passed both between the cores of threads taking turns at it); a process of
/// version 4 would look for it elsewhere.
pub const FILE_NAME: &str = "ledger.v5";
pub const MAGIC: [u8; 8] = *b"AIGLEDGR";
pub const VERSION: u32 = 5;
/// Keys the ledger holds by default (`ACL_IPC_GUARD_LEDGER_KEYS` changes it for a new
/// ledger file).
pub const DEFAULT_KEYS: usize = 65_536;
pub const MIN_KEYS: usize = 64;
pub const MAX_KEYS: usize = 1 << 22;
/// Processes that can be attached at once (more may use the file, but their liveness
/// cannot be seen, and the file is then never removed).
pub const ATTACH: usize = 4096;
/// Pool entries per key of capacity.
pub const POOL_PER_KEY: usize = 4;
/// Whitelisted pids per key (the vendor's limit); more are counted as dropped.
pub const WHITELIST_MAX: u32 = 32_768;
/// Importing processes remembered per key; more are counted as dropped.
pub const IMPORTERS_MAX: u32 = 4096;
/// Slots are backed by file space in chunks of this many (see `Ctl::backed`).
pub const CHUNK: usize = 64;
/// Pool entries are backed in chunks of this many.
pub const POOL_CHUNK: usize = 1024;
/// Finished keys (closed by everyone) remembered before the oldest is reused even though
/// the file could grow: late importers of the most recently closed keys still learn that
/// the exporter closed, without /dev/shm filling up with history.
pub const KEEP_FINISHED: usize = 512;
/// Byte offset of the liveness lock of attach entry 0 (entry i locks byte LOCK_BASE + i).
/// Past the end of any ledger file: locks there need no file space.
pub const LOCK_BASE: u64 = 1 << 40;
/// `Who::slot` of a process that has no attach entry (its liveness cannot be seen).
pub const NO_SLOT: u32 = u32::MAX;

/// A process as stored in the file. `ticket` names it uniquely within the file (handed
/// out on attach, never reused); pids only label it for people and whitelists.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Who {
    pub ticket: u64,
    /// The bare tgid (the host pid), 0 when unknown.
    pub bare_tgid: i32,
    /// The pid in its own pid namespace.
    pub pid: i32,
    /// Its attach entry, or NO_SLOT.
    pub slot: u32,
    pub(super) _pad: u32,
}

impl Who {
    pub fn new(ticket: u64, pid: i32, bare_tgid: i32, slot: u32) -> Who {
        Who {
            ticket,
            bare_tgid,
            pid,
            slot,
            _pad: 0,
        }
    }

    /// The same process.
    pub fn same(&self, o: &Who) -> bool {
        self.ticket == o.ticket
    }

    pub fn is_free(&self) -> bool {
        self.ticket == 0
    }

    /// The pid to name it by: the bare tgid when known.
    pub fn host_pid(&self) -> i32 {
        if self.bare_tgid > 0 {
            self.bare_tgid
        } else {
            self.pid
        }
    }
}

/// The liveness word of one attach entry: a process-shared robust mutex that a thread of
/// the entry's process keeps locked, and the ticket of the process that locked it (0: none,
/// or being taken over). While a thread holds a robust mutex, glibc keeps it on that
/// thread's robust list and the kernel, when the thread exits, dies or execs, replaces the
/// owner's thread id in the mutex's first word by FUTEX_OWNER_DIED: a thread id in the word
/// means its holder is running, in whatever pid namespace. One cache line each.
#[repr(C, align(64))]
pub(crate) struct Live {
    /// Changed by other threads, processes and the kernel at any time, hence the cell.
    pub mutex: std::cell::UnsafeCell<libc::pthread_mutex_t>,
    /// The ticket whose liveness the mutex's holder tells; cleared by a new owner of the
    /// entry before it takes the mutex.
    pub ticket: std::sync::atomic::AtomicU64,
}

/// A whitelist or importer entry, chained per key. A whitelist entry keeps the pid in
/// `who.bare_tgid` and the time it was set (CLOCK_BOOTTIME ns) in `who.ticket`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Entry {
    /// Next entry + 1; 0 ends the chain.
    pub next: u32,
    /// Importer entries: the import was closed.
    pub closed: u32,
    pub who: Who,
}

/// One key.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
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
    pub wl_len: u32,
    /// Whitelist entries that did not fit.
    pub wl_dropped: u32,
    pub imp_len: u32,
    /// Importers that did not fit.
    pub imp_dropped: u32,
    /// First entry + 1 of each chain; 0 = empty.
    pub(super) wl_head: u32,
    pub(super) imp_head: u32,
    pub(super) _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IndexEntry {
    pub fp: [u8; 8],
    /// Slot number + 1; 0 = empty position.
    pub body: u32,
    pub(super) _pad: u32,
}

/// Fixed at creation, checked by every opener, never written afterwards.
#[repr(C)]
pub(crate) struct Header {
    pub magic: [u8; 8],
    pub version: u32,
    pub header_size: u32,
    pub file_size: u64,
    pub keys: u32,
    pub index: u32,
    pub attach: u32,
    pub pool: u32,
    pub slot_size: u32,
    pub entry_size: u32,
    /// Zero: the mutex begins the next cache line (the header is mapped 64-aligned), so
    /// that all of it (the word, the owner, the kind and the robust list links each hold
    /// writes or reads) is one line.
    pub(super) _pad: [u8; 16],
    /// Changed by other threads and processes at any time, hence the cell.
    pub mutex: std::cell::UnsafeCell<libc::pthread_mutex_t>,
}

// The mutex on one line of its own.
const _: () = assert!(std::mem::offset_of!(Header, mutex) % 64 == 0);

/// The counters the mutex protects.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub(crate) struct Ctl {
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
    /// The last ticket handed out.
    pub last_ticket: u64,
    /// Free pool entries: head + 1 of the free chain, and its length.
    pub pool_free: u32,
    pub pool_free_len: u32,
    /// Pool entries `[0, pool_fresh)` have been handed out at least once; `[0,
    /// pool_backed)` have file space.
    pub pool_fresh: u32,
    pub pool_backed: u32,
}

/// Where everything is, for a capacity of `keys`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub keys: usize,
    pub index: usize,
    pub attach: usize,
    pub pool: usize,
    pub off_ctl: usize,
    pub off_attach: usize,
    pub off_live: usize,
    pub off_index: usize,
    pub off_free: usize,
    pub off_ring: usize,
    pub off_slots: usize,
    pub off_pool: usize,
    pub file_size: usize,
}

const fn align(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

impl Geometry {
    /// The layout for `keys` (clamped to `[MIN_KEYS, MAX_KEYS]`).
    pub fn new(keys: usize) -> Geometry {
        use std::mem::size_of;
        let keys = keys.clamp(MIN_KEYS, MAX_KEYS);
        let index = (2 * keys).next_power_of_two();
        let attach = ATTACH;
        let pool = POOL_PER_KEY * keys;
        let off_ctl = align(size_of::<Header>(), 64);
        let off_attach = align(off_ctl + size_of::<Ctl>(), 64);
        let off_live = align(off_attach + attach * size_of::<Who>(), 64);
        let off_index = align(off_live + attach * size_of::<Live>(), 64);
        let off_free = off_index + index * size_of::<IndexEntry>();
        let off_ring = off_free + keys * 4;
        let off_slots = align(off_ring + keys * 4, 64);
        let off_pool = align(off_slots + keys * size_of::<Slot>(), 64);
        let file_size = align(off_pool + pool * size_of::<Entry>(), 4096);
        Geometry {
            keys,
            index,
            attach,
            pool,
            off_ctl,
            off_attach,
            off_live,
            off_index,
            off_free,
            off_ring,
            off_slots,
            off_pool,
            file_size,
        }
    }

    /// The layout a header describes, when it is one this version writes.
    pub fn of_header(h: &Header) -> Option<Geometry> {
        let g = Geometry::new(h.keys as usize);
        (h.magic == MAGIC
            && h.version == VERSION
            && h.header_size as usize == std::mem::size_of::<Header>()
            && h.keys as usize == g.keys
            && h.index as usize == g.index
            && h.attach as usize == g.attach
            && h.pool as usize == g.pool
            && h.slot_size as usize == std::mem::size_of::<Slot>()
            && h.entry_size as usize == std::mem::size_of::<Entry>()
            && h.file_size as usize == g.file_size)
            .then_some(g)
    }

    /// Byte offset of the end of slot `n - 1` (the space slots `[0, n)` need).
    pub fn slots_end(&self, n: usize) -> usize {
        self.off_slots + n.min(self.keys) * std::mem::size_of::<Slot>()
    }

    /// Byte offset of the end of pool entry `n - 1`.
    pub fn pool_end(&self, n: usize) -> usize {
        self.off_pool + n.min(self.pool) * std::mem::size_of::<Entry>()
    }

    /// Writes the fixed header fields (not the mutex).
    pub fn fill(&self, h: &mut Header) {
        h.magic = MAGIC;
        h.version = VERSION;
        h.header_size = std::mem::size_of::<Header>() as u32;
        h.file_size = self.file_size as u64;
        h.keys = self.keys as u32;
        h.index = self.index as u32;
        h.attach = self.attach as u32;
        h.pool = self.pool as u32;
        h.slot_size = std::mem::size_of::<Slot>() as u32;
        h.entry_size = std::mem::size_of::<Entry>() as u32;
    }
}
