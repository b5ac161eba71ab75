//! A PostgreSQL column as the connector reads it: its logical type and how
//! its values travel over the wire, from the catalog's type names. Reading
//! the catalog is in `postgres.rs`; decoding is in `decode`.

use driftsum_core::LogicalType;

use crate::source::column::{ServerColumn, WireForm};
use crate::source::spec::type_args;

/// How a column travels over the wire and is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wire {
    /// int2 / int4 / int8, binary.
    Int,
    /// float4, binary.
    Float4,
    /// float8, binary.
    Float8,
    Bool,
    Bytes,
    /// text / varchar, binary (UTF-8 bytes).
    Text,
    /// `char(n)`: cast to text in SQL, which removes the padding.
    PaddedText,
    /// Enum labels: cast to text (their SQL order is not text order).
    EnumText,
    /// timestamp / timestamptz, binary.
    Timestamp,
    /// date, binary.
    Date,
    /// time, binary.
    Time,
    /// uuid, binary.
    Uuid,
    /// numeric, binary.
    Numeric,
    /// Anything else: cast to text and parsed by the column rule.
    Cast,
    /// A type driftsum cannot compare: reported as dynamic by `schema` (so
    /// the column can be left out), an error when a scan asks for it.
    Unsupported,
}

/// A column of a PostgreSQL table, as discovered. A text column is in byte
/// order when its collation compares UTF-8 bytes ("C", "POSIX",
/// `ucs_basic`, or a database default of C); any other collation orders
/// otherwise, and is compared in "C".
pub(super) type PgColumn = ServerColumn<Wire, LogicalType>;

impl WireForm for Wire {
    const UNSUPPORTED: Wire = Wire::Unsupported;
}

/// The logical type of a PostgreSQL column, from `format_type(atttypid,
/// atttypmod)` and `pg_type.typtype` (`'e'` for enums); `None` when driftsum
/// cannot compare it. Domains are mapped by their base type.
pub fn logical_type(format_type: &str, typtype: char) -> Option<LogicalType> {
    classify(format_type, typtype, '?').map(|(t, _)| t)
}

/// How a column of a base or enum type (a domain resolved to its base) is
/// read, from its `format_type`, `typtype` and `typcategory`; `None` for a
/// type driftsum cannot compare exactly, which is then refused, never
/// compared by its wire bytes.
pub(super) fn classify(
    format_type: &str,
    typtype: char,
    category: char,
) -> Option<(LogicalType, Wire)> {
    use LogicalType as T;
    let f = format_type.trim();
    // Arrays are refused: their binary form is a header and elements, not
    // any element type's form (`varchar(10)[]` would read as its raw
    // bytes, `numeric(10,2)[]` fail as a numeric), and a replica's forms
    // (`{a,b}`, JSON) follow rules of their own. `format_type` names every
    // array type with `[]`, whatever its category.
    if category == 'A' || f.ends_with("[]") {
        return None;
    }
    if typtype == 'e' {
        return Some((T::Text, Wire::EnumText));
    }
    if typtype != 'b' {
        return None;
    }
    let base = f.split('(').next().unwrap_or(f).trim();
    let args = type_args(f);
    let precision = || args.first().map_or(6, |&p| p.clamp(0, 6) as u8);
    Some(match base {
        "smallint" | "integer" | "bigint" => (T::Integer, Wire::Int),
        "real" => (T::Float { single: true }, Wire::Float4),
        "double precision" => (T::Float { single: false }, Wire::Float8),
        "numeric" => (
            T::Decimal {
                scale: match args.as_slice() {
                    [] => None,
                    [_] => Some(0),
                    [_, s, ..] => Some((*s).clamp(0, u16::MAX.into()) as u16),
                },
            },
            Wire::Numeric,
        ),
        "text" | "character varying" => (T::Text, Wire::Text),
        "character" | "bpchar" => (T::Text, Wire::PaddedText),
        "bytea" => (T::Bytes, Wire::Bytes),
        "boolean" => (T::Bool, Wire::Bool),
        "date" => (T::Date, Wire::Date),
        "uuid" => (T::Uuid, Wire::Uuid),
        "json" | "jsonb" => (T::Json, Wire::Cast),
        _ if f.starts_with("timestamp") && f.ends_with("without time zone") => (
            T::TimestampNaive {
                precision: precision(),
            },
            Wire::Timestamp,
        ),
        _ if f.starts_with("timestamp") && f.ends_with("with time zone") => (
            T::Timestamp {
                precision: precision(),
            },
            Wire::Timestamp,
        ),
        _ if f.starts_with("time") && f.ends_with("without time zone") => (
            T::Time {
                precision: precision(),
            },
            Wire::Time,
        ),
        _ => return None,
    })
}
