//! How a MySQL scan is read: its query built for the spec (by key range,
//! or by exact keys), run through sqlx's binary protocol, each row decoded
//! and, for a date-time key, put in key-byte order a second at a time.

use driftsum_core::coerce::ColumnRule;
use driftsum_core::key::KeyRange;
use driftsum_core::Value;
use futures_util::TryStreamExt;
use sqlx::mysql::{MySql, MySqlArguments};
use sqlx::AssertSqlSafe;

use super::column::{ColInfo, Wire};
use super::decode::decode_into;
use super::dialect::{quote_ident, MySqlSql, Param};
use super::{query_error, MySqlSource};
use crate::error::SourceError;
use crate::source::key_order::KeyOrder;
use crate::source::spec::{RowSink, ScanSpec};
use crate::source::sql;

impl MySqlSource {
    /// [`Source::scan`](crate::source::Source::scan).
    pub(super) fn scan_values(
        &mut self,
        spec: &ScanSpec,
        range: Option<&KeyRange>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        let info = self.table_info(&spec.table)?;
        let (keys, cols) = sql::scan_columns(spec, &info.columns)?;
        let query = sql::scan_query(
            &MySqlSql,
            &sql::Scan {
                spec,
                from: quote_ident(&spec.table),
                columns: &cols,
                keys: &keys,
                range,
                in_key_order: true,
            },
        )?;
        self.read(spec, &keys, &cols, query, true, sink)
    }

    /// [`Source::scan_keys`](crate::source::Source::scan_keys): the rows of
    /// `keys`, each found through the index by equality on its columns
    /// ([`sql::keys_queries`]); `false` (nothing read) when a key cannot be
    /// looked up so.
    pub(super) fn scan_values_by_key(
        &mut self,
        spec: &ScanSpec,
        keys: &[Vec<Value>],
        sink: &mut RowSink<'_>,
    ) -> Result<bool, SourceError> {
        let info = self.table_info(&spec.table)?;
        let (key_cols, cols) = sql::scan_columns(spec, &info.columns)?;
        let scan = sql::Scan {
            spec,
            from: quote_ident(&spec.table),
            columns: &cols,
            keys: &key_cols,
            range: None,
            in_key_order: false,
        };
        let Some(queries) = sql::keys_queries(&MySqlSql, &scan, keys) else {
            return Ok(false);
        };
        for query in queries {
            self.read(spec, &key_cols, &cols, query, false, sink)?;
        }
        Ok(true)
    }

    /// Runs one scan query of `spec` (its `keys` and `cols` as the catalog
    /// has them), handing each row to `sink`; in key order when
    /// `in_key_order` (a date-time key's rows of one second sorted here).
    fn read(
        &mut self,
        spec: &ScanSpec,
        keys: &[&ColInfo],
        cols: &[&ColInfo],
        query: sql::Query<Param>,
        in_key_order: bool,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        let rules: Vec<(Wire, ColumnRule)> = cols
            .iter()
            .zip(spec.columns())
            .map(|(c, s)| (c.wire, s.rule))
            .collect();
        let context = format!("reading table {:?} in {}", spec.table, self.location);
        let lock_timeout = self.lock_timeout;
        let (conn, rt) = self.session.open()?;
        let mut q: sqlx::query::Query<'_, MySql, MySqlArguments> =
            sqlx::query(AssertSqlSafe(query.sql));
        for p in query.binds {
            q = match p {
                Param::I(i) => q.bind(i),
                Param::U(u) => q.bind(u),
                Param::B(b) => q.bind(b),
                Param::S(s) | Param::Decimal(s, _) => q.bind(s),
            };
        }
        // A date-time key column: rows put in key-byte order (see
        // `KeyOrder`), as its index gives them in time order.
        let mut order = sql::timestamp_key(spec, keys, |c| matches!(c.wire, Wire::DateTime { .. }))
            .filter(|_| in_key_order)
            .map(|ts| KeyOrder::new(ts, keys.len()));
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
                let flow = match order.as_mut() {
                    Some(o) => o.push(&buf, sink),
                    None => sink(&buf),
                };
                if flow.is_break() {
                    return Ok(());
                }
            }
            if let Some(o) = order.as_mut() {
                let _ = o.flush(sink);
            }
            Ok(())
        })
    }
}
