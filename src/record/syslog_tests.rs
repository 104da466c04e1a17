//! The syslog sink: the RFC 5424 framing and the severity table, then the sink itself
//! against real unix datagram sockets (a daemon that reads, one that is absent, one that
//! restarts, one that stops reading).

use super::syslog::{self, header, host_field, sev, severity};
use super::*;
use crate::call::{Args, Func, Out, Outcome};
use crate::config::{Config, Format, LogTarget};
use crate::rules::{Rule, Severity};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

fn rec(seq: u64, body: Body) -> Record {
    Record {
        seq,
        ts_us: 1_795_468_025_123_456,
        pid: 4242,
        tid: 4243,
        body,
    }
}

fn violation(severity: Severity, action: Action) -> Body {
    Body::Violation(Box::new(Violation {
        rule: Rule::CloseUnknown,
        severity,
        action,
        func: Some(Func::Close),
        message: "m".into(),
        key: None,
        backtrace: None,
    }))
}

/// A small successful `call` record's body (also used by the writer's queue tests).
pub(super) fn call() -> Body {
    Body::Call {
        func: Func::DeviceGetBareTgid,
        args: Args::DeviceGetBareTgid { out_ptr: 0x10 },
        outcome: Outcome {
            ret: 0,
            forwarded: true,
            out: Out::default(),
            dur_ns: 5,
            untracked: false,
        },
    }
}

fn summary() -> Body {
    Body::Summary {
        calls: 1,
        violations: vec![],
        blocked: 0,
        leaks: 0,
        dropped: 0,
    }
}

fn start() -> Body {
    Body::Start(Box::new(Start {
        version: "0.1.0",
        mode: crate::config::Mode::Audit,
        exe: "/bin/x".into(),
        ledger: "off".into(),
        host: "node-7".into(),
        bare_tgid: None,
        parent: None,
    }))
}

#[test]
fn severities_follow_the_readme_table() {
    assert_eq!(severity(&start()), sev::INFO);
    assert_eq!(severity(&call()), sev::DEBUG);
    assert_eq!(severity(&summary()), sev::INFO);
    assert_eq!(
        severity(&Body::Error {
            message: "x".into()
        }),
        sev::ERR
    );
    for action in [Action::Reported, Action::Blocked] {
        assert_eq!(severity(&violation(Severity::Error, action)), sev::ERR);
        assert_eq!(
            severity(&violation(Severity::Warning, action)),
            sev::WARNING
        );
    }
    assert_eq!(
        severity(&violation(Severity::Error, Action::Aborted)),
        sev::CRIT
    );
    assert_eq!(
        (sev::CRIT, sev::ERR, sev::WARNING, sev::INFO, sev::DEBUG),
        (2, 3, 4, 6, 7)
    );
}

fn datagram(mut r: Record, format: Format) -> String {
    let mut out = Vec::new();
    header(&r, &host_field("node-7"), &mut out);
    encode(&mut r, format, false, &mut out);
    out.pop();
    String::from_utf8(out).unwrap()
}

#[test]
fn rfc5424_header_then_the_file_sinks_record() {
    let cases = [
        (start(), "<14>1", "start"),
        (call(), "<15>1", "call"),
        (
            violation(Severity::Warning, Action::Reported),
            "<12>1",
            "violation",
        ),
        (
            violation(Severity::Error, Action::Blocked),
            "<11>1",
            "violation",
        ),
        (
            violation(Severity::Error, Action::Aborted),
            "<10>1",
            "violation",
        ),
        (summary(), "<14>1", "summary"),
        (
            Body::Error {
                message: "e".into(),
            },
            "<11>1",
            "error",
        ),
    ];
    for (body, pri, msgid) in cases {
        let mut file = Vec::new();
        encode(
            &mut rec(7, clone_body(&body)),
            Format::Json,
            false,
            &mut file,
        );
        let d = datagram(rec(7, body), Format::Json);
        let want = format!(
            "{pri} 2026-11-23T21:07:05.123456Z node-7 acl-ipc-guard 4242 {msgid} - {}",
            std::str::from_utf8(&file[..file.len() - 1]).unwrap()
        );
        assert_eq!(d, want);
        // The message is one JSON object and nothing else: no line break, no BOM.
        let msg = d.splitn(8, ' ').nth(7).unwrap();
        let v: serde_json::Value = serde_json::from_str(msg).unwrap();
        assert_eq!(v["event"], msgid);
        assert_eq!(v["seq"], 7);
    }
    // The text format is carried the same way.
    let d = datagram(
        rec(
            1,
            Body::Error {
                message: "e".into(),
            },
        ),
        Format::Text,
    );
    assert!(
        d.starts_with(
            "<11>1 2026-11-23T21:07:05.123456Z node-7 acl-ipc-guard 4242 error - [acl-ipc-guard] "
        ),
        "{d}"
    );
    assert!(!d.contains('\n'));
}

/// The bodies used here, rebuilt (Body holds a backtrace and is not Clone).
fn clone_body(b: &Body) -> Body {
    match b {
        Body::Start(_) => start(),
        Body::Call { .. } => call(),
        Body::Violation(v) => violation(v.severity, v.action),
        Body::Summary { .. } => summary(),
        Body::Error { message } => Body::Error {
            message: message.clone(),
        },
    }
}

#[test]
fn host_field_is_printable_ascii_or_nil() {
    assert_eq!(host_field("node-7.example"), "node-7.example");
    assert_eq!(host_field("a b\tc"), "abc");
    assert_eq!(host_field("héte"), "hte");
    assert_eq!(host_field(""), "-");
    assert_eq!(host_field(" "), "-");
    assert_eq!(host_field(&"h".repeat(300)).len(), 255);
}

// ------------------------------------------------------------ the sink on real sockets

fn syslog_log(path: &std::path::Path) -> Log {
    let v = format!("syslog:{}", path.display());
    let (config, bad) =
        Config::from_lookup(|n| (n == crate::config::var::LOG).then(|| v.clone()), 1000);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(config.log, LogTarget::Syslog(path.display().to_string()));
    Log::new(&config, 4242)
}

fn recv_all(sock: &UnixDatagram) -> Vec<String> {
    sock.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    got
}

fn msg(d: &str) -> serde_json::Value {
    serde_json::from_str(d.splitn(8, ' ').nth(7).unwrap()).unwrap()
}

fn seqs(ds: &[String]) -> Vec<u64> {
    ds.iter().map(|d| msg(d)["seq"].as_u64().unwrap()).collect()
}

#[test]
fn every_record_is_one_datagram_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let daemon = UnixDatagram::bind(&path).unwrap();
    let log = syslog_log(&path);
    log.push_through(4242, 1, start());
    log.push_through(4242, 1, call());
    log.push_through(4242, 1, violation(Severity::Warning, Action::Reported));
    log.push_through(4242, 1, summary());
    let got = recv_all(&daemon);
    assert_eq!(seqs(&got), [1, 2, 3, 4]);
    let pris: Vec<&str> = got.iter().map(|d| d.split(' ').next().unwrap()).collect();
    assert_eq!(pris, ["<14>1", "<15>1", "<12>1", "<14>1"]);
    assert!(got.iter().all(|d| d.contains(" acl-ipc-guard 4242 ")));
    assert_eq!(msg(&got[3])["dropped"], 0);
    assert_eq!(log.stats().dropped, 0);
}

#[test]
fn an_absent_daemon_costs_records_counted_and_is_found_when_it_comes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.sock");
    let log = syslog_log(&path);
    for _ in 0..5 {
        log.push_through(4242, 1, call());
    }
    assert_eq!(log.stats().dropped, 5);
    let daemon = UnixDatagram::bind(&path).unwrap();
    // Looked for again at most every RECONNECT_NS: one more may be lost before that.
    std::thread::sleep(Duration::from_nanos(syslog::RECONNECT_NS + 20_000_000));
    log.push_through(4242, 1, call());
    log.push_through(4242, 1, summary());
    let got = recv_all(&daemon);
    assert_eq!(seqs(&got), [6, 7]);
    // The summary names exactly the records lost before it.
    assert_eq!(msg(&got[1])["dropped"], 5);
}

#[test]
fn a_restarted_daemon_gets_the_next_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let first = UnixDatagram::bind(&path).unwrap();
    let log = syslog_log(&path);
    log.push_through(4242, 1, call());
    assert_eq!(seqs(&recv_all(&first)), [1]);
    drop(first);
    std::fs::remove_file(&path).unwrap();
    let second = UnixDatagram::bind(&path).unwrap();
    log.push_through(4242, 1, call());
    log.push_through(4242, 1, summary());
    let got = recv_all(&second);
    assert_eq!(seqs(&got), [2, 3]);
    assert_eq!(msg(&got[1])["dropped"], 0);
    assert_eq!(log.stats().dropped, 0);
}

#[test]
fn a_daemon_that_stops_reading_never_holds_the_caller_and_the_summary_counts_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let daemon = UnixDatagram::bind(&path).unwrap();
    let log = syslog_log(&path);
    let n = 200u64;
    for _ in 0..n {
        log.push_through(4242, 1, call());
    }
    let lost = log.stats().dropped;
    assert!(lost > 0, "the queue never filled");
    let got = recv_all(&daemon);
    assert_eq!(got.len() as u64 + lost, n);
    // What arrived is a prefix: nothing overtook anything.
    assert_eq!(seqs(&got), (1..=got.len() as u64).collect::<Vec<_>>());
    // Room again: the summary gets through and says exactly what was lost.
    log.push_through(4242, 1, summary());
    let got = recv_all(&daemon);
    assert_eq!(got.len(), 1);
    assert_eq!(msg(&got[0])["event"], "summary");
    assert_eq!(msg(&got[0])["dropped"], lost);
}
