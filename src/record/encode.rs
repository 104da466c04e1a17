//! JSON-lines and text encodings of a record. Both carry the same facts; JSON is one object
//! per line with a fixed field order, text is one line for people.

use super::{Body, KeyRef, Record, Violation};
use crate::call::{Args, Func, Outcome};
use crate::config::Format;
use crate::key::KeyArg;

/// Appends `rec` as one line (ending in `\n`) to `out`.
pub fn encode(rec: &mut Record, format: Format, show_keys: bool, out: &mut Vec<u8>) {
    match format {
        Format::Json => json_record(rec, show_keys, out),
        Format::Text => text_record(rec, show_keys, out),
    }
    out.push(b'\n');
}

/// RFC 3339, UTC, microseconds, `Z`: `2026-11-23T21:07:05.123456Z`.
pub fn format_ts(ts_us: i64, out: &mut Vec<u8>) {
    let secs = ts_us.div_euclid(1_000_000);
    let micros = ts_us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    push_num(out, y, 4);
    out.push(b'-');
    push_num(out, m, 2);
    out.push(b'-');
    push_num(out, d, 2);
    out.push(b'T');
    push_num(out, sod / 3600, 2);
    out.push(b':');
    push_num(out, sod / 60 % 60, 2);
    out.push(b':');
    push_num(out, sod % 60, 2);
    out.push(b'.');
    push_num(out, micros, 6);
    out.push(b'Z');
}

/// Lowercase hex without leading zeros (`0` for zero).
fn push_hex(out: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - v.leading_zeros() as usize).div_ceil(4);
    for i in (0..digits.max(1)).rev() {
        out.push(HEX[((v >> (4 * i)) & 15) as usize]);
    }
}

fn push_num(out: &mut Vec<u8>, n: i64, width: usize) {
    let mut b = itoa::Buffer::new();
    let s = b.format(n);
    for _ in s.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(s.as_bytes());
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

// ---------------------------------------------------------------- JSON

/// A tiny JSON object writer: fields in the order written, commas handled.
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn open(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, first: true }
    }

    fn name(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        json_str(name, self.out);
        self.out.push(b':');
        self.out
    }

    fn str(&mut self, name: &str, v: &str) {
        let o = self.name(name);
        json_str(v, o);
    }

    fn int(&mut self, name: &str, v: impl itoa::Integer) {
        let o = self.name(name);
        o.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    fn ptr(&mut self, name: &str, v: usize) {
        let o = self.name(name);
        o.extend_from_slice(b"\"0x");
        push_hex(o, v as u64);
        o.push(b'"');
    }

    fn bool(&mut self, name: &str, v: bool) {
        let o = self.name(name);
        o.extend_from_slice(if v { b"true" } else { b"false" });
    }

    fn null(&mut self, name: &str) {
        let o = self.name(name);
        o.extend_from_slice(b"null");
    }

    fn raw(&mut self, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let o = self.name(name);
        f(o);
    }

    /// `key_fp` (and `key` with show_keys) for a key reference.
    fn key_ref(&mut self, k: &KeyRef, show_keys: bool) {
        let fp = k.fp().to_buf();
        self.str("key_fp", std::str::from_utf8(&fp).unwrap_or_default());
        if let (true, KeyRef::Key(key)) = (show_keys, k) {
            self.str("key", &String::from_utf8_lossy(key.bytes()));
        }
    }

    /// A key argument: `key_fp` is null when the key was NULL or unterminated.
    fn key_arg(&mut self, k: &KeyArg, show_keys: bool) {
        match k {
            KeyArg::Key(key) => self.key_ref(&KeyRef::Key(*key), show_keys),
            _ => self.null("key_fp"),
        }
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

fn json_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn json_pids(pids: &[i32], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, p) in pids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(itoa::Buffer::new().format(*p).as_bytes());
    }
    out.push(b']');
}

fn json_record(rec: &mut Record, show_keys: bool, out: &mut Vec<u8>) {
    let mut o = Obj::open(out);
    o.raw("ts", |b| {
        b.push(b'"');
        format_ts(rec.ts_us, b);
        b.push(b'"');
    });
    o.int("seq", rec.seq);
    o.int("pid", rec.pid);
    o.int("tid", rec.tid);
    o.str("event", rec.body.event());
    match &mut rec.body {
        Body::Start(s) => {
            o.str("version", s.version);
            o.str("mode", s.mode.as_str());
            o.str("exe", &s.exe);
            o.str("ledger", &s.ledger);
            o.str("host", &s.host);
            if let Some(t) = s.bare_tgid {
                o.int("bare_tgid", t);
            }
            if let Some(p) = s.parent {
                o.int("parent", p);
            }
        }
        Body::Call {
            func,
            args,
            outcome,
        } => {
            o.str("fn", func.name());
            o.raw("args", |b| json_args(args, show_keys, b));
            o.raw("out", |b| json_out(*func, outcome, show_keys, b));
            o.int("ret", outcome.ret);
            o.bool("forwarded", outcome.forwarded);
            o.int("dur_ns", outcome.dur_ns);
            if outcome.untracked {
                o.str("ledger", "untracked");
            }
        }
        Body::Violation(v) => json_violation(&mut o, v, show_keys),
        Body::Summary {
            calls,
            violations,
            blocked,
            leaks,
            dropped,
        } => {
            o.int("calls", *calls);
            o.raw("violations", |b| {
                let mut v = Obj::open(b);
                for (rule, n) in violations.iter() {
                    v.int(rule.id(), *n);
                }
                v.close();
            });
            o.int("blocked", *blocked);
            o.int("leaks", *leaks);
            o.int("dropped", *dropped);
        }
        Body::Error { message } => o.str("message", message),
    }
    o.close();
}

fn json_violation(o: &mut Obj<'_>, v: &mut Violation, show_keys: bool) {
    o.str("rule", v.rule.id());
    o.str("severity", v.severity.as_str());
    o.str("action", v.action.as_str());
    o.str("fn", v.func.map_or("exit", Func::name));
    o.str("message", &v.message);
    if let Some(k) = &v.key {
        o.key_ref(k, show_keys);
    }
    if let Some(frames) = v.backtrace.as_mut().map(backtrace_lines) {
        o.raw("backtrace", |b| {
            b.push(b'[');
            for (i, f) in frames.iter().enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                json_str(f, b);
            }
            b.push(b']');
        });
    }
}

fn json_args(args: &Args, show_keys: bool, out: &mut Vec<u8>) {
    let mut o = Obj::open(out);
    match args {
        Args::GetExportKey {
            dev_ptr,
            size,
            key_buf,
            len,
            flags,
        } => {
            o.ptr("devPtr", *dev_ptr);
            o.int("size", *size);
            o.ptr("key", *key_buf);
            o.int("len", *len);
            o.int("flags", *flags);
        }
        Args::SetImportPid {
            key,
            pid_ptr,
            pids,
            num,
        } => {
            o.key_arg(key, show_keys);
            match pids {
                Some(p) => o.raw("pid", |b| json_pids(p, b)),
                None if *pid_ptr == 0 => o.null("pid"),
                None => o.ptr("pid", *pid_ptr),
            }
            o.int("num", *num);
        }
        Args::ImportPidInterServer {
            key,
            server_pids,
            entries,
            num,
        } => {
            o.key_arg(key, show_keys);
            match entries {
                Some(es) => o.raw("serverPids", |b| {
                    b.push(b'[');
                    for (i, e) in es.iter().enumerate() {
                        if i > 0 {
                            b.push(b',');
                        }
                        let mut eo = Obj::open(b);
                        eo.int("sdid", e.sdid);
                        match &e.pids {
                            Some(p) => eo.raw("pid", |b| json_pids(p, b)),
                            None if e.pid_ptr == 0 => eo.null("pid"),
                            None => eo.ptr("pid", e.pid_ptr),
                        }
                        eo.int("num", e.num);
                        eo.close();
                    }
                    b.push(b']');
                }),
                None if *server_pids == 0 => o.null("serverPids"),
                None => o.ptr("serverPids", *server_pids),
            }
            o.int("num", *num);
        }
        Args::ImportByKey {
            out_ptr,
            key,
            flags,
        } => {
            o.ptr("devPtr", *out_ptr);
            o.key_arg(key, show_keys);
            o.int("flags", *flags);
        }
        Args::SetAttr {
            key,
            attr_type,
            attr,
        } => {
            o.key_arg(key, show_keys);
            o.int("type", *attr_type);
            o.int("attr", *attr);
        }
        Args::Close { key } => o.key_arg(key, show_keys),
        Args::DeviceGetBareTgid { out_ptr } => o.ptr("pid", *out_ptr),
        Args::Malloc {
            out_ptr,
            size,
            policy,
        } => {
            o.ptr("devPtr", *out_ptr);
            o.int("size", *size);
            o.int("policy", *policy);
        }
        Args::Free { dev_ptr } => o.ptr("devPtr", *dev_ptr),
    }
    o.close();
}

fn json_out(_func: Func, outcome: &Outcome, show_keys: bool, out: &mut Vec<u8>) {
    let mut o = Obj::open(out);
    if outcome.ret == 0 {
        if let Some(p) = outcome.out.dev_ptr {
            o.ptr("devPtr", p);
        }
        if let Some(k) = &outcome.out.key {
            o.key_ref(&KeyRef::Key(*k), show_keys);
        }
        if let Some(p) = outcome.out.pid {
            o.int("pid", p);
        }
    }
    o.close();
}

/// Frames as `symbol (file:line)` strings, the shim's own frames left out.
fn backtrace_lines(bt: &mut backtrace::Backtrace) -> Vec<String> {
    bt.resolve();
    let mut lines = Vec::new();
    for frame in bt.frames() {
        let ip = frame.ip() as usize;
        let syms = frame.symbols();
        if syms.is_empty() {
            lines.push(format!("{ip:#x}"));
            continue;
        }
        for s in syms {
            let name = s
                .name()
                .map(|n| format!("{n:#}"))
                .unwrap_or_else(|| format!("{ip:#x}"));
            if is_own_frame(&name) {
                continue;
            }
            let line = match (s.filename(), s.lineno()) {
                (Some(f), Some(l)) => format!("{name} ({}:{l})", f.display()),
                _ => name,
            };
            lines.push(line);
        }
    }
    lines
}

fn is_own_frame(name: &str) -> bool {
    name.starts_with("acl_ipc_guard::")
        || name.starts_with("backtrace::")
        || name.starts_with("std::")
        || name.starts_with("core::")
        || name.starts_with("<")
}

// ---------------------------------------------------------------- text

fn text_record(rec: &mut Record, show_keys: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"[acl-ipc-guard] ");
    format_ts(rec.ts_us, out);
    let head = format!(" pid={} tid={} seq={} ", rec.pid, rec.tid, rec.seq);
    out.extend_from_slice(head.as_bytes());
    let body = match &mut rec.body {
        Body::Start(s) => {
            let mut t = format!(
                "start version={} mode={} exe={} ledger={} host={}",
                s.version,
                s.mode.as_str(),
                s.exe,
                s.ledger,
                s.host
            );
            if let Some(b) = s.bare_tgid {
                t.push_str(&format!(" bare_tgid={b}"));
            }
            if let Some(p) = s.parent {
                t.push_str(&format!(" parent={p}"));
            }
            t
        }
        Body::Call {
            func,
            args,
            outcome,
        } => {
            // The text form reuses the JSON rendering of args/out: same facts, compact.
            let mut a = Vec::new();
            json_args(args, show_keys, &mut a);
            let mut o = Vec::new();
            json_out(*func, outcome, show_keys, &mut o);
            format!(
                "call {} args={} out={} ret={} {} dur_ns={}{}",
                func.name(),
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&o),
                outcome.ret,
                if outcome.forwarded {
                    "forwarded"
                } else {
                    "not-forwarded"
                },
                outcome.dur_ns,
                if outcome.untracked {
                    " ledger=untracked"
                } else {
                    ""
                }
            )
        }
        Body::Violation(v) => {
            let mut s = format!(
                "VIOLATION {} {} action={} fn={}: {}",
                v.severity.as_str(),
                v.rule.id(),
                v.action.as_str(),
                v.func.map_or("exit", Func::name),
                v.message
            );
            if let Some(k) = &v.key {
                s.push_str(&format!(" key_fp={}", k.fp()));
                if let (true, KeyRef::Key(key)) = (show_keys, k) {
                    s.push_str(&format!(" key={}", String::from_utf8_lossy(key.bytes())));
                }
            }
            if let Some(frames) = v.backtrace.as_mut().map(backtrace_lines) {
                s.push_str(" backtrace=[");
                s.push_str(&frames.join(" <- "));
                s.push(']');
            }
            s
        }
        Body::Summary {
            calls,
            violations,
            blocked,
            leaks,
            dropped,
        } => {
            let v: Vec<String> = violations
                .iter()
                .map(|(r, n)| format!("{}:{n}", r.id()))
                .collect();
            format!(
                "summary calls={calls} violations={{{}}} blocked={blocked} leaks={leaks} dropped={dropped}",
                v.join(",")
            )
        }
        Body::Error { message } => format!("ERROR {message}"),
    };
    // One line per record, whatever a message holds.
    out.extend(body.bytes().map(|b| if b == b'\n' { b' ' } else { b }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Out;
    use crate::config::Mode;
    use crate::key::Key;
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
                },
                outcome: Outcome {
                    ret: 0,
                    forwarded: true,
                    out: Out {
                        key: Some(key),
                        ..Out::default()
                    },
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
}
