//! How long answers are cut into pages: the requests a client sends for
//! many rows or entries, and (for a walk without an agent) the pages an agent
//! would have answered, so both count the same bytes.

use crate::key::{Key, KeyRange};
use crate::tree::Entry;

use super::requests::{EntriesRequest, RowsRequest};
use super::{TreeId, ENTRIES_PAGE, RANGES_BATCH, ROWS_PAGE};

/// Splits rows-by-key requests into pages of at most [`ROWS_PAGE`] keys:
/// `groups` are `(range, keys in it)`, in key order.
pub fn rows_pages(tree: TreeId, groups: &[(Option<Key>, Vec<Key>)]) -> Vec<RowsRequest> {
    let mut out = Vec::new();
    let mut cur: Vec<(Option<Key>, Vec<Key>)> = Vec::new();
    let mut n = 0;
    for (after, keys) in groups {
        // A group split over pages goes on after the last key already sent.
        let mut after = after.clone();
        for chunk in keys.chunks(ROWS_PAGE) {
            if n + chunk.len() > ROWS_PAGE {
                out.push(RowsRequest {
                    tree,
                    groups: std::mem::take(&mut cur),
                });
                n = 0;
            }
            cur.push((after.clone(), chunk.to_vec()));
            n += chunk.len();
            after = chunk.last().cloned();
        }
    }
    if !cur.is_empty() {
        out.push(RowsRequest { tree, groups: cur });
    }
    out
}

/// The requests an agent would be sent for the entries of `ranges`, and the
/// page each answers with, given all the entries (`per_range`, one list per
/// range): what fetching entries costs whether they came from an agent or
/// not. A page holds at most `ENTRIES_PAGE` entries, filled range by range;
/// the next request goes on after the last entry sent, in its range, with
/// the ranges after it.
pub fn entry_pages<'a>(
    tree: TreeId,
    ranges: &[KeyRange],
    per_range: &'a [Vec<Entry>],
) -> Vec<(EntriesRequest, Vec<&'a [Entry]>, bool)> {
    let mut out = Vec::new();
    for (rs, es) in ranges
        .chunks(RANGES_BATCH)
        .zip(per_range.chunks(RANGES_BATCH))
    {
        let mut todo: Vec<(KeyRange, &'a [Entry])> = rs
            .iter()
            .cloned()
            .zip(es.iter().map(Vec::as_slice))
            .collect();
        loop {
            let req = EntriesRequest {
                tree,
                ranges: todo.iter().map(|t| t.0.clone()).collect(),
                limit: ENTRIES_PAGE,
            };
            let mut room = ENTRIES_PAGE as usize;
            let page: Vec<&'a [Entry]> = todo
                .iter()
                .map(|(_, left)| {
                    let take = left.len().min(room);
                    room -= take;
                    &left[..take]
                })
                .collect();
            let more = todo.iter().zip(&page).any(|(t, p)| p.len() < t.1.len());
            let last = page.iter().rposition(|p| !p.is_empty());
            out.push((req, page.clone(), more));
            let (true, Some(j)) = (more, last) else {
                break;
            };
            let taken = page[j].len();
            let mut next = vec![(
                KeyRange {
                    after: page[j].last().map(|e| e.key.clone()),
                    through: todo[j].0.through.clone(),
                },
                &todo[j].1[taken..],
            )];
            next.extend(todo[j + 1..].iter().cloned());
            todo = next;
        }
    }
    out
}
