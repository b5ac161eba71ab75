//! What paged requests cost on the wire, counted as their items go by:
//! the requests and pages [`entry_pages`] and [`rows_pages`] would make,
//! without holding every entry or key first. A comparison that streams its
//! rows counts what the same comparison through agents would exchange, in
//! memory that does not grow with the number of keys or their width.

use crate::key::{Key, KeyRange};
use crate::varint;

use super::cursor::key_after_len;
use super::requests::EntriesRequest;
use super::responses::encoded_rows_len_of;
use super::{TreeId, ENTRIES_PAGE, RANGES_BATCH, ROWS_PAGE};

#[cfg(doc)]
use super::{entry_pages, rows_pages};

/// Requests, the items their answers hold, and the bytes both take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagesCost {
    /// Requests sent, one per page.
    pub requests: u64,
    /// Entries or rows the pages hold.
    pub items: u64,
    /// Bytes of the requests and of their answers.
    pub bytes: u64,
}

impl PagesCost {
    fn page(&mut self, items: usize, bytes: usize) {
        self.requests += 1;
        self.items += items as u64;
        self.bytes += bytes as u64;
    }
}

/// The open page of an entries request.
struct EntriesPage {
    /// The request's first range.
    first: usize,
    /// Where in `first` the page goes on (after the last entry of the page
    /// before), if not at the range's start.
    after: Option<Key>,
    /// The page's entries so far.
    entries: usize,
    /// The range of the last entry.
    at: usize,
    /// Entries of range `at` in this page.
    at_entries: usize,
    /// The bytes of the answer so far: its leading byte, the entries, and
    /// the per-range counts of the ranges before `at`.
    bytes: usize,
}

/// Counts [`entry_pages`] of `ranges`, given their entries in order.
pub struct EntriesMeter<'r> {
    ranges: &'r [KeyRange],
    /// The first range of the batch (of [`RANGES_BATCH`]) being paged.
    batch: usize,
    page: Option<EntriesPage>,
    /// Where the next page of the batch goes on, once a page is full.
    next: Option<(usize, Key)>,
    /// The key of the last entry.
    last: Vec<u8>,
    cost: PagesCost,
}

impl<'r> EntriesMeter<'r> {
    /// A meter for entries requests of `ranges` (ascending, disjoint).
    pub fn new(ranges: &'r [KeyRange]) -> EntriesMeter<'r> {
        EntriesMeter {
            ranges,
            batch: 0,
            page: None,
            next: None,
            last: Vec::new(),
            cost: PagesCost::default(),
        }
    }

    fn batch_end(&self) -> usize {
        (self.batch + RANGES_BATCH).min(self.ranges.len())
    }

    /// An entry of range `range` (ranges in order, keys ascending within
    /// each), whose hash takes `hash_len` bytes.
    pub fn entry(&mut self, range: usize, key: &Key, hash_len: usize) {
        assert!(range < self.ranges.len(), "an entry of no range given");
        while range >= self.batch_end() {
            self.end_batch();
        }
        let page = self.page.get_or_insert_with(|| {
            let (first, after) = match self.next.take() {
                Some((first, after)) => (first, Some(after)),
                None => (self.batch, None),
            };
            EntriesPage {
                first,
                after,
                entries: 0,
                at: first,
                at_entries: 0,
                // The answer's leading byte.
                bytes: 1,
            }
        });
        while page.at < range {
            page.bytes += varint::len(page.at_entries as u64);
            page.at += 1;
            page.at_entries = 0;
        }
        let prev: &[u8] = if page.entries == 0 { &[] } else { &self.last };
        page.bytes += key_after_len(prev, key.as_bytes()) + hash_len;
        page.entries += 1;
        page.at_entries += 1;
        self.last.clear();
        self.last.extend_from_slice(key.as_bytes());
        if page.entries == ENTRIES_PAGE as usize {
            let at = page.at;
            self.close_page();
            self.next = Some((at, Key::from_bytes(&self.last)));
        }
    }

    /// Counts the open page: its request (the ranges from its first on)
    /// and its answer (a count for each of those ranges, then entries).
    fn close_page(&mut self) {
        let Some(page) = self.page.take() else {
            return;
        };
        let end = self.batch_end();
        let mut ranges = self.ranges[page.first..end].to_vec();
        if let Some(after) = page.after {
            ranges[0].after = Some(after);
        }
        let req = EntriesRequest {
            tree: 0,
            ranges,
            limit: ENTRIES_PAGE,
        };
        // The ranges after the last entry's are answered with none.
        let counts = varint::len(page.at_entries as u64) + (end - 1 - page.at);
        let answer = page.bytes + counts;
        self.cost.page(page.entries, req.encode().len() + answer);
    }

    /// Ends the batch: its open page, or its one empty page if it had no
    /// entries at all.
    fn end_batch(&mut self) {
        if self.page.is_some() {
            self.close_page();
        } else if self.next.is_none() {
            self.page = Some(EntriesPage {
                first: self.batch,
                after: None,
                entries: 0,
                at: self.batch,
                at_entries: 0,
                bytes: 1,
            });
            self.close_page();
        }
        self.next = None;
        self.batch += RANGES_BATCH;
    }

    /// What all the requests cost, every range's entries given.
    pub fn finish(mut self) -> PagesCost {
        while self.batch < self.ranges.len() {
            self.end_batch();
        }
        self.cost
    }
}

/// The keys of one request's group: a group's keys in pieces of at most
/// [`ROWS_PAGE`], each after the last key of the one before.
#[derive(Default)]
struct RowsGroup {
    /// The bytes of the group's `after` and keys (its key count apart).
    bytes: usize,
    keys: usize,
    /// The bytes of the keys' rows, in the answer.
    row_bytes: usize,
}

/// Counts [`rows_pages`] of groups of keys whose rows were all found, given
/// the keys in order with their rows' wire lengths.
#[derive(Default)]
pub struct RowsMeter {
    /// The open page's groups.
    groups: usize,
    /// The bytes of the open page's groups.
    bytes: usize,
    /// The open page's keys, and the bytes of their rows.
    keys: usize,
    row_bytes: usize,
    /// The group being read.
    group: Option<RowsGroup>,
    /// The last key given (its bytes; the buffer is reused).
    last: Vec<u8>,
    cost: PagesCost,
}

impl RowsMeter {
    /// A meter with no keys yet.
    pub fn new() -> RowsMeter {
        RowsMeter::default()
    }

    /// The next group of keys starts, after `after` (its range's start).
    pub fn group(&mut self, after: Option<&Key>) {
        self.end_group();
        self.group = Some(RowsGroup {
            bytes: after_len(after.map(Key::as_bytes)),
            ..RowsGroup::default()
        });
    }

    /// A key of the group, whose row takes `row_len` bytes on the wire.
    pub fn key(&mut self, key: &Key, row_len: usize) {
        // Keys before any group are a group from the start.
        let group = self.group.get_or_insert_with(|| RowsGroup {
            bytes: after_len(None),
            ..RowsGroup::default()
        });
        let prev: &[u8] = if group.keys == 0 { &[] } else { &self.last };
        group.bytes += key_after_len(prev, key.as_bytes());
        group.keys += 1;
        group.row_bytes += row_len;
        if group.keys == ROWS_PAGE {
            self.end_group();
            // The group goes on after its last key.
            self.group = Some(RowsGroup {
                bytes: after_len(Some(key.as_bytes())),
                ..RowsGroup::default()
            });
        }
        self.last.clear();
        self.last.extend_from_slice(key.as_bytes());
    }

    /// Places the group read so far on the open page, or on a new one if
    /// it does not fit.
    fn end_group(&mut self) {
        let Some(g) = self.group.take().filter(|g| g.keys > 0) else {
            return;
        };
        if self.keys + g.keys > ROWS_PAGE {
            self.close_page();
        }
        self.groups += 1;
        self.bytes += g.bytes + varint::len(g.keys as u64);
        self.keys += g.keys;
        self.row_bytes += g.row_bytes;
    }

    fn close_page(&mut self) {
        if self.groups == 0 {
            return;
        }
        // The request's tree id and group count, then its groups.
        let request = size_of::<TreeId>() + varint::len(self.groups as u64) + self.bytes;
        let rows = encoded_rows_len_of(self.keys, self.row_bytes);
        self.cost.page(self.keys, request + rows);
        (self.groups, self.bytes, self.keys, self.row_bytes) = (0, 0, 0, 0);
    }

    /// What all the requests cost, every key given.
    pub fn finish(mut self) -> PagesCost {
        self.end_group();
        self.close_page();
        self.cost
    }
}

/// The bytes of a group's `after`: a flag, and the key if there is one.
fn after_len(after: Option<&[u8]>) -> usize {
    1 + after.map_or(0, |k| varint::len(k.len() as u64) + k.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key;
    use crate::protocol::{encoded_entries_len, entry_pages, rows_pages};
    use crate::tree::{Entry, HashPrefix};
    use crate::value::Value;

    /// A key of `width` bytes or so: an integer, or a text padded to it
    /// (sharing long prefixes with its neighbours).
    fn key_of(i: u64, width: usize) -> Key {
        match width {
            0 => key::encode(&[Value::Int(i.into())]),
            w => key::encode(&[Value::Text(format!("{i:0>w$}"))]),
        }
    }

    /// Ranges of `sizes[i]` entries each (keys ascending across them), the
    /// ranges' bounds between their entries.
    fn ranges_of(sizes: &[usize], width: usize) -> (Vec<KeyRange>, Vec<Vec<Entry>>) {
        let (mut ranges, mut entries) = (Vec::new(), Vec::new());
        let mut next = 1u64;
        let mut after = None;
        for &n in sizes {
            let es: Vec<Entry> = (0..n as u64)
                .map(|i| Entry {
                    key: key_of(next + 2 * i, width),
                    hash: HashPrefix::default(),
                })
                .collect();
            next += 2 * n as u64 + 1;
            let through = key_of(next, width);
            next += 1;
            ranges.push(KeyRange {
                after: after.replace(through.clone()),
                through,
            });
            entries.push(es);
        }
        (ranges, entries)
    }

    /// Families of range sizes: none, empty ranges, page boundaries hit
    /// exactly, crossed inside a range and at a range's end, and more
    /// ranges than one batch.
    fn families() -> Vec<Vec<usize>> {
        let page = ENTRIES_PAGE as usize;
        let mut out = vec![
            vec![],
            vec![0],
            vec![0, 0, 0],
            vec![1],
            vec![page],
            vec![page - 1, 1, 0, 5],
            vec![page, 0, 0, 3],
            vec![page + 1],
            vec![3 * page + 17],
            vec![7, page - 7, 0, page, 2],
            vec![0, 2 * page, 0],
        ];
        out.push((0..RANGES_BATCH + 5).map(|i| i % 3).collect());
        out.push((0..2 * RANGES_BATCH + 1).map(|i| (i * 37) % 61).collect());
        let mut empty_batch = vec![0; RANGES_BATCH];
        empty_batch.extend([4, page]);
        out.push(empty_batch);
        out
    }

    #[test]
    fn entries_counted_as_they_go_are_their_pages() {
        for sizes in families() {
            for width in [0, 3, 40] {
                let (ranges, entries) = ranges_of(&sizes, width);
                let mut paged = PagesCost::default();
                for (req, page, _more) in entry_pages(0, &ranges, &entries) {
                    let items = page.iter().map(|p| p.len()).sum();
                    paged.page(items, req.encode().len() + encoded_entries_len(&page));
                }
                let mut meter = EntriesMeter::new(&ranges);
                for (i, es) in entries.iter().enumerate() {
                    for e in es {
                        meter.entry(i, &e.key, e.hash.0.len());
                    }
                }
                let label = format!("{} ranges, width {width}", sizes.len());
                assert_eq!(meter.finish(), paged, "{label}: {sizes:?}");
            }
        }
    }

    #[test]
    fn rows_counted_as_they_go_are_their_pages() {
        // Groups of these many keys (a group split over pages, groups
        // sharing pages, pages filled exactly, empty groups).
        let families: Vec<Vec<usize>> = vec![
            vec![],
            vec![0],
            vec![1],
            vec![ROWS_PAGE],
            vec![ROWS_PAGE + 1],
            vec![10, ROWS_PAGE + 500, 0, 3],
            vec![ROWS_PAGE - 1, 1, 1],
            vec![3 * ROWS_PAGE, 2, ROWS_PAGE - 2, 7],
            (0..300).map(|i| (i * 13) % 29).collect(),
        ];
        for sizes in families {
            for width in [0, 5, 300] {
                for first_after in [false, true] {
                    let mut next = 10u64;
                    let mut groups: Vec<(Option<Key>, Vec<Key>)> = Vec::new();
                    for (g, &n) in sizes.iter().enumerate() {
                        let after = (g > 0 || first_after).then(|| key_of(next, width));
                        let keys = (1..=n as u64).map(|i| key_of(next + i, width)).collect();
                        next += n as u64 + 2;
                        groups.push((after, keys));
                    }
                    let len_of = |k: &Key| k.as_bytes().len() * 3 % 17 + 2;
                    let mut paged = PagesCost::default();
                    for req in rows_pages(0, &groups) {
                        let keys: Vec<&Key> = req.groups.iter().flat_map(|g| &g.1).collect();
                        let row_bytes = keys.iter().map(|k| len_of(k)).sum();
                        let rows = encoded_rows_len_of(keys.len(), row_bytes);
                        paged.page(keys.len(), req.encoded_len() + rows);
                    }
                    let mut meter = RowsMeter::new();
                    for (after, keys) in &groups {
                        meter.group(after.as_ref());
                        for k in keys {
                            meter.key(k, len_of(k));
                        }
                    }
                    let label = format!("width {width}, first after {first_after}");
                    assert_eq!(meter.finish(), paged, "{label}: {sizes:?}");
                    // Keys given before any group are a group from the start.
                    if let Some((None, keys)) = groups.first().filter(|_| groups.len() == 1) {
                        let mut bare = RowsMeter::new();
                        keys.iter().for_each(|k| bare.key(k, len_of(k)));
                        assert_eq!(bare.finish(), paged, "{label}: no group");
                    }
                }
            }
        }
    }
}
