//! Decoding PostgreSQL values from their binary wire form (module
//! [`binary`](super::binary) parses the formats) into the logical type of a
//! scan's column rule; one decoder for the COPY stream and sqlx's rows.

use driftsum_core::coerce::{ColumnRule, TrailingSpaces};
use driftsum_core::{LogicalType, Value};
use sqlx::postgres::PgValueRef;
use sqlx::ValueRef;

use super::binary::{self, fixed, DecodeError, Numeric};
use super::column::Wire;

/// The text of a value sent as UTF-8 bytes (text, varchar, and anything
/// cast to text in SQL).
fn utf8(b: &[u8]) -> Result<&str, DecodeError> {
    Ok(crate::source::text::utf8(b)?)
}

/// An `int2`, `int4` or `int8`, by its size.
pub(super) fn int(b: &[u8]) -> Result<i64, DecodeError> {
    Ok(match b.len() {
        2 => i16::from_be_bytes(fixed(b, "int2")?) as i64,
        4 => i32::from_be_bytes(fixed(b, "int4")?) as i64,
        8 => i64::from_be_bytes(fixed(b, "int8")?),
        n => return Err(DecodeError::IntegerSize(n)),
    })
}

/// Whether a numeric's text is already the value of a column of type
/// `ty`: a finite number within the column's scale. Anything else goes
/// through the column's rule, which rounds or refuses.
pub(super) fn as_is(kind: Numeric, ty: LogicalType) -> bool {
    match (kind, ty) {
        (Numeric::Finite { frac }, LogicalType::Decimal { scale }) => {
            scale.is_none_or(|s| frac <= s as usize)
        }
        _ => false,
    }
}

/// Decodes one value from its binary wire form (`None` for NULL). The one
/// decoder of both read paths: the COPY stream of full scans and sqlx's
/// rows (which sqlx receives in the same binary formats) of range scans.
pub(super) fn decode(
    raw: Option<&[u8]>,
    wire: Wire,
    rule: &ColumnRule,
) -> Result<Value, DecodeError> {
    let Some(b) = raw else {
        return Ok(Value::Null);
    };
    Ok(match wire {
        Wire::Int => rule.finish(Value::Int(int(b)? as i128)),
        Wire::Float4 => rule.finish(Value::Float(f32::from_be_bytes(fixed(b, "float4")?) as f64)),
        Wire::Float8 => rule.finish(Value::Float(f64::from_be_bytes(fixed(b, "float8")?))),
        Wire::Bool => rule.finish(Value::Bool(u8::from_be_bytes(fixed(b, "boolean")?) != 0)),
        Wire::Bytes => rule.finish(Value::Bytes(b.to_vec())),
        Wire::Text | Wire::PaddedText | Wire::EnumText => {
            rule.finish(Value::Text(utf8(b)?.to_owned()))
        }
        Wire::Timestamp => rule.finish(Value::Timestamp(binary::timestamp(b)?)),
        Wire::Date => Value::Date(binary::date(b)?),
        Wire::Time => rule.finish(Value::Time(binary::time(b)?)),
        Wire::Uuid => Value::Uuid(binary::uuid(b)?),
        Wire::Numeric => {
            // Already canonical; only a value with more fractional digits
            // than the column's scale, or a special one, needs the rule.
            let (text, kind) = binary::numeric(b)?;
            if as_is(kind, rule.ty) {
                Value::Decimal(text)
            } else {
                rule.from_text(&text)
            }
        }
        Wire::Cast => rule.from_text(utf8(b)?),
        Wire::Unsupported => return Err(DecodeError::Unsupported),
    })
}

/// [`decode`] into a slot of the row buffer, reusing a text or numeric
/// value's allocation from the previous row (a fresh `String` per value
/// showed in profiles).
pub(super) fn decode_into(
    slot: &mut Value,
    raw: Option<&[u8]>,
    wire: Wire,
    rule: &ColumnRule,
) -> Result<(), DecodeError> {
    let reused = match (raw, wire, rule.ty, &mut *slot) {
        (Some(b), Wire::Text, LogicalType::Text, Value::Text(s))
            if rule.trailing_spaces == TrailingSpaces::Significant =>
        {
            s.clear();
            s.push_str(utf8(b)?);
            true
        }
        // The usual money column: canonical already, unless it is special
        // or has more fractional digits than the scale (see `decode`).
        (Some(b), Wire::Numeric, LogicalType::Decimal { .. }, Value::Decimal(s)) => {
            as_is(binary::numeric_into(b, s)?, rule.ty)
        }
        _ => false,
    };
    if !reused {
        *slot = decode(raw, wire, rule)?;
    }
    Ok(())
}

/// Decodes one value of a sqlx row (range scans).
pub(super) fn decode_raw(
    raw: PgValueRef<'_>,
    wire: Wire,
    rule: &ColumnRule,
) -> Result<Value, DecodeError> {
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let bytes = raw
        .as_bytes()
        .map_err(|e| DecodeError::Driver(e.to_string()))?;
    decode(Some(bytes), wire, rule)
}
