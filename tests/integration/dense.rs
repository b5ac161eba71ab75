//! Drift so dense that one drifted range spans more rows than a chunk, so
//! the streamed comparison takes it a piece at a time and tells rows apart
//! by their values instead of their hashes: random tables of 70,000 to
//! 140,000 rows, most of them drifted in every way (a value changed, a
//! float by one ulp or in its fifth digit, a text by a trailing space, rows
//! missing, rows extra), through the real binary, against a naive
//! reference; with floats compared at their own precision, and rounded to
//! fewer digits (where a one-ulp change is no difference).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rusqlite::Connection;
use serde_json::Value as Json;

use crate::util::{self, Scratch};

/// What the replica does with one source row (and the gap after it).
#[derive(Clone, Copy, Debug)]
enum Fate {
    Same,
    Number,
    FloatUlp,
    /// The float changed in its fifth significant digit.
    FloatFar,
    TextSpace,
    Missing,
    /// The row changed, and an extra one after it.
    Extra,
}

/// A fate, staying the same with weight `same` against 100 for drift.
fn fate(same: u32) -> BoxedStrategy<Fate> {
    let drifted = prop_oneof![        40 => Just(Fate::Number),
        15 => Just(Fate::FloatUlp),
        10 => Just(Fate::FloatFar),
        15 => Just(Fate::TextSpace),
        10 => Just(Fate::Missing),
        10 => Just(Fate::Extra),
    ];
    match same {
        0 => drifted.boxed(),
        w => prop_oneof![w => Just(Fate::Same), 100 => drifted].boxed(),
    }
}

type Row = (i64, String, f64);

fn write(path: &std::path::Path, rows: &BTreeMap<i64, Row>) -> String {
    let conn = Connection::open(path).expect("open");
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT, f REAL);")
        .expect("create");
    let tx = conn.unchecked_transaction().expect("tx");
    {
        let mut ins = tx
            .prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4)")
            .expect("prepare");
        for (id, (n, s, f)) in rows {
            ins.execute(rusqlite::params![id, n, s, f]).expect("insert");
        }
    }
    tx.commit().expect("commit");
    format!("sqlite:{}", path.display())
}

/// (kind, id, changed columns) of every difference.
type Found = BTreeSet<(String, i64, Vec<String>)>;

/// `n` rows, the first `head` of them all drifted (so the trees' leaves
/// there all differ and join into one range wider than a chunk), the rest
/// drifted here and there (ranges compared by their hashes). With
/// `float_digits`, floats are compared rounded to that many digits.
fn run_case(
    n: usize,
    head: usize,
    fates: &[Fate],
    tail: &[Fate],
    float_digits: Option<u8>,
) -> Result<(), TestCaseError> {
    let mut source = BTreeMap::new();
    let mut replica = BTreeMap::new();
    let mut expected = Found::new();
    for i in 0..n {
        let id = 2 * i as i64;
        let row: Row = (i as i64 * 7, format!("row {i}"), i as f64 / 3.0);
        source.insert(id, row.clone());
        let (mut n, mut s, mut f) = row;
        let changed = |c: &str| ("changed".to_string(), id, vec![c.to_string()]);
        let fate = match i < head {
            true => fates[i % fates.len()],
            false => tail[i % tail.len()],
        };
        match fate {
            Fate::Same => {}
            Fate::Number => {
                n += 1;
                expected.insert(changed("n"));
            }
            Fate::FloatUlp => {
                // Rounded to 15 digits or fewer, one ulp is no change:
                // these floats are thirds, far from a rounding boundary
                // (but zero's next float is another number).
                let ulp_counts = float_digits.is_none() || f == 0.0;
                match (ulp_counts, i < head) {
                    (true, _) => expected.insert(changed("f")),
                    // A row of the head that is the same once rounded
                    // would cut its range short of a chunk: its number
                    // changes too, and only the number is a difference.
                    (false, true) => {
                        n += 1;
                        expected.insert(changed("n"))
                    }
                    (false, false) => false,
                };
                f = f64::from_bits(f.to_bits() + 1);
            }
            Fate::FloatFar => {
                f = if f == 0.0 { 1.0 } else { f * 1.0001 };
                expected.insert(changed("f"));
            }
            Fate::TextSpace => {
                s.push(' ');
                expected.insert(changed("s"));
            }
            Fate::Missing => {
                expected.insert(("missing".to_string(), id, Vec::new()));
                continue;
            }
            Fate::Extra => {
                replica.insert(id + 1, (0, "extra".to_string(), 0.5));
                expected.insert(("extra".to_string(), id + 1, Vec::new()));
                // The row itself changes too: no row of the head is the same.
                n += 1;
                expected.insert(changed("n"));
            }
        }
        replica.insert(id, (n, s, f));
    }
    let dir = Scratch::new("dense");
    let a = write(&dir.join("source.db"), &source);
    let b = write(&dir.join("replica.db"), &replica);
    let mut args = vec!["diff", "--source", &a, "--target", &b, "--format", "json"];
    let digits = float_digits.map(|d| d.to_string());
    if let Some(d) = &digits {
        args.extend(["--float-digits", d]);
    }
    let r = util::run(&args);
    prop_assert_eq!(r.code, 1, "{}", r.stderr);
    let doc: Json = serde_json::from_str(&r.stdout).expect("json");
    let table = &doc["tables"][0];
    let found: Found = table["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| {
            let columns = d["columns"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .map(|c| c.as_str().expect("name").to_string())
                        .collect()
                })
                .unwrap_or_default();
            (
                d["kind"].as_str().expect("kind").to_string(),
                d["key"]["id"].as_i64().expect("id"),
                columns,
            )
        })
        .collect();
    prop_assert_eq!(found.len(), expected.len());
    prop_assert!(found == expected, "differences differ from the reference");
    // One range spanning more than a chunk: the pieces path ran.
    let ranges = table["drifted_ranges"].as_array().expect("ranges");
    let widest = ranges
        .iter()
        .map(|r| r["source_rows"].as_u64().unwrap_or(0))
        .max()
        .unwrap_or(0);
    prop_assert!(widest > 65_536, "widest drifted range {}", widest);
    // Costed about as range reads through agents would be: a range's
    // entries in pages of 16,384 a side, and a page more where a piece of
    // 65,536 rows a side ends inside one (pieces cut where either side
    // reaches its 65,536th row). Smaller pieces would count more pages.
    if let [only] = ranges.as_slice() {
        let rows = |side: &str| only[side].as_u64().unwrap_or(0);
        let (s, t) = (rows("source_rows"), rows("target_rows"));
        let least = s.div_ceil(16_384) + t.div_ceil(16_384);
        let most = least + 2 * s.max(t).div_ceil(65_536);
        let entries = &table["stats"]["transfer"]["entries"];
        let trips = entries["round_trips"].as_u64().unwrap_or(0);
        prop_assert!(
            (least..=most).contains(&trips),
            "{} entries requests for {} and {} rows",
            trips,
            s,
            t
        );
        prop_assert_eq!(entries["items"].as_u64(), Some(s + t));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    #[test]
    fn dense_drift_in_pieces_matches_the_reference(
        head in 70_000usize..140_000,
        tail in 0usize..20_000,
        fates in proptest::collection::vec(fate(0), 50..400),
        tail_fates in proptest::collection::vec(fate(400), 50..400),
        float_digits in 6u8..=15,
    ) {
        run_case(head + tail, head, &fates, &tail_fates, None)?;
        run_case(head + tail, head, &fates, &tail_fates, Some(float_digits))?;
    }

    /// The whole table drifted: one range, costed by its pages.
    #[test]
    fn a_wholly_drifted_table_is_one_range_costed_by_pages(
        rows in 70_000usize..100_000,
        fates in proptest::collection::vec(fate(0), 50..400),
    ) {
        run_case(rows, rows, &fates, &fates, None)?;
    }
}

/// Wide rows the sides agree on, between narrow rows that all drifted: the
/// drifted ranges are each smaller than a chunk, so they are compared
/// together with the others of their chunk, and the wide rows must be
/// passed over as they stream, not held for the chunk, nor a batch of them
/// waiting per row (rows wider than a batch's bytes). Each layout puts
/// 200 MiB or more of equal wide rows in each side: holding them would take
/// twice that, more than the run is allowed.
#[test]
fn wide_rows_the_sides_agree_on_are_not_held() {
    // (rows, every how many a wide row, its width)
    let layouts = [
        (20_000i64, 100i64, 1usize << 20),
        (20_000, 25, 256 << 10),
        (240, 2, 2 << 20),
    ];
    for (n, every, width) in layouts {
        let dir = Scratch::new("wide");
        let wide = "w".repeat(width);
        let urls: Vec<String> = ["a", "b"]
            .into_iter()
            .map(|narrow| {
                let path = dir.join(&format!("{narrow}.db"));
                let conn = Connection::open(&path).expect("open");
                conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
                    .expect("create");
                let tx = conn.unchecked_transaction().expect("tx");
                {
                    let mut ins = tx
                        .prepare("INSERT INTO t VALUES (?1, ?2)")
                        .expect("prepare");
                    for id in 0..n {
                        let v = if id % every == 0 {
                            wide.as_str()
                        } else {
                            narrow
                        };
                        ins.execute(rusqlite::params![id, v]).expect("insert");
                    }
                }
                tx.commit().expect("commit");
                format!("sqlite:{}", path.display())
            })
            .collect();
        let args = [
            "diff", "--source", &urls[0], "--target", &urls[1], "--format", "json",
        ];
        // Within the memory a dense diff is allowed (killed by a signal,
        // the run has no exit code).
        let r = util::run_within(&args, 256 << 20);
        let label = format!("{n} rows, every {every}th {width} bytes wide");
        assert_eq!(r.code, 1, "{label}: {}", r.stderr);
        let doc: Json = serde_json::from_str(&r.stdout).expect("json");
        let table = &doc["tables"][0];
        let changed: Vec<i64> = table["differences"]
            .as_array()
            .expect("differences")
            .iter()
            .map(|d| {
                assert_eq!(d["kind"], "changed", "{label}: {d}");
                assert_eq!(d["target"]["v"], "b", "{label}: {d}");
                d["key"]["id"].as_i64().expect("id")
            })
            .collect();
        let expected: Vec<i64> = (0..n).filter(|id| id % every != 0).collect();
        assert!(
            changed == expected,
            "{label}: the differences are not the narrow rows"
        );
        // No drifted range wider than a chunk: the chunk path.
        let ranges = table["drifted_ranges"].as_array().expect("ranges");
        let widest = ranges
            .iter()
            .filter_map(|r| r["source_rows"].as_u64())
            .max();
        assert!(widest.is_some_and(|w| w < 65_536), "{label}: {widest:?}");
    }
}
