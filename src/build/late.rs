//! Rows of a pass in storage order on their way to the builder: held back
//! in a small window and put in key order there, so that rows stored a
//! little out of order (a page of a bulk load written after the next one, a
//! row updated within its page) reach the builder in order; a row that
//! comes below the greatest row already handed on is kept aside as late,
//! for `storage_order` to put in afterwards.

use driftsum_core::tree::OrderError;
use driftsum_core::{Builder, Hash, Key};

/// Rows held back: disorder within this many rows is put right here.
const WINDOW: usize = 1024;

/// At most this many rows are kept aside as late (their entries are held
/// in memory, a few MiB); one more, and the table is too far from key
/// order for a pass in storage order to pay.
pub(super) const MOST_LATE: usize = 1 << 16;

/// The window and the late rows of one pass in storage order.
#[derive(Default)]
pub(super) struct Late {
    /// Rows held back, sorted unless `unsorted`.
    held: Vec<(Key, Hash)>,
    unsorted: bool,
    /// The greatest key handed to the builder so far.
    handed: Option<Key>,
    /// Rows that came below `handed`.
    late: Vec<(Key, Hash)>,
}

impl Late {
    /// Takes one row's entry, handing the builder those no later row can
    /// come before (in the window's reach).
    pub(super) fn take(
        &mut self,
        builder: &mut Builder,
        key: &[u8],
        hash: &Hash,
    ) -> Result<(), OrderError> {
        // Above the greatest row held is above every row handed on too
        // (held rows are never below those): one comparison for a row in
        // order, the common case.
        let in_order = self.held.last().is_none_or(|(k, _)| key > k.as_bytes());
        if !in_order {
            if let Some(handed) = &self.handed {
                match key.cmp(handed.as_bytes()) {
                    std::cmp::Ordering::Greater => {}
                    std::cmp::Ordering::Equal => return Err(OrderError::Duplicate(handed.clone())),
                    std::cmp::Ordering::Less if self.late.len() < MOST_LATE => {
                        self.late.push((Key::from_bytes(key), *hash));
                        return Ok(());
                    }
                    std::cmp::Ordering::Less => return Err(OrderError::OutOfOrder),
                }
            }
            self.unsorted = true;
        }
        self.held.push((Key::from_bytes(key), *hash));
        if self.held.len() >= 2 * WINDOW {
            self.hand_on(builder, WINDOW)?;
        }
        Ok(())
    }

    /// Hands the builder every row held but the `keep` greatest.
    fn hand_on(&mut self, builder: &mut Builder, keep: usize) -> Result<(), OrderError> {
        if self.unsorted {
            // A stable sort merges the sorted runs it finds: held rows are
            // a few long runs, so this costs about one pass over them.
            self.held.sort_by(|a, b| a.0.cmp(&b.0));
            self.unsorted = false;
        }
        let upto = self.held.len().saturating_sub(keep);
        if upto == 0 {
            return Ok(());
        }
        for (key, hash) in &self.held[..upto] {
            builder.push(key.as_bytes(), hash)?;
        }
        self.handed = Some(self.held[upto - 1].0.clone());
        self.held.drain(..upto);
        Ok(())
    }

    /// Hands the builder every row still held, at the end of the pass, and
    /// returns the late rows, sorted by key.
    pub(super) fn finish(mut self, builder: &mut Builder) -> Result<Vec<(Key, Hash)>, OrderError> {
        self.hand_on(builder, 0)?;
        self.late.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(self.late)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftsum_core::hash::row_hash;
    use driftsum_core::Shape;

    /// Feeds `keys` through a window into a builder; the late keys.
    fn run(keys: &[u32]) -> Result<Vec<u32>, OrderError> {
        let mut built = Builder::new(Shape::default());
        let mut late = Late::default();
        for k in keys {
            late.take(&mut built, &k.to_be_bytes(), &row_hash(&k.to_be_bytes()))?;
        }
        let left = late.finish(&mut built)?;
        let rows = built.rows();
        let kept: Vec<u32> = left
            .iter()
            .map(|(k, _)| u32::from_be_bytes(k.as_bytes().try_into().expect("4 bytes")))
            .collect();
        assert_eq!(rows as usize + kept.len(), keys.len());
        Ok(kept)
    }

    #[test]
    fn disorder_within_the_window_is_put_right_and_beyond_it_is_late() {
        // Pages of 80 rows, each pair written in swapped order.
        let mut keys: Vec<u32> = Vec::new();
        for pair in 0..100u32 {
            let base = pair * 160;
            keys.extend(base + 80..base + 160);
            keys.extend(base..base + 80);
        }
        assert_eq!(run(&keys).unwrap(), Vec::<u32>::new());
        // A row far back (an updated row at the table's end) is late, also
        // one already handed on (15 here): the window cannot tell, and the
        // mending that puts late rows in refuses it as a duplicate.
        let mut keys: Vec<u32> = (10..20_000).collect();
        keys.extend([3, 15]);
        assert_eq!(run(&keys).unwrap(), vec![3, 15]);
        // A key twice within the window's reach is refused here.
        assert!(matches!(run(&[1, 2, 2]), Err(OrderError::Duplicate(_))));
        let mut keys: Vec<u32> = (0..10_000).collect();
        keys.push(9_999);
        assert!(matches!(run(&keys), Err(OrderError::Duplicate(_))));
    }

    #[test]
    fn a_far_greater_key_waits_and_too_many_late_rows_give_up() {
        // One key far ahead stays in the window; the rest still flow.
        let mut keys: Vec<u32> = vec![u32::MAX];
        keys.extend(0..(2 * WINDOW + MOST_LATE + 1) as u32);
        assert_eq!(run(&keys), Ok(Vec::new()));
        // Descending keys: all but the first window's are late.
        let keys: Vec<u32> = (0..(2 * WINDOW + MOST_LATE) as u32).rev().collect();
        assert_eq!(run(&keys).map(|l| l.len()), Ok(MOST_LATE - WINDOW + WINDOW));
        let keys: Vec<u32> = (0..(3 * WINDOW + MOST_LATE) as u32).rev().collect();
        assert_eq!(run(&keys), Err(OrderError::OutOfOrder));
    }
}
