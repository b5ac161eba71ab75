//! Reading the rows of given keys again, on both sides, in fresh snapshots:
//! what a recheck (rows in flight) and `min_age` (rows changed lately) read.
//! Each key is read through the drifted range that held it in the level's
//! reading (about a leaf's rows, found by the key's index), never by
//! running the level again; a side whose range reads could miss a row (a
//! SQLite key stored in another storage class than its column's), or a key
//! in no drifted range, is read by one scan of the whole table instead.

use std::ops::ControlFlow;

use driftsum_core::key::{self, KeyRange};
use driftsum_core::{Key, Value};

use super::level::Sides;
use crate::build::scan_range;
use crate::check::plan::{plan, Plan};
use crate::check::{ColumnChoice, RangeOutcome};
use crate::config::Config;
use crate::reconcile::KeyedRow;
use crate::source::{ScanSpec, Source, SourceError};

/// The keys to read again, and what is known of where they are.
pub struct Wanted<'a> {
    /// The source's name of the table.
    pub table: &'a str,
    /// The columns to read besides the key.
    pub choice: ColumnChoice,
    pub keys: Vec<Vec<Value>>,
    /// The drifted ranges of the reading that found the keys.
    pub ranges: &'a [RangeOutcome],
    /// Whether that reading found both sides' range reads to find every row.
    pub by_range: bool,
}

/// Both sides' rows with the wanted keys (those a side holds), in key
/// order, read by `plan`, and the rows the databases sent.
pub struct Reread {
    pub plan: Plan,
    pub source: Vec<KeyedRow>,
    pub target: Vec<KeyedRow>,
    pub source_read: u64,
    pub target_read: u64,
}

/// Reads the wanted keys on both sides over fresh connections, released
/// afterwards.
pub fn read(sides: &mut Sides, config: &Config, w: &Wanted<'_>) -> Result<Reread, String> {
    sides.release();
    let result = read_open(sides, config, w);
    sides.release();
    result
}

fn read_open(sides: &mut Sides, config: &Config, w: &Wanted<'_>) -> Result<Reread, String> {
    let replica = config.replica_table(w.table);
    let (src, rep) = sides.databases()?;
    let s = src.schema(w.table).map_err(|e| format!("source: {e}"))?;
    let t = rep.schema(&replica).map_err(|e| format!("replica: {e}"))?;
    let plan = plan(&s, &t, &w.choice, config).map_err(|e| e.to_string())?;
    let mut keys: Vec<Vec<u8>> = w
        .keys
        .iter()
        .map(|k| key::encode(k).as_bytes().to_vec())
        .collect();
    keys.sort();
    keys.dedup();
    let ranges = ranges_of(&keys, w.ranges).filter(|_| w.by_range);
    let (source, source_read) = read_side(src, &plan.source, &keys, ranges.as_deref())
        .map_err(|e| format!("source: {e}"))?;
    let (target, target_read) = read_side(rep, &plan.target, &keys, ranges.as_deref())
        .map_err(|e| format!("replica: {e}"))?;
    Ok(Reread {
        plan,
        source,
        target,
        source_read,
        target_read,
    })
}

/// The drifted ranges holding `keys` (sorted), each once and ascending;
/// `None` when a key lies in none of them.
fn ranges_of(keys: &[Vec<u8>], ranges: &[RangeOutcome]) -> Option<Vec<KeyRange>> {
    let keyed: Vec<KeyRange> = ranges
        .iter()
        .map(|r| KeyRange {
            after: r.after.as_deref().map(key::encode),
            through: key::encode(&r.last),
        })
        .collect();
    let mut out: Vec<KeyRange> = Vec::new();
    for k in keys {
        let i = keyed.partition_point(|r| r.through.as_bytes() < k.as_slice());
        let r = keyed.get(i).filter(|r| r.contains(k))?;
        if out.last() != Some(r) {
            out.push(r.clone());
        }
    }
    Some(out)
}

/// One side's rows with `keys` (sorted): through `ranges` when given, else
/// by one whole scan; and the rows the database sent.
fn read_side(
    source: &mut dyn Source,
    spec: &ScanSpec,
    keys: &[Vec<u8>],
    ranges: Option<&[KeyRange]>,
) -> Result<(Vec<KeyedRow>, u64), SourceError> {
    let mut rows = Vec::new();
    let mut sent = 0u64;
    if let Some(ranges) = ranges {
        let mut keep = |k: &[u8], row: &[Value]| {
            if keys.binary_search_by(|w| w.as_slice().cmp(k)).is_ok() {
                rows.push(KeyedRow {
                    key: Key::from_bytes(k),
                    values: row.to_vec(),
                });
            }
            ControlFlow::Continue(())
        };
        for r in ranges {
            sent += scan_range(source, spec, r.after.as_ref(), &r.through, &mut keep)?;
        }
    }
    // A range read that met a key its query's comparisons skip (the side
    // then knows it) may have missed rows: read the whole table instead.
    if ranges.is_none() || !source.ranges_find_every_row(spec) {
        rows.clear();
        let nkey = spec.key.len();
        let mut kbuf = Vec::new();
        source.scan(spec, None, &mut |row| {
            sent += 1;
            key::encode_into(&mut kbuf, &row[..nkey]);
            if keys.binary_search(&kbuf).is_ok() {
                rows.push(KeyedRow {
                    key: Key::from_bytes(&kbuf),
                    values: row.to_vec(),
                });
            }
            ControlFlow::Continue(())
        })?;
    }
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    Ok((rows, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(after: Option<i128>, first: i128, last: i128) -> RangeOutcome {
        RangeOutcome {
            after: after.map(|a| vec![Value::Int(a)]),
            first: vec![Value::Int(first)],
            last: vec![Value::Int(last)],
            source_rows: 1,
            target_rows: 1,
        }
    }

    fn k(i: i128) -> Vec<u8> {
        key::encode(&[Value::Int(i)]).as_bytes().to_vec()
    }

    #[test]
    fn keys_find_their_ranges_once() {
        let ranges = [range(None, 1, 10), range(Some(40), 41, 50)];
        let got = ranges_of(&[k(1), k(5), k(10), k(45)], &ranges).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].after, None);
        assert_eq!(got[1].after, Some(key::encode(&[Value::Int(40)])));
        // The bounds are exclusive below, inclusive above.
        assert!(ranges_of(&[k(40)], &ranges).is_none());
        assert!(ranges_of(&[k(11)], &ranges).is_none());
        assert!(ranges_of(&[k(50)], &ranges).is_some());
        assert!(ranges_of(&[k(51)], &ranges).is_none());
    }
}
