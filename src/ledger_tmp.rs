#![allow(dead_code, unused)]
use std::path::Path;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fp(pub [u8; 8]);
#[derive(Clone, Copy, Debug)]
pub struct ProcId {
    pub pid: i32,
    pub bare_tgid: i32,
    pub start_ticks: u64,
}
#[derive(Debug)]
pub struct LedgerError;
impl std::fmt::Display for LedgerError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("tmp")
    }
}
pub struct ImportView {
    pub exporter: ProcId,
    pub exporter_alive: bool,
    pub whitelist_mode: bool,
    pub exporter_closed: bool,
    pub memory_freed: bool,
    pub whitelisted_at_ns: Option<u64>,
    pub size: Option<u64>,
}
pub enum CloseRole {
    Exporter,
    Importer,
    Unknown,
}
pub struct Ledger;
impl Ledger {
    pub fn open(dir: &Path, me: ProcId) -> Result<Ledger, LedgerError> {
        Err(LedgerError)
    }
    pub fn record_export(&self, fp: Fp, wl: bool, size: u64) -> Result<(), LedgerError> {
        Ok(())
    }
    pub fn record_whitelist(&self, fp: Fp, pids: &[i32], ns: u64) {}
    pub fn import_view(&self, fp: Fp) -> Option<ImportView> {
        None
    }
    pub fn record_import(&self, fp: Fp) {}
    pub fn record_close(&self, fp: Fp) -> CloseRole {
        CloseRole::Unknown
    }
    pub fn open_importers(&self, fp: Fp) -> Vec<ProcId> {
        vec![]
    }
    pub fn record_free(&self, fp: Fp) {}
    pub fn detach(&self) {}
    pub fn after_fork_child(&mut self) {}
}
pub fn start_ticks_of(pid: i32) -> Option<u64> {
    None
}
pub fn ticks_to_ns(t: u64) -> u64 {
    t * 10_000_000
}
pub fn now_boot_ns() -> u64 {
    0
}
