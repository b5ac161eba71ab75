//! The password sources users already have, through the real binary against
//! the real servers: MySQL's `MYSQL_PWD` and `~/.my.cnf` `[client]` section
//! (in a temporary HOME), PostgreSQL's `PGPASSWORD` and `.pgpass`, libpq
//! `key=value` strings. Each test makes a password-authenticated user of its
//! own and drops it at the end.

use std::path::Path;
use std::process::{Command, Output};

use sqlx::{AssertSqlSafe, Connection};

use crate::util::{self, Scratch};

/// A setup connection with its own runtime; runs statements, panics on
/// failure unless told to try.
struct Admin<C: Connection> {
    rt: tokio::runtime::Runtime,
    conn: C,
}

impl<C: Connection> Admin<C>
where
    for<'c> &'c mut C: sqlx::Executor<'c>,
{
    fn connect(url: &str) -> Admin<C> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let conn = rt
            .block_on(C::connect(url))
            .unwrap_or_else(|e| panic!("connecting to the test server: {e}"));
        Admin { rt, conn }
    }

    fn try_exec(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        self.rt
            .block_on(sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut self.conn))
            .map(|_| ())
    }

    fn exec(&mut self, sql: &str) {
        self.try_exec(sql)
            .unwrap_or_else(|e| panic!("setup failed: {e}\n{sql}"));
    }
}

/// A SQLite replica holding `t(id, v)` with rows (1,10), (2,20), (3,30).
fn replica(dir: &Scratch) -> String {
    let path = dir.join("replica.sqlite");
    let conn = rusqlite::Connection::open(&path).expect("create replica");
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER);
         INSERT INTO t VALUES (1, 10), (2, 20), (3, 30);",
    )
    .expect("fill replica");
    format!("sqlite:{}", path.display())
}

/// `driftsum diff --source SOURCE --target TARGET --table t` with `HOME`
/// set to `home` and the password variables cleared, then `env` set.
fn diff(home: &Path, source: &str, target: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_driftsum"));
    cmd.args([
        "diff", "--source", source, "--target", target, "--table", "t",
    ])
    .env("HOME", home)
    .env_remove("MYSQL_PWD")
    .env_remove("PGPASSWORD")
    .env_remove("PGPASSFILE")
    .env_remove("PGUSER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run driftsum")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The host and port of a server URL.
fn host_port(url: &str, default_port: u16) -> (String, u16) {
    let u = ::url::Url::parse(url).expect("a server URL");
    (
        u.host_str().unwrap_or("127.0.0.1").to_string(),
        u.port().unwrap_or(default_port),
    )
}

#[test]
fn mysql_pwd_and_my_cnf_are_used() {
    let Some(base) = util::mysql_url() else {
        return;
    };
    let (host, port) = host_port(&base, 3306);
    let id = std::process::id();
    let db = format!("ds_pw_{id}");
    let user = format!("ds_pw_test_{id}");
    let pw = format!("Pw-{id}-Secret");
    let mut admin: Admin<sqlx::MySqlConnection> = Admin::connect(&base);
    let _ = admin.try_exec(&format!("DROP USER IF EXISTS '{user}'@'%'"));
    admin.exec(&format!("CREATE DATABASE `{db}`"));
    admin.exec(&format!(
        "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v INT);
         INSERT INTO `{db}`.t VALUES (1, 10), (2, 20), (3, 30);
         CREATE USER '{user}'@'%' IDENTIFIED BY '{pw}';
         GRANT SELECT ON `{db}`.* TO '{user}'@'%';"
    ));
    let result = std::panic::catch_unwind(|| {
        let home = Scratch::new("mycnf");
        let target = replica(&home);
        let cnf = home.join(".my.cnf");
        let no_pw = format!("mysql://{user}@{host}:{port}/{db}");

        // No password anywhere: refused, and said so.
        let out = diff(home.path(), &no_pw, &target, &[]);
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        assert!(show(&out).contains("denied"), "{}", show(&out));

        // MYSQL_PWD.
        let out = diff(home.path(), &no_pw, &target, &[("MYSQL_PWD", &pw)]);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));

        // ~/.my.cnf [client]: user and password, the URL naming neither.
        std::fs::write(
            &cnf,
            format!("[mysqld]\nuser=nobody\n\n[client]\nuser = {user}\npassword = \"{pw}\"\n"),
        )
        .unwrap();
        let out = diff(
            home.path(),
            &format!("mysql://{host}:{port}/{db}"),
            &target,
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));

        // The option file's password wins over MYSQL_PWD, as in the client.
        let out = diff(home.path(), &no_pw, &target, &[("MYSQL_PWD", "wrong-one")]);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));

        // A URL's own password wins over both.
        let out = diff(
            home.path(),
            &format!("mysql://{user}:Wrong-Url-Pw@{host}:{port}/{db}"),
            &target,
            &[("MYSQL_PWD", &pw)],
        );
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        assert!(!show(&out).contains("Wrong-Url-Pw"), "{}", show(&out));

        // Host and port from the option file too.
        std::fs::write(
            &cnf,
            format!("[client]\nuser={user}\npassword='{pw}'\nhost={host}\nport={port}\n"),
        )
        .unwrap();
        let out = diff(home.path(), &format!("mysql:///{db}"), &target, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));

        // A wrong password in the option file: refused, never printed.
        std::fs::write(&cnf, "[client]\npassword=Wrong-Cnf-Pw\n").unwrap();
        let out = diff(home.path(), &no_pw, &target, &[]);
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        assert!(!show(&out).contains("Wrong-Cnf-Pw"), "{}", show(&out));
    });
    let _ = admin.try_exec(&format!("DROP DATABASE IF EXISTS `{db}`"));
    let _ = admin.try_exec(&format!("DROP USER IF EXISTS '{user}'@'%'"));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// `serve --token-env` and `diff --token-env`: the agent token from the
/// environment, never on the command line; a wrong one is refused, and a
/// token that is too short is refused before listening.
#[test]
fn agent_token_from_the_environment() {
    use std::io::Read;
    let home = Scratch::new("token-env");
    let a = replica(&home);
    let bpath = home.join("b.sqlite");
    rusqlite::Connection::open(&bpath)
        .and_then(|c| {
            c.execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER);
                 INSERT INTO t VALUES (1, 10), (2, 21), (3, 30);",
            )
        })
        .expect("target");
    let b = format!("sqlite:{}", bpath.display());
    let bin = env!("CARGO_BIN_EXE_driftsum");
    let token = "env-token-0123456789abcdef";

    let short = Command::new(bin)
        .args(["serve", "--db", &a, "--listen", "127.0.0.1:0"])
        .args(["--token-env", "DS_TEST_AGENT_TOKEN"])
        .env("DS_TEST_AGENT_TOKEN", "short")
        .output()
        .expect("serve");
    assert_eq!(short.status.code(), Some(2), "{}", show(&short));
    assert!(!show(&short).contains("short\n"), "{}", show(&short));

    let mut serve = Command::new(bin)
        .args(["serve", "--db", &a, "--listen", "127.0.0.1:0"])
        .args(["--token-env", "DS_TEST_AGENT_TOKEN"])
        .env("DS_TEST_AGENT_TOKEN", token)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let mut err = serve.stderr.take().expect("stderr");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while err.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    let addr = line.rsplit("http://").next().unwrap_or_default().trim();
    let source = format!("driftsum://{addr}");
    let diff = |value: &str| {
        Command::new(bin)
            .args(["diff", "--source", &source, "--target", &b])
            .args(["--token-env", "DS_TEST_DIFF_TOKEN"])
            .env("DS_TEST_DIFF_TOKEN", value)
            .output()
            .expect("diff")
    };
    let right = diff(token);
    let wrong = diff("wrong-token-0123456789abcdef");
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(right.status.code(), Some(1), "{line}: {}", show(&right));
    assert!(
        String::from_utf8_lossy(&right.stdout).contains("id=2"),
        "{}",
        show(&right)
    );
    assert_eq!(wrong.status.code(), Some(2), "{}", show(&wrong));
}

/// A libpq `key=value` string is a source like a URL; a role with a
/// password is reached through `PGPASSWORD` and `.pgpass` (when the server
/// checks passwords over TCP; otherwise that part says it is skipped).
#[test]
fn postgres_conninfo_pgpassword_and_pgpass() {
    let Some(base) = util::postgres_url() else {
        return;
    };
    let (host, port) = host_port(&base, 5432);
    let parsed = ::url::Url::parse(&base).expect("a postgres URL");
    let admin_user = parsed.username().to_string();
    let dbname = parsed.path().trim_start_matches('/').to_string();
    let id = std::process::id();
    let table = format!("ds_pw_t_{id}");
    let role = format!("ds_pw_role_{id}");
    let pw = format!("Pg-{id}-Secret");
    let mut admin: Admin<sqlx::PgConnection> = Admin::connect(&base);
    let _ = admin.try_exec(&format!("DROP TABLE IF EXISTS {table}"));
    let _ = admin.try_exec(&format!("DROP ROLE IF EXISTS {role}"));
    admin.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, v INT);
         INSERT INTO {table} VALUES (1, 10), (2, 20), (3, 30);
         CREATE ROLE {role} LOGIN PASSWORD '{pw}';
         GRANT SELECT ON {table} TO {role};"
    ));
    let result = std::panic::catch_unwind(|| {
        let home = Scratch::new("pgpass");
        let path = home.join("r.sqlite");
        rusqlite::Connection::open(&path)
            .and_then(|c| {
                c.execute_batch(&format!(
                    "CREATE TABLE {table} (id INTEGER PRIMARY KEY, v INTEGER);
                     INSERT INTO {table} VALUES (1, 10), (2, 20), (3, 30);"
                ))
            })
            .expect("replica");
        let target = format!("sqlite:{}", path.display());
        let run = |source: &str, env: &[(&str, &str)]| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_driftsum"));
            cmd.args(["diff", "--source", source, "--target", &target])
                .args(["--table", &table])
                .env("HOME", home.path())
                .env_remove("PGPASSWORD")
                .env_remove("PGPASSFILE")
                .env_remove("PGUSER");
            for (k, v) in env {
                cmd.env(k, v);
            }
            cmd.output().expect("run driftsum")
        };

        // A key=value string, as the admin user.
        let conninfo = format!("host={host} port={port} user={admin_user} dbname={dbname}");
        let out = run(&conninfo, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));

        // Does the server check passwords over TCP at all?
        let wrong = format!("postgres://{role}:not-it@{host}:{port}/{dbname}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let trusts = rt.block_on(sqlx::PgConnection::connect(&wrong)).is_ok();
        let as_role = format!("host={host} port={port} user={role} dbname={dbname}");
        if trusts {
            util::skip(
                "the server trusts every connection over TCP, so PGPASSWORD and .pgpass \
                 cannot be told from no password (the key=value string was tested)",
            );
            return;
        }
        let out = run(&as_role, &[]);
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        let out = run(&as_role, &[("PGPASSWORD", &pw)]);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let pgpass = home.join(".pgpass");
        std::fs::write(&pgpass, format!("{host}:{port}:*:{role}:{pw}\n")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let out = run(&as_role, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let out = run(&format!("{as_role} password=Wrong-Pw"), &[]);
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        assert!(!show(&out).contains("Wrong-Pw"), "{}", show(&out));
    });
    let _ = admin.try_exec(&format!("DROP TABLE IF EXISTS {table}"));
    let _ = admin.try_exec(&format!("DROP ROLE IF EXISTS {role}"));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
