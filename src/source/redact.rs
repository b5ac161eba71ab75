//! Hiding passwords in URLs shown to people: which spans of a server URL
//! (or libpq `key=value` string) may hold a secret, however malformed it
//! is, and the URL with those spans replaced. Finding the password itself
//! (to scrub it from a driver's message) is [`super::secrets`]' job.

/// The URL (or libpq `key=value` string) with every password replaced by
/// `***`, for messages. See [`secret_spans`] for what is hidden: this holds
/// however malformed the URL, at the cost of hiding more than the password
/// when the URL cannot be read for sure.
pub fn redact(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut at = 0;
    for r in secret_spans(url) {
        out.push_str(&url[at..r.start]);
        out.push_str("***");
        at = r.end;
    }
    out.push_str(&url[at..]);
    out
}

/// The byte ranges of `url` that may hold a secret, in order, disjoint:
///
/// - from a `password=` (also `sslpassword=`, `passwd=`, `pwd=`, any case,
///   spaces allowed around `=`: a query parameter or a libpq `key=value`
///   string) to the end: a value may hold `&`, spaces or `@`, so nothing
///   after it is shown;
/// - in `SCHEME://USERINFO@HOST…`, everything after the user name up to the
///   *last* `@` (a password may hold `@`, `/`, `?`, `#`, `:` or a stray `%`
///   unencoded), and the user name too when it holds `/`, `?` or `#`;
/// - with no `@`, everything after `://` unless it is plainly hosts, numeric
///   ports, a database name and plain query parameters: `postgres://u:pw/x`
///   has lost its host, and `pw/x` must not be taken for a port and path.
pub fn secret_spans(url: &str) -> Vec<std::ops::Range<usize>> {
    let cut = password_value(url);
    let head = &url[..cut.unwrap_or(url.len())];
    let mut spans = Vec::new();
    if let Some(start) = authority_start(head) {
        let rest = &head[start..];
        match rest.rfind('@') {
            Some(at) => {
                let userinfo = &rest[..at];
                if let Some(colon) = userinfo.find(':') {
                    let user = &userinfo[..colon];
                    let from = match user.contains(['/', '?', '#']) {
                        true => start,
                        false => start + colon + 1,
                    };
                    spans.push(from..start + at);
                }
            }
            None => {
                if !plain_address(rest) {
                    spans.push(start..head.len());
                }
            }
        }
    }
    if let Some(c) = cut {
        match spans.last_mut() {
            Some(last) if last.end == c => last.end = url.len(),
            _ => spans.push(c..url.len()),
        }
    }
    spans
}

/// Where the authority starts: after `SCHEME://`, or after `SCHEME:` when
/// the slashes are missing (sqlx may still read it). Only the first `:`
/// ends a scheme, so a `://` inside a password is never taken for one.
/// SQLite URLs hold a path, never a password; a string that does not start
/// with a scheme (a libpq `key=value` string) has no authority.
fn authority_start(s: &str) -> Option<usize> {
    let (scheme, rest) = s.split_once(':')?;
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !is_scheme || scheme.to_ascii_lowercase().starts_with("sqlite") {
        return None;
    }
    let slashes = if rest.starts_with("//") { 2 } else { 0 };
    Some(scheme.len() + 1 + slashes)
}

/// The start of the first password value in `s` (see [`secret_spans`]).
fn password_value(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut first: Option<usize> = None;
    for needle in ["password", "passwd", "pwd"] {
        for (i, _) in lower.match_indices(needle) {
            // `sslpassword` counts; `pwd` and `passwd` only as whole words.
            if needle != "password" && i > 0 && b[i - 1].is_ascii_alphanumeric() {
                continue;
            }
            let mut j = i + needle.len();
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < b.len() && b[j] == b'=' {
                first = Some(first.map_or(j + 1, |f| f.min(j + 1)));
                break;
            }
        }
    }
    first
}

/// Whether what follows `://` in a URL without `@` is plainly hosts (see
/// [`plain_hosts`]), then an optional `/DATABASE` and `?KEY=VALUE&…` of
/// plain characters, and no fragment.
fn plain_address(rest: &str) -> bool {
    let plain = |s: &str, extra: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-%$".contains(c) || extra.contains(c))
    };
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (hosts, db) = before_query.split_once('/').unwrap_or((before_query, ""));
    plain_hosts(hosts) && plain(db, "") && plain(query, "=&")
}

/// Whether an authority without `@` is plainly `HOST[:PORT][,HOST[:PORT]…]`
/// (host names, IPv4, `[IPv6]`, percent-encoded socket paths; numeric ports).
fn plain_hosts(authority: &str) -> bool {
    authority.split(',').all(|hp| {
        let (host, port) = match hp.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((addr, after))
                    if addr
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() || ".:".contains(c)) =>
                {
                    match after {
                        "" => return true,
                        p => match p.strip_prefix(':') {
                            Some(port) => ("", port),
                            None => return false,
                        },
                    }
                }
                _ => return false,
            },
            None => match hp.split_once(':') {
                Some((h, p)) => (h, p),
                None => (hp, ""),
            },
        };
        // `h:` with no port is odd enough to be a password's start.
        let port_ok = match hp.contains(':') && !hp.starts_with('[') {
            true => !port.is_empty(),
            false => true,
        };
        host.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-%".contains(c))
            && port.chars().all(|c| c.is_ascii_digit())
            && port_ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::url::DbUrl;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact("mysql://u@h/db?password=secret&x=1"),
            "mysql://u@h/db?password=***"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    /// URL shapes a password is written into: well-formed, malformed, every
    /// engine's scheme, query parameters and libpq key=value strings. `false`
    /// marks shapes without a host, where some passwords make a well-formed
    /// URL (`postgres://u:a@b` names host `b`).
    const SHAPES: &[(&str, bool)] = &[
        ("postgres://u:{pw}@h:5432/db", true),
        ("postgresql://u:{pw}@h/db?sslmode=require", true),
        ("mysql://root:{pw}@127.0.0.1:3306/test", true),
        ("mariadb://u:{pw}@[::1]:3306/db", true),
        ("postgres://u:{pw}@/db", true),
        ("postgres://:{pw}@h/db", true),
        ("postgres://u:{pw}@h1:5432,h2:5433/db", true),
        ("mysql://u:{pw}@h/db#frag", true),
        ("postgres:u:{pw}@h/db", true),
        ("postgres://u@h/db?password={pw}", true),
        (
            "postgres://u@h/db?sslmode=require&PassWord={pw}&application_name=x",
            true,
        ),
        ("postgres://u@h/db?sslpassword={pw}", true),
        ("host=h user=u password={pw} dbname=d", true),
        ("host=h password = '{pw}'", true),
        ("postgres://u:{pw}", false),
        ("postgres://u:{pw}/db", false),
        ("mysql://u:{pw}?ssl-mode=disabled", false),
    ];

    /// Every 4-character piece of the password that the URL around it does
    /// not hold: none may survive redaction.
    fn pieces<'a>(pw: &'a str, around: &'a str) -> impl Iterator<Item = String> + 'a {
        let c: Vec<char> = pw.chars().collect();
        (0..c.len().saturating_sub(3))
            .map(move |i| c[i..i + 4].iter().collect::<String>())
            .filter(move |p| !around.contains(p.as_str()))
    }

    proptest::proptest! {
        #[test]
        fn no_password_survives(
            pw in "[ -~é日€]{6,24}",
            shape in 0..SHAPES.len(),
        ) {
            let (shape, has_host) = SHAPES[shape];
            // Without a host, a password like `5432/db?x=1` makes a
            // well-formed URL (port, database, query), shown as such.
            let url_like = pw.starts_with(|c: char| c.is_ascii_digit())
                && pw.chars().all(|c| c.is_ascii_alphanumeric() || "_.-%$/?=&".contains(c));
            proptest::prop_assume!(has_host || !(pw.contains('@') || url_like));
            let url = shape.replace("{pw}", &pw);
            let around = shape.replace("{pw}", "");
            let shown = redact(&url);
            proptest::prop_assert!(!shown.contains(&pw), "{url:?} -> {shown:?}");
            for p in pieces(&pw, &around) {
                proptest::prop_assert!(!shown.contains(&p), "{url:?} -> {shown:?} shows {p:?}");
            }
            let debug = format!("{:?}", DbUrl::parse(&url));
            proptest::prop_assert!(!debug.contains(&pw), "{debug}");
            let err = DbUrl::parse(&format!("x{url}")).err().map(|e| e.to_string());
            proptest::prop_assert!(!err.unwrap_or_default().contains(&pw));
        }
    }

    #[test]
    fn malformed_urls_hide_everything_unsure() {
        assert_eq!(
            redact("postgres://u:S3cr3t/Pa55@host/db"),
            "postgres://u:***@host/db"
        );
        assert_eq!(redact("postgres://u:S3cr3t/Pa55"), "postgres://***");
        assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact("mysql://u:a:b#c%zz@[::1]:3306/db"),
            "mysql://u:***@[::1]:3306/db"
        );
        assert_eq!(
            redact("host=h user=u password='x y' dbname=d"),
            "host=h user=u password=***"
        );
        assert_eq!(
            redact("postgres://u:x@h/db?password=y&a=b"),
            "postgres://u:***@h/db?password=***"
        );
        // Nothing secret: shown whole.
        for url in [
            "postgres://h:5432/db",
            "postgres://[::1]:5432/db",
            "postgres://h1:1,h2:2/db?sslmode=require",
            "postgres://%2Fvar%2Frun/db",
            "mysql://u@h/db",
            "sqlite:/tmp/my file:x@y.db",
            "driftsum://10.0.0.5:7878",
        ] {
            assert_eq!(redact(url), url);
        }
    }
}
