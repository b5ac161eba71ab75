//! SQLite's SQL for scans: the [`sql::Dialect`] that quotes, orders and
//! binds keys, and when a key range may be put in a WHERE clause at all
//! (date and time keys only in a text form proven by `time_keys`). The scan
//! itself is in the connector.

use driftsum_core::coerce::{ColumnRule, TrailingSpaces};
use driftsum_core::time::MICROS_PER_SEC;
use driftsum_core::{LogicalType, Value};
use rusqlite::types::ValueRef;

use super::time_keys::{key_order_is_time_order, KeyShapes, TextShape, KEYED_INSTANTS};
use super::types::decode;
use crate::source::spec::{quote_ident, ColumnSpec, ScanSpec};
use crate::source::sql;

/// Whether a key value is stored in the storage class its logical type
/// expects; only then does an SQL range comparison find it. Date and time
/// keys are not judged row by row: their ranges need a proof over the whole
/// table (see [`SqliteSql::range_friendly`]).
pub(super) fn stored_as_declared(v: ValueRef<'_>, ty: LogicalType) -> bool {
    ty.is_temporal()
        || matches!(
            (v, ty),
            (ValueRef::Integer(_), LogicalType::Integer)
                | (ValueRef::Text(_), LogicalType::Text)
                | (ValueRef::Blob(_), LogicalType::Bytes)
        )
}

/// SQLite's SQL: a scan's columns are read as the [`ColumnSpec`] names
/// them, and every key value can be bound (a scan whose keys SQL cannot
/// range over is read whole, see [`SqliteSql::range_friendly`]).
#[derive(Default)]
pub(super) struct SqliteSql {
    /// The proven text forms of the scan's date and time key columns (see
    /// `time_keys`); a column not listed, or listed with `None`, has none.
    pub shapes: KeyShapes,
    /// Whether the key has more than one column: a bound rounded down to
    /// its form is then no bound (see [`sql::Dialect::key_bound`] here).
    pub compound: bool,
}

impl SqliteSql {
    fn shape(&self, c: &ColumnSpec) -> Option<&TextShape> {
        self.shapes
            .iter()
            .find(|(name, _)| *name == c.name)
            .and_then(|(_, s)| s.as_ref())
    }

    /// Whether SQL comparisons on these key columns follow key-byte order,
    /// so a range can be put in a WHERE clause (a UUID may be stored as text
    /// or blob, whose SQL order differs; a timestamp as text in any form, or
    /// a number). Each scan also checks the stored values (see
    /// [`stored_as_declared`]).
    pub(super) fn range_friendly(&self, spec: &ScanSpec) -> bool {
        spec.key.iter().all(|k| {
            // A key read without its trailing spaces (a `char(n)` source's)
            // is not the stored text that SQL compares: `'ab  ' <= 'ab'` is
            // false, and the row would fall out of its range.
            k.rule.trailing_spaces == TrailingSpaces::Significant
                && (matches!(
                    k.rule.ty,
                    LogicalType::Integer | LogicalType::Text | LogicalType::Bytes
                ) || self.shape(k).is_some())
        })
    }
}

impl sql::Dialect for SqliteSql {
    type Column = ColumnSpec;
    type Bind = rusqlite::types::Value;

    fn quote(&self, name: &str) -> String {
        quote_ident(name)
    }

    fn placeholder(&self, _: usize, _: &Self::Bind) -> String {
        "?".into()
    }

    fn select_expr(&self, c: &ColumnSpec) -> String {
        quote_ident(&c.name)
    }

    fn order_expr(&self, c: &ColumnSpec) -> String {
        match c.rule.ty {
            // Text keys compare bytewise whatever the column's collation.
            LogicalType::Text => format!("{} COLLATE BINARY", quote_ident(&c.name)),
            _ => quote_ident(&c.name),
        }
    }

    fn key_bound(&self, c: &ColumnSpec, v: &Value) -> Option<(String, Self::Bind)> {
        if c.rule.ty.is_temporal() {
            // An instant's key order is time order only to the second: its
            // ranges are bounded by `time_condition`.
            if !key_order_is_time_order(c.rule.ty) {
                return None;
            }
            // Every stored key is its value written in the proven form, so
            // comparing texts in that form compares values. A bound finer
            // than the form is rounded down: the stored values, all on the
            // form's grid, compare with it as with the bound itself for `>`
            // and `<=` alike; but inside a tuple comparison the equal case
            // would then be wrong.
            let shape = self.shape(c)?;
            let typed = typed_bound(c, v)?;
            let mut text = Vec::new();
            let exact = shape.write(&typed, &c.rule, &mut text)?;
            if !exact && self.compound {
                return None;
            }
            let text = String::from_utf8(text).ok()?;
            return Some((self.order_expr(c), rusqlite::types::Value::Text(text)));
        }
        Some((self.order_expr(c), to_sql(v)))
    }

    /// Text as itself, in the column's own collation (`NOCASE` equality
    /// finds a key's case variants too, which callers drop).
    fn key_equal(&self, c: &ColumnSpec, v: &Value) -> Option<(String, Self::Bind)> {
        match (c.rule.ty, v) {
            (LogicalType::Text, Value::Text(s)) => Some((
                quote_ident(&c.name),
                rusqlite::types::Value::Text(s.clone()),
            )),
            _ => None,
        }
    }

    /// Text whose trailing spaces count, as SQLite's equality counts them.
    fn looks_up(&self, c: &ColumnSpec, rule: &ColumnRule) -> bool {
        c.rule.ty == LogicalType::Text && rule.trailing_spaces == TrailingSpaces::Significant
    }

    /// An instant key (leading a key, in a proven text form): the range's
    /// whole seconds. Its key bytes hold its UTC text to the second at a
    /// fixed width, then the fraction without trailing zeros and a `Z`, so
    /// two keys of different seconds compare as their seconds, and a key in
    /// `(after, through]` lies in `[second(after), second(through) + 1 s)`.
    /// In the stored form, whose byte order is time order, that is
    /// `> second(after) - 1 step` and `<= second(through) + 1 s - 1 step`
    /// (a step being the form's last digit): a few more rows than the range
    /// holds, which the caller drops. The proof holds every stored key to
    /// years 0000–9999 in UTC; a bound outside them leaves its side open.
    fn time_condition(
        &self,
        c: &ColumnSpec,
        lead: LogicalType,
        (after, through): sql::Bounds<'_>,
        binds: &mut sql::Binds<'_, Self>,
    ) -> Option<String> {
        if !matches!(
            (lead, c.rule.ty),
            (LogicalType::Timestamp { .. }, LogicalType::Timestamp { .. })
        ) {
            return None;
        }
        let shape = self.shape(c)?;
        let second = i128::from(MICROS_PER_SEC);
        let instant = |v: Option<&Value>| match typed_bound(c, v?)? {
            Value::Timestamp(m) if KEYED_INSTANTS.contains(&m) => {
                Some(m.div_euclid(second) * second)
            }
            _ => None,
        };
        let text = |m: i128| {
            let mut out = Vec::new();
            shape.write(&Value::Timestamp(m), &c.rule, &mut out)?;
            String::from_utf8(out).ok()
        };
        let col = self.order_expr(c);
        let mut conds = Vec::new();
        if let Some(lo) = instant(after.and_then(<[Value]>::first)).and_then(|s| text(s - 1)) {
            let m = binds.mark(rusqlite::types::Value::Text(lo));
            conds.push(format!("{col} > {m}"));
        }
        if let Some(hi) = instant(through.first()).and_then(|s| text(s + second - 1)) {
            let m = binds.mark(rusqlite::types::Value::Text(hi));
            conds.push(format!("{col} <= {m}"));
        }
        (!conds.is_empty()).then(|| conds.join(" AND "))
    }
}

/// Bound `v` of date or time key column `c` as a value of its type. A bound
/// decoded from key bytes holds the value's ISO text: it is read back as the
/// column's type, and kept only if that is the value the key named.
fn typed_bound(c: &ColumnSpec, v: &Value) -> Option<Value> {
    match v {
        Value::Text(s) => {
            let typed = decode(ValueRef::Text(s.as_bytes()), &c.rule).ok()?;
            (typed.to_string() == *s).then_some(typed)
        }
        v => Some(v.clone()),
    }
}

fn to_sql(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        Value::Int(i) => i64::try_from(*i).map_or_else(|_| S::Text(i.to_string()), S::Integer),
        Value::Text(s) => S::Text(s.clone()),
        Value::Bytes(b) => S::Blob(b.clone()),
        Value::Null => S::Null,
        other => S::Text(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use driftsum_core::coerce::ColumnRule;
    use driftsum_core::key::{self, KeyRange};
    use driftsum_core::time::{self, MICROS_PER_DAY};
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::super::scratch::Db;
    use super::super::time_keys::KEYED_INSTANTS;
    use super::super::SqliteSource;
    use super::*;
    use crate::source::spec::{ScanSpec, Source};

    const SEC: i128 = MICROS_PER_SEC as i128;

    /// `m` as a wall clock at `offset` seconds, written with `frac`
    /// fraction digits (its microseconds rounded down) and `suffix`; `None`
    /// outside years 0000–9999.
    fn stored(m: i128, frac: u32, suffix: &str, offset: i32) -> Option<String> {
        let wall = m.checked_add(i128::from(offset) * SEC)?;
        if !KEYED_INSTANTS.contains(&wall) {
            return None;
        }
        let day = i128::from(MICROS_PER_DAY);
        let date = time::format_date(i32::try_from(wall.div_euclid(day)).ok()?);
        let secs = wall.rem_euclid(day) / SEC;
        let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        let digits = match frac {
            0 => String::new(),
            f => {
                let f = f as usize;
                let micros = format!("{:06}", wall.rem_euclid(SEC));
                format!(".{}", &micros[..f])
            }
        };
        Some(format!("{date} {h:02}:{mi:02}:{s:02}{digits}{suffix}"))
    }

    /// An instant near `base`: `s` seconds and `f` microseconds after it,
    /// or one at or past the ends of the years a key holds as fixed text.
    fn instant(base: i128, (s, f, far): (i64, i64, u8)) -> i128 {
        match far {
            0 => KEYED_INSTANTS.start - 1,
            1 => KEYED_INSTANTS.end,
            2 => time::INFINITY_MICROS,
            _ => base + i128::from(s) * SEC + i128::from(f),
        }
    }

    fn near() -> impl Strategy<Value = (i64, i64, u8)> {
        (
            -3i64..4,
            prop_oneof![Just(0i64), 0i64..10, 0i64..1_000_000, Just(999_999)],
            prop_oneof![1 => 0u8..3, 12 => Just(3u8)],
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// A range read of a table keyed by instants stored as text in one
        /// form (any digits, suffix and assumed offset) sends every row of
        /// the range, in key order, and, when the form is proven, no row
        /// of a second outside the range's seconds.
        #[test]
        fn instant_ranges_send_their_rows_in_key_order(
            base in select(vec![
                KEYED_INSTANTS.start + 2 * SEC,
                1_700_000_000 * SEC,
                KEYED_INSTANTS.end - 4 * SEC,
            ]),
            keys in prop::collection::vec(near(), 0..40),
            bounds in (prop::option::of(near()), near()),
            frac in 0u32..=6,
            (suffix, offset) in prop_oneof![
                Just(("Z", 0)),
                Just(("+00:00", 0)),
                select(vec![0, 3600, -3600, 50_400, -43_200]).prop_map(|o| ("", o)),
            ],
        ) {
            let unit = 10i128.pow(6 - frac);
            let mut sql = String::from("CREATE TABLE t (k TIMESTAMPTZ PRIMARY KEY, v INTEGER);");
            let mut stored_keys = std::collections::BTreeSet::new();
            for k in &keys {
                let m = instant(base, *k).div_euclid(unit) * unit;
                if let Some(text) = stored(m, frac, suffix, offset) {
                    if stored_keys.insert(m) {
                        sql.push_str(&format!("INSERT INTO t VALUES ('{text}', 0);"));
                    }
                }
            }
            let db = Db::with("instant-ranges", &sql);
            let mut src = SqliteSource::open(&db.0).expect("open");
            let rule = ColumnRule {
                assume_offset_secs: offset,
                ..ColumnRule::new(LogicalType::Timestamp { precision: 6 })
            };
            let spec = ScanSpec {
                table: "t".into(),
                key: vec![ColumnSpec { name: "k".into(), rule }],
                values: vec![ColumnSpec {
                    name: "v".into(),
                    rule: ColumnRule::new(LogicalType::Integer),
                }],
                filter: None,
                ranges: Vec::new(),
            };
            let key_of = |m: i128| key::encode(&[Value::Timestamp(m)]);
            let (after, through) = (bounds.0.map(|b| instant(base, b)), instant(base, bounds.1));
            let range = KeyRange { after: after.map(key_of), through: key_of(through) };
            let mut sent = Vec::new();
            src.scan(&spec, Some(&range), &mut |r: &[Value]| {
                sent.push(r[0].clone());
                ControlFlow::Continue(())
            })
            .expect("range read");
            let sent_keys: Vec<_> = sent.iter().map(|v| key::encode(std::slice::from_ref(v))).collect();
            for &m in &stored_keys {
                if range.contains(key_of(m).as_bytes()) {
                    prop_assert!(sent.contains(&Value::Timestamp(m)), "{m} in the range, not sent: {sent:?}");
                }
            }
            // Proven: every stored key an instant of years 0000–9999.
            if stored_keys.iter().all(|m| KEYED_INSTANTS.contains(m)) {
                prop_assert!(sent_keys.windows(2).all(|w| w[0] < w[1]), "out of key order: {sent:?}");
                let second = |m: i128| m.div_euclid(SEC) * SEC;
                let writable = |m: i128| KEYED_INSTANTS.contains(&(m + i128::from(offset) * SEC));
                for v in &sent {
                    let Value::Timestamp(m) = v else {
                        return Err(TestCaseError::fail(format!("not an instant: {v:?}")));
                    };
                    if let Some(a) = after.filter(|a| KEYED_INSTANTS.contains(a) && writable(second(*a) - 1)) {
                        prop_assert!(*m >= second(a), "{m} before the second of {a}");
                    }
                    if KEYED_INSTANTS.contains(&through) && writable(second(through) + SEC - 1) {
                        prop_assert!(*m < second(through) + SEC, "{m} after the second of {through}");
                    }
                }
            }
        }
    }
}
