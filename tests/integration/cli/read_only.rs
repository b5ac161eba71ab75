//! Read-only: neither database is ever modified, also in WAL mode.

use super::*;

#[test]
fn databases_are_never_modified() {
    let dir = Scratch::new("read-only");
    let (src, tgt) = items_pair(&dir);
    let files = listing(dir.path());
    let before = (snapshot(&src), snapshot(&tgt));
    // Make any later write show up in the mtime even on coarse clocks.
    std::thread::sleep(std::time::Duration::from_millis(1100));

    for extra in [
        &[][..],
        &["--format", "json"][..],
        &["--float-digits", "6", "--where", "id > 100"][..],
        &["--table", "nosuch"][..],
    ] {
        let r = diff(&src, &tgt, extra);
        assert!(r.code == 1 || r.code == 2, "{r:#?}");
        if extra.contains(&"json") {
            r.json();
        }
        // Also with the sides swapped.
        let r = diff(&tgt, &src, extra);
        assert!(r.code == 1 || r.code == 2, "{r:#?}");
        if extra.contains(&"json") {
            r.json();
        }
    }
    assert!(snapshot(&src) == before.0, "the source file changed");
    assert!(snapshot(&tgt) == before.1, "the replica file changed");
    assert_eq!(listing(dir.path()), files, "files appeared or vanished");
}

// WAL-mode databases

/// A source and replica in WAL journal mode, closed cleanly (so no -wal or
/// -shm file is left), with one changed row.
fn wal_pair(dir: &Scratch) -> (PathBuf, PathBuf) {
    let make = |name: &str, v: &str| {
        let p = dir.join(name);
        let c = Connection::open(&p).unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        c.execute_batch(&format!(
            "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO a VALUES (1, 'x'), (2, '{v}');"
        ))
        .unwrap();
        c.close().unwrap();
        p
    };
    let pair = (make("s.db", "y"), make("t.db", "z"));
    assert_eq!(listing(dir.path()), ["s.db", "t.db"]);
    pair
}

#[test]
fn wal_mode_databases_are_not_modified() {
    let dir = Scratch::new("wal");
    let (src, tgt) = wal_pair(&dir);
    let before = (snapshot(&src), snapshot(&tgt));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    assert_eq!(difference_set(table(&j, "a")), set(&["changed id=2 [v]"]));
    assert!(snapshot(&src) == before.0, "the source file changed");
    assert!(snapshot(&tgt) == before.1, "the replica file changed");
}
