//! Rows of the drifted key ranges, read from a database here: range by
//! range where its scans follow key-byte order and its queries narrow to a
//! range through the key's index, otherwise in one scan dealt to the
//! ranges.

use std::ops::ControlFlow;

use driftsum_core::key::KeyRange;
use driftsum_core::{key, Key, Value};

use crate::build::scan_range;
use crate::reconcile::KeyedRow;
use crate::source::{ScanSpec, Source, SourceError};

/// Reads the rows of one side in each of `ranges` (ascending, disjoint),
/// each range's rows sorted by key, and how many rows the database sent.
///
/// With `by_range` (a side whose scans follow key-byte order and whose
/// range reads go through the key's index) the side is asked range by
/// range, until a range read sends far more rows than the range holds (its
/// SQL cannot compare the key in key order, so each range read is a whole
/// scan): the remaining ranges are then read by one scan. Any other side
/// (its range reads would each scan the table, inside the database or here)
/// is read once, whole, in the order it reads fastest, and its rows dealt
/// to the ranges here: one scan however many ranges drifted, never one per
/// range.
pub(super) fn fetch_ranges(
    source: &mut dyn Source,
    spec: &ScanSpec,
    ranges: &[KeyRange],
    by_range: bool,
) -> Result<(Vec<Vec<KeyedRow>>, u64), SourceError> {
    let mut out: Vec<Vec<KeyedRow>> = vec![Vec::new(); ranges.len()];
    let mut read = 0u64;
    if by_range {
        let mut i = 0;
        while i < ranges.len() {
            let r = &ranges[i];
            let rows = &mut out[i];
            let sent = scan_range(source, spec, r.after.as_ref(), &r.through, &mut |k, row| {
                rows.push(KeyedRow {
                    key: Key::from_bytes(k),
                    values: row.to_vec(),
                });
                ControlFlow::Continue(())
            })?;
            read += sent;
            let kept = rows.len() as u64;
            i += 1;
            // A source that cannot narrow its query to a key range (a key
            // type its SQL does not compare in key order) sent rows outside
            // it: the rest is read by one scan, not one such scan per range.
            if i < ranges.len() && !narrowed(sent, kept) {
                read += span_scan(source, spec, &ranges[i..], &mut out[i..])?;
                break;
            }
        }
        for rows in &mut out {
            rows.sort_by(|a, b| a.key.cmp(&b.key));
        }
        return Ok((out, read));
    }
    let nkey = spec.key.len();
    // The one range that can hold a key: the first ending at or after it.
    let place = |k: &[u8]| {
        let i = ranges.partition_point(|r| r.through.as_bytes() < k);
        ranges.get(i).is_some_and(|r| r.contains(k)).then_some(i)
    };
    let mut wbuf = Vec::new();
    // Rows outside every range are counted as read (their keys were), but
    // a source may leave their values undecoded.
    let mut wanted = |keys: &[Value]| {
        read += 1;
        key::encode_into(&mut wbuf, keys);
        place(&wbuf).is_some()
    };
    let mut kbuf = Vec::new();
    source.scan_unordered_wanted(spec, &mut wanted, &mut |row| {
        key::encode_into(&mut kbuf, &row[..nkey]);
        if let Some(i) = place(&kbuf) {
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

/// Rows a range read may send beyond those in the range before the source
/// counts as one that cannot narrow its queries.
const NARROW_SLACK: u64 = 1024;

/// Whether a range read that sent `sent` rows, `kept` of them in the range,
/// was narrowed to the range by the source.
fn narrowed(sent: u64, kept: u64) -> bool {
    sent <= kept.saturating_mul(2).saturating_add(NARROW_SLACK)
}

/// Reads all of `ranges` (ascending, disjoint) by one scan from the first's
/// start to the last's end, dealing the rows to `out`; the rows sent.
fn span_scan(
    source: &mut dyn Source,
    spec: &ScanSpec,
    ranges: &[KeyRange],
    out: &mut [Vec<KeyedRow>],
) -> Result<u64, SourceError> {
    let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
        return Ok(0);
    };
    scan_range(
        source,
        spec,
        first.after.as_ref(),
        &last.through,
        &mut |k, row| {
            // The one range that can hold the key: the first ending at or
            // after it.
            let i = ranges.partition_point(|r| r.through.as_bytes() < k);
            if ranges.get(i).is_some_and(|r| r.contains(k)) {
                out[i].push(KeyedRow {
                    key: Key::from_bytes(k),
                    values: row.to_vec(),
                });
            }
            ControlFlow::Continue(())
        },
    )
}

/// The rows of `keys` (each a key's values; `wanted`, their encodings,
/// sorted), looked up by equality through the key's index
/// ([`Source::scan_keys`]), in key order, and how many rows the database
/// sent; `None`, nothing read, when the source cannot look them up so.
pub(super) fn rows_of_keys(
    source: &mut dyn Source,
    spec: &ScanSpec,
    keys: &[Vec<Value>],
    wanted: &[Key],
) -> Result<Option<(Vec<KeyedRow>, u64)>, SourceError> {
    let nkey = spec.key.len();
    let (mut rows, mut sent, mut kbuf) = (Vec::new(), 0u64, Vec::new());
    let looked_up = source.scan_keys(spec, keys, &mut |row| {
        sent += 1;
        key::encode_into(&mut kbuf, &row[..nkey.min(row.len())]);
        if wanted.binary_search_by(|w| w.as_bytes().cmp(&kbuf)).is_ok() {
            rows.push(KeyedRow {
                key: Key::from_bytes(&kbuf),
                values: row.to_vec(),
            });
        }
        ControlFlow::Continue(())
    })?;
    if !looked_up {
        return Ok(None);
    }
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    rows.dedup_by(|a, b| a.key == b.key);
    Ok(Some((rows, sent)))
}
