//! The MySQL / MariaDB connector (sqlx): schema discovery from
//! `information_schema`, and the session the scans run in (module `read`:
//! key-ordered scans in one consistent snapshot, by key range or by exact
//! keys).
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
//!
//! What the URL leaves out (user, password, host, port) comes from the
//! `[client]` section of `~/.my.cnf`, and a password still missing from
//! `MYSQL_PWD`, as the `mysql` client takes them (module `optfile`).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use driftsum_core::key::KeyRange;
use driftsum_core::{LogicalType, Value};
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{AssertSqlSafe, ConnectOptions, Row};

mod column;
mod count;
mod datetime;
mod decode;
mod dialect;
mod optfile;
mod read;

pub use column::logical_type;
pub use dialect::quote_ident;

use column::{wire, ColInfo, TableInfo, CODE_POINT_COLLATIONS};
use dialect::MySqlSql;

use super::secrets;
use super::server::{self, CONNECT_TIMEOUT};
use super::spec::{Column, RowSink, ScanSpec, Source, TableSchema};
use super::sql;
use super::url::redact;
use crate::error::SourceError;

/// MySQL's error number for a missing table.
const ER_NO_SUCH_TABLE: u16 = 1146;

/// MySQL's error number for a lock wait that timed out (a table lock, a
/// metadata lock or a row lock).
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;

/// A read-only MySQL connection, inside one consistent-snapshot transaction.
pub struct MySqlSource {
    session: server::Session<MySqlConnection>,
    /// The URL without credentials.
    location: String,
    /// Column layouts already read (the snapshot does not change them).
    tables: HashMap<String, Arc<TableInfo>>,
    /// How long a read waits for another session's lock.
    lock_timeout: Duration,
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

/// `opts` completed as the `mysql` client completes a command line: what
/// the URL leaves out (user, host, port, password) from the `[client]`
/// section of `~/.my.cnf`, and a password still missing from `MYSQL_PWD`
/// (the option file's wins over it, as in the client). A URL's own values
/// always win. Also returns the passwords taken, to keep out of messages.
fn with_client_defaults(
    url: &str,
    mut opts: MySqlConnectOptions,
) -> (MySqlConnectOptions, Vec<String>) {
    let parsed = ::url::Url::parse(url).ok();
    let has_user = parsed.as_ref().is_some_and(|u| !u.username().is_empty());
    let has_host = parsed
        .as_ref()
        .and_then(|u| u.host_str())
        .is_some_and(|h| !h.is_empty());
    let has_port = parsed.as_ref().and_then(|u| u.port()).is_some();
    let has_password = secrets::password(url).is_some();
    let cnf = optfile::home_client_options();
    if !has_user {
        if let Some(user) = &cnf.user {
            opts = opts.username(user);
        }
    }
    if !has_host {
        if let Some(host) = &cnf.host {
            opts = opts.host(host);
        }
    }
    if !has_port {
        if let Some(port) = cnf.port {
            opts = opts.port(port);
        }
    }
    let mut taken = Vec::new();
    if !has_password {
        let env = std::env::var("MYSQL_PWD").ok();
        if let Some(p) = cnf.password.or(env) {
            opts = opts.password(&p);
            taken.push(p);
        }
    }
    (opts, taken)
}

impl MySqlSource {
    /// Connects (within [`CONNECT_TIMEOUT`]) and starts the read-only
    /// consistent-snapshot transaction.
    pub fn connect(url: &str) -> Result<MySqlSource, SourceError> {
        let location = redact(url);
        let mut hidden = secrets::url_passwords(url);
        let opts = MySqlConnectOptions::from_str(url).map_err(|e| SourceError::Open {
            location: location.clone(),
            message: secrets::scrub(format!("not a valid MySQL URL: {e}"), &hidden),
        })?;
        let (opts, extra) = with_client_defaults(url, opts);
        hidden.extend(extra.into_iter().filter(|p| p.len() >= 3));
        hidden.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let open_err = |message: String| SourceError::Open {
            location: location.clone(),
            message: super::tls::explain(secrets::scrub(message, &hidden)),
        };
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
            session: server::Session::new(conn, rt, location.clone()),
            location,
            tables: HashMap::new(),
            lock_timeout,
        })
    }

    /// Runs a metadata query with string parameters, collecting text columns.
    fn meta(
        &mut self,
        context: &str,
        sql: &'static str,
        params: &[&str],
        width: usize,
    ) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
        let (conn, rt) = match self.session.open() {
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
                    byte_order: CODE_POINT_COLLATIONS
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
            primary_key: server::first_column(pk),
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
        let Ok((conn, rt)) = self.session.open() else {
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
        let Ok((conn, rt)) = self.session.open() else {
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

impl Source for MySqlSource {
    fn describe(&self) -> String {
        self.location.clone()
    }

    fn estimate_rows(&mut self, table: &str) -> Option<u64> {
        let rows = self
            .meta("estimating rows", super::estimate::MYSQL, &[table], 1)
            .ok()?;
        super::estimate::parse(rows.first()?.first()?.as_deref())
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
        let mut names = server::first_column(rows);
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

    fn count(&mut self, spec: &ScanSpec) -> Result<Option<u64>, SourceError> {
        self.count_rows(spec).map(Some)
    }

    fn ranges_use_index(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        let Some(lead) = spec.key.first() else {
            return Ok(true);
        };
        let info = self.table_info(&spec.table)?;
        Ok(info
            .columns
            .iter()
            .find(|c| c.name == lead.name)
            .is_some_and(|c| sql::Dialect::bounds_by_index(&MySqlSql, c, lead.rule.ty)))
    }

    fn scan(
        &mut self,
        spec: &ScanSpec,
        range: Option<&KeyRange>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        self.scan_values(spec, range, sink)
    }

    fn looks_up_keys(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        let info = self.table_info(&spec.table)?;
        let (keys, _) = sql::scan_columns(spec, &info.columns)?;
        Ok(sql::looks_up(&MySqlSql, spec, &keys))
    }

    /// See [`MySqlSource::scan_values_by_key`].
    fn scan_keys(
        &mut self,
        spec: &ScanSpec,
        keys: &[Vec<Value>],
        sink: &mut RowSink<'_>,
    ) -> Result<bool, SourceError> {
        self.scan_values_by_key(spec, keys, sink)
    }
}

#[cfg(test)]
mod tests {
    use super::column::Wire;
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
}
