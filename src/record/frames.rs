//! Backtraces as records show them: resolved at the sink, the shim's own frames left out.

/// Frames as `symbol (file:line)` strings, the shim's own frames left out.
pub(super) fn lines(bt: &mut backtrace::Backtrace) -> Vec<String> {
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
