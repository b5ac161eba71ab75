//! Mistakes caught, not obeyed, through the real binary: a column name
//! neither side has, and a PostgreSQL server error without PostgreSQL's own
//! source-line noise.

use std::process::{Command, Output};

use crate::util::{self, Scratch};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(args)
        .output()
        .expect("run driftsum")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A SQLite file holding `sql`, as a `sqlite:` URL.
fn db(dir: &Scratch, name: &str, sql: &str) -> String {
    let path = dir.join(name);
    rusqlite::Connection::open(&path)
        .and_then(|c| c.execute_batch(sql))
        .expect("create db");
    format!("sqlite:{}", path.display())
}

#[test]
fn exclude_columns_naming_nothing_is_an_error() {
    let dir = Scratch::new("mistakes");
    let src = db(
        &dir,
        "s.db",
        "CREATE TABLE o (id INTEGER PRIMARY KEY, shipped INTEGER, note TEXT);
         INSERT INTO o VALUES (1, 1, 'a');",
    );
    let tgt = db(
        &dir,
        "t.db",
        "CREATE TABLE o (id INTEGER PRIMARY KEY, shipped INTEGER, note TEXT);
         INSERT INTO o VALUES (1, 0, 'a');",
    );
    let base = ["diff", "--source", &src, "--target", &tgt];
    // The typo is refused, naming it and the columns there are.
    let out = run(&[&base[..], &["--exclude-columns", "shiped"]].concat());
    let all = show(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("\"shiped\""), "{all}");
    assert!(all.contains("id, shipped, note"), "{all}");
    // Spelled right, the column is left out and the rest is in sync.
    let out = run(&[&base[..], &["--exclude-columns", "shipped"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // --columns the same way.
    let out = run(&[&base[..], &["--columns", "custmer"]].concat());
    let all = show(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("\"custmer\"") && all.contains("id, shipped, note"),
        "{all}"
    );
}

#[test]
fn postgres_errors_lose_the_source_line() {
    let Some(base) = util::postgres_url() else {
        return;
    };
    let dir = Scratch::new("mistakes-pg");
    let tgt = db(&dir, "t.db", "CREATE TABLE t (id INTEGER PRIMARY KEY);");
    // A database that does not exist: the server's error, as worded.
    let mut url = ::url::Url::parse(&base).expect("a postgres URL");
    url.set_path(&format!("ds_no_such_db_{}", std::process::id()));
    let out = run(&["diff", "--source", url.as_str(), "--target", &tgt]);
    let all = show(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("does not exist"), "{all}");
    assert!(!all.contains(" at line "), "{all}");
}

#[test]
fn config_column_section_naming_nothing_is_an_error() {
    let dir = Scratch::new("mistakes-config");
    let schema = "CREATE TABLE o (id INTEGER PRIMARY KEY, placed_at TEXT);
                  INSERT INTO o VALUES (1, '2024-01-01T00:00:00Z');";
    let src = db(&dir, "s.db", schema);
    let tgt = db(&dir, "t.db", schema);
    let config = dir.join("driftsum.toml");
    std::fs::write(
        &config,
        "[tables.o.columns.placed]\nstored_as = \"iso8601\"\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let out = run(&[
        "diff", "--source", &src, "--target", &tgt, "--config", &config,
    ]);
    let all = show(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("[tables.o.columns.placed]"), "{all}");
    assert!(all.contains("id, placed_at"), "{all}");
    std::fs::write(
        dir.join("driftsum.toml"),
        "[tables.o.columns.placed_at]\nstored_as = \"iso8601\"\n",
    )
    .unwrap();
    let out = run(&[
        "diff", "--source", &src, "--target", &tgt, "--config", &config,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn a_directory_as_a_sqlite_path_is_named_as_one() {
    let dir = Scratch::new("mistakes-dir");
    let src = db(&dir, "s.db", "CREATE TABLE t (id INTEGER PRIMARY KEY);");
    let folder = dir.join("replica");
    std::fs::create_dir(&folder).expect("folder");
    let tgt = format!("sqlite:{}", folder.display());
    let out = run(&["diff", "--source", &src, "--target", &tgt]);
    let text = show(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("is a directory"), "{text}");
    assert!(text.contains("replica"), "{text}");
    assert!(out.stdout.is_empty(), "{text}");
}

#[test]
fn a_config_section_naming_no_table_is_an_error() {
    let dir = Scratch::new("mistakes-section");
    let schema = "CREATE TABLE orders (id INTEGER PRIMARY KEY, v TEXT);";
    let src = db(&dir, "s.db", schema);
    let tgt = db(&dir, "t.db", schema);
    let config = dir.join("driftsum.toml");
    std::fs::write(&config, "[tables.ordres]\nexclude_columns = [\"v\"]\n").expect("config");
    let config = config.display().to_string();
    let out = run(&[
        "diff", "--source", &src, "--target", &tgt, "--config", &config,
    ]);
    let text = show(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("[tables.ordres]"), "{text}");
    assert!(text.contains("orders"), "{text}");
    // Spelled right, the same config is obeyed.
    std::fs::write(&config, "[tables.orders]\nexclude_columns = [\"v\"]\n").expect("config");
    let out = run(&[
        "diff", "--source", &src, "--target", &tgt, "--config", &config,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn an_agent_across_the_network_is_not_sent_the_token_in_clear_text() {
    let dir = Scratch::new("mistakes-plain");
    let src = db(&dir, "s.db", "CREATE TABLE t (id INTEGER PRIMARY KEY);");
    let token = dir.join("agent.token");
    std::fs::write(&token, "0123456789abcdef0123456789abcdef").expect("token");
    let token = token.display().to_string();
    // 192.0.2.1 (TEST-NET-1) is never this machine: refused before any
    // connection is tried, naming both ways out.
    let args = [
        "diff",
        "--source",
        &src,
        "--target",
        "driftsum://192.0.2.1:7420",
        "--token-file",
        &token,
    ];
    let out = run(&args);
    let text = show(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("in clear text"), "{text}");
    assert!(text.contains("--ca FILE"), "{text}");
    assert!(text.contains("--insecure-plaintext"), "{text}");
    assert!(!text.contains("0123456789abcdef"), "{text}");
}
