//! Whole log files, arbitrary bytes (split in up to three files at 0xff bytes): the
//! report's analysis and both renderings complete without panicking.
#![no_main]

use acl_ipc_guard_cli::report::{analyze, render_text, write_json, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let inputs: Vec<Input> = data
        .splitn(3, |b| *b == 0xff)
        .enumerate()
        .map(|(i, part)| Input {
            name: format!("log{i}"),
            content: Ok(part.to_vec()),
        })
        .collect();
    let report = analyze(&inputs);
    let _ = render_text(&report);
    let _ = write_json(&report, &mut std::io::sink());
    let status = report.exit_status();
    assert!(status == 0 || status == 1 || status == 2, "status {status}");
});
