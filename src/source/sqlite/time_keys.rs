//! Date, time and timestamp keys stored as text in SQLite, made
//! range-readable: when every stored key of a table has one fixed-width text
//! form (`YYYY-MM-DD HH:MM:SS.ffffff`, say) that reads back to its value and
//! is written again from that value byte for byte, text order is key order,
//! and a key range becomes a text range the primary key's index serves.
//!
//! Nothing is assumed from the declared type: the proof sees every stored
//! key of the table, once per connection (its read transaction keeps the
//! snapshot it was made on). A table whose keys are stored any other way
//! (mixed forms, numbers, a fraction one row longer than the rest) is read
//! by whole scans, as before. Building the SQL from the shapes is the
//! dialect's (`dialect`).
//!
//! An instant leading the key (a `timestamptz` source's) is proven the same
//! way, though its key bytes end in `Z` and so follow time order only to
//! the second: its ranges are bounded by whole seconds (the dialect's
//! `time_condition`), and its rows put in key order a second at a time
//! (`key_order`). A proof of an instant also holds that every key is an
//! instant of years 0000–9999 in UTC, whose key bytes then start with the
//! fixed-width text up to the second.
//!
//! A whole scan of a rowid table keyed by such columns reads the table's
//! pages in rowid order (`page_scan`) and makes the proof as it goes
//! ([`StreamProof`]): every key in the one form, and the keys ascending from
//! row to row, so the rowid order was the key order. The keys are read once;
//! range reads that come first, or after a scan whose proof broke, prove the
//! forms by a read of the keys alone ([`prove`]).

use driftsum_core::coerce::ColumnRule;
use driftsum_core::time::{self, push_digits, MICROS_PER_DAY, MICROS_PER_SEC};
use driftsum_core::{LogicalType, Value};
use std::collections::HashMap;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};

use super::types::decode;
use crate::error::SourceError;
use crate::source::spec::{quote_ident, ColumnSpec, KeyFilter, ScanSpec};

/// Whether key-byte order is time order for this type's values with years
/// 0000–9999 (the only ones a [`TextShape`] holds): a key holds the value's
/// ISO text, whose trimmed fraction digits sort as numbers. Not for an
/// instant: its `Z` sorts after the `.` of a fraction, so `…:00.5Z` comes
/// before `…:00Z` in key order, and a time range is no key range.
pub(super) fn key_order_is_time_order(ty: LogicalType) -> bool {
    matches!(
        ty,
        LogicalType::TimestampNaive { .. } | LogicalType::Date | LogicalType::Time { .. }
    )
}

/// The key columns of `spec` whose text form a proof looks for: dates,
/// times and timestamps, which a range bounds by value, and an instant
/// leading the key, which a range bounds by whole seconds (its key order is
/// time order only to the second, see [`key_order_is_time_order`]; an
/// instant after the first column bounds nothing).
fn provable(spec: &ScanSpec) -> impl Iterator<Item = &ColumnSpec> {
    spec.key.iter().enumerate().filter_map(|(i, k)| {
        let instant = i == 0 && matches!(k.rule.ty, LogicalType::Timestamp { .. });
        (instant || key_order_is_time_order(k.rule.ty)).then_some(k)
    })
}

/// The instants whose key bytes hold their fixed-width UTC text
/// (0000-01-01 ..= 9999-12-31, see `driftsum_core::key`), in microseconds
/// since 1970: a key outside sorts by other text.
pub(super) const KEYED_INSTANTS: std::ops::Range<i128> =
    -62_167_219_200_000_000..253_402_300_800_000_000;

/// Which parts a text form holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parts {
    /// `YYYY-MM-DD`
    Date,
    /// `YYYY-MM-DD` + separator + time of day + suffix
    DateTime,
    /// `HH:MM:SS[.f…]`
    Time,
}

/// One fixed-width text form of a date, time or timestamp. Every value
/// written in it has the same length and its fields in the same places, so
/// byte order is (year, month, …, fraction) order, which is time order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TextShape {
    parts: Parts,
    /// Between date and time: `b' '` or `b'T'`.
    sep: u8,
    /// Fraction digits (0: no `.`).
    frac: u8,
    /// After the time: nothing, `Z` or `+00:00` (an index into
    /// [`SUFFIXES`]: shapes are compared once per row, as integers).
    suffix: u8,
}

const SUFFIXES: [&str; 3] = ["", "Z", "+00:00"];

/// The index in [`SUFFIXES`] of `b`.
fn suffix_of(b: &[u8]) -> Option<u8> {
    match b {
        [] => Some(0),
        [b'Z'] => Some(1),
        [b'+', b'0', b'0', b':', b'0', b'0'] => Some(2),
        _ => None,
    }
}

/// Whether `a` and `b` hold the same bytes, compared here a word at a time
/// (a key is a few dozen bytes, compared once or twice per row: a call into
/// the C library's `memcmp` for each cost more than the comparison).
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    compare_bytes(a, b).is_eq()
}

/// `a.cmp(b)`, a word at a time (see [`same_bytes`]).
#[inline]
pub(super) fn compare_bytes(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let word = |s: &[u8], i: usize| {
        u64::from_be_bytes(<[u8; 8]>::try_from(&s[i..i + 8]).unwrap_or_default())
    };
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let (x, y) = (word(a, i), word(b, i));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

fn digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

/// `HH:MM:SS[.f…]` at the start of `b`: the fraction digits and what
/// follows, or `None`.
fn time_part(b: &[u8]) -> Option<(u8, &[u8])> {
    let hms = b.get(..8)?;
    let fields = digits(&hms[0..2]) && digits(&hms[3..5]) && digits(&hms[6..8]);
    if !fields || hms[2] != b':' || hms[5] != b':' {
        return None;
    }
    let rest = &b[8..];
    if rest.first() != Some(&b'.') {
        return Some((0, rest));
    }
    let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 6 {
        return None;
    }
    Some((n as u8, &rest[1 + n..]))
}

impl TextShape {
    /// The form of `text` read as `ty`, when it is one this module writes.
    fn of(text: &[u8], ty: LogicalType) -> Option<TextShape> {
        let date = |b: &[u8]| {
            b.len() >= 10
                && digits(&b[0..4])
                && b[4] == b'-'
                && digits(&b[5..7])
                && b[7] == b'-'
                && digits(&b[8..10])
        };
        let shape = |parts, sep, frac, suffix: &[u8]| {
            let suffix = suffix_of(suffix)?;
            Some(TextShape {
                parts,
                sep,
                frac,
                suffix,
            })
        };
        match ty {
            LogicalType::Date if text.len() == 10 && date(text) => shape(Parts::Date, 0, 0, b""),
            LogicalType::Time { .. } => match time_part(text)? {
                (frac, b"") => shape(Parts::Time, 0, frac, b""),
                _ => None,
            },
            LogicalType::Timestamp { .. } | LogicalType::TimestampNaive { .. } => {
                if !date(text) || !matches!(text.get(10), Some(b' ' | b'T')) {
                    return None;
                }
                let (frac, rest) = time_part(&text[11..])?;
                shape(Parts::DateTime, text[10], frac, rest)
            }
            _ => None,
        }
    }

    /// Writes `v` (a value of `rule`'s type) in this form into `out`,
    /// rounded down to the form's last fraction digit; whether that was
    /// exact. `None` when the form cannot hold it (a year outside 0000–9999,
    /// an infinity, a value of another type).
    pub(super) fn write(&self, v: &Value, rule: &ColumnRule, out: &mut Vec<u8>) -> Option<bool> {
        out.clear();
        let (micros, day_part) = match (self.parts, v) {
            (Parts::Date, Value::Date(d)) => (i128::from(*d) * i128::from(MICROS_PER_DAY), true),
            (Parts::Time, Value::Time(t)) if (0..MICROS_PER_DAY).contains(t) => {
                (i128::from(*t), false)
            }
            (Parts::DateTime, Value::TimestampNaive(m)) => (*m, true),
            (Parts::DateTime, Value::Timestamp(m)) => {
                // An instant stored without an offset was read at the
                // column's assumed one: its text is that wall clock.
                let offset = match self.suffix {
                    0 => i128::from(rule.assume_offset_secs) * i128::from(MICROS_PER_SEC),
                    _ => 0,
                };
                (m.checked_add(offset)?, true)
            }
            _ => return None,
        };
        // Past i64 is far past 9999-12-31; within it the arithmetic is
        // done without 128-bit division (once per key of a scan).
        let micros = i64::try_from(micros).ok()?;
        let unit = 10i64.pow(6 - u32::from(self.frac));
        let floor = micros.div_euclid(unit) * unit;
        let days = floor.div_euclid(MICROS_PER_DAY);
        let tod = floor.rem_euclid(MICROS_PER_DAY);
        if day_part {
            if !time::push_date(out, days) {
                return None; // outside 0000-01-01 ..= 9999-12-31
            }
            if self.parts == Parts::Date {
                return Some(floor == micros);
            }
            out.push(self.sep);
        }
        let secs = tod / MICROS_PER_SEC;
        push_digits(out, (secs / 3600) as u64, 2);
        out.push(b':');
        push_digits(out, (secs / 60 % 60) as u64, 2);
        out.push(b':');
        push_digits(out, (secs % 60) as u64, 2);
        if self.frac > 0 {
            out.push(b'.');
            let f = (tod % MICROS_PER_SEC) / unit;
            push_digits(out, f as u64, usize::from(self.frac));
        }
        out.extend_from_slice(SUFFIXES[usize::from(self.suffix)].as_bytes());
        Some(floor == micros)
    }
}

/// The proof over one key column's stored values: the one form they all
/// have, as long as every value seen reads back to itself through it.
struct Proof {
    rule: ColumnRule,
    shape: Option<TextShape>,
    broken: bool,
    buf: Vec<u8>,
}

impl Proof {
    fn new(rule: ColumnRule) -> Proof {
        Proof {
            rule,
            shape: None,
            broken: false,
            buf: Vec::with_capacity(32),
        }
    }

    /// Sees a stored value, decoding it here.
    fn see(&mut self, v: ValueRef<'_>) {
        if self.broken {
            return;
        }
        match decode(v, &self.rule) {
            Ok(value) => self.see_decoded(v, &value),
            Err(_) => self.broken = true,
        }
    }

    /// Sees a stored value `v` that decoded (by this column's rule) to
    /// `value`.
    fn see_decoded(&mut self, v: ValueRef<'_>, value: &Value) {
        if self.broken {
            return;
        }
        let ValueRef::Text(text) = v else {
            self.broken = true;
            return;
        };
        let Some(shape) = TextShape::of(text, self.rule.ty) else {
            self.broken = true;
            return;
        };
        if *self.shape.get_or_insert(shape) != shape {
            self.broken = true;
            return;
        }
        let exact = shape.write(value, &self.rule, &mut self.buf);
        if exact != Some(true) || !same_bytes(&self.buf, text) {
            self.broken = true;
        }
        // Stored at an offset, a wall clock of years 0000–9999 may be an
        // instant just outside them, whose key sorts elsewhere.
        if matches!(value, Value::Timestamp(m) if !KEYED_INSTANTS.contains(m)) {
            self.broken = true;
        }
    }

    fn result(&self) -> Option<TextShape> {
        self.shape.filter(|_| !self.broken)
    }
}

/// Per key column that is a date, time or timestamp: its proven text form,
/// or `None`.
pub(super) type KeyShapes = Vec<(String, Option<TextShape>)>;

/// What is known of one table's date and time keys, on one connection (its
/// read transaction keeps the snapshot it was learnt on).
#[derive(Clone, Debug, Default)]
pub(super) struct Known {
    /// The proven forms, once every stored key has been seen.
    shapes: Option<KeyShapes>,
    /// Whether the table's rowid order is its keys' time order (asked only
    /// when every key column is [`provable`]): its pages, read in rowid
    /// order, then come in key order (an instant's once each second's rows
    /// are sorted, see `key_order`). `None` until a whole scan of the pages
    /// answered it.
    rowid_ordered: Option<bool>,
}

/// What [`Known`] is kept under: the table and its date and time key
/// columns with their rules; `None` when it has no such key column.
fn known_id(spec: &ScanSpec) -> Option<String> {
    let timed: Vec<_> = provable(spec).map(|k| (&k.name, k.rule)).collect();
    (!timed.is_empty()).then(|| format!("{}\0{timed:?}", spec.table))
}

/// Whether every key column of `spec` is [`provable`]: only then can its
/// rowid order be its keys' time order.
fn all_provable(spec: &ScanSpec) -> bool {
    provable(spec).count() == spec.key.len()
}

/// For a whole scan of `spec` from the pages of a rowid table without a
/// rowid alias: `Some(true)` when its rowid order is known to be its keys'
/// time order, `Some(false)` when known not to be (or not asked: a key
/// column that is not [`provable`]), `None` when not known yet (a
/// [`StreamProof`] finds out).
pub(super) fn rowid_ordered(cache: &HashMap<String, Known>, spec: &ScanSpec) -> Option<bool> {
    if !all_provable(spec) {
        return Some(false);
    }
    cache.get(&known_id(spec)?)?.rowid_ordered
}

/// Before a whole scan proves the order as it reads: whether the table's
/// last row by rowid holds its greatest key. When it does not (a row
/// written late with an early key, as a repair writes one), the rowids do
/// not ascend with the keys, and the scan goes through the key's index at
/// once rather than reading the pages to the end to find out. Two index
/// seeks; it only ever sends a scan the slower, sure way.
pub(super) fn last_row_holds_greatest_key(
    conn: &Connection,
    spec: &ScanSpec,
    rowid_sql: &str,
) -> Result<bool, SourceError> {
    let keys: Vec<String> = spec.key.iter().map(|k| quote_ident(&k.name)).collect();
    let table = quote_ident(&spec.table);
    let by = |order: &str| {
        format!(
            "SELECT {} FROM {table} ORDER BY {order} LIMIT 1",
            keys.join(", ")
        )
    };
    let desc: Vec<String> = keys.iter().map(|k| format!("{k} DESC")).collect();
    let context = format!("reading the last keys of {:?}", spec.table);
    let read = |sql: String| {
        conn.query_row(&sql, [], |r| {
            (0..keys.len())
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect::<Result<Vec<_>, _>>()
        })
        .optional()
        .map_err(|e| SourceError::query(&context, e))
    };
    let last = read(by(&format!("{} DESC", quote_ident(rowid_sql))))?;
    let greatest = read(by(&desc.join(", ")))?;
    Ok(last == greatest)
}

/// Whether a whole scan of the pages of `spec`'s table, keyed by dates or
/// times alone, found its rowids do not ascend with its keys: only then does
/// a scan through the key's index come back in key order where the pages
/// did not.
pub(super) fn learnt_rowids_unordered(cache: &HashMap<String, Known>, spec: &ScanSpec) -> bool {
    all_provable(spec)
        && known_id(spec)
            .and_then(|id| cache.get(&id))
            .is_some_and(|k| k.rowid_ordered == Some(false))
}

/// The proven text forms of `spec`'s date, time and timestamp key columns:
/// known from a whole scan of the pages that proved them as it went (a
/// [`StreamProof`]), or else proven here by one read of the table's keys
/// (an index-only scan where the key is indexed), kept in `cache` for the
/// connection's life.
pub(super) fn prove(
    conn: &Connection,
    cache: &mut HashMap<String, Known>,
    spec: &ScanSpec,
) -> Result<KeyShapes, SourceError> {
    let Some(id) = known_id(spec) else {
        return Ok(Vec::new());
    };
    if let Some(shapes) = cache.get(&id).and_then(|k| k.shapes.clone()) {
        return Ok(shapes);
    }
    let timed: Vec<_> = provable(spec).collect();
    let cols: Vec<String> = timed.iter().map(|k| quote_ident(&k.name)).collect();
    let sql = format!(
        "SELECT {} FROM {}",
        cols.join(", "),
        quote_ident(&spec.table)
    );
    let context = format!("reading the keys of table {:?}", spec.table);
    let mut proofs: Vec<Proof> = timed.iter().map(|k| Proof::new(k.rule)).collect();
    let mut stmt = conn
        .prepare(&sql)
        .map_err(|e| SourceError::query(&context, e))?;
    let mut rows = stmt
        .query([])
        .map_err(|e| SourceError::query(&context, e))?;
    while let Some(row) = rows.next().map_err(|e| SourceError::query(&context, e))? {
        for (i, p) in proofs.iter_mut().enumerate() {
            p.see(
                row.get_ref(i)
                    .map_err(|e| SourceError::query(&context, e))?,
            );
        }
        if proofs.iter().all(|p| p.broken) {
            break;
        }
    }
    drop(rows);
    drop(stmt);
    let shapes: KeyShapes = timed
        .iter()
        .zip(&proofs)
        .map(|(k, p)| (k.name.clone(), p.result()))
        .collect();
    cache.entry(id).or_default().shapes = Some(shapes.clone());
    Ok(shapes)
}

/// The proof, made while a whole scan reads a table's pages in rowid
/// order, that the rows come in their keys' time order: every key column
/// [`provable`], its stored values all in one text form that reads back to
/// itself (within one form, text order is time order), and the key texts
/// ascending strictly from row to row. That is key order, except among an
/// instant's keys of one second, which the scan sorts as they pass
/// (`key_order`). It reads no key a second time; the
/// scan hands it each key as stored and as decoded. Once a row breaks it,
/// it sees no more.
pub(super) struct StreamProof {
    proofs: Vec<Proof>,
    /// The last row's key texts, one per key column.
    last: Vec<Vec<u8>>,
    /// This row's key texts compared so far with the last row's.
    order: std::cmp::Ordering,
    rows: u64,
    broken: bool,
    /// Set by the scan when every row of the table was seen.
    pub(super) whole: bool,
}

impl StreamProof {
    /// For a scan of `spec`, whose key columns are all [`provable`].
    pub(super) fn new(spec: &ScanSpec) -> StreamProof {
        StreamProof {
            proofs: spec.key.iter().map(|k| Proof::new(k.rule)).collect(),
            last: vec![Vec::new(); spec.key.len()],
            order: std::cmp::Ordering::Equal,
            rows: 0,
            broken: false,
            whole: false,
        }
    }

    /// Whether a row broke the proof.
    pub(super) fn broken(&self) -> bool {
        self.broken
    }

    /// Sees the current row's key column `i` (in key order), stored as
    /// `v`, decoded as `value`.
    #[inline]
    pub(super) fn key(&mut self, i: usize, v: ValueRef<'_>, value: &Value) {
        if self.broken {
            return;
        }
        let (Some(p), Some(last)) = (self.proofs.get_mut(i), self.last.get_mut(i)) else {
            self.broken = true;
            return;
        };
        p.see_decoded(v, value);
        let ValueRef::Text(text) = v else {
            self.broken = true;
            return;
        };
        if p.broken {
            self.broken = true;
            return;
        }
        if i == 0 {
            self.order = std::cmp::Ordering::Equal;
        }
        if self.order.is_eq() {
            self.order = compare_bytes(text, last);
        }
        last.clear();
        last.extend_from_slice(text);
    }

    /// Ends the current row: whether the proof still holds (its keys come
    /// strictly after the last row's).
    #[inline]
    pub(super) fn row_end(&mut self) -> bool {
        if !self.broken {
            if self.rows > 0 && !self.order.is_gt() {
                self.broken = true;
            }
            self.rows += 1;
        }
        !self.broken
    }

    /// Breaks the proof before any row is read: the rowids are known not
    /// to ascend with the keys.
    pub(super) fn refute(&mut self) {
        self.broken = true;
    }

    /// Keeps what this proof learnt in `cache`: nothing unless a row broke
    /// it or the scan saw the whole table.
    pub(super) fn learn(self, cache: &mut HashMap<String, Known>, spec: &ScanSpec) {
        let Some(id) = known_id(spec) else {
            return;
        };
        if self.broken {
            cache.entry(id).or_default().rowid_ordered = Some(false);
        } else if self.whole {
            let shapes = spec
                .key
                .iter()
                .zip(&self.proofs)
                .map(|(k, p)| (k.name.clone(), p.result()))
                .collect();
            let known = cache.entry(id).or_default();
            known.rowid_ordered = Some(true);
            known.shapes = Some(shapes);
        }
    }
}

/// Why a scan may read a table's pages, whose order is its rowid order.
pub(super) enum PageOrder<'p> {
    /// Only when the scan is keyed by the rowid alias.
    ByAlias,
    /// Also a whole scan: the table's rowid order was proven to be its key
    /// order.
    Proven,
    /// Also a whole scan, proving as it reads that the rowid order is the
    /// key order (see [`StreamProof`]).
    Prove(&'p mut StreamProof),
    /// Also a whole scan, in rowid order whatever the key order: its caller
    /// places every row by its key ([`Source::scan_unordered_wanted`]). Only
    /// the rows whose key values the function accepts are decoded whole
    /// and sent.
    ///
    /// [`Source::scan_unordered_wanted`]: crate::source::Source::scan_unordered_wanted
    Any(&'p mut KeyFilter<'p>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(ty: LogicalType) -> ColumnRule {
        ColumnRule::new(ty)
    }

    const NAIVE: LogicalType = LogicalType::TimestampNaive { precision: 6 };
    const INSTANT: LogicalType = LogicalType::Timestamp { precision: 6 };

    fn proven(ty: LogicalType, texts: &[&str]) -> Option<TextShape> {
        let mut p = Proof::new(rule(ty));
        for t in texts {
            p.see(ValueRef::Text(t.as_bytes()));
        }
        p.result()
    }

    /// Forms that read back to themselves are proven; anything that does
    /// not (an invalid day, a leap second, a 24:00, a second form, too
    /// many digits for the column's precision) breaks the proof.
    #[test]
    fn only_forms_that_round_trip_are_proven() {
        let ok = ["2020-09-13 12:26:40.000001", "1999-12-31 23:59:59.999999"];
        assert!(proven(NAIVE, &ok).is_some());
        assert!(proven(INSTANT, &ok).is_some());
        assert!(proven(INSTANT, &["2020-09-13T12:26:40Z", "2021-01-01T00:00:00Z"]).is_some());
        assert!(proven(LogicalType::Date, &["2020-09-13", "0001-01-01"]).is_some());
        assert!(proven(
            LogicalType::Time { precision: 6 },
            &["12:00:00.5", "00:00:00.0"]
        )
        .is_some());
        for bad in [
            &["2020-09-13 12:26:40.000001", "2020-09-13 12:26:40.00001"][..],
            &["2020-09-13 12:26:40", "2020-09-13T12:26:41"],
            &["2020-02-30 00:00:00"],
            &["2020-09-13 23:59:60"],
            &["2020-09-13 24:00:00"],
            &["2020-09-13 12:26:40.1234567"],
            &["2020-09-13 12:26:40+02:00"],
            &["+2020-09-13 12:26:40"],
            &["2020-9-13 12:26:40"],
        ] {
            assert!(proven(NAIVE, bad).is_none(), "{bad:?}");
        }
        let mut p = Proof::new(rule(NAIVE));
        p.see(ValueRef::Text(b"2020-09-13 12:26:40"));
        p.see(ValueRef::Integer(1_600_000_000));
        assert!(p.result().is_none());
        // Precision 3: a sixth digit that is not zero does not read back.
        let ms = LogicalType::TimestampNaive { precision: 3 };
        assert!(proven(ms, &["2020-09-13 12:26:40.123000"]).is_some());
        assert!(proven(ms, &["2020-09-13 12:26:40.123400"]).is_none());
        // An assumed offset: the text is the wall clock at that offset.
        let mut r = rule(INSTANT);
        r.assume_offset_secs = 7200;
        let mut p = Proof::new(r);
        p.see(ValueRef::Text(b"2020-09-13 12:26:40"));
        assert!(p.result().is_some());
    }

    fn shape(text: &str, ty: LogicalType) -> TextShape {
        TextShape::of(text.as_bytes(), ty).expect("a form")
    }

    proptest! {
        /// Within one form, byte order is value order, and a value written
        /// rounded down compares with every stored value as the value
        /// itself does (what a range bound needs).
        #[test]
        fn byte_order_is_value_order(
            a in -62_135_596_800_000_000i64..253_402_300_799_999_999,
            b in -62_135_596_800_000_000i64..253_402_300_799_999_999,
            frac in 0u8..=6,
        ) {
            let frac_text = if frac == 0 { String::new() } else { format!(".{}", "0".repeat(frac.into())) };
            let s = shape(&format!("2020-01-01 00:00:00{frac_text}"), NAIVE);
            let r = rule(NAIVE);
            let unit = 10i64.pow(6 - u32::from(frac));
            // `a` as a stored value (on the form's grid), `b` as any bound.
            let stored = a.div_euclid(unit) * unit;
            let (mut ta, mut tb) = (Vec::new(), Vec::new());
            prop_assert_eq!(s.write(&Value::TimestampNaive(stored.into()), &r, &mut ta), Some(true));
            let exact = s.write(&Value::TimestampNaive(b.into()), &r, &mut tb).expect("in range");
            prop_assert_eq!(exact, b % unit == 0);
            prop_assert_eq!(ta.as_slice() > tb.as_slice(), stored > b);
            prop_assert_eq!(ta.as_slice() <= tb.as_slice(), stored <= b);
            // And it reads back.
            let text = std::str::from_utf8(&ta).unwrap();
            prop_assert_eq!(decode(ValueRef::Text(&ta), &r), Ok(Value::TimestampNaive(stored.into())), "{}", text);
        }

        /// The word-at-a-time comparison is the slices' own.
        #[test]
        fn compare_bytes_is_slice_order(
            a in prop::collection::vec(any::<u8>(), 0..40),
            b in prop::collection::vec(any::<u8>(), 0..40),
            cut in 0usize..40,
        ) {
            prop_assert_eq!(compare_bytes(&a, &b), a.cmp(&b));
            // With a common prefix, as keys one after another have.
            let mut c = a.clone();
            c.truncate(cut);
            c.extend_from_slice(&b);
            prop_assert_eq!(compare_bytes(&a, &c), a.cmp(&c));
            prop_assert_eq!(same_bytes(&a, &c), a == c);
        }

        /// Dates: byte order is day order over years 0000–9999.
        #[test]
        fn dates_in_byte_order(a in -719_528i32..=2_932_896, b in -719_528i32..=2_932_896) {
            let s = shape("2020-01-01", LogicalType::Date);
            let r = rule(LogicalType::Date);
            let (mut ta, mut tb) = (Vec::new(), Vec::new());
            prop_assert_eq!(s.write(&Value::Date(a), &r, &mut ta), Some(true));
            prop_assert_eq!(s.write(&Value::Date(b), &r, &mut tb), Some(true));
            prop_assert_eq!(ta.cmp(&tb), a.cmp(&b));
            prop_assert_eq!(decode(ValueRef::Text(&ta), &r), Ok(Value::Date(a)));
        }
    }

    #[test]
    fn values_outside_the_form_are_not_written() {
        let s = shape("2020-01-01 00:00:00", NAIVE);
        let r = rule(NAIVE);
        let mut out = Vec::new();
        let year_10000 = 253_402_300_800_000_000i128;
        assert_eq!(
            s.write(&Value::TimestampNaive(year_10000), &r, &mut out),
            None
        );
        assert_eq!(
            s.write(
                &Value::TimestampNaive(-62_167_219_200_000_001),
                &r,
                &mut out
            ),
            None
        );
        assert_eq!(
            s.write(&Value::TimestampNaive(i128::MAX), &r, &mut out),
            None
        );
        assert_eq!(s.write(&Value::Text("x".into()), &r, &mut out), None);
        assert_eq!(s.write(&Value::Timestamp(0), &r, &mut out), Some(true));
    }
}
