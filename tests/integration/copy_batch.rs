//! The vendored sqlx-postgres patch that joins the CopyData messages already
//! buffered (`vendor/sqlx-postgres/src/copy/batch.rs`, plain `std`, included
//! here as a module): against a model of the framing over families of edge
//! cases and random message runs cut anywhere.

#[path = "../../vendor/sqlx-postgres/src/copy/batch.rs"]
mod batch;

use batch::join_copy_data;
use proptest::prelude::*;

/// One backend message: type byte, length counting itself, payload.
fn message(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&(payload.len() as u32 + 4).to_be_bytes());
    m.extend_from_slice(payload);
    m
}

/// What the join must give: `first` and the payloads of the leading whole
/// CopyData messages of `messages` cut to `cut` bytes, and the bytes they
/// take.
fn model(first: &[u8], messages: &[(u8, Vec<u8>)], cut: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = first.to_vec();
    let mut used = 0;
    let mut any = false;
    for (kind, payload) in messages {
        let end = used + 5 + payload.len();
        if *kind != b'd' || end > cut {
            break;
        }
        out.extend_from_slice(payload);
        used = end;
        any = true;
    }
    any.then_some((out, used))
}

#[test]
fn edges_of_the_framing() {
    let first = b"row0".as_slice();
    let one = message(b'd', b"row1");
    // Nothing buffered, or less than a header of a CopyData message.
    for n in 0..5 {
        assert_eq!(join_copy_data(first, &one[..n]), None, "{n} bytes");
    }
    // A CopyData message cut anywhere in its payload stays.
    for n in 5..one.len() {
        assert_eq!(join_copy_data(first, &one[..n]), None, "{n} bytes");
    }
    // Exactly one whole message.
    assert_eq!(
        join_copy_data(first, &one),
        Some((b"row0row1".to_vec(), one.len()))
    );
    // An empty payload (length 4) is a whole message.
    let empty = message(b'd', b"");
    assert_eq!(join_copy_data(first, &empty), Some((b"row0".to_vec(), 5)));
    // A length below 4 is not a message to take: it is left for the
    // driver's own receive, which reports it.
    for len in 0..4u32 {
        let mut bad = vec![b'd'];
        bad.extend_from_slice(&len.to_be_bytes());
        bad.extend_from_slice(b"xxxx");
        assert_eq!(join_copy_data(first, &bad), None, "length {len}");
        let mut after = one.clone();
        after.extend_from_slice(&bad);
        assert_eq!(
            join_copy_data(first, &after),
            Some((b"row0row1".to_vec(), one.len())),
            "length {len} after a whole message"
        );
    }
    // A notice, an error, CopyDone or CommandComplete between CopyData
    // messages ends the run; the messages after it stay where they are.
    for kind in [b'N', b'E', b'c', b'C', b'S', b'Z'] {
        let mut buf = one.clone();
        buf.extend_from_slice(&message(kind, b"other"));
        buf.extend_from_slice(&message(b'd', b"row2"));
        assert_eq!(
            join_copy_data(first, &buf),
            Some((b"row0row1".to_vec(), one.len())),
            "{}",
            kind as char
        );
        assert_eq!(join_copy_data(first, &buf[one.len()..]), None);
    }
    // A length near u32::MAX does not overflow: the message is not whole.
    let mut huge = vec![b'd'];
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(join_copy_data(first, &huge), None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random runs of messages (mostly CopyData, payloads of 0 to 40
    /// bytes), cut at any byte: the join equals the model.
    #[test]
    fn joins_exactly_the_leading_whole_copy_data(
        first in proptest::collection::vec(any::<u8>(), 0..20),
        messages in proptest::collection::vec(
            (
                prop_oneof![8 => Just(b'd'), 1 => Just(b'N'), 1 => Just(b'c')],
                proptest::collection::vec(any::<u8>(), 0..40),
            ),
            0..12,
        ),
        cut in any::<prop::sample::Index>(),
    ) {
        let all: Vec<u8> = messages.iter().flat_map(|(k, p)| message(*k, p)).collect();
        let cut = cut.index(all.len() + 1);
        prop_assert_eq!(join_copy_data(&first, &all[..cut]), model(&first, &messages, cut));
    }
}
