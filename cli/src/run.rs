//! `acl-ipc-guard run [--mode M] [--log PATH] [--rules SPEC] [--exitcode N] -- PROGRAM
//! [ARGS…]`: runs PROGRAM with the library preloaded (in front of any existing
//! `LD_PRELOAD`), the audit module in `LD_AUDIT`, and the switches given set; it replaces
//! this process, so the exit status is the program's.

use acl_ipc_guard::config::Mode;
use clap::builder::PossibleValuesParser;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const LIB_NAME: &str = "libacl_ipc_guard.so";
/// The rtld-audit module that routes dlsym-resolved functions to the library.
const AUDIT_NAME: &str = "libacl_ipc_guard_audit.so";
/// The Python package of the pip wheel (python/), which carries both libraries.
const PY_PACKAGE: &str = "acl_ipc_guard";

/// For `run --help`.
pub const EXIT_STATUS: &str = "Exit status: the program's; 2 usage error; 126 the program could not be run, 127 it (or the library) was not found.";

#[derive(clap::Args, Debug)]
#[command(args_override_self = true)]
pub struct RunArgs {
    /// What a violation does (ACL_IPC_GUARD_MODE)
    #[arg(long, value_name = "M", value_parser = PossibleValuesParser::new(Mode::ALL.iter().map(|(_, name)| *name)))]
    pub mode: Option<String>,
    /// Where records go: stderr, off, syslog, syslog:SOCKET or a file; %p becomes the pid, %h the host name
    /// (ACL_IPC_GUARD_LOG)
    #[arg(long, value_name = "PATH")]
    pub log: Option<OsString>,
    /// Severities per rule: a comma list of RULE=off|warning|error (ACL_IPC_GUARD_RULES)
    #[arg(long, value_name = "SPEC")]
    pub rules: Option<OsString>,
    /// Exit with this status, at the end, if any error violation happened
    /// (ACL_IPC_GUARD_EXITCODE)
    #[arg(long, value_name = "N")]
    pub exitcode: Option<u8>,
    /// The program to run and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    pub program: Vec<OsString>,
}

impl RunArgs {
    /// The switches given, as the environment variables the shim reads.
    fn switches(&self) -> Vec<(&'static str, OsString)> {
        let mut env = Vec::new();
        if let Some(m) = &self.mode {
            env.push(("ACL_IPC_GUARD_MODE", m.into()));
        }
        if let Some(l) = &self.log {
            env.push(("ACL_IPC_GUARD_LOG", l.clone()));
        }
        if let Some(r) = &self.rules {
            env.push(("ACL_IPC_GUARD_RULES", r.clone()));
        }
        if let Some(n) = self.exitcode {
            env.push(("ACL_IPC_GUARD_EXITCODE", n.to_string().into()));
        }
        env
    }
}

/// Execs the program; returns only if it could not be run (127 not found, 126 otherwise).
pub fn main(args: RunArgs) -> i32 {
    let Some((program, program_args)) = args.program.split_first() else {
        unreachable!("clap requires PROGRAM");
    };
    let Some(lib) = find_library(LIB_NAME) else {
        eprintln!(
            "acl-ipc-guard: cannot find {LIB_NAME} beside this executable, in ../lib or in the Python package {PY_PACKAGE} installed with it"
        );
        return 127;
    };
    tracing::info!("library: {}", lib.display());
    let preload = preload_value(&lib, std::env::var("LD_PRELOAD").ok().as_deref());
    tracing::info!("set LD_PRELOAD={preload}");
    let switches = args.switches();
    for (name, value) in &switches {
        tracing::info!("set {name}={}", value.to_string_lossy());
    }
    let mut command = Command::new(program);
    command
        .args(program_args)
        .envs(switches)
        .env("LD_PRELOAD", preload);
    // The audit module, beside the library, sees the calls of programs that find the
    // runtime with dlsym.
    let audit = lib.with_file_name(AUDIT_NAME);
    match audit.is_file().then(|| audit.canonicalize().ok()).flatten() {
        Some(audit) => {
            let value = audit_value(&audit, std::env::var("LD_AUDIT").ok().as_deref());
            tracing::info!("set LD_AUDIT={value}");
            command.env("LD_AUDIT", value);
        }
        None => eprintln!(
            "acl-ipc-guard: {} not found: calls of functions the program finds with dlsym will not be seen",
            audit.display()
        ),
    }
    tracing::info!(
        "exec {} with {} argument(s)",
        program.to_string_lossy(),
        program_args.len()
    );
    for (name, value) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("ACL_IPC_GUARD_") && args.switches().iter().all(|(n, _)| *n != name) {
            tracing::debug!(
                "kept from the environment: {name}={}",
                value.to_string_lossy()
            );
        }
    }
    let err = command.exec();
    eprintln!(
        "acl-ipc-guard: cannot run {}: {err}",
        program.to_string_lossy()
    );
    if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

/// A library of ours: beside this executable (a build tree), in `../lib` (an install
/// tree), or in the Python package installed with this command by `pip install
/// acl-ipc-guard` (see [`pip_package_dirs`]).
fn find_library(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.to_path_buf(), dir.join("../lib")]
        .into_iter()
        .chain(pip_package_dirs(dir))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .and_then(|p| p.canonicalize().ok())
}

/// Where pip puts the package `acl_ipc_guard` of the wheel whose command is in `bin`: pip
/// installs the command into `PREFIX/bin` and the package into
/// `PREFIX/lib{,64}/pythonX.Y/{site,dist}-packages` (a venv, `--user`, `--prefix`, a system
/// install), or into `TARGET/bin` and `TARGET` (`--target TARGET`). Python versions in
/// name order, so the choice is the same every time.
fn pip_package_dirs(bin: &Path) -> Vec<PathBuf> {
    let prefix = bin.join("..");
    let mut dirs = Vec::new();
    for lib in ["lib", "lib64"] {
        let Ok(entries) = std::fs::read_dir(prefix.join(lib)) else {
            continue;
        };
        let mut pythons: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .map(|e| e.path())
            .collect();
        pythons.sort();
        for python in pythons {
            for site in ["site-packages", "dist-packages"] {
                dirs.push(python.join(site).join(PY_PACKAGE));
            }
        }
    }
    dirs.push(prefix.join(PY_PACKAGE));
    dirs
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;

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

    #[test]
    fn pip_layouts_are_searched_in_name_order_then_a_target_dir() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for d in [
            "venv/bin",
            "venv/lib/python3.9/site-packages",
            "venv/lib/python3.11/site-packages",
            "venv/lib/pkgconfig",
            "sys/bin",
            "sys/lib64/python3.12/dist-packages",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        let expect = |bin: &str, dirs: &[&str]| -> Vec<PathBuf> {
            let prefix = r.join(bin).join("..");
            dirs.iter()
                .map(|d| prefix.join(d).join(PY_PACKAGE))
                .collect()
        };
        assert_eq!(
            pip_package_dirs(&r.join("venv/bin")),
            expect(
                "venv/bin",
                &[
                    "lib/python3.11/site-packages",
                    "lib/python3.11/dist-packages",
                    "lib/python3.9/site-packages",
                    "lib/python3.9/dist-packages",
                    "",
                ]
            )
        );
        assert_eq!(
            pip_package_dirs(&r.join("sys/bin")),
            expect(
                "sys/bin",
                &[
                    "lib64/python3.12/site-packages",
                    "lib64/python3.12/dist-packages",
                    "",
                ]
            )
        );
    }

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let argv = ["acl-ipc-guard", "run"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Run(a) => Ok(a),
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn switches_become_the_shims_variables() {
        let a = parse(&[
            "--mode",
            "enforce",
            "--log",
            "l.%p",
            "--rules",
            "x=off",
            "--exitcode",
            "7",
            "--",
            "prog",
            "--mode",
            "-x",
        ])
        .unwrap();
        let env: Vec<(&str, String)> = a
            .switches()
            .into_iter()
            .map(|(k, v)| (k, v.into_string().unwrap()))
            .collect();
        assert_eq!(
            env,
            [
                ("ACL_IPC_GUARD_MODE", "enforce".to_owned()),
                ("ACL_IPC_GUARD_LOG", "l.%p".to_owned()),
                ("ACL_IPC_GUARD_RULES", "x=off".to_owned()),
                ("ACL_IPC_GUARD_EXITCODE", "7".to_owned()),
            ]
        );
        // Everything after `--` is the program's, options included.
        assert_eq!(a.program, ["prog", "--mode", "-x"]);
        // A switch given twice: the last one counts.
        let a = parse(&["--mode", "audit", "--mode", "off", "--", "p"]).unwrap();
        assert_eq!(a.mode.as_deref(), Some("off"));
    }

    #[test]
    fn bad_values_and_a_missing_program_are_usage_errors() {
        for bad in [
            &["--mode", "loud", "--", "p"][..],
            &["--exitcode", "256", "--", "p"],
            &["--exitcode", "-1", "--", "p"],
            &["--log"],
            &["--"],
            &[],
            &["p"],
            &["--loud", "--", "p"],
        ] {
            let e = parse(bad).expect_err(&format!("{bad:?}"));
            assert_eq!(e.exit_code(), 2, "{bad:?}");
            assert!(e.use_stderr(), "{bad:?}");
        }
    }
}
