//! Scans that read a rowid table's b-tree pages instead of running a query:
//! which tables qualify (their [`PageLayout`]), which scans (a rowid key,
//! integer bounds), and turning each cell into a row. The page format itself
//! is in [`pages`](super::pages).

use std::ops::ControlFlow;

use driftsum_core::key::{self, KeyRange};
use driftsum_core::{LogicalType, Value};
use rusqlite::types::ValueRef;
use rusqlite::OptionalExtension;

use super::pages::{self, PageLayout};
use super::types::{decode_into, real_affinity};
use super::SqliteSource;
use crate::error::SourceError;
use crate::source::spec::{quote_ident, RowSink, ScanSpec};

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
    /// the rowid alias, or be a whole scan of a table whose rowid order was
    /// proven to be its key order (`rowid_order_is_key_order`).
    pub(super) fn scan_pages(
        &self,
        layout: &PageLayout,
        spec: &ScanSpec,
        range: Option<&KeyRange>,
        rowid_order_is_key_order: bool,
        sink: &mut RowSink<'_>,
    ) -> Result<bool, SourceError> {
        let by_alias = match (spec.key.as_slice(), &layout.rowid) {
            ([key], Some(alias)) => key.name == *alias && key.rule.ty == LogicalType::Integer,
            _ => false,
        };
        if !by_alias && (range.is_some() || !rowid_order_is_key_order) {
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
        let rules: Vec<_> = spec.columns().map(|c| c.rule).collect();
        let mut buf: Vec<Value> = vec![Value::Null; rules.len()];
        // A record written before columns were added holds fewer values; the
        // missing ones are the added columns' defaults, constant per column,
        // asked of SQLite once.
        let mut defaults: Vec<Option<rusqlite::types::Value>> = vec![None; layout.columns.len()];
        let mut visit =
            |rowid: i64, record: &pages::Record<'_>| -> Result<pages::Flow, SourceError> {
                let mut columns = spec.columns();
                for ((slot, rule), out) in slots.iter().zip(&rules).zip(buf.iter_mut()) {
                    let column = columns.next().map_or("", |c| c.name.as_str());
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
                    decode_into(out, v, rule).map_err(|u| u.error(&spec.table, column))?;
                }
                Ok(match sink(&buf) {
                    ControlFlow::Continue(()) => pages::Flow::Go,
                    ControlFlow::Break(()) => pages::Flow::Stop,
                })
            };
        let walk = pages::TableWalk::new(&file, after, through);
        let mut walk = match slots.iter().any(|s| matches!(s, Slot::Record { .. })) {
            true => walk,
            false => walk.rowids_only(),
        };
        walk.run(layout.root, &mut visit).map_err(|e| match e {
            pages::PageError::Visit(e) => e,
            e => SourceError::query(
                format!(
                    "reading table {:?} from the pages of {}",
                    spec.table, self.path
                ),
                e,
            ),
        })?;
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
