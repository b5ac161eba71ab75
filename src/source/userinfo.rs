//! A password kept out of a server URL (a config's `password_file` or
//! `password_env`) put into its user info, where the drivers read it.

use super::redact::redact;
use super::secrets;
use super::url::DbUrl;
use crate::error::SourceError;

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
    if secrets::password(&server).is_some() {
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
            secrets::password_from_file(&path).map_err(|e| format!("password_file: {e}"))?
        }
        (None, Some(var)) => {
            secrets::password_from_env(var).map_err(|e| format!("password_env: {e}"))?
        }
        (None, None) => return Ok(url),
    };
    with_password(&url, &password).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            secrets::password(&got).as_deref(),
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
        assert_eq!(secrets::password(&got).as_deref(), Some("only"));
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
