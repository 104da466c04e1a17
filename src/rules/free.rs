//! `aclrtFree`.

use super::{Findings, Rule};
use crate::state::View;

/// `aclrtFree`: not imported memory, and no export key of the memory still open.
pub(super) fn check(f: &mut Findings, state: &View, addr: usize) {
    if addr == 0 {
        return;
    }
    if let Some(key) = state.import_returned_at(addr) {
        f.add(
            Rule::FreeImported,
            key,
            format!("{addr:#x} was returned by aclrtIpcMemImportByKey; an importer releases it with aclrtIpcMemClose, never aclrtFree"),
        );
    }
    if let Some(fp) = state.an_export_of(addr) {
        f.add(
            Rule::FreeBeforeClose,
            Some(fp),
            format!(
                "{addr:#x} is freed while its export key {fp} is still open; close the key first"
            ),
        );
    }
}
