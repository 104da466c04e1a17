//! IPC keys as the shim sees them: read safely from the caller's buffer (at most 65 bytes,
//! up to the first NUL), known inside the shim by a cheap 64-bit identity (`Fp`) that is
//! the same in every process, and named in records by their fingerprint (`KeyFp`, a
//! SHA-256 prefix), which is computed only where a record is encoded.

use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::atomic::{fence, AtomicU64, Ordering::*};

/// The vendor's fixed key buffer length: 64 characters and a NUL.
pub const KEY_LEN: usize = 65;

/// A key's identity inside the shim: a 64-bit hash of its 65-byte buffer (`id_of`), the
/// same in every process and every build of this version, by which this process's state
/// and the cross-process ledger know the key. It is NOT the fingerprint records show
/// (`KeyFp`): it is printed only as `key#` and 16 hex digits, which the record encoder
/// replaces in a violation's message by the key's fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Fp(pub [u8; 8]);

impl std::hash::Hash for Fp {
    /// An identity is already a uniform hash: one word is enough.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from_le_bytes(self.0));
    }
}

impl Fp {
    /// The identity of the key made of `bytes` (at most 64, no NUL among them).
    pub fn of(bytes: &[u8]) -> Fp {
        let len = bytes.len().min(KEY_LEN - 1);
        let mut buf = [0u8; KEY_LEN];
        buf[..len].copy_from_slice(&bytes[..len]);
        Fp::of_words(&words_of(&buf))
    }

    fn of_words(words: &[u64; 8]) -> Fp {
        Fp(id_of(words).to_le_bytes())
    }

    pub fn as_u64(&self) -> u64 {
        u64::from_le_bytes(self.0)
    }

    /// `key#` + 16 hex digits: how messages made on the calling thread name a key, for
    /// the encoder to replace by its fingerprint (`Key::name_in`).
    pub fn to_buf(&self) -> [u8; 20] {
        let mut out = *b"key#0000000000000000";
        hex_into(&self.0, &mut out[4..]);
        out
    }
}

fn hex_into(bytes: &[u8; 8], out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 15) as usize];
    }
}

impl fmt::Display for Fp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buf = self.to_buf();
        f.write_str(std::str::from_utf8(&buf).unwrap_or("key#?"))
    }
}

impl fmt::Debug for Fp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The fixed per-word constants of `id_of` (digits of pi, made odd): no per-process seed,
/// so that every process computes the same identity.
const LANES: [u64; 8] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7345,
    0xa409_3822_299f_31d1,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
    0xbe54_66cf_34e9_0c6d,
    0xc0ac_29b7_c97c_50dd,
    0x3f84_d5b5_b547_0917,
];

/// The 64-bit finaliser of MurmurHash3: a bijection in which every input bit flips about
/// half of the output bits.
#[inline(always)]
fn fmix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// A key's identity from its buffer's first 64 bytes as words (the 65th is always 0, and
/// the bytes after the key are zero, so the words alone tell keys apart): each word is
/// mixed in a lane of its own (independent multiplications the processor runs side by
/// side), the lanes are summed, and the sum is mixed again. Every input bit reaches every
/// output bit; some 20 ns where a SHA-256 cost about 100.
#[inline]
fn id_of(words: &[u64; 8]) -> u64 {
    let mut acc = 0u64;
    for (w, k) in words.iter().zip(LANES) {
        acc = acc.wrapping_add(fmix(w ^ k));
    }
    fmix(acc ^ 0x9e37_79b9_7f4a_7c15)
}

/// The fingerprint records name a key by: the first 8 bytes of the SHA-256 of its bytes
/// (up to its NUL), printed as `fp:` and 16 lowercase hex digits. Computed where a record
/// is encoded (the log's writer thread, or the thread writing a record through), never
/// on a call's path, and not at all while the log is off.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct KeyFp(pub [u8; 8]);

impl KeyFp {
    /// The SHA-256 computed here (no cache): `Key::key_fp` looks in the cache first.
    pub fn of(bytes: &[u8]) -> KeyFp {
        let digest = Sha256::digest(bytes);
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&digest[..8]);
        KeyFp(fp)
    }

    /// `fp:` + 16 hex digits, written into a fixed buffer (no allocation).
    pub fn to_buf(&self) -> [u8; 19] {
        let mut out = *b"fp:0000000000000000";
        hex_into(&self.0, &mut out[3..]);
        out
    }
}

impl fmt::Display for KeyFp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buf = self.to_buf();
        f.write_str(std::str::from_utf8(&buf).unwrap_or("fp:?"))
    }
}

impl fmt::Debug for KeyFp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Fingerprints of the keys this process's records named lately, shared by the threads
/// that encode records (the log's writer, and a thread writing a record through): a
/// program names one key in its export, whitelist, import and close records, and reading
/// 64 bytes costs far less than a SHA-256. Direct-mapped by the key's identity (`Fp`, a
/// well mixed hash already); each entry is a seqlock
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

    fn get(&self, t: u64, words: &[u64; 8]) -> Option<KeyFp> {
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
        (same && e.seq.load(Relaxed) == s1).then(|| KeyFp(fp.to_le_bytes()))
    }

    fn put(&self, t: u64, words: &[u64; 8], fp: KeyFp) {
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

/// The fingerprint of the first `len` bytes of `buf` (the rest zero; `id` its identity),
/// from the process's cache when it has it.
fn cached_fp(buf: &[u8; KEY_LEN], len: usize, id: Fp) -> KeyFp {
    cached_fp_in(&FP_CACHE, buf, len, id)
}

fn cached_fp_in<const N: usize>(
    cache: &FpCache<N>,
    buf: &[u8; KEY_LEN],
    len: usize,
    id: Fp,
) -> KeyFp {
    let words = words_of(buf);
    let t = id.as_u64();
    if let Some(fp) = cache.get(t, &words) {
        return fp;
    }
    let fp = KeyFp::of(&buf[..len]);
    cache.put(t, &words, fp);
    fp
}

/// A key that was readable: its bytes (kept inline, so no allocation) and identity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The identity (not the recorded fingerprint: that is `key_fp()`).
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
            fp: Fp::of_words(&words_of(&buf)),
            len: len as u8,
            bytes: buf,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The fingerprint records name the key by (a SHA-256 prefix), from the process's
    /// cache when a record named the key before. For the encoder only: nothing on a
    /// call's path asks for it.
    pub fn key_fp(&self) -> KeyFp {
        cached_fp(&self.bytes, self.len as usize, self.fp)
    }

    /// Replaces, in a message made on the calling thread, every mention of this key by its
    /// identity (`key#…`, as `Fp` prints) with its fingerprint (`fp:…`).
    pub fn name_in(&self, message: &mut String) {
        let id = self.fp.to_buf();
        let Ok(id) = std::str::from_utf8(&id) else {
            return;
        };
        if message.contains(id) {
            let fp = self.key_fp().to_buf();
            *message = message.replace(id, std::str::from_utf8(&fp).unwrap_or("fp:?"));
        }
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
    /// The key's identity.
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
        assert_eq!(KeyFp::of(b"abc").to_string(), "fp:ba7816bf8f01cfea");
        let k = KeyArg::from_prefix(b"abc\0garbage");
        assert_eq!(k.key().unwrap().key_fp().to_string(), "fp:ba7816bf8f01cfea");
        assert_eq!(k.key().unwrap().bytes(), b"abc");
    }

    #[test]
    fn identity_is_stable() {
        // Fixed values: every process, and every build of this version, must compute
        // these (the ledger shared by processes is indexed by them). Changing `id_of`
        // changes the ledger's meaning: bump its version with it.
        assert_eq!(Fp::of(b"").as_u64(), 0x3a5b_2dfe_ce23_c489);
        assert_eq!(Fp::of(b"abc").as_u64(), 0x32aa_fbeb_b675_37f3);
        let k64 = [b'7'; 64];
        assert_eq!(Fp::of(&k64).as_u64(), 0x1475_e8b5_5887_5433);
        assert_eq!(Fp::of(b"abc").to_string(), "key#f33775b6ebfbaa32");
        assert_eq!(Key::from_bytes(b"abc").fp, Fp::of(b"abc"));
    }

    #[test]
    fn identity_differs_on_every_single_byte_change() {
        let base = *b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let id = Fp::of(&base);
        let mut seen = std::collections::HashSet::new();
        for at in 0..64 {
            for v in [1u8, b'0', b'z', 0x80, 0xff] {
                if base[at] == v {
                    continue;
                }
                let mut other = base;
                other[at] = v;
                let o = Fp::of(&other);
                assert_ne!(o, id, "byte {at} set to {v}");
                assert!(
                    seen.insert(o),
                    "byte {at} set to {v}: an identity seen already"
                );
            }
        }
        // Shorter keys (zeros after their end) are other keys.
        for len in 0..64 {
            assert_ne!(Fp::of(&base[..len]), id, "prefix of {len}");
        }
        // Words swapped are another key.
        let mut swapped = base;
        swapped[..8].copy_from_slice(&base[8..16]);
        swapped[8..16].copy_from_slice(&base[..8]);
        assert_ne!(Fp::of(&swapped), id);
    }

    #[test]
    fn every_input_bit_flips_about_half_the_identity() {
        // Over many keys, flipping any one of the 512 input bits flips each output bit
        // with probability close to 1/2 (full avalanche).
        let mut flips = vec![[0u32; 64]; 512];
        const N: u32 = 200;
        for n in 0..N {
            let key = format!(
                "{:064x}",
                u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c)
            );
            let mut buf = [0u8; KEY_LEN];
            buf[..64].copy_from_slice(key.as_bytes());
            let base = id_of(&words_of(&buf));
            for (bit, row) in flips.iter_mut().enumerate() {
                let mut b = buf;
                b[bit / 8] ^= 1 << (bit % 8);
                let d = base ^ id_of(&words_of(&b));
                for (o, c) in row.iter_mut().enumerate() {
                    *c += ((d >> o) & 1) as u32;
                }
            }
        }
        for (bit, row) in flips.iter().enumerate() {
            for (o, &c) in row.iter().enumerate() {
                let p = f64::from(c) / f64::from(N);
                assert!(
                    (0.3..0.7).contains(&p),
                    "input bit {bit}, output bit {o}: {p}"
                );
            }
        }
    }

    #[test]
    fn message_names_the_key_by_fingerprint() {
        let k = Key::from_bytes(b"abc");
        let mut m = format!("key {} was exported; {} twice", k.fp, k.fp);
        k.name_in(&mut m);
        assert_eq!(
            m,
            "key fp:ba7816bf8f01cfea was exported; fp:ba7816bf8f01cfea twice"
        );
        // Another key's identity is left alone.
        let mut other = format!("key {}", Fp::of(b"abd"));
        let before = other.clone();
        k.name_in(&mut other);
        assert_eq!(other, before);
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
                assert_eq!(
                    key.key_fp(),
                    KeyFp::of(k.as_bytes()),
                    "round {round}, key {k}"
                );
            }
        }
        // Keys that differ in one character anywhere are told apart.
        let base = [b'7'; 64];
        for at in [0, 31, 63] {
            let mut other = base;
            other[at] = b'8';
            let (a, b) = (Key::from_bytes(&base), Key::from_bytes(&other));
            assert_ne!(a.key_fp(), b.key_fp(), "differ at {at}");
            assert_eq!(b.key_fp(), KeyFp::of(&other));
            assert_eq!(Key::from_bytes(&base).key_fp(), KeyFp::of(&base));
        }
        // A prefix of a cached key is another key.
        let long = Key::from_bytes(b"abcdef");
        let short = Key::from_bytes(b"abc");
        assert_ne!(long.key_fp(), short.key_fp());
        assert_eq!(short.key_fp(), KeyFp::of(b"abc"));
    }

    /// A key buffer as `Key::from_bytes` builds it.
    fn buf_of(k: &[u8]) -> [u8; KEY_LEN] {
        let mut b = [0u8; KEY_LEN];
        b[..k.len()].copy_from_slice(k);
        b
    }

    fn fp_in<const N: usize>(cache: &FpCache<N>, k: &[u8]) -> KeyFp {
        cached_fp_in(cache, &buf_of(k), k.len(), Fp::of(k))
    }

    #[test]
    fn process_cache_is_shared_by_threads() {
        static CACHE: FpCache<64> = FpCache::new();
        let key = *b"d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0";
        let words = words_of(&buf_of(&key));
        let t = Fp::of(&key).as_u64();
        assert_eq!(CACHE.get(t, &words), None, "empty at first");
        std::thread::spawn(move || fp_in(&CACHE, &key))
            .join()
            .unwrap();
        // Another thread's fingerprint is found here without computing it.
        assert_eq!(CACHE.get(t, &words), Some(KeyFp::of(&key)));
        assert_eq!(fp_in(&CACHE, &key), KeyFp::of(&key));
        // The empty key is cached like any other (its words are all zero).
        assert_eq!(fp_in(&CACHE, b""), KeyFp::of(b""));
        let w0 = words_of(&[0u8; KEY_LEN]);
        assert_eq!(CACHE.get(Fp::of(b"").as_u64(), &w0), Some(KeyFp::of(b"")));
    }

    #[test]
    fn keys_differing_in_their_last_characters_spread_over_entries() {
        let entries: std::collections::HashSet<usize> = (0..256u32)
            .map(|i| {
                let k = format!("{:056x}{i:08x}", 7);
                ((Fp::of(k.as_bytes()).as_u64() >> 32) as usize) % 1024
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
        let want: Vec<KeyFp> = keys.iter().map(|k| KeyFp::of(k)).collect();
        std::thread::scope(|s| {
            for t in 0..4 {
                let (keys, want) = (&keys, &want);
                s.spawn(move || {
                    for round in 0..20_000 {
                        let i = (round + t) % keys.len();
                        let got = fp_in(&CACHE, &keys[i]);
                        assert_eq!(got, want[i], "thread {t} round {round} key {i}");
                    }
                });
            }
        });
    }
}
