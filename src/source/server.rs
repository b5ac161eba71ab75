//! What the server connectors (PostgreSQL, MySQL) share: a small tokio
//! runtime to drive sqlx from the synchronous [`super::Source`] trait, and
//! bounded waits, so an unreachable server is a clear error, not a hang.

use std::future::Future;
use std::time::Duration;

use driftsum_core::Value;

use super::sql::Bounds;
use crate::error::SourceError;

/// How long connecting to a server may take before it counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A single-threaded runtime owned by one connection.
pub fn runtime() -> Result<tokio::runtime::Runtime, SourceError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SourceError::Other(format!("cannot start the async runtime: {e}")))
}

/// Runs `fut` on `rt`, failing with a clear message after `limit`.
pub fn block_on_timeout<T>(
    rt: &tokio::runtime::Runtime,
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, SourceError>>,
) -> Result<T, SourceError> {
    rt.block_on(async {
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::Other(format!(
                "{what}: no answer within {} s",
                limit.as_secs()
            ))),
        }
    })
}

/// One server connection and the runtime that drives it, held for the
/// connection's life (one read-only session). Once closed (its protocol
/// state unknown after a failure), every use is an error saying so.
pub struct Session<C: sqlx::Connection> {
    // Declared before `rt`: the connection must go before its runtime.
    conn: Option<C>,
    rt: tokio::runtime::Runtime,
    /// The server's location without credentials, for messages.
    location: String,
}

impl<C: sqlx::Connection> Session<C> {
    pub fn new(conn: C, rt: tokio::runtime::Runtime, location: String) -> Self {
        Session {
            conn: Some(conn),
            rt,
            location,
        }
    }

    /// The connection and its runtime; an error once it is closed.
    pub fn open(&mut self) -> Result<(&mut C, &tokio::runtime::Runtime), SourceError> {
        match self.conn.as_mut() {
            Some(c) => Ok((c, &self.rt)),
            None => Err(SourceError::Other(format!(
                "{}: the connection is closed",
                self.location
            ))),
        }
    }

    /// Closes the connection for good, without a goodbye (its protocol
    /// state is unknown).
    pub fn discard(&mut self) {
        self.conn = None;
    }
}

impl<C: sqlx::Connection> Drop for Session<C> {
    fn drop(&mut self) {
        // Say goodbye (the server then ends the read-only transaction), but
        // never block inside someone else's runtime.
        if let Some(conn) = self.conn.take() {
            if tokio::runtime::Handle::try_current().is_err() {
                let _ = self.rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(2), conn.close()).await
                });
            }
        }
    }
}

/// The first column of catalog rows (a name a row), NULLs left out.
pub fn first_column(rows: Vec<Vec<Option<String>>>) -> Vec<String> {
    rows.into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect()
}

/// How a date or timestamp key column's bound values become native bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeKey {
    /// A date: key text `YYYY-MM-DD`, whose byte order is date order.
    Date,
    /// A timestamp: key text `YYYY-MM-DDTHH:MM:SS[.f][Z]`. The fraction is
    /// written without trailing zeros, so within one second the byte order
    /// is not time order (`…:00.5Z` sorts before `…:00Z`); to the second it
    /// is.
    Second,
}

/// The time prefixes bounding a range on its leading key column: a lower
/// bound (inclusive) when it has an `after`, an upper one from its
/// `through`; `None` when neither side can be bounded (far years,
/// infinities).
pub fn time_bounds(
    (after, through): Bounds<'_>,
    kind: TimeKey,
) -> Option<(Option<String>, Option<String>)> {
    let lo = after.and_then(|a| time_prefix(a.first()?, kind));
    let hi = through.first().and_then(|t| time_prefix(t, kind));
    (lo.is_some() || hi.is_some()).then_some((lo, hi))
}

/// The native value (as SQL text) at or below every key after `v` in byte
/// order, when `v` is a key column value of a date or timestamp with a
/// year from 1000 to 9999 (four digits, so its text has a fixed shape):
/// `YYYY-MM-DD` for a date, `YYYY-MM-DD HH:MM:SS` (the second it falls in)
/// for a timestamp. `None` for anything else (NULL, a far year, an
/// infinity, a form this does not know), which the caller leaves unbounded.
///
/// Why this bounds a byte range: every key of a year 1000..9999 starts with
/// that fixed-width prefix, so two keys compare like their prefixes unless
/// those are equal. A key in `(after, through]` thus has a prefix in
/// `[prefix(after), prefix(through)]`; keys of other years are read by a
/// separate condition (see [`TIME_REGULAR`]).
pub fn time_prefix(v: &Value, kind: TimeKey) -> Option<String> {
    let owned;
    let s = match v {
        Value::Text(s) => s.as_str(),
        Value::Date(_) | Value::Timestamp(_) | Value::TimestampNaive(_) => {
            owned = v.to_string();
            owned.as_str()
        }
        _ => return None,
    };
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date = digits(0..4)
        && b[0] != b'0'
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10);
    if !date {
        return None;
    }
    match kind {
        TimeKey::Date => (b.len() == 10).then(|| s.to_string()),
        TimeKey::Second => {
            let time = b.get(10) == Some(&b'T')
                && digits(11..13)
                && b.get(13) == Some(&b':')
                && digits(14..16)
                && b.get(16) == Some(&b':')
                && digits(17..19)
                && matches!(b.get(19), None | Some(b'.' | b'Z'));
            time.then(|| format!("{} {}", &s[..10], &s[11..19]))
        }
    }
}

/// The native values between which a date or timestamp has a four-digit
/// year (see [`time_prefix`]): keys outside are read by every range.
pub const TIME_REGULAR: (&str, &str) = ("1000-01-01", "10000-01-01");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_prefixes_only_for_four_digit_years() {
        let t = |s: &str| Value::Text(s.into());
        let sec = TimeKey::Second;
        assert_eq!(
            time_prefix(&t("2024-02-29T23:59:59.5Z"), sec).as_deref(),
            Some("2024-02-29 23:59:59")
        );
        assert_eq!(
            time_prefix(&t("1000-01-01T00:00:00"), sec).as_deref(),
            Some("1000-01-01 00:00:00")
        );
        for odd in [
            "0999-12-31T23:59:59Z",
            "10000-01-01T00:00:00Z",
            "-0044-03-15T12:00:00Z",
            "<invalid: infinity>",
            "2024-02-29",
            "2024-02-29T23:59",
            "2024-02-29 23:59:59Z",
        ] {
            assert_eq!(time_prefix(&t(odd), sec), None, "{odd}");
        }
        assert_eq!(
            time_prefix(&t("2024-02-29"), TimeKey::Date).as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(time_prefix(&t("2024-02-29T00:00:00Z"), TimeKey::Date), None);
        assert_eq!(time_prefix(&Value::Null, TimeKey::Date), None);
        assert_eq!(time_prefix(&Value::Int(5), sec), None);
    }
}
