//! Equal facts stored differently: ISO text, Unix seconds and Julian days, decimals as text or REAL, integer keys stored as text.

use super::*;

/// The source keeps ISO text, decimal text, 'true' and date text; the replica
/// keeps Unix seconds, REAL, 0/1 and Julian days (it declares the columns the
/// way a sync tool might; driftsum reads both sides by the source's types).
///
/// SQLite's NUMERIC affinity turns the source's '5.10' into REAL 5.1 on
/// insert, so row 2 gives the replica an untyped `amount` column holding the
/// text '7.00', for a decimal that really is text on one side.
const CROSS_SOURCE: &str = "
    CREATE TABLE f (id INTEGER PRIMARY KEY, at TIMESTAMP, amount NUMERIC(10,2),
                    flag BOOLEAN, day DATE);
    INSERT INTO f VALUES (1, '2024-03-01 10:00:00', '5.10', 'true', '2024-03-01');
    INSERT INTO f VALUES (2, '2024-01-01 00:00:00', '7', 'false', '1970-01-01');
    INSERT INTO f VALUES (3, NULL, NULL, NULL, NULL);
";

fn cross_replica(first_at: i64) -> String {
    format!(
        "CREATE TABLE f (id INTEGER PRIMARY KEY, at INTEGER, amount, flag INTEGER, day REAL);
         INSERT INTO f VALUES (1, {first_at}, 5.1, 1, 2460370.5);
         INSERT INTO f VALUES (2, 1704067200, '7.00', 0, 2440587.5);
         INSERT INTO f VALUES (3, NULL, NULL, NULL, NULL);"
    )
}

/// `typeof()` of the given columns of row `id` of table `f`.
fn storage_classes(p: &Path, id: i64, cols: &[&str]) -> Vec<String> {
    let c = Connection::open(p).unwrap();
    cols.iter()
        .map(|col| {
            c.query_row(
                &format!("SELECT typeof({col}) FROM f WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn equal_facts_in_different_representations_are_in_sync() {
    let dir = Scratch::new("cross-rep");
    let src = db(dir.path(), "s.db", CROSS_SOURCE);
    let tgt = db(dir.path(), "t.db", &cross_replica(1_709_287_200));
    // The two sides really store the facts differently.
    let cols = ["at", "amount", "flag", "day"];
    assert_eq!(
        storage_classes(&src, 1, &cols),
        ["text", "real", "text", "text"]
    );
    assert_eq!(
        storage_classes(&tgt, 1, &cols),
        ["integer", "real", "integer", "real"]
    );
    assert_eq!(storage_classes(&src, 2, &["amount"]), ["integer"]);
    assert_eq!(storage_classes(&tgt, 2, &["amount"]), ["text"]);

    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 0);
    assert_eq!(r.stdout.trim_end(), "f: in sync (3 rows)");
}

#[test]
fn cross_representation_still_sees_a_one_second_difference() {
    let dir = Scratch::new("cross-rep-off");
    let src = db(dir.path(), "s.db", CROSS_SOURCE);
    let tgt = db(dir.path(), "t.db", &cross_replica(1_709_287_201));
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(difference_set(table(&j, "f")), set(&["changed id=1 [at]"]));
}

#[test]
fn integer_keys_stored_as_text_in_the_replica() {
    let dir = Scratch::new("text-int-keys");
    let src = db(
        dir.path(),
        "s.db",
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO a SELECT i, 'v' || i FROM n;",
    );
    // TEXT keys sort as '1', '10', '100', ...: not in key order.
    let tgt = db(
        dir.path(),
        "t.db",
        "CREATE TABLE a (id TEXT PRIMARY KEY, v TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO a SELECT CAST(i AS TEXT), 'v' || i FROM n;
         DELETE FROM a WHERE id IN ('77', '2500');
         UPDATE a SET v = 'w' WHERE id = '1000';
         INSERT INTO a VALUES ('3005', 'x');",
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "a")),
        set(&[
            "missing id=77",
            "missing id=2500",
            "changed id=1000 [v]",
            "extra id=3005"
        ])
    );
}
