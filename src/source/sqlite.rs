//! The SQLite connector (rusqlite): schema discovery from declared types,
//! key-ordered scans in one read transaction, range scans by key.
//!
//! Files are opened read-only and never created. Values are decoded by the
//! column's logical type, whatever storage class SQLite holds them in.
//! Scans of a table keyed by its rowid read the b-tree pages directly (see
//! [`pages`]); every other scan goes through SQL.

mod pages;

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::Path;

use driftsum_core::coerce::TrailingSpaces;
use driftsum_core::{LogicalType, Value};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::spec::{
    quote_ident, type_args, Column, ColumnSpec, KeyBounds, RowSink, ScanSpec, Source, TableSchema,
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
}

/// A column as `pragma_table_xinfo` lists it: name, declared type, position
/// in the primary key (0 when not in it), hidden (non-zero: generated).
type TableColumn = (String, String, i64, i64);

/// What reading a rowid table's pages needs to know of it.
#[derive(Clone, Debug)]
struct PageLayout {
    table: String,
    root: u32,
    /// The rowid alias (`INTEGER PRIMARY KEY`) column.
    rowid: String,
    /// Columns in record order, with whether each has REAL affinity.
    columns: Vec<(String, bool)>,
}

/// Where a scanned column's value comes from when reading pages.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Rowid,
    Record { at: usize, real: bool },
}

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
        if !path.is_file() {
            return Err(SourceError::NoFile(path.to_path_buf()));
        }
        let location = path.display().to_string();
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
        })
    }

    /// Whether scans of a rowid-keyed table may read its b-tree pages
    /// directly (the default) rather than through SQL. Both give the same
    /// rows; turning it off is for measuring one against the other.
    pub fn set_page_reads(&mut self, on: bool) {
        self.page_reads = on;
    }

    /// The page layout of `table`, looked up once: `None` unless it is a
    /// rowid table keyed by its rowid alias, with no generated or hidden
    /// columns (those are not stored where the declaration puts them).
    fn page_layout(&mut self, table: &str) -> Result<Option<PageLayout>, SourceError> {
        if let Some(layout) = self.layouts.get(table) {
            return Ok(layout.clone());
        }
        let layout = self.look_up_layout(table)?;
        self.layouts.insert(table.to_string(), layout.clone());
        Ok(layout)
    }

    fn look_up_layout(&self, table: &str) -> Result<Option<PageLayout>, SourceError> {
        let err = |e| self.query_err("reading the schema", e);
        let root: Option<i64> = self
            .conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(err(e)),
            })?;
        let Some(root) = root.and_then(|r| u32::try_from(r).ok()).filter(|&r| r > 1) else {
            return Ok(None);
        };
        let cols = self.columns(table)?;
        if cols.iter().any(|c| c.3 != 0) {
            return Ok(None);
        }
        let Some(rowid) = self.rowid_alias(table, &cols)? else {
            return Ok(None);
        };
        Ok(Some(PageLayout {
            table: table.to_string(),
            root,
            rowid,
            columns: cols
                .into_iter()
                .map(|(name, declared, ..)| {
                    let real = real_affinity(&declared);
                    (name, real)
                })
                .collect(),
        }))
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

    /// Scans `spec` by reading `layout`'s pages; `Ok(false)` (having sent
    /// nothing) when this scan cannot be read that way.
    fn scan_pages(
        &self,
        layout: &PageLayout,
        spec: &ScanSpec,
        bounds: Option<&KeyBounds>,
        sink: &mut RowSink<'_>,
    ) -> Result<bool, SourceError> {
        let [key] = spec.key.as_slice() else {
            return Ok(false);
        };
        if key.name != layout.rowid || key.rule.ty != LogicalType::Integer {
            return Ok(false);
        }
        let mut slots = vec![Slot::Rowid];
        for c in &spec.values {
            let Some(at) = layout.columns.iter().position(|(n, _)| *n == c.name) else {
                return Ok(false);
            };
            slots.push(if c.name == layout.rowid {
                Slot::Rowid
            } else {
                Slot::Record {
                    at,
                    real: layout.columns[at].1,
                }
            });
        }
        let (after, through) = match bounds {
            None => (None, None),
            Some(b) => match rowid_bounds(b) {
                Some(RowidBounds::Range(after, through)) => (after, through),
                Some(RowidBounds::Empty) => return Ok(true),
                None => return Ok(false),
            },
        };
        let Some(file) = pages::PageFile::open(&self.conn) else {
            return Ok(false);
        };
        let rules: Vec<_> = spec.columns().map(|c| c.rule).collect();
        let mut buf: Vec<Value> = vec![Value::Null; rules.len()];
        // A record written before columns were added holds fewer values; the
        // missing ones are the added columns' defaults, constant per column,
        // asked of SQLite once.
        let mut defaults: Vec<Option<rusqlite::types::Value>> = vec![None; layout.columns.len()];
        let mut visit =
            |rowid: i64, record: &pages::Record<'_>| -> Result<pages::Flow, SourceError> {
                for ((slot, rule), out) in slots.iter().zip(&rules).zip(buf.iter_mut()) {
                    let v = match *slot {
                        Slot::Rowid => ValueRef::Integer(rowid),
                        Slot::Record { at, real } => match record.get(at) {
                            // REAL affinity stores integral values as integers
                            // and reads them back as floats.
                            Some(ValueRef::Integer(i)) if real => ValueRef::Real(i as f64),
                            Some(v) => v,
                            None => {
                                if defaults[at].is_none() {
                                    defaults[at] = Some(self.column_of(layout, at, rowid)?);
                                }
                                defaults[at].as_ref().map_or(ValueRef::Null, ValueRef::from)
                            }
                        },
                    };
                    decode_into(out, v, rule);
                }
                Ok(match sink(&buf) {
                    ControlFlow::Continue(()) => pages::Flow::Go,
                    ControlFlow::Break(()) => pages::Flow::Stop,
                })
            };
        pages::TableWalk::new(&file, after, through)
            .run(layout.root, &mut visit)
            .map_err(|e| match e {
                pages::PageError::Visit(e) => e,
                e => SourceError::query(
                    format!(
                        "reading table {:?} from the pages of {}",
                        spec.table, self.path
                    ),
                    e,
                ),
            })?;
        Ok(true)
    }

    /// One column of one row, through SQL.
    fn column_of(
        &self,
        layout: &PageLayout,
        at: usize,
        rowid: i64,
    ) -> Result<rusqlite::types::Value, SourceError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ?1",
            quote_ident(&layout.columns[at].0),
            quote_ident(&layout.table),
            quote_ident(&layout.rowid)
        );
        self.conn
            .query_row(&sql, [rowid], |r| r.get(0))
            .map_err(|e| self.query_err("reading a column default", e))
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

/// The logical type of a SQLite declared type. SQLite accepts any name, so
/// this follows its affinity rules, refined by common type names.
pub fn logical_type(declared: &str) -> LogicalType {
    let d = declared.to_ascii_uppercase();
    let has = |s: &str| d.contains(s);
    if d.trim().is_empty() {
        LogicalType::Dynamic
    } else if has("BOOL") {
        LogicalType::Bool
    } else if has("TIMESTAMPTZ") || has("WITH TIME ZONE") {
        LogicalType::Timestamp {
            precision: precision(&d),
        }
    } else if has("TIMESTAMP") || has("DATETIME") {
        LogicalType::TimestampNaive {
            precision: precision(&d),
        }
    } else if d.starts_with("DATE") {
        LogicalType::Date
    } else if d.starts_with("TIME") {
        LogicalType::Time {
            precision: precision(&d),
        }
    } else if has("UUID") || has("GUID") {
        LogicalType::Uuid
    } else if has("JSON") {
        LogicalType::Json
    } else if has("INT") {
        LogicalType::Integer
    } else if has("CHAR") || has("CLOB") || has("TEXT") {
        LogicalType::Text
    } else if has("BLOB") || has("BINARY") || has("BYTEA") {
        LogicalType::Bytes
    } else if has("FLOAT4") || d == "REAL4" {
        LogicalType::Float { single: true }
    } else if has("REAL") || has("FLOA") || has("DOUB") {
        LogicalType::Float { single: false }
    } else if has("DEC") || has("NUMERIC") {
        LogicalType::Decimal { scale: scale(&d) }
    } else {
        LogicalType::Dynamic
    }
}

fn precision(d: &str) -> u8 {
    type_args(d).first().map_or(6, |&p| p.clamp(0, 6) as u8)
}

fn scale(d: &str) -> Option<u16> {
    let args = type_args(d);
    match args.as_slice() {
        [_, s] => Some((*s).clamp(0, u16::MAX.into()) as u16),
        [_] => Some(0),
        _ => None,
    }
}

fn decode(v: ValueRef<'_>, rule: &driftsum_core::coerce::ColumnRule) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => rule.from_int(i),
        ValueRef::Real(f) => rule.from_real(f),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => rule.from_text(s),
            Err(_) => Value::Invalid(String::from_utf8_lossy(t).into_owned()),
        },
        ValueRef::Blob(b) => rule.from_blob(b),
    }
}

/// [`decode`] into a slot of the row buffer, in place where the slot holds
/// the same kind of value as the previous row's (see
/// [`ColumnRule::int_in_place`](driftsum_core::coerce::ColumnRule::int_in_place)):
/// text and decimals keep their allocations, numbers and timestamps are
/// overwritten.
fn decode_into(slot: &mut Value, v: ValueRef<'_>, rule: &driftsum_core::coerce::ColumnRule) {
    let done = match v {
        ValueRef::Integer(i) => rule.int_in_place(i, slot),
        // A decimal column stored as REAL (NUMERIC affinity does that).
        ValueRef::Real(f) => rule.real_in_place(f, slot),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(t) => rule.text_in_place(t, slot),
            Err(_) => false,
        },
        _ => false,
    };
    if !done {
        *slot = decode(v, rule);
    }
}

/// Whether SQL comparisons on these key columns follow key-byte order, so a
/// range can be put in a WHERE clause (a UUID may be stored as text or blob,
/// whose SQL order differs). Each scan also checks the stored values (see
/// [`stored_as_declared`]).
/// SQLite's rule for REAL column affinity from a declared type (the first
/// matching rule wins: INT makes INTEGER, CHAR/CLOB/TEXT make TEXT, BLOB or
/// nothing makes BLOB, then REAL/FLOA/DOUB make REAL).
fn real_affinity(declared: &str) -> bool {
    let d = declared.to_ascii_uppercase();
    let has = |s: &str| d.contains(s);
    !(has("INT") || has("CHAR") || has("CLOB") || has("TEXT") || has("BLOB") || d.is_empty())
        && (has("REAL") || has("FLOA") || has("DOUB"))
}

/// Scan bounds on a rowid key.
#[derive(Debug, PartialEq)]
enum RowidBounds {
    /// `after < rowid <= through`, either side open.
    Range(Option<i64>, Option<i64>),
    /// No rowid can fall inside.
    Empty,
}

/// The rowid bounds of a range; `None` when its bounds are not integers.
fn rowid_bounds(b: &KeyBounds) -> Option<RowidBounds> {
    let int = |v: &[Value]| match v {
        [Value::Int(i)] => Some(*i),
        _ => None,
    };
    let after = match &b.after {
        None => None,
        Some(a) => Some(int(a)?),
    };
    let through = int(&b.through)?;
    if after.is_some_and(|a| a >= i64::MAX as i128) || through < i64::MIN as i128 {
        return Some(RowidBounds::Empty);
    }
    let after = after.and_then(|a| i64::try_from(a).ok());
    let through = i64::try_from(through).ok();
    Some(RowidBounds::Range(after, through))
}

fn range_friendly(spec: &ScanSpec) -> bool {
    spec.key.iter().all(|k| {
        // A key read without its trailing spaces (a `char(n)` source's)
        // is not the stored text that SQL compares: `'ab  ' <= 'ab'` is
        // false, and the row would fall out of its range.
        k.rule.trailing_spaces == TrailingSpaces::Significant
            && matches!(
                k.rule.ty,
                LogicalType::Integer | LogicalType::Text | LogicalType::Bytes
            )
    })
}

/// Whether a key value is stored in the storage class its logical type
/// expects; only then does an SQL range comparison find it.
fn stored_as_declared(v: ValueRef<'_>, ty: LogicalType) -> bool {
    matches!(
        (v, ty),
        (ValueRef::Integer(_), LogicalType::Integer)
            | (ValueRef::Text(_), LogicalType::Text)
            | (ValueRef::Blob(_), LogicalType::Bytes)
    )
}

/// SQLite's SQL: a scan's columns are read as the [`ColumnSpec`] names
/// them, and every key value can be bound (a scan whose keys SQL cannot
/// range over is read whole, see [`range_friendly`]).
struct SqliteSql;

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
        Some((self.order_expr(c), to_sql(v)))
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

    fn schema(&mut self, table: &str) -> Result<TableSchema, SourceError> {
        let exists: bool = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type IN ('table', 'view') AND name = ?1",
                [table],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| self.query_err("reading the schema", e))?;
        if !exists {
            return Err(SourceError::NoTable {
                table: table.to_string(),
                location: self.path.clone(),
            });
        }
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

    fn scan(
        &mut self,
        spec: &ScanSpec,
        bounds: Option<&KeyBounds>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        if self.page_reads && spec.filter.is_none() {
            if let Some(layout) = self.page_layout(&spec.table)? {
                if self.scan_pages(&layout, spec, bounds, sink)? {
                    return Ok(());
                }
            }
        }
        let odd = self.odd_keys.contains(&spec.table);
        let keys: Vec<&ColumnSpec> = spec.key.iter().collect();
        let cols: Vec<&ColumnSpec> = spec.columns().collect();
        let lead = spec.key.first().map_or(LogicalType::Dynamic, |k| k.rule.ty);
        let query = sql::scan_query(
            &SqliteSql,
            &sql::Scan {
                from: quote_ident(&spec.table),
                columns: &cols,
                keys: &keys,
                filter: spec.filter.as_deref(),
                range: bounds
                    .filter(|_| range_friendly(spec) && !odd)
                    .map(|b| (b, lead)),
            },
        );
        let (sql, params) = (query.sql, query.binds);

        let context = format!("reading table {:?}", spec.table);
        let mut stmt = self
            .conn
            .prepare(&sql)
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
                decode_into(slot, v, rule);
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

/// Scratch SQLite files for the library's unit tests.
#[cfg(test)]
pub(crate) mod scratch {
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh SQLite file, removed on drop.
    pub(crate) struct Db(pub std::path::PathBuf);

    impl Db {
        pub(crate) fn new(name: &str) -> Db {
            static N: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "driftsum-scratch-{}-{name}-{}.db",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_file(&path);
            Db(path)
        }

        /// A fresh file holding what `sql` makes.
        pub(crate) fn with(name: &str, sql: &str) -> Db {
            let db = Db::new(name);
            rusqlite::Connection::open(&db.0)
                .and_then(|c| c.execute_batch(sql))
                .expect("fill");
            db
        }
    }

    impl Drop for Db {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut p = self.0.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::scratch::Db;
    use super::*;
    use crate::check::plan::{plan, ColumnChoice};
    use crate::config::Config;
    use proptest::prelude::*;
    use rusqlite::types::Value as Sql;

    /// What a diff of `table` against itself scans.
    fn spec(src: &mut SqliteSource, table: &str) -> ScanSpec {
        let schema = src.schema(table).expect("schema");
        plan(
            &schema,
            &schema,
            &ColumnChoice::default(),
            &Config::default(),
        )
        .expect("plan")
        .source
    }

    type Rows = Vec<Vec<Value>>;

    /// The rows of a scan through SQL.
    fn sql_rows(src: &mut SqliteSource, spec: &ScanSpec, bounds: Option<&KeyBounds>) -> Rows {
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
        bounds: Option<&KeyBounds>,
    ) -> Result<Rows, SourceError> {
        let layout = src
            .page_layout(&spec.table)?
            .ok_or_else(|| SourceError::Other("no page layout".into()))?;
        let mut rows = Vec::new();
        let read = src.scan_pages(&layout, spec, bounds, &mut |r: &[Value]| {
            rows.push(r.to_vec());
            std::ops::ControlFlow::Continue(())
        })?;
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
            let whole = page_rows(&mut src, &spec, None).expect("page scan");
            prop_assert_eq!(&whole, &sql_rows(&mut src, &spec, None));
            let (lo, hi) = case.bounds;
            let (lo, hi) = (i128::from(lo), i128::from(hi));
            for (after, through) in [(Some(lo), hi), (None, hi), (Some(lo - (1 << 70)), hi + (1 << 70))] {
                let bounds = KeyBounds {
                    after: after.map(|a| vec![Value::Int(a)]),
                    through: vec![Value::Int(through)],
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
                prop_assert_eq!(pages, expected);
            }
        }
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

    /// Tables whose pages are not laid out as a rowid b-tree keyed by its
    /// rowid, and files whose pages may not be the snapshot, are read
    /// through SQL, with the same rows.
    #[test]
    fn other_layouts_are_read_through_sql() {
        let rows = "INSERT INTO t (k, v) VALUES (1, 'a'), (2, 'b'), (3, 'c');";
        for (name, create) in [
            ("text-key", "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT);"),
            (
                "without-rowid",
                "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT) WITHOUT ROWID;",
            ),
            (
                "desc-key",
                "CREATE TABLE t (k INTEGER PRIMARY KEY DESC, v TEXT);",
            ),
            ("int-key", "CREATE TABLE t (k INT PRIMARY KEY, v TEXT);"),
            (
                "generated",
                "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT, w TEXT AS (v || '!'));",
            ),
            (
                "stored",
                "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT, w TEXT AS (v || '!') STORED);",
            ),
        ] {
            let db = Db::with(name, &format!("{create} {rows}"));
            let mut src = SqliteSource::open(&db.0).expect("open");
            assert!(src.page_layout("t").expect("layout").is_none(), "{name}");
            let spec = spec(&mut src, "t");
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
}
