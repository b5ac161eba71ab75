//! Rows read in a timestamp key's time order, put into key-byte order as
//! they pass ([`KeyOrder`]): any connector whose SQL orders such a key by
//! time (a server's index, SQLite's text in one proven form) hands its rows
//! through one, so a scan in key order needs no sorting pass.

use std::ops::ControlFlow;

use driftsum_core::Value;

use super::spec::RowSink;

/// Rows of one group at most held back to be put in key order (see
/// [`KeyOrder`]); a larger group is passed on as it came, which the tree
/// builder then finds out of order (and sorts itself).
const MAX_GROUP: usize = 65_536;

/// Puts rows read in a timestamp key's native order into key-byte order.
///
/// Rows come ordered by the key columns' native order; with a timestamp
/// key column, key-byte order differs from that only among rows whose
/// keys agree up to that column's second (see [`super::server::TimeKey::Second`]), and
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
}
