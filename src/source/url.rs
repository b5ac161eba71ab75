//! Database URLs: the scheme picks the engine.

use std::path::PathBuf;

use super::SourceError;

/// A parsed database URL.
#[derive(Clone, Debug, PartialEq, Eq)]
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
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(SourceError::BadUrl(format!(
                "{url:?} is not a database URL; write sqlite:PATH"
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
            other => Err(SourceError::BadUrl(format!(
                "unsupported database URL scheme {other:?}; supported: sqlite:PATH, \
                 postgres://USER@HOST:PORT/DB, mysql://USER@HOST:PORT/DB"
            ))),
        }
    }
}

/// The URL with any password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    // Query parameters may carry a password too (`?password=…`).
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let q: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", q.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
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
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact("mysql://u@h/db?password=secret&x=1"),
            "mysql://u@h/db?password=***&x=1"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
