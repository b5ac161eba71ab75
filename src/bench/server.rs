//! Writing benchmark tables to PostgreSQL and MySQL/MariaDB: the only code in
//! driftsum that creates, fills and drops server tables, and only tables of
//! its own (a `driftsum_bench` schema on PostgreSQL, `driftsum_bench_*`
//! tables on MySQL). Used by `driftsum bench --engine postgres|mysql`, never
//! by a comparison.

use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions};

use super::case;
use super::data::Row;
use super::BenchError;
use crate::source::server;
use crate::source::url::redact;

/// The PostgreSQL schema holding benchmark tables.
const PG_SCHEMA: &str = "driftsum_bench";

/// Rows per multi-row INSERT on MySQL (well under the default packet size).
const MYSQL_BATCH: usize = 2_000;

enum Conn {
    Pg(PgConnection),
    My(MySqlConnection),
}

/// A connection that writes benchmark tables, remembering what it created.
pub struct ServerWriter {
    // Declared before `rt`: the connection must go before its runtime.
    conn: Conn,
    rt: tokio::runtime::Runtime,
    location: String,
    created: Vec<String>,
}

fn err(location: &str, what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Server {
        location: location.to_string(),
        message: format!("{what}: {e}"),
    }
}

impl ServerWriter {
    /// Connects to a `postgres://` or `mysql://` URL.
    pub fn connect(url: &str) -> Result<ServerWriter, BenchError> {
        let location = redact(url);
        let rt = server::runtime().map_err(|e| err(&location, "starting", e))?;
        let fail = |e: sqlx::Error| crate::SourceError::Other(e.to_string());
        let conn = if url.starts_with("postgres") {
            let opts = PgConnectOptions::from_str(url).map_err(|e| err(&location, "URL", e))?;
            let c = server::block_on_timeout(&rt, server::CONNECT_TIMEOUT, "connecting", async {
                opts.connect().await.map_err(fail)
            });
            Conn::Pg(c.map_err(|e| err(&location, "connecting", e))?)
        } else {
            let opts = MySqlConnectOptions::from_str(url)
                .map_err(|e| err(&location, "URL", e))?
                .charset("utf8mb4");
            let c = server::block_on_timeout(&rt, server::CONNECT_TIMEOUT, "connecting", async {
                opts.connect().await.map_err(fail)
            });
            Conn::My(c.map_err(|e| err(&location, "connecting", e))?)
        };
        Ok(ServerWriter {
            conn,
            rt,
            location,
            created: Vec::new(),
        })
    }

    /// The URL without its password, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The table name a comparison uses for a benchmark table called `base`
    /// (`src_1000`): schema-qualified on PostgreSQL, prefixed on MySQL.
    pub fn table_name(&self, base: &str) -> String {
        match self.conn {
            Conn::Pg(_) => format!("{PG_SCHEMA}.{base}"),
            Conn::My(_) => format!("driftsum_bench_{base}"),
        }
    }

    fn exec(&mut self, sql: String) -> Result<(), BenchError> {
        let r = match &mut self.conn {
            Conn::Pg(c) => self.rt.block_on(async {
                sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                    .execute(c)
                    .await
                    .map(|_| ())
            }),
            Conn::My(c) => self.rt.block_on(async {
                sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                    .execute(c)
                    .await
                    .map(|_| ())
            }),
        };
        let head: String = sql.chars().take(80).collect();
        r.map_err(|e| err(&self.location, &head, e))
    }

    /// (Re)creates table `name` (from [`table_name`](Self::table_name)) and
    /// fills it with `rows`. With `ts_key` the table is keyed by a timestamp
    /// derived from the id ([`case::ts_text`]; `timestamptz` on PostgreSQL,
    /// `datetime(6)` on MySQL), which replaces the id column.
    pub fn write(
        &mut self,
        name: &str,
        ts_key: bool,
        rows: impl Iterator<Item = Row>,
    ) -> Result<(), BenchError> {
        // Names are made here from fixed words and numbers, never from input,
        // but are quoted all the same.
        let key = if ts_key { "ts" } else { "id" };
        match self.conn {
            Conn::Pg(_) => {
                let q = pg_quote(name);
                let key_type = if ts_key { "timestamptz" } else { "bigint" };
                self.exec(format!(
                    "CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}; DROP TABLE IF EXISTS {q};
                     CREATE TABLE {q} ({key} {key_type} NOT NULL, name text NOT NULL,
                       qty integer NOT NULL, price double precision NOT NULL,
                       amount numeric(12,2) NOT NULL, created timestamp(6) NOT NULL, note text)"
                ))?;
                self.created.push(name.to_string());
                self.pg_copy(&q, key, ts_key, rows)?;
                // The key index is built after the load: much faster than
                // maintaining it row by row.
                self.exec(format!(
                    "ALTER TABLE {q} ADD PRIMARY KEY ({key}); ANALYZE {q}"
                ))
            }
            Conn::My(_) => {
                let q = format!("`{}`", name.replace('`', "``"));
                let key_type = if ts_key { "DATETIME(6)" } else { "BIGINT" };
                self.exec(format!("DROP TABLE IF EXISTS {q}"))?;
                self.exec(format!(
                    "CREATE TABLE {q} ({key} {key_type} NOT NULL PRIMARY KEY, name VARCHAR(64) NOT NULL,
                       qty INT NOT NULL, price DOUBLE NOT NULL, amount DECIMAL(12,2) NOT NULL,
                       created DATETIME(6) NOT NULL, note TEXT)
                     ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
                ))?;
                self.created.push(name.to_string());
                self.mysql_insert(&q, ts_key, rows)
            }
        }
    }

    fn pg_copy(
        &mut self,
        table: &str,
        key: &str,
        ts_key: bool,
        rows: impl Iterator<Item = Row>,
    ) -> Result<(), BenchError> {
        let Conn::Pg(c) = &mut self.conn else {
            return Ok(());
        };
        let location = self.location.clone();
        let sql =
            format!("COPY {table} ({key}, name, qty, price, amount, created, note) FROM STDIN");
        self.rt.block_on(async {
            let mut copy = c
                .copy_in_raw(&sql)
                .await
                .map_err(|e| err(&location, "COPY", e))?;
            let mut buf = String::with_capacity(1 << 20);
            for r in rows {
                pg_line(&mut buf, ts_key, &r);
                if buf.len() > (1 << 20) - 512 {
                    copy.send(buf.as_bytes())
                        .await
                        .map_err(|e| err(&location, "COPY", e))?;
                    buf.clear();
                }
            }
            if !buf.is_empty() {
                copy.send(buf.as_bytes())
                    .await
                    .map_err(|e| err(&location, "COPY", e))?;
            }
            copy.finish().await.map_err(|e| err(&location, "COPY", e))?;
            Ok(())
        })
    }

    fn mysql_insert(
        &mut self,
        table: &str,
        ts_key: bool,
        mut rows: impl Iterator<Item = Row>,
    ) -> Result<(), BenchError> {
        self.exec("START TRANSACTION".into())?;
        loop {
            let mut sql = format!("INSERT INTO {table} VALUES ");
            let mut n = 0;
            for r in rows.by_ref().take(MYSQL_BATCH) {
                if n > 0 {
                    sql.push(',');
                }
                mysql_tuple(&mut sql, ts_key, &r);
                n += 1;
            }
            if n == 0 {
                break;
            }
            self.exec(sql)?;
        }
        self.exec("COMMIT".into())
    }

    /// Drops every table this writer created (and the PostgreSQL schema, when
    /// empty).
    pub fn drop_all(&mut self) -> Result<(), BenchError> {
        for name in std::mem::take(&mut self.created) {
            let q = match self.conn {
                Conn::Pg(_) => pg_quote(&name),
                Conn::My(_) => format!("`{}`", name.replace('`', "``")),
            };
            self.exec(format!("DROP TABLE IF EXISTS {q}"))?;
        }
        if let Conn::Pg(_) = self.conn {
            // RESTRICT: leaves the schema if anyone else put a table in it.
            let _ = self.exec(format!("DROP SCHEMA IF EXISTS {PG_SCHEMA} RESTRICT"));
        }
        Ok(())
    }
}

/// Quotes `schema.table` for PostgreSQL.
fn pg_quote(name: &str) -> String {
    name.split('.')
        .map(crate::source::quote_ident)
        .collect::<Vec<_>>()
        .join(".")
}

/// Escapes text for COPY's text format.
fn pg_text(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// The key as COPY text: the id, or its timestamp in UTC.
fn key_text(ts_key: bool, r: &Row) -> String {
    match ts_key {
        true => format!("{}+00", case::ts_text(r.id)),
        false => r.id.to_string(),
    }
}

fn pg_line(out: &mut String, ts_key: bool, r: &Row) {
    use std::fmt::Write;
    let _ = write!(out, "{}\t", key_text(ts_key, r));
    pg_text(out, &r.name);
    // `{:?}` of an f64 is its shortest exact form, which PostgreSQL reads back
    // to the same double.
    let _ = write!(
        out,
        "\t{}\t{:?}\t{}\t{}\t",
        r.qty, r.price, r.amount, r.created
    );
    match &r.note {
        Some(n) => pg_text(out, n),
        None => out.push_str("\\N"),
    }
    out.push('\n');
}

fn mysql_str(out: &mut String, s: &str) {
    out.push('\'');
    for ch in s.chars() {
        match ch {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

fn mysql_tuple(out: &mut String, ts_key: bool, r: &Row) {
    use std::fmt::Write;
    match ts_key {
        // DATETIME holds no zone: the UTC wall clock, as the replica stores it.
        true => {
            let _ = write!(out, "('{}',", case::ts_text(r.id));
        }
        false => {
            let _ = write!(out, "({},", r.id);
        }
    }
    mysql_str(out, &r.name);
    // An exponent makes the literal a DOUBLE (not a DECIMAL rounded later),
    // and `{:e}` prints the shortest digits that read back exactly.
    let _ = write!(
        out,
        ",{},{:e},{},'{}',",
        r.qty, r.price, r.amount, r.created
    );
    match &r.note {
        Some(n) => mysql_str(out, n),
        None => out.push_str("NULL"),
    }
    out.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::data::row;

    #[test]
    fn literals() {
        let with_note = (0..).map(row).find(|r| r.note.is_some()).unwrap();
        let without = (0..).map(row).find(|r| r.note.is_none()).unwrap();
        let mut s = String::new();
        pg_line(&mut s, false, &with_note);
        assert_eq!(s.matches('\t').count(), 6);
        assert!(
            s.ends_with(&format!("{}\n", with_note.note.unwrap())),
            "{s}"
        );
        let mut s = String::new();
        pg_line(&mut s, false, &without);
        assert!(s.ends_with("\\N\n"), "{s}");
        let mut m = String::new();
        mysql_tuple(&mut m, false, &without);
        assert!(m.ends_with(",NULL)"), "{m}");
        // Prices read back exactly: the shortest exact digits, with an exponent.
        let price = m.split(',').nth(3).unwrap();
        assert!(price.contains('e'), "{m}");
        assert_eq!(price.parse::<f64>().unwrap(), without.price);
    }
}
