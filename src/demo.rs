//! The demo: a small source and replica pair with known drift of every kind,
//! stored the way a sync tool might store it (the replica keeps decimals as
//! REAL, timestamps as Unix seconds, booleans as 0/1, dates as Julian days),
//! so that the demo also shows what driftsum does *not* call drift.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

/// Why the demo could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "{0} already exists; the demo writes only new files and never replaces one: \
         remove it, or give another --dir"
    )]
    Exists(PathBuf),
    #[error("creating {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the demo databases: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Files SQLite keeps beside a database: a stale journal there would be
/// rolled into the new file.
const SIDECARS: &[&str] = &["", "-journal", "-wal", "-shm"];

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Files created by this run, deleted again unless the run completes.
struct Created(Vec<PathBuf>);

impl Drop for Created {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What the demo replica got wrong, for the README and the tests.
pub const DEMO_DRIFT: &[&str] = &[
    "orders 1500: missing from the replica",
    "orders 2001: extra in the replica",
    "orders 42: amount changed",
    "orders 777: customer changed",
    "orders 1234 → 2002: replaced one for one (counts still match)",
    "orders 900: weight off by one unit in the last place",
];

const ORDERS: &str = "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, \
    amount NUMERIC(10,2), placed_at TIMESTAMP, shipped BOOLEAN, weight REAL, note TEXT)";
const CUSTOMERS: &str =
    "CREATE TABLE customers (code TEXT PRIMARY KEY, name TEXT NOT NULL, created DATE)";

fn order(i: i64) -> (String, String, i64, bool, f64, Option<String>) {
    let customer = format!("C{:03}", i % 300);
    let amount = format!("{}.{:02}", 10 + i % 90, (i * 7) % 100);
    let placed = 1_704_067_200 + i * 3_607; // from 2024-01-01, hourly-ish
    let weight = 0.25 + (i % 17) as f64 / 3.0;
    let note = (i % 5 == 0).then(|| format!("gift wrap #{i}"));
    (customer, amount, placed, i % 3 == 0, weight, note)
}

fn iso(unix: i64) -> String {
    driftsum_core::time::format_timestamp(unix * 1_000_000).replace('T', " ")
}

/// Writes `source.db` and `replica.db` into `dir` (which must exist) and
/// returns their paths. Refuses, before writing anything, when either (or a
/// file SQLite keeps beside one) exists: the demo never replaces a file it
/// did not create. The files are created exclusively (a link planted there
/// is never followed) and removed again if writing them fails.
pub fn write_demo(dir: &Path) -> Result<(PathBuf, PathBuf), DemoError> {
    let src_path = dir.join("source.db");
    let rep_path = dir.join("replica.db");
    for p in [&src_path, &rep_path] {
        for s in SIDECARS {
            let f = with_suffix(p, s);
            if std::fs::symlink_metadata(&f).is_ok() {
                return Err(DemoError::Exists(f));
            }
        }
    }
    let mut created = Created(Vec::new());
    for p in [&src_path, &rep_path] {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => DemoError::Exists(p.clone()),
                _ => DemoError::Create {
                    path: p.clone(),
                    source,
                },
            })?;
        created.0.push(p.clone());
    }
    // SQLite takes the new, empty files for empty databases.
    let mut src = Connection::open(&src_path)?;
    let mut rep = Connection::open(&rep_path)?;
    for c in [&src, &rep] {
        // Throwaway files: a journal in memory leaves no file beside them.
        c.execute_batch(&format!(
            "PRAGMA journal_mode = MEMORY; {ORDERS}; {CUSTOMERS};"
        ))?;
    }
    let ts = src.transaction()?;
    let tr = rep.transaction()?;
    for i in 1..=2000i64 {
        let (customer, amount, placed, shipped, weight, note) = order(i);
        ts.execute(
            "INSERT INTO orders VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                i,
                customer,
                amount,
                iso(placed),
                if shipped { "true" } else { "false" },
                weight,
                note
            ],
        )?;
        if i == 1500 || i == 1234 {
            continue;
        }
        let customer = if i == 777 {
            "C999".to_string()
        } else {
            customer
        };
        let amount: f64 = if i == 42 {
            99.99
        } else {
            amount.parse().unwrap_or_default()
        };
        let weight = if i == 900 {
            f64::from_bits(weight.to_bits() + 1)
        } else {
            weight
        };
        tr.execute(
            "INSERT INTO orders VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![i, customer, amount, placed, shipped as i64, weight, note],
        )?;
    }
    for (id, src_id) in [(2001i64, 2001i64), (2002, 1234)] {
        let (customer, amount, placed, shipped, weight, note) = order(src_id);
        let amount: f64 = amount.parse().unwrap_or_default();
        tr.execute(
            "INSERT INTO orders VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![id, customer, amount, placed, shipped as i64, weight, note],
        )?;
    }
    for i in 0..300i64 {
        let code = format!("C{i:03}");
        let name = format!("Customer {i}");
        let day = 19_000 + i;
        ts.execute(
            "INSERT INTO customers VALUES (?1, ?2, ?3)",
            params![code, name, driftsum_core::time::format_date(day as i32)],
        )?;
        tr.execute(
            "INSERT INTO customers VALUES (?1, ?2, ?3)",
            params![code, name, day as f64 + 2_440_587.5],
        )?;
    }
    ts.commit()?;
    tr.commit()?;
    drop((src, rep));
    created.0.clear();
    Ok((src_path, rep_path))
}
