//! `repair --sql-out` for a PostgreSQL or MariaDB replica: the script is in
//! the server's own dialect, the real client (`psql`, `mariadb`) applies it
//! in one transaction, and a fresh `diff` then finds the sides in sync.
//! `--apply` on such a replica is refused, with nothing written.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::{self, Scratch};

fn driftsum(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(args)
        .output()
        .expect("run driftsum")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs SQL on the server (setup and cleanup only; the script goes through
/// the server's own client).
fn exec(server: &str, engine: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection as _;
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match engine {
            "postgres" => {
                let mut c = sqlx::PgConnection::connect(server).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.map(|_| ())
            }
            _ => {
                let mut c = sqlx::MySqlConnection::connect(server).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.map(|_| ())
            }
        }
    })
    .unwrap()
}

/// Applies `script` with the server's own command-line client.
fn apply_with_client(server: &str, engine: &str, script: &Path) -> Output {
    match engine {
        "postgres" => Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server, "-f"])
            .arg(script)
            .output()
            .expect("run psql"),
        _ => {
            // mysql://USER[:PASS]@HOST[:PORT]/DB
            let rest = server.split_once("://").map_or(server, |(_, r)| r);
            let (auth, place) = rest.rsplit_once('@').unwrap_or(("root", rest));
            let (user, pass) = auth.split_once(':').unwrap_or((auth, ""));
            let (hostport, db) = place.split_once('/').unwrap_or((place, ""));
            let db = db.split('?').next().unwrap_or(db);
            let (host, port) = hostport.split_once(':').unwrap_or((hostport, "3306"));
            let mut cmd = Command::new("mariadb");
            cmd.args(["-h", host, "-P", port, "-u", user, db]);
            if !pass.is_empty() {
                cmd.env("MYSQL_PWD", pass);
            }
            cmd.stdin(std::fs::File::open(script).unwrap())
                .output()
                .expect("run mariadb")
        }
    }
}

#[test]
fn postgres_replica_gets_a_script_psql_applies() {
    let Some(pg) = util::postgres_url() else {
        return;
    };
    server_replica(&pg, "postgres");
}

#[test]
fn mariadb_replica_gets_a_script_mariadb_applies() {
    let Some(my) = util::mysql_url() else {
        return;
    };
    server_replica(&my, "mysql");
}

/// A source table and a drifted replica table on the same server (a
/// compound text key, quotes, backslashes, NULLs, booleans, bytes, times),
/// repaired through a script.
fn server_replica(server: &str, engine: &str) {
    let base = util::unique("h4_sqlout");
    let (src, rep) = (format!("{base}_src"), format!("{base}_rep"));
    let ddl = |t: &str| match engine {
        "postgres" => format!(
            "CREATE TABLE {t} (region text, id bigint, name text, amount numeric(12,2), \
             ratio double precision, flag boolean, ts timestamptz(3), day date, raw bytea, \
             uid uuid, PRIMARY KEY (region, id))"
        ),
        _ => format!(
            "CREATE TABLE {t} (region varchar(20), id bigint, name text, amount decimal(12,2), \
             ratio double, flag boolean, ts datetime(3), day date, raw blob, uid char(36), \
             PRIMARY KEY (region, id))"
        ),
    };
    let (bytes, ts) = match engine {
        "postgres" => ("'\\x00ff27'::bytea", "'2024-01-02 03:04:05.678+00'"),
        _ => ("X'00ff27'", "'2024-01-02 03:04:05.678'"),
    };
    let rows = format!(
        "('eu', 1, 'plain', 1.50, 0.1, true, {ts}, '2024-01-02', {bytes}, \
           '00000000-0000-0000-0000-000000000001'),
         ('eu', 2, 'it''s \\ \"q\"', 2.00, 1e300, false, {ts}, '1999-12-31', NULL, NULL),
         ('us''a', 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
         ('us''a', 4, 'four', -4.25, -3.5, true, {ts}, '2030-06-01', {bytes}, \
           '00000000-0000-0000-0000-000000000004')"
    );
    for t in [&src, &rep] {
        exec(server, engine, &format!("DROP TABLE IF EXISTS {t}"));
        exec(server, engine, &ddl(t));
        exec(server, engine, &format!("INSERT INTO {t} VALUES {rows}"));
    }
    // Drift of every kind in the replica.
    exec(
        server,
        engine,
        &format!(
            "DELETE FROM {rep} WHERE id = 2;
             UPDATE {rep} SET name = 'wrong', flag = false, raw = NULL WHERE id = 4;
             INSERT INTO {rep} (region, id, name) VALUES ('extra', 9, 'x');"
        ),
    );
    let dir = Scratch::new("h4-sql-out");
    let script = dir.join("repair.sql");
    let pair = format!("{src}={rep}");
    let sides = ["--source", server, "--target", server, "--table", &pair];
    let refused = driftsum(&[&["repair", "--apply"], &sides[..]].concat());
    let out = driftsum(
        &[
            &["repair", "--sql-out", &script.display().to_string()],
            &sides[..],
        ]
        .concat(),
    );
    let applied = script
        .exists()
        .then(|| apply_with_client(server, engine, &script));
    let diff = driftsum(&[&["diff"], &sides[..]].concat());
    let sql = std::fs::read_to_string(&script).unwrap_or_default();
    for t in [&src, &rep] {
        exec(server, engine, &format!("DROP TABLE IF EXISTS {t}"));
    }
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert!(
        text(&refused).contains("--sql-out") && text(&refused).contains("nothing was written"),
        "{}",
        text(&refused)
    );
    assert_eq!(code(&out), 1, "{}", text(&out));
    let applied = applied.expect("a script");
    assert!(applied.status.success(), "{}\n{sql}", text(&applied));
    assert_eq!(code(&diff), 0, "{}\n{sql}", text(&diff));
    assert_eq!(sql.matches("DELETE FROM").count(), 1, "{sql}");
    assert_eq!(sql.matches("UPDATE ").count(), 1, "{sql}");
    assert_eq!(sql.matches("INSERT INTO").count(), 1, "{sql}");
}
