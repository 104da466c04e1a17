//! The `ACL_IPC_GUARD_*` switches, read once. Parsing is a pure function of a look-up
//! closure so that it is unit-tested without touching the environment; a bad value is
//! reported (the caller prints it once on stderr) and the default is used.

use crate::rules::{Rule, Severity};
use std::path::PathBuf;

/// One switch: its variable, what it does, what it takes, its default (the last three as
/// the README's "Switches" table says them; that table is generated from this one and
/// checked by `tests/readme.rs`).
#[derive(Debug)]
pub struct Switch {
    pub name: &'static str,
    pub about: &'static str,
    pub values: &'static str,
    pub default: &'static str,
}

macro_rules! switches {
    ($( $id:ident = $name:literal, $about:literal, $values:literal, $default:literal; )*) => {
        /// The variables' names, for the code that reads them.
        pub mod var {
            $( pub const $id: &str = $name; )*
        }

        /// Every switch, in the README's order.
        pub static SWITCHES: &[Switch] = &[
            $( Switch { name: $name, about: $about, values: $values, default: $default }, )*
        ];
    };
}

switches! {
    MODE = "ACL_IPC_GUARD_MODE",
        "what the shim does about a broken rule",
        "`off` (forward only), `audit` (report, forward unchanged), `enforce` (an `error` rule blocks the call: not forwarded, returns 100000), `abort` (record with backtrace, flush, `abort()`)",
        "`audit`";
    LOG = "ACL_IPC_GUARD_LOG",
        "where records go",
        "`stderr`, `off`, `syslog` (RFC 5424 to `/dev/log`), `syslog:SOCKET` (to that unix datagram socket), or a file path; `%p` in a path becomes the pid, `%h` the host name; see [Syslog](#syslog)",
        "`stderr`";
    FORMAT = "ACL_IPC_GUARD_FORMAT",
        "how records are written",
        "`json` (one object per line), `text`",
        "`json` for files, `text` for stderr";
    RULES = "ACL_IPC_GUARD_RULES",
        "severity overrides by rule id",
        "comma list of `RULE=off|warning|error`",
        "each rule's own severity";
    CALLS = "ACL_IPC_GUARD_CALLS",
        "which calls get a `call` record",
        "`ipc` (IPC functions and `aclrtDeviceGetBareTgid`), `all` (also malloc/free), `none` (violations only)",
        "`ipc`";
    BACKTRACE = "ACL_IPC_GUARD_BACKTRACE",
        "backtrace on `error` violations",
        "`0`, `1`",
        "`1`";
    SHOW_KEYS = "ACL_IPC_GUARD_SHOW_KEYS",
        "write raw keys beside their fingerprints",
        "`0`, `1`",
        "`0`";
    LEDGER = "ACL_IPC_GUARD_LEDGER",
        "the directory shared by the processes of one job, for the cross-process rules (a relative path is taken from the directory the program started in); see [The ledger](#the-ledger) for what it accepts",
        "a directory, or `off`",
        "`/dev/shm/acl-ipc-guard-<uid>`";
    LEDGER_KEYS = "ACL_IPC_GUARD_LEDGER_KEYS",
        "keys a new ledger file holds",
        "64 to 4194304",
        "`65536`";
    EXITCODE = "ACL_IPC_GUARD_EXITCODE",
        "a process that had an `error` violation exits with it",
        "0–255",
        "unset";
    REAL_LIB = "ACL_IPC_GUARD_REAL_LIB",
        "the real runtime, where the next library does not define a function",
        "a library name or path",
        "`libascendcl.so`";
    REPEAT_LIMIT = "ACL_IPC_GUARD_REPEAT_LIMIT",
        "records written per rule per process; later ones are only counted",
        "a whole number",
        "`100`";
}

macro_rules! modes {
    ($( $variant:ident = $name:literal; )*) => {
        /// What the shim does about a broken rule (`ACL_IPC_GUARD_MODE`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Mode { $( $variant, )* }

        impl Mode {
            /// Every mode, by the name the switch, the records and the CLI use.
            pub const ALL: &'static [(Mode, &'static str)] = &[ $( (Mode::$variant, $name), )* ];
        }
    };
}

modes! {
    Off = "off";
    Audit = "audit";
    Enforce = "enforce";
    Abort = "abort";
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        Mode::ALL[self as usize].1
    }

    pub fn parse(name: &str) -> Option<Mode> {
        Mode::ALL.iter().find(|(_, n)| *n == name).map(|(m, _)| *m)
    }

    /// The names as a sentence: "off, audit, enforce or abort".
    pub fn names() -> String {
        let names: Vec<&str> = Mode::ALL.iter().map(|(_, n)| *n).collect();
        let (last, rest) = names.split_last().expect("modes");
        format!("{} or {last}", rest.join(", "))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    Stderr,
    Off,
    /// A path template; `%p` becomes the pid, `%h` the host name.
    File(String),
    /// RFC 5424 datagrams to this unix socket (`syslog`: `/dev/log`).
    Syslog(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

/// Which calls get a `call` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Calls {
    /// IPC functions and aclrtDeviceGetBareTgid.
    Ipc,
    /// Also the malloc/free family.
    All,
    /// Violations only (and start, summary, error).
    None,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerSetting {
    Off,
    Dir(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub mode: Mode,
    pub log: LogTarget,
    pub format: Format,
    pub severities: [Severity; Rule::COUNT],
    pub calls: Calls,
    pub backtrace: bool,
    pub show_keys: bool,
    pub ledger: LedgerSetting,
    /// Keys a ledger file this process creates can hold.
    pub ledger_keys: usize,
    pub exitcode: Option<i32>,
    pub real_lib: String,
    pub repeat_limit: u64,
}

pub const DEFAULT_REAL_LIB: &str = "libascendcl.so";
pub const DEFAULT_REPEAT_LIMIT: u64 = 100;

/// The default ledger directory: private to the user, in shared memory.
pub fn default_ledger_dir(uid: u32) -> PathBuf {
    PathBuf::from(format!("/dev/shm/acl-ipc-guard-{uid}"))
}

impl Config {
    pub fn severity(&self, rule: Rule) -> Severity {
        self.severities[rule as usize]
    }

    /// Parses the switches from `lookup(name)`; returns the configuration and one message
    /// per bad value (each naming the variable, the value, and the default used).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>, uid: u32) -> (Config, Vec<String>) {
        let get = lookup;
        let mode_v = get(var::MODE);
        let log_v = get(var::LOG);
        let format_v = get(var::FORMAT);
        let rules_v = get(var::RULES);
        let calls_v = get(var::CALLS);
        let bt_v = get(var::BACKTRACE);
        let keys_v = get(var::SHOW_KEYS);
        let ledger_v = get(var::LEDGER);
        let ledger_keys_v = get(var::LEDGER_KEYS);
        let exit_v = get(var::EXITCODE);
        let real_v = get(var::REAL_LIB);
        let repeat_v = get(var::REPEAT_LIMIT);

        let mut bad = Vec::new();
        let mut complain = |var: &str, val: &str, expect: &str, default: &str| {
            bad.push(format!(
                "{var}={val:?} is not valid ({expect}); using {default}"
            ));
        };

        let mode = match mode_v.as_deref().map(str::trim) {
            None | Some("") => Mode::Audit,
            Some(v) => Mode::parse(v).unwrap_or_else(|| {
                complain(var::MODE, v, &Mode::names(), Mode::Audit.as_str());
                Mode::Audit
            }),
        };

        let log = match log_v.as_deref() {
            None | Some("") | Some("stderr") => LogTarget::Stderr,
            Some("off") => LogTarget::Off,
            Some("syslog") => LogTarget::Syslog(crate::record::syslog::DEFAULT_SOCKET.into()),
            // Never a file called "syslog:…": a socket path, or a bad value.
            Some(v) if v.starts_with("syslog:") => {
                let path = &v["syslog:".len()..];
                // sun_path holds 107 bytes and the NUL.
                if path.is_empty() || path.len() > 107 {
                    complain(
                        var::LOG,
                        v,
                        "syslog:SOCKET needs the path of a unix socket, at most 107 bytes",
                        "stderr",
                    );
                    LogTarget::Stderr
                } else {
                    LogTarget::Syslog(path.to_string())
                }
            }
            Some(p) => LogTarget::File(p.to_string()),
        };

        let default_format = match log {
            LogTarget::File(_) | LogTarget::Syslog(_) => Format::Json,
            _ => Format::Text,
        };
        let format = match format_v.as_deref().map(str::trim) {
            None | Some("") => default_format,
            Some("json") => Format::Json,
            Some("text") => Format::Text,
            Some(v) => {
                complain(
                    var::FORMAT,
                    v,
                    "json or text",
                    if default_format == Format::Json {
                        "json"
                    } else {
                        "text"
                    },
                );
                default_format
            }
        };

        let mut severities = [Severity::Off; Rule::COUNT];
        for r in Rule::ALL {
            severities[*r as usize] = r.default_severity();
        }
        if let Some(spec) = rules_v.as_deref() {
            for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (id, sev) = item.split_once('=').unwrap_or((item, ""));
                let id = id.trim();
                match (Rule::from_id(id), Severity::parse(sev.trim())) {
                    (Some(rule), Some(sev)) => severities[rule as usize] = sev,
                    // A known rule with a bad severity keeps its own; an unknown id changes
                    // nothing (there is no such rule to keep a severity for).
                    (Some(rule), None) => complain(
                        var::RULES,
                        item,
                        "RULE=off|warning|error",
                        &format!("{}'s own severity", rule.id()),
                    ),
                    (None, _) => complain(
                        var::RULES,
                        item,
                        &format!("no rule has the id {id:?}; the ids: `acl-ipc-guard rules`"),
                        "no override for it",
                    ),
                }
            }
        }

        let calls = match calls_v.as_deref().map(str::trim) {
            None | Some("") | Some("ipc") => Calls::Ipc,
            Some("all") => Calls::All,
            Some("none") => Calls::None,
            Some(v) => {
                complain(var::CALLS, v, "ipc, all or none", "ipc");
                Calls::Ipc
            }
        };

        let mut flag =
            |var: &str, v: Option<String>, default: bool| match v.as_deref().map(str::trim) {
                None | Some("") => default,
                Some("1") => true,
                Some("0") => false,
                Some(v) => {
                    complain(var, v, "0 or 1", if default { "1" } else { "0" });
                    default
                }
            };
        let backtrace = flag(var::BACKTRACE, bt_v, true);
        let show_keys = flag(var::SHOW_KEYS, keys_v, false);

        let ledger = match ledger_v.as_deref() {
            None | Some("") => LedgerSetting::Dir(default_ledger_dir(uid)),
            Some("off") => LedgerSetting::Off,
            Some(d) => LedgerSetting::Dir(PathBuf::from(d)),
        };

        let ledger_keys = match ledger_keys_v.as_deref().map(str::trim) {
            None | Some("") => crate::ledger::DEFAULT_KEYS,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (crate::ledger::MIN_KEYS..=crate::ledger::MAX_KEYS).contains(&n) => n,
                _ => {
                    complain(
                        var::LEDGER_KEYS,
                        v,
                        &format!(
                            "a number of keys from {} to {}",
                            crate::ledger::MIN_KEYS,
                            crate::ledger::MAX_KEYS
                        ),
                        &crate::ledger::DEFAULT_KEYS.to_string(),
                    );
                    crate::ledger::DEFAULT_KEYS
                }
            },
        };

        let exitcode = match exit_v.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(v) => match v.parse::<i32>() {
                Ok(n) if (0..=255).contains(&n) => Some(n),
                _ => {
                    complain(var::EXITCODE, v, "a number from 0 to 255", "unset");
                    None
                }
            },
        };

        let real_lib = match real_v {
            Some(p) if !p.is_empty() => p,
            _ => DEFAULT_REAL_LIB.to_string(),
        };

        let repeat_limit = match repeat_v.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_REPEAT_LIMIT,
            Some(v) => match v.parse::<u64>() {
                Ok(n) => n,
                Err(_) => {
                    complain(
                        var::REPEAT_LIMIT,
                        v,
                        "a whole number",
                        &DEFAULT_REPEAT_LIMIT.to_string(),
                    );
                    DEFAULT_REPEAT_LIMIT
                }
            },
        };

        let config = Config {
            mode,
            log,
            format,
            severities,
            calls,
            backtrace,
            show_keys,
            ledger,
            ledger_keys,
            exitcode,
            real_lib,
            repeat_limit,
        };
        (config, bad)
    }

    /// Reads the process environment with `secure_getenv` semantics: nothing is read in a
    /// setuid or setgid program.
    pub fn from_env() -> (Config, Vec<String>) {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let (mut config, bad) = Config::from_lookup(secure_getenv, uid);
        if let Ok(cwd) = std::env::current_dir() {
            config.anchor_ledger(&cwd);
        }
        (config, bad)
    }

    /// A relative ledger directory means the one seen from `cwd`, where the switches were
    /// read, whatever directory the program changes to later; so does a relative syslog
    /// socket (it is connected again after the daemon restarts), when it still fits.
    pub fn anchor_ledger(&mut self, cwd: &std::path::Path) {
        if let LedgerSetting::Dir(d) = &self.ledger {
            if d.is_relative() {
                self.ledger = LedgerSetting::Dir(cwd.join(d));
            }
        }
        if let LogTarget::Syslog(s) = &self.log {
            let full = cwd.join(s);
            if std::path::Path::new(s).is_relative() && full.as_os_str().len() <= 107 {
                self.log = LogTarget::Syslog(full.display().to_string());
            }
        }
    }
}

extern "C" {
    // glibc: getenv that answers NULL in a setuid/setgid program.
    #[link_name = "secure_getenv"]
    fn libc_secure_getenv(name: *const libc::c_char) -> *mut libc::c_char;
}

fn secure_getenv(name: &str) -> Option<String> {
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: cname is a valid NUL-terminated string; the returned pointer, if not NULL,
    // points into the environment and is copied at once.
    unsafe {
        let p = libc_secure_getenv(cname.as_ptr());
        if p.is_null() {
            None
        } else {
            Some(std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[test]
    fn every_switch_in_the_table_is_read_and_only_those() {
        let asked = RefCell::new(Vec::new());
        let _ = Config::from_lookup(
            |k| {
                asked.borrow_mut().push(k.to_owned());
                None
            },
            1000,
        );
        let table: Vec<&str> = SWITCHES.iter().map(|s| s.name).collect();
        assert_eq!(asked.into_inner(), table);
    }

    /// The table's numbers are the code's.
    #[test]
    fn switch_table_defaults_are_the_code_defaults() {
        let row = |name: &str| SWITCHES.iter().find(|s| s.name == name).unwrap();
        let keys = row(var::LEDGER_KEYS);
        let range = format!("{} to {}", crate::ledger::MIN_KEYS, crate::ledger::MAX_KEYS);
        assert_eq!(keys.values, range);
        assert_eq!(keys.default, format!("`{}`", crate::ledger::DEFAULT_KEYS));
        let repeat = row(var::REPEAT_LIMIT);
        assert_eq!(repeat.default, format!("`{DEFAULT_REPEAT_LIMIT}`"));
        assert_eq!(row(var::REAL_LIB).default, format!("`{DEFAULT_REAL_LIB}`"));
        assert_eq!(
            row(var::MODE).default,
            format!("`{}`", Mode::Audit.as_str())
        );
    }

    #[test]
    fn mode_names_round_trip() {
        for (m, name) in Mode::ALL {
            assert_eq!(m.as_str(), *name);
            assert_eq!(Mode::parse(name), Some(*m));
        }
        assert_eq!(Mode::names(), "off, audit, enforce or abort");
        assert_eq!(Mode::parse("loud"), None);
    }

    fn parse(vars: &[(&str, &str)]) -> (Config, Vec<String>) {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned(), 1000)
    }

    #[test]
    fn defaults() {
        let (c, bad) = parse(&[]);
        assert!(bad.is_empty());
        assert_eq!(c.mode, Mode::Audit);
        assert_eq!(c.log, LogTarget::Stderr);
        assert_eq!(c.format, Format::Text);
        assert_eq!(c.calls, Calls::Ipc);
        assert!(c.backtrace);
        assert!(!c.show_keys);
        assert_eq!(
            c.ledger,
            LedgerSetting::Dir("/dev/shm/acl-ipc-guard-1000".into())
        );
        assert_eq!(c.exitcode, None);
        assert_eq!(c.real_lib, "libascendcl.so");
        assert_eq!(c.repeat_limit, 100);
        assert_eq!(c.severity(Rule::ExportUntracked), Severity::Warning);
        assert_eq!(c.severity(Rule::FreeImported), Severity::Error);
    }

    #[test]
    fn file_log_defaults_to_json() {
        let (c, _) = parse(&[("ACL_IPC_GUARD_LOG", "/tmp/x.%p.log")]);
        assert_eq!(c.log, LogTarget::File("/tmp/x.%p.log".into()));
        assert_eq!(c.format, Format::Json);
        let (c, _) = parse(&[
            ("ACL_IPC_GUARD_LOG", "/tmp/x"),
            ("ACL_IPC_GUARD_FORMAT", "text"),
        ]);
        assert_eq!(c.format, Format::Text);
    }

    #[test]
    fn every_switch_parses() {
        let (c, bad) = parse(&[
            ("ACL_IPC_GUARD_MODE", "enforce"),
            ("ACL_IPC_GUARD_LOG", "off"),
            (
                "ACL_IPC_GUARD_RULES",
                "export.untracked=error, free.imported=off",
            ),
            ("ACL_IPC_GUARD_CALLS", "none"),
            ("ACL_IPC_GUARD_BACKTRACE", "0"),
            ("ACL_IPC_GUARD_SHOW_KEYS", "1"),
            ("ACL_IPC_GUARD_LEDGER", "off"),
            ("ACL_IPC_GUARD_EXITCODE", "42"),
            ("ACL_IPC_GUARD_REAL_LIB", "/opt/x/libascendcl.so"),
            ("ACL_IPC_GUARD_REPEAT_LIMIT", "3"),
        ]);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(c.log, LogTarget::Off);
        assert_eq!(c.severity(Rule::ExportUntracked), Severity::Error);
        assert_eq!(c.severity(Rule::FreeImported), Severity::Off);
        assert_eq!(c.calls, Calls::None);
        assert!(!c.backtrace);
        assert!(c.show_keys);
        assert_eq!(c.ledger, LedgerSetting::Off);
        assert_eq!(c.exitcode, Some(42));
        assert_eq!(c.real_lib, "/opt/x/libascendcl.so");
        assert_eq!(c.repeat_limit, 3);
    }

    #[test]
    fn a_relative_ledger_is_anchored_where_the_switches_are_read() {
        let (mut c, _) = parse(&[("ACL_IPC_GUARD_LEDGER", "job/ledger")]);
        c.anchor_ledger(std::path::Path::new("/work/run"));
        assert_eq!(c.ledger, LedgerSetting::Dir("/work/run/job/ledger".into()));
        let (mut c, _) = parse(&[("ACL_IPC_GUARD_LEDGER", "/abs")]);
        c.anchor_ledger(std::path::Path::new("/work/run"));
        assert_eq!(c.ledger, LedgerSetting::Dir("/abs".into()));
    }

    #[test]
    fn bad_values_are_reported_and_defaulted() {
        let (c, bad) = parse(&[
            ("ACL_IPC_GUARD_MODE", "loud"),
            (
                "ACL_IPC_GUARD_RULES",
                "nosuch.rule=error,free.imported=maybe,export.flags=warning",
            ),
            ("ACL_IPC_GUARD_BACKTRACE", "yes"),
            ("ACL_IPC_GUARD_EXITCODE", "x"),
            ("ACL_IPC_GUARD_REPEAT_LIMIT", "-1"),
            ("ACL_IPC_GUARD_FORMAT", "xml"),
            ("ACL_IPC_GUARD_CALLS", "some"),
        ]);
        assert_eq!(bad.len(), 8, "{bad:?}");
        assert!(bad[0].contains("ACL_IPC_GUARD_MODE") && bad[0].contains("loud"));
        // An unknown rule id says so (no rule to keep a severity for); a bad severity
        // names the rule whose own severity stays.
        let rules: Vec<&String> = bad
            .iter()
            .filter(|b| b.contains("ACL_IPC_GUARD_RULES"))
            .collect();
        assert_eq!(rules.len(), 2, "{rules:?}");
        assert!(
            rules[0].contains(r#"no rule has the id "nosuch.rule""#)
                && rules[0].ends_with("using no override for it"),
            "{}",
            rules[0]
        );
        assert!(
            rules[1].contains("free.imported=maybe")
                && rules[1].ends_with("using free.imported's own severity"),
            "{}",
            rules[1]
        );
        assert_eq!(c.mode, Mode::Audit);
        assert_eq!(c.severity(Rule::FreeImported), Severity::Error);
        assert_eq!(c.severity(Rule::ExportFlags), Severity::Warning);
        assert!(c.backtrace);
        assert_eq!(c.exitcode, None);
        assert_eq!(c.repeat_limit, 100);
        assert_eq!(c.format, Format::Text);
        assert_eq!(c.calls, Calls::Ipc);
    }
}

#[cfg(test)]
mod syslog_tests {
    use super::*;

    fn log(v: &str) -> (Config, Vec<String>) {
        Config::from_lookup(|n| (n == var::LOG).then(|| v.to_string()), 1000)
    }

    #[test]
    fn syslog_alone_is_dev_log_and_json() {
        let (c, bad) = log("syslog");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(c.log, LogTarget::Syslog("/dev/log".into()));
        assert_eq!(c.format, Format::Json);
    }

    #[test]
    fn syslog_with_a_socket_path() {
        let (c, bad) = log("syslog:/run/x/log.sock");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(c.log, LogTarget::Syslog("/run/x/log.sock".into()));
        assert_eq!(c.format, Format::Json);
        // The text format is there for whoever asks for it.
        let (c, bad) = Config::from_lookup(
            |n| match n {
                var::LOG => Some("syslog:/x".into()),
                var::FORMAT => Some("text".into()),
                _ => None,
            },
            1000,
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            (c.log, c.format),
            (LogTarget::Syslog("/x".into()), Format::Text)
        );
    }

    #[test]
    fn syslog_without_a_usable_path_is_reported_once_and_stderr_used() {
        let long = format!("syslog:/{}", "x".repeat(107));
        for v in ["syslog:", long.as_str()] {
            let (c, bad) = log(v);
            assert_eq!(c.log, LogTarget::Stderr, "{v}");
            assert_eq!(c.format, Format::Text, "{v}");
            assert_eq!(bad.len(), 1, "{v}: {bad:?}");
            assert!(
                bad[0].contains(var::LOG) && bad[0].contains(v) && bad[0].contains("unix socket"),
                "{}",
                bad[0]
            );
        }
        // 107 bytes is the most a socket path holds, and fits.
        let (c, bad) = log(&format!("syslog:/{}", "x".repeat(106)));
        assert!(bad.is_empty() && matches!(c.log, LogTarget::Syslog(_)));
    }

    #[test]
    fn a_relative_socket_is_anchored_where_the_switches_are_read() {
        let (mut c, _) = log("syslog:run/log.sock");
        c.anchor_ledger(std::path::Path::new("/work/job"));
        assert_eq!(c.log, LogTarget::Syslog("/work/job/run/log.sock".into()));
        let (mut c, _) = log("syslog");
        c.anchor_ledger(std::path::Path::new("/work/job"));
        assert_eq!(c.log, LogTarget::Syslog("/dev/log".into()));
    }
}
