//! The `report` command's modules (log reader, analysis, rendering) as a library, so that
//! the fuzz targets in `fuzz/` can feed them arbitrary bytes. The `acl-ipc-guard` binary
//! compiles the same files as its own module and runs their unit tests there (they need
//! the binary's command line), so a test build of this library leaves the module out.

#[cfg(not(test))]
#[path = "report/mod.rs"]
pub mod report;
