//! Bad input: missing files, files that are not databases, unknown schemes, missing tables and columns, values that cannot be read, tables on one side only.

use super::*;

#[test]
fn missing_source_file_is_an_error_and_is_not_created() {
    let dir = Scratch::new("missing-src");
    let tgt = db(dir.path(), "t.db", TWO_TABLES);
    let missing = dir.join("no-such-source.db");
    let r = diff(&missing, &tgt, &[]);
    assert_code(&r, 2);
    assert!(r.stdout.is_empty(), "{r:#?}");
    assert!(r.stderr.contains("source"), "{r:#?}");
    assert!(r.stderr.contains("no such database file"), "{r:#?}");
    assert!(
        r.stderr.contains(&missing.display().to_string()),
        "message should name the path: {r:#?}"
    );
    assert!(!missing.exists(), "driftsum created {}", missing.display());
    assert_eq!(listing(dir.path()), ["t.db"]);
}

#[test]
fn missing_target_file_is_an_error_and_is_not_created() {
    let dir = Scratch::new("missing-tgt");
    let src = db(dir.path(), "s.db", TWO_TABLES);
    let missing = dir.join("no-such-replica.db");
    let r = diff(&src, &missing, &[]);
    assert_code(&r, 2);
    assert!(r.stdout.is_empty(), "{r:#?}");
    assert!(r.stderr.contains("target"), "{r:#?}");
    assert!(r.stderr.contains(&missing.display().to_string()), "{r:#?}");
    assert!(!missing.exists());
}

#[test]
fn a_file_that_is_not_a_database_is_an_error() {
    let dir = Scratch::new("not-db");
    let tgt = db(dir.path(), "t.db", TWO_TABLES);
    let junk = dir.join("junk.db");
    let content = "this is a plain text file, not a SQLite database\n".repeat(100);
    std::fs::write(&junk, &content).unwrap();
    let before = snapshot(&junk);

    let r = diff(&junk, &tgt, &[]);
    assert_code(&r, 2);
    assert!(r.stdout.is_empty(), "{r:#?}");
    assert!(r.stderr.contains("cannot open"), "{r:#?}");
    assert!(r.stderr.contains(&junk.display().to_string()), "{r:#?}");
    assert!(r.stderr.contains("not a database"), "{r:#?}");
    assert_eq!(snapshot(&junk), before, "the junk file was modified");
    assert_eq!(listing(dir.path()), ["junk.db", "t.db"]);

    // The same as a target.
    let r = diff(&tgt, &junk, &[]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("target") && r.stderr.contains("not a database"),
        "{r:#?}"
    );
}

#[test]
fn a_missing_table_is_reported_as_an_error() {
    let dir = Scratch::new("no-table");
    let src = db(dir.path(), "s.db", TWO_TABLES);
    let tgt = db(dir.path(), "t.db", TWO_TABLES);

    // The report (stdout) carries the per-table error; other requested tables
    // are still compared.
    let r = diff(&src, &tgt, &["--table", "nosuch", "--table", "a"]);
    assert_code(&r, 2);
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("nosuch: ERROR:"))
        .unwrap_or_else(|| panic!("{r:#?}"));
    assert!(line.contains("no table \"nosuch\""), "{line}");
    assert!(r.stdout.contains("a: in sync (3 rows)"), "{r:#?}");

    let (r, j) = diff_json(&src, &tgt, &["--table", "nosuch"]);
    assert_code(&r, 2);
    assert_eq!(table_names(&j), ["nosuch"]);
    let err = table(&j, "nosuch")["error"].as_str().expect("error");
    assert!(err.contains("no table \"nosuch\""), "{err}");
    assert!(err.contains(&src.display().to_string()), "{err}");
}

#[test]
fn unknown_url_scheme_is_an_error() {
    let dir = Scratch::new("bad-scheme");
    let tgt = db(dir.path(), "t.db", TWO_TABLES);
    let t = url(&tgt);
    let r = run(&["diff", "--source", "oracle://x", "--target", &t]);
    assert_code(&r, 2);
    assert!(r.stdout.is_empty(), "{r:#?}");
    assert!(
        r.stderr.contains("unsupported database URL scheme"),
        "{r:#?}"
    );
    assert!(r.stderr.contains("oracle"), "{r:#?}");
    assert!(r.stderr.contains("sqlite:PATH"), "{r:#?}");

    let r = run(&["diff", "--source", &t, "--target", "postgres://h/db"]);
    assert_code(&r, 2);
    assert!(
        r.stderr.contains("target") && r.stderr.contains("postgres"),
        "{r:#?}"
    );
}

#[test]
fn url_without_scheme_is_an_error() {
    let dir = Scratch::new("no-scheme");
    let src = db(dir.path(), "s.db", TWO_TABLES);
    let tgt = db(dir.path(), "t.db", TWO_TABLES);
    let bare = src.display().to_string();
    let t = url(&tgt);
    let r = run(&["diff", "--source", &bare, "--target", &t]);
    assert_code(&r, 2);
    assert!(r.stdout.is_empty(), "{r:#?}");
    assert!(r.stderr.contains("is not a database URL"), "{r:#?}");
    assert!(r.stderr.contains("sqlite:PATH"), "{r:#?}");

    let r = run(&["diff", "--source", "sqlite:", "--target", &t]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("names no file"), "{r:#?}");
}

#[test]
fn every_documented_sqlite_url_form_is_accepted() {
    let dir = Scratch::new("url-forms");
    let src = db(dir.path(), "s.db", TWO_TABLES);
    let tgt = db(dir.path(), "t.db", TWO_TABLES);
    let abs = src.display().to_string();
    assert!(abs.starts_with('/'), "temp dir is absolute");
    let t = url(&tgt);
    for form in [
        format!("sqlite:{abs}"),
        format!("sqlite://{abs}"),
        format!("sqlite3:{abs}"),
        format!("SQLite:{abs}"),
    ] {
        let r = run(&["diff", "--source", &form, "--target", &t]);
        assert_code(&r, 0);
    }
}

#[test]
fn command_line_errors_exit_2() {
    let r = run(&["diff", "--source", "sqlite:a.db"]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("--target"), "{r:#?}");

    let r = run(&[
        "diff",
        "--source",
        "sqlite:a.db",
        "--target",
        "sqlite:b.db",
        "--float-digits",
        "0",
    ]);
    assert_code(&r, 2);
    assert!(r.stderr.contains("--float-digits"), "{r:#?}");
}

#[test]
fn a_column_on_one_side_only_is_reported_not_fatal() {
    let dir = Scratch::new("col-one-side");
    let src = db(
        dir.path(),
        "s.db",
        "CREATE TABLE c (id INTEGER PRIMARY KEY, v TEXT, note TEXT);
         INSERT INTO c VALUES (1, 'a', 'n1'), (2, 'b', 'n2'), (3, 'c', 'n3');",
    );
    let tgt = db(
        dir.path(),
        "t.db",
        "CREATE TABLE c (id INTEGER PRIMARY KEY, v TEXT, legacy INTEGER);
         INSERT INTO c VALUES (1, 'a', 7), (2, 'B', 8), (3, 'c', 9);",
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    let t = table(&j, "c");
    assert!(t.get("error").is_none(), "{t:#}");
    assert_eq!(t["in_sync"], false);
    let cols: BTreeSet<(String, String)> = t["column_differences"]
        .as_array()
        .expect("column_differences")
        .iter()
        .map(|c| {
            (
                c["column"].as_str().unwrap().to_string(),
                c["only_in"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        cols,
        BTreeSet::from([
            ("note".to_string(), "source".to_string()),
            ("legacy".to_string(), "target".to_string()),
        ])
    );
    // The shared columns are still compared.
    assert_eq!(difference_set(t), set(&["changed id=2 [v]"]));

    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert!(r.stdout.contains("2 columns on one side only"), "{r:#?}");
    assert!(
        r.stdout.contains("column \"note\" is only in the source"),
        "{r:#?}"
    );
    assert!(
        r.stdout.contains("column \"legacy\" is only in the target"),
        "{r:#?}"
    );

    // Excluding both makes the only remaining change the row.
    let (r, j) = diff_json(&src, &tgt, &["--exclude-columns", "note,legacy"]);
    assert_code(&r, 1);
    assert!(table(&j, "c").get("column_differences").is_none(), "{j:#}");
}

#[test]
fn a_value_that_cannot_be_coerced_is_a_changed_row() {
    let dir = Scratch::new("banana");
    let schema = "CREATE TABLE v (id INTEGER PRIMARY KEY, qty INTEGER, at TIMESTAMP, ok BOOLEAN);";
    let src = db(
        dir.path(),
        "s.db",
        &format!(
            "{schema} INSERT INTO v VALUES
               (1, 5, '2024-03-01 10:00:00', 1),
               (2, 6, '2024-03-01 11:00:00', 0),
               (3, 7, '2024-03-01 12:00:00', 1);"
        ),
    );
    let tgt = db(
        dir.path(),
        "t.db",
        &format!(
            "{schema} INSERT INTO v VALUES
               (1, 'banana', '2024-03-01 10:00:00', 1),
               (2, 6, 'banana', 0),
               (3, 7, '2024-03-01 12:00:00', 'maybe');"
        ),
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    let t = table(&j, "v");
    assert!(t.get("error").is_none(), "{t:#}");
    assert_eq!(
        difference_set(t),
        set(&[
            "changed id=1 [qty]",
            "changed id=2 [at]",
            "changed id=3 [ok]"
        ])
    );
    let d1 = &t["differences"].as_array().unwrap()[0];
    assert_eq!(d1["source"], json!({ "qty": 5 }));
    let shown = d1["target"]["qty"].as_str().expect("shown as text");
    assert!(shown.contains("banana"), "{shown}");

    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert!(r.stdout.contains("3 changed"), "{r:#?}");
}

// Tables on one side only

#[test]
fn tables_on_one_side_only_are_errors_in_the_report() {
    let dir = Scratch::new("lonely");
    let src = db(
        dir.path(),
        "s.db",
        &format!("{TWO_TABLES} CREATE TABLE src_only (id INTEGER PRIMARY KEY);"),
    );
    let tgt = db(
        dir.path(),
        "t.db",
        &format!("{TWO_TABLES} CREATE TABLE tgt_only (id INTEGER PRIMARY KEY);"),
    );
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 2);
    assert_eq!(table_names(&j), ["a", "b", "src_only", "tgt_only"]);
    assert_eq!(table(&j, "a")["in_sync"], true);
    assert_eq!(table(&j, "b")["in_sync"], true);
    let e = table(&j, "src_only")["error"].as_str().expect("error");
    assert!(e.contains("missing from the target"), "{e}");
    let e = table(&j, "tgt_only")["error"].as_str().expect("error");
    assert!(e.contains("only in the target"), "{e}");

    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 2);
    assert!(r.stdout.contains("src_only: ERROR:"), "{r:#?}");
    assert!(r.stdout.contains("tgt_only: ERROR:"), "{r:#?}");
    assert!(r.stdout.contains("a: in sync"), "{r:#?}");
}
