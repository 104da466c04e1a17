//! IPC keys as the shim sees them: read safely from the caller's buffer (at most 65 bytes,
//! up to the first NUL) and named by a fingerprint that is the same in every process.

use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::atomic::{fence, AtomicU64, Ordering::*};

/// The vendor's fixed key buffer length: 64 characters and a NUL.
pub const KEY_LEN: usize = 65;

/// First 8 bytes of the SHA-256 of a key's bytes (up to its NUL); printed as `fp:` and
/// 16 lowercase hex digits. Raw keys never leave the process unless the user asks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Fp(pub [u8; 8]);

impl std::hash::Hash for Fp {
    /// A fingerprint is already a uniform hash: one word is enough.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from_le_bytes(self.0));
    }
}

impl Fp {
    pub fn of(bytes: &[u8]) -> Fp {
        let digest = Sha256::digest(bytes);
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&digest[..8]);
        Fp(fp)
    }

    /// `fp:` + 16 hex digits, written into a fixed buffer (no allocation).
    pub fn to_buf(&self) -> [u8; 19] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = *b"fp:0000000000000000";
        for (i, b) in self.0.iter().enumerate() {
            out[3 + 2 * i] = HEX[(b >> 4) as usize];
            out[4 + 2 * i] = HEX[(b & 15) as usize];
        }
        out
    }
}

impl fmt::Display for Fp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buf = self.to_buf();
        f.write_str(std::str::from_utf8(&buf).unwrap_or("fp:?"))
    }
}

impl fmt::Debug for Fp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Fingerprints of the keys this process named lately, shared by its threads: a program
/// names one key in its export, whitelist and close calls, often from different threads
/// and with many keys in between (export all, whitelist all, close all), and reading 64
/// bytes costs far less than a SHA-256. Direct-mapped by `tag`; each entry is a seqlock
/// (`seq` 0: empty; odd: being written), so a reader never waits and never sees a torn key,
/// and a writer that finds the entry busy simply does not cache. Plain atomics: no
/// allocation, no destructor, nothing to do after `fork` (an entry a forked-away writer
/// left odd stays unused in the child).
struct FpCache<const N: usize> {
    entries: [CacheEntry; N],
}

struct CacheEntry {
    seq: AtomicU64,
    /// The key's 64 bytes (zero after its end; its 65th byte is always 0).
    words: [AtomicU64; 8],
    fp: AtomicU64,
}

// An interior-mutable constant, used only to initialise the array of entries.
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_ENTRY: CacheEntry = CacheEntry {
    seq: AtomicU64::new(0),
    words: [const { AtomicU64::new(0) }; 8],
    fp: AtomicU64::new(0),
};

impl<const N: usize> FpCache<N> {
    const fn new() -> Self {
        FpCache {
            entries: [EMPTY_ENTRY; N],
        }
    }

    fn entry(&self, t: u64) -> &CacheEntry {
        // The tag's high bits are its best mixed.
        &self.entries[((t >> 32) as usize) % N]
    }

    fn get(&self, t: u64, words: &[u64; 8]) -> Option<Fp> {
        let e = self.entry(t);
        let s1 = e.seq.load(Acquire);
        // 0: never written; odd: being written.
        if s1 == 0 || s1 & 1 == 1 {
            return None;
        }
        let same = e
            .words
            .iter()
            .zip(words)
            .all(|(a, &b)| a.load(Relaxed) == b);
        let fp = e.fp.load(Relaxed);
        fence(Acquire);
        (same && e.seq.load(Relaxed) == s1).then(|| Fp(fp.to_le_bytes()))
    }

    fn put(&self, t: u64, words: &[u64; 8], fp: Fp) {
        let e = self.entry(t);
        let s = e.seq.load(Relaxed);
        // Odd: another thread is writing it; leave it to that one.
        if s & 1 == 1 || e.seq.compare_exchange(s, s + 1, Acquire, Relaxed).is_err() {
            return;
        }
        fence(Release);
        for (a, &b) in e.words.iter().zip(words) {
            a.store(b, Relaxed);
        }
        e.fp.store(u64::from_le_bytes(fp.0), Relaxed);
        e.seq.store(s + 2, Release);
    }
}

/// The process's cache: 1,024 entries of 80 bytes.
static FP_CACHE: FpCache<1024> = FpCache::new();

/// Tells helgrind (feature `checker-annotations`) to leave the fingerprint cache alone:
/// every byte of it is an atomic, and a reader that raced a writer sees the entry's
/// `seq` change and does not use what it read (a seqlock, which helgrind cannot follow).
pub(crate) fn benign_for_checker() {
    crate::valgrind::benign_atomic(&FP_CACHE);
}

/// A key buffer's first 64 bytes as words (its 65th byte is always 0).
fn words_of(buf: &[u8; KEY_LEN]) -> [u64; 8] {
    let mut w = [0u64; 8];
    for (w, chunk) in w.iter_mut().zip(buf[..KEY_LEN - 1].chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *w = u64::from_le_bytes(b);
    }
    w
}

/// A cheap summary of a whole key buffer, to pick its cache entry.
fn tag(words: &[u64; 8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = 0u64;
    for &w in words {
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    // Keys often differ only in their last characters (a counter): mix every bit into
    // the high ones the entry is picked by.
    let h = (h ^ (h >> 31)).wrapping_mul(K);
    h ^ (h >> 32)
}

/// The fingerprint of the first `len` bytes of `buf` (the rest zero), from the process's
/// cache when it has it.
fn cached_fp(buf: &[u8; KEY_LEN], len: usize) -> Fp {
    cached_fp_in(&FP_CACHE, buf, len)
}

fn cached_fp_in<const N: usize>(cache: &FpCache<N>, buf: &[u8; KEY_LEN], len: usize) -> Fp {
    let words = words_of(buf);
    let t = tag(&words);
    if let Some(fp) = cache.get(t, &words) {
        return fp;
    }
    let fp = Fp::of(&buf[..len]);
    cache.put(t, &words, fp);
    fp
}

/// A key that was readable: its bytes (kept inline, so no allocation) and fingerprint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub fp: Fp,
    len: u8,
    bytes: [u8; KEY_LEN],
}

impl Key {
    /// `bytes` must not contain a NUL and be at most 64 long.
    pub fn from_bytes(bytes: &[u8]) -> Key {
        let len = bytes.len().min(KEY_LEN - 1);
        let mut buf = [0u8; KEY_LEN];
        buf[..len].copy_from_slice(&bytes[..len]);
        Key::from_buf(buf, len)
    }

    /// The key held by the first `len` (at most 64) bytes of `buf`, whose other bytes are
    /// zero.
    pub fn from_buf(buf: [u8; KEY_LEN], len: usize) -> Key {
        debug_assert!(len < KEY_LEN && buf[len..].iter().all(|&b| b == 0));
        Key {
            fp: cached_fp(&buf, len),
            len: len as u8,
            bytes: buf,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.fp)
    }
}

/// A key argument as passed by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyArg {
    Null,
    /// No NUL within the first 65 bytes.
    Unterminated,
    Key(Key),
}

impl KeyArg {
    pub fn fp(&self) -> Option<Fp> {
        match self {
            KeyArg::Key(k) => Some(k.fp),
            _ => None,
        }
    }

    pub fn key(&self) -> Option<&Key> {
        match self {
            KeyArg::Key(k) => Some(k),
            _ => None,
        }
    }

    /// Classifies a buffer that holds the first bytes of a key: it must have a NUL within
    /// its first 65 bytes.
    pub fn from_prefix(prefix: &[u8]) -> KeyArg {
        match prefix.iter().take(KEY_LEN).position(|&b| b == 0) {
            Some(n) => KeyArg::Key(Key::from_bytes(&prefix[..n])),
            None => KeyArg::Unterminated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_prefix_in_lower_hex() {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(Fp::of(b"abc").to_string(), "fp:ba7816bf8f01cfea");
        let k = KeyArg::from_prefix(b"abc\0garbage");
        assert_eq!(k.fp().unwrap().to_string(), "fp:ba7816bf8f01cfea");
        assert_eq!(k.key().unwrap().bytes(), b"abc");
    }

    #[test]
    fn nul_must_be_within_65_bytes() {
        let mut buf = [b'a'; 70];
        buf[64] = 0;
        assert!(matches!(KeyArg::from_prefix(&buf), KeyArg::Key(_)));
        buf[64] = b'a';
        buf[65] = 0;
        assert_eq!(KeyArg::from_prefix(&buf), KeyArg::Unterminated);
        assert_eq!(KeyArg::from_prefix(&buf[..65]), KeyArg::Unterminated);
    }

    #[test]
    fn empty_key_is_a_key() {
        let k = KeyArg::from_prefix(b"\0");
        assert_eq!(k.key().unwrap().bytes(), b"");
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    #[test]
    fn cached_fingerprints_equal_computed_ones() {
        let keys: Vec<String> = (0..20).map(|i| format!("{i:064x}")).collect();
        for round in 0..3 {
            for k in &keys {
                let key = Key::from_bytes(k.as_bytes());
                assert_eq!(key.fp, Fp::of(k.as_bytes()), "round {round}, key {k}");
            }
        }
        // Keys that differ in one character anywhere are told apart.
        let base = [b'7'; 64];
        for at in [0, 31, 63] {
            let mut other = base;
            other[at] = b'8';
            let (a, b) = (Key::from_bytes(&base), Key::from_bytes(&other));
            assert_ne!(a.fp, b.fp, "differ at {at}");
            assert_eq!(b.fp, Fp::of(&other));
            assert_eq!(Key::from_bytes(&base).fp, Fp::of(&base));
        }
        // A prefix of a cached key is another key.
        let long = Key::from_bytes(b"abcdef");
        let short = Key::from_bytes(b"abc");
        assert_ne!(long.fp, short.fp);
        assert_eq!(short.fp, Fp::of(b"abc"));
    }

    /// A key buffer as `Key::from_bytes` builds it.
    fn buf_of(k: &[u8]) -> [u8; KEY_LEN] {
        let mut b = [0u8; KEY_LEN];
        b[..k.len()].copy_from_slice(k);
        b
    }

    #[test]
    fn process_cache_is_shared_by_threads() {
        static CACHE: FpCache<64> = FpCache::new();
        let key = *b"d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0";
        let buf = buf_of(&key);
        let words = words_of(&buf);
        assert_eq!(CACHE.get(tag(&words), &words), None, "empty at first");
        std::thread::spawn(move || cached_fp_in(&CACHE, &buf, key.len()))
            .join()
            .unwrap();
        // Another thread's fingerprint is found here without computing it.
        assert_eq!(CACHE.get(tag(&words), &words), Some(Fp::of(&key)));
        assert_eq!(cached_fp_in(&CACHE, &buf, key.len()), Fp::of(&key));
        // The empty key is cached like any other (its words are all zero).
        let empty = [0u8; KEY_LEN];
        assert_eq!(cached_fp_in(&CACHE, &empty, 0), Fp::of(b""));
        let w0 = words_of(&empty);
        assert_eq!(CACHE.get(tag(&w0), &w0), Some(Fp::of(b"")));
    }

    #[test]
    fn keys_differing_in_their_last_characters_spread_over_entries() {
        let entries: std::collections::HashSet<usize> = (0..256u32)
            .map(|i| {
                let k = format!("{:056x}{i:08x}", 7);
                let t = tag(&words_of(&buf_of(k.as_bytes())));
                ((t >> 32) as usize) % 1024
            })
            .collect();
        assert!(
            entries.len() > 200,
            "{} entries for 256 keys",
            entries.len()
        );
    }

    #[test]
    fn racing_threads_never_see_a_torn_entry() {
        // One entry and a few keys: lookups race with writers of other keys all the time.
        static CACHE: FpCache<1> = FpCache::new();
        let keys: Vec<Vec<u8>> = (0..3).map(|i| format!("{i:064x}").into_bytes()).collect();
        let want: Vec<Fp> = keys.iter().map(|k| Fp::of(k)).collect();
        std::thread::scope(|s| {
            for t in 0..4 {
                let (keys, want) = (&keys, &want);
                s.spawn(move || {
                    for round in 0..20_000 {
                        let i = (round + t) % keys.len();
                        let got = cached_fp_in(&CACHE, &buf_of(&keys[i]), keys[i].len());
                        assert_eq!(got, want[i], "thread {t} round {round} key {i}");
                    }
                });
            }
        });
    }
}
