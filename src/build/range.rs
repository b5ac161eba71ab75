//! Reading one key range `(after, through]` of a table: the bounds go into
//! the query, and the rows a connector returns beyond them (it may) are
//! dropped here, by key bytes, so every caller sees exactly the range. The
//! range workers of a tree build, the reconciliation's range reads and the
//! agent's answers all read ranges through [`scan_range`].

use std::ops::ControlFlow;

use driftsum_core::key::KeyRange;
use driftsum_core::{key, Key, Value};

use crate::source::{ScanSpec, Source, SourceError};

/// What [`scan_range`] hands each row to: its key bytes and values.
pub type KeyedSink<'a> = dyn FnMut(&[u8], &[Value]) -> ControlFlow<()> + Send + 'a;

/// Scans the rows of `spec` with keys in `(after, through]`, in the
/// source's order, handing each with its key bytes to `each`; `each`
/// breaking ends the scan early (and without an error: the caller that
/// stopped it knows why). Returns the rows the database sent, those beyond
/// the range included.
pub fn scan_range(
    source: &mut dyn Source,
    spec: &ScanSpec,
    after: Option<&Key>,
    through: &Key,
    each: &mut KeyedSink<'_>,
) -> Result<u64, SourceError> {
    let range = KeyRange {
        after: after.cloned(),
        through: through.clone(),
    };
    let nkey = spec.key.len();
    let mut kbuf = Vec::with_capacity(64);
    let mut sent = 0u64;
    source.scan(spec, Some(&range), &mut |row| {
        sent += 1;
        key::encode_into(&mut kbuf, &row[..nkey]);
        if after.is_some_and(|a| kbuf.as_slice() <= a.as_bytes())
            || kbuf.as_slice() > through.as_bytes()
        {
            return ControlFlow::Continue(());
        }
        each(&kbuf, row)
    })?;
    Ok(sent)
}
