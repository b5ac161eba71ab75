//! Planning a table comparison: which tables, which key, which columns, and
//! how each side reads them.

use driftsum_core::coerce::ColumnRule;
use driftsum_core::Side;

use super::outcome::ColumnDifference;
use crate::error::CheckError;
use crate::source::{ColumnSpec, ScanSpec, TableSchema};

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
}

/// Both sides' scan specs, and columns only one side has.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub source: ScanSpec,
    pub target: ScanSpec,
    pub column_differences: Vec<ColumnDifference>,
}

/// Plans the comparison of two schemas. Logical types come from the source,
/// and the replica's values are read as those types.
pub fn plan(
    src: &TableSchema,
    tgt: &TableSchema,
    choice: &ColumnChoice,
) -> Result<Plan, CheckError> {
    let key: Vec<String> = match &choice.key {
        Some(k) => k.clone(),
        None if !src.primary_key.is_empty() => src.primary_key.clone(),
        None => {
            return Err(CheckError::Invalid(format!(
                "table {:?} has no primary key; name its key columns with --key COL,...",
                src.name
            )))
        }
    };
    for k in &key {
        for (schema, side) in [(src, "source"), (tgt, "target")] {
            if schema.column(k).is_none() {
                return Err(CheckError::Invalid(format!(
                    "key column {k:?} is not in the {side} table {:?}",
                    schema.name
                )));
            }
        }
    }
    if let Some(cols) = &choice.columns {
        for c in cols {
            if src.column(c).is_none() && tgt.column(c).is_none() {
                return Err(CheckError::Invalid(format!(
                    "--columns names {c:?}, which neither side's table has"
                )));
            }
        }
    }
    let wanted = |name: &str| {
        !key.iter().any(|k| k == name)
            && !choice.exclude.iter().any(|e| e == name)
            && choice
                .columns
                .as_ref()
                .is_none_or(|c| c.iter().any(|x| x == name))
    };
    let mut column_differences = Vec::new();
    let mut values = Vec::new();
    for c in src.columns.iter().filter(|c| wanted(&c.name)) {
        if tgt.column(&c.name).is_some() {
            values.push(ColumnSpec {
                name: c.name.clone(),
                rule: ColumnRule::new(c.ty),
            });
        } else {
            column_differences.push(ColumnDifference {
                column: c.name.clone(),
                only_in: Side::Source,
            });
        }
    }
    for c in tgt
        .columns
        .iter()
        .filter(|c| wanted(&c.name) && src.column(&c.name).is_none())
    {
        column_differences.push(ColumnDifference {
            column: c.name.clone(),
            only_in: Side::Target,
        });
    }
    let key_specs: Vec<ColumnSpec> = key
        .iter()
        .map(|k| ColumnSpec {
            name: k.clone(),
            rule: ColumnRule::new(src.column(k).expect("checked above").ty),
        })
        .collect();
    let spec = |table: &str| ScanSpec {
        table: table.to_string(),
        key: key_specs.clone(),
        values: values.clone(),
        filter: choice.filter.clone(),
    };
    Ok(Plan {
        source: spec(&src.name),
        target: spec(&tgt.name),
        column_differences,
    })
}
