//! A prepared side: one side's tree of one table, ready to walk, together
//! with what answers the walk and the reconciliation on that side — the
//! database read here, the tree file, or the agent. Each kind carries its
//! own handle and state, so a tree cannot be asked of a side that did not
//! prepare it. Preparing (scanning, checking a file, asking an agent to
//! build) lives in `endpoint`; naming what differs lives in `reconcile`.

use driftsum_core::canon::CanonOptions;
use driftsum_core::key::KeyRange;
use driftsum_core::protocol::TreeId;
use driftsum_core::tree::{Entry, HashPrefix, KeptLeaves, NoSuchNode, NodeSummary, TreeSide};
use driftsum_core::{Key, Tree};

use super::fetch::{fetch_ranges, rows_of_keys};
use crate::agent::{AgentClient, AgentError};
use crate::build::row_hasher;
use crate::reconcile::KeyedRow;
use crate::source::sql::decode_key;
use crate::source::{ScanSpec, Source, SourceError};
use crate::treefile::{FileError, TreeFile};

/// One side's tree, ready to walk, and what reading it has cost so far.
pub struct Prepared<'e> {
    /// Rows in the side's tree.
    pub rows: u64,
    /// Rows read from a database for this side (the scan plus range reads).
    pub rows_read: u64,
    spec: ScanSpec,
    opts: CanonOptions,
    holder: Holder<'e>,
}

/// What holds a prepared tree, and answers for it.
pub(super) enum Holder<'e> {
    /// A database scanned here, and the tree built from it.
    Database {
        source: &'e mut dyn Source,
        tree: Tree,
        /// Whether its scans deliver keys in key-byte order.
        ordered: bool,
        /// How its drifted ranges are read.
        reads: RangeReads,
        /// The rows of the ranges last read for their entries, so that rows
        /// by key are not read twice.
        cached: Vec<KeyedRow>,
    },
    /// A tree file written by `driftsum build`.
    File(&'e TreeFile),
    /// A `driftsum serve` agent, and the tree it built.
    Agent {
        client: &'e mut AgentClient,
        tree: TreeId,
    },
}

/// How a database side reads its drifted ranges.
pub(super) enum RangeReads {
    /// Range by range through the key's index (see
    /// [`Source::ranges_use_index`]).
    Indexed,
    /// By their keys: every leaf's entries, kept by the first pass, give a
    /// drifted range's entries with no read, and its rows are looked up by
    /// their exact keys ([`Source::scan_keys`]).
    ByKey(KeptLeaves),
    /// All of them by one scan of the table, whatever their number: range
    /// reads would each scan it, and keys cannot be looked up.
    Scanned,
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

fn agent_err(e: AgentError) -> SourceError {
    SourceError::Other(e.to_string())
}

impl<'e> Prepared<'e> {
    pub(super) fn new(
        spec: &ScanSpec,
        opts: &CanonOptions,
        rows: u64,
        rows_read: u64,
        holder: Holder<'e>,
    ) -> Prepared<'e> {
        Prepared {
            rows,
            rows_read,
            spec: spec.clone(),
            opts: *opts,
            holder,
        }
    }

    /// Whether this side is a database scanned here whose scans deliver
    /// keys in key-byte order (`None` for a tree file or an agent).
    pub fn ordered(&self) -> Option<bool> {
        match &self.holder {
            Holder::Database { ordered, .. } => Some(*ordered),
            _ => None,
        }
    }

    /// Whether this side reads drifted ranges by one scan of its table
    /// however many there are: a database whose scans do not come in key
    /// order, or whose range reads each scan the table (see
    /// [`Source::ranges_use_index`]). The reconciliation then asks it for
    /// every range at once.
    pub(super) fn reads_ranges_whole(&self) -> bool {
        matches!(
            self.holder,
            Holder::Database { ordered: false, .. }
                | Holder::Database {
                    reads: RangeReads::Scanned,
                    ..
                }
        )
    }

    /// The database behind this side, when it is one read here in key
    /// order: it can then be read by one streaming scan.
    pub(super) fn ordered_database(&mut self) -> Option<&mut dyn Source> {
        match &mut self.holder {
            Holder::Database {
                source,
                ordered: true,
                ..
            } => Some(&mut **source),
            _ => None,
        }
    }

    /// A database's leaf entries of `ranges`, computed from its rows, which
    /// are kept for rows by key.
    fn database_entries(&mut self, ranges: &[KeyRange]) -> Result<Vec<Vec<Entry>>, SourceError> {
        let Holder::Database {
            source,
            ordered,
            reads,
            cached,
            ..
        } = &mut self.holder
        else {
            return Ok(Vec::new());
        };
        let mut hasher = row_hasher(&self.spec, &self.opts);
        let by_range = *ordered && matches!(reads, RangeReads::Indexed);
        let (per_range, read) = fetch_ranges(&mut **source, &self.spec, ranges, by_range)?;
        self.rows_read += read;
        cached.clear();
        let mut out = Vec::with_capacity(ranges.len());
        for rows in per_range {
            let entry = |r: &KeyedRow| Entry {
                key: r.key.clone(),
                hash: HashPrefix::from(&hasher.row_hash(&r.values)),
            };
            out.push(rows.iter().map(entry).collect());
            cached.extend(rows);
        }
        Ok(out)
    }
}

impl TreeSide for &mut Prepared<'_> {
    type Error = SideError;

    fn root(&mut self) -> Result<Option<NodeSummary>, SideError> {
        match &mut self.holder {
            Holder::Database { tree, .. } => Ok(tree.root_summary()),
            Holder::File(f) => Ok((&**f).root()?),
            Holder::Agent { client, tree } => Ok(client.root(*tree)?),
        }
    }

    fn children(&mut self, nodes: &[NodeSummary]) -> Result<Vec<Vec<NodeSummary>>, SideError> {
        match &mut self.holder {
            Holder::Database { tree, .. } => Ok((&*tree).children(nodes)?),
            Holder::File(f) => Ok((&**f).children(nodes)?),
            Holder::Agent { client, tree } => Ok(client.children(*tree, nodes)?),
        }
    }
}

/// What the reconciliation (see `reconcile`) reads of a side.
impl Prepared<'_> {
    /// The side's leaf entries in each of `ranges` (ascending, disjoint),
    /// each in key order; `None` when the side has none (a tree file built
    /// without entries).
    pub(super) fn entries(
        &mut self,
        ranges: &[KeyRange],
    ) -> Result<Option<Vec<Vec<Entry>>>, SourceError> {
        match &mut self.holder {
            Holder::Database {
                reads: RangeReads::ByKey(kept),
                tree,
                ..
            } => {
                let leaves = tree.levels.first().map_or(&[][..], Vec::as_slice);
                let mut out = Vec::with_capacity(ranges.len());
                for r in ranges {
                    let after = r.after.as_ref().map(Key::as_bytes);
                    let entries = kept.entries_in(leaves, after, r.through.as_bytes());
                    out.push(entries.ok_or_else(|| {
                        SourceError::Other("kept leaf entries could not be read".into())
                    })?);
                }
                Ok(Some(out))
            }
            Holder::Database { .. } => self.database_entries(ranges).map(Some),
            Holder::File(f) if !f.has_entries() => Ok(None),
            Holder::File(f) => {
                let mut out = Vec::with_capacity(ranges.len());
                for r in ranges {
                    let (e, _) = f
                        .entries(r.after.as_ref(), &r.through, u32::MAX)
                        .map_err(|e| SourceError::Other(e.to_string()))?;
                    out.push(e);
                }
                Ok(Some(out))
            }
            Holder::Agent { client, tree } => {
                let out = client.entries_of(*tree, ranges).map_err(agent_err)?;
                self.rows_read += out.iter().map(Vec::len).sum::<usize>() as u64;
                Ok(Some(out))
            }
        }
    }

    /// The side's rows with the keys of `groups` (ranges of the chunk last
    /// asked for entries), in key order; `None` when it holds no rows.
    pub(super) fn rows(
        &mut self,
        groups: &[(Option<Key>, Vec<Key>)],
    ) -> Result<Option<Vec<KeyedRow>>, SourceError> {
        match &mut self.holder {
            Holder::Database {
                source,
                reads: RangeReads::ByKey(_),
                ..
            } => {
                let (rows, read) = rows_by_key(&mut **source, &self.spec, groups)?;
                self.rows_read += read;
                Ok(Some(rows))
            }
            Holder::Database { cached, .. } => {
                // Groups are ascending and disjoint, so their keys in a row
                // are too.
                let all: Vec<&Key> = groups.iter().flat_map(|g| &g.1).collect();
                let wanted = |k: &Key| all.binary_search(&k).is_ok();
                Ok(Some(
                    cached.iter().filter(|r| wanted(&r.key)).cloned().collect(),
                ))
            }
            Holder::File(_) => Ok(None),
            Holder::Agent { client, tree } => {
                let (width, nkey) = (self.spec.width(), self.spec.key.len());
                let rows = client.rows_by_key(*tree, groups, width, nkey);
                rows.map(Some).map_err(agent_err)
            }
        }
    }

    /// The tree file, when the side is one.
    pub(super) fn file(&self) -> Option<&TreeFile> {
        match &self.holder {
            Holder::File(f) => Some(f),
            _ => None,
        }
    }
}

/// The rows of `groups`' keys on `source`, in key order, looked up by key
/// ([`Source::scan_keys`]), or where it cannot, read by the groups' ranges;
/// and the rows the database sent. Every key asked is one this side's
/// entries hold: a lookup that does not bring each back is not trusted (the
/// ranges are read instead), and the caller checks the rows it gets.
fn rows_by_key(
    source: &mut dyn Source,
    spec: &ScanSpec,
    groups: &[(Option<Key>, Vec<Key>)],
) -> Result<(Vec<KeyedRow>, u64), SourceError> {
    let mut wanted: Vec<Key> = groups.iter().flat_map(|g| g.1.iter().cloned()).collect();
    wanted.sort();
    wanted.dedup();
    let values = wanted
        .iter()
        .map(decode_key)
        .collect::<Result<Vec<_>, _>>()?;
    let mut sent = 0;
    if let Some((rows, read)) = rows_of_keys(source, spec, &values, &wanted)? {
        if rows.len() == wanted.len() {
            return Ok((rows, read));
        }
        sent = read;
    }
    let ranges: Vec<KeyRange> = groups
        .iter()
        .filter_map(|(after, keys)| {
            Some(KeyRange {
                after: after.clone(),
                through: keys.iter().max()?.clone(),
            })
        })
        .collect();
    // Such a side's range reads cannot use the index: one scan.
    let (found, read) = fetch_ranges(source, spec, &ranges, false)?;
    let rows = found
        .into_iter()
        .flatten()
        .filter(|r| wanted.binary_search(&r.key).is_ok())
        .collect();
    Ok((rows, sent + read))
}
