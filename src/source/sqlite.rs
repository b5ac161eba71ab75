//! The SQLite connector (rusqlite): opening a file read-only, schema
//! discovery from declared types, key-ordered scans in one read
//! transaction, range scans by key, and forks for parallel scans.
//!
//! Files are opened read-only and never created. Values are decoded by the
//! column's logical type, whatever storage class SQLite holds them in
//! ([`types`]). Scans of a table keyed by its rowid read the b-tree pages
//! directly ([`page_scan`] over [`pages`]); every other scan goes through
//! SQL ([`dialect`]).

mod dialect;
mod indexes;
mod page_scan;
mod pages;
#[cfg(test)]
pub(crate) mod scratch;
mod time_keys;
mod types;

pub use types::logical_type;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use driftsum_core::coerce::TrailingSpaces;
use driftsum_core::key::KeyRange;
use driftsum_core::{LogicalType, Value};
use rusqlite::{Connection, OpenFlags};

use self::dialect::{stored_as_declared, SqliteSql};
use self::pages::PageLayout;
use self::time_keys::PageOrder;
use self::types::decode_into;
use super::key_order::KeyOrder;
use super::spec::{
    quote_ident, wanted_only, Column, ColumnSpec, KeyFilter, RowSink, ScanSpec, Source, TableSchema,
};
use super::sql;
use crate::error::SourceError;

/// A read-only connection to one SQLite file, inside one read transaction.
pub struct SqliteSource {
    conn: Connection,
    file: std::path::PathBuf,
    path: String,
    /// Tables seen holding a key value in another storage class than its
    /// column's type (or NULL): SQL range comparisons would miss such rows,
    /// so their range reads scan the table and filter.
    odd_keys: HashSet<String>,
    /// Whether scans may read pages directly (see [`pages`]).
    page_reads: bool,
    /// Each table's page layout, once looked up; `None` when its pages are
    /// not read directly.
    layouts: HashMap<String, Option<PageLayout>>,
    /// What is known of date and time keys (their proven text forms, and
    /// whether the rowid order is the key order), per table and key columns
    /// (see [`time_keys`]).
    key_shapes: HashMap<String, time_keys::Known>,
    /// What each table's reads can go through, once looked up (see
    /// [`indexes`]).
    indexes: HashMap<String, indexes::Access>,
}

/// A column as `pragma_table_xinfo` lists it: name, declared type, position
/// in the primary key (0 when not in it), hidden (non-zero: generated).
type TableColumn = (String, String, i64, i64);

impl SqliteSource {
    pub fn open(path: &Path) -> Result<SqliteSource, SourceError> {
        SqliteSource::open_waiting(path, Some(super::url::DEFAULT_LOCK_TIMEOUT))
    }

    /// [`open`](SqliteSource::open), waiting at most `busy` (instead of
    /// SQLite's default) for a lock another process holds: a writer that
    /// holds the file (outside WAL mode, `BEGIN EXCLUSIVE` or a commit in
    /// progress) keeps every reader out, and the read is then an error
    /// naming the lock, never a hang.
    pub fn open_waiting(
        path: &Path,
        busy: Option<std::time::Duration>,
    ) -> Result<SqliteSource, SourceError> {
        let location = path.display().to_string();
        if path.is_dir() {
            return Err(SourceError::Open {
                location,
                message: "it is a directory, not a SQLite database file; name the database \
                          file itself"
                    .into(),
            });
        }
        if !path.is_file() {
            return Err(SourceError::NoFile(path.to_path_buf()));
        }
        // Said plainly, rather than as SQLite's "unable to open database file".
        if let Err(e) = std::fs::File::open(path) {
            return Err(SourceError::Open {
                location,
                message: format!("cannot read the file ({e}); driftsum needs read access to it"),
            });
        }
        let open_err = |e: rusqlite::Error| SourceError::Open {
            location: location.clone(),
            message: locked_message(e, busy),
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        if let Some(busy) = busy {
            conn.busy_timeout(busy).map_err(open_err)?;
        }
        // One read transaction for the life of the connection, so the scan and
        // the later range reads see the same snapshot. Reading the schema
        // starts it (a deferred BEGIN takes its snapshot at the first read),
        // and tells a file that is not a database at once.
        conn.execute_batch("BEGIN").map_err(open_err)?;
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
            .map_err(open_err)?;
        Ok(SqliteSource {
            conn,
            file: path.to_path_buf(),
            path: location,
            odd_keys: HashSet::new(),
            page_reads: true,
            layouts: HashMap::new(),
            key_shapes: HashMap::new(),
            indexes: HashMap::new(),
        })
    }

    /// Whether scans of a rowid-keyed table may read its b-tree pages
    /// directly (the default) rather than through SQL. Both give the same
    /// rows; turning it off is for measuring one against the other.
    pub fn set_page_reads(&mut self, on: bool) {
        self.page_reads = on;
    }

    /// Every column of `table` in declaration order: name, declared type,
    /// position in the primary key (0 when not in it), and whether it is
    /// hidden (non-zero: a generated column, or a virtual table's hidden one).
    fn columns(&self, table: &str) -> Result<Vec<TableColumn>, SourceError> {
        let err = |e| self.query_err("reading the schema", e);
        let mut stmt = self
            .conn
            .prepare("SELECT name, type, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")
            .map_err(err)?;
        let cols = stmt
            .query_map([table], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(err)?;
        Ok(cols)
    }

    fn query_err(&self, what: &str, e: rusqlite::Error) -> SourceError {
        SourceError::query(format!("{what} in {}", self.path), e)
    }

    /// The column of `table` that is its rowid, if any (an `INTEGER PRIMARY
    /// KEY` of a rowid table): then every key is an integer, and a range
    /// condition on it finds every row. `cols` are the table's [`columns`].
    ///
    /// [`columns`]: SqliteSource::columns
    fn rowid_alias(
        &self,
        table: &str,
        cols: &[TableColumn],
    ) -> Result<Option<String>, SourceError> {
        let [(name, declared, ..)] = cols.iter().filter(|c| c.2 > 0).collect::<Vec<_>>()[..] else {
            return Ok(None);
        };
        if !declared.trim_matches(' ').eq_ignore_ascii_case("INTEGER") {
            return Ok(None);
        }
        // A WITHOUT ROWID table (or a non-alias key such as `INTEGER
        // PRIMARY KEY DESC`) has an index of origin 'pk'.
        let pk_index: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM pragma_index_list(?1) WHERE origin = 'pk'",
                [table],
                |r| r.get(0),
            )
            .map_err(|e| self.query_err("reading the schema", e))?;
        Ok((pk_index == 0).then(|| name.clone()))
    }
}

impl SqliteSource {
    /// The table or view a name given by the user means, as the file spells
    /// it: matched as SQLite matches names (ASCII letters in any case), and
    /// `SCHEMA.NAME` (a PostgreSQL name, or SQLite's own `main.NAME`) taken
    /// as `NAME` when the file has no table of the whole name. A file
    /// holding both is asked which is meant.
    fn find_table(&self, table: &str) -> Result<String, SourceError> {
        let whole = self.table_named(table)?;
        let unqualified = match table.split_once('.') {
            Some((_, name)) if !name.is_empty() => self.table_named(name)?,
            _ => None,
        };
        match (whole, unqualified) {
            (Some(w), Some(u)) if w != u => Err(SourceError::Other(format!(
                "{table:?} could mean the table {w:?} or the table {u:?} of {}; name the \
                 one meant as --table SOURCE_NAME=REPLICA_NAME",
                self.path
            ))),
            (Some(t), _) | (None, Some(t)) => Ok(t),
            (None, None) => Err(SourceError::NoTable {
                table: table.to_string(),
                location: self.path.clone(),
            }),
        }
    }

    /// The table or view named `name` in any ASCII case (SQLite's rule for
    /// names, so at most one matches), as the file spells it.
    fn table_named(&self, name: &str) -> Result<Option<String>, SourceError> {
        let found = self.conn.query_row(
            "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') \
             AND name = ?1 COLLATE NOCASE ORDER BY name = ?1 DESC LIMIT 1",
            [name],
            |r| r.get::<_, String>(0),
        );
        match found {
            Ok(n) => Ok(Some(n)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(self.query_err("reading the schema", e)),
        }
    }
}

impl SqliteSource {
    /// [`Source::scan`] but for putting an instant key's rows of one second
    /// in key order: its rows come in the keys' time order where a proof
    /// says so (pages in rowid order, or SQL ordering text in one form).
    fn scan_sorted(
        &mut self,
        spec: &ScanSpec,
        range: Option<&KeyRange>,
        keys: &[&ColumnSpec],
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        if self.page_reads && spec.filter.is_none() {
            if let Some(layout) = self.page_layout(&spec.table)? {
                // A whole scan of a table keyed by dates or times in one text
                // form reads its pages too, when its rowids ascend with its
                // keys (the usual case: a sync copies in key order); the
                // first such scan on this connection proves it as it reads.
                let known = match range {
                    None if layout.rowid.is_none() => {
                        time_keys::rowid_ordered(&self.key_shapes, spec)
                    }
                    _ => Some(false),
                };
                let mut proof = known.is_none().then(|| time_keys::StreamProof::new(spec));
                let order = match (known, proof.as_mut()) {
                    (Some(true), _) => PageOrder::Proven,
                    (None, Some(p)) => PageOrder::Prove(p),
                    _ => PageOrder::ByAlias,
                };
                let read = self.scan_pages(&layout, spec, range, order, sink)?;
                if let Some(p) = proof {
                    p.learn(&mut self.key_shapes, spec);
                }
                if read {
                    return Ok(());
                }
            }
        }
        let odd = self.odd_keys.contains(&spec.table);
        let dialect = SqliteSql {
            shapes: match range {
                Some(_) => time_keys::prove(&self.conn, &mut self.key_shapes, spec)?,
                None => Vec::new(),
            },
            compound: keys.len() > 1,
        };
        let range = range.filter(|_| dialect.range_friendly(spec) && !odd);
        self.read_query(spec, &dialect, range, true, sink)
    }

    /// Reads `spec`'s columns through one query of `dialect`: within
    /// `range` where given, in key order when `in_key_order`.
    fn read_query(
        &mut self,
        spec: &ScanSpec,
        dialect: &SqliteSql,
        range: Option<&KeyRange>,
        in_key_order: bool,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        let query = scan_of(spec, range, in_key_order, |s| sql::scan_query(dialect, s))?;
        self.read_sql(spec, &query.sql, &query.binds, sink)
    }

    /// Runs one query of `spec`'s columns, handing each row to `sink`, and
    /// notes a key value stored in another storage class than its column's
    /// (see [`Source::ranges_find_every_row`]).
    fn read_sql(
        &mut self,
        spec: &ScanSpec,
        sql: &str,
        params: &[rusqlite::types::Value],
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        let context = format!("reading table {:?}", spec.table);
        let mut stmt = self
            .conn
            .prepare(sql)
            .map_err(|e| self.query_err(&context, e))?;
        let rules: Vec<_> = spec.columns().map(|c| c.rule).collect();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(|e| SourceError::query(&context, e))?;
        // One thread: handing rows to a second thread was measured slower
        // here (a fresh Vec per row, freed on the other side) than reusing
        // one buffer, and a diff already scans both sides at once.
        let nkey = spec.key.len();
        let mut buf: Vec<Value> = vec![Value::Null; rules.len()];
        let mut saw_odd_key = false;
        loop {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => return Err(SourceError::query(&context, e)),
            };
            for (i, (rule, slot)) in rules.iter().zip(buf.iter_mut()).enumerate() {
                let v = row
                    .get_ref(i)
                    .map_err(|e| SourceError::query(&context, e))?;
                if i < nkey && !saw_odd_key && !stored_as_declared(v, rule.ty) {
                    saw_odd_key = true;
                }
                decode_into(slot, v, rule).map_err(|u| {
                    u.error(
                        &spec.table,
                        spec.columns().nth(i).map_or("", |c| c.name.as_str()),
                    )
                })?;
            }
            if sink(&buf).is_break() {
                break;
            }
        }
        if saw_odd_key {
            self.odd_keys.insert(spec.table.clone());
        }
        Ok(())
    }
}

/// `f` of the SQL builder's scan of `spec`: its table, its key and every
/// column it reads, within `range` where given, in key order or not.
fn scan_of<R>(
    spec: &ScanSpec,
    range: Option<&KeyRange>,
    in_key_order: bool,
    f: impl FnOnce(&sql::Scan<'_, ColumnSpec>) -> R,
) -> R {
    let keys: Vec<&ColumnSpec> = spec.key.iter().collect();
    let cols: Vec<&ColumnSpec> = spec.columns().collect();
    f(&sql::Scan {
        spec,
        from: quote_ident(&spec.table),
        columns: &cols,
        keys: &keys,
        range,
        in_key_order,
    })
}

impl Source for SqliteSource {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path)
    }

    fn estimate_rows(&mut self, table: &str) -> Option<u64> {
        super::estimate::sqlite(&self.conn, table)
    }

    fn tables(&mut self) -> Result<Vec<String>, SourceError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
            .map_err(|e| self.query_err("listing tables", e))?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        names.map_err(|e| self.query_err("listing tables", e))
    }

    /// The schema of `table`, found as [`SqliteSource::find_table`] finds
    /// it; its `name` is the table's own, as the file spells it.
    fn schema(&mut self, table: &str) -> Result<TableSchema, SourceError> {
        let table = &self.find_table(table)?;
        // Generated and hidden columns are not compared (as
        // `pragma_table_info` leaves them out).
        let rows: Vec<_> = self
            .columns(table)?
            .into_iter()
            .filter(|c| c.3 == 0)
            .collect();
        let mut pk: Vec<(i64, String)> = rows
            .iter()
            .filter(|r| r.2 > 0)
            .map(|r| (r.2, r.0.clone()))
            .collect();
        pk.sort();
        Ok(TableSchema {
            name: table.to_string(),
            columns: rows
                .into_iter()
                .map(|(name, declared, ..)| Column {
                    ty: logical_type(&declared),
                    // SQLite keeps text as given, `CHAR(n)` or not.
                    trailing_spaces: TrailingSpaces::Significant,
                    name,
                    declared,
                })
                .collect(),
            primary_key: pk.into_iter().map(|p| p.1).collect(),
        })
    }

    fn scans_again_in_key_order(&self, spec: &ScanSpec) -> bool {
        // A whole scan that proved the rowids do not ascend with the keys
        // sent its rows in rowid order; the next one goes through the key's
        // index.
        time_keys::learnt_rowids_unordered(&self.key_shapes, spec)
    }

    fn scan(
        &mut self,
        spec: &ScanSpec,
        range: Option<&KeyRange>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        let keys: Vec<&ColumnSpec> = spec.key.iter().collect();
        // An instant key's text, in one form, sorts in time order, as do its
        // rows in pages proven to be in time order; that is key order only
        // to the second (see `time_keys`): its rows are put in key order
        // here, a second's rows at a time.
        let instant = sql::timestamp_key(spec, &keys, |c| {
            matches!(c.rule.ty, LogicalType::Timestamp { .. })
        });
        let Some(ts) = instant else {
            return self.scan_sorted(spec, range, &keys, sink);
        };
        let mut order = KeyOrder::new(ts, keys.len());
        self.scan_sorted(spec, range, &keys, &mut |row| order.push(row, sink))?;
        let _ = order.flush(sink);
        Ok(())
    }

    /// In rowid order, the order SQLite stores a table in: its pages where
    /// they can be read, else a query without `ORDER BY`. A table whose
    /// SQL order is not key order (integer keys stored as text, say) is
    /// otherwise read through its key's index, a lookup of each row.
    fn scan_unordered(
        &mut self,
        spec: &ScanSpec,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        self.scan_unordered_wanted(spec, &mut |_| true, sink)
    }

    /// See [`SqliteSource::scan_unordered`]; from the pages, only the
    /// wanted rows' values are decoded.
    fn scan_unordered_wanted(
        &mut self,
        spec: &ScanSpec,
        wanted: &mut KeyFilter<'_>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        if self.page_reads && spec.filter.is_none() {
            if let Some(layout) = self.page_layout(&spec.table)? {
                let order = PageOrder::Any(&mut *wanted);
                if self.scan_pages(&layout, spec, None, order, sink)? {
                    return Ok(());
                }
            }
        }
        let dialect = SqliteSql {
            shapes: Vec::new(),
            compound: spec.key.len() > 1,
        };
        let sink = &mut wanted_only(spec, wanted, sink);
        self.read_query(spec, &dialect, None, false, sink)
    }

    /// A second connection to the same file, inside its own read
    /// transaction. Outside WAL mode this connection's read transaction holds
    /// a shared lock that keeps every writer from committing, so the new one
    /// sees the same state; in WAL mode writers go on, and two connections
    /// cannot be pinned to one snapshot (that needs SQLITE_ENABLE_SNAPSHOT),
    /// so there is no fork.
    fn fork(&mut self) -> Result<Option<Box<dyn Source>>, SourceError> {
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| self.query_err("reading the journal mode", e))?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(None);
        }
        // A writer waiting to commit blocks new readers: rather than wait
        // for it, the scan goes on with the connections it has.
        let fork = SqliteSource::open_waiting(&self.file, Some(std::time::Duration::ZERO))?;
        Ok(Some(Box::new(fork)))
    }

    fn ranges_find_every_row(&self, spec: &ScanSpec) -> bool {
        !self.odd_keys.contains(&spec.table)
    }

    /// Through the rowid, or an index leading with the key's first column
    /// in the collation its ranges compare in: `BINARY` for text (an index
    /// in `NOCASE` cannot serve a byte-order range), any other for other
    /// types (whose values no collation orders).
    /// See [`SqliteSource::ranges_indexed`].
    fn ranges_use_index(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        self.ranges_indexed(spec)
    }

    /// See [`SqliteSource::keys_indexed`].
    fn looks_up_keys(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        self.keys_indexed(spec)
    }

    /// See [`SqliteSource::scan_by_key`].
    fn scan_keys(
        &mut self,
        spec: &ScanSpec,
        keys: &[Vec<Value>],
        sink: &mut RowSink<'_>,
    ) -> Result<bool, SourceError> {
        self.scan_by_key(spec, keys, sink)
    }

    /// Another connection to a file is just another file handle.
    fn cheap_forks(&self) -> bool {
        true
    }

    /// Cuts for a rowid key only: every row's key is then an integer that
    /// a range condition finds, and the bounds come from the rowid b-tree
    /// at no cost. The cuts split the key span evenly, which for the usual
    /// dense ids splits the rows evenly too.
    fn key_cuts(
        &mut self,
        spec: &ScanSpec,
        rows_per_range: u64,
    ) -> Result<Vec<Vec<Value>>, SourceError> {
        let [key] = spec.key.as_slice() else {
            return Ok(Vec::new());
        };
        if key.rule.ty != LogicalType::Integer {
            return Ok(Vec::new());
        }
        let cols = self.columns(&spec.table)?;
        if self.rowid_alias(&spec.table, &cols)?.as_ref() != Some(&key.name) {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT min({k}), max({k}) FROM {t}",
            k = quote_ident(&key.name),
            t = quote_ident(&spec.table)
        );
        let (lo, hi): (Option<i64>, Option<i64>) = self
            .conn
            .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.query_err("reading the key range", e))?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok(Vec::new());
        };
        Ok(super::spec::even_cuts(lo, hi, rows_per_range))
    }
}

/// The message of an error opening a file: for a lock another connection
/// holds, one that says so and how long was waited.
fn locked_message(e: rusqlite::Error, waited: Option<std::time::Duration>) -> String {
    let busy = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    match waited {
        Some(w) if busy => format!(
            "the file is locked by another connection (a writer holds it), still after \
             waiting {:?}: {e}; try again when the writer is done, or wait longer with \
             ?lock_timeout=SECONDS",
            w
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::scratch::Db;
    use super::types::real_affinity;
    use super::*;
    use driftsum_core::coerce::ColumnRule;
    use driftsum_core::key;
    use proptest::prelude::*;
    use rusqlite::types::Value as Sql;

    /// What a diff of `table` against itself scans: its primary key, then
    /// every other column in name order, each read by its declared type.
    fn spec(src: &mut SqliteSource, table: &str) -> ScanSpec {
        let schema = src.schema(table).expect("schema");
        assert!(!schema.primary_key.is_empty(), "{table} has no primary key");
        let column = |c: &Column| ColumnSpec {
            name: c.name.clone(),
            rule: ColumnRule {
                trailing_spaces: c.trailing_spaces,
                ..ColumnRule::new(c.ty)
            },
        };
        let key = schema
            .primary_key
            .iter()
            .map(|k| column(schema.column(k).expect("key column")))
            .collect();
        let mut values: Vec<ColumnSpec> = schema
            .columns
            .iter()
            .filter(|c| !schema.primary_key.contains(&c.name))
            .map(column)
            .collect();
        values.sort_by(|a, b| a.name.cmp(&b.name));
        ScanSpec {
            table: table.to_string(),
            key,
            values,
            filter: None,
            ranges: Vec::new(),
        }
    }

    type Rows = Vec<Vec<Value>>;

    /// The rows of a scan through SQL.
    fn sql_rows(src: &mut SqliteSource, spec: &ScanSpec, bounds: Option<&KeyRange>) -> Rows {
        src.set_page_reads(false);
        let mut rows = Vec::new();
        src.scan(spec, bounds, &mut |r: &[Value]| {
            rows.push(r.to_vec());
            std::ops::ControlFlow::Continue(())
        })
        .expect("sql scan");
        src.set_page_reads(true);
        rows
    }

    /// The rows of a scan from the pages; an error if the pages were not
    /// read (the scan declined).
    fn page_rows(
        src: &mut SqliteSource,
        spec: &ScanSpec,
        bounds: Option<&KeyRange>,
    ) -> Result<Rows, SourceError> {
        let layout = src
            .page_layout(&spec.table)?
            .ok_or_else(|| SourceError::Other("no page layout".into()))?;
        let mut rows = Vec::new();
        let read = src.scan_pages(
            &layout,
            spec,
            bounds,
            PageOrder::ByAlias,
            &mut |r: &[Value]| {
                rows.push(r.to_vec());
                std::ops::ControlFlow::Continue(())
            },
        )?;
        if !read {
            return Err(SourceError::Other("pages not read".into()));
        }
        Ok(rows)
    }

    /// Any value in any storage class, texts and blobs long enough to spill
    /// onto overflow pages, and integral reals (which REAL affinity stores
    /// as integers).
    fn sql_value() -> impl Strategy<Value = Sql> {
        prop_oneof![
            Just(Sql::Null),
            any::<i64>().prop_map(Sql::Integer),
            (-3i64..1000).prop_map(Sql::Integer),
            any::<f64>()
                .prop_filter("SQLite stores NaN as NULL", |f| !f.is_nan())
                .prop_map(Sql::Real),
            (-1000i32..1000).prop_map(|i| Sql::Real(f64::from(i))),
            "[a-z0-9 :.-]{0,12}".prop_map(Sql::Text),
            "2026-0[1-9]-1[0-9] 1[0-9]:[0-5][0-9]:[0-5][0-9]".prop_map(Sql::Text),
            (0usize..3000).prop_map(|n| Sql::Text("é".repeat(n / 2))),
            prop::collection::vec(any::<u8>(), 0..2500).prop_map(Sql::Blob),
        ]
    }

    /// Every affinity; `j` is a timestamp with REAL affinity, where a stored
    /// integer must read as a float (a Julian day, not Unix seconds).
    const COLUMNS: &str = "id INTEGER PRIMARY KEY, a TEXT, b REAL, c NUMERIC, d BLOB, e, \
                           f DECIMAL(10,2), g TIMESTAMP, h INTEGER, i DOUBLE PRECISION, \
                           j DATETIME FLOAT";

    #[derive(Debug, Clone)]
    struct Case {
        page_size: u32,
        /// Bytes at the end of each page the b-tree must not use.
        reserved: u8,
        rows: Vec<(i64, Vec<Sql>)>,
        /// Rows deleted again (leaving free space inside pages).
        deleted: Vec<prop::sample::Index>,
        /// Columns added (with defaults) after this many rows.
        added_after: Option<prop::sample::Index>,
        bounds: (i64, i64),
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            prop::sample::select(vec![512u32, 1024, 4096, 65536]),
            prop::sample::select(vec![0u8, 32]),
            prop::collection::vec(
                (
                    prop_oneof![any::<i64>(), -50i64..400],
                    prop::collection::vec(sql_value(), 10),
                ),
                0..300,
            ),
            prop::collection::vec(any::<prop::sample::Index>(), 0..40),
            any::<Option<prop::sample::Index>>(),
            (
                prop_oneof![any::<i64>(), -60i64..400],
                prop_oneof![any::<i64>(), -60i64..400],
            ),
        )
            .prop_map(
                |(page_size, reserved, rows, deleted, added_after, bounds)| Case {
                    page_size,
                    reserved,
                    rows,
                    deleted,
                    added_after,
                    bounds,
                },
            )
    }

    fn fill(db: &Db, case: &Case) {
        let mut c = rusqlite::Connection::open(&db.0).expect("create");
        let mut reserved = i32::from(case.reserved);
        // SAFETY: a live connection, "main" attached, an int for the
        // reserve-bytes file control.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_file_control(
                c.handle(),
                c"main".as_ptr(),
                rusqlite::ffi::SQLITE_FCNTL_RESERVE_BYTES,
                (&mut reserved as *mut i32).cast(),
            )
        };
        assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
        c.execute_batch(&format!(
            "PRAGMA page_size = {}; CREATE TABLE t ({COLUMNS});",
            case.page_size
        ))
        .expect("create");
        let tx = c.transaction().expect("tx");
        let added_at = case.added_after.map(|i| i.index(case.rows.len() + 1));
        let mut added = false;
        for (n, (id, values)) in case.rows.iter().enumerate() {
            if Some(n) == added_at {
                tx.execute_batch(
                    "ALTER TABLE t ADD COLUMN x TEXT DEFAULT 'later';
                     ALTER TABLE t ADD COLUMN y REAL DEFAULT 2;
                     ALTER TABLE t ADD COLUMN z;",
                )
                .expect("alter");
                added = true;
            }
            let marks = if added { 14 } else { 11 };
            let sql = format!(
                "INSERT OR REPLACE INTO t VALUES ({})",
                vec!["?"; marks].join(", ")
            );
            let mut params = vec![Sql::Integer(*id)];
            params.extend(values.iter().cloned());
            if added {
                params.extend([
                    Sql::Text(format!("v{n}")),
                    Sql::Integer(n as i64),
                    Sql::Null,
                ]);
            }
            tx.execute(&sql, rusqlite::params_from_iter(params))
                .expect("insert");
        }
        if !case.rows.is_empty() {
            for d in &case.deleted {
                let id = case.rows[d.index(case.rows.len())].0;
                tx.execute("DELETE FROM t WHERE id = ?1", [id])
                    .expect("delete");
            }
        }
        tx.commit().expect("commit");
        let header = std::fs::read(&db.0).expect("read back");
        assert_eq!(header[20], case.reserved, "reserved bytes per page");
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 48,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Reading the pages gives exactly the rows SQL gives, whole and
        /// in a key range: every storage class in every affinity, overflow
        /// pages at every page size, deleted rows, rows written before
        /// columns were added, keys across the whole i64 range.
        #[test]
        fn page_reads_match_sql_reads(case in case()) {
            let db = Db::new("prop");
            fill(&db, &case);
            let mut src = SqliteSource::open(&db.0).expect("open");
            let spec = spec(&mut src, "t");
            let whole = match page_rows(&mut src, &spec, None) {
                Ok(rows) => rows,
                // A value no read can be sure of (a text such as "2e6" that
                // NUMERIC affinity stored as an integer that is a time both
                // as a Julian day and as Unix seconds): SQL refuses it alike.
                Err(e @ SourceError::Unsure(_)) => {
                    src.set_page_reads(false);
                    let sql = src.scan(&spec, None, &mut |_| std::ops::ControlFlow::Continue(()));
                    src.set_page_reads(true);
                    prop_assert_eq!(sql.err().map(|e| e.to_string()), Some(e.to_string()));
                    return Ok(());
                }
                Err(e) => panic!("page scan: {e}"),
            };
            // Compared as printed: a NaN (text 'NaN' read as a float) is
            // the same value both ways, though no NaN equals itself.
            let printed = |r: &Rows| format!("{r:?}");
            prop_assert_eq!(printed(&whole), printed(&sql_rows(&mut src, &spec, None)));
            // The keys alone (no record is decoded).
            let keys_only = ScanSpec { values: Vec::new(), ..spec.clone() };
            let keys = page_rows(&mut src, &keys_only, None).expect("rowid scan");
            prop_assert_eq!(printed(&keys), printed(&sql_rows(&mut src, &keys_only, None)));
            let (lo, hi) = case.bounds;
            let (lo, hi) = (i128::from(lo), i128::from(hi));
            for (after, through) in [(Some(lo), hi), (None, hi), (Some(lo - (1 << 70)), hi + (1 << 70))] {
                let bounds = KeyRange {
                    after: after.map(|a| key::encode(&[Value::Int(a)])),
                    through: key::encode(&[Value::Int(through)]),
                };
                let pages = page_rows(&mut src, &spec, Some(&bounds)).expect("page range");
                let expected: Rows = whole
                    .iter()
                    .filter(|r| {
                        let Value::Int(k) = r[0] else { return false };
                        after.is_none_or(|a| a < k) && k <= through
                    })
                    .cloned()
                    .collect();
                prop_assert_eq!(printed(&pages), printed(&expected));
            }
        }
    }

    /// A text NUMERIC affinity stores as an integer that is a time both as a
    /// Julian day and as Unix seconds ("2e6" in the TIMESTAMP column) is
    /// refused alike by page reads and SQL reads, never read as either.
    #[test]
    fn an_unsure_time_is_refused_by_both_reads() {
        let db = Db::new("unsure");
        let mut values = vec![Sql::Null; 10];
        values[6] = Sql::Text("2e6".into());
        let case = Case {
            page_size: 4096,
            reserved: 0,
            rows: vec![(1, values)],
            deleted: Vec::new(),
            added_after: None,
            bounds: (0, 1),
        };
        fill(&db, &case);
        let mut src = SqliteSource::open(&db.0).expect("open");
        let spec = spec(&mut src, "t");
        let pages = page_rows(&mut src, &spec, None).expect_err("unsure");
        src.set_page_reads(false);
        let sql = src
            .scan(&spec, None, &mut |_| std::ops::ControlFlow::Continue(()))
            .expect_err("unsure");
        assert!(matches!(pages, SourceError::Unsure(_)), "{pages}");
        assert_eq!(pages.to_string(), sql.to_string());
    }

    /// A STRICT table reads the same from pages as through SQL.
    #[test]
    fn strict_tables_read_the_same() {
        let db = Db::with(
            "strict",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, r REAL, a ANY, t TEXT) STRICT;
             INSERT INTO t VALUES (1, 3, 3.0, 'x'), (2, 2.5, 'y', NULL), (3, -0.0, x'00', '');",
        );
        let mut src = SqliteSource::open(&db.0).expect("open");
        let spec = spec(&mut src, "t");
        let rows = page_rows(&mut src, &spec, None).expect("page scan");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows, sql_rows(&mut src, &spec, None));
    }

    /// Tables whose pages are not laid out as a rowid b-tree, or not keyed
    /// by its rowid (whose rowid order was not proven to be key order), and
    /// files whose pages may not be the snapshot, are read through SQL, with
    /// the same rows.
    #[test]
    fn other_layouts_are_read_through_sql() {
        let rows = "INSERT INTO t (k, v) VALUES (1, 'a'), (2, 'b'), (3, 'c');";
        for (name, create, layout) in [
            (
                "text-key",
                "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT);",
                true,
            ),
            (
                "without-rowid",
                "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT) WITHOUT ROWID;",
                false,
            ),
            (
                "desc-key",
                "CREATE TABLE t (k INTEGER PRIMARY KEY DESC, v TEXT);",
                true,
            ),
            (
                "int-key",
                "CREATE TABLE t (k INT PRIMARY KEY, v TEXT);",
                true,
            ),
            (
                "generated",
                "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT, w TEXT AS (v || '!'));",
                false,
            ),
            (
                "stored",
                "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT, w TEXT AS (v || '!') STORED);",
                false,
            ),
        ] {
            let db = Db::with(name, &format!("{create} {rows}"));
            let mut src = SqliteSource::open(&db.0).expect("open");
            let found = src.page_layout("t").expect("layout");
            assert_eq!(found.is_some(), layout, "{name}");
            assert!(found.is_none_or(|l| l.rowid.is_none()), "{name}");
            let spec = spec(&mut src, "t");
            assert!(page_rows(&mut src, &spec, None).is_err(), "{name}");
            let mut n = 0;
            src.scan(&spec, None, &mut |_| {
                n += 1;
                std::ops::ControlFlow::Continue(())
            })
            .expect("scan");
            assert_eq!(n, 3, "{name}");
        }
        // A UTF-16 file has a rowid layout, but its text is not UTF-8.
        let utf16 = Db::with(
            "utf16",
            &format!("PRAGMA encoding = 'UTF-16le'; CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT); {rows}"),
        );
        let mut src = SqliteSource::open(&utf16.0).expect("open");
        let spec16 = spec(&mut src, "t");
        assert!(
            page_rows(&mut src, &spec16, None).is_err(),
            "UTF-16 pages are not read"
        );
        let sql = sql_rows(&mut src, &spec16, None);
        assert_eq!(sql[2], vec![Value::Int(3), Value::Text("c".into())]);
        let wal = Db::with(
            "wal",
            &format!(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT); {rows}"
            ),
        );
        // A writer keeps the log from being checkpointed into the file.
        let writer = rusqlite::Connection::open(&wal.0).expect("writer");
        writer
            .execute_batch("PRAGMA wal_autocheckpoint = 0; INSERT INTO t VALUES (4, 'd');")
            .expect("write");
        let mut src = SqliteSource::open(&wal.0).expect("open");
        let spec = spec(&mut src, "t");
        assert!(
            page_rows(&mut src, &spec, None).is_err(),
            "WAL pages are not read"
        );
        let mut n = 0;
        src.scan(&spec, None, &mut |_| {
            n += 1;
            std::ops::ControlFlow::Continue(())
        })
        .expect("scan");
        assert_eq!(n, 4);
    }

    /// A table keyed by timestamps in one text form, written in key order,
    /// is proven, as its pages are read, to have its rowids in key order;
    /// written in any other order, in mixed forms, or with a column
    /// shadowing `rowid`, it is not (its proving page scan sends nothing)
    /// and is read through SQL. Either way the rows are SQL's.
    #[test]
    fn time_keys_in_rowid_order_read_pages() {
        let keys = [
            "2026-01-01 00:00:00.000001",
            "2026-01-01 00:00:00.500000",
            "2026-01-02 23:59:59.999999",
            "2027-06-30 12:00:00.000000",
        ];
        let cases: [(&str, &str, Vec<&str>, bool); 5] = [
            ("in-order", "v TEXT", keys.to_vec(), true),
            (
                "reversed",
                "v TEXT",
                keys.iter().rev().copied().collect(),
                false,
            ),
            (
                "swapped",
                "v TEXT",
                vec![keys[0], keys[2], keys[1], keys[3]],
                false,
            ),
            (
                "mixed-forms",
                "v TEXT",
                vec![keys[0], "2026-01-01T00:00:00.6", keys[2], keys[3]],
                false,
            ),
            ("rowid-column", "rowid TEXT, v TEXT", keys.to_vec(), true),
        ];
        for (name, cols, order, paged) in cases {
            let mut sql = format!("CREATE TABLE t (k TIMESTAMP PRIMARY KEY, {cols});");
            for (i, k) in order.iter().enumerate() {
                let extra = if cols.starts_with("rowid") {
                    "'r', "
                } else {
                    ""
                };
                sql.push_str(&format!("INSERT INTO t VALUES ('{k}', {extra}'v{i}');"));
            }
            let db = Db::with(name, &sql);
            let mut src = SqliteSource::open(&db.0).expect("open");
            let spec = spec(&mut src, "t");
            let layout = src
                .page_layout("t")
                .expect("layout")
                .expect("a rowid table");
            assert!(layout.rowid.is_none(), "{name}");
            assert_eq!(time_keys::rowid_ordered(&src.key_shapes, &spec), None);
            let mut proof = time_keys::StreamProof::new(&spec);
            let mut pages = Vec::new();
            let read = src
                .scan_pages(
                    &layout,
                    &spec,
                    None,
                    PageOrder::Prove(&mut proof),
                    &mut |r: &[Value]| {
                        pages.push(r.to_vec());
                        std::ops::ControlFlow::Continue(())
                    },
                )
                .expect("page scan");
            assert_eq!(read, paged, "{name}");
            proof.learn(&mut src.key_shapes, &spec);
            assert_eq!(
                time_keys::rowid_ordered(&src.key_shapes, &spec),
                Some(paged),
                "{name}"
            );
            let mut whole = Vec::new();
            src.scan(&spec, None, &mut |r: &[Value]| {
                whole.push(r.to_vec());
                std::ops::ControlFlow::Continue(())
            })
            .expect("scan");
            let sql = sql_rows(&mut src, &spec, None);
            assert_eq!(sql.len(), 4, "{name}");
            assert_eq!(whole, sql, "{name}");
            if paged {
                assert_eq!(pages, sql, "{name}");
            } else {
                assert!(pages.is_empty(), "{name}");
            }
        }
    }

    /// A table keyed by instants in one text form, written in time order, is
    /// read from its pages, proven as they are read; written in any other
    /// order it is read through SQL. Either way its rows come in key order,
    /// which within a second is not time order (`…:00.05Z`, `…:00.5Z`,
    /// `…:00Z`).
    #[test]
    fn instant_keys_come_in_key_order() {
        let times = [
            "2026-01-01 00:00:00.000000",
            "2026-01-01 00:00:00.050000",
            "2026-01-01 00:00:00.500000",
            "2026-01-01 00:00:01.000000",
            "2026-01-01 00:00:01.000001",
        ];
        for suffix in ["", "Z", "+00:00"] {
            for in_time_order in [true, false] {
                let name = format!("instants-{suffix}-{in_time_order}");
                let mut sql = String::from("CREATE TABLE t (k TIMESTAMPTZ PRIMARY KEY, v TEXT);");
                let mut written = times.to_vec();
                if !in_time_order {
                    written.reverse();
                }
                for (i, k) in written.iter().enumerate() {
                    sql.push_str(&format!("INSERT INTO t VALUES ('{k}{suffix}', 'v{i}');"));
                }
                let db = Db::with(&name, &sql);
                let mut src = SqliteSource::open(&db.0).expect("open");
                let spec = spec(&mut src, "t");
                let mut whole = Vec::new();
                src.scan(&spec, None, &mut |r: &[Value]| {
                    whole.push(r.to_vec());
                    std::ops::ControlFlow::Continue(())
                })
                .expect("scan");
                let keys: Vec<_> = whole.iter().map(|r| key::encode(&r[..1])).collect();
                assert_eq!(keys.len(), times.len(), "{name}");
                assert!(keys.windows(2).all(|w| w[0] < w[1]), "{name}: {whole:?}");
                assert_eq!(
                    time_keys::rowid_ordered(&src.key_shapes, &spec),
                    Some(in_time_order),
                    "{name}"
                );
                assert_eq!(sql_rows(&mut src, &spec, None), whole, "{name}");
            }
        }
    }

    /// A damaged page is an error naming the page, never a panic or a
    /// silent short read.
    #[test]
    fn damaged_pages_are_errors() {
        let make = || {
            let db = Db::with(
                "damaged",
                "PRAGMA page_size = 512; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
                 INSERT INTO t SELECT i, printf('%0100d', i) FROM n;",
            );
            let root: i64 = rusqlite::Connection::open(&db.0)
                .and_then(|c| {
                    c.query_row(
                        "SELECT rootpage FROM sqlite_schema WHERE name = 't'",
                        [],
                        |r| r.get(0),
                    )
                })
                .expect("root");
            (db, root as u64)
        };
        let damage = |db: &Db, at: u64, bytes: &[u8]| {
            use std::io::{Seek, Write};
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&db.0)
                .expect("open");
            f.seek(std::io::SeekFrom::Start(at)).expect("seek");
            f.write_all(bytes).expect("write");
        };
        // The root's page type; then its first cell pointer, past the page.
        for (what, offset, bytes) in [
            ("not a table b-tree page", 0, &[0x07u8][..]),
            ("cell pointer past the page", 12, &[0xff, 0xf0][..]),
            // The root's rightmost child: the root itself, then far away.
            ("page reached twice", 8, &[][..]),
            (
                "page number past the end of the file",
                8,
                &[0x7f, 0xff, 0xff, 0xff][..],
            ),
        ] {
            let (db, root) = make();
            if bytes.is_empty() {
                damage(&db, (root - 1) * 512 + offset, &(root as u32).to_be_bytes());
            } else {
                damage(&db, (root - 1) * 512 + offset, bytes);
            }
            let mut src = SqliteSource::open(&db.0).expect("open");
            let spec = spec(&mut src, "t");
            let err = page_rows(&mut src, &spec, None)
                .expect_err(what)
                .to_string();
            assert!(
                err.contains("malformed") && err.contains(what),
                "{what}: {err}"
            );
        }
    }

    /// REAL affinity as SQLite itself decides it: an integer stored in the
    /// column reads back as a float.
    #[test]
    fn real_affinity_follows_sqlite() {
        let c = rusqlite::Connection::open_in_memory().expect("memory");
        for declared in [
            "REAL",
            "double precision",
            "FLOAT8",
            "floating point",
            "DECIMAL(10,2)",
            "",
            "CHARREAL",
            "BLOBFLOAT",
            "numeric",
        ] {
            let t = format!("t{}", declared.len());
            c.execute_batch(&format!(
                "DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (c {declared}); INSERT INTO {t} VALUES (3);"
            ))
            .expect("create");
            let ty: String = c
                .query_row(&format!("SELECT typeof(c) FROM {t}"), [], |r| r.get(0))
                .expect("typeof");
            assert_eq!(real_affinity(declared), ty == "real", "{declared}");
        }
    }

    #[test]
    fn declared_types_map() {
        use LogicalType as T;
        assert_eq!(logical_type("INTEGER"), T::Integer);
        assert_eq!(logical_type("bigint"), T::Integer);
        assert_eq!(logical_type("VARCHAR(20)"), T::Text);
        assert_eq!(logical_type("NUMERIC(12,2)"), T::Decimal { scale: Some(2) });
        assert_eq!(logical_type("decimal"), T::Decimal { scale: None });
        assert_eq!(
            logical_type("TIMESTAMP(3)"),
            T::TimestampNaive { precision: 3 }
        );
        assert_eq!(logical_type("DATETIME"), T::TimestampNaive { precision: 6 });
        assert_eq!(logical_type("timestamptz"), T::Timestamp { precision: 6 });
        assert_eq!(logical_type("DATE"), T::Date);
        assert_eq!(logical_type("TIME"), T::Time { precision: 6 });
        assert_eq!(logical_type("BOOLEAN"), T::Bool);
        assert_eq!(logical_type("REAL"), T::Float { single: false });
        assert_eq!(logical_type("UUID"), T::Uuid);
        assert_eq!(logical_type("JSONB"), T::Json);
        assert_eq!(logical_type("BLOB"), T::Bytes);
        assert_eq!(logical_type(""), T::Dynamic);
    }

    /// A scan in rowid order reads the rows a scan in key order does, from
    /// the pages or through SQL, for tables whose rowid order is not their
    /// key order: integer keys stored as text in an untyped column (and
    /// some as integers), a compound key written out of order, a table
    /// without rowid; and one keyed by its rowid alias. Asked for the rows of some keys, it sends exactly
    /// those. A key stored in another storage class than its column's is
    /// noted as an SQL scan notes it: that table's ranges are then read
    /// whole.
    #[test]
    fn a_scan_in_rowid_order_reads_every_row_or_those_wanted() {
        let db = Db::with(
            "unordered",
            "CREATE TABLE u (id PRIMARY KEY, v TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO u SELECT CASE WHEN i % 7 = 0 THEN i ELSE CAST(i AS TEXT) END,
                                  'v' || i FROM n;
             CREATE TABLE c (a INT, b TEXT, v REAL, PRIMARY KEY (b, a));
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO c SELECT (i * 7919) % 2000, 'k' || (i % 13), i / 3.0 FROM n;
             CREATE TABLE w (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID;
             INSERT INTO w SELECT 'w' || (3000 - a), a FROM c;
             CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO r SELECT a * 3, b FROM c WHERE true ON CONFLICT DO NOTHING;",
        );
        let mut src = SqliteSource::open(&db.0).expect("open");
        let by_key = |rows: &mut Rows, nkey: usize| {
            rows.sort_by_key(|r| key::encode(&r[..nkey]));
        };
        let tables = [
            ("u", true),
            ("u", false),
            ("c", false),
            ("w", false),
            ("r", false),
        ];
        for (table, integer_key) in tables {
            let mut spec = spec(&mut src, table);
            if integer_key {
                spec.key[0].rule = ColumnRule::new(LogicalType::Integer);
            }
            let nkey = spec.key.len();
            let mut expected = sql_rows(&mut src, &spec, None);
            by_key(&mut expected, nkey);
            assert!(expected.len() >= 2000, "{table}");
            for pages in [true, false] {
                src.set_page_reads(pages);
                let mut rows = Vec::new();
                src.scan_unordered(&spec, &mut |r: &[Value]| {
                    rows.push(r.to_vec());
                    std::ops::ControlFlow::Continue(())
                })
                .expect("scan in rowid order");
                by_key(&mut rows, nkey);
                assert_eq!(rows, expected, "{table}, pages {pages}");
                // Only the rows whose keys are wanted, each key asked once.
                let want = |k: &[Value]| {
                    key::encode(k)
                        .as_bytes()
                        .iter()
                        .map(|&b| u32::from(b))
                        .sum::<u32>()
                        % 3
                        == 0
                };
                let (mut asked, mut rows) = (0, Vec::new());
                let mut wanted = |k: &[Value]| {
                    asked += 1;
                    want(k)
                };
                src.scan_unordered_wanted(&spec, &mut wanted, &mut |r: &[Value]| {
                    rows.push(r.to_vec());
                    std::ops::ControlFlow::Continue(())
                })
                .expect("scan of wanted rows");
                by_key(&mut rows, nkey);
                let some: Rows = expected
                    .iter()
                    .filter(|r| want(&r[..nkey]))
                    .cloned()
                    .collect();
                assert!(!some.is_empty() && some.len() < expected.len(), "{table}");
                assert_eq!(rows, some, "{table}, pages {pages}");
                assert_eq!(asked, expected.len(), "{table}, pages {pages}");
            }
            src.set_page_reads(true);
        }
        // The text keys of `u` read as integers are odd keys, noted by the
        // page scan alone, on a fresh connection.
        let mut src = SqliteSource::open(&db.0).expect("open");
        let mut spec = spec(&mut src, "u");
        spec.key[0].rule = ColumnRule::new(LogicalType::Integer);
        assert!(src.ranges_find_every_row(&spec));
        src.scan_unordered(&spec, &mut |_| std::ops::ControlFlow::Continue(()))
            .expect("scan");
        assert!(!src.ranges_find_every_row(&spec));
    }
}
