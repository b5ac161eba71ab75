//! A connection to the test server (`DRIFTSUM_TEST_POSTGRES`) for the unit
//! tests that write their own tables, so each test does not open one by
//! hand.

use std::cell::RefCell;

use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;

use crate::source::server;

/// The test server's URL and a connection to it on its own runtime.
pub(crate) struct TestWriter {
    pub(crate) url: String,
    rt: tokio::runtime::Runtime,
    // Borrowed mutably inside `exec(&self)`, so a `proptest!` body (a `Fn`)
    // can write too.
    conn: RefCell<PgConnection>,
}

impl TestWriter {
    /// Connects, or answers `None` (saying so) when the variable is unset:
    /// the test is then skipped.
    pub(crate) fn connect() -> Option<TestWriter> {
        let Ok(url) = std::env::var("DRIFTSUM_TEST_POSTGRES") else {
            eprintln!("skipped: DRIFTSUM_TEST_POSTGRES is not set");
            return None;
        };
        let rt = server::runtime().expect("runtime");
        let conn = rt
            .block_on(<PgConnection as sqlx::Connection>::connect(&url))
            .expect("connect to the test server");
        Some(TestWriter {
            url,
            rt,
            conn: RefCell::new(conn),
        })
    }

    /// Runs `sql` (one statement or several), failing the test if it fails.
    pub(crate) fn exec(&self, sql: String) {
        self.rt
            .block_on(sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *self.conn.borrow_mut()))
            .expect("statement");
    }
}
