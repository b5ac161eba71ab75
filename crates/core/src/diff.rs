//! The top-down walk over two trees, yielding the key ranges that drifted.
//!
//! Each side is reached through [`TreeSide`] (its root, and the children of a
//! node), so the same walk runs over two trees in memory, two tree files, or
//! a tree served by a remote agent. The walk keeps one frontier of nodes per
//! side, both covering the key space after the last point where the sides
//! were seen to agree. Nodes are aligned by their last key: equal last key
//! and hash means equal content, and the walk moves past both; otherwise it
//! opens the larger node. Where even leaves disagree, it consumes nodes from
//! whichever side is behind until both sides have consumed up to the same
//! key, and reports that key interval as one [`DriftRange`]. Trees of
//! different heights and shifted boundaries therefore compare correctly, and
//! the work done grows with the differences, not with the table.
//!
//! What the walk exchanges is counted in the wire encoding of
//! [`crate::tree::wire`], whatever the sides are, so a walk over two trees in
//! memory reports the bytes and round trips a walk over two agents costs.
//! [`entry_differences`] names the differing keys inside a range from the two
//! sides' leaf entries. Row-level comparison is not done here: the core never
//! touches a database.

use std::collections::VecDeque;
use std::error::Error as StdError;

use crate::key::Key;
use crate::tree::wire::{self, ChildrenRequest, RootRequest};
use crate::tree::{Entry, NodeSummary};

/// One side of a comparison, as the walk sees it.
pub trait TreeSide {
    type Error: StdError + Send + Sync + 'static;
    /// The root, or `None` for an empty table.
    fn root(&mut self) -> Result<Option<NodeSummary>, Self::Error>;
    /// The children of an inner node, in key order.
    fn children(&mut self, node: &NodeSummary) -> Result<Vec<NodeSummary>, Self::Error>;
}

/// Which side of a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Source,
    Target,
}

/// A key interval in which the two sides differ: every row with a key in
/// `(after, through]` must be compared row by row; no row outside any range
/// differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftRange {
    /// Exclusive lower bound; `None` means from the first key.
    pub after: Option<Key>,
    /// Inclusive upper bound.
    pub through: Key,
    pub source_rows: u64,
    pub target_rows: u64,
}

impl DriftRange {
    pub fn contains(&self, key: &[u8]) -> bool {
        self.after.as_ref().is_none_or(|a| key > a.as_bytes()) && key <= self.through.as_bytes()
    }
}

/// What fetching the nodes of one tree level cost (both sides together).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LevelCost {
    /// The level of the nodes fetched: 0 for leaves.
    pub level: u8,
    pub round_trips: u64,
    pub nodes: u64,
    /// Request and response bytes, in the wire encoding.
    pub bytes: u64,
}

/// What a walk cost.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WalkStats {
    /// Pairs of nodes compared.
    pub nodes_compared: u64,
    /// Node summaries fetched from each side (roots and children).
    pub nodes_fetched: u64,
    /// Bytes of the requests and responses, in the wire encoding.
    pub bytes_exchanged: u64,
    /// Requests made to the sides (one per root or children fetch).
    pub round_trips: u64,
    /// The same, per level of the fetched nodes, root level first.
    pub levels: Vec<LevelCost>,
}

impl WalkStats {
    fn note(&mut self, level: u8, nodes: u64, bytes: u64) {
        self.round_trips += 1;
        self.nodes_fetched += nodes;
        self.bytes_exchanged += bytes;
        let i = match self.levels.iter().position(|l| l.level == level) {
            Some(i) => i,
            None => {
                self.levels.push(LevelCost {
                    level,
                    ..LevelCost::default()
                });
                self.levels.sort_by_key(|l| std::cmp::Reverse(l.level));
                self.levels
                    .iter()
                    .position(|l| l.level == level)
                    .expect("just added")
            }
        };
        let l = &mut self.levels[i];
        l.round_trips += 1;
        l.nodes += nodes;
        l.bytes += bytes;
    }
}

/// A side failed to answer during the walk.
#[derive(Debug, thiserror::Error)]
#[error("reading the {side:?} tree: {source}")]
pub struct WalkError {
    pub side: Side,
    #[source]
    pub source: Box<dyn StdError + Send + Sync>,
}

struct Region {
    after: Option<Key>,
    rows: [u64; 2],
}

/// The walk, as a pull iterator of drifted ranges in key order; adjacent
/// ranges are merged.
pub struct Walk<A, B> {
    a: A,
    b: B,
    started: bool,
    front: [VecDeque<NodeSummary>; 2],
    /// Last key each side has consumed up to (`None`: nothing yet).
    consumed: [Option<Key>; 2],
    region: Option<Region>,
    pending: Option<DriftRange>,
    stats: WalkStats,
}

impl<A: TreeSide, B: TreeSide> Walk<A, B> {
    pub fn new(source: A, target: B) -> Walk<A, B> {
        Walk {
            a: source,
            b: target,
            started: false,
            front: [VecDeque::new(), VecDeque::new()],
            consumed: [None, None],
            region: None,
            pending: None,
            stats: WalkStats::default(),
        }
    }

    pub fn stats(&self) -> &WalkStats {
        &self.stats
    }

    /// Gives the sides back (for their own statistics, say).
    pub fn into_sides(self) -> (A, B) {
        (self.a, self.b)
    }

    fn start(&mut self) -> Result<(), WalkError> {
        let ra = self.a.root().map_err(|e| err(Side::Source, e))?;
        let rb = self.b.root().map_err(|e| err(Side::Target, e))?;
        let request = RootRequest { tree: 0 }.encode().len() as u64;
        for (i, r) in [ra, rb].into_iter().enumerate() {
            let bytes = request + wire::encode_root(r.as_ref()).len() as u64;
            let level = r.as_ref().map_or(0, |r| r.level);
            self.stats.note(level, r.is_some() as u64, bytes);
            self.front[i].extend(r);
        }
        self.started = true;
        Ok(())
    }

    /// Replaces the front node of side `i` by its children.
    fn expand(&mut self, i: usize) -> Result<(), WalkError> {
        let node = self.front[i].pop_front().expect("expand a present node");
        let kids = if i == 0 {
            self.a.children(&node).map_err(|e| err(Side::Source, e))?
        } else {
            self.b.children(&node).map_err(|e| err(Side::Target, e))?
        };
        if kids.is_empty() {
            let side = if i == 0 { Side::Source } else { Side::Target };
            return Err(WalkError {
                side,
                source: "an inner node has no children".into(),
            });
        }
        if kids.iter().any(|k| k.level + 1 != node.level) {
            let side = if i == 0 { Side::Source } else { Side::Target };
            return Err(WalkError {
                side,
                source: "a child is not one level below its parent".into(),
            });
        }
        let request = ChildrenRequest {
            tree: 0,
            level: node.level,
            index: node.index,
        };
        let bytes = request.encode().len() + wire::encode_children(&kids).len();
        self.stats
            .note(node.level - 1, kids.len() as u64, bytes as u64);
        for k in kids.into_iter().rev() {
            self.front[i].push_front(k);
        }
        Ok(())
    }

    /// Moves the front node of side `i` into the open region.
    fn consume(&mut self, i: usize) {
        let node = self.front[i].pop_front().expect("consume a present node");
        let after = self.consumed[0].clone();
        let region = self.region.get_or_insert(Region {
            after,
            rows: [0, 0],
        });
        region.rows[i] += node.rows;
        self.consumed[i] = Some(node.last_key);
    }

    fn close_region(&mut self) -> DriftRange {
        let r = self.region.take().expect("a region is open");
        let through = self.consumed[0]
            .clone()
            .max(self.consumed[1].clone())
            .unwrap_or_default();
        self.consumed = [Some(through.clone()), Some(through.clone())];
        DriftRange {
            after: r.after,
            through,
            source_rows: r.rows[0],
            target_rows: r.rows[1],
        }
    }

    /// Advances to the next closed region, unmerged.
    fn step(&mut self) -> Result<Option<DriftRange>, WalkError> {
        if !self.started {
            self.start()?;
        }
        loop {
            if self.region.is_some() && self.consumed[0] == self.consumed[1] {
                return Ok(Some(self.close_region()));
            }
            let (a, b) = match (self.front[0].front(), self.front[1].front()) {
                (None, None) => return Ok(self.region.is_some().then(|| self.close_region())),
                (Some(_), None) => {
                    self.consume(0);
                    continue;
                }
                (None, Some(_)) => {
                    self.consume(1);
                    continue;
                }
                (Some(a), Some(b)) => (a, b),
            };
            if self.region.is_none() {
                self.stats.nodes_compared += 1;
                if a.last_key == b.last_key && a.hash == b.hash && a.rows == b.rows {
                    let agreed = Some(a.last_key.clone());
                    self.front[0].pop_front();
                    self.front[1].pop_front();
                    self.consumed = [agreed.clone(), agreed];
                    continue;
                }
                let top = a.level.max(b.level);
                if top > 0 {
                    let (ea, eb) = (a.level == top, b.level == top);
                    if ea {
                        self.expand(0)?;
                    }
                    if eb {
                        self.expand(1)?;
                    }
                    continue;
                }
                self.consume(0);
                self.consume(1);
                continue;
            }
            // Inside a region: the side that has consumed less catches up.
            let behind = if self.consumed[0] < self.consumed[1] {
                0
            } else {
                1
            };
            let ahead = self.consumed[1 - behind].clone();
            let h = self.front[behind].front().expect("both fronts are present");
            if Some(&h.last_key) <= ahead.as_ref() || h.is_leaf() {
                self.consume(behind);
            } else {
                self.expand(behind)?;
            }
        }
    }
}

fn err<E: StdError + Send + Sync + 'static>(side: Side, e: E) -> WalkError {
    WalkError {
        side,
        source: Box::new(e),
    }
}

impl<A: TreeSide, B: TreeSide> Iterator for Walk<A, B> {
    type Item = Result<DriftRange, WalkError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.step() {
                Err(e) => return Some(Err(e)),
                Ok(Some(r)) => match self.pending.take() {
                    Some(mut p) if r.after.as_ref() == Some(&p.through) => {
                        p.through = r.through;
                        p.source_rows += r.source_rows;
                        p.target_rows += r.target_rows;
                        self.pending = Some(p);
                    }
                    Some(p) => {
                        self.pending = Some(r);
                        return Some(Ok(p));
                    }
                    None => self.pending = Some(r),
                },
                Ok(None) => return self.pending.take().map(Ok),
            }
        }
    }
}

/// How one key differs between the two sides' leaf entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDiff {
    /// Only the source has the key.
    SourceOnly,
    /// Only the target has the key.
    TargetOnly,
    /// Both have it, with different row hashes.
    Changed,
}

/// The keys whose entries differ, in key order, from two key-ordered lists of
/// one range's leaf entries.
pub fn entry_differences(source: &[Entry], target: &[Entry]) -> Vec<(Key, KeyDiff)> {
    use std::cmp::Ordering;
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    loop {
        let order = match (source.get(i), target.get(j)) {
            (None, None) => return out,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => a.key.cmp(&b.key),
        };
        match order {
            Ordering::Less => {
                out.push((source[i].key.clone(), KeyDiff::SourceOnly));
                i += 1;
            }
            Ordering::Greater => {
                out.push((target[j].key.clone(), KeyDiff::TargetOnly));
                j += 1;
            }
            Ordering::Equal => {
                if source[i].hash != target[j].hash {
                    out.push((source[i].key.clone(), KeyDiff::Changed));
                }
                i += 1;
                j += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::hash::row_hash;
    use crate::tree::{Builder, Shape, Tree};

    fn build(rows: &BTreeMap<u32, u8>, shape: Shape) -> Tree {
        let mut b = Builder::new(shape);
        for (k, v) in rows {
            let key = crate::key::encode(&[crate::value::Value::Int(*k as i128)]);
            b.push(key.as_bytes(), &row_hash(key.as_bytes(), &[*v]))
                .unwrap();
        }
        b.finish()
    }

    fn ranges(a: &Tree, b: &Tree) -> (Vec<DriftRange>, WalkStats) {
        let mut w = Walk::new(a, b);
        let out: Vec<DriftRange> = w.by_ref().map(|r| r.unwrap()).collect();
        (out, w.stats().clone())
    }

    fn check(src: &BTreeMap<u32, u8>, tgt: &BTreeMap<u32, u8>, shape: Shape) {
        let (a, b) = (build(src, shape), build(tgt, shape));
        let (found, _) = ranges(&a, &b);
        let differing: Vec<Key> = src
            .keys()
            .chain(tgt.keys())
            .filter(|k| src.get(k) != tgt.get(k))
            .map(|k| crate::key::encode(&[crate::value::Value::Int(*k as i128)]))
            .collect();
        // Every differing key is inside a range ...
        for k in &differing {
            assert!(
                found.iter().any(|r| r.contains(k.as_bytes())),
                "{k:?} not covered"
            );
        }
        // ... ranges are ordered and disjoint, and each holds a difference.
        for w in found.windows(2) {
            assert!(w[0].through < *w[1].after.as_ref().unwrap());
        }
        for r in &found {
            assert!(
                differing.iter().any(|k| r.contains(k.as_bytes())),
                "empty range {r:?}"
            );
        }
    }

    fn small() -> Shape {
        Shape {
            leaf_target: 4,
            fanout: 3,
        }
    }

    proptest! {
        #[test]
        fn walk_finds_exactly_the_drift(
            src in proptest::collection::btree_map(0u32..2000, 0u8..3, 0..400),
            edits in proptest::collection::vec((0u32..2000, proptest::option::of(0u8..3)), 0..12),
            burst in proptest::option::of((0u32..2000, 1u32..200)),
        ) {
            let mut tgt = src.clone();
            for (k, v) in edits {
                match v { Some(v) => { tgt.insert(k, v); } None => { tgt.remove(&k); } }
            }
            if let Some((start, len)) = burst {
                for k in start..start + len { tgt.remove(&k); }
            }
            check(&src, &tgt, small());
            check(&tgt, &src, small());
            check(&src, &tgt, Shape::default());
        }

        #[test]
        fn different_shapes_of_same_data_agree(src in proptest::collection::btree_map(0u32..5000, 0u8..2, 0..600)) {
            // One tree built by one side, the same rows built elsewhere: equal.
            let (a, b) = (build(&src, small()), build(&src, small()));
            let (found, stats) = ranges(&a, &b);
            prop_assert!(found.is_empty());
            prop_assert!(stats.nodes_compared <= 1);
        }
    }

    #[test]
    fn identical_large_trees_cost_one_comparison() {
        let rows: BTreeMap<u32, u8> = (0..100_000).map(|k| (k, 1)).collect();
        let a = build(&rows, Shape::default());
        let b = build(&rows, Shape::default());
        let (found, stats) = ranges(&a, &b);
        assert!(found.is_empty());
        assert_eq!(stats.nodes_compared, 1);
        assert_eq!(stats.round_trips, 2);
    }

    #[test]
    fn one_change_costs_a_path() {
        let rows: BTreeMap<u32, u8> = (0..100_000).map(|k| (k, 1)).collect();
        let mut other = rows.clone();
        other.insert(54_321, 2);
        let (a, b) = (
            build(&rows, Shape::default()),
            build(&other, Shape::default()),
        );
        let (found, stats) = ranges(&a, &b);
        assert_eq!(found.len(), 1);
        assert!(found[0].source_rows < 1_000, "{:?}", found[0]);
        assert!(stats.nodes_fetched < 400, "{stats:?}");
    }

    #[test]
    fn empty_sides() {
        let rows: BTreeMap<u32, u8> = (0..1000).map(|k| (k, 1)).collect();
        let empty = BTreeMap::new();
        let (a, e) = (build(&rows, small()), build(&empty, small()));
        let (found, _) = ranges(&a, &e);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].source_rows, found[0].target_rows), (1000, 0));
        let (found, _) = ranges(&e, &e);
        assert!(found.is_empty());
    }
}
