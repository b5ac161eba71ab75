//! Passwords in server URLs, in one place: finding the ones a URL carries
//! (read with the `url` crate, as the drivers read URLs), percent-decoding,
//! scrubbing them out of messages, and reading the ones a config file names
//! (`password_file`, `password_env`) rather than holds. What a URL looks
//! like in a message ([`super::redact::redact`]) lives in `redact`; this only
//! knows secrets.

use std::path::Path;

/// Percent-decodes a URL component (`%41` → `A`; a `%` not followed by two
/// hex digits stays as it is; bytes that are not UTF-8 become U+FFFD).
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A query parameter's key or value, decoded as drivers decode them (`+`
/// is a space).
fn form_decode(s: &str) -> String {
    match s.contains('+') {
        true => percent_decode(&s.replace('+', " ")),
        false => percent_decode(s),
    }
}

/// The URL's query parameters as (key, value, value as written), in order,
/// the key and first value decoded.
fn query(url: &str) -> impl Iterator<Item = (String, String, &str)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').filter(|kv| !kv.is_empty()).map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (form_decode(k), form_decode(v), v)
    })
}

/// The last value of a URL query parameter, decoded.
pub fn query_param(url: &str, key: &str) -> Option<String> {
    query(url)
        .filter(|(k, ..)| k == key)
        .map(|(_, v, _)| v)
        .last()
}

/// The URL's query parameters as decoded (key, value) pairs, in order.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    query(url).map(|(k, v, _)| (k, v)).collect()
}

/// The password of a URL's user info, as written (percent-encoded).
fn userinfo_password(url: &str) -> Option<String> {
    let parsed = ::url::Url::parse(url).ok()?;
    parsed.password().map(str::to_string)
}

/// The password a server URL gives the driver, decoded: its last
/// `password` parameter, else its user info's.
pub fn password(url: &str) -> Option<String> {
    query_param(url, "password").or_else(|| userinfo_password(url).map(|p| percent_decode(&p)))
}

/// Every form of every password a URL carries (in its user info, or as
/// `?password=`, any case), as written and decoded, longest first; empty
/// ones left out.
pub fn url_passwords(url: &str) -> Vec<String> {
    let mut out: Vec<String> = userinfo_password(url).into_iter().collect();
    for (k, v, raw) in query(url) {
        if k.eq_ignore_ascii_case("password") {
            out.push(raw.to_string());
            out.push(v);
        }
    }
    let decoded: Vec<String> = out.iter().map(|p| percent_decode(p)).collect();
    out.extend(decoded);
    out.retain(|p| !p.is_empty());
    // Longest first, so a password containing another is replaced whole.
    out.sort_by_key(|p| std::cmp::Reverse(p.len()));
    out.dedup();
    out
}

/// `message` with every secret replaced by `***`; longer secrets go first
/// when `secrets` come longest first (as [`url_passwords`] gives them).
pub fn scrub(mut message: String, secrets: &[String]) -> String {
    for p in secrets {
        if !p.is_empty() && message.contains(p.as_str()) {
            message = message.replace(p.as_str(), "***");
        }
    }
    message
}

/// A password from a file: its first line, without the line ending. An
/// empty or unreadable file is an error naming the file (never its
/// contents).
pub fn password_from_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the password file {}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(format!(
            "the password file {} is empty; write the password on its first line",
            path.display()
        ));
    }
    Ok(line.to_string())
}

/// A password from an environment variable; unset, empty or not UTF-8 is
/// an error naming the variable.
pub fn password_from_env(var: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(p) if !p.is_empty() => Ok(p),
        _ => Err(format!(
            "the environment variable {var} is not set (or empty, or not UTF-8)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_found_and_scrubbed() {
        let url = "mysql://u:s%40cret@h/db";
        let pw = url_passwords(url);
        assert_eq!(
            scrub("bad s%40cret and s@cret".into(), &pw),
            "bad *** and ***"
        );
        let pw = url_passwords("mysql://u@h/db?password=hunter2");
        assert_eq!(scrub("x hunter2".into(), &pw), "x ***");
        // An `@` in the password: the user info ends at the last one.
        assert_eq!(password("postgres://u:p@ss@h/db").as_deref(), Some("p@ss"));
        assert_eq!(
            password("postgres://u:a%20b@h/db?password=c+d").as_deref(),
            Some("c d")
        );
        assert_eq!(password("postgres://u@h/db"), None);
        assert_eq!(percent_decode("p%41ss%"), "pAss%");
    }
}
