//! Where the `mysql` client finds what a URL leaves out: the `[client]`
//! section of `~/.my.cnf` (user, password, host, port) and `MYSQL_PWD`.
//! Applying them to connect options lives in the connector; this only reads.

use std::path::Path;

/// The `[client]` settings of an option file that a connection uses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct ClientOptions {
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
}

/// The `[client]` settings of `~/.my.cnf` (`HOME` from the environment);
/// empty when there is no such file or it cannot be read.
pub(super) fn home_client_options() -> ClientOptions {
    std::env::var_os("HOME")
        .map(|h| client_options(&Path::new(&h).join(".my.cnf")))
        .unwrap_or_default()
}

/// The `[client]` settings of one option file, read as the `mysql` client
/// reads them: `key=value` lines (`-` and `_` alike in keys), a value
/// optionally quoted with `'` or `"` (backslash escapes inside), `#` and `;`
/// starting a comment line, a later setting winning over an earlier one.
pub(super) fn client_options(path: &Path) -> ClientOptions {
    let mut out = ClientOptions::default();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    let mut in_client = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(group) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_client = group.trim().eq_ignore_ascii_case("client");
            continue;
        }
        if !in_client {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), unquote(v.trim())),
            None => (line, String::new()),
        };
        match key.replace('_', "-").to_ascii_lowercase().as_str() {
            "user" => out.user = Some(value),
            "password" => out.password = Some(value),
            "host" => out.host = Some(value),
            "port" => out.port = value.parse().ok(),
            _ => {}
        }
    }
    out
}

/// An option value without its quotes (and, unquoted, without a trailing
/// `# comment`); backslash escapes read as the client reads them.
fn unquote(v: &str) -> String {
    let quote = match v.chars().next() {
        Some(q @ ('\'' | '"')) => q,
        _ => {
            let v = v.split(" #").next().unwrap_or(v).trim_end();
            return unescape(v);
        }
    };
    let inner = &v[1..];
    let end = inner.rfind(quote).unwrap_or(inner.len());
    unescape(&inner[..end])
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('s') => out.push(' '),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_section_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("my.cnf");
        std::fs::write(
            &path,
            "# comment\n[mysqld]\nuser=server\nport=1\n\n[client]\nuser = alice\n\
             password=\"p#w \\\"x\\\"\"\n; note\nhost=db.example\nport=3307\n\
             [mysql]\npassword=other\n[CLIENT]\nhost = 'h2'\n",
        )
        .unwrap();
        let o = client_options(&path);
        assert_eq!(o.user.as_deref(), Some("alice"));
        assert_eq!(o.password.as_deref(), Some("p#w \"x\""));
        assert_eq!(o.host.as_deref(), Some("h2"));
        assert_eq!(o.port, Some(3307));
        assert_eq!(
            client_options(&dir.path().join("none")),
            ClientOptions::default()
        );
    }
}
