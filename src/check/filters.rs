//! Which rows a comparison reads on each side: the user's filters (SQL
//! conditions for both sides or one, typed `--since`/`--until` ranges on a
//! column, `--min-age`/`--max-age` on an update-time column, from the
//! command line and the config's `[tables.X]`) turned into each side's
//! [`ScanSpec`] filter and ranges. Columns are named by their source names;
//! a replica column renamed in the config is filtered under its own name.
//! Applying the ranges to rows is `source::filter`'s.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use driftsum_core::coerce::ColumnRule;
use driftsum_core::filter::{self, ValueRange};
use driftsum_core::Value;

use crate::config::{self, Config};
use crate::error::CheckError;
use crate::source::{ColumnRange, ColumnSpec, ScanSpec, TableSchema};

/// The row filters a user gave on the command line (`--where` is
/// [`ColumnChoice::filter`](super::ColumnChoice::filter)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowFilters {
    /// SQL for the source only, applied with any condition for both sides.
    pub source_where: Option<String>,
    /// SQL for the replica only.
    pub target_where: Option<String>,
    /// `COL=VALUE`: rows whose column is at least VALUE.
    pub since: Vec<String>,
    /// `COL=VALUE`: rows whose column is below VALUE.
    pub until: Vec<String>,
    /// Rows updated less than this long ago are left out.
    pub min_age: Option<Duration>,
    /// Rows updated longer ago than this are left out.
    pub max_age: Option<Duration>,
    /// The update-time column the ages are measured on.
    pub age_column: Option<String>,
}

/// Splits `COL=VALUE`, naming `option` in the error.
pub fn split_bound<'a>(option: &str, text: &'a str) -> Result<(&'a str, &'a str), String> {
    match text.split_once('=') {
        Some((c, v)) if !c.trim().is_empty() && !v.trim().is_empty() => Ok((c.trim(), v.trim())),
        _ => Err(format!(
            "{option} takes COL=VALUE, such as placed_at=2024-01-01T09:00:00; got {text:?}"
        )),
    }
}

/// Puts the filters of `cli` (with `both`, the `--where` condition) and of
/// the config's `[tables.X]` into a plan's two scan specs. Every SQL
/// condition for a side applies (joined by AND); every range applies.
pub fn apply(
    (source, target): (&mut ScanSpec, &mut ScanSpec),
    src: &TableSchema,
    tgt: &TableSchema,
    both: Option<&str>,
    cli: &RowFilters,
    config: &Config,
) -> Result<(), CheckError> {
    let t = config.table(&src.name);
    let table_where = t.and_then(|t| t.filter.as_deref());
    let sql = |side: Option<&str>, side_config: Option<&str>| -> Option<String> {
        let parts: Vec<&str> = [both, side, table_where, side_config]
            .into_iter()
            .flatten()
            .filter(|s| !s.trim().is_empty())
            .collect();
        match parts.as_slice() {
            [] => None,
            [one] => Some(one.to_string()),
            many => Some(
                many.iter()
                    .map(|p| format!("({p})"))
                    .collect::<Vec<_>>()
                    .join(" AND "),
            ),
        }
    };
    source.filter = sql(
        cli.source_where.as_deref(),
        t.and_then(|t| t.source_where.as_deref()),
    );
    target.filter = sql(
        cli.target_where.as_deref(),
        t.and_then(|t| t.target_where.as_deref()),
    );

    let place = format!("the config's [tables.{}]", src.name);
    let mut bounds: Vec<(String, String, &str, String)> = Vec::new();
    for (option, list) in [("--since", &cli.since), ("--until", &cli.until)] {
        for b in list {
            let (c, v) = split_bound(option, b).map_err(CheckError::Invalid)?;
            bounds.push((option.to_string(), c.to_string(), option, v.to_string()));
        }
    }
    if let Some(t) = t {
        for (key, value, end) in [
            ("since", &t.since, "--since"),
            ("until", &t.until, "--until"),
        ] {
            if let Some(b) = value {
                let option = format!("{place} {key}");
                let (c, v) = split_bound(&option, b).map_err(CheckError::Invalid)?;
                bounds.push((option.clone(), c.to_string(), end, v.to_string()));
            }
        }
    }
    let mut ranges: Vec<(String, ValueRange)> = Vec::new();
    let mut add = |column: &str, since: Option<Value>, until: Option<Value>| {
        let at = match ranges.iter().position(|(c, _)| c == column) {
            Some(i) => i,
            None => {
                ranges.push((column.to_string(), ValueRange::default()));
                ranges.len() - 1
            }
        };
        let r = &mut ranges[at].1;
        // Two bounds on one end: the narrower holds (both apply).
        if let Some(s) = since {
            if r.since
                .as_ref()
                .is_none_or(|old| filter::compare(&s, old).is_some_and(|o| o.is_gt()))
            {
                r.since = Some(s);
            }
        }
        if let Some(u) = until {
            if r.until
                .as_ref()
                .is_none_or(|old| filter::compare(&u, old).is_some_and(|o| o.is_lt()))
            {
                r.until = Some(u);
            }
        }
    };
    for (option, column, end, value) in &bounds {
        let c = source_column(src, tgt, option, column, config)?;
        let v = filter::parse_bound(c.ty, value)
            .map_err(|e| CheckError::Invalid(format!("{option} {column}={value}: {e}")))?;
        match *end {
            "--since" => add(column, Some(v), None),
            _ => add(column, None, Some(v)),
        }
    }

    let min_age = cli.min_age.or(age(
        t.and_then(|t| t.min_age.as_deref()),
        &place,
        "min_age",
    )?);
    let max_age = cli.max_age.or(age(
        t.and_then(|t| t.max_age.as_deref()),
        &place,
        "max_age",
    )?);
    if min_age.is_some() || max_age.is_some() {
        let column = cli
            .age_column
            .as_deref()
            .or(t.and_then(|t| t.updated_column.as_deref()))
            .ok_or_else(|| {
                CheckError::Invalid(format!(
                    "--min-age / --max-age need the update-time column: give --age-column COL, \
                     or updated_column in the config's [tables.{}]",
                    src.name
                ))
            })?;
        let option = "--age-column";
        let c = source_column(src, tgt, option, column, config)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i128);
        let bound = |d: Duration| {
            filter::instant_bound(c.ty, now - d.as_micros() as i128).ok_or_else(|| {
                CheckError::Invalid(format!(
                    "{option} {column}: a {} column is not a point in time; ages need a \
                     timestamp or date column",
                    c.ty
                ))
            })
        };
        let until = min_age.map(&bound).transpose()?;
        let since = max_age.map(&bound).transpose()?;
        add(column, since, until);
    }

    for (column, range) in ranges {
        // Every column in `ranges` was found by `source_column` above; a
        // filter is never dropped quietly all the same.
        let c = src.column(&column).ok_or_else(|| {
            CheckError::Invalid(format!("the filter's column {column:?} is gone"))
        })?;
        let (s, t) = column_specs(c, &src.name, config);
        source.ranges.push(ColumnRange {
            column: s,
            range: range.clone(),
        });
        target.ranges.push(ColumnRange { column: t, range });
    }
    Ok(())
}

/// An age from the config, checked.
fn age(text: Option<&str>, place: &str, key: &str) -> Result<Option<Duration>, CheckError> {
    match text {
        None => Ok(None),
        Some(t) => config::parse_interval(t)
            .map_err(|e| CheckError::Invalid(format!("{place} {key}: {e}"))),
    }
}

/// The source column a filter names, checked to exist on both sides (under
/// the replica's name for it).
fn source_column<'a>(
    src: &'a TableSchema,
    tgt: &TableSchema,
    option: &str,
    column: &str,
    config: &Config,
) -> Result<&'a crate::source::Column, CheckError> {
    let names = |s: &TableSchema| {
        s.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let c = src.column(column).ok_or_else(|| {
        CheckError::Invalid(format!(
            "{option} names the column {column:?}, which the source table {:?} does not \
             have (filters name columns by their source names); its columns: {}",
            src.name,
            names(src)
        ))
    })?;
    let replica = config.replica_column(&src.name, column).name;
    if tgt.column(&replica).is_none() {
        return Err(CheckError::Invalid(format!(
            "{option} filters on {column:?}, which the replica table {:?} does not have{}; \
             its columns: {}",
            tgt.name,
            match replica == column {
                true => String::new(),
                false => format!(" (as {replica:?}, the config's name for it)"),
            },
            names(tgt)
        )));
    }
    Ok(c)
}

/// How each side reads a source column: by the source's type, the replica
/// under its own name and storage conventions (as the plan reads compared
/// columns).
fn column_specs(
    c: &crate::source::Column,
    table: &str,
    config: &Config,
) -> (ColumnSpec, ColumnSpec) {
    let r = config.replica_column(table, &c.name);
    let source = ColumnSpec {
        name: c.name.clone(),
        rule: ColumnRule {
            trailing_spaces: c.trailing_spaces,
            ..ColumnRule::new(c.ty)
        },
    };
    let target = ColumnSpec {
        name: r.name,
        rule: ColumnRule {
            ty: c.ty,
            time_storage: r.time_storage,
            assume_offset_secs: r.offset_secs,
            trailing_spaces: c.trailing_spaces,
        },
    };
    (source, target)
}
