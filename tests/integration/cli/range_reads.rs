//! Drifted ranges of a table keyed by a text TIMESTAMP in SQLite: stored in
//! one fixed form, its keys are range-read through the index (the rows read
//! are one scan plus the drifted ranges); in mixed forms SQL cannot range
//! over them in key order, and the rows read stay about one scan per side
//! however many ranges drifted, not one scan per range. Either way the
//! differences are exact. The same for instants (`TIMESTAMPTZ`), whose key
//! order is time order only to the second: in one form their ranges are
//! read by whole seconds, and a second holding keys that sort out of time
//! order (`…:00.5Z` before `…:00Z`) costs no extra scan.

use std::collections::BTreeSet;

use super::*;

const ROWS: i64 = 20_000;

/// `2026-01-01 00:00:00.000000` plus `i` seconds, as SQLite text.
fn ts(i: i64) -> String {
    let (d, s) = (i / 86_400, i % 86_400);
    format!(
        "2026-{:02}-{:02} {:02}:{:02}:{:02}.000000",
        d / 28 + 1,
        d % 28 + 1,
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// How the report shows a key written by [`ts`] (ISO 8601, no trailing
/// zero digits), with `suffix` (an instant's) as stored.
fn shown(ts: &str, suffix: &str) -> String {
    let shown = ts
        .replace(' ', "T")
        .replace(".000000", "")
        .replace(".500000", ".5");
    match suffix {
        "" => shown,
        _ => format!("{shown}Z"),
    }
}

/// The same timestamp in another text form (`T` separator, no fraction
/// digits when whole): what a second writer of the table might store.
fn other_form(ts: &str) -> String {
    ts.replace(' ', "T").replace(".000000", "")
}

/// How the keys of a pair are stored.
#[derive(Clone, Copy)]
struct Keys {
    /// The key column's declared type.
    declared: &'static str,
    /// After every key (an instant's offset).
    suffix: &'static str,
    /// A third of the replica's keys in another text form.
    mixed: bool,
}

const NAIVE: Keys = Keys {
    declared: "TIMESTAMP",
    suffix: "",
    mixed: false,
};

const INSTANT: Keys = Keys {
    declared: "TIMESTAMPTZ",
    suffix: "+00:00",
    mixed: false,
};

#[test]
fn timestamp_keyed_drift_is_read_once_and_named_exactly() {
    for (name, keys) in [
        ("range-reads-timestamp-mixed", NAIVE),
        ("range-reads-instant-mixed", INSTANT),
    ] {
        let stats = timestamp_keyed_drift(
            name,
            Keys {
                mixed: true,
                ..keys
            },
        );
        // The first pass reads each side once; naming the differences may
        // read it about twice more, never once per drifted range (about 100
        // here).
        for side in ["source_rows_read", "target_rows_read"] {
            let read = stats[side].as_u64().expect("rows read");
            assert!(
                read <= 4 * ROWS as u64,
                "{name}: {side} = {read}: {stats:#}"
            );
        }
    }
}

#[test]
fn timestamp_keys_in_one_text_form_are_read_by_range() {
    for (name, keys) in [
        ("range-reads-timestamp-uniform", NAIVE),
        ("range-reads-instant-uniform", INSTANT),
        (
            "range-reads-instant-zulu",
            Keys {
                suffix: "Z",
                ..INSTANT
            },
        ),
    ] {
        let stats = timestamp_keyed_drift(name, keys);
        // One scan, then only the drifted ranges (about 100 leaves of rows).
        for side in ["source_rows_read", "target_rows_read"] {
            let read = stats[side].as_u64().expect("rows read");
            assert!(
                read > ROWS as u64 && read <= ROWS as u64 + ROWS as u64 / 3,
                "{name}: {side} = {read}: {stats:#}"
            );
        }
    }
}

/// Writes the pair (stored as `keys` says), checks that the differences
/// found are exactly those made, and returns the run's statistics.
fn timestamp_keyed_drift(name: &str, keys: Keys) -> Value {
    let scratch = Scratch::new(name);
    let schema = format!(
        "CREATE TABLE events (ts {} PRIMARY KEY, v TEXT NOT NULL);",
        keys.declared
    );
    let src = db(scratch.path(), "src.db", &schema);
    let tgt = db(scratch.path(), "tgt.db", &schema);
    let stored = |t: String| format!("{t}{}", keys.suffix);
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    for (path, replica) in [(&src, false), (&tgt, true)] {
        let mut conn = Connection::open(path).expect("open");
        let tx = conn.transaction().expect("transaction");
        for i in 0..ROWS {
            let mut v = format!("value {i}");
            // Scattered drift: far apart, so each is its own range.
            if replica && i % 197 == 5 {
                match i % 3 {
                    0 => continue,
                    1 => v.push('!'),
                    _ => {}
                }
            }
            let k = match replica && keys.mixed && i % 3 == 1 {
                true => other_form(&ts(i)),
                false => ts(i),
            };
            tx.execute("INSERT INTO events VALUES (?1, ?2)", params![stored(k), v])
                .expect("insert");
        }
        if replica {
            // Half a second after a stored key: an instant's key sorts
            // before that key's (`.5Z` < `Z`).
            for i in (0..ROWS).step_by(1009) {
                let k = ts(i).replace(".000000", ".500000");
                expected.insert((shown(&k, keys.suffix), "extra".into()));
                tx.execute(
                    "INSERT INTO events VALUES (?1, 'extra')",
                    params![stored(k)],
                )
                .expect("insert extra");
            }
        }
        tx.commit().expect("commit");
    }
    for i in (0..ROWS).filter(|i| i % 197 == 5) {
        let k = shown(&ts(i), keys.suffix);
        match i % 3 {
            0 => expected.insert((k, "missing".into())),
            1 => expected.insert((k, "changed".into())),
            _ => false,
        };
    }
    assert!(expected.len() > 80, "{}", expected.len());

    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    let t = table(&j, "events");
    let found = found(t, "ts");
    assert_eq!(found, expected, "{name}");
    t["stats"].clone()
}

/// Text keys whose index is not in byte order (`NOCASE`, `RTRIM`), or a key
/// no index leads with at all (`--key` on a plain column): the drifted
/// ranges cannot be read by key range through an index, so the rows that
/// differ are looked up by their exact keys where an index (in any
/// collation) has them, else all ranges are read by one more scan; never a
/// scan per range. The differences are exact either way.
#[test]
fn text_keys_no_byte_order_index_serves_are_read_by_exact_key() {
    // (name, the table's definition, --key, most rows read from a side)
    for (name, table_sql, key_arg, most) in [
        (
            "nocase",
            "(k TEXT PRIMARY KEY COLLATE NOCASE, v TEXT NOT NULL)",
            None,
            ROWS as u64 + ROWS as u64 / 3,
        ),
        (
            "rtrim-without-rowid",
            "(k TEXT PRIMARY KEY COLLATE RTRIM, v TEXT NOT NULL) WITHOUT ROWID",
            None,
            ROWS as u64 + ROWS as u64 / 3,
        ),
        (
            "no-index",
            "(k TEXT NOT NULL, v TEXT NOT NULL)",
            Some("k"),
            2 * ROWS as u64 + ROWS as u64 / 3,
        ),
    ] {
        let scratch = Scratch::new(&format!("range-reads-text-{name}"));
        let schema = format!("CREATE TABLE t {table_sql};");
        let src = db(scratch.path(), "src.db", &schema);
        let tgt = db(scratch.path(), "tgt.db", &schema);
        // Mixed case, so that NOCASE order is not byte order.
        let key = |i: i64| match i % 3 {
            0 => format!("Key-{i:05}"),
            1 => format!("key-{i:05}"),
            _ => format!("KEY-{i:05}"),
        };
        let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
        for (path, replica) in [(&src, false), (&tgt, true)] {
            let mut conn = Connection::open(path).expect("open");
            let tx = conn.transaction().expect("transaction");
            for i in 0..ROWS {
                let mut v = format!("value {i}");
                if replica && i % 197 == 5 {
                    match i % 3 {
                        0 => {
                            expected.insert((key(i), "missing".into()));
                            continue;
                        }
                        1 => {
                            expected.insert((key(i), "changed".into()));
                            v.push('!');
                        }
                        _ => {}
                    }
                }
                tx.execute("INSERT INTO t VALUES (?1, ?2)", params![key(i), v])
                    .expect("insert");
            }
            tx.commit().expect("commit");
        }
        let args: Vec<&str> = match key_arg {
            Some(k) => vec!["--key", k],
            None => Vec::new(),
        };
        let (r, j) = diff_json(&src, &tgt, &args);
        assert_code(&r, 1);
        let t = table(&j, "t");
        let found = found(t, "k");
        assert_eq!(found, expected, "{name}");
        let stats = &t["stats"];
        for side in ["source_rows_read", "target_rows_read"] {
            let read = stats[side].as_u64().expect("rows read");
            assert!(read <= most, "{name}: {side} = {read}: {stats:#}");
        }
    }
}

/// A table report's differences as (key, kind), by text key column `key`.
fn found(t: &Value, key: &str) -> BTreeSet<(String, String)> {
    t["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| {
            let k = d["key"][key].as_str().expect("text key").to_string();
            (k, d["kind"].as_str().expect("kind").to_string())
        })
        .collect()
}
