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

pub use analyze::{analyze, analyze_with};
pub use model::*;
pub use render::{render_json, render_text};

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// For `report --help`.
pub const EXIT_STATUS: &str =
    "Exit status: 0 no error violation, 1 error violations found, 2 usage error or no log readable.";

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
    /// Also write the job as Chrome trace-event JSON to FILE (Perfetto, chrome://tracing,
    /// MindStudio Insight): a track per process and thread, a slice per call, violations
    /// marked, each key's export linked to its imports and closes
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
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
    let t = Instant::now();
    let inputs: Vec<Input> = args.logs.iter().map(|p| ingest::read(p)).collect();
    for i in &inputs {
        match &i.content {
            Err(e) => {
                let _ = writeln!(err, "acl-ipc-guard report: cannot read {}: {e}", i.name);
            }
            Ok(bytes) => tracing::info!("read {}: {} bytes", i.name, bytes.len()),
        }
    }
    tracing::info!("reading: {:.1?}", t.elapsed());
    if inputs.iter().all(|i| i.content.is_err()) {
        let _ = writeln!(err, "acl-ipc-guard report: no log could be read");
        return 2;
    }
    let trace = match args.trace.as_deref().map(render::TraceFile::create) {
        Some(Err(msg)) => {
            let _ = writeln!(err, "acl-ipc-guard report: {msg}");
            return 2;
        }
        Some(Ok(f)) => Some(f),
        None => None,
    };
    let report = if trace.is_some() {
        analyze_with(&inputs, true)
    } else {
        analyze(&inputs)
    };
    if let Some(f) = trace {
        let t = Instant::now();
        match f.write(&report) {
            Ok(c) => tracing::info!(
                "trace written: {} processes, {} threads, {} slices, {} instants, {} flows in {:.1?}",
                c.processes, c.threads, c.slices, c.instants, c.flows, t.elapsed()
            ),
            Err(msg) => {
                let _ = writeln!(err, "acl-ipc-guard report: {msg}");
                return 2;
            }
        }
    }
    let t = Instant::now();
    let mut w = std::io::BufWriter::new(out);
    let _ = if args.json {
        serde_json::to_writer_pretty(&mut w, &render_json(&report))
            .map_err(std::io::Error::from)
            .and_then(|()| w.write_all(b"\n"))
    } else {
        w.write_all(render_text(&report).as_bytes())
    }
    .and_then(|()| w.flush());
    tracing::info!("rendering: {:.1?}", t.elapsed());
    report.exit_status()
}
