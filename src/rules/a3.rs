//! The A3 super-node calls: `aclrtIpcMemImportPidInterServer` and `aclrtIpcMemSetAttr`.
//! Their rules are argument checks only, each call's problems in one finding.

use super::{key_problem, Findings, Rule};
use crate::call::ServerEntry;
use crate::key::KeyArg;

/// `aclrtIpcMemImportPidInterServer`: key, array and count, and each entry's pid array
/// and count. `entries` are the entries as read, when they were.
pub(super) fn check_interserver(
    f: &mut Findings,
    key: &KeyArg,
    server_pids: usize,
    entries: Option<&[ServerEntry]>,
    num: usize,
) {
    let mut problems: Vec<String> = key_problem(key).map(str::to_owned).into_iter().collect();
    if server_pids == 0 {
        problems.push("serverPids is NULL".into());
    }
    if num == 0 {
        problems.push("num is 0".into());
    }
    if let Some(entries) = entries {
        for (i, e) in entries.iter().enumerate() {
            if e.pid_ptr == 0 {
                problems.push(format!("serverPids[{i}].pid is NULL"));
            }
            if e.num == 0 {
                problems.push(format!("serverPids[{i}].num is 0"));
            }
        }
    }
    if !problems.is_empty() {
        f.add(Rule::InterserverArgs, key.fp(), problems.join("; "));
    }
}

/// `aclrtIpcMemSetAttr`: the key, the one attribute type, an ACCESS_LINK value.
pub(super) fn check_setattr(f: &mut Findings, key: &KeyArg, attr_type: u32, attr: u64) {
    let mut problems: Vec<String> = key_problem(key).map(str::to_owned).into_iter().collect();
    if attr_type != 0 {
        problems.push(format!(
            "type is {attr_type}; only ACL_RT_IPC_MEM_ATTR_ACCESS_LINK (0) exists"
        ));
    }
    if attr > 3 {
        problems.push(format!(
            "attr is {attr}; it must be an ACCESS_LINK value 0 to 3"
        ));
    }
    if !problems.is_empty() {
        f.add(Rule::SetattrArgs, key.fp(), problems.join("; "));
    }
}
