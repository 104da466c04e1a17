//! The report as one JSON object for scripts (`--json`).
//!
//! Written straight to the output through serde (no `serde_json::Value` tree in between: a
//! report of a large job has millions of events, and building a tree of maps for them cost
//! more than reading the logs). Each object's members come out sorted by name, as they did
//! when the report was built as a tree, so the output is byte for byte what it was.

use super::super::model::{Detail, End, Event, Process, Report, Violation};
use super::{describe, hex_digits, push_hex};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
#[cfg(test)]
use serde_json::Value;
use std::io::{self, Write};

/// The whole report as one JSON object (a tree: for tests that look into it).
#[cfg(test)]
pub fn render_json(r: &Report) -> Value {
    serde_json::to_value(JsonReport(r)).unwrap_or(Value::Null)
}

/// The whole report as one pretty-printed JSON object and a newline, streamed to `w`.
pub fn write_json(r: &Report, w: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &JsonReport(r)).map_err(io::Error::from)?;
    w.write_all(b"\n")
}

/// One member of `keys` (`"fp": [events]`) as it stands in the pretty-printed report:
/// indented for its place, no comma, no newline after it.
pub fn key_member(fp: &str, events: &[Event], procs: &[Process], out: &mut Vec<u8>) {
    // Written straight as serde_json's pretty printer lays it out (the streaming report
    // writes every key this way: serde's generic path cost as much as reading the logs).
    // The member stands two levels in: `{` of the report, then `"keys": {`.
    // Room for what an event takes, about (one growth, not a few per key).
    out.reserve(events.len() * 512);
    indent(out, 2);
    pretty_str(fp, out);
    out.extend_from_slice(b": ");
    if events.is_empty() {
        out.extend_from_slice(b"[]");
        return;
    }
    out.extend_from_slice(b"[\n");
    // Each event's `desc` is made here first (one buffer for the key, not a `String` each).
    let mut desc = String::with_capacity(128);
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",\n");
        }
        indent(out, 3);
        write_event(e, procs, 3, &mut desc, out);
    }
    out.push(b'\n');
    indent(out, 2);
    out.push(b']');
}

// ------------------------------------------------------------------ pretty, by hand
//
// What `serde_json::to_writer_pretty` writes for a value `depth` levels in: two spaces a
// level, `": "` after a name, `[]`/`{}` when empty, strings escaped as serde escapes them
// (`\"`, `\\`, the short escapes of \b \t \n \f \r, `\u00xx` for other control
// characters; everything else as it is).

fn indent(out: &mut Vec<u8>, depth: usize) {
    const SPACES: &[u8; 32] = b"                                ";
    match SPACES.get(..2 * depth) {
        Some(s) => out.extend_from_slice(s),
        None => {
            for _ in 0..depth {
                out.extend_from_slice(b"  ");
            }
        }
    }
}

/// A member's name and `": "`. The names are this file's own (`&'static str` of letters
/// and `_`), which need no escape: written as they are, without [`pretty_str`]'s search.
fn member_name(k: &'static str, out: &mut Vec<u8>) {
    debug_assert!(k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'));
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\": ");
}

fn pretty_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let b = s.as_bytes();
    let mut from = 0;
    // Most strings need no escape: skip eight bytes at a time while none of them could.
    let clean = plain_prefix(b);
    for (i, &c) in b.iter().enumerate().skip(clean) {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 15)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&b[from..i]);
        out.extend_from_slice(esc);
        from = i + 1;
    }
    out.extend_from_slice(&b[from..]);
    out.push(b'"');
}

/// How many leading bytes of `b` (a multiple of 8) surely need no escape: no quote, no backslash,
/// no control character in them (eight bytes tested at once, as a word).
fn plain_prefix(b: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Some byte of `x` is below `n` (n <= 0x80); exact as a yes/no.
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH != 0;
    let mut at = 0;
    for w in b.chunks_exact(8) {
        let x = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        if below(x, 0x20) || below(x ^ (ONES * 0x22), 1) || below(x ^ (ONES * 0x5c), 1) {
            break;
        }
        at += 8;
    }
    at
}

fn pretty_u64(n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(super::decimal(n, &mut buf));
}

fn pretty_i64(n: i64, out: &mut Vec<u8>) {
    if n < 0 {
        out.push(b'-');
    }
    pretty_u64(n.unsigned_abs(), out);
}

/// A sequence: `[]`, or each element on its line.
fn pretty_seq<T>(
    items: &[T],
    depth: usize,
    out: &mut Vec<u8>,
    mut one: impl FnMut(&T, &mut Vec<u8>),
) {
    if items.is_empty() {
        out.extend_from_slice(b"[]");
        return;
    }
    out.extend_from_slice(b"[\n");
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",\n");
        }
        indent(out, depth + 1);
        one(x, out);
    }
    out.push(b'\n');
    indent(out, depth);
    out.push(b']');
}

fn pretty_obj(o: &Obj<'_>, depth: usize, out: &mut Vec<u8>) {
    if o.0.is_empty() {
        out.extend_from_slice(b"{}");
        return;
    }
    pretty_members(o.0.iter(), depth, out);
}

/// A non-empty object's members, one a line, in the order given.
fn pretty_members<'a, 'b: 'a>(
    members: impl Iterator<Item = &'a (&'static str, V<'b>)>,
    depth: usize,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"{\n");
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            out.extend_from_slice(b",\n");
        }
        indent(out, depth + 1);
        member_name(k, out);
        pretty(v, depth + 1, out);
    }
    out.push(b'\n');
    indent(out, depth);
    out.push(b'}');
}

fn pretty(v: &V<'_>, depth: usize, out: &mut Vec<u8>) {
    match v {
        V::Null => out.extend_from_slice(b"null"),
        V::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        V::I64(n) => pretty_i64(*n, out),
        V::U64(n) => pretty_u64(*n, out),
        V::Str(t) => pretty_str(t, out),
        V::String(t) => pretty_str(t, out),
        V::Hex(a) => {
            // Digits and `x`: nothing to escape; written in place (a `String` each was an
            // allocation per address written).
            let mut digits = [0u8; 16];
            let at = hex_digits(&mut digits, *a);
            out.extend_from_slice(b"\"0x");
            out.extend_from_slice(&digits[at..]);
            out.push(b'"');
        }
        V::Ints(a) => pretty_seq(a, depth, out, |n, out| pretty_i64(*n, out)),
        V::Strs(a) => pretty_seq(a, depth, out, |t, out| pretty_str(t, out)),
        V::Obj(o) => pretty_obj(o, depth, out),
        V::ServerPids(es) => pretty_seq(es, depth, out, |(sdid, pids), out| {
            let o = Obj::new(vec![("pid", V::Ints(pids)), ("sdid", V::U64(*sdid))]);
            pretty_obj(&o, depth + 1, out);
        }),
        // Not in an event: through serde, each line after the first moved in.
        V::List(_) | V::Keys(_) => {
            let Ok(text) = serde_json::to_vec_pretty(v) else {
                return;
            };
            for (i, line) in text.split(|b| *b == b'\n').enumerate() {
                if i > 0 {
                    out.push(b'\n');
                    indent(out, depth);
                }
                out.extend_from_slice(line);
            }
        }
    }
}

/// One member's value.
enum V<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    Str(&'a str),
    String(String),
    /// An address, as the string `{:#x}` makes of it (written without a `String` of its own).
    Hex(u64),
    Ints(&'a [i64]),
    Strs(&'a [String]),
    /// Another object, already laid out.
    Obj(Obj<'a>),
    /// `serverPids`: `[{"pid": [...], "sdid": n}, ...]`.
    ServerPids(&'a [(u64, Vec<i64>)]),
    /// Any other sequence of objects.
    List(EachObj<'a>),
    /// `keys`: fingerprint → events.
    Keys(&'a Report),
}

/// Hands each object of a sequence to the callback, in order.
type EachObj<'a> = Box<dyn Fn(&mut dyn FnMut(Obj<'a>)) + 'a>;

/// An object's members, sorted by name when serialized.
struct Obj<'a>(Vec<(&'static str, V<'a>)>);

impl<'a> Obj<'a> {
    fn new(members: Vec<(&'static str, V<'a>)>) -> Self {
        Self::sorted_after(members, 1)
    }

    /// [`Obj::new`] of members whose first `sorted` are in name order already: only the
    /// rest are put in their places.
    fn sorted_after(mut members: Vec<(&'static str, V<'a>)>, sorted: usize) -> Self {
        // An insertion sort on names compared in place (no `memcmp` call per comparison):
        // the objects are small and mostly given in order already (an event's members
        // were a fifth of the writer's time, sorted the general way).
        for i in sorted.max(1)..members.len() {
            let mut j = i;
            while j > 0 && name_before(members[j].0, members[j - 1].0) {
                members.swap(j, j - 1);
                j -= 1;
            }
        }
        Obj(members)
    }
}

/// `a < b` as `str` orders them (bytewise).
fn name_before(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x < y;
        }
    }
    a.len() < b.len()
}

fn opt_str(v: Option<&str>) -> V<'_> {
    v.map_or(V::Null, V::Str)
}

fn opt_i64<'a>(v: Option<i64>) -> V<'a> {
    v.map_or(V::Null, V::I64)
}

fn opt_u64<'a>(v: Option<u64>) -> V<'a> {
    v.map_or(V::Null, V::U64)
}

fn list<'a>(each: impl Fn(&mut dyn FnMut(Obj<'a>)) + 'a) -> V<'a> {
    V::List(Box::new(each))
}

fn hex<'a>(v: Option<u64>) -> V<'a> {
    v.map_or(V::Null, V::Hex)
}

fn host_of(procs: &[Process], i: usize) -> V<'_> {
    opt_str(procs.get(i).and_then(|p| p.host.as_deref()))
}

impl Serialize for Obj<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Serialize for V<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            V::Null => s.serialize_unit(),
            V::Bool(b) => s.serialize_bool(*b),
            V::I64(n) => s.serialize_i64(*n),
            V::U64(n) => s.serialize_u64(*n),
            V::Str(t) => s.serialize_str(t),
            V::String(t) => s.serialize_str(t),
            V::Hex(a) => {
                let mut t = String::with_capacity(18);
                push_hex(&mut t, *a);
                s.serialize_str(&t)
            }
            V::Ints(a) => a.serialize(s),
            V::Strs(a) => a.serialize(s),
            V::Obj(o) => o.serialize(s),
            V::ServerPids(es) => {
                let mut q = s.serialize_seq(Some(es.len()))?;
                for (sdid, pids) in es.iter() {
                    q.serialize_element(&Obj::new(vec![
                        ("pid", V::Ints(pids)),
                        ("sdid", V::U64(*sdid)),
                    ]))?;
                }
                q.end()
            }
            V::List(each) => {
                let mut q = s.serialize_seq(None)?;
                let mut res = Ok(());
                each(&mut |o| {
                    if res.is_ok() {
                        res = q.serialize_element(&o);
                    }
                });
                res?;
                q.end()
            }
            V::Keys(r) => {
                let mut m = s.serialize_map(Some(r.keys.len()))?;
                for (fp, evs) in &r.keys {
                    m.serialize_entry(fp, &Events(evs, &r.processes))?;
                }
                m.end()
            }
        }
    }
}

struct Events<'a>(&'a [Event], &'a [Process]);

impl Serialize for Events<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut q = s.serialize_seq(Some(self.0.len()))?;
        for e in self.0 {
            q.serialize_element(&event_obj(e, self.1))?;
        }
        q.end()
    }
}

fn violation_obj<'a>(v: &'a Violation, procs: &'a [Process]) -> Obj<'a> {
    Obj::new(vec![
        ("rule", V::Str(&v.rule)),
        ("severity", V::Str(&v.severity)),
        ("pid", V::I64(v.pid)),
        ("host", host_of(procs, v.process)),
        ("process", V::U64(v.process as u64)),
        ("fn", V::Str(&v.func)),
        ("key_fp", opt_str(v.key_fp.as_deref())),
        ("source", V::Str(v.source.as_str())),
        ("ts", V::Str(&v.ts)),
        ("seq", V::U64(v.seq)),
        ("action", opt_str(v.action.as_deref())),
        ("message", V::Str(&v.message)),
        ("count", V::U64(v.count)),
    ])
}

/// The fixed members of an event, in name order.
fn event_base<'a>(e: &'a Event, procs: &'a [Process]) -> [(&'static str, V<'a>); 10] {
    [
        ("desc", V::String(describe(e))),
        ("event", V::Str(e.kind())),
        ("fn", V::Str(&e.func)),
        ("host", host_of(procs, e.process)),
        ("pid", V::I64(e.pid)),
        ("process", V::U64(e.process as u64)),
        ("ret", opt_i64(e.ret)),
        ("seq", V::U64(e.seq)),
        ("status", opt_str(e.status)),
        ("ts", V::Str(&e.ts)),
    ]
}

/// An event's members, each written by [`write_member`].
#[derive(Clone, Copy, Debug)]
enum M {
    Action,
    Address,
    Attr,
    Desc,
    DevPtr,
    Event,
    Flags,
    Fn,
    Host,
    Message,
    Num,
    Pid,
    Pids,
    Process,
    Ret,
    Role,
    Rule,
    Seq,
    ServerPids,
    Severity,
    Size,
    Source,
    Status,
    Ts,
    Type,
}

/// `,`, a new line, the indent of an event's member (four levels) and the member's name
/// and `": "`, as one piece of text.
macro_rules! member_line {
    ($name:literal) => {
        concat!(",\n        \"", $name, "\": ").as_bytes()
    };
}

impl M {
    /// What comes before member `self`'s value in an event written at depth 3 (after a
    /// previous member; the first drops the leading `,`): one copy per member, not four.
    fn line(self) -> &'static [u8] {
        match self {
            M::Action => member_line!("action"),
            M::Address => member_line!("address"),
            M::Attr => member_line!("attr"),
            M::Desc => member_line!("desc"),
            M::DevPtr => member_line!("devPtr"),
            M::Event => member_line!("event"),
            M::Flags => member_line!("flags"),
            M::Fn => member_line!("fn"),
            M::Host => member_line!("host"),
            M::Message => member_line!("message"),
            M::Num => member_line!("num"),
            M::Pid => member_line!("pid"),
            M::Pids => member_line!("pids"),
            M::Process => member_line!("process"),
            M::Ret => member_line!("ret"),
            M::Role => member_line!("role"),
            M::Rule => member_line!("rule"),
            M::Seq => member_line!("seq"),
            M::ServerPids => member_line!("serverPids"),
            M::Severity => member_line!("severity"),
            M::Size => member_line!("size"),
            M::Source => member_line!("source"),
            M::Status => member_line!("status"),
            M::Ts => member_line!("ts"),
            M::Type => member_line!("type"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            M::Action => "action",
            M::Address => "address",
            M::Attr => "attr",
            M::Desc => "desc",
            M::DevPtr => "devPtr",
            M::Event => "event",
            M::Flags => "flags",
            M::Fn => "fn",
            M::Host => "host",
            M::Message => "message",
            M::Num => "num",
            M::Pid => "pid",
            M::Pids => "pids",
            M::Process => "process",
            M::Ret => "ret",
            M::Role => "role",
            M::Rule => "rule",
            M::Seq => "seq",
            M::ServerPids => "serverPids",
            M::Severity => "severity",
            M::Size => "size",
            M::Source => "source",
            M::Status => "status",
            M::Ts => "ts",
            M::Type => "type",
        }
    }
}

/// Each kind of event's members, in name order (as [`event_obj`] sorts them; a test
/// holds the two to each other): the same for every event of a kind, so laid out once
/// here and not sorted per event.
fn event_members(d: &Detail) -> &'static [M] {
    use M::*;
    match d {
        Detail::Export { .. } => &[
            Desc, DevPtr, Event, Flags, Fn, Host, Pid, Process, Ret, Seq, Size, Status, Ts,
        ],
        Detail::Whitelist { .. } => &[
            Desc, Event, Fn, Host, Num, Pid, Pids, Process, Ret, Seq, Status, Ts,
        ],
        Detail::InterServer { .. } => &[
            Desc, Event, Fn, Host, Num, Pid, Process, Ret, Seq, ServerPids, Status, Ts,
        ],
        Detail::SetAttr { .. } => &[
            Attr, Desc, Event, Fn, Host, Pid, Process, Ret, Seq, Status, Ts, Type,
        ],
        Detail::Import { .. } => &[
            Address, Desc, Event, Flags, Fn, Host, Pid, Process, Ret, Seq, Status, Ts,
        ],
        Detail::Close { .. } => &[
            Desc, Event, Fn, Host, Pid, Process, Ret, Role, Seq, Status, Ts,
        ],
        Detail::Free { .. } => &[
            Desc, DevPtr, Event, Fn, Host, Pid, Process, Ret, Role, Seq, Status, Ts,
        ],
        Detail::Violation(_) => &[
            Action, Desc, Event, Fn, Host, Message, Pid, Process, Ret, Rule, Seq, Severity, Source,
            Status, Ts,
        ],
    }
}

/// `pretty_obj(&event_obj(e, procs), depth, out)`, written member by member in the
/// kind's fixed order ([`event_members`]): no object of values is built, sorted or
/// walked per event (that pass was an eighth of the report's CPU). `desc` is scratch
/// room for the event's description.
fn write_event(e: &Event, procs: &[Process], depth: usize, desc: &mut String, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, &m) in event_members(&e.detail).iter().enumerate() {
        if depth == 3 {
            // The member's line start in one piece (`M::line`), without its `,` first.
            out.extend_from_slice(&m.line()[usize::from(i == 0)..]);
        } else {
            out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
            indent(out, depth + 1);
            member_name(m.name(), out);
        }
        write_member(e, m, procs, depth + 1, desc, out);
    }
    out.push(b'\n');
    indent(out, depth);
    out.push(b'}');
}

fn null_or_u64(v: Option<u64>, out: &mut Vec<u8>) {
    match v {
        Some(n) => pretty_u64(n, out),
        None => out.extend_from_slice(b"null"),
    }
}

fn null_or_str(v: Option<&str>, out: &mut Vec<u8>) {
    match v {
        Some(t) => pretty_str(t, out),
        None => out.extend_from_slice(b"null"),
    }
}

fn hex_or_null(v: Option<u64>, out: &mut Vec<u8>) {
    match v {
        Some(a) => pretty(&V::Hex(a), 0, out),
        None => out.extend_from_slice(b"null"),
    }
}

/// The value of member `m` of event `e`, as [`event_base`] and [`event_fields`] give it.
fn write_member(
    e: &Event,
    m: M,
    procs: &[Process],
    depth: usize,
    desc: &mut String,
    out: &mut Vec<u8>,
) {
    let d = &e.detail;
    let v = match d {
        Detail::Violation(v) => Some(&**v),
        _ => None,
    };
    match m {
        M::Desc => {
            desc.clear();
            super::describe_into(e, desc);
            pretty_str(desc, out);
        }
        M::Event => pretty_str(e.kind(), out),
        M::Fn => pretty_str(&e.func, out),
        M::Host => null_or_str(procs.get(e.process).and_then(|p| p.host.as_deref()), out),
        M::Pid => pretty_i64(e.pid, out),
        M::Process => pretty_u64(e.process as u64, out),
        M::Ret => match e.ret {
            Some(n) => pretty_i64(n, out),
            None => out.extend_from_slice(b"null"),
        },
        M::Seq => pretty_u64(e.seq, out),
        M::Status => null_or_str(e.status, out),
        M::Ts => pretty_str(&e.ts, out),
        M::DevPtr => match d {
            Detail::Export { dev_ptr, .. } => hex_or_null(*dev_ptr, out),
            Detail::Free { dev_ptr, .. } => hex_or_null(Some(*dev_ptr), out),
            _ => out.extend_from_slice(b"null"),
        },
        M::Size => match d {
            Detail::Export { size, .. } => null_or_u64(*size, out),
            _ => out.extend_from_slice(b"null"),
        },
        M::Flags => match d {
            Detail::Export { flags, .. } | Detail::Import { flags, .. } => null_or_u64(*flags, out),
            _ => out.extend_from_slice(b"null"),
        },
        M::Num => match d {
            Detail::Whitelist { num, .. } | Detail::InterServer { num, .. } => {
                null_or_u64(*num, out)
            }
            _ => out.extend_from_slice(b"null"),
        },
        M::Pids => match d {
            Detail::Whitelist { pids, .. } => pretty(&V::Ints(pids.list()), depth, out),
            _ => out.extend_from_slice(b"null"),
        },
        M::ServerPids => match d {
            Detail::InterServer {
                server_pids: Some(p),
                ..
            } => pretty(&V::ServerPids(p), depth, out),
            _ => out.extend_from_slice(b"null"),
        },
        M::Type => match d {
            Detail::SetAttr { attr_type, .. } => null_or_u64(*attr_type, out),
            _ => out.extend_from_slice(b"null"),
        },
        M::Attr => match d {
            Detail::SetAttr { attr, .. } => null_or_u64(*attr, out),
            _ => out.extend_from_slice(b"null"),
        },
        M::Address => match d {
            Detail::Import { address, .. } => hex_or_null(*address, out),
            _ => out.extend_from_slice(b"null"),
        },
        M::Role => match d {
            Detail::Close { role } | Detail::Free { role, .. } => pretty_str(role, out),
            _ => out.extend_from_slice(b"null"),
        },
        M::Rule => null_or_str(v.map(|v| v.rule.as_str()), out),
        M::Severity => null_or_str(v.map(|v| v.severity.as_str()), out),
        M::Source => null_or_str(v.map(|v| v.source.as_str()), out),
        M::Action => null_or_str(v.and_then(|v| v.action.as_deref()), out),
        M::Message => null_or_str(v.map(|v| v.message.as_str()), out),
    }
}

fn event_obj<'a>(e: &'a Event, procs: &'a [Process]) -> Obj<'a> {
    // In name order already: only the detail's members move.
    let mut m = Vec::with_capacity(15);
    m.extend(event_base(e, procs));
    debug_assert!(m.windows(2).all(|w| name_before(w[0].0, w[1].0)));
    let base = m.len();
    event_fields(e, &mut m);
    Obj::sorted_after(m, base)
}

fn process_obj(i: usize, p: &Process) -> Obj<'_> {
    let (end, how) = match &p.end {
        End::Exited(ts) => (V::Str(ts), "exited"),
        End::Replaced(ts) => (V::Str(ts), "replaced"),
        End::Unknown => (V::Null, "unknown"),
    };
    Obj::new(vec![
        ("id", V::U64(i as u64)),
        ("tag", V::Str(&p.tag)),
        ("pid", V::I64(p.pid)),
        ("host", opt_str(p.host.as_deref())),
        ("bare_tgid", opt_i64(p.bare_tgid)),
        ("parent", opt_i64(p.parent_pid)),
        ("parent_process", opt_u64(p.parent.map(|x| x as u64))),
        ("ledger", opt_str(p.ledger.as_deref())),
        ("start_ts", opt_str(p.start_ts.as_deref())),
        ("end_ts", end),
        ("end", V::Str(how)),
        ("last_ts", V::Str(&p.last_ts)),
        ("first_seq", V::U64(p.first_seq)),
        ("last_seq", V::U64(p.last_seq)),
        ("records", V::U64(p.records as u64)),
        ("dropped", opt_u64(p.dropped)),
        ("version", opt_str(p.version.as_deref())),
        ("mode", opt_str(p.mode.as_deref())),
        ("exe", opt_str(p.exe.as_deref())),
        ("files", V::Strs(&p.files)),
    ])
}

/// The report's top-level object.
struct JsonReport<'a>(&'a Report);

impl Serialize for JsonReport<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        Obj::new(vec![
            (
                "files",
                list(move |put| {
                    for f in &r.files {
                        put(Obj::new(vec![
                            ("path", V::Str(&f.path)),
                            ("read", V::Bool(f.error.is_none())),
                            ("error", opt_str(f.error.as_deref())),
                            ("records", V::U64(f.records as u64)),
                            ("text_lines", V::U64(f.text_lines as u64)),
                            ("skipped", V::U64(f.skipped as u64)),
                        ]));
                    }
                }),
            ),
            ("records", V::U64(r.records as u64)),
            ("duplicates", V::U64(r.duplicates as u64)),
            ("text_lines", V::U64(r.text_lines as u64)),
            (
                "processes",
                list(move |put| {
                    for (i, p) in r.processes.iter().enumerate() {
                        put(process_obj(i, p));
                    }
                }),
            ),
            (
                "gaps",
                list(move |put| {
                    for g in &r.gaps {
                        put(Obj::new(vec![
                            ("pid", V::I64(g.pid)),
                            ("process", V::U64(g.process as u64)),
                            ("from", V::U64(g.from)),
                            ("to", V::U64(g.to)),
                        ]));
                    }
                }),
            ),
            (
                "skipped",
                list(move |put| {
                    for k in &r.skipped {
                        put(Obj::new(vec![
                            ("file", V::Str(&k.file)),
                            ("line", V::U64(k.line as u64)),
                            ("reason", V::Str(&k.reason)),
                        ]));
                    }
                }),
            ),
            (
                "errors",
                list(move |put| {
                    for e in &r.errors {
                        put(Obj::new(vec![
                            ("ts", V::Str(&e.ts)),
                            ("pid", V::I64(e.pid)),
                            ("process", V::U64(e.process as u64)),
                            ("message", V::Str(&e.message)),
                        ]));
                    }
                }),
            ),
            (
                "violations",
                list(move |put| {
                    for v in &r.violations {
                        put(violation_obj(v, &r.processes));
                    }
                }),
            ),
            ("keys", V::Keys(r)),
            ("untracked_keys", V::Strs(&r.untracked_keys)),
            (
                "verdict",
                V::Obj(Obj::new(vec![
                    ("errors", V::U64(r.count("error"))),
                    ("warnings", V::U64(r.count("warning"))),
                    ("exit_status", V::I64(i64::from(r.exit_status()))),
                ])),
            ),
        ])
        .serialize(s)
    }
}

/// The kind-specific members of an event.
fn event_fields<'a>(e: &'a Event, m: &mut Vec<(&'static str, V<'a>)>) {
    match &e.detail {
        Detail::Export {
            dev_ptr,
            size,
            flags,
        } => {
            m.push(("devPtr", hex(*dev_ptr)));
            m.push(("size", opt_u64(*size)));
            m.push(("flags", opt_u64(*flags)));
        }
        Detail::Whitelist { pids, num } => {
            m.push(("pids", V::Ints(pids.list())));
            m.push(("num", opt_u64(*num)));
        }
        Detail::InterServer { server_pids, num } => {
            m.push((
                "serverPids",
                server_pids.as_deref().map_or(V::Null, V::ServerPids),
            ));
            m.push(("num", opt_u64(*num)));
        }
        Detail::SetAttr { attr_type, attr } => {
            m.push(("type", opt_u64(*attr_type)));
            m.push(("attr", opt_u64(*attr)));
        }
        Detail::Import { address, flags } => {
            m.push(("address", hex(*address)));
            m.push(("flags", opt_u64(*flags)));
        }
        Detail::Close { role } => m.push(("role", V::Str(role))),
        Detail::Free { dev_ptr, role } => {
            m.push(("devPtr", hex(Some(*dev_ptr))));
            m.push(("role", V::Str(role)));
        }
        Detail::Violation(v) => {
            m.push(("rule", V::Str(&v.rule)));
            m.push(("severity", V::Str(&v.severity)));
            m.push(("source", V::Str(v.source.as_str())));
            m.push(("action", opt_str(v.action.as_deref())));
            m.push(("message", V::Str(&v.message)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::model::{Source, Violation};
    use super::super::super::parse::PidArg;
    use super::*;

    /// `key_member` as it was written through serde: what the hand-written one must match.
    fn by_serde(fp: &str, events: &[Event], procs: &[Process]) -> Vec<u8> {
        let mut one = Vec::new();
        let mut s = serde_json::Serializer::pretty(&mut one);
        let mut m = s.serialize_map(Some(1)).unwrap();
        m.serialize_entry(fp, &Events(events, procs)).unwrap();
        SerializeMap::end(m).unwrap();
        let mut out = Vec::new();
        for (i, line) in one[2..one.len() - 2].split(|b| *b == b'\n').enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(b"  ");
            out.extend_from_slice(line);
        }
        out
    }

    #[test]
    fn each_members_line_is_its_name_at_an_events_indent() {
        use M::*;
        let all = [
            Action, Address, Attr, Desc, DevPtr, Event, Flags, Fn, Host, Message, Num, Pid, Pids,
            Process, Ret, Role, Rule, Seq, ServerPids, Severity, Size, Source, Status, Ts, Type,
        ];
        for m in all {
            let mut want = b",\n".to_vec();
            indent(&mut want, 4);
            member_name(m.name(), &mut want);
            assert_eq!(m.line(), &want[..], "{m:?}");
        }
    }

    #[test]
    fn key_members_are_written_as_serde_writes_them() {
        let nasty = "q\"b\\s/ \u{0}\u{1f}\u{7f}\u{8}\t\n\u{c}\r é ✓ \u{2028}";
        let proc_ = |host: Option<&str>| Process::named(-3, "t", host);
        let procs = vec![proc_(Some(nasty)), proc_(None)];
        let details = vec![
            Detail::Export {
                dev_ptr: Some(u64::MAX),
                size: None,
                flags: Some(0),
            },
            Detail::Export {
                dev_ptr: None,
                size: Some(1),
                flags: None,
            },
            Detail::Whitelist {
                pids: PidArg::List(vec![1, -2, i64::MIN, i64::MAX]),
                num: Some(4),
            },
            Detail::Whitelist {
                pids: PidArg::List(vec![]),
                num: None,
            },
            Detail::Whitelist {
                pids: PidArg::Unread("{\"a\":1}".into()),
                num: Some(u64::MAX),
            },
            Detail::InterServer {
                server_pids: Some(vec![(1, vec![2, 3]), (0, vec![])]),
                num: Some(2),
            },
            Detail::InterServer {
                server_pids: Some(vec![]),
                num: None,
            },
            Detail::InterServer {
                server_pids: None,
                num: None,
            },
            Detail::SetAttr {
                attr_type: Some(1),
                attr: None,
            },
            Detail::Import {
                address: Some(0x1000),
                flags: Some(7),
            },
            Detail::Close { role: "importer" },
            Detail::Free {
                dev_ptr: 0,
                role: "exporter",
            },
            Detail::Violation(Box::new(Violation {
                rule: nasty.into(),
                severity: "error".into(),
                process: 1,
                pid: 5,
                func: nasty.into(),
                key_fp: Some(nasty.into()),
                source: Source::Recheck,
                ts: nasty.into(),
                ts_us: 0,
                seq: 0,
                message: nasty.into(),
                action: None,
                count: 1,
            })),
        ];
        let events: Vec<Event> = details
            .into_iter()
            .enumerate()
            .map(|(i, detail)| Event {
                // Short enough to be kept in place, or not (a `ts` past 32 bytes).
                ts: match i % 4 {
                    0 => nasty.into(),
                    2 => nasty.repeat(3).into(),
                    _ => "".into(),
                },
                ts_us: -1,
                process: i % 3,
                pid: 1 - i as i64,
                seq: i as u64 * 1_000_000_007,
                func: if i % 2 == 1 { nasty.into() } else { "f".into() },
                ret: (i % 3 != 0).then_some(-(i as i64)),
                status: (i % 4 != 0).then_some("ok"),
                detail,
            })
            .collect();
        for (fp, evs) in [
            ("fp:1", &events[..]),
            (nasty, &events[..1]),
            ("", &events[..0]),
        ] {
            let mut mine = Vec::new();
            key_member(fp, evs, &procs, &mut mine);
            let theirs = by_serde(fp, evs, &procs);
            assert_eq!(
                String::from_utf8(mine).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_escapes_them_wherever_the_escape_falls() {
        // The word-at-a-time skip: an escape (or a byte of a multi-byte character) in the
        // first word, in a later one, in the tail past the last whole word, or none at all.
        let mut cases = vec![String::new(), "fp:f1a451cb244efbc5".to_owned()];
        for len in [7, 8, 9, 15, 16, 17, 31, 33] {
            for at in 0..len {
                for c in [
                    '"', '\\', '\u{0}', '\u{1f}', '\n', ' ', '\u{7f}', 'é', '✓', '!', '#', '[', ']',
                ] {
                    let mut t: String = "abcdefghijklmnopqrstuvwxyz0123456789"
                        .chars()
                        .take(len)
                        .collect();
                    t.insert(at, c);
                    cases.push(t);
                }
            }
        }
        for t in &cases {
            let mut mine = Vec::new();
            pretty_str(t, &mut mine);
            assert_eq!(
                String::from_utf8(mine).unwrap(),
                serde_json::to_string(t).unwrap(),
                "{t:?}"
            );
        }
    }

    #[test]
    fn members_come_sorted_by_name_as_str_orders_them() {
        let names: [&'static str; 14] = [
            "ts",
            "t",
            "",
            "pids",
            "pid",
            "process",
            "devPtr",
            "desc",
            "a\u{e9}",
            "ab",
            "aa",
            "serverPids",
            "zz",
            "Z",
        ];
        // Every rotation and its reverse: in order, backwards, and mixed.
        for k in 0..names.len() {
            for rev in [false, true] {
                let mut given: Vec<&'static str> = names
                    .iter()
                    .cycle()
                    .skip(k)
                    .take(names.len())
                    .copied()
                    .collect();
                if rev {
                    given.reverse();
                }
                let o = Obj::new(given.iter().map(|n| (*n, V::Null)).collect());
                let got: Vec<&str> = o.0.iter().map(|(n, _)| *n).collect();
                let mut want = given.clone();
                want.sort();
                assert_eq!(got, want);
            }
        }
    }
}
