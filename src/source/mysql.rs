//! The MySQL / MariaDB connector (sqlx): schema discovery from
//! `information_schema`, key-ordered scans in one consistent snapshot, range
//! scans by key.
//!
//! The session reads in UTC (`time_zone = '+00:00'`) and utf8mb4, inside one
//! `REPEATABLE READ` transaction started `WITH CONSISTENT SNAPSHOT, READ ONLY`
//! and held for the connection's life, so the scan and the later range reads
//! see the same rows. Lock waits are bounded by the URL's `lock_timeout`
//! (module `options`), so a locked table is an error, not a hang. Nothing here
//! ever writes.
//!
//! Values are read the way the binary protocol delivers them without extra
//! sqlx features: integers, floats and byte strings natively; decimals, JSON
//! and enums as the text the server sends (JSON never through a float);
//! dates and date-times as their binary fields (module `datetime`, which keeps
//! zero and impossible days); TIME and UUID cast to text in SQL.
//! Each is then coerced into the logical type of the scan's [`ColumnRule`]
//! (which comes from the source schema, so this side may be a replica too).
//! Text keys are ordered and bounded as utf8mb4 bytes (`CAST(… AS BINARY)`),
//! never by a collation: `utf8mb4_bin` is PAD SPACE, so it sorts `'a\t'`
//! before `'a'` where byte order does not.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use driftsum_core::coerce::ColumnRule;
use driftsum_core::{LogicalType, Value};
use futures_util::TryStreamExt;
use sqlx::mysql::{MySql, MySqlArguments, MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};

mod datetime;

use super::server::{self, CONNECT_TIMEOUT};
use super::url::redact;
use super::{Column, KeyBounds, RowSink, ScanSpec, Source, SourceError, TableSchema};

/// MySQL's error number for a missing table.
const ER_NO_SUCH_TABLE: u16 = 1146;

/// MySQL's error number for a lock wait that timed out (a table lock, a
/// metadata lock or a row lock).
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;

/// A read-only MySQL connection, inside one consistent-snapshot transaction.
pub struct MySqlSource {
    // Declared before `rt`: the connection must go before its runtime.
    conn: Option<MySqlConnection>,
    rt: tokio::runtime::Runtime,
    /// The URL without credentials.
    location: String,
    /// Column layouts already read (the snapshot does not change them).
    tables: HashMap<String, Arc<TableInfo>>,
    /// How long a read waits for another session's lock.
    lock_timeout: Duration,
}

/// How a column's values come over the wire, and so how they are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    /// Signed integers (and YEAR), as `i64`.
    Int,
    /// Unsigned integers, as `u64`.
    UInt,
    /// FLOAT (4 bytes) and DOUBLE (8 bytes), as `f64`.
    Float,
    /// Strings the server sends as text (chars, decimals, enums, JSON).
    Text,
    /// Byte strings.
    Bytes,
    /// DATETIME and TIMESTAMP (which the UTC session reads in UTC), in the
    /// binary protocol's date-time layout, parsed by hand; `fsp` is the
    /// declared number of fractional digits.
    DateTime { fsp: u8 },
    /// DATE, in the binary protocol's layout.
    Date,
    /// TIME and UUIDs, cast to text in SQL.
    Cast,
    /// A type driftsum cannot read: an error if a scan asks for it.
    Unsupported,
}

/// One column as this connector reads it.
#[derive(Clone, Debug)]
struct ColInfo {
    name: String,
    declared: String,
    /// `None` when the type is not supported.
    ty: Option<LogicalType>,
    wire: Wire,
    /// A text column whose collation orders by code point with no padding,
    /// which is UTF-8 byte order: its index can serve key order as is.
    code_point_order: bool,
}

/// Collations that compare UTF-8 text by code point, trailing spaces
/// included (NO PAD): their order is UTF-8 byte order.
const CODE_POINT_COLLATIONS: &[&str] = &[
    "utf8mb4_nopad_bin",
    "utf8mb3_nopad_bin",
    "utf8_nopad_bin",
    "utf8mb4_0900_bin",
];

#[derive(Debug)]
struct TableInfo {
    columns: Vec<ColInfo>,
    primary_key: Vec<String>,
}

/// Backtick-quotes a MySQL identifier, so no name can become SQL.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The type name, its numeric arguments, and whether it is unsigned, of a
/// `COLUMN_TYPE` such as `int(10) unsigned` or `decimal(12,2)`.
fn parse_column_type(column_type: &str) -> (String, Vec<u32>, bool) {
    let t = column_type.trim().to_ascii_lowercase();
    let name_end = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    let name = t[..name_end].to_string();
    let rest = &t[name_end..];
    let mut args = Vec::new();
    let mut tail = rest;
    if let Some(inner) = rest.trim_start().strip_prefix('(') {
        if let Some(close) = inner.find(')') {
            args = inner[..close]
                .split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect();
            tail = &inner[close + 1..];
        }
    }
    let unsigned = tail.split_whitespace().any(|w| w == "unsigned");
    (name, args, unsigned)
}

/// The logical type of a MySQL / MariaDB `COLUMN_TYPE`; `None` when driftsum
/// does not support it (bit, set, geometry, …).
///
/// MariaDB reports a `json` column as `longtext` (with a `json_valid` check);
/// that is told apart in schema discovery, not here.
pub fn logical_type(column_type: &str) -> Option<LogicalType> {
    use LogicalType as T;
    let (name, args, unsigned) = parse_column_type(column_type);
    let fsp = || args.first().map_or(0, |&p| p.min(6) as u8);
    Some(match name.as_str() {
        "bool" | "boolean" => T::Bool,
        "tinyint" if args.first() == Some(&1) && !unsigned => T::Bool,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" | "int1"
        | "int2" | "int3" | "int4" | "int8" | "middleint" => T::Integer,
        "decimal" | "numeric" | "dec" | "fixed" => T::Decimal {
            // MySQL's default is decimal(10,0).
            scale: Some(args.get(1).map_or(0, |&s| s.min(255) as u16)),
        },
        "float" | "float4" => T::Float { single: true },
        "double" | "real" | "float8" => T::Float { single: false },
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "nchar"
        | "nvarchar" | "long" => T::Text,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => T::Bytes,
        "datetime" => T::TimestampNaive { precision: fsp() },
        "timestamp" => T::Timestamp { precision: fsp() },
        "date" => T::Date,
        "time" => T::Time { precision: fsp() },
        "json" => T::Json,
        "uuid" => T::Uuid,
        _ => return None,
    })
}

/// How values of a column come over the wire.
fn wire(column_type: &str, ty: Option<LogicalType>) -> Wire {
    use LogicalType as T;
    let (_, _, unsigned) = parse_column_type(column_type);
    match ty {
        None => Wire::Unsupported,
        Some(T::Integer | T::Bool) if unsigned => Wire::UInt,
        Some(T::Integer | T::Bool) => Wire::Int,
        Some(T::Float { .. }) => Wire::Float,
        Some(T::Decimal { .. } | T::Text | T::Json) => Wire::Text,
        Some(T::Bytes) => Wire::Bytes,
        Some(T::Timestamp { precision } | T::TimestampNaive { precision }) => {
            Wire::DateTime { fsp: precision }
        }
        Some(T::Date) => Wire::Date,
        Some(T::Time { .. } | T::Uuid) => Wire::Cast,
        Some(T::Dynamic) => Wire::Unsupported,
    }
}

/// Whether a CHECK clause is MariaDB's `json_valid(`col`)` for `column`.
fn is_json_check(clause: &str, column: &str) -> bool {
    let c: String = clause.chars().filter(|c| !c.is_whitespace()).collect();
    let want = format!("json_valid({})", quote_ident(column));
    c.eq_ignore_ascii_case(&want)
}

/// The columns a `SHOW CREATE TABLE` text declares with a
/// `CHECK (json_valid(`col`))` of their own (MariaDB's json).
fn json_columns_in_ddl(ddl: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in ddl.lines() {
        let l = line.trim();
        // A column line starts with its quoted name.
        let Some(rest) = l.strip_prefix('`') else {
            continue;
        };
        let mut name = String::new();
        let mut chars = rest.chars().peekable();
        let mut closed = false;
        while let Some(c) = chars.next() {
            if c == '`' {
                if chars.peek() == Some(&'`') {
                    chars.next();
                } else {
                    closed = true;
                    break;
                }
            }
            name.push(c);
        }
        let check = format!("check (json_valid({}))", quote_ident(&name)).to_ascii_lowercase();
        if closed && l.to_ascii_lowercase().contains(&check) {
            out.push(name);
        }
    }
    out
}

/// The passwords a URL carries: in its user info, or as `?password=`.
fn passwords(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if let Some((_, pw)) = userinfo.split_once(':') {
            out.push(pw.to_string());
        }
    }
    if let Some((_, query)) = tail.split_once('?') {
        for kv in query.split('&') {
            if let Some((k, v)) = kv.split_once('=') {
                if k.eq_ignore_ascii_case("password") {
                    out.push(v.to_string());
                }
            }
        }
    }
    let decoded: Vec<String> = out.iter().map(|p| percent_decode(p)).collect();
    out.extend(decoded);
    out.retain(|p| !p.is_empty());
    // Longest first, so a password containing another is replaced whole.
    out.sort_by_key(|p| std::cmp::Reverse(p.len()));
    out
}

/// Replaces the URL's password, if any, wherever it shows in `message`.
fn scrub(message: String, url: &str) -> String {
    passwords(url)
        .iter()
        .fold(message, |m, pw| m.replace(pw.as_str(), "***"))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The MySQL error number of a database error, if it is one.
fn error_number(e: &sqlx::Error) -> Option<u16> {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .map(|m| m.number())
}

/// A query's error for a message: a lock wait that timed out names the lock
/// and the way out, since the table is only busy, not broken.
fn query_error(context: &str, e: sqlx::Error, lock_timeout: Duration) -> SourceError {
    if error_number(&e) == Some(ER_LOCK_WAIT_TIMEOUT) {
        let secs = lock_timeout.as_secs_f64().ceil().max(1.0);
        return SourceError::query(
            context,
            format!(
                "another session holds a lock on the table (LOCK TABLES … WRITE, or a schema \
                 change such as ALTER TABLE) and did not release it within lock_timeout = \
                 {secs} s (server error 1205, lock wait timeout); compare the table again once \
                 the lock is released, or wait longer with ?lock_timeout=SECONDS in the URL"
            ),
        );
    }
    SourceError::query(context, e)
}

/// Text of column `i` of a metadata row.
fn text_at(row: &MySqlRow, i: usize) -> Result<Option<String>, sqlx::Error> {
    let b: Option<&[u8]> = row.try_get_unchecked(i)?;
    Ok(b.map(|b| String::from_utf8_lossy(b).into_owned()))
}

/// A key bound value, bound as a parameter.
enum Param {
    I(i64),
    U(u64),
    B(Vec<u8>),
}

/// The parameter comparing `v` with a key column read as `col`, when SQL
/// comparison on it follows key-byte order; `None` when it cannot.
fn bound_param(col: &ColInfo, v: &Value) -> Option<Param> {
    match (col.ty?, v) {
        (LogicalType::Integer, Value::Int(i)) if col.wire != Wire::Unsupported => {
            if let Ok(i) = i64::try_from(*i) {
                Some(Param::I(i))
            } else {
                u64::try_from(*i).ok().map(Param::U)
            }
        }
        (LogicalType::Text, Value::Text(s)) => Some(Param::B(s.as_bytes().to_vec())),
        (LogicalType::Bytes, Value::Bytes(b)) => Some(Param::B(b.clone())),
        (LogicalType::Uuid, Value::Uuid(u)) => {
            Some(Param::B(driftsum_core::value::format_uuid(u).into_bytes()))
        }
        _ => None,
    }
}

/// The condition for a leading DATE, DATETIME or TIMESTAMP key column `c`
/// read as `lead`: its values from the first bound's date (or second)
/// through the last one's, plus zero dates, years before 1000 and NULL,
/// whose key text has another shape (see [`server::time_prefix`]); each an
/// index range. `None` when neither bound has such a date.
fn time_condition(c: &ColInfo, lead: LogicalType, b: &KeyBounds) -> Option<(String, Vec<Param>)> {
    use LogicalType as T;
    let kind = match (c.wire, lead) {
        (Wire::Date, T::Date) => server::TimeKey::Date,
        (Wire::DateTime { .. }, T::Timestamp { .. } | T::TimestampNaive { .. }) => {
            server::TimeKey::Second
        }
        _ => return None,
    };
    let (lo, hi) = server::time_bounds(b, kind)?;
    let col = quote_ident(&c.name);
    let mut params = Vec::new();
    let mut inside = Vec::new();
    if let Some(lo) = lo {
        params.push(Param::B(lo.into_bytes()));
        inside.push(format!("{col} >= ?"));
    }
    if let Some(hi) = hi {
        params.push(Param::B(hi.into_bytes()));
        inside.push(match kind {
            server::TimeKey::Date => format!("{col} <= ?"),
            server::TimeKey::Second => format!("{col} < ? + INTERVAL 1 SECOND"),
        });
    }
    // The server holds no year past 9999.
    let first = server::TIME_REGULAR.0;
    Some((
        format!(
            "(({}) OR {col} < '{first}' OR {col} IS NULL)",
            inside.join(" AND ")
        ),
        params,
    ))
}

/// The expression a key column is ordered and bounded by: its value, or for
/// text its utf8mb4 bytes, so the order is key-byte order whatever the
/// collation (and trailing spaces count). That costs a sort on the server;
/// a column whose collation already orders by code point is left as is, so
/// its index serves the order.
fn order_expr(col: &ColInfo) -> String {
    let q = quote_ident(&col.name);
    match col.ty {
        Some(LogicalType::Text) if col.code_point_order => q,
        Some(LogicalType::Text) => format!("CAST(CONVERT({q} USING utf8mb4) AS BINARY)"),
        Some(LogicalType::Uuid) => format!("CAST(CAST({q} AS CHAR) AS BINARY)"),
        _ => q,
    }
}

/// The expression a column is selected by.
fn select_expr(col: &ColInfo) -> String {
    let q = quote_ident(&col.name);
    match col.wire {
        Wire::Cast => format!("CAST({q} AS CHAR)"),
        _ => q,
    }
}

/// Decodes column `i` of `row`, read as `wire`, into `rule`'s logical type.
fn decode(row: &MySqlRow, i: usize, wire: Wire, rule: &ColumnRule) -> Result<Value, sqlx::Error> {
    Ok(match wire {
        Wire::Int => match row.try_get_unchecked::<Option<i64>, _>(i)? {
            None => Value::Null,
            Some(v) => rule.from_int(v),
        },
        Wire::UInt => match row.try_get_unchecked::<Option<u64>, _>(i)? {
            None => Value::Null,
            Some(v) => match i64::try_from(v) {
                Ok(v) => rule.from_int(v),
                Err(_) => match rule.ty {
                    LogicalType::Integer | LogicalType::Dynamic => {
                        rule.finish(Value::Int(v as i128))
                    }
                    _ => rule.from_text(&v.to_string()),
                },
            },
        },
        Wire::Float => match row.try_get_unchecked::<Option<f64>, _>(i)? {
            None => Value::Null,
            Some(v) => rule.from_real(v),
        },
        Wire::Bytes => match row.try_get_unchecked::<Option<&[u8]>, _>(i)? {
            None => Value::Null,
            Some(b) => rule.from_blob(b),
        },
        Wire::DateTime { fsp } => match datetime_bytes(row, i)? {
            None => Value::Null,
            Some(b) => datetime::decode(b, false, fsp, rule),
        },
        Wire::Date => match datetime_bytes(row, i)? {
            None => Value::Null,
            Some(b) => datetime::decode(b, true, 0, rule),
        },
        Wire::Text | Wire::Cast => match row.try_get_unchecked::<Option<&[u8]>, _>(i)? {
            None => Value::Null,
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) => rule.from_text(s),
                Err(_) => rule.from_blob(b),
            },
        },
        // Refused before the query runs.
        Wire::Unsupported => Value::Invalid("unsupported type".into()),
    })
}

/// The binary bytes of a DATE, DATETIME or TIMESTAMP, `None` for NULL.
///
/// sqlx calls a zero date (`0000-00-00`, sent with length 0) NULL when asked
/// for an `Option`, which would make it equal a replica's NULL. Asked for
/// the bytes themselves it hands them over, and fails only on a real NULL.
fn datetime_bytes(row: &MySqlRow, i: usize) -> Result<Option<&[u8]>, sqlx::Error> {
    match row.try_get_unchecked::<&[u8], _>(i) {
        Ok(b) => Ok(Some(b)),
        Err(sqlx::Error::ColumnDecode { source, .. })
            if source.is::<sqlx::error::UnexpectedNullError>() =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// [`decode`] into a slot of the row buffer, reusing a text value's
/// allocation from the previous row (a fresh `String` per text value showed
/// in profiles).
fn decode_into(
    slot: &mut Value,
    row: &MySqlRow,
    i: usize,
    wire: Wire,
    rule: &ColumnRule,
) -> Result<(), sqlx::Error> {
    if let (Wire::Text, LogicalType::Text, Value::Text(s)) = (wire, rule.ty, &mut *slot) {
        if let Some(Ok(t)) = row
            .try_get_unchecked::<Option<&[u8]>, _>(i)?
            .map(std::str::from_utf8)
        {
            s.clear();
            s.push_str(t);
            return Ok(());
        }
    }
    *slot = decode(row, i, wire, rule)?;
    Ok(())
}

impl MySqlSource {
    /// Connects (within [`CONNECT_TIMEOUT`]) and starts the read-only
    /// consistent-snapshot transaction.
    pub fn connect(url: &str) -> Result<MySqlSource, SourceError> {
        let location = redact(url);
        let open_err = |message: String| SourceError::Open {
            location: location.clone(),
            message: super::tls::explain(scrub(message, url)),
        };
        let opts = MySqlConnectOptions::from_str(url)
            .map_err(|e| open_err(format!("not a valid MySQL URL: {e}")))?;
        let opts = super::tls::mysql(url, &location, opts)?;
        let lock_timeout = super::url::lock_timeout(url).map_err(|e| match e {
            SourceError::BadUrl(m) => SourceError::BadUrl(format!("{location}: {m}")),
            e => e,
        })?;
        if opts.get_database().is_none_or(str::is_empty) {
            return Err(SourceError::BadUrl(format!(
                "{location} names no database; write mysql://USER@HOST:PORT/DATABASE"
            )));
        }
        // `||` keeps the server's meaning in a user's --where filter.
        let opts = opts
            .pipes_as_concat(false)
            .timezone(Some("+00:00".to_string()))
            .charset("utf8mb4");
        let rt = server::runtime()?;
        let what = format!("connecting to {location}");
        let conn = server::block_on_timeout(&rt, CONNECT_TIMEOUT, &what, async {
            let mut conn = opts.connect().await.map_err(|e| open_err(e.to_string()))?;
            // Both lock waits are bounded: a table lock or a metadata lock
            // (`lock_wait_timeout`, a day by default) and a row lock
            // (`innodb_lock_wait_timeout`); a whole number of seconds, at
            // least one (0 is not "do not wait" here).
            let secs = lock_timeout.as_secs_f64().ceil().max(1.0) as u64;
            for sql in [
                "SET time_zone = '+00:00'".to_string(),
                "SET NAMES utf8mb4".to_string(),
                format!("SET SESSION lock_wait_timeout = {secs}"),
                format!("SET SESSION innodb_lock_wait_timeout = {secs}"),
                "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ".to_string(),
                "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY".to_string(),
            ] {
                sqlx::raw_sql(AssertSqlSafe(sql.as_str()))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| open_err(format!("{sql}: {e}")))?;
            }
            Ok(conn)
        })?;
        Ok(MySqlSource {
            conn: Some(conn),
            rt,
            location,
            tables: HashMap::new(),
            lock_timeout,
        })
    }

    fn conn_and_rt(
        &mut self,
    ) -> Result<(&mut MySqlConnection, &tokio::runtime::Runtime), SourceError> {
        match self.conn.as_mut() {
            Some(c) => Ok((c, &self.rt)),
            None => Err(SourceError::Other(format!(
                "{}: the connection is closed",
                self.location
            ))),
        }
    }

    /// Runs a metadata query with string parameters, collecting text columns.
    fn meta(
        &mut self,
        context: &str,
        sql: &'static str,
        params: &[&str],
        width: usize,
    ) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
        let (conn, rt) = match self.conn_and_rt() {
            Ok(x) => x,
            Err(e) => return Err(sqlx::Error::Protocol(format!("{context}: {e}"))),
        };
        let mut q = sqlx::query::<MySql>(sql);
        for p in params {
            q = q.bind(p.to_string());
        }
        rt.block_on(async {
            let rows = q.fetch_all(conn).await?;
            rows.iter()
                .map(|r| (0..width).map(|i| text_at(r, i)).collect())
                .collect()
        })
    }

    /// Reads a table's columns and key (cached: the snapshot keeps them).
    fn table_info(&mut self, table: &str) -> Result<Arc<TableInfo>, SourceError> {
        if let Some(t) = self.tables.get(table) {
            return Ok(Arc::clone(t));
        }
        let context = format!("reading the schema of table {table:?} in {}", self.location);
        let lock_timeout = self.lock_timeout;
        let qerr = |e: sqlx::Error| query_error(&context, e, lock_timeout);
        let cols = self
            .meta(
                &context,
                "SELECT COLUMN_NAME, COLUMN_TYPE, COLLATION_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                &[table],
                3,
            )
            .map_err(qerr)?;
        if cols.is_empty() {
            return Err(self.missing_table(table, &context));
        }
        let mut columns: Vec<ColInfo> = cols
            .into_iter()
            .map(|r| {
                let mut r = r.into_iter();
                let name = r.next().flatten().unwrap_or_default();
                let declared = r.next().flatten().unwrap_or_default();
                let collation = r.next().flatten().unwrap_or_default();
                let ty = logical_type(&declared);
                ColInfo {
                    wire: wire(&declared, ty),
                    code_point_order: CODE_POINT_COLLATIONS
                        .contains(&collation.to_ascii_lowercase().as_str()),
                    name,
                    declared,
                    ty,
                }
            })
            .collect();
        // MariaDB's json is longtext with a json_valid check on the column.
        if columns
            .iter()
            .any(|c| c.declared.eq_ignore_ascii_case("longtext"))
        {
            let json = self.json_columns(table, &context);
            for c in columns.iter_mut().filter(|c| json.contains(&c.name)) {
                c.ty = Some(LogicalType::Json);
            }
        }
        let pk = self
            .meta(
                &context,
                "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
                 AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
                &[table],
                1,
            )
            .map_err(qerr)?;
        let info = Arc::new(TableInfo {
            columns,
            primary_key: pk
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .collect(),
        });
        self.tables.insert(table.to_string(), Arc::clone(&info));
        Ok(info)
    }

    /// The columns of `table` with MariaDB's `json_valid` check.
    ///
    /// `information_schema.CHECK_CONSTRAINTS` shows checks only to users with
    /// more than SELECT on the table, so when it shows none the table's own
    /// `SHOW CREATE TABLE` is read. Either failing (MySQL's view has no
    /// TABLE_NAME, and MySQL has a real json type) leaves the columns text.
    fn json_columns(&mut self, table: &str, context: &str) -> Vec<String> {
        let checks = self
            .meta(
                context,
                "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                 WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                &[table],
                2,
            )
            .unwrap_or_default();
        if !checks.is_empty() {
            return checks
                .into_iter()
                .filter_map(|r| match r.as_slice() {
                    [Some(name), Some(clause)] if is_json_check(clause, name) => Some(name.clone()),
                    _ => None,
                })
                .collect();
        }
        let Ok((conn, rt)) = self.conn_and_rt() else {
            return Vec::new();
        };
        let sql = format!("SHOW CREATE TABLE {}", quote_ident(table));
        let ddl = rt.block_on(async {
            let row = sqlx::raw_sql(AssertSqlSafe(sql))
                .fetch_optional(conn)
                .await?;
            match row {
                Some(r) => text_at(&r, 1),
                None => Ok(None),
            }
        });
        match ddl {
            Ok(Some(ddl)) => json_columns_in_ddl(&ddl),
            _ => Vec::new(),
        }
    }

    /// Why `information_schema` shows no columns: the table does not exist,
    /// or this user may not read it (it then hides the table); asking the
    /// table itself tells which.
    fn missing_table(&mut self, table: &str, context: &str) -> SourceError {
        let no_table = SourceError::NoTable {
            table: table.to_string(),
            location: self.location.clone(),
        };
        let Ok((conn, rt)) = self.conn_and_rt() else {
            return no_table;
        };
        let sql = format!("SELECT * FROM {} LIMIT 0", quote_ident(table));
        let r = rt.block_on(async { sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await });
        match r {
            Err(e) if error_number(&e) != Some(ER_NO_SUCH_TABLE) => {
                query_error(context, e, self.lock_timeout)
            }
            _ => no_table,
        }
    }
}

impl Drop for MySqlSource {
    fn drop(&mut self) {
        // Say goodbye (ending the transaction), unless called from inside
        // another runtime, where blocking is not allowed.
        if let Some(conn) = self.conn.take() {
            if tokio::runtime::Handle::try_current().is_err() {
                let _ = self.rt.block_on(async {
                    tokio::time::timeout(std::time::Duration::from_secs(2), conn.close()).await
                });
            }
        }
    }
}

impl Source for MySqlSource {
    fn describe(&self) -> String {
        self.location.clone()
    }

    fn tables(&mut self) -> Result<Vec<String>, SourceError> {
        let context = format!("listing tables in {}", self.location);
        let rows = self
            .meta(
                &context,
                "SELECT TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'",
                &[],
                1,
            )
            .map_err(|e| SourceError::query(&context, e))?;
        let mut names: Vec<String> = rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        names.sort();
        Ok(names)
    }

    fn schema(&mut self, table: &str) -> Result<TableSchema, SourceError> {
        let info = self.table_info(table)?;
        Ok(TableSchema {
            name: table.to_string(),
            columns: info
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    declared: c.declared.clone(),
                    // An unsupported column can still be left out of a
                    // comparison; scanning it is an error.
                    ty: c.ty.unwrap_or(LogicalType::Dynamic),
                    trailing_spaces: driftsum_core::coerce::TrailingSpaces::Significant,
                })
                .collect(),
            primary_key: info.primary_key.clone(),
        })
    }

    fn scan(
        &mut self,
        spec: &ScanSpec,
        bounds: Option<&KeyBounds>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        let info = self.table_info(&spec.table)?;
        let find = |name: &str| -> Result<&ColInfo, SourceError> {
            let c = info
                .columns
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| SourceError::NoColumn {
                    table: spec.table.clone(),
                    column: name.to_string(),
                })?;
            if c.wire == Wire::Unsupported {
                return Err(SourceError::UnsupportedType {
                    table: spec.table.clone(),
                    column: c.name.clone(),
                    declared: c.declared.clone(),
                });
            }
            Ok(c)
        };
        let keys: Vec<&ColInfo> = spec
            .key
            .iter()
            .map(|k| find(&k.name))
            .collect::<Result<_, _>>()?;
        let cols: Vec<&ColInfo> = spec
            .columns()
            .map(|c| find(&c.name))
            .collect::<Result<_, _>>()?;
        let rules: Vec<(Wire, ColumnRule)> = cols
            .iter()
            .zip(spec.columns())
            .map(|(c, s)| (c.wire, s.rule))
            .collect();

        let key_exprs: Vec<String> = keys.iter().map(|c| order_expr(c)).collect();
        let tuple = format!("({})", key_exprs.join(", "));
        let marks = |n: usize| format!("({})", vec!["?"; n].join(", "));
        let mut conds = Vec::new();
        if let Some(f) = &spec.filter {
            conds.push(format!("({f})"));
        }
        let mut params: Vec<Param> = Vec::new();
        if let Some(b) = bounds {
            let bind = |vals: &[Value]| -> Option<Vec<Param>> {
                if vals.len() != keys.len() {
                    return None;
                }
                keys.iter()
                    .zip(vals)
                    .map(|(c, v)| bound_param(c, v))
                    .collect()
            };
            let after = match &b.after {
                Some(a) => bind(a).map(Some),
                None => Some(None),
            };
            // A bound that cannot be expressed is left out: the caller
            // filters by key, so reading more rows is fine.
            if let (Some(after), Some(through)) = (after, bind(&b.through)) {
                if let Some(after) = after {
                    conds.push(format!("{tuple} > {}", marks(after.len())));
                    params.extend(after);
                }
                conds.push(format!("{tuple} <= {}", marks(through.len())));
                params.extend(through);
            } else if let (Some(c), Some(k)) = (keys.first(), spec.key.first()) {
                if let Some((cond, p)) = time_condition(c, k.rule.ty, b) {
                    conds.push(cond);
                    params.extend(p);
                }
            }
        }
        let mut sql = format!(
            "SELECT {} FROM {}",
            cols.iter()
                .map(|c| select_expr(c))
                .collect::<Vec<_>>()
                .join(", "),
            quote_ident(&spec.table)
        );
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        if !key_exprs.is_empty() {
            sql.push_str(" ORDER BY ");
            sql.push_str(&key_exprs.join(", "));
        }

        let context = format!("reading table {:?} in {}", spec.table, self.location);
        let lock_timeout = self.lock_timeout;
        let (conn, rt) = self.conn_and_rt()?;
        let mut q: sqlx::query::Query<'_, MySql, MySqlArguments> = sqlx::query(AssertSqlSafe(sql));
        for p in params {
            q = match p {
                Param::I(i) => q.bind(i),
                Param::U(u) => q.bind(u),
                Param::B(b) => q.bind(b),
            };
        }
        // A date-time key column: rows put in key-byte order (see
        // `server::KeyOrder`), as its index gives them in time order.
        let mut order = keys
            .iter()
            .zip(&spec.key)
            .position(|(c, k)| {
                matches!(c.wire, Wire::DateTime { .. })
                    && matches!(
                        k.rule.ty,
                        LogicalType::Timestamp { .. } | LogicalType::TimestampNaive { .. }
                    )
            })
            .map(|ts| server::KeyOrder::new(ts, keys.len()));
        // Decoded on the reading thread: handing rows to a second thread
        // measured slower here (the server shares the machine's two cores).
        let mut buf: Vec<Value> = vec![Value::Null; rules.len()];
        rt.block_on(async {
            let mut rows = q.fetch(conn);
            while let Some(row) = rows
                .try_next()
                .await
                .map_err(|e| query_error(&context, e, lock_timeout))?
            {
                for (i, ((wire, rule), slot)) in rules.iter().zip(buf.iter_mut()).enumerate() {
                    decode_into(slot, &row, i, *wire, rule).map_err(|e| {
                        SourceError::query(format!("{context}, column {:?}", cols[i].name), e)
                    })?;
                }
                match order.as_mut() {
                    Some(o) => o.push(&buf, sink)?,
                    None => sink(&buf)?,
                }
            }
            match order.as_mut() {
                Some(o) => o.flush(sink),
                None => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_types_map() {
        use LogicalType as T;
        let m = logical_type;
        assert_eq!(m("tinyint(1)"), Some(T::Bool));
        assert_eq!(m("bool"), Some(T::Bool));
        assert_eq!(m("BOOLEAN"), Some(T::Bool));
        assert_eq!(m("tinyint(4)"), Some(T::Integer));
        assert_eq!(m("tinyint(1) unsigned"), Some(T::Integer));
        assert_eq!(m("tinyint"), Some(T::Integer));
        assert_eq!(m("smallint(6)"), Some(T::Integer));
        assert_eq!(m("mediumint(8) unsigned"), Some(T::Integer));
        assert_eq!(m("int(10) unsigned"), Some(T::Integer));
        assert_eq!(m("int(11)"), Some(T::Integer));
        assert_eq!(m("integer"), Some(T::Integer));
        assert_eq!(m("bigint(20)"), Some(T::Integer));
        assert_eq!(m("bigint(20) unsigned zerofill"), Some(T::Integer));
        assert_eq!(m("year(4)"), Some(T::Integer));
        assert_eq!(m("decimal(12,2)"), Some(T::Decimal { scale: Some(2) }));
        assert_eq!(
            m("decimal(12,2) unsigned"),
            Some(T::Decimal { scale: Some(2) })
        );
        assert_eq!(m("numeric(5)"), Some(T::Decimal { scale: Some(0) }));
        assert_eq!(m("decimal"), Some(T::Decimal { scale: Some(0) }));
        assert_eq!(m("float"), Some(T::Float { single: true }));
        assert_eq!(m("float(7,4)"), Some(T::Float { single: true }));
        assert_eq!(m("double"), Some(T::Float { single: false }));
        assert_eq!(m("double(10,2)"), Some(T::Float { single: false }));
        assert_eq!(m("real"), Some(T::Float { single: false }));
        for t in [
            "char(3)",
            "varchar(255)",
            "tinytext",
            "text",
            "mediumtext",
            "longtext",
            "enum('a','b')",
        ] {
            assert_eq!(m(t), Some(T::Text), "{t}");
        }
        for t in [
            "binary(16)",
            "varbinary(10)",
            "tinyblob",
            "blob",
            "mediumblob",
            "longblob",
        ] {
            assert_eq!(m(t), Some(T::Bytes), "{t}");
        }
        assert_eq!(m("datetime"), Some(T::TimestampNaive { precision: 0 }));
        assert_eq!(m("datetime(6)"), Some(T::TimestampNaive { precision: 6 }));
        assert_eq!(m("timestamp"), Some(T::Timestamp { precision: 0 }));
        assert_eq!(m("timestamp(3)"), Some(T::Timestamp { precision: 3 }));
        assert_eq!(m("date"), Some(T::Date));
        assert_eq!(m("time"), Some(T::Time { precision: 0 }));
        assert_eq!(m("time(6)"), Some(T::Time { precision: 6 }));
        assert_eq!(m("json"), Some(T::Json));
        assert_eq!(m("uuid"), Some(T::Uuid));
        for t in [
            "bit(3)",
            "set('a','b')",
            "geometry",
            "point",
            "inet6",
            "vector(3)",
            "",
        ] {
            assert_eq!(m(t), None, "{t}");
        }
    }

    #[test]
    fn wires() {
        assert_eq!(
            wire("int(10) unsigned", logical_type("int(10) unsigned")),
            Wire::UInt
        );
        assert_eq!(wire("bigint(20)", logical_type("bigint(20)")), Wire::Int);
        assert_eq!(
            wire("timestamp(6)", logical_type("timestamp(6)")),
            Wire::DateTime { fsp: 6 }
        );
        assert_eq!(
            wire("datetime", logical_type("datetime")),
            Wire::DateTime { fsp: 0 }
        );
        assert_eq!(wire("bit(1)", logical_type("bit(1)")), Wire::Unsupported);
    }

    #[test]
    fn identifiers_and_checks() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert!(is_json_check("json_valid(`j`)", "j"));
        assert!(is_json_check("JSON_VALID( `j` )", "j"));
        assert!(!is_json_check("json_valid(`k`)", "j"));
        assert!(!is_json_check("json_valid(`j`) or 1", "j"));
        let ddl = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  \
                   `j` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`j`)),\n  \
                   `a``b` longtext CHECK (JSON_VALID(`a``b`)),\n  \
                   `k` longtext CHECK (json_valid(`j`)),\n  PRIMARY KEY (`id`)\n)";
        assert_eq!(json_columns_in_ddl(ddl), vec!["j", "a`b"]);
    }

    #[test]
    fn passwords_are_scrubbed() {
        let url = "mysql://u:s%40cret@h/db";
        assert_eq!(
            scrub("bad s%40cret and s@cret".into(), url),
            "bad *** and ***"
        );
        assert_eq!(
            scrub("x hunter2".into(), "mysql://u@h/db?password=hunter2"),
            "x ***"
        );
    }
}
