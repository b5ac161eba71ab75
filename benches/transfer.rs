//! What a walk exchanges, by table size and number of differences.
//!
//! `cargo bench --bench transfer` builds pairs of trees of 100,000,
//! 1,000,000 and 10,000,000 rows that differ in 0, 1, 10 and 1,000 scattered
//! rows, walks them, and fetches the leaf entries of the drifted ranges, so
//! every differing key is named; it reports the bytes and round trips of the
//! walk (per level) and of the entries, in the wire encoding an agent sends,
//! beside pg_comparator's published cost model for the same n and k.
//!
//! The trees are built in the core from synthetic `(key, row hash)` streams,
//! not read from a database: keys are integer primary keys in driftsum's key
//! encoding, the source holds the even ids `0, 2, 4, …`, and the target
//! differs in `k` evenly scattered rows, a third each changed, missing and
//! extra (odd ids). Reading rows from SQLite would change the time, not the
//! bytes: the bytes depend only on the keys and hashes (tests/agent.rs checks
//! that an agent sends exactly what the in-process walk counts).
//! `TRANSFER_MAX_ROWS=1000000` leaves out the 10M case.

use std::collections::BTreeMap;
use std::time::Instant;

use driftsum::core::diff::{entry_differences, Walk};
use driftsum::core::hash::row_hash;
use driftsum::core::key::KeyRange;
use driftsum::core::protocol as wire;
use driftsum::core::tree::{Entry, HashPrefix};
use driftsum::core::{key, Builder, Hash, Key, Shape, Tree, Value};

/// Which rows the target changes: id → what the target holds there
/// (`None`: missing in the target; a new id: extra).
type Edits = BTreeMap<i64, Option<u8>>;

fn key_of(id: i64) -> Key {
    key::encode(&[Value::Int(id as i128)])
}

fn hash_of(k: &Key, version: u8) -> Hash {
    let mut row = k.as_bytes().to_vec();
    row.extend_from_slice(&[version; 40]);
    row_hash(&row)
}

/// The source holds ids 0, 2, …, 2(n-1) at version 0; the target applies
/// `edits`. Yields (key, hash) in key order.
fn rows(n: u64, edits: &Edits, target: bool) -> impl Iterator<Item = (Key, Hash)> + '_ {
    let base = (0..n as i64).map(|i| 2 * i);
    let extra: Vec<i64> = if target {
        edits.keys().copied().filter(|id| id % 2 == 1).collect()
    } else {
        Vec::new()
    };
    let mut ids: Vec<i64> = Vec::new();
    let mut extra = extra.into_iter().peekable();
    // Merge the extras into the base ids lazily.
    let mut base = base.peekable();
    std::iter::from_fn(move || loop {
        let next = match (base.peek(), extra.peek()) {
            (None, None) => return None,
            (Some(&b), Some(&e)) if e < b => extra.next(),
            (Some(_), _) => base.next(),
            (None, Some(_)) => extra.next(),
        }?;
        ids.clear();
        let version = if target {
            match edits.get(&next) {
                Some(None) => continue,
                Some(Some(v)) => *v,
                None => 0,
            }
        } else {
            0
        };
        let k = key_of(next);
        let h = hash_of(&k, version);
        return Some((k, h));
    })
}

/// The tree shape: the defaults, or `TRANSFER_LEAF` / `TRANSFER_FANOUT`.
fn shape() -> Shape {
    let env = |name: &str, default: u32| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let d = Shape::default();
    Shape {
        leaf_target: env("TRANSFER_LEAF", d.leaf_target),
        fanout: env("TRANSFER_FANOUT", d.fanout),
    }
}

fn build(n: u64, edits: &Edits, target: bool) -> Tree {
    let mut b = Builder::new(shape());
    for (k, h) in rows(n, edits, target) {
        b.push(k.as_bytes(), &h).expect("keys ascend");
    }
    b.finish()
}

/// `k` edits scattered evenly over `n` source rows.
fn edits(n: u64, k: u64) -> Edits {
    let mut e = Edits::new();
    for j in 0..k {
        let id = 2 * ((j * n / k.max(1) + n / (2 * k.max(1))) as i64);
        match j % 3 {
            0 => e.insert(id, Some(1)),
            1 => e.insert(id, None),
            _ => e.insert(id + 1, Some(0)),
        };
    }
    e
}

/// One side's entries with keys in `(after, through]`.
fn entries(after: Option<&Key>, through: &Key, edits: &Edits, target: bool) -> Vec<Entry> {
    let id = |k: &Key| match key::decode(k.as_bytes()).as_deref() {
        Some([Value::Int(i)]) => *i as i64,
        _ => panic!("not an integer key"),
    };
    let lo = after.map_or(0, |a| id(a) + 1);
    let hi = id(through);
    let mut out = Vec::new();
    for i in lo..=hi {
        let version = if i % 2 == 0 {
            match (target, edits.get(&i)) {
                (true, Some(None)) => continue,
                (true, Some(Some(v))) => *v,
                _ => 0,
            }
        } else if target && edits.contains_key(&i) {
            0
        } else {
            continue;
        };
        let k = key_of(i);
        out.push(Entry {
            hash: HashPrefix::from(&hash_of(&k, version)),
            key: k,
        });
    }
    out
}

/// pg_comparator's cost model: k·f·⌈log n / log f⌉·(c + log₂ n) bits.
fn pg_comparator_bytes(n: u64, k: u64) -> f64 {
    let (f, c) = (128f64, 64f64);
    let n = n as f64;
    let depth = (n.ln() / f.ln()).ceil();
    k as f64 * f * depth * (c + n.log2()) / 8.0
}

fn kib(b: u64) -> String {
    format!("{:.1} KiB", b as f64 / 1024.0)
}

fn main() {
    let max: u64 = std::env::var("TRANSFER_MAX_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    println!("| rows | differences | walk bytes | walk round trips | entries bytes | entries round trips | total exchanged | keys named | per level (bytes) | pg_comparator model |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    for n in [100_000u64, 1_000_000, 10_000_000] {
        if n > max {
            continue;
        }
        let started = Instant::now();
        let source = build(n, &Edits::new(), false);
        let built = started.elapsed();
        for k in [0u64, 1, 10, 1000] {
            let e = edits(n, k);
            let target = build(n, &e, true);
            let mut walk = Walk::new(&source, &target);
            let ranges: Vec<_> = walk.by_ref().map(|r| r.expect("walk")).collect();
            let ws = walk.stats().clone();
            let (mut eb, mut ert, mut named) = (0u64, 0u64, 0usize);
            let keyed: Vec<KeyRange> = ranges.iter().map(|r| r.range.clone()).collect();
            let per_side = |target: bool| -> Vec<Vec<Entry>> {
                keyed
                    .iter()
                    .map(|r| entries(r.after.as_ref(), &r.through, &e, target))
                    .collect()
            };
            let (a, b) = (per_side(false), per_side(true));
            if !keyed.is_empty() {
                for side in [&a, &b] {
                    for (req, page, more) in wire::entry_pages(0, &keyed, side) {
                        ert += 1;
                        eb += (req.encode().len() + wire::encode_entries(&page, more).len()) as u64;
                    }
                }
            }
            for (x, y) in a.iter().zip(&b) {
                named += entry_differences(x, y).len();
            }
            assert_eq!(named as u64, k, "every difference named by its key");
            let levels: Vec<String> = ws
                .levels
                .iter()
                .map(|l| format!("L{} {}", l.level, l.bytes))
                .collect();
            println!(
                "| {n} | {k} | {} | {} | {} | {} | **{}** | {named} | {} | {} |",
                ws.bytes_exchanged,
                ws.round_trips,
                eb,
                ert,
                kib(ws.bytes_exchanged + eb),
                levels.join(", "),
                kib(pg_comparator_bytes(n, k) as u64),
            );
        }
        eprintln!(
            "{n} rows: source tree built in {:.2} s ({} levels, {} nodes)",
            built.as_secs_f64(),
            source.levels.len(),
            source.node_count()
        );
    }
}
