//! How the agent runs: its options (address, token, limits, cache), and
//! their printing, which never shows a secret.

use std::time::Duration;

/// The default listening address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7420";

/// How the agent runs.
#[derive(Clone)]
pub struct ServeOptions {
    /// The database URL it serves.
    pub db: String,
    pub token: String,
    /// A request must arrive whole within this long.
    pub request_timeout: Duration,
    /// A response must be taken within this long.
    pub response_timeout: Duration,
    /// The largest request body accepted.
    pub max_body: usize,
    /// Requests carrying the token served at once; more are answered 503
    /// at once. Sixteen times as many connections may be sending their
    /// request; past that the oldest of them is cut off.
    pub max_connections: usize,
    /// Whether build requests may carry a `--where` condition (SQL run on
    /// this database): off unless the operator allows it.
    pub allow_where: bool,
    /// For server databases, whose changes the agent cannot see: how long a
    /// built tree is reused by new walks, and how long an unused one (with
    /// the snapshot it holds open) is kept. SQLite trees are reused until
    /// the file changes.
    pub cache_for: Duration,
    /// Trees kept at once.
    pub max_trees: usize,
    /// HTTPS: the agent's certificate and key; plain HTTP when `None`.
    pub tls: Option<crate::agent::tls::ServerTls>,
}

/// Written by hand so that printing the options never shows the token or
/// the database's password.
impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("db", &crate::source::url::redact(&self.db))
            .field("token", &"***")
            .field("request_timeout", &self.request_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("max_body", &self.max_body)
            .field("max_connections", &self.max_connections)
            .field("allow_where", &self.allow_where)
            .field("cache_for", &self.cache_for)
            .field("max_trees", &self.max_trees)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl ServeOptions {
    pub fn new(db: &str, token: &str) -> ServeOptions {
        ServeOptions {
            db: db.to_string(),
            token: token.to_string(),
            request_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
            max_body: 1024 * 1024,
            max_connections: 64,
            allow_where: false,
            cache_for: Duration::from_secs(60),
            max_trees: 16,
            tls: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ServeOptions;

    /// Printing the options shows neither the token nor a password.
    #[test]
    fn debug_hides_the_token_and_the_password() {
        for (db, password) in [
            ("postgres://u:S3cr3tPw@h/db", "S3cr3tPw"),
            ("postgres://u:S3cr3t/Pa55@h/db", "S3cr3t"),
            ("mysql://u@h/db?password=Xy9zzQ", "Xy9zzQ"),
        ] {
            let shown = format!("{:?}", ServeOptions::new(db, "TokEn-1234567"));
            assert!(!shown.contains("TokEn-1234567"), "{shown}");
            assert!(!shown.contains(password), "{shown}");
            assert!(shown.contains("max_connections"), "{shown}");
        }
    }
}
