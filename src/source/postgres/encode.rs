//! A COPY row's values written straight into canonical row bytes: for the
//! usual column types, the bytes [`canon::encode_value`] writes for the value
//! [`decode`] makes, without making it (a wide `Value` moved through
//! `decode` and the column rule's `finish` for every value cost more than
//! the decoding itself); every other type goes through [`decode`]. The
//! property tests below hold each shortcut to that path, byte for byte.

use driftsum_core::canon::{self, CanonOptions};
use driftsum_core::coerce::{ColumnRule, TrailingSpaces};
use driftsum_core::{LogicalType, Value};

use super::binary::{self, fixed, DecodeError};
use super::column::Wire;
use super::decode::{as_is, decode, int};

/// Appends the canonical bytes of one value, `None` for NULL, read as
/// `wire` under `rule`. `scratch` holds a numeric's text between rows.
pub(super) fn encode_into(
    out: &mut Vec<u8>,
    raw: Option<&[u8]>,
    wire: Wire,
    rule: &ColumnRule,
    opts: &CanonOptions,
    scratch: &mut String,
) -> Result<(), DecodeError> {
    let Some(b) = raw else {
        canon::encode_value(out, &Value::Null, opts);
        return Ok(());
    };
    let plain_text = rule.trailing_spaces == TrailingSpaces::Significant;
    match (wire, rule.ty) {
        (Wire::Int, LogicalType::Integer) => {
            canon::encode_value(out, &Value::Int(int(b)? as i128), opts);
        }
        // The column rule's own float and timestamp steps, without the
        // value going through `finish` and back.
        (Wire::Float8, LogicalType::Float { .. }) => {
            let f = f64::from_be_bytes(fixed(b, "float8")?);
            canon::encode_value(out, &Value::Float(rule.float_bits(f)), opts);
        }
        (Wire::Timestamp, LogicalType::Timestamp { .. } | LogicalType::TimestampNaive { .. }) => {
            canon::encode_value(out, &rule.instant(binary::timestamp(b)?), opts);
        }
        (Wire::Text, LogicalType::Text) if plain_text => {
            canon::encode_text(out, crate::source::text::utf8(b)?);
        }
        (Wire::Numeric, LogicalType::Decimal { .. }) => {
            let kind = binary::numeric_into(b, scratch)?;
            match as_is(kind, rule.ty) {
                true => canon::encode_decimal(out, scratch),
                false => canon::encode_value(out, &rule.from_text(scratch), opts),
            }
        }
        _ => canon::encode_value(out, &decode(raw, wire, rule)?, opts),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the value path writes: [`decode`], then the canonical encoding.
    fn via_value(
        raw: Option<&[u8]>,
        wire: Wire,
        rule: &ColumnRule,
        opts: &CanonOptions,
    ) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        canon::encode_value(&mut out, &decode(raw, wire, rule)?, opts);
        Ok(out)
    }

    fn direct(
        raw: Option<&[u8]>,
        wire: Wire,
        rule: &ColumnRule,
        opts: &CanonOptions,
    ) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        // A scratch left over from another value must not leak into this one.
        let mut scratch = String::from("12345.678");
        encode_into(&mut out, raw, wire, rule, opts, &mut scratch)?;
        Ok(out)
    }

    /// Wire bytes of `wire`'s family: edge values and random ones.
    fn family(wire: Wire) -> BoxedStrategy<Vec<u8>> {
        match wire {
            Wire::Int => prop_oneof![
                any::<i16>().prop_map(|i| i.to_be_bytes().to_vec()),
                any::<i32>().prop_map(|i| i.to_be_bytes().to_vec()),
                any::<i64>().prop_map(|i| i.to_be_bytes().to_vec()),
                prop::sample::select(vec![i64::MIN, i64::MAX, 0, -1, 1])
                    .prop_map(|i| i.to_be_bytes().to_vec()),
            ]
            .boxed(),
            Wire::Float8 => prop_oneof![
                any::<f64>().prop_map(|f| f.to_be_bytes().to_vec()),
                prop::sample::select(vec![
                    0.0,
                    -0.0,
                    f64::NAN,
                    -f64::NAN,
                    f64::from_bits(0x7ff0_0000_0000_0001),
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::MIN_POSITIVE,
                    5e-324,
                    f64::MAX,
                    0.1,
                    1.0 / 3.0,
                    123_456.789_012_345_67,
                ])
                .prop_map(|f: f64| f.to_be_bytes().to_vec()),
            ]
            .boxed(),
            Wire::Timestamp => prop_oneof![
                any::<i64>().prop_map(|i| i.to_be_bytes().to_vec()),
                prop::sample::select(vec![i64::MIN, i64::MAX, 0, -1, 1, 999_999, -1_000_001])
                    .prop_map(|i| i.to_be_bytes().to_vec()),
            ]
            .boxed(),
            Wire::Text | Wire::PaddedText => prop_oneof![
                ".{0,12}".prop_map(String::into_bytes),
                prop::sample::select(vec!["", " ", "ab  ", "ünï 😀", "a\0b", "  x"])
                    .prop_map(|t: &str| t.as_bytes().to_vec()),
                prop::collection::vec(any::<u8>(), 0..12),
            ]
            .boxed(),
            // ndigits, weight, sign, dscale, then base-10000 digits (some
            // out of range, some missing or extra).
            _ => (
                0u16..6,
                -4i16..6,
                prop::sample::select(vec![0x0000u16, 0x4000, 0xC000, 0xD000, 0xF000, 0x1234]),
                0u16..8,
                prop::collection::vec(0u16..10_001, 0..7),
            )
                .prop_map(|(n, weight, sign, dscale, digits)| {
                    let mut b = Vec::new();
                    for h in [n, weight as u16, sign, dscale] {
                        b.extend_from_slice(&h.to_be_bytes());
                    }
                    for d in &digits {
                        b.extend_from_slice(&d.to_be_bytes());
                    }
                    b
                })
                .boxed(),
        }
    }

    fn types() -> impl Strategy<Value = LogicalType> {
        prop_oneof![
            Just(LogicalType::Integer),
            Just(LogicalType::Float { single: false }),
            Just(LogicalType::Float { single: true }),
            (0u8..8).prop_map(|precision| LogicalType::Timestamp { precision }),
            (0u8..8).prop_map(|precision| LogicalType::TimestampNaive { precision }),
            Just(LogicalType::Date),
            Just(LogicalType::Text),
            Just(LogicalType::Dynamic),
            prop::option::of(0u16..6).prop_map(|scale| LogicalType::Decimal { scale }),
        ]
    }

    /// A column as a scan reads it, and one value of it: mostly a wire type
    /// with the logical type it is read as (each shortcut's pair) and bytes
    /// of its family; else any pairing, and bytes of any family or none.
    fn columns() -> impl Strategy<Value = (Wire, ColumnRule, Option<Vec<u8>>)> {
        let wires = vec![
            Wire::Int,
            Wire::Float4,
            Wire::Float8,
            Wire::Timestamp,
            Wire::Text,
            Wire::PaddedText,
            Wire::Numeric,
            Wire::Date,
        ];
        let paired = prop_oneof![
            Just((Wire::Int, LogicalType::Integer)),
            Just((Wire::Float8, LogicalType::Float { single: false })),
            (0u8..8).prop_map(|p| (Wire::Timestamp, LogicalType::Timestamp { precision: p })),
            (0u8..8).prop_map(|p| (
                Wire::Timestamp,
                LogicalType::TimestampNaive { precision: p }
            )),
            Just((Wire::Text, LogicalType::Text)),
            prop::option::of(0u16..6)
                .prop_map(|scale| (Wire::Numeric, LogicalType::Decimal { scale })),
        ];
        let any_pair = (prop::sample::select(wires.clone()), types());
        let spaces = prop::sample::select(vec![
            TrailingSpaces::Significant,
            TrailingSpaces::Insignificant,
        ]);
        let pair = prop_oneof![4 => paired, 1 => any_pair];
        (pair, spaces, prop::sample::select(wires), 0u8..10).prop_flat_map(
            |((wire, ty), trailing_spaces, other, pick)| {
                let rule = ColumnRule {
                    trailing_spaces,
                    ..ColumnRule::new(ty)
                };
                let raw = match pick {
                    0 => Just(None).boxed(),
                    1 => family(other).prop_map(Some).boxed(),
                    _ => family(wire).prop_map(Some).boxed(),
                };
                (Just(wire), Just(rule), raw)
            },
        )
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(8192))]

        /// Every value, of every wire type under every logical type,
        /// trailing-space rule and float option, encodes as the value path
        /// encodes it, or fails as it does. (The shortcuts read no other
        /// part of a rule; its time storage and offset stay the defaults.)
        #[test]
        fn direct_encoding_is_the_value_paths(
            (wire, rule, raw) in columns(),
            digits in prop::option::of(1u8..18),
        ) {
            let opts = CanonOptions { float_digits: digits };
            let raw = raw.as_deref();
            prop_assert_eq!(direct(raw, wire, &rule, &opts), via_value(raw, wire, &rule, &opts));
        }
    }

    /// Fixed cases of each shortcut's own column type (the bench table's
    /// columns), so that each pairing is met whatever the random cases
    /// draw: the bytes match the value path's.
    #[test]
    fn each_shortcut_matches_on_its_own_column_type() {
        let opts = CanonOptions::default();
        let rule = ColumnRule::new;
        let cases: Vec<(Wire, LogicalType, Vec<u8>)> = vec![
            (
                Wire::Int,
                LogicalType::Integer,
                (-5i64).to_be_bytes().to_vec(),
            ),
            (Wire::Int, LogicalType::Integer, 7i32.to_be_bytes().to_vec()),
            (
                Wire::Float8,
                LogicalType::Float { single: false },
                (-0.0f64).to_be_bytes().to_vec(),
            ),
            (
                Wire::Float8,
                LogicalType::Float { single: false },
                f64::NAN.to_be_bytes().to_vec(),
            ),
            (
                Wire::Timestamp,
                LogicalType::TimestampNaive { precision: 6 },
                123_456_789i64.to_be_bytes().to_vec(),
            ),
            (
                Wire::Timestamp,
                LogicalType::Timestamp { precision: 2 },
                i64::MAX.to_be_bytes().to_vec(),
            ),
            (Wire::Text, LogicalType::Text, "naïve ".as_bytes().to_vec()),
            // 1234.5600 with dscale 4: canonical 1234.56, within scale 2.
            (
                Wire::Numeric,
                LogicalType::Decimal { scale: Some(2) },
                [2u16, 0, 0, 4, 1234, 5600]
                    .iter()
                    .flat_map(|h| h.to_be_bytes())
                    .collect(),
            ),
            // Three digits after the point in a scale-2 column: the rule rounds.
            (
                Wire::Numeric,
                LogicalType::Decimal { scale: Some(2) },
                [2u16, 0, 0, 3, 1, 1250]
                    .iter()
                    .flat_map(|h| h.to_be_bytes())
                    .collect(),
            ),
        ];
        for (wire, ty, bytes) in cases {
            let r = rule(ty);
            let got = direct(Some(&bytes), wire, &r, &opts).expect("decodes");
            assert_eq!(
                got,
                via_value(Some(&bytes), wire, &r, &opts).unwrap(),
                "{wire:?} {ty:?}"
            );
        }
    }
}
