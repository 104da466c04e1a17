//! Ledger tests on real files in temporary directories, with threads and forked processes.
//!
//! Forked children only use the ledger (allocation-light, no locks shared with other test
//! threads) and report through their exit status; they never panic or print.

use super::file::RECOVERIES;
use super::format::Geometry;
use super::table::Tables;
use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::Instant;

/// Capacity of the test ledgers (the default, 65,536, is tested through the real preload).
const K: usize = 4096;

fn file_size() -> u64 {
    Geometry::new(K).file_size as u64
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("ledger");
    (t, d)
}

fn key(n: u64) -> Fp {
    Fp::of(&n.to_le_bytes())
}

fn getpid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() }
}

fn me() -> ProcId {
    ProcId::current(getpid())
}

/// Another process as the ledger sees it: another handle in this process, with its own
/// descriptor and so its own liveness lock (alive while the handle lives).
fn other_live(bare_tgid: i32) -> ProcId {
    // SAFETY: no preconditions.
    let pid = unsafe { libc::getppid() };
    ProcId {
        pid,
        bare_tgid,
        ticket: 0,
    }
}

/// Runs `f` in a forked child, which exits with its result.
fn fork(f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child only runs `f` and exits without unwinding into the test harness.
    match unsafe { libc::fork() } {
        0 => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
            unsafe { libc::_exit(code) }
        }
        pid => {
            assert!(pid > 0, "fork failed");
            pid
        }
    }
}

fn wait(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    }
}

struct Pipe {
    r: libc::c_int,
    w: libc::c_int,
}

impl Pipe {
    fn new() -> Pipe {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid out-array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        Pipe {
            r: fds[0],
            w: fds[1],
        }
    }

    fn put(&self) {
        // SAFETY: writes one byte from a valid buffer.
        unsafe { libc::write(self.w, b"x".as_ptr().cast(), 1) };
    }

    /// Reads `n` bytes (or until end of file).
    fn take(&self, n: usize) -> usize {
        let mut got = 0;
        let mut b = [0u8; 64];
        while got < n {
            // SAFETY: reads into a valid buffer.
            let r = unsafe { libc::read(self.r, b.as_mut_ptr().cast(), (n - got).min(64)) };
            if r <= 0 {
                break;
            }
            got += r as usize;
        }
        got
    }

    /// Lets `n` waiting children go. (Not by closing the pipe: children forked by other
    /// tests running at the same time hold copies of every descriptor.)
    fn release(&self, n: usize) {
        for _ in 0..n {
            self.put();
        }
    }

    /// In a child: waits for `release`.
    fn wait_release(&self) {
        self.take(1);
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // SAFETY: our descriptors.
        unsafe {
            libc::close(self.r);
            libc::close(self.w);
        }
    }
}

fn pids_of(o: &OpenImporters) -> Vec<i32> {
    let mut v: Vec<i32> = o.procs.iter().map(|p| p.pid).collect();
    v.sort_unstable();
    v
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn threads_racing_to_create_share_one_file() {
    let (_t, dir) = tmp();
    let n = 16;
    let barrier = Arc::new(Barrier::new(n));
    let ids: Vec<(u64, u64)> = (0..n)
        .map(|_| {
            let (b, d) = (barrier.clone(), dir.clone());
            std::thread::spawn(move || {
                b.wait();
                Ledger::open(&d, me(), K).unwrap().file_id()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]));
    assert_eq!(
        entries(&dir),
        vec![FILE_NAME.to_string()],
        "no temporary file left"
    );
    let dmeta = std::fs::metadata(&dir).unwrap();
    assert_eq!(dmeta.permissions().mode() & 0o777, 0o700);
    let fmeta = std::fs::metadata(dir.join(FILE_NAME)).unwrap();
    assert_eq!(fmeta.permissions().mode() & 0o777, 0o600);
    assert_eq!(fmeta.len(), file_size());
    assert!(
        fmeta.blocks() * 512 < 2 << 20,
        "only the tables and the first slots have space: {} bytes",
        fmeta.blocks() * 512
    );
}

#[test]
fn processes_racing_to_create_share_one_file() {
    let (_t, dir) = tmp();
    let go = Pipe::new();
    let children: Vec<i32> = (0..6)
        .map(|_| {
            let d = dir.clone();
            let go = &go;
            fork(move || {
                go.wait_release();
                let Ok(l) = Ledger::open(&d, me(), K) else {
                    return 1;
                };
                if l.record_export(key(getpid() as u64), false, 4096).is_err() {
                    return 2;
                }
                0
            })
        })
        .collect();
    go.release(children.len());
    for &c in &children {
        assert_eq!(wait(c), 0);
    }
    let l = Ledger::open(&dir, me(), K).unwrap();
    for &c in &children {
        let v = l.import_view(key(c as u64)).unwrap().expect("child's key");
        assert_eq!(v.exporter.pid, c);
        assert!(!v.exporter_alive);
    }
    assert_eq!(entries(&dir), vec![FILE_NAME.to_string()]);
}

#[test]
fn export_whitelist_import_close_flow() {
    let (_t, dir) = tmp();
    let exp = Ledger::open(&dir, me(), K).unwrap();
    let imp = Ledger::open(&dir, other_live(4242), K).unwrap();
    let k = key(1);
    assert_eq!(imp.import_view(k).unwrap(), None);
    exp.record_export(k, true, 4096).unwrap();
    let t0 = now_boot_ns();
    exp.record_whitelist(k, &[0, -3, 4242], t0).unwrap();
    exp.record_whitelist(k, &[4242, 77], t0 + 500).unwrap();

    let v = imp.import_view(k).unwrap().unwrap();
    assert_eq!(v.exporter, exp.me());
    assert_eq!(v.size, Some(4096));
    assert_eq!(imp.export_size(k).unwrap(), Some(4096));
    assert_eq!(imp.export_size(key(2)).unwrap(), None);
    assert!(v.exporter_alive && v.whitelist_mode && !v.exporter_closed && !v.memory_freed);
    assert_eq!(v.whitelisted_at_ns, Some(t0), "the earliest time");
    assert!(!v.whitelist_overflow);

    // A process that is not on the list.
    let stranger = Ledger::open(
        &dir,
        ProcId {
            bare_tgid: 9999,
            ..me()
        },
        K,
    )
    .unwrap();
    assert_eq!(
        stranger.import_view(k).unwrap().unwrap().whitelisted_at_ns,
        None
    );

    imp.record_import(k).unwrap();
    imp.record_import(k).unwrap();
    let open = exp.open_importers(k).unwrap();
    assert_eq!(open.procs, vec![imp.me()], "one entry per process");
    assert_eq!(open.untracked, 0);
    assert_eq!(imp.record_close(k).unwrap(), CloseRole::Importer);
    assert_eq!(imp.record_close(k).unwrap(), CloseRole::Unknown);
    assert!(exp.open_importers(k).unwrap().procs.is_empty());
    assert_eq!(exp.record_close(k).unwrap(), CloseRole::Exporter);
    assert_eq!(exp.record_close(k).unwrap(), CloseRole::Unknown);
    exp.record_free(k).unwrap();

    let v = imp.import_view(k).unwrap().unwrap();
    assert!(
        v.exporter_closed && v.memory_freed,
        "a finished key is remembered"
    );

    // The same key exported again starts afresh.
    exp.record_export(k, false, 0).unwrap();
    assert_eq!(imp.export_size(k).unwrap(), None, "size 0 is unknown");
    let v = imp.import_view(k).unwrap().unwrap();
    assert!(!v.exporter_closed && !v.memory_freed && !v.whitelist_mode);
    assert_eq!(v.whitelisted_at_ns, None);

    // Unknown keys.
    assert_eq!(imp.record_close(key(2)).unwrap(), CloseRole::Unknown);
    imp.record_import(key(2)).unwrap();
    exp.record_whitelist(key(2), &[1], 1).unwrap();
    exp.record_free(key(2)).unwrap();
    assert_eq!(exp.import_view(key(2)).unwrap(), None);
    assert_eq!(
        exp.open_importers(key(2)).unwrap(),
        OpenImporters::default()
    );
}

#[test]
fn an_import_recorded_with_its_view_and_taken_back_leaves_the_key_as_it_was() {
    let (_t, dir) = tmp();
    let exp = Ledger::open(&dir, me(), K).unwrap();
    let imp = Ledger::open(&dir, other_live(4242), K).unwrap();
    let k = key(7);
    assert!(
        imp.import_view_recorded(k).unwrap().is_none(),
        "unknown key"
    );
    let at = exp.record_export_at(k, true, 4096).unwrap();
    exp.record_whitelist(k, &[4242], 5).unwrap();

    // The view is read before the import is recorded: the same as `import_view`'s.
    let plain = imp.import_view(k).unwrap().unwrap();
    let (v, r) = imp.import_view_recorded(k).unwrap().unwrap();
    assert_eq!(v, plain);
    assert_eq!(exp.open_importers(k).unwrap().procs, vec![imp.me()]);
    assert!(!exp.no_importer_yet(k, at));
    // A first import taken back: no importer ever, as before it.
    imp.undo_import(r).unwrap();
    assert!(exp.open_importers(k).unwrap().procs.is_empty());
    assert!(exp.no_importer_yet(k, at), "the entry left the chain");
    assert_eq!(exp.with_data(|d| d.slot(&k).unwrap().imp_len), 0);

    // An import that is open stays open when a second one is taken back.
    imp.record_import(k).unwrap();
    let (_, r) = imp.import_view_recorded(k).unwrap().unwrap();
    imp.undo_import(r).unwrap();
    assert_eq!(exp.open_importers(k).unwrap().procs, vec![imp.me()]);
    // An import closed before stays closed.
    assert_eq!(imp.record_close(k).unwrap(), CloseRole::Importer);
    let (_, r) = imp.import_view_recorded(k).unwrap().unwrap();
    assert_eq!(exp.open_importers(k).unwrap().procs, vec![imp.me()]);
    imp.undo_import(r).unwrap();
    assert!(exp.open_importers(k).unwrap().procs.is_empty());
    assert_eq!(imp.record_close(k).unwrap(), CloseRole::Unknown);

    // A finished key finishes again.
    assert_eq!(exp.record_close(k).unwrap(), CloseRole::Exporter);
    assert!(exp.with_data(|d| d.slot(&k).unwrap().finished == 1));
    let (v, r) = imp.import_view_recorded(k).unwrap().unwrap();
    assert!(v.exporter_closed);
    assert!(exp.with_data(|d| d.slot(&k).unwrap().finished == 0));
    imp.undo_import(r).unwrap();
    assert!(exp.with_data(|d| d.slot(&k).unwrap().finished == 1));

    // Exported afresh meanwhile: the fresh export's entries are not touched.
    let (_, r) = imp.import_view_recorded(k).unwrap().unwrap();
    let at = exp.record_export_at(k, false, 64).unwrap();
    let other = Ledger::open(&dir, other_live(5), K).unwrap();
    other.record_import(k).unwrap();
    imp.undo_import(r).unwrap();
    assert_eq!(exp.open_importers(k).unwrap().procs, vec![other.me()]);
    assert!(!exp.no_importer_yet(k, at));
}

#[test]
fn an_import_taken_back_leaves_other_importers_chained() {
    let (_t, dir) = tmp();
    let exp = Ledger::open(&dir, me(), K).unwrap();
    let a = Ledger::open(&dir, other_live(1), K).unwrap();
    let b = Ledger::open(&dir, other_live(2), K).unwrap();
    let c = Ledger::open(&dir, other_live(3), K).unwrap();
    let k = key(8);
    exp.record_export(k, false, 0).unwrap();
    a.record_import(k).unwrap();
    // b's entry lands between a's and c's in the chain; taking it back relinks them.
    let (_, r) = b.import_view_recorded(k).unwrap().unwrap();
    c.record_import(k).unwrap();
    b.undo_import(r).unwrap();
    let mut open = exp.open_importers(k).unwrap().procs;
    open.sort_by_key(|p| p.bare_tgid);
    assert_eq!(open, vec![a.me(), c.me()]);
    assert_eq!(exp.with_data(|d| d.slot(&k).unwrap().imp_len), 2);
    assert_eq!(a.record_close(k).unwrap(), CloseRole::Importer);
    assert_eq!(c.record_close(k).unwrap(), CloseRole::Importer);
    assert!(exp.open_importers(k).unwrap().procs.is_empty());
}

#[test]
fn exporter_closing_first_sees_the_open_importer() {
    let (_t, dir) = tmp();
    let exp = Ledger::open(&dir, me(), K).unwrap();
    let imp = Ledger::open(&dir, other_live(0), K).unwrap();
    let k = key(10);
    exp.record_export(k, false, 4096).unwrap();
    imp.record_import(k).unwrap();
    assert_eq!(pids_of(&exp.open_importers(k).unwrap()), vec![imp.me().pid]);
    // The exporter closes anyway; the importer closes later.
    assert_eq!(exp.record_close(k).unwrap(), CloseRole::Exporter);
    let v = imp.import_view(k).unwrap().unwrap();
    assert!(v.exporter_closed);
    assert_eq!(imp.record_close(k).unwrap(), CloseRole::Importer);
    assert!(exp.with_data(|d| d.slot(&k).unwrap().finished == 1));
}

/// `no_importer_yet` says "none" without the lock only while no importer was ever
/// recorded for the key, nor dropped for want of room, and only in the file the export
/// was recorded in; `open_importers` then says "none" too.
#[test]
fn no_importer_yet_only_before_any_importer_came() {
    let (_t, dir) = tmp();
    let exp = Ledger::open(&dir, me(), K).unwrap();
    let imp = Ledger::open(&dir, other_live(0), K).unwrap();
    let (a, b, c) = (key(20), key(21), key(22));
    let at_a = exp.record_export_at(a, false, 4096).unwrap();
    let at_b = exp.record_export_at(b, true, 4096).unwrap();
    let at_c = exp.record_export_at(c, false, 4096).unwrap();
    assert!(exp.no_importer_yet(a, at_a) && exp.no_importer_yet(b, at_b));
    assert!(exp.open_importers(a).unwrap().procs.is_empty());
    assert!(!exp.no_importer_yet(b, at_a), "another key's place");

    imp.record_import(a).unwrap();
    assert!(!exp.no_importer_yet(a, at_a));
    assert!(exp.no_importer_yet(b, at_b), "only the imported key");
    assert_eq!(imp.record_close(a).unwrap(), CloseRole::Importer);
    assert!(
        !exp.no_importer_yet(a, at_a),
        "an importer came once: the lock is asked"
    );

    // An importer the ledger had no room for.
    exp.with_data(|d| d.slot_mut(&c).unwrap().imp_dropped = 1);
    assert!(!exp.no_importer_yet(c, at_c));

    // A place in another file (the first was removed and a fresh one made) says nothing.
    let (_t2, dir2) = tmp();
    let other = Ledger::open(&dir2, me(), K).unwrap();
    let at_other = other.record_export_at(b, false, 4096).unwrap();
    assert!(other.no_importer_yet(b, at_other));
    assert!(!exp.no_importer_yet(b, at_other));
}

#[test]
fn importer_killed_with_sigkill_is_not_open() {
    let (_t, dir) = tmp();
    let exp = Ledger::open(&dir, me(), K).unwrap();
    let k = key(20);
    exp.record_export(k, false, 4096).unwrap();
    let ready = Pipe::new();
    let child = fork(|| {
        if exp.after_fork_child(me()).is_err() || exp.record_import(k).is_err() {
            return 1;
        }
        ready.put();
        loop {
            // SAFETY: waits for the signal that kills us.
            unsafe { libc::pause() };
        }
    });
    assert_eq!(ready.take(1), 1);
    assert_eq!(pids_of(&exp.open_importers(k).unwrap()), vec![child]);
    // SAFETY: our own child.
    unsafe { libc::kill(child, libc::SIGKILL) };
    // Not reaped yet: a zombie is not alive either.
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(exp.open_importers(k).unwrap().procs.is_empty());
    assert_eq!(wait(child), -libc::SIGKILL);
    assert!(exp.open_importers(k).unwrap().procs.is_empty());
    assert_eq!(exp.record_close(k).unwrap(), CloseRole::Exporter);
}

#[test]
fn processes_are_told_apart_by_ticket_not_pid() {
    // Two processes of two pid namespaces, both pid 1 there, one bare tgid each.
    let (_t, dir) = tmp();
    let ns_pid = |bare_tgid| ProcId {
        pid: 1,
        bare_tgid,
        ticket: 0,
    };
    let exp = Ledger::open(&dir, ns_pid(5001), K).unwrap();
    let imp_a = Ledger::open(&dir, ns_pid(5002), K).unwrap();
    let imp_b = Ledger::open(&dir, ns_pid(5003), K).unwrap();
    assert_ne!(imp_a.me().ticket, imp_b.me().ticket);
    let k = key(30);
    exp.record_export(k, true, 4096).unwrap();
    exp.record_whitelist(k, &[5002], 1).unwrap();
    assert_eq!(
        imp_a.import_view(k).unwrap().unwrap().whitelisted_at_ns,
        Some(1)
    );
    assert_eq!(
        imp_b.import_view(k).unwrap().unwrap().whitelisted_at_ns,
        None
    );
    imp_a.record_import(k).unwrap();
    imp_b.record_import(k).unwrap();
    let open: Vec<i32> = exp
        .open_importers(k)
        .unwrap()
        .procs
        .iter()
        .map(ProcId::host_pid)
        .collect();
    assert_eq!(open.len(), 2);
    assert!(open.contains(&5002) && open.contains(&5003));
    // One closes: the other, with the same pid, is still open.
    assert_eq!(imp_a.record_close(k).unwrap(), CloseRole::Importer);
    assert_eq!(
        exp.open_importers(k).unwrap().procs,
        vec![imp_b.me()],
        "the same pid, another process"
    );
    // One dies (its descriptor, and so its lock, goes away): it is gone, whatever pid 1
    // means in this namespace.
    drop(imp_b);
    assert!(exp.open_importers(k).unwrap().procs.is_empty());
    // And an exporter that died is seen as gone by an importer.
    let other = Ledger::open(&dir, ns_pid(5004), K).unwrap();
    other.record_export(key(31), false, 4096).unwrap();
    assert!(imp_a.import_view(key(31)).unwrap().unwrap().exporter_alive);
    drop(other);
    assert!(!imp_a.import_view(key(31)).unwrap().unwrap().exporter_alive);
    // Its attach entry is taken over by the next process, with a new ticket.
    let next = Ledger::open(&dir, ns_pid(5005), K).unwrap();
    assert!(!imp_a.import_view(key(31)).unwrap().unwrap().exporter_alive);
    assert!(next.me().ticket > imp_a.me().ticket);
}

#[test]
fn eight_processes_export_import_and_close_concurrently() {
    const KIDS: usize = 8;
    const OWN: u64 = 120;
    const SHARED: u64 = 64;
    let (_t, dir) = tmp();
    let l = Ledger::open(&dir, me(), K).unwrap();
    let parent = l.me();
    let shared = |j: u64| key(1_000_000 + j);
    let own = |i: usize, j: u64| key(((i as u64 + 1) << 32) | j);
    for j in 0..SHARED {
        l.record_export(shared(j), false, 4096).unwrap();
    }
    let ready = Pipe::new();
    let go = Pipe::new();
    let kids: Vec<i32> = (0..KIDS)
        .map(|i| {
            let (l, ready, go) = (&l, &ready, &go);
            fork(move || {
                if l.after_fork_child(me()).is_err() {
                    return 1;
                }
                let t = now_boot_ns();
                for j in 0..OWN {
                    let k = own(i, j);
                    if l.record_export(k, true, 4096).is_err()
                        || l.record_whitelist(k, &[getpid() + 1], t).is_err()
                    {
                        return 2;
                    }
                    if j % 2 == 0 && l.record_close(k) != Ok(CloseRole::Exporter) {
                        return 3;
                    }
                }
                for j in 0..SHARED {
                    let k = shared(j);
                    match l.import_view(k) {
                        Ok(Some(v)) if v.exporter.pid == parent.pid && v.exporter_alive => {}
                        _ => return 4,
                    }
                    if l.record_import(k).is_err() {
                        return 5;
                    }
                    if (i as u64 + j).is_multiple_of(2)
                        && l.record_close(k) != Ok(CloseRole::Importer)
                    {
                        return 6;
                    }
                }
                ready.put();
                go.wait_release();
                0
            })
        })
        .collect();
    assert_eq!(ready.take(KIDS), KIDS);
    for j in 0..SHARED {
        let mut want: Vec<i32> = (0..KIDS)
            .filter(|&i| (i as u64 + j) % 2 == 1)
            .map(|i| kids[i])
            .collect();
        want.sort_unstable();
        assert_eq!(
            pids_of(&l.open_importers(shared(j)).unwrap()),
            want,
            "shared key {j}"
        );
    }
    for (i, &kid) in kids.iter().enumerate() {
        for j in 0..OWN {
            let v = l.import_view(own(i, j)).unwrap().expect("child key");
            assert_eq!(v.exporter.pid, kid);
            assert!(v.exporter_alive && v.whitelist_mode);
            assert_eq!(v.exporter_closed, j % 2 == 0);
            assert_eq!(v.whitelisted_at_ns, None, "only kid+1 was whitelisted");
        }
    }
    l.with_data(|d: &mut Tables| {
        assert_eq!(d.c.used as usize, SHARED as usize + KIDS * OWN as usize);
        assert_eq!(
            d.index.iter().filter(|e| e.body != 0).count(),
            d.c.used as usize
        );
        assert_eq!(d.attached().count(), 1 + KIDS);
    });
    go.release(KIDS);
    for &k in &kids {
        assert_eq!(wait(k), 0);
    }
    for j in 0..SHARED {
        assert!(
            l.open_importers(shared(j)).unwrap().procs.is_empty(),
            "all exited"
        );
    }
    assert!(!l.import_view(own(0, 1)).unwrap().unwrap().exporter_alive);
}

#[test]
fn a_damaged_table_is_called_damaged_not_full() {
    let (_t, dir) = tmp();
    let l = Ledger::open(&dir, me(), K).unwrap();
    l.record_export(key(1), false, 4096).unwrap();
    // Garbage over the index: every position names a slot, so no key has a place.
    l.with_data(|d| {
        for (i, e) in d.index.iter_mut().enumerate() {
            e.fp = (i as u64 * 7 + 3).to_le_bytes();
            e.body = (i % K) as u32 + 1;
        }
    });
    let err = l.record_export(key(2), false, 4096).unwrap_err();
    assert!(matches!(err, LedgerError::Damaged { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("damaged (the index names") && !text.contains("full"),
        "{text}"
    );
    assert!(
        text.contains(&dir.join(FILE_NAME).display().to_string()),
        "{text}"
    );
    // A process opening it now is told at once.
    let late = Ledger::open(&dir, other_live(0), K)
        .err()
        .expect("a damaged file is refused");
    assert!(matches!(late, LedgerError::Damaged { .. }), "{late}");
}

#[test]
fn counters_out_of_bounds_are_damage_on_every_lock() {
    let (_t, dir) = tmp();
    let l = Ledger::open(&dir, me(), K).unwrap();
    l.record_export(key(1), false, 4096).unwrap();
    l.with_data(|d| d.c.ring_head = K as u32);
    let err = l.record_close(key(1)).unwrap_err();
    assert!(
        err.to_string()
            .contains("counter ring_head is 4096, above its bound 4095"),
        "{err}"
    );
    assert!(matches!(
        Ledger::open(&dir, other_live(0), K),
        Err(LedgerError::Damaged { .. })
    ));
}

#[test]
fn a_full_table_refuses_then_makes_room() {
    let (_t, dir) = tmp();
    let l = Ledger::open(&dir, me(), K).unwrap();
    for n in 0..K as u64 {
        l.record_export(key(n), false, 4096).unwrap();
    }
    let err = l.record_export(key(u64::MAX), false, 4096).unwrap_err();
    assert!(matches!(err, LedgerError::TableFull { .. }));
    assert!(err.to_string().contains("full (4096 keys in use"), "{err}");
    let blocks = std::fs::metadata(dir.join(FILE_NAME)).unwrap().blocks() * 512;
    assert!(
        blocks >= file_size() - (super::format::POOL_PER_KEY * 32 * K) as u64 - 4096,
        "space allocated as it grew: {blocks}"
    );
    // A finished key makes room.
    assert_eq!(l.record_close(key(7)).unwrap(), CloseRole::Exporter);
    l.record_export(key(u64::MAX), false, 4096).unwrap();
    assert_eq!(l.import_view(key(7)).unwrap(), None);

    // Keys of processes that died make room too.
    let (_t2, dir2) = tmp();
    let gone = Ledger::open(&dir2, me(), K).unwrap();
    for n in 0..K as u64 {
        gone.record_export(key(n), false, 4096).unwrap();
    }
    drop(gone); // its process "dies": the descriptor holding its lock closes
    let l2 = Ledger::open(&dir2, me(), K).unwrap();
    l2.record_export(key(u64::MAX), false, 4096).unwrap();
    l2.with_data(|d| {
        assert_eq!(d.c.used, 1, "every key of the dead exporter was collected");
        assert_eq!(d.attached().count(), 1, "and its attach entry");
    });
}

#[test]
fn a_holder_dying_with_the_lock_is_recovered_from() {
    let (_t, dir) = tmp();
    let l = Ledger::open(&dir, me(), K).unwrap();
    for n in 0..100 {
        l.record_export(key(n), false, 4096).unwrap();
    }
    let before = RECOVERIES.load(Ordering::Relaxed);
    let child = fork(|| {
        if l.after_fork_child(me()).is_err() {
            return 1;
        }
        // Die half-way through an update: an index entry copied but not yet cleared, and
        // a slot taken off the free list but not yet used.
        l.lock_and_forget(|d| {
            let (pos, _) = d.find(&key(5).0).unwrap();
            let spare = (0..d.index.len()).find(|&p| d.index[p].body == 0).unwrap();
            d.index[spare] = d.index[pos];
            d.c.next_fresh += 1;
        });
        0
    });
    assert_eq!(wait(child), 0);
    // The next locker gets EOWNERDEAD, repairs and carries on.
    l.record_export(key(1000), false, 4096).unwrap();
    assert_eq!(RECOVERIES.load(Ordering::Relaxed), before + 1);
    l.with_data(|d| {
        assert_eq!(d.c.used, 101);
        assert_eq!(d.index.iter().filter(|e| e.body != 0).count(), 101);
    });
    for n in (0..100).chain([1000]) {
        assert!(l.import_view(key(n)).unwrap().is_some(), "key {n}");
    }
    assert_eq!(l.record_close(key(5)).unwrap(), CloseRole::Exporter);
    // The lock works normally again, also from other threads.
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let l = &l;
            s.spawn(move || {
                for n in 0..200 {
                    l.record_export(key(10_000 + t * 1000 + n), false, 4096)
                        .unwrap();
                }
            });
        }
    });
    l.with_data(|d| assert_eq!(d.c.used, 901));
}

#[test]
fn directories_that_are_not_private_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path();

    let real = base.join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = base.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = Ledger::open(&link, me(), K).err().unwrap();
    assert!(matches!(e, LedgerError::Insecure { .. }), "{e}");
    assert!(e.to_string().contains("symbolic link"), "{e}");

    // What mkdir leaves (0755, 0750) is fine: the file inside is private.
    for mode in [0o755, 0o750, 0o700] {
        let made = base.join(format!("made{mode:o}"));
        std::fs::create_dir(&made).unwrap();
        std::fs::set_permissions(&made, std::fs::Permissions::from_mode(mode)).unwrap();
        let l = Ledger::open(&made, me(), K).unwrap();
        l.record_export(key(1), false, 4096).unwrap();
        let fm = std::fs::metadata(made.join(FILE_NAME)).unwrap();
        assert_eq!(fm.permissions().mode() & 0o777, 0o600);
    }
    // Writable by group or others: someone else could swap the file.
    for mode in [0o775, 0o757, 0o777, 0o1777] {
        let open = base.join(format!("open{mode:o}"));
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = Ledger::open(&open, me(), K).err().unwrap();
        assert!(matches!(e, LedgerError::Insecure { .. }), "{e}");
        assert!(e.to_string().contains(&format!("mode {mode:04o}")), "{e}");
        assert!(e.to_string().contains("chmod go-w"), "{e}");
        assert!(e.to_string().contains(&open.display().to_string()), "{e}");
    }

    let file = base.join("file");
    std::fs::write(&file, b"").unwrap();
    let e = Ledger::open(&file, me(), K).err().unwrap();
    assert!(e.to_string().contains("not a directory"), "{e}");

    let orphan = base.join("missing/ledger");
    let e = Ledger::open(&orphan, me(), K).err().unwrap();
    assert!(
        matches!(
            e,
            LedgerError::Io {
                errno: libc::ENOENT,
                ..
            }
        ),
        "parent must exist: {e}"
    );
    assert!(e.to_string().contains("os error 2"), "{e}");

    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let theirs = base.join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(12345), None).unwrap();
        let e = Ledger::open(&theirs, me(), K).err().unwrap();
        assert!(e.to_string().contains("owned by uid 12345"), "{e}");
    }

    // The file itself: a symbolic link, or another layout.
    let ok = base.join("ok");
    std::fs::create_dir(&ok).unwrap();
    std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&file, ok.join(FILE_NAME)).unwrap();
    let e = Ledger::open(&ok, me(), K).err().unwrap();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    std::fs::remove_file(ok.join(FILE_NAME)).unwrap();
    let f = ok.join(FILE_NAME);
    std::fs::write(&f, vec![0u8; 4096]).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = Ledger::open(&ok, me(), K).err().unwrap();
    assert!(matches!(e, LedgerError::Incompatible { .. }), "{e}");
    let fd = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
    fd.set_len(file_size()).unwrap();
    let e = Ledger::open(&ok, me(), K).err().unwrap();
    assert!(e.to_string().contains("header"), "{e}");

    // A missing directory is created private.
    let fresh = base.join("fresh");
    Ledger::open(&fresh, me(), K).unwrap();
    let m = std::fs::metadata(&fresh).unwrap().permissions().mode();
    assert_eq!(m & 0o777, 0o700);
}

#[test]
fn the_last_detach_removes_the_file_and_users_reopen() {
    let (_t, dir) = tmp();
    let file = dir.join(FILE_NAME);
    let a = Ledger::open(&dir, me(), K).unwrap();
    let b = Ledger::open(&dir, other_live(0), K).unwrap();
    let old = a.file_id();
    a.record_export(key(1), false, 4096).unwrap();
    assert_eq!(a.record_close(key(1)).unwrap(), CloseRole::Exporter);
    a.detach().unwrap();
    assert!(file.exists(), "b is attached and alive");

    // A key with a live importer keeps the file too.
    a.record_export(key(2), false, 4096).unwrap();
    b.record_import(key(2)).unwrap();
    b.detach().unwrap();
    assert!(file.exists(), "b still imports key 2");
    assert_eq!(b.record_close(key(2)).unwrap(), CloseRole::Importer);
    b.detach().unwrap();
    assert!(file.exists(), "a still exports key 2");
    assert_eq!(a.record_close(key(2)).unwrap(), CloseRole::Exporter);
    // a used the ledger after detaching, so it attached again; b detached last.
    b.detach().unwrap();
    assert!(file.exists(), "a is attached again");
    a.detach().unwrap();
    assert!(!file.exists(), "nobody alive uses it");
    a.with_data(|d| {
        // `with_data` reopened a fresh file.
        assert_eq!(d.c.used, 0);
    });
    assert!(file.exists());
    assert_ne!(a.file_id(), old);
    a.record_export(key(3), false, 4096).unwrap();
    let v = b
        .import_view(key(3))
        .unwrap()
        .expect("b reopened the same new file");
    assert_eq!(v.exporter, a.me());
    assert_eq!(a.file_id(), b.file_id());
    assert_eq!(entries(&dir), vec![FILE_NAME.to_string()]);
}

#[test]
fn detach_ignores_dead_processes() {
    let (_t, dir) = tmp();
    // A process that died attached, its keys all closed, does not keep the file.
    let gone = Ledger::open(&dir, me(), K).unwrap();
    gone.record_export(key(1), false, 4096).unwrap();
    gone.record_close(key(1)).unwrap();
    drop(gone);
    let l = Ledger::open(&dir, me(), K).unwrap();
    l.record_export(key(2), false, 4096).unwrap();
    l.record_close(key(2)).unwrap();
    l.detach().unwrap();
    assert!(!dir.join(FILE_NAME).exists());
}

#[test]
fn a_key_left_open_by_an_earlier_exit_keeps_the_file_whoever_exits_last() {
    for crashed in [false, true] {
        let (_t, dir) = tmp();
        let leaker = Ledger::open(&dir, me(), K).unwrap();
        leaker.record_export(key(5), false, 4096).unwrap();
        if !crashed {
            leaker.detach().unwrap();
        }
        drop(leaker);
        let clean = Ledger::open(&dir, me(), K).unwrap();
        clean.record_export(key(6), false, 4096).unwrap();
        clean.record_close(key(6)).unwrap();
        clean.detach().unwrap();
        assert!(
            dir.join(FILE_NAME).exists(),
            "crashed={crashed}: the key left open is still known to a late importer"
        );
        let late = Ledger::open(&dir, me(), K).unwrap();
        let v = late.import_view(key(5)).unwrap().expect("the key is known");
        assert!(!v.exporter_alive, "crashed={crashed}: its exporter is gone");
    }
}

#[test]
fn a_key_left_open_keeps_the_file_for_late_importers() {
    let (_t, dir) = tmp();
    let l = Ledger::open(&dir, me(), K).unwrap();
    l.record_export(key(3), false, 4096).unwrap();
    l.detach().unwrap();
    assert!(
        dir.join(FILE_NAME).exists(),
        "the leaked key is still known"
    );
}

#[test]
fn a_forked_child_acts_as_itself() {
    let (_t, dir) = tmp();
    let l = Ledger::open(&dir, me(), K).unwrap();
    let k = key(40);
    l.record_export(k, false, 4096).unwrap();
    let ready = Pipe::new();
    let go = Pipe::new();
    let child = fork(|| {
        if l.after_fork_child(ProcId::current(getpid() + 100_000))
            .is_err()
        {
            return 1;
        }
        if l.me().pid != getpid() || l.me().bare_tgid != getpid() + 100_000 {
            return 2;
        }
        if l.record_close(k) != Ok(CloseRole::Unknown) {
            return 3; // the parent's export is not the child's to close
        }
        if l.record_import(k).is_err() {
            return 4;
        }
        ready.put();
        go.wait_release();
        0
    });
    assert_eq!(ready.take(1), 1);
    let open = l.open_importers(k).unwrap();
    assert_eq!(pids_of(&open), vec![child]);
    assert_eq!(open.procs[0].bare_tgid, child + 100_000);
    l.with_data(|d| {
        let pids: Vec<i32> = d.attached().map(|w| w.pid).collect();
        assert!(pids.contains(&child) && pids.contains(&getpid()));
        assert_eq!(d.slot(&k).unwrap().exporter_closed, 0);
    });
    go.release(1);
    assert_eq!(wait(child), 0);
    assert_eq!(l.record_close(k).unwrap(), CloseRole::Exporter);
}

#[test]
fn locking_again_from_the_same_thread_fails_at_once() {
    let (_t, dir) = tmp();
    let l = Ledger::open(&dir, me(), K).unwrap();
    l.record_export(key(1), false, 4096).unwrap();
    let t = Instant::now();
    let inner = l.with_data(|_| l.record_free(key(1)));
    assert!(
        matches!(
            inner,
            Err(LedgerError::Lock {
                errno: libc::EDEADLK,
                ..
            })
        ),
        "{inner:?}"
    );
    assert!(t.elapsed() < std::time::Duration::from_millis(500));
    l.record_free(key(1)).unwrap();
}

#[test]
fn errors_name_the_path_and_errno() {
    let e = LedgerError::Io {
        path: PathBuf::from("/dev/shm/x"),
        op: "create the directory",
        errno: libc::EACCES,
    };
    assert_eq!(
        e.to_string(),
        "ledger /dev/shm/x: cannot create the directory: Permission denied (os error 13)"
    );
    let e = LedgerError::Lock {
        path: PathBuf::from("/d/ledger.v1"),
        errno: libc::ETIMEDOUT,
    };
    assert!(e.to_string().contains("/d/ledger.v1") && e.to_string().contains("os error 110"));
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn ledger_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Ledger>();
}

/// Not an assertion on time: prints what the hot paths cost (run with --release and
/// --nocapture for meaningful numbers).
#[test]
fn bench_hot_paths() {
    let (_t, dir) = tmp();
    let l = Ledger::open(&dir, me(), K).unwrap();
    let n = 200_000u64;
    let t = Instant::now();
    for i in 0..n {
        l.record_export(key(i), true, 4096).unwrap();
        l.record_close(key(i)).unwrap();
    }
    let pair = t.elapsed().as_nanos() as f64 / n as f64;
    let k = key(u64::MAX);
    l.record_export(k, true, 4096).unwrap();
    let t = Instant::now();
    for i in 0..n {
        l.record_whitelist(k, &[(i % 31) as i32 + 1], i).unwrap();
    }
    let wl = t.elapsed().as_nanos() as f64 / n as f64;
    let imp = Ledger::open(&dir, other_live(0), K).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        imp.record_import(k).unwrap();
        imp.record_close(k).unwrap();
    }
    let ic = t.elapsed().as_nanos() as f64 / n as f64;
    let m = 20_000u64;
    let t = Instant::now();
    for _ in 0..m {
        assert!(l.open_importers(k).unwrap().procs.is_empty());
    }
    let oi = t.elapsed().as_nanos() as f64 / m as f64;
    let t = Instant::now();
    for _ in 0..m {
        l.import_view(k).unwrap().unwrap();
    }
    let iv = t.elapsed().as_nanos() as f64 / m as f64;
    println!(
        "ledger: export+close {pair:.0} ns/pair, import+close {ic:.0} ns/pair, whitelist {wl:.0} ns, \
         open_importers (none open) {oi:.0} ns, import_view {iv:.0} ns"
    );
}

#[test]
fn a_retired_file_left_linked_is_replaced() {
    let (_t, dir) = tmp();
    let l = Ledger::open(&dir, me(), K).unwrap();
    l.record_export(key(7), false, 4096).unwrap();
    // What a failed unlink, or a corrupt word, leaves: retired, but still under the name.
    l.map().lock().unwrap().data().c.retired = 2;
    drop(l);
    let fresh = Ledger::open(&dir, me(), K).expect("a retired file does not block the next job");
    fresh.record_export(key(8), false, 4096).unwrap();
    assert!(fresh.import_view(key(8)).unwrap().is_some());
}

#[test]
fn liveness_word_follows_its_holder_thread() {
    let (_t, dir) = tmp();
    let in_thread = dir.clone();
    // Opened (its word taken) by a thread that then exits: the kernel releases the word.
    let exp = std::thread::spawn(move || Ledger::open(&in_thread, me(), K).unwrap())
        .join()
        .unwrap();
    let imp = Ledger::open(&dir, me(), K).unwrap();
    let w = exp.who();
    assert!(!imp.map().alive_by_word(w.slot, w.ticket));
    // The liveness lock still tells the truth.
    assert!(alive_by_lock(imp.map(), &w));
    // The next operation, from a live thread, takes the word again.
    exp.record_export(key(40), false, 4096).unwrap();
    assert!(imp.map().alive_by_word(w.slot, w.ticket));
    assert!(alive_by_lock(imp.map(), &w));
    // Another ticket is never told alive by this entry's word.
    assert!(!imp.map().alive_by_word(w.slot, w.ticket + 1));
    assert!(!imp.map().alive_by_word(w.slot, 0));
    // Detached: the word no longer speaks for it, nor does the lock.
    exp.detach().unwrap();
    assert!(!imp.map().alive_by_word(w.slot, w.ticket));
    assert!(!alive_by_lock(imp.map(), &w));
}

#[test]
fn liveness_word_of_a_killed_process_says_nothing() {
    let (_t, dir) = tmp();
    let exp = Ledger::open(&dir, me(), K).unwrap();
    let ready = Pipe::new();
    let child = fork(|| {
        if exp.after_fork_child(me()).is_err() || exp.record_export(key(41), false, 64).is_err() {
            return 1;
        }
        ready.put();
        loop {
            // SAFETY: waits for the signal that kills us.
            unsafe { libc::pause() };
        }
    });
    assert_eq!(ready.take(1), 1);
    let w = exp.import_view(key(41)).unwrap().unwrap().exporter;
    let w = Who::new(
        w.ticket,
        w.pid,
        w.bare_tgid,
        exp.with_data(|d| {
            (0..d.attach.len() as u32)
                .find(|&i| d.attach_ticket(i) == w.ticket)
                .unwrap()
        }),
    );
    assert!(exp.map().alive_by_word(w.slot, w.ticket));
    // The parent's own word is its own: the child does not hold it.
    let me = exp.who();
    assert!(exp.map().alive_by_word(me.slot, me.ticket));
    // SAFETY: our own child.
    unsafe { libc::kill(child, libc::SIGKILL) };
    assert_eq!(wait(child), -libc::SIGKILL);
    assert!(!exp.map().alive_by_word(w.slot, w.ticket));
    assert!(!alive_by_lock(exp.map(), &w));
    assert!(!exp.import_view(key(41)).unwrap().unwrap().exporter_alive);
}
