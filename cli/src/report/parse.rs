//! One log line to one record: JSON lines only; text lines and noise are counted, malformed
//! JSON is reported with a reason. Never panics, whatever the bytes.

pub use acl_ipc_guard::record::parse_ts;
use acl_ipc_guard::record::schema;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// A name every line repeats (its event, a call's function): one the shim writes is not
/// copied out of the line, only an unknown one is.
pub type Name = std::borrow::Cow<'static, str>;

/// The names [`Name`] does not copy.
fn known_names() -> impl Iterator<Item = &'static str> {
    [
        schema::START,
        schema::CALL,
        schema::VIOLATION,
        schema::SUMMARY,
        schema::ERROR,
    ]
    .into_iter()
    .chain(acl_ipc_guard::call::Func::ALL.into_iter().map(|f| f.name()))
}

/// The known name `s` is, if any; the names are looked up by their length first (a
/// line names two, its event and its function: going down the list cost a tenth of the
/// census).
fn known_name(s: &str) -> Option<&'static str> {
    static BY_LEN: std::sync::OnceLock<Vec<Vec<&'static str>>> = std::sync::OnceLock::new();
    let by_len = BY_LEN.get_or_init(|| {
        let mut t: Vec<Vec<&'static str>> = Vec::new();
        for k in known_names() {
            if t.len() <= k.len() {
                t.resize(k.len() + 1, Vec::new());
            }
            t[k.len()].push(k);
        }
        t
    });
    by_len.get(s.len())?.iter().copied().find(|k| *k == s)
}

/// A record's `ts` as written: the shim's 27 bytes (`2026-12-01T23:08:11.270283Z`) kept
/// in place, a longer one on the heap. Every record and key event carries one: as a
/// `String` it was an allocation per record in the parser and another per event in the
/// re-check, each freed by another thread.
#[derive(Clone)]
pub struct Ts(TsRepr);

/// A call's key fingerprint, kept in place like a [`Ts`] (the shim's are 19 bytes): as a
/// `String` it was an allocation per call record in each reading.
pub type Fp = Ts;

#[derive(Clone)]
enum TsRepr {
    Inline { len: u8, bytes: [u8; TS_INLINE] },
    Heap(Box<str>),
}

/// The longest `ts` kept in place.
const TS_INLINE: usize = 32;

impl Ts {
    pub fn as_str(&self) -> &str {
        match &self.0 {
            TsRepr::Inline { len, bytes } => {
                let b = &bytes[..usize::from(*len)];
                debug_assert!(std::str::from_utf8(b).is_ok());
                // SAFETY: `TsRepr::Inline` is made in one place only, `From<&str>`, which
                // copies a whole `&str` (valid UTF-8) into `bytes[..len]`; the fields are
                // private to this module and never written after. Checked (`from_utf8`),
                // this was 5% of the report's instructions: every comparison, hash and
                // write of a `ts` or fingerprint looked at it again.
                unsafe { std::str::from_utf8_unchecked(b) }
            }
            TsRepr::Heap(s) => s,
        }
    }
}

impl From<&str> for Ts {
    fn from(s: &str) -> Ts {
        if s.len() <= TS_INLINE {
            let mut bytes = [0u8; TS_INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Ts(TsRepr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            Ts(TsRepr::Heap(s.into()))
        }
    }
}

impl From<String> for Ts {
    fn from(s: String) -> Ts {
        Ts::from(s.as_str())
    }
}

impl std::ops::Deref for Ts {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Ts {
    fn eq(&self, o: &Ts) -> bool {
        self.as_str() == o.as_str()
    }
}

impl Eq for Ts {}

// Ordered as its text (a set of them is in the order a set of `String`s was).
impl PartialOrd for Ts {
    fn partial_cmp(&self, o: &Ts) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Ts {
    fn cmp(&self, o: &Ts) -> std::cmp::Ordering {
        self.as_str().cmp(o.as_str())
    }
}

// Hashed and borrowed as its text, so that a map keyed by it is looked up by a `&str`.
impl std::hash::Hash for Ts {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_str().hash(h);
    }
}

impl std::borrow::Borrow<str> for Ts {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Ts {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Ts {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A record as read back: the fields every record has, parsed, and what its event carries
/// that the report uses (logs can be large: nothing else is kept).
#[derive(Clone, Debug)]
pub struct Rec {
    /// Index of the file it came from.
    pub file: usize,
    pub ts: Ts,
    /// `ts` as microseconds since the Unix epoch.
    pub ts_us: i64,
    pub seq: u64,
    pub pid: i64,
    /// The writing thread (`report --trace` draws a track per thread); `None` if absent.
    pub tid: Option<i64>,
    pub event: Name,
    pub body: Body,
    /// A hash of the line as read: the last tie-breaker of the merge, so that which of two
    /// records with the same ts, pid, seq and event is kept never depends on file order.
    pub hash: u64,
    /// The process (index into `Report::processes`) it belongs to; set by the merge.
    pub proc_idx: usize,
}

#[derive(Clone, Debug)]
pub enum Body {
    Start(Box<StartInfo>),
    Call(Box<Call>),
    Violation(Box<LogViolation>),
    Summary {
        dropped: Option<u64>,
        /// Violations counted per rule (all of them, written or not).
        violations: Vec<(String, u64)>,
    },
    Error {
        message: String,
    },
    /// An event this reader does not know.
    Other,
}

/// What a `start` record says about its process (fields missing in older logs are `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StartInfo {
    pub version: Option<String>,
    pub mode: Option<String>,
    pub exe: Option<String>,
    pub ledger: Option<String>,
    pub host: Option<String>,
    pub bare_tgid: Option<i64>,
    /// A fork child: the pid of the process that forked it.
    pub parent: Option<i64>,
}

/// A `call` record: the function, its outcome, and the arguments and out-values the report
/// looks at (a missing or mistyped field is `None`).
#[derive(Clone, Debug, Default)]
pub struct Call {
    pub func: Name,
    pub ret: Option<i64>,
    /// A missing `forwarded` counts as forwarded.
    pub forwarded: bool,
    /// `args.key_fp` (a fingerprint, `fp:` and 16 hex digits, is kept in place: see [`Ts`]).
    pub key_fp: Option<Fp>,
    /// `args.devPtr`: the memory (export, free) or the out-pointer (import, malloc).
    pub dev_ptr: Option<u64>,
    pub size: Option<u64>,
    pub flags: Option<u64>,
    pub num: Option<u64>,
    /// `args.pid` of SetImportPid.
    pub pids: PidArg,
    /// `args.serverPids` of ImportPidInterServer: (sdid, pids) per entry; `None` unless an array.
    pub server_pids: Option<Vec<(u64, Vec<i64>)>>,
    pub attr_type: Option<u64>,
    pub attr: Option<u64>,
    pub out_dev_ptr: Option<u64>,
    pub out_key_fp: Option<Fp>,
    /// Streaming: how many records name `out_key_fp`, as the first reading counted them
    /// (`Some(None)`: it counted none), looked up by the merge's parser thread so that the
    /// merge itself need not read its table for the key's first record. `None`: not
    /// looked up.
    pub out_fp_count: Option<Option<u64>>,
    pub out_pid: Option<i64>,
    /// `"ledger":"untracked"`: an export the ledger could not hold.
    pub untracked: bool,
    /// `dur_ns`: how long the runtime took (0 for a blocked call).
    pub dur_ns: Option<u64>,
}

impl Call {
    /// Forwarded and returned 0: only such a call changed the runtime's state.
    pub fn ok(&self) -> bool {
        self.forwarded && self.ret == Some(0)
    }

    pub fn status(&self) -> &'static str {
        if !self.forwarded {
            "blocked"
        } else if self.ret == Some(0) {
            "ok"
        } else {
            "failed"
        }
    }
}

/// A pid list argument as recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PidArg {
    #[default]
    Absent,
    /// The pointer was NULL.
    Null,
    List(Vec<i64>),
    /// A pointer the shim did not read (`num` out of range), as written.
    Unread(String),
}

impl PidArg {
    fn from(v: Option<&str>) -> Self {
        let Some(v) = v else {
            return PidArg::Absent;
        };
        match v.as_bytes().first() {
            Some(b'n') => PidArg::Null,
            Some(b'[') => PidArg::List(pid_list(Some(v))),
            // As the value prints compactly (the shim writes it so; other writers may not).
            _ => PidArg::Unread(
                serde_json::from_str::<serde_json::Value>(v)
                    .map_or_else(|_| v.to_owned(), |x| x.to_string()),
            ),
        }
    }

    pub fn list(&self) -> &[i64] {
        match self {
            PidArg::List(p) => p,
            _ => &[],
        }
    }
}

#[derive(Clone, Debug)]
pub struct LogViolation {
    pub rule: String,
    pub severity: String,
    pub action: Option<String>,
    pub func: String,
    pub message: String,
    pub key_fp: Option<String>,
}

// ------------------------------------------------------------------ reading one object
//
// A line is read once, into the raw text of the members the report looks at (borrowed
// from the line; every other member is checked for syntax and skipped), and each member
// is then read as the type it should have: a member of another type counts as missing.
// This is what reading the line into a `serde_json::Value` and asking it would give (the
// last of duplicate members wins, as there), without building a map per record.

/// The members of an object the report looks at, by name: the raw JSON text of each.
struct Members<'a, const N: usize> {
    names: &'static [&'static str; N],
    raw: [Option<&'a str>; N],
    /// Read by [`scan`], which gives up on any backslash: no string in `raw` has an escape.
    plain: bool,
}

impl<'a, const N: usize> Members<'a, N> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.raw[find(self.names, name)?]
    }
    fn str(&self, name: &str) -> Option<String> {
        let v = self.get(name)?;
        if self.plain && v.len() >= 2 && v.starts_with('"') && !serde_only() {
            return Some(v[1..v.len() - 1].to_owned());
        }
        as_str(v)
    }
    fn i64(&self, name: &str) -> Option<i64> {
        as_i64(self.get(name)?)
    }
    /// `ts`, not copied to the heap when written plainly (as the shim does).
    fn ts(&self) -> Option<Ts> {
        self.short(schema::TS)
    }
    /// A string member that is short as a [`Ts`]: not copied to the heap when written
    /// plainly and short.
    fn short(&self, name: &str) -> Option<Ts> {
        self.short_of(self.get(name)?)
    }
    /// [`Members::short`] of the raw value `v`, one of this object's.
    fn short_of(&self, v: &str) -> Option<Ts> {
        if v.len() >= 2 && v.starts_with('"') && self.unescaped(v) && !serde_only() {
            return Some(Ts::from(&v[1..v.len() - 1]));
        }
        as_str(v).map(Ts::from)
    }
    /// A string member as a [`Name`]: borrowed when it is a known one, written plainly.
    fn name(&self, name: &str) -> Option<Name> {
        let v = self.get(name)?;
        if v.len() >= 2 && v.starts_with('"') && self.unescaped(v) && !serde_only() {
            let inner = &v[1..v.len() - 1];
            if let Some(k) = known_name(inner) {
                return Some(Name::Borrowed(k));
            }
        }
        as_str(v).map(Name::Owned)
    }
    fn u64(&self, name: &str) -> Option<u64> {
        as_u64(self.get(name)?)
    }
    /// The raw string `v` has no escape in it.
    fn unescaped(&self, v: &str) -> bool {
        self.plain || !v.as_bytes().contains(&b'\\')
    }
    /// A member that is an object: its members; an empty set when missing or not an object.
    fn object<const M: usize>(
        &self,
        name: &str,
        names: &'static [&'static str; M],
    ) -> Members<'a, M> {
        self.get(name)
            .filter(|v| v.starts_with('{'))
            .and_then(|v| members(v, names).ok())
            .unwrap_or(Members {
                names,
                raw: [None; M],
                plain: false,
            })
    }
}

/// Where `name` is in `names`: for the record's and a call's `args` names (a member of
/// every line and a name asked for a dozen times a line) by a `match`, which tells names
/// apart by length and a few bytes, not one by one.
#[inline]
fn find<const N: usize>(names: &'static [&'static str; N], name: &str) -> Option<usize> {
    let at = names.as_ptr().cast::<()>();
    if std::ptr::eq(at, RECORD_NAMES.as_ptr().cast()) {
        return record_slot(name);
    }
    if std::ptr::eq(at, ARGS_NAMES.as_ptr().cast()) {
        return args_slot(name);
    }
    names.iter().position(|n| same(n, name))
}

/// `RECORD`'s place of `name` (a test checks the two agree).
#[inline]
fn record_slot(name: &str) -> Option<usize> {
    Some(match name {
        "ts" => 0,
        "seq" => 1,
        "pid" => 2,
        "tid" => 3,
        "dur_ns" => 4,
        "event" => 5,
        "version" => 6,
        "mode" => 7,
        "exe" => 8,
        "ledger" => 9,
        "host" => 10,
        "bare_tgid" => 11,
        "parent" => 12,
        "fn" => 13,
        "ret" => 14,
        "forwarded" => 15,
        "args" => 16,
        "out" => 17,
        "rule" => 18,
        "severity" => 19,
        "action" => 20,
        "message" => 21,
        "key_fp" => 22,
        "dropped" => 23,
        "violations" => 24,
        _ => return None,
    })
}

/// `ARGS`'s place of `name`.
#[inline]
fn args_slot(name: &str) -> Option<usize> {
    Some(match name {
        "key_fp" => 0,
        "devPtr" => 1,
        "size" => 2,
        "flags" => 3,
        "num" => 4,
        "pid" => 5,
        "serverPids" => 6,
        "type" => 7,
        "attr" => 8,
        _ => return None,
    })
}

/// `a == b`, the length and first byte first (most names differ there).
fn same(a: &str, b: &str) -> bool {
    // Compared in place: member names are short, a `memcmp` call cost more than the bytes.
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.first() == b.first() && a.iter().zip(b).all(|(x, y)| x == y)
}

fn as_str(v: &str) -> Option<String> {
    if !v.starts_with('"') {
        return None;
    }
    // The raw text is a valid JSON string already: without a backslash, its content is
    // the text between the quotes.
    if v.len() >= 2 && !v.as_bytes().contains(&b'\\') && !serde_only() {
        return Some(v[1..v.len() - 1].to_owned());
    }
    serde_json::from_str(v).ok()
}

/// A valid JSON number of at most 18 digits and nothing else (no sign, fraction or
/// exponent): its value, as serde would read it; `None` for serde to decide.
fn small_uint(v: &str) -> Option<u64> {
    let b = v.as_bytes();
    if b.is_empty() || b.len() > 18 || !b.iter().all(u8::is_ascii_digit) || serde_only() {
        return None;
    }
    Some(b.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

fn as_i64(v: &str) -> Option<i64> {
    match small_uint(v) {
        Some(n) => i64::try_from(n).ok(),
        None => serde_json::from_str(v).ok(),
    }
}

fn as_u64(v: &str) -> Option<u64> {
    small_uint(v).or_else(|| serde_json::from_str(v).ok())
}

struct MembersSeed<const N: usize>(&'static [&'static str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for MembersSeed<N> {
    type Value = Members<'de, N>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for MembersSeed<N> {
    type Value = Members<'de, N>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = [None; N];
        while let Some(k) = map.next_key_seed(NameSeed(self.0))? {
            match k {
                Some(i) => raw[i] = Some(map.next_value::<&'de RawValue>()?.get()),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Members {
            names: self.0,
            raw,
            plain: false,
        })
    }
}

/// A member's name, as its place in a list of names (`None`: not one of them); read
/// without copying it.
struct NameSeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|n| *n == k))
    }
}

/// The members `names` of the JSON object `text` (an error: not one JSON object).
fn read_members<'a, const N: usize>(
    text: &'a str,
    names: &'static [&'static str; N],
) -> serde_json::Result<Members<'a, N>> {
    let mut d = serde_json::Deserializer::from_str(text);
    let m = MembersSeed(names).deserialize(&mut d)?;
    d.end()?;
    Ok(m)
}

/// The members `names` of the JSON object `text`: by [`scan`] when the text is as the shim
/// writes it, else by serde (which also words the error of text that is not JSON).
fn members<'a, const N: usize>(
    text: &'a str,
    names: &'static [&'static str; N],
) -> serde_json::Result<Members<'a, N>> {
    match scan(text, names).filter(|_| !serde_only()) {
        Some(m) => Ok(m),
        None => read_members(text, names),
    }
}

/// For the report's tests: whether [`canonical_call`] reads `line` (trimmed as a line is).
#[cfg(test)]
pub(super) fn read_as_canonical_call(line: &str) -> bool {
    canonical_call(line.trim()).is_some()
}

/// For the report's tests: `line` read as the census and the merge read it, and read by
/// serde alone (no fast path at all), each as its `Debug` text.
#[cfg(test)]
pub(super) fn read_fast_and_slow(line: &str) -> [(String, String); 2] {
    let read = |lean: bool| format!("{:?}", parse_line_as(0, line, false, lean));
    let fast = [read(true), read(false)];
    SERDE_ONLY.with(|c| c.set(true));
    let slow = [read(true), read(false)];
    SERDE_ONLY.with(|c| c.set(false));
    [
        (fast[0].clone(), slow[0].clone()),
        (fast[1].clone(), slow[1].clone()),
    ]
}

/// For the report's tests: [`ts_us`] (with its kept minute), and [`parse_ts`].
#[cfg(test)]
pub(super) fn ts_fast_and_slow(ts: &str) -> (Option<i64>, Option<i64>) {
    (ts_us(ts), parse_ts(ts))
}

// The tests read lines with serde alone too, to compare.
#[cfg(test)]
thread_local! {
    static SERDE_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn serde_only() -> bool {
    SERDE_ONLY.with(std::cell::Cell::get)
}

#[cfg(not(test))]
#[inline(always)]
fn serde_only() -> bool {
    false
}

// ------------------------------------------------------------------ the shim's own lines
//
// The shim writes its records compactly: no whitespace, strings whose only escapes it needs
// rarely, integers. [`scan`] reads exactly that subset of JSON with a byte at a time and no
// allocation, and gives up (`None`) on anything else: whitespace, a backslash, a fraction or
// exponent, a nesting deeper than [`SCAN_DEPTH`], any syntax error. What it accepts is valid
// JSON, and its members are what serde would find (the raw text of each value, the last of
// duplicates winning), so a line reads the same either way; one it gives up on goes to serde.

/// How deep [`scan`] follows arrays and objects (serde's own limit is 128).
const SCAN_DEPTH: u32 = 8;

/// The members `names` of the object `text`, when it is all of the subset above.
fn scan<'a, const N: usize>(
    text: &'a str,
    names: &'static [&'static str; N],
) -> Option<Members<'a, N>> {
    let (m, end) = scan_at(text, 0, names)?;
    (end == text.len()).then_some(m)
}

/// [`scan`] of the object that starts at `at` in `text`: its members and where it ends.
fn scan_at<'a, const N: usize>(
    text: &'a str,
    at: usize,
    names: &'static [&'static str; N],
) -> Option<(Members<'a, N>, usize)> {
    let b = text.as_bytes();
    let mut raw = [None; N];
    let mut i = at + 1;
    if b.get(at) != Some(&b'{') {
        return None;
    }
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let (k0, k1) = scan_string(b, i)?;
            if b.get(k1) != Some(&b':') {
                return None;
            }
            let v0 = k1 + 1;
            let v1 = scan_value(b, v0, 0)?;
            // Both ends are ASCII bytes of `text`: character boundaries.
            let name = &text[k0 + 1..k1 - 1];
            if let Some(at) = find(names, name) {
                raw[at] = Some(&text[v0..v1]);
            }
            match b.get(v1) {
                Some(b',') => i = v1 + 1,
                Some(b'}') => {
                    i = v1 + 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    Some((
        Members {
            names,
            raw,
            plain: true,
        },
        i,
    ))
}

/// A string starting at `at`: its end (past the closing quote), with `at`.
fn scan_string(b: &[u8], at: usize) -> Option<(usize, usize)> {
    if b.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    // Eight bytes at a time while there are eight: the first that ends the plain run.
    while let Some(w) = b.get(i..i + 8) {
        let m = stops(u64::from_le_bytes([
            w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
        ]));
        if m != 0 {
            i += (m.trailing_zeros() / 8) as usize;
            return (b[i] == b'"').then_some((at, i + 1));
        }
        i += 8;
    }
    let n = b
        .get(i..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    (b[i + n] == b'"').then_some((at, i + n + 1))
}

/// The bytes of `x` (eight of a line, the first in the low byte) that end a plain run of a
/// string: a quote, a backslash or a control character, each marked by its high bit. The
/// lowest mark is exact (a borrow runs upwards only, from a byte that is marked itself), so
/// `trailing_zeros / 8` is the first such byte. A byte at or above 0x80 is never marked.
#[inline]
fn stops(x: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let below = |y: u64, n: u8| y.wrapping_sub(ONES * u64::from(n)) & !y & HIGH;
    below(x, 0x20) | below(x ^ (ONES * 0x22), 1) | below(x ^ (ONES * 0x5c), 1)
}

/// A number starting at `at`, as [`scan_value`] reads one: where it ends.
#[inline]
fn scan_number(b: &[u8], at: usize) -> Option<usize> {
    let mut i = at + usize::from(*b.get(at)? == b'-');
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => {
            i += 1;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return None,
    }
    // A fraction or an exponent, or a leading zero: serde's.
    (!matches!(b.get(i), Some(b'.' | b'e' | b'E' | b'0'..=b'9'))).then_some(i)
}

/// A value starting at `at`: where it ends.
fn scan_value(b: &[u8], at: usize, depth: u32) -> Option<usize> {
    let word = |w: &[u8]| {
        b.get(at..at + w.len())
            .filter(|x| *x == w)
            .map(|_| at + w.len())
    };
    match *b.get(at)? {
        b'"' => scan_string(b, at).map(|(_, e)| e),
        b't' => word(b"true"),
        b'f' => word(b"false"),
        b'n' => word(b"null"),
        b'-' | b'0'..=b'9' => scan_number(b, at),
        open @ (b'[' | b'{') if depth < SCAN_DEPTH => {
            let close = if open == b'[' { b']' } else { b'}' };
            let mut i = at + 1;
            if b.get(i) == Some(&close) {
                return Some(i + 1);
            }
            loop {
                if open == b'{' {
                    let (_, e) = scan_string(b, i)?;
                    if b.get(e) != Some(&b':') {
                        return None;
                    }
                    i = e + 1;
                }
                i = scan_value(b, i, depth + 1)?;
                match *b.get(i)? {
                    b',' => i += 1,
                    c if c == close => return Some(i + 1),
                    _ => return None,
                }
            }
        }
        _ => None,
    }
}

// ------------------------------------------------------------------ a call as the shim lays it out
//
// Most lines of a log are `call` records, and the shim writes their members always in the
// same order: `ts`, `seq`, `pid`, `tid`, `event`, `fn`, `args`, `out`, `ret`, `forwarded`,
// `dur_ns`, and `"ledger":"untracked"` for an export the ledger could not hold (see
// `src/record/json.rs`). [`canonical_call`] checks exactly that layout, member name by
// member name as fixed text, and reads each value with [`scan`]'s own readers (which give up
// on whitespace, escapes, control characters, fractions); no member is looked up by name.
// A line off that layout in any way goes to [`scan`], then to serde: the same members come
// out whichever reads the line.

/// The member names before each value of a canonical `call`, as written.
const CALL_TS: &[u8] = b"{\"ts\":";
const CALL_SEQ: &[u8] = b",\"seq\":";
const CALL_PID: &[u8] = b",\"pid\":";
const CALL_TID: &[u8] = b",\"tid\":";
const CALL_EVENT_FN: &[u8] = b",\"event\":\"call\",\"fn\":";
const CALL_ARGS: &[u8] = b",\"args\":";
const CALL_OUT: &[u8] = b",\"out\":";
const CALL_RET: &[u8] = b",\"ret\":";
const CALL_FORWARDED: &[u8] = b",\"forwarded\":";
const CALL_DUR: &[u8] = b",\"dur_ns\":";
const CALL_UNTRACKED: &[u8] = b",\"ledger\":\"untracked\"}";

/// `lit` at `at` in `b`: where it ends.
#[inline]
fn expect(b: &[u8], at: usize, lit: &[u8]) -> Option<usize> {
    let end = at + lit.len();
    (b.get(at..end)? == lit).then_some(end)
}

/// What a canonical `call` line holds, each value's raw text as [`scan`] would give it
/// (strings without their quotes: they have no escape).
struct CanonicalCall<'a> {
    ts: &'a str,
    seq: &'a str,
    pid: &'a str,
    tid: &'a str,
    func: &'a str,
    args: Members<'a, 9>,
    out: Members<'a, 3>,
    ret: &'a str,
    forwarded: bool,
    dur_ns: &'a str,
    untracked: bool,
}

/// The line `t` as a call, when it is laid out exactly as the shim writes one (see above);
/// `None` for any other line.
fn canonical_call(t: &str) -> Option<CanonicalCall<'_>> {
    let b = t.as_bytes();
    // A string's text between its quotes, and where it ends; a number and where it ends.
    let string = |at: usize| scan_string(b, at).map(|(_, e)| (&t[at + 1..e - 1], e));
    let number = |at: usize| scan_number(b, at).map(|e| (&t[at..e], e));
    let (ts, i) = string(expect(b, 0, CALL_TS)?)?;
    let (seq, i) = number(expect(b, i, CALL_SEQ)?)?;
    let (pid, i) = number(expect(b, i, CALL_PID)?)?;
    let (tid, i) = number(expect(b, i, CALL_TID)?)?;
    let (func, i) = string(expect(b, i, CALL_EVENT_FN)?)?;
    let (args, i) = scan_at(t, expect(b, i, CALL_ARGS)?, ARGS)?;
    let (out, i) = scan_at(t, expect(b, i, CALL_OUT)?, OUT)?;
    let (ret, i) = number(expect(b, i, CALL_RET)?)?;
    let v = expect(b, i, CALL_FORWARDED)?;
    let (forwarded, i) = match expect(b, v, b"true") {
        Some(e) => (true, e),
        None => (false, expect(b, v, b"false")?),
    };
    let (dur_ns, i) = number(expect(b, i, CALL_DUR)?)?;
    let untracked = match &b[i..] {
        b"}" => false,
        rest if rest == CALL_UNTRACKED => true,
        _ => return None,
    };
    Some(CanonicalCall {
        ts,
        seq,
        pid,
        tid,
        func,
        args,
        out,
        ret,
        forwarded,
        dur_ns,
        untracked,
    })
}

/// The record of a canonical call line `t`, read as [`parse_line_as`] reads any line, but
/// with each member taken where it lies; `None` when a value would make the line malformed
/// (the general reading then says why, as before).
fn canonical_record(
    file: usize,
    t: &str,
    c: CanonicalCall<'_>,
    hashed: bool,
    lean: bool,
) -> Option<Line> {
    let pid = as_i64(c.pid)?;
    let seq = as_u64(c.seq)?;
    let ts = Ts::from(c.ts);
    let ts_us = ts_us(c.ts)?;
    let mut call = Call {
        func: known_name(c.func).map_or_else(|| Name::Owned(c.func.to_owned()), Name::Borrowed),
        ret: as_i64(c.ret),
        forwarded: c.forwarded,
        untracked: c.untracked,
        ..Call::default()
    };
    call_args(&mut call, &c.args, &c.out, lean);
    if !lean {
        call.dur_ns = as_u64(c.dur_ns);
    }
    Some(Line::Record(Rec {
        file,
        ts,
        ts_us,
        seq,
        pid,
        tid: as_i64(c.tid),
        event: Name::Borrowed(schema::CALL),
        hash: if hashed { line_hash(t) } else { 0 },
        body: Body::Call(Box::new(call)),
        proc_idx: 0,
    }))
}

static RECORD_NAMES: [&str; 25] = [
    schema::TS,
    schema::SEQ,
    schema::PID,
    schema::TID,
    "dur_ns",
    schema::EVENT,
    "version",
    "mode",
    "exe",
    "ledger",
    "host",
    "bare_tgid",
    "parent",
    "fn",
    "ret",
    "forwarded",
    "args",
    "out",
    "rule",
    "severity",
    "action",
    "message",
    "key_fp",
    "dropped",
    "violations",
];
// Statics, so that [`find`] knows them by their address.
const RECORD: &[&str; 25] = &RECORD_NAMES;
const ARGS: &[&str; 9] = &ARGS_NAMES;
static ARGS_NAMES: [&str; 9] = [
    "key_fp",
    "devPtr",
    "size",
    "flags",
    "num",
    "pid",
    "serverPids",
    "type",
    "attr",
];
const OUT: &[&str; 3] = &OUT_NAMES;
/// A static, as `ARGS_NAMES`: `call_args` checks the names by address, and only a static
/// has one address (a constant's array may be copied at each use).
static OUT_NAMES: [&str; 3] = ["devPtr", "key_fp", "pid"];
const SERVER: &[&str; 2] = &["sdid", "pid"];

/// The elements of a JSON array (none when `v` is not one).
fn elements(v: &str) -> Vec<&str> {
    if !v.starts_with('[') {
        return Vec::new();
    }
    serde_json::from_str::<Vec<&RawValue>>(v)
        .map(|e| e.into_iter().map(RawValue::get).collect())
        .unwrap_or_default()
}

fn pid_list(v: Option<&str>) -> Vec<i64> {
    let Some(v) = v else {
        return Vec::new();
    };
    // `[1,2]` as the shim writes it (a valid array already): split at the commas.
    if let Some(inner) = v.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        if inner.bytes().all(|b| b.is_ascii_digit() || b == b',') && !serde_only() {
            if inner.is_empty() {
                return Vec::new();
            }
            if let Some(l) = inner
                .split(',')
                .map(small_uint)
                .collect::<Option<Vec<u64>>>()
            {
                return l.into_iter().map(|n| n as i64).collect();
            }
        }
    }
    elements(v).into_iter().filter_map(as_i64).collect()
}

fn body(event: &str, obj: &Members<'_, 25>, lean: bool) -> Body {
    match event {
        schema::START => Body::Start(Box::new(StartInfo {
            version: obj.str("version"),
            mode: obj.str("mode"),
            exe: obj.str("exe"),
            ledger: obj.str("ledger"),
            host: obj.str("host"),
            bare_tgid: obj.i64("bare_tgid").filter(|t| *t > 0),
            parent: obj.i64("parent").filter(|p| *p > 0),
        })),
        schema::CALL => {
            let (args, out) = (obj.object("args", ARGS), obj.object("out", OUT));
            let mut call = Call {
                func: obj.name("fn").unwrap_or(Name::Borrowed("?")),
                ret: obj.i64("ret"),
                forwarded: obj
                    .get("forwarded")
                    .and_then(|v| match v {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    })
                    .unwrap_or(true),
                untracked: obj.str("ledger").as_deref() == Some("untracked"),
                ..Call::default()
            };
            call_args(&mut call, &args, &out, lean);
            if !lean {
                call.dur_ns = obj.u64("dur_ns");
            }
            Body::Call(Box::new(call))
        }
        schema::VIOLATION => Body::Violation(Box::new(LogViolation {
            rule: obj.str("rule").unwrap_or_else(|| "?".to_owned()),
            severity: obj.str("severity").unwrap_or_else(|| "?".to_owned()),
            action: obj.str("action"),
            func: obj.str("fn").unwrap_or_else(|| "?".to_owned()),
            message: obj.str("message").unwrap_or_default(),
            key_fp: obj.str("key_fp"),
        })),
        schema::SUMMARY => Body::Summary {
            dropped: obj.u64("dropped"),
            violations: obj
                .get("violations")
                .filter(|v| v.starts_with('{'))
                .and_then(|v| serde_json::from_str::<BTreeMap<String, &RawValue>>(v).ok())
                .map(|m| {
                    m.into_iter()
                        .filter_map(|(rule, n)| Some((rule, serde_json::from_str(n.get()).ok()?)))
                        .collect()
                })
                .unwrap_or_default(),
        },
        schema::ERROR => Body::Error {
            message: obj.str("message").unwrap_or_default(),
        },
        _ => Body::Other,
    }
}

/// Where each member of a call's `args` ([`ARGS`]) and `out` ([`OUT`]) is kept: the call's
/// members are taken by place, not looked up by name a dozen times a line (a test holds
/// these to the names).
const ARG_KEY_FP: usize = 0;
const ARG_DEV_PTR: usize = 1;
const ARG_SIZE: usize = 2;
const ARG_FLAGS: usize = 3;
const ARG_NUM: usize = 4;
const ARG_PID: usize = 5;
const ARG_SERVER_PIDS: usize = 6;
const ARG_TYPE: usize = 7;
const ARG_ATTR: usize = 8;
const OUT_DEV_PTR: usize = 0;
const OUT_KEY_FP: usize = 1;
const OUT_PID: usize = 2;

/// What a call's `args` and `out` say, into `call`: only what the census uses when `lean`.
fn call_args(call: &mut Call, args: &Members<'_, 9>, out: &Members<'_, 3>, lean: bool) {
    debug_assert!(std::ptr::eq(args.names, ARGS) && std::ptr::eq(out.names, OUT));
    let (a, o) = (&args.raw, &out.raw);
    call.key_fp = a[ARG_KEY_FP].and_then(|v| args.short_of(v));
    call.dev_ptr = addr(a[ARG_DEV_PTR]);
    call.out_key_fp = o[OUT_KEY_FP].and_then(|v| out.short_of(v));
    if lean {
        return;
    }
    call.size = a[ARG_SIZE].and_then(as_u64);
    call.flags = a[ARG_FLAGS].and_then(as_u64);
    call.num = a[ARG_NUM].and_then(as_u64);
    call.pids = PidArg::from(a[ARG_PID]);
    call.server_pids = a[ARG_SERVER_PIDS].filter(|v| v.starts_with('[')).map(|a| {
        elements(a)
            .into_iter()
            .map(|e| {
                let e = members(e, SERVER).unwrap_or(Members {
                    names: SERVER,
                    raw: [None; 2],
                    plain: false,
                });
                (e.u64("sdid").unwrap_or(0), pid_list(e.get("pid")))
            })
            .collect()
    });
    call.attr_type = a[ARG_TYPE].and_then(as_u64);
    call.attr = a[ARG_ATTR].and_then(as_u64);
    call.out_dev_ptr = addr(o[OUT_DEV_PTR]);
    call.out_pid = o[OUT_PID].and_then(as_i64);
}

/// The hash of a line (see [`Rec::hash`]).
fn line_hash(t: &str) -> u64 {
    let mut h = DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

/// What one line turned out to be.
#[derive(Debug)]
pub enum Line {
    Blank,
    /// A record of the shim's text format (`ACL_IPC_GUARD_FORMAT=text`): it begins with
    /// [`TEXT_PREFIX`]. Any other line that is not a record is `Malformed`.
    Text,
    /// Not boxed: every reader moves it on at once (a box was an allocation a line).
    #[allow(clippy::large_enum_variant)]
    Record(Rec),
    Malformed(String),
}

/// How every line of the shim's text format begins (`src/record/text.rs`).
pub const TEXT_PREFIX: &str = "[acl-ipc-guard] ";

pub fn parse_line(file: usize, text: &str) -> Line {
    parse_line_hashed(file, text, true)
}

/// [`parse_line`], with the line's `hash` left 0 unless `hashed`: the streaming report
/// never needs it (it sends any log where two records could tie before the hash, a `seq`
/// seen twice in a process, to the in-memory report), and hashing each line cost it a
/// tenth of its reading.
pub fn parse_line_hashed(file: usize, text: &str, hashed: bool) -> Line {
    parse_line_as(file, text, hashed, false)
}

/// The line as the streaming report's first reading needs it: a call's arguments it never
/// looks at (the pid lists, sizes, flags, attributes, out-pointers, `dur_ns`) are left
/// unread, `None`/absent; all else is as [`parse_line_hashed`] reads it, unhashed.
pub fn parse_line_census(file: usize, text: &str) -> Line {
    parse_line_as(file, text, false, true)
}

fn parse_line_as(file: usize, text: &str, hashed: bool, lean: bool) -> Line {
    let t = text.trim();
    if t.is_empty() {
        return Line::Blank;
    }
    if !t.starts_with('{') {
        // Only the text format's own lines are counted as such: anything else (a stray
        // line of a program's output, garbage) is listed with its file and line.
        if t.starts_with(TEXT_PREFIX) {
            return Line::Text;
        }
        return Line::Malformed(format!(
            "not a JSON record (does not begin with `{{`): {:?}",
            short(t)
        ));
    }
    // Most lines: a call as the shim lays it out, read where its members lie.
    if let Some(line) = canonical_call(t)
        .filter(|_| !serde_only())
        .and_then(|c| canonical_record(file, t, c, hashed, lean))
    {
        return line;
    }
    let obj = match members(t, RECORD) {
        Ok(m) => m,
        Err(e) => return Line::Malformed(format!("invalid JSON: {e}")),
    };
    let Some(event) = obj.name(schema::EVENT) else {
        return Line::Malformed("missing or non-string `event`".into());
    };
    let Some(pid) = obj.i64(schema::PID) else {
        return Line::Malformed("missing or non-integer `pid`".into());
    };
    let Some(seq) = obj.u64(schema::SEQ) else {
        return Line::Malformed("missing or non-integer `seq`".into());
    };
    let Some(ts) = obj.ts() else {
        return Line::Malformed("missing or non-string `ts`".into());
    };
    let Some(ts_us) = ts_us(&ts) else {
        return Line::Malformed(format!("`ts` is not an RFC 3339 time: {:?}", short(&ts)));
    };
    let body = body(&event, &obj, lean);
    let hash = if hashed { line_hash(t) } else { 0 };
    Line::Record(Rec {
        file,
        ts,
        ts_us,
        seq,
        pid,
        tid: obj.i64(schema::TID),
        event,
        hash,
        body,
        proc_idx: 0,
    })
}

/// [`parse_ts`] of `ts`; the shim's own (`2026-12-01T23:08:11.270283Z`) from the start of
/// its minute, which is kept from the last such `ts` read on this thread (a log's lines
/// share their minute; reading the date and the time of each cost a tenth of the census).
fn ts_us(ts: &str) -> Option<i64> {
    thread_local! {
        static MINUTE: std::cell::Cell<([u8; 17], Option<i64>)> =
            const { std::cell::Cell::new(([0; 17], None)) };
    }
    let b = ts.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0i64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    if b.len() != 27 || b[19] != b'.' || b[26] != b'Z' || serde_only() {
        return parse_ts(ts);
    }
    let (Some(sec), Some(micros)) = (digits(17..19), digits(20..26)) else {
        return parse_ts(ts);
    };
    if sec > 59 {
        return parse_ts(ts);
    }
    let mut minute = [0u8; 17];
    minute.copy_from_slice(&b[..17]);
    let base = match MINUTE.get() {
        (m, Some(base)) if m == minute => base,
        _ => {
            let mut whole = [0u8; 27];
            whole[..17].copy_from_slice(&minute);
            whole[17..].copy_from_slice(b"00.000000Z");
            let Some(base) = std::str::from_utf8(&whole).ok().and_then(parse_ts) else {
                return parse_ts(ts);
            };
            MINUTE.set((minute, Some(base)));
            base
        }
    };
    Some(base + sec * 1_000_000 + micros)
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A pointer argument: `"0x…"` as the shim writes it (a plain number is accepted too).
fn addr(v: Option<&str>) -> Option<u64> {
    let v = v?;
    // Written plainly (as the shim does): read where it lies.
    if v.len() >= 2 && v.starts_with('"') && !v.as_bytes().contains(&b'\\') && !serde_only() {
        let s = &v[1..v.len() - 1];
        let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
        return u64::from_str_radix(h, 16).ok();
    }
    if let Some(s) = as_str(v) {
        let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
        return u64::from_str_radix(h, 16).ok();
    }
    as_u64(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `ts` or fingerprint kept in place reads back as the text it was made from, ASCII or
    /// not, at every length up to the limit and past it (on the heap), and compares and
    /// hashes as that text (a map by `Ts` is looked up by `&str`).
    #[test]
    fn in_place_strings_read_back_as_made() {
        use std::hash::BuildHasher;
        let h = std::collections::hash_map::RandomState::new();
        let mut texts = vec![String::new(), "é".into(), "fp:\u{6f22}\u{5b57}-ü".into()];
        for n in [TS_INLINE - 2, TS_INLINE - 1, TS_INLINE, TS_INLINE + 1] {
            texts.push("2".repeat(n));
            // A multi-byte character across the limit.
            texts.push(format!("{}\u{20ac}", "a".repeat(n.saturating_sub(2))));
        }
        for t in &texts {
            let ts = Ts::from(t.as_str());
            assert_eq!(ts.as_str(), t);
            assert_eq!(&*ts, t.as_str());
            assert!(ts == Ts::from(t.clone()));
            assert_eq!(h.hash_one(&ts), h.hash_one(t.as_str()));
            let inline = matches!(ts.0, TsRepr::Inline { .. });
            assert_eq!(inline, t.len() <= TS_INLINE, "{t:?}");
        }
        assert!(Ts::from("é") != Ts::from("e"));
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_ts("1970-01-01T00:00:00.000000Z"), Some(0));
        assert_eq!(
            parse_ts("2026-11-23T21:07:05.123456Z"),
            Some(1_795_468_025_123_456)
        );
        assert_eq!(
            parse_ts("2000-02-29T00:00:00.000001Z"),
            Some(951_782_400_000_001)
        );
        assert_eq!(
            parse_ts("2026-11-23T21:07:05Z"),
            Some(1_795_468_025_000_000)
        );
        assert_eq!(
            parse_ts("2026-11-23T21:07:05.5Z"),
            Some(1_795_468_025_500_000)
        );
        assert_eq!(
            parse_ts("2026-11-23T22:07:05.123456+01:00"),
            Some(1_795_468_025_123_456)
        );
        assert_eq!(parse_ts("1969-12-31T23:59:59.999999Z"), Some(-1));
        for bad in [
            "",
            "2026-11-23",
            "2026-13-23T21:07:05Z",
            "2026-11-23T21:07:05.Z",
            "2026-11-23T21:07:05",
            "x026-11-23T21:07:05Z",
            "2026-11-23T21:07:05.1Zjunk",
            "2026-11-23T21:07:0é.1Z",
        ] {
            assert_eq!(parse_ts(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lines() {
        assert!(matches!(parse_line(0, "   "), Line::Blank));
        assert!(matches!(
            parse_line(0, "[acl-ipc-guard] 2026 pid=1"),
            Line::Text
        ));
        // Only the text format's prefix makes a text line: other lines that are not
        // records are malformed, with a reason that says so.
        for other in [
            "[1,2]",
            "some noise",
            "[acl-ipc-guard]",
            "[acl-ipc-guard]2026 pid=1",
            "acl-ipc-guard] 2026",
        ] {
            match parse_line(0, other) {
                Line::Malformed(r) => assert!(r.starts_with("not a JSON record"), "{other}: {r}"),
                l => panic!("{other}: {l:?}"),
            }
        }
        assert!(matches!(
            parse_line(0, "[acl-ipc-guard] 2026 pid=1\r"),
            Line::Text
        ));
        let m = |s: &str| match parse_line(0, s) {
            Line::Malformed(r) => r,
            other => panic!("{s}: {other:?}"),
        };
        assert!(
            m("{\"ts\":\"2026-11-23T21:07:05.123456Z\",\"seq\":1,\"pi").starts_with("invalid JSON")
        );
        assert!(
            m("{\"seq\":1,\"pid\":2,\"ts\":\"2026-11-23T21:07:05.123456Z\"}").contains("event")
        );
        assert!(
            m("{\"event\":\"x\",\"seq\":1,\"ts\":\"2026-11-23T21:07:05.123456Z\"}").contains("pid")
        );
        assert!(
            m("{\"event\":\"x\",\"pid\":1,\"seq\":-1,\"ts\":\"2026-11-23T21:07:05.123456Z\"}")
                .contains("seq")
        );
        assert!(m("{\"event\":\"x\",\"pid\":1,\"seq\":1,\"ts\":\"yesterday\"}").contains("ts"));
        match parse_line(
            3,
            "{\"event\":\"x\",\"pid\":1,\"seq\":7,\"ts\":\"1970-01-01T00:00:01.000000Z\"}\r",
        ) {
            Line::Record(r) => {
                assert_eq!((r.file, r.pid, r.seq, r.ts_us), (3, 1, 7, 1_000_000));
                assert_eq!(r.event, "x");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Reads `line` both ways: with the scanner where it applies, and with serde alone.
    fn both_ways(line: &str) -> (String, String) {
        let fast = format!("{:?}", parse_line(0, line));
        SERDE_ONLY.with(|c| c.set(true));
        let slow = format!("{:?}", parse_line(0, line));
        SERDE_ONLY.with(|c| c.set(false));
        (fast, slow)
    }

    #[test]
    fn the_scanner_reads_what_serde_reads() {
        let ts = "\"ts\":\"2026-12-01T20:46:41.274307Z\"";
        // As the shim writes them: the scanner reads these.
        let canonical = [
            format!("{{{ts},\"seq\":1,\"pid\":7,\"tid\":7,\"event\":\"start\",\"version\":\"0.1.0\",\"mode\":\"audit\",\"exe\":\"/bin/x\",\"ledger\":\"off\",\"host\":\"vm\",\"bare_tgid\":7}}"),
            format!("{{{ts},\"seq\":2,\"pid\":7,\"tid\":8,\"event\":\"call\",\"fn\":\"aclrtIpcMemGetExportKey\",\"args\":{{\"devPtr\":\"0x200000000000\",\"size\":4096,\"key\":\"0x7ffd\",\"len\":65,\"flags\":0}},\"out\":{{\"key_fp\":\"fp:bfebf55bd8ad98d0\"}},\"ret\":0,\"forwarded\":true,\"dur_ns\":10330}}"),
            format!("{{{ts},\"seq\":3,\"pid\":7,\"event\":\"call\",\"fn\":\"aclrtIpcMemSetImportPid\",\"args\":{{\"key_fp\":\"fp:1\",\"pid\":[18383,0,12],\"num\":3}},\"out\":{{}},\"ret\":507899,\"forwarded\":false}}"),
            format!("{{{ts},\"seq\":4,\"pid\":7,\"event\":\"call\",\"fn\":\"aclrtIpcMemImportPidInterServer\",\"args\":{{\"key_fp\":\"fp:1\",\"serverPids\":[{{\"sdid\":1,\"pid\":[2,3]}},{{\"sdid\":0,\"pid\":[]}}],\"num\":2,\"pid\":null}},\"ret\":0}}"),
            format!("{{{ts},\"seq\":5,\"pid\":7,\"event\":\"violation\",\"rule\":\"close.exporter_first\",\"severity\":\"error\",\"action\":\"reported\",\"fn\":\"aclrtIpcMemClose\",\"message\":\"é ünicode ✓\",\"key_fp\":\"fp:2\"}}"),
            format!("{{{ts},\"seq\":6,\"pid\":7,\"event\":\"summary\",\"dropped\":0,\"violations\":{{\"a\":1,\"b\":2}}}}"),
            // Members in another order, unknown ones, a duplicate (the last wins), a
            // negative number, null, an empty array, a mistyped member.
            format!("{{\"event\":\"call\",\"zz\":[[1],{{\"q\":[]}}],\"pid\":7,\"seq\":7,\"fn\":\"a\",\"fn\":\"aclrtFree\",\"args\":{{\"devPtr\":\"0x10\"}},\"ret\":-1,\"tid\":null,{ts}}}"),
            format!("{{\"pid\":7,\"seq\":8,\"event\":\"call\",\"ret\":\"0\",\"forwarded\":1,\"args\":[],{ts}}}"),
            format!("{{\"pid\":123456789012345678,\"seq\":9,\"event\":\"x\",{ts}}}"),
            // A function and an event the report does not know (copied, not borrowed),
            // and a `ts` too long to be kept in place.
            format!("{{{ts},\"seq\":10,\"pid\":7,\"event\":\"call\",\"fn\":\"aclrtSomethingNew\"}}"),
            r#"{"ts":"2026-12-01T21:46:41.274307123+01:00","seq":11,"pid":7,"event":"call","fn":"aclrtFree"}"#.to_string(),
            // Numbers the scanner passes on as they are, for their readers to judge.
            format!("{{{ts},\"seq\":-0,\"pid\":-0,\"event\":\"call\"}}"),
            format!("{{{ts},\"seq\":18446744073709551615,\"pid\":9223372036854775808,\"event\":\"call\"}}"),
            "{}".to_owned(),
        ];
        for l in &canonical {
            assert!(scan(l, RECORD).is_some(), "{l}");
            let (fast, slow) = both_ways(l);
            assert_eq!(fast, slow, "{l}");
        }
        // Lines that defeat the scanner: serde reads them, the same as before.
        let defeating = [
            format!("{{ {ts}, \"seq\":1,\"pid\":7,\"event\":\"call\"}}"),
            format!("{{{ts},\"seq\" : 1,\"pid\":7,\"event\":\"call\"}}"),
            format!("{{{ts},\"seq\":1,\"pid\":7,\"event\":\"call\",\"fn\":\"acl\\u0072tFree\",\"args\":{{\"devPtr\":\"0x10\"}}}}"),
            format!("{{{ts},\"seq\":1,\"pid\":7,\"ev\\u0065nt\":\"call\"}}"),
            // Escaped values of the names and the time kept without a copy: serde's.
            format!("{{{ts},\"seq\":1,\"pid\":7,\"event\":\"c\\u0061ll\",\"fn\":\"aclrtFree\"}}"),
            r#"{"ts":"2026-12-01T20:46:41.27430\u0037Z","seq":1,"pid":7,"event":"call"}"#.to_string(),
            format!("{{{ts},\"seq\":1.0,\"pid\":7,\"event\":\"call\"}}"),
            format!("{{{ts},\"seq\":1e0,\"pid\":7,\"event\":\"call\"}}"),
            format!("{{{ts},\"seq\":01,\"pid\":7,\"event\":\"call\"}}"),
            format!("{{{ts},\"seq\":1,\"pid\":7,\"event\":\"call\"}}x"),
            format!("{{{ts},\"seq\":1,\"pid\":7,\"event\":\"call\",}}"),
            format!("{{{ts},\"seq\":1,\"pid\":7,\"event\":\"ca\tll\"}}"),
            format!("{{{ts},\"seq\":1,\"pid\":7,\"event\":\"call\",\"deep\":[[[[[[[[[[1]]]]]]]]]]}}"),
            format!("{{{ts},\"seq\":1,\"pid\":7,\"event\":\"call\",\"t\":tru}}"),
            format!("{{{ts},\"seq\":1,\"pid\":7,\"event\":\"call\""),
            format!("{{{ts},\"seq\":1,\"pid\":7,\"event\":\"call\",\"args\":{{\"pid\":[1, 2]}}}}"),
        ];
        for l in &defeating {
            assert!(scan(l, RECORD).is_none(), "{l}");
            let (fast, slow) = both_ways(l);
            assert_eq!(fast, slow, "{l}");
        }
        // Numbers the fast readers leave to serde.
        assert_eq!(as_i64("-5"), Some(-5));
        assert_eq!(as_u64("-5"), None);
        assert_eq!(as_i64("9223372036854775807"), Some(i64::MAX));
        assert_eq!(as_i64("9223372036854775808"), None);
        assert_eq!(as_u64("18446744073709551615"), Some(u64::MAX));
        assert_eq!(as_u64("1.5"), None);
        assert_eq!(pid_list(Some("[1,2,-3]")), vec![1, 2, -3]);
        assert_eq!(pid_list(Some("[1,\"a\",2]")), vec![1, 2]);
        assert_eq!(pid_list(Some("[]")), Vec::<i64>::new());
    }

    /// The scanner's strings end where a byte at a time ends them, whatever lies where in
    /// the eight-byte words it reads: a quote, an escape, a control character, DEL and
    /// non-ASCII bytes at every offset, in strings near the end of the line (the tail read
    /// a byte at a time) and far from it; and the lines read as serde reads them.
    #[test]
    fn strings_end_where_a_byte_at_a_time_ends_them() {
        let slow = |b: &[u8], at: usize| -> Option<(usize, usize)> {
            if b.get(at) != Some(&b'"') {
                return None;
            }
            let n = b[at + 1..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
            (b[at + 1 + n] == b'"').then_some((at, at + 1 + n + 1))
        };
        let specials = [
            "\\n", "\\\"", "\\u0041", "\t", "\u{1}", "\u{1f}", "\u{7f}", "é", "✓", " ", "~", "!",
            "#", "[", "]",
        ];
        for k in 0..20 {
            for sp in specials {
                let value = format!("{}{sp}{}", "a".repeat(k), "b".repeat(k % 9));
                for tail in ["", "}", ",\"host\":\"vm\",\"bare_tgid\":7}"] {
                    let text = format!("\"{value}\"{tail}");
                    assert_eq!(
                        scan_string(text.as_bytes(), 0),
                        slow(text.as_bytes(), 0),
                        "{text:?}"
                    );
                    let cut = &text.as_bytes()[..text.len().min(k + 3)];
                    assert_eq!(scan_string(cut, 0), slow(cut, 0), "{cut:?}");
                    let line = format!("{{\"ts\":\"2026-12-01T20:46:41.274307Z\",\"seq\":1,\"pid\":7,\"event\":\"start\",\"exe\":\"{value}\"{}", if tail.is_empty() { "}" } else { tail });
                    let (fast, slow) = both_ways(&line);
                    assert_eq!(fast, slow, "{line}");
                }
            }
        }
    }

    #[test]
    fn a_ts_reads_back_as_given_in_place_or_not() {
        for t in [
            "",
            "2026-12-01T23:08:11.270283Z",
            "2026-12-01T23:08:11.270283+01:00",
            "2026-12-01T23:08:11.270283123+01:00",
            "é ✓ 2026-12-01T23:08:11.270283Z",
        ] {
            let ts = Ts::from(t);
            assert_eq!(ts.as_str(), t);
            assert_eq!(&*ts.clone(), t);
            assert_eq!(format!("{ts}|{ts:>3}|{ts:?}"), format!("{t}|{t:>3}|{t:?}"));
            assert_eq!(ts, Ts::from(t.to_owned()));
            assert_ne!(ts, Ts::from(format!("{t}x")));
        }
        // A record's `ts` with an escape is read by serde, and the same.
        let line =
            "{\"ts\":\"2026-12-01T23:08:11.27028\\u0033Z\",\"seq\":1,\"pid\":7,\"event\":\"call\"}";
        match parse_line(0, line) {
            Line::Record(r) => assert_eq!(r.ts.as_str(), "2026-12-01T23:08:11.270283Z"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_census_reads_what_it_uses_as_the_full_reading_does() {
        let ts = "\"ts\":\"2026-12-01T20:46:41.274307Z\"";
        let lines = [
            format!("{{{ts},\"seq\":2,\"pid\":7,\"tid\":8,\"event\":\"call\",\"fn\":\"aclrtIpcMemGetExportKey\",\"args\":{{\"devPtr\":\"0x200000000000\",\"size\":4096,\"key\":\"0x7ffd\",\"len\":65,\"flags\":0}},\"out\":{{\"key_fp\":\"fp:bfebf55bd8ad98d0\"}},\"ret\":0,\"forwarded\":true,\"ledger\":\"untracked\",\"dur_ns\":10330}}"),
            format!("{{{ts},\"seq\":3,\"pid\":7,\"event\":\"call\",\"fn\":\"aclrtIpcMemSetImportPid\",\"args\":{{\"key_fp\":\"fp:1\",\"pid\":[18383,0,12],\"num\":3}},\"out\":{{}},\"ret\":507899,\"forwarded\":false}}"),
            format!("{{{ts},\"seq\":4,\"pid\":7,\"event\":\"call\",\"fn\":\"aclrtFree\",\"args\":{{\"devPtr\":\"0x10\"}},\"ret\":0}}"),
            // Escaped, reordered, spaced: serde reads them, the census the same.
            format!("{{ \"args\" : {{\"key_fp\":\"fp:\\u0031\"}}, {ts},\"seq\":5,\"pid\":7,\"event\":\"call\",\"fn\":\"aclrtIpcMemClose\",\"zz\":[1]}}"),
            format!("{{{ts},\"seq\":6,\"pid\":7,\"event\":\"violation\",\"rule\":\"r\",\"severity\":\"error\",\"fn\":\"aclrtFree\",\"message\":\"m\",\"key_fp\":\"fp:2\"}}"),
            format!("{{{ts},\"seq\":1,\"pid\":7,\"event\":\"start\",\"host\":\"vm\",\"ledger\":\"off\"}}"),
        ];
        for l in &lines {
            let (Line::Record(full), Line::Record(lean)) =
                (parse_line_hashed(0, l, false), parse_line_census(0, l))
            else {
                panic!("{l}");
            };
            assert_eq!(
                (full.ts_us, full.seq, full.pid, full.tid, &full.event),
                (lean.ts_us, lean.seq, lean.pid, lean.tid, &lean.event),
                "{l}"
            );
            match (&full.body, &lean.body) {
                (Body::Call(f), Body::Call(c)) => {
                    assert_eq!(
                        (&f.func, f.ret, f.forwarded, &f.key_fp, f.dev_ptr),
                        (&c.func, c.ret, c.forwarded, &c.key_fp, c.dev_ptr),
                        "{l}"
                    );
                    assert_eq!((&f.out_key_fp, f.untracked), (&c.out_key_fp, c.untracked));
                    assert!(f.key_fp.is_some() || f.out_key_fp.is_some() || f.dev_ptr.is_some());
                }
                (f, c) => assert_eq!(format!("{f:?}"), format!("{c:?}"), "{l}"),
            }
        }
    }

    #[test]
    fn the_name_tables_agree_with_their_lists() {
        for (i, n) in RECORD.iter().enumerate() {
            assert_eq!(find(RECORD, n), Some(i), "{n}");
            assert_eq!(record_slot(n), Some(i), "{n}");
        }
        for (i, n) in ARGS.iter().enumerate() {
            assert_eq!(find(ARGS, n), Some(i), "{n}");
            assert_eq!(args_slot(n), Some(i), "{n}");
        }
        // The places `call_args` takes a call's members from.
        let places = [
            (ARG_KEY_FP, "key_fp"),
            (ARG_DEV_PTR, "devPtr"),
            (ARG_SIZE, "size"),
            (ARG_FLAGS, "flags"),
            (ARG_NUM, "num"),
            (ARG_PID, "pid"),
            (ARG_SERVER_PIDS, "serverPids"),
            (ARG_TYPE, "type"),
            (ARG_ATTR, "attr"),
        ];
        for (i, n) in places {
            assert_eq!(ARGS[i], n);
        }
        for (i, n) in [
            (OUT_DEV_PTR, "devPtr"),
            (OUT_KEY_FP, "key_fp"),
            (OUT_PID, "pid"),
        ] {
            assert_eq!(OUT[i], n);
        }
        for (i, n) in OUT.iter().enumerate() {
            assert_eq!(find(OUT, n), Some(i), "{n}");
        }
        for other in ["", "t", "tsx", "Ts", "key", "event ", "devptr", "args\0"] {
            assert_eq!(find(RECORD, other), None, "{other}");
            assert_eq!(find(ARGS, other), None, "{other}");
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(addr(Some("\"0x1000\"")), Some(0x1000));
        assert_eq!(addr(Some("4096")), Some(4096));
        assert_eq!(addr(Some("\"1000\"")), None);
        assert_eq!(addr(Some("null")), None);
        assert_eq!(addr(Some("-1")), None);
        assert_eq!(addr(None), None);
    }
}
