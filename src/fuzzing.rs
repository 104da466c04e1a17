//! The ledger reader as the fuzz targets drive it: open whatever file lies at
//! `dir/ledger.v5` and run a few operations on it. Built with the `fuzzing` feature only.

use crate::key::Fp;
use crate::ledger::{Ledger, ProcId, DEFAULT_KEYS};
use std::path::Path;

/// Opens the ledger in `dir` (attaching this process) and, when that works, runs one
/// operation per byte of `ops` on keys named by the following bytes, then detaches.
/// The first error ends it, as the shim would turn cross-process rules off there.
pub fn open_ledger_file(dir: &Path, ops: &[u8]) -> Result<(), String> {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let me = ProcId {
        pid,
        bare_tgid: pid,
        ticket: 0,
    };
    let ledger = Ledger::open(dir, me, DEFAULT_KEYS).map_err(|e| e.to_string())?;
    let _ = ledger.capacity();
    for op in ops.chunks(2) {
        let fp = Fp([op.get(1).copied().unwrap_or(0); 8]);
        let r = match op[0] % 8 {
            0 => ledger.record_export(fp, op[0] & 8 == 0, 4096),
            1 => ledger.record_whitelist(fp, &[pid, pid + 1], 1),
            2 => ledger.import_view_recorded(fp).and_then(|v| match v {
                Some((_, r)) if op[0] & 8 != 0 => ledger.undo_import(r),
                _ => Ok(()),
            }),
            3 => ledger.export_size(fp).map(|_| ()),
            4 => ledger.record_import(fp).map(|_| ()),
            5 => ledger.record_close(fp).map(|_| ()),
            6 => ledger.open_importers(fp).map(|_| ()),
            _ => ledger.record_free(fp),
        };
        r.map_err(|e| e.to_string())?;
    }
    ledger.detach().map_err(|e| e.to_string())
}
