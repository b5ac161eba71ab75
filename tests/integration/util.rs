//! What every test module shares: a scratch folder that is always removed,
//! the test servers' URLs, and a way to say a test was skipped that shows in
//! a plain `cargo test` run. Helpers of one topic stay in that topic's module.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A scratch folder of its own under the system temporary directory, named
/// `driftsum-<tag>-<random>` and removed (with everything in it) when
/// dropped, also when the test panics.
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("driftsum-{tag}-"))
            .tempdir()
            .expect("create scratch dir");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

/// Says on stderr that the running test was skipped, and why. libtest
/// captures `print!` and `eprint!` (shown only for a failing test or under
/// `--nocapture`), but not a write to the process's stderr handle, so this
/// line shows in a plain `cargo test` run, next to the test it explains.
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "skipped {test}: {reason}");
}

/// The URL in the environment variable `var`, or `None` after saying the
/// test is skipped.
pub fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(u) if !u.trim().is_empty() => Some(u.trim().to_string()),
        _ => {
            skip(&format!("{var} is not set"));
            None
        }
    }
}

/// The PostgreSQL test server (`DRIFTSUM_TEST_POSTGRES`), if set.
pub fn postgres_url() -> Option<String> {
    server_url("DRIFTSUM_TEST_POSTGRES")
}

/// The MySQL / MariaDB test server (`DRIFTSUM_TEST_MYSQL`), if set.
pub fn mysql_url() -> Option<String> {
    server_url("DRIFTSUM_TEST_MYSQL")
}

/// The key range `(after, through]` between two keys given as key values.
pub fn key_range(
    after: Option<Vec<driftsum::core::Value>>,
    through: Vec<driftsum::core::Value>,
) -> driftsum::core::key::KeyRange {
    use driftsum::core::key;
    key::KeyRange {
        after: after.map(|a| key::encode(&a)),
        through: key::encode(&through),
    }
}
