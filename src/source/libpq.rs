//! libpq's own conventions that a `postgres://` URL does not spell out: a
//! `key=value` connection string read as the URL it stands for, and the
//! operating-system user as the user a connection naming none connects as.
//! (The startup `options` and `.pgpass` are the connector's:
//! `postgres/conninfo.rs`.)

use super::redact::redact;
use super::secrets;
use crate::error::SourceError;

/// The user a PostgreSQL URL naming none connects as, as libpq decides:
/// `None` when the URL names one (in its user info or `?user=`) or
/// `PGUSER` does (the driver reads both), else the name of the
/// operating-system user this process runs as.
pub fn default_user(url: &str) -> Option<String> {
    let named = ::url::Url::parse(url).is_ok_and(|u| !u.username().is_empty())
        || secrets::query_param(url, "user").is_some()
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

/// Whether `s` is a libpq `key=value` connection string (`host=h
/// dbname=d`): it starts with a keyword and `=`, which no URL scheme holds.
pub(crate) fn is_conninfo(s: &str) -> bool {
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
pub(crate) fn conninfo_url(s: &str) -> Result<String, SourceError> {
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
