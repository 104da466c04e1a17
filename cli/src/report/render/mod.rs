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

use super::model::{pids_text, Detail, Event, Process};
use super::parse::PidArg;

// `--trace`: Chrome trace-event JSON.
mod trace;
pub use trace::TraceFile;

fn opt_num(v: Option<u64>) -> String {
    v.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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
    match &e.detail {
        Detail::Export {
            dev_ptr,
            size,
            flags,
        } => {
            let mode = match flags {
                Some(0) => " (whitelist mode)",
                Some(1) => " (pid validation disabled)",
                _ => "",
            };
            let dev = dev_ptr.map_or_else(|| "?".to_owned(), |a| format!("{a:#x}"));
            format!(
                "devPtr={dev} size={} flags={}{mode}",
                opt_num(*size),
                opt_num(*flags)
            )
        }
        Detail::Whitelist { pids, num } => match pids {
            PidArg::List(p) => format!("pids {} num {}", pids_text(p), opt_num(*num)),
            PidArg::Null | PidArg::Absent => "pid NULL".to_owned(),
            PidArg::Unread(p) => format!("pid {p} (not read) num {}", opt_num(*num)),
        },
        Detail::InterServer { server_pids, num } => match server_pids {
            Some(entries) => {
                let parts: Vec<String> = entries
                    .iter()
                    .map(|(s, p)| format!("sdid {s}: {}", pids_text(p)))
                    .collect();
                format!("serverPids {{{}}} num {}", parts.join("; "), opt_num(*num))
            }
            None => "serverPids NULL".to_owned(),
        },
        Detail::SetAttr { attr_type, attr } => {
            format!("type {} attr {}", opt_num(*attr_type), opt_num(*attr))
        }
        Detail::Import { address, flags } => match address {
            Some(a) => format!("-> {a:#x} (flags {})", opt_num(*flags)),
            None => format!("flags {}", opt_num(*flags)),
        },
        Detail::Close { role } => format!("role {role}"),
        Detail::Free { dev_ptr, role } => match *role {
            "importer" => format!("devPtr={dev_ptr:#x} (an imported address)"),
            _ => format!("devPtr={dev_ptr:#x} (exported memory)"),
        },
        Detail::Violation(v) => {
            let action = v
                .action
                .as_deref()
                .map(|a| format!(", {a}"))
                .unwrap_or_default();
            format!(
                "{} ({}{action}, {}): {}",
                v.rule,
                v.severity,
                v.source.as_str(),
                v.message
            )
        }
    }
}
