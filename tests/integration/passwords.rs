//! The password sources users already have, through the real binary against
//! the real servers: MySQL's `MYSQL_PWD` and `~/.my.cnf` `[client]` section
//! (in a temporary HOME), libpq `key=value` strings; and against a private
//! PostgreSQL cluster that checks passwords (scram-sha-256, started by the
//! test on a spare port): `PGPASSWORD`, `.pgpass` and `PGPASSFILE`, the
//! operating-system user as the default user, a wrong password refused and
//! never printed, and a config's `password_file` and `password_env`. Each
//! test makes a password-authenticated user of its own and drops it (or
//! its whole cluster) at the end.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::util::{self, show, Admin, Scratch};

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

/// A libpq `key=value` string is a source like a URL (against the shared
/// test server, which trusts its users: passwords are tested against
/// [`PrivatePg`]).
#[test]
fn postgres_conninfo_string() {
    let Some(base) = util::postgres_url() else {
        return;
    };
    let (host, port) = host_port(&base, 5432);
    let parsed = ::url::Url::parse(&base).expect("a postgres URL");
    let admin_user = parsed.username().to_string();
    let dbname = parsed.path().trim_start_matches('/').to_string();
    let table = format!("h8_pw_t_{}", std::process::id());
    let mut admin: Admin<sqlx::PgConnection> = Admin::connect(&base);
    let _ = admin.try_exec(&format!("DROP TABLE IF EXISTS {table}"));
    admin.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, v INT);
         INSERT INTO {table} VALUES (1, 10), (2, 20), (3, 30);"
    ));
    let result = std::panic::catch_unwind(|| {
        let home = Scratch::new("conninfo");
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
        let conninfo = format!("host={host} port={port} user={admin_user} dbname={dbname}");
        let out = Command::new(env!("CARGO_BIN_EXE_driftsum"))
            .args(["diff", "--source", &conninfo, "--target", &target])
            .args(["--table", &table])
            .env("HOME", home.path())
            .env_remove("PGPASSWORD")
            .env_remove("PGPASSFILE")
            .output()
            .expect("run driftsum");
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    });
    let _ = admin.try_exec(&format!("DROP TABLE IF EXISTS {table}"));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// The superuser's password in [`PrivatePg`].
const SUPER_PW: &str = "Super-h8-Secret";
/// The password of role `app` in [`PrivatePg`].
const APP_PW: &str = "App-h8-Secret";

/// A private PostgreSQL cluster that asks every TCP connection for its
/// password (scram-sha-256 on 127.0.0.1), on a spare port. Its superuser
/// is the operating-system user running the tests (libpq's default user),
/// with [`SUPER_PW`]; role `app` has [`APP_PW`]; both may read table `t`,
/// which holds what [`replica`] holds. Stopped and removed when dropped.
struct PrivatePg {
    cluster: crate::tls::Cluster,
    port: u16,
    os_user: String,
}

/// The name of the user this process runs as.
fn os_user() -> Option<String> {
    let o = Command::new("id").arg("-un").output().ok()?;
    let name = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (!name.is_empty()).then_some(name)
}

fn start_private_pg() -> Result<PrivatePg, String> {
    use crate::tls::{os_id, start_cluster, ClusterSpec};
    let os_user = os_user().ok_or("no name for the current OS user")?;
    // PostgreSQL will not run as root: then its processes run as the
    // `postgres` OS user, and the cluster's superuser is still named after
    // the user running the tests.
    // SAFETY: geteuid has no preconditions.
    let ids = match unsafe { libc::geteuid() } {
        0 => Some((
            os_id("-u", "postgres").ok_or("running as root, and no postgres OS user")?,
            os_id("-g", "postgres").ok_or("no postgres OS group")?,
        )),
        _ => None,
    };
    let cluster = start_cluster(&ClusterSpec {
        prefix: "driftsum-pw-pg",
        superuser: &os_user,
        ids,
        hba: "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
        files: &[],
        conf: "",
        settings: &["password_encryption=scram-sha-256"],
        setup: &format!(
            "ALTER ROLE \"{os_user}\" PASSWORD '{SUPER_PW}'; \
             CREATE ROLE app LOGIN PASSWORD '{APP_PW}'; \
             CREATE TABLE t (id integer PRIMARY KEY, v integer); \
             INSERT INTO t VALUES (1, 10), (2, 20), (3, 30); \
             GRANT SELECT ON t TO app;"
        ),
    })?;
    Ok(PrivatePg {
        port: cluster.port,
        cluster,
        os_user,
    })
}

/// Sets `path`'s permission bits.
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Whether `out` printed any of `secrets`.
fn leaks(out: &Output, secrets: &[&str]) -> bool {
    let all = show(out);
    secrets.iter().any(|s| all.contains(s))
}

/// PostgreSQL's password sources against a server that checks passwords:
/// none, `PGPASSWORD`, `.pgpass` in HOME and through `PGPASSFILE` (only
/// when no one else may read it), a wrong one, and the OS user as the
/// default user.
#[test]
fn postgres_password_sources_against_a_private_cluster() {
    let pg = match start_private_pg() {
        Ok(pg) => pg,
        Err(why) => {
            util::skip(&format!("no private PostgreSQL cluster: {why}"));
            return;
        }
    };
    let home = Scratch::new("pgpass");
    let target = replica(&home);
    let port = pg.port;
    let app = format!("postgres://app@127.0.0.1:{port}/postgres");
    let run = |source: &str, env: &[(&str, &str)]| diff(home.path(), source, &target, env);
    let server_log = || pg.cluster.server.log();

    // No password anywhere: refused, saying it is the password.
    let out = run(&app, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("password"), "{}", show(&out));

    // PGPASSWORD, right and wrong (the wrong one never printed).
    let out = run(&app, &[("PGPASSWORD", APP_PW)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        show(&out),
        server_log()
    );
    let out = run(&app, &[("PGPASSWORD", "Wrong-h8-Pw")]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        show(&out).contains("password authentication failed for user \"app\""),
        "{}",
        show(&out)
    );
    assert!(!leaks(&out, &["Wrong-h8-Pw", APP_PW]), "{}", show(&out));
    // A wrong one in the URL: refused, never printed either.
    let out = run(
        &format!("postgres://app:Wrong-Url-h8@127.0.0.1:{port}/postgres"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(!leaks(&out, &["Wrong-Url-h8"]), "{}", show(&out));

    // ~/.pgpass, only while no one else can read it (as libpq).
    let pgpass = home.join(".pgpass");
    std::fs::write(&pgpass, format!("127.0.0.1:{port}:*:app:{APP_PW}\n")).expect("pgpass");
    chmod(&pgpass, 0o600);
    let out = run(&app, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    chmod(&pgpass, 0o644);
    let out = run(&app, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(!leaks(&out, &[APP_PW]), "{}", show(&out));
    std::fs::remove_file(&pgpass).expect("rm");

    // PGPASSFILE naming another file; a line for another port does not match.
    let elsewhere = home.join("elsewhere.pgpass");
    std::fs::write(
        &elsewhere,
        format!("127.0.0.1:1:*:app:Wrong-h8-Pw\n127.0.0.1:{port}:postgres:app:{APP_PW}\n"),
    )
    .expect("pgpass");
    chmod(&elsewhere, 0o600);
    let file = elsewhere.display().to_string();
    let out = run(&app, &[("PGPASSFILE", &file)]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // PGPASSWORD wins over the file, as in libpq.
    let out = run(
        &app,
        &[("PGPASSFILE", &file), ("PGPASSWORD", "Wrong-h8-Pw")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));

    // No user in the URL: the OS user, as libpq (here the cluster's
    // superuser, so only its password lets it in).
    let no_user = format!("postgres://127.0.0.1:{port}/postgres");
    let out = run(&no_user, &[("PGPASSWORD", SUPER_PW)]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let out = run(&no_user, &[("PGPASSWORD", APP_PW)]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let expected = format!("password authentication failed for user \"{}\"", pg.os_user);
    assert!(show(&out).contains(&expected), "{}", show(&out));
    // PGUSER before the OS user.
    let out = run(&no_user, &[("PGPASSWORD", APP_PW), ("PGUSER", "app")]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // And a key=value string naming no user, the same way.
    let conninfo = format!("host=127.0.0.1 port={port} dbname=postgres");
    let out = run(&conninfo, &[("PGPASSWORD", SUPER_PW)]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

/// `driftsum check` with the password in a file or a variable the config
/// names: never on the command line, in the URL or in the file itself.
#[test]
fn config_password_file_and_env() {
    let pg = match start_private_pg() {
        Ok(pg) => pg,
        Err(why) => {
            util::skip(&format!("no private PostgreSQL cluster: {why}"));
            return;
        }
    };
    let dir = Scratch::new("pwconfig");
    replica(&dir);
    let config = dir.join("driftsum.toml");
    let write_config = |password: &str| {
        std::fs::write(
            &config,
            format!(
                "[source]\nurl = \"postgres://app@127.0.0.1:{}/postgres\"\n{password}\n\
                 [replica]\nurl = \"sqlite:replica.sqlite\"\n\
                 [tiers.all]\nfull = \"1h\"\n[defaults]\ntier = \"all\"\n",
                pg.port
            ),
        )
        .expect("config");
    };
    let check = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_driftsum"));
        cmd.args(["check", "--config"])
            .arg(&config)
            .env("HOME", dir.path())
            .env_remove("PGPASSWORD")
            .env_remove("PGPASSFILE")
            .env_remove("PGUSER");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run driftsum")
    };
    // A file beside the config (a relative path starts there).
    std::fs::write(dir.join("app.password"), format!("{APP_PW}\n")).expect("pw");
    write_config("password_file = \"app.password\"");
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(!leaks(&out, &[APP_PW]), "{}", show(&out));
    // A wrong one: refused by the server, never printed.
    std::fs::write(dir.join("app.password"), "Wrong-File-h8\n").expect("pw");
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        show(&out).contains("password authentication failed"),
        "{}",
        show(&out)
    );
    assert!(!leaks(&out, &["Wrong-File-h8"]), "{}", show(&out));
    // The variable the config names.
    write_config("password_env = \"H8_APP_PASSWORD\"");
    let out = check(&[("H8_APP_PASSWORD", APP_PW)]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("H8_APP_PASSWORD"), "{}", show(&out));
    // Both at once, or a password for a SQLite file: refused, saying why.
    write_config("password_env = \"H8_APP_PASSWORD\"\npassword_file = \"app.password\"");
    let out = check(&[("H8_APP_PASSWORD", APP_PW)]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("keep one"), "{}", show(&out));
}

/// The agent token named in the config file (`[source] token_file`,
/// relative to the file, or `token_env`), never on the command line: the
/// diff runs with the sides and tokens taken from the file, its JSON report
/// names both sides, the token shows nowhere, and a token for a side that
/// is no agent is refused.
#[test]
fn agent_token_from_the_config_file() {
    let home = Scratch::new("h3-token-config");
    let a = replica(&home);
    rusqlite::Connection::open(home.join("b.sqlite"))
        .and_then(|c| {
            c.execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER);
                 INSERT INTO t VALUES (1, 10), (2, 21), (3, 30);",
            )
        })
        .expect("target");
    let bin = env!("CARGO_BIN_EXE_driftsum");
    let token = "config-token-0123456789abcdef";
    let mut serve = Command::new(bin)
        .args(["serve", "--db", &a, "--listen", "127.0.0.1:0"])
        .args(["--token-env", "DS_H3_SERVE_TOKEN"])
        .env("DS_H3_SERVE_TOKEN", token)
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let line = util::first_stderr_line(&mut serve);
    let addr = line.rsplit("http://").next().unwrap_or_default().trim();
    let agent = format!("driftsum://{addr}");
    let token_path = home.join("agent.token");
    std::fs::write(&token_path, format!("{token}\n")).expect("token file");
    let run = |source: &str, env: Option<&str>, format: &str| {
        let config = home.join("driftsum.toml");
        std::fs::write(
            &config,
            format!(
                "[source]\nurl = \"{agent}\"\n{source}\n[replica]\nurl = \"sqlite:b.sqlite\"\n"
            ),
        )
        .expect("config");
        let mut cmd = Command::new(bin);
        cmd.args(["diff", "--config"])
            .arg(&config)
            .args(["--table", "t", "--format", format])
            .env_remove("DS_H3_CONFIG_TOKEN");
        if let Some(value) = env {
            cmd.env("DS_H3_CONFIG_TOKEN", value);
        }
        cmd.output().expect("diff")
    };
    let from_file = run("token_file = \"agent.token\"", None, "json");
    let from_env = run("token_env = \"DS_H3_CONFIG_TOKEN\"", Some(token), "text");
    let wrong = run(
        "token_env = \"DS_H3_CONFIG_TOKEN\"",
        Some("wrong-token-0123456789abcdef"),
        "text",
    );
    let unset = run("token_env = \"DS_H3_CONFIG_TOKEN\"", None, "text");
    let none = run("", None, "text");
    let _ = serve.kill();
    let _ = serve.wait();
    // A token for a SQLite side: refused before anything is opened.
    std::fs::write(
        home.join("bad.toml"),
        "[source]\nurl = \"sqlite:replica.sqlite\"\ntoken_file = \"agent.token\"\n\
         [replica]\nurl = \"sqlite:b.sqlite\"\n",
    )
    .expect("config");
    let not_agent = Command::new(bin)
        .args(["diff", "--config"])
        .arg(home.join("bad.toml"))
        .output()
        .expect("diff");

    assert_eq!(from_file.status.code(), Some(1), "{}", show(&from_file));
    let doc: serde_json::Value = serde_json::from_slice(&from_file.stdout).expect("JSON");
    let errors = crate::json_contract::violations(&doc);
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
    assert_eq!(doc["source"]["url"], agent.as_str(), "{doc}");
    let target = doc["target"]["url"].as_str().unwrap_or_default();
    assert!(
        target.starts_with("sqlite:") && target.ends_with("b.sqlite"),
        "{doc}"
    );
    assert_eq!(from_env.status.code(), Some(1), "{}", show(&from_env));
    assert!(show(&from_env).contains("id=2"), "{}", show(&from_env));
    for (out, says) in [
        (&wrong, "token"),
        (&unset, "DS_H3_CONFIG_TOKEN"),
        (&none, "token"),
        (&not_agent, "for an agent"),
    ] {
        assert_eq!(out.status.code(), Some(2), "{}", show(out));
        assert!(show(out).contains(says), "{}", show(out));
    }
    for out in [&from_file, &from_env, &wrong, &unset, &none, &not_agent] {
        assert!(!show(out).contains("0123456789abcdef"), "{}", show(out));
    }
}
