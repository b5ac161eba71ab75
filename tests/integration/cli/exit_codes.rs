//! Exit codes: 0 in sync, 1 drift, 2 error, and usage errors that never show a password.

use super::*;

#[test]
fn identical_databases_exit_0_with_one_quiet_line_per_table() {
    let dir = Scratch::new("identical");
    let src = db(dir.path(), "s.db", TWO_TABLES);
    let tgt = db(dir.path(), "t.db", TWO_TABLES);
    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        ["a: in sync (3 rows)", "b: in sync (2 rows)"],
        "{r:#?}"
    );
    assert!(r.stderr.is_empty(), "{r:#?}");
}

#[test]
fn drift_exits_1() {
    let dir = Scratch::new("drift-exit");
    let src = db(dir.path(), "s.db", TWO_TABLES);
    let tgt = db(
        dir.path(),
        "t.db",
        &format!("{TWO_TABLES} UPDATE b SET n = 3 WHERE k = 'y';"),
    );
    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert!(r.stdout.contains("a: in sync (3 rows)"), "{r:#?}");
    assert!(r.stdout.contains("b: DRIFT"), "{r:#?}");
}

#[test]
fn error_exits_2() {
    let dir = Scratch::new("error-exit");
    let src = db(dir.path(), "s.db", TWO_TABLES);
    let r = diff(&src, &dir.join("nope.db"), &[]);
    assert_code(&r, 2);
    assert!(r.stderr.starts_with("driftsum: error:"), "{r:#?}");
}

/// A URL in the wrong place is quoted by the usage error with its password
/// hidden; help still prints and exits 0.
#[test]
fn usage_errors_never_show_a_password() {
    for args in [
        &["diff", "postgres://bob:hunter22@db.example/shop"][..],
        &[
            "diff",
            "--source",
            "sqlite:a.db",
            "mysql://bob:hunter22@db/x?password=hunter22",
        ][..],
        &[
            "build",
            "--db",
            "sqlite:a.db",
            "--table",
            "t",
            "--out",
            "x",
            "--connections",
            "0",
            "postgresql://bob:hunter22@h/d",
        ][..],
        &[
            "build",
            "--db",
            "sqlite:a.db",
            "--table",
            "t",
            "--out",
            "x",
            "--connections=postgres://bob:hunter22@h/d",
        ][..],
    ] {
        let r = run(args);
        assert_code(&r, 2);
        assert!(!r.stderr.contains("hunter22"), "{r:#?}");
        assert!(r.stderr.contains("bob:***@"), "{r:#?}");
    }
    let r = run(&["diff", "--help"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("--source"), "{r:#?}");
}
