//! The benchmark cases: the plain pair (integer key, columns named alike,
//! scattered drift) and the pathologies each measured beside it on the same
//! rows: a timestamp key, a replica whose integer keys are stored as text in
//! an untyped column (so SQLite returns them in text order), a column renamed
//! through the config, and dense drift (every row changed in one column).
//!
//! This file says what each case is, and how a key a comparison reports is
//! mapped back to the generator's row id; writing the tables lives in
//! `generate` and `server`.

use std::collections::BTreeMap;

use driftsum_core::Value;

use crate::config::{ColumnConfig, Config, TableConfig};

/// One shape of pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Case {
    /// Integer key, same column names, the drift asked for.
    Plain,
    /// Keyed by a timestamp (SQLite: `TIMESTAMP` text; PostgreSQL:
    /// `timestamptz`; MySQL: `datetime(6)`) instead of the integer id.
    TimestampKey,
    /// The replica's integer ids are text in an untyped key column, so
    /// SQLite orders them as text ('10' before '9').
    Unordered,
    /// The replica's `name` column is called `zname` (sorting after every
    /// other column), mapped by the config.
    Renamed,
    /// Every row changed in one column (`qty`), whatever `--diffs` says.
    Dense,
}

/// Every case, in the order results list them.
pub const ALL: [Case; 5] = [
    Case::Plain,
    Case::TimestampKey,
    Case::Unordered,
    Case::Renamed,
    Case::Dense,
];

/// The replica's name for the renamed column (the source calls it `name`).
pub const RENAMED_TO: &str = "zname";

/// The first key of the timestamp case: 2020-09-13 12:26:40 UTC.
const TS_BASE_MICROS: i64 = 1_600_000_000_000_000;
/// Microseconds between consecutive ids' timestamps (plus 1 to 7 µs, so
/// every key has six fraction digits and they do not fall on a grid).
const TS_STEP_MICROS: i64 = 500_000;

impl Case {
    /// The name `--case` takes and results show.
    pub fn name(self) -> &'static str {
        match self {
            Case::Plain => "plain",
            Case::TimestampKey => "timestamp-key",
            Case::Unordered => "unordered",
            Case::Renamed => "renamed",
            Case::Dense => "dense",
        }
    }

    pub fn parse(s: &str) -> Result<Case, String> {
        let s = s.trim();
        ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|c| c.name()).collect();
            format!("{s:?} is not a case (one of: {})", names.join(", "))
        })
    }

    /// What a result line says about it.
    pub fn describe(self) -> &'static str {
        match self {
            Case::Plain => "integer key",
            Case::TimestampKey => "timestamp key",
            Case::Unordered => "ids as text in an untyped key",
            Case::Renamed => "a column renamed by the config",
            Case::Dense => "every row changed in one column",
        }
    }

    /// Whether a server can hold this case's replica (the others derive their
    /// replica from the SQLite files).
    pub fn server_replica(self) -> bool {
        matches!(self, Case::Plain | Case::TimestampKey)
    }

    /// The config a comparison of this case runs with: the rename for
    /// `Renamed`, nothing otherwise. `source_table` is the source's name for
    /// the table.
    pub fn config(self, source_table: &str) -> Config {
        let mut config = Config::default();
        if self == Case::Renamed {
            let mut columns = BTreeMap::new();
            columns.insert(
                "name".to_string(),
                ColumnConfig {
                    replica: Some(RENAMED_TO.to_string()),
                    ..ColumnConfig::default()
                },
            );
            config.tables.insert(
                source_table.to_string(),
                TableConfig {
                    columns,
                    ..TableConfig::default()
                },
            );
        }
        config
    }

    /// The generator's row id of a key a comparison reports, when it is one
    /// this case writes.
    pub fn key_id(self, key: &[Value]) -> Option<i64> {
        let [v] = key else {
            return None;
        };
        match (self, v) {
            (Case::TimestampKey, Value::Timestamp(m) | Value::TimestampNaive(m)) => {
                ts_id(i64::try_from(*m).ok()?)
            }
            (Case::TimestampKey, Value::Text(t)) => {
                ts_id(i64::try_from(driftsum_core::time::parse_datetime(t)?.local_micros).ok()?)
            }
            (Case::TimestampKey, _) => None,
            (_, Value::Int(k)) => i64::try_from(*k).ok(),
            (Case::Unordered, Value::Text(t)) => t.parse().ok(),
            _ => None,
        }
    }
}

/// The timestamp key of row id `id`, in microseconds since the epoch.
pub fn ts_micros(id: i64) -> i64 {
    TS_BASE_MICROS + id * TS_STEP_MICROS + 1 + id % 7
}

/// The timestamp key as text: `YYYY-MM-DD HH:MM:SS.ffffff` (always six
/// fraction digits, so text order is time order).
pub fn ts_text(id: i64) -> String {
    driftsum_core::time::format_timestamp(ts_micros(id)).replacen('T', " ", 1)
}

/// The row id whose timestamp key is `micros`, if any.
fn ts_id(micros: i64) -> Option<i64> {
    let off = micros.checked_sub(TS_BASE_MICROS)?;
    let id = off.div_euclid(TS_STEP_MICROS);
    (off >= 0 && ts_micros(id) == micros).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for c in ALL {
            assert_eq!(Case::parse(c.name()), Ok(c));
        }
        assert!(Case::parse("pathological").is_err());
    }

    #[test]
    fn timestamp_keys_are_ordered_six_digit_and_invertible() {
        let texts: Vec<String> = (0..2_000).map(ts_text).collect();
        assert!(texts.windows(2).all(|w| w[0] < w[1]));
        for (id, t) in texts.iter().enumerate() {
            assert_eq!(t.len(), "2020-09-13 12:26:40.000001".len(), "{t}");
            let id = id as i64;
            let m = ts_micros(id) as i128;
            assert_eq!(Case::TimestampKey.key_id(&[Value::Timestamp(m)]), Some(id));
            assert_eq!(
                Case::TimestampKey.key_id(&[Value::Text(t.clone())]),
                Some(id)
            );
        }
        // A timestamp between two keys is no row's key.
        assert_eq!(
            Case::TimestampKey.key_id(&[Value::Timestamp(ts_micros(3) as i128 + 1)]),
            None
        );
    }

    #[test]
    fn keys_map_back_per_case() {
        assert_eq!(Case::Plain.key_id(&[Value::Int(42)]), Some(42));
        assert_eq!(Case::Plain.key_id(&[Value::Text("42".into())]), None);
        assert_eq!(
            Case::Unordered.key_id(&[Value::Text("42".into())]),
            Some(42)
        );
        assert_eq!(Case::Unordered.key_id(&[Value::Int(42)]), Some(42));
    }

    #[test]
    fn only_the_renamed_case_maps_a_column() {
        assert_eq!(Case::Plain.config("bench"), Config::default());
        let c = Case::Renamed.config("bench");
        assert_eq!(c.replica_column("bench", "name").name, RENAMED_TO);
        assert_eq!(c.replica_column("bench", "qty").name, "qty");
    }
}
