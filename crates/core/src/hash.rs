//! Hash types: BLAKE3 row, leaf and node hashes (each in its own keyed
//! domain so a row can never pose as a node), and the cheap key hash that
//! decides chunk boundaries.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// A 32-byte BLAKE3 digest of a row, leaf or inner node.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Hash(pub [u8; 32]);

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", crate::value::hex(&self.0[..8]))
    }
}

/// Which kind of thing a hash is of; each has its own BLAKE3 key.
#[derive(Clone, Copy, Debug)]
pub enum Domain {
    Row,
    Leaf,
    Node,
}

fn domain_key(domain: Domain) -> &'static [u8; 32] {
    static KEYS: OnceLock<[[u8; 32]; 3]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        [
            blake3::derive_key("driftsum 2026-11 row hash", b""),
            blake3::derive_key("driftsum 2026-11 leaf hash", b""),
            blake3::derive_key("driftsum 2026-11 node hash", b""),
        ]
    });
    &keys[domain as usize]
}

/// A fresh hasher in the given domain.
pub fn hasher(domain: Domain) -> blake3::Hasher {
    blake3::Hasher::new_keyed(domain_key(domain))
}

/// The hash of one row from its canonical key and canonical row bytes.
pub fn row_hash(key: &[u8], row: &[u8]) -> Hash {
    // The same bytes as three incremental updates, but a typical row fits a
    // stack buffer and BLAKE3's one-shot call is much cheaper for small
    // inputs than a streaming hasher.
    let n = 4 + key.len() + row.len();
    if n <= 512 {
        let mut buf = [0u8; 512];
        buf[..4].copy_from_slice(&(key.len() as u32).to_le_bytes());
        buf[4..4 + key.len()].copy_from_slice(key);
        buf[4 + key.len()..n].copy_from_slice(row);
        return Hash(*blake3::keyed_hash(domain_key(Domain::Row), &buf[..n]).as_bytes());
    }
    let mut h = hasher(Domain::Row);
    h.update(&(key.len() as u32).to_le_bytes());
    h.update(key);
    h.update(row);
    Hash(*h.finalize().as_bytes())
}

/// A fast, fixed, non-cryptographic 64-bit hash of key bytes, used only to
/// place chunk boundaries. It is part of the tree format: changing it changes
/// every tree's shape (never its correctness).
pub fn boundary_hash(key: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0x243F_6A88_85A3_08D3 ^ (key.len() as u64).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8-byte chunk"));
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(buf))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    // splitmix64 finalizer: every input bit reaches every output bit.
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_equals_streaming() {
        for (k, r) in [
            (&b"k"[..], &[7u8; 100][..]),
            (&[1u8; 40][..], &[2u8; 600][..]),
            (&[][..], &[][..]),
        ] {
            let mut h = hasher(Domain::Row);
            h.update(&(k.len() as u32).to_le_bytes());
            h.update(k);
            h.update(r);
            assert_eq!(row_hash(k, r), Hash(*h.finalize().as_bytes()));
        }
    }

    #[test]
    fn domains_are_separate() {
        let mut a = hasher(Domain::Leaf);
        let mut b = hasher(Domain::Node);
        a.update(b"x");
        b.update(b"x");
        assert_ne!(a.finalize(), b.finalize());
        assert_ne!(row_hash(b"k", b"v"), row_hash(b"kv", b""));
    }

    #[test]
    fn boundary_hash_spreads() {
        // About 1 in 64 of consecutive integer keys falls under 1/64 of the range.
        let threshold = u64::MAX / 64;
        let hits = (0..64_000u64)
            .filter(|i| boundary_hash(&i.to_be_bytes()) < threshold)
            .count();
        assert!((800..1200).contains(&hits), "{hits}");
    }
}
