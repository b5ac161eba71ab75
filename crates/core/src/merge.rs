//! The merge-by-key loop, written once: two key-ordered sequences walked
//! side by side, each item paired with its equal on the other side or left
//! alone. The walk's region splitting, the comparison of leaf entries and
//! row reconciliation are all this loop with different items.

use std::cmp::Ordering;
use std::iter::Peekable;

/// One step of a merge: an item only the source has, only the target has,
/// or one from each that compare equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Paired<A, B> {
    /// Ordered before anything left on the target side.
    Source(A),
    /// Ordered before anything left on the source side.
    Target(B),
    /// Equal under the comparison.
    Both(A, B),
}

/// The iterator [`merge_by`] returns.
pub struct MergeBy<I: Iterator, J: Iterator, F> {
    source: Peekable<I>,
    target: Peekable<J>,
    cmp: F,
}

/// Merges two sequences, each in ascending order under `cmp` (which orders
/// a source item against a target item), into one ascending sequence of
/// [`Paired`] items. Each side must hold each key at most once.
pub fn merge_by<I, J, F>(source: I, target: J, cmp: F) -> MergeBy<I::IntoIter, J::IntoIter, F>
where
    I: IntoIterator,
    J: IntoIterator,
    F: FnMut(&I::Item, &J::Item) -> Ordering,
{
    MergeBy {
        source: source.into_iter().peekable(),
        target: target.into_iter().peekable(),
        cmp,
    }
}

impl<I, J, F> Iterator for MergeBy<I, J, F>
where
    I: Iterator,
    J: Iterator,
    F: FnMut(&I::Item, &J::Item) -> Ordering,
{
    type Item = Paired<I::Item, J::Item>;

    fn next(&mut self) -> Option<Self::Item> {
        let order = match (self.source.peek(), self.target.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => (self.cmp)(a, b),
        };
        Some(match order {
            Ordering::Less => Paired::Source(self.source.next()?),
            Ordering::Greater => Paired::Target(self.target.next()?),
            Ordering::Equal => Paired::Both(self.source.next()?, self.target.next()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_in_order() {
        let got: Vec<_> =
            merge_by([1, 3, 4, 7], [2, 3, 7, 9], |a: &i32, b: &i32| a.cmp(b)).collect();
        use Paired::*;
        assert_eq!(
            got,
            [
                Source(1),
                Target(2),
                Both(3, 3),
                Source(4),
                Both(7, 7),
                Target(9)
            ]
        );
        assert_eq!(merge_by(Vec::<i32>::new(), [1], |a, b| a.cmp(b)).count(), 1);
    }
}
