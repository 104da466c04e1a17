//! The sweep through the merged records: each key's timeline, and the cross-process rules
//! judged again from the records alone (a job that ran without a shared ledger is still
//! judged; a violation the logs already hold is not repeated).

use super::fasthash::FastMap;
use super::model::{pids_text, Detail, End, Event, Process, ShimError, Source, Violation};
use super::parse::{Body, Call, Fp, LogViolation, Rec};
use super::spill;
use acl_ipc_guard::rules::{exporter_close_rule, import_rules, ImportFacts, Rule};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

// The rule ids, from the shim's rule table.
pub const CLOSE_ORDER: &str = Rule::CloseExporterBeforeImporters.id();
pub const SOURCE_GONE: &str = Rule::ImportSourceGone.id();
pub const NOT_WHITELISTED: &str = Rule::ImportNotWhitelisted.id();
pub const FREE_IMPORTED: &str = Rule::FreeImported.id();

/// What the sweep found.
pub struct Judged {
    /// Fingerprint → its events in time order.
    pub keys: BTreeMap<String, Vec<Event>>,
    /// From the logs and from the re-check; by rule, then time.
    pub violations: Vec<Violation>,
    pub errors: Vec<ShimError>,
}

/// Sweeps `recs` (in time order, each with its process) once.
pub fn recheck(recs: &[Rec], processes: &[Process], replaced_by: Vec<Option<usize>>) -> Judged {
    let mut sweep = Sweep::new(recs, processes, replaced_by);
    for r in recs {
        sweep.record(r);
    }
    sweep.into_parts()
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
    /// (importer, address) of each successful import: forgotten with the key when it is
    /// written out (streaming).
    import_addrs: Vec<(usize, u64)>,
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
    /// Addresses this process got from a successful import, and of which key (ordered:
    /// when the process ends, the keys it still holds may finish together, and the order
    /// they are written in must not change from run to run).
    /// (Fingerprints kept in place, as the keys' own: no `String` on the heap per import.)
    imported: BTreeMap<u64, Fp>,
    /// Keys this process exported, by the address their range starts at: a free is matched
    /// against the nearest export at or below its address, in logarithmic time. A set, since
    /// one buffer may be exported many times over (a new key each time).
    exports: BTreeMap<u64, BTreeSet<Fp>>,
    ended: bool,
    /// Violation records written, per rule, with their severity.
    written: HashMap<String, (u64, String)>,
}

pub struct Sweep<'a> {
    procs: &'a [Process],
    ps: Vec<ProcState>,
    /// Process → the processes it ended by beginning with their pid on their host.
    replaces: Vec<Vec<usize>>,
    /// Processes whose first record has been seen.
    begun: Vec<bool>,
    /// By fingerprint (sorted when the sweep ends).
    /// (A fingerprint kept in place: a new key's entry is made without a copy on the heap.)
    keys: FastMap<Fp, KeyState>,
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
    /// Streaming: for each fingerprint (by [`fp_hash`]), how many records that name it are
    /// still to come. A key none will name again whose memory is gone or whose exporter
    /// ended is finished: it moves to `finished`. `None`: every key stays to the end.
    pending: Option<Pending>,
    /// Streaming: per process, each address its `aclrtFree` records name, with the `seq`
    /// of the last of them (logs written without `ACL_IPC_GUARD_CALLS=all` have none), and
    /// the last `seq` swept.
    last_free: Vec<Frees>,
    swept: Vec<u64>,
    /// Finished keys, in the order they finished, for the caller to take.
    /// (The fingerprint as kept in place: a `String` each was an allocation per key, freed
    /// by the writer's thread.)
    pub finished: Vec<(Fp, Vec<Event>)>,
}

/// The hash a fingerprint is counted under (two fingerprints of one hash only make each
/// other's key wait longer).
pub fn fp_hash(fp: &str) -> u64 {
    // FNV-1a, then a final mix: cheap, and a collision costs nothing but a late key.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in fp.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 29)
}

/// Streaming: how many records that name each fingerprint (by [`fp_hash`]) are still to
/// come. The first reading counted them into a table on disk ([`spill::Table`]); a hash's
/// count comes into memory when the merge first meets a record naming it, and leaves when
/// it reaches 0 (the last such record): memory for the keys in flight, not for every key
/// of the job. Two fingerprints of one hash share a count, which only makes each other's
/// key wait longer.
pub struct Pending {
    table: Arc<spill::Table>,
    live: FastMap<u64, u32>,
}

impl Pending {
    pub fn new(table: spill::Table) -> Pending {
        Pending {
            table: Arc::new(table),
            live: FastMap::default(),
        }
    }

    /// The key a hash is counted under in the table (0 is counted under 1, as before).
    pub fn key(h: u64) -> u128 {
        u128::from(h.max(1))
    }

    /// The table, for another thread to look fingerprints up ahead ([`Pending::look_up`]).
    pub fn table(&self) -> Arc<spill::Table> {
        self.table.clone()
    }

    /// What fingerprint `fp` is counted in `table`, as [`Pending::count_down`] takes it.
    pub fn look_up(table: &spill::Table, fp: &str) -> Option<u64> {
        // A table that cannot be read keeps the key to the end (late, never cut short).
        table.get(Self::key(fp_hash(fp))).unwrap_or(Some(u64::MAX))
    }

    /// How many records naming hash `h` are still to come. Asked only of a hash a record
    /// already named (a key's own): one that reached 0 has left the map.
    fn get(&self, h: u64) -> u32 {
        self.live.get(&h.max(1)).copied().unwrap_or(0)
    }

    /// One record naming hash `h` less: the first brings its count from the table (or
    /// `counted`, the table's answer looked up ahead, when given).
    fn count_down(&mut self, h: u64, counted: Option<Option<u64>>) {
        let h = h.max(1);
        let n = match self.live.get_mut(&h) {
            Some(n) => n,
            None => {
                // A hash the first reading never counted (a file that changed since) stays
                // at 0; a table that cannot be read keeps the key to the end (late, never
                // cut short).
                let counted = counted
                    .unwrap_or_else(|| self.table.get(Self::key(h)).unwrap_or(Some(u64::MAX)));
                let Some(total) = counted else { return };
                self.live
                    .entry(h)
                    .or_insert(u32::try_from(total).unwrap_or(u32::MAX))
            }
        };
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.live.remove(&h);
        }
    }
}

/// Streaming: the addresses one process frees, each with the `seq` of its last free, in a
/// table of the whole job, under the process's own prefix (its file's number and its
/// number in that file). `None`: the process frees nothing the logs show.
pub type Frees = Option<(std::sync::Arc<spill::Table>, u64)>;

/// The prefix of process `local` of file `file` in the table of [`Frees`].
pub fn free_prefix(file: usize, local: u64) -> u64 {
    (file as u64) << 32 | (local & 0xffff_ffff)
}

/// The key of address `a` of the process of `prefix` in the table of [`Frees`].
pub fn free_key(prefix: u64, a: u64) -> u128 {
    u128::from(prefix) << 64 | u128::from(a)
}

/// The fingerprints a record names: first a call's `args.key_fp` or a violation's
/// `key_fp`, then a call's `out.key_fp` (the key the call creates): what the streaming
/// report counts.
pub fn named_fps(r: &Rec) -> [Option<&str>; 2] {
    match &r.body {
        Body::Call(c) => [c.key_fp.as_deref(), c.out_key_fp.as_deref()],
        Body::Violation(v) => [v.key_fp.as_deref(), None],
        _ => [None, None],
    }
}

/// The log's violations as the re-check looks them up (not to repeat one): (rule, process,
/// key) of each, and the processes that wrote a `free.imported` (its record names no key).
pub type Logged = (HashSet<(String, usize, Option<String>)>, HashSet<usize>);

/// The state of key `fp`, made when it is new (one lookup; `fp` is kept in place).
fn key_entry<'k>(keys: &'k mut FastMap<Fp, KeyState>, fp: &str) -> &'k mut KeyState {
    key_entry_with_room(keys, fp, 0)
}

/// The most events a new key's timeline is made with room for ([`key_entry_with_room`]).
const MOST_EVENTS_RESERVED: u64 = 16;

/// [`key_entry`], a new key's timeline made with room for `room` events: an export knows
/// how many records will name its key (the first reading counted them), about the
/// events the key will have. Growing the vector on the way instead (4, then 8: a key's
/// export, whitelist, import and two closes) moved its events once per key, a twelfth of
/// the sweep, and left room for three events unused.
fn key_entry_with_room<'k>(
    keys: &'k mut FastMap<Fp, KeyState>,
    fp: &str,
    room: u64,
) -> &'k mut KeyState {
    keys.entry(Fp::from(fp)).or_insert_with(|| KeyState {
        events: Vec::with_capacity(room.min(MOST_EVENTS_RESERVED) as usize),
        ..KeyState::default()
    })
}

/// The ledger rule whose re-check needs to know whether a process was alive, which the
/// logs cannot show for a killed process: with a shared ledger the shim's live verdict
/// stands. The other ledger rules are judged from the records alone either way.
const LIVENESS_RULES: [&str; 1] = ["close.exporter-before-importers"];

/// True when every process has a `start` record naming the same ledger directory (not
/// `off`) on the same host (a directory of that name on another host is another
/// directory), and no process said its ledger was unusable.
fn job_shared_a_ledger(recs: &[Rec], procs: &[Process]) -> bool {
    !recs.iter().any(is_ledger_error) && shared_ledger(procs)
}

/// A record of the shim saying its ledger was unusable.
pub fn is_ledger_error(r: &Rec) -> bool {
    matches!(&r.body, Body::Error { message } if message.contains("ledger"))
}

/// [`job_shared_a_ledger`] when no process said its ledger was unusable.
pub fn shared_ledger(procs: &[Process]) -> bool {
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
        let shared = job_shared_a_ledger(recs, procs);
        Self::with(procs, replaced_by, (logged, logged_free), shared, None)
    }

    /// A sweep given what the whole logs say (the streaming report reads them twice):
    /// the log's violations, whether the job shared a working ledger, and, to write keys
    /// out as they finish, how many records name each fingerprint.
    pub fn with(
        procs: &'a [Process],
        replaced_by: Vec<Option<usize>>,
        (logged, logged_free): Logged,
        shared_ledger: bool,
        pending: Option<Pending>,
    ) -> Self {
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
            keys: FastMap::default(),
            violations: Vec::new(),
            errors: Vec::new(),
            logged,
            logged_free,
            shared_ledger,
            pending,
            last_free: Vec::new(),
            swept: vec![0; procs.len()],
            finished: Vec::new(),
        }
    }

    /// Streaming: each process's freed addresses with the `seq` of the last free of each,
    /// so that a key waits for a free (of its memory, or of an address imported from it)
    /// only when one is still to come.
    pub fn set_last_free(&mut self, last_free: Vec<Frees>) {
        self.last_free = last_free;
    }

    /// Streaming: whether process `p` may still free an address in `from..=to`.
    fn may_free(&self, p: usize, from: u64, to: u64) -> bool {
        if self.ps[p].ended {
            return false;
        }
        let Some(frees) = self.last_free.get(p) else {
            return true;
        };
        let Some((table, prefix)) = frees else {
            return false;
        };
        let swept = self.swept[p];
        table.any_in(free_key(*prefix, from), free_key(*prefix, to), |seq| {
            seq > swept
        })
    }

    /// What is left when the logs end: the keys not finished (by fingerprint), the
    /// violations by rule, then time, and the shim's errors.
    pub fn into_parts(self) -> Judged {
        let mut violations = self.violations;
        violations.sort_by(|a, b| {
            (&a.rule, a.ts_us, a.pid, a.process, a.seq, a.source)
                .cmp(&(&b.rule, b.ts_us, b.pid, b.process, b.seq, b.source))
        });
        Judged {
            keys: self
                .keys
                .into_iter()
                .map(|(fp, k)| (fp.to_string(), k.events))
                .collect(),
            violations,
            errors: self.errors,
        }
    }

    /// Streaming: one record fewer to come for each key `r` names; keys that may now be
    /// finished are looked at.
    fn count_down(&mut self, r: &Rec) {
        let Some(pending) = self.pending.as_mut() else {
            return;
        };
        let named = named_fps(r);
        // The parser thread may have looked the created key up already.
        let counted = match &r.body {
            Body::Call(c) => c.out_fp_count,
            _ => None,
        };
        // Each fingerprint hashed once, for its count and for the look at its key.
        let mut hashes = [0u64; 2];
        for (i, fp) in named.into_iter().enumerate() {
            if let Some(fp) = fp {
                hashes[i] = fp_hash(fp);
                pending.count_down(hashes[i], if i == 1 { counted } else { None });
            }
        }
        for (fp, h) in named.into_iter().zip(hashes) {
            if let Some(fp) = fp {
                self.maybe_finish_hashed(fp, h);
            }
        }
    }

    /// Streaming: process `p` has ended; the keys it exported or imported may be finished.
    fn ended(&mut self, p: usize) {
        self.ps[p].ended = true;
        if self.pending.is_none() {
            return;
        }
        let mut fps: Vec<Fp> = self.ps[p].exports.values().flatten().cloned().collect();
        fps.extend(self.ps[p].imported.values().cloned());
        for fp in fps {
            self.maybe_finish(&fp);
        }
    }

    /// Streaming: process `p` has freed `a` for the last time; the keys waiting for that
    /// may be finished.
    fn last_free_of(&mut self, p: usize, a: u64) {
        let mut fps: Vec<Fp> = self.ps[p].imported.get(&a).cloned().into_iter().collect();
        if let Some((_, near)) = self.ps[p].exports.range(..=a).next_back() {
            fps.extend(near.iter().cloned());
        }
        for fp in fps {
            self.maybe_finish(&fp);
        }
    }

    /// Streaming: writes key `fp` out (to `finished`) when no record to come names it and
    /// no free of its memory can come (freed, or its exporter ended).
    fn maybe_finish(&mut self, fp: &str) {
        self.maybe_finish_hashed(fp, fp_hash(fp));
    }

    /// [`Sweep::maybe_finish`] of `fp`, whose [`fp_hash`] is `h`.
    fn maybe_finish_hashed(&mut self, fp: &str, h: u64) {
        let Some(pending) = self.pending.as_ref() else {
            return;
        };
        // The count first: most records leave their key's above 0, and it is a number's
        // look-up, not a string's.
        if pending.get(h) > 0 {
            return;
        }
        let Some(key) = self.keys.get(fp) else {
            return;
        };
        if let Some(ex) = &key.export {
            if let (Some(dev), Some(size), false) = (ex.dev, ex.size, key.freed) {
                let end = dev.saturating_add(size.saturating_sub(1));
                if size > 0 && self.may_free(ex.proc_idx, dev, end) {
                    return;
                }
            }
        }
        // A free of an address imported from it would still be judged against it.
        if key.import_addrs.iter().any(|&(p, a)| {
            self.ps[p]
                .imported
                .get(&a)
                .is_some_and(|f| f.as_str() == fp)
                && self.may_free(p, a, a)
        }) {
            return;
        }
        let Some((fp, key)) = self.keys.remove_entry(fp) else {
            return;
        };
        if let Some(ex) = &key.export {
            if let Some(dev) = ex.dev {
                let exports = &mut self.ps[ex.proc_idx].exports;
                if let Some(at) = exports.get_mut(&dev) {
                    at.remove(fp.as_str());
                    if at.is_empty() {
                        exports.remove(&dev);
                    }
                }
            }
        }
        for &(p, a) in &key.import_addrs {
            let imported = &mut self.ps[p].imported;
            if imported.get(&a).is_some_and(|f| f.as_str() == fp.as_str()) {
                imported.remove(&a);
            }
        }
        self.finished.push((fp, key.events));
    }

    pub fn record(&mut self, r: &Rec) {
        // A pid's earlier process has ended once the one that replaced it shows up.
        if !self.begun[r.proc_idx] {
            self.begun[r.proc_idx] = true;
            for i in self.replaces[r.proc_idx].clone() {
                self.ended(i);
            }
        }
        match &r.body {
            Body::Call(c) => self.call(r, c),
            Body::Violation(v) => self.log_violation(r, v),
            Body::Summary { violations, .. } => {
                self.unwritten_violations(r, violations);
                self.ended(r.proc_idx);
            }
            Body::Error { message } => self.errors.push(ShimError {
                ts: r.ts.to_string(),
                process: r.proc_idx,
                pid: r.pid,
                message: message.clone(),
            }),
            Body::Start(_) | Body::Other => {}
        }
        let p = r.proc_idx;
        self.swept[p] = self.swept[p].max(r.seq);
        if let (Some(_), Body::Call(c)) = (&self.pending, &r.body) {
            if let Some(a) = c.dev_ptr.filter(|_| c.func == "aclrtFree") {
                let last = match self.last_free.get(p) {
                    // Unreadable: no last free is known; the key waits (`may_free`).
                    Some(Some((table, prefix))) => table.get(free_key(*prefix, a)).ok().flatten(),
                    _ => None,
                };
                if last == Some(r.seq) {
                    self.last_free_of(p, a);
                }
            }
        }
        self.count_down(r);
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
        key_entry(&mut self.keys, fp).events.push(ev);
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
                ts: r.ts.to_string(),
                ts_us: r.ts_us,
                seq: r.seq,
                message: format!(
                    "{} more {rule} violation(s) counted in the summary but not written (ACL_IPC_GUARD_REPEAT_LIMIT)",
                    n - written
                ),
                action: None,
                count: n - written,
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
            ts: r.ts.to_string(),
            ts_us: r.ts_us,
            seq: r.seq,
            message: lv.message.clone(),
            action: lv.action.clone(),
            count: 1,
        };
        if let Some(fp) = &v.key_fp {
            let ev = Self::violation_event(&v);
            self.push_event(fp, ev);
        }
        self.violations.push(v);
    }

    fn violation_event(v: &Violation) -> Event {
        Event {
            ts: v.ts.as_str().into(),
            ts_us: v.ts_us,
            process: v.process,
            pid: v.pid,
            seq: v.seq,
            func: v.func.clone().into(),
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
            func: c.func.to_string(),
            key_fp: fp.map(str::to_owned),
            source: Source::Recheck,
            ts: r.ts.to_string(),
            ts_us: r.ts_us,
            seq: r.seq,
            message,
            action: None,
            count: 1,
        };
        if let Some(fp) = fp {
            let ev = Self::violation_event(&v);
            self.push_event(fp, ev);
        }
        self.violations.push(v);
    }

    fn call(&mut self, r: &Rec, c: &Call) {
        match &*c.func {
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
        // Streaming: the records that name the key, counted by the first reading.
        let room = c.out_fp_count.flatten().unwrap_or(0);
        let key = key_entry_with_room(&mut self.keys, fp, room);
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
            if !at.contains(fp) {
                at.insert(Fp::from(fp));
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
        let key = key_entry(&mut self.keys, fp);
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
        let key = key_entry(&mut self.keys, fp);
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
            // The facts the shim gets from the ledger, rebuilt from the records; the verdict
            // is the shim's own (`rules::import_rules`). The logs carry no start times
            // comparable with whitelisting times, so the start-time rule is left to the shim.
            let tgid = self.ps[me].bare_tgid.unwrap_or(r.pid);
            let exited = self.ps[ex.proc_idx].ended;
            let facts = ImportFacts {
                exporter_pid: self.procs[ex.proc_idx].pid as i32,
                exporter_alive: !exited,
                whitelist_mode: ex.flags == Some(0),
                exporter_closed: key.closed,
                memory_freed: key.freed,
                whitelisted_at_ns: key.whitelist.contains(&tgid).then_some(0),
                // The report's message is its own; the verdict does not depend on it.
                own_pid_listed: false,
            };
            match import_rules(&facts, 0) {
                Some(Rule::ImportSourceGone) => {
                    let mut gone = Vec::new();
                    if key.closed {
                        gone.push("closed it".to_owned());
                    }
                    if key.freed {
                        gone.push("freed its memory".to_owned());
                    }
                    if exited {
                        gone.push(match &self.procs[ex.proc_idx].end {
                            End::Exited(ts) => format!("exited (summary at {ts})"),
                            _ => "was replaced by another program with its pid".to_owned(),
                        });
                    }
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
                Some(Rule::ImportNotWhitelisted) => {
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
                _ => {}
            }
        }
        for (rule, msg) in findings {
            self.flag(r, c, rule, Some(fp), msg);
        }
        if let Some(a) = got {
            let key = self.keys.get_mut(fp).expect("key entry exists");
            *key.importers.entry(me).or_default() += 1;
            key.ever_imported.insert(me);
            if self.pending.is_some() {
                key.import_addrs.push((me, a));
            }
            self.ps[me].imported.insert(a, Fp::from(fp));
        }
    }

    fn close(&mut self, r: &Rec, c: &Call) {
        let Some(fp) = c.key_fp.as_deref() else {
            return;
        };
        let me = r.proc_idx;
        let key = key_entry(&mut self.keys, fp);
        // Told apart by number below (matching the words again was a string compare per close).
        let (role, which) = match &key.export {
            Some(ex) if ex.proc_idx == me => ("exporter", 0),
            _ if key.ever_imported.contains(&me) => ("importer", 1),
            Some(_) => ("neither exporter nor importer", 2),
            None => ("unknown (export not in the logs)", 2),
        };
        let ev = Self::event(r, c, Detail::Close { role });
        key.events.push(ev);
        if !c.ok() {
            return;
        }
        match which {
            0 => {
                key.closed = true;
                let open: Vec<&str> = key
                    .importers
                    .iter()
                    .filter(|(&j, &refs)| refs > 0 && j != me && !self.ps[j].ended)
                    .map(|(&j, _)| self.procs[j].tag.as_str())
                    .collect();
                if exporter_close_rule(open.len()).is_some() {
                    let msg = format!(
                        "the exporter (pid {}) closes key {fp} while importing process(es) [{}] are alive and have not closed it; importers must close first",
                        self.procs[me].tag,
                        open.join(", ")
                    );
                    self.flag(r, c, CLOSE_ORDER, Some(fp), msg);
                }
            }
            1 => {
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
        let mut freed = Vec::new();
        for fp in near.clone() {
            let Some(key) = self.keys.get_mut(fp.as_str()) else {
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
                freed.push(fp);
            }
        }
        // Keys whose memory is gone (or that another export took over) need no more looking at.
        let keys = &self.keys;
        if let Some(at) = self.ps[me].exports.get_mut(&start) {
            at.retain(|fp| {
                keys.get(fp.as_str())
                    .and_then(|k| k.export.as_ref().map(|ex| (k, ex)))
                    .is_some_and(|(k, ex)| ex.proc_idx == me && !k.freed)
            });
            if at.is_empty() {
                self.ps[me].exports.remove(&start);
            }
        }
        for fp in freed {
            self.maybe_finish(&fp);
        }
    }
}

#[cfg(test)]
mod pending_tests {
    use super::{spill, Pending};

    #[test]
    fn counts_come_from_the_table_and_leave_at_zero() {
        let mut b = spill::Builder::new(spill::sum);
        // 0 and 1 are one hash; 7 is counted twice over; 9 is never counted.
        for (h, n) in [(0u64, 2u64), (1, 1), (7 << 40, 3), (7 << 40, 1), (5, 1)] {
            b.add(Pending::key(h), n);
        }
        let table = spill::Table::merge(b.into_runs().unwrap(), spill::sum).unwrap();
        let mut p = Pending::new(table);
        assert_eq!(p.get(7 << 40), 0, "not in memory before a record names it");
        p.count_down(7 << 40, None);
        assert_eq!(p.get(7 << 40), 3);
        p.count_down(0, None);
        assert_eq!((p.get(0), p.get(1)), (2, 2));
        p.count_down(9, None);
        assert_eq!(p.get(9), 0);
        for _ in 0..3 {
            p.count_down(7 << 40, None);
        }
        assert_eq!(p.get(7 << 40), 0);
        p.count_down(1, None);
        p.count_down(1, None);
        p.count_down(5, None);
        assert!(p.live.is_empty(), "a count that reached 0 leaves memory");
    }

    #[test]
    fn a_count_looked_up_ahead_is_the_tables_answer_and_taken_only_for_a_new_hash() {
        let mut b = spill::Builder::new(spill::sum);
        for (h, n) in [(3u64, 2u64), (5, 4)] {
            b.add(Pending::key(h), n);
        }
        let table = spill::Table::merge(b.into_runs().unwrap(), spill::sum).unwrap();
        let mut p = Pending::new(table);
        let t = p.table();
        // Looked up by fingerprint, as the parser thread does: what the table holds.
        let fp = "fp:00000000000000aa";
        assert_eq!(
            Pending::look_up(&t, fp),
            t.get(Pending::key(super::fp_hash(fp))).unwrap()
        );
        // Given ahead, the count stands in for the table's (here on purpose a different one).
        p.count_down(3, Some(Some(7)));
        assert_eq!(p.get(3), 6);
        // A hash in memory already keeps its count.
        p.count_down(3, Some(Some(100)));
        assert_eq!(p.get(3), 5);
        // "Counted none" leaves the hash out, as the table's `None` does.
        p.count_down(5, Some(None));
        assert_eq!(p.get(5), 0);
        p.count_down(5, None);
        assert_eq!(p.get(5), 3);
    }
}
