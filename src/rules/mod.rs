//! The rules: their table (ids, severities, vendor rules) and the checks. Checks are pure
//! functions of plain data (the call's arguments, this process's state, what the ledger
//! knows); they say what is wrong and nothing else. Deciding what to do about a finding
//! (report, block, abort, count) is the runtime's job.

mod checks;
mod table;

pub use checks::{check_after, check_before, Finding, Identity, ImportFacts, LedgerFacts};
pub use table::{Rule, RuleInfo, Severity, RULES};
