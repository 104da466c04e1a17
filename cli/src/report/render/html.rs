//! The report as one self-contained HTML page (`--html FILE`): the job drawn as one lane per
//! process, each key's life as a bar in its exporter's lane, imports and closes as marks,
//! arrows from the exporter to each importer, violations in red.
//!
//! The page is a fixed template (`html_page.html`: CSS, JS, no external resource) with the
//! job as one JSON blob in a `<script type="application/json">`. Every string from the logs
//! (exe paths, messages, hosts) reaches the page only inside that blob, escaped so that it
//! cannot end the script element, and the page's JS puts it into the document as text,
//! never as markup. Times in the blob are microseconds after the job's first record.

use super::super::model::{Detail, End, Event, Report};
use super::super::parse::parse_ts;
use serde_json::{json, Value};
use std::collections::HashMap;

const PAGE: &str = include_str!("html_page.html");
/// Where the template takes the blob: the whole content of its data script.
const DATA_SLOT: &str = "{{REPORT_DATA}}";

/// The event kinds of the blob's key events, by index (the page reads the names from the
/// blob). Violations are not among them: they have a list of their own.
const KINDS: [&str; 7] = [
    "export",
    "whitelist",
    "interserver",
    "setattr",
    "import",
    "close",
    "free",
];

fn kind_index(e: &Event) -> Option<usize> {
    KINDS.iter().position(|k| *k == e.kind())
}

fn status_code(e: &Event) -> u8 {
    match e.status {
        Some("ok") | None => 0,
        Some("blocked") => 2,
        Some(_) => 1,
    }
}

fn ts_us(ts: &str) -> Option<i64> {
    parse_ts(ts)
}

/// The page for the report.
pub fn render_html(r: &Report) -> String {
    let blob = embed_json(&page_data(r));
    let (head, tail) = PAGE
        .split_once(DATA_SLOT)
        .expect("the page template has a data slot");
    let mut page = String::with_capacity(PAGE.len() + blob.len());
    page.push_str(head);
    page.push_str(&blob);
    page.push_str(tail);
    page
}

/// JSON text that is safe as the content of a `<script>` element: no `<` (so no `</script>`
/// and no `<!--`), no `>` or `&`, and no U+2028/U+2029. These characters only occur inside
/// JSON strings, where `\uXXXX` means the same character, so the blob parses back equal.
pub fn embed_json(v: &Value) -> String {
    let text = v.to_string();
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The job's time span in microseconds since the epoch: its first and last known instant.
fn span(r: &Report) -> (i64, i64) {
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    let mut see = |t: i64| {
        lo = lo.min(t);
        hi = hi.max(t);
    };
    for p in &r.processes {
        for ts in [p.start_ts.as_deref(), Some(p.last_ts.as_str())]
            .into_iter()
            .flatten()
        {
            if let Some(t) = ts_us(ts) {
                see(t);
            }
        }
        if let End::Exited(ts) | End::Replaced(ts) = &p.end {
            if let Some(t) = ts_us(ts) {
                see(t);
            }
        }
    }
    for e in r.keys.values().flatten() {
        see(e.ts_us);
    }
    for v in &r.violations {
        see(v.ts_us);
    }
    if lo > hi {
        (0, 0)
    } else {
        (lo, hi)
    }
}

/// The blob the page draws from (see the module doc); its fields are read by the page's JS.
pub fn page_data(r: &Report) -> Value {
    let (t0, t1) = span(r);
    let rel = |t: i64| t.saturating_sub(t0);
    let rel_ts = |ts: &str| ts_us(ts).map(rel);

    // Each process's first instant: its start record, else its earliest event in the report.
    let mut first_seen: Vec<Option<i64>> = vec![None; r.processes.len()];
    for e in r.keys.values().flatten() {
        if let Some(f) = first_seen.get_mut(e.process) {
            *f = Some(f.map_or(e.ts_us, |t| t.min(e.ts_us)));
        }
    }
    let procs: Vec<Value> = r
        .processes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let last = rel_ts(&p.last_ts).unwrap_or(0);
            let start = p
                .start_ts
                .as_deref()
                .and_then(rel_ts)
                .or(first_seen[i].map(rel))
                .unwrap_or(last)
                .min(last);
            let (end, how) = match &p.end {
                End::Exited(ts) => (rel_ts(ts).unwrap_or(last), "exited"),
                End::Replaced(ts) => (rel_ts(ts).unwrap_or(last), "replaced"),
                End::Unknown => (last, "unknown"),
            };
            json!({
                "tag": p.tag,
                "pid": p.pid,
                "host": p.host,
                "exe": p.exe,
                "mode": p.mode,
                "start": start,
                "end": end,
                "last": last,
                "how": how,
                "records": p.records,
                "dropped": p.dropped,
                "parent": p.parent,
                "parent_pid": p.parent_pid,
                "start_record": p.has_start,
                "files": p.files,
            })
        })
        .collect();
    // When each process ends (or, with no summary, its last record): an open key's bar
    // runs to its exporter's end.
    let proc_end: Vec<i64> = procs
        .iter()
        .map(|p| p["end"].as_i64().unwrap_or(0))
        .collect();

    let mut order: Vec<(i64, &String, &Vec<Event>)> = r
        .keys
        .iter()
        .map(|(fp, evs)| {
            let s = export_of(evs)
                .or_else(|| evs.first())
                .map_or(t0, |e| e.ts_us);
            (s, fp, evs)
        })
        .collect();
    order.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    let key_index: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, (_, fp, _))| (fp.as_str(), i))
        .collect();
    let keys: Vec<Value> = order
        .iter()
        .map(|(_, fp, evs)| key_json(fp, evs, t0, &proc_end))
        .collect();

    let violations: Vec<Value> = r
        .violations
        .iter()
        .map(|v| {
            json!({
                "rule": v.rule,
                "sev": v.severity,
                "proc": v.process,
                "fn": v.func,
                "key": v.key_fp.as_deref().and_then(|fp| key_index.get(fp)),
                "fp": v.key_fp,
                "t": rel(v.ts_us),
                "src": v.source.as_str(),
                "action": v.action,
                "msg": v.message,
                // How many violations the entry stands for: 1, or those a summary counts
                // past the repeat limit (one entry, one row, one mark).
                "n": v.count,
            })
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "t0": t0,
        "span": t1.saturating_sub(t0),
        "kinds": KINDS,
        "files": r.files.iter().map(|f| json!({
            "path": f.path,
            "error": f.error,
            "records": f.records,
            "text_lines": f.text_lines,
            "skipped": f.skipped,
        })).collect::<Vec<_>>(),
        "records": r.records,
        "duplicates": r.duplicates,
        "skipped": r.skipped.len(),
        "procs": procs,
        "keys": keys,
        "viols": violations,
        "gaps": r.gaps.iter().map(|g| json!({"proc": g.process, "from": g.from, "to": g.to})).collect::<Vec<_>>(),
        "errors": r.errors.iter().map(|e| json!({
            "proc": e.process,
            "t": ts_us(&e.ts).map(rel),
            "msg": e.message,
        })).collect::<Vec<_>>(),
        "untracked": r.untracked_keys.iter().filter_map(|fp| key_index.get(fp.as_str())).collect::<Vec<_>>(),
        "verdict": {
            "errors": r.count("error"),
            "warnings": r.count("warning"),
            "exit_status": r.exit_status(),
        },
    })
}

fn export_of(evs: &[Event]) -> Option<&Event> {
    evs.iter()
        .find(|e| matches!(e.detail, Detail::Export { .. }) && e.status == Some("ok"))
}

/// One key: its fingerprint, the lane of its exporter (`ex`), its life from the export
/// (`s`) to its last successful close (`e`), and its events as
/// `[time, process, kind, status]` (status 0 ok, 1 failed, 2 blocked). `open`: no close
/// after the export, the bar runs to the exporter's end; `noexp`: the export is not in the
/// logs, the bar starts at the key's first event.
fn key_json(fp: &str, evs: &[Event], t0: i64, proc_end: &[i64]) -> Value {
    let rel = |t: i64| t.saturating_sub(t0);
    let export = export_of(evs);
    let first = export.or_else(|| evs.first());
    let (ex, s) = first.map_or((0, 0), |e| (e.process, rel(e.ts_us)));
    let last_close = evs
        .iter()
        .filter(|e| matches!(e.detail, Detail::Close { .. }) && e.status == Some("ok"))
        .map(|e| rel(e.ts_us))
        .filter(|t| *t >= s)
        .max();
    let last_event = evs.iter().map(|e| rel(e.ts_us)).max().unwrap_or(s);
    let (e, open) = match last_close {
        Some(t) => (t, false),
        None => (
            proc_end
                .get(ex)
                .copied()
                .unwrap_or(last_event)
                .max(last_event),
            true,
        ),
    };
    let events: Vec<Value> = evs
        .iter()
        .filter_map(|e| {
            let k = kind_index(e)?;
            Some(json!([rel(e.ts_us), e.process, k, status_code(e)]))
        })
        .collect();
    json!({
        "fp": fp,
        "ex": ex,
        "s": s,
        "e": e,
        "open": open,
        "noexp": export.is_none(),
        "ev": events,
    })
}

#[cfg(test)]
#[path = "html_tests.rs"]
mod tests;
