//! Reading a PostgreSQL URL into what connecting needs: connect options
//! with TLS, the user libpq would pick and the password from the URL,
//! `PGPASSWORD` or a password file, looked up libpq's way. The connector
//! ([`super::PgSource`]) and the run history (`history::pg`) both connect
//! through it, so a URL means one thing everywhere.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use super::conninfo::{first_schema, pgpass_password, search_path_from_options, startup_options};
use crate::error::SourceError;
use crate::source::secrets::{self, scrub};
use crate::source::url::{self, redact};

/// How to reach the server a PostgreSQL URL names: its connect options
/// (TLS, the user, the password from the URL, `PGPASSWORD` or a password
/// file), and what a connection needs to know besides. Also the run
/// history's way in (`history::pg`), so there is one reading of a URL.
pub struct PgTarget {
    pub opts: PgConnectOptions,
    /// The URL without its password.
    pub location: String,
    /// Secrets to scrub from any message.
    pub secrets: Vec<String>,
    /// The URL's `lock_timeout`.
    pub lock_timeout: Duration,
    /// The first schema of the search_path the server is given.
    pub default_schema: String,
}

impl PgTarget {
    pub fn from_url(url: &str) -> Result<PgTarget, SourceError> {
        let location = redact(url);
        let url_password = secrets::password(url);
        let mut secrets: Vec<String> = Vec::new();
        if let Some(p) = &url_password {
            secrets.push(p.clone());
        }
        if let Ok(p) = std::env::var("PGPASSWORD") {
            secrets.push(p);
        }
        // Too short to tell from ordinary text; such a password is never
        // echoed anyway (this is a second line of defence).
        secrets.retain(|s| s.len() >= 3);
        let lock_timeout = url::lock_timeout(url)?;
        let mut opts =
            PgConnectOptions::from_str(&url::without_lock_timeout(url)).map_err(|e| {
                SourceError::BadUrl(scrub(
                    format!("{location}: not a valid PostgreSQL URL: {e}"),
                    &secrets,
                ))
            })?;
        opts = crate::source::tls::postgres(url, &location, opts)?;
        // libpq's default user is the OS user's name, which sqlx may not find.
        if let Some(user) = crate::source::libpq::default_user(url) {
            opts = opts.username(&user);
        }
        // sqlx reads the URL password, then PGPASSWORD, then a password file,
        // like libpq; but it matches the file's database field against an
        // empty name when the URL names none (libpq uses the user name), and
        // ignores the `passfile` parameter. Look the file up libpq's way.
        if url_password.is_none() && std::env::var_os("PGPASSWORD").is_none() {
            let file = secrets::query_param(url, "passfile")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("PGPASSFILE").map(PathBuf::from))
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass")));
            let host = match opts.get_socket() {
                Some(_) => "",
                None => opts.get_host(),
            };
            let user = opts.get_username().to_string();
            let db = opts.get_database().unwrap_or(&user).to_string();
            if let Some(p) =
                file.and_then(|f| pgpass_password(&f, host, opts.get_port(), &db, &user))
            {
                if p.len() >= 3 {
                    secrets.push(p.clone());
                }
                opts = opts.password(&p);
            }
        }

        // The first schema of the search_path the server is given: the
        // startup options, built as sqlx builds them (PGOPTIONS, then each
        // `options` and `options[NAME]` URL parameter in turn).
        let default_schema = search_path_from_options(&startup_options(url))
            .and_then(|sp| first_schema(&sp, opts.get_username()))
            .unwrap_or_else(|| "public".to_string());
        Ok(PgTarget {
            opts,
            location,
            secrets,
            lock_timeout,
            default_schema,
        })
    }
}
