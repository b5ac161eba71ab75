//! The text report: the summary line, the listed differences (at most 50), and float notes.

use super::*;

#[test]
fn text_report_summarises_and_lists_differences() {
    let dir = Scratch::new("text");
    let (src, tgt) = items_pair(&dir);
    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 1);
    let first = r.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("items: DRIFT: "), "{r:#?}");
    for part in [
        "12 missing",
        "2 extra",
        "2 changed",
        "5,000 source rows, 4,990 target rows",
        "drifted range",
    ] {
        assert!(first.contains(part), "summary lacks {part:?}: {first}");
    }
    for line in [
        "  missing  id=20  (in source, not in target)",
        "  missing  id=8018  (in source, not in target)",
        "  extra    id=3001  (in target, not in source)",
        "  changed  id=1200  price: 9.5 → 9.25",
        "  changed  id=7000  name: \"item 7000\" → \"renamed\"; qty: 0 → 1",
    ] {
        assert!(
            r.stdout.lines().any(|l| l == line),
            "no line {line:?} in:\n{}",
            r.stdout
        );
    }
    assert!(r.stdout.lines().any(|l| l.starts_with("  range    id=")));
    assert!(
        !r.stdout.contains("--float-digits"),
        "no float note expected"
    );
}

#[test]
fn text_report_lists_at_most_50_differences() {
    let dir = Scratch::new("text-many");
    let src = db(dir.path(), "s.db", ITEMS_5000);
    let tgt = db(
        dir.path(),
        "t.db",
        &format!("{ITEMS_5000} DELETE FROM items WHERE id BETWEEN 100 AND 218;"),
    );
    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 1);
    let listed = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("  missing"))
        .count();
    assert_eq!(listed, 50, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("… and 10 more differences (--format json lists them all)"),
        "{}",
        r.stdout
    );
    let (_, j) = diff_json(&src, &tgt, &[]);
    assert_eq!(differences(table(&j, "items")).len(), 60);
}

/// `m(id, w REAL, label)`: row 3's weight is one ulp off in the replica.
fn one_ulp_pair(dir: &Scratch, also: &str) -> (PathBuf, PathBuf) {
    let schema = "CREATE TABLE m (id INTEGER PRIMARY KEY, w REAL, label TEXT);";
    let make = |name: &str, w3: f64, extra_sql: &str| {
        let p = db(dir.path(), name, schema);
        let c = Connection::open(&p).unwrap();
        for (id, w) in [
            (1, 0.1),
            (2, 2.0 / 3.0),
            (3, 5.583333333333333),
            (4, 1e-300),
        ] {
            let w = if id == 3 { w3 } else { w };
            c.execute(
                "INSERT INTO m VALUES (?1, ?2, ?3)",
                params![id, w, format!("row {id}")],
            )
            .unwrap();
        }
        c.execute_batch(extra_sql).unwrap();
        p
    };
    let w = 5.583333333333333f64;
    let next = f64::from_bits(w.to_bits() + 1);
    assert_ne!(w, next);
    (make("s.db", w, ""), make("t.db", next, also))
}

#[test]
fn one_ulp_float_change_is_drift_with_a_float_digits_note() {
    let dir = Scratch::new("ulp");
    let (src, tgt) = one_ulp_pair(&dir, "");
    let r = diff(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert!(r.stdout.contains("m: DRIFT: 1 changed"), "{r:#?}");
    assert!(r.stdout.contains("  changed  id=3  w: "), "{r:#?}");
    let note = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("note:"))
        .unwrap_or_else(|| panic!("no note: {r:#?}"));
    assert!(note.contains("--float-digits"), "{note}");

    let (_, j) = diff_json(&src, &tgt, &[]);
    let t = table(&j, "m");
    assert_eq!(t["float_only_changes"], 1);
    assert_eq!(difference_set(t), set(&["changed id=3 [w]"]));
}

#[test]
fn float_digits_tolerates_a_one_ulp_change() {
    let dir = Scratch::new("ulp-tolerated");
    let (src, tgt) = one_ulp_pair(&dir, "");
    let r = diff(&src, &tgt, &["--float-digits", "12"]);
    assert_code(&r, 0);
    assert_eq!(r.stdout.trim_end(), "m: in sync (4 rows)");

    let (r, j) = diff_json(&src, &tgt, &["--float-digits", "12"]);
    assert_code(&r, 0);
    let t = table(&j, "m");
    assert_eq!(t["in_sync"], true);
    assert_eq!(t["differences"], json!([]));
    assert_eq!(t["drifted_ranges"], json!([]));
}

#[test]
fn float_digits_still_reports_real_changes() {
    let dir = Scratch::new("ulp-and-real");
    let (src, tgt) = one_ulp_pair(&dir, "UPDATE m SET w = 0.2 WHERE id = 1;");
    let (r, j) = diff_json(&src, &tgt, &["--float-digits", "12"]);
    assert_code(&r, 1);
    let t = table(&j, "m");
    assert_eq!(difference_set(t), set(&["changed id=1 [w]"]));
    assert!(t.get("float_only_changes").is_none(), "{t:#}");
}
