//! driftsum's own options in a MySQL / MariaDB URL's query string, which
//! sqlx ignores: `lock_timeout`, how long a read waits for a lock another
//! session holds (`LOCK TABLES … WRITE`, an `ALTER TABLE`) before that table
//! is reported as an error instead of the run hanging.

use std::time::Duration;

/// How long a read waits for a lock unless the URL says otherwise.
pub(super) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest wait MySQL's `lock_wait_timeout` accepts (one year).
const MAX_LOCK_TIMEOUT_SECS: u64 = 31_536_000;

/// The URL's `lock_timeout` (`5s` or `5`: whole seconds, at least one), or
/// the default; a message naming the fix when it is malformed or repeated.
pub(super) fn lock_timeout(url: &str) -> Result<Duration, String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let values: Vec<&str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| k.eq_ignore_ascii_case("lock_timeout"))
        .map(|(_, v)| v)
        .collect();
    let value = match values.as_slice() {
        [] => return Ok(DEFAULT_LOCK_TIMEOUT),
        [v] => *v,
        _ => return Err("lock_timeout is given more than once in the URL; give it once".into()),
    };
    let digits = value.strip_suffix(['s', 'S']).unwrap_or(value).trim();
    match digits.parse::<u64>() {
        Ok(n) if (1..=MAX_LOCK_TIMEOUT_SECS).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "lock_timeout={value:?} in the URL is not a whole number of seconds from 1 to \
             {MAX_LOCK_TIMEOUT_SECS}; write for example lock_timeout=5s"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_timeouts_parse() {
        let secs = |u: &str| lock_timeout(u).map(|d| d.as_secs());
        assert_eq!(secs("mysql://u@h/db"), Ok(5));
        assert_eq!(secs("mysql://u@h/db?ssl-mode=disabled"), Ok(5));
        assert_eq!(secs("mysql://u@h/db?lock_timeout=30s"), Ok(30));
        assert_eq!(secs("mysql://u@h/db?a=1&lock_timeout=7&b=2"), Ok(7));
        assert_eq!(secs("mysql://u@h/db?LOCK_TIMEOUT=1S"), Ok(1));
        assert_eq!(secs("mysql://u@h/db?lock_timeout=31536000"), Ok(31_536_000));
        for bad in [
            "0",
            "0s",
            "-1",
            "1.5s",
            "5m",
            "",
            "s",
            "31536001",
            "abc",
            "99999999999999999999",
        ] {
            let e = lock_timeout(&format!("mysql://u@h/db?lock_timeout={bad}")).expect_err(bad);
            assert!(e.contains("lock_timeout=5s"), "{e}");
        }
        assert!(lock_timeout("mysql://u@h/db?lock_timeout=1&lock_timeout=2").is_err());
    }
}
