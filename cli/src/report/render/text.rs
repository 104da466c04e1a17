//! The report as text for people: a summary, the processes, the violations by rule, one
//! timeline per key, then whatever was lost or skipped, and the verdict last.

use super::super::model::{End, Event, Process, Report, Source, Violation};
use super::{clean, plural, tag};
use std::collections::BTreeMap;
use std::fmt::Write as _;

fn process_line(p: &Process, procs: &[Process]) -> String {
    let mut s = format!("pid {}:", p.tag);
    match &p.start_ts {
        Some(ts) => {
            let _ = write!(s, " started {ts}");
        }
        None => s.push_str(" no start record (a fork child, or the log began later)"),
    }
    match &p.end {
        End::Exited(ts) => {
            let _ = write!(s, ", exited {ts}");
        }
        End::Replaced(ts) => {
            let _ = write!(
                s,
                ", no summary; ended by {ts} (its pid started another program)"
            );
        }
        End::Unknown => {
            let _ = write!(
                s,
                ", no summary: end unknown (killed or still running), last record {}",
                p.last_ts
            );
        }
    }
    let _ = write!(
        s,
        "; seq {}..{}, {}",
        p.first_seq,
        p.last_seq,
        plural(p.records, "record", "records")
    );
    if let Some(d) = p.dropped.filter(|d| *d > 0) {
        let _ = write!(s, ", {d} dropped by the writer");
    }
    if let Some(m) = &p.mode {
        let _ = write!(s, "; mode {m}");
    }
    if let Some(h) = &p.host {
        let _ = write!(s, "; host {h}");
    }
    if let Some(t) = p.bare_tgid {
        let _ = write!(s, "; bare tgid {t}");
    }
    match (p.parent, p.parent_pid) {
        (Some(i), _) => {
            let _ = write!(s, "; child of pid {}", tag(procs, i));
        }
        (None, Some(pp)) => {
            let _ = write!(s, "; child of pid {pp} (not in these logs)");
        }
        _ => {}
    }
    if let Some(e) = &p.exe {
        let _ = write!(s, "; {e}");
    }
    let _ = write!(s, " [{}]", p.files.join(", "));
    clean(s)
}

fn violation_line(v: &Violation, procs: &[Process]) -> String {
    clean(format!(
        "{} pid {} {} {} {}{}: {}",
        v.ts,
        tag(procs, v.process),
        v.func,
        v.key_fp.as_deref().unwrap_or("-"),
        v.source.as_str(),
        v.action
            .as_deref()
            .map(|a| format!("/{a}"))
            .unwrap_or_default(),
        v.message
    ))
}

/// `s` and the spaces that make it `width` characters at least (as `{:<width}` pads).
fn padded(o: &mut String, s: &str, width: usize) {
    o.push_str(s);
    let n = if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    };
    for _ in n..width {
        o.push(' ');
    }
}

/// One event's line, `{ts}  pid {tag:<7} {kind:<11} {fn:<31} {status:<7} {desc}` and
/// [`clean`]ed, appended to `o` (no newline): written in place, not formatted into a
/// `String` of its own with another for its description (a sixth of the text report).
fn event_line_into(e: &Event, procs: &[Process], o: &mut String) {
    let start = o.len();
    o.push_str(&e.ts);
    o.push_str("  pid ");
    padded(o, tag(procs, e.process), 7);
    o.push(' ');
    padded(o, e.kind(), 11);
    o.push(' ');
    padded(o, &e.func, 31);
    o.push(' ');
    padded(o, e.status.unwrap_or("-"), 7);
    o.push(' ');
    super::describe_into(e, o);
    // Control characters are escaped in the line as a whole (after the padding, as before).
    if o[start..].chars().any(char::is_control) {
        let line = o.split_off(start);
        o.push_str(&clean(line));
    }
}

fn key_heading(events: &[Event], procs: &[Process]) -> String {
    match events
        .iter()
        .find(|e| e.kind() == "export" && e.status == Some("ok"))
    {
        Some(e) => clean(format!(
            "exported by pid {} at {}",
            tag(procs, e.process),
            e.ts
        )),
        None => "its export is not in the logs".to_owned(),
    }
}

/// One key's timeline as the text shows it: its heading and a line per event.
pub fn key_text(fp: &str, events: &[Event], procs: &[Process]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "  {fp}  {}", key_heading(events, procs));
    o.reserve(events.len() * 160);
    for e in events {
        o.push_str("    ");
        event_line_into(e, procs, &mut o);
        o.push('\n');
    }
    o
}

/// The whole report as text.
pub fn render_text(r: &Report) -> String {
    let (mut o, tail) = render_text_parts(r);
    if r.keys.is_empty() {
        o.push_str("  none\n");
    }
    for (fp, events) in &r.keys {
        o.push_str(&key_text(fp, events, &r.processes));
    }
    o.push_str(&tail);
    o
}

/// The text around the timelines of the keys (which go between the two, `  none` when
/// there are none): what comes before them, and what after.
pub fn render_text_parts(r: &Report) -> (String, String) {
    let mut o = String::new();
    let read: Vec<&str> = r
        .files
        .iter()
        .filter(|f| f.error.is_none())
        .map(|f| f.path.as_str())
        .collect();
    let unread: Vec<&str> = r
        .files
        .iter()
        .filter(|f| f.error.is_some())
        .map(|f| f.path.as_str())
        .collect();
    o.push_str("acl-ipc-guard report\n");
    let _ = write!(
        o,
        "  files read:         {} ({})",
        read.len(),
        read.join(", ")
    );
    if !unread.is_empty() {
        let _ = write!(o, "; unreadable: {}", unread.join(", "));
    }
    o.push('\n');
    let _ = write!(o, "  processes:          {}", r.processes.len());
    let hosts: std::collections::BTreeSet<&str> = r
        .processes
        .iter()
        .filter_map(|p| p.host.as_deref())
        .collect();
    if hosts.len() > 1 {
        let _ = write!(
            o,
            " on {} hosts ({})",
            hosts.len(),
            hosts.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    o.push('\n');
    let _ = write!(o, "  records:            {}", r.records);
    if r.duplicates > 0 {
        let _ = write!(o, " ({} duplicate(s) ignored)", r.duplicates);
    }
    o.push('\n');
    let _ = writeln!(o, "  text lines skipped: {}", r.text_lines);
    let _ = writeln!(o, "  malformed lines:    {}", r.skipped.len());

    o.push_str("\nProcesses\n");
    if r.processes.is_empty() {
        o.push_str("  none\n");
    }
    for p in &r.processes {
        let _ = writeln!(o, "  {}", process_line(p, &r.processes));
    }

    o.push_str("\nViolations by rule\n");
    if r.violations.is_empty() {
        o.push_str("  none\n");
    }
    let mut by_rule: BTreeMap<&str, Vec<&Violation>> = BTreeMap::new();
    for v in &r.violations {
        by_rule.entry(v.rule.as_str()).or_default().push(v);
    }
    for (rule, vs) in &by_rule {
        let mut sev: Vec<&str> = vs.iter().map(|v| v.severity.as_str()).collect();
        sev.sort_unstable();
        sev.dedup();
        let head = clean(format!("{rule} ({})", sev.join(", ")));
        // Violations past the repeat limit are one entry (`summary`) of their number.
        let n: u64 = vs.iter().map(|v| v.count).sum();
        let _ = writeln!(o, "  {head}: {n}");
        for v in vs {
            let _ = writeln!(o, "    {}", violation_line(v, &r.processes));
        }
    }

    o.push_str("\nTimeline per key\n");
    let head = std::mem::take(&mut o);

    if !r.errors.is_empty() {
        o.push_str("\nShim errors\n");
        for e in &r.errors {
            let _ = writeln!(
                o,
                "  {}",
                clean(format!(
                    "{} pid {}: {}",
                    e.ts,
                    tag(&r.processes, e.process),
                    e.message
                ))
            );
        }
    }
    if !r.untracked_keys.is_empty() {
        let _ = writeln!(
            o,
            "\nNot tracked by the ledger (it was full; their cross-process rules were not judged live)\n  {} were not tracked:",
            plural(r.untracked_keys.len(), "key", "keys")
        );
        for fp in &r.untracked_keys {
            let _ = writeln!(o, "  {}", clean(fp.clone()));
        }
    }
    if !r.skipped.is_empty() {
        o.push_str("\nSkipped lines\n");
        for s in &r.skipped {
            let _ = writeln!(o, "  {}:{}: {}", s.file, s.line, s.reason);
        }
    }
    if !r.gaps.is_empty() {
        o.push_str("\nSequence gaps (records lost)\n");
        for g in &r.gaps {
            let n = (g.to - g.from + 1) as usize;
            let _ = writeln!(
                o,
                "  {}: seq {}..{} missing ({})",
                clean(format!("pid {}", tag(&r.processes, g.process))),
                g.from,
                g.to,
                plural(n, "record", "records")
            );
        }
    }

    o.push('\n');
    o.push_str(&verdict(r));
    o.push('\n');
    (head, o)
}

fn verdict(r: &Report) -> String {
    let errors = r.count("error");
    let from_log: u64 = r
        .violations
        .iter()
        .filter(|v| v.severity == "error" && v.source == Source::Log)
        .map(|v| v.count)
        .sum();
    let warnings = r.count("warning");
    let mut s = if errors > 0 {
        format!(
            "verdict: FAIL: {} ({from_log} from the logs, {} from the re-check), {}",
            plural(errors, "error violation", "error violations"),
            errors - from_log,
            plural(warnings, "warning", "warnings")
        )
    } else {
        format!(
            "verdict: OK: no error violation, {}",
            plural(warnings, "warning", "warnings")
        )
    };
    let mut notes = Vec::new();
    if !r.gaps.is_empty() {
        notes.push(format!(
            "{} (records lost)",
            plural(r.gaps.len(), "sequence gap", "sequence gaps")
        ));
    }
    let unknown = r.processes.iter().filter(|p| p.end == End::Unknown).count();
    if unknown > 0 {
        notes.push(format!(
            "{} without a summary",
            plural(unknown, "process", "processes")
        ));
    }
    if !r.skipped.is_empty() {
        notes.push(plural(r.skipped.len(), "malformed line", "malformed lines"));
    }
    if !notes.is_empty() {
        s.push_str("; ");
        s.push_str(&notes.join(", "));
    }
    s
}
