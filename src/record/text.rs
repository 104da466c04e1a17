//! The text encoding: one line per record, for people; the same facts as the JSON one
//! (a call's arguments and outputs in their compact JSON form).

use super::{frames, json, time, Body, KeyRef, Record};
use crate::call::Func;
use std::io::Write;

pub(super) fn record(rec: &mut Record, show_keys: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"[acl-ipc-guard] ");
    time::format_ts(rec.ts_us, out);
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
            json::call_args(args, show_keys, &mut a);
            let mut o = Vec::new();
            json::call_out(args, outcome, show_keys, &mut o);
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
                match k.key_fp() {
                    Some(fp) => s.push_str(&format!(" key_fp={fp}")),
                    None => s.push_str(" key_fp=null"),
                }
                if let (true, KeyRef::Key(key)) = (show_keys, k) {
                    s.push_str(&format!(" key={}", String::from_utf8_lossy(key.bytes())));
                }
            }
            if let Some(frames) = v.backtrace.as_mut().map(frames::lines) {
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
    // One line per record, whatever a message holds, and nothing a terminal would act on.
    one_visible_line(&body, out);
}

/// `text` as one line a terminal shows as it is: a line break becomes a space (as it always
/// has); every other control character (C0, DEL, C1: a carriage return that would write
/// over the line, an escape sequence from a garbage key buffer shown with `SHOW_KEYS`, a
/// CSI) is written as `\xNN`.
fn one_visible_line(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match c {
            '\n' => out.push(b' '),
            // Every control character is below U+00A0: two hex digits.
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::one_visible_line;

    fn visible(s: &str) -> String {
        let mut out = Vec::new();
        one_visible_line(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(visible("a\nb"), "a b");
        assert_eq!(visible("over\rwrite"), "over\\x0dwrite");
        assert_eq!(visible("\u{1b}[31mred\u{7f}"), "\\x1b[31mred\\x7f");
        assert_eq!(visible("tab\there"), "tab\\x09here");
        // C1 controls (U+009B is a CSI to some terminals) too; other characters stay.
        assert_eq!(visible("\u{9b}2J é ü \u{a0}"), "\\x9b2J é ü \u{a0}");
        assert_eq!(visible("\u{0}"), "\\x00");
    }
}
