//! Round trips and refusals of the protocol's messages.

use super::*;
use crate::key::{Key, KeyRange};
use crate::tree::{Entry, HashPrefix, NodeSummary, HASH_PREFIX_LEN};
use crate::value::Value;
use proptest::prelude::*;

fn summary(level: u8, index: u32, key: &[u8], rows: u64, h: u8) -> NodeSummary {
    NodeSummary {
        level,
        index,
        last_key: Key::from_bytes(key),
        rows,
        hash: HashPrefix([h; HASH_PREFIX_LEN]),
    }
}

#[test]
fn children_round_trip() {
    let parent = summary(2, 7, b"zz", 30, 1);
    let kids = vec![
        summary(1, 40, b"abc", 10, 2),
        summary(1, 41, b"abd", 15, 3),
        summary(1, 42, b"zz", 5, 4),
    ];
    let other = summary(2, 9, b"zzz", 3, 9);
    let more = vec![summary(1, 50, b"zzz", 3, 8)];
    let groups = vec![kids.clone(), more];
    let bytes = encode_children(&groups);
    assert_eq!(
        decode_children(&[parent.clone(), other.clone()], &bytes).unwrap(),
        groups
    );
    // The last child's key costs nothing.
    let mut shifted = kids.clone();
    shifted[2].last_key = Key::from_bytes(b"zzzzzzzz");
    assert_eq!(
        encode_children(&[shifted]).len(),
        encode_children(std::slice::from_ref(&kids)).len()
    );
    // Rows that do not add up are refused.
    let mut wrong = parent.clone();
    wrong.rows = 31;
    assert!(decode_children(&[wrong, other], &bytes).is_err());
    assert!(decode_children(&[parent], &bytes).is_err());
}

#[test]
fn requests_round_trip() {
    let r = EntriesRequest {
        tree: 9,
        ranges: vec![
            KeyRange {
                after: Some(Key::from_bytes(b"a")),
                through: Key::from_bytes(b"b"),
            },
            KeyRange {
                after: Some(Key::from_bytes(b"c")),
                through: Key::from_bytes(b"d"),
            },
        ],
        limit: 5,
    };
    assert_eq!(EntriesRequest::decode(&r.encode()).unwrap(), r);
    let c = ChildrenRequest {
        tree: 1,
        level: 3,
        indexes: vec![3, 300, 70_000],
    };
    assert_eq!(ChildrenRequest::decode(&c.encode()).unwrap(), c);
    let q = RowsRequest {
        tree: 2,
        groups: vec![
            (
                Some(Key::from_bytes(b"k0")),
                vec![Key::from_bytes(b"k1"), Key::from_bytes(b"k2")],
            ),
            (Some(Key::from_bytes(b"k2")), vec![Key::from_bytes(b"k3")]),
        ],
    };
    assert_eq!(RowsRequest::decode(&q.encode()).unwrap(), q);
    let root = summary(4, 0, b"last", 99, 5);
    assert_eq!(decode_root(&encode_root(Some(&root))).unwrap(), Some(root));
    assert_eq!(decode_root(&encode_root(None)).unwrap(), None);
}

#[test]
fn rows_round_trip() {
    let rows = vec![vec![
        Value::Int(-5),
        Value::Float(1.5),
        Value::Decimal("1.20".into()),
        Value::Null,
        Value::Uuid([3; 16]),
        Value::Bool(true),
        Value::Bytes(vec![0, 1]),
        Value::Date(-3),
    ]];
    assert_eq!(decode_rows(&encode_rows(&rows), 8).unwrap(), rows);
    // Every kind of value, its length counted without writing it.
    let long = "x".repeat(200);
    let every = [
        Value::Null,
        Value::Int(i128::MIN),
        Value::Float(-0.5),
        Value::Decimal("1.20".into()),
        Value::Text(long.clone()),
        Value::Text(String::new()),
        Value::Bytes(vec![0; 130]),
        Value::Bool(false),
        Value::Timestamp(-1),
        Value::TimestampNaive(i128::MAX),
        Value::Date(-3),
        Value::Time(86_399_999_999),
        Value::Uuid([9; 16]),
        Value::Json("{}".into()),
        Value::Invalid(long),
    ];
    for v in &every {
        let mut out = Vec::new();
        put_value(&mut out, v);
        assert_eq!(value_len(v), out.len(), "{v:?}");
    }
    assert!(decode_rows(&encode_rows(&rows), 7).is_err());
    // One row alone: every value back, its length as counted, and nothing
    // taken that is cut short, too wide or followed by more.
    let mut one = Vec::new();
    encode_row(&mut one, &every);
    assert_eq!(one.len(), encoded_row_len(&every));
    assert_eq!(decode_row(&one, every.len()).unwrap(), every);
    assert!(decode_row(&one, every.len() - 1).is_err());
    assert!(decode_row(&one[..one.len() - 1], every.len()).is_err());
    // Each value's bytes found without decoding the row: each decodes to
    // its value, and the same refusals.
    let mut spans = Vec::new();
    row_spans(&one, every.len(), &mut spans).unwrap();
    let back: Vec<Value> = spans
        .iter()
        .map(|r| value_from_bytes(&one[r.clone()]).unwrap())
        .collect();
    assert_eq!(back, every);
    assert!(row_spans(&one, every.len() - 1, &mut spans).is_err());
    assert!(row_spans(&one[..one.len() - 1], every.len(), &mut spans).is_err());
    let mut unknown = one.clone();
    unknown[1] = 0xee;
    assert!(row_spans(&unknown, every.len(), &mut spans).is_err());
    one.push(0);
    assert!(decode_row(&one, every.len()).is_err());
    assert!(row_spans(&one, every.len(), &mut spans).is_err());
    // The length alone, for 0, 1 and enough rows for a two-byte count.
    for n in [0, 1, 200] {
        let many: Vec<Vec<Value>> = (0..n).map(|_| rows[0].clone()).collect();
        let len = encoded_rows_len(many.iter().map(Vec::as_slice));
        assert_eq!(len, encode_rows(&many).len(), "{n} rows");
    }
}

#[test]
fn pages_cover_everything() {
    let entries = |from: u32, n: u32| -> Vec<Entry> {
        (from..from + n)
            .map(|i| Entry {
                key: Key::from_bytes(&i.to_be_bytes()),
                hash: HashPrefix::default(),
            })
            .collect()
    };
    let k = |i: u32| Key::from_bytes(&i.to_be_bytes());
    let ranges = vec![
        KeyRange {
            after: None,
            through: k(ENTRIES_PAGE * 2),
        },
        KeyRange {
            after: Some(k(ENTRIES_PAGE * 3)),
            through: k(ENTRIES_PAGE * 4),
        },
    ];
    let per = vec![
        entries(0, ENTRIES_PAGE * 2 + 1),
        entries(ENTRIES_PAGE * 3 + 1, 10),
    ];
    let pages = entry_pages(0, &ranges, &per);
    assert_eq!(pages.len(), 3);
    let total: usize = pages.iter().flat_map(|p| &p.1).map(|e| e.len()).sum();
    assert_eq!(total, per.iter().map(Vec::len).sum::<usize>());
    assert!(pages[0].2 && pages[1].2 && !pages[2].2);
    // Each page decodes against its own request.
    for (req, page, more) in &pages {
        let bytes = encode_entries(page, *more);
        assert_eq!(encoded_entries_len(page), bytes.len());
        let back = decode_entries(req, &bytes).unwrap();
        let page: Vec<Vec<Entry>> = page.iter().map(|e| e.to_vec()).collect();
        assert_eq!(back.0, page);
    }
    assert_eq!(entry_pages(0, &ranges[..1], &[vec![]]).len(), 1);
}

proptest! {
    /// Lengths counted without encoding are the encoded lengths.
    #[test]
    fn counted_lengths_are_encoded_lengths(
        v in any::<u64>(),
        keys in proptest::collection::btree_set(proptest::collection::vec(any::<u8>(), 0..300), 0..40),
        cut in 0usize..40,
    ) {
        let mut out = Vec::new();
        crate::varint::put(&mut out, v);
        prop_assert_eq!(crate::varint::len(v), out.len());
        let entries: Vec<Entry> = keys
            .iter()
            .map(|k| Entry { key: Key::from_bytes(k), hash: HashPrefix([7; HASH_PREFIX_LEN]) })
            .collect();
        let groups = vec![
            (None, keys.iter().take(cut).map(|k| Key::from_bytes(k)).collect()),
            (keys.iter().next().map(|k| Key::from_bytes(k)), keys.iter().skip(cut).map(|k| Key::from_bytes(k)).collect()),
        ];
        let req = RowsRequest { tree: 3, groups };
        prop_assert_eq!(req.encoded_len(), req.encode().len());
        let cut = cut.min(entries.len());
        let per = [&entries[..cut], &entries[cut..]];
        prop_assert_eq!(encoded_entries_len(&per), encode_entries(&per, true).len());
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let parent = summary(1, 0, b"\xff\xff", 1000, 0);
        let _ = decode_root(&bytes);
        let _ = decode_children(&[parent.clone(), parent], &bytes);
        let req = EntriesRequest { tree: 0, ranges: vec![KeyRange { after: None, through: Key::from_bytes(b"\x80") }, KeyRange { after: Some(Key::from_bytes(b"\x80")), through: Key::from_bytes(b"\xff") }], limit: 100 };
        let _ = decode_entries(&req, &bytes);
        let _ = decode_rows(&bytes, 3);
        // Spans found are within the bytes, and a row they cover decodes
        // whole exactly when its values decode one by one.
        let mut spans = Vec::new();
        if row_spans(&bytes, 2, &mut spans).is_ok() {
            let each: Result<Vec<Value>, _> =
                spans.iter().map(|r| value_from_bytes(&bytes[r.clone()])).collect();
            prop_assert_eq!(each.ok(), decode_row(&bytes, 2).ok());
        } else {
            prop_assert!(decode_row(&bytes, 2).is_err());
        }
        let _ = RootRequest::decode(&bytes);
        let _ = ChildrenRequest::decode(&bytes);
        let _ = EntriesRequest::decode(&bytes);
        let _ = RowsRequest::decode(&bytes);
    }

    #[test]
    fn entries_round_trip(keys in proptest::collection::btree_set(proptest::collection::vec(any::<u8>(), 1..8), 0..50)) {
        let entries: Vec<Entry> = keys.iter().map(|k| Entry { key: Key::from_bytes(k), hash: HashPrefix([k[0]; HASH_PREFIX_LEN]) }).collect();
        let req = EntriesRequest { tree: 0, ranges: vec![KeyRange { after: None, through: Key::from_bytes(&[0xff; 9]) }], limit: 100 };
        let (back, more) = decode_entries(&req, &encode_entries(std::slice::from_ref(&entries), false)).unwrap();
        prop_assert_eq!(back, vec![entries]);
        prop_assert!(!more);
    }
}
