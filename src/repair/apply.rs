//! Applying a plan to a SQLite replica inside a transaction the caller
//! holds (`BEGIN IMMEDIATE`): every statement must change exactly one
//! row, and the rows' stored values are read first, so the inverse of the
//! repair can be written as a script (its undo).

use rusqlite::types::Value as Sql;
use rusqlite::Connection;

use super::plan::{Op, RepairPlan, TablePlan};
use super::script::{ordered, statement, Statement};
use super::RepairError;
use crate::reconcile::DiffKind;
use crate::source::quote_ident;

/// A stored row: its column names and values.
type StoredRow = (Vec<String>, Vec<Sql>);

/// The replica's whole stored row with `op`'s key.
fn stored_row(conn: &Connection, t: &TablePlan, op: &Op) -> Result<Option<StoredRow>, RepairError> {
    let mut params = Vec::new();
    let w: Vec<String> = t
        .key_names()
        .zip(&op.key_sql)
        .map(|(n, v)| {
            params.push(v.clone());
            format!("{}=?", quote_ident(n))
        })
        .collect();
    let sql = format!(
        "SELECT * FROM {} WHERE {}",
        quote_ident(&t.target_table),
        w.join(" AND ")
    );
    let err = |e| RepairError::sqlite(format!("reading {}", t.target_table), e);
    let mut stmt = conn.prepare_cached(&sql).map_err(err)?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params.iter()))
        .map_err(err)?;
    let Some(row) = rows.next().map_err(err)? else {
        return Ok(None);
    };
    let values = (0..names.len())
        .map(|i| row.get::<_, Sql>(i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    Ok(Some((names, values)))
}

/// The statement undoing `op`, from the row as stored before it.
fn inverse(t: &TablePlan, op: &Op, before: Option<StoredRow>) -> Statement {
    let table = quote_ident(&t.target_table);
    let mut params = Vec::new();
    let key = |params: &mut Vec<Sql>| {
        t.key_names()
            .zip(&op.key_sql)
            .map(|(n, v)| {
                params.push(v.clone());
                format!("{}=?", quote_ident(n))
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let sql = match (op.kind, before) {
        (DiffKind::Missing, _) | (_, None) => {
            format!("DELETE FROM {table} WHERE {}", key(&mut params))
        }
        (DiffKind::Extra, Some((names, values))) => {
            let cols: Vec<String> = names.iter().map(|n| quote_ident(n)).collect();
            params.extend(values);
            format!(
                "INSERT INTO {table}({}) VALUES({})",
                cols.join(","),
                vec!["?"; cols.len()].join(",")
            )
        }
        (DiffKind::Changed, Some((names, values))) => {
            let sets: Vec<String> = op
                .set
                .iter()
                .map(|(c, _)| {
                    let name = &t.values[*c].name;
                    let v = names
                        .iter()
                        .position(|n| n == name)
                        .map_or(Sql::Null, |i| values[i].clone());
                    params.push(v);
                    format!("{}=?", quote_ident(name))
                })
                .collect();
            let w = key(&mut params);
            format!("UPDATE {table} SET {} WHERE {w}", sets.join(", "))
        }
    };
    Statement { sql, params }
}

/// Runs the plan's statements on `conn` (in the caller's transaction) and
/// returns the statements that undo them, in the order to run them.
pub fn run(conn: &Connection, plan: &RepairPlan) -> Result<Vec<Statement>, RepairError> {
    let mut undo = Vec::with_capacity(plan.rows());
    for (t, op) in ordered(plan) {
        let before = match op.kind {
            DiffKind::Missing => None,
            _ => stored_row(conn, t, op)?,
        };
        undo.push(inverse(t, op, before));
        let s = statement(t, op);
        let err = |e| RepairError::sqlite(format!("writing {}", t.target_table), e);
        let mut stmt = conn.prepare_cached(&s.sql).map_err(err)?;
        let changed = stmt
            .execute(rusqlite::params_from_iter(s.params.iter()))
            .map_err(err)?;
        if changed != 1 {
            // The key is stored in another form than the one written (or
            // the row went): stop, and the transaction is rolled back.
            return Err(RepairError::Invalid(format!(
                "table {:?}: {} of the row with key {} changed {changed} rows, not one; \
                 nothing was written",
                t.target_table,
                s.sql.split_whitespace().next().unwrap_or("a statement"),
                show_key(&op.key)
            )));
        }
    }
    undo.reverse();
    Ok(undo)
}

/// A key for messages: its values joined by commas.
pub fn show_key(key: &[driftsum_core::Value]) -> String {
    key.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
