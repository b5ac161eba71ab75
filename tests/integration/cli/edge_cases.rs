//! Edge cases: drift at both ends of the key range, empty tables, NULL against empty text, awkward identifiers, compound and text keys, `--where` inside range reads, tree shapes.

use super::*;

#[test]
fn drift_at_both_ends_of_the_key_range() {
    let dir = Scratch::new("edges");
    let (src, tgt) = (
        db(dir.path(), "s.db", ITEMS_5000),
        db(
            dir.path(),
            "t.db",
            &format!(
                "{ITEMS_5000}
                 DELETE FROM items WHERE id IN (2, 10000);
                 INSERT INTO items VALUES (-5, 'before', 1.0, 1), (0, 'zero', 1.0, 1),
                                          (10001, 'after', 1.0, 1);"
            ),
        ),
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "items")),
        set(&[
            "extra id=-5",
            "extra id=0",
            "missing id=2",
            "missing id=10000",
            "extra id=10001",
        ])
    );
}

#[test]
fn empty_tables() {
    let dir = Scratch::new("empty");
    let schema = "CREATE TABLE e (id INTEGER PRIMARY KEY, v TEXT);";
    let empty = db(dir.path(), "empty.db", schema);
    let empty2 = db(dir.path(), "empty2.db", schema);
    let full = db(
        dir.path(),
        "full.db",
        &format!("{schema} INSERT INTO e VALUES (1, 'a'), (2, 'b'), (3, 'c');"),
    );

    let r = diff(&empty, &empty2, &[]);
    assert_code(&r, 0);
    assert_eq!(r.stdout.trim_end(), "e: in sync (0 rows)");

    let (r, j) = diff_json(&empty, &full, &[]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "e")),
        set(&["extra id=1", "extra id=2", "extra id=3"])
    );

    let (r, j) = diff_json(&full, &empty, &[]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "e")),
        set(&["missing id=1", "missing id=2", "missing id=3"])
    );
}

#[test]
fn null_empty_text_and_zero_are_all_different() {
    let dir = Scratch::new("nulls");
    let schema = "CREATE TABLE z (id INTEGER PRIMARY KEY, t TEXT, n INTEGER);";
    let src = db(
        dir.path(),
        "s.db",
        &format!(
            "{schema} INSERT INTO z VALUES (1, NULL, NULL), (2, '', 0), (3, 'x', 1), (4, NULL, 0);"
        ),
    );
    let tgt = db(
        dir.path(),
        "t.db",
        &format!(
            "{schema} INSERT INTO z VALUES (1, '', 0), (2, NULL, NULL), (3, 'x', 1), (4, NULL, 0);"
        ),
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    let t = table(&j, "z");
    assert_eq!(
        difference_set(t),
        set(&["changed id=1 [n, t]", "changed id=2 [n, t]"])
    );
    assert_eq!(
        t["differences"][0]["source"],
        json!({ "t": null, "n": null })
    );
    assert_eq!(t["differences"][0]["target"], json!({ "t": "", "n": 0 }));
}

#[test]
fn awkward_identifiers_are_quoted() {
    let dir = Scratch::new("idents");
    let sql = |v: &str| {
        format!(
            "CREATE TABLE \"order\" (\"select\" INTEGER PRIMARY KEY, \"group\" TEXT, \"a b\" INTEGER);
             INSERT INTO \"order\" VALUES (1, 'g1', 10), (2, 'g2', 20), (3, 'g3', 30);
             CREATE TABLE \"odd \"\"name\"\"\" (id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO \"odd \"\"name\"\"\" VALUES (1, '{v}');"
        )
    };
    let src = db(dir.path(), "s.db", &sql("same"));
    let tgt = db(
        dir.path(),
        "t.db",
        &format!(
            "{} UPDATE \"order\" SET \"a b\" = 21 WHERE \"select\" = 2;",
            sql("same")
        ),
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(table_names(&j), ["odd \"name\"", "order"]);
    assert_eq!(table(&j, "odd \"name\"")["in_sync"], true);
    let t = table(&j, "order");
    assert_eq!(t["key_columns"], json!(["select"]));
    assert_eq!(difference_set(t), set(&["changed select=2 [a b]"]));

    let (r, _) = diff_json(
        &src,
        &tgt,
        &["--table", "order", "--exclude-columns", "a b"],
    );
    assert_code(&r, 0);
    let (r, _) = diff_json(
        &src,
        &tgt,
        &["--table", "order", "--where", "\"select\" <> 2"],
    );
    assert_code(&r, 0);
}

#[test]
fn composite_primary_key_follows_the_declared_key_order() {
    let dir = Scratch::new("composite-pk");
    let base = "
        CREATE TABLE c (a INTEGER, b TEXT, v REAL, PRIMARY KEY (b, a)) WITHOUT ROWID;
        INSERT INTO c VALUES (1, 'x', 1.0), (2, 'x', 2.0), (1, 'y', 3.0), (2, 'y', 4.0);
    ";
    let src = db(dir.path(), "s.db", base);
    let tgt = db(
        dir.path(),
        "t.db",
        &format!("{base} UPDATE c SET v = 3.5 WHERE a = 1 AND b = 'y'; DELETE FROM c WHERE a = 2 AND b = 'x';"),
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    let t = table(&j, "c");
    assert_eq!(t["key_columns"], json!(["b", "a"]));
    // Listed in (b, a) order: ("x", 2) before ("y", 1), each key's columns
    // in key order.
    assert_eq!(
        differences(t),
        ["missing b=\"x\", a=2", "changed b=\"y\", a=1 [v]"]
    );
}

#[test]
fn text_keys_compare_bytewise_whatever_the_collation() {
    let dir = Scratch::new("text-keys");
    let base = "
        CREATE TABLE k (code TEXT PRIMARY KEY COLLATE NOCASE, v INTEGER);
        INSERT INTO k VALUES ('a', 1), ('B', 2), ('c', 3), ('É', 4), ('z', 5), ('', 6), ('a b', 7);
    ";
    let src = db(dir.path(), "s.db", base);
    let tgt = db(
        dir.path(),
        "t.db",
        &format!(
            "{base} UPDATE k SET v = 40 WHERE code = 'É'; DELETE FROM k WHERE code = 'B';
             INSERT INTO k VALUES ('D', 8);"
        ),
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "k")),
        set(&[
            "missing code=\"B\"",
            "extra code=\"D\"",
            "changed code=\"É\" [v]"
        ])
    );
}

#[test]
fn where_condition_is_kept_whole_inside_range_reads() {
    let dir = Scratch::new("where-or");
    let (src, tgt) = items_pair(&dir);
    // An OR must not leak out of the range conditions driftsum adds.
    let (r, j) = diff_json(&src, &tgt, &["--where", "id < 100 OR id > 7500"]);
    assert_code(&r, 1);
    let mut expected = set(&["missing id=20"]);
    for id in (8000..=8018).step_by(2) {
        expected.insert(format!("missing id={id}"));
    }
    assert_eq!(difference_set(table(&j, "items")), expected);

    let r = diff(&src, &tgt, &["--where", "nosuchcol = 1"]);
    assert_code(&r, 2);
    assert!(
        r.stdout.contains("items: ERROR:") && r.stdout.contains("nosuchcol"),
        "{r:#?}"
    );
}

#[test]
fn tree_shape_does_not_change_the_findings() {
    let dir = Scratch::new("shapes");
    let (src, tgt) = items_pair(&dir);
    for shape in [
        ["--leaf-target", "2", "--fanout", "2"],
        ["--leaf-target", "7", "--fanout", "3"],
        ["--leaf-target", "1000", "--fanout", "64"],
        ["--leaf-target", "100000", "--fanout", "2"],
    ] {
        let (r, j) = diff_json(&src, &tgt, &shape);
        assert_code(&r, 1);
        assert_eq!(
            difference_set(table(&j, "items")),
            items_drift_expected(),
            "with {shape:?}"
        );
    }
}
