//! Which indexes lead with which column, in which collation: whether a key
//! range read of a column goes through an index (a text key is compared as
//! bytes, `COLLATE BINARY`, which an index in `NOCASE` or `RTRIM` cannot
//! serve), and whether a key can be looked up by equality through one (an
//! index in any collation finds it, with rows whose key only collates equal,
//! which the caller drops): the connector's answers to
//! `Source::ranges_use_index`, `looks_up_keys` and `scan_keys`.

use driftsum_core::{LogicalType, Value};
use rusqlite::{Connection, OptionalExtension};

use super::dialect::SqliteSql;
use super::{scan_of, SqliteSource};
use crate::error::SourceError;
use crate::source::spec::{ColumnSpec, RowSink, ScanSpec};
use crate::source::sql;

/// The first key column of an index and its collation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Leading {
    pub column: String,
    pub collation: String,
}

impl Leading {
    /// Whether comparisons in byte order (`BINARY`) can use it.
    pub fn binary(&self) -> bool {
        self.collation.eq_ignore_ascii_case("BINARY")
    }
}

/// The leading column of every index of `table` (those SQLite made for its
/// primary key and unique constraints too), as `pragma_index_xinfo` lists
/// them; an index on an expression has no column and is left out.
pub(super) fn leading(conn: &Connection, table: &str) -> Result<Vec<Leading>, SourceError> {
    let context = format!("reading the indexes of table {table:?}");
    let err = |e| SourceError::query(&context, e);
    let names: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_index_list(?1)")
            .map_err(err)?;
        let rows = stmt.query_map([table], |r| r.get(0)).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)?
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let first = conn.query_row(
            &format!(
                "SELECT name, coll FROM pragma_index_xinfo({}) WHERE key = 1 ORDER BY seqno LIMIT 1",
                quote_literal(&name)
            ),
            [],
            |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?)),
        );
        match first {
            Ok((Some(column), collation)) => out.push(Leading {
                column,
                collation: collation.unwrap_or_else(|| "BINARY".into()),
            }),
            Ok((None, _)) | Err(rusqlite::Error::QueryReturnedNoRows) => {}
            Err(e) => return Err(err(e)),
        }
    }
    Ok(out)
}

/// What a table's reads can go through.
#[derive(Clone, Debug)]
pub(super) struct Access {
    /// Whether it is a table (a view's ranges are left to its query).
    table: bool,
    /// Its rowid alias, if any.
    rowid: Option<String>,
    /// Its indexes' leading columns.
    leading: Vec<Leading>,
}

impl SqliteSource {
    /// What `table`'s reads can go through, looked up once.
    fn access(&mut self, table: &str) -> Result<Access, SourceError> {
        if let Some(a) = self.indexes.get(table) {
            return Ok(a.clone());
        }
        let kind: Option<String> = self
            .conn
            .query_row(
                "SELECT type FROM sqlite_schema WHERE name = ?1 COLLATE NOCASE",
                [table],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.query_err("reading the schema", e))?;
        let cols = self.columns(table)?;
        let a = Access {
            table: kind.as_deref() == Some("table"),
            rowid: self.rowid_alias(table, &cols)?,
            leading: leading(&self.conn, table)?,
        };
        self.indexes.insert(table.to_string(), a.clone());
        Ok(a)
    }

    /// [`Source::ranges_use_index`](crate::source::Source::ranges_use_index):
    /// a table's (a view's ranges are left to its query) through its
    /// rowid, or an index leading with the key's first column in the
    /// collation its ranges compare in: `BINARY` for text (an index in
    /// `NOCASE` cannot serve a byte-order range), any other for other types
    /// (whose values no collation orders).
    pub(super) fn ranges_indexed(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        let Some(lead) = spec.key.first() else {
            return Ok(true);
        };
        let a = self.access(&spec.table)?;
        if !a.table || a.rowid.as_ref() == Some(&lead.name) {
            return Ok(true);
        }
        Ok(a.leading
            .iter()
            .any(|l| l.column == lead.name && (lead.rule.ty != LogicalType::Text || l.binary())))
    }

    /// [`Source::looks_up_keys`](crate::source::Source::looks_up_keys): a
    /// lone text key with an index in any collation (equality in `NOCASE`
    /// finds the key and its case variants, which the caller drops), its
    /// trailing spaces kept; not a table seen holding a key in another
    /// storage class, which `=` on text would miss.
    pub(super) fn keys_indexed(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        let keys: Vec<&ColumnSpec> = spec.key.iter().collect();
        let [lead] = keys[..] else {
            return Ok(false);
        };
        if !sql::looks_up(&SqliteSql::default(), spec, &keys) || self.odd_keys.contains(&spec.table)
        {
            return Ok(false);
        }
        Ok(self
            .access(&spec.table)?
            .leading
            .iter()
            .any(|l| l.column == lead.name))
    }

    /// [`Source::scan_keys`](crate::source::Source::scan_keys): by equality
    /// through the index, when [`SqliteSource::keys_indexed`] (see
    /// [`sql::keys_queries`]).
    pub(super) fn scan_by_key(
        &mut self,
        spec: &ScanSpec,
        keys: &[Vec<Value>],
        sink: &mut RowSink<'_>,
    ) -> Result<bool, SourceError> {
        if !self.keys_indexed(spec)? {
            return Ok(false);
        }
        let lookups =
            |s: &sql::Scan<'_, ColumnSpec>| sql::keys_queries(&SqliteSql::default(), s, keys);
        let Some(queries) = scan_of(spec, None, false, lookups) else {
            return Ok(false);
        };
        for query in queries {
            self.read_sql(spec, &query.sql, &query.binds, sink)?;
        }
        Ok(true)
    }
}

/// `s` as an SQL string literal.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use driftsum_core::coerce::ColumnRule;
    use driftsum_core::{LogicalType, Value};

    use super::super::scratch::Db;
    use super::super::SqliteSource;
    use super::*;
    use crate::source::spec::{ColumnSpec, ScanSpec, Source};

    fn spec(table: &str, key: &str, ty: LogicalType, filter: Option<&str>) -> ScanSpec {
        ScanSpec {
            table: table.into(),
            key: vec![ColumnSpec {
                name: key.into(),
                rule: ColumnRule::new(ty),
            }],
            values: vec![ColumnSpec {
                name: "v".into(),
                rule: ColumnRule::new(LogicalType::Text),
            }],
            filter: filter.map(str::to_string),
            ranges: Vec::new(),
        }
    }

    /// A range read goes through an index only in the collation it
    /// compares in (bytes, for text); a key is looked up by equality
    /// through an index in any collation, the user's filter still applied,
    /// and not at all without an index.
    #[test]
    fn ranges_and_lookups_follow_the_indexes() {
        let db = Db::with(
            "indexes",
            "CREATE TABLE bin (k TEXT PRIMARY KEY, v TEXT);
             CREATE TABLE nc (k TEXT PRIMARY KEY COLLATE NOCASE, v TEXT);
             CREATE TABLE ni (k TEXT, v TEXT);
             CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT);
             CREATE TABLE ix (a INTEGER, v TEXT); CREATE INDEX ix_a ON ix (a);
             INSERT INTO nc VALUES ('Ab', 'one'), ('b', 'two'), ('C', 'three');
             INSERT INTO ni VALUES ('Ab', 'one');",
        );
        let mut src = SqliteSource::open(&db.0).expect("open");
        let text = LogicalType::Text;
        for (table, key, ty, indexed) in [
            ("bin", "k", text, true),
            ("nc", "k", text, false),
            ("ni", "k", text, false),
            ("r", "id", LogicalType::Integer, true),
            ("ix", "a", LogicalType::Integer, true),
            ("ix", "v", text, false),
        ] {
            let got = src
                .ranges_use_index(&spec(table, key, ty, None))
                .expect("asked");
            assert_eq!(got, indexed, "{table}.{key}");
        }
        let mut lookup = |table: &str, filter: Option<&str>, keys: &[&str]| {
            let keys: Vec<Vec<Value>> = keys
                .iter()
                .map(|k| vec![Value::Text(k.to_string())])
                .collect();
            let mut rows = Vec::new();
            let looked_up = src
                .scan_keys(
                    &spec(table, "k", text, filter),
                    &keys,
                    &mut |r: &[Value]| {
                        rows.push(r[0].to_string());
                        ControlFlow::Continue(())
                    },
                )
                .expect("lookup");
            rows.sort();
            looked_up.then_some(rows)
        };
        assert_eq!(
            lookup("nc", None, &["Ab", "C", "zz"]),
            Some(vec!["Ab".into(), "C".into()])
        );
        // NOCASE equality finds the stored key for its case variant too.
        assert_eq!(lookup("nc", None, &["ab"]), Some(vec!["Ab".into()]));
        assert_eq!(
            lookup("nc", Some("v <> 'one'"), &["Ab", "b"]),
            Some(vec!["b".into()])
        );
        assert_eq!(lookup("ni", None, &["Ab"]), None);
    }

    #[test]
    fn leading_columns_and_collations() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(
            "CREATE TABLE t (k TEXT PRIMARY KEY COLLATE NOCASE, a INTEGER, b TEXT, c TEXT UNIQUE);
             CREATE INDEX \"t's a\" ON t (a, b);
             CREATE INDEX t_b ON t (b COLLATE RTRIM);
             CREATE INDEX t_expr ON t (lower(b));
             CREATE TABLE w (x TEXT, y INTEGER, PRIMARY KEY (y, x)) WITHOUT ROWID;
             CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT);",
        )
        .expect("schema");
        let mut t = leading(&conn, "t").expect("t");
        t.sort_by(|a, b| a.column.cmp(&b.column));
        let got: Vec<(&str, &str, bool)> = t
            .iter()
            .map(|l| (l.column.as_str(), l.collation.as_str(), l.binary()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", "BINARY", true),
                ("b", "RTRIM", false),
                ("c", "BINARY", true),
                ("k", "NOCASE", false)
            ]
        );
        let w = leading(&conn, "w").expect("w");
        assert_eq!(
            w.iter().map(|l| l.column.as_str()).collect::<Vec<_>>(),
            ["y"]
        );
        assert!(leading(&conn, "r").expect("r").is_empty());
    }
}
