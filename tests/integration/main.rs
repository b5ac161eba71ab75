//! driftsum's integration tests: one test program (so the library, sqlx and
//! rusqlite are linked once), one module per topic. Every test uses real
//! components: SQLite files written with rusqlite, the compiled `driftsum`
//! binary, and real PostgreSQL and MySQL servers when `DRIFTSUM_TEST_POSTGRES`
//! / `DRIFTSUM_TEST_MYSQL` are set (a server test without its variable says
//! so on stderr and passes).
//!
//! * [`cli`]: whole-command tests of `driftsum diff` and `demo`, one file
//!   per section of what a user sees.
//! * [`config`]: `--config` files.
//! * [`copy_batch`]: the vendored sqlx-postgres patch that joins buffered
//!   COPY messages, against a model of the framing.
//! * [`filters`]: row filters (per-side SQL, typed ranges, ages).
//! * [`tree_file`]: `driftsum build` and tree files.
//! * [`agent`]: `driftsum serve` and diffs through agents.
//! * [`alerts`]: `[[alerts]]`: incidents to a real HTTP receiver and command.
//! * [`bench_cmd`]: `driftsum bench` at tiny sizes.
//! * [`check`]: `driftsum check` and `driftsum history` with a real run history.
//! * [`history_pg`]: the run history in PostgreSQL, shared by checkers.
//! * [`json_contract`]: every JSON output against the published schema.
//! * [`logging`]: `check`'s log lines, text and JSON, and no password in them.
//! * [`watch`]: the metrics textfile, `driftsum watch`, its signals and
//!   `/metrics`.
//! * [`dense`]: drift spanning more than a chunk, compared a piece at a time.
//! * [`diff_reference`]: property tests against a naive reference diff.
//! * [`postgres`], [`mysql`]: the server connectors.
//! * [`pairing`]: tables paired by name without `--table`, SQLite's way.
//! * [`repair`]: `driftsum repair` (plan, script, apply, safety rails).
//! * [`auto_repair`]: `check`'s `repair = "auto"`; [`repair_server`]: scripts
//!   for PostgreSQL and MariaDB replicas, applied with their own clients.
//! * [`stored_forms`]: dates and times stored as text in a replica, in
//!   writers' forms and in forms no writer uses, as keys and as values.
//! * [`tls`]: TLS to private PostgreSQL and MariaDB servers with a CA the test
//!   makes, and the agent over HTTPS.
//! * [`dashboard`]: the dashboard in headless Chromium through WebDriver.
//! * [`docs`]: the README's and docs/'s links lead to files.
//! * [`imports`]: no import cycle between the source files or modules.
//! * [`util`]: the scratch folder, server URLs and skip notes they share.
//!
//! Proptest keeps its regression seeds for `tests/integration/<mod>.rs` in
//! `tests/proptest-regressions/<mod>.txt` (it files them beside the folder
//! that holds `main.rs`).

mod util;

mod agent;
mod alerts;
mod auto_repair;
mod bench_cmd;
mod check;
mod cli;
mod config;
mod copy_batch;
mod dashboard;
mod dense;
mod diff_reference;
mod docs;
mod filters;
mod history_pg;
mod imports;
mod json_contract;
mod logging;
mod mistakes;
mod mysql;
mod pairing;
mod passwords;
mod postgres;
mod repair;
mod repair_keys;
mod repair_server;
mod stored_forms;
mod tls;
mod tree_file;
mod watch;
