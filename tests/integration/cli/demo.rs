//! `driftsum demo`: it writes both databases and shows drift of every kind.

use super::*;

#[test]
fn demo_writes_both_databases_and_shows_drift() {
    let dir = Scratch::new("demo");
    let d = dir.join("out");
    let r = run(&["demo", "--dir", &d.display().to_string()]);
    assert_code(&r, 0);
    let (src, tgt) = (d.join("source.db"), d.join("replica.db"));
    assert!(src.is_file() && tgt.is_file(), "{r:#?}");
    assert!(r.stdout.contains("DRIFT"), "{r:#?}");
    assert!(r.stdout.contains("customers: in sync"), "{r:#?}");

    // The databases it wrote hold the drift it describes.
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(table(&j, "customers")["in_sync"], true);
    assert_eq!(
        difference_set(table(&j, "orders")),
        set(&[
            "changed id=42 [amount]",
            "changed id=777 [customer]",
            "changed id=900 [weight]",
            "missing id=1234",
            "missing id=1500",
            "extra id=2001",
            "extra id=2002",
        ])
    );
}
