//! The repair property test over text and compound keys and a replica with
//! foreign keys: a parent table keyed by text (quotes included) and a child
//! keyed by (text, integer) that references it, random drift of every kind
//! in both. Held to the naive reference: after `repair --apply`, the
//! replica's rows are the source's, row for row; `diff` finds them in sync;
//! `PRAGMA foreign_key_check` finds nothing; and the `--sql-out` script,
//! run by the `sqlite3` shell with `PRAGMA foreign_keys = ON`, commits and
//! gives the same rows.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use rusqlite::types::Value as Sql;
use rusqlite::Connection;

use crate::util::Scratch;

fn driftsum(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(args)
        .output()
        .expect("run driftsum")
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const DDL: &str = "PRAGMA foreign_keys = ON;
    CREATE TABLE parent (id TEXT PRIMARY KEY, name TEXT);
    CREATE TABLE child (region TEXT, n INTEGER, parent_id TEXT NOT NULL REFERENCES parent(id),
        note TEXT, PRIMARY KEY (region, n));";

/// Parents by id (name), children by (region, n) (parent, note).
type Parents = BTreeMap<String, String>;
type Children = BTreeMap<(String, i64), (String, String)>;

#[derive(Clone, Debug)]
struct Case {
    parents: Parents,
    children: Children,
    /// Per parent: 0 same, 1 missing in the replica (with its children),
    /// 2 renamed.
    parent_drift: Vec<u8>,
    /// Per child: 0 same, 1 missing, 2 note changed, 3 moved to another
    /// parent.
    child_drift: Vec<u8>,
    /// Parents only the replica has, each with one child of its own.
    extra: Parents,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::btree_map("[a-c' ]{1,3}", "[a-z]{0,3}", 1..8),
        proptest::collection::vec(("[xy']", 0i64..4, any::<Index>(), "[a-z ]{0,3}"), 0..14),
        proptest::collection::vec(0u8..3, 8),
        proptest::collection::vec(0u8..4, 14),
        proptest::collection::btree_map("[d-e]{1,2}", "[a-z]{0,3}", 0..3),
    )
        .prop_map(|(parents, kids, parent_drift, child_drift, extra)| {
            let ids: Vec<&String> = parents.keys().collect();
            let children = kids
                .into_iter()
                .map(|(r, n, p, note)| ((r, n), (ids[p.index(ids.len())].clone(), note)))
                .collect();
            Case {
                parents,
                children,
                parent_drift,
                child_drift,
                extra,
            }
        })
}

fn write(path: &Path, parents: &Parents, children: &Children) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(DDL).unwrap();
    for (id, name) in parents {
        c.execute("INSERT INTO parent VALUES (?1, ?2)", (id, name))
            .unwrap();
    }
    for ((r, n), (p, note)) in children {
        c.execute("INSERT INTO child VALUES (?1, ?2, ?3, ?4)", (r, n, p, note))
            .unwrap();
    }
}

fn dump(path: &Path, table: &str) -> Vec<Vec<Sql>> {
    let c = Connection::open(path).unwrap();
    let mut s = c
        .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
        .unwrap();
    let n = s.column_count();
    s.query_map([], |r| (0..n).map(|i| r.get::<_, Sql>(i)).collect())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn fk_violations(path: &Path) -> usize {
    let c = Connection::open(path).unwrap();
    let mut s = c.prepare("PRAGMA foreign_key_check").unwrap();
    s.query_map([], |_| Ok(())).unwrap().count()
}

/// The replica: the source with the case's drift, itself consistent.
fn replica_of(c: &Case) -> (Parents, Children) {
    let mut parents = Parents::new();
    let mut dropped = Vec::new();
    for (i, (id, name)) in c.parents.iter().enumerate() {
        match c.parent_drift.get(i).copied().unwrap_or(0) {
            1 => dropped.push(id.clone()),
            2 => {
                parents.insert(id.clone(), format!("{name}!"));
            }
            _ => {
                parents.insert(id.clone(), name.clone());
            }
        }
    }
    let mut children = Children::new();
    for (i, (k, (p, note))) in c.children.iter().enumerate() {
        let d = c.child_drift.get(i).copied().unwrap_or(0);
        let p = match d {
            3 => parents.keys().next().cloned().unwrap_or_else(|| p.clone()),
            _ => p.clone(),
        };
        if d == 1 || dropped.contains(&p) {
            continue;
        }
        let note = match d {
            2 => format!("{note}?"),
            _ => note.clone(),
        };
        children.insert(k.clone(), (p, note));
    }
    for (id, name) in &c.extra {
        parents.insert(id.clone(), name.clone());
        children.insert((format!("z{id}"), 1), (id.clone(), "extra".into()));
    }
    (parents, children)
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let dir = Scratch::new("h4-repair-keys");
    let (source, replica, scripted) = (
        dir.join("source.db"),
        dir.join("replica.db"),
        dir.join("scripted.db"),
    );
    write(&source, &c.parents, &c.children);
    let (rp, rc) = replica_of(c);
    write(&replica, &rp, &rc);
    prop_assert_eq!(
        fk_violations(&replica),
        0,
        "the drifted replica is consistent"
    );
    std::fs::copy(&replica, &scripted).unwrap();
    let src = format!("sqlite:{}", source.display());
    let tgt = format!("sqlite:{}", replica.display());
    let script = dir.join("repair.sql");
    let out = driftsum(&[
        "repair",
        "--source",
        &src,
        "--target",
        &format!("sqlite:{}", scripted.display()),
        "--sql-out",
        &script.display().to_string(),
        "--max-share",
        "100",
    ]);
    prop_assert!(out.status.code().is_some_and(|c| c < 2), "{}", text(&out));
    let out = driftsum(&[
        "repair",
        "--source",
        &src,
        "--target",
        &tgt,
        "--apply",
        "--max-share",
        "100",
    ]);
    prop_assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let diff = driftsum(&["diff", "--source", &src, "--target", &tgt]);
    prop_assert_eq!(diff.status.code(), Some(0), "{}", text(&diff));
    for t in ["parent", "child"] {
        prop_assert_eq!(dump(&replica, t), dump(&source, t), "table {}", t);
    }
    prop_assert_eq!(fk_violations(&replica), 0);
    // The script with foreign keys enforced: it must commit.
    let sql = std::fs::read_to_string(&script).unwrap_or_default();
    if Command::new("sqlite3").arg("-version").output().is_ok() && !sql.is_empty() {
        let out = Command::new("sqlite3")
            .arg("-bail")
            .arg(&scripted)
            .arg(format!("PRAGMA foreign_keys = ON;\n{sql}"))
            .output()
            .unwrap();
        prop_assert!(out.status.success(), "{}\n{}", text(&out), sql);
        for t in ["parent", "child"] {
            prop_assert_eq!(dump(&scripted, t), dump(&source, t), "script, table {}", t);
        }
    }
    Ok(())
}

#[test]
fn text_and_compound_keys_with_foreign_keys_match_the_reference() {
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    runner.run(&case(), |c| check(&c)).unwrap();
}
