//! The agent's endpoints and their JSON messages. The walk's own messages
//! (root, children, entries, rows) are binary, in the wire encoding of
//! `driftsum_core::protocol`; these are the setup around them.
//!
//! | endpoint | body → answer |
//! |---|---|
//! | `GET /healthz` | — → `ok` (no token needed) |
//! | `GET /v1/tables` | — → JSON list of table names |
//! | `POST /v1/schema` | `{"table"}` → JSON [`WireSchema`] |
//! | `POST /v1/tree` | JSON [`BuildRequest`] → JSON [`BuildResponse`] |
//! | `POST /v1/invalidate` | `{"table"}` or `{}` → `{"dropped": n}` |
//! | `POST /v1/root` | `RootRequest` → root summary |
//! | `POST /v1/children` | `ChildrenRequest` → children summaries |
//! | `POST /v1/entries` | `EntriesRequest` → a page of leaf entries |
//! | `POST /v1/rows` | `RowsRequest` → rows |

use serde::{Deserialize, Serialize};

use driftsum_core::canon::CanonOptions;
use driftsum_core::coerce::{ColumnRule, TimeStorage, TrailingSpaces};
use driftsum_core::protocol::TreeId;
use driftsum_core::{LogicalType, Shape, ENCODING_VERSION};

use crate::source::{Column, ColumnRange, ColumnSpec, ScanSpec, TableSchema};

/// Version of these messages; a client and an agent must agree on it.
pub const PROTOCOL_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRequest {
    pub table: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireColumn {
    pub name: String,
    pub declared: String,
    pub logical_type: LogicalType,
    /// Absent from an older agent's answer: significant.
    #[serde(default)]
    pub trailing_spaces: TrailingSpaces,
}

/// A table's schema as the agent's database declares it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireSchema {
    pub name: String,
    pub columns: Vec<WireColumn>,
    pub primary_key: Vec<String>,
}

impl From<&TableSchema> for WireSchema {
    fn from(s: &TableSchema) -> WireSchema {
        WireSchema {
            name: s.name.clone(),
            columns: s
                .columns
                .iter()
                .map(|c| WireColumn {
                    name: c.name.clone(),
                    declared: c.declared.clone(),
                    logical_type: c.ty,
                    trailing_spaces: c.trailing_spaces,
                })
                .collect(),
            primary_key: s.primary_key.clone(),
        }
    }
}

impl From<WireSchema> for TableSchema {
    fn from(s: WireSchema) -> TableSchema {
        TableSchema {
            name: s.name,
            columns: s
                .columns
                .into_iter()
                .map(|c| Column {
                    name: c.name,
                    declared: c.declared,
                    ty: c.logical_type,
                    trailing_spaces: c.trailing_spaces,
                })
                .collect(),
            primary_key: s.primary_key,
        }
    }
}

/// How the agent reads one column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireColumnSpec {
    pub name: String,
    pub logical_type: LogicalType,
    pub time_storage: TimeStorage,
    pub assume_offset_secs: i32,
    #[serde(default)]
    pub trailing_spaces: TrailingSpaces,
}

/// Build (or reuse) the tree of a table, read and hashed this way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRequest {
    pub protocol: u32,
    pub encoding_version: u32,
    pub table: String,
    pub key: Vec<WireColumnSpec>,
    pub values: Vec<WireColumnSpec>,
    pub filter: Option<String>,
    /// Typed ranges on decoded values (`--since`, `--min-age`...), which
    /// the agent applies itself: no SQL, so no `--allow-where` needed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<WireRange>,
    pub canon: CanonOptions,
    pub shape: Shape,
}

/// A typed range on one column; bounds in the lossless value codec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRange {
    pub column: WireColumnSpec,
    pub since: Option<Vec<u8>>,
    pub until: Option<Vec<u8>>,
}

fn wire_ranges(ranges: &[ColumnRange]) -> Vec<WireRange> {
    let bytes = |v: &Option<driftsum_core::Value>| {
        v.as_ref().map(|v| {
            let mut out = Vec::new();
            driftsum_core::protocol::put_value(&mut out, v);
            out
        })
    };
    ranges
        .iter()
        .map(|r| WireRange {
            column: wire_cols(std::slice::from_ref(&r.column)).remove(0),
            since: bytes(&r.range.since),
            until: bytes(&r.range.until),
        })
        .collect()
}

/// The ranges of a request; an undecodable bound is an error (never an
/// open end, which would compare rows the client left out).
fn spec_ranges(ranges: &[WireRange]) -> Result<Vec<ColumnRange>, String> {
    let value = |b: &Option<Vec<u8>>| {
        b.as_deref()
            .map(driftsum_core::protocol::value_from_bytes)
            .transpose()
            .map_err(|e| format!("a range bound does not decode: {e}"))
    };
    ranges
        .iter()
        .map(|r| {
            Ok(ColumnRange {
                column: spec_cols(std::slice::from_ref(&r.column)).remove(0),
                range: driftsum_core::filter::ValueRange {
                    since: value(&r.since)?,
                    until: value(&r.until)?,
                },
            })
        })
        .collect()
}

fn wire_cols(c: &[ColumnSpec]) -> Vec<WireColumnSpec> {
    c.iter()
        .map(|c| WireColumnSpec {
            name: c.name.clone(),
            logical_type: c.rule.ty,
            time_storage: c.rule.time_storage,
            assume_offset_secs: c.rule.assume_offset_secs,
            trailing_spaces: c.rule.trailing_spaces,
        })
        .collect()
}

fn spec_cols(c: &[WireColumnSpec]) -> Vec<ColumnSpec> {
    c.iter()
        .map(|c| ColumnSpec {
            name: c.name.clone(),
            rule: ColumnRule {
                ty: c.logical_type,
                time_storage: c.time_storage,
                assume_offset_secs: c.assume_offset_secs,
                trailing_spaces: c.trailing_spaces,
            },
        })
        .collect()
}

impl BuildRequest {
    pub fn new(spec: &ScanSpec, canon: &CanonOptions, shape: Shape) -> BuildRequest {
        BuildRequest {
            protocol: PROTOCOL_VERSION,
            encoding_version: ENCODING_VERSION,
            table: spec.table.clone(),
            key: wire_cols(&spec.key),
            values: wire_cols(&spec.values),
            filter: spec.filter.clone(),
            ranges: wire_ranges(&spec.ranges),
            canon: *canon,
            shape,
        }
    }

    /// The scan asked for; an error when a range bound does not decode.
    pub fn spec(&self) -> Result<ScanSpec, String> {
        Ok(ScanSpec {
            table: self.table.clone(),
            key: spec_cols(&self.key),
            values: spec_cols(&self.values),
            filter: self.filter.clone(),
            ranges: spec_ranges(&self.ranges)?,
        })
    }
}

/// A built tree: the id to walk it by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildResponse {
    pub tree: TreeId,
    pub rows: u64,
    /// Rows the agent read to build it (0 when a cached tree was reused).
    pub rows_read: u64,
    pub levels: u32,
    pub cached: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidateResponse {
    pub dropped: u64,
}
