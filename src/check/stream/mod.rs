//! The drifted ranges of two databases read by one scan of each side, when
//! so much drifted that reading range by range would cost more: a thread per
//! side streams the rows inside drifted ranges (see `side`), and the
//! comparison takes them a piece of a range at a time, decoding only rows
//! whose bytes differ, and counts what agents would have been asked for
//! them. Memory holds a piece and the channels, whatever the table's size
//! and however wide its rows or keys.

mod side;

use std::borrow::Cow;
use std::ops::Range;

use driftsum_core::canon;
use driftsum_core::diff::DriftRange;
use driftsum_core::key::KeyRange;
use driftsum_core::merge::{merge_by, Paired};
use driftsum_core::protocol as wire;
use driftsum_core::protocol::{EntriesMeter, RowsMeter};
use driftsum_core::tree::HASH_PREFIX_LEN;
use driftsum_core::Key;

use super::outcome::TableOutcome;
use super::reconcile::{chunks, range_outcome, Job, CHUNK_ROWS};
use super::sink::Found;
use crate::error::CheckError;
use crate::error::SourceError;
use crate::reconcile::{rows, Difference};
use side::Item;

pub(super) use side::{channel, stream_side, Streamed};

/// Whether a drifted range is costed a piece at a time, as its own
/// requests, rather than with the other ranges of its chunk: when it holds
/// more rows than one chunk. Such a range is always a chunk of its own (see
/// [`chunks`]).
fn costed_by_piece(r: &DriftRange) -> bool {
    r.source_rows.max(r.target_rows) > CHUNK_ROWS
}

/// One side of a compared piece: which of its rows (their places in the
/// piece, ascending) the comparison would fetch by key.
#[derive(Default)]
struct PieceSide {
    asked: Vec<usize>,
}

/// How two rows of one key whose wire bytes differ compare.
#[derive(Debug, PartialEq)]
enum Compared {
    /// Their row hashes agree: neither would be fetched.
    Same,
    /// Both would be fetched; and whether a column differs beyond the
    /// float tolerance (the row is then [`Reuse::changed`]).
    Fetched { differs: bool },
}

/// What comparing two rows reuses from one pair to the next, so that a
/// piece where every row changed allocates for none: where each row's
/// values lie, and the changed row last built.
struct Reuse {
    spans: (Vec<Range<usize>>, Vec<Range<usize>>),
    changed: Difference,
}

impl Default for Reuse {
    fn default() -> Reuse {
        Reuse {
            spans: Default::default(),
            changed: Difference::changed_row(),
        }
    }
}

/// Compares two rows of one key by their wire bytes, value by value: a
/// column with the same bytes holds the same value, and only the others
/// are decoded. A changed row keeps the values of its changed columns
/// only, so a table where every row changed in one column is not decoded
/// whole.
fn changed_row(
    s: &[u8],
    t: &[u8],
    (source_width, target_width): (usize, usize),
    job: &Job<'_>,
    reuse: &mut Reuse,
) -> Result<Compared, CheckError> {
    let (nkey, opts) = (job.nkey, job.opts);
    let source_err = |e| CheckError::Source(side::unreadable(e));
    let target_err = |e| CheckError::Target(side::unreadable(e));
    let (spans, d) = (&mut reuse.spans, &mut reuse.changed);
    wire::row_spans(s, source_width, &mut spans.0).map_err(source_err)?;
    wire::row_spans(t, target_width, &mut spans.1).map_err(target_err)?;
    if spans.0.len() != spans.1.len() {
        return Err(CheckError::Target(SourceError::Other(
            "a streamed row's width differs from the source's".into(),
        )));
    }
    // Floats rounded for the row hash are compared by their digits in a
    // difference (see `Difference::changed`): a row is then the same by
    // its encoding, whatever its columns say.
    let rounded = opts.float_digits.is_some();
    let mut same_hash = true;
    d.clear_changes();
    for (c, (a, b)) in spans.0.iter().zip(&spans.1).enumerate().skip(nkey) {
        let (a, b) = (&s[a.clone()], &t[b.clone()]);
        if a == b {
            continue;
        }
        let a = wire::value_from_bytes(a).map_err(source_err)?;
        let b = wire::value_from_bytes(b).map_err(target_err)?;
        if rounded {
            same_hash &= canon::values_equal(&a, &b, opts);
        }
        if !rows::same(&a, &b, opts) {
            d.push_change(c - nkey, a, b);
        }
    }
    let differs = !d.changed.is_empty();
    // Without rounding, the row hashes differ exactly when a column does.
    if (rounded && same_hash) || (!rounded && !differs) {
        return Ok(Compared::Same);
    }
    if differs {
        for r in &spans.0[..nkey] {
            d.key
                .push(wire::value_from_bytes(&s[r.clone()]).map_err(source_err)?);
        }
    }
    Ok(Compared::Fetched { differs })
}

/// Hands every difference between two key-ordered pieces to `emit`, in
/// key order, in one merge: the keys whose rows differ are the ones
/// [`driftsum_core::diff::entry_differences`] names from row hashes, and
/// their rows are compared value by value as fetched rows are. Rows with
/// the same wire bytes hold the same values and are not read further.
/// Returns both sides of the piece, and whether anything was emitted.
fn piece_differences(
    source: &[Item],
    target: &[Item],
    widths: (usize, usize),
    job: &Job<'_>,
    mut emit: impl FnMut(&Difference) -> Result<(), CheckError>,
) -> Result<(PieceSide, PieceSide, bool), CheckError> {
    let nkey = job.nkey;
    let source_row = |item: &Item| item.row(widths.0).map_err(CheckError::Source);
    let target_row = |item: &Item| item.row(widths.1).map_err(CheckError::Target);
    let mut reuse = Reuse::default();
    let (mut s_side, mut t_side) = (PieceSide::default(), PieceSide::default());
    let mut emitted = false;
    let (source, target) = (source.iter().enumerate(), target.iter().enumerate());
    for pair in merge_by(source, target, |a, b| a.1.key.cmp(&b.1.key)) {
        let d = match pair {
            Paired::Source((i, s)) => {
                s_side.asked.push(i);
                Some(Cow::Owned(Difference::missing(source_row(s)?, nkey)))
            }
            Paired::Target((j, t)) => {
                t_side.asked.push(j);
                Some(Cow::Owned(Difference::extra(target_row(t)?, nkey)))
            }
            Paired::Both((_, s), (_, t)) if s.wire() == t.wire() => None,
            Paired::Both((i, s), (j, t)) => {
                match changed_row(s.wire(), t.wire(), widths, job, &mut reuse)? {
                    Compared::Same => None,
                    Compared::Fetched { differs } => {
                        s_side.asked.push(i);
                        t_side.asked.push(j);
                        differs.then_some(Cow::Borrowed(&reuse.changed))
                    }
                }
            }
        };
        if let Some(d) = d {
            emitted = true;
            emit(&d)?;
        }
    }
    Ok((s_side, t_side, emitted))
}

/// Names every difference in the job's ranges from the two streams, range
/// by range, a piece of at most [`side::PIECE_ROWS`] rows (or [`side::PIECE_BYTES`])
/// per side at a time. What is reported as exchanged is what agents would
/// be asked: a chunk of ranges as range reads ask for it (see
/// `reconcile`), and a range too big for one chunk piece by piece.
pub(super) fn reconcile(
    source: &mut Streamed,
    target: &mut Streamed,
    job: &Job<'_>,
    outcome: &mut TableOutcome,
    found: &mut Found<'_>,
) -> Result<(), CheckError> {
    for span in chunks(job.ranges, false) {
        if span.len() == 1 && costed_by_piece(&job.ranges[span.start]) {
            compare_range(
                source,
                target,
                job,
                span.start,
                outcome,
                found,
                |outcome, piece, read| {
                    let pieces = std::slice::from_ref(piece);
                    for side in read {
                        let mut meters = Meters::new(pieces);
                        meters.range(piece.after.as_ref());
                        meters.read(0, side);
                        meters.finish(outcome);
                    }
                },
            )?;
            continue;
        }
        let keyed = &job.keyed[span.clone()];
        let mut meters = [Meters::new(keyed), Meters::new(keyed)];
        for (n, i) in span.enumerate() {
            for m in &mut meters {
                m.range(keyed[n].after.as_ref());
            }
            compare_range(source, target, job, i, outcome, found, |_, _, read| {
                for (m, side) in meters.iter_mut().zip(read) {
                    m.read(n, side);
                }
            })?;
        }
        for m in meters {
            m.finish(outcome);
        }
    }
    Ok(())
}

/// What one side's reads of a chunk of ranges (or of one piece) cost, as
/// agents would be asked for them, counted as the pieces go by: a chunk
/// keeps no key it read.
struct Meters<'r> {
    entries: EntriesMeter<'r>,
    rows: RowsMeter,
}

impl<'r> Meters<'r> {
    fn new(ranges: &'r [KeyRange]) -> Meters<'r> {
        Meters {
            entries: EntriesMeter::new(ranges),
            rows: RowsMeter::new(),
        }
    }

    /// The next range starts: its rows are asked for after its start.
    fn range(&mut self, after: Option<&Key>) {
        self.rows.group(after);
    }

    /// A piece of range `i` (of the meters' ranges) was read: its rows
    /// (each an entry), and of those the ones asked for by key.
    fn read(&mut self, i: usize, (items, asked): (&[Item], PieceSide)) {
        for item in items {
            self.entries.entry(i, &item.key, HASH_PREFIX_LEN);
        }
        for &j in &asked.asked {
            self.rows.key(&items[j].key, items[j].wire().len());
        }
    }

    fn finish(self, outcome: &mut TableOutcome) {
        let transfer = &mut outcome.stats.transfer;
        for (cost, pages) in [
            (&mut transfer.entries, self.entries.finish()),
            (&mut transfer.rows, self.rows.finish()),
        ] {
            cost.round_trips += pages.requests;
            cost.items += pages.items;
            cost.bytes += pages.bytes;
        }
    }
}

/// Compares range `i` of the job a piece at a time, handing each piece
/// (and what was read of it) to `costed`.
fn compare_range(
    source: &mut Streamed,
    target: &mut Streamed,
    job: &Job<'_>,
    i: usize,
    outcome: &mut TableOutcome,
    found: &mut Found<'_>,
    mut costed: impl FnMut(&mut TableOutcome, &KeyRange, [(&[Item], PieceSide); 2]),
) -> Result<(), CheckError> {
    let (r, k) = (&job.ranges[i], &job.keyed[i]);
    let (mut source_read, mut target_read) = (0u64, 0u64);
    let mut first: Option<Key> = None;
    let mut drifted = false;
    let mut after = k.after.clone();
    loop {
        let cut = [
            source.piece_end_in(k).map_err(CheckError::Source)?,
            target.piece_end_in(k).map_err(CheckError::Target)?,
        ]
        .into_iter()
        .flatten()
        .min();
        let through = cut.unwrap_or_else(|| k.through.clone());
        let (source_items, target_items) =
            (source.take_through(&through), target.take_through(&through));
        source_read += source_items.len() as u64;
        target_read += target_items.len() as u64;
        let piece_first = [source_items.first(), target_items.first()]
            .into_iter()
            .flatten()
            .map(|item| item.key.clone())
            .min();
        first = first.into_iter().chain(piece_first).min();
        let widths = (source.width, target.width);
        let (source_asked, target_asked, emitted) =
            piece_differences(&source_items, &target_items, widths, job, |d| {
                found.emit_borrowed(outcome, d).map_err(CheckError::Output)
            })?;
        drifted |= emitted;
        let piece = KeyRange {
            after: after.clone(),
            through: through.clone(),
        };
        let read = [
            (&source_items[..], source_asked),
            (&target_items[..], target_asked),
        ];
        costed(outcome, &piece, read);
        if through == k.through {
            break;
        }
        after = Some(through);
    }
    // As for range reads: rows the trees hold that the scan did not
    // deliver (or the reverse) make any answer a guess.
    for (side, read, rows) in [
        ("source", source_read, r.source_rows),
        ("target", target_read, r.target_rows),
    ] {
        if read != rows {
            return Err(CheckError::Unsure(format!(
                "the {side}'s tree holds {rows} rows in a drifted key range, but {read} were read back from it: \
                 its data changed during the comparison, or it holds keys its scan cannot reach"
            )));
        }
    }
    if drifted {
        outcome.ranges.push(range_outcome(r, first));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::side::Packer;
    use super::*;
    use crate::reconcile::{compare_rows, DiffKind, KeyedRow};
    use driftsum_core::canon::CanonOptions;
    use driftsum_core::key;
    use driftsum_core::Value;

    fn item(id: i64, f: f64, text: &str) -> Item {
        let values = vec![
            Value::Int(id.into()),
            Value::Float(f),
            Value::Text(text.into()),
        ];
        let mut packer = Packer::default();
        packer.push(key::encode(&values[..1]), &values);
        packer.take().pop().expect("one row")
    }

    /// A job over no ranges, for one key column.
    fn job(opts: &CanonOptions) -> Job<'_> {
        Job {
            ranges: &[],
            keyed: &[],
            nkey: 1,
            opts,
            whole: false,
        }
    }

    /// One merge names what the row hashes would, and fetches what a
    /// comparison by range would: a float one ulp apart is a difference
    /// at the float's own precision and none once rounded (the row then
    /// not even asked for), whatever else changed in the row.
    #[test]
    fn piece_differences_are_the_rows_that_differ() {
        let third = 1.0f64 / 3.0;
        let ulp = f64::from_bits(third.to_bits() + 1);
        // Either side of a rounding step at 10 digits, within a unit of it.
        let (below, above) = (1.000_000_000_499_99, 1.000_000_000_500_01);
        let other_nan = f64::from_bits(f64::NAN.to_bits() ^ 1);
        // Each key's row on either side, if it has one.
        type Side<'a> = Option<(f64, &'a str)>;
        let rows: [(i64, Side, Side); 8] = [
            (1, Some((third, "a")), Some((ulp, "a"))),
            (2, Some((2.0, "b")), Some((2.0, "b "))),
            (3, Some((3.0, "only in the source")), None),
            (4, None, Some((4.0, "only in the target"))),
            (5, Some((5.0, "same")), Some((5.0, "same"))),
            (6, Some((third, "x")), Some((ulp, "y"))),
            (7, Some((below, "r")), Some((above, "r"))),
            (8, Some((f64::NAN, "n")), Some((other_nan, "n"))),
        ];
        let side = |target: bool| -> Vec<Item> {
            rows.iter()
                .filter_map(|&(id, s, t)| if target { t } else { s }.map(|(f, x)| item(id, f, x)))
                .collect()
        };
        let (source, target) = (|| side(false), || side(true));
        // (rounding, differences as (kind, id, changed columns), ids
        // asked of the source, ids asked of the target)
        type Case = (
            Option<u8>,
            Vec<(DiffKind, i64, Vec<usize>)>,
            Vec<i64>,
            Vec<i64>,
        );
        let cases: [Case; 2] = [
            (
                None,
                vec![
                    (DiffKind::Changed, 1, vec![0]),
                    (DiffKind::Changed, 2, vec![1]),
                    (DiffKind::Missing, 3, vec![]),
                    (DiffKind::Extra, 4, vec![]),
                    (DiffKind::Changed, 6, vec![0, 1]),
                    (DiffKind::Changed, 7, vec![0]),
                ],
                vec![1, 2, 3, 6, 7],
                vec![1, 2, 4, 6, 7],
            ),
            (
                Some(10),
                vec![
                    (DiffKind::Changed, 2, vec![1]),
                    (DiffKind::Missing, 3, vec![]),
                    (DiffKind::Extra, 4, vec![]),
                    (DiffKind::Changed, 6, vec![1]),
                ],
                // Row 7 hashes apart once rounded, so it is fetched, but
                // its floats agree to the digits: no difference.
                vec![2, 3, 6, 7],
                vec![2, 4, 6, 7],
            ),
        ];
        for (float_digits, want, source_asked, target_asked) in cases {
            let opts = CanonOptions { float_digits };
            let job = job(&opts);
            let (mut got, mut whole) = (Vec::new(), Vec::new());
            let (s, t, emitted) = piece_differences(&source(), &target(), (3, 3), &job, |d| {
                let Value::Int(id) = d.key[0] else {
                    panic!("key {:?}", d.key)
                };
                got.push((d.kind, id as i64, d.changed.clone()));
                whole.push(d.clone());
                Ok(())
            })
            .expect("compared");
            assert_eq!(got, want, "digits {float_digits:?}");
            // Compared by their bytes, the rows give the differences (and
            // the values each shows) that decoded rows do.
            let decoded = |items: Vec<Item>| -> Vec<KeyedRow> {
                items
                    .iter()
                    .map(|i| i.row(3).expect("reads back"))
                    .collect()
            };
            let reference = compare_rows(decoded(source()), decoded(target()), 1, &opts);
            assert_eq!(whole, reference, "digits {float_digits:?}");
            assert!(emitted);
            for (side, ids, rows) in [(s, source_asked, source()), (t, target_asked, target())] {
                let keys: Vec<Key> = ids
                    .iter()
                    .map(|&i| key::encode(&[Value::Int(i.into())]))
                    .collect();
                let asked: Vec<Key> = side.asked.iter().map(|&j| rows[j].key.clone()).collect();
                assert_eq!(asked, keys, "digits {float_digits:?}");
            }
        }
        let opts = CanonOptions::default();
        let job = job(&opts);
        // Different wire bytes, the same row: the zeros decode, and
        // compare, as one float.
        let same = |zero: f64| vec![item(5, 5.0, "same"), item(6, zero, "zero")];
        let (s, t, emitted) =
            piece_differences(&same(-0.0), &same(0.0), (3, 3), &job, |_| Ok(())).expect("compared");
        assert!(!emitted && s.asked.is_empty() && t.asked.is_empty());
        // A row that does not read back is an error of its side, not a
        // difference or a row passed over.
        let mut cut = item(7, 7.0, "cut short");
        cut.at.end -= 1;
        let err = piece_differences(&[cut], &[item(7, 7.5, "x")], (3, 3), &job, |_| Ok(())).err();
        assert!(matches!(err, Some(CheckError::Source(_))), "{err:?}");
        // Rows of one key that read back with different widths are an
        // error, not columns passed over.
        let narrow = {
            let values = [Value::Int(7.into()), Value::Float(7.0)];
            let mut packer = Packer::default();
            packer.push(key::encode(&values[..1]), &values);
            packer.take().pop().expect("one row")
        };
        let err =
            piece_differences(&[item(7, 7.5, "x")], &[narrow], (3, 2), &job, |_| Ok(())).err();
        assert!(matches!(err, Some(CheckError::Target(_))), "{err:?}");
    }
}
