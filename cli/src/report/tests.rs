//! Logs built as strings, judged without files; one test through `run` with real files.

use super::*;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const T0: i64 = 1_795_468_025_000_000; // 2026-11-23T21:07:05Z
const FP: &str = "fp:0123456789abcdef";
const A: i64 = 100;
const B: i64 = 200;
const C: i64 = 300;

fn fmt_ts(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// One record line, fields in the shim's order.
fn line(ts_us: i64, pid: i64, seq: u64, event: &str, fields: Value) -> String {
    let mut m = Map::new();
    m.insert("ts".into(), fmt_ts(ts_us).into());
    m.insert("seq".into(), seq.into());
    m.insert("pid".into(), pid.into());
    m.insert("tid".into(), pid.into());
    m.insert("event".into(), event.into());
    if let Value::Object(f) = fields {
        m.extend(f);
    }
    Value::Object(m).to_string()
}

/// A job's records, written in time order; one file per pid or one shared.
struct Job {
    t: i64,
    seq: HashMap<i64, u64>,
    lines: Vec<(i64, String)>,
}

impl Job {
    fn new() -> Self {
        Job {
            t: T0,
            seq: HashMap::new(),
            lines: Vec::new(),
        }
    }

    fn rec(&mut self, pid: i64, event: &str, fields: Value) -> &mut Self {
        self.t += 100;
        let seq = self.seq.entry(pid).or_insert(0);
        *seq += 1;
        let l = line(self.t, pid, *seq, event, fields);
        self.lines.push((pid, l));
        self
    }

    fn start(&mut self, pid: i64) -> &mut Self {
        self.seq.insert(pid, 0);
        self.rec(pid, "start", json!({"version": "0.1.0", "mode": "audit", "exe": format!("/bin/p{pid}"), "ledger": "off"}))
    }

    fn call(&mut self, pid: i64, f: &str, args: Value, out: Value, ret: i64) -> &mut Self {
        self.rec(
            pid,
            "call",
            json!({"fn": f, "args": args, "out": out, "ret": ret, "forwarded": true, "dur_ns": 50}),
        )
    }

    fn export(&mut self, pid: i64, fp: &str, dev: u64, flags: u64) -> &mut Self {
        self.call(
            pid,
            "aclrtIpcMemGetExportKey",
            json!({"devPtr": format!("{dev:#x}"), "size": 8192, "key": "0x7ffd0000", "len": 65, "flags": flags}),
            json!({"key_fp": fp}),
            0,
        )
    }

    fn malloc(&mut self, pid: i64, dev: u64) -> &mut Self {
        self.call(
            pid,
            "aclrtMalloc",
            json!({"devPtr": "0x7ffd1000", "size": 8192, "policy": 0}),
            json!({"devPtr": format!("{dev:#x}")}),
            0,
        )
    }

    fn setpid(&mut self, pid: i64, fp: &str, pids: &[i64]) -> &mut Self {
        self.call(
            pid,
            "aclrtIpcMemSetImportPid",
            json!({"key_fp": fp, "pid": pids, "num": pids.len()}),
            json!({}),
            0,
        )
    }

    fn tgid(&mut self, pid: i64, tgid: i64) -> &mut Self {
        self.call(
            pid,
            "aclrtDeviceGetBareTgid",
            json!({"pid": "0x7ffd2000"}),
            json!({"pid": tgid}),
            0,
        )
    }

    fn import_ret(&mut self, pid: i64, fp: &str, addr: u64, ret: i64) -> &mut Self {
        let out = if ret == 0 {
            json!({"devPtr": format!("{addr:#x}")})
        } else {
            json!({})
        };
        self.call(
            pid,
            "aclrtIpcMemImportByKey",
            json!({"devPtr": "0x7ffd3000", "key_fp": fp, "flags": 0}),
            out,
            ret,
        )
    }

    fn import(&mut self, pid: i64, fp: &str, addr: u64) -> &mut Self {
        self.import_ret(pid, fp, addr, 0)
    }

    fn close_ret(&mut self, pid: i64, fp: &str, ret: i64) -> &mut Self {
        self.call(
            pid,
            "aclrtIpcMemClose",
            json!({"key_fp": fp}),
            json!({}),
            ret,
        )
    }

    fn close(&mut self, pid: i64, fp: &str) -> &mut Self {
        self.close_ret(pid, fp, 0)
    }

    fn free(&mut self, pid: i64, dev: u64) -> &mut Self {
        self.call(
            pid,
            "aclrtFree",
            json!({"devPtr": format!("{dev:#x}")}),
            json!({}),
            0,
        )
    }

    fn violation(&mut self, pid: i64, rule: &str, f: &str, fp: Option<&str>) -> &mut Self {
        let mut v = json!({"rule": rule, "severity": "error", "action": "reported", "fn": f, "message": "from the shim"});
        if let Some(fp) = fp {
            v["key_fp"] = fp.into();
        }
        self.rec(pid, "violation", v)
    }

    fn summary(&mut self, pid: i64) -> &mut Self {
        self.rec(
            pid,
            "summary",
            json!({"calls": 3, "violations": {}, "blocked": 0, "leaks": 0, "dropped": 0}),
        )
    }

    fn pids(&self) -> Vec<i64> {
        let mut p: Vec<i64> = self.lines.iter().map(|(p, _)| *p).collect();
        p.sort_unstable();
        p.dedup();
        p
    }

    fn text_of(&self, pid: i64) -> String {
        self.lines
            .iter()
            .filter(|(p, _)| *p == pid)
            .map(|(_, l)| format!("{l}\n"))
            .collect()
    }

    /// One file per pid, in pid order.
    fn inputs(&self) -> Vec<Input> {
        self.pids()
            .into_iter()
            .map(|p| Input::text(&format!("log.{p}.json"), &self.text_of(p)))
            .collect()
    }

    fn shared(&self) -> String {
        self.lines.iter().map(|(_, l)| format!("{l}\n")).collect()
    }

    fn report(&self) -> Report {
        analyze(&self.inputs())
    }
}

/// The in-memory report ([`super::analyze`]); and the streaming one (`stream.rs`, what
/// the command prints for text and `--json`), which must say the same in both forms but
/// for the order of the keys, whenever it takes the logs. Every test's logs go through both.
fn analyze(inputs: &[Input]) -> Report {
    let r = super::analyze(inputs);
    same_when_streamed(inputs, &r);
    r
}

/// The timelines of a text report, one block per key, sorted: the streaming report writes
/// the keys in the order they finish.
fn text_keys_sorted(text: &str) -> String {
    let (head, rest) = text
        .split_once("\nTimeline per key\n")
        .expect("a timeline section");
    let (keys, tail) = rest.split_once("\n\n").unwrap_or((rest, ""));
    let mut blocks: Vec<String> = Vec::new();
    for l in keys.lines() {
        if l.starts_with("    ") {
            let b = blocks.last_mut().expect("an event under its key");
            b.push('\n');
            b.push_str(l);
        } else {
            blocks.push(l.to_owned());
        }
    }
    blocks.sort();
    format!("{head}\nTimeline per key\n{}\n\n{tail}", blocks.join("\n"))
}

/// Writes `inputs` to files and runs the streaming report over them, as text and JSON;
/// when it takes them (`true`), its output must be the in-memory report's, `r`, but for
/// the order of the keys.
fn same_when_streamed(inputs: &[Input], r: &Report) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let mut logs = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let p = dir.path().join(format!("{i}.json"));
        if let Ok(b) = &input.content {
            std::fs::write(&p, b).unwrap();
        }
        let mut log = stream::Log::open(&p);
        log.name.clone_from(&input.name);
        logs.push(log);
    }
    let mut text = Vec::new();
    let Some((code, res)) = stream::report(&mut logs, false, &mut text) else {
        if std::env::var_os("AIG_STREAM_SAY").is_some() {
            eprintln!(
                "not streamed: {:?}",
                inputs.iter().map(|i| &i.name).collect::<Vec<_>>()
            );
        }
        return false;
    };
    res.unwrap();
    assert_eq!(code, r.exit_status());
    let text = String::from_utf8(text).unwrap();
    assert_eq!(text_keys_sorted(&text), text_keys_sorted(&render_text(r)));
    let mut json = Vec::new();
    let (_, res) = stream::report(&mut logs, true, &mut json).expect("streamed once, again");
    res.unwrap();
    // serde_json's maps are sorted: the order of `keys` does not count.
    let got: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(got, render_json(r));
    true
}

/// (rule, pid, source) of every violation.
fn found(r: &Report) -> Vec<(String, i64, &'static str)> {
    r.violations
        .iter()
        .map(|v| (v.rule.clone(), v.pid, v.source.as_str()))
        .collect()
}

fn v(rule: &str, pid: i64, source: &'static str) -> (String, i64, &'static str) {
    (rule.to_owned(), pid, source)
}

/// The documented flow: A exports in whitelist mode for B, B imports and closes, then A
/// closes and frees.
fn good_pair() -> Job {
    let mut j = Job::new();
    j.start(A).start(B);
    j.malloc(A, 0x10000)
        .export(A, FP, 0x10000, 0)
        .tgid(B, 5200)
        .setpid(A, FP, &[5200]);
    j.import(B, FP, 0x90000).close(B, FP).summary(B);
    j.close(A, FP).free(A, 0x10000).summary(A);
    j
}

#[test]
fn correct_pair_has_no_violation() {
    let r = good_pair().report();
    assert_eq!(found(&r), vec![]);
    assert_eq!(r.exit_status(), 0);
    assert_eq!(r.processes.len(), 2);
    assert!(r.gaps.is_empty() && r.skipped.is_empty());
    let kinds: Vec<(&str, i64)> = r.keys[FP].iter().map(|e| (e.kind(), e.pid)).collect();
    assert_eq!(
        kinds,
        [
            ("export", A),
            ("whitelist", A),
            ("import", B),
            ("close", B),
            ("close", A),
            ("free", A)
        ]
    );
    let roles: Vec<Detail> = r.keys[FP]
        .iter()
        .filter(|e| e.kind() == "close")
        .map(|e| e.detail.clone())
        .collect();
    assert_eq!(
        roles,
        [
            Detail::Close { role: "importer" },
            Detail::Close { role: "exporter" }
        ]
    );
    assert!(render_text(&r).contains("verdict: OK"));
}

#[test]
fn exporter_closing_first_is_found_by_the_recheck() {
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 1)
        .import(B, FP, 0x90000);
    j.close(A, FP).close(B, FP).summary(B).summary(A);
    let r = j.report();
    assert_eq!(found(&r), vec![v(recheck::CLOSE_ORDER, A, "recheck")]);
    let viol = &r.violations[0];
    assert_eq!(viol.key_fp.as_deref(), Some(FP));
    assert_eq!(viol.func, "aclrtIpcMemClose");
    assert_eq!(viol.severity, "error");
    assert!(viol.message.contains("[200]"), "{}", viol.message);
    assert_eq!(r.exit_status(), 1);
    // The finding sits in the key's timeline, right after the close that broke the rule.
    let kinds: Vec<&str> = r.keys[FP].iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, ["export", "import", "close", "violation", "close"]);
}

#[test]
fn importer_that_exited_is_not_waited_for() {
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 1)
        .import(B, FP, 0x90000);
    j.summary(B).close(A, FP).summary(A);
    let r = j.report();
    assert_eq!(found(&r), vec![]);
    assert_eq!(r.exit_status(), 0);
}

#[test]
fn importer_without_summary_is_assumed_alive() {
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 1)
        .import(B, FP, 0x90000);
    j.close(A, FP).summary(A);
    let r = j.report();
    assert_eq!(found(&r), vec![v(recheck::CLOSE_ORDER, A, "recheck")]);
    assert_eq!(
        r.processes.iter().find(|p| p.pid == B).unwrap().end,
        End::Unknown
    );
    assert!(render_text(&r).contains("1 process without a summary"));
}

#[test]
fn a_job_with_a_shared_ledger_is_judged_by_its_logs() {
    // The importer was killed (no summary); the live ledger saw it die and said nothing.
    let job = |ledger: &str| {
        let mut j = Job::new();
        j.start(A).start(B);
        for line in j.lines.iter_mut() {
            line.1 = line
                .1
                .replace("\"ledger\":\"off\"", &format!("\"ledger\":\"{ledger}\""));
        }
        j.export(A, FP, 0x10000, 1).import(B, FP, 0x90000);
        j.close(A, FP).summary(A);
        j.report()
    };
    let shared = job("/dev/shm/job");
    assert_eq!(found(&shared), vec![], "the shim judged it live");
    assert_eq!(shared.exit_status(), 0);
    let without = job("off");
    assert_eq!(found(&without), vec![v(recheck::CLOSE_ORDER, A, "recheck")]);
}

#[test]
fn three_processes_only_the_late_importer_counts() {
    let mut j = Job::new();
    j.start(A).start(B).start(C).export(A, FP, 0x10000, 1);
    j.import(B, FP, 0x90000).import(C, FP, 0xa0000).close(B, FP);
    j.close(A, FP).close(C, FP);
    j.summary(A).summary(B).summary(C);
    let r = j.report();
    assert_eq!(found(&r), vec![v(recheck::CLOSE_ORDER, A, "recheck")]);
    let msg = &r.violations[0].message;
    assert!(msg.contains("[300]") && !msg.contains("200"), "{msg}");

    // Both importers closed in time: nothing.
    let mut j = Job::new();
    j.start(A).start(B).start(C).export(A, FP, 0x10000, 1);
    j.import(B, FP, 0x90000)
        .import(C, FP, 0xa0000)
        .close(B, FP)
        .close(C, FP);
    j.close(A, FP).summary(A).summary(B).summary(C);
    assert_eq!(found(&j.report()), vec![]);
}

#[test]
fn imports_are_counted_and_each_needs_a_close() {
    let mut j = Job::new();
    j.start(A).start(B).export(A, FP, 0x10000, 1);
    j.import(B, FP, 0x90000).import(B, FP, 0x90000).close(B, FP);
    j.close(A, FP).close(B, FP);
    assert_eq!(
        found(&j.report()),
        vec![v(recheck::CLOSE_ORDER, A, "recheck")]
    );
}

#[test]
fn failed_calls_change_nothing() {
    let mut j = Job::new();
    j.start(A).start(B).export(A, FP, 0x10000, 1);
    // The exporter's close fails, so the key stays open; a failed import makes no importer.
    j.close_ret(A, FP, 507_899).import_ret(B, FP, 0, 507_899);
    j.close(A, FP).summary(A).summary(B);
    let r = j.report();
    assert_eq!(found(&r), vec![]);
    let st: Vec<Option<&str>> = r.keys[FP].iter().map(|e| e.status).collect();
    assert_eq!(st, [Some("ok"), Some("failed"), Some("failed"), Some("ok")]);

    // A blocked (not forwarded) import shows as blocked.
    let mut j = Job::new();
    j.start(A).start(B).export(A, FP, 0x10000, 1);
    j.rec(B, "call", json!({"fn": "aclrtIpcMemImportByKey", "args": {"devPtr": "0x1", "key_fp": FP, "flags": 0}, "out": {}, "ret": 100000, "forwarded": false, "dur_ns": 1}));
    j.close(A, FP);
    let r = j.report();
    assert_eq!(found(&r), vec![]);
    assert_eq!(r.keys[FP][1].status, Some("blocked"));
}

#[test]
fn import_after_the_source_is_gone() {
    // After the exporter's close; the attempt failed, it is still judged.
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 1)
        .close(A, FP)
        .import_ret(B, FP, 0, 507_899);
    let r = j.report();
    assert_eq!(found(&r), vec![v(recheck::SOURCE_GONE, B, "recheck")]);
    assert!(r.violations[0].message.contains("closed it"));
    assert_eq!(r.violations[0].func, "aclrtIpcMemImportByKey");

    // After the exporter freed the memory (a pointer inside the exported range).
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 1)
        .free(A, 0x11000)
        .import(B, FP, 0x90000);
    let r = j.report();
    assert_eq!(found(&r), vec![v(recheck::SOURCE_GONE, B, "recheck")]);
    assert!(r.violations[0].message.contains("freed its memory"));
    assert!(r.keys[FP].iter().any(|e| e.kind() == "free" && e.pid == A));

    // A free outside the range is not the exported memory.
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 1)
        .free(A, 0x12000)
        .import(B, FP, 0x90000);
    assert_eq!(found(&j.report()), vec![]);

    // After the exporter exited.
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 1)
        .summary(A)
        .import_ret(B, FP, 0, 507_899);
    let r = j.report();
    assert_eq!(found(&r), vec![v(recheck::SOURCE_GONE, B, "recheck")]);
    assert!(r.violations[0].message.contains("exited"));
}

#[test]
fn not_whitelisted() {
    // Whitelisted getpid() (200) instead of the bare tgid (5200).
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 0)
        .setpid(A, FP, &[B])
        .tgid(B, 5200)
        .import_ret(B, FP, 0, 507_899);
    let r = j.report();
    assert_eq!(found(&r), vec![v(recheck::NOT_WHITELISTED, B, "recheck")]);
    assert!(r.violations[0].message.contains("5200"));

    // Without a bare-tgid call the record pid is the tgid.
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 0)
        .setpid(A, FP, &[B])
        .import(B, FP, 0x90000);
    assert_eq!(found(&j.report()), vec![]);

    // Whitelisted only after the import.
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 0)
        .import(B, FP, 0x90000)
        .setpid(A, FP, &[B]);
    assert_eq!(
        found(&j.report()),
        vec![v(recheck::NOT_WHITELISTED, B, "recheck")]
    );

    // Pid validation disabled: no whitelist needed.
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 1)
        .import(B, FP, 0x90000);
    assert_eq!(found(&j.report()), vec![]);

    // The export is not in the logs: not judged.
    let mut j = Job::new();
    j.start(B).import(B, FP, 0x90000).close(B, FP);
    let r = j.report();
    assert_eq!(found(&r), vec![]);
    assert!(render_text(&r).contains("its export is not in the logs"));
}

#[test]
fn free_of_an_imported_address() {
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 1)
        .import(B, FP, 0x90000)
        .close(B, FP)
        .free(B, 0x90000);
    let r = j.report();
    assert_eq!(found(&r), vec![v(recheck::FREE_IMPORTED, B, "recheck")]);
    assert_eq!(r.violations[0].key_fp.as_deref(), Some(FP));
    assert_eq!(r.violations[0].func, "aclrtFree");

    // The address handed out again by an allocation is the process's own memory.
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 1)
        .import(B, FP, 0x90000)
        .close(B, FP);
    j.malloc(B, 0x90000).free(B, 0x90000);
    assert_eq!(found(&j.report()), vec![]);
}

#[test]
fn a_log_violation_is_not_repeated_by_the_recheck() {
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 1)
        .import(B, FP, 0x90000);
    j.violation(A, recheck::CLOSE_ORDER, "aclrtIpcMemClose", Some(FP))
        .close(A, FP);
    // The shim's free.imported names no key; it still covers the re-check's.
    j.close(B, FP)
        .violation(B, recheck::FREE_IMPORTED, "aclrtFree", None)
        .free(B, 0x90000);
    let r = j.report();
    assert_eq!(
        found(&r),
        vec![
            v(recheck::CLOSE_ORDER, A, "log"),
            v(recheck::FREE_IMPORTED, B, "log")
        ]
    );
    assert_eq!(r.violations[0].action.as_deref(), Some("reported"));
    assert_eq!(
        r.keys[FP]
            .iter()
            .filter(|e| e.kind() == "violation")
            .count(),
        1
    );
    assert_eq!(r.exit_status(), 1);
}

#[test]
fn violations_past_the_repeat_limit_still_count() {
    let mut j = Job::new();
    j.start(A);
    j.rec(A, "violation", json!({"rule": "close.key-null", "severity": "error", "action": "reported", "fn": "aclrtIpcMemClose", "message": "key is NULL"}));
    j.rec(A, "summary", json!({"calls": 5, "violations": {"close.key-null": 4, "exit.leak": 1}, "blocked": 0, "leaks": 1, "dropped": 0}));
    let r = j.report();
    let extra: Vec<_> = r
        .violations
        .iter()
        .filter(|v| v.func == "summary")
        .collect();
    assert_eq!(extra.len(), 2, "{:?}", r.violations);
    assert!(extra.iter().any(|v| v.rule == "close.key-null"
        && v.severity == "error"
        && v.count == 3
        && v.message.starts_with("3 more")));
    assert!(extra
        .iter()
        .any(|v| v.rule == "exit.leak" && v.severity == "warning"));
    assert_eq!(r.exit_status(), 1);

    assert_eq!((r.count("error"), r.count("warning")), (4, 1));
    assert!(render_text(&r).contains("close.key-null (error): 4"));

    // A limit of 0: nothing written, the summary alone fails the job, by its count.
    let mut j = Job::new();
    j.start(A);
    j.rec(A, "summary", json!({"calls": 1, "violations": {"close.key-null": 7}, "blocked": 0, "leaks": 0, "dropped": 0}));
    let r = j.report();
    assert_eq!(r.exit_status(), 1);
    assert_eq!(r.count("error"), 7);
    assert!(render_text(&r).contains("close.key-null (error): 7"));
}

/// Past `ACL_IPC_GUARD_REPEAT_LIMIT` (100) the shim writes no more records of a rule and
/// its summary counts them all (150): the report's counts per rule, in text and JSON, and
/// its verdict say 150, as the summary does, not 101 (the records written plus the one
/// entry that stands for the rest). The entry stays one (`count` 50): no fake records.
/// A process without a summary (killed) counts what it wrote.
#[test]
fn counts_past_the_repeat_limit_agree_with_the_summary() {
    let size_zero = |j: &mut Job, pid: i64| {
        j.rec(pid, "violation", json!({"rule": "export.size-zero", "severity": "error", "action": "reported", "fn": "aclrtIpcMemGetExportKey", "message": "size is 0"}));
    };
    let mut j = Job::new();
    j.start(A).start(B);
    for _ in 0..100 {
        size_zero(&mut j, A);
    }
    // B was killed after 3: no summary, 3 counted.
    for _ in 0..3 {
        size_zero(&mut j, B);
    }
    j.rec(A, "summary", json!({"calls": 150, "violations": {"export.size-zero": 150, "exit.leak": 2}, "blocked": 0, "leaks": 2, "dropped": 0}));
    let inputs = j.inputs();
    let r = analyze(&inputs);
    assert!(same_when_streamed(&inputs, &r), "streamed as well");
    assert_eq!((r.count("error"), r.count("warning")), (153, 2));
    assert_eq!(r.exit_status(), 1);
    // One entry for the 50 unwritten, none invented.
    let extra: Vec<_> = r
        .violations
        .iter()
        .filter(|v| v.func == "summary")
        .collect();
    assert_eq!(
        extra
            .iter()
            .map(|v| (v.rule.as_str(), v.pid, v.count))
            .collect::<Vec<_>>(),
        [("exit.leak", A, 2), ("export.size-zero", A, 50)]
    );
    assert_eq!(r.violations.len(), 100 + 3 + 2);

    let t = render_text(&r);
    assert!(t.contains("  export.size-zero (error): 153\n"), "{t}");
    assert!(t.contains("  exit.leak (warning): 2\n"), "{t}");
    assert!(
        t.contains("50 more export.size-zero violation(s) counted in the summary"),
        "{t}"
    );
    assert!(
        t.contains(
            "verdict: FAIL: 153 error violations (153 from the logs, 0 from the re-check), 2 warnings"
        ),
        "{t}"
    );

    let v = render_json(&r);
    assert_eq!(v["verdict"]["errors"], 153);
    assert_eq!(v["verdict"]["warnings"], 2);
    let vs = v["violations"].as_array().unwrap();
    assert_eq!(vs.len(), 105);
    let per_rule = |rule: &str, pid: i64| -> u64 {
        vs.iter()
            .filter(|x| x["rule"] == rule && x["pid"] == pid)
            .map(|x| x["count"].as_u64().expect("every violation has a count"))
            .sum()
    };
    // Per process, as its summary says; the killed one, as its records say.
    assert_eq!(per_rule("export.size-zero", A), 150);
    assert_eq!(per_rule("exit.leak", A), 2);
    assert_eq!(per_rule("export.size-zero", B), 3);
    assert!(vs
        .iter()
        .filter(|x| x["fn"] != "summary")
        .all(|x| x["count"] == 1));
}

#[test]
fn hostile_text_is_shown_escaped() {
    let mut j = Job::new();
    j.start(A);
    j.rec(A, "violation", json!({"rule": "x\u{1b}[31mRED", "severity": "error", "action": "reported", "fn": "f", "message": "line1\nFAKE: no violations found"}));
    j.summary(A);
    let t = render_text(&j.report());
    assert!(!t.contains('\u{1b}'), "{t}");
    assert!(!t.lines().any(|l| l.starts_with("FAKE")), "{t}");
    assert!(t.contains("line1\\u{a}FAKE"), "{t}");
}

#[test]
fn log_warnings_do_not_fail() {
    let mut j = Job::new();
    j.start(A);
    j.rec(A, "violation", json!({"rule": "exit.leak", "severity": "warning", "action": "reported", "fn": "exit", "message": "1 key open", "key_fp": FP}));
    j.summary(A);
    let r = j.report();
    assert_eq!(found(&r), vec![v("exit.leak", A, "log")]);
    assert_eq!(r.exit_status(), 0);
    let t = render_text(&r);
    assert!(t.contains("exit.leak (warning): 1"), "{t}");
    assert!(
        t.contains("verdict: OK: no error violation, 1 warning"),
        "{t}"
    );
}

#[test]
fn malformed_and_truncated_lines_are_skipped() {
    let j = good_pair();
    let mut a = j.text_of(A);
    a.push_str("{\"ts\":\"2026-11-23T21:07:06.000000Z\",\"seq\":99,\"pid\":100,\"ev");
    let mut b = String::from(
        "{\"seq\":1}\n[not json\n{\"event\":\"call\",\"pid\":200,\"seq\":1,\"ts\":\"soon\"}\n",
    );
    b.push_str(&j.text_of(B));
    b.push_str("{}\n");
    let r = analyze(&[Input::text("a.json", &a), Input::text("b.json", &b)]);
    let sk: Vec<(&str, usize)> = r
        .skipped
        .iter()
        .map(|s| (s.file.as_str(), s.line))
        .collect();
    let b_lines = j.text_of(B).lines().count();
    // `[not json` (line 2) is no text-format line (those begin `[acl-ipc-guard] `):
    // it is listed like the others.
    assert_eq!(
        sk,
        [
            ("a.json", j.text_of(A).lines().count() + 1),
            ("b.json", 1),
            ("b.json", 2),
            ("b.json", 3),
            ("b.json", b_lines + 4)
        ]
    );
    assert!(
        r.skipped[0].reason.contains("invalid JSON"),
        "{}",
        r.skipped[0].reason
    );
    assert!(
        r.skipped[2].reason.starts_with("not a JSON record"),
        "{}",
        r.skipped[2].reason
    );
    assert_eq!(r.text_lines, 0);
    assert_eq!(found(&r), vec![]);
    let t = render_text(&r);
    assert!(t.contains("a.json:"), "{t}");
    assert!(t.contains("b.json:2: not a JSON record"), "{t}");
    assert!(t.contains("malformed lines:    5"), "{t}");
}

#[test]
fn no_panic_on_garbage() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let alphabet = b"{}[]\":,0123456789-.xTZ evntpidseqtsfncall\n\\\xff\xc3";
    for _ in 0..300 {
        let mut bytes = Vec::new();
        for _ in 0..200 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        let r = analyze(&[Input {
            name: "g".into(),
            content: Ok(bytes),
        }]);
        let _ = render_text(&r);
        let _ = render_json(&r);
    }
    // Valid records with fields of the wrong types.
    let odd = [
        line(T0, 1, 1, "call", json!({"fn": 7, "args": [], "out": null, "ret": "x"})),
        line(T0, 1, 2, "call", json!({"fn": "aclrtIpcMemImportByKey", "args": {"key_fp": 3}})),
        line(T0, 1, 3, "call", json!({"fn": "aclrtIpcMemGetExportKey", "args": {"devPtr": "0xzz", "size": -1}, "out": {"key_fp": FP}, "ret": 0})),
        line(T0, 1, 4, "call", json!({"fn": "aclrtFree", "args": {"devPtr": "0x1"}, "ret": 0})),
        line(T0, 1, 5, "call", json!({"fn": "aclrtIpcMemSetImportPid", "args": {"key_fp": FP, "pid": "0x1234", "num": 40}, "ret": 0})),
        line(T0, 1, 6, "call", json!({"fn": "aclrtIpcMemImportPidInterServer", "args": {"key_fp": FP, "serverPids": [{"sdid": 1, "pid": null, "num": 0}], "num": 1}, "ret": 0})),
        line(T0, 1, 7, "violation", json!({})),
        line(T0, 1, 8, "summary", json!({"dropped": "many"})),
        line(T0, 1, 9, "mystery", json!({})),
    ]
    .join("\n");
    let r = analyze(&[Input::text("odd", &odd)]);
    assert_eq!(r.records, 9);
    let _ = render_text(&r);
    let _ = render_json(&r);
}

#[test]
fn text_lines_are_counted() {
    // Only lines with the text format's prefix are text lines; a line of noise is a
    // malformed line, with its file and line.
    let mut s = String::from("[acl-ipc-guard] 2026-11-23T21:07:05.000100Z pid=100 tid=100 seq=1 start version=0.1.0\n\nsome noise\n[acl-ipc-guard] 2026-11-23T21:07:05.000200Z pid=100 tid=100 seq=2 call aclrtFree\n");
    s.push_str(&good_pair().text_of(A));
    let r = analyze(&[Input::text("mixed", &s)]);
    assert_eq!(r.text_lines, 2);
    assert_eq!(r.files[0].text_lines, 2);
    assert_eq!(r.files[0].skipped, 1);
    let sk: Vec<(&str, usize)> = r
        .skipped
        .iter()
        .map(|s| (s.file.as_str(), s.line))
        .collect();
    assert_eq!(sk, [("mixed", 3)]);
    let t = render_text(&r);
    assert!(t.contains("text lines skipped: 2"), "{t}");
    assert!(t.contains("malformed lines:    1"), "{t}");
    assert!(t.contains("mixed:3: not a JSON record"), "{t}");
}

#[test]
fn seq_gaps_are_found() {
    let j = good_pair();
    let a: Vec<String> = j.text_of(A).lines().map(str::to_owned).collect();
    // Drop A's records 3 and 4.
    let kept: String = a
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2 && *i != 3)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let r = analyze(&[Input::text("a", &kept), Input::text("b", &j.text_of(B))]);
    assert_eq!(
        r.gaps,
        [Gap {
            process: 0,
            pid: A,
            from: 3,
            to: 4
        }]
    );
    assert!(render_text(&r).contains("pid 100: seq 3..4 missing (2 records)"));
    // A lost first record too: with no start the count starts where the records do.
    let r = analyze(&[Input::text("a", &a[1..].join("\n"))]);
    assert_eq!(r.gaps, []);
    assert!(!r.processes[0].has_start);
}

#[test]
fn file_order_and_sharing_do_not_matter() {
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .start(C)
        .export(A, FP, 0x10000, 0)
        .setpid(A, FP, &[B]);
    j.import(B, FP, 0x90000)
        .import(C, FP, 0xa0000)
        .close(A, FP)
        .close(B, FP)
        .free(B, 0x90000);
    j.summary(A).summary(B);
    let inputs = j.inputs();
    let mut reversed = inputs.clone();
    reversed.reverse();
    let strip = |r: &Report| {
        let mut v = render_json(r);
        v.as_object_mut().unwrap().remove("files");
        for p in v["processes"].as_array_mut().unwrap() {
            p.as_object_mut().unwrap().remove("files");
        }
        v
    };
    let base = analyze(&inputs);
    assert!(!base.violations.is_empty());
    assert_eq!(strip(&base), strip(&analyze(&reversed)));
    assert_eq!(
        strip(&base),
        strip(&analyze(&[Input::text("shared", &j.shared())]))
    );
    // Shuffled lines inside a shared file, and the same file given twice.
    let mut lines: Vec<&str> = j.lines.iter().map(|(_, l)| l.as_str()).collect();
    lines.reverse();
    let shuffled = lines.join("\n");
    let twice = analyze(&[Input::text("x", &shuffled), Input::text("y", &shuffled)]);
    assert_eq!(strip(&base)["violations"], strip(&twice)["violations"]);
    assert_eq!(twice.duplicates, j.lines.len());
}

#[test]
fn processes_fork_children_and_exec() {
    let mut j = Job::new();
    j.start(A).export(A, FP, 0x10000, 1);
    // A fork child of A: its own pid, no start, its parent's count going on.
    j.seq.insert(B, 2);
    j.import(B, FP, 0x90000);
    // B then execs: a new image with the same pid and a new count; the old one is gone.
    j.start(B).close(A, FP).summary(B).summary(A);
    let r = j.report();
    let bs: Vec<&Process> = r.processes.iter().filter(|p| p.pid == B).collect();
    assert_eq!(bs.len(), 2);
    assert!(!bs[0].has_start && bs[0].first_seq == 3);
    assert!(matches!(bs[0].end, End::Replaced(_)));
    assert!(matches!(bs[1].end, End::Exited(_)));
    assert!(r.gaps.is_empty(), "{:?}", r.gaps);
    // The importer image was gone when the exporter closed.
    assert_eq!(found(&r), vec![]);
}

#[test]
fn json_output_has_the_fields() {
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 1)
        .import(B, FP, 0x90000)
        .close(A, FP)
        .close(B, FP);
    let mut inputs = j.inputs();
    inputs[1]
        .content
        .as_mut()
        .unwrap()
        .extend_from_slice(b"[acl-ipc-guard] text line\n{\"truncated\":");
    let r = analyze(&inputs);
    let s = serde_json::to_string_pretty(&render_json(&r)).unwrap();
    let v: Value = serde_json::from_str(&s).unwrap();
    for field in [
        "violations",
        "keys",
        "skipped",
        "processes",
        "gaps",
        "text_lines",
        "files",
    ] {
        assert!(v.get(field).is_some(), "{field} missing");
    }
    let viol = &v["violations"][0];
    for field in [
        "rule", "severity", "pid", "fn", "key_fp", "source", "ts", "message",
    ] {
        assert!(viol.get(field).is_some(), "violation.{field} missing");
    }
    assert_eq!(viol["rule"], recheck::CLOSE_ORDER);
    assert_eq!(viol["source"], "recheck");
    assert_eq!(viol["key_fp"], FP);
    assert_eq!(viol["pid"], A);
    let evs = v["keys"][FP].as_array().unwrap();
    for e in evs {
        for field in ["ts", "pid", "fn", "event", "ret"] {
            assert!(e.get(field).is_some(), "event.{field} missing in {e}");
        }
    }
    assert_eq!(evs[0]["event"], "export");
    assert_eq!(evs[0]["devPtr"], "0x10000");
    assert_eq!(evs[1]["address"], "0x90000");
    assert_eq!(v["skipped"][0]["file"], "log.200.json");
    assert!(v["skipped"][0]["line"].as_u64().unwrap() > 1);
    assert_eq!(v["text_lines"], 1);
    assert_eq!(v["processes"].as_array().unwrap().len(), 2);
    assert_eq!(v["verdict"]["exit_status"], 1);
}

#[test]
fn raw_keys_are_never_printed() {
    let mut j = Job::new();
    j.start(A).start(B);
    j.call(
        A,
        "aclrtIpcMemGetExportKey",
        json!({"devPtr": "0x10000", "size": 4096, "key": "0x7ffd", "len": 65, "flags": 1}),
        json!({"key_fp": FP, "key": "SECRETKEYBYTES"}),
        0,
    );
    j.call(
        B,
        "aclrtIpcMemImportByKey",
        json!({"devPtr": "0x7ffd", "key_fp": FP, "key": "SECRETKEYBYTES", "flags": 0}),
        json!({"devPtr": "0x90000"}),
        0,
    );
    let r = j.report();
    assert!(!render_text(&r).contains("SECRET"));
    assert!(!render_json(&r).to_string().contains("SECRET"));
}

/// `acl-ipc-guard report ARGS…` as `main` would run it, its output captured; a usage
/// error is rendered as clap would print it.
fn run_args(args: &[&str]) -> (i32, String, String) {
    use clap::Parser;
    let argv = ["acl-ipc-guard", "report"].iter().chain(args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = match crate::Cli::try_parse_from(argv) {
        Ok(crate::Cli {
            command: crate::Command::Report(a),
            ..
        }) => run(&a, &mut out, &mut err),
        Ok(other) => panic!("not report: {other:?}"),
        Err(e) => {
            let text = e.render().to_string().into_bytes();
            if e.use_stderr() {
                err = text;
            } else {
                out = text;
            }
            e.exit_code()
        }
    };
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn command_line_with_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Job::new();
    j.start(A)
        .start(B)
        .export(A, FP, 0x10000, 1)
        .import(B, FP, 0x90000)
        .close(A, FP)
        .close(B, FP);
    j.summary(A).summary(B);
    let mut paths = Vec::new();
    for p in j.pids() {
        let path = dir.path().join(format!("log.{p}.json"));
        std::fs::write(&path, j.text_of(p)).unwrap();
        paths.push(path.to_str().unwrap().to_owned());
    }
    let (code, out, err) = run_args(&[&paths[0], &paths[1]]);
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains("Violations by rule") && out.contains(recheck::CLOSE_ORDER),
        "{out}"
    );
    assert!(out.contains("Timeline per key") && out.contains(FP));
    assert!(out.contains("verdict: FAIL"));
    assert!(err.is_empty());

    let (code, out, _) = run_args(&["--json", &paths[1], &paths[0]]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["violations"][0]["rule"], recheck::CLOSE_ORDER);

    // An unreadable file is named and skipped.
    let missing = dir.path().join("nope.json");
    let missing = missing.to_str().unwrap();
    let (code, out, err) = run_args(&[missing, &paths[0], &paths[1]]);
    assert_eq!(code, 1);
    assert!(err.contains("nope.json"), "{err}");
    assert!(out.contains("unreadable"));
    let (code, out, err) = run_args(&[missing]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("nope.json"));

    // A good job: 0.
    let good = dir.path().join("good.json");
    std::fs::write(&good, good_pair().shared()).unwrap();
    assert_eq!(run_args(&[good.to_str().unwrap()]).0, 0);
    assert_eq!(run_args(&["--", good.to_str().unwrap()]).0, 0);

    // Usage (clap's wording: "Usage:").
    let (code, out, err) = run_args(&[]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("Usage:"), "{err}");
    let (code, out, err) = run_args(&["--jsn", &paths[0]]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("--jsn") && err.contains("Usage:"), "{err}");
    let (code, out, err) = run_args(&["--help"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(
        out.contains("Usage:") && out.contains("Exit status"),
        "{out}"
    );
}

/// The records of a process that broke an `error` rule (free.imported), as the shim
/// encodes them in `format`.
fn shim_log(format: acl_ipc_guard::config::Format) -> String {
    use acl_ipc_guard::call::Func;
    use acl_ipc_guard::config::Mode;
    use acl_ipc_guard::record::{self, Action, Body as RBody, Record, Start};
    use acl_ipc_guard::rules::{Rule, Severity};
    let bodies = vec![
        RBody::Start(Box::new(Start {
            version: "0.1.0",
            mode: Mode::Audit,
            exe: "/bin/job".into(),
            ledger: "off".into(),
            host: "node-1".into(),
            bare_tgid: Some(4242),
            parent: None,
        })),
        RBody::Violation(Box::new(record::Violation {
            rule: Rule::FreeImported,
            severity: Severity::Error,
            action: Action::Reported,
            func: Some(Func::Free),
            message: "an imported address".into(),
            key: None,
            backtrace: None,
        })),
        RBody::Summary {
            calls: 1,
            violations: vec![(Rule::FreeImported, 1)],
            blocked: 0,
            leaks: 0,
            dropped: 0,
        },
    ];
    let mut out = Vec::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let mut rec = Record {
            seq: i as u64 + 1,
            ts_us: T0 + i as i64,
            pid: 4242,
            tid: 4242,
            body,
        };
        record::encode(&mut rec, format, false, &mut out);
    }
    String::from_utf8(out).unwrap()
}

/// Logs that hold not one JSON record (the text format, empty files, other files) are no
/// job to judge: `report` says so on stderr, prints nothing (no page, no trace) and exits
/// 2, as when no log can be read; it passed them with "processes: 0 … verdict: OK" and 0.
/// With one record among them, text lines are counted and skipped as before.
#[test]
fn logs_without_one_json_record_are_not_judged() {
    use acl_ipc_guard::config::Format;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let text = file("job.txt", &shim_log(Format::Text));
    assert!(text.ends_with("job.txt"));
    let as_json = file("job.json", &shim_log(Format::Json));
    // Read as JSON, the job fails: the violation is an error.
    let (code, out, err) = run_args(&[&as_json]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("free.imported (error): 1"), "{out}");

    // The same job written as text: not judged, not passed.
    for json in [false, true] {
        let args: Vec<&str> = if json {
            vec!["--json", &text]
        } else {
            vec![&text]
        };
        let (code, out, err) = run_args(&args);
        assert_eq!((code, out.as_str()), (2, ""), "--json {json}: {err}");
        assert!(
            err.contains(
                "not one JSON record in the logs: 3 text-format lines and 0 other lines skipped"
            ),
            "{err}"
        );
        assert!(err.contains("ACL_IPC_GUARD_FORMAT=json"), "{err}");
        assert!(!err.contains("verdict"), "{err}");
    }
    // No page or trace is written for it either.
    let trace = dir.path().join("t.json");
    let page = dir.path().join("p.html");
    let (code, out, _) = run_args(&[
        "--trace",
        trace.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
        &text,
    ]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(!trace.exists() && !page.exists());

    // Empty files, and files of other lines (named with their file and line), with a
    // text log: the same.
    let empty = file("empty.json", "");
    let (code, out, err) = run_args(&[&empty]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("0 text-format lines and 0 other lines skipped"),
        "{err}"
    );
    let junk = file("junk.log", "hello\n\n{\"not\": \"a record\"}\n");
    let (code, out, err) = run_args(&[&empty, &junk, &text]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("3 text-format lines and 2 other lines skipped"),
        "{err}"
    );
    assert!(err.contains("junk.log:1: not a JSON record"), "{err}");
    assert!(err.contains("junk.log:3: missing"), "{err}");
    // Many other lines: the first few are named, the rest counted.
    let many = file("many.log", &"noise\n".repeat(12));
    let (code, _, err) = run_args(&[&many]);
    assert_eq!(code, 2);
    assert!(err.contains("many.log:5: not a JSON record"), "{err}");
    assert!(!err.contains("many.log:6:"), "{err}");
    assert!(err.contains("and 7 other lines"), "{err}");

    // An unreadable log and a text log: no record either.
    let missing = dir.path().join("nope.json");
    let (code, out, err) = run_args(&[missing.to_str().unwrap(), &text]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("nope.json") && err.contains("not one JSON record"),
        "{err}"
    );

    // One JSON log among them: judged as before, the text lines counted and skipped.
    let (code, out, err) = run_args(&[&text, &as_json, &junk]);
    assert_eq!(code, 1, "{err}");
    assert!(err.is_empty(), "{err}");
    assert!(out.contains("text lines skipped: 3"), "{out}");
    assert!(out.contains("malformed lines:    2"), "{out}");
    assert!(out.contains("junk.log:1: not a JSON record"), "{out}");
    let good = file("good.json", &good_pair().shared());
    let (code, out, _) = run_args(&["--json", &good, &text]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["text_lines"], 3);
    assert_eq!(v["verdict"]["exit_status"], 0);
}

/// A record queued after another thread's later one lies a little back in time in its
/// file (its thread was preempted between its call and the queue): the streaming report
/// holds that much of the file and answers as the in-memory one, which sorts by time.
/// Further back than `MAX_LAG_US` (a clock set back), the logs go to the in-memory report.
#[test]
fn records_a_little_back_in_time_still_stream() {
    let job = |back: i64| {
        let mut j = Job::new();
        j.start(A).start(B);
        j.t += 10_000_000;
        j.malloc(A, 0x10000).malloc(A, 0x20000);
        // The export was made before the second malloc, but queued after it.
        j.t -= back;
        j.export(A, FP, 0x10000, 0);
        j.t += back;
        j.tgid(B, 5200).setpid(A, FP, &[5200]);
        j.import(B, FP, 0x90000).close(B, FP).summary(B);
        j.close(A, FP).free(A, 0x10000).free(A, 0x20000).summary(A);
        j
    };
    for (back, streams) in [(1_500, true), (200_000, true), (400_000, false)] {
        let j = job(back);
        let inputs = j.inputs();
        let r = super::analyze(&inputs);
        assert_eq!(same_when_streamed(&inputs, &r), streams, "{back} µs back");
        assert_eq!(found(&r), vec![], "{back} µs back");
        assert_eq!(r.keys[FP].len(), 6, "{back} µs back");
    }
}

/// One file shared by two processes whose records carry the same time in the other order
/// than the merge's (pid, at the same time): the merge sorts the file, as the in-memory
/// report does, and the timeline is the in-memory one.
#[test]
fn a_shared_file_with_equal_times_is_sorted_by_the_merge() {
    let mut j = Job::new();
    j.start(A).start(B);
    j.malloc(A, 0x10000).export(A, FP, 0x10000, 0).tgid(B, 5200);
    j.import(B, FP, 0x90000);
    // The whitelist at the very same microsecond as the import, written after it.
    j.t -= 100;
    j.setpid(A, FP, &[5200]);
    j.close(B, FP).summary(B);
    j.close(A, FP).free(A, 0x10000).summary(A);
    let inputs = vec![Input::text("shared.json", &j.shared())];
    let r = super::analyze(&inputs);
    assert!(same_when_streamed(&inputs, &r));
    let kinds: Vec<&str> = r.keys[FP].iter().map(|e| e.kind()).collect();
    assert_eq!(&kinds[..3], ["export", "whitelist", "import"]);
}

/// A record that goes back before the first record of its process (its start) would be
/// given to another process by the in-memory report: such a file is read into memory.
#[test]
fn a_record_before_its_start_goes_to_the_in_memory_report() {
    let mut j = Job::new();
    j.start(A).start(B);
    j.t -= 1_000;
    j.malloc(A, 0x10000);
    j.t += 1_000;
    j.free(A, 0x10000).summary(A).summary(B);
    let inputs = j.inputs();
    let r = super::analyze(&inputs);
    assert!(!same_when_streamed(&inputs, &r));
}

/// Logs out of time order (a shared file whose lines are shuffled, given twice) are left
/// to the in-memory report by the command: the same answer as `analyze`, keys sorted.
#[test]
fn logs_out_of_order_are_read_into_memory() {
    let j = good_pair();
    let mut lines: Vec<&str> = j.lines.iter().map(|(_, l)| l.as_str()).collect();
    lines.reverse();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shuffled.json");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let p = path.to_string_lossy().into_owned();
    let mut logs = vec![stream::Log::open(&path), stream::Log::open(&path)];
    assert!(stream::report(&mut logs, true, &mut Vec::new()).is_none());
    let (code, out, err) = run_args(&["--json", &p, &p]);
    let shuffled = lines.join("\n");
    let r = super::analyze(&[Input::text(&p, &shuffled), Input::text(&p, &shuffled)]);
    assert_eq!((code, err.as_str()), (r.exit_status(), ""));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        render_json(&r)
    );
    assert_eq!(r.duplicates, j.lines.len());
}

#[test]
fn fixtures_in_the_tree() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report");
    let entries = std::fs::read_dir(&dir).expect("tests/fixtures/report is part of the tree");
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".json"))
        .collect();
    names.sort();
    let inputs: Vec<Input> = names
        .iter()
        .map(|n| Input {
            name: n.clone(),
            content: std::fs::read(n).map_err(|e| e.to_string()),
        })
        .collect();
    let r = analyze(&inputs);
    let got: Vec<(&str, i64, &str)> = r
        .violations
        .iter()
        .map(|v| (v.rule.as_str(), v.pid, v.source.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("close.exporter-before-importers", 4101, "recheck"),
            ("free.imported", 4102, "log"),
        ],
        "{}",
        render_text(&r)
    );
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(r.text_lines, 1);
}

// ---------------------------------------------------------------- hosts, starts, fork children

/// A start record with the fields of this version: host, bare tgid, parent.
fn start_on<'j>(
    j: &'j mut Job,
    pid: i64,
    host: &str,
    bare_tgid: i64,
    parent: Option<i64>,
) -> &'j mut Job {
    j.seq.insert(pid, 0);
    let mut f = json!({"version": "0.1.0", "mode": "audit", "exe": format!("/bin/p{pid}"), "ledger": "off", "host": host, "bare_tgid": bare_tgid});
    if let Some(p) = parent {
        f["parent"] = p.into();
    }
    j.rec(pid, "start", f)
}

/// Inputs of several jobs' logs, one file per host and pid.
fn host_inputs(jobs: &[(&str, &Job)]) -> Vec<Input> {
    let mut v = Vec::new();
    for (host, j) in jobs {
        for p in j.pids() {
            v.push(Input::text(&format!("{host}/log.{p}.json"), &j.text_of(p)));
        }
    }
    v
}

fn tag_of(r: &Report, i: usize) -> &str {
    &r.processes[i].tag
}

#[test]
fn start_record_round_trips_through_the_parser() {
    use acl_ipc_guard::config::{Format, Mode};
    use acl_ipc_guard::record::{self, Start};
    let want = Start {
        version: "0.1.0",
        mode: Mode::Audit,
        exe: "/opt/x y/bin".into(),
        ledger: "/dev/shm/j".into(),
        host: "node-\"3\"".into(),
        bare_tgid: Some(70_001),
        parent: Some(12),
    };
    let mut rec = record::Record {
        seq: 1,
        ts_us: T0,
        pid: 13,
        tid: 13,
        body: record::Body::Start(Box::new(want.clone())),
    };
    let mut out = Vec::new();
    record::encode(&mut rec, Format::Json, false, &mut out);
    let line = String::from_utf8(out).unwrap();
    let parse::Line::Record(r) = parse::parse_line(0, &line) else {
        panic!("not a record: {line}");
    };
    assert_eq!((r.pid, r.seq, r.ts_us, &*r.event), (13, 1, T0, "start"));
    let parse::Body::Start(s) = &r.body else {
        panic!("{:?}", r.body);
    };
    assert_eq!(
        **s,
        parse::StartInfo {
            version: Some(want.version.to_owned()),
            mode: Some("audit".to_owned()),
            exe: Some(want.exe.clone()),
            ledger: Some(want.ledger.clone()),
            host: Some(want.host.clone()),
            bare_tgid: Some(70_001),
            parent: Some(12),
        }
    );
    // Without bare tgid and parent.
    rec.body = record::Body::Start(Box::new(Start {
        bare_tgid: None,
        parent: None,
        ..want
    }));
    let mut out = Vec::new();
    record::encode(&mut rec, Format::Json, false, &mut out);
    let parse::Line::Record(r) = parse::parse_line(0, &String::from_utf8(out).unwrap()) else {
        panic!();
    };
    let parse::Body::Start(s) = &r.body else {
        panic!();
    };
    assert_eq!((s.bare_tgid, s.parent), (None, None));
}

/// Two hosts run the same job with the same pids, interleaved in time: on node-a it is
/// correct; on node-b the exporter whitelists node-a's bare tgid and closes before its
/// importer. Only node-b's processes are judged, each for what it did.
#[test]
fn colliding_pids_on_two_hosts_stay_apart() {
    let mut a = Job::new();
    let mut b = Job::new();
    b.t += 50; // node-b's records fall between node-a's
    const FP2: &str = "fp:fedcba9876543210";
    start_on(&mut a, A, "node-a", 5100, None);
    start_on(&mut a, B, "node-a", 5200, None);
    start_on(&mut b, A, "node-b", 6100, None);
    start_on(&mut b, B, "node-b", 6200, None);
    a.malloc(A, 0x10000)
        .export(A, FP, 0x10000, 0)
        .setpid(A, FP, &[5200]);
    b.malloc(A, 0x10000)
        .export(A, FP2, 0x10000, 0)
        .setpid(A, FP2, &[5200]);
    a.import(B, FP, 0x90000).close(B, FP).summary(B);
    b.import(B, FP2, 0x90000);
    a.close(A, FP).free(A, 0x10000).summary(A);
    b.close(A, FP2).close(B, FP2).summary(B).summary(A);
    let r = analyze(&host_inputs(&[("node-a", &a), ("node-b", &b)]));

    assert_eq!(r.processes.len(), 4);
    let mut tags: Vec<&str> = r.processes.iter().map(|p| p.tag.as_str()).collect();
    tags.sort_unstable();
    assert_eq!(
        tags,
        ["100@node-a", "100@node-b", "200@node-a", "200@node-b"]
    );
    assert!(r.gaps.is_empty(), "{:?}", r.gaps);
    assert!(r.processes.iter().all(|p| p.end != End::Unknown));
    let got: Vec<(&str, &str, &str)> = r
        .violations
        .iter()
        .map(|v| (v.rule.as_str(), tag_of(&r, v.process), v.source.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (recheck::CLOSE_ORDER, "100@node-b", "recheck"),
            (recheck::NOT_WHITELISTED, "200@node-b", "recheck"),
        ],
        "{}",
        render_text(&r)
    );
    // The importer's bare tgid came from its start record.
    assert!(
        r.violations[1].message.contains("6200"),
        "{}",
        r.violations[1].message
    );
    assert!(r.violations[0].message.contains("[200@node-b]"));
    // node-a's key: its own processes only, whatever node-b did with the same pids.
    let hosts: Vec<&str> = r.keys[FP]
        .iter()
        .map(|e| r.processes[e.process].host.as_deref().unwrap())
        .collect();
    assert!(hosts.iter().all(|h| *h == "node-a"), "{hosts:?}");
    assert_eq!(r.keys[FP].len(), 6);

    let t = render_text(&r);
    assert!(
        t.contains("processes:          4 on 2 hosts (node-a, node-b)"),
        "{t}"
    );
    assert!(t.contains("pid 100@node-b "), "{t}");
    let v = render_json(&r);
    assert_eq!(v["violations"][0]["pid"], A);
    assert_eq!(v["violations"][0]["host"], "node-b");
    let p = &v["processes"][v["violations"][1]["process"].as_u64().unwrap() as usize];
    assert_eq!(
        (p["pid"].as_i64(), p["host"].as_str()),
        (Some(B), Some("node-b"))
    );
    assert_eq!(p["bare_tgid"], 6200);
    assert!(v["keys"][FP2]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["host"] == "node-b"));

    // The same logs in one shared file per host, or all in one file: the same verdicts.
    let one = analyze(&[Input::text("a", &a.shared()), Input::text("b", &b.shared())]);
    assert_eq!(render_json(&one)["violations"], v["violations"]);
}

/// Two containers on one host (one host name, pid namespaces of their own): the same pid,
/// told apart by their starts and bare tgids, alive side by side.
#[test]
fn same_host_and_pid_with_different_starts() {
    let mut x = Job::new();
    let mut y = Job::new();
    y.t += 50;
    start_on(&mut x, 1, "node", 7001, None);
    start_on(&mut y, 1, "node", 7002, None);
    x.export(1, FP, 0x10000, 1);
    y.import(1, FP, 0x90000);
    // The exporter closes while the importer (the other container's pid 1) is alive.
    x.close(1, FP);
    y.close(1, FP);
    let r = analyze(&[
        Input::text("x.json", &x.shared()),
        Input::text("y.json", &y.shared()),
    ]);
    assert_eq!(r.processes.len(), 2);
    assert_eq!(tag_of(&r, 0), "1#1");
    assert_eq!(tag_of(&r, 1), "1#2");
    assert_eq!(found(&r), vec![v(recheck::CLOSE_ORDER, 1, "recheck")]);
    assert_eq!(r.violations[0].process, 0);
    let roles: Vec<(usize, &Detail)> = r.keys[FP]
        .iter()
        .filter(|e| e.kind() == "close")
        .map(|e| (e.process, &e.detail))
        .collect();
    assert_eq!(
        roles,
        [
            (0, &Detail::Close { role: "exporter" }),
            (1, &Detail::Close { role: "importer" })
        ]
    );

    // A pid reused on one host (same namespace, the first process exited): the exporter is
    // gone when the new process imports.
    let mut j = Job::new();
    start_on(&mut j, 1, "node", 1, None);
    j.export(1, FP, 0x10000, 1).summary(1);
    start_on(&mut j, 1, "node", 1, None);
    j.import_ret(1, FP, 0, 507_899);
    let r = analyze(&[Input::text("shared", &j.shared())]);
    assert_eq!(r.processes.len(), 2);
    assert_eq!(found(&r), vec![v(recheck::SOURCE_GONE, 1, "recheck")]);
    assert_eq!(r.violations[0].process, 1);
    assert!(r.violations[0].message.contains("pid 1#2 imports"));
}

#[test]
fn fork_children_are_linked_to_their_parents() {
    let mut j = Job::new();
    start_on(&mut j, A, "node", 5100, None);
    j.export(A, FP, 0x10000, 1);
    start_on(&mut j, B, "node", 5200, Some(A));
    j.import(B, FP, 0x90000).close(B, FP).summary(B);
    // A child whose parent is not in the logs.
    start_on(&mut j, C, "node", 5300, Some(42));
    j.summary(C);
    j.close(A, FP).summary(A);
    let r = j.report();
    let idx = |pid: i64| r.processes.iter().position(|p| p.pid == pid).unwrap();
    assert_eq!(r.processes[idx(B)].parent, Some(idx(A)));
    assert_eq!(r.processes[idx(B)].parent_pid, Some(A));
    assert_eq!(r.processes[idx(C)].parent, None);
    assert_eq!(r.processes[idx(C)].parent_pid, Some(42));
    assert_eq!(r.processes[idx(A)].parent, None);
    assert_eq!(found(&r), vec![]);
    assert!(r.gaps.is_empty());
    let t = render_text(&r);
    assert!(t.contains("child of pid 100;"), "{t}");
    assert!(t.contains("child of pid 42 (not in these logs)"), "{t}");
    let v = render_json(&r);
    let p = &v["processes"][idx(B)];
    assert_eq!(p["parent"], A);
    assert_eq!(p["parent_process"], idx(A));
    assert_eq!(p["host"], "node");
    assert_eq!(p["bare_tgid"], 5200);
    assert!(v["processes"][idx(A)]["parent_process"].is_null());

    // The parent's pid on another host is not the parent.
    let mut other = Job::new();
    start_on(&mut other, A, "elsewhere", 9100, None);
    let mut child = Job::new();
    child.t += 10_000;
    start_on(&mut child, B, "node", 5200, Some(A));
    let r = analyze(&host_inputs(&[("e", &other), ("n", &child)]));
    let b = r.processes.iter().find(|p| p.pid == B).unwrap();
    assert_eq!(b.parent, None);
}

#[test]
fn a_ledger_of_one_name_on_two_hosts_is_not_shared() {
    // The importer was killed (no summary). With one host the shim judged the close order
    // live; the same directory name on two hosts is two ledgers, so the re-check judges.
    let job = |host_b: &str| {
        let mut a = Job::new();
        let mut b = Job::new();
        b.t += 50;
        start_on(&mut a, A, "node-a", 5100, None);
        start_on(&mut b, B, host_b, 5200, None);
        for j in [&mut a, &mut b] {
            for line in j.lines.iter_mut() {
                line.1 = line
                    .1
                    .replace("\"ledger\":\"off\"", "\"ledger\":\"/dev/shm/job\"");
            }
        }
        a.export(A, FP, 0x10000, 1);
        b.import(B, FP, 0x90000);
        a.close(A, FP).summary(A);
        analyze(&host_inputs(&[("a", &a), ("b", &b)]))
    };
    assert_eq!(found(&job("node-a")), vec![]);
    assert_eq!(
        found(&job("node-b")),
        vec![v(recheck::CLOSE_ORDER, A, "recheck")]
    );
}

/// Every kind of record the shim writes, encoded by the shim and read back by the report:
/// the same values come back (the record schema is one, on both sides).
#[test]
fn every_record_the_shim_writes_reads_back_the_same() {
    use acl_ipc_guard::call::{Args, Func, Out, Outcome, ServerEntry};
    use acl_ipc_guard::config::Format;
    use acl_ipc_guard::key::{Key, KeyArg};
    use acl_ipc_guard::record::{self, Action, Body as RBody, KeyRef, Record};
    use acl_ipc_guard::rules::{Rule, Severity};

    let key = Key::from_bytes(b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    let fp = key.key_fp().to_string();
    let karg = KeyArg::Key(key);
    let ok = |out: Out| Outcome {
        ret: 0,
        forwarded: true,
        out,
        dur_ns: 1234,
        untracked: false,
    };
    let read = |body: RBody, seq: u64| {
        let mut rec = Record {
            seq,
            ts_us: T0 + seq as i64,
            pid: 4242,
            tid: 4243,
            body,
        };
        let mut out = Vec::new();
        record::encode(&mut rec, Format::Json, false, &mut out);
        let line = String::from_utf8(out).unwrap();
        let parse::Line::Record(r) = parse::parse_line(0, &line) else {
            panic!("not read back: {line}");
        };
        assert_eq!(
            (r.seq, r.ts_us, r.pid),
            (seq, T0 + seq as i64, 4242),
            "{line}"
        );
        (r, line)
    };
    let call_of = |r: &parse::Rec| match &r.body {
        parse::Body::Call(c) => (**c).clone(),
        b => panic!("not a call: {b:?}"),
    };

    // One call of every intercepted function, with its arguments and out-values.
    let mut seen = Vec::new();
    let calls: Vec<(Func, Args, Out)> = vec![
        (
            Func::GetExportKey,
            Args::GetExportKey {
                dev_ptr: 0x10000,
                size: 8192,
                key_buf: 0x7000,
                len: 65,
                flags: 1,
                key: Some(key),
            },
            Out::default(),
        ),
        (
            Func::SetImportPid,
            Args::SetImportPid {
                key: karg,
                pid_ptr: 0x8000,
                pids: Some(vec![5, 6]),
                num: 2,
            },
            Out::default(),
        ),
        (
            Func::ImportPidInterServer,
            Args::ImportPidInterServer {
                key: karg,
                server_pids: 0x9000,
                entries: Some(vec![ServerEntry {
                    sdid: 3,
                    pid_ptr: 0xa000,
                    num: 1,
                    pids: Some(vec![77]),
                }]),
                num: 1,
            },
            Out::default(),
        ),
        (
            Func::ImportByKey,
            Args::ImportByKey {
                out_ptr: 0x6000,
                key: karg,
                flags: 1,
            },
            Out {
                dev_ptr: Some(0x90000),
                ..Out::default()
            },
        ),
        (
            Func::SetAttr,
            Args::SetAttr {
                key: karg,
                attr_type: 0,
                attr: 1,
            },
            Out::default(),
        ),
        (Func::Close, Args::Close { key: karg }, Out::default()),
        (
            Func::DeviceGetBareTgid,
            Args::DeviceGetBareTgid { out_ptr: 0x5000 },
            Out {
                pid: Some(31337),
                ..Out::default()
            },
        ),
        (
            Func::Malloc,
            Args::Malloc {
                out_ptr: 0x4000,
                size: 4096,
                policy: 2,
            },
            Out {
                dev_ptr: Some(0x20000),
                ..Out::default()
            },
        ),
        (
            Func::MallocAlign32,
            Args::Malloc {
                out_ptr: 0x4000,
                size: 64,
                policy: 0,
            },
            Out {
                dev_ptr: Some(0x21000),
                ..Out::default()
            },
        ),
        (
            Func::MallocCached,
            Args::Malloc {
                out_ptr: 0x4000,
                size: 128,
                policy: 1,
            },
            Out {
                dev_ptr: Some(0x22000),
                ..Out::default()
            },
        ),
        (Func::Free, Args::Free { dev_ptr: 0x20000 }, Out::default()),
    ];
    for (i, (func, args, out)) in calls.into_iter().enumerate() {
        let (r, line) = read(
            RBody::Call {
                func,
                args: args.clone(),
                outcome: ok(out),
            },
            i as u64 + 1,
        );
        let c = call_of(&r);
        seen.push(func);
        assert_eq!(
            (&*c.func, c.ret, c.forwarded),
            (func.name(), Some(0), true),
            "{line}"
        );
        match args {
            Args::GetExportKey {
                dev_ptr,
                size,
                flags,
                ..
            } => {
                assert_eq!(
                    (c.dev_ptr, c.size, c.flags),
                    (Some(dev_ptr as u64), Some(size as u64), Some(flags))
                );
                assert_eq!(c.out_key_fp.as_deref(), Some(fp.as_str()), "{line}");
            }
            Args::SetImportPid { num, .. } => {
                assert_eq!(c.key_fp.as_deref(), Some(fp.as_str()));
                assert_eq!(
                    (c.pids.clone(), c.num),
                    (parse::PidArg::List(vec![5, 6]), Some(num as u64)),
                    "{line}"
                );
            }
            Args::ImportPidInterServer { .. } => {
                assert_eq!(c.server_pids, Some(vec![(3, vec![77])]), "{line}");
                assert_eq!(c.num, Some(1));
            }
            Args::ImportByKey { out_ptr, flags, .. } => {
                assert_eq!(
                    (c.dev_ptr, c.flags, c.out_dev_ptr),
                    (Some(out_ptr as u64), Some(flags), Some(0x90000))
                );
                assert_eq!(c.key_fp.as_deref(), Some(fp.as_str()));
            }
            Args::SetAttr {
                attr_type, attr, ..
            } => {
                assert_eq!(
                    (c.attr_type, c.attr),
                    (Some(u64::from(attr_type)), Some(attr)),
                    "{line}"
                );
            }
            Args::Close { .. } => assert_eq!(c.key_fp.as_deref(), Some(fp.as_str())),
            Args::DeviceGetBareTgid { .. } => assert_eq!(c.out_pid, Some(31337), "{line}"),
            Args::Malloc { out_ptr, size, .. } => {
                assert_eq!(
                    (c.dev_ptr, c.size),
                    (Some(out_ptr as u64), Some(size as u64)),
                    "{line}"
                );
                assert!(c.out_dev_ptr.is_some());
            }
            Args::Free { dev_ptr } => assert_eq!(c.dev_ptr, Some(dev_ptr as u64)),
        }
    }
    assert_eq!(
        seen,
        Func::ALL.to_vec(),
        "a call of every intercepted function"
    );

    // A blocked call, and an export the ledger could not hold.
    let (r, _) = read(
        RBody::Call {
            func: Func::Close,
            args: Args::Close { key: karg },
            outcome: Outcome {
                ret: 100000,
                forwarded: false,
                out: Out::default(),
                dur_ns: 0,
                untracked: false,
            },
        },
        20,
    );
    let c = call_of(&r);
    assert_eq!(
        (c.ret, c.forwarded, c.status()),
        (Some(100000), false, "blocked")
    );
    let (r, line) = read(
        RBody::Call {
            func: Func::GetExportKey,
            args: Args::GetExportKey {
                dev_ptr: 0x10000,
                size: 4096,
                key_buf: 1,
                len: 65,
                flags: 0,
                key: Some(key),
            },
            outcome: Outcome {
                untracked: true,
                ..ok(Out::default())
            },
        },
        21,
    );
    assert!(call_of(&r).untracked, "{line}");

    // A violation, a summary, an error.
    let (r, line) = read(
        RBody::Violation(Box::new(record::Violation {
            rule: Rule::CloseExporterBeforeImporters,
            severity: Severity::Error,
            action: Action::Blocked,
            func: Some(Func::Close),
            message: "importers first \"quoted\"\nnext line".into(),
            key: Some(KeyRef::Key(key)),
            backtrace: None,
        })),
        22,
    );
    let parse::Body::Violation(v) = &r.body else {
        panic!("{line}")
    };
    assert_eq!(
        (
            v.rule.as_str(),
            v.severity.as_str(),
            v.action.as_deref(),
            v.func.as_str(),
            v.key_fp.as_deref()
        ),
        (
            "close.exporter-before-importers",
            "error",
            Some("blocked"),
            "aclrtIpcMemClose",
            Some(fp.as_str())
        )
    );
    assert_eq!(v.message, "importers first \"quoted\"\nnext line");
    let (r, line) = read(
        RBody::Summary {
            calls: 9,
            violations: vec![(Rule::FreeImported, 3), (Rule::ExitLeak, 1)],
            blocked: 2,
            leaks: 1,
            dropped: 5,
        },
        23,
    );
    let parse::Body::Summary {
        dropped,
        violations,
    } = &r.body
    else {
        panic!("{line}")
    };
    assert_eq!(*dropped, Some(5));
    let mut violations = violations.clone();
    violations.sort();
    assert_eq!(
        violations,
        vec![("exit.leak".to_owned(), 1), ("free.imported".to_owned(), 3)]
    );
    let (r, _) = read(
        RBody::Error {
            message: "ledger full".into(),
        },
        24,
    );
    assert!(matches!(&r.body, parse::Body::Error { message } if message == "ledger full"));
}

/// The parser's fast paths (names found by a `match`, fingerprints and times kept in place,
/// the census's lean reading of a call) meet lines they do not expect: escaped strings,
/// whitespace, unknown members, a fingerprint too long to be kept in place. Each variant
/// must stream, and read as the plain job does.
#[test]
fn hand_written_lines_read_as_the_shims_own() {
    let plain = good_pair();
    let base = analyze(&plain.inputs());
    type Edit = fn(&str) -> String;
    let same: [(&str, Edit); 3] = [
        ("escaped fingerprints", |l| {
            l.replace("\"fp:", "\"fp\\u003a")
        }),
        ("whitespace", |l| {
            l.replace("\":", "\" :\t").replace(",\"", " ,  \"")
        }),
        ("unknown members", |l| {
            l.replacen(
                '{',
                "{\"zz\":{\"key_fp\":\"fp:x\",\"args\":[1]},\"args2\":{},",
                1,
            )
        }),
    ];
    for (what, edit) in same {
        let mut j = good_pair();
        for (_, l) in &mut j.lines {
            *l = edit(l);
        }
        let inputs = j.inputs();
        let r = analyze(&inputs);
        assert!(same_when_streamed(&inputs, &r), "{what}");
        assert_eq!(render_json(&r), render_json(&base), "{what}");
    }
    // A fingerprint longer than the 32 bytes kept in place: the same timeline under it.
    let long = format!("{FP}-{}", "0123456789".repeat(4));
    let mut j = good_pair();
    for (_, l) in &mut j.lines {
        *l = l.replace(FP, &long);
    }
    let inputs = j.inputs();
    let r = analyze(&inputs);
    assert!(same_when_streamed(&inputs, &r));
    let kinds = |r: &Report, fp: &str| -> Vec<(&'static str, i64)> {
        r.keys[fp].iter().map(|e| (e.kind(), e.pid)).collect()
    };
    assert_eq!(kinds(&r, &long), kinds(&base, FP));
    assert_eq!(
        (found(&r), r.exit_status()),
        (found(&base), base.exit_status())
    );
}

/// `describe` builds its line from pieces; this is the line as `format!` words it, the
/// way it was written before, for every kind of event and edge values.
#[test]
fn describe_words_events_as_format_does() {
    use crate::report::parse::PidArg;
    let ev = |detail: Detail| Event {
        ts: "2026-12-02T02:07:07.483502Z".into(),
        ts_us: 0,
        process: 0,
        pid: 1,
        seq: 1,
        func: "aclrtFree".into(),
        ret: Some(0),
        status: Some("ok"),
        detail,
    };
    let num = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |n| n.to_string());
    let pids = |p: &[i64]| {
        let v: Vec<String> = p.iter().map(i64::to_string).collect();
        format!("[{}]", v.join(", "))
    };
    let vals = [None, Some(0), Some(1), Some(2), Some(10), Some(u64::MAX)];
    let mut cases: Vec<(Detail, String)> = Vec::new();
    for a in vals {
        for b in vals {
            let mode = match b {
                Some(0) => " (whitelist mode)",
                Some(1) => " (pid validation disabled)",
                _ => "",
            };
            let dev = a.map_or_else(|| "?".to_owned(), |x| format!("{x:#x}"));
            cases.push((
                Detail::Export {
                    dev_ptr: a,
                    size: b,
                    flags: b,
                },
                format!("devPtr={dev} size={} flags={}{mode}", num(b), num(b)),
            ));
            cases.push((
                Detail::SetAttr {
                    attr_type: a,
                    attr: b,
                },
                format!("type {} attr {}", num(a), num(b)),
            ));
            cases.push((
                Detail::Import {
                    address: a,
                    flags: b,
                },
                match a {
                    Some(x) => format!("-> {x:#x} (flags {})", num(b)),
                    None => format!("flags {}", num(b)),
                },
            ));
        }
        let list = vec![0, -1, i64::MIN, i64::MAX, 23774];
        cases.push((
            Detail::Whitelist {
                pids: PidArg::List(list.clone()),
                num: a,
            },
            format!("pids {} num {}", pids(&list), num(a)),
        ));
        cases.push((
            Detail::Whitelist {
                pids: PidArg::List(vec![]),
                num: a,
            },
            format!("pids [] num {}", num(a)),
        ));
        cases.push((
            Detail::Whitelist {
                pids: PidArg::Unread("\"0x7ff\"".into()),
                num: a,
            },
            format!("pid \"0x7ff\" (not read) num {}", num(a)),
        ));
        cases.push((
            Detail::InterServer {
                server_pids: Some(vec![(7, list.clone()), (u64::MAX, vec![])]),
                num: a,
            },
            format!(
                "serverPids {{sdid 7: {}; sdid {}: []}} num {}",
                pids(&list),
                u64::MAX,
                num(a)
            ),
        ));
    }
    for d in [0, 1, 0xabc, u64::MAX] {
        for role in ["importer", "exporter"] {
            let how = if role == "importer" {
                "(an imported address)"
            } else {
                "(exported memory)"
            };
            cases.push((
                Detail::Free { dev_ptr: d, role },
                format!("devPtr={d:#x} {how}"),
            ));
        }
    }
    cases.push((
        Detail::Whitelist {
            pids: PidArg::Null,
            num: Some(1),
        },
        "pid NULL".into(),
    ));
    cases.push((
        Detail::InterServer {
            server_pids: None,
            num: None,
        },
        "serverPids NULL".into(),
    ));
    cases.push((Detail::Close { role: "importer" }, "role importer".into()));
    for action in [None, Some("blocked".to_owned())] {
        let v = Violation {
            rule: "close.order".into(),
            severity: "error".into(),
            process: 0,
            pid: 1,
            func: "aclrtFree".into(),
            key_fp: None,
            source: Source::Recheck,
            ts: String::new(),
            ts_us: 0,
            seq: 1,
            message: "m: \"q\"".into(),
            action: action.clone(),
            count: 1,
        };
        let a = action.map(|a| format!(", {a}")).unwrap_or_default();
        cases.push((
            Detail::Violation(Box::new(v)),
            format!("close.order (error{a}, recheck): m: \"q\""),
        ));
    }
    for (d, want) in cases {
        assert_eq!(render::describe(&ev(d.clone())), want, "{d:?}");
    }
}

// ------------------------------------------------------------------ the canonical `call` reader

/// `call` lines exactly as the shim lays them out (see `src/record/json.rs`).
fn canonical_calls() -> Vec<String> {
    let ts = "\"ts\":\"2026-12-02T02:07:07.491022Z\"";
    vec![
        format!("{{{ts},\"seq\":2,\"pid\":23761,\"tid\":23761,\"event\":\"call\",\"fn\":\"aclrtIpcMemGetExportKey\",\"args\":{{\"devPtr\":\"0x200000000000\",\"size\":4096,\"key\":\"0x7ffec27423b0\",\"len\":65,\"flags\":0}},\"out\":{{\"key_fp\":\"fp:39abe975e365a547\"}},\"ret\":0,\"forwarded\":true,\"dur_ns\":2905}}"),
        format!("{{{ts},\"seq\":3,\"pid\":23761,\"tid\":23762,\"event\":\"call\",\"fn\":\"aclrtIpcMemSetImportPid\",\"args\":{{\"key_fp\":\"fp:39abe975e365a547\",\"pid\":[23773,0,12],\"num\":3}},\"out\":{{}},\"ret\":507899,\"forwarded\":false,\"dur_ns\":0}}"),
        format!("{{{ts},\"seq\":4,\"pid\":7,\"tid\":7,\"event\":\"call\",\"fn\":\"aclrtFree\",\"args\":{{\"devPtr\":\"0x10\"}},\"out\":{{}},\"ret\":-1,\"forwarded\":true,\"dur_ns\":60}}"),
        format!("{{{ts},\"seq\":5,\"pid\":7,\"tid\":7,\"event\":\"call\",\"fn\":\"aclrtIpcMemGetExportKey\",\"args\":{{\"devPtr\":\"0x20\",\"size\":1,\"key\":\"0x30\",\"len\":65,\"flags\":0}},\"out\":{{\"key_fp\":\"fp:1\"}},\"ret\":0,\"forwarded\":true,\"dur_ns\":9,\"ledger\":\"untracked\"}}"),
        format!("{{{ts},\"seq\":6,\"pid\":7,\"tid\":7,\"event\":\"call\",\"fn\":\"aclrtIpcMemImportPidInterServer\",\"args\":{{\"key_fp\":\"fp:1\",\"serverPids\":[{{\"sdid\":1,\"pid\":[2,3]}}],\"num\":1}},\"out\":{{}},\"ret\":0,\"forwarded\":true,\"dur_ns\":1}}"),
        format!("{{{ts},\"seq\":7,\"pid\":7,\"tid\":7,\"event\":\"call\",\"fn\":\"aclrtIpcMemImportByKey\",\"args\":{{\"devPtr\":\"0x7ffd\",\"key_fp\":null,\"flags\":0}},\"out\":{{\"devPtr\":\"0x300000000000\"}},\"ret\":0,\"forwarded\":true,\"dur_ns\":5}}"),
        format!("{{{ts},\"seq\":8,\"pid\":7,\"tid\":7,\"event\":\"call\",\"fn\":\"aclrtSomethingNew\",\"args\":{{\"devPtr\":\"0xZZ\",\"key_fp\":\"fp:\u{e9}\u{2713}\"}},\"out\":{{\"pid\":-3}},\"ret\":0,\"forwarded\":false,\"dur_ns\":18446744073709551615}}"),
    ]
}

/// Every canonical `call` line is read by the fast reader, and both readings (the census's
/// and the merge's) give what serde alone gives.
#[test]
fn the_canonical_call_reader_reads_what_serde_reads() {
    for l in canonical_calls() {
        assert!(parse::read_as_canonical_call(&l), "{l}");
        for (fast, slow) in parse::read_fast_and_slow(&l) {
            assert_eq!(fast, slow, "{l}");
            assert!(fast.starts_with("Record("), "{l}: {fast}");
        }
    }
}

/// Canonical in layout but with a value that makes the line malformed (a pid or seq out of
/// range, a time that is no time): the general reading words why, as before.
#[test]
fn a_canonical_call_with_a_bad_value_is_malformed_as_before() {
    let base = &canonical_calls()[2];
    for (from, to) in [
        ("\"pid\":7", "\"pid\":9223372036854775808"),
        ("\"seq\":4", "\"seq\":-4"),
        ("\"seq\":4", "\"seq\":18446744073709551616"),
        ("2026-12-02T02:07:07.491022Z", "2026-13-02T02:07:07.491022Z"),
        ("2026-12-02T02:07:07.491022Z", "yesterday"),
    ] {
        let l = base.replacen(from, to, 1);
        assert!(parse::read_as_canonical_call(&l), "{l}");
        for (fast, slow) in parse::read_fast_and_slow(&l) {
            assert_eq!(fast, slow, "{l}");
            assert!(fast.starts_with("Malformed("), "{l}: {fast}");
        }
    }
    // A `ret` or `tid` out of range is no reason to skip the line: it reads as `None`.
    let l = base.replacen("\"ret\":-1", "\"ret\":-9223372036854775809", 1);
    for (fast, slow) in parse::read_fast_and_slow(&l) {
        assert_eq!(fast, slow, "{l}");
        assert!(fast.contains("ret: None"), "{l}: {fast}");
    }
}

/// Lines off the canonical layout in any way are not read by the fast reader, and are read
/// as serde reads them: escapes, members reordered, extra spaces, unknown members, CRLF
/// kept inside, a member missing, a line cut short anywhere.
#[test]
fn lines_off_the_canonical_call_layout_take_the_full_reading() {
    let base = &canonical_calls()[0];
    let swap = |from: &str, to: &str| {
        assert!(base.contains(from), "{from}");
        base.replacen(from, to, 1)
    };
    let mut defeating = vec![
        // Escapes in a name, a value the census uses, the time, a member name.
        swap("aclrtIpcMemGetExportKey", "aclrtIpcMemGetExp\\u006frtKey"),
        swap("fp:39abe975e365a547", "fp:39abe975e365a54\\u0037"),
        swap("07.491022Z", "07.49102\\u0032Z"),
        swap("\"devPtr\"", "\"devP\\u0074r\""),
        // Reordered members.
        swap("\"seq\":2,\"pid\":23761", "\"pid\":23761,\"seq\":2"),
        swap(
            ",\"ret\":0,\"forwarded\":true",
            ",\"forwarded\":true,\"ret\":0",
        ),
        // Extra spaces.
        swap("{\"ts\"", "{ \"ts\""),
        swap("\"seq\":2", "\"seq\": 2"),
        swap(",\"pid\"", ", \"pid\""),
        swap("\"args\":{", "\"args\": {"),
        // Unknown members, at the top and at the end.
        swap(",\"event\"", ",\"zz\":1,\"event\""),
        swap("\"dur_ns\":2905}", "\"dur_ns\":2905,\"zz\":[1]}"),
        swap("\"dur_ns\":2905}", "\"dur_ns\":2905,\"ledger\":\"other\"}"),
        // A carriage return inside, a tab inside a string, a value of another type.
        swap(",\"seq\"", "\r,\"seq\""),
        swap("GetExportKey", "Get\tExportKey"),
        swap("\"seq\":2", "\"seq\":2.0"),
        swap("\"seq\":2", "\"seq\":02"),
        swap("\"pid\":23761", "\"pid\":\"23761\""),
        swap("\"forwarded\":true", "\"forwarded\":1"),
        // Members missing.
        swap(",\"tid\":23761", ""),
        swap(",\"dur_ns\":2905", ""),
        swap(",\"out\":{\"key_fp\":\"fp:39abe975e365a547\"}", ""),
        // Not a call: the general reader's.
        swap("\"event\":\"call\"", "\"event\":\"calls\""),
        // Garbage after the end.
        format!("{base}x"),
        format!("{base}}}"),
    ];
    // Cut short anywhere.
    defeating.extend((1..base.len()).map(|n| base[..n].to_string()));
    for l in &defeating {
        assert!(!parse::read_as_canonical_call(l), "{l}");
        for (fast, slow) in parse::read_fast_and_slow(l) {
            assert_eq!(fast, slow, "{l}");
        }
    }
    // CRLF, spaces around: the line is trimmed as before, and it reads as without them.
    for padded in [format!("{base}\r"), format!(" {base} \t")] {
        for ((fast, slow), (plain, _)) in parse::read_fast_and_slow(&padded)
            .into_iter()
            .zip(parse::read_fast_and_slow(base))
        {
            assert_eq!(fast, slow);
            assert_eq!(fast, plain);
        }
    }
}

/// The shim's own `ts` read from its minute's start (kept from the line before) is what the
/// full reading gives, across minutes, hours, days and years, and for times that are not
/// the shim's (a leap second, an offset, nanoseconds, bad digits, a bad date).
#[test]
fn a_ts_read_from_its_kept_minute_is_what_the_full_reading_gives() {
    let ts = [
        "2026-12-02T02:07:07.491022Z",
        "2026-12-02T02:07:59.999999Z",
        "2026-12-02T02:08:00.000000Z",
        "2026-12-02T02:07:00.000001Z",
        "2026-12-31T23:59:59.999999Z",
        "2027-01-01T00:00:00.000000Z",
        "2024-02-29T12:00:30.500000Z",
        "1969-12-31T23:59:59.999999Z",
        "2026-12-02T02:07:60.000000Z",
        "2026-12-02T02:07:61.000000Z",
        "2026-12-02T02:07:6x.000000Z",
        "2026-12-02T02:07:07.49102xZ",
        "2026-12-02T02:07:07.491022z",
        "2026-12-02T02:07:07,491022Z",
        "2026-13-02T02:07:07.491022Z",
        "2026-12-02T24:07:07.491022Z",
        "2026-12-02 02:07:07.491022Z",
        "2026-12-02T03:07:07.491022+01:00",
        "2026-12-02T02:07:07.491022123Z",
        "2026-12-02T02:07:07.4910Z",
        "2026-12-02T02:07:07.491022Z",
        "2026-12-02T02:07:-7.491022Z",
        "\u{e9}026-12-02T02:07:07.49102Z",
    ];
    // Twice over, so that each is read with another's minute kept and with its own.
    for t in ts.iter().chain(ts.iter()).chain(ts.iter().rev()) {
        let (fast, slow) = parse::ts_fast_and_slow(t);
        assert_eq!(fast, slow, "{t}");
    }
}

/// The streaming `--json` report of `inputs` written to `out` from files: its exit status
/// and how the writing went; `None` when it left the logs to the in-memory report.
fn streamed_json_to(
    inputs: &[Input],
    out: &mut (dyn std::io::Write + Send),
) -> Option<(i32, std::io::Result<()>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut logs = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let p = dir.path().join(format!("{i}.json"));
        std::fs::write(&p, input.content.as_ref().unwrap()).unwrap();
        let mut log = stream::Log::open(&p);
        log.name.clone_from(&input.name);
        logs.push(log);
    }
    stream::report(&mut logs, true, out)
}

/// The in-memory report's JSON, as `run` writes it.
fn in_memory_json(inputs: &[Input]) -> String {
    let mut whole = Vec::new();
    write_json(&super::analyze(inputs), &mut whole).unwrap();
    String::from_utf8(whole).unwrap()
}

#[test]
fn keys_written_straight_out_or_through_the_temporary_file_read_byte_for_byte_the_same() {
    // One key: its place in `keys` is the in-memory report's, so every byte must match.
    // Without a shim `error` record the keys go straight to the output; with one they
    // wait in the temporary file until the `errors` before them are known.
    let plain = good_pair();
    let mut with_error = good_pair();
    with_error.rec(A, "error", json!({"message": "ledger \"gone\"\nfor good"}));
    // No key at all: `"keys": {}` as the in-memory report writes it, on both paths.
    let mut no_key = Job::new();
    no_key
        .start(A)
        .malloc(A, 0x10000)
        .free(A, 0x10000)
        .summary(A);
    let mut no_key_error = Job::new();
    no_key_error
        .start(A)
        .rec(A, "error", json!({"message": "x"}))
        .summary(A);
    for (name, j, errors) in [
        ("one key", &plain, false),
        ("one key, a shim error", &with_error, true),
        ("no key", &no_key, false),
        ("no key, a shim error", &no_key_error, true),
    ] {
        let inputs = j.inputs();
        let mut out = Vec::new();
        let (code, res) = streamed_json_to(&inputs, &mut out).expect(name);
        res.unwrap();
        let want = in_memory_json(&inputs);
        assert_eq!(String::from_utf8(out).unwrap(), want, "{name}");
        assert_eq!(code, j.report().exit_status(), "{name}");
        assert_eq!(want.contains("\"errors\": []"), !errors, "{name}");
        assert_eq!(
            want.contains("\"keys\": {}"),
            name.starts_with("no key"),
            "{name}"
        );
    }
}

/// An output that takes `room` bytes, then fails as a closed pipe does.
struct ClosedAfter {
    room: usize,
    took: Vec<u8>,
    failed: usize,
}

impl std::io::Write for ClosedAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.took.len() >= self.room {
            self.failed += 1;
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        let n = buf.len().min(self.room - self.took.len());
        self.took.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_output_closed_while_keys_go_straight_out_still_gives_the_verdict() {
    // Many keys, the last one closed by its exporter first (an error the re-check finds
    // at the end): the output closes after a few bytes, long before that key is written.
    let mut j = Job::new();
    j.start(A).start(B);
    let fps: Vec<String> = (0..400).map(|i| format!("fp:{i:016x}")).collect();
    for (i, fp) in fps.iter().enumerate() {
        let dev = 0x10000 + 0x1000 * i as u64;
        j.export(A, fp, dev, 1)
            .import(B, fp, 0x900000 + 0x1000 * i as u64);
        if i + 1 == fps.len() {
            j.close(A, fp).close(B, fp);
        } else {
            j.close(B, fp).close(A, fp);
        }
    }
    j.summary(B).summary(A);
    let inputs = j.inputs();
    let whole = in_memory_json(&inputs);
    for room in [0, 10, 5000] {
        let mut out = ClosedAfter {
            room,
            took: Vec::new(),
            failed: 0,
        };
        let (code, res) = streamed_json_to(&inputs, &mut out).expect("streamed");
        assert_eq!(code, 1, "room {room}");
        assert_eq!(
            res.unwrap_err().kind(),
            std::io::ErrorKind::BrokenPipe,
            "room {room}"
        );
        // What it took is the report's start; once closed it was not written to again
        // and again (once by the keys' writer, once by the report's end at most).
        assert!(whole.as_bytes().starts_with(&out.took), "room {room}");
        assert!(out.failed <= 2, "room {room}: {} failed writes", out.failed);
    }
    // Written whole, the verdict is the same.
    let mut out = Vec::new();
    let (code, res) = streamed_json_to(&inputs, &mut out).unwrap();
    res.unwrap();
    assert_eq!(code, 1);
    let got: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(got, serde_json::from_str::<Value>(&whole).unwrap());
}

/// The text report writes each event's line in place, padding by characters: lines that
/// defeat an ASCII-only, byte-counted or escape-free writer (a host with `ô` in the tag, a
/// function name longer than its column or holding control characters, a violation whose
/// message holds a newline) come out as `format!` and `clean` made them.
#[test]
fn text_event_lines_are_what_format_made_of_them() {
    use crate::report::parse::PidArg;
    let proc_ = |tag: &str| Process::named(7, tag, Some("hôst"));
    let procs = vec![proc_("7@hôst"), proc_("1234567890@a-long-host")];
    let ev = |process: usize, func: &str, status: Option<&'static str>, detail: Detail| Event {
        ts: "2026-12-02T02:07:07.483502Z".into(),
        ts_us: 0,
        process,
        pid: 7,
        seq: 3,
        func: func.to_owned().into(),
        ret: status.map(|_| 0),
        status,
        detail,
    };
    let violation = Violation {
        rule: "free.imported".into(),
        severity: "error".into(),
        process: 0,
        pid: 7,
        func: "aclrtFree".into(),
        key_fp: Some("fp:1".into()),
        source: Source::Log,
        ts: "t".into(),
        ts_us: 0,
        seq: 3,
        message: "two\nlines \u{1b}[31m é".into(),
        action: Some("reported".into()),
        count: 1,
    };
    let events = vec![
        ev(
            0,
            "aclrtIpcMemGetExportKey",
            Some("ok"),
            Detail::Export {
                dev_ptr: Some(0x1000),
                size: Some(8),
                flags: Some(0),
            },
        ),
        ev(
            1,
            "éééééééééééééééééééééééééééééééééééé_longer_than_31",
            Some("blocked"),
            Detail::Whitelist {
                pids: PidArg::Unread("\"\t\"".into()),
                num: Some(3),
            },
        ),
        ev(
            5,
            "fn\twith\u{7}controls",
            Some("failed"),
            Detail::Close { role: "importer" },
        ),
        ev(0, "aclrtFree", None, Detail::Violation(Box::new(violation))),
    ];
    let mut want = String::new();
    want.push_str(&format!(
        "  fp:x  exported by pid {} at {}\n",
        procs[0].tag, events[0].ts
    ));
    for e in &events {
        let line = format!(
            "{}  pid {:<7} {:<11} {:<31} {:<7} {}",
            e.ts,
            procs.get(e.process).map_or("?", |p| p.tag.as_str()),
            e.kind(),
            e.func,
            e.status.unwrap_or("-"),
            render::describe(e)
        );
        want.push_str(&format!("    {}\n", render::clean(line)));
    }
    let got = render::key_text("fp:x", &events, &procs);
    assert_eq!(got, want);
    assert!(got.contains("\\u{a}") && got.contains("?  "), "{got}");
}

/// The sweep makes a new key room for as many events as records name it (16 at most)
/// and hashes each fingerprint once: a key with more events than that room, closed by its
/// importer, by a process that never imported it and by its exporter, keeps every event
/// in order, with each close's role, streamed or not.
#[test]
fn a_key_with_many_events_keeps_them_all_in_order_and_their_roles() {
    let mut j = Job::new();
    j.start(A).start(B).start(C);
    j.export(A, FP, 0x1000, 0);
    for n in 0..20 {
        j.setpid(A, FP, &[B, n + 1]);
    }
    j.import(B, FP, 0x9000)
        .close(B, FP)
        .close(C, FP)
        .close(A, FP)
        .summary(A)
        .summary(B)
        .summary(C);
    let r = j.report();
    let events = &r.keys[FP];
    let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
    let mut want = vec!["export"];
    want.extend(["whitelist"; 20]);
    want.extend(["import", "close", "close", "close"]);
    assert_eq!(kinds, want);
    let roles: Vec<&str> = events
        .iter()
        .filter_map(|e| match e.detail {
            Detail::Close { role } => Some(role),
            _ => None,
        })
        .collect();
    assert_eq!(
        roles,
        ["importer", "neither exporter nor importer", "exporter"]
    );
    assert!(events.windows(2).all(|w| w[0].ts_us <= w[1].ts_us));
    assert!(same_when_streamed(&j.inputs(), &r));
}

/// The sweep keeps a process's imported and exported fingerprints in place, in sets
/// ordered as their text was when they were `String`s (the order keys that finish
/// together are written in): short ones kept inline and long ones on the heap alike.
#[test]
fn fingerprints_kept_in_place_order_as_their_text() {
    use crate::report::parse::Fp;
    let long = "fp:".to_owned() + &"z".repeat(40);
    let words = [
        "fp:b",
        "fp:a",
        "fp:ab",
        "",
        "fp:\u{e9}",
        long.as_str(),
        "fp:B",
        "fp:a\0",
    ];
    let mut by_text: Vec<&str> = words.to_vec();
    by_text.sort();
    let set: std::collections::BTreeSet<Fp> = words.iter().map(|w| Fp::from(*w)).collect();
    let got: Vec<&str> = set.iter().map(|f| f.as_str()).collect();
    assert_eq!(got, by_text);
    assert!(set.contains("fp:ab") && !set.contains("fp:zz"));
}
