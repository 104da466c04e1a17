//! The README documents every rule with the vendor rule behind it, and every switch: both
//! tables are generated from the shim's own tables (the rule table, the switch table) and
//! must match them. Regenerate with `ACL_IPC_GUARD_BLESS=1 cargo test --test readme`.

use acl_ipc_guard::config::SWITCHES;
use acl_ipc_guard::rules::RULES;
use std::path::Path;
use std::sync::Mutex;

/// The two tests run in parallel and, when blessing, both rewrite README.md: one at a time,
/// so neither reads the file half written by the other.
static README: Mutex<()> = Mutex::new(());

const BEGIN: &str = "<!-- rules:begin (generated from src/rules/table.rs) -->\n";
const END: &str = "<!-- rules:end -->\n";

fn table() -> String {
    let mut t = String::from(
        "| id | severity | fires when | vendor rule it enforces |\n| --- | --- | --- | --- |\n",
    );
    for r in RULES {
        let ledger = if r.ledger { " (ledger)" } else { "" };
        t.push_str(&format!(
            "| `{}` | {} | {}{} | {} |\n",
            r.id,
            r.severity.as_str(),
            r.checks.replace('|', "\\|"),
            ledger,
            r.vendor.replace('|', "\\|")
        ));
    }
    t
}

#[test]
fn readme_rule_table_is_current() {
    let _one_at_a_time = README.lock().unwrap_or_else(|e| e.into_inner());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let (Some(b), Some(e)) = (readme.find(BEGIN), readme.find(END)) else {
        panic!("README.md lacks the rule table markers");
    };
    let current = &readme[b + BEGIN.len()..e];
    let fresh = table();
    if std::env::var_os("ACL_IPC_GUARD_BLESS").is_some() {
        let updated = format!("{}{}{}", &readme[..b + BEGIN.len()], fresh, &readme[e..]);
        std::fs::write(&path, updated).expect("write README.md");
        return;
    }
    assert_eq!(
        current, fresh,
        "README rule table is stale; run ACL_IPC_GUARD_BLESS=1 cargo test --test readme"
    );
}

const SWITCHES_BEGIN: &str = "<!-- switches:begin (generated from src/config.rs) -->\n";
const SWITCHES_END: &str = "<!-- switches:end -->\n";

fn switch_table() -> String {
    let mut t =
        String::from("| variable | what it does | values | default |\n| --- | --- | --- | --- |\n");
    for s in SWITCHES {
        t.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            s.name,
            s.about.replace('|', "\\|"),
            s.values.replace('|', "\\|"),
            s.default.replace('|', "\\|")
        ));
    }
    t
}

#[test]
fn readme_switch_table_is_current() {
    let _one_at_a_time = README.lock().unwrap_or_else(|e| e.into_inner());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let (Some(b), Some(e)) = (readme.find(SWITCHES_BEGIN), readme.find(SWITCHES_END)) else {
        panic!("README.md lacks the switch table markers");
    };
    let current = &readme[b + SWITCHES_BEGIN.len()..e];
    let fresh = switch_table();
    if std::env::var_os("ACL_IPC_GUARD_BLESS").is_some() {
        let updated = format!(
            "{}{}{}",
            &readme[..b + SWITCHES_BEGIN.len()],
            fresh,
            &readme[e..]
        );
        std::fs::write(&path, updated).expect("write README.md");
        return;
    }
    assert_eq!(
        current, fresh,
        "README switch table is stale; run ACL_IPC_GUARD_BLESS=1 cargo test --test readme"
    );
}
