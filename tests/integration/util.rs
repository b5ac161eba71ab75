//! What every test module shares: a scratch folder that is always removed,
//! a run of the binary, the test servers' URLs and a setup connection to
//! them, names no other test run uses, and a way to say a test was skipped
//! that shows in a plain `cargo test` run. Helpers of one topic stay in that topic's module.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `driftsum ARGS...`; its output must be UTF-8.
pub fn run(args: &[&str]) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(args)
        .output()
        .expect("run driftsum");
    Run {
        code: out.status.code().expect("driftsum exited by signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `driftsum ARGS...` as [`run`] does, with its data (heap and other
/// private writable memory: `RLIMIT_DATA`) limited to `bytes`: a run that
/// needs more fails to allocate and aborts. The limit holds for the binary
/// alone, whatever this test process or its other tests hold.
pub fn run_within(args: &[&str], bytes: u64) -> Run {
    use std::os::unix::process::CommandExt;
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_driftsum"));
    cmd.args(args);
    // Between fork and exec only async-signal-safe calls: setrlimit is one.
    unsafe {
        cmd.pre_exec(move || match libc::setrlimit(libc::RLIMIT_DATA, &limit) {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        });
    }
    let out = cmd.output().expect("run driftsum");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// A finished process's exit code and output, for assertion messages.
pub fn show(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
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

/// The first line a spawned `driftsum serve` writes to its piped stderr,
/// which says where it listens; read byte by byte, so nothing after it is
/// taken from the pipe.
pub fn first_stderr_line(child: &mut std::process::Child) -> String {
    use std::io::Read;
    let mut err = child.stderr.take().expect("stderr piped");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while err.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    child.stderr = Some(err);
    String::from_utf8_lossy(&line).into_owned()
}

/// `PREFIX_PID_N`: a name (of a schema, database, role or user on a test
/// server) that no other test, and no other test run at the same time, uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}_{}_{n}", std::process::id())
}

/// A setup connection to a test server (`C` is `sqlx::PgConnection` or
/// `sqlx::MySqlConnection`) on a small runtime of its own, closed when
/// dropped.
pub struct Admin<C: sqlx::Connection> {
    pub rt: tokio::runtime::Runtime,
    pub conn: Option<C>,
}

impl<C> Admin<C>
where
    C: sqlx::Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
{
    pub fn connect(url: &str) -> Admin<C> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let conn = rt
            .block_on(C::connect(url))
            .unwrap_or_else(|e| panic!("connecting to the test server: {e}"));
        Admin {
            rt,
            conn: Some(conn),
        }
    }

    pub fn try_exec(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        let conn = self.conn.as_mut().expect("open");
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        self.rt
            .block_on(sqlx::raw_sql(sql).execute(conn))
            .map(|_| ())
    }

    pub fn exec(&mut self, sql: &str) {
        self.try_exec(sql)
            .unwrap_or_else(|e| panic!("setting up the test server: {e}\n{sql}"));
    }
}

impl<C: sqlx::Connection> Drop for Admin<C> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = self.rt.block_on(c.close());
        }
    }
}

/// Runs setup SQL on a test server through an [`Admin`] connection of its
/// own: MySQL / MariaDB for a `mysql:` URL, else PostgreSQL.
pub fn server_exec(url: &str, sql: &str) {
    match url.starts_with("mysql") {
        true => Admin::<sqlx::MySqlConnection>::connect(url).exec(sql),
        false => Admin::<sqlx::PgConnection>::connect(url).exec(sql),
    }
}

/// A difference's row number in the key-family tables of the server tests
/// (`n integer`, `v text` set to `'v' || n`, drift appending to `v`): column
/// `n` of a missing or extra row; a changed row shows its changed column
/// `v` only, which holds `'v' || n` at the source.
pub fn row_number(d: &driftsum::reconcile::Difference, n: usize) -> i64 {
    use driftsum::core::Value;
    use driftsum::reconcile::DiffKind;
    let row = d.source.as_ref().or(d.target.as_ref()).expect("a side");
    let value = match d.kind {
        DiffKind::Changed => &row[0],
        _ => &row[n],
    };
    match value {
        Value::Int(i) => *i as i64,
        Value::Text(v) if d.kind == DiffKind::Changed => v
            .strip_prefix('v')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("v = {v:?}")),
        other => panic!("n = {other:?} in {d:?}"),
    }
}
