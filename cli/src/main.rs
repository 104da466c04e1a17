//! `acl-ipc-guard`: run a program under the shim, read its logs back, list the rules.

mod report;

use acl_ipc_guard::rules::RULES;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const USAGE: &str = "\
usage:
  acl-ipc-guard run [--mode M] [--log PATH] [--rules SPEC] [--exitcode N] -- PROGRAM [ARGS...]
  acl-ipc-guard report [--json] LOG...
  acl-ipc-guard rules [--json]
  acl-ipc-guard --version";

const LIB_NAME: &str = "libacl_ipc_guard.so";
/// The rtld-audit module that routes dlsym-resolved functions to the library.
const AUDIT_NAME: &str = "libacl_ipc_guard_audit.so";

fn usage_error(msg: &str) -> ! {
    eprintln!("acl-ipc-guard: {msg}\n{USAGE}");
    exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        usage_error("no command given");
    };
    let rest = &args[1..];
    let code = match cmd.as_str() {
        "run" => run(rest),
        "report" => report::main(rest),
        "rules" => rules(rest),
        "--version" | "-V" | "version" => {
            println!("acl-ipc-guard {}", env!("CARGO_PKG_VERSION"));
            0
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            0
        }
        other => usage_error(&format!("unknown command {other:?}")),
    };
    exit(code);
}

/// A library of ours: beside this executable (a build tree), or in `../lib` (an install
/// tree).
fn find_library(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join(name), dir.join("../lib").join(name)]
        .into_iter()
        .find(|p| p.is_file())
        .and_then(|p| p.canonicalize().ok())
}

fn run(args: &[String]) -> i32 {
    let mut envs: Vec<(&str, String)> = Vec::new();
    let mut i = 0;
    let program_at = loop {
        let Some(a) = args.get(i) else {
            usage_error("run: `-- PROGRAM` is missing");
        };
        let var = match a.as_str() {
            "--" => break i + 1,
            "--mode" => "ACL_IPC_GUARD_MODE",
            "--log" => "ACL_IPC_GUARD_LOG",
            "--rules" => "ACL_IPC_GUARD_RULES",
            "--exitcode" => "ACL_IPC_GUARD_EXITCODE",
            other => usage_error(&format!("run: unknown option {other:?}")),
        };
        let Some(value) = args.get(i + 1) else {
            usage_error(&format!("run: {a} needs a value"));
        };
        if var == "ACL_IPC_GUARD_MODE"
            && !["off", "audit", "enforce", "abort"].contains(&value.as_str())
        {
            usage_error(&format!(
                "run: --mode takes off, audit, enforce or abort, not {value:?}"
            ));
        }
        if var == "ACL_IPC_GUARD_EXITCODE" && value.parse::<u8>().is_err() {
            usage_error(&format!(
                "run: --exitcode takes a number from 0 to 255, not {value:?}"
            ));
        }
        envs.push((var, value.clone()));
        i += 2;
    };
    let Some(program) = args.get(program_at) else {
        usage_error("run: no PROGRAM after `--`");
    };
    let Some(lib) = find_library(LIB_NAME) else {
        eprintln!("acl-ipc-guard: cannot find {LIB_NAME} beside this executable or in ../lib");
        return 127;
    };
    let preload = preload_value(&lib, std::env::var("LD_PRELOAD").ok().as_deref());
    let mut command = Command::new(program);
    command
        .args(&args[program_at + 1..])
        .envs(envs)
        .env("LD_PRELOAD", preload);
    // The audit module, beside the library, sees the calls of programs that find the
    // runtime with dlsym.
    let audit = lib.with_file_name(AUDIT_NAME);
    match audit.is_file().then(|| audit.canonicalize().ok()).flatten() {
        Some(audit) => {
            command.env(
                "LD_AUDIT",
                audit_value(&audit, std::env::var("LD_AUDIT").ok().as_deref()),
            );
        }
        None => eprintln!(
            "acl-ipc-guard: {} not found: calls of functions the program finds with dlsym will not be seen",
            audit.display()
        ),
    }
    let err = command.exec();
    eprintln!("acl-ipc-guard: cannot run {program}: {err}");
    if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

/// Our library first, then whatever was preloaded already (without a second copy of ours).
fn preload_value(lib: &Path, existing: Option<&str>) -> String {
    let ours = lib.display().to_string();
    let mut parts = vec![ours.clone()];
    for p in existing
        .unwrap_or("")
        .split([':', ' '])
        .filter(|p| !p.is_empty())
    {
        if p != ours {
            parts.push(p.to_string());
        }
    }
    parts.join(":")
}

/// Our audit module first, then the existing LD_AUDIT entries (':' separated, as ld.so
/// reads them), without a second copy of ours.
fn audit_value(audit: &Path, existing: Option<&str>) -> String {
    let ours = audit.display().to_string();
    let mut parts = vec![ours.clone()];
    for p in existing.unwrap_or("").split(':').filter(|p| !p.is_empty()) {
        if p != ours {
            parts.push(p.to_string());
        }
    }
    parts.join(":")
}

fn rules(args: &[String]) -> i32 {
    let json = match args {
        [] => false,
        [a] if a == "--json" => true,
        _ => usage_error("rules takes only --json"),
    };
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
        out(&format!("{}\n", serde_json::Value::Array(list)));
    } else {
        for r in RULES {
            out(&format!(
                "{:<34} {:<8} {} | vendor: {}\n",
                r.id,
                r.severity.as_str(),
                r.checks,
                r.vendor
            ));
        }
    }
    0
}

/// Writes to stdout; a closed pipe (`| head`) ends the program quietly, as for any filter.
fn out(text: &str) {
    use std::io::Write;
    if std::io::stdout().lock().write_all(text.as_bytes()).is_err() {
        exit(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_keeps_ours_first_and_others_after() {
        let lib = Path::new("/x/libacl_ipc_guard.so");
        assert_eq!(preload_value(lib, None), "/x/libacl_ipc_guard.so");
        assert_eq!(
            preload_value(lib, Some("/a.so /b.so:/x/libacl_ipc_guard.so")),
            "/x/libacl_ipc_guard.so:/a.so:/b.so"
        );
    }

    #[test]
    fn audit_keeps_ours_first_and_others_after() {
        let audit = Path::new("/x/libacl_ipc_guard_audit.so");
        assert_eq!(audit_value(audit, None), "/x/libacl_ipc_guard_audit.so");
        assert_eq!(audit_value(audit, Some("")), "/x/libacl_ipc_guard_audit.so");
        assert_eq!(
            audit_value(audit, Some("/a.so::/x/libacl_ipc_guard_audit.so:/b.so")),
            "/x/libacl_ipc_guard_audit.so:/a.so:/b.so"
        );
    }
}
