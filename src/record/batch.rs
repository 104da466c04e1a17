//! Encoded records written to the log file in as few `write()` calls as possible: the
//! writer encodes the records it drains one after another into one buffer and writes them
//! together. Where a write fails, the accounting is what one write per record gives: the
//! records wholly written count as written, the one the failure cut off is lost (its line
//! torn if part of it reached the file), and each later record gets a write of its own
//! attempt, the next one after a torn line beginning with a line break.

use std::io;

/// How many bytes of encoded records are written at once at most.
pub const BATCH_BYTES: usize = 64 * 1024;

/// Encoded records waiting for their write.
#[derive(Default)]
pub struct LineBatch {
    buf: Vec<u8>,
    /// Where each record's line ends in `buf`.
    ends: Vec<usize>,
}

/// What writing a batch came to.
#[derive(Debug, Default)]
pub struct Written {
    /// Records not (wholly) in the file.
    pub lost: u64,
    /// The first error, if a write failed.
    pub error: Option<io::Error>,
}

impl LineBatch {
    pub fn new() -> LineBatch {
        LineBatch {
            buf: Vec::with_capacity(BATCH_BYTES),
            ends: Vec::with_capacity(256),
        }
    }

    /// Appends one record: `encode` appends its line (ending in `\n`) to the buffer.
    pub fn push(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        encode(&mut self.buf);
        self.ends.push(self.buf.len());
    }

    /// True when the batch holds enough bytes to be written now.
    pub fn full(&self) -> bool {
        self.buf.len() >= BATCH_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Writes every record of the batch with `write` (one `write()`), in order, and empties
    /// it. `torn`: the file's last line was cut off (kept up to date here).
    pub fn write_out(
        &mut self,
        torn: &mut bool,
        write: &mut impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> Written {
        let mut out = Written::default();
        let mut i = 0;
        while i < self.ends.len() {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            if *torn {
                // The line break owed to the torn line, then this one record, in one write.
                let mut line = Vec::with_capacity(1 + self.ends[i] - start);
                line.push(b'\n');
                line.extend_from_slice(&self.buf[start..self.ends[i]]);
                match write_all(&line, write) {
                    Ok(()) => *torn = false,
                    Err((done, e)) => {
                        out.lost += 1;
                        out.error.get_or_insert(e);
                        // Part of this record (past the line break) is in the file.
                        if done > 0 {
                            *torn = done > 1;
                        }
                    }
                }
                i += 1;
                continue;
            }
            match write_all(&self.buf[start..], write) {
                Ok(()) => break,
                Err((done, e)) => {
                    out.error.get_or_insert(e);
                    let failed_at = start + done;
                    // The first record not wholly written is lost; the ones after it get
                    // a write of their own.
                    let k = i + self.ends[i..].partition_point(|&end| end <= failed_at);
                    let k_start = if k == 0 { 0 } else { self.ends[k - 1] };
                    out.lost += 1;
                    if failed_at > k_start {
                        *torn = true;
                    }
                    i = k + 1;
                }
            }
        }
        self.buf.clear();
        self.ends.clear();
        out
    }
}

/// Writes all of `bytes`; on failure, how many bytes were written and why not.
fn write_all(
    bytes: &[u8],
    write: &mut impl FnMut(&[u8]) -> io::Result<usize>,
) -> Result<(), (usize, io::Error)> {
    let mut done = 0;
    while done < bytes.len() {
        match write(&bytes[done..]) {
            Ok(0) => return Err((done, io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((done, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file that takes at most `room` bytes (a full disk after that), `chunk` bytes per
    /// write at most, and is interrupted once before each write.
    struct Disk {
        data: Vec<u8>,
        room: usize,
        chunk: usize,
        interrupt: bool,
        writes: usize,
    }

    impl Disk {
        fn new(room: usize, chunk: usize) -> Disk {
            Disk {
                data: Vec::new(),
                room,
                chunk,
                interrupt: false,
                writes: 0,
            }
        }

        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            self.writes += 1;
            let n = b.len().min(self.chunk).min(self.room - self.data.len());
            if n == 0 {
                return Err(io::Error::from_raw_os_error(libc::EFBIG));
            }
            self.data.extend_from_slice(&b[..n]);
            Ok(n)
        }
    }

    fn batch(lines: &[&str]) -> LineBatch {
        let mut b = LineBatch::new();
        for l in lines {
            b.push(|out| {
                out.extend_from_slice(l.as_bytes());
                out.push(b'\n');
            });
        }
        b
    }

    #[test]
    fn a_batch_is_one_write_when_there_is_room() {
        let mut disk = Disk::new(1000, 1000);
        let mut torn = false;
        let w = batch(&["a1", "b22", "c333"]).write_out(&mut torn, &mut |b| disk.write(b));
        assert!(w.lost == 0 && w.error.is_none());
        assert_eq!(disk.data, b"a1\nb22\nc333\n");
        assert_eq!(disk.writes, 1);
        assert!(!torn);
    }

    #[test]
    fn short_writes_are_continued() {
        let mut disk = Disk::new(1000, 2);
        let mut torn = false;
        let w = batch(&["a1", "b22", "c333"]).write_out(&mut torn, &mut |b| disk.write(b));
        assert_eq!(w.lost, 0);
        assert_eq!(disk.data, b"a1\nb22\nc333\n");
    }

    #[test]
    fn a_full_disk_loses_the_cut_record_and_every_later_one() {
        // Room for "a1\nb2" : a1 written, b22 torn, c333 and d4 lost.
        let mut disk = Disk::new(5, 1000);
        let mut torn = false;
        let w = batch(&["a1", "b22", "c333", "d4"]).write_out(&mut torn, &mut |b| disk.write(b));
        assert_eq!(w.lost, 3);
        assert_eq!(w.error.unwrap().raw_os_error(), Some(libc::EFBIG));
        assert!(torn);
        assert_eq!(disk.data, b"a1\nb2");
        // Room again: the next record starts on a line of its own.
        disk.room = 1000;
        let w = batch(&["e5", "f6"]).write_out(&mut torn, &mut |b| disk.write(b));
        assert!(w.lost == 0 && w.error.is_none());
        assert!(!torn);
        assert_eq!(disk.data, b"a1\nb2\ne5\nf6\n");
    }

    #[test]
    fn a_disk_full_at_a_line_end_tears_nothing() {
        let mut disk = Disk::new(7, 1000);
        let mut torn = false;
        let w = batch(&["a1", "b22", "c333"]).write_out(&mut torn, &mut |b| disk.write(b));
        assert_eq!(w.lost, 1);
        assert!(!torn);
        assert_eq!(disk.data, b"a1\nb22\n");
    }

    #[test]
    fn after_a_torn_line_the_owed_line_break_comes_first() {
        let mut disk = Disk::new(5, 1000);
        let mut torn = false;
        let w = batch(&["abc", "de"]).write_out(&mut torn, &mut |b| disk.write(b));
        assert_eq!((w.lost, torn), (1, true));
        assert_eq!(disk.data, b"abc\nd");
        // Room for the line break only: the record is lost, the torn line is closed.
        disk.room = 6;
        let w = batch(&["fg"]).write_out(&mut torn, &mut |b| disk.write(b));
        assert_eq!((w.lost, torn), (1, false));
        disk.room = 100;
        let w = batch(&["hi"]).write_out(&mut torn, &mut |b| disk.write(b));
        assert_eq!((w.lost, torn), (0, false));
        assert_eq!(disk.data, b"abc\nd\nhi\n");
    }
}
