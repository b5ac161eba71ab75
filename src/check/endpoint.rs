//! One side of a comparison, whatever holds it: a database read here, a tree
//! file, or an agent serving a database elsewhere. An [`Endpoint`] answers
//! the few questions a tree check asks — the tables, a table's schema, a
//! tree, the leaf entries of a key range, rows by key — and says when it
//! cannot (a tree file has no rows, and without `--with-entries` no entries
//! either).

use driftsum_core::canon::{self, CanonOptions};
use driftsum_core::hash::row_hash;
use driftsum_core::key::KeyRange;
use driftsum_core::protocol as wire;
use driftsum_core::tree::file::{ColumnMeta, TreeMeta};
use driftsum_core::tree::TreeSide;
use driftsum_core::tree::{Entry, HashPrefix, NoSuchNode, NodeSummary};
use driftsum_core::{key, Hash, Key, Shape, Side, Tree, Value, ENCODING_VERSION};

use super::tree::{scan_tree, Threads, TreeScan};
use super::Progress;
use crate::agent::{AgentClient, AgentError};
use crate::reconcile::{fetch_ranges, KeyedRow};
use crate::source::url::SideUrl;
use crate::source::{Column, ScanSpec, Source, SourceError, TableSchema};
use crate::treefile::{FileError, TreeFile};

/// Where one side's tree comes from.
pub enum Endpoint<'a> {
    /// A database, scanned here.
    Db(&'a mut dyn Source),
    /// A tree file written by `driftsum build`.
    File(&'a TreeFile),
    /// A `driftsum serve` agent.
    Agent(&'a mut AgentClient),
}

/// A side's tree, ready to walk, and what reading it has cost so far.
pub struct Prepared {
    kind: Kind,
    pub rows: u64,
    /// Rows read from a database for this side (the scan plus range reads).
    pub rows_read: u64,
}

enum Kind {
    Local {
        tree: Tree,
        ordered: bool,
        /// The rows of the range last read for its entries, so that rows by
        /// key are not read twice.
        cached: Vec<KeyedRow>,
    },
    File,
    Remote {
        id: wire::TreeId,
    },
}

impl Prepared {
    /// Whether this side is a database scanned here whose scans deliver
    /// keys in key-byte order (`None` for a tree file or an agent).
    pub fn ordered(&self) -> Option<bool> {
        match &self.kind {
            Kind::Local { ordered, .. } => Some(*ordered),
            _ => None,
        }
    }
}

/// A side failing to answer during the walk.
#[derive(Debug, thiserror::Error)]
pub enum SideError {
    #[error(transparent)]
    Tree(#[from] NoSuchNode),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Agent(#[from] AgentError),
}

/// Walks one prepared side's tree.
pub enum Walker<'s> {
    Mem(&'s Tree),
    File(&'s TreeFile),
    Remote(&'s mut AgentClient, wire::TreeId),
}

impl TreeSide for Walker<'_> {
    type Error = SideError;

    fn root(&mut self) -> Result<Option<NodeSummary>, SideError> {
        match self {
            Walker::Mem(t) => Ok(t.root_summary()),
            Walker::File(f) => Ok((&**f).root()?),
            Walker::Remote(c, id) => Ok(c.root(*id)?),
        }
    }

    fn children(&mut self, nodes: &[NodeSummary]) -> Result<Vec<Vec<NodeSummary>>, SideError> {
        match self {
            Walker::Mem(t) => Ok((&**t).children(nodes)?),
            Walker::File(f) => Ok((&**f).children(nodes)?),
            Walker::Remote(c, id) => Ok(c.children(*id, nodes)?),
        }
    }
}

/// Hashes scanned rows exactly as the tree builder does.
pub struct RowHasher {
    nkey: usize,
    order: Vec<usize>,
    opts: CanonOptions,
    kbuf: Vec<u8>,
    rbuf: Vec<u8>,
}

impl RowHasher {
    pub fn new(spec: &ScanSpec, opts: &CanonOptions) -> RowHasher {
        let nkey = spec.key.len();
        RowHasher {
            nkey,
            // The plan lists values by the source's column names on both
            // sides (a renamed replica column keeps its source's place).
            order: (nkey..spec.width()).collect(),
            opts: *opts,
            kbuf: Vec::with_capacity(64),
            rbuf: Vec::with_capacity(256),
        }
    }

    /// The row's key bytes and canonical row bytes.
    pub fn encode(&mut self, row: &[Value]) -> (&[u8], &[u8]) {
        key::encode_into(&mut self.kbuf, &row[..self.nkey]);
        canon::encode_row(&mut self.rbuf, row, &self.order, &self.opts);
        (&self.kbuf, &self.rbuf)
    }

    /// The row's key bytes and row hash.
    pub fn hash(&mut self, row: &[Value]) -> (&[u8], Hash) {
        let (k, r) = self.encode(row);
        (k, row_hash(r))
    }
}

/// What a tree built from `spec` with these options must say about itself.
pub fn expected_meta(spec: &ScanSpec, opts: &CanonOptions, shape: Shape) -> TreeMeta {
    let cols = |c: &[crate::source::ColumnSpec]| -> Vec<ColumnMeta> {
        c.iter()
            .map(|c| ColumnMeta {
                name: c.name.clone(),
                ty: c.rule.ty,
            })
            .collect()
    };
    let mut columns = cols(&spec.values);
    // Rows hash their columns in name order, so the scan order is irrelevant.
    columns.sort_by(|a, b| a.name.cmp(&b.name));
    TreeMeta {
        encoding_version: ENCODING_VERSION,
        canon: *opts,
        shape,
        table: spec.table.clone(),
        key_columns: cols(&spec.key),
        columns,
        filter: spec.filter.clone(),
        built_from: String::new(),
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

impl Endpoint<'_> {
    /// What this side is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Db(s) => s.describe(),
            Endpoint::File(f) => format!("tree file {}", f.path().display()),
            Endpoint::Agent(c) => c.describe(),
        }
    }

    pub fn is_file(&self) -> bool {
        matches!(self, Endpoint::File(_))
    }

    /// The tree file, when this side is one.
    pub fn file(&self) -> Option<&TreeFile> {
        match self {
            Endpoint::File(f) => Some(f),
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
    ) -> Result<Prepared, SourceError> {
        match self {
            Endpoint::Db(s) => {
                let job = TreeScan {
                    spec,
                    opts,
                    shape,
                    side,
                    threads,
                };
                let built = scan_tree(*s, &job, progress, None)?;
                Ok(Prepared {
                    rows: built.tree.rows,
                    rows_read: built.rows_read,
                    kind: Kind::Local {
                        tree: built.tree,
                        ordered: built.ordered,
                        cached: Vec::new(),
                    },
                })
            }
            Endpoint::File(f) => {
                let mut have = f.meta().clone();
                have.columns.sort_by(|a, b| a.name.cmp(&b.name));
                let want = expected_meta(spec, opts, shape);
                have.comparable(&want, &format!("{}", f.path().display()), "this diff")
                    .map_err(|m| SourceError::Other(m.0))?;
                Ok(Prepared {
                    kind: Kind::File,
                    rows: f.layout().rows,
                    rows_read: 0,
                })
            }
            Endpoint::Agent(c) => {
                let built = c.build(spec, opts, shape).map_err(agent_err)?;
                Ok(Prepared {
                    kind: Kind::Remote { id: built.tree },
                    rows: built.rows,
                    rows_read: built.rows_read,
                })
            }
        }
    }

    /// The walker over a tree this endpoint prepared.
    pub fn walker<'s>(&'s mut self, prepared: &'s Prepared) -> Result<Walker<'s>, SourceError> {
        match (self, &prepared.kind) {
            (Endpoint::File(f), Kind::File) => Ok(Walker::File(f)),
            (Endpoint::Agent(c), Kind::Remote { id }) => Ok(Walker::Remote(c, *id)),
            (Endpoint::Db(_), Kind::Local { tree, .. }) => Ok(Walker::Mem(tree)),
            _ => Err(SourceError::Other("a tree prepared by another side".into())),
        }
    }

    /// This side's leaf entries in each of `ranges` (ascending, disjoint),
    /// in key order; `None` for a tree file without entries. An agent is
    /// asked for all the ranges at once, a page at a time.
    pub fn entries(
        &mut self,
        prepared: &mut Prepared,
        spec: &ScanSpec,
        opts: &CanonOptions,
        ranges: &[KeyRange],
    ) -> Result<Option<Vec<Vec<Entry>>>, SourceError> {
        match (self, &mut prepared.kind) {
            (
                Endpoint::Db(s),
                Kind::Local {
                    ordered, cached, ..
                },
            ) => {
                let mut hasher = RowHasher::new(spec, opts);
                let mut out = Vec::with_capacity(ranges.len());
                cached.clear();
                let (per_range, read) = fetch_ranges(*s, spec, ranges, *ordered)?;
                prepared.rows_read += read;
                for rows in per_range {
                    out.push(
                        rows.iter()
                            .map(|r| {
                                let (_, h) = hasher.hash(&r.values);
                                Entry {
                                    key: r.key.clone(),
                                    hash: HashPrefix::from(&h),
                                }
                            })
                            .collect(),
                    );
                    cached.extend(rows);
                }
                Ok(Some(out))
            }
            (Endpoint::File(f), _) => {
                if !f.has_entries() {
                    return Ok(None);
                }
                let mut out = Vec::with_capacity(ranges.len());
                for r in ranges {
                    let (e, _) = f
                        .entries(r.after.as_ref(), &r.through, u32::MAX)
                        .map_err(file_err)?;
                    out.push(e);
                }
                Ok(Some(out))
            }
            (Endpoint::Agent(c), Kind::Remote { id }) => {
                let mut out: Vec<Vec<Entry>> = vec![Vec::new(); ranges.len()];
                for (batch, base) in ranges
                    .chunks(wire::RANGES_BATCH)
                    .zip((0..).step_by(wire::RANGES_BATCH))
                {
                    // The ranges still to ask for, and where each one's
                    // entries go.
                    let mut todo: Vec<(KeyRange, usize)> =
                        batch.iter().cloned().zip(base..).collect();
                    loop {
                        let req = wire::EntriesRequest {
                            tree: *id,
                            ranges: todo.iter().map(|t| t.0.clone()).collect(),
                            limit: wire::ENTRIES_PAGE,
                        };
                        let (pages, more) = c.entries(&req).map_err(agent_err)?;
                        let last = pages.iter().rposition(|p| !p.is_empty());
                        let mut next = Vec::new();
                        for (k, page) in pages.into_iter().enumerate() {
                            let (range, at) = &todo[k];
                            if more && Some(k) == last {
                                next.push((
                                    KeyRange {
                                        after: page.last().map(|e| e.key.clone()),
                                        through: range.through.clone(),
                                    },
                                    *at,
                                ));
                            } else if more && last.is_some_and(|l| k > l) {
                                next.push((range.clone(), *at));
                            }
                            prepared.rows_read += page.len() as u64;
                            out[*at].extend(page);
                        }
                        if !more || next.is_empty() {
                            break;
                        }
                        todo = next;
                    }
                }
                Ok(Some(out))
            }
            _ => Err(SourceError::Other("a tree prepared by another side".into())),
        }
    }

    /// This side's rows with the keys of `groups` (each a range's lower
    /// bound and keys in it, all ascending), in key order; `None` for a tree
    /// file, which holds no rows.
    pub fn rows(
        &mut self,
        prepared: &mut Prepared,
        spec: &ScanSpec,
        groups: &[(Option<Key>, Vec<Key>)],
    ) -> Result<Option<Vec<KeyedRow>>, SourceError> {
        // Groups are ascending and disjoint, so their keys in a row are too.
        let all: Vec<&Key> = groups.iter().flat_map(|g| &g.1).collect();
        let wanted = |k: &Key| all.binary_search(&k).is_ok();
        match (self, &mut prepared.kind) {
            (Endpoint::Db(_), Kind::Local { cached, .. }) => Ok(Some(
                cached.iter().filter(|r| wanted(&r.key)).cloned().collect(),
            )),
            (Endpoint::File(_), _) => Ok(None),
            (Endpoint::Agent(c), Kind::Remote { id }) => {
                let nkey = spec.key.len();
                let mut out = Vec::new();
                for req in wire::rows_pages(*id, groups) {
                    for values in c.rows(&req, spec.width()).map_err(agent_err)? {
                        let k = key::encode(&values[..nkey]);
                        // Only what was asked for counts, whatever was sent.
                        if wanted(&k) {
                            out.push(KeyedRow { key: k, values });
                        }
                    }
                }
                out.sort_by(|a, b| a.key.cmp(&b.key));
                out.dedup_by(|a, b| a.key == b.key);
                Ok(Some(out))
            }
            _ => Err(SourceError::Other("a tree prepared by another side".into())),
        }
    }
}

/// A side opened from its URL, owning its connection, file or client.
pub enum Opened {
    Db(Box<dyn Source>),
    File(Box<TreeFile>),
    Agent(AgentClient),
}

impl Opened {
    /// Opens a database URL, a tree file (`tree:PATH` or `*.dstree`) or an
    /// agent (`driftsum://HOST:PORT`, which needs `token`).
    pub fn open(url: &str, token: Option<&str>) -> Result<Opened, SourceError> {
        match SideUrl::parse(url)? {
            SideUrl::Database(u) => Ok(Opened::Db(crate::source::open(&u)?)),
            SideUrl::TreeFile(p) => Ok(Opened::File(Box::new(
                TreeFile::open(&p).map_err(file_err)?,
            ))),
            SideUrl::Agent(addr) => {
                let token = token.ok_or_else(|| {
                    SourceError::BadUrl(format!(
                        "{url} is an agent: give its token with --token-file FILE"
                    ))
                })?;
                Ok(Opened::Agent(AgentClient::new(&addr, token)))
            }
        }
    }

    pub fn endpoint(&mut self) -> Endpoint<'_> {
        match self {
            Opened::Db(s) => Endpoint::Db(s.as_mut()),
            Opened::File(f) => Endpoint::File(f),
            Opened::Agent(c) => Endpoint::Agent(c),
        }
    }
}
