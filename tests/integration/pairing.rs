//! Tables paired without `--table` (a whole-database diff), through the
//! real binary: against a SQLite side, names are found as SQLite finds them
//! (any case, a server's schema dropped), the report says so, and a name
//! that could mean two tables is refused naming both. Against the real
//! PostgreSQL (a schema of its own, named by the URL's `search_path`) and
//! MariaDB (a database of its own).

use std::path::Path;
use std::process::{Command, Output};

use crate::util::{self, show, Admin, Scratch};

/// A SQLite replica holding `Orders` (3 rows) and `ITEMS` (2 rows, one of
/// them changed against the server's).
fn replica(path: &Path) -> String {
    rusqlite::Connection::open(path)
        .and_then(|c| {
            c.execute_batch(
                "CREATE TABLE \"Orders\" (id INTEGER PRIMARY KEY, v INTEGER);
                 INSERT INTO \"Orders\" VALUES (1, 10), (2, 20), (3, 30);
                 CREATE TABLE ITEMS (id INTEGER PRIMARY KEY, v INTEGER);
                 INSERT INTO ITEMS VALUES (1, 100), (2, 999);",
            )
        })
        .expect("replica");
    format!("sqlite:{}", path.display())
}

/// The server's side of [`replica`], in lower case.
const SERVER_TABLES: &str = "CREATE TABLE orders (id INT PRIMARY KEY, v INT);
     INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30);
     CREATE TABLE items (id INT PRIMARY KEY, v INT);
     INSERT INTO items VALUES (1, 100), (2, 200);";

fn diff(source: &str, target: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(["diff", "--source", source, "--target", target])
        .args(extra)
        .output()
        .expect("run driftsum")
}

/// Both tables paired (no "missing from the target"), the change in
/// `items` found, and the report naming each pairing SQLite's way made.
fn assert_paired_the_sqlite_way(source: &str, target: &str) {
    let out = diff(source, target, &[]);
    let text = show(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("missing from the target"), "{text}");
    assert!(!text.contains("only in the target"), "{text}");
    assert!(text.contains("id=2"), "{text}");
    for (s, r) in [("orders", "Orders"), ("items", "ITEMS")] {
        assert!(
            text.contains(&format!("{s} was compared with the replica's table {r}")),
            "{text}"
        );
    }
    // The same pairing, told in the JSON report.
    let out = diff(source, target, &["--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let errors = crate::json_contract::violations(&doc);
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
    let tables = doc["tables"].as_array().expect("tables");
    let target_of = |name: &str| {
        tables
            .iter()
            .find(|t| t["table"] == name)
            .map(|t| t["target_table"].clone())
    };
    assert_eq!(target_of("orders"), Some("Orders".into()), "{doc}");
    assert_eq!(target_of("items"), Some("ITEMS".into()), "{doc}");
    let hints = doc["hints"].to_string();
    assert!(
        hints.contains("compared with the replica's table ITEMS"),
        "{doc}"
    );
}

#[test]
fn postgres_tables_pair_with_sqlite_names_in_any_case() {
    let Some(url) = util::postgres_url() else {
        return;
    };
    let schema = util::unique("h3_pair");
    let mut admin: Admin<sqlx::PgConnection> = Admin::connect(&url);
    admin.exec(&format!(
        "CREATE SCHEMA {schema}; SET search_path = {schema}; {SERVER_TABLES}"
    ));
    let result = std::panic::catch_unwind(|| {
        let home = Scratch::new("h3-pair-pg");
        let target = replica(&home.join("r.sqlite"));
        let sep = if url.contains('?') { '&' } else { '?' };
        let source = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        assert_paired_the_sqlite_way(&source, &target);
        // Reversed (SQLite as the source), the same rules pair them.
        let out = diff(&target, &source, &[]);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        assert!(
            !show(&out).contains("missing from the target"),
            "{}",
            show(&out)
        );
        // A second server table that SQLite's rules also find: refused,
        // naming both, and nothing compared.
        let mut admin: Admin<sqlx::PgConnection> = Admin::connect(&url);
        admin.exec(&format!(
            "CREATE TABLE {schema}.\"Orders\" (id INT PRIMARY KEY, v INT)"
        ));
        let out = diff(&source, &target, &[]);
        let text = show(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(
            text.contains("\"Orders\"") && text.contains("\"orders\"") && text.contains("--table"),
            "{text}"
        );
        // Named with --table, the pair is the user's.
        let out = diff(&source, &target, &["--table", "items"]);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    });
    let _ = admin.try_exec(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn mariadb_tables_pair_with_sqlite_names_in_any_case() {
    let Some(url) = util::mysql_url() else {
        return;
    };
    let db = util::unique("h3_pair");
    let mut admin: Admin<sqlx::MySqlConnection> = Admin::connect(&url);
    admin.exec(&format!("CREATE DATABASE `{db}`"));
    let result = std::panic::catch_unwind(|| {
        let mut parsed = ::url::Url::parse(&url).expect("a mysql URL");
        parsed.set_path(&db);
        let source = parsed.to_string();
        let mut setup: Admin<sqlx::MySqlConnection> = Admin::connect(&source);
        setup.exec(SERVER_TABLES);
        let home = Scratch::new("h3-pair-my");
        let target = replica(&home.join("r.sqlite"));
        assert_paired_the_sqlite_way(&source, &target);
    });
    let _ = admin.try_exec(&format!("DROP DATABASE IF EXISTS `{db}`"));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
