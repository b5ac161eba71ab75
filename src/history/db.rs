//! One small SQL API over the history's two stores, an SQLite file
//! (rusqlite) and a PostgreSQL schema (sqlx, in `pg`), so every query of
//! the history is written once. It mirrors rusqlite's names so that
//! rusqlite code ports by hand in a minute: `execute`, `execute_batch`,
//! `query_row`, `query_opt` (rusqlite's `query_row(..).optional()`),
//! `query_map` (collected), rows read with `r.get(i)`, arguments given with
//! [`args!`](crate::args) instead of `params!`.
//!
//! Placeholders may be written `$1` or `?1`: each store is given its own
//! form (SQLite reads `$1` as a *named* parameter, numbered by first
//! appearance, which would bind `$2 … $1` the wrong way round). Ids come
//! back through `INSERT … RETURNING id`, which both engines know. Values
//! are integers (`i64`; `bool` as 0 or 1), reals and text: the PostgreSQL
//! schema stores every integer as `BIGINT` (see `schema::pg_ddl`), so one
//! binding fits both.

use rusqlite::types::ValueRef;

use super::pg::PgStore;
pub use super::value::{Cell, DbError, Param, Row};

/// The store a statement runs on: borrowed from the [`super::History`]
/// for one call or one transaction.
pub enum Db<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a mut PgStore),
}

impl Db<'_> {
    /// Runs one statement; how many rows it changed.
    pub fn execute(&mut self, sql: &str, args: &[Param]) -> Result<u64, DbError> {
        match self {
            Db::Sqlite(c) => {
                let mut st = c.prepare_cached(&placeholders(sql, '?'))?;
                Ok(st.execute(rusqlite::params_from_iter(args.iter()))? as u64)
            }
            Db::Postgres(p) => p.execute(&placeholders(sql, '$'), args),
        }
    }

    /// Runs statements without arguments, one after the other.
    pub fn execute_batch(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Postgres(p) => p.execute_batch(sql),
        }
    }

    /// Every row of a query, each through `f`.
    pub fn query_map<T>(
        &mut self,
        sql: &str,
        args: &[Param],
        mut f: impl FnMut(&Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let rows = match self {
            Db::Sqlite(c) => {
                let mut st = c.prepare_cached(&placeholders(sql, '?'))?;
                let n = st.column_count();
                let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let cells = (0..n)
                        .map(|i| sqlite_cell(r.get_ref(i)?))
                        .collect::<Result<Vec<_>, DbError>>()?;
                    out.push(Row(cells));
                }
                out
            }
            Db::Postgres(p) => p.query(&placeholders(sql, '$'), args)?,
        };
        rows.iter().map(&mut f).collect()
    }

    /// The first row of a query through `f`, `None` without one.
    pub fn query_opt<T>(
        &mut self,
        sql: &str,
        args: &[Param],
        f: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        let rows = self.query_map(sql, args, |r| Ok(r.clone()))?;
        rows.first().map(f).transpose()
    }

    /// The first row of a query through `f`; an error without one.
    pub fn query_row<T>(
        &mut self,
        sql: &str,
        args: &[Param],
        f: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.query_opt(sql, args, f)?.ok_or(DbError::NoRow)
    }

    /// Inserts `rows` into `into` (`"table (col, …)"`), many rows a
    /// statement: a PostgreSQL server is a round trip away, and a result
    /// may keep thousands of differences.
    pub fn insert_rows(&mut self, into: &str, rows: &[Vec<Param>]) -> Result<(), DbError> {
        // Well under both engines' limit on bound arguments (SQLite 32,766,
        // PostgreSQL 65,535).
        const ARGS_PER_STATEMENT: usize = 4_000;
        let Some(width) = rows.first().map(Vec::len).filter(|&w| w > 0) else {
            return Ok(());
        };
        for chunk in rows.chunks((ARGS_PER_STATEMENT / width).max(1)) {
            let mut sql = format!("INSERT INTO {into} VALUES ");
            let mut args = Vec::with_capacity(chunk.len() * width);
            for (i, row) in chunk.iter().enumerate() {
                if row.len() != width {
                    return Err(DbError::Decode(format!(
                        "a row of {} values for {width} columns",
                        row.len()
                    )));
                }
                sql.push_str(if i == 0 { "(" } else { ", (" });
                for (j, v) in row.iter().enumerate() {
                    args.push(v.clone());
                    if j > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("${}", args.len()));
                }
                sql.push(')');
            }
            self.execute(&sql, &args)?;
        }
        Ok(())
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }
}

fn sqlite_cell(v: ValueRef<'_>) -> Result<Cell, DbError> {
    Ok(match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Real(f) => Cell::Real(f),
        ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(_) => return Err(DbError::Decode("a blob in the history".into())),
    })
}

/// `sql` with every numbered placeholder (`$N` or `?N`, outside quotes
/// and comments) written with `mark`.
pub fn placeholders(sql: &str, mark: char) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for q in chars.by_ref() {
                    out.push(q);
                    if q == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for q in chars.by_ref() {
                    out.push(q);
                    if q == '\n' {
                        break;
                    }
                }
            }
            '$' | '?' if chars.peek().is_some_and(char::is_ascii_digit) => out.push(mark),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_take_each_stores_form_outside_quotes() {
        let sql = "UPDATE t SET a = $2, b = '$1 ?3' -- $4\n WHERE id = ?1 AND c = \"$5\"";
        assert_eq!(
            placeholders(sql, '?'),
            "UPDATE t SET a = ?2, b = '$1 ?3' -- $4\n WHERE id = ?1 AND c = \"$5\""
        );
        assert_eq!(
            placeholders(sql, '$'),
            "UPDATE t SET a = $2, b = '$1 ?3' -- $4\n WHERE id = $1 AND c = \"$5\""
        );
    }

    #[test]
    fn sqlite_binds_numbered_arguments_out_of_order() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let mut db = Db::Sqlite(&c);
        db.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b REAL, n INTEGER)")
            .unwrap();
        let none: Option<i64> = None;
        let id: i64 = db
            .query_row(
                "INSERT INTO t (a, b, n) VALUES ($2, $1, $3) RETURNING id",
                args![1.5, "x", none],
                |r| r.get(0),
            )
            .unwrap();
        let got: (String, f64, Option<i64>, bool) = db
            .query_row(
                "SELECT a, b, n, id = $1 FROM t WHERE id = $1",
                args![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(got, ("x".to_string(), 1.5, None, true));
        assert!(db
            .query_opt("SELECT a FROM t WHERE id = $1", args![id + 1], |r| r
                .get::<_, String>(0))
            .unwrap()
            .is_none());
        let wrong = db.query_row("SELECT a FROM t", args![], |r| r.get::<_, i64>(0));
        assert!(matches!(wrong, Err(DbError::Decode(_))), "{wrong:?}");
        let many: Vec<Vec<Param>> = (0..2_500)
            .map(|i| args![format!("r{i}"), f64::from(i), i64::from(i)].to_vec())
            .collect();
        db.insert_rows("t (a, b, n)", &many).unwrap();
        let (n, sum): (i64, i64) = db
            .query_row(
                "SELECT count(*), sum(n) FROM t WHERE a LIKE 'r%'",
                args![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((n, sum), (2_500, 2_499 * 2_500 / 2));
    }
}
