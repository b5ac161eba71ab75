//! Stamps: what tells that a tree's data changed since it was built (a
//! SQLite file's and its WAL's lengths, times and header counters; a server
//! database's age).

use std::time::{Instant, SystemTime};

/// What tells a tree's data has changed since it was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Stamp {
    /// A SQLite file and its WAL: lengths and modification times, and the
    /// headers' change counters (a file's modification time may be coarser
    /// than the time between two commits; the counters are not).
    Files(Vec<FileStamp>),
    /// A server database: only age tells.
    Built(Instant),
}

/// One file's part of a [`Stamp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct FileStamp {
    pub(super) len: u64,
    pub(super) modified: Option<SystemTime>,
    /// The file's first bytes: the SQLite header's file change counter
    /// (offset 24), or the WAL header's checkpoint sequence and salts.
    pub(super) header: Vec<u8>,
}

impl FileStamp {
    /// The stamp of the file at `path`, its header read through `open` when
    /// given (see `State::db_file`), else through a handle opened here.
    pub(super) fn of(
        path: &std::path::Path,
        open: Option<&std::fs::File>,
        header: std::ops::Range<usize>,
    ) -> Option<FileStamp> {
        use std::io::Read;
        use std::os::unix::fs::FileExt;
        let meta = std::fs::metadata(path).ok()?;
        let mut head = vec![0u8; header.end];
        let read = match open {
            Some(f) => f.read_at(&mut head, 0),
            None => std::fs::File::open(path).and_then(|mut f| f.read(&mut head)),
        }
        .unwrap_or(0);
        head.truncate(read);
        Some(FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            header: head.get(header).map(<[u8]>::to_vec).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::FileStamp;
    use crate::source::sqlite::SqliteSource;

    /// The variable that makes [`writer_child`] a writer.
    const WRITER: &str = "DRIFTSUM_TEST_WRITER_DB";

    /// Run as a child process by [`stamps_keep_a_scans_lock`]: tries to
    /// commit a row to the file at once, and exits 3 if the file is locked.
    #[test]
    #[ignore = "a helper process, run by stamps_keep_a_scans_lock"]
    fn writer_child() {
        let Ok(path) = std::env::var(WRITER) else {
            return;
        };
        let c = rusqlite::Connection::open(path).expect("open");
        c.busy_timeout(std::time::Duration::ZERO).expect("timeout");
        match c.execute("INSERT INTO t VALUES (NULL)", []) {
            Ok(_) => std::process::exit(0),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(3)
            }
        }
    }

    /// Whether another process can commit to `path` right now.
    fn another_process_can_write(path: &std::path::Path) -> bool {
        let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "agent::server::stamp::tests::writer_child",
                "--ignored",
            ])
            .env(WRITER, path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run the writer");
        match status.code() {
            Some(0) => true,
            Some(3) => false,
            other => panic!("writer failed: {other:?}"),
        }
    }

    /// Reading a stamp while a scan holds its read transaction leaves the
    /// scan's shared lock in place, so writers stay out. A handle opened and
    /// closed to read the header (as stamps once did) drops every POSIX lock
    /// the process holds on the file: the control shows that happening.
    #[test]
    fn stamps_keep_a_scans_lock() {
        let path = std::env::temp_dir().join(format!("driftsum-stamp-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        rusqlite::Connection::open(&path)
            .and_then(|c| c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY);"))
            .expect("create");
        let kept = std::fs::File::open(&path).expect("keep a handle");
        let reader = SqliteSource::open(&path).expect("reader");
        assert!(!another_process_can_write(&path), "the reader's lock holds");
        for _ in 0..3 {
            assert!(FileStamp::of(&path, Some(&kept), 24..28).is_some());
        }
        assert!(!another_process_can_write(&path), "stamps kept the lock");
        assert!(FileStamp::of(&path, None, 24..28).is_some());
        assert!(
            another_process_can_write(&path),
            "closing a handle dropped the lock (the hazard the kept handle avoids)"
        );
        drop(reader);
        let _ = std::fs::remove_file(&path);
    }
}
