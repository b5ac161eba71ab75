//! Scans that read a rowid table's b-tree pages instead of running a query:
//! which tables qualify (their [`PageLayout`]), which scans (a rowid key,
//! integer bounds), and turning each cell into a row. The page format itself
//! is in [`pages`](super::pages).

use std::ops::ControlFlow;

use driftsum_core::key::{self, KeyRange};
use driftsum_core::{LogicalType, Value};
use rusqlite::types::ValueRef;
use rusqlite::OptionalExtension;

use super::dialect::stored_as_declared;
use super::pages::{self, PageLayout};
use super::time_keys::PageOrder;
use super::types::{decode_into, real_affinity};
use super::SqliteSource;
use crate::error::SourceError;
use crate::source::spec::{quote_ident, RowSink, ScanSpec};

/// Rows a proving scan holds back before sending any: a table whose rowid
/// order is not its key order (rows written in any order) usually shows it
/// within them, and is then read through SQL, in key order, having sent
/// nothing.
const HELD_ROWS: usize = 1024;

/// Where a scanned column's value comes from when reading pages.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Rowid,
    Record { at: usize, real: bool },
}

impl SqliteSource {
    /// The page layout of `table`, looked up once: `None` unless it is a
    /// rowid table with no generated or hidden columns (those are not stored
    /// where the declaration puts them), or when no name reaches its rowid.
    pub(super) fn page_layout(&mut self, table: &str) -> Result<Option<PageLayout>, SourceError> {
        if let Some(layout) = self.layouts.get(table) {
            return Ok(layout.clone());
        }
        let layout = self.look_up_layout(table)?;
        self.layouts.insert(table.to_string(), layout.clone());
        Ok(layout)
    }

    fn look_up_layout(&self, table: &str) -> Result<Option<PageLayout>, SourceError> {
        let err = |e| self.query_err("reading the schema", e);
        let one = |sql: &str| -> Result<Option<i64>, SourceError> {
            self.conn
                .query_row(sql, [table], |r| r.get(0))
                .optional()
                .map_err(err)
        };
        let root = one("SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = ?1")?;
        let Some(root) = root.and_then(|r| u32::try_from(r).ok()).filter(|&r| r > 1) else {
            return Ok(None);
        };
        let cols = self.columns(table)?;
        if cols.iter().any(|c| c.3 != 0) {
            return Ok(None);
        }
        // A WITHOUT ROWID table's root is an index b-tree.
        let without_rowid =
            one("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1")?;
        if without_rowid != Some(0) {
            return Ok(None);
        }
        let rowid = self.rowid_alias(table, &cols)?;
        let rowid_sql = match &rowid {
            Some(alias) => alias.clone(),
            None => match ["rowid", "_rowid_", "oid"]
                .into_iter()
                .find(|n| !cols.iter().any(|c| c.0.eq_ignore_ascii_case(n)))
            {
                Some(n) => n.to_string(),
                None => return Ok(None),
            },
        };
        Ok(Some(PageLayout {
            table: table.to_string(),
            root,
            rowid,
            rowid_sql,
            columns: cols
                .into_iter()
                .map(|(name, declared, ..)| {
                    let real = real_affinity(&declared);
                    (name, real)
                })
                .collect(),
        }))
    }

    /// Scans `spec` by reading `layout`'s pages; `Ok(false)` (having sent
    /// nothing) when this scan cannot be read that way: it must be keyed by
    /// the rowid alias, or be a whole scan of a table whose rowid order is
    /// its key order, proven before (`order`) or as it reads, or a whole
    /// scan in any order ([`PageOrder::Any`], whose rows are sent only when
    /// their keys are wanted).
    ///
    /// A proving scan holds its first [`HELD_ROWS`] rows back: a row that
    /// breaks the proof among them ends the scan with `Ok(false)`, nothing
    /// sent. A row that breaks it later is sent, and the rows after it, in
    /// rowid order: every row is sent once, and a receiver that needs key
    /// order sees the disorder (as from any source whose order is not key
    /// order) and sorts, or reads again; the connection then knows to read
    /// the table through SQL.
    pub(super) fn scan_pages(
        &mut self,
        layout: &PageLayout,
        spec: &ScanSpec,
        range: Option<&KeyRange>,
        mut order: PageOrder<'_>,
        sink: &mut RowSink<'_>,
    ) -> Result<bool, SourceError> {
        let by_alias = match (spec.key.as_slice(), &layout.rowid) {
            ([key], Some(alias)) => key.name == *alias && key.rule.ty == LogicalType::Integer,
            _ => false,
        };
        // Keyed by the rowid alias, rowid order is key order: nothing to
        // prove, though a scan in any order still sends only wanted rows.
        if by_alias && !matches!(order, PageOrder::Any(_)) {
            order = PageOrder::ByAlias;
        } else if !by_alias && (range.is_some() || matches!(order, PageOrder::ByAlias)) {
            return Ok(false);
        }
        let mut slots = Vec::with_capacity(spec.key.len() + spec.values.len());
        for c in spec.columns() {
            let Some(at) = layout.columns.iter().position(|(n, _)| *n == c.name) else {
                return Ok(false);
            };
            slots.push(if layout.rowid.as_ref() == Some(&c.name) {
                Slot::Rowid
            } else {
                Slot::Record {
                    at,
                    real: layout.columns[at].1,
                }
            });
        }
        let (after, through) = match range {
            None => (None, None),
            Some(r) => match rowid_bounds(r) {
                Some(RowidBounds::Range(after, through)) => (after, through),
                Some(RowidBounds::Empty) => return Ok(true),
                None => return Ok(false),
            },
        };
        let Some(file) = pages::PageFile::open(&self.conn) else {
            return Ok(false);
        };
        if let PageOrder::Prove(p) = &mut order {
            if !super::time_keys::last_row_holds_greatest_key(&self.conn, spec, &layout.rowid_sql)?
            {
                p.refute();
                return Ok(false);
            }
        }
        let rules: Vec<_> = spec.columns().map(|c| c.rule).collect();
        let nkey = spec.key.len();
        let mut buf: Vec<Value> = vec![Value::Null; rules.len()];
        let (mut proof, mut wanted) = match order {
            PageOrder::Prove(p) => (Some(p), None),
            PageOrder::Any(w) => (None, Some(w)),
            _ => (None, None),
        };
        // Rows a proving scan has not sent yet; `None` once it sends as it
        // reads.
        let mut held: Option<Vec<Vec<Value>>> = proof.as_ref().map(|_| Vec::new());
        // Whether the receiver asked for no more rows.
        let mut stopped = false;
        // A key stored in another storage class than its column's, as
        // `read_sql` notes it (a rowid alias never is; any other key may be,
        // in a scan in rowid order).
        let mut saw_odd_key = false;
        // A record written before columns were added holds fewer values; the
        // missing ones are the added columns' defaults, constant per column,
        // asked of SQLite once.
        let mut defaults: Vec<Option<rusqlite::types::Value>> = vec![None; layout.columns.len()];
        let mut visit =
            |rowid: i64, record: &pages::Record<'_>| -> Result<pages::Flow, SourceError> {
                for (i, (slot, rule)) in slots.iter().zip(&rules).enumerate() {
                    // A row whose key is not wanted: its values are not decoded.
                    if i == nkey && wanted.as_mut().is_some_and(|w| !w(&buf[..nkey])) {
                        return Ok(pages::Flow::Go);
                    }
                    let v = match *slot {
                        Slot::Rowid => ValueRef::Integer(rowid),
                        Slot::Record { at, real } => match record.get(at) {
                            // REAL affinity stores integral values as integers
                            // and reads them back as floats.
                            Some(ValueRef::Integer(i)) if real => ValueRef::Real(i as f64),
                            Some(v) => v,
                            None => {
                                if defaults[at].is_none() {
                                    defaults[at] = Some(self.column_of(layout, at, rowid)?);
                                }
                                defaults[at].as_ref().map_or(ValueRef::Null, ValueRef::from)
                            }
                        },
                    };
                    let out = &mut buf[i];
                    decode_into(out, v, rule).map_err(|u| {
                        // Named only on this error path: the lookup costs a scan.
                        let column = spec.columns().nth(i).map_or("", |c| c.name.as_str());
                        u.error(&spec.table, column)
                    })?;
                    if i < nkey {
                        if let Some(p) = proof.as_deref_mut() {
                            p.key(i, v, out);
                        }
                        saw_odd_key |= !stored_as_declared(v, rule.ty);
                    }
                }
                if nkey == slots.len() && wanted.as_mut().is_some_and(|w| !w(&buf)) {
                    return Ok(pages::Flow::Go);
                }
                let holds = proof.as_deref_mut().is_some_and(|p| p.row_end());
                if let Some(rows) = held.as_mut() {
                    if !holds {
                        // Broken before anything was sent: read through SQL.
                        return Ok(pages::Flow::Stop);
                    }
                    rows.push(buf.clone());
                    if rows.len() < HELD_ROWS {
                        return Ok(pages::Flow::Go);
                    }
                    let rows = held.take().unwrap_or_default();
                    for row in &rows {
                        if sink(row).is_break() {
                            stopped = true;
                            return Ok(pages::Flow::Stop);
                        }
                    }
                    return Ok(pages::Flow::Go);
                }
                Ok(match sink(&buf) {
                    ControlFlow::Continue(()) => pages::Flow::Go,
                    ControlFlow::Break(()) => {
                        stopped = true;
                        pages::Flow::Stop
                    }
                })
            };
        let walk = pages::TableWalk::new(&file, after, through);
        let mut walk = match slots.iter().any(|s| matches!(s, Slot::Record { .. })) {
            true => walk,
            false => walk.rowids_only(),
        };
        let walked = walk.run(layout.root, &mut visit);
        if saw_odd_key {
            self.odd_keys.insert(spec.table.clone());
        }
        walked.map_err(|e| match e {
            pages::PageError::Visit(e) => e,
            e => SourceError::query(
                format!(
                    "reading table {:?} from the pages of {}",
                    spec.table, self.path
                ),
                e,
            ),
        })?;
        let Some(proof) = proof else {
            return Ok(true);
        };
        if proof.broken() {
            // Held rows not sent yet are dropped: the scan is read again.
            return Ok(held.is_none());
        }
        if let Some(rows) = held {
            for row in &rows {
                if sink(row).is_break() {
                    stopped = true;
                    break;
                }
            }
        }
        proof.whole = !stopped;
        Ok(true)
    }

    /// One column of one row, through SQL.
    fn column_of(
        &self,
        layout: &PageLayout,
        at: usize,
        rowid: i64,
    ) -> Result<rusqlite::types::Value, SourceError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ?1",
            quote_ident(&layout.columns[at].0),
            quote_ident(&layout.table),
            quote_ident(&layout.rowid_sql)
        );
        self.conn
            .query_row(&sql, [rowid], |r| r.get(0))
            .map_err(|e| self.query_err("reading a column default", e))
    }
}

/// Scan bounds on a rowid key.
#[derive(Debug, PartialEq)]
pub(super) enum RowidBounds {
    /// `after < rowid <= through`, either side open.
    Range(Option<i64>, Option<i64>),
    /// No rowid can fall inside.
    Empty,
}

/// The rowid bounds of a range; `None` when its bounds are not integers
/// (or not keys at all: the query's scan then says so).
pub(super) fn rowid_bounds(r: &KeyRange) -> Option<RowidBounds> {
    let int = |k: &driftsum_core::Key| match key::decode(k.as_bytes())?.as_slice() {
        [Value::Int(i)] => Some(*i),
        _ => None,
    };
    let after = match &r.after {
        None => None,
        Some(a) => Some(int(a)?),
    };
    let through = int(&r.through)?;
    if after.is_some_and(|a| a >= i64::MAX as i128) || through < i64::MIN as i128 {
        return Some(RowidBounds::Empty);
    }
    let after = after.and_then(|a| i64::try_from(a).ok());
    let through = i64::try_from(through).ok();
    Some(RowidBounds::Range(after, through))
}

#[cfg(test)]
mod tests {
    //! Proving scans of tables keyed by text timestamps whose proof breaks
    //! midway, against a naive reference: every row read through SQL and
    //! sorted by its key's bytes.

    use super::super::time_keys;
    use super::*;
    use crate::source::spec::{ColumnSpec, Source};
    use crate::source::sqlite::scratch::Db;
    use driftsum_core::coerce::ColumnRule;
    use driftsum_core::key;
    use proptest::prelude::*;

    type Rows = Vec<Vec<Value>>;

    fn spec() -> ScanSpec {
        let column = |name: &str, ty| ColumnSpec {
            name: name.into(),
            rule: ColumnRule::new(ty),
        };
        ScanSpec {
            table: "t".into(),
            key: vec![column("k", LogicalType::TimestampNaive { precision: 6 })],
            values: vec![column("v", LogicalType::Text)],
            filter: None,
            ranges: Vec::new(),
        }
    }

    /// Key `i`: `i` seconds (and a few µs) into 2026, in the usual form
    /// with six fraction digits; the even ones leave room for an odd one
    /// between two.
    fn ts(i: u32) -> String {
        driftsum_core::time::format_timestamp(
            1_767_225_600_000_000i64 + i64::from(i) * 1_000_000 + i64::from(i % 7) + 1,
        )
        .replacen('T', " ", 1)
    }

    /// A table keyed by `keys`, written in that order (its rowid order),
    /// in WAL mode with a writer's row left in the log when `wal`.
    fn table(name: &str, keys: &[String], wal: bool) -> (Db, Option<rusqlite::Connection>) {
        let db = Db::new(name);
        let mut c = rusqlite::Connection::open(&db.0).expect("create");
        if wal {
            c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;")
                .expect("wal");
        }
        c.execute_batch("CREATE TABLE t (k TIMESTAMP PRIMARY KEY, v TEXT)")
            .expect("create");
        let tx = c.transaction().expect("tx");
        for (i, k) in keys.iter().enumerate() {
            tx.execute("INSERT INTO t VALUES (?1, ?2)", (k, format!("v{i}")))
                .expect("insert");
        }
        tx.commit().expect("commit");
        (db, wal.then_some(c))
    }

    fn scan(src: &mut SqliteSource, spec: &ScanSpec, most: usize) -> Rows {
        let mut rows = Vec::new();
        src.scan(spec, None, &mut |r: &[Value]| {
            rows.push(r.to_vec());
            match rows.len() < most {
                true => ControlFlow::Continue(()),
                false => ControlFlow::Break(()),
            }
        })
        .expect("scan");
        rows
    }

    fn key_of(row: &[Value]) -> Vec<u8> {
        key::encode(&row[..1]).as_bytes().to_vec()
    }

    /// The naive reference: every row through SQL, sorted by key bytes.
    fn reference(db: &Db, spec: &ScanSpec) -> Rows {
        let mut src = SqliteSource::open(&db.0).expect("open");
        src.set_page_reads(false);
        let mut rows = scan(&mut src, spec, usize::MAX);
        rows.sort_by_key(|r| key_of(r));
        rows
    }

    fn in_key_order(rows: &Rows) -> bool {
        rows.windows(2).all(|w| key_of(&w[0]) < key_of(&w[1]))
    }

    /// What a receiver that needs key order makes of a scan (as a tree
    /// build does): the rows sent when in key order; otherwise they are
    /// read again and sorted. With the rows first sent.
    fn as_built(src: &mut SqliteSource, spec: &ScanSpec) -> (Rows, Rows) {
        let first = scan(src, spec, usize::MAX);
        if in_key_order(&first) {
            return (first.clone(), first);
        }
        let mut again = scan(src, spec, usize::MAX);
        again.sort_by_key(|r| key_of(r));
        (first, again)
    }

    fn sorted(mut rows: Rows) -> Rows {
        rows.sort_by_key(|r| key_of(r));
        rows
    }

    /// The forms a fresh connection proves by reading every key.
    fn fresh_shapes(db: &Db, spec: &ScanSpec) -> time_keys::KeyShapes {
        let src = SqliteSource::open(&db.0).expect("open");
        time_keys::prove(&src.conn, &mut HashMap::new(), spec).expect("proof")
    }

    use std::collections::HashMap;

    /// Checks one table against the reference: the rows of the first scan
    /// are the reference's (each once), in key order unless the connection
    /// learnt the rowid order is not key order; what a receiver builds is
    /// the reference; and later scans and the range reads' forms agree.
    fn check(db: &Db, spec: &ScanSpec) -> Result<Option<bool>, TestCaseError> {
        let want = reference(db, spec);
        let mut src = SqliteSource::open(&db.0).expect("open");
        let (first, built) = as_built(&mut src, spec);
        let learnt = time_keys::rowid_ordered(&src.key_shapes, spec);
        prop_assert_eq!(&sorted(first.clone()), &want);
        prop_assert_eq!(&built, &want);
        if learnt == Some(true) {
            prop_assert!(in_key_order(&first));
        }
        if !in_key_order(&first) {
            prop_assert_eq!(learnt, Some(false));
        }
        let again = scan(&mut src, spec, usize::MAX);
        prop_assert_eq!(&sorted(again), &want);
        let shapes = time_keys::prove(&src.conn, &mut src.key_shapes, spec).expect("forms");
        prop_assert_eq!(shapes, fresh_shapes(db, spec));
        Ok(learnt)
    }

    /// A row written late (its key belongs among the first rows) after the
    /// held rows, with rows in order after it: every row is sent once, the
    /// receiver sees the disorder, and the connection reads the table
    /// through SQL from then on. Written last (as a repair appends one), a
    /// look at the last row sends even the first scan through SQL.
    #[test]
    fn late_row_after_the_held_rows() {
        let mut keys: Vec<String> = (0..3000).map(|i| ts(2 * i)).collect();
        keys.insert(2000, ts(21));
        let (db, _) = table("late", &keys, false);
        let spec = spec();
        assert_eq!(
            check(&db, &spec).expect("matches the reference"),
            Some(false)
        );
        let mut src = SqliteSource::open(&db.0).expect("open");
        let first = scan(&mut src, &spec, usize::MAX);
        assert_eq!(first.len(), 3001);
        assert!(!in_key_order(&first), "sent in rowid order");
        assert_eq!(scan(&mut src, &spec, usize::MAX), reference(&db, &spec));

        let mut keys: Vec<String> = (0..3000).map(|i| ts(2 * i)).collect();
        keys.push(ts(21));
        let (db, _) = table("late-last", &keys, false);
        assert_eq!(
            check(&db, &spec).expect("matches the reference"),
            Some(false)
        );
        let mut src = SqliteSource::open(&db.0).expect("open");
        assert_eq!(scan(&mut src, &spec, usize::MAX), reference(&db, &spec));
        assert_eq!(
            time_keys::rowid_ordered(&src.key_shapes, &spec),
            Some(false)
        );
    }

    /// A row out of order among the held rows: nothing is sent from the
    /// pages, and the scan is SQL's, in key order.
    #[test]
    fn late_row_among_the_held_rows() {
        let mut keys: Vec<String> = (0..3000).map(|i| ts(2 * i)).collect();
        keys.insert(HELD_ROWS / 2, ts(1));
        let (db, _) = table("late-held", &keys, false);
        let spec = spec();
        assert_eq!(
            check(&db, &spec).expect("matches the reference"),
            Some(false)
        );
        let mut src = SqliteSource::open(&db.0).expect("open");
        assert_eq!(scan(&mut src, &spec, usize::MAX), reference(&db, &spec));
    }

    /// A key in another form midway (after the held rows, and among them),
    /// still in time order: the proof breaks, the rows are right, and no
    /// form is proven for range reads.
    #[test]
    fn key_of_another_form_midway() {
        for at in [HELD_ROWS / 2, 2000] {
            let mut keys: Vec<String> = (0..3000).map(|i| ts(2 * i)).collect();
            keys[at] = keys[at].replacen(' ', "T", 1);
            let (db, _) = table("other-form", &keys, false);
            let spec = spec();
            assert_eq!(
                check(&db, &spec).expect("matches the reference"),
                Some(false),
                "{at}"
            );
            let src = SqliteSource::open(&db.0).expect("open");
            let shapes = time_keys::prove(&src.conn, &mut HashMap::new(), &spec).expect("forms");
            assert_eq!(shapes, vec![("k".to_string(), None)], "{at}");
        }
    }

    /// In key order: proven by the scan, the forms with it (no key read
    /// again for the range reads); a scan the receiver stops early proves
    /// nothing.
    #[test]
    fn in_key_order_is_proven_once_read_whole() {
        let keys: Vec<String> = (0..3000).map(|i| ts(2 * i)).collect();
        let (db, _) = table("ordered", &keys, false);
        let spec = spec();
        assert_eq!(
            check(&db, &spec).expect("matches the reference"),
            Some(true)
        );
        let mut src = SqliteSource::open(&db.0).expect("open");
        for most in [1, 10, HELD_ROWS, HELD_ROWS + 1, 2999] {
            let rows = scan(&mut src, &spec, most);
            assert_eq!(rows.len(), most);
            assert_eq!(time_keys::rowid_ordered(&src.key_shapes, &spec), None);
        }
        let rows = scan(&mut src, &spec, usize::MAX);
        assert_eq!(rows, reference(&db, &spec));
        assert_eq!(time_keys::rowid_ordered(&src.key_shapes, &spec), Some(true));
    }

    /// In WAL mode the pages are not read, and no proof is paid for: the
    /// whole scan is SQL's and learns nothing.
    #[test]
    fn wal_mode_pays_no_proof() {
        let keys: Vec<String> = (0..100).map(|i| ts(2 * i)).collect();
        let (db, writer) = table("wal", &keys, true);
        writer
            .expect("writer")
            .execute("INSERT INTO t VALUES (?1, 'late')", [ts(3)])
            .expect("write");
        let spec = spec();
        let mut src = SqliteSource::open(&db.0).expect("open");
        let rows = scan(&mut src, &spec, usize::MAX);
        assert_eq!(rows.len(), 101);
        assert_eq!(rows, reference(&db, &spec));
        assert!(src.key_shapes.is_empty(), "{:?}", src.key_shapes);
    }

    /// How a generated table's rows are written: keys in order, then some
    /// moved later (written late), some in another form.
    #[derive(Debug, Clone)]
    struct Case {
        rows: u32,
        moved: Vec<(prop::sample::Index, prop::sample::Index)>,
        forms: Vec<(prop::sample::Index, u8)>,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            prop_oneof![0u32..40, 900u32..2600],
            prop::collection::vec(any::<(prop::sample::Index, prop::sample::Index)>(), 0..3),
            prop::collection::vec((any::<prop::sample::Index>(), 0u8..3), 0..2),
        )
            .prop_map(|(rows, moved, forms)| Case { rows, moved, forms })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 24,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Whatever the rowid order and forms, a whole scan sends every row
        /// once, in key order unless the connection learnt otherwise, and a
        /// receiver needing key order builds the reference.
        #[test]
        fn proving_scans_match_the_reference(case in case()) {
            let mut keys: Vec<String> = (0..case.rows).map(|i| ts(2 * i)).collect();
            for (from, to) in &case.moved {
                if !keys.is_empty() {
                    let k = keys.remove(from.index(keys.len()));
                    keys.insert(to.index(keys.len() + 1), k);
                }
            }
            for (at, form) in &case.forms {
                if !keys.is_empty() {
                    let i = at.index(keys.len());
                    keys[i] = match form {
                        0 => keys[i].replacen(' ', "T", 1),
                        1 => keys[i][..23].to_string(),
                        _ => format!("{}Z", keys[i]),
                    };
                }
            }
            let (db, _) = table("prop", &keys, false);
            check(&db, &spec())?;
        }
    }
}
