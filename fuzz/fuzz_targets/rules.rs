//! The rule checks over arbitrary arguments, process state and ledger facts: no panic,
//! and every finding names a rule of the table.
#![no_main]

use acl_ipc_guard::call::{Args, Out, Outcome, ServerEntry};
use acl_ipc_guard::key::{Fp, Key, KeyArg};
use acl_ipc_guard::rules::{check_after, check_before, Identity, ImportFacts, LedgerFacts};
use acl_ipc_guard::state::{Export, ProcessState};
use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Addresses from a small set, so that state and arguments meet.
fn addr(u: &mut Unstructured) -> Result<usize> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 => 0,
        1 => usize::from(u.arbitrary::<u8>()?) << 12,
        2 => (usize::from(u.arbitrary::<u8>()?) << 12) + usize::from(u.arbitrary::<u8>()?),
        _ => u.arbitrary()?,
    })
}

fn size(u: &mut Unstructured) -> Result<usize> {
    Ok(match u.int_in_range(0u8..=2)? {
        0 => usize::from(u.arbitrary::<u8>()?) << 12,
        1 => usize::from(u.arbitrary::<u16>()?),
        _ => u.arbitrary()?,
    })
}

/// Keys from a few short names, so that state and arguments meet.
fn key(u: &mut Unstructured) -> Result<Key> {
    let n = u.int_in_range(0u8..=64)?;
    let bytes: Vec<u8> = if n < 4 {
        vec![b'k', b'0' + n]
    } else {
        (0..n)
            .map(|_| u.int_in_range(1u8..=255))
            .collect::<Result<_>>()?
    };
    Ok(Key::from_bytes(&bytes))
}

fn key_arg(u: &mut Unstructured) -> Result<KeyArg> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => KeyArg::Null,
        1 => KeyArg::Unterminated,
        _ => KeyArg::Key(key(u)?),
    })
}

fn pids(u: &mut Unstructured) -> Result<Option<Vec<i32>>> {
    if u.arbitrary()? {
        return Ok(None);
    }
    let n = u.int_in_range(0usize..=40)?;
    Ok(Some(
        (0..n)
            .map(|_| u.arbitrary())
            .collect::<Result<Vec<i32>>>()?,
    ))
}

fn args(u: &mut Unstructured) -> Result<Args> {
    Ok(match u.int_in_range(0u8..=8)? {
        0 => Args::GetExportKey {
            dev_ptr: addr(u)?,
            size: size(u)?,
            key_buf: addr(u)?,
            len: u.arbitrary()?,
            flags: u.int_in_range(0u64..=3)?,
            key: if u.arbitrary()? { Some(key(u)?) } else { None },
        },
        1 => Args::SetImportPid {
            key: key_arg(u)?,
            pid_ptr: addr(u)?,
            pids: pids(u)?,
            num: u.int_in_range(0usize..=70)?,
        },
        2 => {
            let n = u.int_in_range(0usize..=70)?;
            let entries = if u.arbitrary()? {
                None
            } else {
                Some(
                    (0..n.min(8))
                        .map(|_| {
                            Ok(ServerEntry {
                                sdid: u.arbitrary()?,
                                pid_ptr: addr(u)?,
                                num: u.int_in_range(0usize..=40)?,
                                pids: pids(u)?,
                            })
                        })
                        .collect::<Result<Vec<_>>>()?,
                )
            };
            Args::ImportPidInterServer {
                key: key_arg(u)?,
                server_pids: addr(u)?,
                entries,
                num: n,
            }
        }
        3 => Args::ImportByKey {
            out_ptr: addr(u)?,
            key: key_arg(u)?,
            flags: u.int_in_range(0u64..=3)?,
        },
        4 => Args::SetAttr {
            key: key_arg(u)?,
            attr_type: u.int_in_range(0u32..=3)?,
            attr: u.arbitrary()?,
        },
        5 => Args::Close { key: key_arg(u)? },
        6 => Args::DeviceGetBareTgid { out_ptr: addr(u)? },
        7 => Args::Malloc {
            out_ptr: addr(u)?,
            size: size(u)?,
            policy: u.arbitrary()?,
        },
        _ => Args::Free { dev_ptr: addr(u)? },
    })
}

/// A process state built by a sequence of the updates the runtime makes.
fn state(u: &mut Unstructured) -> Result<ProcessState> {
    let s = ProcessState::new();
    for _ in 0..u.int_in_range(0u8..=24)? {
        match u.int_in_range(0u8..=7)? {
            0 => s.add_alloc(addr(u)?, size(u)?),
            1 => {
                s.remove_alloc(addr(u)?);
            }
            2 => {
                let k = key(u)?;
                let dev_ptr = addr(u)?;
                s.add_export_key(
                    k,
                    Export {
                        dev_ptr,
                        size: size(u)?,
                        flags: u.int_in_range(0u64..=2)?,
                        alloc_base: if u.arbitrary()? { Some(addr(u)?) } else { None },
                        whitelist: pids(u)?.unwrap_or_default(),
                        ledger_at: None,
                    },
                );
            }
            3 => {
                let fp = key(u)?.fp;
                s.add_whitelist(&fp, &pids(u)?.unwrap_or_default());
            }
            4 => {
                s.close_key(&key(u)?.fp);
            }
            5 => {
                let k = key(u)?;
                let a = addr(u)?;
                let sz = if u.arbitrary()? { Some(size(u)?) } else { None };
                s.add_import_key(k, a, sz);
            }
            6 => {
                s.close_import(&key(u)?.fp);
            }
            _ => {
                let _ = s.region_of(addr(u)?);
            }
        }
    }
    Ok(s)
}

fn facts(u: &mut Unstructured) -> Result<LedgerFacts> {
    Ok(match u.int_in_range(0u8..=2)? {
        0 => LedgerFacts::None,
        1 => LedgerFacts::Import(ImportFacts {
            exporter_pid: u.arbitrary()?,
            exporter_alive: u.arbitrary()?,
            whitelist_mode: u.arbitrary()?,
            exporter_closed: u.arbitrary()?,
            memory_freed: u.arbitrary()?,
            whitelisted_at_ns: u.arbitrary()?,
            own_pid_listed: u.arbitrary()?,
        }),
        _ => LedgerFacts::ExporterClose {
            open_importers: pids(u)?.unwrap_or_default(),
        },
    })
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let s = state(&mut u)?;
    let me = Identity {
        pid: u.arbitrary()?,
        bare_tgid: u.arbitrary()?,
        start_ns: u.arbitrary()?,
    };
    for _ in 0..u.int_in_range(1u8..=4)? {
        let a = args(&mut u)?;
        let l = facts(&mut u)?;
        let fp = a.key().and_then(KeyArg::fp);
        for f in check_before(&a, &s.view(fp.as_ref()), &me, &l) {
            assert!(!f.message.is_empty(), "{:?} without a message", f.rule);
        }
        let outcome = Outcome {
            ret: u.arbitrary()?,
            forwarded: u.arbitrary()?,
            out: Out {
                dev_ptr: u.arbitrary()?,
                pid: u.arbitrary()?,
            },
            dur_ns: u.arbitrary()?,
            untracked: u.arbitrary()?,
        };
        for f in check_after(&a, &outcome) {
            assert!(!f.message.is_empty(), "{:?} without a message", f.rule);
        }
        let _: Option<Fp> = a.key().and_then(|k| k.fp());
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
