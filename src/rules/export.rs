//! `aclrtIpcMemGetExportKey`.

use super::{Findings, Rule};
use crate::state::{Region, View};

/// The driver shares whole pages.
const PAGE: usize = 4096;

/// `aclrtIpcMemGetExportKey`: the arguments, and the range against the allocations this
/// process made.
pub(super) fn check(
    f: &mut Findings,
    state: &View,
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
    if !dev_ptr.is_multiple_of(PAGE) {
        f.add(
            Rule::ExportUnaligned,
            None,
            format!("devPtr {dev_ptr:#x} is not aligned to 4096"),
        );
    }
    match state.region_of(dev_ptr) {
        Region::Allocated { base, size: alloc } => {
            let end = dev_ptr.checked_add(size);
            // `dev_ptr` lies in the allocation, so `end - base` cannot wrap; `base + alloc`
            // could, for an allocation the runtime placed at the top of the address space.
            if end.is_none_or(|end| end - base > alloc) {
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
