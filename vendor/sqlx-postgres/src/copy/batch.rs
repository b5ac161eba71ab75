//! driftsum's patch: joining the CopyData messages already buffered.
//!
//! The server sends one CopyData message per row of a `COPY … TO STDOUT`;
//! handing each on through the stream costs more than the row's own
//! parsing, so `copy_out_raw` joins every whole CopyData message already
//! read with the one it received. This file uses nothing but `std`, so
//! driftsum's tests include it (`tests/integration/copy_batch.rs`).

/// A backend message's type byte for CopyData.
const COPY_DATA: u8 = b'd';

/// `first`, followed by the payloads of the whole CopyData messages at the
/// start of `buffered`, and how many bytes of `buffered` those messages
/// took; `None` when `buffered` does not start with one.
///
/// A message is its type byte, a big-endian `u32` length that counts itself
/// (so at least 4), then the payload. The first message that is not
/// CopyData, or not whole, ends the run: it is left for the usual receive.
pub(super) fn join_copy_data(first: &[u8], buffered: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut joined: Option<Vec<u8>> = None;
    let mut used = 0;
    while let Some(&[kind, a, b, c, d]) = buffered.get(used..used + 5) {
        let len = u32::from_be_bytes([a, b, c, d]) as usize;
        if kind != COPY_DATA || len < 4 {
            break;
        }
        let Some(end) = (used + 1)
            .checked_add(len)
            .filter(|&end| end <= buffered.len())
        else {
            break;
        };
        let out = joined.get_or_insert_with(|| {
            let mut v = Vec::with_capacity(first.len() + buffered.len());
            v.extend_from_slice(first);
            v
        });
        out.extend_from_slice(&buffered[used + 5..end]);
        used = end;
    }
    joined.map(|v| (v, used))
}
