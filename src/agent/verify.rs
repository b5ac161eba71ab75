//! Checking what the agent reads from its database against the tree it
//! serves: rows are read a whole leaf at a time, and each leaf's hash and
//! row count recomputed from them must equal the tree's. So every entry and
//! row the agent answers with is the one its tree was built from (or the
//! request is refused), whatever happened to the database since — a commit
//! the file stamps could not see, a range read that misses oddly stored
//! keys — and without keeping a copy of the rows.

use driftsum_core::hash::{self, Domain};
use driftsum_core::tree::{Entry, HashPrefix, Node};
use driftsum_core::{Hash, Key};

/// [`span`] of each of `bounds`, over the served tree's leaves.
pub(super) fn spans(leaves: &[Node], bounds: &[(Option<&Key>, &Key)]) -> Vec<(Option<Key>, Key)> {
    bounds
        .iter()
        .map(|(after, through)| span(leaves, *after, through))
        .collect()
}

/// The key span `(start, end]` to read so that every leaf holding a key of
/// `(after, through]` is read whole: from the end of the leaf before the
/// first such leaf, through the end of the last one (or `through`, past the
/// tree's last key).
pub(super) fn span(leaves: &[Node], after: Option<&Key>, through: &Key) -> (Option<Key>, Key) {
    let first = first_leaf(leaves, after);
    let start = first.checked_sub(1).map(|i| leaves[i].last_key.clone());
    let last = leaves.partition_point(|l| l.last_key < *through);
    let end = leaves.get(last).map_or(through, |l| &l.last_key).clone();
    (start, end)
}

/// The first leaf holding keys after `after`.
fn first_leaf(leaves: &[Node], after: Option<&Key>) -> usize {
    after.map_or(0, |a| leaves.partition_point(|l| l.last_key <= *a))
}

/// Indexes of the spans (ascending at both ends, as [`span`] makes them for
/// ascending ranges) that hold key `k`.
pub(super) fn spans_holding<'a>(
    spans: &'a [(Option<Key>, Key)],
    k: &'a [u8],
) -> impl Iterator<Item = usize> + 'a {
    let from = spans.partition_point(|s| s.1.as_bytes() < k);
    (from..spans.len()).take_while(move |&i| spans[i].0.as_ref().is_none_or(|a| k > a.as_bytes()))
}

/// Recomputes leaves from rows fed in key order, starting at the leaf
/// after a range's lower bound.
pub(super) struct LeafCheck<'t> {
    leaves: &'t [Node],
    at: usize,
    bytes: Vec<u8>,
    rows: u64,
    ok: bool,
}

impl<'t> LeafCheck<'t> {
    pub(super) fn new(leaves: &'t [Node], after: Option<&Key>) -> LeafCheck<'t> {
        LeafCheck {
            leaves,
            at: first_leaf(leaves, after),
            bytes: Vec::new(),
            rows: 0,
            ok: true,
        }
    }

    fn close(&mut self) {
        let leaf = &self.leaves[self.at];
        self.ok &=
            self.rows == leaf.rows && hash::node_hash(Domain::Leaf, &self.bytes) == leaf.hash;
        self.bytes.clear();
        self.rows = 0;
        self.at += 1;
    }

    /// Feeds the next row; leaves it has passed are checked.
    pub(super) fn push(&mut self, key: &[u8], row_hash: &Hash) {
        while self.at < self.leaves.len() && key > self.leaves[self.at].last_key.as_bytes() {
            self.close();
        }
        if self.at == self.leaves.len() {
            // A row past the tree's last key: not in the tree's data.
            self.ok = false;
            return;
        }
        hash::leaf_entry(&mut self.bytes, key, row_hash);
        self.rows += 1;
    }

    /// Checks the leaves left that hold keys up to `through`.
    pub(super) fn finish(&mut self, through: &Key) {
        while self.at < self.leaves.len()
            && (self.at == 0 || self.leaves[self.at - 1].last_key < *through)
        {
            self.close();
        }
    }

    /// Whether every leaf checked so far is the tree's.
    pub(super) fn ok(&self) -> bool {
        self.ok
    }
}

/// One range's entries for a page of at most `room`, read a whole leaf at a
/// time and checked: once the page has one entry too many, reading stops at
/// the end of that entry's leaf.
pub(super) struct RangeRead<'t> {
    check: LeafCheck<'t>,
    after: Option<&'t Key>,
    through: &'t Key,
    room: usize,
    found: Vec<Entry>,
    /// The leaf holding the entry that overfilled the page.
    full_at: Option<usize>,
    stopped: bool,
}

impl<'t> RangeRead<'t> {
    pub(super) fn new(
        leaves: &'t [Node],
        after: Option<&'t Key>,
        through: &'t Key,
        room: usize,
    ) -> RangeRead<'t> {
        RangeRead {
            check: LeafCheck::new(leaves, after),
            after,
            through,
            room,
            found: Vec::new(),
            full_at: None,
            stopped: false,
        }
    }

    /// Feeds the next row of the range's [`span`], in key order; false when
    /// no more are needed (or the rows are not the tree's: see
    /// [`finish`](RangeRead::finish)).
    pub(super) fn feed(&mut self, key: &[u8], row_hash: &Hash) -> bool {
        self.check.push(key, row_hash);
        if !self.check.ok() {
            return false;
        }
        if self.full_at.is_some_and(|f| self.check.at > f) {
            self.stopped = true;
            return false;
        }
        let inside =
            self.after.is_none_or(|a| key > a.as_bytes()) && key <= self.through.as_bytes();
        if inside {
            self.found.push(Entry {
                key: Key::from_bytes(key),
                hash: HashPrefix::from(row_hash),
            });
            if self.found.len() > self.room && self.full_at.is_none() {
                self.full_at = Some(self.check.at);
            }
        }
        true
    }

    /// The entries found, in key order (possibly more than `room`), or
    /// `None` when the rows read are not the tree's.
    pub(super) fn finish(mut self) -> Option<Vec<Entry>> {
        if !self.stopped {
            self.check.finish(self.through);
        }
        self.check.ok().then_some(self.found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftsum_core::{key, Builder, Shape, Value};

    fn k(i: i64) -> Key {
        key::encode(&[Value::Int(i.into())])
    }

    fn h(i: i64, salt: u8) -> Hash {
        hash::row_hash(&[i as u8, (i >> 8) as u8, salt])
    }

    /// Rows 0, 3, 6, … below `n` in a tree of small leaves.
    fn tree(n: i64) -> Vec<Node> {
        let mut b = Builder::new(Shape {
            leaf_target: 4,
            fanout: 3,
        });
        for i in (0..n).step_by(3) {
            b.push(k(i).as_bytes(), &h(i, 0)).expect("in order");
        }
        b.finish().levels.swap_remove(0)
    }

    /// Reads `(after, through]` from `rows` as the agent does.
    fn read(
        leaves: &[Node],
        rows: &[(i64, u8)],
        after: Option<i64>,
        through: i64,
        room: usize,
    ) -> Option<Vec<i64>> {
        let (after, through) = (after.map(k), k(through));
        let (start, end) = span(leaves, after.as_ref(), &through);
        let mut r = RangeRead::new(leaves, after.as_ref(), &through, room);
        for &(i, salt) in rows {
            let key = k(i);
            if start.as_ref().is_some_and(|s| key <= *s) || key > end {
                continue;
            }
            if !r.feed(key.as_bytes(), &h(i, salt)) {
                break;
            }
        }
        let found = r.finish()?;
        Some(
            found
                .iter()
                .map(|e| match key::decode(e.key.as_bytes()).as_deref() {
                    Some([Value::Int(i)]) => *i as i64,
                    _ => panic!("not an int key"),
                })
                .collect(),
        )
    }

    /// The tree's own rows read back in any range give exactly the keys in
    /// it; a changed, missing or added row anywhere in a leaf the range
    /// touches makes the read fail, and one outside leaves it alone.
    #[test]
    fn only_the_trees_rows_pass() {
        let n = 600;
        let leaves = tree(n);
        assert!(leaves.len() > 20, "{} leaves", leaves.len());
        let rows: Vec<(i64, u8)> = (0..n).step_by(3).map(|i| (i, 0)).collect();
        for (after, through) in [
            (None, 0),
            (None, 100),
            (Some(0), 1),
            (Some(50), 52),
            (Some(50), 400),
            (Some(590), 700),
            (Some(1000), 2000),
        ] {
            let want: Vec<i64> = (0..n)
                .step_by(3)
                .filter(|&i| after.is_none_or(|a| i > a) && i <= through)
                .collect();
            assert_eq!(
                read(&leaves, &rows, after, through, usize::MAX),
                Some(want.clone())
            );
            // A page: stops after one entry too many, within checked leaves.
            let page = read(&leaves, &rows, after, through, 5).expect("checked");
            assert!(page.len() >= want.len().min(6) && want.starts_with(&page));
        }
        let (after, through) = (Some(150), 240);
        let (start, end) = span(&leaves, after.map(k).as_ref(), &k(through));
        let decode = |k: &Key| match key::decode(k.as_bytes()).as_deref() {
            Some([Value::Int(i)]) => *i as i64,
            _ => panic!("not an int key"),
        };
        let (lo, hi) = (start.as_ref().map_or(i64::MIN, decode), decode(&end));
        assert!(lo < 150 && hi >= 240);
        for at in (0..n).step_by(3) {
            let changed: Vec<(i64, u8)> = rows
                .iter()
                .map(|&(i, s)| (i, if i == at { 1 } else { s }))
                .collect();
            let missing: Vec<(i64, u8)> = rows.iter().copied().filter(|r| r.0 != at).collect();
            let mut added = rows.clone();
            added.push((at + 1, 0));
            added.sort();
            let touched = at > lo && at <= hi;
            for (what, rows) in [("changed", changed), ("missing", missing)] {
                let r = read(&leaves, &rows, after, through, usize::MAX);
                assert_eq!(r.is_none(), touched, "{what} row {at}");
            }
            let r = read(&leaves, &added, after, through, usize::MAX);
            assert_eq!(r.is_none(), at + 1 > lo && at < hi, "added row {}", at + 1);
        }
    }

    /// Spans of ascending ranges are ascending; each key lands in every
    /// span holding it.
    #[test]
    fn keys_land_in_their_spans() {
        let leaves = tree(600);
        let bounds = [
            (None, 10),
            (Some(10), 11),
            (Some(11), 300),
            (Some(400), 800),
        ];
        let spans: Vec<(Option<Key>, Key)> = bounds
            .iter()
            .map(|(a, t)| span(&leaves, a.map(k).as_ref(), &k(*t)))
            .collect();
        for i in -5..900 {
            let key = k(i);
            let want: Vec<usize> = spans
                .iter()
                .enumerate()
                .filter(|(_, s)| s.0.as_ref().is_none_or(|a| key > *a) && key <= s.1)
                .map(|(j, _)| j)
                .collect();
            let got: Vec<usize> = spans_holding(&spans, key.as_bytes()).collect();
            assert_eq!(got, want, "key {i}");
        }
    }
}
