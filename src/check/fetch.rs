//! Rows of the drifted key ranges, read from a database here: range by
//! range where its scans follow key-byte order, otherwise in one scan of
//! the whole table dealt to the ranges.

use std::ops::ControlFlow;

use driftsum_core::key::KeyRange;
use driftsum_core::{key, Key};

use crate::build::scan_range;
use crate::reconcile::KeyedRow;
use crate::source::{ScanSpec, Source, SourceError};

/// Reads the rows of one side in each of `ranges` (ascending, disjoint),
/// each range's rows sorted by key, and how many rows the database sent.
///
/// A side whose scans follow key-byte order is asked range by range; any
/// other side is read once, whole, and its rows dealt to the ranges here:
/// one scan however many ranges drifted, never one per range.
pub(super) fn fetch_ranges(
    source: &mut dyn Source,
    spec: &ScanSpec,
    ranges: &[KeyRange],
    ordered: bool,
) -> Result<(Vec<Vec<KeyedRow>>, u64), SourceError> {
    let mut out: Vec<Vec<KeyedRow>> = vec![Vec::new(); ranges.len()];
    let mut read = 0u64;
    if ordered {
        for (r, rows) in ranges.iter().zip(&mut out) {
            read += scan_range(source, spec, r.after.as_ref(), &r.through, &mut |k, row| {
                rows.push(KeyedRow {
                    key: Key::from_bytes(k),
                    values: row.to_vec(),
                });
                ControlFlow::Continue(())
            })?;
            rows.sort_by(|a, b| a.key.cmp(&b.key));
        }
        return Ok((out, read));
    }
    let nkey = spec.key.len();
    let mut kbuf = Vec::new();
    source.scan(spec, None, &mut |row| {
        read += 1;
        key::encode_into(&mut kbuf, &row[..nkey]);
        // The one range that can hold the key: the first ending at or
        // after it.
        let i = ranges.partition_point(|r| r.through.as_bytes() < kbuf.as_slice());
        if ranges.get(i).is_some_and(|r| r.contains(&kbuf)) {
            out[i].push(KeyedRow {
                key: Key::from_bytes(&kbuf),
                values: row.to_vec(),
            });
        }
        ControlFlow::Continue(())
    })?;
    for rows in &mut out {
        rows.sort_by(|a, b| a.key.cmp(&b.key));
    }
    Ok((out, read))
}
