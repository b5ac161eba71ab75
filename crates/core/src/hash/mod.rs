//! Hash types: BLAKE3 row, leaf and node hashes (each in its own keyed
//! domain so a row can never pose as a node), and the cheap key hash that
//! decides chunk boundaries. Rows hashed side by side are in [`lanes`].

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

mod lanes;

pub use lanes::LANES;

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
    /// A row's canonical bytes.
    Row,
    /// A leaf's entries.
    Leaf,
    /// An inner node's child hashes.
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

/// The hash of one row's canonical bytes. The key is not in it: a leaf
/// binds each key to its row's hash (see [`leaf_entry`]), and leaving it out
/// keeps a typical row within one BLAKE3 block.
pub fn row_hash(row: &[u8]) -> Hash {
    // A tree over the keys alone (`check`'s `keys` level) hashes an empty
    // row per key: the same hash every time, computed once.
    static EMPTY: std::sync::OnceLock<Hash> = std::sync::OnceLock::new();
    if row.is_empty() {
        return *EMPTY.get_or_init(|| hash_row_bytes(row));
    }
    hash_row_bytes(row)
}

/// The hashes of up to [`LANES`] rows' canonical bytes, computed side by
/// side into the same places of `out`: each is [`row_hash`] of its row.
pub fn row_hashes(rows: &[&[u8]], out: &mut [Hash]) {
    assert!(out.len() >= rows.len(), "a row hash has no place");
    let mut bytes = [[0u8; 32]; LANES];
    let n = rows.len();
    lanes::keyed_hashes(domain_key(Domain::Row), rows, &mut bytes[..n]);
    for (o, b) in out.iter_mut().zip(&bytes[..n]) {
        *o = Hash(*b);
    }
}

fn hash_row_bytes(row: &[u8]) -> Hash {
    Hash(*blake3::keyed_hash(domain_key(Domain::Row), row).as_bytes())
}

/// Bytes of a hash that leaves, the walk and tree files carry (see
/// `tree::node` for why 128 bits is enough).
pub const HASH_PREFIX_LEN: usize = 16;

/// Appends one row's leaf entry: LEB128 key length, the key, and the first
/// [`HASH_PREFIX_LEN`] bytes of its row hash. A leaf's hash is the hash of
/// its entries, so it can be recomputed from stored entries alone.
pub fn leaf_entry(out: &mut Vec<u8>, key: &[u8], row_hash: &Hash) {
    let mut prefix = [0u8; HASH_PREFIX_LEN];
    prefix.copy_from_slice(&row_hash.0[..HASH_PREFIX_LEN]);
    leaf_entry_prefix(out, key, &prefix);
}

/// [`leaf_entry`] from the prefix of the row's hash, which is all of it an
/// entry holds.
pub fn leaf_entry_prefix(out: &mut Vec<u8>, key: &[u8], prefix: &[u8; HASH_PREFIX_LEN]) {
    crate::varint::put(out, key.len() as u64);
    out.extend_from_slice(key);
    out.extend_from_slice(prefix);
}

/// The hash of a node's bytes (leaf entries, or child hashes) in its domain,
/// in one call: BLAKE3's per-call cost dominates at these sizes.
pub fn node_hash(domain: Domain, bytes: &[u8]) -> Hash {
    Hash(*blake3::keyed_hash(domain_key(domain), bytes).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_equals_streaming() {
        for r in [&[7u8; 100][..], &[2u8; 600][..], &[][..]] {
            let mut h = hasher(Domain::Row);
            h.update(r);
            assert_eq!(row_hash(r), Hash(*h.finalize().as_bytes()));
        }
    }

    #[test]
    fn rows_side_by_side_hash_as_one_by_one() {
        let rows: Vec<Vec<u8>> = (0..LANES).map(|i| vec![i as u8; 40 * i]).collect();
        let rows: Vec<&[u8]> = rows.iter().map(Vec::as_slice).collect();
        for n in 0..=LANES {
            let mut out = vec![Hash::default(); n];
            row_hashes(&rows[..n], &mut out);
            let one_by_one: Vec<Hash> = rows[..n].iter().map(|r| row_hash(r)).collect();
            assert_eq!(out, one_by_one);
        }
    }

    #[test]
    fn leaf_entries_delimit_keys() {
        let h = row_hash(b"v");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        leaf_entry(&mut a, b"k", &h);
        leaf_entry(&mut b, &[b'k'; 200], &h);
        assert_eq!(a[0], 1);
        assert_eq!(&b[..2], &[0xC8, 0x01]);
        assert_eq!(a.len(), 1 + 1 + HASH_PREFIX_LEN);
    }

    #[test]
    fn domains_are_separate() {
        let mut a = hasher(Domain::Leaf);
        let mut b = hasher(Domain::Node);
        a.update(b"x");
        b.update(b"x");
        assert_ne!(a.finalize(), b.finalize());
        assert_ne!(node_hash(Domain::Row, b"x"), node_hash(Domain::Leaf, b"x"));
        assert_eq!(node_hash(Domain::Row, b"x"), row_hash(b"x"));
    }
}
