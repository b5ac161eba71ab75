//! Tree files: `driftsum build` writes them, `driftsum diff` compares them
//! with each other and with databases, and refuses any file it cannot trust
//! (damaged, truncated, another format version, built another way) with a
//! message that says why. Real SQLite files, the real binary.

use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use rusqlite::Connection;
use serde_json::Value;

use driftsum::core::diff::Walk;
use driftsum::treefile::TreeFile;

use crate::util::Scratch;

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn driftsum(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(args)
        .output()
        .expect("run driftsum");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A table of `n` rows; `edit` may change the SQL run after filling it.
fn table(path: &Path, n: i64, edit: &str) -> String {
    let conn = Connection::open(path).expect("open");
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL, qty INTEGER);",
    )
    .expect("create");
    let tx = conn.unchecked_transaction().expect("tx");
    {
        let mut ins = tx
            .prepare("INSERT INTO items VALUES (?1, ?2, ?3, ?4)")
            .expect("prepare");
        for i in 0..n {
            ins.execute(rusqlite::params![
                i,
                format!("item {i}"),
                i as f64 * 0.25,
                i % 7
            ])
            .expect("insert");
        }
    }
    tx.commit().expect("commit");
    conn.execute_batch(edit).expect("edit");
    format!("sqlite:{}", path.display())
}

const EDITS: &str = "DELETE FROM items WHERE id = 1234; \
                     UPDATE items SET qty = 99 WHERE id = 2500; \
                     INSERT INTO items VALUES (9000, 'new', 1.0, 1);";

fn build(db: &str, out: &Path, extra: &[&str]) -> Run {
    let out = out.to_string_lossy().into_owned();
    let mut args = vec!["build", "--db", db, "--table", "items", "--out", &out];
    args.extend_from_slice(extra);
    let r = driftsum(&args);
    assert_eq!(r.code, 0, "{r:#?}");
    r
}

fn keys(report: &Value) -> Vec<(String, i64)> {
    let t = &report["tables"][0];
    let mut out: Vec<(String, i64)> = t["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().expect("kind").to_string(),
                d["key"]["id"].as_i64().expect("id"),
            )
        })
        .collect();
    out.sort();
    out
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:#?}"))
}

#[test]
fn files_compare_like_databases() {
    let s = Scratch::new("compare");
    let src = table(&s.join("src.db"), 5000, "");
    let tgt = table(&s.join("tgt.db"), 5000, EDITS);
    let (fa, fb) = (s.join("src.dstree"), s.join("tgt.dstree"));
    build(&src, &fa, &["--with-entries"]);
    build(&tgt, &fb, &["--with-entries"]);
    let (fa, fb) = (fa.to_string_lossy(), fb.to_string_lossy());

    let dbs = driftsum(&[
        "diff", "--source", &src, "--target", &tgt, "--format", "json",
    ]);
    assert_eq!(dbs.code, 1, "{dbs:#?}");
    let expect = keys(&json(&dbs));
    assert_eq!(
        expect,
        [
            ("changed".to_string(), 2500),
            ("extra".to_string(), 9000),
            ("missing".to_string(), 1234)
        ]
    );

    // File against file: the same keys, named offline.
    let files = driftsum(&["diff", "--source", &fa, "--target", &fb, "--format", "json"]);
    assert_eq!(files.code, 1, "{files:#?}");
    let fj = json(&files);
    assert_eq!(keys(&fj), expect);
    let dj = json(&dbs);
    assert_eq!(
        fj["tables"][0]["drifted_ranges"],
        dj["tables"][0]["drifted_ranges"]
    );
    // Same walk, same entries: the same bytes on the wire (rows aside).
    let (ft, dt) = (
        &fj["tables"][0]["stats"]["transfer"],
        &dj["tables"][0]["stats"]["transfer"],
    );
    assert_eq!(ft["levels"], dt["levels"]);
    assert_eq!(ft["entries"], dt["entries"]);

    // File against database, both ways round, with the tree: prefix too.
    let tree_a = format!("tree:{fa}");
    for (a, b) in [(tree_a.as_str(), tgt.as_str()), (src.as_str(), &*fb)] {
        let r = driftsum(&["diff", "--source", a, "--target", b, "--format", "json"]);
        assert_eq!(r.code, 1, "{r:#?}");
        assert_eq!(keys(&json(&r)), expect, "{a} vs {b}");
    }

    // Identical trees: in sync.
    let same = driftsum(&["diff", "--source", &fa, "--target", &src]);
    assert_eq!(same.code, 0, "{same:#?}");
    assert!(
        same.stdout.contains("items: in sync (5,000 rows)"),
        "{same:#?}"
    );
}

#[test]
fn files_without_entries_name_ranges() {
    let s = Scratch::new("ranges");
    let src = table(&s.join("src.db"), 3000, "");
    let tgt = table(&s.join("tgt.db"), 3000, EDITS);
    let (fa, fb) = (s.join("a.dstree"), s.join("b.dstree"));
    build(&src, &fa, &[]);
    build(&tgt, &fb, &["--with-entries"]);
    let r = driftsum(&[
        "diff",
        "--source",
        &fa.to_string_lossy(),
        "--target",
        &fb.to_string_lossy(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 1, "{r:#?}");
    let t = &json(&r)["tables"][0];
    assert_eq!(t["in_sync"], false);
    assert!(t["differences"].as_array().expect("list").is_empty());
    let ranges = t["drifted_ranges"].as_array().expect("ranges");
    assert!(!ranges.is_empty());
    for id in [1234, 2500, 9000] {
        assert!(
            ranges
                .iter()
                .any(|r| r["first"]["id"].as_i64() <= Some(id)
                    && r["last"]["id"].as_i64() >= Some(id)),
            "{id} not in {ranges:#?}"
        );
    }
}

/// `build` over key ranges on several connections writes the very file one
/// connection writes (a table large enough for several 65,536-row ranges),
/// entries included; a file in WAL mode falls back to one connection.
#[test]
fn key_ranges_write_the_same_file() {
    let s = Scratch::new("ranges");
    let db = table(
        &s.join("big.db"),
        200_000,
        "DELETE FROM items WHERE id % 1000 = 7;",
    );
    let mut files = Vec::new();
    for (name, extra) in [
        ("one", &["--connections", "1"][..]),
        ("two", &["--connections", "2"][..]),
        ("three", &["--connections", "3"][..]),
        ("default", &[][..]),
    ] {
        let out = s.join(&format!("{name}.dstree"));
        let mut args = vec!["--with-entries"];
        args.extend_from_slice(extra);
        build(&db, &out, &args);
        files.push((name, std::fs::read(&out).expect("read tree file")));
    }
    for (name, bytes) in &files[1..] {
        assert!(bytes == &files[0].1, "{name} differs from one connection");
    }
    let wal = table(&s.join("wal.db"), 140_000, "PRAGMA journal_mode = WAL;");
    build(&wal, &s.join("wal.dstree"), &["--connections", "2"]);
    let r = driftsum(&[
        "build",
        "--db",
        &db,
        "--table",
        "items",
        "--out",
        "x",
        "--connections",
        "0",
    ]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stderr.contains("--connections"), "{}", r.stderr);
}

#[test]
fn untrustworthy_files_are_refused() {
    let s = Scratch::new("refuse");
    let src = table(&s.join("src.db"), 2000, "");
    let good = s.join("good.dstree");
    build(&src, &good, &["--with-entries"]);
    let bytes = std::fs::read(&good).expect("read");

    let check = |name: &str, content: &[u8], why: &str| {
        let p = s.join(name);
        std::fs::write(&p, content).expect("write");
        let r = driftsum(&["diff", "--source", &p.to_string_lossy(), "--target", &src]);
        assert_eq!(r.code, 2, "{name}: {r:#?}");
        assert!(r.stderr.contains(why), "{name}: wanted {why:?} in {r:#?}");
    };
    let mut flipped = bytes.clone();
    let mid = bytes.len() / 2;
    flipped[mid] ^= 0x01;
    check("flipped.dstree", &flipped, "checksum mismatch");
    check(
        "truncated.dstree",
        &bytes[..bytes.len() - 100],
        "truncated or has bytes appended",
    );
    let mut v2 = bytes.clone();
    v2[8..12].copy_from_slice(&2u32.to_le_bytes());
    check("v2.dstree", &v2, "tree file format version 2");
    check("junk.dstree", b"hello, world", "not a driftsum tree file");

    // Two files built with different options: both ways of saying why.
    let coarse = s.join("coarse.dstree");
    build(&src, &coarse, &["--leaf-target", "128"]);
    let r = driftsum(&[
        "diff",
        "--source",
        &good.to_string_lossy(),
        "--target",
        &coarse.to_string_lossy(),
    ]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stdout.contains("different tree shapes"), "{r:#?}");
    let rounded = s.join("rounded.dstree");
    build(&src, &rounded, &["--float-digits", "6"]);
    let r = driftsum(&[
        "diff",
        "--source",
        &rounded.to_string_lossy(),
        "--target",
        &src,
    ]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stdout.contains("different float options"), "{r:#?}");
    let narrow = s.join("narrow.dstree");
    build(&src, &narrow, &["--exclude-columns", "qty"]);
    let r = driftsum(&[
        "diff",
        "--source",
        &narrow.to_string_lossy(),
        "--target",
        &good.to_string_lossy(),
    ]);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stdout.contains("different columns"), "{r:#?}");
}

/// Opens arbitrary bytes as a tree file and, if it opens, walks it against
/// itself and reads its entries: an error is fine, a panic is not.
fn poke(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write");
    if let Ok(f) = TreeFile::open(path) {
        let walk = Walk::new(&f, &f);
        for r in walk {
            if r.is_err() {
                break;
            }
        }
        let through = driftsum::core::Key::from_bytes(&[0xff; 4]);
        let _ = f.entries(None, &through, 100);
        let _ = f.first_key_after(None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn reader_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let s = Scratch::new("fuzz");
        poke(&s.join("x.dstree"), &bytes);
    }

    #[test]
    fn reader_survives_damage_behind_a_valid_checksum(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
    ) {
        // A real file, edited, with its checksum recomputed: only the
        // structural checks stand between the bytes and the reader.
        static GOOD: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let good = GOOD.get_or_init(|| {
            let s = Scratch::new("fuzz-good");
            let src = table(&s.join("src.db"), 300, "");
            let p = s.join("good.dstree");
            build(&src, &p, &["--with-entries", "--leaf-target", "4", "--fanout", "3"]);
            std::fs::read(&p).expect("read")
        });
        let mut bytes = good.clone();
        let body = bytes.len() - 32;
        for (i, b) in edits {
            let at = 16 + i.index(body - 16);
            bytes[at] = b;
        }
        let sum = *blake3::hash(&bytes[..body]).as_bytes();
        bytes[body..].copy_from_slice(&sum);
        let s = Scratch::new("fuzz-edit");
        poke(&s.join("x.dstree"), &bytes);
    }
}
