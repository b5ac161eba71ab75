//! Output written on a thread of its own: a report of millions of
//! differences is formatted on the comparing thread and handed over a buffer
//! at a time, so copying it into the kernel does not hold up the comparison.
//! Memory holds a few buffers, whatever the report's size.

use std::io::{self, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

/// Bytes gathered before a buffer is handed over.
const BUFFER: usize = 256 << 10;
/// Buffers handed over and not yet written, at most.
const AHEAD: usize = 4;

enum Msg {
    Bytes(Vec<u8>),
    /// Everything before has been written when the answer comes.
    Flush(Sender<io::Result<()>>),
}

/// The writing thread: writes each buffer handed over, in order, and gives
/// it back to be filled again; answers a flush once everything before it is
/// written. Stops at the first error (the main side then sees it).
fn write_out(
    mut out: impl Write,
    from_main: Receiver<Msg>,
    give_back: SyncSender<Vec<u8>>,
) -> io::Result<()> {
    for msg in from_main {
        match msg {
            Msg::Bytes(mut b) => {
                out.write_all(&b)?;
                b.clear();
                // A full return channel only means enough spares; room
                // grown for one huge value is not kept.
                if b.capacity() <= 2 * BUFFER {
                    let _ = give_back.try_send(b);
                }
            }
            Msg::Flush(answer) => {
                let flushed = out.flush();
                let failed = flushed
                    .as_ref()
                    .err()
                    .map(|e| io::Error::new(e.kind(), e.to_string()));
                let _ = answer.send(flushed);
                if let Some(e) = failed {
                    return Err(e);
                }
            }
        }
    }
    out.flush()
}

/// A writer whose bytes reach `W` on a thread of its own, in order. An
/// error of `W` is returned by the next write or flush after it.
pub struct Background {
    buf: Vec<u8>,
    to_writer: Option<SyncSender<Msg>>,
    /// Buffers written and given back, to be filled again.
    spent: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Background {
    /// Writes to what `open` returns, opened on the writing thread (a
    /// locked stdout cannot cross threads).
    pub fn new<W: Write>(open: impl FnOnce() -> W + Send + 'static) -> io::Result<Background> {
        let (to_writer, from_main) = sync_channel::<Msg>(AHEAD);
        let (give_back, spent) = sync_channel::<Vec<u8>>(AHEAD + 1);
        let thread = std::thread::Builder::new()
            .name("output".into())
            .spawn(move || write_out(open(), from_main, give_back))?;
        Ok(Background {
            buf: Vec::with_capacity(BUFFER),
            to_writer: Some(to_writer),
            spent,
            thread: Some(thread),
        })
    }

    /// Writes to standard output, which the writing thread holds locked
    /// until dropped: nothing else may print to it meanwhile.
    pub fn stdout() -> io::Result<Background> {
        Background::new(|| io::stdout().lock())
    }

    fn send(&mut self, msg: Msg) -> io::Result<()> {
        let sent = match &self.to_writer {
            Some(tx) => tx.send(msg).is_ok(),
            None => false,
        };
        match sent {
            true => Ok(()),
            false => Err(self.stopped()),
        }
    }

    /// The error that stopped the writing thread.
    fn stopped(&mut self) -> io::Error {
        self.to_writer = None;
        let ended = self.thread.take().map(JoinHandle::join);
        match ended {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("the output thread panicked"),
            _ => io::Error::new(io::ErrorKind::BrokenPipe, "the output was closed"),
        }
    }

    fn hand_over(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .spent
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BUFFER));
        let full = std::mem::replace(&mut self.buf, next);
        self.send(Msg::Bytes(full))
    }
}

impl Write for Background {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    /// Every write is whole: a report writes a difference in many small
    /// pieces, each one copy.
    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if self.buf.len() + data.len() > BUFFER {
            self.hand_over()?;
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.hand_over()?;
        let (answer, flushed) = channel();
        self.send(Msg::Flush(answer))?;
        match flushed.recv() {
            Ok(result) => result,
            Err(_) => Err(self.stopped()),
        }
    }
}

impl Drop for Background {
    /// Writes what is left and waits for it; an error there has nowhere to
    /// go (call `flush` to see it).
    fn drop(&mut self) {
        let _ = self.hand_over();
        self.to_writer = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer into shared bytes, failing once it holds `limit`.
    struct Shared {
        bytes: Arc<Mutex<Vec<u8>>>,
        limit: usize,
    }

    impl Write for Shared {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            let mut b = self.bytes.lock().expect("not poisoned");
            if b.len() + data.len() > self.limit {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"));
            }
            b.extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn shared(limit: usize) -> (Arc<Mutex<Vec<u8>>>, Background) {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let inner = Shared {
            bytes: bytes.clone(),
            limit,
        };
        (bytes, Background::new(move || inner).expect("a thread"))
    }

    /// Every byte arrives, in order, across many buffers, small writes and
    /// writes wider than a buffer; a flush waits for them.
    #[test]
    fn bytes_arrive_in_order() {
        let (bytes, mut out) = shared(usize::MAX);
        let mut want = Vec::new();
        for i in 0..200_000u32 {
            let line = format!("{i}\n");
            out.write_all(line.as_bytes()).expect("written");
            want.extend_from_slice(line.as_bytes());
            if i % 50_000 == 0 {
                let wide = vec![b'w'; BUFFER * 2 + 3];
                out.write_all(&wide).expect("written");
                want.extend_from_slice(&wide);
            }
        }
        out.flush().expect("flushed");
        assert_eq!(*bytes.lock().expect("not poisoned"), want);
        out.write_all(b"after").expect("written");
        drop(out);
        want.extend_from_slice(b"after");
        assert_eq!(*bytes.lock().expect("not poisoned"), want);
    }

    /// A failing writer's error reaches the writes after it and the flush,
    /// not a panic or a silent loss.
    #[test]
    fn an_error_reaches_the_writer() {
        let (_, mut out) = shared(BUFFER * 2);
        let line = [b'x'; 1000];
        let failed = (0..10_000).find_map(|_| out.write_all(&line).err());
        let e = failed.or_else(|| out.flush().err()).expect("an error");
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
        assert!(out.write_all(&line).and_then(|()| out.flush()).is_err());
    }
}
