//! The synthetic benchmark table: its columns, the value of every row, and
//! the drift injected into a replica. Pure and deterministic: the same size
//! and difference count always give the same rows, so generated files can be
//! cached and any tool can be checked against the same expected differences.
//! Writing the rows to a database lives in `generate`.
//!
//! The table is shaped like the tables users sync: full 53-bit doubles,
//! two-place decimals (a SQLite `NUMERIC` column stores them as REAL),
//! timestamps as `YYYY-MM-DD HH:MM:SS.ffffff` text and a note that is NULL
//! in 30% of rows.

use std::fmt;

/// The table's name in a SQLite file (server tables are named per pair).
pub const TABLE: &str = "bench";

/// The columns, in table order (the key first).
pub const COLUMNS: [&str; 7] = ["id", "name", "qty", "price", "amount", "created", "note"];

/// Version of the generator: part of every cached file's name, so a change
/// to the rows or the drift never reuses stale data.
pub const GENERATOR_VERSION: u32 = 2;

/// One generated row. `amount` is decimal text with two places, `created` an
/// ISO-8601 timestamp with microseconds and a space for the `T`, as every
/// engine accepts them.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub id: i64,
    pub name: String,
    pub qty: i64,
    pub price: f64,
    pub amount: String,
    pub created: String,
    pub note: Option<String>,
}

/// The `i`-th row of the source (`0 <= i < rows`). Keys are even, so extra
/// replica rows can sit between source rows (odd keys), scattered like real
/// drift rather than appended at the end.
pub fn row(i: u64) -> Row {
    let mix = splitmix(i);
    let i = i as i64;
    let micros = (1_600_000_000 + i * 17) * 1_000_000 + (i % 1000) * 1_000 + 1;
    Row {
        id: 2 * i,
        name: format!("customer-{:08}", (i * 7919) % 1_000_003),
        qty: i % 1000,
        // Every mantissa bit in use, as prices computed by an application
        // are: a short decimal would flatter float formatting.
        price: (mix >> 11) as f64 / (1u64 << 53) as f64 * 10_000.0,
        amount: format!("{}.{:02}", i % 100_000, (i * 13) % 100),
        created: driftsum_core::time::format_timestamp(micros).replacen('T', " ", 1),
        note: (mix % 10 >= 3).then(|| format!("note {i}")),
    }
}

/// A fixed, well-mixed 64-bit value per row (SplitMix64's finalizer).
fn splitmix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How many differences a replica gets: a count, or a share of the rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriftCount {
    Rows(u64),
    /// Percent of the source rows (`100` puts a difference at every row).
    Percent(u8),
}

impl DriftCount {
    /// Parses `10`, `10k`, `1M` or `10%`.
    pub fn parse(s: &str) -> Result<DriftCount, String> {
        match s.trim().strip_suffix('%') {
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= 100 => Ok(DriftCount::Percent(p)),
                _ => Err(format!("{s:?} is not a percentage from 0% to 100%")),
            },
            None => super::parse_count(s).map(DriftCount::Rows),
        }
    }

    /// The number of differences in a table of `rows` rows.
    pub fn of(self, rows: u64) -> u64 {
        match self {
            DriftCount::Rows(n) => n,
            DriftCount::Percent(p) => rows * p as u64 / 100,
        }
    }

    /// How results name it: `10` or `10%`.
    pub fn label(self) -> String {
        match self {
            DriftCount::Rows(n) => n.to_string(),
            DriftCount::Percent(p) => format!("{p}%"),
        }
    }
}

/// What kind of difference a replica row has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// In both, with a different value.
    Changed,
    /// In the source only.
    Missing,
    /// In the replica only.
    Extra,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Changed => "changed",
            Kind::Missing => "missing",
            Kind::Extra => "extra",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One injected difference: the source row index it sits at, its kind, and
/// the key the comparison must report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drift {
    pub index: u64,
    pub kind: Kind,
    pub key: i64,
    /// For `Changed`: which column (cycling through all of them).
    pub column: usize,
}

/// How the replica of a `rows`-row table with `diffs` differences differs:
/// spread evenly over the key space with a little jitter, kinds in turn
/// (changed, missing, extra), changed columns in turn. Sorted by index.
///
/// Needs `diffs <= rows` (checked by the caller), so indexes are distinct;
/// with `diffs == rows` every source row has one.
pub fn drift(rows: u64, diffs: u64) -> Vec<Drift> {
    (0..diffs)
        .map(|j| {
            let stride = rows / diffs.max(1);
            // Centre of the j-th stride, moved by up to a quarter stride so
            // the differences do not fall on a regular grid.
            let jitter =
                (j.wrapping_mul(0x9E37_79B9) % (stride / 2).max(1)) as i64 - (stride / 4) as i64;
            let centre = (j * stride + stride / 2) as i64;
            let index = (centre + jitter).clamp(0, rows as i64 - 1) as u64;
            let kind = match j % 3 {
                0 => Kind::Changed,
                1 => Kind::Missing,
                _ => Kind::Extra,
            };
            let key = match kind {
                Kind::Extra => 2 * index as i64 + 1,
                _ => 2 * index as i64,
            };
            Drift {
                index,
                kind,
                key,
                column: (j / 3) as usize % 6,
            }
        })
        .collect()
}

/// The replica's version of a changed row: one column altered.
pub fn changed(mut r: Row, column: usize) -> Row {
    match column {
        0 => r.name.push('!'),
        1 => r.qty += 1,
        // The next float up: the smallest change a double can have.
        2 => r.price = f64::from_bits(r.price.to_bits() + 1),
        3 => {
            // The last cent digit, moved to another digit.
            let last = if r.amount.ends_with('1') { '2' } else { '1' };
            r.amount.pop();
            r.amount.push(last);
        }
        4 => r.created = r.created.replacen("20", "19", 1),
        _ => {
            r.note = if r.note.is_some() {
                None
            } else {
                Some(String::new())
            }
        }
    }
    r
}

/// The extra replica row placed after source row `index`.
pub fn extra(index: u64) -> Row {
    let mut r = row(index);
    r.id += 1;
    r.name = format!("extra-{}", r.id);
    r
}

/// The replica's rows, in key order: the source's with the drift applied.
pub fn replica_rows(rows: u64, drift: &[Drift]) -> impl Iterator<Item = Row> + '_ {
    let mut next = 0usize;
    (0..rows).flat_map(move |i| {
        let d = drift.get(next).filter(|d| d.index == i).copied();
        if d.is_some() {
            next += 1;
        }
        let base = row(i);
        let out: Vec<Row> = match d {
            None => vec![base],
            Some(d) => match d.kind {
                Kind::Changed => vec![changed(base, d.column)],
                Kind::Missing => vec![],
                Kind::Extra => vec![base, extra(i)],
            },
        };
        out
    })
}

/// The expected differences, one `kind key` line each, sorted by key: the
/// format `benches/peers.sh` compares every tool's findings against.
pub fn expected_lines(drift: &[Drift]) -> String {
    let mut v: Vec<(i64, Kind)> = drift.iter().map(|d| (d.key, d.kind)).collect();
    v.sort();
    v.iter().map(|(k, kind)| format!("{kind} {k}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_is_scattered_distinct_and_mixed() {
        for (rows, diffs) in [(1_000, 0), (1_000, 5), (10, 5), (1_000_000, 1000)] {
            let d = drift(rows, diffs);
            assert_eq!(d.len() as u64, diffs);
            assert!(
                d.windows(2).all(|w| w[0].index < w[1].index),
                "{rows} {diffs}"
            );
            assert!(d.iter().all(|x| x.index < rows));
        }
        let d = drift(1_000, 9);
        for k in [Kind::Changed, Kind::Missing, Kind::Extra] {
            assert_eq!(d.iter().filter(|x| x.kind == k).count(), 3);
        }
    }

    #[test]
    fn replica_applies_exactly_the_drift() {
        let d = drift(100, 6);
        let rep: Vec<Row> = replica_rows(100, &d).collect();
        assert_eq!(rep.len(), 100); // two missing, two extra
        assert!(rep.windows(2).all(|w| w[0].id < w[1].id));
        let src: Vec<Row> = (0..100).map(row).collect();
        let differing = src.iter().filter(|r| !rep.contains(r)).count()
            + rep.iter().filter(|r| !src.contains(r)).count();
        // Each changed row counts on both sides.
        assert_eq!(differing, 2 * 2 + 2 + 2);
        assert_eq!(expected_lines(&d).lines().count(), 6);
    }

    #[test]
    fn dense_drift_has_one_difference_per_row() {
        for rows in [1, 2, 3, 10, 1_000] {
            let d = drift(rows, rows);
            assert_eq!(d.len() as u64, rows);
            assert!(d.iter().enumerate().all(|(i, x)| x.index == i as u64));
        }
        let d = drift(1_000, 600);
        assert!(d.windows(2).all(|w| w[0].index < w[1].index));
    }

    #[test]
    fn drift_counts_parse() {
        assert_eq!(DriftCount::parse("10%"), Ok(DriftCount::Percent(10)));
        assert_eq!(DriftCount::parse("1k"), Ok(DriftCount::Rows(1_000)));
        assert_eq!(DriftCount::Percent(10).of(1_000_000), 100_000);
        assert_eq!(DriftCount::Percent(100).of(7), 7);
        for bad in ["101%", "-1%", "x%", "%"] {
            assert!(DriftCount::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prices_use_the_whole_mantissa_and_notes_are_30_percent_null() {
        let rows: Vec<Row> = (0..10_000).map(row).collect();
        let nulls = rows.iter().filter(|r| r.note.is_none()).count();
        assert!((2_700..3_300).contains(&nulls), "{nulls}");
        let long = rows
            .iter()
            .filter(|r| r.price.to_string().len() > 15)
            .count();
        assert!(long > 9_000, "{long}");
        assert!(rows.iter().all(|r| r.created.as_bytes()[10] == b' '));
    }

    #[test]
    fn every_change_changes() {
        for c in 0..6 {
            for i in [0, 1, 3, 7] {
                assert_ne!(changed(row(i), c), row(i), "column {c} row {i}");
            }
        }
    }
}
