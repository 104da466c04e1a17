//! A call as plain data: which function, its arguments as read at the boundary, and its
//! outcome. The entry points build these; rules, state and records only read them.

use crate::key::{Key, KeyArg};

/// The table of intercepted functions: the single source of the list. Everything else
/// that names them is generated from it (`Func`, `Func::ALL`, `Func::name`) or checked
/// against it by a test: the typed real-function slots (`real.rs`), the C entry points
/// (through the generated header), `exports.map`, the audit module's own copy.
macro_rules! intercepted {
    ($( $variant:ident = $name:literal, $family:ident; )*) => {
        /// The intercepted functions.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Func { $( $variant, )* }

        impl Func {
            /// Every intercepted function, in table order.
            pub const ALL: [Func; [$( Func::$variant, )*].len()] = [$( Func::$variant, )*];

            /// The vendor's symbol name.
            pub const fn name(self) -> &'static str {
                match self { $( Func::$variant => $name, )* }
            }

            /// Which family the function belongs to.
            pub const fn family(self) -> Family {
                match self { $( Func::$variant => Family::$family, )* }
            }
        }
    };
}

/// What kind of call a function makes; the memory family is recorded only with
/// `ACL_IPC_GUARD_CALLS=all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// The IPC functions and aclrtDeviceGetBareTgid.
    Ipc,
    /// The malloc/free family.
    Memory,
}

intercepted! {
    GetExportKey = "aclrtIpcMemGetExportKey", Ipc;
    SetImportPid = "aclrtIpcMemSetImportPid", Ipc;
    ImportPidInterServer = "aclrtIpcMemImportPidInterServer", Ipc;
    ImportByKey = "aclrtIpcMemImportByKey", Ipc;
    SetAttr = "aclrtIpcMemSetAttr", Ipc;
    Close = "aclrtIpcMemClose", Ipc;
    DeviceGetBareTgid = "aclrtDeviceGetBareTgid", Ipc;
    Malloc = "aclrtMalloc", Memory;
    MallocAlign32 = "aclrtMallocAlign32", Memory;
    MallocCached = "aclrtMallocCached", Memory;
    Free = "aclrtFree", Memory;
}

impl Func {
    /// The malloc/free family (recorded only with `ACL_IPC_GUARD_CALLS=all`).
    pub const fn is_memory(self) -> bool {
        matches!(self.family(), Family::Memory)
    }
}

/// Most pids read from one `pid` array (the driver takes at most 31 per call).
pub const MAX_PIDS: usize = 31;
/// Most `aclrtServerPid` entries read from one call.
pub const MAX_SERVER_ENTRIES: usize = 64;

/// One `aclrtServerPid` entry as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerEntry {
    pub sdid: u32,
    pub pid_ptr: usize,
    pub num: usize,
    /// The pids, read when `pid_ptr` is not NULL and `num` is 1..=31.
    pub pids: Option<Vec<i32>>,
}

/// Arguments as read at the boundary. Pointers are kept as addresses; memory behind a
/// pointer is read only when the real runtime would read it too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Args {
    GetExportKey {
        dev_ptr: usize,
        size: usize,
        key_buf: usize,
        len: usize,
        flags: u64,
        /// The key the runtime wrote into `key_buf`, read after a successful call
        /// (`read_export_key`); the record's `out.key_fp`. Kept here, in room the
        /// arguments have anyway (the largest variant holds a key too), so that `Out` and
        /// with it every queued record stay small: 104 fewer bytes, two cache lines fewer
        /// for the calling thread to take back from the writer per record.
        key: Option<Key>,
    },
    SetImportPid {
        key: KeyArg,
        pid_ptr: usize,
        /// Read when `pid_ptr` is not NULL and `num` is 1..=31.
        pids: Option<Vec<i32>>,
        num: usize,
    },
    ImportPidInterServer {
        key: KeyArg,
        server_pids: usize,
        /// Read when `server_pids` is not NULL and `num` is 1..=64.
        entries: Option<Vec<ServerEntry>>,
        num: usize,
    },
    ImportByKey {
        out_ptr: usize,
        key: KeyArg,
        flags: u64,
    },
    SetAttr {
        key: KeyArg,
        attr_type: u32,
        attr: u64,
    },
    Close {
        key: KeyArg,
    },
    DeviceGetBareTgid {
        out_ptr: usize,
    },
    Malloc {
        out_ptr: usize,
        size: usize,
        policy: u32,
    },
    Free {
        dev_ptr: usize,
    },
}

impl Args {
    /// The key the call names (input keys only; the export's key is an output).
    pub fn key(&self) -> Option<&KeyArg> {
        match self {
            Args::SetImportPid { key, .. }
            | Args::ImportPidInterServer { key, .. }
            | Args::ImportByKey { key, .. }
            | Args::SetAttr { key, .. }
            | Args::Close { key } => Some(key),
            _ => None,
        }
    }
}

impl Args {
    /// Drops arguments that were not handed to a record. Only the pid-list variants own
    /// memory; the others are forgotten after one inline compare, where the out-of-line
    /// drop glue was a call and a jump table on every call. The match names every variant,
    /// so that a new one must say whether it owns memory.
    #[inline(always)]
    pub fn dispose(self) {
        let owns_memory = match &self {
            Args::SetImportPid { .. } | Args::ImportPidInterServer { .. } => true,
            Args::GetExportKey { .. }
            | Args::ImportByKey { .. }
            | Args::SetAttr { .. }
            | Args::Close { .. }
            | Args::DeviceGetBareTgid { .. }
            | Args::Malloc { .. }
            | Args::Free { .. } => false,
        };
        if owns_memory {
            drop(self);
        } else {
            // Nothing to free: these variants hold no Vec, Box or other owner.
            std::mem::forget(self);
        }
    }

    /// After a successful export, reads the key the runtime wrote into `key_buf`.
    ///
    /// # Safety
    /// Only after the real runtime's export succeeded: it wrote a NUL-terminated key there.
    pub unsafe fn read_export_key(&mut self) {
        if let Args::GetExportKey {
            key_buf,
            key: key @ None,
            ..
        } = self
        {
            // SAFETY: the runtime wrote a NUL-terminated key there (caller).
            *key = unsafe { crate::ffi::raw::key(*key_buf as *const std::ffi::c_char) }
                .key()
                .copied();
        }
    }

    /// Reads the pid arrays the arguments point to (`SetImportPid`'s `pid`, each
    /// `aclrtServerPid` entry's `pid`), where pointer and count are sane (non-NULL, 1..=31)
    /// and not read yet.
    ///
    /// # Safety
    /// Only where the real runtime reads them too: the caller's memory is trusted exactly
    /// as far as the runtime trusts it.
    pub unsafe fn read_pid_lists(&mut self) {
        match self {
            Args::SetImportPid {
                pid_ptr,
                pids: pids @ None,
                num,
                ..
            } => {
                // SAFETY: the runtime reads this array (caller).
                *pids = unsafe { crate::ffi::raw::pids(*pid_ptr, *num) }
            }
            Args::ImportPidInterServer {
                entries: Some(entries),
                ..
            } => {
                for e in entries.iter_mut().filter(|e| e.pids.is_none()) {
                    // SAFETY: the runtime reads each entry's array (caller).
                    e.pids = unsafe { crate::ffi::raw::pids(e.pid_ptr, e.num) };
                }
            }
            _ => {}
        }
    }
}

/// Values written through out-pointers, read after a successful call (an export's key is
/// in its arguments: `Args::GetExportKey::key`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Out {
    pub dev_ptr: Option<usize>,
    pub pid: Option<i32>,
}

/// What happened to the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// What the program got back.
    pub ret: i32,
    pub forwarded: bool,
    pub out: Out,
    pub dur_ns: u64,
    /// An export the ledger could not hold (it was full): the key is not checked across
    /// processes, and its record says so (`"ledger":"untracked"`).
    pub untracked: bool,
}

/// The vendor's error codes the shim itself returns or reasons about.
pub mod codes {
    pub const ACL_SUCCESS: i32 = 0;
    pub const ACL_ERROR_INVALID_PARAM: i32 = 100000;
    pub const ACL_ERROR_API_NOT_SUPPORT: i32 = 200001;
}
