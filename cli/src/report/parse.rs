//! One log line to one record: JSON lines only; text lines and noise are counted, malformed
//! JSON is reported with a reason. Never panics, whatever the bytes.

pub use acl_ipc_guard::record::parse_ts;
use acl_ipc_guard::record::schema;
use serde_json::{Map, Value};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

/// A record as read back: the fields every record has, parsed, and what its event carries
/// that the report uses (logs can be large: nothing else is kept).
#[derive(Clone, Debug)]
pub struct Rec {
    /// Index of the file it came from.
    pub file: usize,
    pub ts: String,
    /// `ts` as microseconds since the Unix epoch.
    pub ts_us: i64,
    pub seq: u64,
    pub pid: i64,
    /// The writing thread (`report --trace` draws a track per thread); `None` if absent.
    pub tid: Option<i64>,
    pub event: String,
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
    pub func: String,
    pub ret: Option<i64>,
    /// A missing `forwarded` counts as forwarded.
    pub forwarded: bool,
    /// `args.key_fp`.
    pub key_fp: Option<String>,
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
    pub out_key_fp: Option<String>,
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
    fn from(v: Option<&Value>) -> Self {
        match v {
            None => PidArg::Absent,
            Some(Value::Null) => PidArg::Null,
            Some(Value::Array(_)) => PidArg::List(pid_list(v)),
            Some(other) => PidArg::Unread(other.to_string()),
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

fn pid_list(v: Option<&Value>) -> Vec<i64> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

fn body(event: &str, obj: &Map<String, Value>) -> Body {
    let s = |m: &Map<String, Value>, n: &str| m.get(n).and_then(Value::as_str).map(str::to_owned);
    let u = |m: &Map<String, Value>, n: &str| m.get(n).and_then(Value::as_u64);
    match event {
        schema::START => {
            let i = |n: &str| obj.get(n).and_then(Value::as_i64);
            Body::Start(Box::new(StartInfo {
                version: s(obj, "version"),
                mode: s(obj, "mode"),
                exe: s(obj, "exe"),
                ledger: s(obj, "ledger"),
                host: s(obj, "host"),
                bare_tgid: i("bare_tgid").filter(|t| *t > 0),
                parent: i("parent").filter(|p| *p > 0),
            }))
        }
        schema::CALL => {
            let empty = Map::new();
            let sub = |n: &str| obj.get(n).and_then(Value::as_object).unwrap_or(&empty);
            let (args, out) = (sub("args"), sub("out"));
            Body::Call(Box::new(Call {
                func: s(obj, "fn").unwrap_or_else(|| "?".to_owned()),
                ret: obj.get("ret").and_then(Value::as_i64),
                forwarded: obj
                    .get("forwarded")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                key_fp: s(args, "key_fp"),
                dev_ptr: addr(args.get("devPtr")),
                size: u(args, "size"),
                flags: u(args, "flags"),
                num: u(args, "num"),
                pids: PidArg::from(args.get("pid")),
                server_pids: args.get("serverPids").and_then(Value::as_array).map(|a| {
                    a.iter()
                        .map(|e| {
                            let sdid = e.get("sdid").and_then(Value::as_u64).unwrap_or(0);
                            (sdid, pid_list(e.get("pid")))
                        })
                        .collect()
                }),
                attr_type: u(args, "type"),
                attr: u(args, "attr"),
                out_dev_ptr: addr(out.get("devPtr")),
                out_key_fp: s(out, "key_fp"),
                out_pid: out.get("pid").and_then(Value::as_i64),
                untracked: obj.get("ledger").and_then(Value::as_str) == Some("untracked"),
                dur_ns: u(obj, "dur_ns"),
            }))
        }
        schema::VIOLATION => Body::Violation(Box::new(LogViolation {
            rule: s(obj, "rule").unwrap_or_else(|| "?".to_owned()),
            severity: s(obj, "severity").unwrap_or_else(|| "?".to_owned()),
            action: s(obj, "action"),
            func: s(obj, "fn").unwrap_or_else(|| "?".to_owned()),
            message: s(obj, "message").unwrap_or_default(),
            key_fp: s(obj, "key_fp"),
        })),
        schema::SUMMARY => Body::Summary {
            dropped: u(obj, "dropped"),
            violations: obj
                .get("violations")
                .and_then(|v| v.as_object())
                .map(|m| {
                    m.iter()
                        .filter_map(|(rule, n)| Some((rule.clone(), n.as_u64()?)))
                        .collect()
                })
                .unwrap_or_default(),
        },
        schema::ERROR => Body::Error {
            message: s(obj, "message").unwrap_or_default(),
        },
        _ => Body::Other,
    }
}

/// What one line turned out to be.
#[derive(Debug)]
pub enum Line {
    Blank,
    /// A text-format record or other noise.
    Text,
    Record(Box<Rec>),
    Malformed(String),
}

pub fn parse_line(file: usize, text: &str) -> Line {
    let t = text.trim();
    if t.is_empty() {
        return Line::Blank;
    }
    if !t.starts_with('{') {
        return Line::Text;
    }
    let obj = match serde_json::from_str::<Value>(t) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Line::Malformed("not a JSON object".into()),
        Err(e) => return Line::Malformed(format!("invalid JSON: {e}")),
    };
    let event = match obj.get(schema::EVENT).and_then(Value::as_str) {
        Some(e) => e.to_owned(),
        None => return Line::Malformed("missing or non-string `event`".into()),
    };
    let Some(pid) = obj.get(schema::PID).and_then(Value::as_i64) else {
        return Line::Malformed("missing or non-integer `pid`".into());
    };
    let Some(seq) = obj.get(schema::SEQ).and_then(Value::as_u64) else {
        return Line::Malformed("missing or non-integer `seq`".into());
    };
    let Some(ts) = obj.get(schema::TS).and_then(Value::as_str) else {
        return Line::Malformed("missing or non-string `ts`".into());
    };
    let Some(ts_us) = parse_ts(ts) else {
        return Line::Malformed(format!("`ts` is not an RFC 3339 time: {:?}", short(ts)));
    };
    let ts = ts.to_owned();
    let body = body(&event, &obj);
    let mut h = DefaultHasher::new();
    t.hash(&mut h);
    Line::Record(Box::new(Rec {
        file,
        ts,
        ts_us,
        seq,
        pid,
        tid: obj.get(schema::TID).and_then(Value::as_i64),
        event,
        hash: h.finish(),
        body,
        proc_idx: 0,
    }))
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A pointer argument: `"0x…"` as the shim writes it (a plain number is accepted too).
pub fn addr(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::String(s) => {
            let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
            u64::from_str_radix(h, 16).ok()
        }
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches!(parse_line(0, "[1,2]"), Line::Text));
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

    #[test]
    fn addresses() {
        assert_eq!(addr(Some(&Value::from("0x1000"))), Some(0x1000));
        assert_eq!(addr(Some(&Value::from(4096))), Some(4096));
        assert_eq!(addr(Some(&Value::from("1000"))), None);
        assert_eq!(addr(Some(&Value::Null)), None);
        assert_eq!(addr(None), None);
    }
}
