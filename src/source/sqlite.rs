//! The SQLite connector (rusqlite): schema discovery from declared types,
//! key-ordered scans in one read transaction, range scans by key.
//!
//! Files are opened read-only and never created. Values are decoded by the
//! column's logical type, whatever storage class SQLite holds them in.

use std::collections::HashSet;
use std::path::Path;

use driftsum_core::{LogicalType, Value};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::{
    quote_ident, type_args, Column, KeyBounds, RowSink, ScanSpec, Source, SourceError, TableSchema,
};

/// A read-only connection to one SQLite file, inside one read transaction.
pub struct SqliteSource {
    conn: Connection,
    file: std::path::PathBuf,
    path: String,
    /// Tables seen holding a key value in another storage class than its
    /// column's type (or NULL): SQL range comparisons would miss such rows,
    /// so their range reads scan the table and filter.
    odd_keys: HashSet<String>,
}

impl SqliteSource {
    pub fn open(path: &Path) -> Result<SqliteSource, SourceError> {
        SqliteSource::open_waiting(path, None)
    }

    /// [`open`](SqliteSource::open), waiting at most `busy` (instead of
    /// SQLite's default) for a lock another process holds.
    fn open_waiting(
        path: &Path,
        busy: Option<std::time::Duration>,
    ) -> Result<SqliteSource, SourceError> {
        if !path.is_file() {
            return Err(SourceError::NoFile(path.to_path_buf()));
        }
        let location = path.display().to_string();
        let open_err = |e: rusqlite::Error| SourceError::Open {
            location: location.clone(),
            message: e.to_string(),
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
            .map_err(|e| SourceError::Open {
                location: location.clone(),
                message: e.to_string(),
            })?;
        Ok(SqliteSource {
            conn,
            file: path.to_path_buf(),
            path: location,
            odd_keys: HashSet::new(),
        })
    }

    fn query_err(&self, what: &str, e: rusqlite::Error) -> SourceError {
        SourceError::query(format!("{what} in {}", self.path), e)
    }

    /// Whether `column` of `table` is its rowid (an `INTEGER PRIMARY KEY` of
    /// a rowid table): then every key is an integer, and a range condition
    /// on it finds every row.
    fn is_rowid_alias(&self, table: &str, column: &str) -> Result<bool, SourceError> {
        let err = |e| self.query_err("reading the schema", e);
        let (declared, pk_columns): (String, i64) = self
            .conn
            .query_row(
                "SELECT max(CASE WHEN name = ?2 AND pk > 0 THEN upper(trim(type)) END), \
                        count(CASE WHEN pk > 0 THEN 1 END) \
                 FROM pragma_table_info(?1)",
                [table, column],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                        r.get(1)?,
                    ))
                },
            )
            .map_err(err)?;
        // A WITHOUT ROWID table (or a non-alias key) has an index of origin 'pk'.
        let pk_index: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM pragma_index_list(?1) WHERE origin = 'pk'",
                [table],
                |r| r.get(0),
            )
            .map_err(err)?;
        Ok(declared == "INTEGER" && pk_columns == 1 && pk_index == 0)
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

fn scale(d: &str) -> Option<u8> {
    let args = type_args(d);
    match args.as_slice() {
        [_, s] => Some((*s).clamp(0, 255) as u8),
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

/// [`decode`] into a slot of the row buffer, reusing a text or decimal
/// value's allocation from the previous row: most columns hold the same kind of
/// value row after row, and a fresh `String` per text value showed up in
/// profiles.
fn decode_into(slot: &mut Value, v: ValueRef<'_>, rule: &driftsum_core::coerce::ColumnRule) {
    let reused = match (v, rule.ty, &mut *slot) {
        (ValueRef::Text(t), LogicalType::Text | LogicalType::Dynamic, Value::Text(s)) => {
            match std::str::from_utf8(t) {
                Ok(t) => {
                    s.clear();
                    s.push_str(t);
                    true
                }
                Err(_) => false,
            }
        }
        // A decimal column stored as REAL (NUMERIC affinity does that).
        (ValueRef::Real(f), LogicalType::Decimal { scale }, Value::Decimal(s)) => {
            driftsum_core::decimal::write_f64(s, f, scale)
        }
        _ => false,
    };
    if reused {
        return;
    }
    *slot = decode(v, rule);
}

/// Whether SQL comparisons on these key columns follow key-byte order, so a
/// range can be put in a WHERE clause (a UUID may be stored as text or blob,
/// whose SQL order differs). Each scan also checks the stored values (see
/// [`stored_as_declared`]).
fn range_friendly(spec: &ScanSpec) -> bool {
    spec.key.iter().all(|k| {
        matches!(
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
        let mut stmt = self
            .conn
            .prepare("SELECT name, type, pk FROM pragma_table_info(?1) ORDER BY cid")
            .map_err(|e| self.query_err("reading the schema", e))?;
        let rows = stmt
            .query_map([table], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.query_err("reading the schema", e))?;
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
                .map(|(name, declared, _)| Column {
                    ty: logical_type(&declared),
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
        let cols: Vec<String> = spec
            .key
            .iter()
            .chain(&spec.values)
            .map(|c| quote_ident(&c.name))
            .collect();
        let key_cols: Vec<String> = spec
            .key
            .iter()
            .map(|c| match c.rule.ty {
                // Text keys compare bytewise whatever the column's collation.
                LogicalType::Text => format!("{} COLLATE BINARY", quote_ident(&c.name)),
                _ => quote_ident(&c.name),
            })
            .collect();
        let tuple = format!("({})", key_cols.join(", "));
        let mut conds = Vec::new();
        if let Some(f) = &spec.filter {
            conds.push(format!("({f})"));
        }
        let mut params: Vec<rusqlite::types::Value> = Vec::new();
        let odd = self.odd_keys.contains(&spec.table);
        if let Some(b) = bounds.filter(|_| range_friendly(spec) && !odd) {
            let marks = |n: usize| format!("({})", vec!["?"; n].join(", "));
            if let Some(after) = &b.after {
                conds.push(format!("{tuple} > {}", marks(after.len())));
                params.extend(after.iter().map(to_sql));
            }
            conds.push(format!("{tuple} <= {}", marks(b.through.len())));
            params.extend(b.through.iter().map(to_sql));
        }
        let mut sql = format!(
            "SELECT {} FROM {}",
            cols.join(", "),
            quote_ident(&spec.table)
        );
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        sql.push_str(" ORDER BY ");
        sql.push_str(&key_cols.join(", "));

        let context = format!("reading table {:?}", spec.table);
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(|e| self.query_err(&context, e))?;
        let rules: Vec<_> = spec
            .key
            .iter()
            .chain(&spec.values)
            .map(|c| c.rule)
            .collect();
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
            sink(&buf)?;
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
        if key.rule.ty != LogicalType::Integer || !self.is_rowid_alias(&spec.table, &key.name)? {
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
        Ok(super::even_cuts(lo, hi, rows_per_range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
