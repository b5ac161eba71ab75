//! One side of a comparison as given, whatever holds it: a database read
//! here, a tree file, or an agent serving a database elsewhere. An
//! [`Endpoint`] is opened from its URL (owning its connection, file or
//! client) or lent a caller's database or client; it names its tables and
//! their schemas, and prepares a table's tree, which it hands over as a
//! [`Prepared`] side (see `prepared`) that answers the walk and the
//! reconciliation.

use std::ops::{Deref, DerefMut};

use crate::treefile::FileError;
use crate::treefile::TreeFile;
use driftsum_core::canon::CanonOptions;
use driftsum_core::tree::file::{ColumnMeta, TreeMeta};
use driftsum_core::{Shape, Side};

use super::prepared::{Holder, Prepared, RangeReads};
use crate::agent::{AgentClient, AgentError};
use crate::build::{expected_meta, scan_tree, scan_tree_keeping, Progress, Threads, TreeScan};
use crate::source::url::SideUrl;
use crate::source::{Column, ScanSpec, Source, SourceError, TableSchema};

/// Bytes of leaf entries a database side keeps when its range reads cannot
/// go through the key's index (about 17 a row plus the key: some millions of
/// rows); a larger table keeps none, and its drifted ranges are read by one
/// scan.
const KEPT_LEAVES: usize = 128 << 20;

/// Where one side's tree comes from.
pub enum Endpoint<'a> {
    /// A database, scanned here.
    Db(Held<'a, dyn Source + 'a>),
    /// A tree file written by `driftsum build`.
    File(Box<TreeFile>),
    /// A `driftsum serve` agent.
    Agent(Held<'a, AgentClient>),
}

/// What an endpoint holds: its own (opened from a URL) or a caller's,
/// lent for as long as the endpoint lives.
pub enum Held<'a, T: ?Sized> {
    Owned(Box<T>),
    Lent(&'a mut T),
}

impl<T: ?Sized> Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Held::Owned(t) => t,
            Held::Lent(t) => t,
        }
    }
}

impl<T: ?Sized> DerefMut for Held<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match self {
            Held::Owned(t) => t,
            Held::Lent(t) => t,
        }
    }
}

fn file_schema(meta: &TreeMeta) -> TableSchema {
    let column = |c: &ColumnMeta| Column {
        name: c.name.clone(),
        declared: c.ty.name().to_string(),
        ty: c.ty,
        // A tree file does not record it: text is compared as hashed.
        trailing_spaces: driftsum_core::coerce::TrailingSpaces::Significant,
    };
    TableSchema {
        name: meta.table.clone(),
        columns: meta
            .key_columns
            .iter()
            .chain(&meta.columns)
            .map(column)
            .collect(),
        primary_key: meta.key_columns.iter().map(|c| c.name.clone()).collect(),
    }
}

fn agent_err(e: AgentError) -> SourceError {
    SourceError::Other(e.to_string())
}

fn file_err(e: FileError) -> SourceError {
    SourceError::Other(e.to_string())
}

impl Endpoint<'static> {
    /// Opens a database URL, a tree file (`tree:PATH` or `*.dstree`) or an
    /// agent (`driftsum://HOST:PORT`, which needs `token`).
    pub fn open(url: &str, token: Option<&str>) -> Result<Endpoint<'static>, SourceError> {
        match SideUrl::parse(url)? {
            SideUrl::Database(u) => Ok(Endpoint::Db(Held::Owned(crate::source::open(&u)?))),
            SideUrl::TreeFile(p) => Ok(Endpoint::File(Box::new(
                TreeFile::open(&p).map_err(file_err)?,
            ))),
            SideUrl::Agent(addr) => {
                let token = token.ok_or_else(|| {
                    SourceError::BadUrl(format!(
                        "{url} is an agent: give its token with --token-file FILE or --token-env NAME, or token_file / token_env on the side in the config"
                    ))
                })?;
                let client = AgentClient::new(&addr, token);
                Ok(Endpoint::Agent(Held::Owned(Box::new(client))))
            }
        }
    }
}

impl<'a> Endpoint<'a> {
    /// A side reading the caller's database.
    pub fn database(source: &'a mut dyn Source) -> Endpoint<'a> {
        Endpoint::Db(Held::Lent(source))
    }

    /// A side asking the caller's agent client.
    pub fn agent(client: &'a mut AgentClient) -> Endpoint<'a> {
        Endpoint::Agent(Held::Lent(client))
    }

    /// What this side is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Db(s) => s.describe(),
            Endpoint::File(f) => format!("tree file {}", f.path().display()),
            Endpoint::Agent(c) => c.describe(),
        }
    }

    /// The tree file, when this side is one.
    pub fn file(&self) -> Option<&TreeFile> {
        match self {
            Endpoint::File(f) => Some(&**f),
            _ => None,
        }
    }

    /// Whether preparing this side scans a database in this process.
    pub fn scans_here(&self) -> bool {
        matches!(self, Endpoint::Db(_))
    }

    /// Names of the tables this side can compare.
    pub fn tables(&mut self) -> Result<Vec<String>, SourceError> {
        match self {
            Endpoint::Db(s) => s.tables(),
            Endpoint::File(f) => Ok(vec![f.meta().table.clone()]),
            Endpoint::Agent(c) => c.tables().map_err(agent_err),
        }
    }

    /// A table's schema; a tree file knows only its own table, with the
    /// columns it was built over.
    pub fn schema(&mut self, table: &str) -> Result<TableSchema, SourceError> {
        match self {
            Endpoint::Db(s) => s.schema(table),
            Endpoint::File(f) if f.meta().table == table => Ok(file_schema(f.meta())),
            Endpoint::File(f) => Err(SourceError::Other(format!(
                "{} holds table {:?}, not {table:?}",
                f.path().display(),
                f.meta().table
            ))),
            Endpoint::Agent(c) => c.schema(table).map_err(agent_err),
        }
    }

    /// Gets this side's tree of `spec` ready to walk: scans a database,
    /// checks that a tree file was built the way this diff compares, or asks
    /// an agent to build (or reuse) its tree.
    pub fn prepare(
        &mut self,
        spec: &ScanSpec,
        opts: &CanonOptions,
        shape: Shape,
        side: Side,
        threads: Threads,
        progress: Progress<'_>,
    ) -> Result<Prepared<'_>, SourceError> {
        match self {
            Endpoint::Db(source) => {
                let job = TreeScan {
                    spec,
                    opts,
                    shape,
                    side,
                    threads,
                };
                // A side whose range reads cannot go through the key's
                // index keeps its leaves' entries, to read drifted rows by
                // their exact keys instead, where it can look them up.
                let (built, reads) = if source.ranges_use_index(spec)? {
                    let built = scan_tree(&mut **source, &job, progress, None)?;
                    (built, RangeReads::Indexed)
                } else if source.looks_up_keys(spec)? {
                    let mut built = scan_tree_keeping(&mut **source, &job, progress, KEPT_LEAVES)?;
                    let reads = built
                        .kept
                        .take()
                        .map_or(RangeReads::Scanned, RangeReads::ByKey);
                    (built, reads)
                } else {
                    let built = scan_tree(&mut **source, &job, progress, None)?;
                    (built, RangeReads::Scanned)
                };
                let (rows, read) = (built.tree.rows, built.rows_read);
                let holder = Holder::Database {
                    source: &mut **source,
                    tree: built.tree,
                    ordered: built.ordered,
                    reads,
                    cached: Vec::new(),
                };
                Ok(Prepared::new(spec, opts, rows, read, holder))
            }
            Endpoint::File(f) => {
                let mut have = f.meta().clone();
                have.columns.sort_by(|a, b| a.name.cmp(&b.name));
                let want = expected_meta(spec, opts, shape);
                have.comparable(&want, &format!("{}", f.path().display()), "this diff")
                    .map_err(|m| SourceError::Other(m.0))?;
                let rows = f.layout().rows;
                Ok(Prepared::new(spec, opts, rows, 0, Holder::File(f)))
            }
            Endpoint::Agent(client) => {
                let built = client.build(spec, opts, shape).map_err(agent_err)?;
                let holder = Holder::Agent {
                    client,
                    tree: built.tree,
                };
                Ok(Prepared::new(
                    spec,
                    opts,
                    built.rows,
                    built.rows_read,
                    holder,
                ))
            }
        }
    }
}
