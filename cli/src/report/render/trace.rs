//! `report --trace FILE`: the job as Chrome trace-event JSON (the object form, with
//! `traceEvents`), which Perfetto, chrome://tracing and MindStudio Insight open.
//!
//! What is drawn:
//! - a process per process of the report (host + pid + start): its trace pid is its index
//!   plus 1, since real pids collide across hosts and are reused; `process_name` metadata
//!   names it (program, pid with the report's tag, host) and carries the real pid, host,
//!   program and tag in its args; a thread per `tid` of its records, named by `thread_name`;
//! - a complete slice (`X`) per `call` record, named by the function, `dur` its `dur_ns`;
//! - a thread-scoped instant (`i`) per violation, from the logs or the re-check, named by
//!   the rule, with `rule`, `severity`, `message`, `key_fp` in its args; a process-scoped
//!   instant per `error` record of the shim;
//! - flows (`s` → `f`, one id per arrow, the finish bound to its enclosing slice) from each
//!   key's export to each import and close of that key that follows it.
//!
//! Times are microseconds (with three decimals: nanoseconds) since `otherData.time_origin`,
//! the earliest thing drawn rounded down to the microsecond. A record's `ts` is written
//! when the call has returned, so a call's slice ends there and begins `dur_ns` earlier.
//! Slices on one thread never overlap (a record's `ts` has microsecond resolution, so two
//! quick calls could seem to): a slice that would begin before the previous one ends is
//! moved later, keeping its length. A call shorter than [`MIN_WIDTH_NS`] (a blocked call
//! never reached the runtime: `dur_ns` 0) is drawn that wide, so that it can be seen and
//! clicked and a flow can bind to it; its args keep the measured `dur_ns`. Flow events sit
//! in the middle of their slices.

use super::super::model::{CallRecord, Process, Report, Source};
use super::super::parse::parse_ts;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The narrowest slice drawn, in nanoseconds.
pub const MIN_WIDTH_NS: i128 = 100;

/// How many events of each kind a trace has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceCounts {
    pub processes: usize,
    pub threads: usize,
    pub slices: usize,
    pub instants: usize,
    pub flows: usize,
}

/// The file `--trace` names, created before the work is done (so a path that cannot be
/// written costs nothing), and written once the report is ready.
pub struct TraceFile {
    path: PathBuf,
    file: File,
}

impl TraceFile {
    pub fn create(path: &Path) -> Result<Self, String> {
        File::create(path)
            .map(|file| TraceFile {
                path: path.to_owned(),
                file,
            })
            .map_err(|e| format!("cannot create trace file {}: {e}", path.display()))
    }

    /// Writes the trace; on failure the partial file is removed.
    pub fn write(self, report: &Report) -> Result<TraceCounts, String> {
        let mut w = BufWriter::new(self.file);
        match write_trace(report, &mut w).and_then(|c| w.flush().map(|()| c)) {
            Ok(c) => Ok(c),
            Err(e) => {
                drop(w);
                let _ = std::fs::remove_file(&self.path);
                Err(format!(
                    "cannot write trace file {}: {e}",
                    self.path.display()
                ))
            }
        }
    }
}

/// Where a call's slice is drawn: its trace pid and tid, and its span in nanoseconds since
/// the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    pid: usize,
    tid: i64,
    start_ns: i128,
    width_ns: i128,
}

impl Slot {
    fn mid(&self) -> i128 {
        self.start_ns + self.width_ns / 2
    }
}

/// The trace pid of process `i`.
fn trace_pid(i: usize) -> usize {
    i + 1
}

/// Each call's slot (same order as `calls`): on each thread in `seq` order, ending at the
/// record's time, at least [`MIN_WIDTH_NS`] wide, never overlapping the one before.
fn layout(calls: &[CallRecord]) -> Vec<Slot> {
    let mut order: Vec<usize> = (0..calls.len()).collect();
    order.sort_by_key(|&i| (calls[i].process, calls[i].tid, calls[i].seq));
    let mut slots = vec![
        Slot {
            pid: 0,
            tid: 0,
            start_ns: 0,
            width_ns: 0
        };
        calls.len()
    ];
    let mut prev: Option<((usize, i64), i128)> = None;
    for i in order {
        let c = &calls[i];
        let thread = (c.process, c.tid);
        let width = i128::from(c.dur_ns).max(MIN_WIDTH_NS);
        let mut start = i128::from(c.ts_us) * 1000 - width;
        if let Some((t, end)) = prev {
            if t == thread {
                start = start.max(end);
            }
        }
        slots[i] = Slot {
            pid: trace_pid(c.process),
            tid: c.tid,
            start_ns: start,
            width_ns: width,
        };
        prev = Some((thread, start + width));
    }
    slots
}

/// A time in the trace's unit: microseconds since `origin`, exact to the nanosecond (a
/// whole number when it is one).
fn micros(ns: i128, origin: i128) -> Value {
    let rel = ns - origin;
    if rel % 1000 == 0 {
        Value::from((rel / 1000) as i64)
    } else {
        // Division is correctly rounded and the number printed is the shortest that reads
        // back the same: 1234.567 stays 1234.567.
        Value::from(rel as f64 / 1000.0)
    }
}

fn process_name(p: &Process) -> String {
    let exe = p
        .exe
        .as_deref()
        .map(|e| e.rsplit('/').next().unwrap_or(e))
        .filter(|e| !e.is_empty())
        .unwrap_or("?");
    let mut name = format!("{exe} pid {}", p.tag);
    if let Some(host) = &p.host {
        if !p.tag.contains('@') {
            name.push_str(&format!(" on {host}"));
        }
    }
    name
}

/// One event per line, in a JSON object: `{"traceEvents":[…], "displayTimeUnit", "otherData"}`.
struct Out<'a> {
    w: &'a mut dyn Write,
    first: bool,
}

impl Out<'_> {
    fn event(&mut self, e: &Value) -> io::Result<()> {
        self.w.write_all(if self.first { b"\n" } else { b",\n" })?;
        self.first = false;
        serde_json::to_writer(&mut *self.w, e).map_err(io::Error::from)
    }
}

/// Writes `report` (analysed with its trace records) as a trace.
pub fn write_trace(report: &Report, w: &mut dyn Write) -> io::Result<TraceCounts> {
    let calls = &report.trace.calls;
    let slots = layout(calls);
    let slot_of: HashMap<(usize, u64), usize> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.process, c.seq), i))
        .collect();
    let procs = &report.processes;
    let real_pid = |i: usize| procs.get(i).map_or(0, |p| p.pid);

    // Violations: on the thread that wrote the record (a re-check one: in the middle of the
    // call it judged).
    let instants: Vec<(usize, i64, i128)> = report
        .violations
        .iter()
        .map(|v| {
            let call = slot_of.get(&(v.process, v.seq)).map(|&i| slots[i]);
            match (v.source, call) {
                (Source::Recheck, Some(s)) => (s.pid, s.tid, s.mid()),
                _ => {
                    let tid = report
                        .trace
                        .violation_tids
                        .get(&(v.process, v.seq))
                        .copied()
                        .unwrap_or(v.pid);
                    (trace_pid(v.process), tid, i128::from(v.ts_us) * 1000)
                }
            }
        })
        .collect();
    let errors: Vec<Option<i128>> = report
        .errors
        .iter()
        .map(|e| parse_ts(&e.ts).map(|us| i128::from(us) * 1000))
        .collect();

    let earliest = slots
        .iter()
        .map(|s| s.start_ns)
        .chain(instants.iter().map(|i| i.2))
        .chain(errors.iter().flatten().copied())
        .min()
        .unwrap_or(0);
    let origin = earliest - earliest.rem_euclid(1000);
    let origin_us = i64::try_from(origin / 1000).unwrap_or(0);

    let mut counts = TraceCounts {
        processes: procs.len(),
        ..TraceCounts::default()
    };
    w.write_all(b"{\"traceEvents\":[")?;
    let mut out = Out { w, first: true };

    // Names: processes, then their threads.
    let threads: BTreeSet<(usize, i64)> = calls
        .iter()
        .map(|c| (c.process, c.tid))
        .chain(instants.iter().map(|&(pid, tid, _)| (pid - 1, tid)))
        .collect();
    for (i, p) in procs.iter().enumerate() {
        let pid = trace_pid(i);
        out.event(&json!({
            "ph": "M", "name": "process_name", "pid": pid, "tid": p.pid, "ts": 0,
            "args": {
                "name": process_name(p),
                "pid": p.pid,
                "host": p.host,
                "exe": p.exe,
                "tag": p.tag,
                "start": p.start_ts,
            },
        }))?;
        out.event(&json!({
            "ph": "M", "name": "process_sort_index", "pid": pid, "tid": p.pid, "ts": 0,
            "args": {"sort_index": i},
        }))?;
    }
    for &(process, tid) in &threads {
        let main = procs.get(process).is_some_and(|p| p.pid == tid);
        let name = if main {
            format!("tid {tid} (main)")
        } else {
            format!("tid {tid}")
        };
        out.event(&json!({
            "ph": "M", "name": "thread_name", "pid": trace_pid(process), "tid": tid, "ts": 0,
            "args": {"name": name},
        }))?;
        counts.threads += 1;
    }

    // The calls.
    for (c, s) in calls.iter().zip(&slots) {
        let cat = if c.func.starts_with("aclrtIpcMem") {
            "ipc"
        } else if c.func.starts_with("aclrtMalloc") || c.func == "aclrtFree" {
            "memory"
        } else {
            "device"
        };
        let mut e = json!({
            "ph": "X", "name": c.func, "cat": cat,
            "pid": s.pid, "tid": s.tid,
            "ts": micros(s.start_ns, origin), "dur": micros(s.width_ns, 0),
            "args": {
                "seq": c.seq,
                "ret": c.ret,
                "status": c.status,
                "dur_ns": c.dur_ns,
                "key_fp": c.key_fp,
                "pid": real_pid(c.process),
            },
        });
        if c.status != "ok" {
            // chrome://tracing's reserved colour for what went wrong.
            e["cname"] = "bad".into();
        }
        out.event(&e)?;
        counts.slices += 1;
    }

    // The violations and the shim's own trouble.
    for (v, &(pid, tid, ts)) in report.violations.iter().zip(&instants) {
        out.event(&json!({
            "ph": "i", "s": "t", "name": v.rule, "cat": "violation",
            "pid": pid, "tid": tid, "ts": micros(ts, origin),
            "cname": if v.severity == "error" { "terrible" } else { "bad" },
            "args": {
                "rule": v.rule,
                "severity": v.severity,
                "message": v.message,
                "key_fp": v.key_fp,
                "fn": v.func,
                "source": v.source.as_str(),
                "action": v.action,
                "seq": v.seq,
                "pid": v.pid,
            },
        }))?;
        counts.instants += 1;
    }
    for (e, ts) in report.errors.iter().zip(&errors) {
        out.event(&json!({
            "ph": "i", "s": "p", "name": "shim error", "cat": "error",
            "pid": trace_pid(e.process), "tid": e.pid,
            "ts": micros(ts.unwrap_or(origin), origin),
            "args": {"message": e.message, "pid": e.pid},
        }))?;
        counts.instants += 1;
    }

    // Each key's export to each import and close after it: one flow id per arrow.
    let mut id: u64 = 0;
    for (fp, events) in &report.keys {
        let mut export: Option<Slot> = None;
        for e in events {
            let Some(&i) = slot_of.get(&(e.process, e.seq)) else {
                continue;
            };
            match e.kind() {
                "export" if e.status == Some("ok") => export = Some(slots[i]),
                "import" | "close" => {
                    let Some(x) = export else { continue };
                    id += 1;
                    let to = slots[i];
                    out.event(&json!({
                        "ph": "s", "id": id, "cat": "key", "name": fp,
                        "pid": x.pid, "tid": x.tid, "ts": micros(x.mid(), origin),
                    }))?;
                    out.event(&json!({
                        "ph": "f", "bp": "e", "id": id, "cat": "key", "name": fp,
                        "pid": to.pid, "tid": to.tid, "ts": micros(to.mid(), origin),
                    }))?;
                    counts.flows += 1;
                }
                _ => {}
            }
        }
    }

    let mut origin_ts = Vec::new();
    acl_ipc_guard::record::format_ts(origin_us, &mut origin_ts);
    let other = json!({
        "generator": concat!("acl-ipc-guard report ", env!("CARGO_PKG_VERSION")),
        "time_origin": String::from_utf8_lossy(&origin_ts),
        "time_origin_us": origin_us,
        "time_unit": "microseconds since time_origin",
    });
    out.w
        .write_all(b"\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":")?;
    serde_json::to_writer(&mut *out.w, &other).map_err(io::Error::from)?;
    out.w.write_all(b"}\n")?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::super::super::model::Input;
    use super::super::super::{analyze_with, run};
    use super::*;
    use serde_json::Map;
    use std::collections::BTreeMap;

    const T0: i64 = 1_795_468_025_000_000; // 2026-11-23T21:07:05Z
    const FP: &str = "fp:00112233445566ff";
    const PID: i64 = 7; // both processes: one on node-a, one on node-b

    /// A job's log lines, as the shim writes them.
    struct Log {
        lines: Vec<String>,
        seq: u64,
        pid: i64,
    }

    impl Log {
        fn new(pid: i64, host: &str, at: i64) -> Self {
            let mut l = Log {
                lines: Vec::new(),
                seq: 0,
                pid,
            };
            l.rec(at, pid, "start", json!({"version": "0.1.0", "mode": "audit", "exe": "/opt/job/trainer", "ledger": "off", "host": host}));
            l
        }

        fn rec(&mut self, at: i64, tid: i64, event: &str, fields: Value) -> &mut Self {
            self.seq += 1;
            let mut ts = Vec::new();
            acl_ipc_guard::record::format_ts(T0 + at, &mut ts);
            let mut m = Map::new();
            m.insert("ts".into(), String::from_utf8(ts).unwrap().into());
            m.insert("seq".into(), self.seq.into());
            m.insert("pid".into(), self.pid.into());
            m.insert("tid".into(), tid.into());
            m.insert("event".into(), event.into());
            if let Value::Object(f) = fields {
                m.extend(f);
            }
            self.lines.push(Value::Object(m).to_string());
            self
        }

        /// A call ending at `at` µs after T0 that took `dur` ns.
        #[allow(clippy::too_many_arguments)]
        fn call(
            &mut self,
            at: i64,
            tid: i64,
            f: &str,
            args: Value,
            out: Value,
            dur: u64,
        ) -> &mut Self {
            self.rec(
                at,
                tid,
                "call",
                json!({"fn": f, "args": args, "out": out, "ret": 0, "forwarded": true, "dur_ns": dur}),
            )
        }

        fn input(&self, name: &str) -> Input {
            Input::text(name, &(self.lines.join("\n") + "\n"))
        }
    }

    /// node-a's pid 7 exports a key (two threads); node-b's pid 7 imports it, frees the
    /// imported address (the shim blocked it) and closes it after the exporter did.
    fn job() -> Vec<Input> {
        let mut a = Log::new(PID, "node-a", 0);
        a.call(
            100,
            7,
            "aclrtMalloc",
            json!({"size": 8192}),
            json!({"devPtr": "0x10000"}),
            300,
        )
        .call(
            1000,
            8,
            "aclrtMalloc",
            json!({"size": 64}),
            json!({"devPtr": "0x20000"}),
            400,
        )
        .call(
            1000,
            7,
            "aclrtIpcMemGetExportKey",
            json!({"devPtr": "0x10000", "size": 8192, "flags": 1}),
            json!({"key_fp": FP}),
            2000,
        )
        // Recorded 1 µs after the export but 1.5 µs long: drawn after it, not over it.
        .call(
            1001,
            7,
            "aclrtDeviceGetBareTgid",
            json!({}),
            json!({"pid": 7}),
            1500,
        )
        .call(
            5000,
            7,
            "aclrtIpcMemClose",
            json!({"key_fp": FP}),
            json!({}),
            700,
        );
        let mut b = Log::new(PID, "node-b", 10);
        b.call(
            3000,
            7,
            "aclrtIpcMemImportByKey",
            json!({"key_fp": FP, "flags": 0}),
            json!({"devPtr": "0x90000"}),
            1500,
        )
        .rec(6000, 7, "violation", json!({"rule": "free.imported", "severity": "error", "action": "blocked", "fn": "aclrtFree", "message": "an imported address"}))
        .rec(6001, 7, "call", json!({"fn": "aclrtFree", "args": {"devPtr": "0x90000"}, "out": {}, "ret": 100000, "forwarded": false, "dur_ns": 0}))
        .call(7000, 7, "aclrtIpcMemClose", json!({"key_fp": FP}), json!({}), 800);
        vec![a.input("a.json"), b.input("b.json")]
    }

    fn trace_of(inputs: &[Input]) -> (Report, Value) {
        let report = analyze_with(inputs, true);
        let mut out = Vec::new();
        let counts = write_trace(&report, &mut out).unwrap();
        let doc: Value = serde_json::from_slice(&out).expect("the trace is JSON");
        let events = doc["traceEvents"].as_array().unwrap();
        let n = |ph: &str| events.iter().filter(|e| e["ph"] == ph).count();
        assert_eq!(counts.slices, n("X"));
        assert_eq!(counts.instants, n("i"));
        assert_eq!(counts.flows, n("s"));
        (report, doc)
    }

    fn ns(v: &Value) -> i64 {
        (v.as_f64().unwrap() * 1000.0).round() as i64
    }

    #[test]
    fn the_trace_follows_the_trace_event_format() {
        let (report, doc) = trace_of(&job());
        let events = doc["traceEvents"].as_array().unwrap();
        for e in events {
            for field in ["ph", "pid", "tid", "ts", "name"] {
                assert!(!e[field].is_null(), "{field} in {e}");
            }
            assert!(e["ts"].as_f64().unwrap() >= 0.0, "{e}");
        }
        let of = |ph: &str| -> Vec<&Value> { events.iter().filter(|e| e["ph"] == ph).collect() };

        // A process per process: same real pid, two trace pids, named with host and program.
        let names: Vec<(i64, String, i64)> = of("M")
            .iter()
            .filter(|e| e["name"] == "process_name")
            .map(|e| {
                let a = &e["args"];
                (
                    e["pid"].as_i64().unwrap(),
                    a["name"].as_str().unwrap().to_owned(),
                    a["pid"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(report.processes.len(), 2);
        assert_eq!(
            names,
            [
                (1, format!("trainer pid {}", report.processes[0].tag), PID),
                (2, format!("trainer pid {}", report.processes[1].tag), PID),
            ]
        );
        assert!(
            names.iter().any(|n| n.1.ends_with("@node-a"))
                && names.iter().any(|n| n.1.ends_with("@node-b")),
            "{names:?}"
        );
        let threads: Vec<(i64, i64)> = of("M")
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| (e["pid"].as_i64().unwrap(), e["tid"].as_i64().unwrap()))
            .collect();
        let a = 1 + report
            .processes
            .iter()
            .position(|p| p.host.as_deref() == Some("node-a"))
            .unwrap() as i64;
        let b = 3 - a;
        assert_eq!(threads.len(), 3, "{threads:?}");
        assert!(
            threads.contains(&(a, 7)) && threads.contains(&(a, 8)) && threads.contains(&(b, 7))
        );

        // A slice per call, memory calls and the blocked one too.
        let slices = of("X");
        assert_eq!(slices.len(), 8);
        let slice = |pid: i64, name: &str| -> Vec<(i64, i64)> {
            slices
                .iter()
                .filter(|e| e["pid"] == pid && e["name"] == name)
                .map(|e| (ns(&e["ts"]), ns(&e["dur"])))
                .collect()
        };
        // The origin is the earliest slice's start (T0 + 99.7 µs) to the µs: T0 + 99 µs.
        assert_eq!(
            doc["otherData"]["time_origin"],
            "2026-11-23T21:07:05.000099Z"
        );
        assert_eq!(slice(a, "aclrtMalloc"), [(700, 300), (900_600, 400)]);
        // Ends at its record: 1000 µs, 2 µs long.
        assert_eq!(slice(a, "aclrtIpcMemGetExportKey"), [(899_000, 2000)]);
        // Would begin 1.5 µs before its record, inside the export: begins at its end.
        assert_eq!(slice(a, "aclrtDeviceGetBareTgid"), [(901_000, 1500)]);
        // Blocked, dur_ns 0: drawn MIN_WIDTH_NS wide, the measured 0 in its args.
        let free: Vec<&&Value> = slices.iter().filter(|e| e["name"] == "aclrtFree").collect();
        assert_eq!(free.len(), 1);
        assert_eq!(
            (ns(&free[0]["ts"]), ns(&free[0]["dur"])),
            (5_901_900, MIN_WIDTH_NS as i64)
        );
        assert_eq!(
            (
                &free[0]["args"]["dur_ns"],
                &free[0]["args"]["status"],
                &free[0]["cname"]
            ),
            (&json!(0), &json!("blocked"), &json!("bad"))
        );
        // Never overlapping on a thread.
        let mut by_thread: BTreeMap<(i64, i64), Vec<(i64, i64)>> = BTreeMap::new();
        for e in &slices {
            let (s, d) = (ns(&e["ts"]), ns(&e["dur"]));
            assert!(d >= 0, "{e}");
            by_thread
                .entry((e["pid"].as_i64().unwrap(), e["tid"].as_i64().unwrap()))
                .or_default()
                .push((s, s + d));
        }
        for spans in by_thread.values_mut() {
            spans.sort_unstable();
            assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "{spans:?}");
        }

        // An instant per violation: the shim's own (where it wrote it) and the re-check's
        // (in the middle of the exporter's close).
        let mut inst: Vec<(String, i64, i64, String)> = of("i")
            .iter()
            .map(|e| {
                assert_eq!(
                    (&e["s"], &e["cat"], &e["name"]),
                    (&json!("t"), &json!("violation"), &e["args"]["rule"])
                );
                (
                    e["name"].as_str().unwrap().to_owned(),
                    e["pid"].as_i64().unwrap(),
                    ns(&e["ts"]),
                    e["args"]["source"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        inst.sort();
        let close_a = slice(a, "aclrtIpcMemClose")[0];
        assert_eq!(
            inst,
            [
                (
                    "close.exporter-before-importers".to_owned(),
                    a,
                    close_a.0 + close_a.1 / 2,
                    "recheck".to_owned()
                ),
                ("free.imported".to_owned(), b, 5_901_000, "log".to_owned()),
            ]
        );
        assert_eq!(inst.len(), report.violations.len());

        // Flows: export → import, export → each close; one id per arrow, each start and
        // finish in the middle of its slice.
        let starts = of("s");
        let finishes = of("f");
        assert_eq!((starts.len(), finishes.len()), (3, 3));
        let export = slice(a, "aclrtIpcMemGetExportKey")[0];
        let mut targets = Vec::new();
        for s in &starts {
            let f: Vec<&&Value> = finishes.iter().filter(|f| f["id"] == s["id"]).collect();
            assert_eq!(f.len(), 1, "one finish for {s}");
            let f = f[0];
            assert_eq!((&s["cat"], &s["name"]), (&f["cat"], &f["name"]));
            assert_eq!((&s["name"], &f["bp"]), (&json!(FP), &json!("e")));
            assert_eq!(
                (s["pid"].as_i64().unwrap(), ns(&s["ts"])),
                (a, export.0 + 1000)
            );
            let to = slices
                .iter()
                .find(|e| {
                    e["pid"] == f["pid"]
                        && e["tid"] == f["tid"]
                        && ns(&e["ts"]) < ns(&f["ts"])
                        && ns(&f["ts"]) < ns(&e["ts"]) + ns(&e["dur"])
                })
                .expect("the finish lies inside a slice of its thread");
            targets.push((
                f["pid"].as_i64().unwrap(),
                to["name"].as_str().unwrap().to_owned(),
            ));
        }
        targets.sort();
        let mut want = vec![
            (a, "aclrtIpcMemClose".to_owned()),
            (b, "aclrtIpcMemImportByKey".to_owned()),
            (b, "aclrtIpcMemClose".to_owned()),
        ];
        want.sort();
        assert_eq!(targets, want);
    }

    #[test]
    fn times_keep_nanoseconds_and_the_origin_is_said() {
        assert_eq!(micros(1_234_567, 0), json!(1234.567));
        assert_eq!(micros(5_000, 1_000), json!(4));
        assert_eq!(micros(10_001, 1_000), json!(9.001));
        let (_, doc) = trace_of(&job());
        assert_eq!(doc["otherData"]["time_origin_us"], json!(T0 + 99));
        assert_eq!(doc["displayTimeUnit"], "ns");
    }

    #[test]
    fn a_job_without_calls_still_names_its_processes() {
        let log = Log::new(42, "h", 0);
        let (_, doc) = trace_of(&[log.input("l.json")]);
        let events = doc["traceEvents"].as_array().unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|e| e["name"] == "process_name")
                .count(),
            1
        );
        assert!(events.iter().all(|e| e["ph"] == "M"), "{events:?}");
    }

    /// `report ARGS…` through `run`, with the logs of `job` in files.
    fn report_with(args: &[&str], dir: &Path) -> (i32, String, String) {
        use clap::Parser;
        let mut argv: Vec<String> = ["acl-ipc-guard", "report"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        argv.extend(args.iter().map(|s| s.to_string()));
        for (i, input) in job().iter().enumerate() {
            let p = dir.join(format!("log.{i}.json"));
            std::fs::write(&p, input.content.as_ref().unwrap()).unwrap();
            argv.push(p.display().to_string());
        }
        let crate::Command::Report(a) = crate::Cli::try_parse_from(argv).unwrap().command else {
            panic!("not report")
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&a, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn trace_goes_with_the_usual_output() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t.json");
        let t = t.to_str().unwrap();
        for json_flag in [&[][..], &["--json"]] {
            let plain = report_with(json_flag, dir.path());
            let traced = report_with(&[json_flag, &["--trace", t]].concat(), dir.path());
            assert_eq!(plain, traced, "stdout, stderr and status unchanged");
            assert_eq!(plain.0, 1);
            let doc: Value = serde_json::from_slice(&std::fs::read(t).unwrap()).unwrap();
            assert_eq!(
                doc["traceEvents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["ph"] == "X")
                    .count(),
                8
            );
            std::fs::remove_file(t).unwrap();
        }
        // A file that cannot be made: said on stderr, status 2, nothing on stdout.
        let bad = dir.path().join("no/such/dir/t.json");
        let (code, out, err) = report_with(&["--trace", bad.to_str().unwrap()], dir.path());
        assert_eq!((code, out.as_str()), (2, ""));
        assert!(
            err.starts_with("acl-ipc-guard report: cannot create trace file ")
                && err.contains("no/such/dir/t.json"),
            "{err}"
        );
        // A directory: the same.
        let (code, _, err) = report_with(&["--trace", dir.path().to_str().unwrap()], dir.path());
        assert_eq!(code, 2, "{err}");
    }
}
