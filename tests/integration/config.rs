//! `--config`: replica table and column names, excluded columns and storage
//! conventions from a TOML file, through the real binary.

use std::path::Path;
use std::process::Command;

use crate::util::Scratch;

fn db(path: &Path, sql: &str) {
    rusqlite::Connection::open(path)
        .expect("create")
        .execute_batch(sql)
        .expect("fill");
}

fn diff(src: &Path, rep: &Path, config: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(["diff", "--format", "json", "--config"])
        .arg(config)
        .arg(format!("--source=sqlite:{}", src.display()))
        .arg(format!("--target=sqlite:{}", rep.display()))
        .output()
        .expect("run driftsum");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// The replica renames the table and a column, stores instants as Unix
/// milliseconds in another time zone's wall clock as text, and has a column
/// the source lacks: with the config saying so, it is in sync.
#[test]
fn mapped_names_and_storage_compare_equal() {
    let scratch = Scratch::new("config-mapped");
    let dir = scratch.path();
    let (src, rep) = (dir.join("src.db"), dir.join("rep.db"));
    db(
        &src,
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, placed_at TIMESTAMPTZ, shipped_at TIMESTAMPTZ);
         INSERT INTO orders VALUES (1, '2024-03-01T10:00:00Z', '2024-03-02T08:30:00Z'),
                                   (2, '1969-07-20T20:17:40Z', NULL);",
    );
    db(
        &rep,
        "CREATE TABLE orders_copy (id INTEGER PRIMARY KEY, placed INTEGER, shipped_at TEXT, synced_at TEXT);
         INSERT INTO orders_copy VALUES (1, 1709287200000, '2024-03-02 10:30:00', 'x'),
                                        (2, -14182940000, NULL, 'y');",
    );
    let config = dir.join("driftsum.toml");
    std::fs::write(
        &config,
        r#"
        [tables.orders]
        replica = "orders_copy"
        exclude_columns = ["synced_at"]
        time_zone = "+02:00"

        [tables.orders.columns.placed_at]
        replica = "placed"
        stored_as = "unix_millis"
        "#,
    )
    .expect("config");
    let (code, out, err) = diff(&src, &rep, &config);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["tables"][0]["table"], "orders");
    assert_eq!(report["tables"][0]["target_table"], "orders_copy");
    assert_eq!(report["tables"][0]["in_sync"], true);

    // The same replica read with the wrong convention is drift, named by column.
    std::fs::write(
        &config,
        "[tables.orders]\nreplica = \"orders_copy\"\nexclude_columns = [\"synced_at\"]\ntime_zone = \"+02:00\"\n\
         [tables.orders.columns.placed_at]\nreplica = \"placed\"\nstored_as = \"unix_seconds\"\n",
    )
    .expect("config");
    let (code, out, _) = diff(&src, &rep, &config);
    assert_eq!(code, 1, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    let diffs = report["tables"][0]["differences"]
        .as_array()
        .expect("differences");
    assert_eq!(diffs.len(), 2);
    assert!(diffs
        .iter()
        .all(|d| d["columns"] == serde_json::json!(["placed_at"])));
}

#[test]
fn bad_config_files_are_errors() {
    let scratch = Scratch::new("config-bad");
    let dir = scratch.path();
    let (src, rep) = (dir.join("src.db"), dir.join("rep.db"));
    for p in [&src, &rep] {
        db(p, "CREATE TABLE t (id INTEGER PRIMARY KEY);");
    }
    let config = dir.join("driftsum.toml");
    for (text, needle) in [
        ("[tables.t]\nstored_as = \"weekly\"\n", "weekly"),
        ("[tables.t]\ntime_zone = \"Europe/Paris\"\n", "offset"),
        ("[tabels.t]\n", "tabels"),
    ] {
        std::fs::write(&config, text).expect("config");
        let (code, out, err) = diff(&src, &rep, &config);
        assert_eq!(code, 2, "{text}: {out}");
        assert!(err.contains(needle), "{text}: {err}");
        // Under --format json a bad config is still a JSON document.
        let doc: serde_json::Value = serde_json::from_str(&out).expect("a JSON error document");
        assert_eq!(doc["status"], "error", "{out}");
        assert_eq!(doc["tables"], serde_json::json!([]), "{out}");
    }
    let (code, _, err) = diff(&src, &rep, &dir.join("missing.toml"));
    assert_eq!(code, 2);
    assert!(err.contains("missing.toml"), "{err}");
}
