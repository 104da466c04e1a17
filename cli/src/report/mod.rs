//! `acl-ipc-guard report [--json] LOG…`: reads the JSON-lines logs of the processes of a
//! job back, merges them into one time order, builds one timeline per key fingerprint,
//! lists the violations by rule and re-checks the cross-process rules from the call records
//! alone (so a job that ran without a shared ledger is still judged).
//!
//! One module per stage; all are pure but reading the files:
//!
//! ```text
//! ingest (read the logs, line → record: parse) ─► processes (who wrote what, one time order, gaps)
//!   ─► recheck (each key's timeline, the cross-process rules again) ─► render (text | JSON)
//! ```
//!
//! [`analyze`] runs ingest, processes and recheck over logs already read; [`model`] holds
//! the data they hand each other; this file is the command around them.

mod analyze;
mod ingest;
mod model;
mod parse;
mod processes;
mod recheck;
mod render;
#[cfg(test)]
mod tests;

pub use analyze::analyze;
pub use model::*;
pub use render::{render_json, render_text};

use std::io::Write;
use std::path::Path;

pub const USAGE: &str = "usage: acl-ipc-guard report [--json] LOG...
  Merges the JSON-lines logs of the processes of a job (any order, one file per process or
  shared), prints one timeline per key, the violations by rule, and re-checks the
  cross-process ordering from the records. LOG may be - for standard input.
  --json   print one JSON object instead of text
Exit status: 0 no error violation, 1 error violations found, 2 usage error or no log readable.";

/// The `report` command; `args` follow `acl-ipc-guard report`. Returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run(args, &mut stdout.lock(), &mut stderr.lock())
}

/// [`main`] with its output streams given. Write errors (a closed pipe) are ignored: the
/// exit status still tells the verdict.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut json = false;
    let mut paths: Vec<&str> = Vec::new();
    let mut options_done = false;
    for a in args {
        match a.as_str() {
            p if options_done => paths.push(p),
            "--json" => json = true,
            "-h" | "--help" => {
                let _ = writeln!(out, "{USAGE}");
                return 0;
            }
            "--" => options_done = true,
            o if o.starts_with('-') && o != "-" => {
                let _ = writeln!(err, "acl-ipc-guard report: unknown option {o:?}\n{USAGE}");
                return 2;
            }
            p => paths.push(p),
        }
    }
    if paths.is_empty() {
        let _ = writeln!(err, "acl-ipc-guard report: no log file given\n{USAGE}");
        return 2;
    }
    let inputs: Vec<Input> = paths.iter().map(|p| ingest::read(Path::new(p))).collect();
    for i in &inputs {
        if let Err(e) = &i.content {
            let _ = writeln!(err, "acl-ipc-guard report: cannot read {}: {e}", i.name);
        }
    }
    if inputs.iter().all(|i| i.content.is_err()) {
        let _ = writeln!(err, "acl-ipc-guard report: no log could be read");
        return 2;
    }
    let report = analyze(&inputs);
    let mut w = std::io::BufWriter::new(out);
    let _ = if json {
        serde_json::to_writer_pretty(&mut w, &render_json(&report))
            .map_err(std::io::Error::from)
            .and_then(|()| w.write_all(b"\n"))
    } else {
        w.write_all(render_text(&report).as_bytes())
    }
    .and_then(|()| w.flush());
    report.exit_status()
}
