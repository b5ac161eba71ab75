//! The options that choose what is compared: `--table`, `--columns`, `--exclude-columns`, `--where`, `--key`.

use super::*;

#[test]
fn table_option_compares_only_that_table() {
    let dir = Scratch::new("table-opt");
    let src = db(
        dir.path(),
        "s.db",
        &format!("{TWO_TABLES} CREATE TABLE only_here (id INTEGER PRIMARY KEY);"),
    );
    let tgt = db(
        dir.path(),
        "t.db",
        &format!("{TWO_TABLES} UPDATE a SET v = 'TWO' WHERE id = 2;"),
    );

    let (r, j) = diff_json(&src, &tgt, &["--table", "b"]);
    assert_code(&r, 0);
    assert_eq!(table_names(&j), ["b"]);

    let (r, j) = diff_json(&src, &tgt, &["--table", "a"]);
    assert_code(&r, 1);
    assert_eq!(table_names(&j), ["a"]);
    assert_eq!(difference_set(table(&j, "a")), set(&["changed id=2 [v]"]));

    let (r, j) = diff_json(&src, &tgt, &["--table", "a", "--table", "b"]);
    assert_code(&r, 1);
    assert_eq!(table_names(&j), ["a", "b"]);

    let r = diff(&src, &tgt, &["--table", "b"]);
    assert_code(&r, 0);
    assert_eq!(r.stdout.trim_end(), "b: in sync (2 rows)");
}

#[test]
fn table_option_maps_a_source_name_to_a_replica_name() {
    let dir = Scratch::new("table-map");
    let table_sql = |name: &str| {
        format!(
            "CREATE TABLE {name} (id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO {name} VALUES (1, 'a'), (2, 'b'), (3, 'c');"
        )
    };
    let src = db(dir.path(), "s.db", &table_sql("orders"));
    let tgt = db(dir.path(), "t.db", &table_sql("orders_copy"));

    let (r, j) = diff_json(&src, &tgt, &["--table", "orders=orders_copy"]);
    assert_code(&r, 0);
    let t = table(&j, "orders");
    assert_eq!(t["target_table"], "orders_copy");
    assert_eq!(t["in_sync"], true);
    assert_eq!(t["source_rows"], 3);
    assert_eq!(t["target_rows"], 3);

    let r = diff(&src, &tgt, &["--table", "orders=orders_copy"]);
    assert_code(&r, 0);
    assert_eq!(
        r.stdout.trim_end(),
        "orders → orders_copy: in sync (3 rows)"
    );

    // Drift in the mapped table is found.
    Connection::open(&tgt)
        .unwrap()
        .execute("DELETE FROM orders_copy WHERE id = 2", [])
        .unwrap();
    let (r, j) = diff_json(&src, &tgt, &["--table", "orders=orders_copy"]);
    assert_code(&r, 1);
    assert_eq!(difference_set(table(&j, "orders")), set(&["missing id=2"]));

    // Without the mapping, the names do not match.
    let (r, j) = diff_json(&src, &tgt, &["--table", "orders"]);
    assert_code(&r, 2);
    let err = table(&j, "orders")["error"].as_str().expect("error");
    assert!(err.contains("orders") && err.contains("target"), "{err}");
}

/// `p(id, name, price)`, 20 rows; in the replica row 5's price and row 7's
/// name and price differ.
fn price_pair(dir: &Scratch) -> (PathBuf, PathBuf) {
    let base = "
        CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT, price REAL);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
        INSERT INTO p SELECT i, 'n' || i, i * 1.5 FROM n;
    ";
    let src = db(dir.path(), "s.db", base);
    let tgt = db(
        dir.path(),
        "t.db",
        &format!(
            "{base} UPDATE p SET price = 99 WHERE id = 5;
             UPDATE p SET price = 98, name = 'x' WHERE id = 7;"
        ),
    );
    (src, tgt)
}

#[test]
fn columns_option_limits_the_compared_columns() {
    let dir = Scratch::new("columns");
    let (src, tgt) = price_pair(&dir);

    let (r, j) = diff_json(&src, &tgt, &["--columns", "name"]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "p")),
        set(&["changed id=7 [name]"])
    );

    let (r, j) = diff_json(&src, &tgt, &["--columns", "price"]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "p")),
        set(&["changed id=5 [price]", "changed id=7 [price]"])
    );

    let (r, j) = diff_json(&src, &tgt, &["--columns", "name,price"]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "p")),
        set(&["changed id=5 [price]", "changed id=7 [name, price]"])
    );

    let r = diff(&src, &tgt, &["--columns", "nosuchcol"]);
    assert_code(&r, 2);
    assert!(r.stdout.contains("nosuchcol"), "{r:#?}");
}

#[test]
fn exclude_columns_drops_the_only_changed_column() {
    let dir = Scratch::new("exclude");
    let (src, tgt) = price_pair(&dir);

    // Row 7's name still differs.
    let (r, j) = diff_json(&src, &tgt, &["--exclude-columns", "price"]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "p")),
        set(&["changed id=7 [name]"])
    );

    let r = diff(&src, &tgt, &["--exclude-columns", "price,name"]);
    assert_code(&r, 0);
    assert_eq!(r.stdout.trim_end(), "p: in sync (20 rows)");

    // Only price changed in this pair.
    Connection::open(&tgt)
        .unwrap()
        .execute("UPDATE p SET name = 'n7' WHERE id = 7", [])
        .unwrap();
    let r = diff(&src, &tgt, &["--exclude-columns", "price"]);
    assert_code(&r, 0);
    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 1);
}

#[test]
fn where_option_restricts_the_rows() {
    let dir = Scratch::new("where");
    let base = "
        CREATE TABLE w (id INTEGER PRIMARY KEY, v INTEGER);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
        INSERT INTO w SELECT i, i * 10 FROM n;
    ";
    let src = db(dir.path(), "s.db", base);
    let tgt = db(
        dir.path(),
        "t.db",
        &format!(
            "{base} UPDATE w SET v = -1 WHERE id IN (50, 500);
             DELETE FROM w WHERE id = 900;"
        ),
    );

    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(
        difference_set(table(&j, "w")),
        set(&["changed id=50 [v]", "changed id=500 [v]", "missing id=900"])
    );

    let (r, j) = diff_json(&src, &tgt, &["--where", "id < 100"]);
    assert_code(&r, 1);
    let t = table(&j, "w");
    assert_eq!(t["source_rows"], 99);
    assert_eq!(t["target_rows"], 99);
    assert_eq!(difference_set(t), set(&["changed id=50 [v]"]));

    let (r, j) = diff_json(&src, &tgt, &["--where", "id < 40"]);
    assert_code(&r, 0);
    assert_eq!(table(&j, "w")["source_rows"], 39);

    let r = diff(&src, &tgt, &["--where", "id >= 600"]);
    assert_code(&r, 1);
    assert!(
        r.stdout.contains("401 source rows, 400 target rows"),
        "{r:#?}"
    );
}

/// `items` (with a primary key, one changed row) and `events` (no primary
/// key; one changed row).
fn keyless_pair(dir: &Scratch) -> (PathBuf, PathBuf) {
    let base = "
        CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT);
        INSERT INTO items VALUES (1, 'a'), (2, 'b');
        CREATE TABLE events (code TEXT NOT NULL, n INTEGER, note TEXT);
        INSERT INTO events VALUES ('e1', 1, 'x'), ('e2', 2, 'y'), ('e3', 3, 'z');
    ";
    let src = db(dir.path(), "s.db", base);
    let tgt = db(
        dir.path(),
        "t.db",
        &format!(
            "{base} UPDATE items SET v = 'B' WHERE id = 2;
             UPDATE events SET note = 'Y' WHERE code = 'e2';"
        ),
    );
    (src, tgt)
}

#[test]
fn table_without_primary_key_needs_key_but_others_are_compared() {
    let dir = Scratch::new("no-pk");
    let (src, tgt) = keyless_pair(&dir);

    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 2);
    assert_eq!(table_names(&j), ["events", "items"]);
    let events = table(&j, "events");
    let err = events["error"].as_str().expect("events has an error");
    assert!(err.contains("--key"), "{err}");
    assert!(err.contains("events"), "{err}");
    let items = table(&j, "items");
    assert!(items.get("error").is_none(), "{items:#}");
    assert_eq!(difference_set(items), set(&["changed id=2 [v]"]));

    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 2);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("events: ERROR:") && l.contains("--key")),
        "{r:#?}"
    );
    assert!(r.stdout.contains("items: DRIFT"), "{r:#?}");
}

#[test]
fn key_option_compares_a_table_without_primary_key() {
    let dir = Scratch::new("key-opt");
    let (src, tgt) = keyless_pair(&dir);
    let (r, j) = diff_json(&src, &tgt, &["--table", "events", "--key", "code"]);
    assert_code(&r, 1);
    let t = table(&j, "events");
    assert_eq!(t["key_columns"], json!(["code"]));
    assert_eq!(
        t["differences"],
        json!([{
            "kind": "changed",
            "key": { "code": "e2" },
            "columns": ["note"],
            "source": { "note": "y" },
            "target": { "note": "Y" },
        }])
    );

    // A composite key.
    let (r, j) = diff_json(&src, &tgt, &["--table", "events", "--key", "code,n"]);
    assert_code(&r, 1);
    let t = table(&j, "events");
    assert_eq!(t["key_columns"], json!(["code", "n"]));
    assert_eq!(difference_set(t), set(&["changed code=\"e2\", n=2 [note]"]));
}

#[test]
fn key_option_rejects_a_non_unique_key() {
    let dir = Scratch::new("key-dup");
    let sql = "CREATE TABLE d (grp TEXT, v INTEGER);
               INSERT INTO d VALUES ('a', 1), ('a', 2), ('b', 3);";
    let src = db(dir.path(), "s.db", sql);
    let tgt = db(dir.path(), "t.db", sql);
    let (r, j) = diff_json(&src, &tgt, &["--key", "grp"]);
    assert_code(&r, 2);
    let err = table(&j, "d")["error"].as_str().expect("error");
    assert!(
        err.contains("more than once") && err.contains("--key"),
        "{err}"
    );

    let r = diff(&src, &tgt, &["--key", "nosuch"]);
    assert_code(&r, 2);
    assert!(r.stdout.contains("nosuch"), "{r:#?}");

    let r = diff(&src, &tgt, &["--key", ""]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("--key needs column names"), "{r:#?}");
    assert!(r.stdout.is_empty(), "{r:#?}");
}
