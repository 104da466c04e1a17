//! The report's pipeline, pure (no files, no output): the logs' lines → records →
//! processes and one time order → gaps → timelines and the re-check → one `Report`.

use super::ingest::{self, Ingested};
use super::model::{CallRecord, Input, Report, TraceRecords};
use super::parse::{Body, Rec};
use super::processes::{self, Ordered};
use super::recheck::{self, Judged};
use std::time::Instant;

#[allow(dead_code)] // the library's entry (fuzz targets, tests)
pub fn analyze(inputs: &[Input]) -> Report {
    analyze_ingested(ingest::records(inputs), false)
}

/// [`analyze`], and with `trace` also what only the trace draws (`Report::trace`).
#[cfg(test)]
pub fn analyze_with(inputs: &[Input], trace: bool) -> Report {
    analyze_ingested(ingest::records(inputs), trace)
}

/// [`analyze`] over logs already read into records (the files' bytes need not be kept),
/// and with `trace` also what only the trace draws (`Report::trace`).
pub fn analyze_ingested(ingested: Ingested, trace: bool) -> Report {
    // `-v`: each stage's time and what it found (nothing is written without a subscriber).
    let Ingested {
        files,
        recs,
        skipped,
    } = ingested;
    say_files(&files);
    let t = Instant::now();
    let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let Ordered {
        processes,
        recs,
        replaced_by,
        duplicates,
    } = processes::order(recs, &names);
    let gaps = processes::find_gaps(&recs, &processes);
    say_ordering(&processes, duplicates, gaps.len(), t);
    let t = Instant::now();
    let trace = if trace {
        trace_records(&recs)
    } else {
        TraceRecords::default()
    };
    let Judged {
        keys,
        violations,
        errors,
    } = recheck::recheck(&recs, &processes, replaced_by);
    tracing::info!(
        "re-check: {} keys, {} violations in {:.1?}",
        keys.len(),
        violations.len(),
        t.elapsed()
    );
    Report {
        text_lines: files.iter().map(|f| f.text_lines).sum(),
        records: recs.len(),
        duplicates,
        untracked_keys: untracked_keys(&recs),
        files,
        skipped,
        processes,
        gaps,
        violations,
        keys,
        errors,
        trace,
    }
}

/// `-vv`: each file read, in the same words whichever report read it.
pub(super) fn say_files(files: &[super::model::FileInfo]) {
    for f in files {
        tracing::debug!(
            "{}: {} records, {} text lines, {} malformed lines",
            f.path,
            f.records,
            f.text_lines,
            f.skipped
        );
    }
}

/// `-v`: the ordering stage, in the same words whichever report (in memory or streamed)
/// ordered the processes.
pub(super) fn say_ordering(
    processes: &[super::model::Process],
    duplicates: usize,
    gaps: usize,
    t: Instant,
) {
    tracing::info!(
        "ordering: {} processes, {} duplicates dropped, {} gaps in {:.1?}",
        processes.len(),
        duplicates,
        gaps,
        t.elapsed()
    );
    for p in processes {
        tracing::debug!(
            "process {}: host {}, {} records",
            p.tag,
            p.host.as_deref().unwrap_or("?"),
            p.records
        );
    }
}

/// Keys whose successful export says the ledger could not hold them; sorted, once each.
fn untracked_keys(recs: &[Rec]) -> Vec<String> {
    let mut keys: Vec<String> = recs
        .iter()
        .filter_map(|r| match &r.body {
            Body::Call(c) if c.untracked && c.ok() => c.out_key_fp.as_deref().map(str::to_owned),
            _ => None,
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// What the trace draws that the rest of the report does not keep: every call with its
/// thread and duration, and the thread of each violation or summary record.
pub fn trace_records(recs: &[Rec]) -> TraceRecords {
    let mut t = TraceRecords::default();
    for r in recs {
        match &r.body {
            Body::Call(c) => t.calls.push(CallRecord {
                process: r.proc_idx,
                tid: r.tid.unwrap_or(r.pid),
                seq: r.seq,
                ts_us: r.ts_us,
                dur_ns: c.dur_ns.unwrap_or(0),
                func: c.func.to_string(),
                ret: c.ret,
                status: c.status(),
                key_fp: c
                    .key_fp
                    .as_deref()
                    .or(c.out_key_fp.as_deref())
                    .map(str::to_owned),
            }),
            Body::Violation(_) | Body::Summary { .. } => {
                if let Some(tid) = r.tid {
                    t.violation_tids.insert((r.proc_idx, r.seq), tid);
                }
            }
            _ => {}
        }
    }
    t
}
