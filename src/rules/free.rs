//! `aclrtFree`.

use super::{Findings, Rule};
use crate::state::ProcessState;

/// `aclrtFree`: not imported memory, and no export key of the memory still open.
pub(super) fn check(f: &mut Findings, state: &ProcessState, addr: usize) {
    if addr == 0 {
        return;
    }
    if state.is_imported_addr(addr) {
        f.add(
            Rule::FreeImported,
            None,
            format!("{addr:#x} was returned by aclrtIpcMemImportByKey; an importer releases it with aclrtIpcMemClose, never aclrtFree"),
        );
    }
    if let Some((fp, _)) = state.open_exports_of(addr).next() {
        f.add(
            Rule::FreeBeforeClose,
            Some(*fp),
            format!(
                "{addr:#x} is freed while its export key {fp} is still open; close the key first"
            ),
        );
    }
}
