//! Mending a tree built from a stream that skipped some rows: the rows that
//! arrived below the builder's last key (a scan in the engine's storage
//! order, where an updated row sits at the table's end) are left out of the
//! build, and afterwards the leaves they fall in are built again from a
//! read of just those keys, in key order. Boundaries depend on keys alone
//! (see [`super::boundary`]), so the leaves around such a run are the ones
//! a build from every row makes, and the levels above are built again from
//! the leaves, which are few: the mended tree is the tree of every row.

use std::ops::Range;

use crate::key::Key;

use super::builder::Builder;
use super::built::Tree;

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
    pub fn runs_of(&self, late: &[Key]) -> Vec<LeafRun> {
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
    /// below the last one built is left out), then mends with every row of
    /// each run read again: the result must be the tree of every row.
    fn mended(shape: Shape, order: &[(Key, Hash)]) -> Tree {
        let mut b = Builder::new(shape);
        let mut late: Vec<Key> = Vec::new();
        for (k, h) in order {
            if let Err(e) = b.push(k.as_bytes(), h) {
                assert_eq!(e, OrderError::OutOfOrder);
                late.push(k.clone());
            }
        }
        let partial = b.finish();
        late.sort();
        let runs = partial.runs_of(&late);
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
        partial.splice(rebuilt).unwrap()
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
        for k in [1u32, 3, 1_999, 3_995] {
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
