//! Whole-command tests of `driftsum bench` at tiny sizes: the files it
//! writes (CSV, JSON, Markdown, SVG), their shape, the data cache, and clear
//! errors (exit 2) for bad arguments. Server engines run when their test URL
//! is set (`DRIFTSUM_TEST_POSTGRES`, `DRIFTSUM_TEST_MYSQL`) and are skipped
//! with a printed reason otherwise. Timing is never asserted here: numbers
//! belong to benchmarks.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::{self, Scratch};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .arg("bench")
        .args(args)
        .output()
        .expect("run driftsum")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Checks the four result files for `sizes` × `diffs` measurements.
fn check_outputs(out: &Path, sizes: &[u64], diffs: &[u64], source_engine: &str) {
    let csv = std::fs::read_to_string(out.join("bench.csv")).expect("bench.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + sizes.len() * diffs.len(), "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    for col in [
        "rows",
        "diffs",
        "found",
        "seconds",
        "scan_seconds",
        "walk_seconds",
        "fetch_seconds",
        "source_rows_per_second",
        "target_rows_per_second",
        "bytes_exchanged",
        "round_trips",
        "peak_memory_bytes",
    ] {
        assert!(header.contains(&col), "CSV lacks {col}: {}", lines[0]);
    }
    for line in &lines[1..] {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), header.len(), "{line}");
        let get = |c: &str| fields[header.iter().position(|h| *h == c).unwrap()];
        assert_eq!(get("found"), get("diffs"), "{line}");
        assert!(get("seconds").parse::<f64>().unwrap() > 0.0, "{line}");
    }

    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).expect("json"))
            .expect("bench.json parses");
    assert_eq!(json["run"]["source_engine"], source_engine);
    assert_eq!(json["run"]["replica_engine"], "sqlite");
    let ms = json["measurements"].as_array().expect("measurements");
    assert_eq!(ms.len(), sizes.len() * diffs.len());
    let mut seen = Vec::new();
    for m in ms {
        let rows = m["rows"].as_u64().unwrap();
        let d = m["diffs"].as_u64().unwrap();
        assert_eq!(m["found"].as_u64(), Some(d));
        assert!(m["scan_seconds"].as_f64().unwrap() > 0.0);
        assert!(m["source_rows_read"].as_u64().unwrap() >= rows - d);
        assert!(m["round_trips"].as_u64().unwrap() >= 1);
        seen.push((rows, d));
    }
    for &s in sizes {
        for &d in diffs {
            assert!(
                seen.contains(&(s, d)),
                "no measurement for {s} rows, {d} diffs"
            );
        }
    }

    let md = std::fs::read_to_string(out.join("bench.md")).expect("bench.md");
    assert_eq!(md.lines().count(), 2 + sizes.len() * diffs.len(), "{md}");
    let svg = std::fs::read_to_string(out.join("bench.svg")).expect("bench.svg");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    // One line per difference count, with a legend entry each.
    assert_eq!(svg.matches("<polyline").count(), diffs.len(), "{svg}");
    for d in diffs {
        assert!(svg.contains(&format!(">{d} difference")), "legend for {d}");
    }
}

#[test]
fn tiny_sqlite_bench_writes_every_file_and_reuses_its_data() {
    let dir = Scratch::new("sqlite");
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let r = bench(&["--sizes", "1k,2_000", "--diffs", "0,5", "--out", o]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let stdout = text(&r.stdout);
    assert!(stdout.contains("scan+hash s"), "{stdout}");
    assert!(
        stdout.contains("1,000") && stdout.contains("2,000"),
        "{stdout}"
    );
    assert!(text(&r.stderr).contains("writing the 1,000-row SQLite source"));
    check_outputs(&out, &[1000, 2000], &[0, 5], "sqlite");

    let expected = std::fs::read_to_string(out.join("data/expected_v2_1000_5.txt")).unwrap();
    let kinds: Vec<&str> = expected
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(kinds.len(), 5);
    for k in ["changed", "missing", "extra"] {
        assert!(kinds.contains(&k), "{expected}");
    }

    // The second run reuses the generated files.
    let r = bench(&["--sizes", "1k", "--diffs", "5", "--out", o]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    assert!(
        !text(&r.stderr).contains("writing the"),
        "{}",
        text(&r.stderr)
    );
    check_outputs(&out, &[1000], &[5], "sqlite");
}

#[test]
fn generate_only_lists_the_pairs() {
    let dir = Scratch::new("generate");
    let o = dir.path().to_str().unwrap();
    let r = bench(&[
        "--sizes",
        "100",
        "--diffs",
        "3",
        "--out",
        o,
        "--generate-only",
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let stdout = text(&r.stdout);
    let line = stdout
        .lines()
        .find(|l| !l.starts_with('#'))
        .expect("a pair");
    let f: Vec<&str> = line.split('\t').collect();
    assert_eq!(f.len(), 7, "{line}");
    assert_eq!((f[0], f[1], f[3], f[5]), ("100", "3", "bench", "bench"));
    assert!(Path::new(f[2]).is_file() && Path::new(f[4]).is_file());
    assert_eq!(std::fs::read_to_string(f[6]).unwrap().lines().count(), 3);
    assert!(!dir.path().join("bench.csv").exists());
}

#[test]
fn bad_arguments_are_clear_errors() {
    let dir = Scratch::new("bad");
    let o = dir.path().to_str().unwrap();
    let r = bench(&["--sizes", "ten", "--out", o]);
    assert_eq!(r.status.code(), Some(2));
    let err = text(&r.stderr);
    assert!(
        err.contains("--sizes") && err.contains("not a count"),
        "{err}"
    );

    let r = bench(&["--sizes", "1.5k,3x", "--out", o]);
    assert_eq!(r.status.code(), Some(2));

    let r = bench(&["--sizes", "10", "--diffs", "11", "--out", o]);
    assert_eq!(r.status.code(), Some(2));
    let err = text(&r.stderr);
    assert!(
        err.contains("11 differences do not fit in 10 rows"),
        "{err}"
    );

    for bad in ["101%", "x%", "5.5%"] {
        let r = bench(&["--sizes", "10", "--diffs", bad, "--out", o]);
        assert_eq!(r.status.code(), Some(2), "{bad}");
        let err = text(&r.stderr);
        assert!(err.contains("--diffs") && err.contains(bad), "{err}");
    }
    assert!(!dir.path().join("bench.csv").exists());

    let r = Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(["bench", "--engine", "postgres", "--sizes", "10", "--out", o])
        .env_remove("DRIFTSUM_TEST_POSTGRES")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("DRIFTSUM_TEST_POSTGRES"));
}

/// Dense drift: a share of each size's rows, up to every row (a wiped or
/// rewritten replica), found exactly and plotted as one line per share.
#[test]
fn drift_as_a_share_of_the_rows() {
    let dir = Scratch::new("share");
    let o = dir.path().to_str().unwrap();
    let r = bench(&["--sizes", "300,600", "--diffs", "10%,100%", "--out", o]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("bench.json")).unwrap())
            .unwrap();
    let mut got: Vec<(u64, u64, String)> = json["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["found"], m["diffs"], "{m}");
            let d = m["drift"].as_str().unwrap().to_string();
            (m["rows"].as_u64().unwrap(), m["diffs"].as_u64().unwrap(), d)
        })
        .collect();
    got.sort();
    let want = [
        (300, 30, "10%"),
        (300, 300, "100%"),
        (600, 60, "10%"),
        (600, 600, "100%"),
    ];
    let want: Vec<(u64, u64, String)> = want
        .iter()
        .map(|(r, d, l)| (*r, *d, l.to_string()))
        .collect();
    assert_eq!(got, want);
    let svg = std::fs::read_to_string(dir.path().join("bench.svg")).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
    for l in ["10% of rows differ", "100% of rows differ"] {
        assert!(svg.contains(l), "legend {l}");
    }
    // With a difference at every row, each kind takes a third.
    let expected =
        std::fs::read_to_string(dir.path().join("data/expected_v2_300_300.txt")).unwrap();
    for k in ["changed", "missing", "extra"] {
        assert_eq!(
            expected.lines().filter(|l| l.starts_with(k)).count(),
            100,
            "{k}"
        );
    }
}

fn server_bench(var: &str, engine: &str) {
    let Some(url) = util::server_url(var) else {
        return;
    };
    let dir = Scratch::new(engine);
    let o = dir.path().to_str().unwrap();
    let r = bench(&[
        "--engine",
        engine,
        "--source-url",
        &url,
        "--sizes",
        "1k",
        "--diffs",
        "0,6",
        "--out",
        o,
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    check_outputs(dir.path(), &[1000], &[0, 6], engine);
}

#[test]
fn tiny_postgres_bench() {
    server_bench("DRIFTSUM_TEST_POSTGRES", "postgres");
}

#[test]
fn tiny_mysql_bench() {
    server_bench("DRIFTSUM_TEST_MYSQL", "mysql");
}

/// `bench --levels` at a tiny size: every level of `check` measured beside
/// the engines' own count, on SQLite and (when its URL is set) on a
/// PostgreSQL source, each level reading the rows it should.
#[test]
fn tiny_levels_bench() {
    let mut engines = vec![("sqlite", None)];
    if let Some(url) = util::server_url("DRIFTSUM_TEST_POSTGRES") {
        engines.push(("postgres", Some(url)));
    }
    for (engine, url) in engines {
        let dir = Scratch::new("levels");
        let o = dir.path().to_str().unwrap();
        let mut args = vec!["--levels", "--engine", engine, "--sizes", "2k", "--out", o];
        if let Some(url) = &url {
            args.extend(["--source-url", url.as_str()]);
        }
        let r = bench(&args);
        assert_eq!(r.status.code(), Some(0), "{engine}: {}", text(&r.stderr));
        let json: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("levels.json")).expect("levels.json"),
        )
        .expect("levels.json parses");
        let costs = json[0]["costs"].as_array().expect("costs");
        let levels: Vec<&str> = costs.iter().map(|c| c["level"].as_str().unwrap()).collect();
        assert_eq!(levels, ["count(*)", "count", "keys", "full"], "{engine}");
        for c in costs {
            assert_eq!(c["rows"], 2000, "{engine}: {c}");
        }
        // keys and full read every row of both sides; count reads none.
        assert_eq!(costs[1]["rows_read"], 0, "{engine}");
        assert_eq!(costs[2]["rows_read"], 4000, "{engine}");
        assert_eq!(costs[3]["rows_read"], 4000, "{engine}");
        assert!(std::fs::read_to_string(dir.path().join("levels.md"))
            .expect("levels.md")
            .contains("| keys |"));
    }
}
