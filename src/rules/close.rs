//! `aclrtIpcMemClose`.

use super::{Findings, LedgerFacts, Rule};
use crate::key::KeyArg;
use crate::state::View;

/// `aclrtIpcMemClose`: the key is open here (exported or imported), and an exporter
/// closes last (from the ledger: no live importer still has it open).
pub(super) fn check(f: &mut Findings, state: &View, ledger: &LedgerFacts, key: &KeyArg) {
    if let Some(fp) = f.key(key, Rule::CloseKeyNull, Rule::CloseKeyUnterminated) {
        if state.export(&fp).is_none() && state.import(&fp).is_none() {
            f.add(
                Rule::CloseUnknown,
                Some(fp),
                format!(
                    "key {fp} is neither exported nor imported (and still open) by this process"
                ),
            );
        }
        if let LedgerFacts::ExporterClose { open_importers } = ledger {
            let rule = super::cross::exporter_close_rule(open_importers.len());
            if let (Some(rule), true) = (rule, state.export(&fp).is_some()) {
                f.add(
                    rule,
                    Some(fp),
                    format!("the exporter closes key {fp} while importing process(es) {open_importers:?} are alive and have not closed it; importers must close first"),
                );
            }
        }
    }
}
