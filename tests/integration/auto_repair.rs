//! `check` with `repair = "auto"` on real SQLite files and the real binary:
//! confirmed drift is repaired and re-verified, recorded in the history and
//! reported; drift over `max_repair_rows` is left alone with a note; bad
//! settings and a server replica are refused before anything is read or
//! written. Also `repair --apply --config` recording in the history.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use serde_json::Value as J;

use crate::util::Scratch;

fn driftsum(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(args)
        .env_remove("DRIFTSUM_NOW")
        .output()
        .expect("run driftsum")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every row of `t` as stored, by key.
fn dump(path: &Path) -> Vec<Vec<Sql>> {
    let c = Connection::open(path).unwrap();
    let mut s = c.prepare("SELECT * FROM t ORDER BY 1").unwrap();
    let n = s.column_count();
    s.query_map([], |r| (0..n).map(|i| r.get::<_, Sql>(i)).collect())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// A source and a replica of 30 identical rows (amounts as text with two
/// digits, as a sync would write them), and a config with `tier` as the
/// only tier.
fn setup(d: &Path, tier: &str) -> PathBuf {
    for f in ["src.db", "rep.db"] {
        Connection::open(d.join(f))
            .unwrap()
            .execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, amount TEXT);
                 WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 30)
                 INSERT INTO t SELECT v, 'n' || v, printf('%.2f', v * 1.25) FROM s;",
            )
            .unwrap();
    }
    let path = d.join("driftsum.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\nurl = \"sqlite:src.db\"\n[replica]\nurl = \"sqlite:rep.db\"\n\
             [tiers.t]\n{tier}\n[defaults]\ntier = \"t\"\n"
        ),
    )
    .unwrap();
    path
}

/// Three kinds of drift in the replica: row 3 missing, row 5 changed, row
/// 99 extra.
fn drift(d: &Path) {
    Connection::open(d.join("rep.db"))
        .unwrap()
        .execute_batch(
            "DELETE FROM t WHERE id = 3;
             UPDATE t SET name = 'wrong' WHERE id = 5;
             INSERT INTO t VALUES (99, 'extra', '1.00');",
        )
        .unwrap();
}

fn check_json(config: &Path) -> (i32, J, String) {
    let out = driftsum(&[
        "check",
        "--format",
        "json",
        "--config",
        &config.display().to_string(),
    ]);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(J::Null);
    (code(&out), doc, text(&out))
}

/// (origin, table, level, outcome, planned, applied, verified) of every
/// repair in the history, oldest first.
type RepairRow = (String, String, Option<String>, String, i64, i64, bool);

fn history_repairs(d: &Path) -> Vec<RepairRow> {
    let h = Connection::open(d.join("driftsum-history.sqlite")).unwrap();
    let mut q = h
        .prepare(
            "SELECT origin, table_name, level, outcome, planned, applied, verified
             FROM repairs ORDER BY id",
        )
        .unwrap();
    q.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn check_repairs_confirmed_drift_reports_and_records_it() {
    let d = Scratch::new("h4-auto-repair");
    let config = setup(d.path(), "full = \"1h\"\nrepair = \"auto\"");
    drift(d.path());
    let (code1, doc, all) = check_json(&config);
    // Drift was found: the run says so, and its repair says it is put right.
    assert_eq!(code1, 1, "{all}");
    assert_eq!(doc["status"], "drift", "{all}");
    let level = &doc["tables"][0]["levels"][0];
    assert_eq!(level["level"], "full");
    let r = &level["repair"];
    assert_eq!(r["outcome"], "repaired", "{all}");
    assert_eq!(
        (
            &r["planned"],
            &r["applied"],
            &r["already_in_sync"],
            &r["changed_since"]
        ),
        (&J::from(3), &J::from(3), &J::from(0), &J::from(0)),
        "{all}"
    );
    assert_eq!(r["verified"], true);
    let undo = PathBuf::from(r["undo"].as_str().expect("an undo script"));
    assert!(undo.exists(), "{}", undo.display());
    // The replica is now the source, row for row and byte for byte.
    assert_eq!(dump(&d.join("rep.db")), dump(&d.join("src.db")));
    assert_eq!(
        history_repairs(d.path()),
        [(
            "check".into(),
            "t".into(),
            Some("full".into()),
            "repaired".into(),
            3,
            3,
            true
        )]
    );
    // The next run finds it in sync and repairs nothing.
    let (code2, doc, all) = check_json(&config);
    assert_eq!(code2, 0, "{all}");
    assert!(
        doc["tables"][0]["levels"][0].get("repair").is_none(),
        "{all}"
    );
    assert_eq!(history_repairs(d.path()).len(), 1);
    // The text report says it too.
    drift(d.path());
    let out = driftsum(&["check", "--config", &config.display().to_string()]);
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(
        t.contains("repair: repaired; 3 planned, 3 applied") && t.contains("re-verified"),
        "{}",
        text(&out)
    );
}

/// A `keys` level sees rows missing and extra, not changed ones: only the
/// rows it confirmed are repaired.
#[test]
fn only_the_rows_the_level_confirmed_are_repaired() {
    let d = Scratch::new("h4-auto-repair-keys");
    let config = setup(d.path(), "keys = \"1h\"\nrepair = \"auto\"");
    drift(d.path());
    let (code, doc, all) = check_json(&config);
    assert_eq!(code, 1, "{all}");
    let r = &doc["tables"][0]["levels"][0]["repair"];
    assert_eq!(r["outcome"], "repaired", "{all}");
    assert_eq!(r["applied"], 2, "{all}");
    let rows = dump(&d.join("rep.db"));
    assert_eq!(rows.len(), 30);
    assert_eq!(rows[2][0], Sql::Integer(3));
    assert_eq!(
        rows[2][2],
        Sql::Text("3.75".into()),
        "written in its column's form"
    );
    assert_eq!(
        rows[4][1],
        Sql::Text("wrong".into()),
        "a change the level did not see"
    );
}

#[test]
fn drift_over_max_repair_rows_is_left_alone_with_a_note() {
    let d = Scratch::new("h4-auto-repair-max");
    let config = setup(
        d.path(),
        "full = \"1h\"\nrepair = \"auto\"\nmax_repair_rows = 2",
    );
    drift(d.path());
    let before = std::fs::read(d.join("rep.db")).unwrap();
    let (code, doc, all) = check_json(&config);
    assert_eq!(code, 1, "{all}");
    assert_eq!(doc["status"], "drift");
    let r = &doc["tables"][0]["levels"][0]["repair"];
    assert_eq!(r["outcome"], "skipped", "{all}");
    assert_eq!(r["applied"], 0);
    let note = r["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("max_repair_rows = 2") && note.contains("full resync"),
        "{note}"
    );
    assert_eq!(
        std::fs::read(d.join("rep.db")).unwrap(),
        before,
        "nothing written"
    );
    assert_eq!(history_repairs(d.path())[0].3, "skipped");
}

/// `repair = "off"` (the default) never writes.
#[test]
fn repair_off_never_writes() {
    let d = Scratch::new("h4-auto-repair-off");
    let config = setup(d.path(), "full = \"1h\"");
    drift(d.path());
    let before = std::fs::read(d.join("rep.db")).unwrap();
    let (code, doc, all) = check_json(&config);
    assert_eq!(code, 1, "{all}");
    assert!(doc["tables"][0]["levels"][0].get("repair").is_none());
    assert_eq!(std::fs::read(d.join("rep.db")).unwrap(), before);
    assert!(history_repairs(d.path()).is_empty());
}

#[test]
fn bad_repair_settings_and_server_replicas_are_refused() {
    let d = Scratch::new("h4-auto-repair-bad");
    let config = setup(d.path(), "full = \"1h\"\nrepair = \"yes\"");
    let (code, _, all) = check_json(&config);
    assert_eq!(code, 2, "{all}");
    assert!(all.contains("yes") && all.contains("auto"), "{all}");
    assert!(!d.join("driftsum-history.sqlite").exists(), "{all}");

    std::fs::write(
        &config,
        "[source]\nurl = \"sqlite:src.db\"\n\
         [replica]\nurl = \"postgres://h4user:h4-Secret-pw@127.0.0.1:1/nowhere\"\n\
         [tiers.t]\nfull = \"1h\"\nrepair = \"auto\"\n[defaults]\ntier = \"t\"\n",
    )
    .unwrap();
    let (code, _, all) = check_json(&config);
    assert_eq!(code, 2, "{all}");
    assert!(
        all.contains("repair = \"auto\"") && all.contains("SQLite") && all.contains("--sql-out"),
        "{all}"
    );
    assert!(!all.contains("h4-Secret-pw"), "{all}");
    assert!(!d.join("driftsum-history.sqlite").exists(), "{all}");
}

/// `repair --apply --config FILE` records in the config's history when it
/// exists, and creates none when it does not.
#[test]
fn repair_apply_records_in_an_existing_history_only() {
    let d = Scratch::new("h4-repair-history");
    let config = setup(d.path(), "full = \"1h\"");
    let cfg = config.display().to_string();
    drift(d.path());
    let out = driftsum(&["repair", "--config", &cfg, "--apply"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(!d.join("driftsum-history.sqlite").exists());

    let (c, _, all) = check_json(&config);
    assert_eq!(c, 0, "{all}");
    drift(d.path());
    let out = driftsum(&["repair", "--config", &cfg, "--apply"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        history_repairs(d.path()),
        [(
            "repair".into(),
            "t".into(),
            None,
            "repaired".into(),
            3,
            3,
            true
        )]
    );
}
