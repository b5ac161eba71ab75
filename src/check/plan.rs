//! Planning a table comparison: which tables, which key, which columns, and
//! how each side reads them.

use driftsum_core::coerce::ColumnRule;
use driftsum_core::Side;

use super::outcome::ColumnDifference;
use crate::config::Config;
use crate::error::CheckError;
use crate::source::{Column, ColumnSpec, ScanSpec, TableSchema};

/// A table to compare: its source name and its replica name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TablePair {
    pub source: String,
    pub target: String,
}

impl TablePair {
    /// Parses `NAME` or `SOURCE_NAME=REPLICA_NAME`.
    pub fn parse(s: &str) -> TablePair {
        match s.split_once('=') {
            Some((a, b)) => TablePair {
                source: a.trim().to_string(),
                target: b.trim().to_string(),
            },
            None => TablePair {
                source: s.to_string(),
                target: s.to_string(),
            },
        }
    }
}

/// Column choices the user made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ColumnChoice {
    /// Key columns overriding the primary key.
    pub key: Option<Vec<String>>,
    /// Only these value columns.
    pub columns: Option<Vec<String>>,
    pub exclude: Vec<String>,
    /// SQL condition applied on both sides.
    pub filter: Option<String>,
    /// Per-side SQL, typed ranges and ages (see `filters`).
    pub rows: super::filters::RowFilters,
}

/// Both sides' scan specs, and columns only one side has.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub source: ScanSpec,
    pub target: ScanSpec,
    pub column_differences: Vec<ColumnDifference>,
}

/// Plans the comparison of two schemas. Logical types come from the source,
/// and the replica's values are read as those types, with the replica's
/// names and storage conventions from the config. Both specs list the value
/// columns in the order of the source's column names, which is the order
/// rows hash them in.
pub fn plan(
    src: &TableSchema,
    tgt: &TableSchema,
    choice: &ColumnChoice,
    config: &Config,
) -> Result<Plan, CheckError> {
    let table_config = config.table(&src.name);
    let key: Vec<String> = match (&choice.key, table_config.and_then(|t| t.key.as_ref())) {
        (Some(k), _) | (None, Some(k)) => k.clone(),
        (None, None) if !src.primary_key.is_empty() => src.primary_key.clone(),
        (None, None) => {
            return Err(CheckError::Invalid(format!(
                "table {:?} has no primary key; name its key columns with --key COL,...",
                src.name
            )))
        }
    };
    let replica = |name: &str| config.replica_column(&src.name, name);
    for k in &key {
        if src.column(k).is_none() {
            return Err(CheckError::Invalid(format!(
                "key column {k:?} is not in the source table {:?}",
                src.name
            )));
        }
        let r = replica(k).name;
        if tgt.column(&r).is_none() {
            return Err(CheckError::Invalid(format!(
                "key column {r:?} is not in the target table {:?}",
                tgt.name
            )));
        }
    }
    // A name neither side has is a typo, refused rather than obeyed as
    // "nothing to do" (an exclusion that excludes nothing would compare a
    // column the user meant to leave out under another spelling).
    let named = choice
        .columns
        .iter()
        .flatten()
        .map(|c| ("--columns", c))
        .chain(choice.exclude.iter().map(|c| ("--exclude-columns", c)));
    let from_config = table_config
        .iter()
        .flat_map(|t| &t.exclude_columns)
        .map(|c| ("the config's exclude_columns", c));
    if let Some(t) = table_config {
        for c in t.columns.keys() {
            if src.column(c).is_none() {
                return Err(CheckError::Invalid(format!(
                    "the config's [tables.{}.columns.{c}] names a column the source table \
                     does not have; its columns: {}",
                    src.name,
                    column_list(src, src)
                )));
            }
        }
    }
    for (option, c) in named.chain(from_config) {
        if src.column(c).is_none() && tgt.column(c).is_none() {
            return Err(CheckError::Invalid(format!(
                "{option} names {c:?}, which neither side's table {:?} has; its columns: {}",
                src.name,
                column_list(src, tgt)
            )));
        }
    }
    let excluded: Vec<&String> = choice
        .exclude
        .iter()
        .chain(table_config.iter().flat_map(|t| &t.exclude_columns))
        .collect();
    let wanted = |name: &str| {
        !key.iter().any(|k| k == name)
            && !excluded.iter().any(|e| *e == name)
            && choice
                .columns
                .as_ref()
                .is_none_or(|c| c.iter().any(|x| x == name))
    };
    // Both sides read a column by the source's rules: its type, and
    // whether trailing spaces count (a `char(n)` source strips them, a
    // replica may keep them).
    let specs = |c: &Column| {
        let (name, ty) = (c.name.as_str(), c.ty);
        let r = replica(name);
        let source = ColumnSpec {
            name: name.to_string(),
            rule: ColumnRule {
                trailing_spaces: c.trailing_spaces,
                ..ColumnRule::new(ty)
            },
        };
        let rule = ColumnRule {
            ty,
            time_storage: r.time_storage,
            assume_offset_secs: r.offset_secs,
            trailing_spaces: c.trailing_spaces,
        };
        (source, ColumnSpec { name: r.name, rule })
    };
    let mut column_differences = Vec::new();
    let (mut src_values, mut tgt_values) = (Vec::new(), Vec::new());
    for c in src.columns.iter().filter(|c| wanted(&c.name)) {
        let (s, t) = specs(c);
        if tgt.column(&t.name).is_some() {
            src_values.push(s);
            tgt_values.push(t);
        } else {
            column_differences.push(ColumnDifference {
                column: c.name.clone(),
                only_in: Side::Source,
            });
        }
    }
    // Rows hash their values in this order on both sides (see
    // `RowHasher`): by the source's names, so a replica column mapped to a
    // name that sorts elsewhere still lines up with its source column.
    let mut order: Vec<usize> = (0..src_values.len()).collect();
    order.sort_by(|&i, &j| src_values[i].name.cmp(&src_values[j].name));
    let src_values: Vec<ColumnSpec> = order.iter().map(|&i| src_values[i].clone()).collect();
    let tgt_values: Vec<ColumnSpec> = order.iter().map(|&i| tgt_values[i].clone()).collect();
    let mapped: Vec<String> = src.columns.iter().map(|c| replica(&c.name).name).collect();
    for c in tgt
        .columns
        .iter()
        .filter(|c| wanted(&c.name) && !mapped.contains(&c.name))
    {
        column_differences.push(ColumnDifference {
            column: c.name.clone(),
            only_in: Side::Target,
        });
    }
    let (src_key, tgt_key): (Vec<ColumnSpec>, Vec<ColumnSpec>) = key
        .iter()
        .map(|k| specs(src.column(k).expect("checked above")))
        .unzip();
    let mut plan = Plan {
        source: ScanSpec {
            table: src.name.clone(),
            key: src_key,
            values: src_values,
            filter: choice.filter.clone(),
            ranges: Vec::new(),
        },
        target: ScanSpec {
            table: tgt.name.clone(),
            key: tgt_key,
            values: tgt_values,
            filter: choice.filter.clone(),
            ranges: Vec::new(),
        },
        column_differences,
    };
    let both = choice.filter.as_deref();
    super::filters::apply(
        (&mut plan.source, &mut plan.target),
        src,
        tgt,
        both,
        &choice.rows,
        config,
    )?;
    Ok(plan)
}

/// Both sides' column names, the source's first, each once, for messages.
fn column_list(src: &TableSchema, tgt: &TableSchema) -> String {
    let mut names: Vec<&str> = Vec::new();
    for c in src.columns.iter().chain(&tgt.columns) {
        if !names.contains(&c.name.as_str()) {
            names.push(&c.name);
        }
    }
    names.join(", ")
}
