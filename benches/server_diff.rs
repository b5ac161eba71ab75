//! Server sources at scale: a 1,000,000-row PostgreSQL (and MariaDB) table
//! against its SQLite copy, the way a sync tool stores it (timestamps as
//! ISO-8601 text, decimals as text, booleans as 0/1): equal first, then with
//! 10 injected differences of mixed kinds, which must be exactly what is
//! reported. Then tree-building throughput from the server, side by side with
//! a bare sqlx streaming read of the same columns (median of 5 alternating
//! runs each).
//!
//! Run: `DRIFTSUM_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test
//! DRIFTSUM_TEST_MYSQL=mysql://root@127.0.0.1:3306/test
//! cargo bench --bench server_diff [-- ROWS]`. An engine whose variable is
//! unset is skipped. The server table is created once and kept
//! (`driftsum_bench`); the SQLite copies live under `target/bench-data/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use driftsum::build::{scan_tree, Threads, TreeScan};
use driftsum::check::{self, plan, ColumnChoice, DiffOptions, TablePair};
use driftsum::config::Config;
use driftsum::core::{CanonOptions, Shape, Side};
use driftsum::source;
use futures_util::TryStreamExt;
use rusqlite::params;
use sqlx::{AssertSqlSafe, Connection, Executor, Row};

const TABLE: &str = "driftsum_bench";

/// The row every engine generates for key `i`, as the replica stores it.
fn replica_row(i: i64) -> (String, i64, f64, String, String, i64, Option<String>) {
    let created = driftsum::core::time::format_timestamp((1_600_000_000 + i * 17) * 1_000_000);
    (
        format!("customer-{:08}", (i * 7919) % 1_000_003),
        i % 1000,
        (i as f64) * 0.37 + 0.01,
        format!("{}.{:02}", i % 100_000, i % 100),
        format!("{created}Z"),
        (i % 3 == 0) as i64,
        (i % 3 == 0).then(|| format!("note {i}")),
    )
}

const PG_SETUP: &str = "
CREATE TABLE IF NOT EXISTS public.driftsum_bench (
  id bigint PRIMARY KEY, name text NOT NULL, qty integer NOT NULL,
  price double precision NOT NULL, amount numeric(12,2) NOT NULL,
  created timestamptz NOT NULL, flag boolean NOT NULL, note text)";

fn pg_fill(rows: i64) -> String {
    format!(
        "INSERT INTO public.driftsum_bench
         SELECT i, 'customer-' || lpad(((i * 7919) % 1000003)::text, 8, '0'), i % 1000,
                i::float8 * 0.37::float8 + 0.01::float8,
                ((i % 100000)::text || '.' || lpad((i % 100)::text, 2, '0'))::numeric,
                to_timestamp(1600000000 + i * 17), i % 3 = 0,
                CASE WHEN i % 3 = 0 THEN 'note ' || i END
         FROM generate_series(0::bigint, {}) AS i",
        rows - 1
    )
}

const MY_SETUP: &str = "
CREATE TABLE IF NOT EXISTS driftsum_bench (
  id bigint PRIMARY KEY, name varchar(40) NOT NULL, qty int NOT NULL,
  price double NOT NULL, amount decimal(12,2) NOT NULL,
  created timestamp(0) NOT NULL, flag tinyint(1) NOT NULL, note text)";

fn my_fill(rows: i64) -> String {
    format!(
        "INSERT INTO driftsum_bench
         SELECT seq, CONCAT('customer-', LPAD(MOD(seq * 7919, 1000003), 8, '0')), MOD(seq, 1000),
                CAST(seq AS DOUBLE) * 0.37e0 + 0.01e0,
                CAST(CONCAT(MOD(seq, 100000), '.', LPAD(MOD(seq, 100), 2, '0')) AS DECIMAL(12,2)),
                FROM_UNIXTIME(1600000000 + seq * 17), MOD(seq, 3) = 0,
                IF(MOD(seq, 3) = 0, CONCAT('note ', seq), NULL)
         FROM seq_0_to_{}",
        rows - 1
    )
}

/// Creates and fills the server table unless it already holds `rows` rows.
macro_rules! prepare_server {
    ($conn:ty, $url:expr, $setup:expr, $fill:expr, $rows:expr) => {{
        let mut c = <$conn>::connect($url).await.expect("connect");
        c.execute($setup).await.expect("create bench table");
        let have: i64 = sqlx::query(AssertSqlSafe(format!("SELECT count(*) FROM {TABLE}")))
            .fetch_one(&mut c)
            .await
            .expect("count")
            .try_get(0)
            .expect("count value");
        if have != $rows {
            c.execute(AssertSqlSafe(format!("DELETE FROM {TABLE}")))
                .await
                .expect("empty");
            c.execute(AssertSqlSafe($fill)).await.expect("fill");
        }
    }};
}

/// Streams the same columns with sqlx alone, touching every value.
macro_rules! bare_read {
    ($conn:ty, $url:expr, $sql:expr) => {{
        let mut c = <$conn>::connect($url).await.expect("connect");
        let mut s = sqlx::query(AssertSqlSafe($sql)).fetch(&mut c);
        let mut n = 0u64;
        let mut touched = 0usize;
        while let Some(row) = s.try_next().await.expect("row") {
            for i in 0..8 {
                let v = row.try_get_raw(i).expect("column");
                touched += std::hint::black_box(sqlx::ValueRef::is_null(&v)) as usize;
            }
            n += 1;
        }
        std::hint::black_box(touched);
        n
    }};
}

fn replica(dir: &Path, name: &str, rows: i64) -> PathBuf {
    let path = dir.join(format!("{name}_{rows}.db"));
    if path.exists() {
        return path;
    }
    let tmp = dir.join(format!("{name}_{rows}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut c = rusqlite::Connection::open(&tmp).expect("create replica");
    c.execute_batch(&format!(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL,
           amount TEXT, created TEXT, flag INTEGER, note TEXT);"
    ))
    .expect("schema");
    let tx = c.transaction().expect("tx");
    {
        let mut ins = tx
            .prepare(&format!(
                "INSERT INTO {TABLE} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))
            .expect("prepare");
        for i in 0..rows {
            let (name, qty, price, amount, created, flag, note) = replica_row(i);
            ins.execute(params![i, name, qty, price, amount, created, flag, note])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    drop(c);
    std::fs::rename(&tmp, &path).expect("rename");
    path
}

/// A copy of `clean` with 10 differences: 4 changed, 3 missing, 3 extra.
fn drifted(clean: &Path, rows: i64) -> PathBuf {
    let path = clean.with_extension("drift.db");
    std::fs::copy(clean, &path).expect("copy replica");
    let c = rusqlite::Connection::open(&path).expect("open copy");
    let step = rows / 11;
    for n in 1..=10 {
        let k = n * step;
        let sql = match n % 3 {
            1 => format!("UPDATE {TABLE} SET amount = '0.01' WHERE id = {k}"),
            0 => format!("DELETE FROM {TABLE} WHERE id = {k}"),
            _ => format!("INSERT INTO {TABLE} SELECT {}, name, qty, price, amount, created, flag, note FROM {TABLE} WHERE id = {k}", rows + n),
        };
        c.execute_batch(&sql).expect("mutate");
    }
    path
}

fn diff(url: &str, server_table: &str, replica: &Path) -> (usize, Vec<String>, f64) {
    let mut src = source::open(url).expect("open server");
    let mut tgt = source::open(&format!("sqlite:{}", replica.display())).expect("open replica");
    let opts = DiffOptions {
        tables: vec![TablePair::parse(&format!("{server_table}={TABLE}"))],
        ..DiffOptions::default()
    };
    let t = Instant::now();
    let run = check::diff(src.as_mut(), tgt.as_mut(), &opts, &|_, _| {}).expect("diff");
    let secs = t.elapsed().as_secs_f64();
    let table = &run.tables[0];
    assert!(table.error.is_none(), "{:?}", table.error);
    let kinds = table
        .differences
        .iter()
        .map(|d| format!("{:?} {}", d.kind, d.key[0]))
        .collect();
    (table.differences.len(), kinds, secs)
}

/// The server table opened, and what a diff of it reads.
fn planned(url: &str, server_table: &str) -> (Box<dyn source::Source>, source::ScanSpec) {
    let mut src = source::open(url).expect("open server");
    let schema = src.schema(server_table).expect("schema");
    let plan = plan::plan(
        &schema,
        &schema,
        &ColumnChoice::default(),
        &Config::default(),
    )
    .expect("plan");
    (src, plan.source)
}

/// Builds the server side's tree alone: on one connection and one thread
/// (as `diff` does for each of two database sides), hashing on a second
/// thread (as `driftsum build` does by default), or over key ranges on
/// several connections to one snapshot (`build --connections 2`).
fn build(url: &str, server_table: &str, threads: Threads) -> (u64, f64) {
    let (mut src, spec) = planned(url, server_table);
    let t = Instant::now();
    let job = TreeScan {
        spec: &spec,
        opts: &CanonOptions::default(),
        shape: Shape::default(),
        side: Side::Source,
        threads,
    };
    let built = scan_tree(src.as_mut(), &job, &|_, _| {}, None).expect("build");
    (built.rows_read, t.elapsed().as_secs_f64())
}

/// Reads the server side through the connector alone (decoded values, no
/// hashing), to split the build's cost between decoding and hashing.
fn decode_only(url: &str, server_table: &str) -> (u64, f64) {
    let (mut src, spec) = planned(url, server_table);
    let t = Instant::now();
    let mut n = 0u64;
    src.scan(&spec, None, &mut |row| {
        n += std::hint::black_box(row.len()) as u64 / row.len() as u64;
        std::ops::ControlFlow::Continue(())
    })
    .expect("scan");
    (n, t.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run_engine(
    name: &str,
    url: &str,
    server_table: &str,
    bare: &dyn Fn() -> u64,
    rows: i64,
    dir: &Path,
) {
    println!("== {name}: {rows} rows ==");
    let clean = replica(dir, name, rows);
    let (n, _, secs) = diff(url, server_table, &clean);
    println!("equal copy:      {n} differences in {secs:.2} s");
    assert_eq!(n, 0, "the clean copy must compare equal");
    let dirty = drifted(&clean, rows);
    let (n, kinds, secs) = diff(url, server_table, &dirty);
    println!(
        "10 injected:     {n} differences in {secs:.2} s: {}",
        kinds.join(", ")
    );
    assert_eq!(n, 10, "exactly the injected differences");
    let (mut bares, mut builds, mut decodes) = (Vec::new(), Vec::new(), Vec::new());
    let (mut builds_two, mut builds_ranges) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        let read = bare();
        bares.push(t.elapsed().as_secs_f64());
        let (decoded, secs) = decode_only(url, server_table);
        decodes.push(secs);
        assert_eq!(read, decoded);
        let (built_rows, secs) = build(url, server_table, Threads::One);
        builds.push(secs);
        assert_eq!(read, built_rows);
        let (built_rows, secs) = build(url, server_table, Threads::ReadAndHash);
        builds_two.push(secs);
        assert_eq!(read, built_rows);
        let (built_rows, secs) = build(url, server_table, Threads::KeyRanges(2));
        builds_ranges.push(secs);
        assert_eq!(read, built_rows);
    }
    let (b, d, t) = (median(bares), median(decodes), median(builds));
    let (h, r) = (median(builds_two), median(builds_ranges));
    println!("bare sqlx read:  {b:.3} s ({:.0} rows/s)", rows as f64 / b);
    println!("connector scan:  {d:.3} s ({:.0} rows/s)", rows as f64 / d);
    println!(
        "tree build:      {t:.3} s ({:.0} rows/s), one connection, one thread",
        rows as f64 / t
    );
    println!("build / read:    {:.2}", t / b);
    println!(
        "read + hash:     {h:.3} s ({:.0} rows/s), hashing on a second thread (build's default)",
        rows as f64 / h
    );
    println!("build / read:    {:.2}", h / b);
    println!(
        "key ranges:      {r:.3} s ({:.0} rows/s), two connections to one snapshot",
        rows as f64 / r
    );
}

fn main() {
    let rows: i64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let columns = "id, name, qty, price, amount, created, flag, note";

    match std::env::var("DRIFTSUM_TEST_POSTGRES") {
        Ok(url) => {
            rt.block_on(async {
                prepare_server!(sqlx::PgConnection, &url, PG_SETUP, pg_fill(rows), rows)
            });
            let sql = format!("SELECT {columns} FROM public.{TABLE} ORDER BY id");
            let bare = || rt.block_on(async { bare_read!(sqlx::PgConnection, &url, sql.clone()) });
            run_engine(
                "postgres",
                &url,
                &format!("public.{TABLE}"),
                &bare,
                rows,
                &dir,
            );
        }
        Err(_) => println!("skipping PostgreSQL: DRIFTSUM_TEST_POSTGRES is not set"),
    }
    match std::env::var("DRIFTSUM_TEST_MYSQL") {
        Ok(url) => {
            rt.block_on(async {
                prepare_server!(sqlx::MySqlConnection, &url, MY_SETUP, my_fill(rows), rows)
            });
            let sql = format!("SELECT {columns} FROM {TABLE} ORDER BY id");
            let bare =
                || rt.block_on(async { bare_read!(sqlx::MySqlConnection, &url, sql.clone()) });
            run_engine("mysql", &url, TABLE, &bare, rows, &dir);
        }
        Err(_) => println!("skipping MariaDB: DRIFTSUM_TEST_MYSQL is not set"),
    }
}
