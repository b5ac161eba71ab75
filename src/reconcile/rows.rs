//! Row-level diff: two sides' rows of a drifted range merged by key into
//! missing / extra / changed differences. Reading the rows is the check's
//! job (`check::fetch`), not this module's.

use driftsum_core::canon::{self, CanonOptions};
use driftsum_core::merge::{merge_by, Paired};
use driftsum_core::{Key, Value};

#[cfg(doc)]
use crate::source::ScanSpec;

/// A row with its encoded key: `values` holds the key values, then the
/// compared value columns, in [`ScanSpec`] order.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyedRow {
    pub key: Key,
    pub values: Vec<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// In the source, not in the replica.
    Missing,
    /// In the replica, not in the source.
    Extra,
    /// In both, with different values.
    Changed,
}

/// One row that differs. A missing row carries the source's value columns
/// (not the key), an extra row the replica's, in [`ScanSpec`] order; a
/// changed row carries, on each side, the values of its `changed` columns
/// only, in that order: a report shows no other, and a table where every
/// row changed in one column is not decoded whole.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    pub kind: DiffKind,
    pub key: Vec<Value>,
    pub source: Option<Vec<Value>>,
    pub target: Option<Vec<Value>>,
    /// For `Changed`: indexes of the value columns that differ, ascending.
    pub changed: Vec<usize>,
    /// For `Changed`: every differing column is a float, and they agree to 15
    /// significant digits (a sign of a replica that loses float precision).
    pub float_only: bool,
}

/// Whether two values of a column are equal; with `float_digits`, floats
/// only need to agree to that many significant digits.
pub fn same(a: &Value, b: &Value, opts: &CanonOptions) -> bool {
    match (a, b, opts.float_digits) {
        (Value::Float(x), Value::Float(y), Some(d)) => canon::floats_agree(*x, *y, d),
        // The common case of a changed row, settled without encoding.
        (Value::Int(x), Value::Int(y), _) => x == y,
        _ => canon::values_equal(a, b, &CanonOptions::default()),
    }
}

/// Merges two key-sorted row lists into differences.
pub fn compare_rows(
    source: Vec<KeyedRow>,
    target: Vec<KeyedRow>,
    nkey: usize,
    opts: &CanonOptions,
) -> Vec<Difference> {
    merge_by(source, target, |a, b| a.key.cmp(&b.key))
        .filter_map(|pair| match pair {
            Paired::Source(s) => Some(Difference::missing(s, nkey)),
            Paired::Target(t) => Some(Difference::extra(t, nkey)),
            Paired::Both(s, t) => Difference::changed(s, t, nkey, opts),
        })
        .collect()
}

/// A row's key values and value columns, apart. The values keep their
/// allocation (a row's key is short): when most of a table drifted, this
/// is once per row.
fn split(row: KeyedRow, nkey: usize) -> (Vec<Value>, Vec<Value>) {
    let mut rest = row.values;
    let key: Vec<Value> = rest.drain(..nkey).collect();
    (key, rest)
}

impl Difference {
    /// A row only the source holds.
    pub fn missing(row: KeyedRow, nkey: usize) -> Difference {
        let (key, vals) = split(row, nkey);
        Difference {
            kind: DiffKind::Missing,
            key,
            source: Some(vals),
            target: None,
            changed: Vec::new(),
            float_only: false,
        }
    }

    /// A row only the replica holds.
    pub fn extra(row: KeyedRow, nkey: usize) -> Difference {
        let (key, vals) = split(row, nkey);
        Difference {
            kind: DiffKind::Extra,
            key,
            source: None,
            target: Some(vals),
            changed: Vec::new(),
            float_only: false,
        }
    }

    /// The difference between the two sides' rows of one key, if a value
    /// column differs.
    pub fn changed(
        source: KeyedRow,
        target: KeyedRow,
        nkey: usize,
        opts: &CanonOptions,
    ) -> Option<Difference> {
        let (key, sv) = split(source, nkey);
        // Both sides read the same columns; were a row ever shorter, its
        // missing values differ from anything rather than go unseen.
        let width = sv.len().max(target.values.len().saturating_sub(nkey));
        let absent = || Value::Invalid("no value".into());
        let mut s = sv.into_iter();
        let mut t = target.values.into_iter().skip(nkey);
        let columns = (0..width)
            .map(|i| {
                let s = s.next().unwrap_or_else(absent);
                (i, s, t.next().unwrap_or_else(absent))
            })
            .filter(|(_, s, t)| !same(s, t, opts));
        let mut d = Difference::changed_row();
        d.key = key;
        for (i, s, t) in columns {
            d.push_change(i, s, t);
        }
        (!d.changed.is_empty()).then_some(d)
    }

    /// A changed row with no key and no columns yet: filled by
    /// [`push_change`](Difference::push_change), and emptied by
    /// [`clear_changes`](Difference::clear_changes) to be filled again
    /// (a comparison of millions of changed rows then allocates for none).
    pub fn changed_row() -> Difference {
        Difference {
            kind: DiffKind::Changed,
            key: Vec::new(),
            source: Some(Vec::new()),
            target: Some(Vec::new()),
            changed: Vec::new(),
            float_only: false,
        }
    }

    /// Empties a [`changed_row`](Difference::changed_row), keeping its room.
    pub fn clear_changes(&mut self) {
        self.key.clear();
        self.changed.clear();
        for side in [&mut self.source, &mut self.target] {
            side.get_or_insert_with(Vec::new).clear();
        }
        self.float_only = false;
    }

    /// Adds a changed column (after the ones already added) with the
    /// source's and the replica's values.
    pub fn push_change(&mut self, column: usize, source: Value, target: Value) {
        let agree = match (&source, &target) {
            (Value::Float(a), Value::Float(b)) => canon::floats_agree(*a, *b, 15),
            _ => false,
        };
        self.float_only = agree && (self.float_only || self.changed.is_empty());
        self.changed.push(column);
        self.source.get_or_insert_with(Vec::new).push(source);
        self.target.get_or_insert_with(Vec::new).push(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftsum_core::key;

    fn row(k: i64, v: f64) -> KeyedRow {
        let values = vec![Value::Int(k as i128), Value::Float(v)];
        KeyedRow {
            key: key::encode(&values[..1]),
            values,
        }
    }

    #[test]
    fn merge_classifies() {
        let src = vec![row(1, 1.0), row(2, 2.0), row(3, 3.0)];
        let tgt = vec![row(2, 2.0), row(3, 3.5), row(4, 4.0)];
        let d = compare_rows(src, tgt, 1, &CanonOptions::default());
        let kinds: Vec<DiffKind> = d.iter().map(|d| d.kind).collect();
        assert_eq!(
            kinds,
            [DiffKind::Missing, DiffKind::Changed, DiffKind::Extra]
        );
        assert_eq!(d[1].changed, [0]);
        assert!(!d[1].float_only);
        // A changed row shows its changed columns only; a missing or an
        // extra row every column.
        assert_eq!(d[1].source, Some(vec![Value::Float(3.0)]));
        assert_eq!(d[1].target, Some(vec![Value::Float(3.5)]));
        assert_eq!(d[0].source, Some(vec![Value::Float(1.0)]));
        assert_eq!(d[2].target, Some(vec![Value::Float(4.0)]));
    }

    #[test]
    fn a_changed_row_holds_its_changed_columns() {
        let row = |values: Vec<Value>| KeyedRow {
            key: key::encode(&values[..1]),
            values,
        };
        let text = |s: &str| Value::Text(s.into());
        let source = row(vec![Value::Int(1), text("a"), Value::Int(2), text("c")]);
        let target = row(vec![Value::Int(1), text("a"), Value::Int(3), Value::Null]);
        let opts = CanonOptions::default();
        let d = Difference::changed(source, target, 1, &opts).expect("differs");
        assert_eq!(d.key, [Value::Int(1)]);
        assert_eq!(d.changed, [1, 2]);
        assert_eq!(d.source, Some(vec![Value::Int(2), text("c")]));
        assert_eq!(d.target, Some(vec![Value::Int(3), Value::Null]));
        assert!(!d.float_only);
        // A row short of a column differs in it, either way round.
        let short = row(vec![Value::Int(1), text("a")]);
        let long = || row(vec![Value::Int(1), text("a"), Value::Null]);
        let absent = Value::Invalid("no value".into());
        let d = Difference::changed(long(), short.clone(), 1, &opts).expect("differs");
        assert_eq!((d.changed, d.target), (vec![1], Some(vec![absent.clone()])));
        let d = Difference::changed(short, long(), 1, &opts).expect("differs");
        assert_eq!((d.changed, d.source), (vec![1], Some(vec![absent])));
    }

    /// A changed row emptied and filled again is the row built afresh:
    /// no key, column or float-only mark left from the one before.
    #[test]
    fn a_changed_row_is_filled_again_from_empty() {
        let next = f64::from_bits(0.3f64.to_bits() + 1);
        let mut d = Difference::changed_row();
        d.key.push(Value::Int(1));
        d.push_change(0, Value::Float(0.3), Value::Float(next));
        assert!(d.float_only);
        d.clear_changes();
        d.key.push(Value::Int(2));
        d.push_change(1, Value::Int(1), Value::Int(2));
        d.push_change(2, Value::Float(0.3), Value::Float(next));
        let fresh = Difference {
            kind: DiffKind::Changed,
            key: vec![Value::Int(2)],
            source: Some(vec![Value::Int(1), Value::Float(0.3)]),
            target: Some(vec![Value::Int(2), Value::Float(next)]),
            changed: vec![1, 2],
            float_only: false,
        };
        assert_eq!(d, fresh);
    }

    #[test]
    fn float_tolerance_is_row_level() {
        let next = f64::from_bits(0.3f64.to_bits() + 1);
        let d = compare_rows(
            vec![row(1, 0.3)],
            vec![row(1, next)],
            1,
            &CanonOptions::default(),
        );
        assert_eq!(d.len(), 1);
        assert!(d[0].float_only);
        let loose = CanonOptions {
            float_digits: Some(6),
        };
        assert!(compare_rows(vec![row(1, 0.3)], vec![row(1, next)], 1, &loose).is_empty());
    }
}
