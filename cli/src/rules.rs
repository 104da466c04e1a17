//! `acl-ipc-guard rules [--json]`: the shim's rule table, one rule per line, id first (or
//! a JSON array for scripts).

use acl_ipc_guard::rules::RULES;

#[derive(clap::Args, Debug)]
pub struct RulesArgs {
    /// Print a JSON array of {id, severity, checks, vendor_rule, ledger} instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn main(args: &RulesArgs) -> i32 {
    crate::out(table(args.json).as_bytes());
    0
}

fn table(json: bool) -> String {
    if json {
        let list: Vec<_> = RULES
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id,
                    "severity": r.severity.as_str(),
                    "checks": r.checks,
                    "vendor_rule": r.vendor,
                    "ledger": r.ledger,
                })
            })
            .collect();
        format!("{}\n", serde_json::Value::Array(list))
    } else {
        RULES
            .iter()
            .map(|r| {
                format!(
                    "{:<34} {:<8} {} | vendor: {}\n",
                    r.id,
                    r.severity.as_str(),
                    r.checks,
                    r.vendor
                )
            })
            .collect()
    }
}
