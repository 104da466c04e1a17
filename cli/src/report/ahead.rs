//! Streaming: the first reading's count for each key a file creates, handed to the merge's
//! parser in the order the file creates them, so that it reads them in sequence instead of
//! looking each up in the table of counts (a `pread` of a block per key: a tenth of the
//! parser's time, the kernel's share the most of it).
//!
//! ```text
//! census: each record that creates a key (a call's `out.key_fp`) ─► `created`: its
//!   fingerprint's hash, its file and its number there (how many such records before it)
//! join: `created` (sorted by hash) beside the counts (sorted by hash), both in order
//!   ─► `answers`: (file, number) ─► the count, and 32 bits of the hash to check it by
//! merge: the parser of each file reads its part of `answers` in order ([`Ahead`])
//! ```
//!
//! All three are [`spill`] tables on disk: memory does not grow with the job's keys. An
//! answer that does not match (a file that changed between the readings) is not used:
//! the parser looks the key up in the table of counts as before.

use super::spill::{self, Cursor, Table};
use std::io;
use std::sync::Arc;

/// The most records that create a key one file may have for them to be answered here
/// (a record's number is 32 bits of a table's key); later ones are looked up as before.
const MOST_PER_FILE: u64 = 1 << 32;

/// The entry of `created` for the `n`th record of file `file` that creates a key, whose
/// fingerprint hashes to `h` ([`super::recheck::fp_hash`]). `None` past [`MOST_PER_FILE`].
pub fn created(h: u64, file: usize, n: u64) -> Option<u128> {
    (n < MOST_PER_FILE && (file as u64) < MOST_PER_FILE)
        .then(|| u128::from(h) << 64 | answer(file, n))
}

/// The entry of `answers` for the `n`th record of file `file` that creates a key.
fn answer(file: usize, n: u64) -> u128 {
    u128::from(file as u64) << 32 | u128::from(n)
}

/// A count as `answers` keeps it: the low 32 bits of the hash it was found for, and the
/// count (0: none; at most `u32::MAX`, where [`super::recheck::Pending`] stops anyway).
fn pack(h: u64, count: Option<u64>) -> u64 {
    let n = count.map_or(0, |n| n.min(u64::from(u32::MAX)));
    (h & 0xffff_ffff) << 32 | n
}

/// The count `v` gives for a fingerprint of hash `h` as the table of counts answers it
/// (`Some(None)`: none counted); `None` when `v` was found for another hash.
fn unpack(v: u64, h: u64) -> Option<Option<u64>> {
    (v >> 32 == h & 0xffff_ffff).then_some(Some(v & 0xffff_ffff).filter(|&n| n > 0))
}

/// `answers`: each entry of `created` with the count of its hash in `counts`, keyed by
/// its file and number. Both are read once, in order; an error in either fails the whole
/// (the caller then goes without: every key is looked up as before).
pub fn join(created: Table, counts: Arc<Table>) -> io::Result<Table> {
    let mut all = Cursor::new(Arc::new(created), 0);
    let mut counted = Cursor::new(counts, 0);
    let mut answers = spill::Sorter::new();
    while let Some((k, _)) = all.peek() {
        let h = (k >> 64) as u64;
        let count = counted.find(super::recheck::Pending::key(h));
        answers.add(k & u128::from(u64::MAX), pack(h, count));
        all.find(k + 1);
    }
    if all.failed() || counted.failed() {
        return Err(io::Error::other("a table of counts could not be read"));
    }
    Table::merge(answers.into_runs()?, spill::max)
}

/// One file's part of `answers`, read in order by the merge's parser of that file.
pub struct Ahead {
    cursor: Cursor,
    file: usize,
    /// How many records that create a key the parser has met.
    n: u64,
}

impl Ahead {
    pub fn new(answers: Arc<Table>, file: usize) -> Ahead {
        Ahead {
            cursor: Cursor::new(answers, answer(file, 0)),
            file,
            n: 0,
        }
    }

    /// The count for the file's next record that creates a key, whose fingerprint hashes
    /// to `h`, as [`super::recheck::Pending::look_up`] gives it; `None` when not known
    /// here (the caller looks it up).
    pub fn next(&mut self, h: u64) -> Option<Option<u64>> {
        let n = self.n;
        self.n += 1;
        if n >= MOST_PER_FILE {
            return None;
        }
        unpack(self.cursor.find(answer(self.file, n))?, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::recheck::{fp_hash, Pending};

    /// What the parser reads ahead is what it would look up, record by record; a record
    /// off the census's sequence (another fingerprint) is looked up instead.
    #[test]
    fn answers_in_order_are_the_table_s_counts() {
        // Two files: file 0 creates fp0..fp299 (fp7 twice), file 1 creates every third;
        // the counts name some of them, and some fingerprints never created.
        let fp = |i: u64| format!("fp:{i:016x}");
        let mut counts = spill::Builder::new(spill::sum);
        for i in (0..400u64).filter(|i| i % 5 != 0) {
            counts.add(Pending::key(fp_hash(&fp(i))), i + 1);
        }
        let counts = Arc::new(Table::merge(counts.into_runs().unwrap(), spill::sum).unwrap());
        let files: Vec<Vec<u64>> = vec![
            (0..300).chain([7]).collect(),
            (0..100).map(|i| i * 3).rev().collect(),
        ];
        let mut created_b = spill::Sorter::new();
        for (f, fps) in files.iter().enumerate() {
            for (n, &i) in fps.iter().enumerate() {
                created_b.add(created(fp_hash(&fp(i)), f, n as u64).unwrap(), 0);
            }
        }
        let created_t = Table::merge(created_b.into_runs().unwrap(), spill::max).unwrap();
        let answers = Arc::new(join(created_t, counts.clone()).unwrap());
        for (f, fps) in files.iter().enumerate() {
            let mut a = Ahead::new(answers.clone(), f);
            for &i in fps {
                let h = fp_hash(&fp(i));
                assert_eq!(
                    a.next(h),
                    Some(Pending::look_up(&counts, &fp(i))),
                    "{f} {i}"
                );
            }
            // Past the file's records, and a record the census did not see: not known.
            assert_eq!(a.next(fp_hash(&fp(1))), None);
        }
        let mut a = Ahead::new(answers.clone(), 0);
        assert_eq!(a.next(fp_hash(&fp(1))), None, "fp0's answer is not fp1's");
        assert!(a.next(fp_hash(&fp(1))).is_some());
        // A file with no records that create a key.
        assert_eq!(Ahead::new(answers, 5).next(1), None);
    }

    #[test]
    fn a_count_packs_with_its_hash() {
        for h in [0u64, 1, 0xdead_beef_1234_5678, u64::MAX] {
            for c in [
                None,
                Some(1),
                Some(5),
                Some(u64::from(u32::MAX)),
                Some(u64::MAX),
            ] {
                let want = c.map(|n| n.min(u64::from(u32::MAX)));
                assert_eq!(unpack(pack(h, c), h), Some(want));
                assert_eq!(unpack(pack(h, c), h ^ 1), None);
            }
        }
        assert_eq!(created(1, 0, MOST_PER_FILE), None);
        assert_eq!(created(1, 2, 3), Some(1u128 << 64 | 2u128 << 32 | 3));
    }
}
