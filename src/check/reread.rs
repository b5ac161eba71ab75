//! Reading the rows of given keys again on one side, and only those: what a
//! recheck (rows in flight), `min_age` (rows changed lately) and a repair
//! (its planned keys before writing, its repaired keys after) read, instead
//! of running a whole comparison again.
//!
//! A key whose last column is an integer is read by its own range (`n - 1`
//! excluded, `n` included, the other columns equal), so a few scattered
//! keys cost a few indexed reads however many of the table's ranges they
//! drifted; any other key through the drifted range that held it in the
//! comparison that found it (about a leaf's rows). On a side whose range
//! reads cannot go through the key's index (a decimal key, text in a
//! collation that is not byte order), the keys are looked up by equality
//! instead, where the source can ([`Source::scan_keys`]). A side whose range reads
//! could miss a row (a SQLite key stored in another storage class than its
//! column's), or a key in no such range, is read by one scan of the whole
//! table instead.

use std::ops::ControlFlow;

use driftsum_core::key::{self, KeyRange};
use driftsum_core::{Key, LogicalType, Value};

use super::fetch::{fetch_ranges, rows_of_keys};
use super::RangeOutcome;
use crate::reconcile::KeyedRow;
use crate::source::{ScanSpec, Source, SourceError};

/// The key ranges of a comparison's drifted ranges, in their order.
pub fn key_ranges(ranges: &[RangeOutcome]) -> Vec<KeyRange> {
    ranges
        .iter()
        .map(|r| KeyRange {
            after: r.after.as_deref().map(key::encode),
            through: key::encode(&r.last),
        })
        .collect()
}

/// One side's rows with `keys` (those it holds), in key order, and how many
/// rows the database sent. `by_range`: whether the comparison that found
/// the keys found this side's range reads to find every row; `drifted`:
/// its drifted ranges (ascending), for keys that cannot be read alone.
pub fn read_keys(
    source: &mut dyn Source,
    spec: &ScanSpec,
    keys: &[Vec<Value>],
    by_range: bool,
    drifted: &[KeyRange],
) -> Result<(Vec<KeyedRow>, u64), SourceError> {
    let mut wanted: Vec<Key> = keys.iter().map(|k| key::encode(k)).collect();
    wanted.sort();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let is_wanted = |k: &[u8]| wanted.binary_search_by(|w| w.as_bytes().cmp(k)).is_ok();
    let mut sent = 0u64;
    // Only where the comparison found this side's reads to reach every
    // row: a key stored so that a query's comparisons skip it would be
    // missed by a lookup too.
    let indexed = source.ranges_use_index(spec)?;
    if by_range && !indexed {
        if let Some(found) = rows_of_keys(source, spec, keys, &wanted)? {
            return Ok(found);
        }
    }
    if let Some(ranges) = by_range.then(|| reads(spec, keys, drifted)).flatten() {
        let (found, read) = fetch_ranges(source, spec, &ranges, indexed)?;
        sent += read;
        // A range read that met a key its query's comparisons skip (the
        // side then knows it) may have missed rows: read the whole table.
        if source.ranges_find_every_row(spec) {
            let mut rows: Vec<KeyedRow> = found
                .into_iter()
                .flatten()
                .filter(|r| is_wanted(r.key.as_bytes()))
                .collect();
            rows.sort_by(|a, b| a.key.cmp(&b.key));
            rows.dedup_by(|a, b| a.key == b.key);
            return Ok((rows, sent));
        }
    }
    let mut rows = Vec::new();
    let nkey = spec.key.len();
    let mut kbuf = Vec::new();
    source.scan(spec, None, &mut |row| {
        sent += 1;
        key::encode_into(&mut kbuf, &row[..nkey]);
        if is_wanted(&kbuf) {
            rows.push(KeyedRow {
                key: Key::from_bytes(&kbuf),
                values: row.to_vec(),
            });
        }
        ControlFlow::Continue(())
    })?;
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    Ok((rows, sent))
}

/// The ranges that read `keys`: each key's own range where it has one,
/// else the drifted range holding it; merged where they overlap or touch,
/// ascending. `None` when a key has neither.
fn reads(spec: &ScanSpec, keys: &[Vec<Value>], drifted: &[KeyRange]) -> Option<Vec<KeyRange>> {
    let mut out: Vec<KeyRange> = Vec::with_capacity(keys.len());
    for k in keys {
        match alone(spec, k) {
            Some(r) => out.push(r),
            None => {
                let e = key::encode(k);
                let i = drifted.partition_point(|r| r.through < e);
                out.push(drifted.get(i).filter(|r| r.contains(e.as_bytes()))?.clone());
            }
        }
    }
    Some(merged(out))
}

/// The range holding `k` and no other key: `(k with its last column - 1,
/// k]`, for a key whose last column is an integer whose predecessor every
/// engine's 64-bit integers can bind.
fn alone(spec: &ScanSpec, k: &[Value]) -> Option<KeyRange> {
    let (last, lead) = k.split_last()?;
    let column = spec.key.get(k.len() - 1)?;
    match (column.rule.ty, last) {
        (LogicalType::Integer, Value::Int(n)) if *n > i128::from(i64::MIN) => {
            let mut before = lead.to_vec();
            before.push(Value::Int(n - 1));
            Some(KeyRange {
                after: Some(key::encode(&before)),
                through: key::encode(k),
            })
        }
        _ => None,
    }
}

/// `ranges` as their union: disjoint, ascending, those that overlap or
/// touch made one.
fn merged(mut ranges: Vec<KeyRange>) -> Vec<KeyRange> {
    // `None` (from the first key) sorts first, as it should.
    ranges.sort_by(|a, b| a.after.cmp(&b.after).then(a.through.cmp(&b.through)));
    let mut out: Vec<KeyRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(prev) if r.after.as_ref().is_none_or(|a| *a <= prev.through) => {
                if r.through > prev.through {
                    prev.through = r.through;
                }
            }
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ColumnSpec;

    fn k(i: i128) -> Key {
        key::encode(&[Value::Int(i)])
    }

    fn range(after: Option<i128>, through: i128) -> KeyRange {
        KeyRange {
            after: after.map(k),
            through: k(through),
        }
    }

    fn spec(ty: LogicalType) -> ScanSpec {
        ScanSpec {
            table: "t".into(),
            key: vec![ColumnSpec {
                name: "id".into(),
                rule: driftsum_core::coerce::ColumnRule::new(ty),
            }],
            values: Vec::new(),
            filter: None,
            ranges: Vec::new(),
        }
    }

    #[test]
    fn integer_keys_are_read_alone_and_neighbours_together() {
        let s = spec(LogicalType::Integer);
        let keys: Vec<Vec<Value>> = [7, 3, 4, 10].map(|i| vec![Value::Int(i)]).into();
        let got = reads(&s, &keys, &[]).unwrap();
        assert_eq!(
            got,
            [range(Some(2), 4), range(Some(6), 7), range(Some(9), 10)]
        );
    }

    #[test]
    fn other_keys_are_read_through_their_drifted_range() {
        let s = spec(LogicalType::Text);
        let t = |s: &str| vec![Value::Text(s.into())];
        let drifted = [
            KeyRange {
                after: None,
                through: key::encode(&t("c")),
            },
            KeyRange {
                after: Some(key::encode(&t("m"))),
                through: key::encode(&t("p")),
            },
        ];
        let got = reads(&s, &[t("a"), t("b"), t("n")], &drifted).unwrap();
        assert_eq!(got, drifted);
        // The bounds are exclusive below, inclusive above.
        assert!(reads(&s, &[t("m")], &drifted).is_none());
        assert!(reads(&s, &[t("p")], &drifted).is_some());
        assert!(reads(&s, &[t("q")], &drifted).is_none());
    }

    #[test]
    fn ranges_merge_into_their_union() {
        let got = merged(vec![
            range(Some(40), 50),
            range(Some(44), 45),
            range(None, 10),
            range(Some(10), 12),
            range(Some(20), 30),
        ]);
        assert_eq!(
            got,
            [range(None, 12), range(Some(20), 30), range(Some(40), 50)]
        );
    }
}
