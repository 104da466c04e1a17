//! Records of all files → one time order → processes, gaps, per-key timelines and the
//! re-check of the cross-process rules. Pure: no files, no output.

use super::parse::{self, Body, Call, Line, LogViolation, Rec};
use super::{
    Detail, End, Event, FileInfo, Gap, Input, Process, Report, ShimError, Skipped, Source,
    Violation,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

pub const CLOSE_ORDER: &str = "close.exporter-before-importers";
pub const SOURCE_GONE: &str = "import.source-gone";
pub const NOT_WHITELISTED: &str = "import.not-whitelisted";
pub const FREE_IMPORTED: &str = "free.imported";

pub fn analyze(inputs: &[Input]) -> Report {
    let mut files = Vec::new();
    let mut recs = Vec::new();
    let mut skipped = Vec::new();
    for (fi, input) in inputs.iter().enumerate() {
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
                            recs.push(*r);
                        }
                        Line::Malformed(reason) => {
                            info.skipped += 1;
                            skipped.push(Skipped {
                                file: input.name.clone(),
                                line: i + 1,
                                reason,
                            });
                        }
                    }
                }
            }
        }
        files.push(info);
    }

    // One time order: ts, then pid, then seq; the rest only makes the order total.
    recs.sort_by(|a, b| {
        (a.ts_us, a.pid, a.seq, &a.event, a.hash).cmp(&(b.ts_us, b.pid, b.seq, &b.event, b.hash))
    });
    // The same record twice (a file given twice, overlapping copies) counts once.
    let before = recs.len();
    recs.dedup_by(|b, a| (a.ts_us, a.pid, a.seq, &a.event) == (b.ts_us, b.pid, b.seq, &b.event));
    let duplicates = before - recs.len();

    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let processes = assign_processes(&mut recs, &names);
    let gaps = find_gaps(&recs, &processes);

    let mut sweep = Sweep::new(&recs, &processes);
    for r in &recs {
        sweep.record(r);
    }
    let Sweep {
        keys,
        violations,
        errors,
        ..
    } = sweep;
    let mut violations = violations;
    violations.sort_by(|a, b| {
        (&a.rule, a.ts_us, a.pid, a.seq, a.source).cmp(&(&b.rule, b.ts_us, b.pid, b.seq, b.source))
    });
    let keys = keys.into_iter().map(|(fp, k)| (fp, k.events)).collect();

    skipped.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Report {
        text_lines: files.iter().map(|f| f.text_lines).sum(),
        records: recs.len(),
        duplicates,
        files,
        skipped,
        processes,
        gaps,
        violations,
        keys,
        errors,
    }
}

/// Splits the records of each pid into processes (program images): a `start` record begins
/// one; records of a pid never seen, or seen last ending with a `summary` and not continuing
/// its `seq`, begin one without a start (a fork child, a reused pid).
fn assign_processes(recs: &mut [Rec], names: &[&str]) -> Vec<Process> {
    let mut procs: Vec<Process> = Vec::new();
    let mut current: HashMap<i64, usize> = HashMap::new();
    for r in recs.iter_mut() {
        let same = current.get(&r.pid).copied().filter(|&i| {
            let p = &procs[i];
            r.event != "start" && !(matches!(p.end, End::Exited(_)) && r.seq != p.last_seq + 1)
        });
        let idx = match same {
            Some(i) => i,
            None => {
                if let Some(&prev) = current.get(&r.pid) {
                    if matches!(procs[prev].end, End::Unknown) {
                        procs[prev].end = End::Replaced(r.ts.clone());
                    }
                }
                procs.push(Process {
                    pid: r.pid,
                    start_ts: None,
                    version: None,
                    mode: None,
                    exe: None,
                    end: End::Unknown,
                    first_seq: r.seq,
                    last_seq: r.seq,
                    last_ts: r.ts.clone(),
                    records: 0,
                    files: Vec::new(),
                    dropped: None,
                    has_start: false,
                });
                current.insert(r.pid, procs.len() - 1);
                procs.len() - 1
            }
        };
        r.proc_idx = idx;
        let p = &mut procs[idx];
        p.records += 1;
        p.first_seq = p.first_seq.min(r.seq);
        p.last_seq = p.last_seq.max(r.seq);
        p.last_ts = r.ts.clone();
        let file = names.get(r.file).copied().unwrap_or("?");
        if !p.files.iter().any(|f| f == file) {
            p.files.push(file.to_owned());
        }
        match &r.body {
            Body::Start {
                version, mode, exe, ..
            } => {
                p.has_start = true;
                p.start_ts = Some(r.ts.clone());
                p.version.clone_from(version);
                p.mode.clone_from(mode);
                p.exe.clone_from(exe);
            }
            Body::Summary { dropped, .. } => {
                p.end = End::Exited(r.ts.clone());
                p.dropped = *dropped;
            }
            _ => {}
        }
    }
    for p in &mut procs {
        p.files.sort();
    }
    procs
}

/// Holes in each process's `seq`: from 1 for a process with a `start`, from its first
/// record otherwise (a fork child keeps its parent's count).
fn find_gaps(recs: &[Rec], procs: &[Process]) -> Vec<Gap> {
    let mut seqs: Vec<Vec<u64>> = vec![Vec::new(); procs.len()];
    for r in recs {
        seqs[r.proc_idx].push(r.seq);
    }
    let mut gaps = Vec::new();
    for (p, s) in procs.iter().zip(seqs.iter_mut()) {
        s.sort_unstable();
        s.dedup();
        let mut expect = if p.has_start {
            1
        } else {
            s.first().copied().unwrap_or(1)
        };
        for &q in s.iter() {
            if q > expect {
                gaps.push(Gap {
                    pid: p.pid,
                    from: expect,
                    to: q - 1,
                });
            }
            expect = expect.max(q + 1);
        }
    }
    gaps.sort_by_key(|g| (g.pid, g.from));
    gaps
}

/// One key's state as the re-check sweeps through time; a new export of the same
/// fingerprint starts over.
#[derive(Default)]
struct KeyState {
    export: Option<Export>,
    closed: bool,
    freed: bool,
    whitelist: BTreeSet<i64>,
    /// Importing process → successful imports not yet closed (the runtime counts them).
    importers: BTreeMap<usize, u32>,
    /// Processes that ever imported it successfully (for the role of a close).
    ever_imported: BTreeSet<usize>,
    events: Vec<Event>,
}

struct Export {
    proc_idx: usize,
    pid: i64,
    dev: Option<u64>,
    size: Option<u64>,
    flags: Option<u64>,
}

#[derive(Default)]
struct ProcState {
    bare_tgid: Option<i64>,
    /// Addresses this process got from a successful import, and of which key.
    imported: HashMap<u64, String>,
    /// Keys this process exported, by the address their range starts at: a free is matched
    /// against the nearest export at or below its address, in logarithmic time.
    exports: BTreeMap<u64, Vec<String>>,
    ended: bool,
    /// Violation records written, per rule, with their severity.
    written: HashMap<String, (u64, String)>,
}

struct Sweep<'a> {
    procs: &'a [Process],
    ps: Vec<ProcState>,
    last_of_pid: HashMap<i64, usize>,
    keys: BTreeMap<String, KeyState>,
    violations: Vec<Violation>,
    errors: Vec<ShimError>,
    /// (rule, pid, key_fp) of every log violation, and (rule, pid) for `free.imported`
    /// (the shim's record of it names no key).
    logged: HashSet<(String, i64, Option<String>)>,
    logged_free: HashSet<i64>,
    /// Every process ran with one shared, working ledger: the shim judged the close order
    /// live, with liveness the logs cannot show (a killed process writes no summary), so
    /// the re-check leaves that rule to it.
    shared_ledger: bool,
}

/// The ledger rule whose re-check needs to know whether a process was alive, which the
/// logs cannot show for a killed process: with a shared ledger the shim's live verdict
/// stands. The other ledger rules are judged from the records alone either way.
const LIVENESS_RULES: [&str; 1] = ["close.exporter-before-importers"];

/// True when every process has a `start` record naming the same ledger directory (not
/// `off`), and no process said its ledger was unusable.
fn job_shared_a_ledger(recs: &[Rec]) -> bool {
    let mut dir: Option<&str> = None;
    let mut pids_with_start = HashSet::new();
    let mut pids = HashSet::new();
    for r in recs {
        pids.insert(r.pid);
        match &r.body {
            Body::Start { ledger, .. } => {
                let Some(l) = ledger.as_deref().filter(|l| *l != "off") else {
                    return false;
                };
                if dir.is_some_and(|d| d != l) {
                    return false;
                }
                dir = Some(l);
                pids_with_start.insert(r.pid);
            }
            Body::Error { message } if message.contains("ledger") => return false,
            _ => {}
        }
    }
    dir.is_some() && pids_with_start.len() == pids.len()
}

fn pids_text(p: &[i64]) -> String {
    let v: Vec<String> = p.iter().map(i64::to_string).collect();
    format!("[{}]", v.join(", "))
}

impl<'a> Sweep<'a> {
    fn new(recs: &[Rec], procs: &'a [Process]) -> Self {
        let mut logged = HashSet::new();
        let mut logged_free = HashSet::new();
        for r in recs {
            if let Body::Violation(v) = &r.body {
                if v.rule == FREE_IMPORTED {
                    logged_free.insert(r.pid);
                }
                logged.insert((v.rule.clone(), r.pid, v.key_fp.clone()));
            }
        }
        Sweep {
            procs,
            ps: procs.iter().map(|_| ProcState::default()).collect(),
            last_of_pid: HashMap::new(),
            keys: BTreeMap::new(),
            violations: Vec::new(),
            errors: Vec::new(),
            logged,
            logged_free,
            shared_ledger: job_shared_a_ledger(recs),
        }
    }

    fn record(&mut self, r: &Rec) {
        // A pid's earlier process has ended once another one with that pid shows up.
        if let Some(prev) = self.last_of_pid.insert(r.pid, r.proc_idx) {
            if prev != r.proc_idx {
                self.ps[prev].ended = true;
            }
        }
        match &r.body {
            Body::Call(c) => self.call(r, c),
            Body::Violation(v) => self.log_violation(r, v),
            Body::Summary { violations, .. } => {
                self.ps[r.proc_idx].ended = true;
                self.unwritten_violations(r, violations);
            }
            Body::Error { message } => self.errors.push(ShimError {
                ts: r.ts.clone(),
                pid: r.pid,
                message: message.clone(),
            }),
            Body::Start { .. } | Body::Other => {}
        }
    }

    fn event(r: &Rec, c: &Call, detail: Detail) -> Event {
        Event {
            ts: r.ts.clone(),
            ts_us: r.ts_us,
            pid: r.pid,
            seq: r.seq,
            func: c.func.clone(),
            ret: c.ret,
            status: Some(c.status()),
            detail,
        }
    }

    fn push_event(&mut self, fp: &str, ev: Event) {
        self.keys.entry(fp.to_owned()).or_default().events.push(ev);
    }

    /// Violations the summary counts but no record shows (past the repeat limit): an
    /// `error` among them fails the job too.
    fn unwritten_violations(&mut self, r: &Rec, counted: &[(String, u64)]) {
        for (rule, n) in counted {
            let (written, severity) = self.ps[r.proc_idx]
                .written
                .get(rule)
                .cloned()
                .unwrap_or_else(|| {
                    let default = crate::rules::Rule::from_id(rule)
                        .map_or("warning", |r| r.default_severity().as_str());
                    (0, default.to_owned())
                });
            if *n <= written {
                continue;
            }
            self.violations.push(Violation {
                rule: rule.clone(),
                severity,
                pid: r.pid,
                func: "summary".to_owned(),
                key_fp: None,
                source: Source::Log,
                ts: r.ts.clone(),
                ts_us: r.ts_us,
                seq: r.seq,
                message: format!(
                    "{} more {rule} violation(s) counted in the summary but not written (ACL_IPC_GUARD_REPEAT_LIMIT)",
                    n - written
                ),
                action: None,
            });
        }
    }

    fn log_violation(&mut self, r: &Rec, lv: &LogViolation) {
        let w = self.ps[r.proc_idx]
            .written
            .entry(lv.rule.clone())
            .or_insert((0, lv.severity.clone()));
        w.0 += 1;
        let v = Violation {
            rule: lv.rule.clone(),
            severity: lv.severity.clone(),
            pid: r.pid,
            func: lv.func.clone(),
            key_fp: lv.key_fp.clone(),
            source: Source::Log,
            ts: r.ts.clone(),
            ts_us: r.ts_us,
            seq: r.seq,
            message: lv.message.clone(),
            action: lv.action.clone(),
        };
        if let Some(fp) = &v.key_fp {
            let ev = Self::violation_event(&v);
            self.push_event(fp, ev);
        }
        self.violations.push(v);
    }

    fn violation_event(v: &Violation) -> Event {
        Event {
            ts: v.ts.clone(),
            ts_us: v.ts_us,
            pid: v.pid,
            seq: v.seq,
            func: v.func.clone(),
            ret: None,
            status: None,
            detail: Detail::Violation(Box::new(v.clone())),
        }
    }

    /// A re-check finding about call `c`, unless the logs already hold it.
    fn flag(&mut self, r: &Rec, c: &Call, rule: &'static str, fp: Option<&str>, message: String) {
        if self.shared_ledger && LIVENESS_RULES.contains(&rule) {
            return;
        }
        let dup = if rule == FREE_IMPORTED {
            self.logged_free.contains(&r.pid)
        } else {
            self.logged
                .contains(&(rule.to_owned(), r.pid, fp.map(str::to_owned)))
        };
        if dup {
            return;
        }
        let v = Violation {
            rule: rule.to_owned(),
            severity: "error".to_owned(),
            pid: r.pid,
            func: c.func.clone(),
            key_fp: fp.map(str::to_owned),
            source: Source::Recheck,
            ts: r.ts.clone(),
            ts_us: r.ts_us,
            seq: r.seq,
            message,
            action: None,
        };
        if let Some(fp) = fp {
            let ev = Self::violation_event(&v);
            self.push_event(fp, ev);
        }
        self.violations.push(v);
    }

    fn call(&mut self, r: &Rec, c: &Call) {
        match c.func.as_str() {
            "aclrtIpcMemGetExportKey" => self.export(r, c),
            "aclrtIpcMemSetImportPid" => self.whitelist(r, c),
            "aclrtIpcMemImportPidInterServer" => self.interserver(r, c),
            "aclrtIpcMemImportByKey" => self.import(r, c),
            "aclrtIpcMemSetAttr" => {
                if let Some(fp) = &c.key_fp {
                    let detail = Detail::SetAttr {
                        attr_type: c.attr_type,
                        attr: c.attr,
                    };
                    let ev = Self::event(r, c, detail);
                    self.push_event(fp, ev);
                }
            }
            "aclrtIpcMemClose" => self.close(r, c),
            "aclrtDeviceGetBareTgid" => {
                // A negative pid is the runtime's silent failure, not a tgid.
                if let (true, Some(t)) = (c.ok(), c.out_pid.filter(|t| *t > 0)) {
                    self.ps[r.proc_idx].bare_tgid = Some(t);
                }
            }
            "aclrtMalloc" | "aclrtMallocAlign32" | "aclrtMallocCached" => {
                // An address handed out again is no longer "an address that was imported".
                if let (true, Some(a)) = (c.ok(), c.out_dev_ptr) {
                    self.ps[r.proc_idx].imported.remove(&a);
                }
            }
            "aclrtFree" => self.free(r, c),
            _ => {}
        }
    }

    fn export(&mut self, r: &Rec, c: &Call) {
        let Some(fp) = c.out_key_fp.as_deref().filter(|_| c.ok()) else {
            return;
        };
        let ev = Self::event(
            r,
            c,
            Detail::Export {
                dev_ptr: c.dev_ptr,
                size: c.size,
                flags: c.flags,
            },
        );
        let key = self.keys.entry(fp.to_owned()).or_default();
        let events = std::mem::take(&mut key.events);
        *key = KeyState {
            export: Some(Export {
                proc_idx: r.proc_idx,
                pid: r.pid,
                dev: c.dev_ptr,
                size: c.size,
                flags: c.flags,
            }),
            events,
            ..KeyState::default()
        };
        key.events.push(ev);
        if let Some(dev) = c.dev_ptr {
            let at = self.ps[r.proc_idx].exports.entry(dev).or_default();
            if !at.iter().any(|e| e == fp) {
                at.push(fp.to_owned());
            }
        }
    }

    fn whitelist(&mut self, r: &Rec, c: &Call) {
        let Some(fp) = &c.key_fp else { return };
        let detail = Detail::Whitelist {
            pids: c.pids.clone(),
            num: c.num,
        };
        let ev = Self::event(r, c, detail);
        let key = self.keys.entry(fp.clone()).or_default();
        if c.ok() {
            key.whitelist.extend(c.pids.list());
        }
        key.events.push(ev);
    }

    fn interserver(&mut self, r: &Rec, c: &Call) {
        let Some(fp) = &c.key_fp else { return };
        let detail = Detail::InterServer {
            server_pids: c.server_pids.clone(),
            num: c.num,
        };
        let ev = Self::event(r, c, detail);
        let key = self.keys.entry(fp.clone()).or_default();
        if c.ok() {
            // Pids whitelisted for other servers count as whitelisted: no false alarm.
            for (_, p) in c.server_pids.iter().flatten() {
                key.whitelist.extend(p);
            }
        }
        key.events.push(ev);
    }

    fn import(&mut self, r: &Rec, c: &Call) {
        let Some(fp) = c.key_fp.as_deref() else {
            return;
        };
        let got = c.out_dev_ptr.filter(|_| c.ok());
        let detail = Detail::Import {
            address: got,
            flags: c.flags,
        };
        let ev = Self::event(r, c, detail);
        self.push_event(fp, ev);

        let me = r.proc_idx;
        let mut findings: Vec<(&'static str, String)> = Vec::new();
        let key = &self.keys[fp];
        if let Some(ex) = key.export.as_ref().filter(|ex| ex.proc_idx != me) {
            let mut gone = Vec::new();
            if key.closed {
                gone.push("closed it".to_owned());
            }
            if key.freed {
                gone.push("freed its memory".to_owned());
            }
            if self.ps[ex.proc_idx].ended {
                gone.push(match &self.procs[ex.proc_idx].end {
                    End::Exited(ts) => format!("exited (summary at {ts})"),
                    _ => "was replaced by another program with its pid".to_owned(),
                });
            }
            if !gone.is_empty() {
                findings.push((
                    SOURCE_GONE,
                    format!(
                        "pid {} imports key {fp} after its exporter (pid {}) {}",
                        r.pid,
                        ex.pid,
                        gone.join(", ")
                    ),
                ));
            }
            if ex.flags == Some(0) {
                let tgid = self.ps[me].bare_tgid.unwrap_or(r.pid);
                if !key.whitelist.contains(&tgid) {
                    let list: Vec<i64> = key.whitelist.iter().copied().collect();
                    findings.push((
                        NOT_WHITELISTED,
                        format!(
                            "pid {} (bare tgid {tgid}) imports key {fp}, exported by pid {} in whitelist mode, but {tgid} was not whitelisted before the import (whitelisted: {})",
                            r.pid,
                            ex.pid,
                            pids_text(&list)
                        ),
                    ));
                }
            }
        }
        for (rule, msg) in findings {
            self.flag(r, c, rule, Some(fp), msg);
        }
        if let Some(a) = got {
            let key = self.keys.get_mut(fp).expect("key entry exists");
            *key.importers.entry(me).or_default() += 1;
            key.ever_imported.insert(me);
            self.ps[me].imported.insert(a, fp.to_owned());
        }
    }

    fn close(&mut self, r: &Rec, c: &Call) {
        let Some(fp) = c.key_fp.as_deref() else {
            return;
        };
        let me = r.proc_idx;
        let key = self.keys.entry(fp.to_owned()).or_default();
        let role = match &key.export {
            Some(ex) if ex.proc_idx == me => "exporter",
            _ if key.ever_imported.contains(&me) => "importer",
            Some(_) => "neither exporter nor importer",
            None => "unknown (export not in the logs)",
        };
        let ev = Self::event(r, c, Detail::Close { role });
        key.events.push(ev);
        if !c.ok() {
            return;
        }
        match role {
            "exporter" => {
                key.closed = true;
                let open: Vec<i64> = key
                    .importers
                    .iter()
                    .filter(|(&j, &refs)| refs > 0 && j != me && !self.ps[j].ended)
                    .map(|(&j, _)| self.procs[j].pid)
                    .collect();
                if !open.is_empty() {
                    let msg = format!(
                        "the exporter (pid {}) closes key {fp} while importing process(es) {} are alive and have not closed it; importers must close first",
                        r.pid,
                        pids_text(&open)
                    );
                    self.flag(r, c, CLOSE_ORDER, Some(fp), msg);
                }
            }
            "importer" => {
                if let Some(refs) = key.importers.get_mut(&me) {
                    *refs = refs.saturating_sub(1);
                }
            }
            _ => {}
        }
    }

    fn free(&mut self, r: &Rec, c: &Call) {
        let Some(a) = c.dev_ptr else { return };
        let me = r.proc_idx;
        if let Some(fp) = self.ps[me].imported.get(&a).cloned() {
            let detail = Detail::Free {
                dev_ptr: a,
                role: "importer",
            };
            let ev = Self::event(r, c, detail);
            self.push_event(&fp, ev);
            let msg = format!(
                "pid {} frees {a:#x}, which aclrtIpcMemImportByKey returned for key {fp}; an importer releases it with aclrtIpcMemClose, never aclrtFree",
                r.pid
            );
            self.flag(r, c, FREE_IMPORTED, Some(&fp), msg);
        }
        let Some((&start, near)) = self.ps[me].exports.range(..=a).next_back() else {
            return;
        };
        for fp in near.clone() {
            let Some(key) = self.keys.get_mut(&fp) else {
                continue;
            };
            let Some(ex) = key.export.as_ref() else {
                continue;
            };
            let (Some(dev), Some(size)) = (ex.dev, ex.size) else {
                continue;
            };
            if ex.proc_idx != me || key.freed || a < dev || a - dev >= size {
                continue;
            }
            let detail = Detail::Free {
                dev_ptr: a,
                role: "exporter",
            };
            let ev = Self::event(r, c, detail);
            key.events.push(ev);
            if c.ok() {
                key.freed = true;
            }
        }
        // Keys whose memory is gone (or that another export took over) need no more looking at.
        let keys = &self.keys;
        if let Some(at) = self.ps[me].exports.get_mut(&start) {
            at.retain(|fp| {
                keys.get(fp)
                    .and_then(|k| k.export.as_ref().map(|ex| (k, ex)))
                    .is_some_and(|(k, ex)| ex.proc_idx == me && !k.freed)
            });
            if at.is_empty() {
                self.ps[me].exports.remove(&start);
            }
        }
    }
}
