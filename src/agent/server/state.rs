//! The agent's state: the database it serves, the trees it built and
//! cached, and whether each still describes the data (the connection that
//! reads a tree's snapshot, the stamps that tell it changed).

use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use driftsum_core::canon::CanonOptions;
use driftsum_core::protocol::TreeId;
use driftsum_core::Tree;

use super::answer::{changed, source_answer, text, Answer};
use super::options::ServeOptions;
use super::stamp::{FileStamp, Stamp};
use crate::agent::admit::Admission;
use crate::agent::protocol::BuildRequest;
use crate::source::{self, ScanSpec, Source, SourceError};

/// One built tree.
pub(super) struct Served {
    pub(super) id: TreeId,
    pub(super) request: BuildRequest,
    pub(super) spec: ScanSpec,
    pub(super) canon: CanonOptions,
    pub(super) tree: Tree,
    /// Whether a range may be read with its bounds in the query: the scan
    /// came in key order, met no key such a query would skip, and the
    /// key's index serves such a query. Otherwise a request's ranges are
    /// read in one scan of the whole table.
    pub(super) ranged: bool,
    pub(super) stamp: Stamp,
    /// A server database's connection that built the tree, still inside
    /// the read transaction the tree was built in.
    pub(super) held: Option<Mutex<Box<dyn Source>>>,
    /// When a request last used the tree: a held snapshot is let go once
    /// unused for the cache lifetime.
    pub(super) used: Mutex<Instant>,
}

impl Served {
    pub(super) fn touch(&self) {
        *self.used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub(super) fn idle(&self) -> Duration {
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }
}

/// A source reading a served tree's snapshot, for one request.
pub(super) enum Reader<'a> {
    /// A SQLite file opened for this request, checked to be the tree's.
    Own(Box<dyn Source>),
    /// The tree's own connection.
    Held(MutexGuard<'a, Box<dyn Source>>),
}

impl Reader<'_> {
    pub(super) fn source(&mut self) -> &mut dyn Source {
        match self {
            Reader::Own(s) => s.as_mut(),
            Reader::Held(s) => s.as_mut(),
        }
    }
}

/// Opening a SQLite file is retried this often while commits land during
/// the opening.
pub(super) const OPEN_TRIES: usize = 5;

pub(super) struct State {
    pub(super) opts: ServeOptions,
    pub(super) sqlite: Option<PathBuf>,
    /// The SQLite file, open for the agent's whole life to read its header.
    /// Closing any handle on a file drops every POSIX lock this process
    /// holds on it, including the shared lock of a scan's read transaction
    /// on another thread, which is what keeps writers out while it reads;
    /// so the header is never read through a handle opened and closed per
    /// request.
    pub(super) db_file: Option<std::fs::File>,
    pub(super) trees: Mutex<Vec<Arc<Served>>>,
    pub(super) next_id: AtomicU32,
    pub(super) admission: Admission,
}

impl State {
    pub(super) fn stamp(&self) -> Stamp {
        match &self.sqlite {
            Some(path) => {
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                let files = [
                    FileStamp::of(path, self.db_file.as_ref(), 24..28),
                    // SQLite keeps no POSIX lock on the log itself.
                    FileStamp::of(std::path::Path::new(&wal), None, 12..24),
                ];
                Stamp::Files(files.into_iter().flatten().collect())
            }
            None => Stamp::Built(Instant::now()),
        }
    }

    /// Whether a tree still describes the data.
    pub(super) fn fresh(&self, s: &Served, reuse: bool) -> bool {
        match &s.stamp {
            Stamp::Files(_) => s.stamp == self.stamp(),
            // Age limits reuse by new walks; a walk under way keeps its tree.
            Stamp::Built(at) => !reuse || at.elapsed() < self.opts.cache_for,
        }
    }

    pub(super) fn open(&self) -> Result<Box<dyn Source>, SourceError> {
        source::open(&self.opts.db)
    }

    /// A connection to build a tree with, and the stamp of the data it
    /// sees. A SQLite file's stamp is taken before and after opening (which
    /// starts the read transaction, and so fixes its snapshot): equal, no
    /// commit landed in between, so the stamp is the snapshot's.
    pub(super) fn open_pinned(&self) -> Result<(Box<dyn Source>, Stamp), Answer> {
        if self.sqlite.is_none() {
            let stamp = self.stamp();
            return Ok((self.open().map_err(source_answer)?, stamp));
        }
        for _ in 0..OPEN_TRIES {
            let before = self.stamp();
            let src = self.open().map_err(source_answer)?;
            if self.stamp() == before {
                return Ok((src, before));
            }
        }
        Err(text(
            503,
            "the database kept changing while the agent opened it; try again",
        ))
    }

    /// A source reading `s`'s snapshot: its held connection, or the SQLite
    /// file opened anew, if it is still the file the tree was built from.
    pub(super) fn reader<'a>(&self, s: &'a Served) -> Result<Reader<'a>, Answer> {
        if let Some(held) = &s.held {
            return Ok(Reader::Held(held.lock().unwrap_or_else(|p| p.into_inner())));
        }
        let src = self.open().map_err(source_answer)?;
        // Opening started the read transaction: its snapshot is fixed now,
        // so a stamp equal to the tree's (taken when its snapshot was)
        // means no commit came between the two.
        if self.stamp() != s.stamp {
            return Err(changed());
        }
        Ok(Reader::Own(src))
    }

    /// Drops server trees unused for the cache lifetime, letting go of
    /// their connections and snapshots.
    pub(super) fn prune(&self) {
        let mut trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        trees.retain(|s| s.held.is_none() || s.idle() <= self.opts.cache_for);
    }

    /// The tree a walk request names, if it still describes the data.
    pub(super) fn tree(&self, id: TreeId) -> Result<Arc<Served>, Answer> {
        let trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        let Some(s) = trees.iter().find(|s| s.id == id).cloned() else {
            return Err(text(
                410,
                format!(
                    "no tree {id} here (dropped, or unused longer than the agent's \
                     --cache-seconds, or never built); run the diff again"
                ),
            ));
        };
        drop(trees);
        if !self.fresh(&s, false) {
            return Err(changed());
        }
        s.touch();
        Ok(s)
    }
}
