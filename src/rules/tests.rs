//! The checks, one function at a time, on made-up facts.

use super::*;
use crate::call::{Out, ServerEntry};
use crate::key::Key;
use crate::state::{Export, ProcessState};

const ME: Identity = Identity {
    pid: 100,
    bare_tgid: 100,
    start_ns: 5_000,
};

fn key(s: &str) -> KeyArg {
    KeyArg::Key(Key::from_bytes(s.as_bytes()))
}

fn rules(args: &Args, state: &ProcessState, ledger: &LedgerFacts) -> Vec<Rule> {
    let key = args.key().and_then(KeyArg::fp);
    check_before(args, &state.view(key.as_ref()), &ME, ledger)
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
        key: None,
    }
}

fn state_with_alloc() -> ProcessState {
    let s = ProcessState::new();
    s.add_alloc(0x100000, 0x10000);
    s
}

/// Found by the `rules` fuzz target: an allocation that ends at the top of the address
/// space made `base + size` overflow (a panic with overflow checks, a false ExportRange
/// without).
#[test]
fn export_range_at_the_top_of_the_address_space() {
    let s = ProcessState::new();
    // [base, base + 0x2000) ends exactly at 2^64.
    let base = usize::MAX - 0x1fff;
    s.add_alloc(base, 0x2000);
    let none = LedgerFacts::None;
    assert_eq!(rules(&exp(base, 0x1000, 65, 0), &s, &none), []);
    assert_eq!(rules(&exp(base + 0x1000, 0xfff, 65, 0), &s, &none), []);
    assert_eq!(
        rules(&exp(base + 0x1000, 0x1000, 65, 0), &s, &none),
        [Rule::ExportRange]
    );
    let big = ProcessState::new();
    big.add_alloc(0x100000, usize::MAX);
    assert_eq!(rules(&exp(0x200000, 0x1000, 65, 0), &big, &none), []);
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
                flags: 0,
                key: None,
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
    let s2 = state_with_alloc();
    s2.add_import(Fp([1; 8]), 0x700000, None);
    let f = check_before(&exp(0x700000, 0x1000, 65, 0), &s2.view(None), &ME, &none);
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
    let s = state_with_alloc();
    s.add_export(
        key("k1").fp().unwrap(),
        Export {
            dev_ptr: 0x100000,
            size: 0x1000,
            flags,
            alloc_base: Some(0x100000),
            whitelist: vec![],
            ledger_at: None,
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
        own_pid_listed: false,
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
    // Its own getpid() on the list instead of its bare tgid (a container): the message
    // says that mistake, and what to whitelist instead.
    let container = Identity {
        pid: 1,
        bare_tgid: 4242,
        ..ME
    };
    let message_with = |listed| {
        let facts = LedgerFacts::Import(ImportFacts {
            whitelisted_at_ns: None,
            own_pid_listed: listed,
            ..facts()
        });
        let args = import(key("k1"), 0);
        let f = check_before(&args, &s.view(key("k1").fp().as_ref()), &container, &facts);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rule, Rule::ImportNotWhitelisted);
        f[0].message.clone()
    };
    let m = message_with(true);
    assert!(
        m.contains("its list holds 1, this process's pid in its own pid namespace (getpid()), not its bare tgid 4242")
            && m.contains("aclrtDeviceGetBareTgid"),
        "{m}"
    );
    let m = message_with(false);
    assert!(
        m.contains("bare tgid 4242 is not on its list") && !m.contains("getpid"),
        "{m}"
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
    let k1 = key("k1");
    let f = check_before(
        &Args::Close { key: k1 },
        &s.view(k1.fp().as_ref()),
        &ME,
        &busy,
    );
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, Rule::CloseExporterBeforeImporters);
    assert!(f[0].message.contains("[55]"));
    let imp = ProcessState::new();
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
    let imp = ProcessState::new();
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

/// A free of imported memory names the key it was imported with, open or closed since,
/// with its bytes (the record's `key_fp`), so that the violation stands on the key's
/// timeline; an import whose key was not given is named by no key.
#[test]
fn free_imported_names_the_key() {
    let none = LedgerFacts::None;
    let free_of = |s: &ProcessState, addr| {
        let f = check_before(&Args::Free { dev_ptr: addr }, &s.view(None), &ME, &none);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rule, Rule::FreeImported);
        (f[0].key_fp, f[0].key)
    };
    let s = ProcessState::new();
    let k = Key::from_bytes(b"imported-key");
    s.add_import_key(k, 0x9000, Some(4096));
    assert_eq!(free_of(&s, 0x9000), (Some(k.fp), Some(k)), "open import");
    assert!(s.close_import(&k.fp));
    assert_eq!(free_of(&s, 0x9000), (Some(k.fp), Some(k)), "closed import");
    // The address handed out again by an allocation: no longer imported memory.
    s.add_alloc(0x9000, 4096);
    assert!(rules(&Args::Free { dev_ptr: 0x9000 }, &s, &none).is_empty());
    let anon = ProcessState::new();
    anon.add_import(Key::from_bytes(b"other").fp, 0xa000, None);
    assert_eq!(free_of(&anon, 0xa000), (None, None), "no key given");
    assert!(anon.close_import(&Key::from_bytes(b"other").fp));
    assert_eq!(free_of(&anon, 0xa000), (None, None), "no key given, closed");
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
