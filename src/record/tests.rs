//! The encodings, field by field.

use super::json::{json_str, plain, push_hex};
use super::time::format_ts;
use super::*;
use crate::call::Out;
use crate::call::{Args, Func, Outcome, ServerEntry};
use crate::config::Format;
use crate::config::Mode;
use crate::key::Key;
use crate::key::KeyArg;
use crate::record::{Action, Start};
use crate::rules::{Rule, Severity};

fn rec(body: Body) -> Record {
    Record {
        seq: 3,
        ts_us: 1_795_468_025_123_456,
        pid: 42,
        tid: 43,
        body,
    }
}

fn json(mut r: Record, show: bool) -> serde_json::Value {
    let mut out = Vec::new();
    encode(&mut r, Format::Json, show, &mut out);
    assert_eq!(out.last(), Some(&b'\n'));
    assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
    serde_json::from_slice(&out).expect("valid JSON")
}

#[test]
fn timestamps() {
    let mut out = Vec::new();
    format_ts(0, &mut out);
    assert_eq!(out, b"1970-01-01T00:00:00.000000Z");
    out.clear();
    format_ts(1_795_468_025_123_456, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "2026-11-23T21:07:05.123456Z"
    );
    let mut out = Vec::new();
    format_ts(951_782_400_000_001, &mut out); // leap day
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "2000-02-29T00:00:00.000001Z"
    );
    // The last instant with a four-digit year, and the first past it (written the long
    // way, as wide as its year is).
    for (ts, want) in [
        (253_402_300_799_999_999, "9999-12-31T23:59:59.999999Z"),
        (253_402_300_800_000_000, "10000-01-01T00:00:00.000000Z"),
    ] {
        let mut out = Vec::new();
        format_ts(ts, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }
}

#[test]
fn call_record_fields() {
    let key = Key::from_bytes(b"abc");
    let v = json(
        rec(Body::Call {
            func: Func::GetExportKey,
            args: Args::GetExportKey {
                dev_ptr: 0x1000,
                size: 4096,
                key_buf: 0x2000,
                len: 65,
                flags: 1,
                key: Some(key),
            },
            outcome: Outcome {
                ret: 0,
                forwarded: true,
                out: Out::default(),
                dur_ns: 77,
                untracked: false,
            },
        }),
        false,
    );
    assert_eq!(v["ts"], "2026-11-23T21:07:05.123456Z");
    assert_eq!(v["seq"], 3);
    assert_eq!(v["pid"], 42);
    assert_eq!(v["tid"], 43);
    assert_eq!(v["event"], "call");
    assert_eq!(v["fn"], "aclrtIpcMemGetExportKey");
    assert_eq!(v["args"]["devPtr"], "0x1000");
    assert_eq!(v["args"]["size"], 4096);
    assert_eq!(v["args"]["len"], 65);
    assert_eq!(v["args"]["flags"], 1);
    assert_eq!(v["out"]["key_fp"], "fp:ba7816bf8f01cfea");
    assert!(v["out"].get("key").is_none(), "raw keys only when asked");
    assert!(
        v["args"].get("key_fp").is_none(),
        "the written key is an out-value"
    );
    assert_eq!(v["ret"], 0);
    assert_eq!(v["forwarded"], true);
    assert_eq!(v["dur_ns"], 77);
}

#[test]
fn show_keys_adds_the_raw_key() {
    let key = Key::from_bytes(b"abc");
    let v = json(
        rec(Body::Call {
            func: Func::Close,
            args: Args::Close {
                key: KeyArg::Key(key),
            },
            outcome: Outcome {
                ret: 0,
                forwarded: true,
                out: Out::default(),
                dur_ns: 1,
                untracked: false,
            },
        }),
        true,
    );
    assert_eq!(v["args"]["key_fp"], "fp:ba7816bf8f01cfea");
    assert_eq!(v["args"]["key"], "abc");
}

/// A violation whose message names `key` by identity, as the rules write it.
fn key_violation(key: KeyRef) -> Record {
    let id = match key {
        KeyRef::Id(fp) => fp,
        KeyRef::Key(k) => k.fp,
    };
    rec(Body::Violation(Box::new(Violation {
        rule: Rule::ExitLeak,
        severity: Severity::Warning,
        action: Action::Reported,
        func: None,
        message: format!("key {id} was exported and never closed"),
        key: Some(key),
        backtrace: None,
    })))
}

#[test]
fn violation_names_its_key_by_fingerprint_in_field_and_message() {
    let key = Key::from_bytes(b"abc");
    let v = json(key_violation(KeyRef::Key(key)), false);
    assert_eq!(v["key_fp"], "fp:ba7816bf8f01cfea");
    assert_eq!(
        v["message"],
        "key fp:ba7816bf8f01cfea was exported and never closed"
    );
    let mut out = Vec::new();
    encode(
        &mut key_violation(KeyRef::Key(key)),
        Format::Text,
        true,
        &mut out,
    );
    let line = String::from_utf8(out).unwrap();
    assert!(
        line.contains(": key fp:ba7816bf8f01cfea was exported")
            && line.contains(" key_fp=fp:ba7816bf8f01cfea key=abc"),
        "{line}"
    );
    // Only the identity left: no fingerprint can be made, and none is made up.
    let v = json(key_violation(KeyRef::Id(key.fp)), true);
    assert!(v["key_fp"].is_null(), "{v}");
    assert!(v.get("key").is_none());
}

#[test]
fn violation_and_summary() {
    let v = json(
        rec(Body::Violation(Box::new(Violation {
            rule: Rule::FreeImported,
            severity: Severity::Error,
            action: Action::Blocked,
            func: Some(Func::Free),
            message: "a \"quoted\"\nline".into(),
            key: None,
            backtrace: Some(backtrace::Backtrace::new_unresolved()),
        }))),
        false,
    );
    assert_eq!(v["rule"], "free.imported");
    assert_eq!(v["severity"], "error");
    assert_eq!(v["action"], "blocked");
    assert_eq!(v["fn"], "aclrtFree");
    assert_eq!(v["message"], "a \"quoted\"\nline");
    assert!(v["backtrace"].is_array());
    let s = json(
        rec(Body::Summary {
            calls: 9,
            violations: vec![(Rule::ExitLeak, 2)],
            blocked: 1,
            leaks: 2,
            dropped: 0,
        }),
        false,
    );
    assert_eq!(s["violations"]["exit.leak"], 2);
    assert_eq!(s["leaks"], 2);
}

#[test]
fn hex_and_escapes() {
    for v in [0u64, 1, 0xf, 0x10, 0x7fff_1234_5000, u64::MAX] {
        let mut out = Vec::new();
        push_hex(&mut out, v);
        assert_eq!(String::from_utf8(out).unwrap(), format!("{v:x}"));
    }
    let mut out = Vec::new();
    json_str("plain", &mut out);
    json_str("a\\b\"c\u{1}", &mut out);
    assert_eq!(String::from_utf8(out).unwrap(), r#""plain""a\\b\"c\u0001""#);
}

fn start(bare_tgid: Option<i32>, parent: Option<i32>) -> Start {
    Start {
        version: "1.2.3",
        mode: Mode::Enforce,
        exe: "/opt/app/bin/trainer".into(),
        ledger: "/dev/shm/job".into(),
        host: "node-7".into(),
        bare_tgid,
        parent,
    }
}

#[test]
fn start_record_fields_in_json() {
    let v = json(
        rec(Body::Start(Box::new(start(Some(5042), Some(41))))),
        false,
    );
    assert_eq!(v["event"], "start");
    assert_eq!(v["seq"], 3);
    assert_eq!(v["version"], "1.2.3");
    assert_eq!(v["mode"], "enforce");
    assert_eq!(v["exe"], "/opt/app/bin/trainer");
    assert_eq!(v["ledger"], "/dev/shm/job");
    assert_eq!(v["host"], "node-7");
    assert_eq!(v["bare_tgid"], 5042);
    assert_eq!(v["parent"], 41);
    // Not known, not a fork child: the fields are left out, never null or 0.
    let v = json(rec(Body::Start(Box::new(start(None, None)))), false);
    let o = v.as_object().unwrap();
    assert!(
        !o.contains_key("bare_tgid") && !o.contains_key("parent"),
        "{v}"
    );
    assert_eq!(v["host"], "node-7");
}

/// The text format's `name=value` words after the event, read back.
fn text_fields(line: &str) -> Vec<(String, String)> {
    let body = line.split_once(" start ").expect("a start record").1;
    body.trim_end()
        .split(' ')
        .map(|w| {
            let (k, v) = w.split_once('=').expect("name=value");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[test]
fn start_record_round_trips_through_text() {
    for (bare_tgid, parent) in [(Some(5042), Some(41)), (Some(9), None), (None, None)] {
        let want = start(bare_tgid, parent);
        let mut r = rec(Body::Start(Box::new(want.clone())));
        let mut out = Vec::new();
        encode(&mut r, Format::Text, false, &mut out);
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.starts_with(
                "[acl-ipc-guard] 2026-11-23T21:07:05.123456Z pid=42 tid=43 seq=3 start "
            ),
            "{line}"
        );
        let f = text_fields(&line);
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let back = Start {
            version: if get("version").as_deref() == Some(want.version) {
                want.version
            } else {
                "?"
            },
            mode: match get("mode").as_deref() {
                Some("enforce") => Mode::Enforce,
                other => panic!("mode {other:?}"),
            },
            exe: get("exe").unwrap(),
            ledger: get("ledger").unwrap(),
            host: get("host").unwrap(),
            bare_tgid: get("bare_tgid").map(|v| v.parse().unwrap()),
            parent: get("parent").map(|v| v.parse().unwrap()),
        };
        assert_eq!(back, want, "{line}");
    }
}

#[test]
fn text_is_one_line() {
    let mut r = rec(Body::Error {
        message: "two\nlines".into(),
    });
    let mut out = Vec::new();
    encode(&mut r, Format::Text, false, &mut out);
    let s = String::from_utf8(out).unwrap();
    assert_eq!(s.matches('\n').count(), 1);
    assert!(s.starts_with(
        "[acl-ipc-guard] 2026-11-23T21:07:05.123456Z pid=42 tid=43 seq=3 ERROR two lines"
    ));
}

#[test]
fn a_queued_record_stays_within_three_cache_lines() {
    // The calling thread takes back each line of a queued record from the writer thread
    // that last read it: the export's key lives in its arguments, not in the out-values.
    assert!(
        std::mem::size_of::<Record>() <= 192,
        "{} bytes",
        std::mem::size_of::<Record>()
    );
    // Aligned to a line: a record never straddles a fourth one (the queue's buffer is
    // a `Vec<Record>`, so its records start on line boundaries too).
    assert_eq!(std::mem::align_of::<Record>(), 64);
}

/// Every kind of record and argument, encoded: the encoder's fast paths (names and values
/// known to need no escaping, the timestamp's fixed stamp) must write these lines byte
/// for byte as the plain encoding did.
fn every_kind() -> Vec<(Record, bool)> {
    let key = Key::from_bytes(b"abc");
    let odd = Key::from_bytes(b"a\"b\\c\x01");
    let ok = |dur_ns| Outcome {
        ret: 0,
        forwarded: true,
        out: Out::default(),
        dur_ns,
        untracked: false,
    };
    let call = |func, args, outcome| Body::Call {
        func,
        args,
        outcome,
    };
    let at = |seq: u64, ts_us: i64, body: Body, show: bool| {
        (
            Record {
                seq,
                ts_us,
                pid: 42,
                tid: 4242,
                body,
            },
            show,
        )
    };
    vec![
        at(
            1,
            0,
            Body::Start(Box::new(Start {
                version: "9.9.9",
                mode: Mode::Audit,
                exe: "/bin/a \"b\"".into(),
                ledger: "/dev/shm/x".into(),
                host: "h\tost".into(),
                bare_tgid: Some(7),
                parent: None,
            })),
            false,
        ),
        at(
            2,
            1_795_468_025_123_456,
            call(
                Func::GetExportKey,
                Args::GetExportKey {
                    dev_ptr: 0x2000_0000_1000,
                    size: 4096,
                    key_buf: 0x7ffe_0000_0010,
                    len: 65,
                    flags: 1,
                    key: Some(key),
                },
                ok(77),
            ),
            true,
        ),
        at(
            3,
            1_795_468_025_123_457,
            call(
                Func::SetImportPid,
                Args::SetImportPid {
                    key: KeyArg::Key(odd),
                    pid_ptr: 0x10,
                    pids: Some(vec![1, -2, 300]),
                    num: 3,
                },
                ok(0),
            ),
            true,
        ),
        at(
            4,
            1_795_468_026_000_000,
            call(
                Func::SetImportPid,
                Args::SetImportPid {
                    key: KeyArg::Null,
                    pid_ptr: 0,
                    pids: None,
                    num: 0,
                },
                Outcome {
                    ret: 100000,
                    forwarded: false,
                    out: Out::default(),
                    dur_ns: 0,
                    untracked: false,
                },
            ),
            false,
        ),
        at(
            5,
            1_795_468_086_999_999,
            call(
                Func::ImportPidInterServer,
                Args::ImportPidInterServer {
                    key: KeyArg::Unterminated,
                    server_pids: 0xabc,
                    entries: Some(vec![
                        ServerEntry {
                            sdid: 5,
                            pid_ptr: 0xdef,
                            num: 40,
                            pids: None,
                        },
                        ServerEntry {
                            sdid: 6,
                            pid_ptr: 0x1,
                            num: 1,
                            pids: Some(vec![9]),
                        },
                    ]),
                    num: 2,
                },
                ok(5),
            ),
            false,
        ),
        at(
            6,
            951_782_400_000_001,
            call(
                Func::ImportByKey,
                Args::ImportByKey {
                    out_ptr: 0x88,
                    key: KeyArg::Key(key),
                    flags: 0,
                },
                Outcome {
                    ret: 0,
                    forwarded: true,
                    out: Out {
                        dev_ptr: Some(0x2000_0000_0000),
                        ..Out::default()
                    },
                    dur_ns: 12,
                    untracked: true,
                },
            ),
            false,
        ),
        at(
            7,
            -1,
            call(
                Func::SetAttr,
                Args::SetAttr {
                    key: KeyArg::Key(key),
                    attr_type: 1,
                    attr: u64::MAX,
                },
                ok(1),
            ),
            false,
        ),
        at(
            8,
            1_795_468_025_123_456,
            call(
                Func::Close,
                Args::Close {
                    key: KeyArg::Key(key),
                },
                ok(3),
            ),
            false,
        ),
        at(
            9,
            1_795_468_025_123_456,
            call(
                Func::DeviceGetBareTgid,
                Args::DeviceGetBareTgid { out_ptr: 0 },
                Outcome {
                    ret: 0,
                    forwarded: true,
                    out: Out {
                        pid: Some(31337),
                        ..Out::default()
                    },
                    dur_ns: 2,
                    untracked: false,
                },
            ),
            false,
        ),
        at(
            10,
            1_795_468_025_123_456,
            call(
                Func::Malloc,
                Args::Malloc {
                    out_ptr: 0x99,
                    size: 1 << 40,
                    policy: 2,
                },
                ok(4),
            ),
            false,
        ),
        at(
            11,
            1_795_468_025_123_456,
            call(Func::Free, Args::Free { dev_ptr: 0 }, ok(4)),
            false,
        ),
        at(
            12,
            1_795_468_025_123_456,
            key_violation(KeyRef::Key(key)).body,
            true,
        ),
        at(
            13,
            1_795_468_025_123_456,
            Body::Summary {
                calls: 9,
                violations: vec![(Rule::ExitLeak, 2), (Rule::FreeImported, 1)],
                blocked: 1,
                leaks: 2,
                dropped: 0,
            },
            false,
        ),
        at(
            15,
            1_795_468_025_123_456,
            Body::Start(Box::new(Start {
                version: "9.9.9",
                mode: Mode::Enforce,
                exe: String::new(),
                ledger: "off".into(),
                host: "h".into(),
                bare_tgid: None,
                parent: Some(41),
            })),
            false,
        ),
        at(
            16,
            1_795_468_025_123_456,
            Body::Violation(Box::new(Violation {
                rule: Rule::FreeImported,
                severity: Severity::Error,
                action: Action::Blocked,
                func: Some(Func::Free),
                message: "freed".into(),
                key: Some(KeyRef::Id(key.fp)),
                backtrace: None,
            })),
            true,
        ),
        at(
            17,
            1_795_468_025_123_456,
            Body::Violation(Box::new(Violation {
                rule: Rule::ExitLeak,
                severity: Severity::Warning,
                action: Action::Aborted,
                func: Some(Func::Close),
                message: String::new(),
                key: None,
                backtrace: None,
            })),
            false,
        ),
        at(
            18,
            1_795_468_025_123_456,
            Body::Summary {
                calls: 0,
                violations: vec![],
                blocked: 0,
                leaks: 0,
                dropped: 7,
            },
            false,
        ),
        at(
            19,
            1_795_468_025_123_456,
            call(
                Func::MallocAlign32,
                Args::Malloc {
                    out_ptr: 0x99,
                    size: 32,
                    policy: 0,
                },
                ok(4),
            ),
            false,
        ),
        at(
            20,
            1_795_468_025_123_456,
            call(
                Func::MallocCached,
                Args::Malloc {
                    out_ptr: 0x98,
                    size: 0,
                    policy: 1,
                },
                Outcome {
                    ret: 507899,
                    forwarded: true,
                    out: Out::default(),
                    dur_ns: 9,
                    untracked: false,
                },
            ),
            false,
        ),
        at(
            14,
            1_795_468_025_123_456,
            Body::Error {
                message: "cannot \u{7f} \u{e9}\r\n".into(),
            },
            false,
        ),
    ]
}

#[test]
fn every_kind_of_record_encodes_byte_for_byte_as_before() {
    // The lines as the plain encoder wrote them (testdata/, made before the fast paths;
    // `AIG_WRITE_GOLDEN=1 cargo test every_kind` rewrites them, for a deliberate change).
    let golden = [
        (
            Format::Json,
            "every_kind.jsonl",
            include_str!("testdata/every_kind.jsonl"),
        ),
        (
            Format::Text,
            "every_kind.txt",
            include_str!("testdata/every_kind.txt"),
        ),
    ];
    let mut rewritten = Vec::new();
    for (format, file, want) in golden {
        let mut out = Vec::new();
        for (mut r, show) in every_kind() {
            encode(&mut r, format, show, &mut out);
        }
        let got = String::from_utf8(out).unwrap();
        if std::env::var("AIG_WRITE_GOLDEN").as_deref() == Ok("1") {
            assert!(
                std::env::var_os("CI").is_none(),
                "AIG_WRITE_GOLDEN under CI: the lines are checked there, never rewritten"
            );
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/record/testdata/");
            std::fs::write(format!("{path}{file}"), &got).unwrap();
            rewritten.push(file);
            continue;
        }
        for (g, w) in got.lines().zip(want.lines()) {
            assert_eq!(g, w, "{file}");
        }
        assert_eq!(got, want, "{file}");
    }
    assert!(
        rewritten.is_empty(),
        "{rewritten:?} rewritten: look at the change, then run the test again"
    );
}

/// The encoder writes member names and the schema's own words (events, functions, rules,
/// modes, severities, actions) without looking for characters to escape: every one of
/// them must need none. A debug assertion says so at each write; this says it for all of
/// them, in any build.
#[test]
fn the_words_written_unescaped_need_no_escaping() {
    let mut words: Vec<&str> = vec![
        schema::START,
        schema::CALL,
        schema::VIOLATION,
        schema::SUMMARY,
        schema::ERROR,
        "exit",
        "untracked",
    ];
    words.extend(Func::ALL.iter().map(|f| f.name()));
    words.extend(Rule::ALL.iter().map(|r| r.id()));
    words.extend(Mode::ALL.iter().map(|(m, _)| m.as_str()));
    words.extend([Severity::Off, Severity::Warning, Severity::Error].map(Severity::as_str));
    words.extend([Action::Reported, Action::Blocked, Action::Aborted].map(Action::as_str));
    for w in words {
        assert!(plain(w), "{w:?} would need escaping");
    }
}
