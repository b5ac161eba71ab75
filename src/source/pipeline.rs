//! The two-stage scan of the server connectors: one thread reads rows off
//! the socket, another decodes them and feeds the sink (which canonicalizes
//! and hashes), so a scan costs about its slower stage instead of the sum.
//! Meant for a server on another machine; with the server on the same two
//! cores (as in `benches/server_diff.rs` here) it measured neither faster
//! nor slower. SQLite scans do not use it: per-row hand-over cost more than
//! it saved.

use super::SourceError;

/// Rows handed from the reading thread to the processing thread at a time.
const PIPELINE_BATCH: usize = 512;
/// Batches in flight between the two threads.
const PIPELINE_DEPTH: usize = 4;

/// Runs a scan in two stages on two threads: `read` (on this thread) pulls
/// raw rows off the socket and hands each to `push`, while `process` (on a
/// worker) decodes them and feeds the sink. A scan then costs about its
/// slower stage instead of the sum. `push` answers `false` once the worker
/// has stopped (the sink refused a row), and `read` should stop too; the
/// worker's error wins over the reader's.
pub fn pipelined<R: Send>(
    read: impl FnOnce(&mut dyn FnMut(R) -> bool) -> Result<(), SourceError>,
    mut process: impl FnMut(R) -> Result<(), SourceError> + Send,
) -> Result<(), SourceError> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<R>>(PIPELINE_DEPTH);
        let worker = scope.spawn(move || -> Result<(), SourceError> {
            for batch in rx {
                for row in batch {
                    process(row)?;
                }
            }
            Ok(())
        });
        let mut batch = Vec::with_capacity(PIPELINE_BATCH);
        let mut open = true;
        let read_result = read(&mut |row| {
            batch.push(row);
            if batch.len() == PIPELINE_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(PIPELINE_BATCH));
                open = tx.send(full).is_ok();
            }
            open
        });
        if open && !batch.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        let worked = worker
            .join()
            .unwrap_or_else(|_| Err(SourceError::Other("the decoding thread panicked".into())));
        worked.and(read_result)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_delivers_every_row_in_order_and_stops_on_refusal() {
        let mut seen = Vec::new();
        pipelined(
            |push| {
                for i in 0..2000 {
                    if !push(i) {
                        break;
                    }
                }
                Ok(())
            },
            |r| {
                seen.push(r);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..2000).collect::<Vec<_>>());

        let mut pushed = 0;
        let r = pipelined(
            |push| {
                for i in 0..1_000_000 {
                    pushed += 1;
                    if !push(i) {
                        break;
                    }
                }
                Ok(())
            },
            |r| {
                if r == 10 {
                    Err(SourceError::Other("stop".into()))
                } else {
                    Ok(())
                }
            },
        );
        assert!(matches!(r, Err(SourceError::Other(m)) if m == "stop"));
        assert!(pushed < 1_000_000, "the reader stops once the worker has");
    }
}
