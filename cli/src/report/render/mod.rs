//! A report for people (text, or an HTML page that draws the job) or for scripts (one JSON
//! object). All deterministic; what they share is here.

mod html;
mod json;
mod text;

pub use html::render_html;
#[cfg(test)]
pub use json::render_json;
pub use json::{key_member, write_json};
pub use text::{key_text, render_text, render_text_parts};

use super::model::{Detail, Event, Process};
use super::parse::PidArg;

// `--trace`: Chrome trace-event JSON.
mod trace;
pub use trace::TraceFile;

/// `n` in decimal, as `{n}` writes it.
pub(super) fn push_u64(s: &mut String, n: u64) {
    let mut buf = [0u8; 20];
    s.extend(decimal(n, &mut buf).iter().map(|&d| char::from(d)));
}

/// The decimal digits of `n`, written at the end of `buf`.
pub(super) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

fn push_i64(s: &mut String, n: i64) {
    if n < 0 {
        s.push('-');
    }
    push_u64(s, n.unsigned_abs());
}

/// A number, or `?` when missing.
fn push_opt_num(s: &mut String, v: Option<u64>) {
    match v {
        Some(n) => push_u64(s, n),
        None => s.push('?'),
    }
}

/// `n`'s lowercase hex digits, no leading zeros, at the end of `buf`; where they start.
pub(super) fn hex_digits(buf: &mut [u8; 16], n: u64) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut at = buf.len();
    let mut n = n;
    loop {
        at -= 1;
        buf[at] = HEX[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    at
}

/// `n` as `{n:#x}` writes it: `0x` and lowercase digits, no leading zeros.
pub(super) fn push_hex(s: &mut String, n: u64) {
    let mut buf = [0u8; 16];
    let at = hex_digits(&mut buf, n);
    s.push_str("0x");
    s.extend(buf[at..].iter().map(|&d| char::from(d)));
}

/// A pid list as `model::pids_text` words it: `[1, 2]`.
fn push_pids(s: &mut String, p: &[i64]) {
    s.push('[');
    for (i, n) in p.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        push_i64(s, *n);
    }
    s.push(']');
}

pub(super) fn plural<N>(n: N, one: &str, many: &str) -> String
where
    N: std::fmt::Display + PartialEq + From<u8>,
{
    format!("{n} {}", if n == N::from(1) { one } else { many })
}

pub(super) fn tag(procs: &[Process], i: usize) -> &str {
    procs.get(i).map_or("?", |p| p.tag.as_str())
}

/// Log text as one safe line: control characters (newlines, terminal escapes) from a
/// hostile or broken log are shown escaped, never acted on.
pub(super) fn clean(s: String) -> String {
    if !s.chars().any(char::is_control) {
        return s;
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// One line for people about an event (text and JSON both show it).
pub fn describe(e: &Event) -> String {
    let mut s = String::with_capacity(64);
    describe_into(e, &mut s);
    s
}

/// [`describe`] appended to `s`. Built from pieces, not with `format!`: every event of a
/// report is described once (text and `--json`), and the formatting machinery with its
/// strings per number was a sixteenth of the report's instructions.
fn describe_into(e: &Event, s: &mut String) {
    match &e.detail {
        Detail::Export {
            dev_ptr,
            size,
            flags,
        } => {
            s.push_str("devPtr=");
            match dev_ptr {
                Some(a) => push_hex(s, *a),
                None => s.push('?'),
            }
            s.push_str(" size=");
            push_opt_num(s, *size);
            s.push_str(" flags=");
            push_opt_num(s, *flags);
            s.push_str(match flags {
                Some(0) => " (whitelist mode)",
                Some(1) => " (pid validation disabled)",
                _ => "",
            });
        }
        Detail::Whitelist { pids, num } => match pids {
            PidArg::List(p) => {
                s.push_str("pids ");
                push_pids(s, p);
                s.push_str(" num ");
                push_opt_num(s, *num);
            }
            PidArg::Null | PidArg::Absent => s.push_str("pid NULL"),
            PidArg::Unread(p) => {
                s.push_str("pid ");
                s.push_str(p);
                s.push_str(" (not read) num ");
                push_opt_num(s, *num);
            }
        },
        Detail::InterServer { server_pids, num } => match server_pids {
            Some(entries) => {
                s.push_str("serverPids {");
                for (i, (sdid, p)) in entries.iter().enumerate() {
                    if i > 0 {
                        s.push_str("; ");
                    }
                    s.push_str("sdid ");
                    push_u64(s, *sdid);
                    s.push_str(": ");
                    push_pids(s, p);
                }
                s.push_str("} num ");
                push_opt_num(s, *num);
            }
            None => s.push_str("serverPids NULL"),
        },
        Detail::SetAttr { attr_type, attr } => {
            s.push_str("type ");
            push_opt_num(s, *attr_type);
            s.push_str(" attr ");
            push_opt_num(s, *attr);
        }
        Detail::Import { address, flags } => {
            if let Some(a) = address {
                s.push_str("-> ");
                push_hex(s, *a);
                s.push_str(" (flags ");
                push_opt_num(s, *flags);
                s.push(')');
            } else {
                s.push_str("flags ");
                push_opt_num(s, *flags);
            }
        }
        Detail::Close { role } => {
            s.push_str("role ");
            s.push_str(role);
        }
        Detail::Free { dev_ptr, role } => {
            s.push_str("devPtr=");
            push_hex(s, *dev_ptr);
            s.push_str(match *role {
                "importer" => " (an imported address)",
                _ => " (exported memory)",
            });
        }
        Detail::Violation(v) => {
            s.push_str(&v.rule);
            s.push_str(" (");
            s.push_str(&v.severity);
            if let Some(a) = &v.action {
                s.push_str(", ");
                s.push_str(a);
            }
            s.push_str(", ");
            s.push_str(v.source.as_str());
            s.push_str("): ");
            s.push_str(&v.message);
        }
    }
}
