//! A MySQL / MariaDB column as the connector reads it: its logical type
//! and how its values come over the wire, from `COLUMN_TYPE`. Reading
//! `information_schema` is in `mysql.rs`.

use driftsum_core::LogicalType;

use crate::source::column::{ServerColumn, WireForm};

/// How a column's values come over the wire, and so how they are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wire {
    /// Signed integers (and YEAR), as `i64`.
    Int,
    /// Unsigned integers, as `u64`.
    UInt,
    /// FLOAT (4 bytes) and DOUBLE (8 bytes), as `f64`.
    Float,
    /// Strings the server sends as text (chars, decimals, enums, JSON).
    Text,
    /// Byte strings.
    Bytes,
    /// DATETIME and TIMESTAMP (which the UTC session reads in UTC), in the
    /// binary protocol's date-time layout, parsed by hand; `fsp` is the
    /// declared number of fractional digits.
    DateTime { fsp: u8 },
    /// DATE, in the binary protocol's layout.
    Date,
    /// TIME and UUIDs, cast to text in SQL.
    Cast,
    /// A type driftsum cannot read: an error if a scan asks for it.
    Unsupported,
}

/// One column as this connector reads it: its logical type `None` when
/// driftsum does not support it, in byte order when its collation is one of
/// [`CODE_POINT_COLLATIONS`].
pub(super) type ColInfo = ServerColumn<Wire, Option<LogicalType>>;

impl WireForm for Wire {
    const UNSUPPORTED: Wire = Wire::Unsupported;
}

/// Collations that compare UTF-8 text by code point, trailing spaces
/// included (NO PAD): their order is UTF-8 byte order.
pub(super) const CODE_POINT_COLLATIONS: &[&str] = &[
    "utf8mb4_nopad_bin",
    "utf8mb3_nopad_bin",
    "utf8_nopad_bin",
    "utf8mb4_0900_bin",
];

#[derive(Debug)]
pub(super) struct TableInfo {
    pub(super) columns: Vec<ColInfo>,
    pub(super) primary_key: Vec<String>,
}

/// The type name, its numeric arguments, and whether it is unsigned, of a
/// `COLUMN_TYPE` such as `int(10) unsigned` or `decimal(12,2)`.
pub(super) fn parse_column_type(column_type: &str) -> (String, Vec<u32>, bool) {
    let t = column_type.trim().to_ascii_lowercase();
    let name_end = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    let name = t[..name_end].to_string();
    let rest = &t[name_end..];
    let mut args = Vec::new();
    let mut tail = rest;
    if let Some(inner) = rest.trim_start().strip_prefix('(') {
        if let Some(close) = inner.find(')') {
            args = inner[..close]
                .split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect();
            tail = &inner[close + 1..];
        }
    }
    let unsigned = tail.split_whitespace().any(|w| w == "unsigned");
    (name, args, unsigned)
}

/// The logical type of a MySQL / MariaDB `COLUMN_TYPE`; `None` when driftsum
/// does not support it (bit, set, geometry, …).
///
/// MariaDB reports a `json` column as `longtext` (with a `json_valid` check);
/// that is told apart in schema discovery, not here.
pub fn logical_type(column_type: &str) -> Option<LogicalType> {
    use LogicalType as T;
    let (name, args, unsigned) = parse_column_type(column_type);
    let fsp = || args.first().map_or(0, |&p| p.min(6) as u8);
    Some(match name.as_str() {
        "bool" | "boolean" => T::Bool,
        "tinyint" if args.first() == Some(&1) && !unsigned => T::Bool,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" | "int1"
        | "int2" | "int3" | "int4" | "int8" | "middleint" => T::Integer,
        "decimal" | "numeric" | "dec" | "fixed" => T::Decimal {
            // MySQL's default is decimal(10,0).
            scale: Some(args.get(1).map_or(0, |&s| s.min(255) as u16)),
        },
        "float" | "float4" => T::Float { single: true },
        "double" | "real" | "float8" => T::Float { single: false },
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "nchar"
        | "nvarchar" | "long" => T::Text,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => T::Bytes,
        "datetime" => T::TimestampNaive { precision: fsp() },
        "timestamp" => T::Timestamp { precision: fsp() },
        "date" => T::Date,
        "time" => T::Time { precision: fsp() },
        "json" => T::Json,
        "uuid" => T::Uuid,
        _ => return None,
    })
}

/// How values of a column come over the wire.
pub(super) fn wire(column_type: &str, ty: Option<LogicalType>) -> Wire {
    use LogicalType as T;
    let (_, _, unsigned) = parse_column_type(column_type);
    match ty {
        None => Wire::Unsupported,
        Some(T::Integer | T::Bool) if unsigned => Wire::UInt,
        Some(T::Integer | T::Bool) => Wire::Int,
        Some(T::Float { .. }) => Wire::Float,
        Some(T::Decimal { .. } | T::Text | T::Json) => Wire::Text,
        Some(T::Bytes) => Wire::Bytes,
        Some(T::Timestamp { precision } | T::TimestampNaive { precision }) => {
            Wire::DateTime { fsp: precision }
        }
        Some(T::Date) => Wire::Date,
        Some(T::Time { .. } | T::Uuid) => Wire::Cast,
        Some(T::Dynamic) => Wire::Unsupported,
    }
}
