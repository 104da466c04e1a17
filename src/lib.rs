//! acl-ipc-guard: a validating, auditing shim for the Ascend runtime's IPC memory API.
//!
//! The library (`libacl_ipc_guard.so`) exports the vendor's `aclrtIpcMem*` functions, the
//! allocation calls it must see, and its own `aclIpcGuard*` API. Each call flows one way:
//!
//! ```text
//! ffi (C ABI) ─► runtime::entry: boundary ─► facts ─► rules (pure) ─► decide ─► real (forward) ─► state, ledger ─► record
//! ```
//!
//! Module map:
//! - `ffi`: the C entry points (thin), the library's own C API, the vendor's C types,
//!   and every raw read of the caller's memory (`ffi::raw`).
//! - [`call`]: the table of intercepted functions, and a call as plain data.
//! - `real`: one typed slot per real runtime function, found once.
//! - `boundary`: re-entry guard, panic containment.
//! - `runtime`: process-wide state; `entry`, the per-call path top to bottom;
//!   `per_func`, what particular functions add to it; the cross-process side; exit and fork.
//! - [`rules`]: the rule table and one check function per API call, plain safe Rust.
//! - [`state`]: this process's allocations, exports and imports.
//! - `allocs`: the table of live allocations, sharded by address.
//! - `ledger`: the cross-process view of each key (file format, table algorithms).
//! - [`record`]: record types (the schema), JSON and text encodings, the log writer.
//! - [`config`]: the `ACL_IPC_GUARD_*` switches and the mode names, as tables.
//! - `sync`: fork-safe locks and the writer's wake-up.
//!
//! Dependencies point one way: `ffi` → `runtime` → {`rules`, `state`, `ledger`, `real`,
//! `record`} → {`call`, `key`, `config`}; `ffi::raw` is a leaf.
//!
//! The `acl-ipc-guard` command (run, rules, report) is the workspace member `cli/`, built
//! on this crate's rlib.
//!
//! A new rule: its row in `rules/table.rs` and its check in the `rules/` file of the call
//! it is about (a fact the check needs and the runtime does not gather yet goes in
//! `runtime/per_func.rs`). A new switch: its row in `config.rs`'s `switches!` table and
//! its parsing in `Config::from_lookup`; then `ACL_IPC_GUARD_BLESS=1 cargo test --test
//! readme` regenerates the README's table.

#![deny(unsafe_op_in_unsafe_fn)]

// What the command-line tool and the tests use: the rule table and the pure checks with
// their fact types (rules, call, key, state), the record schema (record), the switches and
// mode names (config), the ledger's limits (limits).
pub mod call;
pub mod config;
pub mod key;
pub mod record;
pub mod rules;
pub mod state;

// The shim's internals.
pub(crate) mod allocs;
pub(crate) mod boundary;
pub(crate) mod clock;
pub(crate) mod ffi;
pub(crate) mod ledger;
pub(crate) mod real;
pub(crate) mod runtime;
pub(crate) mod sync;
pub(crate) mod valgrind;

/// The ledger file reader, for the fuzz targets in `fuzz/` (cargo feature `fuzzing`).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

/// The ledger's limits, as messages and the command-line tool name them.
pub mod limits {
    pub use crate::call::{MAX_PIDS, MAX_SERVER_ENTRIES};
    pub use crate::ledger::{
        ATTACH_CAPACITY, DEFAULT_KEYS, FILE_NAME, IMPORTERS_MAX, MAX_KEYS, MIN_KEYS, WHITELIST_MAX,
    };
}
