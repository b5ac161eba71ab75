//! TLS to the database servers: libpq's `sslmode` / `sslrootcert` for
//! PostgreSQL and MySQL's `ssl-mode` / `ssl-ca` for MySQL and MariaDB, read
//! from the URL (and the `PGSSLMODE`, `PGSSLROOTCERT` environment), with the
//! rules sqlx leaves out applied on top of its own parsing, and the root
//! certificates read here so that a missing or empty file is named before
//! any connection is tried. The handshake itself is sqlx's, over rustls.
//!
//! The default is the one libpq and the `mysql` client use: `prefer` /
//! `PREFERRED`, TLS whenever the server offers it, without checking its
//! certificate. `require` refuses a server without TLS; `verify-ca` /
//! `VERIFY_CA` also check the certificate against the CA file (or the
//! Mozilla roots built into driftsum); `verify-full` / `VERIFY_IDENTITY`
//! also check that it names the host.
//!
//! Not here: the agent's HTTPS (`agent::tls`).

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use super::SourceError;

/// Applies libpq's TLS rules that sqlx leaves out to options sqlx parsed
/// from `url`; `location` is the URL as messages show it.
///
/// - `sslmode=allow` becomes `prefer` (sqlx would never try TLS for it);
/// - a root certificate file (`sslrootcert`, `PGSSLROOTCERT`, or else
///   `~/.postgresql/root.crt` when it exists) turns `require` into
///   `verify-ca`, as in libpq: a CA that is named is checked;
/// - `sslrootcert=system` means the built-in public roots, makes
///   `verify-full` the default, and refuses a weaker explicit mode (libpq
///   16's rule);
/// - the root file is read now: unreadable, or holding no certificate, is
///   an error naming it.
pub fn postgres(
    url: &str,
    location: &str,
    opts: PgConnectOptions,
) -> Result<PgConnectOptions, SourceError> {
    let explicit_mode =
        last_param(url, &["sslmode", "ssl-mode"]).or_else(|| env_nonempty("PGSSLMODE"));
    let mut mode = opts.get_ssl_mode();
    if matches!(mode, PgSslMode::Allow) {
        mode = PgSslMode::Prefer;
    }
    let root = last_param(url, &["sslrootcert", "ssl-root-cert", "ssl-ca"])
        .or_else(|| env_nonempty("PGSSLROOTCERT"));
    let bad = |m: String| SourceError::BadUrl(format!("{location}: {m}"));
    if root.as_deref() == Some("system") {
        match (explicit_mode.is_some(), mode) {
            (false, _) => mode = PgSslMode::VerifyFull,
            (true, PgSslMode::VerifyFull) => {}
            (true, _) => {
                return Err(bad(format!(
                    "sslrootcert=system checks the server against the public roots, which \
                     needs sslmode=verify-full, not sslmode={}",
                    pg_mode_name(mode)
                )))
            }
        }
        // An empty bundle: sqlx adds the built-in roots to it.
        return Ok(opts.ssl_mode(mode).ssl_root_cert_from_pem(Vec::new()));
    }
    let verifying = matches!(
        mode,
        PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull
    );
    let root = match root {
        Some(r) => Some(PathBuf::from(r)),
        None if verifying => default_pg_root().filter(|p| p.is_file()),
        None => None,
    };
    let mut opts = opts.ssl_mode(mode);
    if let (Some(file), true) = (root, verifying) {
        if matches!(mode, PgSslMode::Require) {
            opts = opts.ssl_mode(PgSslMode::VerifyCa);
        }
        opts = opts.ssl_root_cert_from_pem(read_roots(&file, "sslrootcert").map_err(bad)?);
    }
    Ok(opts)
}

/// Applies the TLS rules of the `mysql` client that sqlx leaves out to
/// options sqlx parsed from `url`: a CA file (`ssl-ca`) with no `ssl-mode`,
/// or with `REQUIRED`, means `VERIFY_CA` (a CA that is named is checked),
/// and the file is read now, so that an unreadable or empty one is named.
pub fn mysql(
    url: &str,
    location: &str,
    opts: MySqlConnectOptions,
) -> Result<MySqlConnectOptions, SourceError> {
    let explicit_mode = last_param(url, &["sslmode", "ssl-mode"]);
    let Some(ca) = last_param(url, &["sslca", "ssl-ca"]) else {
        return Ok(opts);
    };
    let mut mode = opts.get_ssl_mode();
    if explicit_mode.is_none() || matches!(mode, MySqlSslMode::Required) {
        mode = MySqlSslMode::VerifyCa;
    }
    let opts = opts.ssl_mode(mode);
    if !matches!(mode, MySqlSslMode::VerifyCa | MySqlSslMode::VerifyIdentity) {
        return Ok(opts);
    }
    let pem = read_roots(Path::new(&ca), "ssl-ca")
        .map_err(|m| SourceError::BadUrl(format!("{location}: {m}")))?;
    Ok(opts.ssl_ca_from_pem(pem))
}

/// A TLS failure from the driver, with what it means in the URL's terms
/// when it is one of the usual ones.
pub fn explain(message: String) -> String {
    let hint = if message.contains("UnknownIssuer") {
        "the server's certificate is not signed by the CA in sslrootcert / ssl-ca \
         (nor by a public root CA); name the CA that signed it"
    } else if message.contains("not valid for name") || message.contains("NotValidForName") {
        "the server's certificate does not name the host in the URL; connect by a name it \
         holds, or check only the CA with sslmode=verify-ca / ssl-mode=VERIFY_CA"
    } else if message.contains("server does not support TLS") {
        "sslmode=require and stricter (ssl-mode=REQUIRED and stricter) refuse a server \
         without TLS; turn TLS on at the server"
    } else if message.contains("certificate expired") || message.contains("Expired") {
        "the server's certificate has expired"
    } else {
        return message;
    };
    format!("{message} ({hint})")
}

fn pg_mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// libpq's default root certificate file, `~/.postgresql/root.crt`.
fn default_pg_root() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(Path::new(&home).join(".postgresql").join("root.crt"))
}

/// A PEM file of root certificates, checked to hold at least one.
fn read_roots(file: &Path, param: &str) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(file)
        .map_err(|e| format!("{param} {}: cannot read it: {e}", file.display()))?;
    let mut certs = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| format!("{param} {}: not a PEM certificate: {e}", file.display()))?;
        certs += 1;
    }
    if certs == 0 {
        return Err(format!(
            "{param} {}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            file.display()
        ));
    }
    Ok(pem)
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The last value of any of `keys` among the URL's query parameters,
/// percent-decoded (sqlx reads the last one too).
fn last_param(url: &str, keys: &[&str]) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            keys.contains(&percent_decode(k).as_str())
                .then(|| percent_decode(v))
        })
        .next_back()
}

/// `%XX` escapes and `+` (a space in a query) decoded; a stray `%` is kept.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// A PEM certificate (a self-signed CA) made for the test.
    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).expect("sign").pem()
    }

    fn pg(url: &str) -> Result<PgSslMode, String> {
        let opts = PgConnectOptions::from_str(url).map_err(|e| e.to_string())?;
        postgres(url, "here", opts)
            .map(|o| o.get_ssl_mode())
            .map_err(|e| e.to_string())
    }

    fn my(url: &str) -> Result<MySqlSslMode, String> {
        let opts = MySqlConnectOptions::from_str(url).map_err(|e| e.to_string())?;
        mysql(url, "here", opts)
            .map(|o| o.get_ssl_mode())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn params_are_read_as_sqlx_reads_them() {
        let u = "postgres://h/db?sslmode=require&ssl-mode=verify-full&sslrootcert=%2Ftmp%2Fa+b";
        assert_eq!(
            last_param(u, &["sslmode", "ssl-mode"]).as_deref(),
            Some("verify-full")
        );
        assert_eq!(last_param(u, &["sslrootcert"]).as_deref(), Some("/tmp/a b"));
        assert_eq!(last_param("postgres://h/db", &["sslmode"]), None);
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    /// The CA file is read, and a named CA is checked: `require` becomes
    /// `verify-ca` (libpq's rule), stricter modes stay, weaker ones ignore it.
    #[test]
    fn postgres_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem()).expect("write");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let ca = ca.display();
        assert!(matches!(
            pg("postgres://h/db?sslmode=disable"),
            Ok(PgSslMode::Disable)
        ));
        assert!(matches!(
            pg("postgres://h/db?sslmode=allow"),
            Ok(PgSslMode::Prefer)
        ));
        assert!(matches!(
            pg(&format!("postgres://h/db?sslmode=require&sslrootcert={ca}")),
            Ok(PgSslMode::VerifyCa)
        ));
        assert!(matches!(
            pg(&format!(
                "postgres://h/db?sslmode=verify-full&sslrootcert={ca}"
            )),
            Ok(PgSslMode::VerifyFull)
        ));
        assert!(matches!(
            pg(&format!("postgres://h/db?sslmode=prefer&sslrootcert={ca}")),
            Ok(PgSslMode::Prefer)
        ));
        let e = pg("postgres://h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem")
            .expect_err("missing file");
        assert!(
            e.contains("sslrootcert /nonexistent/ca.pem: cannot read"),
            "{e}"
        );
        let e = pg(&format!(
            "postgres://h/db?sslmode=verify-ca&sslrootcert={}",
            empty.display()
        ))
        .expect_err("no certificate");
        assert!(e.contains("holds no PEM certificate"), "{e}");
        assert!(pg("postgres://h/db?sslmode=sometimes").is_err());
    }

    #[test]
    fn postgres_system_roots() {
        assert!(matches!(
            pg("postgres://h/db?sslrootcert=system"),
            Ok(PgSslMode::VerifyFull)
        ));
        let e = pg("postgres://h/db?sslrootcert=system&sslmode=require").expect_err("weaker");
        assert!(e.contains("needs sslmode=verify-full"), "{e}");
    }

    #[test]
    fn mysql_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem()).expect("write");
        let ca = ca.display();
        assert!(matches!(my("mysql://u@h/db"), Ok(MySqlSslMode::Preferred)));
        assert!(matches!(
            my("mysql://u@h/db?ssl-mode=DISABLED"),
            Ok(MySqlSslMode::Disabled)
        ));
        assert!(matches!(
            my(&format!("mysql://u@h/db?ssl-ca={ca}")),
            Ok(MySqlSslMode::VerifyCa)
        ));
        assert!(matches!(
            my(&format!("mysql://u@h/db?ssl-mode=REQUIRED&ssl-ca={ca}")),
            Ok(MySqlSslMode::VerifyCa)
        ));
        assert!(matches!(
            my(&format!(
                "mysql://u@h/db?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"
            )),
            Ok(MySqlSslMode::VerifyIdentity)
        ));
        assert!(matches!(
            my(&format!("mysql://u@h/db?ssl-mode=PREFERRED&ssl-ca={ca}")),
            Ok(MySqlSslMode::Preferred)
        ));
        let e = my("mysql://u@h/db?ssl-ca=/nonexistent/ca.pem").expect_err("missing");
        assert!(e.contains("ssl-ca /nonexistent/ca.pem: cannot read"), "{e}");
    }

    #[test]
    fn usual_failures_are_explained() {
        let m = explain("error: invalid peer certificate: UnknownIssuer".into());
        assert!(m.contains("not signed by the CA"), "{m}");
        let m = explain("server does not support TLS".into());
        assert!(m.contains("refuse a server without TLS"), "{m}");
        assert_eq!(
            explain("password authentication failed".into()),
            "password authentication failed"
        );
    }
}
