//! The text report, for people: a summary line per table, then drifted
//! ranges, differences and what the comparison exchanged. In-sync tables get
//! one quiet line; [`render_with_costs`] adds every table's cost, level by
//! level. The run's hints (see `hints`) close every form of the report.

use std::borrow::Cow;
use std::fmt::Write;

use serde_json::{Map, Value as J};

use super::model::{Report, TableReport};

/// Differences listed per table before the rest is only counted.
const MAX_LISTED: usize = 50;

/// A count with thousands separators (`1,234,567`), as every report,
/// progress line and benchmark table prints one.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Whether a character could act on a terminal or hide what surrounds it:
/// control characters (C0, DEL, C1: escapes, carriage returns, bells),
/// format characters (bidi overrides, zero-width ones), line separators and
/// leading combining marks - whatever Rust's `{:?}` escapes, except quotes
/// and backslashes.
fn unsafe_char(c: char) -> bool {
    !matches!(c, '"' | '\'' | '\\') && c.escape_debug().nth(1).is_some()
}

/// Free text from a user or a database (an error message, a JSON-rendered
/// value) made safe for a terminal: every unsafe character is written as its
/// Rust escape (`\u{1b}`, `\r`, `\u{202e}`); everything else is unchanged.
pub fn escape_text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A table or column name for a terminal: as it is when every character is
/// plain, otherwise quoted and escaped as Rust's `{:?}` does (so `a"b` and a
/// name holding an escape sequence cannot be mistaken for another name).
pub fn escape_name(s: &str) -> Cow<'_, str> {
    if s.chars().any(|c| unsafe_char(c) || c == '"' || c == '\\') {
        Cow::Owned(format!("{s:?}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", n, if n == 1 { one } else { many })
}

/// `id=5` or `a=1, b="x"`.
fn fmt_map(m: &Map<String, J>) -> String {
    m.iter()
        .map(|(k, v)| format!("{}={}", escape_name(k), escape_text(&v.to_string())))
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary(t: &TableReport) -> String {
    let name = match &t.target_table {
        Some(tt) => format!("{} → {}", escape_name(&t.table), escape_name(tt)),
        None => escape_name(&t.table).into_owned(),
    };
    if let Some(e) = &t.error {
        return format!("{name}: ERROR: {}", escape_text(e));
    }
    let (source_rows, target_rows) = (t.source_rows.unwrap_or(0), t.target_rows.unwrap_or(0));
    let rows = if source_rows == target_rows {
        format!("{} rows", thousands(source_rows))
    } else {
        format!(
            "{} source rows, {} target rows",
            thousands(source_rows),
            thousands(target_rows)
        )
    };
    let rows = match t.filters {
        Some(_) => format!("{rows}, filtered"),
        None => rows,
    };
    if t.in_sync {
        return format!("{name}: in sync ({rows})");
    }
    let count = |k: &str| t.count(k);
    let mut parts = Vec::new();
    for (k, label) in [
        ("missing", "missing"),
        ("extra", "extra"),
        ("changed", "changed"),
    ] {
        let n = count(k);
        if n > 0 {
            parts.push(format!("{} {label}", thousands(n)));
        }
    }
    if parts.is_empty() && !t.ranges().is_empty() {
        parts.push("keys not named (a tree file without --with-entries)".to_string());
    }
    if !t.column_differences.is_empty() {
        parts.push(plural(
            t.column_differences.len(),
            "column on one side only",
            "columns on one side only",
        ));
    }
    format!(
        "{name}: DRIFT: {} ({rows}, {})",
        parts.join(", "),
        plural(t.ranges().len(), "drifted range", "drifted ranges")
    )
}

/// The rows each side compared, when a filter chose them.
fn filters(out: &mut String, t: &TableReport) {
    let Some(f) = &t.filters else {
        return;
    };
    let shown = |s: &Option<String>| match s {
        Some(s) => escape_text(s).into_owned(),
        None => "every row".to_string(),
    };
    if f.source == f.target {
        let _ = writeln!(out, "  filter   both sides: {}", shown(&f.source));
    } else {
        let _ = writeln!(out, "  filter   source: {}", shown(&f.source));
        let _ = writeln!(out, "  filter   target: {}", shown(&f.target));
    }
}

/// `5,120 bytes in 18 round trips`.
fn fmt_exchanged(bytes: u64, round_trips: u64) -> String {
    let noun = |n: u64, one: &'static str, many: &'static str| if n == 1 { one } else { many };
    format!(
        "{} {} in {} {}",
        thousands(bytes),
        noun(bytes, "byte", "bytes"),
        thousands(round_trips),
        noun(round_trips, "round trip", "round trips")
    )
}

/// What a table's comparison exchanged, phase by phase.
fn costs(out: &mut String, t: &TableReport) {
    let tr = &t.stats.transfer;
    for l in &tr.levels {
        let _ = writeln!(
            out,
            "  cost     tree level {}: {} nodes, {}",
            l.level,
            thousands(l.nodes),
            fmt_exchanged(l.bytes, l.round_trips)
        );
    }
    for (name, p) in [("leaf entries", &tr.entries), ("rows", &tr.rows)] {
        if p.round_trips > 0 {
            let _ = writeln!(
                out,
                "  cost     {name}: {}, {}",
                thousands(p.items),
                fmt_exchanged(p.bytes, p.round_trips)
            );
        }
    }
}

/// Renders the whole report.
pub fn render(report: &Report) -> String {
    render_report(report, false)
}

/// Renders counts only: one line per table, then the run's totals (as
/// sqldiff's `--summary`).
pub fn render_summary(report: &Report) -> String {
    let mut out = String::new();
    for t in &report.tables {
        let _ = writeln!(out, "{}", summary(t));
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "total: {} compared, {} in sync, {} drifted, {} failed; {} missing, {} extra, {} changed",
        plural(s.tables as usize, "table", "tables"),
        thousands(s.tables_in_sync),
        thousands(s.tables_drifted),
        thousands(s.tables_failed),
        thousands(s.missing),
        thousands(s.extra),
        thousands(s.changed),
    );
    hints(&mut out, report);
    out
}

/// The report's hints, one line each, after everything else.
fn hints(out: &mut String, report: &Report) {
    for h in &report.hints {
        let _ = writeln!(out, "hint: {}", escape_text(h));
    }
}

/// Renders the whole report, with every table's cost per tree level.
pub fn render_with_costs(report: &Report) -> String {
    render_report(report, true)
}

/// Renders the tables that drifted or failed, as [`render`] does; nothing
/// when every table is in sync (`--quiet`).
pub fn render_drift(report: &Report) -> String {
    let shown = Report {
        tables: report
            .tables
            .iter()
            .filter(|t| !t.in_sync)
            .cloned()
            .collect(),
        ..report.clone()
    };
    render_report(&shown, false)
}

fn render_report(report: &Report, all_costs: bool) -> String {
    let mut out = String::new();
    for t in &report.tables {
        let _ = writeln!(out, "{}", summary(t));
        if t.error.is_some() {
            continue;
        }
        filters(&mut out, t);
        if all_costs {
            costs(&mut out, t);
        }
        let exchanged = format!(
            "  exchanged  {}",
            fmt_exchanged(t.stats.bytes_exchanged, t.stats.round_trips)
        );
        if t.in_sync {
            if all_costs {
                let _ = writeln!(out, "{exchanged}");
            }
            continue;
        }
        for c in &t.column_differences {
            let _ = writeln!(
                out,
                "  column {:?} is only in the {} (not compared; leave it out with --exclude-columns {})",
                c.column,
                escape_text(&c.only_in),
                escape_name(&c.column)
            );
        }
        for r in t.ranges() {
            let _ = writeln!(
                out,
                "  range    {} ..= {}  ({} source rows, {} target rows)",
                fmt_map(&r.first),
                fmt_map(&r.last),
                thousands(r.source_rows),
                thousands(r.target_rows)
            );
        }
        for d in t.listed().iter().take(MAX_LISTED) {
            let key = fmt_map(&d.key);
            let line = match d.kind.as_str() {
                "changed" => {
                    let empty = Map::new();
                    let (s, g) = (
                        d.source.as_ref().unwrap_or(&empty),
                        d.target.as_ref().unwrap_or(&empty),
                    );
                    let cols: Vec<String> = d
                        .columns
                        .iter()
                        .flatten()
                        .map(|c| {
                            let a = s.get(c).unwrap_or(&J::Null);
                            let b = g.get(c).unwrap_or(&J::Null);
                            format!(
                                "{}: {} → {}",
                                escape_name(c),
                                escape_text(&a.to_string()),
                                escape_text(&b.to_string())
                            )
                        })
                        .collect();
                    if cols.is_empty() && d.source.is_none() && d.target.is_none() {
                        format!("  changed  {key}  (row differs; tree files hold no values)")
                    } else {
                        format!("  changed  {key}  {}", cols.join("; "))
                    }
                }
                "missing" => format!("  missing  {key}  (in source, not in target)"),
                _ => format!("  extra    {key}  (in target, not in source)"),
            };
            let _ = writeln!(out, "{line}");
        }
        if t.difference_count() > MAX_LISTED as u64 {
            let _ = writeln!(
                out,
                "  … and {} more differences (--format json lists them all)",
                t.difference_count() - MAX_LISTED as u64
            );
        }
        if t.float_only_changes > 0 {
            let _ =
                writeln!(
                out,
                "  note: {} only in floats that agree to 15 significant digits; if the replica \
                 stores floats with less precision, compare with --float-digits 15 (or fewer)",
                plural(t.float_only_changes, "changed row differs", "changed rows differ")
            );
        }
        let _ = writeln!(out, "{exchanged}");
    }
    hints(&mut out, report);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    use crate::report::model::{ColumnReport, DifferenceReport, RangeReport};
    use proptest::prelude::*;

    /// Characters that act on a terminal or hide text: C0 and C1 controls,
    /// DEL, bidi overrides and isolates, zero-width and line separators.
    const HOSTILE: &[&str] = &[
        "\x1b[31m",
        "\r",
        "\n",
        "\x07",
        "\x08",
        "\t",
        "\x7f",
        "\u{9b}31m",
        "\u{202e}",
        "\u{202a}",
        "\u{2066}",
        "\u{2069}",
        "\u{200b}",
        "\u{200f}",
        "\u{61c}",
        "\u{2028}",
        "\u{feff}",
        "\x00",
        "\x1b]0;title\x07",
    ];

    fn one(name: String, col: String, value: String) -> Report {
        let key: Map<String, J> = [(col.clone(), J::String(value.clone()))]
            .into_iter()
            .collect();
        let row: Map<String, J> = [(col.clone(), J::String(value))].into_iter().collect();
        let table = |error: Option<String>| TableReport {
            table: name.clone(),
            target_table: Some(format!("{name}2")),
            status: crate::report::model::Status::Drift,
            key_columns: vec![col.clone()],
            source_rows: Some(2),
            target_rows: Some(1),
            in_sync: false,
            drifted_ranges: Some(vec![RangeReport {
                first: key.clone(),
                last: key.clone(),
                source_rows: 2,
                target_rows: 1,
            }]),
            differences: Some(
                ["missing", "extra", "changed"]
                    .iter()
                    .map(|k| DifferenceReport {
                        kind: k.to_string(),
                        key: key.clone(),
                        columns: Some(vec![col.clone()]),
                        source: Some(row.clone()),
                        target: Some(row.clone()),
                    })
                    .collect(),
            ),
            column_differences: vec![ColumnReport {
                column: col.clone(),
                only_in: "target".into(),
            }],
            counts: crate::check::outcome::DiffCounts {
                missing: 1,
                extra: 1,
                changed: 1,
                float_only: 0,
            },
            float_only_changes: 0,
            stats: Default::default(),
            filters: None,
            error,
        };
        let info = crate::report::model::RunInfo {
            source: crate::report::model::SideInfo::new("sqlite:a.db"),
            target: crate::report::model::SideInfo::new("sqlite:b.db"),
            started_at: String::new(),
            finished_at: String::new(),
        };
        Report {
            tables: vec![
                table(None),
                table(Some(format!("relation {name:?} / {col}"))),
            ],
            ..Report::failed(&info, None)
        }
    }

    fn hostile() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(HOSTILE).prop_map(str::to_string),
                "[a-z\"\\\\ é日]{0,3}",
                any::<char>().prop_map(String::from),
            ],
            1..5,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        /// No name or value reaches the terminal with a character that could
        /// act on it; every line of the report is plain.
        #[test]
        fn names_and_values_are_escaped(name in hostile(), col in hostile(), value in hostile()) {
            let report = one(name, col, value);
            let text = render_with_costs(&report);
            let brief = render_summary(&report);
            for line in brief.lines() {
                prop_assert!(!line.chars().any(unsafe_char), "{line:?}");
            }
            for line in text.lines() {
                prop_assert!(!line.chars().any(unsafe_char), "{line:?}");
            }
            // No name or value starts a line of its own.
            let plain = render_with_costs(&one("t".into(), "c".into(), "v".into()));
            prop_assert_eq!(text.lines().count(), plain.lines().count());
        }
    }

    #[test]
    fn plain_names_stay_as_they_are() {
        assert_eq!(escape_name("orders"), "orders");
        assert_eq!(escape_name("Bestellungen_ä日"), "Bestellungen_ä日");
        assert_eq!(escape_name("a\x1b[31m"), "\"a\\u{1b}[31m\"");
        assert_eq!(escape_name("a\"b"), "\"a\\\"b\"");
        assert_eq!(escape_name("x\u{202e}y"), "\"x\\u{202e}y\"");
        assert_eq!(escape_text("relation \"t\rX\""), "relation \"t\\rX\"");
    }
}
