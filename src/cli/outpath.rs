//! Checks on a path a command is about to write: never one of the run's
//! inputs (however it is spelled: `./X.db`, a symbolic link, a hard link),
//! never through a link, never over a file that is not the command's own
//! kind of output. Every refusal happens before anything is read or written.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// Files SQLite keeps beside a database: writing one of them damages it.
const SQLITE_SIDECARS: &[&str] = &["-wal", "-shm", "-journal"];

/// One input of a run: what to call it in a message, and its path.
pub struct Input {
    pub what: &'static str,
    pub path: PathBuf,
}

impl Input {
    pub fn new(what: &'static str, path: impl Into<PathBuf>) -> Input {
        Input {
            what,
            path: path.into(),
        }
    }

    /// A SQLite database and the files SQLite keeps beside it.
    pub fn sqlite(path: &Path) -> Vec<Input> {
        let mut all = vec![Input::new("the database", path)];
        for s in SQLITE_SIDECARS {
            let mut p = path.as_os_str().to_owned();
            p.push(s);
            all.push(Input::new("a file SQLite keeps beside the database", p));
        }
        all
    }
}

/// `path` made absolute with every link resolved; for a path that does not
/// exist yet, its directory resolved and its name kept. None when even the
/// directory cannot be resolved (then nothing there can be an input).
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(dir.canonicalize().ok()?.join(name))
}

/// Whether two paths name the same file: the same resolved path, or (both
/// existing) the same device and inode, which also catches hard links.
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            if (x.dev(), x.ino()) == (y.dev(), y.ino()) {
                return true;
            }
        }
    }
    matches!((resolved(a), resolved(b)), (Some(x), Some(y)) if x == y)
}

/// Refuses an output path (given with `flag`) that is an input of the run,
/// or a symbolic link.
pub fn check_output(flag: &str, out: &Path, inputs: &[Input]) -> anyhow::Result<()> {
    for input in inputs {
        if same_file(out, &input.path) {
            bail!(
                "{flag} {} is {} ({}), an input of this run; driftsum never writes to \
                 its inputs: choose another {flag}",
                out.display(),
                input.what,
                input.path.display()
            );
        }
    }
    if std::fs::symlink_metadata(out).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!(
            "{flag} {} is a symbolic link; driftsum neither writes through a link nor \
             replaces one: give the path of the file itself, or remove the link",
            out.display()
        );
    }
    Ok(())
}

/// Refuses to replace an existing file unless it is empty or starts with
/// `magic` (the command's own kind of output), or is not a regular file.
pub fn check_replaceable(flag: &str, out: &Path, magic: &[u8], kind: &str) -> anyhow::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(out) else {
        return Ok(());
    };
    if !meta.is_file() {
        bail!(
            "{flag} {} exists and is not a file: choose another {flag}",
            out.display()
        );
    }
    let mut head = vec![0u8; magic.len()];
    let read = std::fs::File::open(out).and_then(|mut f| {
        use std::io::Read;
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(n)
    });
    match read {
        Ok(0) => Ok(()),
        Ok(n) if n == magic.len() && head == magic => Ok(()),
        Ok(_) => bail!(
            "{flag} {} exists and is not {kind}; driftsum replaces only its own \
             files: remove it first, or choose another {flag}",
            out.display()
        ),
        Err(e) => bail!("{flag} {}: cannot read it: {e}", out.display()),
    }
}
