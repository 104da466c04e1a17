//! The HTML page: the blob survives any log text, the page cannot be made to load or run
//! anything else, and the blob says what the page draws.

use super::super::super::model::{Input, Report};
use super::super::super::{analyze, run, ReportArgs};
use super::{embed_json, page_data, render_html, PAGE};
use serde_json::{json, Value};

const T0: i64 = 1_795_468_025_000_000; // 2026-11-23T21:07:05Z
const FP: &str = "fp:00112233445566aa";
const HOSTILE_EXE: &str =
    "/opt/x\"><img id=pwned src=x onerror=alert(1)></script><script>alert(2)</script>\u{2028}&amp;";
const HOSTILE_MSG: &str = "</script><!--<script>alert(3)</script> & \"quoted\" 'too' \u{2029}";

fn ts(us: i64) -> String {
    let mut b = Vec::new();
    acl_ipc_guard::record::format_ts(us, &mut b);
    String::from_utf8(b).unwrap()
}

/// Records of one process, in order, with seq from 1.
struct Proc {
    pid: i64,
    seq: u64,
    lines: Vec<String>,
}

impl Proc {
    fn new(pid: i64, t: i64, exe: &str) -> Self {
        let mut p = Proc {
            pid,
            seq: 0,
            lines: Vec::new(),
        };
        p.rec(
            t,
            "start",
            json!({"version": "0.1.0", "mode": "audit", "exe": exe, "ledger": "off", "host": "node1"}),
        );
        p
    }

    fn rec(&mut self, t: i64, event: &str, fields: Value) -> &mut Self {
        self.seq += 1;
        let mut v =
            json!({"ts": ts(t), "seq": self.seq, "pid": self.pid, "tid": self.pid, "event": event});
        v.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        self.lines.push(v.to_string());
        self
    }

    fn call(&mut self, t: i64, f: &str, args: Value, out: Value) -> &mut Self {
        self.rec(
            t,
            "call",
            json!({"fn": f, "args": args, "out": out, "ret": 0, "forwarded": true, "dur_ns": 10}),
        )
    }

    fn text(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }
}

/// A exports FP, B imports it and closes, C imports it and is killed (no summary); A logs a
/// violation with a hostile message, and A's exe is hostile too.
fn job() -> Vec<Input> {
    let mut a = Proc::new(100, T0, HOSTILE_EXE);
    let mut b = Proc::new(200, T0 + 10, "/bin/importer");
    let mut c = Proc::new(300, T0 + 20, "/bin/killed");
    a.call(
        T0 + 100,
        "aclrtIpcMemGetExportKey",
        json!({"devPtr": "0x10000", "size": 8192, "key": "0x7ffd0000", "len": 65, "flags": 1}),
        json!({"key_fp": FP}),
    );
    b.call(
        T0 + 200,
        "aclrtIpcMemImportByKey",
        json!({"devPtr": "0x7ffd3000", "key_fp": FP, "flags": 0}),
        json!({"devPtr": "0x90000"}),
    );
    c.call(
        T0 + 300,
        "aclrtIpcMemImportByKey",
        json!({"devPtr": "0x7ffd3000", "key_fp": FP, "flags": 0}),
        json!({"devPtr": "0x91000"}),
    );
    a.rec(
        T0 + 400,
        "violation",
        json!({"rule": "close.exporter-before-importers", "severity": "error", "action": "reported",
               "fn": "aclrtIpcMemClose", "message": HOSTILE_MSG, "key_fp": FP}),
    );
    a.call(
        T0 + 400,
        "aclrtIpcMemClose",
        json!({"key_fp": FP}),
        json!({}),
    );
    b.call(
        T0 + 500,
        "aclrtIpcMemClose",
        json!({"key_fp": FP}),
        json!({}),
    );
    let summary = json!({"calls": 2, "violations": {}, "blocked": 0, "leaks": 0, "dropped": 0});
    b.rec(T0 + 600, "summary", summary.clone());
    a.rec(T0 + 700, "summary", summary);
    [a, b, c]
        .iter()
        .map(|p| Input::text(&format!("log.{}.json", p.pid), &p.text()))
        .collect()
}

fn report() -> Report {
    analyze(&job())
}

/// The content of the page's data script, parsed.
fn blob_of(page: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"report-data\">";
    let from = page.find(open).expect("a data script") + open.len();
    let to = from + page[from..].find("</script>").expect("its end");
    serde_json::from_str(&page[from..to]).expect("the blob is JSON")
}

#[test]
fn embedded_json_cannot_end_its_script_and_reads_back_equal() {
    let v = json!({"exe": HOSTILE_EXE, "msg": HOSTILE_MSG, "plain": "a/b \\ \"c\""});
    let text = embed_json(&v);
    for bad in ['<', '>', '&', '\u{2028}', '\u{2029}'] {
        assert!(!text.contains(bad), "{bad:?} in {text}");
    }
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
}

#[test]
fn hostile_log_text_does_not_reach_the_markup() {
    let r = report();
    let page = render_html(&r);
    // The page has the template's elements and no more: nothing from the logs opened or
    // closed an element.
    for tag in ["<script", "</script", "<img", "<!--", "<style", "</style"] {
        assert_eq!(
            page.matches(tag).count(),
            PAGE.matches(tag).count(),
            "{tag} in the page"
        );
    }
    assert!(!page.contains("<img id=pwned") && !page.contains("alert(3)</script>"));
    // The blob holds the text as it was, for the page to show as text.
    let blob = blob_of(&page);
    assert_eq!(blob, page_data(&r));
    assert_eq!(blob["procs"][0]["exe"], HOSTILE_EXE);
    assert_eq!(blob["viols"][0]["msg"], HOSTILE_MSG);
}

#[test]
fn the_page_loads_nothing_and_writes_no_markup_from_data() {
    // Log text enters the document through textContent/setAttribute only.
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "srcdoc",
    ] {
        assert!(!PAGE.contains(sink), "the template uses {sink}");
    }
    // No resource from elsewhere: the only URL is the SVG namespace (a name, never fetched),
    // and the policy forbids any load but inline code and data: images.
    let urls: Vec<&str> = PAGE
        .match_indices("://")
        .map(|(i, _)| &PAGE[PAGE[..i].rfind(['"', '\'', ' ']).map_or(0, |s| s + 1)..i])
        .collect();
    assert!(
        urls.iter().all(|u| *u == "http"),
        "schemes in the page: {urls:?}"
    );
    assert_eq!(
        PAGE.matches("://").count(),
        PAGE.matches("http://www.w3.org/2000/svg").count()
    );
    assert!(PAGE.contains("Content-Security-Policy\" content=\"default-src 'none';"));
    assert!(!PAGE.contains(" src=") && !PAGE.contains("@import") && !PAGE.contains("url(http"));
    assert_eq!(PAGE.matches(super::DATA_SLOT).count(), 1);
}

#[test]
fn the_blob_has_lanes_key_lives_marks_and_violations() {
    let r = report();
    let d = page_data(&r);
    assert_eq!(d["t0"], T0);
    assert_eq!(d["span"], 700);
    let procs = d["procs"].as_array().unwrap();
    let pids: Vec<i64> = procs.iter().map(|p| p["pid"].as_i64().unwrap()).collect();
    assert_eq!(pids, [100, 200, 300], "one lane per process");
    let how: Vec<&str> = procs.iter().map(|p| p["how"].as_str().unwrap()).collect();
    assert_eq!(how, ["exited", "exited", "unknown"], "C has no summary");
    assert_eq!(
        (&procs[2]["start"], &procs[2]["last"]),
        (&json!(20), &json!(300))
    );
    assert_eq!(procs[0]["end"], 700);

    let keys = d["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(k["fp"], FP);
    // Life: A's export to B's close, the last one; in A's lane.
    assert_eq!(
        (&k["ex"], &k["s"], &k["e"], &k["open"], &k["noexp"]),
        (
            &json!(0),
            &json!(100),
            &json!(500),
            &json!(false),
            &json!(false)
        )
    );
    let kinds: Vec<&str> = d["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let ev: Vec<(i64, i64, &str, i64)> = k["ev"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e[0].as_i64().unwrap(),
                e[1].as_i64().unwrap(),
                kinds[e[2].as_u64().unwrap() as usize],
                e[3].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ev,
        [
            (100, 0, "export", 0),
            (200, 1, "import", 0),
            (300, 2, "import", 0),
            (400, 0, "close", 0),
            (500, 1, "close", 0)
        ]
    );
    // The logged violation and the re-check's: both in A's lane, pointing at the key.
    let viols = d["viols"].as_array().unwrap();
    assert!(!viols.is_empty());
    for v in viols {
        assert_eq!(v["n"], 1, "one violation per logged record or finding: {v}");
        assert_eq!(
            (&v["rule"], &v["proc"], &v["key"], &v["t"]),
            (
                &json!("close.exporter-before-importers"),
                &json!(0),
                &json!(0),
                &json!(400)
            ),
            "{v}"
        );
    }
    assert_eq!(d["verdict"]["exit_status"], 1);
}

#[test]
fn a_key_never_closed_runs_to_its_exporters_end() {
    let mut a = Proc::new(100, T0, "/bin/a");
    a.call(
        T0 + 100,
        "aclrtIpcMemGetExportKey",
        json!({"devPtr": "0x10000", "size": 8192, "key": "0x7ffd0000", "len": 65, "flags": 1}),
        json!({"key_fp": FP}),
    );
    a.rec(T0 + 900, "error", json!({"message": "ledger unusable"}));
    let d = page_data(&analyze(&[Input::text("a.json", &a.text())]));
    let k = &d["keys"][0];
    assert_eq!(
        (&k["s"], &k["e"], &k["open"]),
        (&json!(100), &json!(900), &json!(true))
    );
    assert_eq!(d["procs"][0]["how"], "unknown");
    assert_eq!(d["errors"][0]["msg"], "ledger unusable");
}

/// `report [--json] --html HTML LOG…` as the command line gives it.
fn args(html: &str, json: bool, logs: &[String]) -> ReportArgs {
    use clap::Parser;
    let mut argv = vec!["acl-ipc-guard", "report", "--html", html];
    if json {
        argv.push("--json");
    }
    argv.extend(logs.iter().map(String::as_str));
    match crate::Cli::try_parse_from(argv) {
        Ok(crate::Cli {
            command: crate::Command::Report(a),
            ..
        }) => a,
        other => panic!("not a report command line: {other:?}"),
    }
}

#[test]
fn odd_logs_still_make_a_page() {
    // Garbage, records without times or processes, a key with no export, a lone violation.
    let text = "\u{0}garbage\n{\"ts\":\"x\"}\n{}\n[1,2]\n\
        {\"ts\":\"2026-11-23T21:07:05.000100Z\",\"seq\":1,\"pid\":7,\"tid\":7,\"event\":\"call\",\
        \"fn\":\"aclrtIpcMemClose\",\"args\":{\"key_fp\":\"fp:1111111111111111\"},\"out\":{},\"ret\":0}\n\
        {\"ts\":\"2026-11-23T21:07:05.000200Z\",\"seq\":2,\"pid\":7,\"tid\":7,\"event\":\"violation\",\
        \"rule\":\"x.y\",\"severity\":\"warning\",\"action\":\"reported\",\"fn\":\"f\",\"message\":\"m\"}\n";
    for inputs in [vec![], vec![Input::text("odd.json", text)]] {
        let r = analyze(&inputs);
        let page = render_html(&r);
        assert_eq!(blob_of(&page), page_data(&r));
    }
    let d = page_data(&analyze(&[Input::text("odd.json", text)]));
    assert_eq!(d["keys"][0]["noexp"], true);
    assert_eq!(d["viols"][0]["key"], Value::Null);
}

#[test]
fn html_beside_the_report_to_a_file_or_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let logs: Vec<String> = job()
        .iter()
        .map(|i| {
            let p = dir.path().join(&i.name);
            std::fs::write(&p, i.content.as_ref().unwrap()).unwrap();
            p.to_str().unwrap().to_owned()
        })
        .collect();
    let page = dir.path().join("page.html");
    let page_s = page.to_str().unwrap();

    // A file: the text report still goes to stdout, with its exit status.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(run(&args(page_s, false, &logs), &mut out, &mut err), 1);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("verdict: FAIL") && err.is_empty(), "{text}");
    let written = std::fs::read_to_string(&page).unwrap();
    assert_eq!(written, render_html(&report_of(&logs)));
    // With --json the object is printed as before.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(run(&args(page_s, true, &logs), &mut out, &mut err), 1);
    assert!(serde_json::from_slice::<Value>(&out).is_ok());

    // -: the page in place of the report.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(run(&args("-", false, &logs), &mut out, &mut err), 1);
    assert_eq!(String::from_utf8(out).unwrap(), written);
    assert!(err.is_empty());
    // - with --json: both cannot have stdout.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(run(&args("-", true, &logs), &mut out, &mut err), 2);
    assert!(out.is_empty());
    assert!(String::from_utf8(err)
        .unwrap()
        .contains("--json and --html -"));

    // Cannot write: said on stderr, exit 2, no report.
    let bad = dir.path().join("no-such-dir/page.html");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        run(
            &args(bad.to_str().unwrap(), false, &logs),
            &mut out,
            &mut err
        ),
        2
    );
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.contains("cannot write") && err.contains("no-such-dir/page.html"),
        "{err}"
    );
    assert!(out.is_empty());
}

fn report_of(logs: &[String]) -> Report {
    let inputs: Vec<Input> = logs
        .iter()
        .map(|p| Input {
            name: p.clone(),
            content: std::fs::read(p).map_err(|e| e.to_string()),
        })
        .collect();
    analyze(&inputs)
}
