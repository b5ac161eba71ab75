//! TLS with certificates the test makes (rcgen: a CA, a server certificate
//! for `localhost` signed by it, and a second, unrelated CA): a private
//! PostgreSQL cluster and a private MariaDB server started with TLS on spare
//! ports, and a real `driftsum serve` over HTTPS. Every case runs the real
//! binary and checks what it accepts and what it refuses.
//!
//! The private servers accept clear-text connections only for one user, so
//! a connection that succeeds as another user proves it was encrypted. A
//! server that cannot be started here is reported on stderr and its test
//! returns.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{self, show};

/// The certificates and keys, as PEM files in a directory of their own.
struct Pki {
    dir: tempfile::TempDir,
    ca: PathBuf,
    wrong_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn ca(name: &str) -> (rcgen::CertificateParams, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    (params, key)
}

fn pki() -> Pki {
    let dir = tempfile::Builder::new()
        .prefix("driftsum-tls-pki")
        .tempdir()
        .expect("tempdir");
    let (ca_params, ca_key) = ca("driftsum test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let (wrong_params, wrong_key) = ca("some other CA");
    let wrong = wrong_params.self_signed(&wrong_key).expect("wrong ca");
    let key = rcgen::KeyPair::generate().expect("server key");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &issuer).expect("server cert");
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write pem");
        p
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        wrong_ca: write("wrong-ca.pem", wrong.pem()),
        cert: write("server.crt", cert.pem()),
        key: write("server.key", key.serialize_pem()),
        dir,
    }
}

pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Runs the binary with no libpq TLS settings from the environment and a
/// HOME of its own (no `~/.postgresql/root.crt`).
fn driftsum(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftsum"))
        .args(args)
        .env("HOME", home)
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .env_remove("PGPASSWORD")
        .output()
        .expect("run driftsum")
}
/// A SQLite replica holding `t(id, name)` = (1,'a'), (2,'b').
fn replica(dir: &Path) -> String {
    let path = dir.join("replica.db");
    let c = rusqlite::Connection::open(&path).expect("sqlite");
    c.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO t VALUES (1, 'a'), (2, 'b');",
    )
    .expect("replica");
    format!("sqlite:{}", path.display())
}

/// A server process, stopped (signal, then kill) when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) stop_signal: i32,
    pub(crate) log: PathBuf,
}

impl Server {
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: signals our own child, by its id.
        unsafe { libc::kill(pid, self.stop_signal) };
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Diffs of a server's table `t` against a SQLite replica holding the same
/// rows, each expected to get in (exit 0) or to be refused (exit 2, never a
/// word of "in sync", and saying why).
struct Cases<'a> {
    home: &'a Path,
    target: String,
    server: &'a Server,
}

impl<'a> Cases<'a> {
    fn new(home: &'a Path, server: &'a Server) -> Cases<'a> {
        Cases {
            home,
            target: replica(home),
            server,
        }
    }

    fn diff(&self, source: &str) -> Output {
        let target = self.target.as_str();
        let args = [
            "diff", "--source", source, "--target", target, "--table", "t",
        ];
        driftsum(self.home, &args)
    }

    fn accepted(&self, source: &str) {
        let o = self.diff(source);
        let log = self.server.log();
        assert_eq!(o.status.code(), Some(0), "{source}: {}\n{log}", show(&o));
    }

    fn refused(&self, source: &str, because: &[&str]) {
        let o = self.diff(source);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{source}: {}", show(&o));
        assert!(!err.contains("in sync"), "{source}: {err}");
        for b in because {
            assert!(err.contains(b), "{source}: {err:?} lacks {b:?}");
        }
    }
}

fn skip(what: &str, why: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr(), "tls: skipping {what}: {why}");
}

/// A numeric id of an OS user (`id -u NAME` / `id -g NAME`).
pub(crate) fn os_id(flag: &str, user: &str) -> Option<u32> {
    let o = Command::new("id").args([flag, user]).output().ok()?;
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}

pub(crate) fn pg_bin(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    dirs.sort();
    dirs.reverse();
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// A private PostgreSQL cluster of a test on a spare port: its server and
/// its folder (data, socket, log), stopped and removed when dropped.
pub(crate) struct Cluster {
    pub(crate) server: Server,
    pub(crate) port: u16,
    pub(crate) dir: tempfile::TempDir,
}

/// What the tests' private clusters differ in.
pub(crate) struct ClusterSpec<'a> {
    /// The prefix of the cluster's temporary folder.
    pub(crate) prefix: &'a str,
    /// The cluster's superuser; `setup` runs as it over the socket.
    pub(crate) superuser: &'a str,
    /// The OS user and group the server runs as (`None`: this process's).
    pub(crate) ids: Option<(u32, u32)>,
    /// The whole of `pg_hba.conf`.
    pub(crate) hba: &'a str,
    /// Files copied into the folder (from, name); a key is made 0600.
    pub(crate) files: &'a [(&'a Path, &'a str)],
    /// Appended to `postgresql.conf`; `{dir}` stands for the folder.
    pub(crate) conf: &'a str,
    /// `-c NAME=VALUE` settings beside the listen address.
    pub(crate) settings: &'a [&'a str],
    /// SQL run once the server answers.
    pub(crate) setup: &'a str,
}

/// Starts a private cluster listening on 127.0.0.1 (initdb, the spec's
/// files and settings, wait until it answers, run the setup).
pub(crate) fn start_cluster(spec: &ClusterSpec) -> Result<Cluster, String> {
    let initdb = pg_bin("initdb").ok_or("no initdb")?;
    let postgres = pg_bin("postgres").ok_or("no postgres binary")?;
    let psql = pg_bin("psql").ok_or("no psql")?;
    let dir = tempfile::Builder::new()
        .prefix(spec.prefix)
        .tempdir()
        .map_err(|e| e.to_string())?;
    let own = |p: &Path| match spec.ids {
        Some((uid, gid)) => std::os::unix::fs::chown(p, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", p.display())),
        None => Ok(()),
    };
    let as_server = |program: &Path| {
        let mut c = Command::new(program);
        if let Some((uid, gid)) = spec.ids {
            c.uid(uid).gid(gid);
        }
        c.current_dir(dir.path());
        c
    };
    own(dir.path())?;
    for (from, name) in spec.files {
        let to = dir.path().join(name);
        std::fs::copy(from, &to).map_err(|e| e.to_string())?;
        own(&to)?;
        if name.ends_with(".key") {
            std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .map_err(|e| e.to_string())?;
        }
    }
    let data = dir.path().join("data");
    let out = as_server(&initdb)
        .arg("-D")
        .arg(&data)
        .args([
            "-A",
            "trust",
            "-U",
            spec.superuser,
            "--no-locale",
            "-E",
            "UTF8",
        ])
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!("initdb failed: {}", show(&out)));
    }
    let hba = data.join("pg_hba.conf");
    std::fs::write(&hba, spec.hba).map_err(|e| e.to_string())?;
    own(&hba)?;
    // In the configuration file, not on the command line, so that a test
    // can change it later (ALTER SYSTEM and a reload).
    let mut conf = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .map_err(|e| e.to_string())?;
    let folder = dir.path().display().to_string();
    write!(conf, "\n{}\n", spec.conf.replace("{dir}", &folder)).map_err(|e| e.to_string())?;
    let port = free_port();
    let log = dir.path().join("postgres.log");
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut start = as_server(&postgres);
    start
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(dir.path())
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]);
    for setting in spec.settings {
        start.args(["-c", setting]);
    }
    let child = start
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("postgres: {e}"))?;
    let server = Server {
        child,
        stop_signal: libc::SIGINT,
        log,
    };
    // Over the socket, which trusts: the setup needs no password.
    let sql = |stmts: &str| {
        as_server(&psql)
            .arg("-h")
            .arg(dir.path())
            .args([
                "-p",
                &port.to_string(),
                "-U",
                spec.superuser,
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-Atqc", stmts])
            .output()
    };
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        match sql("SELECT 1") {
            Ok(o) if o.status.success() => break,
            _ if Instant::now() > until => {
                return Err(format!("postgres did not start: {}", server.log()));
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    let out = sql(spec.setup).map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("setting up: {}", show(&out)));
    }
    Ok(Cluster { server, port, dir })
}

/// A private PostgreSQL cluster with TLS on a spare port: user `postgres`
/// only over TLS, user `plain` only in clear text; database `postgres`
/// holding `t` as [`replica`] does.
fn start_pg(pki: &Pki) -> Result<Cluster, String> {
    let uid = os_id("-u", "postgres").ok_or("no postgres OS user")?;
    let gid = os_id("-g", "postgres").ok_or("no postgres OS group")?;
    start_cluster(&ClusterSpec {
        prefix: "driftsum-tls-pg",
        superuser: "postgres",
        ids: Some((uid, gid)),
        hba: "local all all trust\n\
              hostnossl all plain 127.0.0.1/32 trust\n\
              hostnossl all plain ::1/128 trust\n\
              hostssl all postgres 127.0.0.1/32 trust\n\
              hostssl all postgres ::1/128 trust\n",
        files: &[(&pki.cert, "server.crt"), (&pki.key, "server.key")],
        conf: "ssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'",
        settings: &[],
        setup: "CREATE ROLE plain LOGIN; \
                CREATE TABLE t (id integer PRIMARY KEY, name text); \
                INSERT INTO t VALUES (1, 'a'), (2, 'b'); \
                GRANT SELECT ON t TO plain;",
    })
}

/// libpq's modes against a server with TLS (and then without).
#[test]
fn postgres_sslmodes() {
    let pki = pki();
    let pg = match start_pg(&pki) {
        Ok(pg) => pg,
        Err(e) => return skip("the PostgreSQL cases", e),
    };
    let home = pki.dir.path();
    let ca = pki.ca.display().to_string();
    let wrong = pki.wrong_ca.display().to_string();
    let url = |user: &str, host: &str, query: &str| {
        format!("postgres://{user}@{host}:{}/postgres?{query}", pg.port)
    };
    let cases = Cases::new(home, &pg.server);
    let accepted = |source: String| cases.accepted(&source);
    let refused = |source: String, because: &[&str]| cases.refused(&source, because);
    // `postgres` gets in only over TLS: each of these was encrypted.
    accepted(url(
        "postgres",
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ));
    accepted(url(
        "postgres",
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ));
    accepted(url("postgres", "127.0.0.1", "sslmode=require"));
    // The default (prefer) takes TLS when the server offers it.
    accepted(url("postgres", "127.0.0.1", ""));
    // A CA that did not sign the server's certificate, a host name the
    // certificate does not hold, and `require` with a CA named (libpq's
    // rule: then the CA is checked).
    refused(
        url(
            "postgres",
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={wrong}"),
        ),
        &["not signed by the CA"],
    );
    refused(
        url(
            "postgres",
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        &["does not name the host"],
    );
    refused(
        url(
            "postgres",
            "127.0.0.1",
            &format!("sslmode=require&sslrootcert={wrong}"),
        ),
        &["not signed by the CA"],
    );
    refused(
        url(
            "postgres",
            "localhost",
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        ),
        &["sslrootcert /nonexistent/ca.pem: cannot read"],
    );
    // `disable` is clear text: refused to `postgres`, accepted for `plain`.
    refused(
        url("postgres", "127.0.0.1", "sslmode=disable"),
        &["pg_hba.conf"],
    );
    accepted(url("plain", "127.0.0.1", "sslmode=disable"));

    // The same server with TLS turned off: `require` and stricter refuse it.
    let psql = pg_bin("psql").expect("psql");
    let off = Command::new(psql)
        .arg("-h")
        .arg(pg.dir.path())
        .args([
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-Atq", "-c", "ALTER SYSTEM SET ssl = off"])
        .args(["-c", "SELECT pg_reload_conf()"])
        .output()
        .expect("psql");
    assert!(off.status.success(), "{}", show(&off));
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let o = cases.diff(&url("postgres", "127.0.0.1", "sslmode=require"));
        if String::from_utf8_lossy(&o.stderr).contains("server does not support TLS") {
            assert_eq!(o.status.code(), Some(2), "{}", show(&o));
            assert!(String::from_utf8_lossy(&o.stderr).contains("refuse a server without TLS"));
            break;
        }
        assert!(Instant::now() < until, "ssl=off never took: {}", show(&o));
        std::thread::sleep(Duration::from_millis(200));
    }
    refused(
        url(
            "postgres",
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        &["server does not support TLS"],
    );
    accepted(url("plain", "127.0.0.1", "sslmode=prefer"));
}

/// A private MariaDB with TLS on a spare port: `tls_only` is `REQUIRE
/// SSL`, `plain` is not; database `tlsdb` holds `t` as [`replica`] does.
struct Maria {
    server: Server,
    port: u16,
    _dir: tempfile::TempDir,
}

fn start_mariadb(pki: &Pki) -> Result<Maria, String> {
    let find = |names: &[&str]| {
        names.iter().find_map(|n| {
            ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"]
                .iter()
                .map(|d| Path::new(d).join(n))
                .find(|p| p.is_file())
        })
    };
    let install =
        find(&["mariadb-install-db", "mysql_install_db"]).ok_or("no mariadb-install-db")?;
    let mariadbd = find(&["mariadbd", "mysqld"]).ok_or("no mariadbd")?;
    let dir = tempfile::Builder::new()
        .prefix("driftsum-tls-maria")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let data = dir.path().join("data");
    let out = Command::new(&install)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--user=root", "--auth-root-authentication-method=normal"])
        .output()
        .map_err(|e| format!("install-db: {e}"))?;
    if !out.status.success() {
        return Err(format!("install-db failed: {}", show(&out)));
    }
    let init = dir.path().join("init.sql");
    std::fs::write(
        &init,
        "CREATE DATABASE tlsdb;\n\
         CREATE USER 'tls_only'@'%' REQUIRE SSL;\n\
         GRANT ALL ON tlsdb.* TO 'tls_only'@'%';\n\
         CREATE USER 'plain'@'%';\n\
         GRANT ALL ON tlsdb.* TO 'plain'@'%';\n\
         CREATE TABLE tlsdb.t (id INT PRIMARY KEY, name VARCHAR(20));\n\
         INSERT INTO tlsdb.t VALUES (1, 'a'), (2, 'b');\n",
    )
    .map_err(|e| e.to_string())?;
    let port = free_port();
    let log = dir.path().join("mariadb.log");
    let path = |flag: &str, p: &Path| format!("--{flag}={}", p.display());
    let child = Command::new(&mariadbd)
        .arg("--no-defaults")
        .arg(path("datadir", &data))
        .args([
            "--user=root",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
        ])
        .arg(format!("--port={port}"))
        .arg(path("socket", &dir.path().join("sock")))
        .arg(path("pid-file", &dir.path().join("pid")))
        .arg(path("log-error", &log))
        .arg(path("init-file", &init))
        .arg(path("ssl-cert", &pki.cert))
        .arg(path("ssl-key", &pki.key))
        .arg(path("ssl-ca", &pki.ca))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("mariadbd: {e}"))?;
    let server = Server {
        child,
        stop_signal: libc::SIGTERM,
        log,
    };
    // Up once the init file has run and the port answers.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let log = server.log();
        if log.contains("ready for connections") {
            break;
        }
        if Instant::now() > until || log.contains("[ERROR] Aborting") {
            return Err(format!("mariadbd did not start: {log}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(Maria {
        server,
        port,
        _dir: dir,
    })
}

/// MySQL's modes against a MariaDB with TLS, and `REQUIRED` against the
/// shared one, which has none.
#[test]
fn mysql_ssl_modes() {
    let pki = pki();
    let maria = match start_mariadb(&pki) {
        Ok(m) => m,
        Err(e) => return skip("the MariaDB cases", e),
    };
    let home = pki.dir.path();
    let ca = pki.ca.display().to_string();
    let wrong = pki.wrong_ca.display().to_string();
    let url = |user: &str, host: &str, query: &str| {
        format!("mysql://{user}@{host}:{}/tlsdb?{query}", maria.port)
    };
    let cases = Cases::new(home, &maria.server);
    let accepted = |source: String| cases.accepted(&source);
    let refused = |source: String, because: &[&str]| cases.refused(&source, because);
    // `tls_only` gets in only over TLS: each of these was encrypted.
    accepted(url(
        "tls_only",
        "localhost",
        &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
    ));
    accepted(url(
        "tls_only",
        "127.0.0.1",
        &format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"),
    ));
    accepted(url("tls_only", "127.0.0.1", &format!("ssl-ca={ca}")));
    accepted(url("tls_only", "127.0.0.1", "ssl-mode=REQUIRED"));
    accepted(url("tls_only", "127.0.0.1", ""));
    refused(
        url(
            "tls_only",
            "localhost",
            &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={wrong}"),
        ),
        &["not signed by the CA"],
    );
    refused(
        url(
            "tls_only",
            "127.0.0.1",
            &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
        ),
        &["does not name the host"],
    );
    // A CA named with no mode, or with REQUIRED, is checked.
    refused(
        url("tls_only", "127.0.0.1", &format!("ssl-ca={wrong}")),
        &["not signed by the CA"],
    );
    refused(
        url(
            "tls_only",
            "127.0.0.1",
            &format!("ssl-mode=REQUIRED&ssl-ca={wrong}"),
        ),
        &["not signed by the CA"],
    );
    // DISABLED is clear text: refused to `tls_only`, accepted for `plain`.
    refused(
        url("tls_only", "127.0.0.1", "ssl-mode=DISABLED"),
        &["Access denied"],
    );
    accepted(url("plain", "127.0.0.1", "ssl-mode=DISABLED"));

    match std::env::var("DRIFTSUM_TEST_MYSQL") {
        Ok(shared) => {
            let sep = if shared.contains('?') { '&' } else { '?' };
            refused(
                format!("{shared}{sep}ssl-mode=REQUIRED"),
                &["server does not support TLS", "refuse a server without TLS"],
            );
        }
        Err(_) => skip(
            "REQUIRED against the shared MariaDB",
            "DRIFTSUM_TEST_MYSQL is not set",
        ),
    }
}

/// `driftsum serve` over HTTPS: a comparer with the right CA diffs through
/// it; with another CA, or in clear text, it is refused. Serve refuses a
/// non-loopback address in clear text.
#[test]
fn the_agent_speaks_https() {
    let pki = pki();
    let home = pki.dir.path();
    let target = replica(home);
    let source = home.join("source.db");
    std::fs::copy(target.trim_start_matches("sqlite:"), &source).expect("copy");
    let token = home.join("token");
    std::fs::write(&token, "0123456789abcdef0123456789abcdef\n").expect("token");
    let bin = env!("CARGO_BIN_EXE_driftsum");
    let db = format!("sqlite:{}", source.display());
    let tok = token.display().to_string();

    let refused = driftsum(
        home,
        &[
            "serve",
            "--db",
            &db,
            "--listen",
            "0.0.0.0:0",
            "--token-file",
            &tok,
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", show(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("without TLS") && err.contains("--insecure-plaintext"),
        "{err}"
    );

    let mut serve = Command::new(bin)
        .args([
            "serve",
            "--db",
            &db,
            "--listen",
            "127.0.0.1:0",
            "--token-file",
            &tok,
        ])
        .arg("--tls-cert")
        .arg(&pki.cert)
        .arg("--tls-key")
        .arg(&pki.key)
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let line = util::first_stderr_line(&mut serve);
    let port = line
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse::<u16>().ok());
    let Some(port) = port.filter(|_| line.contains("https://")) else {
        let _ = serve.kill();
        let _ = serve.wait();
        panic!("serve did not start over HTTPS: {line:?}");
    };
    let agent = format!("driftsum://localhost:{port}");
    let diff = |ca: Option<&Path>, agent: &str| {
        let mut args = vec![
            "diff",
            "--source",
            agent,
            "--target",
            &target,
            "--table",
            "t",
            "--token-file",
            &tok,
        ];
        let ca = ca.map(|p| p.display().to_string());
        if let Some(ca) = &ca {
            args.extend(["--ca", ca.as_str()]);
        }
        driftsum(home, &args)
    };
    let right = diff(Some(&pki.ca), &agent);
    let wrong = diff(Some(&pki.wrong_ca), &agent);
    let by_ip = diff(Some(&pki.ca), &format!("driftsum://127.0.0.1:{port}"));
    let clear = diff(None, &agent);
    let _ = serve.kill();
    let _ = serve.wait();

    assert_eq!(right.status.code(), Some(0), "{}", show(&right));
    assert!(
        String::from_utf8_lossy(&right.stdout).contains("in sync"),
        "{}",
        show(&right)
    );
    for (o, because) in [
        (&wrong, "not signed by the CA given with --ca"),
        (&by_ip, "does not name the host"),
    ] {
        assert_eq!(o.status.code(), Some(2), "{}", show(o));
        // The failure is the table's, reported with the others.
        let all = show(o);
        assert!(all.contains(because), "{all}");
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("in sync"),
            "{all}"
        );
    }
    assert_eq!(clear.status.code(), Some(2), "{}", show(&clear));
    assert!(
        show(&clear).contains("give the CA of its certificate with --ca FILE"),
        "{}",
        show(&clear)
    );
}
