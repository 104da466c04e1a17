//! Who wrote each record: records → processes (host + pid + start, not the pid alone), one
//! time order over all of them, and the holes in each process's `seq`.

use super::model::{End, Gap, Process};
use super::parse::{Body, Rec, StartInfo};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// The records in one time order, each with its process.
pub struct Ordered {
    pub processes: Vec<Process>,
    /// Each with `proc_idx` set; exact duplicates dropped.
    pub recs: Vec<Rec>,
    /// For each process, the image of its pid that began after it and ended it.
    pub replaced_by: Vec<Option<usize>>,
    /// Records dropped as exact duplicates (a file given twice, overlapping copies).
    pub duplicates: usize,
}

/// Finds the processes of `recs` (from the files `names`) and puts the records in one time
/// order.
pub fn order(recs: Vec<Rec>, names: &[&str]) -> Ordered {
    // Which process each record belongs to, decided file by file (a record names only its
    // pid; its host and start are those of the start record before it in its file).
    let keys = identify(&recs);
    let mut recs: Vec<(ProcKey, Rec)> = keys.into_iter().zip(recs).collect();
    // One time order: ts, then process, then seq; the rest only makes the order total.
    recs.sort_by(|(ka, a), (kb, b)| {
        (a.ts_us, a.pid, ka, a.seq, &a.event, a.hash)
            .cmp(&(b.ts_us, b.pid, kb, b.seq, &b.event, b.hash))
    });
    // The same record twice (a file given twice, overlapping copies) counts once.
    let before = recs.len();
    recs.dedup_by(|(kb, b), (ka, a)| {
        (a.ts_us, &*ka, a.seq, &a.event) == (b.ts_us, &*kb, b.seq, &b.event)
    });
    let duplicates = before - recs.len();

    let (processes, recs, replaced_by) = assign_processes(recs, names);
    Ordered {
        processes,
        recs,
        replaced_by,
        duplicates,
    }
}

/// Which process a record belongs to: its host, pid and the time of its `start` record
/// (`started`), or, for records with no start record before them (logs of older versions,
/// a log whose beginning is lost), its pid and the time of its first record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcKey {
    /// Shared by the records of one process: a clone is a count, not a copy.
    pub host: Option<Arc<str>>,
    pub pid: i64,
    pub anchor_us: i64,
    pub started: bool,
}

/// One process as `identify` follows it through one file.
struct Image {
    key: ProcKey,
    last_seq: u64,
    exited: bool,
}

/// The process of every record (same order as `recs`). In each file, each pid's records
/// are taken in time order: a `start` record begins a process (its host, pid and time are
/// its identity, so pids that collide across hosts or containers stay apart); another
/// record goes on with the process of that pid whose `seq` it continues, else the latest
/// one. A pid with no start record before its records (an older log, a lost beginning)
/// makes a process known by its pid and first record; after its `summary`, records that do
/// not continue its `seq` begin another (a reused pid).
fn identify(recs: &[Rec]) -> Vec<ProcKey> {
    let mut groups: BTreeMap<(usize, i64), Vec<usize>> = BTreeMap::new();
    for (i, r) in recs.iter().enumerate() {
        groups.entry((r.file, r.pid)).or_default().push(i);
    }
    let mut keys: Vec<Option<ProcKey>> = vec![None; recs.len()];
    for ((_, pid), mut idx) in groups {
        idx.sort_by_key(|&i| (recs[i].ts_us, recs[i].seq, recs[i].event != "start"));
        let mut images: Vec<Image> = Vec::new();
        for i in idx {
            keys[i] = Some(next_image(&mut images, pid, &recs[i]));
        }
    }
    keys.into_iter()
        .map(|k| k.expect("every record is in a group"))
        .collect()
}

/// The process of record `r`, the next of its pid in its file (in time order), given the
/// images of that pid the file showed so far (see [`identify`]).
fn next_image(images: &mut Vec<Image>, pid: i64, r: &Rec) -> ProcKey {
    let at = if let Body::Start(s) = &r.body {
        images.push(Image {
            key: ProcKey {
                host: s.host.as_deref().map(Arc::from),
                pid,
                anchor_us: r.ts_us,
                started: true,
            },
            last_seq: r.seq,
            exited: false,
        });
        images.len() - 1
    } else {
        let continues = images.iter().rposition(|im| im.last_seq + 1 == r.seq);
        let latest = images
            .len()
            .checked_sub(1)
            .filter(|&l| !(images[l].exited && r.seq > images[l].last_seq + 1));
        match continues.or(latest) {
            Some(at) => at,
            None => {
                images.push(Image {
                    key: ProcKey {
                        host: None,
                        pid,
                        anchor_us: r.ts_us,
                        started: false,
                    },
                    last_seq: r.seq,
                    exited: false,
                });
                images.len() - 1
            }
        }
    };
    let im = &mut images[at];
    im.last_seq = im.last_seq.max(r.seq);
    im.exited |= matches!(r.body, Body::Summary { .. });
    im.key.clone()
}

/// [`identify`] for one file read in its own order (the streaming report): each record's
/// process, from the records of the file before it. The same answer as `identify` when
/// each pid's records come in time order in the file, which the streaming report checks.
#[derive(Default)]
pub struct Identifier {
    images: super::fasthash::FastMap<i64, Vec<Image>>,
}

impl Identifier {
    pub fn key(&mut self, r: &Rec) -> ProcKey {
        next_image(self.images.entry(r.pid).or_default(), r.pid, r)
    }
}

/// Two processes may be the same machine's: equal hosts, or one not known.
fn same_machine(a: &Option<String>, b: &Option<String>) -> bool {
    a.is_none() || b.is_none() || a == b
}

/// Numbers the processes in order of their first record and fills in what their records
/// say; then the end of an image its pid's next image replaced, the parents of fork
/// children, and each process's tag.
/// Also returns, for each process, the image of its pid that began after it and ended it.
fn assign_processes(
    recs: Vec<(ProcKey, Rec)>,
    names: &[&str],
) -> (Vec<Process>, Vec<Rec>, Vec<Option<usize>>) {
    let mut procs: Vec<Process> = Vec::new();
    let mut index: HashMap<ProcKey, usize> = HashMap::new();
    let mut out = Vec::with_capacity(recs.len());
    let mut first_ts: Vec<String> = Vec::new();
    for (key, mut r) in recs {
        let idx = *index.entry(key.clone()).or_insert_with(|| {
            first_ts.push(r.ts.to_string());
            procs.push(new_process(&key, &r));
            procs.len() - 1
        });
        r.proc_idx = idx;
        let file = names.get(r.file).copied().unwrap_or("?");
        account(&mut procs[idx], &r, file);
        out.push(r);
    }
    let anchors: Vec<i64> = {
        let mut a = vec![0; procs.len()];
        for (k, &i) in &index {
            a[i] = k.anchor_us;
        }
        a
    };
    let replaced_by = link_processes(&mut procs, &anchors, &first_ts);
    (procs, out, replaced_by)
}

/// A process as its first record shows it (what the others add: [`account`]).
pub fn new_process(key: &ProcKey, r: &Rec) -> Process {
    Process::first_seen(
        r.pid,
        key.host.as_deref().map(str::to_owned),
        r.seq,
        r.ts.to_string(),
    )
}

/// What record `r` (of file `file`, the latest of its process so far) says about its process.
pub fn account(p: &mut Process, r: &Rec, file: &str) {
    p.records += 1;
    p.first_seq = p.first_seq.min(r.seq);
    p.last_seq = p.last_seq.max(r.seq);
    p.last_ts.clear();
    p.last_ts.push_str(&r.ts);
    if !p.files.iter().any(|f| f == file) {
        p.files.push(file.to_owned());
    }
    match &r.body {
        Body::Start(s) => {
            let StartInfo {
                version,
                mode,
                exe,
                ledger,
                host: _,
                bare_tgid,
                parent,
            } = &**s;
            p.has_start = true;
            p.start_ts = Some(r.ts.to_string());
            p.version.clone_from(version);
            p.mode.clone_from(mode);
            p.exe.clone_from(exe);
            p.ledger.clone_from(ledger);
            p.bare_tgid = *bare_tgid;
            p.parent_pid = *parent;
        }
        Body::Summary { dropped, .. } => {
            p.end = End::Exited(r.ts.to_string());
            p.dropped = *dropped;
        }
        _ => {}
    }
}

/// The processes' relations, once all are known (numbered in order of their first record;
/// `anchors` and `first_ts`: each one's `ProcKey::anchor_us` and first record's time): the
/// end of an image its pid's next image replaced, the parents of fork children, and each
/// process's tag. Returns, for each process, the image of its pid that began after it and
/// ended it.
pub fn link_processes(
    procs: &mut [Process],
    anchors: &[i64],
    first_ts: &[String],
) -> Vec<Option<usize>> {
    // Images of one machine's pid in time order: one ends when the next begins (an exec,
    // or the pid was reused). Not so for pids of different pid namespaces on one host
    // (containers sharing a host name), which run side by side: their bare tgids differ.
    let mut by_pid: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, p) in procs.iter().enumerate() {
        by_pid.entry(p.pid).or_default().push(i);
    }
    let mut replaced_by = vec![None; procs.len()];
    for list in by_pid.values_mut() {
        list.sort_by_key(|&i| (anchors[i], i));
        for (n, &i) in list.iter().enumerate() {
            let next = list[n + 1..].iter().copied().find(|&j| {
                let (a, b) = (&procs[i], &procs[j]);
                same_machine(&a.host, &b.host)
                    && (a.bare_tgid.is_none()
                        || b.bare_tgid.is_none()
                        || a.bare_tgid == b.bare_tgid)
            });
            let Some(j) = next else { continue };
            if procs[i].end == End::Unknown {
                let first_of_next = procs[j]
                    .start_ts
                    .clone()
                    .unwrap_or_else(|| first_ts[j].clone());
                procs[i].end = End::Replaced(first_of_next);
            }
            replaced_by[i] = Some(j);
        }
    }
    // A fork child's parent: the latest image of the parent's pid on its host that began
    // before the child.
    for c in 0..procs.len() {
        let Some(ppid) = procs[c].parent_pid else {
            continue;
        };
        procs[c].parent = by_pid.get(&ppid).and_then(|list| {
            list.iter()
                .copied()
                .filter(|&j| {
                    j != c
                        && anchors[j] <= anchors[c]
                        && same_machine(&procs[j].host, &procs[c].host)
                })
                .max_by_key(|&j| (anchors[j], j))
        });
    }
    // Tags: the pid; `@host` when the logs come from several hosts; `#n` when one host's
    // pid ran several images.
    let hosts: BTreeSet<&str> = procs.iter().filter_map(|p| p.host.as_deref()).collect();
    let several_hosts = hosts.len() > 1;
    let mut tags: Vec<String> = procs
        .iter()
        .map(|p| match (&p.host, several_hosts) {
            (Some(h), true) => format!("{}@{h}", p.pid),
            (None, true) => format!("{}@?", p.pid),
            _ => p.pid.to_string(),
        })
        .collect();
    let mut same_tag: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, t) in tags.iter().enumerate() {
        same_tag.entry(t.as_str()).or_default().push(i);
    }
    let numbered: Vec<(usize, usize)> = same_tag
        .values()
        .filter(|l| l.len() > 1)
        .flat_map(|l| {
            let mut l = l.clone();
            l.sort_by_key(|&i| (anchors[i], i));
            l.into_iter().enumerate().map(|(n, i)| (i, n + 1))
        })
        .collect();
    for (i, n) in numbered {
        tags[i] = format!("{}#{n}", tags[i]);
    }
    for (p, t) in procs.iter_mut().zip(tags) {
        p.tag = t;
        p.files.sort();
    }
    replaced_by
}

/// Holes in each process's `seq`: from 1 for a process with a `start`, from its first
/// record otherwise (a log that lost its beginning, or an older version's fork child).
pub fn find_gaps(recs: &[Rec], procs: &[Process]) -> Vec<Gap> {
    let mut seqs: Vec<Vec<u64>> = vec![Vec::new(); procs.len()];
    for r in recs {
        seqs[r.proc_idx].push(r.seq);
    }
    let mut gaps = Vec::new();
    for (i, (p, s)) in procs.iter().zip(seqs.iter_mut()).enumerate() {
        s.sort_unstable();
        s.dedup();
        let mut expect = if p.has_start {
            1
        } else {
            s.first().copied().unwrap_or(1)
        };
        for &q in s.iter() {
            if q > expect {
                gaps.push(Gap {
                    process: i,
                    pid: p.pid,
                    from: expect,
                    to: q - 1,
                });
            }
            expect = expect.max(q + 1);
        }
    }
    gaps.sort_by_key(|g| (g.pid, g.process, g.from));
    gaps
}
