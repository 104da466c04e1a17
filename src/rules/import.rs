//! `aclrtIpcMemImportByKey`.

use super::{Findings, Identity, ImportFacts, LedgerFacts, Rule};
use crate::key::{Fp, KeyArg};
use crate::state::View;

/// `aclrtIpcMemImportByKey`: the arguments, not the process's own export, and (from the
/// ledger) the exporter still has the memory and has whitelisted this process in time.
pub(super) fn check(
    f: &mut Findings,
    state: &View,
    me: &Identity,
    ledger: &LedgerFacts,
    out_ptr: usize,
    key: &KeyArg,
    flags: u64,
) {
    if out_ptr == 0 {
        f.add(
            Rule::ImportOutNull,
            key.fp(),
            "devPtr (the out-pointer) is NULL".into(),
        );
    }
    let fp = f.key(key, Rule::ImportKeyNull, Rule::ImportKeyUnterminated);
    if flags > 1 {
        f.add(
            Rule::ImportFlags,
            fp,
            format!("flags is {flags:#x}; use ACL_RT_IPC_MEM_IMPORT_FLAG_DEFAULT (0) or ACL_RT_IPC_MEM_IMPORT_FLAG_ENABLE_PEER_ACCESS (1)"),
        );
    }
    if let Some(fp) = fp {
        if state.export(&fp).is_some() {
            f.add(
                Rule::ImportOwnExport,
                Some(fp),
                format!("key {fp} was exported by this same process; the exporter already has the memory and cannot import its own key"),
            );
        } else if let LedgerFacts::Import(l) = ledger {
            cross_process(f, fp, me, l);
        }
    }
}

/// The cross-process rules of an import, from what the ledger knows about the key (the
/// verdict is `cross::import_rules`, shared with the report; the words are the shim's).
fn cross_process(f: &mut Findings, fp: Fp, me: &Identity, l: &ImportFacts) {
    let Some(rule) = super::cross::import_rules(l, me.start_ns) else {
        return;
    };
    let message = match rule {
        Rule::ImportSourceGone => {
            let why = if l.exporter_closed {
                "closed the key"
            } else if l.memory_freed {
                "freed the memory"
            } else {
                "exited"
            };
            format!(
                "the exporter (pid {}) of key {fp} {why}; the shared memory no longer exists",
                l.exporter_pid
            )
        }
        Rule::ImportNotWhitelisted if l.own_pid_listed => format!("key {fp} is in whitelist mode and its list holds {}, this process's pid in its own pid namespace (getpid()), not its bare tgid {}: the exporter (pid {}) must aclrtIpcMemSetImportPid the bare tgid, which aclrtDeviceGetBareTgid returns in the importer", me.pid, me.bare_tgid, l.exporter_pid),
        Rule::ImportNotWhitelisted => format!("key {fp} is in whitelist mode and this process's bare tgid {} is not on its list; the exporter (pid {}) must aclrtIpcMemSetImportPid it first", me.bare_tgid, l.exporter_pid),
        _ => format!("this process (bare tgid {}) started after it was whitelisted for key {fp}; the driver refuses it (pid reuse protection)", me.bare_tgid),
    };
    f.add(rule, Some(fp), message);
}
