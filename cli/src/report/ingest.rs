//! The logs in, for the in-memory report: each file (or standard input) whole, split into
//! lines, each line parsed. A file that cannot be read is kept, with its error, so the report names it.

use super::model::{FileInfo, Input, Skipped};
use super::parse::{self, Line, Rec};

/// The records of all inputs, in file order, with what each file held.
#[derive(Default)]
pub struct Ingested {
    pub files: Vec<FileInfo>,
    pub recs: Vec<Rec>,
    /// Sorted by file, then line.
    pub skipped: Vec<Skipped>,
}

/// Every line of every input: records kept, text lines counted, malformed lines listed.
#[allow(dead_code)] // through `analyze`: the library's entry (fuzz targets, tests)
pub fn records(inputs: &[Input]) -> Ingested {
    let mut all = Ingested::default();
    for input in inputs {
        all.add(input);
    }
    all.finish()
}

impl Ingested {
    /// Reads one more input (the next file index): its lines are parsed now, so that its
    /// bytes can be dropped before the next file is read.
    pub fn add(&mut self, input: &Input) {
        let fi = self.files.len();
        let mut info = FileInfo {
            path: input.name.clone(),
            error: None,
            records: 0,
            text_lines: 0,
            skipped: 0,
        };
        match &input.content {
            Err(e) => info.error = Some(e.clone()),
            Ok(bytes) => {
                for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
                    let text = String::from_utf8_lossy(raw);
                    match parse::parse_line(fi, &text) {
                        Line::Blank => {}
                        Line::Text => info.text_lines += 1,
                        Line::Record(r) => {
                            info.records += 1;
                            self.recs.push(r);
                        }
                        Line::Malformed(reason) => {
                            info.skipped += 1;
                            self.skipped.push(Skipped {
                                file: input.name.clone(),
                                line: i + 1,
                                reason,
                            });
                        }
                    }
                }
            }
        }
        self.files.push(info);
    }

    /// Done adding: the malformed lines in file, then line order.
    pub fn finish(mut self) -> Self {
        self.skipped
            .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        self
    }
}
