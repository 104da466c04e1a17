//! `aclrtDeviceGetBareTgid`.

use super::{Findings, Rule};
use crate::call::Outcome;

/// Before the call: the out-pointer is there.
pub(super) fn check(f: &mut Findings, out_ptr: usize) {
    if out_ptr == 0 {
        f.add(
            Rule::BareTgidOutNull,
            None,
            "pid (the out-pointer) is NULL".into(),
        );
    }
}

/// After the call: success with a negative pid means the driver query failed.
pub(super) fn check_after(f: &mut Findings, outcome: &Outcome) {
    if outcome.ret == 0 {
        if let Some(pid) = outcome.out.pid {
            if pid < 0 {
                f.add(
                    Rule::BareTgidInvalid,
                    None,
                    format!("aclrtDeviceGetBareTgid returned success with pid {pid}: the driver query failed"),
                );
            }
        }
    }
}
