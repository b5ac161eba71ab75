//! What a tree file's JSON header says: how the tree was built ([`TreeMeta`],
//! which decides whether two trees are comparable) and where its sections lie
//! ([`Layout`]). Neither the bytes around it ([`super::writer`],
//! [`super::reader`]) nor any file handling lives here.

use serde::{Deserialize, Serialize};

use crate::canon::CanonOptions;
use crate::tree::Shape;
use crate::value::LogicalType;

/// A column as a tree was built over it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMeta {
    /// The column's name.
    pub name: String,
    #[serde(rename = "logical_type")]
    /// The column's logical type.
    pub ty: LogicalType,
}

/// What a tree was built from and how: everything two trees must share to be
/// comparable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeMeta {
    /// The canonical encoding version the rows were hashed in.
    pub encoding_version: u32,
    /// The canonical options the rows were hashed with.
    pub canon: CanonOptions,
    /// The tree's shape.
    pub shape: Shape,
    /// The table the rows came from.
    pub table: String,
    /// The key columns, in key order.
    pub key_columns: Vec<ColumnMeta>,
    /// The compared value columns, in scan order.
    pub columns: Vec<ColumnMeta>,
    /// The `--where` condition the rows were selected by.
    pub filter: Option<String>,
    /// The database it was read from, for messages (never with credentials).
    pub built_from: String,
}

/// Why two trees cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Mismatch(pub String);

fn names(cols: &[ColumnMeta]) -> String {
    cols.iter()
        .map(|c| format!("{} {}", c.name, c.ty))
        .collect::<Vec<_>>()
        .join(", ")
}

impl TreeMeta {
    /// Whether a tree described by `self` (called `mine`) can be compared
    /// with one described by `other` (`theirs`): same encoding version,
    /// canonical options, shape, key and value columns (names and types) and
    /// row filter. The table names may differ.
    pub fn comparable(&self, other: &TreeMeta, mine: &str, theirs: &str) -> Result<(), Mismatch> {
        let why = |what: &str, a: String, b: String| {
            Err(Mismatch(format!(
                "{mine} and {theirs} were built with different {what} ({a} vs {b}); \
                 trees compare only when built the same way"
            )))
        };
        if self.encoding_version != other.encoding_version {
            return why(
                "canonical encoding versions",
                self.encoding_version.to_string(),
                other.encoding_version.to_string(),
            );
        }
        if self.canon != other.canon {
            let d = |c: &CanonOptions| match c.float_digits {
                Some(n) => format!("--float-digits {n}"),
                None => "exact floats".into(),
            };
            return why("float options", d(&self.canon), d(&other.canon));
        }
        if self.shape != other.shape {
            let d = |s: &Shape| format!("--leaf-target {} --fanout {}", s.leaf_target, s.fanout);
            return why("tree shapes", d(&self.shape), d(&other.shape));
        }
        if self.key_columns != other.key_columns {
            return why(
                "key columns",
                names(&self.key_columns),
                names(&other.key_columns),
            );
        }
        if self.columns != other.columns {
            return why("columns", names(&self.columns), names(&other.columns));
        }
        if self.filter != other.filter {
            let d = |f: &Option<String>| f.clone().unwrap_or_else(|| "no --where".into());
            return why("row filters", d(&self.filter), d(&other.filter));
        }
        Ok(())
    }
}

/// The counts that place the sections of a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Rows in the tree.
    pub rows: u64,
    /// Nodes per level, leaves first.
    pub levels: Vec<u64>,
    /// Leaf entries stored (one per row), or `None` without entries.
    pub entries: Option<u64>,
    /// Bytes of the key heap.
    pub heap_bytes: u64,
}

/// The JSON header of a tree file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHeader {
    /// How the tree was built.
    pub meta: TreeMeta,
    /// Where the file's sections lie.
    pub layout: Layout,
}
