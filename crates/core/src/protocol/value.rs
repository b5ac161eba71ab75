//! The value codec for rows sent whole: the type tag shared with the
//! canonical encoding ([`crate::tag`]), then a fixed little-endian payload or
//! a varint length and bytes. Unlike the canonical encoding it is lossless
//! and decodable, since rows are shown to people.

use crate::tag;
use crate::value::Value;
use crate::varint;

use super::cursor::Reader;
use super::WireError;

fn put_str(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push(tag);
    varint::put(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends one value: a tag, then a fixed little-endian payload or a
/// varint length and bytes. Unlike the canonical encoding this one is
/// lossless and decodable, since rows are shown to people.
pub fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(tag::NULL),
        Value::Int(i) => {
            out.push(tag::INT);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(tag::FLOAT);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Decimal(s) => put_str(out, tag::DECIMAL, s.as_bytes()),
        Value::Text(s) => put_str(out, tag::TEXT, s.as_bytes()),
        Value::Bytes(b) => put_str(out, tag::BYTES, b),
        Value::Bool(b) => out.extend_from_slice(&[tag::BOOL, *b as u8]),
        Value::Timestamp(t) => {
            out.push(tag::TIMESTAMP);
            out.extend_from_slice(&t.to_le_bytes());
        }
        Value::TimestampNaive(t) => {
            out.push(tag::TIMESTAMP_NAIVE);
            out.extend_from_slice(&t.to_le_bytes());
        }
        Value::Date(d) => {
            out.push(tag::DATE);
            out.extend_from_slice(&d.to_le_bytes());
        }
        Value::Time(t) => {
            out.push(tag::TIME);
            out.extend_from_slice(&t.to_le_bytes());
        }
        Value::Uuid(u) => {
            out.push(tag::UUID);
            out.extend_from_slice(u);
        }
        Value::Json(s) => put_str(out, tag::JSON, s.as_bytes()),
        Value::Invalid(s) => put_str(out, tag::INVALID, s.as_bytes()),
    }
}

/// How many bytes [`put_value`] writes for `v`.
pub fn value_len(v: &Value) -> usize {
    let var = |n: usize| 1 + varint::len(n as u64) + n;
    match v {
        Value::Null => 1,
        Value::Bool(_) => 2,
        Value::Int(_) | Value::Timestamp(_) | Value::TimestampNaive(_) => 17,
        Value::Float(_) | Value::Time(_) => 9,
        Value::Date(_) => 5,
        Value::Uuid(_) => 17,
        Value::Decimal(s) | Value::Text(s) | Value::Json(s) | Value::Invalid(s) => var(s.len()),
        Value::Bytes(b) => var(b.len()),
    }
}

/// Decodes one value written by [`put_value`], and nothing after it.
pub fn value_from_bytes(buf: &[u8]) -> Result<Value, WireError> {
    let mut r = Reader::new(buf);
    let v = get_value(&mut r)?;
    r.finish()?;
    Ok(v)
}

/// Steps over one value written by [`put_value`] without decoding it: its
/// tag and payload are read as [`get_value`] reads them, and only the
/// checks on what a payload holds (UTF-8, a bool's byte) are left to it.
#[inline]
pub(super) fn skip_value(r: &mut Reader<'_>) -> Result<(), WireError> {
    let payload = match r.u8()? {
        tag::NULL => 0,
        tag::BOOL => 1,
        tag::DATE => 4,
        tag::FLOAT | tag::TIME => 8,
        tag::INT | tag::TIMESTAMP | tag::TIMESTAMP_NAIVE | tag::UUID => 16,
        tag::DECIMAL | tag::TEXT | tag::BYTES | tag::JSON | tag::INVALID => {
            r.bounded(u32::MAX as u64, "value too long")? as usize
        }
        _ => return Err(WireError::Invalid("unknown value tag")),
    };
    r.bytes(payload).map(drop)
}

pub(super) fn get_value(r: &mut Reader<'_>) -> Result<Value, WireError> {
    let string = |r: &mut Reader<'_>| -> Result<String, WireError> {
        let n = r.bounded(u32::MAX as u64, "value too long")? as usize;
        String::from_utf8(r.bytes(n)?.to_vec()).map_err(|_| WireError::Invalid("text is not UTF-8"))
    };
    Ok(match r.u8()? {
        tag::NULL => Value::Null,
        tag::INT => Value::Int(i128::from_le_bytes(r.array()?)),
        tag::FLOAT => Value::Float(f64::from_bits(u64::from_le_bytes(r.array()?))),
        tag::DECIMAL => Value::Decimal(string(r)?),
        tag::TEXT => Value::Text(string(r)?),
        tag::BYTES => {
            let n = r.bounded(u32::MAX as u64, "value too long")? as usize;
            Value::Bytes(r.bytes(n)?.to_vec())
        }
        tag::BOOL => match r.u8()? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return Err(WireError::Invalid("bad bool")),
        },
        tag::TIMESTAMP => Value::Timestamp(i128::from_le_bytes(r.array()?)),
        tag::TIMESTAMP_NAIVE => Value::TimestampNaive(i128::from_le_bytes(r.array()?)),
        tag::DATE => Value::Date(i32::from_le_bytes(r.array()?)),
        tag::TIME => Value::Time(i64::from_le_bytes(r.array()?)),
        tag::UUID => Value::Uuid(r.array()?),
        tag::JSON => Value::Json(string(r)?),
        tag::INVALID => Value::Invalid(string(r)?),
        _ => return Err(WireError::Invalid("unknown value tag")),
    })
}
