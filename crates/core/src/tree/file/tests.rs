//! Round trips through the tree-file layout in memory, and refusals of
//! damaged bytes.

use super::*;
use crate::canon::CanonOptions;
use crate::diff::Walk;
use crate::hash::row_hash;
use crate::tree::{Builder, Shape, Tree};
use crate::value::LogicalType;

fn meta() -> TreeMeta {
    TreeMeta {
        encoding_version: crate::ENCODING_VERSION,
        canon: CanonOptions::default(),
        shape: Shape::default(),
        table: "t".into(),
        key_columns: vec![ColumnMeta {
            name: "id".into(),
            ty: LogicalType::Integer,
        }],
        columns: vec![],
        filter: None,
        built_from: "test".into(),
    }
}

fn build(n: u64, changed: u64) -> (Tree, EntryLog) {
    let mut b = Builder::new(Shape::default());
    let mut log = EntryLog::new();
    for k in 0..n {
        let key = k.to_be_bytes();
        let v: &[u8] = if k == changed { b"x" } else { b"v" };
        let h = row_hash(v);
        b.push(&key, &h).unwrap();
        log.push(&key, &h);
    }
    (b.finish(), log)
}

#[test]
fn round_trip_and_walk() {
    let (ta, la) = build(20_000, u64::MAX);
    let (tb, _) = build(20_000, 777);
    let ba = write(Vec::new(), &meta(), &ta, Some(&la)).unwrap();
    let bb = write(Vec::new(), &meta(), &tb, None).unwrap();
    let (fa, fb) = (
        TreeReader::parse(&ba[..]).unwrap(),
        TreeReader::parse(bb).unwrap(),
    );
    assert_eq!(fa.layout().rows, 20_000);
    assert_eq!(fa.meta(), &meta());
    // Walking the files finds what walking the trees finds, at the same cost.
    let mut mem = Walk::new(&ta, &tb);
    let expect: Vec<_> = mem.by_ref().map(|r| r.unwrap()).collect();
    let mut files = Walk::new(&fa, &fb);
    let got: Vec<_> = files.by_ref().map(|r| r.unwrap()).collect();
    assert_eq!(got, expect);
    assert_eq!(files.stats(), mem.stats());
    assert_eq!(got.len(), 1);
    let (e, more) = fa
        .entries(got[0].range.after.as_ref(), &got[0].range.through, 1 << 20)
        .unwrap();
    assert!(!more);
    assert_eq!(e.len() as u64, got[0].source_rows);
    assert_eq!(
        fb.entries(None, &got[0].range.through, 5).err(),
        Some(FormatError::NoEntries)
    );
    assert!(fa
        .first_key_after(got[0].range.after.as_ref())
        .unwrap()
        .is_some());
}

#[test]
fn damage_is_refused_by_kind() {
    let (t, _) = build(1_000, u64::MAX);
    let good = write(Vec::new(), &meta(), &t, None).unwrap();
    let err = |b: &[u8]| TreeReader::parse(b).err();
    assert_eq!(err(b"hello"), Some(FormatError::NotATreeFile));
    let mut v = good.clone();
    v[8] = 9;
    assert_eq!(err(&v), Some(FormatError::Version { found: 9 }));
    assert!(matches!(
        err(&good[..good.len() - 1]),
        Some(FormatError::Length { .. })
    ));
    let mut v = good.clone();
    let last = v.len() - 40;
    v[last] ^= 1;
    assert_eq!(err(&v), Some(FormatError::Checksum));
    assert!(err(&good).is_none());
}
