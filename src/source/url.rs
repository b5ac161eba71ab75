//! Database URLs (the scheme picks the engine), and the wider set of things
//! a side of a diff can be: a database, a tree file or an agent.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::SourceError;

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
        if is_conninfo(url) {
            return conninfo_url(url).map(DbUrl::Postgres);
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

/// Whether `s` is a libpq `key=value` connection string (`host=h
/// dbname=d`): it starts with a keyword and `=`, which no URL scheme holds.
/// `url` (a server URL, or a libpq `key=value` string, read as its URL)
/// with `password` as its password: for a password kept out of the URL
/// itself (a config's `password_file` or `password_env`). A SQLite file, a
/// URL that already holds a password, or one naming no host is refused, the
/// message naming why and never the password.
pub fn with_password(url: &str, password: &str) -> Result<String, SourceError> {
    let server = match DbUrl::parse(url)? {
        DbUrl::Sqlite(_) => {
            return Err(SourceError::BadUrl(
                "a SQLite database takes no password; leave out password_file and \
                 password_env"
                    .into(),
            ))
        }
        DbUrl::Postgres(u) | DbUrl::Mysql(u) => u,
    };
    if super::secrets::password(&server).is_some() {
        return Err(SourceError::BadUrl(format!(
            "{} already holds a password; give it in one place only",
            redact(url)
        )));
    }
    let mut parsed = ::url::Url::parse(&server)
        .map_err(|e| SourceError::BadUrl(format!("{} is not a valid URL: {e}", redact(url))))?;
    // The url crate percent-encodes it; the drivers decode it again.
    parsed.set_password(Some(password)).map_err(|()| {
        SourceError::BadUrl(format!(
            "{} names no host to give a password for; write the host in the URL",
            redact(url)
        ))
    })?;
    Ok(parsed.into())
}

/// `url` with the password a config side names put in it: from `file`
/// (relative to `dir`, the config file's directory) or from the variable
/// `var`; `url` as it is when neither is given. Both given, a URL that
/// already holds a password, or a SQLite file: an error saying so.
pub fn with_config_password(
    url: String,
    file: Option<&std::path::Path>,
    var: Option<&str>,
    dir: Option<&std::path::Path>,
) -> Result<String, String> {
    let password = match (file, var) {
        (Some(_), Some(_)) => {
            return Err("gives both password_file and password_env; keep one".into())
        }
        (Some(file), None) => {
            let path = match dir {
                Some(d) if file.is_relative() => d.join(file),
                _ => file.to_path_buf(),
            };
            super::secrets::password_from_file(&path).map_err(|e| format!("password_file: {e}"))?
        }
        (None, Some(var)) => {
            super::secrets::password_from_env(var).map_err(|e| format!("password_env: {e}"))?
        }
        (None, None) => return Ok(url),
    };
    with_password(&url, &password).map_err(|e| e.to_string())
}

/// The user a PostgreSQL URL naming none connects as, as libpq decides:
/// `None` when the URL names one (in its user info or `?user=`) or
/// `PGUSER` does (the driver reads both), else the name of the
/// operating-system user this process runs as.
pub fn default_user(url: &str) -> Option<String> {
    let named = ::url::Url::parse(url).is_ok_and(|u| !u.username().is_empty())
        || super::secrets::query_param(url, "user").is_some()
        || std::env::var_os("PGUSER").is_some();
    if named {
        return None;
    }
    os_user()
}

/// The name of the operating-system user this process runs as, from the
/// password database (as libpq looks it up), not from `$USER`.
#[cfg(unix)]
fn os_user() -> Option<String> {
    let mut pwd = std::mem::MaybeUninit::<libc::passwd>::uninit();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes only into `pwd` and `buf` (whose length is
    // passed) and sets `found` to `pwd` or null; `pw_name` then points into
    // `buf`, which outlives its use here.
    unsafe {
        let rc = libc::getpwuid_r(
            libc::geteuid(),
            pwd.as_mut_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        );
        if rc != 0 || found.is_null() || (*found).pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr((*found).pw_name);
        name.to_str()
            .ok()
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    }
}

#[cfg(not(unix))]
fn os_user() -> Option<String> {
    std::env::var("USERNAME").ok()
}

fn is_conninfo(s: &str) -> bool {
    let t = s.trim_start();
    let key_len = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    key_len > 0 && t[key_len..].trim_start().starts_with('=')
}

/// A libpq `key=value` string as the equivalent `postgres://` URL, as libpq
/// reads it: values bare or single-quoted (`\` escaping `'` and `\`),
/// spaces allowed around `=`; `host`, `port`, `user`, `password` and
/// `dbname` go in the URL's parts, every other keyword becomes a query
/// parameter. Nothing is defaulted here: the user not named is the
/// operating-system user, as in libpq.
fn conninfo_url(s: &str) -> Result<String, SourceError> {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    // Unreserved characters stay readable (`127.0.0.1`, `my_db`).
    const PART: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'.')
        .remove(b'-')
        .remove(b'_')
        .remove(b'~');
    let bad = |m: &str| SourceError::BadUrl(format!("{}: {m}", redact(s)));
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            // After a password, a word without a value may be the rest of an
            // unquoted password holding a space: never show it.
            let after_password = pairs.iter().any(|(k, _)| k.contains("password"));
            let word = match after_password {
                true => "a word".to_string(),
                false => format!("{key:?}"),
            };
            return Err(bad(&format!(
                "{word} has no value; a key=value connection string holds KEY=VALUE pairs \
                 (quote a value holding spaces: password='…')"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(bad("a quoted value is not closed"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                match c {
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        }
        pairs.push((key, value));
    }
    let enc = |v: &str| utf8_percent_encode(v, PART).to_string();
    let get = |k: &str| pairs.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v);
    let mut url = String::from("postgres://");
    if let Some(u) = get("user") {
        url.push_str(&enc(u));
        if let Some(p) = get("password") {
            url.push(':');
            url.push_str(&enc(p));
        }
        url.push('@');
    } else if let Some(p) = get("password") {
        url.push(':');
        url.push_str(&enc(p));
        url.push('@');
    }
    if let Some(h) = get("host") {
        // A socket directory is percent-encoded in the host, as sqlx reads it.
        match h.parse::<std::net::Ipv6Addr>() {
            Ok(_) => url.push_str(&format!("[{h}]")),
            Err(_) => url.push_str(&enc(h)),
        }
    }
    if let Some(p) = get("port") {
        if !p.chars().all(|c| c.is_ascii_digit()) || p.is_empty() {
            return Err(bad(&format!("port={p:?} is not a port number")));
        }
        url.push(':');
        url.push_str(p);
    }
    url.push('/');
    if let Some(d) = get("dbname") {
        url.push_str(&enc(d));
    }
    let rest: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| !["user", "password", "host", "port", "dbname"].contains(&k.as_str()))
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    if !rest.is_empty() {
        url.push('?');
        url.push_str(&rest.join("&"));
    }
    Ok(url)
}

/// The URL (or libpq `key=value` string) with every password replaced by
/// `***`, for messages. See [`secret_spans`] for what is hidden: this holds
/// however malformed the URL, at the cost of hiding more than the password
/// when the URL cannot be read for sure.
pub fn redact(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut at = 0;
    for r in secret_spans(url) {
        out.push_str(&url[at..r.start]);
        out.push_str("***");
        at = r.end;
    }
    out.push_str(&url[at..]);
    out
}

/// The byte ranges of `url` that may hold a secret, in order, disjoint:
///
/// - from a `password=` (also `sslpassword=`, `passwd=`, `pwd=`, any case,
///   spaces allowed around `=`: a query parameter or a libpq `key=value`
///   string) to the end: a value may hold `&`, spaces or `@`, so nothing
///   after it is shown;
/// - in `SCHEME://USERINFO@HOST…`, everything after the user name up to the
///   *last* `@` (a password may hold `@`, `/`, `?`, `#`, `:` or a stray `%`
///   unencoded), and the user name too when it holds `/`, `?` or `#`;
/// - with no `@`, everything after `://` unless it is plainly hosts, numeric
///   ports, a database name and plain query parameters: `postgres://u:pw/x`
///   has lost its host, and `pw/x` must not be taken for a port and path.
pub fn secret_spans(url: &str) -> Vec<std::ops::Range<usize>> {
    let cut = password_value(url);
    let head = &url[..cut.unwrap_or(url.len())];
    let mut spans = Vec::new();
    if let Some(start) = authority_start(head) {
        let rest = &head[start..];
        match rest.rfind('@') {
            Some(at) => {
                let userinfo = &rest[..at];
                if let Some(colon) = userinfo.find(':') {
                    let user = &userinfo[..colon];
                    let from = match user.contains(['/', '?', '#']) {
                        true => start,
                        false => start + colon + 1,
                    };
                    spans.push(from..start + at);
                }
            }
            None => {
                if !plain_address(rest) {
                    spans.push(start..head.len());
                }
            }
        }
    }
    if let Some(c) = cut {
        match spans.last_mut() {
            Some(last) if last.end == c => last.end = url.len(),
            _ => spans.push(c..url.len()),
        }
    }
    spans
}

/// Where the authority starts: after `SCHEME://`, or after `SCHEME:` when
/// the slashes are missing (sqlx may still read it). Only the first `:`
/// ends a scheme, so a `://` inside a password is never taken for one.
/// SQLite URLs hold a path, never a password; a string that does not start
/// with a scheme (a libpq `key=value` string) has no authority.
fn authority_start(s: &str) -> Option<usize> {
    let (scheme, rest) = s.split_once(':')?;
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !is_scheme || scheme.to_ascii_lowercase().starts_with("sqlite") {
        return None;
    }
    let slashes = if rest.starts_with("//") { 2 } else { 0 };
    Some(scheme.len() + 1 + slashes)
}

/// The start of the first password value in `s` (see [`secret_spans`]).
fn password_value(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut first: Option<usize> = None;
    for needle in ["password", "passwd", "pwd"] {
        for (i, _) in lower.match_indices(needle) {
            // `sslpassword` counts; `pwd` and `passwd` only as whole words.
            if needle != "password" && i > 0 && b[i - 1].is_ascii_alphanumeric() {
                continue;
            }
            let mut j = i + needle.len();
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < b.len() && b[j] == b'=' {
                first = Some(first.map_or(j + 1, |f| f.min(j + 1)));
                break;
            }
        }
    }
    first
}

/// Whether what follows `://` in a URL without `@` is plainly hosts (see
/// [`plain_hosts`]), then an optional `/DATABASE` and `?KEY=VALUE&…` of
/// plain characters, and no fragment.
fn plain_address(rest: &str) -> bool {
    let plain = |s: &str, extra: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-%$".contains(c) || extra.contains(c))
    };
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (hosts, db) = before_query.split_once('/').unwrap_or((before_query, ""));
    plain_hosts(hosts) && plain(db, "") && plain(query, "=&")
}

/// Whether an authority without `@` is plainly `HOST[:PORT][,HOST[:PORT]…]`
/// (host names, IPv4, `[IPv6]`, percent-encoded socket paths; numeric ports).
fn plain_hosts(authority: &str) -> bool {
    authority.split(',').all(|hp| {
        let (host, port) = match hp.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((addr, after))
                    if addr
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() || ".:".contains(c)) =>
                {
                    match after {
                        "" => return true,
                        p => match p.strip_prefix(':') {
                            Some(port) => ("", port),
                            None => return false,
                        },
                    }
                }
                _ => return false,
            },
            None => match hp.split_once(':') {
                Some((h, p)) => (h, p),
                None => (hp, ""),
            },
        };
        // `h:` with no port is odd enough to be a password's start.
        let port_ok = match hp.contains(':') && !hp.starts_with('[') {
            true => !port.is_empty(),
            false => true,
        };
        host.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-%".contains(c))
            && port.chars().all(|c| c.is_ascii_digit())
            && port_ok
    })
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

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact("mysql://u@h/db?password=secret&x=1"),
            "mysql://u@h/db?password=***"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    /// URL shapes a password is written into: well-formed, malformed, every
    /// engine's scheme, query parameters and libpq key=value strings. `false`
    /// marks shapes without a host, where some passwords make a well-formed
    /// URL (`postgres://u:a@b` names host `b`).
    const SHAPES: &[(&str, bool)] = &[
        ("postgres://u:{pw}@h:5432/db", true),
        ("postgresql://u:{pw}@h/db?sslmode=require", true),
        ("mysql://root:{pw}@127.0.0.1:3306/test", true),
        ("mariadb://u:{pw}@[::1]:3306/db", true),
        ("postgres://u:{pw}@/db", true),
        ("postgres://:{pw}@h/db", true),
        ("postgres://u:{pw}@h1:5432,h2:5433/db", true),
        ("mysql://u:{pw}@h/db#frag", true),
        ("postgres:u:{pw}@h/db", true),
        ("postgres://u@h/db?password={pw}", true),
        (
            "postgres://u@h/db?sslmode=require&PassWord={pw}&application_name=x",
            true,
        ),
        ("postgres://u@h/db?sslpassword={pw}", true),
        ("host=h user=u password={pw} dbname=d", true),
        ("host=h password = '{pw}'", true),
        ("postgres://u:{pw}", false),
        ("postgres://u:{pw}/db", false),
        ("mysql://u:{pw}?ssl-mode=disabled", false),
    ];

    /// Every 4-character piece of the password that the URL around it does
    /// not hold: none may survive redaction.
    fn pieces<'a>(pw: &'a str, around: &'a str) -> impl Iterator<Item = String> + 'a {
        let c: Vec<char> = pw.chars().collect();
        (0..c.len().saturating_sub(3))
            .map(move |i| c[i..i + 4].iter().collect::<String>())
            .filter(move |p| !around.contains(p.as_str()))
    }

    proptest::proptest! {
        #[test]
        fn no_password_survives(
            pw in "[ -~é日€]{6,24}",
            shape in 0..SHAPES.len(),
        ) {
            let (shape, has_host) = SHAPES[shape];
            // Without a host, a password like `5432/db?x=1` makes a
            // well-formed URL (port, database, query), shown as such.
            let url_like = pw.starts_with(|c: char| c.is_ascii_digit())
                && pw.chars().all(|c| c.is_ascii_alphanumeric() || "_.-%$/?=&".contains(c));
            proptest::prop_assume!(has_host || !(pw.contains('@') || url_like));
            let url = shape.replace("{pw}", &pw);
            let around = shape.replace("{pw}", "");
            let shown = redact(&url);
            proptest::prop_assert!(!shown.contains(&pw), "{url:?} -> {shown:?}");
            for p in pieces(&pw, &around) {
                proptest::prop_assert!(!shown.contains(&p), "{url:?} -> {shown:?} shows {p:?}");
            }
            let debug = format!("{:?}", DbUrl::parse(&url));
            proptest::prop_assert!(!debug.contains(&pw), "{debug}");
            let err = DbUrl::parse(&format!("x{url}")).err().map(|e| e.to_string());
            proptest::prop_assert!(!err.unwrap_or_default().contains(&pw));
        }
    }

    #[test]
    fn malformed_urls_hide_everything_unsure() {
        assert_eq!(
            redact("postgres://u:S3cr3t/Pa55@host/db"),
            "postgres://u:***@host/db"
        );
        assert_eq!(redact("postgres://u:S3cr3t/Pa55"), "postgres://***");
        assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact("mysql://u:a:b#c%zz@[::1]:3306/db"),
            "mysql://u:***@[::1]:3306/db"
        );
        assert_eq!(
            redact("host=h user=u password='x y' dbname=d"),
            "host=h user=u password=***"
        );
        assert_eq!(
            redact("postgres://u:x@h/db?password=y&a=b"),
            "postgres://u:***@h/db?password=***"
        );
        // Nothing secret: shown whole.
        for url in [
            "postgres://h:5432/db",
            "postgres://[::1]:5432/db",
            "postgres://h1:1,h2:2/db?sslmode=require",
            "postgres://%2Fvar%2Frun/db",
            "mysql://u@h/db",
            "sqlite:/tmp/my file:x@y.db",
            "driftsum://10.0.0.5:7878",
        ] {
            assert_eq!(redact(url), url);
        }
    }

    #[test]
    fn config_passwords_go_into_the_url() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("pw"), "s3:cr@t/%\nsecond line\n").expect("pw");
        let got = with_config_password(
            "postgres://app@db:5432/shop?sslmode=require".into(),
            Some(std::path::Path::new("pw")),
            None,
            Some(dir.path()),
        )
        .expect("file");
        assert_eq!(
            super::super::secrets::password(&got).as_deref(),
            Some("s3:cr@t/%"),
            "{got}"
        );
        assert!(
            got.contains("sslmode=require") && got.contains("app"),
            "{got}"
        );
        // Without a line ending, and a MySQL URL.
        std::fs::write(dir.path().join("pw2"), "only").expect("pw");
        let got = with_config_password(
            "mysql://u@h/db".into(),
            Some(&dir.path().join("pw2")),
            None,
            None,
        )
        .expect("mysql");
        assert_eq!(
            super::super::secrets::password(&got).as_deref(),
            Some("only")
        );
        // Nothing named: the URL as it is.
        assert_eq!(
            with_config_password("sqlite:a.db".into(), None, None, None).as_deref(),
            Ok("sqlite:a.db")
        );
        // Refused, each with its reason and never the password.
        std::fs::write(dir.path().join("empty"), "\n").expect("empty");
        let cases = [
            ("postgres://h/db", Some("empty"), None, "is empty"),
            ("postgres://h/db", Some("none"), None, "cannot read"),
            ("postgres://h/db", Some("pw"), Some("V"), "keep one"),
            ("postgres://u:inurl@h/db", Some("pw"), None, "already"),
            ("sqlite:a.db", Some("pw"), None, "SQLite"),
            (
                "postgres://h/db",
                None,
                Some("DS_NO_SUCH_VAR_9"),
                "DS_NO_SUCH_VAR_9",
            ),
        ];
        for (url, file, var, says) in cases {
            let e = with_config_password(
                url.into(),
                file.map(std::path::Path::new),
                var,
                Some(dir.path()),
            )
            .expect_err(url);
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("s3:cr") && !e.contains("inurl"), "{e}");
        }
    }
}
