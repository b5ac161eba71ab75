//! Tree files on disk: opening and memory-mapping one for
//! [`driftsum_core::tree::file::TreeReader`], and writing one through a
//! temporary file renamed into place. The byte layout itself, and every check
//! of it, lives in core's `tree::file`; this file only adds paths.

use std::fs;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use driftsum_core::key::Key;
use driftsum_core::tree::file::{self, EntryLog, FormatError, Layout, TreeMeta, TreeReader};
use driftsum_core::tree::TreeSide;
use driftsum_core::tree::{Entry, NodeSummary, Tree};

/// A tree file that cannot be written, read or trusted.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Format {
        path: PathBuf,
        #[source]
        source: FormatError,
    },
}

/// An opened, verified, memory-mapped tree file.
pub struct TreeFile {
    path: PathBuf,
    reader: TreeReader<memmap2::Mmap>,
}

impl TreeFile {
    /// Opens and verifies a tree file: magic, format version, length and
    /// checksum.
    pub fn open(path: &Path) -> Result<TreeFile, FileError> {
        let io_err = |source| FileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = fs::File::open(path).map_err(io_err)?;
        // SAFETY: the map is only read. A tree file is replaced by rename,
        // never rewritten in place, by driftsum; another program truncating
        // it while it is open could fault the reader, as with any mapped file.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?;
        let reader = TreeReader::parse(map).map_err(|source| FileError::Format {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(TreeFile {
            path: path.to_path_buf(),
            reader,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self) -> &TreeMeta {
        self.reader.meta()
    }

    pub fn layout(&self) -> &Layout {
        self.reader.layout()
    }

    pub fn has_entries(&self) -> bool {
        self.reader.has_entries()
    }

    fn err(&self, source: FormatError) -> FileError {
        FileError::Format {
            path: self.path.clone(),
            source,
        }
    }

    /// The first `limit` entries with keys in `(after, through]`, and whether
    /// more follow.
    pub fn entries(
        &self,
        after: Option<&Key>,
        through: &Key,
        limit: u32,
    ) -> Result<(Vec<Entry>, bool), FileError> {
        self.reader
            .entries(after, through, limit)
            .map_err(|e| self.err(e))
    }

    /// The first key of the leaf holding the first key after `after`, when
    /// that leaf starts after `after` (see [`TreeReader::first_key_after`]).
    pub fn first_key_after(&self, after: Option<&Key>) -> Result<Option<Key>, FileError> {
        self.reader.first_key_after(after).map_err(|e| self.err(e))
    }
}

impl TreeSide for &TreeFile {
    type Error = FileError;

    fn root(&mut self) -> Result<Option<NodeSummary>, FileError> {
        (&self.reader).root().map_err(|e| self.err(e))
    }

    fn children(&mut self, nodes: &[NodeSummary]) -> Result<Vec<Vec<NodeSummary>>, FileError> {
        (&self.reader).children(nodes).map_err(|e| self.err(e))
    }
}

/// Writes `tree` (and `entries`, when given) to `path`, through a temporary
/// file beside it (see [`temporary_beside`]) renamed into place, so a file
/// being read is never changed under its reader's memory map, an interrupted
/// write leaves the old file whole, and whatever is at `path` (a file or a
/// symbolic link) is replaced, never written into.
pub fn write(
    path: &Path,
    meta: &TreeMeta,
    tree: &Tree,
    entries: Option<&EntryLog>,
) -> Result<(), FileError> {
    let io_err = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = temporary_beside(path).map_err(io_err)?;
    // On any error the temporary file is dropped, which deletes it.
    let out = BufWriter::with_capacity(1 << 20, tmp.as_file());
    let out = file::write(out, meta, tree, entries).map_err(io_err)?;
    out.get_ref().sync_all().map_err(io_err)?;
    drop(out);
    // rename(2) replaces the directory entry at `path`, whatever it is: a
    // link planted there is replaced, never written through.
    tmp.persist(path).map(drop).map_err(|e| io_err(e.error))
}

/// A new, empty file in `path`'s directory, created exclusively (`O_EXCL`:
/// an existing file or symbolic link of the same name is never opened) under
/// a random name, so no one can plant a link where it will be written. It is
/// deleted when dropped unless persisted. Permissions are those of a file
/// created normally (0666 less the umask), not tempfile's private 0600: a
/// tree file is meant to be copied and shared like any output.
pub fn temporary_beside(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "driftsum".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.");
    let mut b = tempfile::Builder::new();
    b.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(fs::Permissions::from_mode(0o666));
    }
    b.tempfile_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftsum_core::canon::CanonOptions;
    use driftsum_core::hash::row_hash;
    use driftsum_core::tree::file::ColumnMeta;
    use driftsum_core::tree::{Builder, Shape};
    use driftsum_core::value::LogicalType;

    fn meta() -> TreeMeta {
        TreeMeta {
            encoding_version: driftsum_core::ENCODING_VERSION,
            canon: CanonOptions::default(),
            shape: Shape::default(),
            table: "t".into(),
            key_columns: vec![ColumnMeta {
                name: "id".into(),
                ty: LogicalType::Integer,
            }],
            columns: vec![],
            filter: None,
            built_from: "test".into(),
        }
    }

    fn build(n: u64) -> Tree {
        let mut b = Builder::new(Shape::default());
        for k in 0..n {
            b.push(&k.to_be_bytes(), &row_hash(b"v")).unwrap();
        }
        b.finish()
    }

    /// Errors name the file, then say what is wrong with it.
    #[test]
    fn errors_name_the_path() {
        let dir = std::env::temp_dir().join(format!("dsum-treefile-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.dstree");
        fs::write(&junk, b"not a tree at all").unwrap();
        let e = TreeFile::open(&junk).err().unwrap().to_string();
        assert_eq!(
            e,
            format!(
                "{}: not a driftsum tree file (no DSUMTREE magic at its start)",
                junk.display()
            )
        );
        let good = dir.join("good.dstree");
        write(&good, &meta(), &build(100), None).unwrap();
        let f = TreeFile::open(&good).unwrap();
        assert_eq!(f.layout().rows, 100);
        let e = f
            .entries(None, &Key::default(), 1)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            e,
            format!(
                "{}: the tree file holds no leaf entries (build it with --with-entries)",
                good.display()
            )
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A link planted where the old code put its temporary file, or at the
    /// target itself, is never written through; no temporary file is left.
    #[cfg(unix)]
    #[test]
    fn links_are_replaced_never_followed() {
        let dir = std::env::temp_dir().join(format!("dsum-file-links-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim.db");
        fs::write(&victim, b"precious").unwrap();
        let out = dir.join("out.dstree");
        let mut planted = out.as_os_str().to_owned();
        planted.push(".tmp");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let t = build(500);
        write(&out, &meta(), &t, None).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(TreeFile::open(&out).unwrap().layout().rows, 500);
        // The target a link: the link is replaced by the file.
        let linked = dir.join("linked.dstree");
        std::os::unix::fs::symlink(&victim, &linked).unwrap();
        write(&linked, &meta(), &t, None).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&linked).unwrap().is_file());
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["linked.dstree", "out.dstree", "out.dstree.tmp", "victim.db"]
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
