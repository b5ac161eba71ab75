//! How a PostgreSQL scan is read: its query built for the spec and read
//! through COPY, the `keys` reader or sqlx's rows, each row handed on as
//! values or encoded; and whether a whole table is read in storage order.

use driftsum_core::canon::CanonOptions;
use driftsum_core::key::KeyRange;
use driftsum_core::{LogicalType, Value};

use super::column::Wire;
use super::dialect::{Bind, PgSql};
use super::scan::{self, ScanCols};
use super::{keys, PgSource};
use crate::error::SourceError;
use crate::source::key_order::KeyOrder;
use crate::source::spec::{EncodedSink, RowSink, ScanSpec};
use crate::source::sql;

/// The least correlation of a key with its rows' places in the table
/// (`pg_stats.correlation`) at which a table is read in storage order
/// ([`PgSource::scan_values_unordered`]): about one row in 4,000 moved,
/// fewer than the leaf runs a pass reads again before it gives up.
const IN_KEY_ORDER: f64 = 0.9995;

impl PgSource {
    /// [`Source::scan`](crate::source::Source::scan).
    pub(super) fn scan_values(
        &mut self,
        spec: &ScanSpec,
        range: Option<&KeyRange>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        self.read(spec, range, true, Out::Values(sink)).map(|_| ())
    }

    /// [`Source::scan_unordered`](crate::source::Source::scan_unordered).
    pub(super) fn scan_values_unordered(
        &mut self,
        spec: &ScanSpec,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        self.read_unordered(spec, Out::Values(sink)).map(|_| ())
    }

    /// [`Source::scan_keys`](crate::source::Source::scan_keys): the rows
    /// of `keys`, each found through the index by equality on its columns
    /// ([`sql::keys_queries`]); `false` (nothing read) when a key cannot be
    /// looked up so.
    pub(super) fn scan_values_by_key(
        &mut self,
        spec: &ScanSpec,
        keys: &[Vec<Value>],
        sink: &mut RowSink<'_>,
    ) -> Result<bool, SourceError> {
        let (schema, name) = self.resolve(&spec.table)?;
        let table_cols = self.load_columns(&schema, &name)?;
        let (key_cols, scanned) = sql::scan_columns(spec, &table_cols)?;
        let scan = sql::Scan {
            spec,
            from: self.relation(&schema, &name),
            columns: &scanned,
            keys: &key_cols,
            range: None,
            in_key_order: false,
        };
        let Some(queries) = sql::keys_queries(&PgSql { inline_ints: false }, &scan, keys) else {
            return Ok(false);
        };
        let context = format!("reading rows by key of table {:?}", spec.table);
        let cols = ScanCols::new(spec, &scanned, context);
        for query in queries {
            scan::read(&mut self.reader(), query, None, &cols, sink)?;
        }
        Ok(true)
    }

    /// [`Source::scan_encoded`](crate::source::Source::scan_encoded): a
    /// whole table read through COPY, its value columns of the usual types
    /// written into canonical bytes as they are parsed.
    pub(super) fn scan_rows_encoded(
        &mut self,
        spec: &ScanSpec,
        unordered: bool,
        opts: &CanonOptions,
        sink: &mut EncodedSink<'_>,
    ) -> Result<bool, SourceError> {
        match unordered {
            true => self.read_unordered(spec, Out::Encoded(opts, sink)),
            false => self.read(spec, None, true, Out::Encoded(opts, sink)),
        }
    }

    /// One unique, non-null integer key and some value columns, stored in
    /// key order as far as the server's statistics know: a sequential scan
    /// then reads the table faster than its key's index does, with few
    /// rows out of key order (those written since the statistics were
    /// taken). Keys read this way order as their bytes do. See
    /// [`Source::reads_faster_unordered`](crate::source::Source::reads_faster_unordered).
    pub(super) fn in_storage_order(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        let ([key], false) = (spec.key.as_slice(), spec.values.is_empty()) else {
            return Ok(false);
        };
        let (schema, name) = self.resolve(&spec.table)?;
        // A table or materialized view: a partitioned table's scan
        // interleaves its partitions, far from key order, and has no
        // statistics of its own to say so.
        let kind = self.relkinds.get(&(schema.clone(), name.clone())).copied();
        if !matches!(kind, Some('r' | 'm')) {
            return Ok(false);
        }
        let cols = self.load_columns(&schema, &name)?;
        let int = cols
            .iter()
            .any(|c| c.name == key.name && c.wire == Wire::Int);
        if !int
            || key.rule.ty != LogicalType::Integer
            || !self.unique_not_null(&schema, &name, &key.name)?
        {
            return Ok(false);
        }
        // The correlation of the key's values with their place in the
        // table, from the last ANALYZE: 1 when stored in key order, about
        // 1 - 2x with a share x of the rows moved by updates. Rows out of
        // order cost a query for each run of leaves they fall in, so only a
        // table nearly in order is read so; one never analyzed (most
        // likely just loaded, so in order) is tried too.
        let stats = self.catalog(
            "SELECT correlation::text FROM pg_catalog.pg_stats \
             WHERE schemaname = $1 AND tablename = $2 AND attname = $3 \
             ORDER BY inherited LIMIT 1",
            &[&schema, &name, &key.name],
            "reading the key's statistics",
        )?;
        let correlation = stats
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|c| c.parse::<f64>().ok());
        Ok(correlation.is_none_or(|c| c >= IN_KEY_ORDER))
    }

    /// Runs a scan's SELECT: in key order, or for a whole table in the
    /// order the server reads it (see [`PgSource::read_unordered`]).
    /// Answers whether it read: an encoded scan reads only a whole table
    /// through a plain COPY (see [`Out::Encoded`]).
    fn read(
        &mut self,
        spec: &ScanSpec,
        range: Option<&KeyRange>,
        in_key_order: bool,
        out: Out<'_, '_>,
    ) -> Result<bool, SourceError> {
        let (schema, name) = self.resolve(&spec.table)?;
        let table_cols = self.load_columns(&schema, &name)?;
        let (keys, scanned) = sql::scan_columns(spec, &table_cols)?;
        let scan = sql::Scan {
            spec,
            from: self.relation(&schema, &name),
            columns: &scanned,
            keys: &keys,
            range,
            in_key_order,
        };
        // With integer bounds alone (a key range of a parallel scan) the
        // query is built again with them as literals, and read through COPY.
        let mut query = sql::scan_query(&PgSql { inline_ints: false }, &scan)?;
        let copy = query.binds.iter().all(|b| matches!(b, Bind::Int(_)));
        if copy && !query.binds.is_empty() {
            query = sql::scan_query(&PgSql { inline_ints: true }, &scan)?;
        }
        let whole = copy && range.is_none() && !in_key_order && spec.filter.is_none();
        let table = match whole {
            true => self.copy_table(&schema, &name, &scanned),
            false => None,
        };
        let copy = copy.then(|| scan::copy_statement(&query.sql, table.as_deref()));

        let cols = ScanCols::new(spec, &scanned, format!("reading table {:?}", spec.table));
        let ts_key = sql::timestamp_key(spec, &keys, |c| c.wire == Wire::Timestamp);
        let sink = match out {
            Out::Values(sink) => sink,
            Out::Encoded(opts, sink) => {
                let plain = range.is_none() && !spec.values.is_empty();
                let Some(copy) = copy.filter(|_| plain && !(in_key_order && ts_key.is_some()))
                else {
                    return Ok(false);
                };
                let r = &mut self.reader();
                scan::read_encoded(r, &query.sql, &copy, &cols, keys.len(), opts, sink)?;
                return Ok(true);
            }
        };
        // One unique integer key alone (the `keys` level): read in chunks
        // of keys, far fewer messages than a row each (see `keys.rs`).
        if let ([key], [(wire, rule)]) = (keys.as_slice(), cols.cols.as_slice()) {
            if in_key_order
                && self.key_chunk > 0
                && keys::eligible(*wire, rule, range.is_some())
                && self.unique_not_null(&schema, &name, &key.name)?
            {
                let from = self.relation(&schema, &name);
                let scan = keys::KeyScan {
                    from: &from,
                    column: &key.name,
                    filter: spec.filter.as_deref(),
                    rule,
                    context: cols.context(),
                    chunk: self.key_chunk,
                };
                return keys::read(&mut self.reader(), &scan, sink).map(|()| true);
            }
        }
        // A timestamp key column: rows are put in key-byte order here (see
        // `KeyOrder`), as its index gives them in time order.
        let Some(ts) = ts_key.filter(|_| in_key_order) else {
            scan::read(&mut self.reader(), query, copy.as_deref(), &cols, sink)?;
            return Ok(true);
        };
        let mut order = KeyOrder::new(ts, keys.len());
        {
            let mut in_order = |row: &[Value]| order.push(row, sink);
            scan::read(
                &mut self.reader(),
                query,
                copy.as_deref(),
                &cols,
                &mut in_order,
            )?;
        }
        let _ = order.flush(sink);
        Ok(true)
    }

    /// A whole table in storage order, handing rows to `out`: without
    /// `ORDER BY`, and with parallel workers and synchronized scans off
    /// (either would start or interleave the rows far from storage order,
    /// so far from key order). Answers whether it read, as
    /// [`PgSource::read`].
    fn read_unordered(&mut self, spec: &ScanSpec, out: Out<'_, '_>) -> Result<bool, SourceError> {
        let settings = [
            "SET LOCAL max_parallel_workers_per_gather = 0".to_string(),
            "SET LOCAL synchronize_seqscans = off".to_string(),
        ];
        // A server without these settings reads in key order, as callers
        // accept any order.
        if self
            .run(&settings, "reading a table in storage order")
            .is_err()
        {
            scan::recover(&mut self.session);
            return self.read(spec, None, true, out);
        }
        let read = self.read(spec, None, false, out);
        let reset = [
            "RESET max_parallel_workers_per_gather".to_string(),
            "RESET synchronize_seqscans".to_string(),
        ];
        let _ = self.run(&reset, "reading a table in storage order");
        read
    }
}

/// Where [`PgSource::read`] hands a scan's rows.
enum Out<'s, 'a> {
    /// Each row's values.
    Values(&'s mut RowSink<'a>),
    /// Each row encoded under these options (see
    /// [`Source::scan_encoded`](crate::source::Source::scan_encoded)), for
    /// a whole table read through a plain COPY only: any other scan reads
    /// nothing.
    Encoded(&'s CanonOptions, &'s mut EncodedSink<'a>),
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use driftsum_core::coerce::ColumnRule;
    use driftsum_core::row::RowHasher;

    use super::*;
    use crate::source::postgres::test_writer::TestWriter;
    use crate::source::{ColumnSpec, Source};

    /// Against the test server (`DRIFTSUM_TEST_POSTGRES`; skipped without
    /// it): a table of every column type the connector reads, with edge
    /// values of each family and NULLs, read encoded (in key order and in
    /// storage order, under each float option) gives every row's key and
    /// row bytes exactly as the value path and the row hasher do; and a
    /// scan the encoded path cannot take (a key range) reads nothing.
    #[test]
    fn encoded_rows_are_the_value_paths_rows() {
        let Some(writer) = TestWriter::connect() else {
            return;
        };
        let url = &writer.url;
        let table = format!("driftsum_encoded_{}", std::process::id());
        let exec = |sql: String| writer.exec(sql);
        // Each column cycles through a family of edge values (and NULL).
        exec(format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} (
               id bigint PRIMARY KEY, i2 smallint, i4 integer, i8 bigint,
               f8 double precision, f4 real, money numeric(12,2), num numeric,
               ts timestamp, ts3 timestamp(3), tz timestamptz, d date,
               t text, vc varchar(9), ch char(5), b boolean, u uuid, by bytea);
             INSERT INTO {table} SELECT g,
               (ARRAY[-32768, 0, 32767, NULL])[g % 4 + 1]::smallint,
               (ARRAY[-2147483648, -1, 2147483647, NULL])[g % 4 + 1]::integer,
               (ARRAY[-9223372036854775808, 0, 9223372036854775807, g * 7919, NULL])[g % 5 + 1],
               (ARRAY['NaN', '-0', 'Infinity', '-Infinity', '5e-324', '0.1',
                      '1.7976931348623157e308', (g * 1.000001)::text, NULL])[g % 9 + 1]::float8,
               (ARRAY['NaN', '-0', '3.4028235e38', '0.1', NULL])[g % 5 + 1]::real,
               (ARRAY['0', '-0.01', '9999999999.99', (g * 3.17)::text, NULL])[g % 5 + 1]::numeric(12,2),
               (ARRAY['NaN', 'Infinity', '-Infinity', '0.000000001', '-12345678901234567890.5',
                      '100', '1.10', NULL])[g % 8 + 1]::numeric,
               (ARRAY['infinity', '-infinity', '4713-01-01 00:00:00 BC', '294276-12-31 23:59:59.999999',
                      '2020-02-29 12:34:56.789012', '1970-01-01', NULL])[g % 7 + 1]::timestamp,
               (ARRAY['2020-02-29 12:34:56.789', '1999-12-31 23:59:59.999', NULL])[g % 3 + 1]::timestamp(3),
               (ARRAY['infinity', '2020-02-29 12:34:56.789012+05:30', '1900-01-01 00:00:00+00', NULL])[g % 4 + 1]::timestamptz,
               (ARRAY['infinity', '-infinity', '2000-01-01', '0044-03-15 BC', NULL])[g % 5 + 1]::date,
               (ARRAY['', ' ', 'ab  ', 'ünï 😀', 'row ' || g, NULL])[g % 6 + 1],
               (ARRAY['', 'x  ', 'nine char', NULL])[g % 4 + 1],
               (ARRAY['', 'ab', 'ab   ', NULL])[g % 4 + 1],
               (ARRAY[true, false, NULL])[g % 3 + 1],
               (ARRAY['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', NULL])[g % 3 + 1]::uuid,
               (ARRAY['\\x'::bytea, '\\x00ff'::bytea, NULL])[g % 3 + 1]
             FROM generate_series(1, 3000) g;"
        ));
        let mut src = PgSource::connect(url).expect("source");
        let schema = src.schema(&table).expect("schema");
        let column = |c: &crate::source::Column| ColumnSpec {
            name: c.name.clone(),
            rule: ColumnRule {
                trailing_spaces: c.trailing_spaces,
                ..ColumnRule::new(c.ty)
            },
        };
        let spec = ScanSpec {
            table: table.clone(),
            key: schema.columns.iter().take(1).map(column).collect(),
            values: schema.columns.iter().skip(1).map(column).collect(),
            filter: None,
            ranges: Vec::new(),
        };
        let mut values: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for digits in [None, Some(6)] {
            let opts = CanonOptions {
                float_digits: digits,
            };
            let mut hasher = RowHasher::new(spec.key.len(), spec.width(), &opts);
            values.clear();
            src.scan_values(&spec, None, &mut |row| {
                let (k, r) = hasher.encode(row);
                values.push((k.to_vec(), r.to_vec()));
                ControlFlow::Continue(())
            })
            .expect("values");
            assert_eq!(values.len(), 3000);
            for unordered in [false, true] {
                let mut encoded = Vec::new();
                let read = src
                    .scan_rows_encoded(&spec, unordered, &opts, &mut |k, r| {
                        encoded.push((k.to_vec(), r.to_vec()));
                        ControlFlow::Continue(())
                    })
                    .expect("encoded");
                assert!(read, "a whole table is read encoded");
                // In key order, row for row; in storage order, the same rows.
                if unordered {
                    encoded.sort();
                }
                assert!(encoded == values, "{digits:?}, unordered {unordered}");
            }
        }
        // A key range is not a whole table: nothing read.
        let range = KeyRange {
            after: None,
            through: driftsum_core::key::encode(&[Value::Int(10)]),
        };
        let mut rows = 0;
        let read = src
            .read(
                &spec,
                Some(&range),
                true,
                Out::Encoded(&CanonOptions::default(), &mut |_, _| {
                    rows += 1;
                    ControlFlow::Continue(())
                }),
            )
            .expect("range");
        assert!(!read && rows == 0);
        // Nor is a table keyed by a timestamp read in key order (its rows
        // are put in key-byte order from values), nor a spec with typed
        // ranges (they test values): both are read as values.
        let ts = |c: &&ColumnSpec| c.name == "ts";
        let ts_spec = ScanSpec {
            key: spec.values.iter().filter(ts).cloned().collect(),
            values: spec.values.iter().filter(|c| !ts(c)).cloned().collect(),
            ..spec.clone()
        };
        assert_eq!(ts_spec.key.len(), 1);
        let mut none = |_: &[u8], _: &[u8]| -> ControlFlow<()> { panic!("a row read") };
        let opts = CanonOptions::default();
        assert!(!src
            .scan_rows_encoded(&ts_spec, false, &opts, &mut none)
            .expect("ts"));
        let mut ranged = spec.clone();
        ranged.ranges.push(crate::source::ColumnRange {
            column: ts_spec.key[0].clone(),
            range: driftsum_core::filter::ValueRange::default(),
        });
        let mut filtered = crate::source::filter::Filtered(Box::new(src));
        assert!(!filtered
            .scan_encoded(&ranged, true, &opts, &mut none)
            .expect("ranges"));
        // The source's snapshot holds a lock on the table until it closes.
        drop(filtered);
        exec(format!("DROP TABLE {table}"));
    }
}
