//! The report's pipeline, pure (no files, no output): the logs' lines → records →
//! processes and one time order → gaps → timelines and the re-check → one `Report`.

use super::ingest::{self, Ingested};
use super::model::{Input, Report};
use super::parse::{Body, Rec};
use super::processes::{self, Ordered};
use super::recheck::{self, Judged};

#[allow(dead_code)] // the library's entry (fuzz targets, tests)
pub fn analyze(inputs: &[Input]) -> Report {
    analyze_ingested(ingest::records(inputs))
}

/// [`analyze`] over logs already read into records (the files' bytes need not be kept).
pub fn analyze_ingested(ingested: Ingested) -> Report {
    let Ingested {
        files,
        recs,
        skipped,
    } = ingested;
    let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let Ordered {
        processes,
        recs,
        replaced_by,
        duplicates,
    } = processes::order(recs, &names);
    let gaps = processes::find_gaps(&recs, &processes);
    let Judged {
        keys,
        violations,
        errors,
    } = recheck::recheck(&recs, &processes, replaced_by);
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
    }
}

/// Keys whose successful export says the ledger could not hold them; sorted, once each.
fn untracked_keys(recs: &[Rec]) -> Vec<String> {
    let mut keys: Vec<String> = recs
        .iter()
        .filter_map(|r| match &r.body {
            Body::Call(c) if c.untracked && c.ok() => c.out_key_fp.clone(),
            _ => None,
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}
