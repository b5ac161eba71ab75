//! Mistakes caught, not obeyed, through the real binary: a column name
//! neither side has, a PostgreSQL server error without PostgreSQL's own
//! source-line noise, a whole Julian day stored as an integer (never read as
//! Unix seconds by guess), `--table SCHEMA.NAME` and names in another case
//! against a SQLite replica, and sources and targets that look swapped.

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

/// `driftsum diff --source SRC --target TGT ARGS...`.
fn diff(src: &str, tgt: &str, args: &[&str]) -> Output {
    run(&[&["diff", "--source", src, "--target", tgt][..], args].concat())
}

/// A SQLite source holding the instants `texts` as ISO text, and a replica
/// holding `stored` (SQL expressions, such as `julianday(...)` or a bare
/// integer) in a `TIMESTAMP` column, row by row.
fn instants(dir: &Scratch, texts: &[&str], stored: &[&str]) -> (String, String) {
    let rows = |values: Vec<String>| {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("({}, {v})", i + 1))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let schema = "CREATE TABLE o (id INTEGER PRIMARY KEY, at TIMESTAMP);";
    let quoted = texts.iter().map(|t| format!("'{t}'")).collect();
    let src = db(
        dir,
        "s.db",
        &format!("{schema} INSERT INTO o VALUES {};", rows(quoted)),
    );
    let stored = stored.iter().map(|s| s.to_string()).collect();
    let tgt = db(
        dir,
        "t.db",
        &format!("{schema} INSERT INTO o VALUES {};", rows(stored)),
    );
    (src, tgt)
}

/// A Julian day without a fraction is stored as an INTEGER in a column of
/// NUMERIC affinity; under `stored_as = "auto"` it is neither read as Unix
/// seconds (1970) nor guessed: the run stops with exit 2, naming the
/// column, the value, both readings and the setting, through the page
/// reader and through SQL alike. Said in the config, it is read as said.
#[test]
fn a_whole_julian_day_is_not_read_as_unix_seconds() {
    let dir = Scratch::new("mistakes-julian");
    let (src, tgt) = instants(
        &dir,
        &["2024-01-01 12:00:00", "2024-01-02 06:00:00"],
        &[
            "julianday('2024-01-01 12:00:00')",
            "julianday('2024-01-02 06:00:00')",
        ],
    );
    let path = tgt.trim_start_matches("sqlite:");
    let kind: String = rusqlite::Connection::open(path)
        .and_then(|c| c.query_row("SELECT typeof(at) FROM o WHERE id = 1", [], |r| r.get(0)))
        .expect("typeof");
    assert_eq!(
        kind, "integer",
        "SQLite stored the whole Julian day as an integer"
    );
    for extra in [&[][..], &["--where", "id > 0"][..]] {
        let out = diff(&src, &tgt, extra);
        let all = show(&out);
        assert_eq!(out.status.code(), Some(2), "{all}");
        for says in [
            "\"at\"",
            "2460311",
            "2024-01-01T12:00:00",
            "1970-01-29T11:25:11",
            "stored_as = \"julian_day\"",
            "stored_as = \"unix_seconds\"",
        ] {
            assert!(all.contains(says), "{says}: {all}");
        }
        assert!(!all.contains("in sync"), "{all}");
    }
    let config = dir.join("driftsum.toml");
    let with = |stored_as: &str| {
        std::fs::write(
            &config,
            format!("[tables.o.columns.at]\nstored_as = \"{stored_as}\"\n"),
        )
        .expect("config");
        diff(&src, &tgt, &["--config", &config.display().to_string()])
    };
    let out = with("julian_day");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // Told Unix seconds, it reads 1970, which is drift.
    let out = with("unix_seconds");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(show(&out).contains("1970-01-29T11:25:11"), "{}", show(&out));
}

/// The edges of the refused range: the whole Julian days of the years 1
/// and 9999 are refused, the integers just outside them (and ordinary Unix
/// seconds) are read as Unix seconds, as before.
#[test]
fn integers_outside_the_julian_years_are_unix_seconds() {
    let dir = Scratch::new("mistakes-julian-edges");
    let (src, tgt) = instants(
        &dir,
        &[
            "1970-01-20 22:10:25",
            "1970-03-04 04:38:05",
            "2024-01-01 12:00:00",
            "1969-12-31 23:59:59",
            "1970-01-01 00:00:00",
        ],
        &["1721425", "5373485", "1704110400", "-1", "0"],
    );
    let out = diff(&src, &tgt, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    for (n, text) in [
        ("1721426", "1970-01-20 22:10:26"),
        ("5373484", "1970-03-04 04:38:04"),
        ("2460311", "1970-01-29 11:25:11"),
    ] {
        let dir = Scratch::new("mistakes-julian-edge");
        let (src, tgt) = instants(&dir, &[text], &[n]);
        let out = diff(&src, &tgt, &[]);
        assert_eq!(out.status.code(), Some(2), "{n}: {}", show(&out));
        assert!(show(&out).contains(n), "{}", show(&out));
    }
}

/// `--table SCHEMA.NAME` (PostgreSQL's habit) against a SQLite replica that
/// has `NAME`, and names in another case: found as SQLite finds them, and
/// the report says which table was compared. A replica holding both
/// `public.orders` and `orders` is asked which is meant.
#[test]
fn a_schema_qualified_name_finds_the_sqlite_table() {
    let dir = Scratch::new("mistakes-schema");
    let src = db(
        &dir,
        "s.db",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO orders VALUES (1, 'a'), (2, 'b');",
    );
    let tgt = db(
        &dir,
        "t.db",
        "CREATE TABLE Orders (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO Orders VALUES (1, 'a'), (2, 'B');",
    );
    for name in ["public.orders", "main.ORDERS", "ORDERS", "orders"] {
        let out = diff(&src, &tgt, &["--table", name]);
        let all = show(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {all}");
        assert!(
            all.contains(&format!("{name} → Orders: DRIFT: 1 changed")),
            "{all}"
        );
        assert!(
            all.contains(&format!(
                "hint: {name} was compared with the replica's table Orders"
            )),
            "{all}"
        );
        let out = diff(&src, &tgt, &["--table", name, "--format", "json"]);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(doc["tables"][0]["target_table"], "Orders", "{doc:#}");
        assert_eq!(doc["tables"][0]["table"], name, "{doc:#}");
    }
    // Names that match nothing, however qualified, are still errors.
    for name in ["public.order", "orders.public", "public."] {
        let out = diff(&src, &tgt, &["--table", name]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", show(&out));
    }
    // Both spellings present: which one is not guessed.
    let both = db(
        &dir,
        "both.db",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, v TEXT);
         CREATE TABLE \"public.orders\" (id INTEGER PRIMARY KEY, v TEXT);",
    );
    let out = diff(&src, &both, &["--table", "public.orders"]);
    let all = show(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("could mean") && all.contains("SOURCE_NAME=REPLICA_NAME"),
        "{all}"
    );
}

/// A PostgreSQL table and its SQLite replica (booleans as 0/1, instants as
/// ISO text with `+00:00`) are in sync the right way round; given the wrong
/// way round every row is "changed" only by storage form, and the report
/// ends with a hint that the sides look swapped (text and JSON, the JSON
/// valid against the published schema). With `--table public.NAME` the
/// replica's table is found without its schema.
#[test]
fn swapped_sides_get_a_hint() {
    let Some(base) = util::postgres_url() else {
        return;
    };
    let table = format!("h8_swap_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let exec = |sql: String| {
        rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&base).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await
        })
    };
    exec(format!(
        "DROP TABLE IF EXISTS {table};
         CREATE TABLE {table} (id int PRIMARY KEY, shipped boolean, placed_at timestamptz);
         INSERT INTO {table} SELECT g, g % 2 = 0, '2024-01-01 00:00:00+00'::timestamptz
             + g * interval '1 hour' FROM generate_series(1, 20) g;"
    ))
    .expect("setup");
    let result = std::panic::catch_unwind(|| {
        let dir = Scratch::new("mistakes-swap");
        let rows: Vec<String> = (1..=20)
            .map(|g| {
                format!(
                    "({g}, {}, '2024-01-01T{:02}:00:00+00:00')",
                    i32::from(g % 2 == 0),
                    g % 24
                )
            })
            .collect();
        let replica = db(
            &dir,
            "r.db",
            &format!(
                "CREATE TABLE {table} (id INTEGER PRIMARY KEY, shipped INTEGER, placed_at TEXT);
                 INSERT INTO {table} VALUES {};",
                rows.join(", ")
            ),
        );
        // The right way round: in sync, no hint.
        let out = diff(&base, &replica, &["--table", &table]);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        assert!(!show(&out).contains("hint:"), "{}", show(&out));
        // Schema-qualified, as PostgreSQL users write it.
        let qualified = format!("public.{table}");
        let out = diff(&base, &replica, &["--table", &qualified]);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        assert!(
            show(&out).contains(&format!("{qualified} → {table}: in sync")),
            "{}",
            show(&out)
        );
        // Swapped: every row changed, and the hint says why.
        let out = diff(&replica, &base, &["--table", &table]);
        let all = show(&out);
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(all.contains("20 changed"), "{all}");
        assert!(all.contains("hint: the sides look swapped"), "{all}");
        assert!(
            all.contains("PostgreSQL") && all.contains("--source"),
            "{all}"
        );
        let out = diff(&replica, &base, &["--table", &table, "--format", "json"]);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let hints = doc["hints"].as_array().expect("hints");
        assert_eq!(hints.len(), 1, "{doc:#}");
        assert!(
            hints[0].as_str().unwrap_or("").contains("swapped"),
            "{doc:#}"
        );
        assert!(
            crate::json_contract::violations(&doc).is_empty(),
            "{:?}",
            crate::json_contract::violations(&doc)
        );
    });
    let _ = exec(format!("DROP TABLE IF EXISTS {table}"));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
