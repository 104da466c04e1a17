//! The rule table: stable ids, default severities, what each checks and the vendor rule
//! behind it. This is data; `acl-ipc-guard rules` and the README are generated from it.

/// How bad a broken rule is. `Off` exists only as a user override.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Off,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Off => "off",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "off" => Some(Severity::Off),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

/// One row of the rule table.
#[derive(Debug)]
pub struct RuleInfo {
    pub id: &'static str,
    pub severity: Severity,
    /// What the rule checks, one line.
    pub checks: &'static str,
    /// The vendor rule (documentation or driver behaviour) it enforces.
    pub vendor: &'static str,
    /// True when the rule needs the cross-process ledger.
    pub ledger: bool,
}

macro_rules! rules {
    ($( $variant:ident = $id:literal, $sev:ident, $ledger:literal, $checks:literal, $vendor:literal; )*) => {
        /// Every rule the shim knows, by stable id.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Rule { $( $variant, )* }

        /// The table, in `Rule` order.
        pub static RULES: &[RuleInfo] = &[
            $( RuleInfo { id: $id, severity: Severity::$sev, checks: $checks, vendor: $vendor, ledger: $ledger }, )*
        ];

        impl Rule {
            /// Every rule, in table order.
            pub const ALL: &'static [Rule] = &[ $( Rule::$variant, )* ];
        }
    };
}

rules! {
    ExportDevptrNull = "export.devptr-null", Error, false,
        "aclrtIpcMemGetExportKey: devPtr is NULL",
        "devPtr must be device memory; the ACL layer rejects NULL with 100000";
    ExportSizeZero = "export.size-zero", Error, false,
        "aclrtIpcMemGetExportKey: size is 0",
        "size is the byte size of the shared memory; 0 is refused with 107000";
    ExportKeyNull = "export.key-null", Error, false,
        "aclrtIpcMemGetExportKey: the key output buffer is NULL",
        "key is an output buffer of len bytes; NULL is refused with 100000";
    ExportKeyLen = "export.key-len", Error, false,
        "aclrtIpcMemGetExportKey: len is not 65",
        "len is fixed at 65 (64 characters and a NUL); smaller is refused with 107000, larger hides a wrong buffer";
    ExportFlags = "export.flags", Error, false,
        "aclrtIpcMemGetExportKey: flags is neither DEFAULT (0) nor DISABLE_PID_VALIDATION (1)",
        "flags takes ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT or _DISABLE_PID_VALIDATION; others are refused with 107000";
    ExportRange = "export.range", Error, false,
        "aclrtIpcMemGetExportKey: [devPtr, devPtr+size) runs past the end of the allocation devPtr lies in",
        "only memory this process allocated can be exported; the driver refuses a range past the allocation";
    ExportUntracked = "export.untracked", Warning, false,
        "aclrtIpcMemGetExportKey: devPtr lies in no allocation the shim saw",
        "devPtr must come from aclrtMalloc in this process; the shim cannot check memory it did not see allocated";
    ExportUnaligned = "export.unaligned", Error, false,
        "aclrtIpcMemGetExportKey: devPtr is not aligned to 4096",
        "the driver shares whole pages and refuses an unaligned address with 507899";
    ExportImported = "export.imported", Error, false,
        "aclrtIpcMemGetExportKey: devPtr lies in memory this process imported",
        "imported memory cannot be exported again";
    SetpidKeyNull = "setpid.key-null", Error, false,
        "aclrtIpcMemSetImportPid: key is NULL",
        "key is the string GetExportKey returned; NULL is refused with 100000";
    SetpidKeyUnterminated = "setpid.key-unterminated", Error, false,
        "aclrtIpcMemSetImportPid: no NUL in the key's first 65 bytes",
        "a key is at most 64 characters and a NUL";
    SetpidKeyUnknown = "setpid.key-unknown", Error, false,
        "aclrtIpcMemSetImportPid: key not exported (or already closed) by this process",
        "only the exporting process may whitelist; others are refused with 507899";
    SetpidPidNull = "setpid.pid-null", Error, false,
        "aclrtIpcMemSetImportPid: pid is NULL",
        "pid is an array of num pids; NULL is refused with 100000";
    SetpidNum = "setpid.num", Error, false,
        "aclrtIpcMemSetImportPid: num is 0 or more than 31",
        "current drivers take 1 to 31 pids per call; others are refused with 107000";
    SetpidPidInvalid = "setpid.pid-invalid", Error, false,
        "aclrtIpcMemSetImportPid: a pid is 0 or negative",
        "pids come from aclrtDeviceGetBareTgid; the driver skips 0 silently and a call of only skipped pids fails";
    SetpidOwnPid = "setpid.own-pid", Warning, false,
        "aclrtIpcMemSetImportPid: the list holds this process's own pid",
        "the driver silently skips the caller's own pid; the exporter cannot import its own key";
    SetpidValidationDisabled = "setpid.validation-disabled", Error, false,
        "aclrtIpcMemSetImportPid: the key was exported with DISABLE_PID_VALIDATION",
        "a key exported without pid validation has no whitelist; refused with 207006";
    ImportOutNull = "import.out-null", Error, false,
        "aclrtIpcMemImportByKey: devPtr (the out-pointer) is NULL",
        "devPtr receives the imported address; NULL is refused with 100000";
    ImportKeyNull = "import.key-null", Error, false,
        "aclrtIpcMemImportByKey: key is NULL",
        "key is the exporter's key; NULL is refused with 100000";
    ImportKeyUnterminated = "import.key-unterminated", Error, false,
        "aclrtIpcMemImportByKey: no NUL in the key's first 65 bytes",
        "a key is at most 64 characters and a NUL";
    ImportFlags = "import.flags", Error, false,
        "aclrtIpcMemImportByKey: flags is neither DEFAULT (0) nor ENABLE_PEER_ACCESS (1)",
        "flags takes ACL_RT_IPC_MEM_IMPORT_FLAG_DEFAULT or _ENABLE_PEER_ACCESS; others are refused with 107000";
    ImportOwnExport = "import.own-export", Error, false,
        "aclrtIpcMemImportByKey: the key was exported by this same process",
        "the exporter cannot import its own key (refused in whitelist mode); it already has the memory";
    ImportNotWhitelisted = "import.not-whitelisted", Error, true,
        "aclrtIpcMemImportByKey: whitelist mode and this process's bare tgid is not on the list",
        "with pid validation on, the exporter must aclrtIpcMemSetImportPid the importer's bare tgid first; else 507899";
    ImportStartedAfterWhitelist = "import.started-after-whitelist", Warning, true,
        "aclrtIpcMemImportByKey: this process started after its pid was whitelisted",
        "the driver refuses an importer that started after it was whitelisted (pid reuse protection); whitelist a process only once it exists";
    ImportSourceGone = "import.source-gone", Error, true,
        "aclrtIpcMemImportByKey: the exporter closed the key, freed the memory, or exited",
        "the shared memory must still exist when it is imported; else 507899";
    CloseKeyNull = "close.key-null", Error, false,
        "aclrtIpcMemClose: key is NULL",
        "key is the key to close; NULL is refused with 100000";
    CloseKeyUnterminated = "close.key-unterminated", Error, false,
        "aclrtIpcMemClose: no NUL in the key's first 65 bytes",
        "a key is at most 64 characters and a NUL";
    CloseUnknown = "close.unknown", Error, false,
        "aclrtIpcMemClose: key neither exported nor imported (and still open) by this process",
        "every importer and the exporter close the key once; closing an unknown key is refused with 507899";
    CloseExporterBeforeImporters = "close.exporter-before-importers", Error, true,
        "aclrtIpcMemClose: the exporter closes while a live importing process has not closed",
        "importers close first, the exporter last; otherwise \"an exception may occur\"";
    FreeBeforeClose = "free.before-close", Error, false,
        "aclrtFree: the memory's export key is still open",
        "the exporter closes the key before it frees the memory";
    FreeImported = "free.imported", Error, false,
        "aclrtFree: the address was returned by aclrtIpcMemImportByKey",
        "an importer releases shared memory with aclrtIpcMemClose, never aclrtFree (the vendor's own sample gets this wrong)";
    BareTgidInvalid = "bare-tgid.invalid", Error, false,
        "aclrtDeviceGetBareTgid: success with a negative pid",
        "when the driver query fails it writes -1 and still returns success";
    BareTgidOutNull = "bare-tgid.out-null", Error, false,
        "aclrtDeviceGetBareTgid: pid is NULL",
        "pid receives the bare tgid; NULL is refused with 100000";
    SetattrArgs = "setattr.args", Error, false,
        "aclrtIpcMemSetAttr: key NULL or unterminated, type not 0, or attr not one of 0, 1, 2, 3",
        "type must be ACL_RT_IPC_MEM_ATTR_ACCESS_LINK and attr an ACCESS_LINK value";
    InterserverArgs = "interserver.args", Error, false,
        "aclrtIpcMemImportPidInterServer: key NULL or unterminated, serverPids NULL, num 0, or an entry with a NULL pid array or num 0",
        "num is at least 1 and no serverPids[i].pid may be NULL";
    ExitLeak = "exit.leak", Warning, false,
        "at exit: keys still exported or imported, not closed",
        "every importer and the exporter must call aclrtIpcMemClose";
}

impl Rule {
    pub const fn info(self) -> &'static RuleInfo {
        &RULES[self as usize]
    }

    pub const fn id(self) -> &'static str {
        self.info().id
    }

    pub fn default_severity(self) -> Severity {
        self.info().severity
    }

    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.iter().copied().find(|r| r.id() == id)
    }

    pub const COUNT: usize = Rule::ALL.len();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_enum_order_and_ids_are_unique() {
        assert_eq!(RULES.len(), Rule::ALL.len());
        for (i, r) in Rule::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(Rule::from_id(r.id()), Some(*r));
        }
        let mut ids: Vec<_> = RULES.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
    }

    #[test]
    fn severities_match_the_interface_table() {
        let warnings: Vec<_> = RULES
            .iter()
            .filter(|r| r.severity == Severity::Warning)
            .map(|r| r.id)
            .collect();
        assert_eq!(
            warnings,
            [
                "export.untracked",
                "setpid.own-pid",
                "import.started-after-whitelist",
                "exit.leak"
            ]
        );
        assert!(RULES.iter().all(|r| r.severity != Severity::Off));
    }

    #[test]
    fn ledger_rules_are_the_cross_process_ones() {
        let ledger: Vec<_> = RULES.iter().filter(|r| r.ledger).map(|r| r.id).collect();
        assert_eq!(
            ledger,
            [
                "import.not-whitelisted",
                "import.started-after-whitelist",
                "import.source-gone",
                "close.exporter-before-importers"
            ]
        );
    }
}
