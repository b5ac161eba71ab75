//! The top-down walk over two trees, yielding the key ranges that drifted.
//!
//! Each side is reached through [`TreeSide`] (its root, and the children of
//! nodes), so the same walk runs over two trees in memory, two tree files, or
//! a tree served by a remote agent. The walk goes down both trees a round at
//! a time. It holds *regions*: key intervals with, for each side, the run of
//! nodes that covers exactly that interval. A region whose two runs are one
//! node each, with equal last key, rows and hash, holds equal content and is
//! dropped; a region where both runs are leaves is a [`DriftRange`];
//! otherwise the nodes on the region's highest level are opened, and the
//! region is cut wherever both sides' children end at the same key. All the
//! nodes a round opens on one side are asked for in one request per level,
//! so a walk costs about two round trips per side per tree level, whatever
//! the number of differences. Nodes are aligned by key, never by position,
//! so trees of different heights or shifted boundaries compare correctly,
//! and the work grows with the differences, not with the table.
//!
//! What the walk exchanges is counted in the wire encoding of
//! [`crate::tree::wire`], whatever the sides are, so a walk over two trees in
//! memory reports the bytes and round trips a walk over two agents costs.
//! [`entry_differences`] names the differing keys inside a range from the two
//! sides' leaf entries. Row-level comparison is not done here: the core never
//! touches a database.

use std::error::Error as StdError;

use crate::key::{Key, KeyRange};
use crate::merge::{merge_by, Paired};
use crate::protocol::{self as wire, ChildrenRequest, RootRequest};
use crate::tree::{Entry, NodeSummary, TreeSide};

/// Which side of a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The side the rows are copied from.
    Source,
    /// The side that should match the source.
    Target,
}

/// A key range in which the two sides differ, with what each side holds in
/// it: every row with a key in the range must be compared row by row; no row
/// outside any range differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftRange {
    /// The keys `(after, through]` the sides differ in.
    pub range: KeyRange,
    /// Rows the source holds in the range.
    pub source_rows: u64,
    /// Rows the target holds in the range.
    pub target_rows: u64,
}

/// What fetching the nodes of one tree level cost (both sides together).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LevelCost {
    /// The level of the nodes fetched: 0 for leaves.
    pub level: u8,
    /// Requests made for this level.
    pub round_trips: u64,
    /// Nodes fetched on this level.
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
    /// The side that failed.
    pub side: Side,
    #[source]
    /// What the side reported.
    pub source: Box<dyn StdError + Send + Sync>,
}

/// A key interval `(after, through]` and, per side, the run of nodes that
/// covers exactly the keys that side holds in it.
struct Region {
    after: Option<Key>,
    through: Key,
    nodes: [Vec<NodeSummary>; 2],
}

impl Region {
    /// Both sides hold the same content here (hash collisions aside).
    fn equal(&self) -> bool {
        match (&self.nodes[0][..], &self.nodes[1][..]) {
            ([a], [b]) => a.last_key == b.last_key && a.hash == b.hash && a.rows == b.rows,
            _ => false,
        }
    }

    fn top(&self) -> u8 {
        self.nodes
            .iter()
            .flatten()
            .map(|n| n.level)
            .max()
            .unwrap_or(0)
    }

    fn drift(&self) -> DriftRange {
        let rows = |i: usize| self.nodes[i].iter().map(|n| n.rows).sum();
        DriftRange {
            range: KeyRange {
                after: self.after.clone(),
                through: self.through.clone(),
            },
            source_rows: rows(0),
            target_rows: rows(1),
        }
    }

    /// Cuts the region wherever both sides' runs have a node ending at the
    /// same key.
    fn split(self) -> Vec<Region> {
        let [s, t] = self.nodes;
        let mut out = Vec::new();
        let mut after = self.after;
        let mut cur: [Vec<NodeSummary>; 2] = [Vec::new(), Vec::new()];
        for p in merge_by(s, t, |x, y| x.last_key.cmp(&y.last_key)) {
            match p {
                Paired::Source(x) => cur[0].push(x),
                Paired::Target(y) => cur[1].push(y),
                Paired::Both(x, y) => {
                    let cut = x.last_key.clone();
                    cur[0].push(x);
                    cur[1].push(y);
                    out.push(Region {
                        after: after.replace(cut.clone()),
                        through: cut,
                        nodes: std::mem::take(&mut cur),
                    });
                }
            }
        }
        if !cur[0].is_empty() || !cur[1].is_empty() {
            out.push(Region {
                after,
                through: self.through,
                nodes: cur,
            });
        }
        out
    }
}

/// The walk, as an iterator of drifted ranges in key order; adjacent ranges
/// are merged. The first call walks the trees (a round per level).
pub struct Walk<A, B> {
    a: A,
    b: B,
    ranges: Option<std::vec::IntoIter<DriftRange>>,
    failed: bool,
    stats: WalkStats,
}

impl<A: TreeSide, B: TreeSide> Walk<A, B> {
    /// A walk over `source` and `target`; nothing is fetched until the first `next()`.
    pub fn new(source: A, target: B) -> Walk<A, B> {
        Walk {
            a: source,
            b: target,
            ranges: None,
            failed: false,
            stats: WalkStats::default(),
        }
    }

    /// What the walk has cost so far.
    pub fn stats(&self) -> &WalkStats {
        &self.stats
    }

    /// Gives the sides back (for their own statistics, say).
    pub fn into_sides(self) -> (A, B) {
        (self.a, self.b)
    }

    /// Fetches the children of `nodes` (all on `level`) from side `i`, in
    /// requests of at most [`wire::CHILDREN_BATCH`] nodes.
    fn open(
        &mut self,
        i: usize,
        level: u8,
        nodes: &[NodeSummary],
    ) -> Result<Vec<Vec<NodeSummary>>, WalkError> {
        let side = if i == 0 { Side::Source } else { Side::Target };
        let bad = |what: &'static str| WalkError {
            side,
            source: what.into(),
        };
        let mut out = Vec::with_capacity(nodes.len());
        for batch in nodes.chunks(wire::CHILDREN_BATCH) {
            let kids = if i == 0 {
                self.a.children(batch).map_err(|e| err(side, e))?
            } else {
                self.b.children(batch).map_err(|e| err(side, e))?
            };
            if kids.len() != batch.len() {
                return Err(bad("children of another number of nodes than asked for"));
            }
            for (parent, k) in batch.iter().zip(&kids) {
                if k.is_empty() {
                    return Err(bad("an inner node has no children"));
                }
                if k.iter().any(|c| c.level + 1 != level) {
                    return Err(bad("a child is not one level below its parent"));
                }
                if k.last().map(|c| &c.last_key) != Some(&parent.last_key)
                    || k.windows(2).any(|w| w[0].last_key >= w[1].last_key)
                {
                    return Err(bad("children do not cover their parent in key order"));
                }
            }
            let request = ChildrenRequest {
                tree: 0,
                level,
                indexes: batch.iter().map(|n| n.index).collect(),
            };
            let bytes = request.encode().len() + wire::encode_children(&kids).len();
            let fetched = kids.iter().map(Vec::len).sum::<usize>();
            self.stats.note(level - 1, fetched as u64, bytes as u64);
            out.extend(kids);
        }
        Ok(out)
    }

    /// Walks both trees to the end.
    fn run(&mut self) -> Result<Vec<DriftRange>, WalkError> {
        let ra = self.a.root().map_err(|e| err(Side::Source, e))?;
        let rb = self.b.root().map_err(|e| err(Side::Target, e))?;
        let request = RootRequest { tree: 0 }.encode().len() as u64;
        for r in [&ra, &rb] {
            let bytes = request + wire::encode_root(r.as_ref()).len() as u64;
            let level = r.as_ref().map_or(0, |r| r.level);
            self.stats.note(level, r.is_some() as u64, bytes);
        }
        let Some(through) = [&ra, &rb]
            .into_iter()
            .flatten()
            .map(|r| r.last_key.clone())
            .max()
        else {
            return Ok(Vec::new());
        };
        let mut regions = vec![Region {
            after: None,
            through,
            nodes: [ra.into_iter().collect(), rb.into_iter().collect()],
        }];
        let mut found = Vec::new();
        while !regions.is_empty() {
            let mut open = Vec::new();
            for r in regions {
                self.stats.nodes_compared += 1;
                if r.equal() {
                    continue;
                }
                if r.top() == 0 {
                    found.push(r.drift());
                    continue;
                }
                open.push(r);
            }
            // Open each open region's highest-level nodes, per side and
            // level, in as few requests as possible.
            let tops: Vec<u8> = open.iter().map(Region::top).collect();
            for i in 0..2 {
                let mut by_level: std::collections::BTreeMap<u8, Vec<(usize, usize)>> =
                    std::collections::BTreeMap::new();
                for (ri, r) in open.iter().enumerate() {
                    let top = tops[ri];
                    for (pos, n) in r.nodes[i].iter().enumerate() {
                        if n.level == top {
                            by_level.entry(top).or_default().push((ri, pos));
                        }
                    }
                }
                let mut opened: std::collections::HashMap<(usize, usize), Vec<NodeSummary>> =
                    std::collections::HashMap::new();
                for (level, at) in by_level {
                    let nodes: Vec<NodeSummary> = at
                        .iter()
                        .map(|&(ri, pos)| open[ri].nodes[i][pos].clone())
                        .collect();
                    for (place, kids) in at.into_iter().zip(self.open(i, level, &nodes)?) {
                        opened.insert(place, kids);
                    }
                }
                for (ri, r) in open.iter_mut().enumerate() {
                    let run = std::mem::take(&mut r.nodes[i]);
                    for (pos, n) in run.into_iter().enumerate() {
                        match opened.remove(&(ri, pos)) {
                            Some(kids) => r.nodes[i].extend(kids),
                            None => r.nodes[i].push(n),
                        }
                    }
                }
            }
            regions = open.into_iter().flat_map(Region::split).collect();
        }
        found.sort_by(|x, y| x.range.through.cmp(&y.range.through));
        let mut merged: Vec<DriftRange> = Vec::with_capacity(found.len());
        for r in found {
            match merged.last_mut() {
                Some(p) if r.range.after.as_ref() == Some(&p.range.through) => {
                    p.range.through = r.range.through;
                    p.source_rows += r.source_rows;
                    p.target_rows += r.target_rows;
                }
                _ => merged.push(r),
            }
        }
        Ok(merged)
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
        if self.failed {
            return None;
        }
        if self.ranges.is_none() {
            match self.run() {
                Ok(r) => self.ranges = Some(r.into_iter()),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        self.ranges.as_mut().and_then(Iterator::next).map(Ok)
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
    merge_by(source, target, |a, b| a.key.cmp(&b.key))
        .filter_map(|p| match p {
            Paired::Source(a) => Some((a.key.clone(), KeyDiff::SourceOnly)),
            Paired::Target(b) => Some((b.key.clone(), KeyDiff::TargetOnly)),
            Paired::Both(a, b) => (a.hash != b.hash).then(|| (a.key.clone(), KeyDiff::Changed)),
        })
        .collect()
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
            b.push(key.as_bytes(), &row_hash(&[*v])).unwrap();
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
                found.iter().any(|r| r.range.contains(k.as_bytes())),
                "{k:?} not covered"
            );
        }
        // ... ranges are ordered and disjoint, and each holds a difference.
        for w in found.windows(2) {
            assert!(w[0].range.through < *w[1].range.after.as_ref().unwrap());
        }
        for r in &found {
            assert!(
                differing.iter().any(|k| r.range.contains(k.as_bytes())),
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
