//! The report as one JSON object for scripts (`--json`).

use super::super::model::{Detail, End, Event, Process, Report, Violation};
use super::describe;
use serde_json::{json, Map, Value};

fn opt<T: Into<Value>>(v: Option<T>) -> Value {
    v.map_or(Value::Null, Into::into)
}

fn host_of(procs: &[Process], i: usize) -> Value {
    opt(procs.get(i).and_then(|p| p.host.clone()))
}

fn violation_json(v: &Violation, procs: &[Process]) -> Value {
    json!({
        "rule": v.rule,
        "severity": v.severity,
        "pid": v.pid,
        "host": host_of(procs, v.process),
        "process": v.process,
        "fn": v.func,
        "key_fp": opt(v.key_fp.clone()),
        "source": v.source.as_str(),
        "ts": v.ts,
        "seq": v.seq,
        "action": opt(v.action.clone()),
        "message": v.message,
    })
}

fn event_json(e: &Event, procs: &[Process]) -> Value {
    let mut m = Map::new();
    m.insert("ts".into(), e.ts.clone().into());
    m.insert("pid".into(), e.pid.into());
    m.insert("host".into(), host_of(procs, e.process));
    m.insert("process".into(), e.process.into());
    m.insert("seq".into(), e.seq.into());
    m.insert("fn".into(), e.func.clone().into());
    m.insert("event".into(), e.kind().into());
    m.insert("ret".into(), opt(e.ret));
    m.insert("status".into(), opt(e.status));
    m.insert("desc".into(), describe(e).into());
    event_fields(e, &mut m);
    Value::Object(m)
}

fn process_json(i: usize, p: &Process) -> Value {
    let (end, how) = match &p.end {
        End::Exited(ts) => (Value::from(ts.clone()), "exited"),
        End::Replaced(ts) => (Value::from(ts.clone()), "replaced"),
        End::Unknown => (Value::Null, "unknown"),
    };
    json!({
        "id": i,
        "tag": p.tag,
        "pid": p.pid,
        "host": opt(p.host.clone()),
        "bare_tgid": opt(p.bare_tgid),
        "parent": opt(p.parent_pid),
        "parent_process": opt(p.parent),
        "ledger": opt(p.ledger.clone()),
        "start_ts": opt(p.start_ts.clone()),
        "end_ts": end,
        "end": how,
        "last_ts": p.last_ts,
        "first_seq": p.first_seq,
        "last_seq": p.last_seq,
        "records": p.records,
        "dropped": opt(p.dropped),
        "version": opt(p.version.clone()),
        "mode": opt(p.mode.clone()),
        "exe": opt(p.exe.clone()),
        "files": p.files,
    })
}

/// The whole report as one JSON object.
pub fn render_json(r: &Report) -> Value {
    let keys: Map<String, Value> = r
        .keys
        .iter()
        .map(|(fp, evs)| {
            let evs = evs.iter().map(|e| event_json(e, &r.processes));
            (fp.clone(), evs.collect())
        })
        .collect();
    json!({
        "files": r.files.iter().map(|f| json!({
            "path": f.path,
            "read": f.error.is_none(),
            "error": opt(f.error.clone()),
            "records": f.records,
            "text_lines": f.text_lines,
            "skipped": f.skipped,
        })).collect::<Vec<_>>(),
        "records": r.records,
        "duplicates": r.duplicates,
        "text_lines": r.text_lines,
        "processes": r.processes.iter().enumerate().map(|(i, p)| process_json(i, p)).collect::<Vec<_>>(),
        "gaps": r.gaps.iter().map(|g| json!({"pid": g.pid, "process": g.process, "from": g.from, "to": g.to})).collect::<Vec<_>>(),
        "skipped": r.skipped.iter().map(|s| json!({"file": s.file, "line": s.line, "reason": s.reason})).collect::<Vec<_>>(),
        "errors": r.errors.iter().map(|e| json!({"ts": e.ts, "pid": e.pid, "process": e.process, "message": e.message})).collect::<Vec<_>>(),
        "violations": r.violations.iter().map(|v| violation_json(v, &r.processes)).collect::<Vec<_>>(),
        "keys": keys,
        "untracked_keys": r.untracked_keys,
        "verdict": {
            "errors": r.count("error"),
            "warnings": r.count("warning"),
            "exit_status": r.exit_status(),
        },
    })
}

fn hex_value(v: Option<u64>) -> Value {
    v.map_or(Value::Null, |a| format!("{a:#x}").into())
}

/// The kind-specific fields of an event.
fn event_fields(e: &Event, m: &mut Map<String, Value>) {
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    let num = |v: Option<u64>| v.map_or(Value::Null, Value::from);
    match &e.detail {
        Detail::Export {
            dev_ptr,
            size,
            flags,
        } => {
            put("devPtr", hex_value(*dev_ptr));
            put("size", num(*size));
            put("flags", num(*flags));
        }
        Detail::Whitelist { pids, num: n } => {
            put("pids", pids.list().into());
            put("num", num(*n));
        }
        Detail::InterServer {
            server_pids,
            num: n,
        } => {
            let entries = server_pids.as_ref().map_or(Value::Null, |es| {
                es.iter()
                    .map(|(sdid, pids)| serde_json::json!({"sdid": sdid, "pid": pids}))
                    .collect()
            });
            put("serverPids", entries);
            put("num", num(*n));
        }
        Detail::SetAttr { attr_type, attr } => {
            put("type", num(*attr_type));
            put("attr", num(*attr));
        }
        Detail::Import { address, flags } => {
            put("address", hex_value(*address));
            put("flags", num(*flags));
        }
        Detail::Close { role } => put("role", (*role).into()),
        Detail::Free { dev_ptr, role } => {
            put("devPtr", hex_value(Some(*dev_ptr)));
            put("role", (*role).into());
        }
        Detail::Violation(v) => {
            put("rule", v.rule.clone().into());
            put("severity", v.severity.clone().into());
            put("source", v.source.as_str().into());
            put("action", v.action.clone().map_or(Value::Null, Value::from));
            put("message", v.message.clone().into());
        }
    }
}
