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
pub mod parse;
mod processes;
mod recheck;
mod render;
#[cfg(test)]
mod tests;

// The library (cli/src/lib.rs: the fuzz targets) reads logs given as bytes through these;
// the command reads them file by file (`run`).
#[allow(unused_imports)]
pub use analyze::analyze;
#[allow(unused_imports)]
pub use model::*;
#[cfg(test)]
pub use render::render_json;
pub use render::{render_text, write_json};

use std::io::Write;
use std::path::PathBuf;

/// For `report --help`.
pub const EXIT_STATUS: &str =
    "Exit status: 0 no error violation, 1 error violations found, 2 usage error or no log readable.";

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
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
    // One file at a time: its lines become records and its bytes are dropped before the
    // next file is read.
    let mut ingested = ingest::Ingested::default();
    let mut readable = 0;
    for path in &args.logs {
        let input = ingest::read(path);
        match &input.content {
            Err(e) => {
                let _ = writeln!(err, "acl-ipc-guard report: cannot read {}: {e}", input.name);
            }
            Ok(_) => readable += 1,
        }
        ingested.add(&input);
    }
    if readable == 0 {
        let _ = writeln!(err, "acl-ipc-guard report: no log could be read");
        return 2;
    }
    let report = analyze::analyze_ingested(ingested.finish());
    let mut w = std::io::BufWriter::new(out);
    let _ = if args.json {
        write_json(&report, &mut w)
    } else {
        w.write_all(render_text(&report).as_bytes())
    }
    .and_then(|()| w.flush());
    let status = report.exit_status();
    // Freeing a large job's timelines one by one takes a tenth of the report's time, and
    // the process ends next: leave them to the exit.
    std::mem::forget(report);
    status
}
