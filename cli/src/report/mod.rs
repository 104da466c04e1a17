//! `acl-ipc-guard report [--json] [--html FILE] LOG…`: reads the JSON-lines logs of the
//! processes of a job back, merges them into one time order, builds one timeline per key
//! fingerprint, lists the violations by rule and re-checks the cross-process rules from the
//! call records alone (so a job that ran without a shared ledger is still judged).
//!
//! One module per stage; all are pure but reading the files:
//!
//! ```text
//! ingest (read the logs, line → record: parse) ─► processes (who wrote what, one time order, gaps)
//!   ─► recheck (each key's timeline, the cross-process rules again) ─► render (text | JSON | HTML)
//! ```
//!
//! [`analyze`] runs ingest, processes and recheck over logs already read; [`model`] holds
//! the data they hand each other; this file is the command around them.

mod analyze;
mod ingest;
mod model;
pub mod parse;
mod processes;
mod recheck;
mod render;
#[cfg(test)]
mod tests;

pub use analyze::analyze;
pub use model::*;
pub use render::{render_html, render_json, render_text};

use std::io::Write;
use std::path::PathBuf;

/// For `report --help`.
pub const EXIT_STATUS: &str =
    "Exit status: 0 no error violation, 1 error violations found, 2 usage error, no log readable or the --html page not written.";

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
    /// Also write the job as one self-contained HTML page (no network) to FILE; - writes the
    /// page to standard output in place of the report
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub html: Option<PathBuf>,
    /// The JSON-lines logs of the job's processes, in any order (one file per process, or
    /// shared); - reads standard input
    #[arg(required = true, value_name = "LOG")]
    pub logs: Vec<PathBuf>,
}

/// The `report` command. Returns the exit status.
pub fn main(args: &ReportArgs) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run(args, &mut stdout.lock(), &mut stderr.lock())
}

/// [`main`] with its output streams given. Write errors (a closed pipe) are ignored: the
/// exit status still tells the verdict.
pub fn run(args: &ReportArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let html_to_stdout = args.html.as_deref() == Some(std::path::Path::new("-"));
    if html_to_stdout && args.json {
        let _ = writeln!(
            err,
            "acl-ipc-guard report: --json and --html - both write to standard output"
        );
        return 2;
    }
    let inputs: Vec<Input> = args.logs.iter().map(|p| ingest::read(p)).collect();
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
    if let Some(path) = &args.html {
        let page = render_html(&report);
        if html_to_stdout {
            let _ = out.write_all(page.as_bytes()).and_then(|()| out.flush());
            return report.exit_status();
        }
        if let Err(e) = std::fs::write(path, page) {
            let _ = writeln!(
                err,
                "acl-ipc-guard report: cannot write {}: {e}",
                path.display()
            );
            return 2;
        }
    }
    let mut w = std::io::BufWriter::new(out);
    let _ = if args.json {
        serde_json::to_writer_pretty(&mut w, &render_json(&report))
            .map_err(std::io::Error::from)
            .and_then(|()| w.write_all(b"\n"))
    } else {
        w.write_all(render_text(&report).as_bytes())
    }
    .and_then(|()| w.flush());
    report.exit_status()
}
