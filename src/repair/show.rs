//! A repair plan and an applied repair as text for people: a line per
//! table with its counts, then a line per row (key, and for an update the
//! columns it changes).

use std::fmt::Write;

use super::apply::show_key;
use super::{Applied, RepairPlan};
use crate::reconcile::DiffKind;

/// The plan, table by table and row by row.
pub fn plan(plan: &RepairPlan) -> String {
    let mut out = String::new();
    if plan.tables.is_empty() {
        out.push_str("nothing to repair: every table compared is in sync\n");
        return out;
    }
    for t in &plan.tables {
        let _ = writeln!(
            out,
            "table {} (replica {}): {} to insert, {} to delete, {} to update, of {} rows",
            t.table,
            t.target_table,
            t.count(DiffKind::Missing),
            t.count(DiffKind::Extra),
            t.count(DiffKind::Changed),
            t.table_rows
        );
        for op in &t.ops {
            let key = show_key(&op.key);
            let _ = match op.kind {
                DiffKind::Missing => writeln!(out, "  insert {key}"),
                DiffKind::Extra => writeln!(out, "  delete {key}"),
                DiffKind::Changed => {
                    let cols: Vec<&str> = op
                        .set
                        .iter()
                        .map(|(c, _)| t.values[*c].name.as_str())
                        .collect();
                    writeln!(out, "  update {key}: {}", cols.join(", "))
                }
            };
        }
    }
    out
}

/// What `--apply` did.
pub fn applied(a: &Applied) -> String {
    let mut out = String::new();
    for t in &a.tables {
        let _ = writeln!(
            out,
            "table {}: {} planned, {} applied, {} already in sync, {} changed by another \
             writer since the plan (left alone)",
            t.table, t.planned, t.applied, t.already_in_sync, t.changed_since
        );
    }
    match &a.undo {
        Some(p) => {
            let _ = writeln!(
                out,
                "re-verified in sync; undo with: sqlite3 -bail REPLICA < {}",
                p.display()
            );
        }
        None => out.push_str("nothing written\n"),
    }
    out
}
