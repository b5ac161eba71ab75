//! The engine's cost against the floor: a SQLite-to-SQLite `diff` of two
//! N-row tables with 10 scattered differences, timed side by side with a
//! bare key-ordered scan of both files reading the same columns.
//!
//! Run: `cargo bench --bench diff_vs_scan [-- ROWS]` (default 1,000,000).
//! The data is generated once under `target/bench-data/`. Reported: the
//! median of 5 alternating runs of each, their ratio, and the peak RSS of
//! the diff alone (VmHWM, reset before it runs).

use std::path::{Path, PathBuf};
use std::time::Instant;

use driftsum::build::{scan_tree, Threads, TreeScan};
use driftsum::check::{self, DiffOptions};
use driftsum::source::sqlite::SqliteSource;
use rusqlite::{params, Connection};

const COLUMNS: &str = "id, name, qty, price, amount, created, note";

fn generate(dir: &Path, rows: i64) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("bench data dir");
    let src = dir.join(format!("src_{rows}.db"));
    let rep = dir.join(format!("rep_{rows}.db"));
    if src.exists() && rep.exists() {
        return (src, rep);
    }
    let _ = std::fs::remove_file(&src);
    let _ = std::fs::remove_file(&rep);
    let mut c = Connection::open(&src).expect("create source");
    c.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         CREATE TABLE bench (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL,
           price REAL NOT NULL, amount NUMERIC(12,2) NOT NULL, created TIMESTAMP NOT NULL, note TEXT);",
    )
    .expect("schema");
    let tx = c.transaction().expect("tx");
    {
        let mut ins = tx
            .prepare("INSERT INTO bench VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .expect("prepare");
        for i in 0..rows {
            let created =
                driftsum::core::time::format_timestamp((1_600_000_000 + i * 17) * 1_000_000);
            ins.execute(params![
                i,
                format!("customer-{:08}", (i * 7919) % 1_000_003),
                i % 1000,
                (i as f64) * 0.37 + 0.01,
                format!("{}.{:02}", i % 100_000, i % 100),
                created,
                (i % 3 == 0).then(|| format!("note {i}")),
            ])
            .expect("insert");
        }
    }
    tx.commit().expect("commit");
    drop(c);
    std::fs::copy(&src, &rep).expect("copy");
    let r = Connection::open(&rep).expect("open replica");
    let step = rows / 11;
    for (n, k) in (1..=10).map(|n| (n, n * step)) {
        let sql = match n % 3 {
            0 => format!("DELETE FROM bench WHERE id = {k}"),
            1 => format!("UPDATE bench SET price = price + 1 WHERE id = {k}"),
            _ => format!(
                "INSERT INTO bench SELECT {}, name, qty, price, amount, created, note FROM bench WHERE id = {k}",
                rows + n
            ),
        };
        r.execute_batch(&sql).expect("mutate");
    }
    (src, rep)
}

fn bare_scan(path: &Path) -> u64 {
    let c = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open");
    let mut stmt = c
        .prepare(&format!("SELECT {COLUMNS} FROM bench ORDER BY id"))
        .expect("prepare");
    let mut rows = stmt.query([]).expect("query");
    let mut n = 0u64;
    let mut touched = 0usize;
    while let Some(row) = rows.next().expect("row") {
        for i in 0..7 {
            touched += std::hint::black_box(row.get_ref(i).expect("col")).data_type() as usize;
        }
        n += 1;
    }
    std::hint::black_box(touched);
    n
}

fn diff(src: &Path, rep: &Path) -> usize {
    let mut a = SqliteSource::open(src).expect("open source");
    let mut b = SqliteSource::open(rep).expect("open replica");
    let run = check::diff(&mut a, &mut b, &DiffOptions::default(), &|_, _| {}).expect("diff");
    run.tables.iter().map(|t| t.differences.len()).sum()
}

/// Builds one file's tree alone: on one thread (as `diff` does for each of
/// two local sides, one core each), hashing on a second thread, or over key
/// ranges on two connections (as `driftsum build` does, both cores); rows
/// read from the b-tree pages (the default) or through SQL.
fn build(path: &Path, threads: Threads, pages: bool) -> u64 {
    use driftsum::check::plan::{plan, ColumnChoice};
    use driftsum::source::Source;
    let mut src = SqliteSource::open(path).expect("open");
    src.set_page_reads(pages);
    let schema = src.schema("bench").expect("schema");
    let p = plan(
        &schema,
        &schema,
        &ColumnChoice::default(),
        &Default::default(),
    )
    .expect("plan");
    let job = TreeScan {
        spec: &p.source,
        opts: &Default::default(),
        shape: Default::default(),
        side: driftsum::core::Side::Source,
        threads,
    };
    let built = scan_tree(&mut src, &job, &|_, _| {}, None).expect("build");
    built.rows_read
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let rows: i64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    let (src, rep) = generate(&dir, rows);
    let (mut scans, mut scans_par, mut diffs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut builds_one, mut builds_two, mut builds_ranges) = (Vec::new(), Vec::new(), Vec::new());
    let mut builds_sql = Vec::new();
    let mut found = 0;
    let mut peak = None;
    for _ in 0..5 {
        let t = Instant::now();
        let n = bare_scan(&src) + bare_scan(&rep);
        scans.push(t.elapsed().as_secs_f64());
        assert!(n > 0);
        let t = Instant::now();
        let (x, y) = rayon::join(|| bare_scan(&src), || bare_scan(&rep));
        scans_par.push(t.elapsed().as_secs_f64());
        assert_eq!(x + y, n);
        // Reset the peak-RSS mark so it measures the diff alone.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let t = Instant::now();
        found = diff(&src, &rep);
        diffs.push(t.elapsed().as_secs_f64());
        peak = peak_rss_kib();
        let t = Instant::now();
        assert_eq!(build(&src, Threads::One, false), rows as u64);
        builds_sql.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        assert_eq!(build(&src, Threads::One, true), rows as u64);
        builds_one.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        assert_eq!(build(&src, Threads::ReadAndHash, true), rows as u64);
        builds_two.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        assert_eq!(build(&src, Threads::KeyRanges(2), true), rows as u64);
        builds_ranges.push(t.elapsed().as_secs_f64());
    }
    let (s, sp, d) = (median(scans), median(scans_par), median(diffs));
    let b0 = median(builds_sql);
    let (b1, b2, b3) = (
        median(builds_one),
        median(builds_two),
        median(builds_ranges),
    );
    println!("rows per table:                      {rows}");
    println!(
        "differences found:                   {found} (10 injected: 4 changed, 3 missing, 3 extra)"
    );
    assert_eq!(
        found, 10,
        "the diff must find exactly the injected differences"
    );
    println!("bare scan, both files one by one:    {s:.3} s");
    println!("bare scan, both files in parallel:   {sp:.3} s");
    println!("driftsum diff:                       {d:.3} s");
    println!(
        "tree build, one thread, through SQL: {b0:.3} s ({:.2} M rows/s)",
        rows as f64 / b0 / 1e6
    );
    println!(
        "tree build, one file, one thread:    {b1:.3} s ({:.2} M rows/s)",
        rows as f64 / b1 / 1e6
    );
    println!(
        "tree build, hashing on a 2nd thread: {b2:.3} s ({:.2} M rows/s)",
        rows as f64 / b2 / 1e6
    );
    println!(
        "tree build, 2 connections x ranges:  {b3:.3} s ({:.2} M rows/s)",
        rows as f64 / b3 / 1e6
    );
    println!("ratio diff / sequential bare scan:   {:.2}", d / s);
    println!("ratio diff / parallel bare scan:     {:.2}", d / sp);
    if let Some(kib) = peak {
        println!(
            "peak RSS during the diff:            {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
}
