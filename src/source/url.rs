//! Database URLs (the scheme picks the engine), and the wider set of things
//! a side of a diff can be: a database, a tree file or an agent.

use std::path::PathBuf;

use super::SourceError;

/// The file name ending that marks a bare path as a tree file.
pub const TREE_EXTENSION: &str = ".dstree";

/// What one side of a diff names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SideUrl {
    /// A database URL, as [`DbUrl`] reads it.
    Database(String),
    /// `tree:PATH`, or a path ending in [`TREE_EXTENSION`]: a tree file.
    TreeFile(PathBuf),
    /// `driftsum://HOST:PORT`: an agent.
    Agent(String),
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
                    "{url:?} is not an agent address; write driftsum://HOST:PORT"
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
