//! The engine's hot paths, one criterion group each: canonical encoding of a
//! row, row hashing (one row, and a batch side by side), building a tree from a stream of `(key, hash)` entries,
//! and the walk over two trees with few and many differences.
//!
//! Run: `cargo bench -p driftsum-core --bench hot_paths` (add a filter such
//! as `-- walk` for one group). The row is the `driftsum bench` table's:
//! integer key, text, integer, float, decimal, timestamp, nullable text.
//! Criterion is built without its plotting and rayon features to keep the
//! build small; it prints its estimates and nothing else.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use driftsum_core::canon::{self, CanonOptions};
use driftsum_core::hash::{row_hash, row_hashes, LANES};
use driftsum_core::{key, Builder, Hash, Shape, Tree, Value, Walk};

/// Row `i` of the benchmark table, as a source delivers it.
fn row(i: i64) -> Vec<Value> {
    vec![
        Value::Int(2 * i as i128),
        Value::Text(format!("customer-{:08}", (i * 7919) % 1_000_003)),
        Value::Int((i % 1000) as i128),
        Value::Float(i as f64 * 0.37 + 0.01),
        Value::Decimal(format!("{}.{:02}", i % 100_000, (i * 13) % 100)),
        Value::TimestampNaive(((1_600_000_000 + i * 17) * 1_000_000).into()),
        if i % 3 == 0 {
            Value::Text(format!("note {i}"))
        } else {
            Value::Null
        },
    ]
}

const NAMES: [&str; 6] = ["name", "qty", "price", "amount", "created", "note"];

fn encoding(c: &mut Criterion) {
    let r = row(123_457);
    let order: Vec<usize> = canon::name_order(&NAMES)
        .into_iter()
        .map(|i| i + 1)
        .collect();
    let opts = CanonOptions::default();
    let mut kbuf = Vec::with_capacity(64);
    let mut rbuf = Vec::with_capacity(256);
    let mut g = c.benchmark_group("row");
    g.throughput(Throughput::Elements(1));
    g.bench_function("canonical encoding (key + row)", |b| {
        b.iter(|| {
            key::encode_into(&mut kbuf, black_box(&r[..1]));
            canon::encode_row(&mut rbuf, black_box(&r), &order, &opts);
            rbuf.len() + kbuf.len()
        })
    });
    key::encode_into(&mut kbuf, &r[..1]);
    canon::encode_row(&mut rbuf, &r, &order, &opts);
    // Only the row's bytes are hashed (a leaf binds the key).
    g.throughput(Throughput::Bytes(rbuf.len() as u64));
    g.bench_function("hash (BLAKE3, one row)", |b| {
        b.iter(|| row_hash(black_box(&rbuf)))
    });
    // The same row in every lane: per row, comparable with the line above.
    g.throughput(Throughput::Bytes((LANES * rbuf.len()) as u64));
    let rows = [rbuf.as_slice(); LANES];
    let mut out = [Hash::default(); LANES];
    g.bench_function("hash (BLAKE3, rows side by side)", |b| {
        b.iter(|| row_hashes(black_box(&rows), &mut out))
    });
    g.finish();
}

/// `(key, hash)` entries of an `n`-row table; rows in `changed` hash
/// differently.
fn entries(n: u64, changed: &[u64]) -> Vec<(Vec<u8>, Hash)> {
    (0..n)
        .map(|i| {
            let k = key::encode(&[Value::Int(i as i128)]).as_bytes().to_vec();
            let v: &[u8] = if changed.binary_search(&i).is_ok() {
                b"changed"
            } else {
                b"row"
            };
            let h = row_hash(v);
            (k, h)
        })
        .collect()
}

fn build(e: &[(Vec<u8>, Hash)]) -> Tree {
    let mut b = Builder::new(Shape::default());
    for (k, h) in e {
        b.push(k, h).expect("keys are in order");
    }
    b.finish()
}

fn tree_building(c: &mut Criterion) {
    const N: u64 = 100_000;
    let e = entries(N, &[]);
    let mut g = c.benchmark_group("tree");
    g.throughput(Throughput::Elements(N));
    g.sample_size(20);
    g.bench_function("build from 100k (key, hash) entries", |b| {
        b.iter(|| build(black_box(&e)).rows)
    });
    g.finish();
}

fn walk(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    let base = build(&entries(N, &[]));
    let mut g = c.benchmark_group("walk");
    g.sample_size(20);
    for diffs in [10u64, 1_000] {
        let changed: Vec<u64> = (0..diffs)
            .map(|j| j * (N / diffs) + N / diffs / 2)
            .collect();
        let other = build(&entries(N, &changed));
        g.bench_with_input(
            BenchmarkId::new("1M-row trees, differing rows", diffs),
            &other,
            |b, other| b.iter(|| Walk::new(&base, other).count()),
        );
    }
    g.finish();
}

criterion_group!(benches, encoding, tree_building, walk);
criterion_main!(benches);
