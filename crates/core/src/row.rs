//! Row hashing: a scanned row's key bytes, canonical row bytes and row hash,
//! computed exactly as the tree builder expects them. Pure computation;
//! reading rows from a database lives in the tool, not here.

use crate::canon::{self, CanonOptions};
use crate::hash::{row_hash, Hash};
use crate::key;
use crate::value::Value;

/// Hashes scanned rows (key values first, then the compared values) into
/// leaf entries, reusing its buffers from row to row.
pub struct RowHasher {
    nkey: usize,
    order: Vec<usize>,
    opts: CanonOptions,
    kbuf: Vec<u8>,
    rbuf: Vec<u8>,
}

impl RowHasher {
    /// A hasher of rows holding `nkey` key values, then values up to
    /// `width` in all.
    pub fn new(nkey: usize, width: usize, opts: &CanonOptions) -> RowHasher {
        RowHasher {
            nkey,
            // The plan lists values by the source's column names on both
            // sides (a renamed replica column keeps its source's place).
            order: (nkey..width).collect(),
            opts: *opts,
            kbuf: Vec::with_capacity(64),
            rbuf: Vec::with_capacity(256),
        }
    }

    /// The row's key bytes and canonical row bytes.
    pub fn encode(&mut self, row: &[Value]) -> (&[u8], &[u8]) {
        key::encode_into(&mut self.kbuf, &row[..self.nkey]);
        canon::encode_row(&mut self.rbuf, row, &self.order, &self.opts);
        (&self.kbuf, &self.rbuf)
    }

    /// The row's key bytes alone.
    pub fn key(&mut self, row: &[Value]) -> &[u8] {
        key::encode_into(&mut self.kbuf, &row[..self.nkey]);
        &self.kbuf
    }

    /// The row's key bytes and row hash.
    pub fn hash(&mut self, row: &[Value]) -> (&[u8], Hash) {
        let (k, r) = self.encode(row);
        (k, row_hash(r))
    }

    /// The row's hash alone (its key bytes already known to the caller).
    pub fn row_hash(&mut self, row: &[Value]) -> Hash {
        canon::encode_row(&mut self.rbuf, row, &self.order, &self.opts);
        row_hash(&self.rbuf)
    }
}
