//! The PostgreSQL connector (sqlx): schema discovery from `pg_catalog`,
//! key-ordered streaming scans (or, for a table keyed by one integer,
//! sequential scans in storage order) and range scans, all inside one
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
//! never appear in a message. A libpq `key=value` string is read as the
//! equivalent URL (`url.rs`); a URL naming no user connects as `PGUSER`, else
//! the operating-system user, as libpq does.

mod binary;
mod column;
mod conninfo;
mod copy;
mod count;
mod decode;
mod dialect;
mod encode;
mod keys;
mod read;
mod scan;
mod session;
mod target;
#[cfg(test)]
pub(crate) mod test_writer;

use std::collections::HashMap;
use std::time::Duration;

use driftsum_core::canon::CanonOptions;
use driftsum_core::coerce::TrailingSpaces;
use driftsum_core::key::KeyRange;
use driftsum_core::{LogicalType, Value};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Row};

#[cfg(test)]
use super::secrets;
use super::secrets::scrub;
use super::server;
use super::spec::{quote_ident, Column, EncodedSink, RowSink, ScanSpec, Source, TableSchema};
use super::sql;
use crate::error::SourceError;
pub use column::logical_type;
use column::{classify, PgColumn, Wire};
#[cfg(test)]
use conninfo::{first_schema, pgpass_password, search_path_from_options, startup_options};
use scan::{db_message, error_text};
use session::open_session;
pub use target::PgTarget;

/// A read-only PostgreSQL connection inside one snapshot.
pub struct PgSource {
    session: server::Session<PgConnection>,
    /// The URL without its password.
    location: String,
    /// The schema of unqualified table names.
    default_schema: String,
    /// Discovered columns by (schema, table).
    columns: HashMap<(String, String), Vec<PgColumn>>,
    /// Each resolved table's `pg_class.relkind` (see [`PgSource::relation`]).
    relkinds: HashMap<(String, String), char>,
    /// The generated columns of each table whose columns were loaded, which
    /// `COPY table (columns)` refuses to name (see [`PgSource::copy_table`]).
    generated: HashMap<(String, String), Vec<String>>,
    /// Secrets to scrub from any message, in case a driver ever echoes one.
    secrets: Vec<String>,
    /// How to connect again, for [`Source::fork`].
    opts: PgConnectOptions,
    /// This transaction's snapshot, once exported for forks.
    snapshot: Option<String>,
    /// How long a statement waits for a table lock (the URL's
    /// `lock_timeout`).
    lock_timeout: Duration,
    /// Keys per chunk of a key scan (`keys.rs`); 0 reads keys row by row.
    key_chunk: usize,
}

impl PgSource {
    pub fn connect(url: &str) -> Result<PgSource, SourceError> {
        let PgTarget {
            opts,
            location,
            secrets,
            lock_timeout,
            default_schema,
        } = PgTarget::from_url(url)?;
        let rt = server::runtime()?;
        let open_err = |e: sqlx::Error| SourceError::Open {
            location: location.clone(),
            message: super::tls::explain(scrub(error_text(&e), &secrets)),
        };
        let conn = server::block_on_timeout(
            &rt,
            server::CONNECT_TIMEOUT,
            &format!("connecting to {location}"),
            open_session(&opts, None, lock_timeout, open_err),
        )?;
        Ok(PgSource {
            session: server::Session::new(conn, rt, location.clone()),
            location,
            default_schema,
            columns: HashMap::new(),
            relkinds: HashMap::new(),
            generated: HashMap::new(),
            secrets,
            opts,
            snapshot: None,
            lock_timeout,
            key_chunk: keys::CHUNK_KEYS,
        })
    }

    fn err(&self, context: impl Into<String>, e: &sqlx::Error) -> SourceError {
        SourceError::query(context, db_message(e, self.lock_timeout, &self.secrets))
    }

    /// After a failed query: leaves the aborted state, same snapshot.
    fn recover(&mut self) {
        scan::recover(&mut self.session);
    }

    /// This session as a scan reads it.
    fn reader(&mut self) -> scan::Reader<'_> {
        scan::Reader {
            session: &mut self.session,
            secrets: &self.secrets,
            lock_timeout: self.lock_timeout,
        }
    }

    /// Runs statements outside the scan path, returning the first column of
    /// the last one's first row as text.
    fn run(&mut self, stmts: &[String], context: &str) -> Result<Option<String>, SourceError> {
        let (conn, rt) = self.session.open()?;
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
        let (conn, rt) = self.session.open()?;
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

    /// What `COPY … TO` names to read `columns` of a resolved table whole
    /// straight from the table (see [`scan::copy_statement`]): `"s"."t"
    /// ("a", "b")`, for a plain table (COPY reads no view, partitioned or
    /// foreign table, and no inheritance child, as `ONLY` does) whose
    /// columns are read as stored (no cast) and not generated; `None`
    /// otherwise.
    fn copy_table(&self, schema: &str, name: &str, columns: &[&PgColumn]) -> Option<String> {
        let key = (schema.to_string(), name.to_string());
        let generated = self.generated.get(&key)?;
        let plain = |c: &&PgColumn| {
            dialect::select_expr(c) == quote_ident(&c.name) && !generated.contains(&c.name)
        };
        if self.relkinds.get(&key) != Some(&'r') || columns.is_empty() || !columns.iter().all(plain)
        {
            return None;
        }
        let names: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
        Some(format!(
            "{}.{} ({})",
            quote_ident(schema),
            quote_ident(name),
            names.join(", ")
        ))
    }

    /// Whether column `column` of a resolved table is NOT NULL and alone the
    /// key of a unique index (see [`keys::ELIGIBLE`]).
    fn unique_not_null(
        &mut self,
        schema: &str,
        name: &str,
        column: &str,
    ) -> Result<bool, SourceError> {
        let rows = self.catalog(
            keys::ELIGIBLE,
            &[schema, name, column],
            "reading the key's indexes",
        )?;
        Ok(rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .as_deref()
            == Some("true"))
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
                     FROM pg_catalog.pg_collation co WHERE co.oid = a.attcollation)::text, \
                    (coalesce(to_jsonb(a) ->> 'attgenerated', '') <> '')::text \
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
        let mut generated = Vec::new();
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
            if text(6) == "true" {
                generated.push(name.clone());
            }
            cols.push(PgColumn {
                name,
                declared,
                wire,
                ty,
                byte_order: text(5) == "true",
            });
        }
        self.generated.insert(key.clone(), generated);
        self.columns.insert(key, cols.clone());
        Ok(cols)
    }
}

impl Source for PgSource {
    fn describe(&self) -> String {
        self.location.clone()
    }

    fn estimate_rows(&mut self, table: &str) -> Option<u64> {
        let (schema, name) = self.resolve(table).ok()?;
        let rows = self
            .catalog(
                super::estimate::POSTGRES,
                &[&schema, &name],
                "estimating rows",
            )
            .ok()?;
        super::estimate::parse(rows.first()?.first()?.as_deref())
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
        let mut names = server::first_column(rows);
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
            primary_key: server::first_column(pk),
        })
    }

    fn scan(
        &mut self,
        spec: &ScanSpec,
        range: Option<&KeyRange>,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        self.scan_values(spec, range, sink)
    }

    /// See [`PgSource::in_storage_order`].
    fn reads_faster_unordered(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        self.in_storage_order(spec)
    }

    fn ranges_use_index(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        let Some(lead) = spec.key.first() else {
            return Ok(true);
        };
        let (schema, name) = self.resolve(&spec.table)?;
        let cols = self.load_columns(&schema, &name)?;
        let d = dialect::PgSql { inline_ints: false };
        Ok(cols
            .iter()
            .find(|c| c.name == lead.name)
            .is_some_and(|c| sql::Dialect::bounds_by_index(&d, c, lead.rule.ty)))
    }

    fn looks_up_keys(&mut self, spec: &ScanSpec) -> Result<bool, SourceError> {
        let (schema, name) = self.resolve(&spec.table)?;
        let cols = self.load_columns(&schema, &name)?;
        let (keys, _) = sql::scan_columns(spec, &cols)?;
        Ok(sql::looks_up(
            &dialect::PgSql { inline_ints: false },
            spec,
            &keys,
        ))
    }

    /// See [`PgSource::scan_values_by_key`].
    fn scan_keys(
        &mut self,
        spec: &ScanSpec,
        keys: &[Vec<Value>],
        sink: &mut RowSink<'_>,
    ) -> Result<bool, SourceError> {
        self.scan_values_by_key(spec, keys, sink)
    }

    /// See [`PgSource::read_unordered`].
    fn scan_unordered(
        &mut self,
        spec: &ScanSpec,
        sink: &mut RowSink<'_>,
    ) -> Result<(), SourceError> {
        self.scan_values_unordered(spec, sink)
    }

    /// See [`PgSource::scan_rows_encoded`].
    fn scan_encoded(
        &mut self,
        spec: &ScanSpec,
        unordered: bool,
        opts: &CanonOptions,
        sink: &mut EncodedSink<'_>,
    ) -> Result<bool, SourceError> {
        self.scan_rows_encoded(spec, unordered, opts, sink)
    }

    fn count(&mut self, spec: &ScanSpec) -> Result<Option<u64>, SourceError> {
        self.count_rows(spec).map(Some)
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
            session: server::Session::new(conn, rt, self.location.clone()),
            location: self.location.clone(),
            default_schema: self.default_schema.clone(),
            columns: self.columns.clone(),
            relkinds: self.relkinds.clone(),
            generated: self.generated.clone(),
            secrets: self.secrets.clone(),
            opts: self.opts.clone(),
            snapshot: Some(id),
            lock_timeout: self.lock_timeout,
            key_chunk: self.key_chunk,
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
        Ok(super::spec::even_cuts(lo, hi, rows_per_range))
    }
}

#[cfg(test)]
mod tests {
    use super::dialect::{Bind, PgSql};
    use super::*;
    use crate::source::sql;
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
        let url_password = secrets::password;
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

    /// The range condition the scans use, with its bound values.
    fn range_condition(
        keys: &[&PgColumn],
        lead: LogicalType,
        (after, through): &(Option<Vec<Value>>, Vec<Value>),
    ) -> Option<(String, Vec<Bind>)> {
        let d = PgSql { inline_ints: false };
        let mut binds = sql::Binds::new(&d);
        let b = (after.as_deref(), through.as_slice());
        let cond = sql::range_condition(&d, keys, lead, b, &mut binds)?;
        Some((cond, binds.into_vec()))
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
        let bounds = (
            Some(vec![Value::Int(1), Value::Text("x".into())]),
            vec![Value::Int(5), Value::Text("y".into())],
        );
        let int = LogicalType::Integer;
        let (cond, binds) = range_condition(&[&a, &b], int, &bounds).unwrap();
        assert_eq!(
            cond,
            "(\"a\", \"b\" COLLATE \"C\") > ($1::int8, CAST($2 AS text)) AND \
             (\"a\", \"b\" COLLATE \"C\") <= ($3::int8, CAST($4 AS text))"
        );
        assert_eq!(binds.len(), 4);
        // A value that cannot be bound means no range (a full, correct scan).
        let odd = (None, vec![Value::Int(i128::MAX), Value::Text("y".into())]);
        assert!(range_condition(&[&a, &b], int, &odd).is_none());
        // A leading column that can be bound bounds the range alone.
        let nul = (None, vec![Value::Int(1), Value::Text("a\0b".into())]);
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

    fn odd_text() -> (Option<Vec<Value>>, Vec<Value>) {
        (None, vec![Value::Text("y".into())])
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
        let b = (
            Some(text("2024-01-02T03:04:05.5Z")),
            text("2024-01-02T03:04:07Z"),
        );
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
                Bind::Cast(s, _) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["2024-01-02 03:04:05+00", "2024-01-02 03:04:07+00"]);
        // A bound of a far year (or an infinity) leaves its side open.
        let far = (
            Some(text("10000-01-01T00:00:00Z")),
            text("<invalid: infinity>"),
        );
        assert!(range_condition(&[&ts], ts.ty, &far).is_none());
        // Read as a date, a timestamp's key text is not a timestamp's.
        assert!(range_condition(&[&ts], T::Date, &b).is_none());
    }
}
