//! Database URLs (the scheme picks the engine), the wider set of things a
//! side of a diff can be (a database, a tree file or an agent), and the
//! `lock_timeout` parameter every engine takes. Hiding passwords lives in
//! `redact`, libpq's `key=value` strings in `libpq`, and a password put into
//! a URL from a config file in `userinfo`.

use std::path::PathBuf;
use std::time::Duration;

use super::libpq;
use crate::error::SourceError;

pub use super::redact::{redact, secret_spans};

/// How long a read waits for a lock another session holds (an `ACCESS
/// EXCLUSIVE` table lock, a SQLite writer) before that table is reported as
/// an error, unless the URL says otherwise with `?lock_timeout=`.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest lock wait a URL may ask for: PostgreSQL's `lock_timeout`
/// takes whole milliseconds in an `int`.
const MAX_LOCK_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// The `lock_timeout` URL query parameter, the same for every engine:
/// seconds (`5`, `2.5`, `5s`) or milliseconds (`500ms`); `0` waits not at
/// all. [`DEFAULT_LOCK_TIMEOUT`] when the URL has none.
pub fn lock_timeout(url: &str) -> Result<Duration, SourceError> {
    let Some(value) = query_values(url)
        .filter(|(k, _)| k == "lock_timeout")
        .map(|(_, v)| v)
        .last()
    else {
        return Ok(DEFAULT_LOCK_TIMEOUT);
    };
    parse_duration(&value)
        .filter(|d| *d <= MAX_LOCK_TIMEOUT)
        .ok_or_else(|| {
            SourceError::BadUrl(format!(
                "lock_timeout={value:?} is not a duration; write seconds (lock_timeout=5, \
                 lock_timeout=5s) or milliseconds (lock_timeout=500ms), at most {}s",
                MAX_LOCK_TIMEOUT.as_secs()
            ))
        })
}

/// The URL without its `lock_timeout` parameters, for drivers that do not
/// know it.
pub fn without_lock_timeout(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| kv.split_once('=').map_or(*kv, |(k, _)| k) != "lock_timeout")
        .collect();
    let mut out = base.to_string();
    if !kept.is_empty() && kept != [""] {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// The URL's query parameters as (key, value), in order, undecoded (the
/// parameters read here never need decoding).
fn query_values(url: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').filter(|kv| !kv.is_empty()).map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k.to_string(), v.to_string())
    })
}

/// `5`, `2.5`, `5s`, `500ms` as a duration; `None` for anything else.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (number, millis) = if let Some(n) = s.strip_suffix("ms") {
        (n, true)
    } else {
        (s.strip_suffix('s').unwrap_or(s), false)
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    let secs = if millis { n / 1000.0 } else { n };
    Duration::try_from_secs_f64(secs).ok()
}

/// The file name ending that marks a bare path as a tree file.
pub const TREE_EXTENSION: &str = ".dstree";

/// What one side of a diff names.
#[derive(Clone, PartialEq, Eq)]
pub enum SideUrl {
    /// A database URL, as [`DbUrl`] reads it.
    Database(String),
    /// `tree:PATH`, or a path ending in [`TREE_EXTENSION`]: a tree file.
    TreeFile(PathBuf),
    /// `driftsum://HOST:PORT`: an agent.
    Agent(String),
}

// By hand, so that a `{:?}` never shows a password.
impl std::fmt::Debug for SideUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SideUrl::Database(u) => f.debug_tuple("Database").field(&redact(u)).finish(),
            SideUrl::TreeFile(p) => f.debug_tuple("TreeFile").field(p).finish(),
            SideUrl::Agent(a) => f.debug_tuple("Agent").field(&redact(a)).finish(),
        }
    }
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbUrl::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            DbUrl::Postgres(u) => f.debug_tuple("Postgres").field(&redact(u)).finish(),
            DbUrl::Mysql(u) => f.debug_tuple("Mysql").field(&redact(u)).finish(),
        }
    }
}

impl SideUrl {
    pub fn parse(url: &str) -> Result<SideUrl, SourceError> {
        if let Some(path) = url.strip_prefix("tree:") {
            if path.is_empty() {
                return Err(SourceError::BadUrl(format!(
                    "{url:?} names no file; write tree:PATH"
                )));
            }
            return Ok(SideUrl::TreeFile(PathBuf::from(path)));
        }
        if let Some(rest) = url.strip_prefix("driftsum://") {
            let addr = rest.trim_end_matches('/');
            if addr.is_empty() || addr.contains('/') || !addr.contains(':') {
                return Err(SourceError::BadUrl(format!(
                    "{:?} is not an agent address; write driftsum://HOST:PORT",
                    redact(url)
                )));
            }
            return Ok(SideUrl::Agent(addr.to_string()));
        }
        if url.ends_with(TREE_EXTENSION) && !url.contains("://") && !url.starts_with("sqlite:") {
            return Ok(SideUrl::TreeFile(PathBuf::from(url)));
        }
        DbUrl::parse(url)?;
        Ok(SideUrl::Database(url.to_string()))
    }
}

/// A parsed database URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// `sqlite:PATH`, `sqlite://PATH` or `sqlite:///ABSOLUTE/PATH`.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`, as libpq reads it.
    Postgres(String),
    /// `mysql://…` or `mariadb://…`.
    Mysql(String),
}

impl DbUrl {
    pub fn parse(url: &str) -> Result<DbUrl, SourceError> {
        if libpq::is_conninfo(url) {
            return libpq::conninfo_url(url).map(DbUrl::Postgres);
        }
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(SourceError::BadUrl(format!(
                "{:?} is not a database URL; write sqlite:PATH",
                redact(url)
            )));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                let path = path.split('?').next().unwrap_or(path);
                if path.is_empty() {
                    return Err(SourceError::BadUrl(format!(
                        "{url:?} names no file; write sqlite:PATH"
                    )));
                }
                Ok(DbUrl::Sqlite(PathBuf::from(path)))
            }
            "postgres" | "postgresql" => Ok(DbUrl::Postgres(url.to_string())),
            "mysql" | "mariadb" => Ok(DbUrl::Mysql(format!("mysql:{rest}"))),
            // The "scheme" may be a whole key=value string holding a password.
            other => Err(SourceError::BadUrl(format!(
                "unsupported database URL scheme {:?}; supported: sqlite:PATH, \
                 postgres://USER@HOST:PORT/DB, mysql://USER@HOST:PORT/DB",
                redact(other)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_forms() {
        assert_eq!(
            DbUrl::parse("sqlite:a.db").unwrap(),
            DbUrl::Sqlite("a.db".into())
        );
        assert_eq!(
            DbUrl::parse("sqlite://a.db").unwrap(),
            DbUrl::Sqlite("a.db".into())
        );
        assert_eq!(
            DbUrl::parse("sqlite:///tmp/a.db").unwrap(),
            DbUrl::Sqlite("/tmp/a.db".into())
        );
        assert!(DbUrl::parse("a.db").is_err());
        assert!(DbUrl::parse("oracle://x").is_err());
        assert!(DbUrl::parse("sqlite:").is_err());
        assert!(matches!(
            DbUrl::parse("postgresql://u@h/db").unwrap(),
            DbUrl::Postgres(_)
        ));
        assert_eq!(
            DbUrl::parse("mariadb://u@h/db").unwrap(),
            DbUrl::Mysql("mysql://u@h/db".into())
        );
    }

    #[test]
    fn conninfo_strings_are_postgres_urls() {
        let pg = |s: &str| match DbUrl::parse(s) {
            Ok(DbUrl::Postgres(u)) => u,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(
            pg("host=127.0.0.1 user=postgres dbname=test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(
            pg("host = h port=5433 user='a b' password='it\\'s' sslmode=require"),
            "postgres://a%20b:it%27s@h:5433/?sslmode=require"
        );
        assert_eq!(pg("dbname=x"), "postgres:///x");
        assert!(DbUrl::parse("host=h port=x").is_err());
        assert!(DbUrl::parse("host='h").is_err());
        let e = DbUrl::parse("host=h password='se cret")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("se cret"), "{e}");
        assert!(matches!(
            SideUrl::parse("host=h dbname=d"),
            Ok(SideUrl::Database(_))
        ));
    }

    #[test]
    fn side_forms() {
        assert_eq!(
            SideUrl::parse("tree:a.bin").unwrap(),
            SideUrl::TreeFile("a.bin".into())
        );
        assert_eq!(
            SideUrl::parse("nightly.dstree").unwrap(),
            SideUrl::TreeFile("nightly.dstree".into())
        );
        assert_eq!(
            SideUrl::parse("driftsum://10.0.0.5:7878").unwrap(),
            SideUrl::Agent("10.0.0.5:7878".into())
        );
        assert!(SideUrl::parse("driftsum://host").is_err());
        assert!(SideUrl::parse("tree:").is_err());
        assert_eq!(
            SideUrl::parse("sqlite:x.dstree").unwrap(),
            SideUrl::Database("sqlite:x.dstree".into())
        );
    }

    #[test]
    fn lock_timeouts() {
        let d = |u: &str| lock_timeout(u).map_err(|e| e.to_string());
        assert_eq!(d("postgres://h/db"), Ok(DEFAULT_LOCK_TIMEOUT));
        assert_eq!(d("sqlite:a.db"), Ok(DEFAULT_LOCK_TIMEOUT));
        for (url, want) in [
            ("postgres://h/db?lock_timeout=10s", 10_000),
            ("postgres://h/db?sslmode=disable&lock_timeout=3", 3_000),
            ("sqlite:a.db?lock_timeout=250ms", 250),
            ("mysql://u@h/db?lock_timeout=1.5", 1_500),
            ("mysql://u@h/db?lock_timeout=1.5s#x", 1_500),
            ("sqlite:a.db?lock_timeout=0", 0),
            ("sqlite:a.db?lock_timeout=9&lock_timeout=2", 2_000),
        ] {
            assert_eq!(d(url), Ok(Duration::from_millis(want)), "{url}");
        }
        for bad in [
            "",
            "s",
            "ms",
            "-1",
            "1e3",
            "5m",
            "five",
            "1.2.3",
            "nan",
            "inf",
            "99999999999",
        ] {
            let url = format!("postgres://h/db?lock_timeout={bad}");
            let e = d(&url).expect_err(bad);
            assert!(e.contains("lock_timeout"), "{e}");
        }
    }

    #[test]
    fn lock_timeout_is_removed_for_drivers() {
        for (url, want) in [
            ("postgres://h/db", "postgres://h/db"),
            ("postgres://h/db?lock_timeout=5s", "postgres://h/db"),
            (
                "postgres://h/db?sslmode=disable&lock_timeout=5s&x=1",
                "postgres://h/db?sslmode=disable&x=1",
            ),
            ("mysql://h/db?lock_timeout=5#f", "mysql://h/db#f"),
            ("mysql://h/db?a=lock_timeout", "mysql://h/db?a=lock_timeout"),
        ] {
            assert_eq!(without_lock_timeout(url), want, "{url}");
        }
    }
}
