//! Records of all files → one time order → processes, gaps, per-key timelines and the
//! re-check of the cross-process rules. Pure: no files, no output.

use super::parse::{self, Body, Call, Line, LogViolation, Rec, StartInfo};
use super::{
    Detail, End, Event, FileInfo, Gap, Input, Process, Report, ShimError, Skipped, Source,
    Violation,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

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

    // Which process each record belongs to, decided file by file (a record names only its
    // pid; its host and start are those of the start record before it in its file).
    let keys = identify(&recs);
    let mut recs: Vec<(ProcKey, Rec)> = keys.into_iter().zip(recs).collect();
    // One time order: ts, then process, then seq; the rest only makes the order total.
    recs.sort_by(|(ka, a), (kb, b)| {
        (a.ts_us, a.pid, ka, a.seq, &a.event, a.hash)
            .cmp(&(b.ts_us, b.pid, kb, b.seq, &b.event, b.hash))
    });
    // The same record twice (a file given twice, overlapping copies) counts once.
    let before = recs.len();
    recs.dedup_by(|(kb, b), (ka, a)| {
        (a.ts_us, &*ka, a.seq, &a.event) == (b.ts_us, &*kb, b.seq, &b.event)
    });
    let duplicates = before - recs.len();

    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let (processes, recs, replaced_by) = assign_processes(recs, &names);
    let gaps = find_gaps(&recs, &processes);

    let mut sweep = Sweep::new(&recs, &processes, replaced_by);
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
        (&a.rule, a.ts_us, a.pid, a.process, a.seq, a.source)
            .cmp(&(&b.rule, b.ts_us, b.pid, b.process, b.seq, b.source))
    });
    let keys = keys.into_iter().map(|(fp, k)| (fp, k.events)).collect();
    let mut untracked_keys: Vec<String> = recs
        .iter()
        .filter_map(|r| match &r.body {
            Body::Call(c) if c.untracked && c.ok() => c.out_key_fp.clone(),
            _ => None,
        })
        .collect();
    untracked_keys.sort();
    untracked_keys.dedup();

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
        untracked_keys,
    }
}

/// Which process a record belongs to: its host, pid and the time of its `start` record
/// (`started`), or, for records with no start record before them (logs of older versions,
/// a log whose beginning is lost), its pid and the time of its first record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ProcKey {
    /// Shared by the records of one process: a clone is a count, not a copy.
    host: Option<Arc<str>>,
    pid: i64,
    anchor_us: i64,
    started: bool,
}

/// One process as `identify` follows it through one file.
struct Image {
    key: ProcKey,
    last_seq: u64,
    exited: bool,
}

/// The process of every record (same order as `recs`). In each file, each pid's records
/// are taken in time order: a `start` record begins a process (its host, pid and time are
/// its identity, so pids that collide across hosts or containers stay apart); another
/// record goes on with the process of that pid whose `seq` it continues, else the latest
/// one. A pid with no start record before its records (an older log, a lost beginning)
/// makes a process known by its pid and first record; after its `summary`, records that do
/// not continue its `seq` begin another (a reused pid).
fn identify(recs: &[Rec]) -> Vec<ProcKey> {
    let mut groups: BTreeMap<(usize, i64), Vec<usize>> = BTreeMap::new();
    for (i, r) in recs.iter().enumerate() {
        groups.entry((r.file, r.pid)).or_default().push(i);
    }
    let mut keys: Vec<Option<ProcKey>> = vec![None; recs.len()];
    for ((_, pid), mut idx) in groups {
        idx.sort_by_key(|&i| (recs[i].ts_us, recs[i].seq, recs[i].event != "start"));
        let mut images: Vec<Image> = Vec::new();
        for i in idx {
            let r = &recs[i];
            let at = if let Body::Start(s) = &r.body {
                images.push(Image {
                    key: ProcKey {
                        host: s.host.as_deref().map(Arc::from),
                        pid,
                        anchor_us: r.ts_us,
                        started: true,
                    },
                    last_seq: r.seq,
                    exited: false,
                });
                images.len() - 1
            } else {
                let continues = images.iter().rposition(|im| im.last_seq + 1 == r.seq);
                let latest = images
                    .len()
                    .checked_sub(1)
                    .filter(|&l| !(images[l].exited && r.seq > images[l].last_seq + 1));
                match continues.or(latest) {
                    Some(at) => at,
                    None => {
                        images.push(Image {
                            key: ProcKey {
                                host: None,
                                pid,
                                anchor_us: r.ts_us,
                                started: false,
                            },
                            last_seq: r.seq,
                            exited: false,
                        });
                        images.len() - 1
                    }
                }
            };
            let im = &mut images[at];
            im.last_seq = im.last_seq.max(r.seq);
            im.exited |= matches!(r.body, Body::Summary { .. });
            keys[i] = Some(im.key.clone());
        }
    }
    keys.into_iter()
        .map(|k| k.expect("every record is in a group"))
        .collect()
}

/// Two processes may be the same machine's: equal hosts, or one not known.
fn same_machine(a: &Option<String>, b: &Option<String>) -> bool {
    a.is_none() || b.is_none() || a == b
}

/// Numbers the processes in order of their first record and fills in what their records
/// say; then the end of an image its pid's next image replaced, the parents of fork
/// children, and each process's tag.
/// Also returns, for each process, the image of its pid that began after it and ended it.
fn assign_processes(
    recs: Vec<(ProcKey, Rec)>,
    names: &[&str],
) -> (Vec<Process>, Vec<Rec>, Vec<Option<usize>>) {
    let mut procs: Vec<Process> = Vec::new();
    let mut index: HashMap<ProcKey, usize> = HashMap::new();
    let mut out = Vec::with_capacity(recs.len());
    let mut first_ts: Vec<String> = Vec::new();
    for (key, mut r) in recs {
        let idx = *index.entry(key.clone()).or_insert_with(|| {
            first_ts.push(r.ts.clone());
            procs.push(Process {
                pid: r.pid,
                tag: String::new(),
                host: key.host.as_deref().map(str::to_owned),
                start_ts: None,
                version: None,
                mode: None,
                exe: None,
                ledger: None,
                bare_tgid: None,
                parent_pid: None,
                parent: None,
                end: End::Unknown,
                first_seq: r.seq,
                last_seq: r.seq,
                last_ts: r.ts.clone(),
                records: 0,
                files: Vec::new(),
                dropped: None,
                has_start: false,
            });
            procs.len() - 1
        });
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
            Body::Start(s) => {
                let StartInfo {
                    version,
                    mode,
                    exe,
                    ledger,
                    host: _,
                    bare_tgid,
                    parent,
                } = &**s;
                p.has_start = true;
                p.start_ts = Some(r.ts.clone());
                p.version.clone_from(version);
                p.mode.clone_from(mode);
                p.exe.clone_from(exe);
                p.ledger.clone_from(ledger);
                p.bare_tgid = *bare_tgid;
                p.parent_pid = *parent;
            }
            Body::Summary { dropped, .. } => {
                p.end = End::Exited(r.ts.clone());
                p.dropped = *dropped;
            }
            _ => {}
        }
        out.push(r);
    }
    let anchors: Vec<i64> = {
        let mut a = vec![0; procs.len()];
        for (k, &i) in &index {
            a[i] = k.anchor_us;
        }
        a
    };
    // Images of one machine's pid in time order: one ends when the next begins (an exec,
    // or the pid was reused). Not so for pids of different pid namespaces on one host
    // (containers sharing a host name), which run side by side: their bare tgids differ.
    let mut by_pid: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, p) in procs.iter().enumerate() {
        by_pid.entry(p.pid).or_default().push(i);
    }
    let mut replaced_by = vec![None; procs.len()];
    for list in by_pid.values_mut() {
        list.sort_by_key(|&i| (anchors[i], i));
        for (n, &i) in list.iter().enumerate() {
            let next = list[n + 1..].iter().copied().find(|&j| {
                let (a, b) = (&procs[i], &procs[j]);
                same_machine(&a.host, &b.host)
                    && (a.bare_tgid.is_none()
                        || b.bare_tgid.is_none()
                        || a.bare_tgid == b.bare_tgid)
            });
            let Some(j) = next else { continue };
            if procs[i].end == End::Unknown {
                let first_of_next = procs[j]
                    .start_ts
                    .clone()
                    .unwrap_or_else(|| first_ts[j].clone());
                procs[i].end = End::Replaced(first_of_next);
            }
            replaced_by[i] = Some(j);
        }
    }
    // A fork child's parent: the latest image of the parent's pid on its host that began
    // before the child.
    for c in 0..procs.len() {
        let Some(ppid) = procs[c].parent_pid else {
            continue;
        };
        procs[c].parent = by_pid.get(&ppid).and_then(|list| {
            list.iter()
                .copied()
                .filter(|&j| {
                    j != c
                        && anchors[j] <= anchors[c]
                        && same_machine(&procs[j].host, &procs[c].host)
                })
                .max_by_key(|&j| (anchors[j], j))
        });
    }
    // Tags: the pid; `@host` when the logs come from several hosts; `#n` when one host's
    // pid ran several images.
    let hosts: BTreeSet<&str> = procs.iter().filter_map(|p| p.host.as_deref()).collect();
    let several_hosts = hosts.len() > 1;
    let mut tags: Vec<String> = procs
        .iter()
        .map(|p| match (&p.host, several_hosts) {
            (Some(h), true) => format!("{}@{h}", p.pid),
            (None, true) => format!("{}@?", p.pid),
            _ => p.pid.to_string(),
        })
        .collect();
    let mut same_tag: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, t) in tags.iter().enumerate() {
        same_tag.entry(t.as_str()).or_default().push(i);
    }
    let numbered: Vec<(usize, usize)> = same_tag
        .values()
        .filter(|l| l.len() > 1)
        .flat_map(|l| {
            let mut l = l.clone();
            l.sort_by_key(|&i| (anchors[i], i));
            l.into_iter().enumerate().map(|(n, i)| (i, n + 1))
        })
        .collect();
    for (i, n) in numbered {
        tags[i] = format!("{}#{n}", tags[i]);
    }
    for (p, t) in procs.iter_mut().zip(tags) {
        p.tag = t;
        p.files.sort();
    }
    (procs, out, replaced_by)
}

/// Holes in each process's `seq`: from 1 for a process with a `start`, from its first
/// record otherwise (a log that lost its beginning, or an older version's fork child).
fn find_gaps(recs: &[Rec], procs: &[Process]) -> Vec<Gap> {
    let mut seqs: Vec<Vec<u64>> = vec![Vec::new(); procs.len()];
    for r in recs {
        seqs[r.proc_idx].push(r.seq);
    }
    let mut gaps = Vec::new();
    for (i, (p, s)) in procs.iter().zip(seqs.iter_mut()).enumerate() {
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
                    process: i,
                    pid: p.pid,
                    from: expect,
                    to: q - 1,
                });
            }
            expect = expect.max(q + 1);
        }
    }
    gaps.sort_by_key(|g| (g.pid, g.process, g.from));
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
    /// Process → the processes it ended by beginning with their pid on their host.
    replaces: Vec<Vec<usize>>,
    /// Processes whose first record has been seen.
    begun: Vec<bool>,
    keys: BTreeMap<String, KeyState>,
    violations: Vec<Violation>,
    errors: Vec<ShimError>,
    /// (rule, process, key_fp) of every log violation, and the process for
    /// `free.imported` (the shim's record of it names no key).
    logged: HashSet<(String, usize, Option<String>)>,
    logged_free: HashSet<usize>,
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
/// `off`) on the same host (a directory of that name on another host is another
/// directory), and no process said its ledger was unusable.
fn job_shared_a_ledger(recs: &[Rec], procs: &[Process]) -> bool {
    if recs
        .iter()
        .any(|r| matches!(&r.body, Body::Error { message } if message.contains("ledger")))
    {
        return false;
    }
    let Some(first) = procs.first() else {
        return false;
    };
    procs.iter().all(|p| {
        p.has_start
            && p.ledger.as_deref().is_some_and(|l| l != "off")
            && p.ledger == first.ledger
            && p.host == first.host
    })
}

fn pids_text(p: &[i64]) -> String {
    let v: Vec<String> = p.iter().map(i64::to_string).collect();
    format!("[{}]", v.join(", "))
}

impl<'a> Sweep<'a> {
    fn new(recs: &[Rec], procs: &'a [Process], replaced_by: Vec<Option<usize>>) -> Self {
        let mut logged = HashSet::new();
        let mut logged_free = HashSet::new();
        for r in recs {
            if let Body::Violation(v) = &r.body {
                if v.rule == FREE_IMPORTED {
                    logged_free.insert(r.proc_idx);
                }
                logged.insert((v.rule.clone(), r.proc_idx, v.key_fp.clone()));
            }
        }
        Sweep {
            procs,
            // The bare tgid its start record names, until the program's own call says.
            ps: procs
                .iter()
                .map(|p| ProcState {
                    bare_tgid: p.bare_tgid,
                    ..ProcState::default()
                })
                .collect(),
            begun: vec![false; procs.len()],
            replaces: {
                let mut r = vec![Vec::new(); procs.len()];
                for (i, by) in replaced_by.into_iter().enumerate() {
                    if let Some(j) = by {
                        r[j].push(i);
                    }
                }
                r
            },
            keys: BTreeMap::new(),
            violations: Vec::new(),
            errors: Vec::new(),
            logged,
            logged_free,
            shared_ledger: job_shared_a_ledger(recs, procs),
        }
    }

    fn record(&mut self, r: &Rec) {
        // A pid's earlier process has ended once the one that replaced it shows up.
        if !self.begun[r.proc_idx] {
            self.begun[r.proc_idx] = true;
            for &i in &self.replaces[r.proc_idx] {
                self.ps[i].ended = true;
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
                process: r.proc_idx,
                pid: r.pid,
                message: message.clone(),
            }),
            Body::Start(_) | Body::Other => {}
        }
    }

    fn event(r: &Rec, c: &Call, detail: Detail) -> Event {
        Event {
            ts: r.ts.clone(),
            ts_us: r.ts_us,
            process: r.proc_idx,
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
                    let default = acl_ipc_guard::rules::Rule::from_id(rule)
                        .map_or("warning", |r| r.default_severity().as_str());
                    (0, default.to_owned())
                });
            if *n <= written {
                continue;
            }
            self.violations.push(Violation {
                rule: rule.clone(),
                severity,
                process: r.proc_idx,
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
            process: r.proc_idx,
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
            process: v.process,
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
            self.logged_free.contains(&r.proc_idx)
        } else {
            self.logged
                .contains(&(rule.to_owned(), r.proc_idx, fp.map(str::to_owned)))
        };
        if dup {
            return;
        }
        let v = Violation {
            rule: rule.to_owned(),
            severity: "error".to_owned(),
            process: r.proc_idx,
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
                        self.procs[me].tag,
                        self.procs[ex.proc_idx].tag,
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
                            self.procs[me].tag,
                            self.procs[ex.proc_idx].tag,
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
                let open: Vec<&str> = key
                    .importers
                    .iter()
                    .filter(|(&j, &refs)| refs > 0 && j != me && !self.ps[j].ended)
                    .map(|(&j, _)| self.procs[j].tag.as_str())
                    .collect();
                if !open.is_empty() {
                    let msg = format!(
                        "the exporter (pid {}) closes key {fp} while importing process(es) [{}] are alive and have not closed it; importers must close first",
                        self.procs[me].tag,
                        open.join(", ")
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
                self.procs[me].tag
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
