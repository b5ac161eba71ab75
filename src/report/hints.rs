//! Hints: what a run's result suggests the user got wrong, said at the end
//! of the report (text) and in its `hints` (JSON). A hint never changes a
//! result or an exit code; it only points at a likely mistake: sides that
//! look swapped, a table name the replica spells differently.

use crate::check::{RunOutcome, TableOutcome};
use crate::source::url::{DbUrl, SideUrl};

/// The engine a side's URL names, for the hints' purposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    Sqlite,
    Postgres,
    Mysql,
}

impl Engine {
    /// The engine of a side as given (passwords already hidden); `None`
    /// for a tree file, an agent or anything unparsable.
    fn of(url: &str) -> Option<Engine> {
        let SideUrl::Database(u) = SideUrl::parse(url).ok()? else {
            return None;
        };
        Some(match DbUrl::parse(&u).ok()? {
            DbUrl::Sqlite(_) => Engine::Sqlite,
            DbUrl::Postgres(_) => Engine::Postgres,
            DbUrl::Mysql(_) => Engine::Mysql,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "SQLite",
            Engine::Postgres => "PostgreSQL",
            Engine::Mysql => "MySQL/MariaDB",
        }
    }
}

/// Whether a table's differences look like storage forms rather than
/// drift: nothing missing or extra, and at least half its rows changed
/// (a storage form, `0` against `false` or `+00:00` against `Z`, differs
/// in every row that holds the column, so it changes most rows at once).
fn only_changes(t: &TableOutcome) -> bool {
    let c = t.counts;
    t.error.is_none()
        && c.missing == 0
        && c.extra == 0
        && c.changed > 0
        && c.changed.saturating_mul(2) >= t.source_rows.max(1)
}

/// The hints of a run between the sides `source` and `target` (as given,
/// passwords hidden or not: only their engines are read), in the order to
/// show them.
pub fn of(source: &str, target: &str, run: &RunOutcome) -> Vec<String> {
    let mut hints = Vec::new();
    let (source, target) = (Engine::of(source), Engine::of(target));
    // The replica is usually the SQLite side: a SQLite source against a
    // server target, with most rows "changed", is most likely the two
    // given the wrong way round. Logical types come from the source, so
    // the server's values are then read as SQLite's loose declared types.
    if let (Some(Engine::Sqlite), Some(server @ (Engine::Postgres | Engine::Mysql))) =
        (source, target)
    {
        let tables: Vec<&str> = run
            .tables
            .iter()
            .filter(|t| only_changes(t))
            .map(|t| t.table.as_str())
            .collect();
        if !tables.is_empty() {
            hints.push(format!(
                "the sides look swapped: the source is SQLite and the target {}, and in {} \
                 most rows differ and only as changed values, which is what storage forms \
                 look like (0 against false, +00:00 against Z). Logical types come from the \
                 source, so the server belongs in --source and its SQLite replica in \
                 --target; swap them if so",
                server.name(),
                match tables.as_slice() {
                    [one] => one.to_string(),
                    many => format!("{} tables ({})", many.len(), many.join(", ")),
                },
            ));
        }
    }
    if target == Some(Engine::Sqlite) || source == Some(Engine::Sqlite) {
        for t in &run.tables {
            if t.target_table != t.table
                && t.error.is_none()
                && (looks_like(&t.table, &t.target_table) || looks_like(&t.target_table, &t.table))
            {
                hints.push(format!(
                    "{} was compared with the replica's table {}: SQLite has no schemas, and \
                     matches table names in any case (name another table with --table \
                     SOURCE_NAME=REPLICA_NAME)",
                    t.table, t.target_table
                ));
            }
        }
    }
    hints
}

/// Whether the replica's name is the source's as SQLite finds it (any
/// ASCII case, without a leading `SCHEMA.`), rather than a mapping the
/// user gave.
fn looks_like(source: &str, target: &str) -> bool {
    let bare = source.split_once('.').map_or(source, |(_, n)| n);
    source.eq_ignore_ascii_case(target) || bare.eq_ignore_ascii_case(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, rows: u64, missing: u64, extra: u64, changed: u64) -> TableOutcome {
        let mut t = TableOutcome::failed(name, name, "");
        t.error = None;
        t.source_rows = rows;
        t.target_rows = rows;
        t.counts.missing = missing;
        t.counts.extra = extra;
        t.counts.changed = changed;
        t
    }

    #[test]
    fn swapped_sides_need_a_sqlite_source_and_mostly_changes() {
        let run = |t: TableOutcome| RunOutcome { tables: vec![t] };
        let swapped = ("sqlite:r.db", "postgres://u:pw@h/db");
        assert_eq!(
            of(swapped.0, swapped.1, &run(table("o", 10, 0, 0, 10))).len(),
            1
        );
        assert_eq!(
            of(swapped.0, swapped.1, &run(table("o", 10, 0, 0, 5))).len(),
            1
        );
        // Fewer than half the rows, or any missing or extra row: drift.
        assert!(of(swapped.0, swapped.1, &run(table("o", 10, 0, 0, 4))).is_empty());
        assert!(of(swapped.0, swapped.1, &run(table("o", 10, 1, 0, 9))).is_empty());
        assert!(of(swapped.0, swapped.1, &run(table("o", 10, 0, 1, 9))).is_empty());
        assert!(of(swapped.0, swapped.1, &run(table("o", 10, 0, 0, 0))).is_empty());
        // The usual way round, or two of a kind: no hint.
        for (s, t) in [
            ("postgres://h/db", "sqlite:r.db"),
            ("sqlite:a.db", "sqlite:b.db"),
            ("postgres://h/a", "postgres://h/b"),
            ("sqlite:a.db", "a.dstree"),
        ] {
            assert!(of(s, t, &run(table("o", 10, 0, 0, 10))).is_empty());
        }
        let mysql = ("sqlite:r.db", "mysql://u@h/db");
        let hint = &of(mysql.0, mysql.1, &run(table("orders", 3, 0, 0, 3)))[0];
        assert!(hint.contains("MySQL") && hint.contains("orders"), "{hint}");
        assert!(!hint.contains("pw"), "{hint}");
    }

    #[test]
    fn a_table_found_under_another_spelling_is_named() {
        let mut t = table("public.Orders", 1, 0, 0, 0);
        t.target_table = "orders".into();
        let run = RunOutcome { tables: vec![t] };
        let hints = of("postgres://h/db", "sqlite:r.db", &run);
        assert_eq!(hints.len(), 1, "{hints:?}");
        assert!(hints[0].starts_with("public.Orders was compared with the replica's table orders"));
        // A mapping the user gave is not remarked on.
        let mut t = table("orders", 1, 0, 0, 0);
        t.target_table = "orders_copy".into();
        let run = RunOutcome { tables: vec![t] };
        assert!(of("postgres://h/db", "sqlite:r.db", &run).is_empty());
    }
}
