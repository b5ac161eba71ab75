//! libpq's ways of configuring a connection that sqlx does not follow
//! itself: the startup `options` (for the default schema's `search_path`)
//! and the password file (`~/.pgpass`).

use std::path::Path;

use crate::source::secrets;

/// The startup `options` string sqlx sends for this URL.
pub(super) fn startup_options(url: &str) -> String {
    let mut out = std::env::var("PGOPTIONS").unwrap_or_default();
    for (k, v) in secrets::query_pairs(url) {
        let add = if k == "options" {
            v
        } else if let Some(name) = k.strip_prefix("options[").and_then(|r| r.strip_suffix(']')) {
            let escaped = format!("{name}={v}")
                .replace('\\', "\\\\")
                .replace(' ', "\\ ");
            format!("-c {escaped}")
        } else {
            continue;
        };
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&add);
    }
    out
}

/// The `search_path` set in a libpq `options` string (`-c search_path=a,b`,
/// `-csearch_path=a`, `--search_path=a`; backslash escapes a space).
pub(super) fn search_path_from_options(options: &str) -> Option<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
                in_word = true;
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    let mut found = None;
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let setting = if w == "-c" {
            it.next()
        } else if let Some(s) = w.strip_prefix("--") {
            Some(s.to_string())
        } else {
            w.strip_prefix("-c").map(str::to_string)
        };
        if let Some((k, v)) = setting.as_deref().and_then(|s| s.split_once('=')) {
            if k.trim()
                .replace('-', "_")
                .eq_ignore_ascii_case("search_path")
            {
                found = Some(v.to_string());
            }
        }
    }
    found
}

/// The first schema of a `search_path` value, as PostgreSQL reads it:
/// `"Quoted"` keeps its case, a bare name is folded to lower case, `$user`
/// is the user name.
pub(super) fn first_schema(search_path: &str, user: &str) -> Option<String> {
    let s = search_path.trim_start();
    let name = if let Some(rest) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    out.push('"');
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        s.split(',').next().unwrap_or("").trim().to_lowercase()
    };
    match name.as_str() {
        "" => None,
        "$user" => Some(user.to_string()),
        _ => Some(name),
    }
}

/// The password for a connection in a libpq password file
/// (`host:port:database:user:password`, `*` matching anything, `\` escaping
/// `:` and `\`); a socket connection matches `localhost`. Like libpq, a file
/// others can read is ignored.
pub(super) fn pgpass_password(
    path: &Path,
    host: &str,
    port: u16,
    db: &str,
    user: &str,
) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
            return None;
        }
    }
    let text = std::fs::read_to_string(path).ok()?;
    let host = if host.is_empty() || host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    let port = port.to_string();
    let wanted = [host, port.as_str(), db, user];
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        field.push(n);
                    }
                }
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        if fields.len() < 4 {
            continue;
        }
        if fields.iter().zip(wanted).all(|(f, w)| f == "*" || f == w) {
            return Some(field);
        }
    }
    None
}
