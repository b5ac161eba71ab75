//! A whole-table scan of one integer key alone (`check`'s `keys` level):
//! the keys come as arrays of a chunk of keys each, not a row each.
//!
//! Streamed a row at a time, a million keys are a million protocol
//! messages, and the client's cost per message is most of the level's work
//! here; the server's index-only scan costs the same either way. So each
//! chunk is one query, `SELECT array_agg(k) FROM (SELECT k … WHERE k > $1
//! ORDER BY k LIMIT n)`, the next one starting after the last key read
//! (keyset paging, an index range each), all in the session's one
//! snapshot. That names every key exactly only when the key is unique and
//! never NULL, which [`eligible`] checks in the catalog (a unique index on
//! that column alone, NOT NULL); any other key, a key range, or a scan
//! reading values goes the ordinary way ([`scan`](super::scan)).
//!
//! The order of `array_agg`'s input is the subquery's, which PostgreSQL
//! keeps but SQL does not promise; a chunk that is not in order is sorted
//! here (its set of keys is exact either way: `ORDER BY … LIMIT`).

use std::future::Future;
use std::ops::ControlFlow;
use std::task::Poll;

use driftsum_core::coerce::ColumnRule;
use driftsum_core::Value;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, Row, ValueRef};

use super::binary::{int_array, DecodeError};
use super::column::Wire;
use super::decode::decode;
use super::scan::{db_message, recover, Reader};
use crate::error::SourceError;
use crate::source::secrets::scrub;
use crate::source::spec::{quote_ident, RowSink};

/// Keys per chunk: few enough that a chunk is a small message (12 bytes a
/// key), many enough that a query per chunk costs nothing beside it.
pub(super) const CHUNK_KEYS: usize = 1 << 17;

/// The catalog query telling whether column `$3` of table `$2` in schema
/// `$1` is NOT NULL and alone the key of a valid unique index without a
/// predicate or expressions (a primary key, say).
pub(super) const ELIGIBLE: &str = "SELECT EXISTS ( \
     SELECT 1 FROM pg_catalog.pg_index i \
     JOIN pg_catalog.pg_class c ON c.oid = i.indrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
     WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND a.attnotnull \
       AND i.indisunique AND i.indisvalid AND i.indnkeyatts = 1 \
       AND i.indpred IS NULL AND i.indexprs IS NULL)::text";

/// Whether a scan of one key column and nothing else may read it this way:
/// an integer, and no key range; the catalog's word ([`ELIGIBLE`]) is
/// asked by the caller only when this holds.
pub(super) fn eligible(wire: Wire, rule: &ColumnRule, ranged: bool) -> bool {
    wire == Wire::Int && rule.ty == driftsum_core::LogicalType::Integer && !ranged
}

/// What one key scan reads.
pub(super) struct KeyScan<'a> {
    /// The FROM item (`ONLY "schema"."table"`).
    pub(super) from: &'a str,
    /// The key column's name.
    pub(super) column: &'a str,
    /// The user's SQL condition, applied as is.
    pub(super) filter: Option<&'a str>,
    pub(super) rule: &'a ColumnRule,
    /// The table, for messages.
    pub(super) context: &'a str,
    /// Keys per chunk ([`CHUNK_KEYS`], fewer in tests).
    pub(super) chunk: usize,
}

impl KeyScan<'_> {
    /// The query of the first chunk, or (`after`) of one after a key.
    fn sql(&self, after: bool) -> String {
        let col = quote_ident(self.column);
        let mut conds = Vec::new();
        if let Some(f) = self.filter {
            conds.push(format!("({f})"));
        }
        if after {
            conds.push(format!("{col} > $1::int8"));
        }
        let cond = match conds.is_empty() {
            true => String::new(),
            false => format!(" WHERE {}", conds.join(" AND ")),
        };
        format!(
            "SELECT array_agg(k.{col}) FROM (SELECT {col} FROM {}{cond} \
             ORDER BY {col} LIMIT {}) k",
            self.from, self.chunk
        )
    }

    fn error(&self, e: DecodeError, secrets: &[String]) -> SourceError {
        let msg = format!("column {:?}: {e}", self.column);
        SourceError::query(self.context, scrub(msg, secrets))
    }
}

/// Why a key scan stopped short.
enum Failure {
    Db(sqlx::Error),
    Decode(DecodeError),
}

/// One chunk's query: the first, or the one after key `after`.
fn chunk_query(
    sql: &str,
    after: Option<i64>,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let q = sqlx::query(AssertSqlSafe(sql));
    match after {
        Some(k) => q.bind(k),
        None => q,
    }
}

/// The keys of one chunk's answer, in ascending order, into `keys`.
fn chunk_keys(row: &PgRow, keys: &mut Vec<i64>) -> Result<(), Failure> {
    keys.clear();
    let raw = row.try_get_raw(0).map_err(Failure::Db)?;
    if raw.is_null() {
        return Ok(());
    }
    let bytes = raw
        .as_bytes()
        .map_err(|e| Failure::Db(sqlx::Error::Decode(e)))?;
    int_array(bytes, keys).map_err(Failure::Decode)?;
    if !keys.is_sorted_by(|a, b| a < b) {
        keys.sort_unstable();
    }
    Ok(())
}

/// Reads every key of `scan` in ascending order into `sink`, one row of
/// one value each, exactly as the ordinary scan would deliver them. The
/// next chunk's query is sent before a chunk is handed on, so the server
/// reads it meanwhile.
pub(super) fn read(
    r: &mut Reader<'_>,
    scan: &KeyScan<'_>,
    sink: &mut RowSink<'_>,
) -> Result<(), SourceError> {
    let (first, next) = (scan.sql(false), scan.sql(true));
    let mut keys: Vec<i64> = Vec::with_capacity(scan.chunk);
    let rule = scan.rule;
    let mut hand_on = |keys: &[i64]| -> Result<ControlFlow<()>, Failure> {
        let mut row = [Value::Null];
        for &k in keys {
            row[0] = decode(Some(&k.to_be_bytes()), Wire::Int, rule).map_err(Failure::Decode)?;
            if sink(&row).is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    };
    let (conn, rt) = r.session.open()?;
    let result = rt.block_on(async {
        let mut answer = chunk_query(&first, None)
            .fetch_one(&mut *conn)
            .await
            .map_err(Failure::Db)?;
        loop {
            chunk_keys(&answer, &mut keys)?;
            let last = keys.last().copied().filter(|_| keys.len() >= scan.chunk);
            let Some(last) = last else {
                return hand_on(&keys).map(|_| ());
            };
            let mut ahead = Box::pin(chunk_query(&next, Some(last)).fetch_one(&mut *conn));
            // Polled once, the query is written and the future waits for
            // the answer, which the server computes while this thread
            // hands the chunk on.
            let mut early = None;
            std::future::poll_fn(|cx| {
                if let Poll::Ready(answer) = ahead.as_mut().poll(cx) {
                    early = Some(answer);
                }
                Poll::Ready(())
            })
            .await;
            let handed = hand_on(&keys);
            // Always awaited: the connection is never left mid-answer.
            let fetched = match early {
                Some(answer) => answer,
                None => ahead.await,
            };
            if handed?.is_break() {
                return Ok(());
            }
            answer = fetched.map_err(Failure::Db)?;
        }
    });
    let err = match result {
        Ok(()) => return Ok(()),
        Err(Failure::Decode(e)) => scan.error(e, r.secrets),
        Err(Failure::Db(e)) => {
            SourceError::query(scan.context, db_message(&e, r.lock_timeout, r.secrets))
        }
    };
    // Also after a value that would not decode: the chunk queried ahead
    // may have failed meanwhile, aborting the transaction.
    recover(r.session);
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_queries() {
        let rule = ColumnRule::new(driftsum_core::LogicalType::Integer);
        let scan = KeyScan {
            from: "ONLY \"public\".\"t\"",
            column: "id",
            filter: Some("x > 1"),
            rule: &rule,
            context: "t",
            chunk: 7,
        };
        assert_eq!(
            scan.sql(true),
            "SELECT array_agg(k.\"id\") FROM (SELECT \"id\" FROM ONLY \"public\".\"t\" \
             WHERE (x > 1) AND \"id\" > $1::int8 ORDER BY \"id\" LIMIT 7) k"
        );
        let bare = KeyScan {
            filter: None,
            ..scan
        };
        assert!(bare.sql(false).contains("\"t\" ORDER BY \"id\" LIMIT"));
    }

    /// Against the test server (`DRIFTSUM_TEST_POSTGRES`; skipped without
    /// it): a key read in chunks of any size, filtered or not, is the same
    /// key list as read row by row, and as the table's keys in order; a
    /// key that is not unique is read row by row, duplicates and all.
    #[test]
    fn chunked_keys_are_the_keys_read_row_by_row() {
        use proptest::prelude::*;
        use std::collections::BTreeSet;

        use crate::source::postgres::test_writer::TestWriter;
        use crate::source::postgres::PgSource;
        use crate::source::spec::{ColumnSpec, ScanSpec, Source};

        let Some(writer) = TestWriter::connect() else {
            return;
        };
        let url = &writer.url;
        let table = format!("driftsum_keys_chunks_{}", std::process::id());
        let exec = |sql: String| writer.exec(sql);
        let spec = |filter: Option<&str>| ScanSpec {
            table: table.clone(),
            key: vec![ColumnSpec {
                name: "k".into(),
                rule: ColumnRule::new(driftsum_core::LogicalType::Integer),
            }],
            values: Vec::new(),
            filter: filter.map(str::to_string),
            ranges: Vec::new(),
        };
        let scan = |src: &mut PgSource, filter: Option<&str>| {
            let mut out = Vec::new();
            src.scan(&spec(filter), None, &mut |row| {
                out.push(row[0].clone());
                ControlFlow::Continue(())
            })
            .map(|()| out)
        };
        let read = |filter: Option<&str>, chunk: usize| -> Vec<Value> {
            let mut src = PgSource::connect(url).expect("source");
            src.key_chunk = chunk;
            scan(&mut src, filter).expect("scan")
        };
        let types = ["smallint", "integer", "bigint"];
        let config = ProptestConfig::with_cases(12);
        proptest!(config, |(
            keys in proptest::collection::btree_set(any::<i64>(), 0..40),
            ty in 0..3usize,
            filtered in any::<bool>(),
            chunk in 1..6usize,
        )| {
            let (lo, hi) = match ty {
                0 => (i16::MIN as i64, i16::MAX as i64),
                1 => (i32::MIN as i64, i32::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            let mut keys: BTreeSet<i64> = keys.into_iter().map(|k| k.clamp(lo, hi)).collect();
            keys.extend([lo, hi]);
            exec(format!("DROP TABLE IF EXISTS {table}"));
            exec(format!("CREATE TABLE {table} (k {} PRIMARY KEY)", types[ty]));
            let values: Vec<String> = keys.iter().map(|k| format!("({k})")).collect();
            exec(format!("INSERT INTO {table} VALUES {}", values.join(", ")));
            let filter = filtered.then_some("k % 3 <> 0");
            let want: Vec<Value> = keys
                .iter()
                .filter(|k| !filtered || *k % 3 != 0)
                .map(|&k| Value::Int(k as i128))
                .collect();
            prop_assert_eq!(&read(filter, chunk), &want);
            prop_assert_eq!(&read(filter, 0), &want);
        });
        // A failed chunk query is an error, and the session goes on.
        exec(format!("DROP TABLE IF EXISTS {table}"));
        exec(format!("CREATE TABLE {table} (k integer PRIMARY KEY)"));
        exec(format!("INSERT INTO {table} VALUES (1), (2), (3)"));
        let mut src = PgSource::connect(url).expect("source");
        src.key_chunk = 2;
        let e = scan(&mut src, Some("no_such_column > 0")).expect_err("bad filter");
        assert!(e.to_string().contains("no_such_column"), "{e}");
        let e = scan(&mut src, Some("k < 3 OR 1 / (k - 3) = 0")).expect_err("second chunk");
        assert!(e.to_string().contains("division by zero"), "{e}");
        let all: Vec<Value> = [1, 2, 3].map(Value::Int).to_vec();
        assert_eq!(scan(&mut src, None).expect("after the failures"), all);
        // Its snapshot's lock would hold the DROP below up.
        drop(src);
        // Not unique: never read in chunks (keyset paging would skip the
        // duplicates a chunk boundary splits).
        exec(format!("DROP TABLE IF EXISTS {table}"));
        exec(format!("CREATE TABLE {table} (k bigint NOT NULL)"));
        exec(format!(
            "INSERT INTO {table} VALUES (1), (2), (2), (2), (3)"
        ));
        let dup: Vec<Value> = [1, 2, 2, 2, 3].map(Value::Int).to_vec();
        assert_eq!(read(None, 1), dup);
        exec(format!("DROP TABLE IF EXISTS {table}"));
    }
}
