//! The PostgreSQL connector (sqlx): schema discovery from `pg_catalog`,
//! key-ordered streaming scans and range scans, all inside one
//! `REPEATABLE READ, READ ONLY` transaction held for the connection's life.
//!
//! Values are read exactly, in PostgreSQL's binary formats, by one decoder
//! ([`decode`]); enums, `char(n)` and json are cast to text in SQL and parsed
//! by the column's [`ColumnRule`]. A full scan (no key range) is read as
//! `COPY (SELECT …) TO STDOUT (FORMAT binary)`, framed by `copy.rs`, which
//! costs far less per row than sqlx's row decoding; a key range, whose bounds
//! are bound parameters, through sqlx's typed rows. Nothing here ever writes.
//!
//! A column of any other type is listed by `schema` as dynamic, so it can be
//! left out of a comparison; a scan that asks for it fails with
//! [`SourceError::UnsupportedType`] (never a silent skip).
//!
//! Passwords come from the URL, `PGPASSWORD` or a password file (`passfile=`
//! URL parameter, `PGPASSFILE`, `~/.pgpass`), in that order as libpq does, and
//! never appear in a message.

mod binary;
mod copy;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use driftsum_core::coerce::{ColumnRule, TrailingSpaces};
use driftsum_core::{LogicalType, Value};
use futures_util::TryStreamExt;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgValueRef};
use sqlx::{AssertSqlSafe, Connection, Postgres, Row, ValueRef};

use super::type_args;
use super::url::{self, redact};
use super::{
    quote_ident, server, Column, KeyBounds, RowSink, ScanSpec, Source, SourceError, TableSchema,
};

/// How a column travels over the wire and is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    /// int2 / int4 / int8, binary.
    Int,
    /// float4, binary.
    Float4,
    /// float8, binary.
    Float8,
    Bool,
    Bytes,
    /// text / varchar, binary (UTF-8 bytes).
    Text,
    /// `char(n)`: cast to text in SQL, which removes the padding.
    PaddedText,
    /// Enum labels: cast to text (their SQL order is not text order).
    EnumText,
    /// timestamp / timestamptz, binary.
    Timestamp,
    /// date, binary.
    Date,
    /// time, binary.
    Time,
    /// uuid, binary.
    Uuid,
    /// numeric, binary.
    Numeric,
    /// Anything else: cast to text and parsed by the column rule.
    Cast,
    /// A type driftsum cannot compare: reported as dynamic by `schema` (so
    /// the column can be left out), an error when a scan asks for it.
    Unsupported,
}

/// A column of a PostgreSQL table, as discovered.
#[derive(Clone, Debug)]
struct PgColumn {
    name: String,
    declared: String,
    wire: Wire,
    ty: LogicalType,
    /// A text column whose collation compares UTF-8 bytes ("C", "POSIX",
    /// `ucs_basic`, or a database default of C): its own order is key-byte
    /// order, so its index serves key order and key ranges. Any other
    /// collation orders otherwise, and is compared in "C".
    byte_order: bool,
}

/// A read-only PostgreSQL connection inside one snapshot.
pub struct PgSource {
    rt: tokio::runtime::Runtime,
    conn: Option<PgConnection>,
    /// The URL without its password.
    location: String,
    /// The schema of unqualified table names.
    default_schema: String,
    /// Discovered columns by (schema, table).
    columns: HashMap<(String, String), Vec<PgColumn>>,
    /// Each resolved table's `pg_class.relkind` (see [`PgSource::relation`]).
    relkinds: HashMap<(String, String), char>,
    /// Secrets to scrub from any message, in case a driver ever echoes one.
    secrets: Vec<String>,
    /// How to connect again, for [`Source::fork`].
    opts: PgConnectOptions,
    /// This transaction's snapshot, once exported for forks.
    snapshot: Option<String>,
    /// How long a statement waits for a table lock (the URL's
    /// `lock_timeout`).
    lock_timeout: Duration,
}

/// Opens a session the way every scan needs it, inside a `REPEATABLE READ,
/// READ ONLY` transaction, on `snapshot` when given (one exported by
/// another session, so both read the same data).
async fn open_session(
    opts: &PgConnectOptions,
    snapshot: Option<&str>,
    lock_timeout: Duration,
    open_err: impl Fn(sqlx::Error) -> SourceError,
) -> Result<PgConnection, SourceError> {
    let mut conn = PgConnection::connect_with(opts).await.map_err(&open_err)?;
    // The URL's `options` may have changed these; the text forms parsed
    // below depend on them.
    let mut stmts = vec![
        "SET TimeZone = 'UTC'".to_string(),
        "SET client_encoding = 'UTF8'".to_string(),
        "SET DateStyle = 'ISO, MDY'".to_string(),
        "SET idle_in_transaction_session_timeout = 0".to_string(),
        // A table another session holds locked (`LOCK TABLE … ACCESS
        // EXCLUSIVE`, an `ALTER TABLE` in an open transaction) would
        // otherwise keep a scan waiting forever; past this the scan fails
        // with 55P03, reported for that table alone (see `db_message`).
        // PostgreSQL reads 0 as "wait forever", so "do not wait" is 1 ms.
        format!("SET lock_timeout = '{}ms'", lock_timeout.as_millis().max(1)),
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY".to_string(),
    ];
    if let Some(id) = snapshot {
        // The server made the id; check it is one before quoting it anyway.
        if !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(SourceError::Other(format!("an odd snapshot id {id:?}")));
        }
        stmts.push(format!("SET TRANSACTION SNAPSHOT '{id}'"));
    }
    // A failed query (a table without SELECT privilege, a bad filter)
    // aborts the transaction; rolling back to this keeps the snapshot and
    // lets other tables go on.
    stmts.push("SAVEPOINT driftsum".to_string());
    for stmt in stmts {
        sqlx::raw_sql(AssertSqlSafe(stmt))
            .execute(&mut conn)
            .await
            .map_err(&open_err)?;
    }
    Ok(conn)
}

impl PgSource {
    pub fn connect(url: &str) -> Result<PgSource, SourceError> {
        let location = redact(url);
        let url_password = url_password(url);
        let mut secrets: Vec<String> = Vec::new();
        if let Some(p) = &url_password {
            secrets.push(p.clone());
        }
        if let Ok(p) = std::env::var("PGPASSWORD") {
            secrets.push(p);
        }
        // Too short to tell from ordinary text; such a password is never
        // echoed anyway (this is a second line of defence).
        secrets.retain(|s| s.len() >= 3);
        let lock_timeout = url::lock_timeout(url)?;
        let mut opts =
            PgConnectOptions::from_str(&url::without_lock_timeout(url)).map_err(|e| {
                SourceError::BadUrl(scrub(
                    format!("{location}: not a valid PostgreSQL URL: {e}"),
                    &secrets,
                ))
            })?;
        opts = super::tls::postgres(url, &location, opts)?;
        // sqlx reads the URL password, then PGPASSWORD, then a password file,
        // like libpq; but it matches the file's database field against an
        // empty name when the URL names none (libpq uses the user name), and
        // ignores the `passfile` parameter. Look the file up libpq's way.
        if url_password.is_none() && std::env::var_os("PGPASSWORD").is_none() {
            let file = query_param(url, "passfile")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("PGPASSFILE").map(PathBuf::from))
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass")));
            let host = match opts.get_socket() {
                Some(_) => "",
                None => opts.get_host(),
            };
            let user = opts.get_username().to_string();
            let db = opts.get_database().unwrap_or(&user).to_string();
            if let Some(p) =
                file.and_then(|f| pgpass_password(&f, host, opts.get_port(), &db, &user))
            {
                if p.len() >= 3 {
                    secrets.push(p.clone());
                }
                opts = opts.password(&p);
            }
        }

        // The first schema of the search_path the server is given: the
        // startup options, built as sqlx builds them (PGOPTIONS, then each
        // `options` and `options[NAME]` URL parameter in turn).
        let default_schema = search_path_from_options(&startup_options(url))
            .and_then(|sp| first_schema(&sp, opts.get_username()))
            .unwrap_or_else(|| "public".to_string());

        let rt = server::runtime()?;
        let open_err = |e: sqlx::Error| SourceError::Open {
            location: location.clone(),
            message: super::tls::explain(scrub(e.to_string(), &secrets)),
        };
        let conn = server::block_on_timeout(
            &rt,
            server::CONNECT_TIMEOUT,
            &format!("connecting to {location}"),
            open_session(&opts, None, lock_timeout, open_err),
        )?;
        Ok(PgSource {
            rt,
            conn: Some(conn),
            location,
            default_schema,
            columns: HashMap::new(),
            relkinds: HashMap::new(),
            secrets,
            opts,
            snapshot: None,
            lock_timeout,
        })
    }

    fn err(&self, context: impl Into<String>, e: &sqlx::Error) -> SourceError {
        SourceError::query(context, db_message(e, self.lock_timeout, &self.secrets))
    }

    /// After a failed query: leaves the aborted state, same snapshot.
    fn recover(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            let _ = self.rt.block_on(async {
                tokio::time::timeout(
                    server::CONNECT_TIMEOUT,
                    sqlx::raw_sql("ROLLBACK TO SAVEPOINT driftsum").execute(conn),
                )
                .await
            });
        }
    }

    /// Runs statements outside the scan path, returning the first column of
    /// the last one's first row as text.
    fn run(&mut self, stmts: &[String], context: &str) -> Result<Option<String>, SourceError> {
        let rt = &self.rt;
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| SourceError::Other("the PostgreSQL connection is closed".into()))?;
        let result = rt.block_on(async {
            let mut last = None;
            for stmt in stmts {
                let row = sqlx::query(AssertSqlSafe(stmt.clone()))
                    .fetch_optional(&mut *conn)
                    .await?;
                last = match row {
                    Some(r) if r.len() > 0 => r.try_get::<Option<String>, _>(0)?,
                    _ => None,
                };
            }
            Ok::<_, sqlx::Error>(last)
        });
        result.map_err(|e| self.err(format!("{context} in {}", self.location), &e))
    }

    /// Exports this transaction's snapshot for other sessions to share. A
    /// snapshot cannot be exported from inside a savepoint, so the
    /// savepoint is released first and made again after.
    fn export_snapshot(&mut self) -> Option<String> {
        let stmts = [
            "RELEASE SAVEPOINT driftsum".to_string(),
            "SELECT pg_export_snapshot()".to_string(),
        ];
        let exported = self.run(&stmts, "exporting the snapshot");
        let resumed = self.run(&["SAVEPOINT driftsum".to_string()], "resuming");
        match (exported, resumed) {
            (Ok(Some(id)), Ok(_)) => Some(id),
            _ => {
                // The transaction failed (the server refused the export):
                // start a new one. Only the schema and the key's range were
                // read in the old one, and with no fork the cuts go unused;
                // every row is read in the new snapshot.
                let fresh = [
                    "ROLLBACK".to_string(),
                    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY".to_string(),
                    "SAVEPOINT driftsum".to_string(),
                ];
                let _ = self.run(&fresh, "restarting the transaction");
                None
            }
        }
    }

    /// Runs a catalog query returning text columns.
    fn catalog(
        &mut self,
        sql: &'static str,
        binds: &[&str],
        context: &str,
    ) -> Result<Vec<Vec<Option<String>>>, SourceError> {
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(b.to_string());
        }
        let rt = &self.rt;
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| SourceError::Other("the PostgreSQL connection is closed".into()))?;
        let rows = match rt.block_on(q.fetch_all(conn)) {
            Ok(rows) => rows,
            Err(e) => {
                let err = self.err(format!("{context} in {}", self.location), &e);
                self.recover();
                return Err(err);
            }
        };
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.try_get::<Option<String>, _>(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(format!("{context} in {}", self.location), &e))
    }

    /// Finds a table: `SCHEMA.NAME`, or `NAME` in the default schema.
    fn resolve(&mut self, table: &str) -> Result<(String, String), SourceError> {
        let mut candidates = Vec::new();
        if let Some((s, n)) = table.split_once('.') {
            candidates.push((s.to_string(), n.to_string()));
        }
        candidates.push((self.default_schema.clone(), table.to_string()));
        for (schema, name) in candidates {
            let key = (schema, name);
            if self.relkinds.contains_key(&key) {
                return Ok(key);
            }
            let (schema, name) = key;
            let found = self.catalog(
                "SELECT c.relkind::text FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 \
                 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
                &[&schema, &name],
                "looking up a table",
            )?;
            if let Some(kind) = found.first().and_then(|r| r.first().cloned().flatten()) {
                let kind = kind.chars().next().unwrap_or('r');
                self.relkinds.insert((schema.clone(), name.clone()), kind);
                return Ok((schema, name));
            }
        }
        Err(SourceError::NoTable {
            table: table.to_string(),
            location: self.location.clone(),
        })
    }

    /// The FROM item reading a resolved table's own rows. A table with
    /// inheritance children is read alone (`ONLY`), as `COPY table TO` and
    /// a sync tool read it: its children are tables of their own. A
    /// partitioned table holds no rows itself (`ONLY` would read none), so
    /// it is read with all its partitions.
    fn relation(&self, schema: &str, name: &str) -> String {
        let kind = self
            .relkinds
            .get(&(schema.to_string(), name.to_string()))
            .copied();
        let only = if matches!(kind, Some('r' | 'f')) {
            "ONLY "
        } else {
            ""
        };
        format!("{only}{}.{}", quote_ident(schema), quote_ident(name))
    }

    /// The columns of a resolved table, read once from the catalog.
    fn load_columns(&mut self, schema: &str, name: &str) -> Result<Vec<PgColumn>, SourceError> {
        let key = (schema.to_string(), name.to_string());
        if let Some(c) = self.columns.get(&key) {
            return Ok(c.clone());
        }
        // A domain is read as the type it is built on, followed down
        // through domains over domains (each level's type modifier applies
        // to its base); the category tells arrays ('A'), whose wire form
        // is not their elements'.
        let rows = self.catalog(
            "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                    b.fmt, b.typtype, b.typcategory, \
                    (SELECT CASE WHEN co.collprovider = 'd' THEN \
                         (SELECT coalesce(to_jsonb(d) ->> 'datlocprovider', 'c') = 'c' \
                                 AND d.datcollate IN ('C', 'POSIX') \
                          FROM pg_catalog.pg_database d WHERE d.datname = current_database()) \
                     ELSE co.collprovider = 'c' AND co.collcollate IN ('C', 'POSIX') END \
                     FROM pg_catalog.pg_collation co WHERE co.oid = a.attcollation)::text \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             CROSS JOIN LATERAL ( \
                 WITH RECURSIVE d(oid, typmod, depth) AS ( \
                     SELECT a.atttypid, a.atttypmod, 0 \
                     UNION ALL \
                     SELECT t.typbasetype, t.typtypmod, d.depth + 1 \
                     FROM d JOIN pg_catalog.pg_type t ON t.oid = d.oid \
                     WHERE t.typtype = 'd' AND d.depth < 64) \
                 SELECT pg_catalog.format_type(d.oid, d.typmod) AS fmt, \
                        t.typtype::text AS typtype, t.typcategory::text AS typcategory \
                 FROM d JOIN pg_catalog.pg_type t ON t.oid = d.oid \
                 ORDER BY d.depth DESC LIMIT 1) b \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[schema, name],
            "reading the schema",
        )?;
        let mut cols = Vec::with_capacity(rows.len());
        for r in rows {
            let text = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            let (name, declared, fmt) = (text(0), text(1), text(2));
            let first = |i: usize| text(i).chars().next().unwrap_or('?');
            let (typtype, category) = (first(3), first(4));
            let (ty, wire) = classify(&fmt, typtype, category)
                .unwrap_or((LogicalType::Dynamic, Wire::Unsupported));
            // A domain's messages name what it is built on.
            let declared = if fmt != declared {
                format!("{declared} (a domain over {fmt})")
            } else {
                declared
            };
            cols.push(PgColumn {
                name,
                declared,
                wire,
                ty,
                byte_order: text(5) == "true",
            });
        }
        self.columns.insert(key, cols.clone());
        Ok(cols)
    }
}

impl Drop for PgSource {
    fn drop(&mut self) {
        // Say goodbye (the server then ends the read-only transaction), but
        // never block inside someone else's runtime.
        if let Some(conn) = self.conn.take() {
            if tokio::runtime::Handle::try_current().is_err() {
                let _ = self.rt.block_on(async {
                    tokio::time::timeout(std::time::Duration::from_secs(2), conn.close()).await
                });
            }
        }
    }
}

/// The logical type of a PostgreSQL column, from `format_type(atttypid,
/// atttypmod)` and `pg_type.typtype` (`'e'` for enums); `None` when driftsum
/// cannot compare it. Domains are mapped by their base type.
pub fn logical_type(format_type: &str, typtype: char) -> Option<LogicalType> {
    classify(format_type, typtype, '?').map(|(t, _)| t)
}

/// How a column of a base or enum type (a domain resolved to its base) is
/// read, from its `format_type`, `typtype` and `typcategory`; `None` for a
/// type driftsum cannot compare exactly, which is then refused, never
/// compared by its wire bytes.
fn classify(format_type: &str, typtype: char, category: char) -> Option<(LogicalType, Wire)> {
    use LogicalType as T;
    let f = format_type.trim();
    // Arrays are refused: their binary form is a header and elements, not
    // any element type's form (`varchar(10)[]` would read as its raw
    // bytes, `numeric(10,2)[]` fail as a numeric), and a replica's forms
    // (`{a,b}`, JSON) follow rules of their own. `format_type` names every
    // array type with `[]`, whatever its category.
    if category == 'A' || f.ends_with("[]") {
        return None;
    }
    if typtype == 'e' {
        return Some((T::Text, Wire::EnumText));
    }
    if typtype != 'b' {
        return None;
    }
    let base = f.split('(').next().unwrap_or(f).trim();
    let args = type_args(f);
    let precision = || args.first().map_or(6, |&p| p.clamp(0, 6) as u8);
    Some(match base {
        "smallint" | "integer" | "bigint" => (T::Integer, Wire::Int),
        "real" => (T::Float { single: true }, Wire::Float4),
        "double precision" => (T::Float { single: false }, Wire::Float8),
        "numeric" => (
            T::Decimal {
                scale: match args.as_slice() {
                    [] => None,
                    [_] => Some(0),
                    [_, s, ..] => Some((*s).clamp(0, u16::MAX.into()) as u16),
                },
            },
            Wire::Numeric,
        ),
        "text" | "character varying" => (T::Text, Wire::Text),
        "character" | "bpchar" => (T::Text, Wire::PaddedText),
        "bytea" => (T::Bytes, Wire::Bytes),
        "boolean" => (T::Bool, Wire::Bool),
        "date" => (T::Date, Wire::Date),
        "uuid" => (T::Uuid, Wire::Uuid),
        "json" | "jsonb" => (T::Json, Wire::Cast),
        _ if f.starts_with("timestamp") && f.ends_with("without time zone") => (
            T::TimestampNaive {
                precision: precision(),
            },
            Wire::Timestamp,
        ),
        _ if f.starts_with("timestamp") && f.ends_with("with time zone") => (
            T::Timestamp {
                precision: precision(),
            },
            Wire::Timestamp,
        ),
        _ if f.starts_with("time") && f.ends_with("without time zone") => (
            T::Time {
                precision: precision(),
            },
            Wire::Time,
        ),
        _ => return None,
    })
}

/// The SQL expression that reads a column.
fn select_expr(c: &PgColumn) -> String {
    match c.wire {
        Wire::PaddedText | Wire::EnumText | Wire::Cast => {
            format!("{}::text", quote_ident(&c.name))
        }
        _ => quote_ident(&c.name),
    }
}

/// The SQL expression a key column is ordered by, in key-byte order: text in
/// the "C" collation (byte order of UTF-8) unless its own collation already
/// is byte order (then its index serves the order); enums by label, not by
/// position.
fn order_expr(c: &PgColumn) -> String {
    match c.wire {
        Wire::Text if c.byte_order => quote_ident(&c.name),
        Wire::Text | Wire::PaddedText => format!("{} COLLATE \"C\"", quote_ident(&c.name)),
        Wire::EnumText => format!("{}::text COLLATE \"C\"", quote_ident(&c.name)),
        _ => quote_ident(&c.name),
    }
}

/// One bound key value for a range condition.
enum Bind {
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// The column expression and parameter placeholder comparing one key column
/// with a bound value, when the column's SQL order is key-byte order, so
/// the comparison happens in the column's own order. Bound values may come
/// from the other side, so they are never cast to a narrower type
/// (`varchar(5)`, `integer`) that could truncate or overflow. `None` when
/// the value cannot be expressed that way.
fn bound(c: &PgColumn, v: &Value, n: usize) -> Option<(String, String, Bind)> {
    let col = quote_ident(&c.name);
    Some(match (c.wire, v) {
        (Wire::Int, Value::Int(i)) => {
            (col, format!("${n}::int8"), Bind::Int((*i).try_into().ok()?))
        }
        (Wire::Text, Value::Text(s)) if !s.contains('\0') => (
            order_expr(c),
            format!("CAST(${n} AS text)"),
            Bind::Text(s.clone()),
        ),
        // Compared as the trimmed text driftsum reads, exactly.
        (Wire::PaddedText | Wire::EnumText, Value::Text(s)) if !s.contains('\0') => (
            format!("{col}::text COLLATE \"C\""),
            format!("CAST(${n} AS text)"),
            Bind::Text(s.clone()),
        ),
        (Wire::Bytes, Value::Bytes(b)) => (col, format!("${n}::bytea"), Bind::Bytes(b.clone())),
        (Wire::Uuid, Value::Uuid(_)) => (
            col,
            format!("CAST(${n} AS uuid)"),
            Bind::Text(v.to_string()),
        ),
        _ => return None,
    })
}

/// The range condition for `after < key <= through`, with its bound
/// values, written so the primary key's index can serve it; `None` when no
/// key column can be bounded (the caller then reads the whole table, which
/// is always correct). It may select more rows than the range holds (the
/// caller filters by key), never fewer:
///
/// - every key column in key-byte order: the exact tuple comparison;
/// - else the leading columns that are in key-byte order, compared as a
///   tuple inclusively (a key's encoding is its columns' encodings one
///   after another, each self-delimiting, so a key in the range has its
///   leading columns in the range of the bounds' leading columns);
/// - else a leading date or timestamp column, by the dates or seconds of
///   the bounds (see [`server::time_prefix`]).
///
/// `lead` is the logical type the leading key column is read as (its
/// rule's), which decides the form of its key text.
fn range_condition(
    keys: &[&PgColumn],
    lead: LogicalType,
    b: &KeyBounds,
) -> Option<(String, Vec<Bind>)> {
    if b.through.len() != keys.len() || b.after.as_ref().is_some_and(|a| a.len() != keys.len()) {
        return None;
    }
    let sides = || {
        b.after
            .as_ref()
            .map(|a| (a, ">", ">="))
            .into_iter()
            .chain(std::iter::once((&b.through, "<=", "<=")))
    };
    // How many leading columns every bound can express in SQL.
    let exact = sides()
        .map(|(vals, _, _)| {
            keys.iter()
                .zip(vals)
                .enumerate()
                .take_while(|(i, (c, v))| bound(c, v, i + 1).is_some())
                .count()
        })
        .min()
        .unwrap_or(0);
    if exact == 0 {
        return time_condition(keys.first()?, lead, b);
    }
    let mut binds = Vec::new();
    let mut conds = Vec::new();
    for (vals, strict, inclusive) in sides() {
        let op = if exact == keys.len() {
            strict
        } else {
            inclusive
        };
        let mut cols = Vec::new();
        let mut marks = Vec::new();
        for (c, v) in keys.iter().zip(vals).take(exact) {
            let (col, mark, bind) = bound(c, v, binds.len() + 1)?;
            cols.push(col);
            marks.push(mark);
            binds.push(bind);
        }
        conds.push(format!("({}) {op} ({})", cols.join(", "), marks.join(", ")));
    }
    Some((conds.join(" AND "), binds))
}

/// The condition for a leading date or timestamp key column `c`: its
/// values from the first bound's date (or second) through the last one's,
/// plus every value outside the years 1000..9999 and NULL, whose key text
/// has another shape and so another place in key order. Each part is an
/// index range (PostgreSQL ORs their bitmaps). `None` when neither bound
/// has such a date.
fn time_condition(c: &PgColumn, lead: LogicalType, b: &KeyBounds) -> Option<(String, Vec<Bind>)> {
    use LogicalType as T;
    let second = Some("interval '1 second'");
    // Only a column read as its own kind has key text of that shape (a
    // timestamp read as a date is invalid off midnight).
    let (kind, ty, step) = match (c.wire, c.ty, lead) {
        (Wire::Date, _, T::Date) => (server::TimeKey::Date, "date", None),
        (Wire::Timestamp, T::Timestamp { .. }, T::Timestamp { .. } | T::TimestampNaive { .. }) => {
            (server::TimeKey::Second, "timestamptz", second)
        }
        (
            Wire::Timestamp,
            T::TimestampNaive { .. },
            T::Timestamp { .. } | T::TimestampNaive { .. },
        ) => (server::TimeKey::Second, "timestamp", second),
        _ => return None,
    };
    let utc = if ty == "timestamptz" { "+00" } else { "" };
    let (lo, hi) = server::time_bounds(b, kind)?;
    let col = quote_ident(&c.name);
    let mut binds = Vec::new();
    let mut inside = Vec::new();
    if let Some(lo) = lo {
        binds.push(Bind::Text(format!("{lo}{utc}")));
        inside.push(format!("{col} >= CAST($1 AS {ty})"));
    }
    if let Some(hi) = hi {
        binds.push(Bind::Text(format!("{hi}{utc}")));
        let n = binds.len();
        inside.push(match step {
            Some(step) => format!("{col} < CAST(${n} AS {ty}) + {step}"),
            None => format!("{col} <= CAST(${n} AS {ty})"),
        });
    }
    let (first, past) = server::TIME_REGULAR;
    Some((
        format!(
            "(({}) OR {col} < '{first}{utc}'::{ty} OR {col} >= '{past}{utc}'::{ty} \
             OR {col} IS NULL)",
            inside.join(" AND ")
        ),
        binds,
    ))
}

/// The bytes of an `N`-byte binary value.
fn fixed<const N: usize>(b: &[u8], what: &str) -> Result<[u8; N], String> {
    b.try_into()
        .map_err(|_| format!("{what} of {} bytes, expected {N}", b.len()))
}

/// The text of a value sent as UTF-8 bytes (text, varchar, and anything
/// cast to text in SQL).
fn utf8(b: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(b).map_err(|e| format!("text that is not UTF-8: {e}"))
}

/// Decodes one value from its binary wire form (`None` for NULL). The one
/// decoder of both read paths: the COPY stream of full scans and sqlx's
/// rows (which sqlx receives in the same binary formats) of range scans.
fn decode(raw: Option<&[u8]>, wire: Wire, rule: &ColumnRule) -> Result<Value, String> {
    let Some(b) = raw else {
        return Ok(Value::Null);
    };
    Ok(match wire {
        Wire::Int => {
            let i = match b.len() {
                2 => i16::from_be_bytes(fixed(b, "int2")?) as i64,
                4 => i32::from_be_bytes(fixed(b, "int4")?) as i64,
                8 => i64::from_be_bytes(fixed(b, "int8")?),
                n => return Err(format!("an integer of {n} bytes")),
            };
            rule.finish(Value::Int(i as i128))
        }
        Wire::Float4 => rule.finish(Value::Float(f32::from_be_bytes(fixed(b, "float4")?) as f64)),
        Wire::Float8 => rule.finish(Value::Float(f64::from_be_bytes(fixed(b, "float8")?))),
        Wire::Bool => rule.finish(Value::Bool(u8::from_be_bytes(fixed(b, "boolean")?) != 0)),
        Wire::Bytes => rule.finish(Value::Bytes(b.to_vec())),
        Wire::Text | Wire::PaddedText | Wire::EnumText => {
            rule.finish(Value::Text(utf8(b)?.to_owned()))
        }
        Wire::Timestamp => rule.finish(Value::Timestamp(binary::timestamp(b)?)),
        Wire::Date => Value::Date(binary::date(b)?),
        Wire::Time => rule.finish(Value::Time(binary::time(b)?)),
        Wire::Uuid => Value::Uuid(binary::uuid(b)?),
        Wire::Numeric => {
            let text = binary::numeric(b)?;
            // Already canonical; only a value with more fractional digits
            // than the column's scale needs rounding.
            let frac = text.find('.').map_or(0, |p| text.len() - p - 1);
            match rule.ty {
                LogicalType::Decimal { scale: Some(s) } if frac > s as usize => {
                    rule.from_text(&text)
                }
                LogicalType::Decimal { .. } if text != "NaN" && !text.ends_with("Infinity") => {
                    Value::Decimal(text)
                }
                _ => rule.from_text(&text),
            }
        }
        Wire::Cast => rule.from_text(utf8(b)?),
        Wire::Unsupported => return Err("unsupported type".into()),
    })
}

/// [`decode`] into a slot of the row buffer, reusing a text or numeric
/// value's allocation from the previous row (a fresh `String` per value
/// showed in profiles).
fn decode_into(
    slot: &mut Value,
    raw: Option<&[u8]>,
    wire: Wire,
    rule: &ColumnRule,
) -> Result<(), String> {
    let reused = match (raw, wire, rule.ty, &mut *slot) {
        (Some(b), Wire::Text, LogicalType::Text, Value::Text(s))
            if rule.trailing_spaces == TrailingSpaces::Significant =>
        {
            s.clear();
            s.push_str(utf8(b)?);
            true
        }
        // The usual money column: canonical already, unless it is special
        // or has more fractional digits than the scale (see `decode`).
        (Some(b), Wire::Numeric, LogicalType::Decimal { scale }, Value::Decimal(s)) => {
            binary::numeric_into(b, s)?;
            let frac = s.find('.').map_or(0, |p| s.len() - p - 1);
            let special = s == "NaN" || s.ends_with("Infinity");
            !special && scale.is_none_or(|sc| frac <= sc as usize)
        }
        _ => false,
    };
    if !reused {
        *slot = decode(raw, wire, rule)?;
    }
    Ok(())
}

/// Decodes one value of a sqlx row (range scans).
fn decode_raw(raw: PgValueRef<'_>, wire: Wire, rule: &ColumnRule) -> Result<Value, String> {
    if raw.is_null() {
        return Ok(Value::Null);
    }
    decode(Some(raw.as_bytes().map_err(|e| e.to_string())?), wire, rule)
}

impl Source for PgSource {
    fn describe(&self) -> String {
        self.location.clone()
    }

    fn tables(&mut self) -> Result<Vec<String>, SourceError> {
        let schema = self.default_schema.clone();
        let rows = self.catalog(
            "SELECT c.relname::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
            &[&schema],
            "listing tables",
        )?;
        let mut names: Vec<String> = rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        names.sort();
        Ok(names)
    }

    fn schema(&mut self, table: &str) -> Result<TableSchema, SourceError> {
        let (schema, name) = self.resolve(table)?;
        let cols = self.load_columns(&schema, &name)?;
        let pk = self.catalog(
            "SELECT a.attname::text \
             FROM pg_catalog.pg_index i \
             JOIN pg_catalog.pg_class c ON c.oid = i.indrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indisprimary AND n.nspname = $1 AND c.relname = $2 \
               AND k.ord <= i.indnkeyatts \
             ORDER BY k.ord",
            &[&schema, &name],
            "reading the primary key",
        )?;
        Ok(TableSchema {
            name: table.to_string(),
            columns: cols
                .into_iter()
                .map(|c| Column {
                    // `char(n)` pads with spaces that are not part of the
                    // value: `'ab'` and `'ab   '` are equal in it.
                    trailing_spaces: match c.wire {
                        Wire::PaddedText => TrailingSpaces::Insignificant,
                        _ => TrailingSpaces::Significant,
                    },
                    name: c.name,
                    declared: c.declared,
                    ty: c.ty,
                })
                .collect(),
            primary_key: pk
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .collect(),
        })
    }

    fn scan(
        &mut self,
        spec: &ScanSpec,
        bounds: Option<&KeyBounds>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        let (schema, name) = self.resolve(&spec.table)?;
        let table_cols = self.load_columns(&schema, &name)?;
        let find =
            |c: &str| {
                let col = table_cols.iter().find(|t| t.name == c).ok_or_else(|| {
                    SourceError::NoColumn {
                        table: spec.table.clone(),
                        column: c.to_string(),
                    }
                })?;
                if col.wire == Wire::Unsupported {
                    return Err(SourceError::UnsupportedType {
                        table: spec.table.clone(),
                        column: col.name.clone(),
                        declared: col.declared.clone(),
                    });
                }
                Ok(col)
            };
        let keys = spec
            .key
            .iter()
            .map(|k| find(&k.name))
            .collect::<Result<Vec<_>, _>>()?;
        let cols = spec
            .columns()
            .map(|c| Ok((find(&c.name)?.wire, c.rule)))
            .collect::<Result<Vec<_>, SourceError>>()?;
        let exprs = spec
            .columns()
            .map(|c| find(&c.name).map(select_expr))
            .collect::<Result<Vec<_>, _>>()?;

        let mut conds = Vec::new();
        if let Some(f) = &spec.filter {
            conds.push(format!("({f})"));
        }
        let mut binds = Vec::new();
        let lead = spec.key.first().map_or(LogicalType::Dynamic, |k| k.rule.ty);
        if let Some((cond, b)) = bounds.and_then(|b| range_condition(&keys, lead, b)) {
            conds.push(cond);
            binds = b;
        }
        let mut sql = format!(
            "SELECT {} FROM {}",
            if exprs.is_empty() {
                "1".to_string()
            } else {
                exprs.join(", ")
            },
            self.relation(&schema, &name)
        );
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        if !keys.is_empty() {
            sql.push_str(" ORDER BY ");
            let order: Vec<String> = keys.iter().map(|k| order_expr(k)).collect();
            sql.push_str(&order.join(", "));
        }

        let context = format!("reading table {:?}", spec.table);
        let names: Vec<&str> = spec.columns().map(|c| c.name.as_str()).collect();
        let cols = ScanCols {
            cols: &cols,
            names: &names,
            context: &context,
        };
        // A timestamp key column: rows are put in key-byte order here (see
        // `server::KeyOrder`), as its index gives them in time order.
        let ts_key = spec.key.iter().zip(&keys).position(|(k, c)| {
            c.wire == Wire::Timestamp
                && matches!(
                    k.rule.ty,
                    LogicalType::Timestamp { .. } | LogicalType::TimestampNaive { .. }
                )
        });
        let fields = exprs.len().max(1);
        let Some(ts) = ts_key else {
            return self.read(sql, binds, fields, &cols, sink);
        };
        let mut order = server::KeyOrder::new(ts, keys.len());
        {
            let mut in_order = |row: &[Value]| order.push(row, sink);
            self.read(sql, binds, fields, &cols, &mut in_order)?;
        }
        order.flush(sink)
    }

    /// A new session on this one's exported snapshot
    /// (`SET TRANSACTION SNAPSHOT`): it reads exactly what this one does.
    fn fork(&mut self) -> Result<Option<Box<dyn Source>>, SourceError> {
        if self.snapshot.is_none() {
            self.snapshot = self.export_snapshot();
        }
        let Some(id) = self.snapshot.clone() else {
            return Ok(None);
        };
        let (location, secrets) = (self.location.clone(), self.secrets.clone());
        let open_err = |e: sqlx::Error| SourceError::Open {
            location: location.clone(),
            message: scrub(e.to_string(), &secrets),
        };
        let rt = server::runtime()?;
        let conn = server::block_on_timeout(
            &rt,
            server::CONNECT_TIMEOUT,
            &format!("connecting to {}", self.location),
            open_session(&self.opts, Some(&id), self.lock_timeout, open_err),
        )?;
        Ok(Some(Box::new(PgSource {
            rt,
            conn: Some(conn),
            location: self.location.clone(),
            default_schema: self.default_schema.clone(),
            columns: self.columns.clone(),
            relkinds: self.relkinds.clone(),
            secrets: self.secrets.clone(),
            opts: self.opts.clone(),
            snapshot: Some(id),
            lock_timeout: self.lock_timeout,
        })))
    }

    /// Cuts for a single integer key, evenly over `min..=max` (read from
    /// the key's index): every row's key is an integer a range finds.
    fn key_cuts(
        &mut self,
        spec: &ScanSpec,
        rows_per_range: u64,
    ) -> Result<Vec<Vec<Value>>, SourceError> {
        let [key] = spec.key.as_slice() else {
            return Ok(Vec::new());
        };
        let (schema, name) = self.resolve(&spec.table)?;
        let cols = self.load_columns(&schema, &name)?;
        let Some(col) = cols.iter().find(|c| c.name == key.name) else {
            return Ok(Vec::new());
        };
        if col.wire != Wire::Int || key.rule.ty != LogicalType::Integer {
            return Ok(Vec::new());
        }
        // A key chosen with --key may be nullable, and no range condition
        // finds a NULL: such a key is not cut.
        let not_null = self.catalog(
            "SELECT a.attnotnull::text \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3",
            &[&schema, &name, &col.name],
            "reading the schema",
        )?;
        if not_null
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .as_deref()
            != Some("true")
        {
            return Ok(Vec::new());
        }
        let k = quote_ident(&col.name);
        let sql = format!(
            "SELECT min({k})::text || ' ' || max({k})::text FROM {}",
            self.relation(&schema, &name)
        );
        let span = match self.run(&[sql], "reading the key range") {
            Ok(s) => s,
            Err(e) => {
                self.recover();
                return Err(e);
            }
        };
        let bounds = span.as_deref().and_then(|s| {
            let (lo, hi) = s.split_once(' ')?;
            Some((lo.parse::<i64>().ok()?, hi.parse::<i64>().ok()?))
        });
        let Some((lo, hi)) = bounds else {
            return Ok(Vec::new());
        };
        Ok(super::even_cuts(lo, hi, rows_per_range))
    }
}

/// The columns of one scan: how to decode each, and what to call it in a
/// message.
struct ScanCols<'a> {
    cols: &'a [(Wire, ColumnRule)],
    names: &'a [&'a str],
    context: &'a str,
}

impl ScanCols<'_> {
    /// The error for a value of column `i` that cannot be decoded.
    fn error(&self, i: usize, e: String, secrets: &[String]) -> SourceError {
        let msg = format!("column {:?}: {e}", self.names.get(i).unwrap_or(&""));
        SourceError::query(self.context, scrub(msg, secrets))
    }
}

impl PgSource {
    /// Runs a scan's SELECT: through COPY when it has no bound values but
    /// integers, else through sqlx's typed rows.
    fn read(
        &mut self,
        mut sql: String,
        binds: Vec<Bind>,
        fields: usize,
        cols: &ScanCols<'_>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        if binds.iter().all(|b| matches!(b, Bind::Int(_))) {
            // Integer bounds (a key range of a parallel scan) go into the SQL
            // as literals, which integers cannot abuse, so COPY reads them.
            for (n, b) in binds.iter().enumerate().rev() {
                if let Bind::Int(i) = b {
                    // Quoted: `-9223372036854775808::int8` would cast
                    // before negating, and overflow.
                    sql = sql.replace(&format!("${}::int8", n + 1), &format!("'{i}'::int8"));
                }
            }
            self.copy_scan(&sql, fields, cols, sink)
        } else {
            self.typed_scan(sql, binds, cols, sink)
        }
    }

    /// A scan without bound values (a whole table, or the user's filter
    /// alone), read as `COPY (SELECT …) TO STDOUT (FORMAT binary)` and parsed
    /// by hand: no per-row message decoding or row object in sqlx.
    fn copy_scan(
        &mut self,
        select: &str,
        fields: usize,
        cols: &ScanCols<'_>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| SourceError::Other("the PostgreSQL connection is closed".into()))?;
        let (rt, secrets) = (&self.rt, &self.secrets);
        let lock_timeout = self.lock_timeout;
        let db_err = |e: &sqlx::Error| {
            SourceError::query(cols.context, db_message(e, lock_timeout, secrets))
        };

        // The same SELECT as a prepared statement first, with `LIMIT 0`: it
        // fails (cleanly, as any query) where the COPY would fail to start
        // (a bad filter, a missing privilege), since sqlx's `copy_out_raw`
        // leaves a stray ReadyForQuery behind when the server refuses a
        // COPY, which would shift every later answer on the connection. And
        // a prepared statement holds exactly one statement, so a `--where`
        // cannot smuggle a second one (a `COMMIT`) into the simple query.
        let check = sqlx::query(AssertSqlSafe(format!("{select} LIMIT 0"))).persistent(false);
        if let Err(e) = rt.block_on(check.execute(&mut *conn)) {
            let err = db_err(&e);
            self.recover();
            return Err(err);
        }

        let copy = format!("COPY (\n{select}\n) TO STDOUT (FORMAT binary)");
        let malformed = |e: String| SourceError::query(cols.context, scrub(e, secrets));
        let mut parser = copy::CopyParser::new(fields);
        let mut buf: Vec<Value> = vec![Value::Null; cols.cols.len()];
        let mut on_tuple = |t: &copy::Tuple<'_>| {
            for (i, ((wire, rule), slot)) in cols.cols.iter().zip(buf.iter_mut()).enumerate() {
                decode_into(slot, t.get(i), *wire, rule).map_err(|e| cols.error(i, e, secrets))?;
            }
            sink(&buf)
        };
        // A COPY that failed to start, or failed midway (the server then
        // ends it cleanly).
        let begin_failed = std::cell::Cell::new(false);
        let db_failed = std::cell::Cell::new(false);
        let mut failed = None;
        // All on this one thread. Handing work to a second thread (raw
        // chunks; or decoded rows in
        // reused batches, leaving only hashing to the second thread) measured
        // no faster with the server on the same 2 cores (benches/server_diff,
        // 1M rows, tree build, alternating runs: 0.92 / 0.88 / 0.61 s with
        // chunks handed over, 0.91 / 0.68 / 0.70 s with decoded batches,
        // 0.92 / 0.80 / 0.63 s on one thread): the three busy threads
        // (server, reader, hasher) then share two cores, and the total work
        // is what counts.
        //
        // The whole stream is read, also after the sink stopped: the rest is
        // dropped, so the connection is ready for its next query (as sqlx
        // does for a query whose rows were not all fetched).
        let read_result = rt.block_on(async {
            let mut stream = conn.copy_out_raw(&copy).await.map_err(|e| {
                begin_failed.set(true);
                db_err(&e)
            })?;
            while let Some(chunk) = stream.try_next().await.map_err(|e| {
                db_failed.set(true);
                db_err(&e)
            })? {
                if failed.is_none() {
                    failed = parser.feed(&chunk, &mut on_tuple, malformed).err();
                }
            }
            Ok(())
        });
        let result = match failed {
            Some(e) => Err(e),
            None => read_result.and_then(|()| parser.finish().map_err(malformed)),
        };
        if begin_failed.get() {
            // The connection's protocol state is unknown: never use it again.
            self.conn = None;
        } else if db_failed.get() {
            self.recover();
        }
        result
    }

    /// A scan with bound values (a key range), read through sqlx's typed
    /// rows: COPY cannot take parameters, and values are never inlined.
    fn typed_scan(
        &mut self,
        sql: String,
        binds: Vec<Bind>,
        cols: &ScanCols<'_>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        let secrets = self.secrets.clone();
        let mut q: sqlx::query::Query<'_, Postgres, PgArguments> = sqlx::query(AssertSqlSafe(sql));
        for b in binds {
            q = match b {
                Bind::Int(i) => q.bind(i),
                Bind::Text(s) => q.bind(s),
                Bind::Bytes(v) => q.bind(v),
            };
        }
        let rt = &self.rt;
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| SourceError::Other("the PostgreSQL connection is closed".into()))?;
        let db_failed = std::cell::Cell::new(false);
        let lock_timeout = self.lock_timeout;
        let fail = |e: &sqlx::Error| {
            db_failed.set(true);
            SourceError::query(cols.context, db_message(e, lock_timeout, &secrets))
        };
        // Decoded on the reading thread, as the COPY path is: a hand-over to
        // a second thread measured no faster with the server on the same cores.
        let mut buf: Vec<Value> = Vec::with_capacity(cols.cols.len());
        let result = rt.block_on(async {
            let mut rows = q.fetch(conn);
            while let Some(row) = rows.try_next().await.map_err(|e| fail(&e))? {
                buf.clear();
                for (i, (wire, rule)) in cols.cols.iter().enumerate() {
                    let v = row
                        .try_get_raw(i)
                        .map_err(|e| e.to_string())
                        .and_then(|raw| decode_raw(raw, *wire, rule))
                        .map_err(|e| cols.error(i, e, &secrets))?;
                    buf.push(v);
                }
                sink(&buf)?;
            }
            Ok(())
        });
        if db_failed.get() {
            self.recover();
        }
        result
    }
}

/// The message of a failed statement, without secrets; a lock wait that
/// ran out (SQLSTATE 55P03) says what held the scan up and the way out.
fn db_message(e: &sqlx::Error, lock_timeout: Duration, secrets: &[String]) -> String {
    let locked = e
        .as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "55P03");
    let msg = if locked {
        format!(
            "the table is locked by another session (waited {lock_timeout:?}, the \
             lock_timeout): {e}; try again when that session's transaction ends, or wait \
             longer with ?lock_timeout=SECONDS in the URL"
        )
    } else {
        e.to_string()
    };
    scrub(msg, secrets)
}

/// Replaces every secret in a message by `***`.
fn scrub(mut s: String, secrets: &[String]) -> String {
    for p in secrets {
        if !p.is_empty() && s.contains(p.as_str()) {
            s = s.replace(p.as_str(), "***");
        }
    }
    s
}

/// Percent-decodes a URL component (`+` as a space in query values, as
/// sqlx reads them).
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The password in a URL's user info or `password` parameter, decoded.
fn url_password(url: &str) -> Option<String> {
    if let Some(p) = query_param(url, "password") {
        return Some(p);
    }
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let userinfo = authority.rsplit_once('@')?.0;
    let (_, p) = userinfo.split_once(':')?;
    Some(percent_decode(p, false))
}

/// The startup `options` string sqlx sends for this URL.
fn startup_options(url: &str) -> String {
    let mut out = std::env::var("PGOPTIONS").unwrap_or_default();
    let query = url.split_once('?').map_or("", |q| q.1);
    let query = query.split('#').next().unwrap_or(query);
    for kv in query.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let (k, v) = (percent_decode(k, true), percent_decode(v, true));
        let add = if k == "options" {
            v
        } else if let Some(name) = k.strip_prefix("options[").and_then(|r| r.strip_suffix(']')) {
            let escaped = format!("{name}={v}")
                .replace('\\', "\\\\")
                .replace(' ', "\\ ");
            format!("-c {escaped}")
        } else {
            continue;
        };
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&add);
    }
    out
}

/// The last value of a URL query parameter, decoded.
fn query_param(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k, true) == key).then(|| percent_decode(v, true))
        })
        .next_back()
}

/// The `search_path` set in a libpq `options` string (`-c search_path=a,b`,
/// `-csearch_path=a`, `--search_path=a`; backslash escapes a space).
fn search_path_from_options(options: &str) -> Option<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
                in_word = true;
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    let mut found = None;
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let setting = if w == "-c" {
            it.next()
        } else if let Some(s) = w.strip_prefix("--") {
            Some(s.to_string())
        } else {
            w.strip_prefix("-c").map(str::to_string)
        };
        if let Some((k, v)) = setting.as_deref().and_then(|s| s.split_once('=')) {
            if k.trim()
                .replace('-', "_")
                .eq_ignore_ascii_case("search_path")
            {
                found = Some(v.to_string());
            }
        }
    }
    found
}

/// The first schema of a `search_path` value, as PostgreSQL reads it:
/// `"Quoted"` keeps its case, a bare name is folded to lower case, `$user`
/// is the user name.
fn first_schema(search_path: &str, user: &str) -> Option<String> {
    let s = search_path.trim_start();
    let name = if let Some(rest) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    out.push('"');
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        s.split(',').next().unwrap_or("").trim().to_lowercase()
    };
    match name.as_str() {
        "" => None,
        "$user" => Some(user.to_string()),
        _ => Some(name),
    }
}

/// The password for a connection in a libpq password file
/// (`host:port:database:user:password`, `*` matching anything, `\` escaping
/// `:` and `\`); a socket connection matches `localhost`. Like libpq, a file
/// others can read is ignored.
fn pgpass_password(path: &Path, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
            return None;
        }
    }
    let text = std::fs::read_to_string(path).ok()?;
    let host = if host.is_empty() || host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    let port = port.to_string();
    let wanted = [host, port.as_str(), db, user];
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        field.push(n);
                    }
                }
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        if fields.len() < 4 {
            continue;
        }
        if fields.iter().zip(wanted).all(|(f, w)| f == "*" || f == w) {
            return Some(field);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use LogicalType as T;

    #[test]
    fn types_map() {
        let lt = |f: &str| logical_type(f, 'b');
        assert_eq!(lt("smallint"), Some(T::Integer));
        assert_eq!(lt("integer"), Some(T::Integer));
        assert_eq!(lt("bigint"), Some(T::Integer));
        assert_eq!(lt("real"), Some(T::Float { single: true }));
        assert_eq!(lt("double precision"), Some(T::Float { single: false }));
        assert_eq!(lt("numeric(12,2)"), Some(T::Decimal { scale: Some(2) }));
        assert_eq!(lt("numeric(5,-2)"), Some(T::Decimal { scale: Some(0) }));
        assert_eq!(lt("numeric"), Some(T::Decimal { scale: None }));
        assert_eq!(lt("text"), Some(T::Text));
        assert_eq!(lt("character varying(20)"), Some(T::Text));
        assert_eq!(lt("character varying"), Some(T::Text));
        assert_eq!(lt("character(5)"), Some(T::Text));
        assert_eq!(lt("bpchar"), Some(T::Text));
        assert_eq!(lt("bytea"), Some(T::Bytes));
        assert_eq!(lt("boolean"), Some(T::Bool));
        assert_eq!(
            lt("timestamp without time zone"),
            Some(T::TimestampNaive { precision: 6 })
        );
        assert_eq!(
            lt("timestamp(3) without time zone"),
            Some(T::TimestampNaive { precision: 3 })
        );
        assert_eq!(
            lt("timestamp with time zone"),
            Some(T::Timestamp { precision: 6 })
        );
        assert_eq!(
            lt("timestamp(0) with time zone"),
            Some(T::Timestamp { precision: 0 })
        );
        assert_eq!(lt("date"), Some(T::Date));
        assert_eq!(lt("time without time zone"), Some(T::Time { precision: 6 }));
        assert_eq!(
            lt("time(2) without time zone"),
            Some(T::Time { precision: 2 })
        );
        assert_eq!(lt("uuid"), Some(T::Uuid));
        assert_eq!(lt("json"), Some(T::Json));
        assert_eq!(lt("jsonb"), Some(T::Json));
        assert_eq!(logical_type("myschema.mood", 'e'), Some(T::Text));
        for unsupported in [
            "time with time zone",
            "interval",
            "point",
            "integer[]",
            "money",
            "inet",
            "xml",
            "tsvector",
        ] {
            assert_eq!(lt(unsupported), None, "{unsupported}");
        }
        // Arrays, whatever their element type or modifiers, are never read
        // as their element type (nor as bytes); a domain over one either.
        for array in [
            "character varying(10)[]",
            "character(3)[]",
            "numeric(10,2)[]",
            "numeric[]",
            "timestamp(3) without time zone[]",
            "text[][]",
            "myschema.mood[]",
            "bytea[]",
        ] {
            assert_eq!(lt(array), None, "{array}");
            assert_eq!(classify(array, 'b', 'A'), None, "{array}");
            assert_eq!(classify(array, 'e', 'A'), None, "{array}");
        }
        assert_eq!(classify("numeric(10,2)", 'b', 'A'), None);
        assert_eq!(
            classify("numeric(10,2)", 'b', 'N'),
            Some((T::Decimal { scale: Some(2) }, Wire::Numeric))
        );
        assert_eq!(logical_type("integer", 'c'), None);
        assert_eq!(logical_type("integer", 'd'), None);
        assert_eq!(logical_type("int4multirange", 'm'), None);
        assert_eq!(logical_type("anyelement", 'p'), None);
        assert_eq!(logical_type("int4range", 'r'), None);
    }

    #[test]
    fn search_path_from_url() {
        let schema = |url: &str| {
            search_path_from_options(&startup_options(url))
                .and_then(|sp| first_schema(&sp, "alice"))
        };
        assert_eq!(schema("postgres://u@h/db"), None);
        assert_eq!(
            schema("postgres://u@h/db?options=-c%20search_path%3Dfoo"),
            Some("foo".into())
        );
        assert_eq!(
            schema("postgres://u@h/db?options=-c search_path=Foo,public"),
            Some("foo".into())
        );
        assert_eq!(
            schema("postgres://u@h/db?options=-csearch_path%3D%22My%5C%20S%22%2Cpublic"),
            Some("My S".into())
        );
        assert_eq!(
            schema("postgres://u@h/db?sslmode=disable&options=--search_path=bar%20-c%20geqo=off"),
            Some("bar".into())
        );
        assert_eq!(
            schema("postgres://u@h/db?options=-c%20search_path%3D%24user%2Cpublic"),
            Some("alice".into())
        );
        assert_eq!(schema("postgres://u@h/db?options=-c%20geqo%3Doff"), None);
        assert_eq!(
            schema("postgres://u@h/db?options=-c%20search_path%3Da&options[search_path]=b%20c"),
            Some("b c".into())
        );
    }

    #[test]
    fn url_passwords() {
        assert_eq!(
            url_password("postgres://u:s%40cret@h/db"),
            Some("s@cret".into())
        );
        assert_eq!(url_password("postgres://u@h/db"), None);
        assert_eq!(
            url_password("postgres://h/db?password=x%2By"),
            Some("x+y".into())
        );
        assert_eq!(
            scrub("bad sekret here".into(), &["sekret".into()]),
            "bad *** here"
        );
    }

    #[test]
    fn pgpass_lines() {
        let dir = std::env::temp_dir().join(format!("driftsum-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pgpass");
        std::fs::write(
            &path,
            "# comment\n\
             otherhost:5432:*:bob:nope\n\
             127.0.0.1:5432:db:bob:pa\\:ss\\\\word\n\
             localhost:*:*:*:sockpw\n\
             *:5433:bob:bob:defaultdb\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(
            pgpass_password(&path, "127.0.0.1", 5432, "db", "bob"),
            Some("pa:ss\\word".into())
        );
        assert_eq!(
            pgpass_password(&path, "", 5432, "x", "carol"),
            Some("sockpw".into())
        );
        assert_eq!(
            pgpass_password(&path, "h", 5433, "bob", "bob"),
            Some("defaultdb".into())
        );
        assert_eq!(pgpass_password(&path, "h", 5432, "db", "bob"), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(pgpass_password(&path, "127.0.0.1", 5432, "db", "bob"), None);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn range_conditions() {
        let col = |name: &str, wire, ty| PgColumn {
            name: name.into(),
            declared: String::new(),
            wire,
            ty,
            byte_order: false,
        };
        let a = col("a", Wire::Int, T::Integer);
        let b = col("b", Wire::Text, T::Text);
        let bounds = KeyBounds {
            after: Some(vec![Value::Int(1), Value::Text("x".into())]),
            through: vec![Value::Int(5), Value::Text("y".into())],
        };
        let int = LogicalType::Integer;
        let (cond, binds) = range_condition(&[&a, &b], int, &bounds).unwrap();
        assert_eq!(
            cond,
            "(\"a\", \"b\" COLLATE \"C\") > ($1::int8, CAST($2 AS text)) AND \
             (\"a\", \"b\" COLLATE \"C\") <= ($3::int8, CAST($4 AS text))"
        );
        assert_eq!(binds.len(), 4);
        // A value that cannot be bound means no range (a full, correct scan).
        let odd = KeyBounds {
            after: None,
            through: vec![Value::Int(i128::MAX), Value::Text("y".into())],
        };
        assert!(range_condition(&[&a, &b], int, &odd).is_none());
        // A leading column that can be bound bounds the range alone.
        let nul = KeyBounds {
            after: None,
            through: vec![Value::Int(1), Value::Text("a\0b".into())],
        };
        let (cond, _) = range_condition(&[&a, &b], int, &nul).unwrap();
        assert_eq!(cond, "(\"a\") <= ($1::int8)");
        // A text column in a byte-order collation is compared as itself.
        let c = PgColumn {
            byte_order: true,
            ..col("c", Wire::Text, T::Text)
        };
        let (cond, _) = range_condition(&[&c], T::Text, &odd_text()).unwrap();
        assert_eq!(cond, "(\"c\") <= (CAST($1 AS text))");
    }

    fn odd_text() -> KeyBounds {
        KeyBounds {
            after: None,
            through: vec![Value::Text("y".into())],
        }
    }

    #[test]
    fn time_ranges_cover_their_seconds_and_every_far_year() {
        let ts = PgColumn {
            name: "t".into(),
            declared: String::new(),
            wire: Wire::Timestamp,
            ty: T::Timestamp { precision: 6 },
            byte_order: false,
        };
        let text = |s: &str| vec![Value::Text(s.into())];
        let b = KeyBounds {
            after: Some(text("2024-01-02T03:04:05.5Z")),
            through: text("2024-01-02T03:04:07Z"),
        };
        let (cond, binds) = range_condition(&[&ts], ts.ty, &b).unwrap();
        assert_eq!(
            cond,
            "((\"t\" >= CAST($1 AS timestamptz) AND \"t\" < CAST($2 AS timestamptz) + \
             interval '1 second') OR \"t\" < '1000-01-01+00'::timestamptz OR \
             \"t\" >= '10000-01-01+00'::timestamptz OR \"t\" IS NULL)"
        );
        let texts: Vec<&str> = binds
            .iter()
            .filter_map(|b| match b {
                Bind::Text(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["2024-01-02 03:04:05+00", "2024-01-02 03:04:07+00"]);
        // A bound of a far year (or an infinity) leaves its side open.
        let far = KeyBounds {
            after: Some(text("10000-01-01T00:00:00Z")),
            through: text("<invalid: infinity>"),
        };
        assert!(range_condition(&[&ts], ts.ty, &far).is_none());
        // Read as a date, a timestamp's key text is not a timestamp's.
        assert!(range_condition(&[&ts], T::Date, &b).is_none());
    }
}
