//! What the server connectors (PostgreSQL, MySQL) share: a small tokio
//! runtime to drive sqlx from the synchronous [`super::Source`] trait, and
//! bounded waits, so an unreachable server is a clear error, not a hang.

use std::future::Future;
use std::ops::ControlFlow;
use std::time::Duration;

use driftsum_core::Value;

use super::spec::RowSink;
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

/// Rows of one group at most held back to be put in key order (see
/// [`KeyOrder`]); a larger group is passed on as it came, which the tree
/// builder then finds out of order (and sorts itself).
const MAX_GROUP: usize = 65_536;

/// Puts rows read in a timestamp key's native order into key-byte order.
///
/// Rows come ordered by the key columns' native order; with a timestamp
/// key column, key-byte order differs from that only among rows whose
/// keys agree up to that column's second (see [`TimeKey::Second`]), and
/// such rows arrive together. So rows are held back one such group at a
/// time and passed on sorted by key bytes: the scan then yields key order
/// and the tree needs no second, sorting, pass. Rows with a year outside
/// 1000..9999 can still come out of order; the tree builder checks order,
/// so that costs time, never correctness.
pub struct KeyOrder {
    /// Position of the first timestamp column in the key.
    ts: usize,
    nkey: usize,
    group: Vec<u8>,
    next_group: Vec<u8>,
    rows: Vec<(Vec<u8>, Vec<Value>)>,
    /// Key and row buffers to reuse (a fresh allocation a row showed in
    /// profiles).
    spare: Vec<(Vec<u8>, Vec<Value>)>,
    /// The current group outgrew [`MAX_GROUP`]: pass its rows on as they come.
    overflow: bool,
    /// The sink answered [`ControlFlow::Break`]: it gets no more rows.
    stopped: bool,
}

impl KeyOrder {
    /// `ts_column`: the position of the first key column read as a
    /// timestamp, of `nkey` key columns.
    pub fn new(ts_column: usize, nkey: usize) -> KeyOrder {
        KeyOrder {
            ts: ts_column,
            nkey,
            group: Vec::new(),
            next_group: Vec::new(),
            rows: Vec::new(),
            spare: Vec::new(),
            overflow: false,
            stopped: false,
        }
    }

    /// Takes one row (key values first), passing on every row it completes;
    /// `Break` once the sink answered it (it then gets no more rows).
    pub fn push(&mut self, row: &[Value], sink: &mut RowSink<'_>) -> ControlFlow<()> {
        if self.stopped {
            return ControlFlow::Break(());
        }
        let key = row.get(..self.nkey).unwrap_or(row);
        self.next_group.clear();
        driftsum_core::key::encode_into(&mut self.next_group, key.get(..self.ts).unwrap_or(key));
        match key.get(self.ts) {
            Some(Value::Timestamp(m) | Value::TimestampNaive(m)) => {
                self.next_group.push(1);
                self.next_group
                    .extend_from_slice(&m.div_euclid(1_000_000).to_be_bytes());
            }
            // Anything else (NULL, an invalid value) is a group of its own
            // kind, compared by its key bytes.
            Some(v) => {
                self.next_group.push(2);
                driftsum_core::key::encode_value(&mut self.next_group, v);
            }
            None => {}
        }
        if self.next_group != self.group {
            self.flush(sink)?;
            std::mem::swap(&mut self.group, &mut self.next_group);
            self.overflow = false;
        }
        if self.overflow {
            return self.pass(row, sink);
        }
        // The key bytes are made only when a group has rows to sort (most
        // hold one row; formatting a timestamp's key text costs).
        let (kb, mut buf) = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(row);
        self.rows.push((kb, buf));
        if self.rows.len() > MAX_GROUP {
            self.overflow = true;
            // Taken out and put back, keeping the buffer's allocation.
            let mut rows = std::mem::take(&mut self.rows);
            let mut flow = ControlFlow::Continue(());
            for (_, r) in rows.drain(..) {
                if flow.is_continue() {
                    flow = self.pass(&r, sink);
                }
            }
            self.rows = rows;
            return flow;
        }
        ControlFlow::Continue(())
    }

    /// Hands one row to the sink, noting when it wants no more.
    fn pass(&mut self, row: &[Value], sink: &mut RowSink<'_>) -> ControlFlow<()> {
        let flow = sink(row);
        self.stopped |= flow.is_break();
        flow
    }

    /// Passes on the held rows in key order; call once after the last row.
    pub fn flush(&mut self, sink: &mut RowSink<'_>) -> ControlFlow<()> {
        if self.stopped {
            return ControlFlow::Break(());
        }
        if self.rows.len() > 1 {
            let nkey = self.nkey;
            for (kb, r) in &mut self.rows {
                driftsum_core::key::encode_into(kb, r.get(..nkey).unwrap_or(r));
            }
            self.rows.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let mut rows = std::mem::take(&mut self.rows);
        let mut flow = ControlFlow::Continue(());
        for held in rows.drain(..) {
            if flow.is_continue() {
                flow = self.pass(&held.1, sink);
            }
            self.spare.push(held);
        }
        self.rows = rows;
        self.spare.truncate(64);
        flow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftsum_core::key;
    use proptest::prelude::*;

    /// Feeds `rows` (in native order) through a [`KeyOrder`] on key column
    /// `ts`, returning what it passed on.
    fn reorder(rows: &[Vec<Value>], ts: usize, nkey: usize) -> Vec<Vec<Value>> {
        let mut out = Vec::new();
        let mut order = KeyOrder::new(ts, nkey);
        let mut sink = |r: &[Value]| {
            out.push(r.to_vec());
            ControlFlow::Continue(())
        };
        for r in rows {
            let _ = order.push(r, &mut sink);
        }
        let _ = order.flush(&mut sink);
        out
    }

    proptest! {
        /// Timestamps in time order, many in the same second with fractions
        /// of every length, come out in key-byte order, every row once; so
        /// do compound keys with the timestamp second.
        #[test]
        fn rows_come_out_in_key_order(
            mut micros in proptest::collection::vec(
                (0i64..40, prop_oneof![Just(0i64), 0i64..10, (0i64..10).prop_map(|d| d * 100_000),
                                       (0i64..1000).prop_map(|d| d * 1000), 0i64..1_000_000]),
                0..200),
            lead in 0i64..3,
        ) {
            micros.sort();
            micros.dedup();
            let base = 1_700_000_000_000_000i64;
            for compound in [false, true] {
                let rows: Vec<Vec<Value>> = micros
                    .iter()
                    .map(|(sec, frac)| {
                        let t = Value::Timestamp((base + sec * 1_000_000 + frac).into());
                        let n = Value::Int((sec * 1_000_000 + frac) as i128);
                        if compound {
                            vec![Value::Int(lead as i128), t, n]
                        } else {
                            vec![t, n]
                        }
                    })
                    .collect();
                let (ts, nkey) = if compound { (1, 2) } else { (0, 1) };
                let out = reorder(&rows, ts, nkey);
                let keys: Vec<_> = out.iter().map(|r| key::encode(&r[..nkey])).collect();
                prop_assert!(keys.windows(2).all(|w| w[0] < w[1]), "{:?}", keys);
                let mut a = out.clone();
                let mut b = rows.clone();
                let by_n = |r: &Vec<Value>| r.last().map(|v| v.to_string());
                a.sort_by_key(by_n);
                b.sort_by_key(by_n);
                prop_assert_eq!(a, b);
            }
        }
    }

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
