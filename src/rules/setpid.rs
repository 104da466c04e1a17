//! `aclrtIpcMemSetImportPid`.

use super::{Findings, Identity, Rule};
use crate::call::MAX_PIDS;
use crate::key::KeyArg;
use crate::state::View;

/// `aclrtIpcMemSetImportPid`: the key is this process's open export with a whitelist,
/// and the pid list is one the driver takes. `pids` is the list as read, when it was.
pub(super) fn check(
    f: &mut Findings,
    state: &View,
    me: &Identity,
    key: &KeyArg,
    pid_ptr: usize,
    pids: Option<&[i32]>,
    num: usize,
) {
    let fp = f.key(key, Rule::SetpidKeyNull, Rule::SetpidKeyUnterminated);
    if let Some(fp) = fp {
        match state.export(&fp) {
            None => f.add(
                Rule::SetpidKeyUnknown,
                Some(fp),
                format!("key {fp} was not exported by this process, or is already closed; only the exporter may whitelist"),
            ),
            Some(e) if e.validation_disabled() => f.add(
                Rule::SetpidValidationDisabled,
                Some(fp),
                format!("key {fp} was exported with ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION; it has no whitelist (the runtime returns 207006)"),
            ),
            Some(_) => {}
        }
    }
    if pid_ptr == 0 {
        f.add(Rule::SetpidPidNull, fp, "pid is NULL".into());
    }
    if num == 0 || num > MAX_PIDS {
        f.add(
            Rule::SetpidNum,
            fp,
            format!("num is {num}; current drivers take 1 to 31 pids per call"),
        );
    }
    if let Some(pids) = pids {
        let bad: Vec<_> = pids.iter().filter(|p| **p <= 0).collect();
        if !bad.is_empty() {
            f.add(
                Rule::SetpidPidInvalid,
                fp,
                format!("pid list holds {bad:?}; pids must be bare tgids from aclrtDeviceGetBareTgid (the driver skips 0 silently)"),
            );
        }
        if pids.iter().any(|p| *p == me.pid || *p == me.bare_tgid) {
            f.add(
                Rule::SetpidOwnPid,
                fp,
                format!(
                    "pid list holds this process's own pid {}; the driver skips it silently",
                    me.bare_tgid
                ),
            );
        }
    }
}
