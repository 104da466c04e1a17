//! A cheap hash for the report's hot maps (a key's fingerprint, a pid, a process), where
//! std's SipHash cost a few percent of the whole report: the report reads logs, not
//! requests from a network, and the worst a crafted log can do is make its own lookups
//! slower. Not for maps whose iteration order reaches the output: that order changes with
//! the hash (std's own is random per run, so no such map may exist anyway).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A word at a time: rotate, mix in, multiply by an odd constant; `finish` folds the high
/// half down, as the table picks buckets by the low bits and tags by the high ones.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl FastHasher {
    #[inline]
    fn mix(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(26) ^ w).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }
    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }
    #[inline]
    fn write_i64(&mut self, n: i64) {
        self.mix(n as u64);
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        let h = self.0;
        (h ^ (h >> 29)).wrapping_mul(K) ^ (h >> 32)
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
#[allow(dead_code)]
pub type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn h<T: Hash + ?Sized>(v: &T) -> u64 {
        BuildHasherDefault::<FastHasher>::default().hash_one(v)
    }

    #[test]
    fn different_fingerprints_hash_apart_and_maps_work() {
        // Fingerprints differ in a few hex digits; lengths and tails must count too.
        let fps: Vec<String> = (0..20_000u64)
            .map(|i| format!("fp:{:016x}", i * 7919))
            .collect();
        let hashes: HashSet<u64> = fps.iter().map(|f| h(f.as_str())).collect();
        assert_eq!(hashes.len(), fps.len());
        assert_ne!(h("a"), h("a\0"));
        assert_ne!(h(&(1i64, 2i64)), h(&(2i64, 1i64)));
        // The high 7 bits (the table's tags) take many values over sequential pids.
        let tags: HashSet<u64> = (0..1000i64).map(|p| h(&p) >> 57).collect();
        assert!(tags.len() > 100, "{}", tags.len());
        let mut m: FastMap<String, usize> = FastMap::default();
        for (i, f) in fps.iter().enumerate() {
            m.insert(f.clone(), i);
        }
        assert!(fps.iter().enumerate().all(|(i, f)| m[f.as_str()] == i));
    }
}
