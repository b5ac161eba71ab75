//! Mending a tree built from a stream that skipped some rows: the rows that
//! arrived below the builder's last key (a scan in the engine's storage
//! order, where an updated row sits at the table's end) are left out of the
//! build, and afterwards the leaves they fall in are built again, from the
//! entries the builder kept of them ([`Tree::mend`]) or from a read of just
//! those keys in key order ([`Tree::splice`]). Boundaries depend on keys alone
//! (see [`super::boundary`]), so the leaves around such a run are the ones
//! a build from every row makes, and the levels above are built again from
//! the leaves, which are few: the mended tree is the tree of every row.

use std::ops::Range;

use crate::hash::Hash;
use crate::key::Key;

use super::builder::{Builder, OrderError};
use super::built::Tree;
use super::kept::KeptLeaves;
use super::node::HashPrefix;

/// Why rows left out could not be put in from the kept leaves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MendError {
    /// A key left out occurs in the tree or among the others left out.
    #[error("the key {0:?} occurs twice")]
    Duplicate(Key),
    /// The kept leaves are not this tree's.
    #[error("the kept leaves are not the tree's")]
    NotThisTree,
}

/// A run of consecutive leaves that rows left out of a build fall in: every
/// row with a key in `(after, through]` must be read again, in key order,
/// and built into leaves that replace them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafRun {
    leaves: Range<usize>,
    /// The last key of the leaf before the run (`None` from the first).
    pub after: Option<Key>,
    /// The last key of the run's last leaf.
    pub through: Key,
}

impl LeafRun {
    /// How many leaves the run replaces.
    pub fn leaves(&self) -> usize {
        self.leaves.len()
    }
}

/// Rows read again for a run did not end at the run's last key or came
/// out of key order: the read did not see the rows the build saw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the rows read again for the keys after {after:?} through {through:?} are not the ones first read")]
pub struct SpliceMismatch {
    /// The run's lower bound (exclusive).
    pub after: Option<Key>,
    /// The run's upper bound (inclusive).
    pub through: Key,
}

impl Tree {
    /// The runs of leaves that `late` keys (sorted, each below this tree's
    /// last key) fall in: a key falls in the first leaf whose last key is
    /// not below it. Adjacent leaves join one run.
    pub fn runs_of<'k>(&self, late: impl IntoIterator<Item = &'k Key>) -> Vec<LeafRun> {
        let Some(leaves) = self.levels.first() else {
            return Vec::new();
        };
        let mut runs: Vec<Range<usize>> = Vec::new();
        for k in late {
            let i = leaves
                .partition_point(|l| l.last_key < *k)
                .min(leaves.len() - 1);
            match runs.last_mut() {
                Some(r) if i < r.end => {}
                Some(r) if i == r.end => r.end += 1,
                _ => runs.push(i..i + 1),
            }
        }
        runs.into_iter()
            .map(|r| LeafRun {
                after: r.start.checked_sub(1).map(|p| leaves[p].last_key.clone()),
                through: leaves[r.end - 1].last_key.clone(),
                leaves: r,
            })
            .collect()
    }

    /// This tree with the rows `late` (sorted by key, each below the
    /// tree's last key) put in, from the leaves `kept` of its build: the
    /// tree of every row, without reading any again.
    pub fn mend(self, kept: &KeptLeaves, late: &[(Key, Hash)]) -> Result<Tree, MendError> {
        if self.levels.first().map_or(0, Vec::len) != kept.leaves() {
            return Err(MendError::NotThisTree);
        }
        let runs = self.runs_of(late.iter().map(|(k, _)| k));
        let mut rebuilt = Vec::with_capacity(runs.len());
        let mut late = late.iter().peekable();
        for run in runs {
            let mut builder = Builder::new(self.shape);
            let mut push = |key: &[u8], prefix: &HashPrefix| {
                builder.push_prefix(key, prefix).map_err(|e| match e {
                    OrderError::Duplicate(k) => MendError::Duplicate(k),
                    OrderError::OutOfOrder => MendError::NotThisTree,
                })
            };
            let entries = kept
                .entries(run.leaves.clone())
                .ok_or(MendError::NotThisTree)?;
            for (key, prefix) in entries {
                while let Some((k, h)) = late.next_if(|(k, _)| k.as_bytes() <= key) {
                    push(k.as_bytes(), &HashPrefix::from(h))?;
                }
                push(key, &prefix)?;
            }
            while let Some((k, h)) = late.next_if(|(k, _)| *k <= run.through) {
                push(k.as_bytes(), &HashPrefix::from(h))?;
            }
            rebuilt.push((run, builder.finish()));
        }
        if late.next().is_some() {
            return Err(MendError::NotThisTree);
        }
        self.splice(rebuilt).map_err(|_| MendError::NotThisTree)
    }

    /// This tree with each run's leaves replaced by the leaves of its
    /// rebuilt tree (built from every row in the run's keys, in key order),
    /// and every level above built again. `rebuilt` holds runs from
    /// [`Tree::runs_of`] on this tree, in order.
    pub fn splice(self, rebuilt: Vec<(LeafRun, Tree)>) -> Result<Tree, SpliceMismatch> {
        let mut builder = Builder::new(self.shape);
        let leaves = self.levels.into_iter().next().unwrap_or_default();
        let mut runs = rebuilt.into_iter().peekable();
        let mut skip_to = 0;
        for (i, leaf) in leaves.into_iter().enumerate() {
            if i < skip_to {
                continue;
            }
            let Some((run, tree)) = runs.next_if(|(r, _)| r.leaves.start == i) else {
                let (after, through) = (None, leaf.last_key.clone());
                builder
                    .push_leaf(leaf)
                    .map_err(|_| SpliceMismatch { after, through })?;
                continue;
            };
            let mismatch = || SpliceMismatch {
                after: run.after.clone(),
                through: run.through.clone(),
            };
            let new = tree.levels.into_iter().next().unwrap_or_default();
            let fits = new.last().is_some_and(|l| l.last_key == run.through)
                && new
                    .first()
                    .is_some_and(|l| run.after.as_ref().is_none_or(|a| l.first_key > *a));
            if !fits {
                return Err(mismatch());
            }
            for leaf in new {
                builder.push_leaf(leaf).map_err(|_| mismatch())?;
            }
            skip_to = run.leaves.end;
        }
        if let Some((run, _)) = runs.next() {
            return Err(SpliceMismatch {
                after: run.after,
                through: run.through,
            });
        }
        Ok(builder.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{row_hash, Hash};
    use crate::tree::{OrderError, Shape};
    use proptest::prelude::*;

    fn entry(k: u32, v: u8) -> (Key, Hash) {
        (Key::from_bytes(&k.to_be_bytes()), row_hash(&[v]))
    }

    fn build<'a>(shape: Shape, entries: impl IntoIterator<Item = &'a (Key, Hash)>) -> Tree {
        let mut b = Builder::new(shape);
        for (k, h) in entries {
            b.push(k.as_bytes(), h).unwrap();
        }
        b.finish()
    }

    /// Builds from `order` as a first pass in storage order does (a row
    /// below the last one built is left out), then mends both ways: with
    /// every row of each run read again, and from the kept leaves. Both
    /// must give the tree of every row; returns it.
    fn mended(shape: Shape, order: &[(Key, Hash)]) -> Tree {
        let mut b = Builder::keeping_leaves(shape, usize::MAX);
        let mut late: Vec<(Key, Hash)> = Vec::new();
        for (k, h) in order {
            if let Err(e) = b.push(k.as_bytes(), h) {
                assert_eq!(e, OrderError::OutOfOrder);
                late.push((k.clone(), *h));
            }
        }
        let (partial, kept) = b.finish_keeping();
        late.sort_by(|a, b| a.0.cmp(&b.0));
        let from_kept = partial
            .clone()
            .mend(&kept.expect("all kept"), &late)
            .unwrap();
        let runs = partial.runs_of(late.iter().map(|(k, _)| k));
        let rebuilt = runs
            .into_iter()
            .map(|run| {
                let mut rows: Vec<_> = order
                    .iter()
                    .filter(|(k, _)| run.after.as_ref().is_none_or(|a| k > a) && *k <= run.through)
                    .collect();
                rows.sort_by(|a, b| a.0.cmp(&b.0));
                let t = build(shape, rows);
                (run, t)
            })
            .collect();
        let read_again = partial.splice(rebuilt).unwrap();
        assert_eq!(from_kept, read_again);
        read_again
    }

    #[test]
    fn a_late_row_in_the_first_last_and_middle_leaves() {
        let shape = Shape {
            leaf_target: 8,
            fanout: 4,
        };
        let rows: Vec<_> = (0..2_000u32).map(|k| entry(k * 2, 1)).collect();
        let whole = build(shape, &rows);
        for at in [0usize, 1, 7, 999, 1_000, 1_998] {
            // Physically last, as an updated row is.
            let mut order = rows.clone();
            let row = order.remove(at);
            order.push(row);
            assert_eq!(mended(shape, &order), whole, "late row {at}");
        }
        // A new row (odd keys are free) before every other one, between
        // two rows, and between the last two.
        for k in [1u32, 3, 1_999, 3_997] {
            let mut order = rows.clone();
            order.push(entry(k, 9));
            let mut sorted = order.clone();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(mended(shape, &order), build(shape, &sorted), "new row {k}");
        }
    }

    #[test]
    fn a_run_that_does_not_end_at_its_last_key_is_refused() {
        let shape = Shape {
            leaf_target: 4,
            fanout: 4,
        };
        let rows: Vec<_> = (0..200u32).map(|k| entry(k, 1)).collect();
        let tree = build(shape, &rows);
        let runs = tree.runs_of(&[Key::from_bytes(&50u32.to_be_bytes())]);
        assert_eq!(runs.len(), 1);
        let run = runs[0].clone();
        let short: Vec<_> = rows
            .iter()
            .filter(|(k, _)| run.after.as_ref().is_none_or(|a| k > a) && *k < run.through)
            .cloned()
            .collect();
        let err = tree.splice(vec![(run, build(shape, &short))]).unwrap_err();
        assert_eq!(err.through, runs[0].through);
    }

    #[test]
    fn a_key_left_out_twice_or_already_built_is_a_duplicate() {
        let shape = Shape {
            leaf_target: 4,
            fanout: 4,
        };
        let mut b = Builder::keeping_leaves(shape, usize::MAX);
        for k in 0..100u32 {
            let (k, h) = entry(k * 2, 1);
            b.push(k.as_bytes(), &h).unwrap();
        }
        let (tree, kept) = b.finish_keeping();
        let kept = kept.expect("kept");
        let err = tree.clone().mend(&kept, &[entry(50, 2)]).unwrap_err();
        assert_eq!(err, MendError::Duplicate(entry(50, 2).0));
        let err = tree.mend(&kept, &[entry(51, 2), entry(51, 3)]).unwrap_err();
        assert_eq!(err, MendError::Duplicate(entry(51, 2).0));
    }

    #[test]
    fn leaves_past_the_bound_are_not_kept() {
        let shape = Shape::default();
        let mut small = Builder::keeping_leaves(shape, 1_000);
        let mut large = Builder::keeping_leaves(shape, 100_000);
        for k in 0..1_000u32 {
            let (k, h) = entry(k, 1);
            small.push(k.as_bytes(), &h).unwrap();
            large.push(k.as_bytes(), &h).unwrap();
        }
        let (a, none) = small.finish_keeping();
        let (b, some) = large.finish_keeping();
        assert!(none.is_none());
        assert_eq!(some.map(|k| k.leaves()), Some(b.levels[0].len()));
        assert_eq!(a, b);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any rows in any order, any of them late: mending gives the tree
        /// of every row, leaves, levels and root alike.
        #[test]
        fn mending_gives_the_tree_of_every_row(
            keys in proptest::collection::btree_set(0u32..5_000, 0..600),
            seed in any::<u64>(),
            late_share in 0u8..=100,
            leaf_target in 2u32..12,
            fanout in 2u32..6,
        ) {
            let shape = Shape { leaf_target, fanout };
            let sorted: Vec<_> = keys.iter().map(|&k| entry(k, (k % 7) as u8)).collect();
            let whole = build(shape, &sorted);
            // A storage order: the sorted rows with a share moved to
            // random places (as updates move rows), by a small LCG.
            let mut state = seed | 1;
            let mut next = || {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                state >> 33
            };
            let mut order = sorted.clone();
            for i in 0..order.len() {
                if (next() % 100) < u64::from(late_share) {
                    let j = (next() as usize) % order.len();
                    order.swap(i, j);
                }
            }
            prop_assert_eq!(mended(shape, &order), whole);
        }
    }
}
