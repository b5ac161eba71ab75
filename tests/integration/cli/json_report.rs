//! The JSON report: its documented shape, and exactly the known mutations with their rows.

use super::*;

#[test]
fn json_report_has_the_documented_shape() {
    let dir = Scratch::new("json-shape");
    let (src, tgt) = items_pair(&dir);
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);

    let top = j.as_object().expect("report is an object");
    assert_eq!(
        top.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "format_version",
            "tool",
            "encoding_version",
            "source",
            "target",
            "started_at",
            "tables",
            "finished_at",
            "status",
            "exit_code",
            "summary",
        ]),
    );
    assert!(j["encoding_version"].is_u64(), "{j:#}");
    assert_eq!(table_names(&j), ["items"]);

    let t = table(&j, "items");
    assert_eq!(t["key_columns"], json!(["id"]));
    assert_eq!(t["source_rows"], 5000);
    assert_eq!(t["target_rows"], 4990);
    assert_eq!(t["in_sync"], false);
    assert!(t.get("error").is_none(), "{t:#}");
    assert!(t.get("target_table").is_none(), "not mapped: {t:#}");

    // Drifted ranges: key objects, ascending, disjoint, and they hold every
    // difference.
    let ranges = t["drifted_ranges"].as_array().expect("drifted_ranges");
    assert!(!ranges.is_empty());
    let mut prev_last = i64::MIN;
    let (mut src_rows, mut tgt_rows) = (0i64, 0i64);
    let bounds: Vec<(i64, i64)> = ranges
        .iter()
        .map(|rg| {
            let first = rg["first"]["id"].as_i64().expect("first is {\"id\": n}");
            let last = rg["last"]["id"].as_i64().expect("last is {\"id\": n}");
            assert_eq!(rg["first"].as_object().unwrap().len(), 1, "{rg:#}");
            assert_eq!(rg["last"].as_object().unwrap().len(), 1, "{rg:#}");
            assert!(
                first <= last && first > prev_last,
                "ranges out of order: {ranges:#?}"
            );
            prev_last = last;
            src_rows += rg["source_rows"].as_i64().expect("source_rows");
            tgt_rows += rg["target_rows"].as_i64().expect("target_rows");
            (first, last)
        })
        .collect();
    assert_eq!(
        src_rows - tgt_rows,
        10,
        "rows lost in the ranges: {ranges:#?}"
    );
    assert!(
        src_rows < 2500,
        "the tree should narrow drift down to a small part of the table: {ranges:#?}"
    );

    for d in t["differences"].as_array().unwrap() {
        let id = d["key"]["id"].as_i64().expect("key is {\"id\": n}");
        assert!(
            bounds.iter().any(|&(a, b)| a <= id && id <= b),
            "difference {d} is in no drifted range: {ranges:#?}"
        );
    }

    // Stats.
    let stats = &t["stats"];
    for field in [
        "source_rows_read",
        "target_rows_read",
        "nodes_compared",
        "bytes_exchanged",
    ] {
        assert!(stats[field].is_u64(), "stats.{field}: {stats:#}");
    }
    assert!(
        stats["source_rows_read"].as_u64().unwrap() >= 5000,
        "{stats:#}"
    );
    assert!(
        stats["target_rows_read"].as_u64().unwrap() >= 4990,
        "{stats:#}"
    );
    assert!(stats["nodes_compared"].as_u64().unwrap() > 0, "{stats:#}");
    assert!(stats["bytes_exchanged"].as_u64().unwrap() > 0, "{stats:#}");
    assert!(
        stats["seconds"].as_f64().is_some_and(|s| s >= 0.0),
        "{stats:#}"
    );
}

#[test]
fn json_reports_exactly_the_known_mutations() {
    let dir = Scratch::new("json-exact");
    let (src, tgt) = items_pair(&dir);
    let (r, j) = diff_json(&src, &tgt, &[]);
    assert_code(&r, 1);
    let t = table(&j, "items");
    assert_eq!(difference_set(t), items_drift_expected());

    // Listed in key order.
    let ids: Vec<i64> = t["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"]["id"].as_i64().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "differences not in key order");
}

#[test]
fn json_difference_objects_carry_their_rows() {
    let dir = Scratch::new("json-rows");
    let (src, tgt) = items_pair(&dir);
    let (_, j) = diff_json(&src, &tgt, &[]);
    let diffs = table(&j, "items")["differences"]
        .as_array()
        .unwrap()
        .clone();
    let find = |id: i64| {
        diffs
            .iter()
            .find(|d| d["key"] == json!({ "id": id }))
            .unwrap_or_else(|| panic!("no difference for id {id}: {diffs:#?}"))
    };

    // missing: the source row (value columns), no target.
    let missing = find(20);
    assert_eq!(missing["kind"], "missing");
    assert_eq!(
        missing["source"],
        json!({ "name": "item 20", "price": 3.5, "qty": 3 })
    );
    assert!(missing.get("target").is_none(), "{missing:#}");
    assert!(missing.get("columns").is_none(), "{missing:#}");

    // extra: the target row, no source.
    let extra = find(3001);
    assert_eq!(extra["kind"], "extra");
    assert_eq!(
        extra["target"],
        json!({ "name": "item 3001", "price": 2.0, "qty": 1 })
    );
    assert!(extra.get("source").is_none(), "{extra:#}");

    // changed: only the changed columns, on both sides.
    let changed = find(1200);
    assert_eq!(
        changed,
        &json!({
            "kind": "changed",
            "key": { "id": 1200 },
            "columns": ["price"],
            "source": { "price": 9.5 },
            "target": { "price": 9.25 },
        })
    );
    let two = find(7000);
    assert_eq!(two["columns"], json!(["name", "qty"]));
    assert_eq!(two["source"], json!({ "name": "item 7000", "qty": 0 }));
    assert_eq!(two["target"], json!({ "name": "renamed", "qty": 1 }));
}

/// A report that cannot be written (a full disk, a reader that went away)
/// ends the run with exit 2 and one plain message naming the cause once,
/// whether the write fails at the end (a small report) or while the rows
/// are still being compared (a report of every row of a table).
#[test]
fn a_report_that_cannot_be_written_is_one_clear_error() {
    use std::process::{Command, Stdio};
    let dir = Scratch::new("json-unwritable");
    let rows = |v: &str| {
        format!(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000)
             INSERT INTO t SELECT x, '{v}' || x FROM c;"
        )
    };
    let (small_src, small_tgt) = items_pair(&dir);
    let big_src = db(dir.path(), "big-source.db", &rows("a"));
    let big_tgt = db(dir.path(), "big-replica.db", &rows("b"));
    for (what, src, tgt) in [
        ("small", &small_src, &small_tgt),
        ("every row", &big_src, &big_tgt),
    ] {
        let args = |cmd: &mut Command| {
            cmd.args(["diff", "--format", "json", "--source"])
                .arg(format!("sqlite:{}", src.display()))
                .arg("--target")
                .arg(format!("sqlite:{}", tgt.display()))
                .stderr(Stdio::piped());
        };
        // A full disk.
        let mut full = Command::new(env!("CARGO_BIN_EXE_driftsum"));
        args(&mut full);
        let full = full
            .stdout(std::fs::File::create("/dev/full").expect("/dev/full"))
            .output()
            .expect("run driftsum");
        // A reader that went away before anything was written.
        let mut gone = Command::new(env!("CARGO_BIN_EXE_driftsum"));
        args(&mut gone);
        let mut child = gone.stdout(Stdio::piped()).spawn().expect("run driftsum");
        drop(child.stdout.take());
        let gone = child.wait_with_output().expect("driftsum ends");
        for (how, out, cause) in [
            ("full disk", &full, "No space left on device"),
            ("closed pipe", &gone, "Broken pipe"),
        ] {
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what}, {how}: {err}");
            assert_eq!(
                err.matches("writing the report").count(),
                1,
                "{what}, {how}: {err}"
            );
            assert_eq!(err.matches(cause).count(), 1, "{what}, {how}: {err}");
        }
    }
}
