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
//! the data they hand each other; this file is the command around them. The command's
//! text and `--json` come from [`stream`], which runs the same stages a line at a time
//! over the files (memory bounded by the live keys), and leaves logs out of time order to
//! them.

mod ahead;
mod analyze;
mod fasthash;
mod ingest;
mod model;
pub mod parse;
mod processes;
mod recheck;
mod render;
mod spill;
pub mod stream;
#[cfg(test)]
mod tests;

// The library (cli/src/lib.rs: the fuzz targets) reads logs given as bytes through these;
// the command reads them file by file (`run`).
#[allow(unused_imports)]
pub use analyze::analyze;
#[cfg(test)]
pub use analyze::analyze_with;
#[allow(unused_imports)]
pub use model::*;
#[cfg(test)]
pub use render::render_json;
pub use render::{render_html, render_text, write_json};

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// The logs read into memory, one file at a time (its lines become records and its bytes
/// are dropped before the next file is read), and judged.
fn in_memory(logs: &[stream::Log], trace: bool) -> Report {
    let t = Instant::now();
    let mut ingested = ingest::Ingested::default();
    for l in logs {
        let input = l.input();
        if let Ok(bytes) = &input.content {
            tracing::info!("read {}: {} bytes", input.name, bytes.len());
        }
        ingested.add(&input);
    }
    tracing::info!(
        "parsing: {} records from {} files in {:.1?}",
        ingested.recs.len(),
        ingested.files.len(),
        t.elapsed()
    );
    analyze::analyze_ingested(ingested.finish(), trace)
}

/// For `report --help`.
pub const EXIT_STATUS: &str =
    "Exit status: 0 no error violation, 1 error violations found, 2 usage error, no log readable, not one JSON record in the logs, or the --html page or --trace file not written.";

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
    /// Also write the job as one self-contained HTML page (no network) to FILE; - writes the
    /// page to standard output in place of the report
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub html: Option<PathBuf>,
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
    few_malloc_arenas();
    // Standard output itself, not its lock: the streaming report's writer thread writes
    // the keys to it as they finish (a lock is held by one thread).
    let mut stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run(args, &mut stdout, &mut stderr.lock())
}

/// At most this many of the lines that are neither records nor text-format lines are
/// named on stderr when the logs hold no record.
const NO_RECORD_SHOWN: usize = 5;

/// What `report` says on stderr when the logs hold not one JSON record: what it skipped,
/// and the format it reads.
fn no_record_message(none: &stream::NoRecord) -> String {
    let lines = |n: usize, what: &str| format!("{n} {what} line{}", if n == 1 { "" } else { "s" });
    let mut m = format!(
        "acl-ipc-guard report: not one JSON record in the logs: {} and {} skipped; \
         nothing was judged\n\
         acl-ipc-guard report: the report reads the JSON format only: write the logs with \
         ACL_IPC_GUARD_FORMAT=json (the default for files)\n",
        lines(none.text_lines, "text-format"),
        lines(none.other.len(), "other"),
    );
    for s in none.other.iter().take(NO_RECORD_SHOWN) {
        m.push_str(&format!("  {}:{}: {}\n", s.file, s.line, s.reason));
    }
    if none.other.len() > NO_RECORD_SHOWN {
        m.push_str(&format!(
            "  and {} more\n",
            lines(none.other.len() - NO_RECORD_SHOWN, "other")
        ));
    }
    m
}

/// glibc gives each thread that allocates a heap ("arena") of its own, up to 8 per core;
/// the report's threads (census, parser, writer) then each hold their own free memory:
/// 33-34 MiB peak on 261 MiB of logs where two arenas peak at 27 MiB, for the same CPU.
/// Two, not one: the parser and the merge allocate at once. `MALLOC_ARENA_MAX` set by the
/// user wins (glibc reads it at the first allocation; this call is made later, so it is
/// skipped when the variable is there).
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a tunable of the allocator; it is called before this
        // command starts any thread of its own, and its result (0 on failure) is advice.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// [`main`] with its output streams given. Write errors (a closed pipe) are ignored: the
/// exit status still tells the verdict.
pub fn run(args: &ReportArgs, out: &mut (dyn Write + Send), err: &mut dyn Write) -> i32 {
    let html_to_stdout = args.html.as_deref() == Some(std::path::Path::new("-"));
    if html_to_stdout && args.json {
        let _ = writeln!(
            err,
            "acl-ipc-guard report: --json and --html - both write to standard output"
        );
        return 2;
    }
    // Each log is opened once (standard input copied to an unlinked file): the streaming
    // report reads them twice, and `--html`/`--trace` once more.
    let mut logs: Vec<stream::Log> = args.logs.iter().map(|p| stream::Log::open(p)).collect();
    let mut readable = 0;
    for l in &logs {
        match l.error() {
            Some(e) => {
                let _ = writeln!(err, "acl-ipc-guard report: cannot read {}: {e}", l.name);
            }
            None => readable += 1,
        }
    }
    if readable == 0 {
        let _ = writeln!(err, "acl-ipc-guard report: no log could be read");
        return 2;
    }
    // Not one JSON record in all the logs (text-format logs, empty files, other files):
    // there is no job to judge, and "processes: 0 … verdict: OK" would pass a CI run whose
    // text log holds an error. Like logs that cannot be read: said on stderr, nothing on
    // stdout (no page, no trace either), status 2.
    if let Some(none) = stream::no_record(&logs) {
        let _ = err.write_all(no_record_message(&none).as_bytes());
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
    // The page and the trace draw the whole job: read into memory.
    let mut whole = None;
    if trace.is_some() || args.html.is_some() {
        let report = in_memory(&logs, trace.is_some());
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
        if let Some(path) = &args.html {
            let t = Instant::now();
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
            tracing::info!("html page written: {:.1?}", t.elapsed());
        }
        whole = Some(report);
    }
    // Text and JSON: a line at a time, in memory bounded by the live keys (stream.rs), the
    // same with or without the page and the trace; in memory when the logs are not in the
    // order that needs.
    if let Some((status, _written)) = stream::report(&mut logs, args.json, out) {
        return status;
    }
    let report = whole.unwrap_or_else(|| in_memory(&logs, false));
    let t = Instant::now();
    let mut w = std::io::BufWriter::new(out);
    let _ = if args.json {
        write_json(&report, &mut w)
    } else {
        w.write_all(render_text(&report).as_bytes())
    }
    .and_then(|()| w.flush());
    tracing::info!("rendering: {:.1?}", t.elapsed());
    let status = report.exit_status();
    // Freeing a large job's timelines one by one takes a tenth of the report's time, and
    // the process ends next: leave them to the exit.
    std::mem::forget(report);
    status
}
