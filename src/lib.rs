//! acl-ipc-guard: a validating, auditing shim for the Ascend runtime's IPC memory API.
//!
//! The library (`libacl_ipc_guard.so`) exports the vendor's `aclrtIpcMem*` functions, the
//! allocation calls it must see, and its own `aclIpcGuard*` API. Each call flows one way:
//!
//! ```text
//! exports (C ABI) ─► runtime::intercept ─► rules (pure checks) ─► real (forward) ─► state, ledger ─► record
//! ```
//!
//! Module map:
//! - [`exports`], [`capi`]: the C entry points; thin.
//! - [`boundary`]: re-entry guard, panic containment.
//! - [`real`]: finding the real runtime's functions.
//! - [`runtime`]: process-wide state and the per-call path; its cross-process side; exit and fork.
//! - [`rules`]: the rule table and the checks, plain safe Rust.
//! - [`state`]: this process's allocations, exports and imports.
//! - [`ledger`]: the cross-process view of each key, through a shared directory.
//! - [`record`]: record types, encodings, the log writer.
//! - [`config`]: the `ACL_IPC_GUARD_*` switches.
//! - [`sync`]: fork-safe locks and the writer's wake-up.
//!
//! The `acl-ipc-guard` command (run, rules, report) is the workspace member `cli/`, built
//! on this crate's rlib.

pub mod boundary;
pub mod call;
pub mod capi;
pub mod config;
pub mod exports;
pub mod key;
pub mod ledger;
pub mod real;
pub mod record;
pub mod rules;
pub mod runtime;
pub mod state;
pub mod sync;
pub mod vendor;
