//! A repair plan: for each table, the rows to delete from the replica, to
//! insert into it and to update (only the changed columns), with every
//! value already written in its column's storage form. Built from a diff's
//! differences; nothing here writes.

use driftsum_core::key::{self, KeyRange};
use driftsum_core::{Key, Value};
use rusqlite::types::Value as Sql;
use rusqlite::Connection;

use super::form::{self, Form};
use super::RepairError;
use crate::check::TableOutcome;
use crate::reconcile::{DiffKind, Difference};
use crate::source::{quote_ident, ColumnSpec, ScanSpec};

/// Values sampled from a column to learn its form.
const SAMPLES: usize = 256;

/// One row to change.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub kind: DiffKind,
    /// The key as the diff read it.
    pub key: Vec<Value>,
    /// The key in the replica's forms, for `WHERE` and `INSERT`.
    pub key_sql: Vec<Sql>,
    /// Insert: every value column; update: the changed ones (index into
    /// the table's value columns, value).
    pub set: Vec<(usize, Sql)>,
    /// The replica's values as the diff read them, of the changed columns
    /// for an update (to tell whether a writer changed the row since).
    pub target: Option<Vec<Value>>,
}

/// The repair of one table.
#[derive(Clone, Debug)]
pub struct TablePlan {
    /// The source's name, and the replica's.
    pub table: String,
    pub target_table: String,
    /// The replica's key and value columns, as the diff read them.
    pub key: Vec<ColumnSpec>,
    pub values: Vec<ColumnSpec>,
    /// Each key column's form, then each value column's that a change
    /// writes (`None`: not needed).
    pub forms: Vec<Option<Form>>,
    pub ops: Vec<Op>,
    /// Rows in the larger side's table.
    pub table_rows: u64,
    /// The diff's drifted ranges (ascending), through which a planned key
    /// that cannot be read alone is read again.
    pub ranges: Vec<KeyRange>,
    /// Whether both sides' range reads find every row of the table (else
    /// the planned keys are read again by whole scans).
    pub by_range: bool,
}

impl TablePlan {
    pub fn count(&self, kind: DiffKind) -> usize {
        self.ops.iter().filter(|o| o.kind == kind).count()
    }

    /// The column names a statement about `op` writes: key columns then
    /// the value columns it sets.
    pub fn key_names(&self) -> impl Iterator<Item = &str> {
        self.key.iter().map(|c| c.name.as_str())
    }

    pub fn encoded_key(op: &Op) -> Key {
        key::encode(&op.key)
    }

    /// This table's plan without its rows.
    pub fn clone_without_ops(&self) -> TablePlan {
        TablePlan {
            table: self.table.clone(),
            target_table: self.target_table.clone(),
            key: self.key.clone(),
            values: self.values.clone(),
            forms: self.forms.clone(),
            ops: Vec::new(),
            table_rows: self.table_rows,
            ranges: self.ranges.clone(),
            by_range: self.by_range,
        }
    }
}

/// The whole plan.
#[derive(Clone, Debug, Default)]
pub struct RepairPlan {
    pub tables: Vec<TablePlan>,
}

impl RepairPlan {
    pub fn rows(&self) -> usize {
        self.tables.iter().map(|t| t.ops.len()).sum()
    }
}

/// Limits a plan must stay within.
#[derive(Clone, Copy, Debug)]
pub struct Guard {
    /// Rows per table.
    pub max_rows: u64,
    /// Percent of a table's rows, for tables of more than `SMALL` rows.
    pub max_share: f64,
}

/// A table this small may be repaired whole whatever the share.
pub const SMALL: u64 = 100;

impl Guard {
    pub fn check(&self, t: &TablePlan) -> Result<(), RepairError> {
        let n = t.ops.len() as u64;
        let share = 100.0 * n as f64 / t.table_rows.max(1) as f64;
        if n > self.max_rows || (n > SMALL && share > self.max_share) {
            return Err(RepairError::TooMany {
                table: t.table.clone(),
                rows: n,
                share,
                max_rows: self.max_rows,
                max_share: self.max_share,
            });
        }
        Ok(())
    }
}

/// Reads up to `SAMPLES` non-NULL stored values of a replica column.
fn samples(conn: &Connection, table: &str, column: &str) -> Result<Vec<Sql>, RepairError> {
    let sql = format!(
        "SELECT {c} FROM {t} WHERE {c} IS NOT NULL LIMIT {SAMPLES}",
        c = quote_ident(column),
        t = quote_ident(table)
    );
    let err = |e: rusqlite::Error| RepairError::sqlite(format!("sampling {table}.{column}"), e);
    let mut stmt = conn.prepare(&sql).map_err(err)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, Sql>(0))
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    Ok(rows)
}

/// Plans the repair of one compared table. `spec` is how the diff read the
/// replica; `conn` reads the replica's stored values to learn its forms.
pub fn plan_table(
    outcome: &TableOutcome,
    spec: &ScanSpec,
    conn: &Connection,
) -> Result<TablePlan, RepairError> {
    if let Some(e) = &outcome.error {
        return Err(RepairError::NotCompared {
            table: outcome.table.clone(),
            message: e.clone(),
        });
    }
    if !outcome.column_differences.is_empty() {
        let cols: Vec<&str> = outcome
            .column_differences
            .iter()
            .map(|c| c.column.as_str())
            .collect();
        return Err(RepairError::Invalid(format!(
            "table {:?}: the sides' columns differ ({}); repair writes rows, not schemas: \
             fix the replica's schema, or leave those columns out with --exclude-columns",
            outcome.table,
            cols.join(", ")
        )));
    }
    let listed = outcome.differences.len() as u64;
    if listed < outcome.counts.total() || (listed == 0 && !outcome.ranges.is_empty()) {
        return Err(RepairError::Invalid(format!(
            "table {:?}: the diff did not name every drifted row (a side without rows, \
             such as a tree file); repair needs both sides as databases",
            outcome.table
        )));
    }
    let mut plan = TablePlan {
        table: outcome.table.clone(),
        target_table: spec.table.clone(),
        key: spec.key.clone(),
        values: spec.values.clone(),
        forms: vec![None; spec.width()],
        ops: Vec::new(),
        table_rows: outcome.source_rows.max(outcome.target_rows),
        ranges: crate::check::reread::key_ranges(&outcome.ranges),
        // Known only to the caller, which holds the diff's sides.
        by_range: false,
    };
    for d in &outcome.differences {
        let op = plan_op(&mut plan, d, conn)?;
        plan.ops.push(op);
    }
    Ok(plan)
}

/// The form of column `i` (key columns first), learned on first use.
fn form_of<'p>(
    plan: &'p mut TablePlan,
    i: usize,
    conn: &Connection,
) -> Result<&'p Form, RepairError> {
    if plan.forms[i].is_none() {
        let nkey = plan.key.len();
        let spec = match i < nkey {
            true => &plan.key[i],
            false => &plan.values[i - nkey],
        };
        let s = samples(conn, &plan.target_table, &spec.name)?;
        let f = form::learn(&spec.rule, &s).map_err(|reason| RepairError::Form {
            table: plan.table.clone(),
            column: spec.name.clone(),
            reason,
        })?;
        plan.forms[i] = Some(f);
    }
    Ok(plan.forms[i].as_ref().expect("set above"))
}

/// `v` written for column `i` (key columns first).
pub(super) fn write_value(
    plan: &mut TablePlan,
    i: usize,
    v: &Value,
    conn: &Connection,
) -> Result<Sql, RepairError> {
    let form = form_of(plan, i, conn)?.clone();
    let nkey = plan.key.len();
    let spec = match i < nkey {
        true => &plan.key[i],
        false => &plan.values[i - nkey],
    };
    form::write(v, &form, &spec.rule).map_err(|reason| RepairError::Value {
        table: plan.table.clone(),
        column: spec.name.clone(),
        reason,
    })
}

/// One difference as a row change.
pub(super) fn plan_op(
    plan: &mut TablePlan,
    d: &Difference,
    conn: &Connection,
) -> Result<Op, RepairError> {
    let nkey = plan.key.len();
    let mut key_sql = Vec::with_capacity(nkey);
    for (i, k) in d.key.iter().enumerate() {
        key_sql.push(write_value(plan, i, k, conn)?);
    }
    let columns: Vec<usize> = match d.kind {
        DiffKind::Missing => (0..plan.values.len()).collect(),
        DiffKind::Changed => d.changed.clone(),
        DiffKind::Extra => Vec::new(),
    };
    let mut set = Vec::with_capacity(columns.len());
    // A missing row's values are every column's; a changed row's are its
    // changed columns', in that order.
    if let Some(src) = &d.source {
        for (n, c) in columns.into_iter().enumerate() {
            let v = src.get(n).ok_or_else(|| {
                RepairError::Invalid(format!("table {:?}: a difference lacks values", plan.table))
            })?;
            set.push((c, write_value(plan, nkey + c, v, conn)?));
        }
    }
    Ok(Op {
        kind: d.kind,
        key: d.key.clone(),
        key_sql,
        set,
        target: d.target.clone(),
    })
}
