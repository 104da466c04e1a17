//! IPC keys as the shim sees them: read safely from the caller's buffer (at most 65 bytes,
//! up to the first NUL) and named by a fingerprint that is the same in every process.

use sha2::{Digest, Sha256};
use std::fmt;

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

/// Keys fingerprinted lately by this thread: a program names the same key in its export,
/// whitelist and close calls, and a 64-byte compare costs far less than a SHA-256.
const FP_CACHE: usize = 8;

/// A cached key: its buffer, its length, its fingerprint, its `tag`.
type Recent = ([u8; KEY_LEN], u8, Fp, u64);

thread_local! {
    // Plain data with `const` initialisation: no allocation, no destructor to register.
    static RECENT: std::cell::RefCell<([Recent; FP_CACHE], usize)> =
        const { std::cell::RefCell::new(([([0u8; KEY_LEN], 0, Fp([0; 8]), 0); FP_CACHE], 0)) };
}

/// A cheap summary of a whole key buffer: the cache compares whole buffers only where the
/// tags are equal (keys often differ only in their last characters).
fn tag(buf: &[u8; KEY_LEN]) -> u64 {
    let mut h = u64::from(buf[KEY_LEN - 1]);
    for word in buf[..KEY_LEN - 1].chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        h = (h ^ u64::from_le_bytes(w))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
    h
}

/// The fingerprint of the first `len` bytes of `buf` (the rest zero), from this thread's
/// cache when it has it.
fn cached_fp(buf: &[u8; KEY_LEN], len: usize) -> Fp {
    let t = tag(buf);
    let hit = RECENT.try_with(|r| {
        let r = r.try_borrow().ok()?;
        r.0.iter()
            .find(|(k, l, _, kt)| *kt == t && usize::from(*l) == len && k == buf)
            .map(|e| e.2)
    });
    if let Ok(Some(fp)) = hit {
        return fp;
    }
    let fp = Fp::of(&buf[..len]);
    let _ = RECENT.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            let at = r.1 % FP_CACHE;
            r.0[at] = (*buf, len as u8, fp, t);
            r.1 = at + 1;
        }
    });
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
}
