use super::Rule;
use crate::call::{Args, Outcome, MAX_PIDS};
use crate::key::{Fp, KeyArg};
use crate::state::{ProcessState, Region};

/// One broken rule, described for the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub message: String,
    pub key_fp: Option<Fp>,
}

/// Who "this process" is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub pid: i32,
    /// The bare tgid the runtime reports (the host pid in a container).
    pub bare_tgid: i32,
    /// When the process started, CLOCK_BOOTTIME ns (10 ms granularity, truncated).
    pub start_ns: u64,
}

/// What the ledger said about the key of an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportFacts {
    pub exporter_pid: i32,
    pub exporter_alive: bool,
    pub whitelist_mode: bool,
    pub exporter_closed: bool,
    pub memory_freed: bool,
    /// When this process's bare tgid was first whitelisted for the key.
    pub whitelisted_at_ns: Option<u64>,
}

/// Cross-process facts gathered for the call before the checks run.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum LedgerFacts {
    /// No ledger, or it does not know the key.
    #[default]
    None,
    Import(ImportFacts),
    /// The exporter is closing: live importers that have not closed.
    ExporterClose {
        open_importers: Vec<i32>,
    },
}

const PAGE: usize = 4096;

struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, rule: Rule, key_fp: Option<Fp>, message: String) {
        self.0.push(Finding {
            rule,
            message,
            key_fp,
        });
    }

    /// The key-argument rules shared by SetImportPid, ImportByKey and Close.
    fn key(&mut self, key: &KeyArg, null: Rule, unterminated: Rule) -> Option<Fp> {
        let Some(problem) = key_problem(key) else {
            return key.fp();
        };
        let (rule, message) = match key {
            KeyArg::Null => (null, problem.to_string()),
            _ => (
                unterminated,
                format!("{problem} (a key is at most 64 characters and a NUL)"),
            ),
        };
        self.add(rule, None, message);
        None
    }
}

/// What is wrong with a key argument, if anything.
fn key_problem(key: &KeyArg) -> Option<&'static str> {
    match key {
        KeyArg::Null => Some("key is NULL"),
        KeyArg::Unterminated => Some("key has no NUL in its first 65 bytes"),
        KeyArg::Key(_) => None,
    }
}

/// Checks that can be judged before the call is made.
pub fn check_before(
    args: &Args,
    state: &ProcessState,
    me: &Identity,
    ledger: &LedgerFacts,
) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    match args {
        Args::GetExportKey {
            dev_ptr,
            size,
            key_buf,
            len,
            flags,
        } => check_export(&mut f, state, *dev_ptr, *size, *key_buf, *len, *flags),
        Args::SetImportPid {
            key,
            pid_ptr,
            pids,
            num,
        } => {
            let fp = f.key(key, Rule::SetpidKeyNull, Rule::SetpidKeyUnterminated);
            if let Some(fp) = fp {
                match state.export(&fp) {
                    None => f.add(
                        Rule::SetpidKeyUnknown,
                        Some(fp),
                        format!("key {fp} was not exported by this process, or is already closed; only the exporter may whitelist"),
                    ),
                    Some(e) if e.validation_disabled() => f.add(
                        Rule::SetpidValidationDisabled,
                        Some(fp),
                        format!("key {fp} was exported with ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION; it has no whitelist (the runtime returns 207006)"),
                    ),
                    Some(_) => {}
                }
            }
            if *pid_ptr == 0 {
                f.add(Rule::SetpidPidNull, fp, "pid is NULL".into());
            }
            if *num == 0 || *num > MAX_PIDS {
                f.add(
                    Rule::SetpidNum,
                    fp,
                    format!("num is {num}; current drivers take 1 to 31 pids per call"),
                );
            }
            if let Some(pids) = pids {
                let bad: Vec<_> = pids.iter().filter(|p| **p <= 0).collect();
                if !bad.is_empty() {
                    f.add(
                        Rule::SetpidPidInvalid,
                        fp,
                        format!("pid list holds {bad:?}; pids must be bare tgids from aclrtDeviceGetBareTgid (the driver skips 0 silently)"),
                    );
                }
                if pids.iter().any(|p| *p == me.pid || *p == me.bare_tgid) {
                    f.add(
                        Rule::SetpidOwnPid,
                        fp,
                        format!("pid list holds this process's own pid {}; the driver skips it silently", me.bare_tgid),
                    );
                }
            }
        }
        Args::ImportPidInterServer {
            key,
            server_pids,
            entries,
            num,
        } => {
            let mut problems: Vec<String> =
                key_problem(key).map(str::to_owned).into_iter().collect();
            if *server_pids == 0 {
                problems.push("serverPids is NULL".into());
            }
            if *num == 0 {
                problems.push("num is 0".into());
            }
            if let Some(entries) = entries {
                for (i, e) in entries.iter().enumerate() {
                    if e.pid_ptr == 0 {
                        problems.push(format!("serverPids[{i}].pid is NULL"));
                    }
                    if e.num == 0 {
                        problems.push(format!("serverPids[{i}].num is 0"));
                    }
                }
            }
            if !problems.is_empty() {
                f.add(Rule::InterserverArgs, key.fp(), problems.join("; "));
            }
        }
        Args::ImportByKey {
            out_ptr,
            key,
            flags,
        } => {
            if *out_ptr == 0 {
                f.add(
                    Rule::ImportOutNull,
                    key.fp(),
                    "devPtr (the out-pointer) is NULL".into(),
                );
            }
            let fp = f.key(key, Rule::ImportKeyNull, Rule::ImportKeyUnterminated);
            if *flags > 1 {
                f.add(
                    Rule::ImportFlags,
                    fp,
                    format!("flags is {flags:#x}; use ACL_RT_IPC_MEM_IMPORT_FLAG_DEFAULT (0) or ACL_RT_IPC_MEM_IMPORT_FLAG_ENABLE_PEER_ACCESS (1)"),
                );
            }
            if let Some(fp) = fp {
                if state.export(&fp).is_some() {
                    f.add(
                        Rule::ImportOwnExport,
                        Some(fp),
                        format!("key {fp} was exported by this same process; the exporter already has the memory and cannot import its own key"),
                    );
                } else if let LedgerFacts::Import(l) = ledger {
                    check_import_ledger(&mut f, fp, me, l);
                }
            }
        }
        Args::SetAttr {
            key,
            attr_type,
            attr,
        } => {
            let mut problems: Vec<String> =
                key_problem(key).map(str::to_owned).into_iter().collect();
            if *attr_type != 0 {
                problems.push(format!(
                    "type is {attr_type}; only ACL_RT_IPC_MEM_ATTR_ACCESS_LINK (0) exists"
                ));
            }
            if *attr > 3 {
                problems.push(format!(
                    "attr is {attr}; it must be an ACCESS_LINK value 0 to 3"
                ));
            }
            if !problems.is_empty() {
                f.add(Rule::SetattrArgs, key.fp(), problems.join("; "));
            }
        }
        Args::Close { key } => {
            if let Some(fp) = f.key(key, Rule::CloseKeyNull, Rule::CloseKeyUnterminated) {
                if state.export(&fp).is_none() && state.import(&fp).is_none() {
                    f.add(
                        Rule::CloseUnknown,
                        Some(fp),
                        format!("key {fp} is neither exported nor imported (and still open) by this process"),
                    );
                }
                if let LedgerFacts::ExporterClose { open_importers } = ledger {
                    if !open_importers.is_empty() && state.export(&fp).is_some() {
                        f.add(
                            Rule::CloseExporterBeforeImporters,
                            Some(fp),
                            format!("the exporter closes key {fp} while importing process(es) {open_importers:?} are alive and have not closed it; importers must close first"),
                        );
                    }
                }
            }
        }
        Args::DeviceGetBareTgid { out_ptr } => {
            if *out_ptr == 0 {
                f.add(
                    Rule::BareTgidOutNull,
                    None,
                    "pid (the out-pointer) is NULL".into(),
                );
            }
        }
        Args::Malloc { .. } => {}
        Args::Free { dev_ptr } => {
            let addr = *dev_ptr;
            if addr != 0 {
                if state.is_imported_addr(addr) {
                    f.add(
                        Rule::FreeImported,
                        None,
                        format!("{addr:#x} was returned by aclrtIpcMemImportByKey; an importer releases it with aclrtIpcMemClose, never aclrtFree"),
                    );
                }
                if let Some((fp, _)) = state.open_exports_of(addr).next() {
                    f.add(
                        Rule::FreeBeforeClose,
                        Some(*fp),
                        format!("{addr:#x} is freed while its export key {fp} is still open; close the key first"),
                    );
                }
            }
        }
    }
    f.0
}

fn check_export(
    f: &mut Findings,
    state: &ProcessState,
    dev_ptr: usize,
    size: usize,
    key_buf: usize,
    len: usize,
    flags: u64,
) {
    if dev_ptr == 0 {
        f.add(Rule::ExportDevptrNull, None, "devPtr is NULL".into());
    }
    if size == 0 {
        f.add(Rule::ExportSizeZero, None, "size is 0".into());
    }
    if key_buf == 0 {
        f.add(
            Rule::ExportKeyNull,
            None,
            "key (the output buffer) is NULL".into(),
        );
    }
    if len != 65 {
        f.add(
            Rule::ExportKeyLen,
            None,
            format!("len is {len}; the key buffer length is fixed at 65"),
        );
    }
    if flags > 1 {
        f.add(
            Rule::ExportFlags,
            None,
            format!("flags is {flags:#x}; use ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT (0) or ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION (1)"),
        );
    }
    if dev_ptr == 0 {
        return;
    }
    if dev_ptr % PAGE != 0 {
        f.add(
            Rule::ExportUnaligned,
            None,
            format!("devPtr {dev_ptr:#x} is not aligned to 4096"),
        );
    }
    match state.region_of(dev_ptr) {
        Region::Allocated { base, size: alloc } => {
            let end = dev_ptr.checked_add(size);
            if end.map_or(true, |end| end > base + alloc) {
                f.add(
                    Rule::ExportRange,
                    None,
                    format!("[{dev_ptr:#x}, +{size:#x}) runs past the end of the allocation [{base:#x}, +{alloc:#x})"),
                );
            }
        }
        Region::Imported { fp } => f.add(
            Rule::ExportImported,
            Some(fp),
            format!("devPtr {dev_ptr:#x} lies in memory this process imported (key {fp}); imported memory cannot be exported again"),
        ),
        Region::Unknown => f.add(
            Rule::ExportUntracked,
            None,
            format!("devPtr {dev_ptr:#x} lies in no allocation the shim saw (allocated before it loaded, or through a path it does not see)"),
        ),
    }
}

fn check_import_ledger(f: &mut Findings, fp: Fp, me: &Identity, l: &ImportFacts) {
    if l.exporter_closed || l.memory_freed || !l.exporter_alive {
        let why = if l.exporter_closed {
            "closed the key"
        } else if l.memory_freed {
            "freed the memory"
        } else {
            "exited"
        };
        f.add(
            Rule::ImportSourceGone,
            Some(fp),
            format!(
                "the exporter (pid {}) of key {fp} {why}; the shared memory no longer exists",
                l.exporter_pid
            ),
        );
        return;
    }
    if l.whitelist_mode {
        match l.whitelisted_at_ns {
            None => f.add(
                Rule::ImportNotWhitelisted,
                Some(fp),
                format!("key {fp} is in whitelist mode and this process's bare tgid {} is not on its list; the exporter (pid {}) must aclrtIpcMemSetImportPid it first", me.bare_tgid, l.exporter_pid),
            ),
            Some(at) if me.start_ns > at => f.add(
                Rule::ImportStartedAfterWhitelist,
                Some(fp),
                format!("this process (bare tgid {}) started after it was whitelisted for key {fp}; the driver refuses it (pid reuse protection)", me.bare_tgid),
            ),
            Some(_) => {}
        }
    }
}

/// Checks that can only be judged from the call's outcome.
pub fn check_after(args: &Args, outcome: &Outcome) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    if let Args::DeviceGetBareTgid { .. } = args {
        if outcome.ret == 0 {
            if let Some(pid) = outcome.out.pid {
                if pid < 0 {
                    f.add(
                        Rule::BareTgidInvalid,
                        None,
                        format!("aclrtDeviceGetBareTgid returned success with pid {pid}: the driver query failed"),
                    );
                }
            }
        }
    }
    f.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{Out, ServerEntry};
    use crate::key::Key;
    use crate::state::Export;

    const ME: Identity = Identity {
        pid: 100,
        bare_tgid: 100,
        start_ns: 5_000,
    };

    fn key(s: &str) -> KeyArg {
        KeyArg::Key(Key::from_bytes(s.as_bytes()))
    }

    fn rules(args: &Args, state: &ProcessState, ledger: &LedgerFacts) -> Vec<Rule> {
        check_before(args, state, &ME, ledger)
            .into_iter()
            .map(|f| f.rule)
            .collect()
    }

    fn exp(dev_ptr: usize, size: usize, len: usize, flags: u64) -> Args {
        Args::GetExportKey {
            dev_ptr,
            size,
            key_buf: 0x5000,
            len,
            flags,
        }
    }

    fn state_with_alloc() -> ProcessState {
        let mut s = ProcessState::new();
        s.add_alloc(0x100000, 0x10000);
        s
    }

    #[test]
    fn export_rules() {
        let s = state_with_alloc();
        let none = LedgerFacts::None;
        assert!(rules(&exp(0x100000, 0x10000, 65, 0), &s, &none).is_empty());
        assert!(
            rules(&exp(0x104000, 0x1000, 65, 1), &s, &none).is_empty(),
            "sub-range"
        );
        assert_eq!(
            rules(&exp(0, 0x1000, 65, 0), &s, &none),
            [Rule::ExportDevptrNull]
        );
        assert_eq!(
            rules(&exp(0x100000, 0, 65, 0), &s, &none),
            [Rule::ExportSizeZero]
        );
        assert_eq!(
            rules(
                &Args::GetExportKey {
                    dev_ptr: 0x100000,
                    size: 1,
                    key_buf: 0,
                    len: 65,
                    flags: 0
                },
                &s,
                &none
            ),
            [Rule::ExportKeyNull]
        );
        assert_eq!(
            rules(&exp(0x100000, 1, 256, 0), &s, &none),
            [Rule::ExportKeyLen]
        );
        assert_eq!(
            rules(&exp(0x100000, 1, 64, 0), &s, &none),
            [Rule::ExportKeyLen]
        );
        assert_eq!(
            rules(&exp(0x100000, 1, 65, 2), &s, &none),
            [Rule::ExportFlags]
        );
        assert_eq!(
            rules(&exp(0x10f000, 0x2000, 65, 0), &s, &none),
            [Rule::ExportRange]
        );
        assert_eq!(
            rules(&exp(0x100000, usize::MAX, 65, 0), &s, &none),
            [Rule::ExportRange]
        );
        assert_eq!(
            rules(&exp(0x100010, 0x10, 65, 0), &s, &none),
            [Rule::ExportUnaligned]
        );
        assert_eq!(
            rules(&exp(0x900000, 0x10, 65, 0), &s, &none),
            [Rule::ExportUntracked]
        );
        let mut s2 = state_with_alloc();
        s2.add_import(Fp([1; 8]), 0x700000, None);
        let f = check_before(&exp(0x700000, 0x1000, 65, 0), &s2, &ME, &none);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, Rule::ExportImported);
        assert_eq!(f[0].key_fp, Some(Fp([1; 8])));
    }

    fn setpid(k: KeyArg, pids: Option<Vec<i32>>, num: usize) -> Args {
        Args::SetImportPid {
            key: k,
            pid_ptr: if pids.is_some() { 0x10 } else { 0 },
            pids,
            num,
        }
    }

    fn exported(flags: u64) -> ProcessState {
        let mut s = state_with_alloc();
        s.add_export(
            key("k1").fp().unwrap(),
            Export {
                dev_ptr: 0x100000,
                size: 0x1000,
                flags,
                alloc_base: Some(0x100000),
                whitelist: vec![],
            },
        );
        s
    }

    #[test]
    fn setpid_rules() {
        let none = LedgerFacts::None;
        let s = exported(0);
        assert!(rules(&setpid(key("k1"), Some(vec![7]), 1), &s, &none).is_empty());
        assert_eq!(
            rules(&setpid(KeyArg::Null, Some(vec![7]), 1), &s, &none),
            [Rule::SetpidKeyNull]
        );
        assert_eq!(
            rules(&setpid(KeyArg::Unterminated, Some(vec![7]), 1), &s, &none),
            [Rule::SetpidKeyUnterminated]
        );
        assert_eq!(
            rules(&setpid(key("zz"), Some(vec![7]), 1), &s, &none),
            [Rule::SetpidKeyUnknown]
        );
        assert_eq!(
            rules(&setpid(key("k1"), None, 1), &s, &none),
            [Rule::SetpidPidNull]
        );
        assert_eq!(
            rules(&setpid(key("k1"), None, 0), &s, &none),
            [Rule::SetpidPidNull, Rule::SetpidNum]
        );
        assert_eq!(
            rules(
                &Args::SetImportPid {
                    key: key("k1"),
                    pid_ptr: 8,
                    pids: None,
                    num: 32
                },
                &s,
                &none
            ),
            [Rule::SetpidNum]
        );
        assert_eq!(
            rules(&setpid(key("k1"), Some(vec![7, 0]), 2), &s, &none),
            [Rule::SetpidPidInvalid]
        );
        assert_eq!(
            rules(&setpid(key("k1"), Some(vec![-3]), 1), &s, &none),
            [Rule::SetpidPidInvalid]
        );
        assert_eq!(
            rules(&setpid(key("k1"), Some(vec![7, 100]), 2), &s, &none),
            [Rule::SetpidOwnPid]
        );
        let s1 = exported(1);
        assert_eq!(
            rules(&setpid(key("k1"), Some(vec![7]), 1), &s1, &none),
            [Rule::SetpidValidationDisabled]
        );
    }

    fn import(k: KeyArg, flags: u64) -> Args {
        Args::ImportByKey {
            out_ptr: 0x20,
            key: k,
            flags,
        }
    }

    fn facts() -> ImportFacts {
        ImportFacts {
            exporter_pid: 7,
            exporter_alive: true,
            whitelist_mode: true,
            exporter_closed: false,
            memory_freed: false,
            whitelisted_at_ns: Some(10_000),
        }
    }

    #[test]
    fn import_rules() {
        let s = ProcessState::new();
        let ok = LedgerFacts::Import(facts());
        assert!(rules(&import(key("k1"), 0), &s, &ok).is_empty());
        assert!(rules(&import(key("k1"), 1), &s, &LedgerFacts::None).is_empty());
        assert_eq!(
            rules(
                &Args::ImportByKey {
                    out_ptr: 0,
                    key: key("k1"),
                    flags: 0
                },
                &s,
                &ok
            ),
            [Rule::ImportOutNull]
        );
        assert_eq!(
            rules(&import(KeyArg::Null, 0), &s, &ok),
            [Rule::ImportKeyNull]
        );
        assert_eq!(
            rules(&import(KeyArg::Unterminated, 0), &s, &ok),
            [Rule::ImportKeyUnterminated]
        );
        assert_eq!(rules(&import(key("k1"), 2), &s, &ok), [Rule::ImportFlags]);
        assert_eq!(
            rules(&import(key("k1"), 0), &exported(1), &ok),
            [Rule::ImportOwnExport]
        );
        let nwl = LedgerFacts::Import(ImportFacts {
            whitelisted_at_ns: None,
            ..facts()
        });
        assert_eq!(
            rules(&import(key("k1"), 0), &s, &nwl),
            [Rule::ImportNotWhitelisted]
        );
        let open = LedgerFacts::Import(ImportFacts {
            whitelisted_at_ns: None,
            whitelist_mode: false,
            ..facts()
        });
        assert!(rules(&import(key("k1"), 0), &s, &open).is_empty());
        let late = LedgerFacts::Import(ImportFacts {
            whitelisted_at_ns: Some(4_000),
            ..facts()
        });
        assert_eq!(
            rules(&import(key("k1"), 0), &s, &late),
            [Rule::ImportStartedAfterWhitelist]
        );
        for gone in [
            ImportFacts {
                exporter_closed: true,
                ..facts()
            },
            ImportFacts {
                memory_freed: true,
                ..facts()
            },
            ImportFacts {
                exporter_alive: false,
                ..facts()
            },
        ] {
            assert_eq!(
                rules(&import(key("k1"), 0), &s, &LedgerFacts::Import(gone)),
                [Rule::ImportSourceGone]
            );
        }
    }

    #[test]
    fn close_rules() {
        let s = exported(0);
        let none = LedgerFacts::None;
        assert!(rules(&Args::Close { key: key("k1") }, &s, &none).is_empty());
        assert_eq!(
            rules(&Args::Close { key: KeyArg::Null }, &s, &none),
            [Rule::CloseKeyNull]
        );
        assert_eq!(
            rules(
                &Args::Close {
                    key: KeyArg::Unterminated
                },
                &s,
                &none
            ),
            [Rule::CloseKeyUnterminated]
        );
        assert_eq!(
            rules(&Args::Close { key: key("k2") }, &s, &none),
            [Rule::CloseUnknown]
        );
        let busy = LedgerFacts::ExporterClose {
            open_importers: vec![55],
        };
        let f = check_before(&Args::Close { key: key("k1") }, &s, &ME, &busy);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, Rule::CloseExporterBeforeImporters);
        assert!(f[0].message.contains("[55]"));
        let mut imp = ProcessState::new();
        imp.add_import(key("k2").fp().unwrap(), 0x9000, None);
        assert!(rules(&Args::Close { key: key("k2") }, &imp, &none).is_empty());
    }

    #[test]
    fn free_rules() {
        let none = LedgerFacts::None;
        let s = exported(0);
        assert_eq!(
            rules(&Args::Free { dev_ptr: 0x100000 }, &s, &none),
            [Rule::FreeBeforeClose]
        );
        assert!(rules(&Args::Free { dev_ptr: 0x200000 }, &s, &none).is_empty());
        assert!(rules(&Args::Free { dev_ptr: 0 }, &s, &none).is_empty());
        let mut imp = ProcessState::new();
        let fp = key("k2").fp().unwrap();
        imp.add_import(fp, 0x9000, None);
        assert_eq!(
            rules(&Args::Free { dev_ptr: 0x9000 }, &imp, &none),
            [Rule::FreeImported]
        );
        imp.close_import(&fp);
        assert_eq!(
            rules(&Args::Free { dev_ptr: 0x9000 }, &imp, &none),
            [Rule::FreeImported]
        );
    }

    #[test]
    fn setattr_and_interserver_rules() {
        let s = ProcessState::new();
        let none = LedgerFacts::None;
        let sa = |k, t, a| Args::SetAttr {
            key: k,
            attr_type: t,
            attr: a,
        };
        assert!(rules(&sa(key("k"), 0, 3), &s, &none).is_empty());
        assert_eq!(
            rules(&sa(KeyArg::Null, 0, 0), &s, &none),
            [Rule::SetattrArgs]
        );
        assert_eq!(rules(&sa(key("k"), 1, 0), &s, &none), [Rule::SetattrArgs]);
        assert_eq!(rules(&sa(key("k"), 0, 4), &s, &none), [Rule::SetattrArgs]);
        let entry = |ptr, num| ServerEntry {
            sdid: 1,
            pid_ptr: ptr,
            num,
            pids: None,
        };
        let is = |k, sp, e: Option<Vec<ServerEntry>>, n| Args::ImportPidInterServer {
            key: k,
            server_pids: sp,
            entries: e,
            num: n,
        };
        assert!(rules(&is(key("k"), 8, Some(vec![entry(8, 1)]), 1), &s, &none).is_empty());
        assert_eq!(
            rules(&is(KeyArg::Unterminated, 8, None, 1), &s, &none),
            [Rule::InterserverArgs]
        );
        assert_eq!(
            rules(&is(key("k"), 0, None, 1), &s, &none),
            [Rule::InterserverArgs]
        );
        assert_eq!(
            rules(&is(key("k"), 8, None, 0), &s, &none),
            [Rule::InterserverArgs]
        );
        assert_eq!(
            rules(&is(key("k"), 8, Some(vec![entry(0, 1)]), 1), &s, &none),
            [Rule::InterserverArgs]
        );
        assert_eq!(
            rules(&is(key("k"), 8, Some(vec![entry(8, 0)]), 1), &s, &none),
            [Rule::InterserverArgs]
        );
    }

    #[test]
    fn bare_tgid_rules() {
        let s = ProcessState::new();
        assert_eq!(
            rules(
                &Args::DeviceGetBareTgid { out_ptr: 0 },
                &s,
                &LedgerFacts::None
            ),
            [Rule::BareTgidOutNull]
        );
        let args = Args::DeviceGetBareTgid { out_ptr: 8 };
        let out = |ret, pid| Outcome {
            ret,
            forwarded: true,
            out: Out {
                pid: Some(pid),
                ..Out::default()
            },
            dur_ns: 0,
            untracked: false,
        };
        assert_eq!(
            check_after(&args, &out(0, -1))[0].rule,
            Rule::BareTgidInvalid
        );
        assert!(check_after(&args, &out(0, 42)).is_empty());
        assert!(check_after(&args, &out(100000, -1)).is_empty());
    }
}
