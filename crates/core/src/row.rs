//! Row hashing: a scanned row's key bytes, canonical row bytes and row hash,
//! computed exactly as the tree builder expects them, one row at a time or
//! in a [`RowBatch`] hashed side by side. Pure computation; reading rows
//! from a database lives in the tool, not here.

use crate::canon::{self, CanonOptions};
use crate::hash::{row_hash, row_hashes, Hash, LANES};
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

    /// Appends the row's key bytes and canonical row bytes to `batch`.
    pub fn push(&mut self, row: &[Value], batch: &mut RowBatch) {
        let (k, r) = self.encode(row);
        batch.push(k, r);
    }

    /// [`RowHasher::push`] for a row whose key bytes the caller has.
    pub fn push_keyed(&mut self, key: &[u8], row: &[Value], batch: &mut RowBatch) {
        canon::encode_row(&mut self.rbuf, row, &self.order, &self.opts);
        batch.push(key, &self.rbuf);
    }

    /// The row's hash alone (its key bytes already known to the caller).
    pub fn row_hash(&mut self, row: &[Value]) -> Hash {
        canon::encode_row(&mut self.rbuf, row, &self.order, &self.opts);
        row_hash(&self.rbuf)
    }
}

/// Consecutive rows' key bytes and canonical row bytes in one buffer, hashed
/// [`LANES`] rows at a time (BLAKE3 on one short row leaves most of a
/// vector unit idle). Reused from batch to batch: no allocation per row.
#[derive(Default)]
pub struct RowBatch {
    bytes: Vec<u8>,
    /// Per row: where its key ends and where its row bytes end.
    ends: Vec<(usize, usize)>,
    /// The hashes of the first rows, once [`RowBatch::hash`] ran.
    hashes: Vec<Hash>,
}

impl RowBatch {
    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch holds no row.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.hashes.clear();
    }

    /// Appends one row's key bytes and canonical row bytes, encoded by a
    /// [`RowHasher`] or exactly as one would encode them.
    pub fn push(&mut self, key: &[u8], row: &[u8]) {
        self.bytes.extend_from_slice(key);
        let key_end = self.bytes.len();
        self.bytes.extend_from_slice(row);
        self.ends.push((key_end, self.bytes.len()));
    }

    /// Row `i`'s key bytes and canonical row bytes.
    fn row(&self, i: usize) -> (&[u8], &[u8]) {
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p].1);
        let (key_end, end) = self.ends[i];
        (&self.bytes[start..key_end], &self.bytes[key_end..end])
    }

    /// Hashes every row not hashed yet.
    pub fn hash(&mut self) {
        let mut done = self.hashes.len();
        while done < self.ends.len() {
            let n = LANES.min(self.ends.len() - done);
            let mut rows: [&[u8]; LANES] = [&[]; LANES];
            for (j, r) in rows[..n].iter_mut().enumerate() {
                *r = self.row(done + j).1;
            }
            let mut out = [Hash::default(); LANES];
            row_hashes(&rows[..n], &mut out[..n]);
            self.hashes.extend_from_slice(&out[..n]);
            done += n;
        }
    }

    /// Each hashed row's key bytes and row hash, in order.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &Hash)> {
        self.hashes
            .iter()
            .enumerate()
            .map(|(i, h)| (self.row(i).0, h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of any size hashes each row as one-by-one hashing does, in
    /// order, also when hashed in parts.
    #[test]
    fn a_batch_hashes_as_rows_one_by_one() {
        let opts = CanonOptions::default();
        let rows: Vec<Vec<Value>> = (0..37)
            .map(|i| {
                vec![
                    Value::Int(i),
                    Value::Text("x".repeat(i as usize * 7)),
                    if i % 3 == 0 {
                        Value::Null
                    } else {
                        Value::Int(-i)
                    },
                ]
            })
            .collect();
        for parts in [1, 2, 5] {
            let mut one = RowHasher::new(1, 3, &opts);
            let mut batched = RowHasher::new(1, 3, &opts);
            let mut batch = RowBatch::default();
            for (i, row) in rows.iter().enumerate() {
                if i % 2 == 0 {
                    batched.push(row, &mut batch);
                } else {
                    let key = crate::key::encode(&row[..1]);
                    batched.push_keyed(key.as_bytes(), row, &mut batch);
                }
                if i % (rows.len() / parts) == 0 {
                    batch.hash();
                }
            }
            batch.hash();
            assert_eq!(batch.len(), rows.len());
            let got: Vec<(Vec<u8>, Hash)> =
                batch.entries().map(|(k, h)| (k.to_vec(), *h)).collect();
            let want: Vec<(Vec<u8>, Hash)> = rows
                .iter()
                .map(|r| {
                    let (k, h) = one.hash(r);
                    (k.to_vec(), h)
                })
                .collect();
            assert_eq!(got, want);
            batch.clear();
            assert!(batch.is_empty() && batch.entries().next().is_none());
        }
    }
}
