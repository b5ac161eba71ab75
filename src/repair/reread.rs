//! The planned keys read again, on both sides and only they: under the
//! replica's write lock before anything is written (which planned rows
//! still differ, and how), and after the commit (the proof that every
//! repaired key is in sync). Never a whole diff again: the keys are read
//! by `check::reread` (each integer key alone, others through the drifted
//! range that held them), with the specs, canonical options and row
//! comparison the plan's diff used, so "in sync" here is what it is to
//! `diff`.

use driftsum_core::Value;
use rusqlite::Connection;

use super::plan::{self, RepairPlan, TablePlan};
use super::{RepairError, RepairOptions};
use crate::check::{self, reread::read_keys};
use crate::error::CheckError;
use crate::reconcile::{compare_rows, Difference};
use crate::source::{quote_ident, ScanSpec, Source};
use driftsum_core::LogicalType;

/// The differences `t`'s planned keys hold now, read from `src` and `tgt`
/// (each in its own snapshot).
pub(super) fn differences(
    src: &mut dyn Source,
    tgt: &mut dyn Source,
    t: &TablePlan,
    opts: &RepairOptions,
) -> Result<Vec<Difference>, RepairError> {
    let s = src.schema(&t.table).map_err(CheckError::Source)?;
    let r = tgt.schema(&t.target_table).map_err(CheckError::Target)?;
    let spec = check::plan::plan(&s, &r, &opts.diff.columns, &opts.diff.config)?;
    let keys: Vec<Vec<Value>> = t.ops.iter().map(|o| o.key.clone()).collect();
    let (a, _) =
        read_keys(src, &spec.source, &keys, t.by_range, &t.ranges).map_err(CheckError::Source)?;
    let (b, _) =
        read_keys(tgt, &spec.target, &keys, t.by_range, &t.ranges).map_err(CheckError::Target)?;
    Ok(compare_rows(a, b, spec.source.key.len(), &opts.diff.canon))
}

/// `planned` as its keys stand now: each table with the changes its keys
/// need now, each value in its column's form (`conn` reads the replica's
/// forms a change needs that the plan did not).
pub(super) fn replan(
    planned: &RepairPlan,
    src: &mut dyn Source,
    tgt: &mut dyn Source,
    conn: &Connection,
    opts: &RepairOptions,
) -> Result<RepairPlan, RepairError> {
    let mut out = RepairPlan::default();
    for p in &planned.tables {
        let now = differences(src, tgt, p, opts)?;
        let mut t = TablePlan {
            ops: Vec::with_capacity(now.len()),
            ..p.clone_without_ops()
        };
        for d in &now {
            let op = plan::plan_op(&mut t, d, conn)?;
            t.ops.push(op);
        }
        out.tables.push(t);
    }
    Ok(out)
}

/// Whether every stored key of `spec`'s replica table is in the storage
/// class its column's SQL comparisons order as keys (so a range query
/// finds it): by the column's declared affinity where that decides it,
/// else by looking for one that is not. Keys of other types are left to
/// the diff's own knowledge.
pub(super) fn keys_stored_as_declared(
    conn: &Connection,
    spec: &ScanSpec,
) -> Result<bool, RepairError> {
    let err = |e| RepairError::sqlite(format!("reading the schema of {}", spec.table), e);
    let declared: Vec<(String, String)> = {
        let sql = format!("PRAGMA table_info({})", quote_ident(&spec.table));
        let mut stmt = conn.prepare(&sql).map_err(err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)?
    };
    for k in &spec.key {
        let ty = declared
            .iter()
            .find(|(n, _)| *n == k.name)
            .map(|(_, t)| t.to_ascii_uppercase())
            .unwrap_or_default();
        let has = |s: &str| ty.contains(s);
        let (class, affine) = match k.rule.ty {
            LogicalType::Integer => ("integer", has("INT")),
            LogicalType::Text => (
                "text",
                !has("INT") && (has("CHAR") || has("CLOB") || has("TEXT")),
            ),
            LogicalType::Bytes => ("blob", false),
            _ => continue,
        };
        if affine {
            continue;
        }
        let sql = format!(
            "SELECT 1 FROM {} WHERE typeof({}) <> '{class}' LIMIT 1",
            quote_ident(&spec.table),
            quote_ident(&k.name)
        );
        let odd = conn
            .prepare(&sql)
            .and_then(|mut s| s.exists([]))
            .map_err(|e| RepairError::sqlite(format!("reading {}", spec.table), e))?;
        if odd {
            return Ok(false);
        }
    }
    Ok(true)
}
