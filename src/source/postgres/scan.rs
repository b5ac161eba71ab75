//! Reading a scan's SELECT from the server: through `COPY … TO STDOUT
//! (FORMAT binary)` (framed by [`copy`](super::copy)) when it has no bound
//! values, else through sqlx's typed rows; each value decoded by
//! [`decode`](super::decode). The query is built by the dialect; a failed
//! read leaves the session at its savepoint (or closed, when its protocol
//! state is unknown).

use std::ops::ControlFlow;
use std::time::Duration;

use driftsum_core::canon::CanonOptions;
use driftsum_core::coerce::ColumnRule;
use driftsum_core::Value;
use futures_util::TryStreamExt;
use sqlx::postgres::{PgArguments, PgConnection};
use sqlx::{AssertSqlSafe, Postgres, Row};

use super::binary::DecodeError;
use super::column::{PgColumn, Wire};
use super::copy;
use super::decode::{decode_into, decode_raw};
use super::dialect::Bind;
use super::encode::encode_into;
use crate::error::SourceError;
use crate::source::secrets::scrub;
use crate::source::server::{self, Session};
use crate::source::spec::{EncodedSink, RowSink, ScanSpec};
use crate::source::sql;

/// A session as a scan reads it, with what its messages need.
pub(super) struct Reader<'a> {
    pub(super) session: &'a mut Session<PgConnection>,
    /// Secrets to scrub from any message.
    pub(super) secrets: &'a [String],
    /// The session's lock wait, named when it ran out.
    pub(super) lock_timeout: Duration,
}

/// After a failed query: leaves the aborted state, same snapshot.
pub(super) fn recover(session: &mut Session<PgConnection>) {
    if let Ok((conn, rt)) = session.open() {
        let _ = rt.block_on(async {
            tokio::time::timeout(
                server::CONNECT_TIMEOUT,
                sqlx::raw_sql("ROLLBACK TO SAVEPOINT driftsum").execute(conn),
            )
            .await
        });
    }
}

/// The columns of one scan: how to decode each, and what to call it in a
/// message.
pub(super) struct ScanCols<'a> {
    pub(super) cols: Vec<(Wire, ColumnRule)>,
    names: Vec<&'a str>,
    context: String,
}

impl<'a> ScanCols<'a> {
    /// The columns of `spec` as read from the table's `scanned` columns
    /// (in the same order), in messages about `context`.
    pub(super) fn new(spec: &'a ScanSpec, scanned: &[&PgColumn], context: String) -> Self {
        ScanCols {
            cols: scanned
                .iter()
                .zip(spec.columns())
                .map(|(c, s)| (c.wire, s.rule))
                .collect(),
            names: spec.columns().map(|c| c.name.as_str()).collect(),
            context,
        }
    }

    /// What messages about this scan say it was doing.
    pub(super) fn context(&self) -> &str {
        &self.context
    }

    /// The error for a value of column `i` that cannot be decoded.
    fn error(&self, i: usize, e: DecodeError, secrets: &[String]) -> SourceError {
        let msg = format!("column {:?}: {e}", self.names.get(i).unwrap_or(&""));
        SourceError::query(&self.context, scrub(msg, secrets))
    }
}

/// The COPY statement reading a scan's SELECT: the query itself, or, for
/// a whole plain table read in no particular order (`table`, its quoted
/// name and the column list `"s"."t" ("a", "b")`), the table: the server
/// then reads and sends its rows without running the query's executor, a
/// share of its work per row.
pub(super) fn copy_statement(select: &str, table: Option<&str>) -> String {
    match table {
        Some(t) => format!("COPY {t} TO STDOUT (FORMAT binary)"),
        None => format!("COPY (\n{select}\n) TO STDOUT (FORMAT binary)"),
    }
}

/// Runs a scan's SELECT: through `copy` when given (a COPY statement of
/// [`copy_statement`]; the query's only bound values are integers, written
/// in it as literals), else through sqlx's typed rows.
pub(super) fn read(
    r: &mut Reader<'_>,
    query: sql::Query<Bind>,
    copy: Option<&str>,
    cols: &ScanCols<'_>,
    sink: &mut RowSink<'_>,
) -> Result<(), SourceError> {
    let Some(copy) = copy else {
        return typed_scan(r, query.sql, query.binds, cols, sink);
    };
    let secrets = r.secrets;
    let mut buf: Vec<Value> = vec![Value::Null; cols.cols.len()];
    let on_tuple = |t: &copy::Tuple<'_>| {
        for (i, ((wire, rule), slot)) in cols.cols.iter().zip(buf.iter_mut()).enumerate() {
            decode_into(slot, t.get(i), *wire, rule)
                .map_err(|e| Halt::Error(cols.error(i, e, secrets)))?;
        }
        match sink(&buf) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Halt::Sink),
        }
    };
    copy_scan(r, &query.sql, copy, cols, on_tuple)
}

/// [`read`] through COPY with each row handed on encoded: the first `keys`
/// values decoded and encoded as a key, the rest written straight into
/// canonical row bytes under `opts` (see [`encode`](super::encode)).
pub(super) fn read_encoded(
    r: &mut Reader<'_>,
    select: &str,
    copy: &str,
    cols: &ScanCols<'_>,
    keys: usize,
    opts: &CanonOptions,
    sink: &mut EncodedSink<'_>,
) -> Result<(), SourceError> {
    let secrets = r.secrets;
    let mut key_values: Vec<Value> = vec![Value::Null; keys];
    let (mut key, mut row, mut scratch) = (Vec::new(), Vec::new(), String::new());
    let on_tuple = |t: &copy::Tuple<'_>| {
        row.clear();
        for (i, (wire, rule)) in cols.cols.iter().enumerate() {
            let done = match key_values.get_mut(i) {
                Some(slot) => decode_into(slot, t.get(i), *wire, rule),
                None => encode_into(&mut row, t.get(i), *wire, rule, opts, &mut scratch),
            };
            done.map_err(|e| Halt::Error(cols.error(i, e, secrets)))?;
        }
        driftsum_core::key::encode_into(&mut key, &key_values);
        match sink(&key, &row) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Halt::Sink),
        }
    };
    copy_scan(r, select, copy, cols, on_tuple)
}

/// A scan without bound values (a whole table, or the user's filter
/// alone), read as `copy` (see [`copy_statement`]) and parsed by hand: no
/// per-row message decoding or row object in sqlx. Each tuple goes to
/// `on_tuple`.
fn copy_scan(
    r: &mut Reader<'_>,
    select: &str,
    copy: &str,
    cols: &ScanCols<'_>,
    mut on_tuple: impl FnMut(&copy::Tuple<'_>) -> Result<(), Halt>,
) -> Result<(), SourceError> {
    let (conn, rt) = r.session.open()?;
    let secrets = r.secrets;
    let lock_timeout = r.lock_timeout;
    let db_err =
        |e: &sqlx::Error| SourceError::query(&cols.context, db_message(e, lock_timeout, secrets));

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
        recover(r.session);
        return Err(err);
    }

    let malformed = |e: String| SourceError::query(&cols.context, scrub(e, secrets));
    let halt_malformed = |e: String| Halt::Error(malformed(e));
    // A SELECT of no columns selects `1`.
    let mut parser = copy::CopyParser::new(cols.cols.len().max(1));
    // A COPY that failed to start, or failed midway (the server then
    // ends it cleanly).
    let begin_failed = std::cell::Cell::new(false);
    let db_failed = std::cell::Cell::new(false);
    let mut failed = None;
    // All on this one thread. Handing work to a second thread (raw
    // chunks; or decoded rows in
    // reused batches, leaving only hashing to the second thread) measured
    // no faster with the server on the same 2 cores (benches/server_diff;
    // figures in docs/performance.md): the three busy threads
    // (server, reader, hasher) then share two cores, and the total work
    // is what counts.
    //
    // The whole stream is read, also after the sink stopped: the rest is
    // dropped, so the connection is ready for its next query (as sqlx
    // does for a query whose rows were not all fetched).
    let read_result = rt.block_on(async {
        let mut stream = conn.copy_out_raw(copy).await.map_err(|e| {
            begin_failed.set(true);
            db_err(&e)
        })?;
        while let Some(chunk) = stream.try_next().await.map_err(|e| {
            db_failed.set(true);
            db_err(&e)
        })? {
            if failed.is_none() {
                failed = parser.feed(&chunk, &mut on_tuple, halt_malformed).err();
            }
        }
        Ok(())
    });
    let result = match failed {
        Some(Halt::Error(e)) => Err(e),
        Some(Halt::Sink) => read_result,
        None => read_result.and_then(|()| parser.finish().map_err(malformed)),
    };
    if begin_failed.get() {
        // The connection's protocol state is unknown: never use it again.
        r.session.discard();
    } else if db_failed.get() {
        recover(r.session);
    }
    result
}

/// A scan with bound values (a key range), read through sqlx's typed
/// rows: COPY cannot take parameters, and values are never inlined.
fn typed_scan(
    r: &mut Reader<'_>,
    sql: String,
    binds: Vec<Bind>,
    cols: &ScanCols<'_>,
    sink: &mut RowSink<'_>,
) -> Result<(), SourceError> {
    let secrets = r.secrets;
    let mut q: sqlx::query::Query<'_, Postgres, PgArguments> = sqlx::query(AssertSqlSafe(sql));
    for b in binds {
        q = match b {
            Bind::Int(i) => q.bind(i),
            Bind::Cast(s, _) => q.bind(s),
            Bind::Bytes(v) => q.bind(v),
        };
    }
    let (conn, rt) = r.session.open()?;
    let db_failed = std::cell::Cell::new(false);
    let lock_timeout = r.lock_timeout;
    let fail = |e: &sqlx::Error| {
        db_failed.set(true);
        SourceError::query(&cols.context, db_message(e, lock_timeout, secrets))
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
                    .map_err(|e| DecodeError::Driver(e.to_string()))
                    .and_then(|raw| decode_raw(raw, *wire, rule))
                    .map_err(|e| cols.error(i, e, secrets))?;
                buf.push(v);
            }
            if sink(&buf).is_break() {
                break;
            }
        }
        Ok(())
    });
    if db_failed.get() {
        recover(r.session);
    }
    result
}

/// Why a COPY stopped handing rows on before its stream ended.
enum Halt {
    /// The sink wanted no more rows.
    Sink,
    Error(SourceError),
}

/// The message of a failed statement, without secrets; a lock wait that
/// ran out (SQLSTATE 55P03) says what held the scan up and the way out.
pub(super) fn db_message(e: &sqlx::Error, lock_timeout: Duration, secrets: &[String]) -> String {
    let locked = e
        .as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "55P03");
    let msg = if locked {
        format!(
            "the table is locked by another session (waited {lock_timeout:?}, the \
             lock_timeout): {}; try again when that session's transaction ends, or wait \
             longer with ?lock_timeout=SECONDS in the URL",
            error_text(e)
        )
    } else {
        error_text(e)
    };
    scrub(msg, secrets)
}

/// A driver error as a message: a server error as the server words it,
/// without the line of PostgreSQL's own source code sqlx appends (`at line
/// 3665`), which means nothing to a user.
pub(super) fn error_text(e: &sqlx::Error) -> String {
    match e.as_database_error() {
        Some(d) => format!("error returned from database: {}", d.message()),
        None => e.to_string(),
    }
}
