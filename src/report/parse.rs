//! One log line to one record: JSON lines only; text lines and noise are counted, malformed
//! JSON is reported with a reason. Never panics, whatever the bytes.

use serde_json::{Map, Value};

/// A record as read back: the fields every record has, parsed, plus the whole object.
#[derive(Clone, Debug)]
pub struct Rec {
    /// Index of the file it came from.
    pub file: usize,
    /// 1-based line number in that file.
    pub line: usize,
    pub ts: String,
    /// `ts` as microseconds since the Unix epoch.
    pub ts_us: i64,
    pub seq: u64,
    pub pid: i64,
    pub event: String,
    pub obj: Map<String, Value>,
    /// The line as read: the last tie-breaker of the merge, so file order never matters.
    pub raw: String,
    /// The process (index into `Report::processes`) it belongs to; set by the merge.
    pub proc_idx: usize,
}

impl Rec {
    pub fn str(&self, name: &str) -> Option<&str> {
        self.obj.get(name).and_then(Value::as_str)
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

pub fn parse_line(file: usize, line: usize, text: &str) -> Line {
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
    let event = match obj.get("event").and_then(Value::as_str) {
        Some(e) => e.to_owned(),
        None => return Line::Malformed("missing or non-string `event`".into()),
    };
    let Some(pid) = obj.get("pid").and_then(Value::as_i64) else {
        return Line::Malformed("missing or non-integer `pid`".into());
    };
    let Some(seq) = obj.get("seq").and_then(Value::as_u64) else {
        return Line::Malformed("missing or non-integer `seq`".into());
    };
    let Some(ts) = obj.get("ts").and_then(Value::as_str) else {
        return Line::Malformed("missing or non-string `ts`".into());
    };
    let Some(ts_us) = parse_ts(ts) else {
        return Line::Malformed(format!("`ts` is not an RFC 3339 time: {:?}", short(ts)));
    };
    Line::Record(Box::new(Rec {
        file,
        line,
        ts: ts.to_owned(),
        ts_us,
        seq,
        pid,
        event,
        raw: t.to_owned(),
        obj,
        proc_idx: 0,
    }))
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// RFC 3339 (`2026-11-23T21:07:05.123456Z`, any number of fraction digits, `Z` or an offset)
/// to microseconds since the Unix epoch.
pub fn parse_ts(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = b.get(from..to)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(digits.iter().fold(0i64, |a, d| a * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    let year = num(0, 4)?;
    let month = num(5, 7)?;
    let day = num(8, 10)?;
    let hour = num(11, 13)?;
    let min = num(14, 16)?;
    let sec = num(17, 19)?;
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == from {
            return None;
        }
        for k in 0..6 {
            let d = if from + k < i { i64::from(b[from + k] - b'0') } else { 0 };
            micros = micros * 10 + d;
        }
    }
    let offset_s = match &b[i..] {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == i + 6 && b[i + 3] == b':' => {
            let v = num(i + 1, i + 3)? * 3600 + num(i + 4, i + 6)? * 60;
            if *sign == b'+' {
                v
            } else {
                -v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_s;
    Some(secs * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
        assert_eq!(parse_ts("2026-11-23T21:07:05.123456Z"), Some(1_795_468_025_123_456));
        assert_eq!(parse_ts("2000-02-29T00:00:00.000001Z"), Some(951_782_400_000_001));
        assert_eq!(parse_ts("2026-11-23T21:07:05Z"), Some(1_795_468_025_000_000));
        assert_eq!(parse_ts("2026-11-23T21:07:05.5Z"), Some(1_795_468_025_500_000));
        assert_eq!(parse_ts("2026-11-23T22:07:05.123456+01:00"), Some(1_795_468_025_123_456));
        assert_eq!(parse_ts("1969-12-31T23:59:59.999999Z"), Some(-1));
        for bad in ["", "2026-11-23", "2026-13-23T21:07:05Z", "2026-11-23T21:07:05.Z", "2026-11-23T21:07:05", "x026-11-23T21:07:05Z", "2026-11-23T21:07:05.1Zjunk", "2026-11-23T21:07:0é.1Z"] {
            assert_eq!(parse_ts(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lines() {
        assert!(matches!(parse_line(0, 1, "   "), Line::Blank));
        assert!(matches!(parse_line(0, 1, "[acl-ipc-guard] 2026 pid=1"), Line::Text));
        assert!(matches!(parse_line(0, 1, "[1,2]"), Line::Text));
        let m = |s: &str| match parse_line(0, 1, s) {
            Line::Malformed(r) => r,
            other => panic!("{s}: {other:?}"),
        };
        assert!(m("{\"ts\":\"2026-11-23T21:07:05.123456Z\",\"seq\":1,\"pi").starts_with("invalid JSON"));
        assert!(m("{\"seq\":1,\"pid\":2,\"ts\":\"2026-11-23T21:07:05.123456Z\"}").contains("event"));
        assert!(m("{\"event\":\"x\",\"seq\":1,\"ts\":\"2026-11-23T21:07:05.123456Z\"}").contains("pid"));
        assert!(m("{\"event\":\"x\",\"pid\":1,\"seq\":-1,\"ts\":\"2026-11-23T21:07:05.123456Z\"}").contains("seq"));
        assert!(m("{\"event\":\"x\",\"pid\":1,\"seq\":1,\"ts\":\"yesterday\"}").contains("ts"));
        match parse_line(3, 9, "{\"event\":\"x\",\"pid\":1,\"seq\":7,\"ts\":\"1970-01-01T00:00:01.000000Z\"}\r") {
            Line::Record(r) => {
                assert_eq!((r.file, r.line, r.pid, r.seq, r.ts_us), (3, 9, 1, 7, 1_000_000));
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
