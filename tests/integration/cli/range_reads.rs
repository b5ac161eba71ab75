//! Drifted ranges of a table whose key SQL cannot range-read in key order
//! (a text TIMESTAMP key in SQLite): the differences stay exact, and the
//! rows read stay about one scan per side however many ranges drifted,
//! not one scan per range.

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
/// zero digits).
fn shown(ts: &str) -> String {
    ts.replace(' ', "T")
        .replace(".000000", "")
        .replace(".500000", ".5")
}

#[test]
fn timestamp_keyed_drift_is_read_once_and_named_exactly() {
    let scratch = Scratch::new("range-reads-timestamp");
    let schema = "CREATE TABLE events (ts TIMESTAMP PRIMARY KEY, v TEXT NOT NULL);";
    let src = db(scratch.path(), "src.db", schema);
    let tgt = db(scratch.path(), "tgt.db", schema);
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
            tx.execute("INSERT INTO events VALUES (?1, ?2)", params![ts(i), v])
                .expect("insert");
        }
        if replica {
            for i in (0..ROWS).step_by(1009) {
                let k = ts(i).replace(".000000", ".500000");
                tx.execute("INSERT INTO events VALUES (?1, 'extra')", params![k])
                    .expect("insert extra");
                expected.insert((shown(&k), "extra".into()));
            }
        }
        tx.commit().expect("commit");
    }
    for i in (0..ROWS).filter(|i| i % 197 == 5) {
        match i % 3 {
            0 => expected.insert((shown(&ts(i)), "missing".into())),
            1 => expected.insert((shown(&ts(i)), "changed".into())),
            _ => false,
        };
    }
    assert!(expected.len() > 80, "{}", expected.len());

    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    let t = table(&j, "events");
    let found: BTreeSet<(String, String)> = t["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| {
            let k = d["key"]["ts"].as_str().expect("text key").to_string();
            (k, d["kind"].as_str().expect("kind").to_string())
        })
        .collect();
    assert_eq!(found, expected);
    // The first pass reads each side once; naming the differences may read
    // it about twice more, never once per drifted range (about 100 here).
    let stats = &t["stats"];
    for side in ["source_rows_read", "target_rows_read"] {
        let read = stats[side].as_u64().expect("rows read");
        assert!(read <= 4 * ROWS as u64, "{side} = {read}: {stats:#}");
    }
}
