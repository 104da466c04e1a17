//! The JSON-lines encoding: one object per line, fields in a fixed order, written by hand
//! into a reused buffer (no serialisation framework in the preloaded library).

use super::{frames, schema, time, Body, KeyRef, Record, Violation};
use crate::call::{Args, Func, Outcome};
use crate::key::KeyArg;

/// Lowercase hex without leading zeros (`0` for zero), made on the stack and appended in
/// one piece.
pub(super) fn push_hex(out: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let digits = (64 - v.leading_zeros() as usize).div_ceil(4).max(1);
    for (i, b) in buf[16 - digits..].iter_mut().rev().enumerate() {
        *b = HEX[((v >> (4 * i)) & 15) as usize];
    }
    out.extend_from_slice(&buf[16 - digits..]);
}

/// True when `s` goes into a JSON string as it is (no quote, backslash or control
/// character in it).
pub(super) fn plain(s: &str) -> bool {
    !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\')
}

// ---------------------------------------------------------------- the object writer

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

    /// The member's name, with the comma before it: the names are the schema's own
    /// identifiers, which need no escaping, written in one piece (a record has a dozen).
    fn name(&mut self, name: &'static str) -> &mut Vec<u8> {
        debug_assert!(plain(name), "{name}");
        let o = &mut *self.out;
        o.reserve(name.len() + 4);
        o.extend_from_slice(if self.first { b"\"" } else { b",\"" });
        o.extend_from_slice(name.as_bytes());
        o.extend_from_slice(b"\":");
        self.first = false;
        o
    }

    fn str(&mut self, name: &'static str, v: &str) {
        let o = self.name(name);
        json_str(v, o);
    }

    /// A value from the schema's own vocabulary (an event, a function's or a rule's name,
    /// a mode): no escaping to look for.
    fn word(&mut self, name: &'static str, v: &'static str) {
        debug_assert!(plain(v), "{v}");
        self.quoted(name, v.as_bytes());
    }

    /// A string member whose bytes need no escaping, quoted as they are.
    fn quoted(&mut self, name: &'static str, v: &[u8]) {
        let o = self.name(name);
        o.reserve(v.len() + 2);
        o.push(b'"');
        o.extend_from_slice(v);
        o.push(b'"');
    }

    fn int(&mut self, name: &'static str, v: impl itoa::Integer) {
        let o = self.name(name);
        o.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    fn ptr(&mut self, name: &'static str, v: usize) {
        let o = self.name(name);
        o.extend_from_slice(b"\"0x");
        push_hex(o, v as u64);
        o.push(b'"');
    }

    fn bool(&mut self, name: &'static str, v: bool) {
        let o = self.name(name);
        o.extend_from_slice(if v { b"true" } else { b"false" });
    }

    fn null(&mut self, name: &'static str) {
        let o = self.name(name);
        o.extend_from_slice(b"null");
    }

    fn raw(&mut self, name: &'static str, f: impl FnOnce(&mut Vec<u8>)) {
        let o = self.name(name);
        f(o);
    }

    /// `key_fp` (and `key` with show_keys) for a key reference.
    fn key_ref(&mut self, k: &KeyRef, show_keys: bool) {
        match k.key_fp() {
            // `fp:` and hex digits: nothing to escape.
            Some(fp) => self.quoted("key_fp", &fp.to_buf()),
            None => self.null("key_fp"),
        }
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

pub(super) fn json_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    if plain(s) {
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

pub(super) fn record(rec: &mut Record, show_keys: bool, out: &mut Vec<u8>) {
    let mut o = Obj::open(out);
    o.raw(schema::TS, |b| {
        b.push(b'"');
        time::format_ts(rec.ts_us, b);
        b.push(b'"');
    });
    o.int(schema::SEQ, rec.seq);
    o.int(schema::PID, rec.pid);
    o.int(schema::TID, rec.tid);
    o.word(schema::EVENT, rec.body.event());
    match &mut rec.body {
        Body::Start(s) => {
            o.str("version", s.version);
            o.word("mode", s.mode.as_str());
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
            o.word("fn", func.name());
            o.raw("args", |b| call_args(args, show_keys, b));
            o.raw("out", |b| call_out(args, outcome, show_keys, b));
            o.int("ret", outcome.ret);
            o.bool("forwarded", outcome.forwarded);
            o.int("dur_ns", outcome.dur_ns);
            if outcome.untracked {
                o.word("ledger", "untracked");
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
    o.word("rule", v.rule.id());
    o.word("severity", v.severity.as_str());
    o.word("action", v.action.as_str());
    o.word("fn", v.func.map_or("exit", Func::name));
    o.str("message", &v.message);
    if let Some(k) = &v.key {
        o.key_ref(k, show_keys);
    }
    if let Some(frames) = v.backtrace.as_mut().map(frames::lines) {
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

pub(super) fn call_args(args: &Args, show_keys: bool, out: &mut Vec<u8>) {
    let mut o = Obj::open(out);
    match args {
        Args::GetExportKey {
            dev_ptr,
            size,
            key_buf,
            len,
            flags,
            key: _,
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

/// `out`: the values a successful call wrote (an export's key from its arguments).
pub(super) fn call_out(args: &Args, outcome: &Outcome, show_keys: bool, out: &mut Vec<u8>) {
    let mut o = Obj::open(out);
    if outcome.ret == 0 {
        if let Some(p) = outcome.out.dev_ptr {
            o.ptr("devPtr", p);
        }
        if let Args::GetExportKey { key: Some(k), .. } = args {
            o.key_ref(&KeyRef::Key(*k), show_keys);
        }
        if let Some(p) = outcome.out.pid {
            o.int("pid", p);
        }
    }
    o.close();
}
