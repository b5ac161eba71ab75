//! Database URLs: the scheme picks the engine.

use std::path::PathBuf;

use super::SourceError;

/// A parsed database URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbUrl {
    /// `sqlite:PATH`, `sqlite://PATH` or `sqlite:///ABSOLUTE/PATH`.
    Sqlite(PathBuf),
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
            other => Err(SourceError::BadUrl(format!(
                "unsupported database URL scheme {other:?}; supported: sqlite:PATH"
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
    }
}
