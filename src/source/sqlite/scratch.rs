//! Scratch SQLite files for the library's unit tests (compiled only for
//! tests).

use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh SQLite file, removed on drop.
pub(crate) struct Db(pub std::path::PathBuf);

impl Db {
    pub(crate) fn new(name: &str) -> Db {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "driftsum-scratch-{}-{name}-{}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        Db(path)
    }

    /// A fresh file holding what `sql` makes.
    pub(crate) fn with(name: &str, sql: &str) -> Db {
        let db = Db::new(name);
        rusqlite::Connection::open(&db.0)
            .and_then(|c| c.execute_batch(sql))
            .expect("fill");
        db
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}
