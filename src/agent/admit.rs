//! Which connections the agent reads, and how many it serves at once.
//!
//! Nothing is known of a connection until its request has arrived whole and
//! its token checked, so limits applied at `accept` would let slow,
//! unauthenticated connections take every place and turn real comparers
//! away. Instead, a connection still sending its request is *pending*; when
//! too many are, the oldest is cut off to make room for the newest (a
//! comparer sends its whole request at once, so it is read long before it
//! could become the oldest). Only requests that carry the token take one of
//! the `max_connections` places of the database work itself.

use std::collections::VecDeque;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Connections whose request is still arriving, per place being served.
const PENDING_PER_PLACE: usize = 16;

/// The agent's connection bookkeeping.
pub(super) struct Admission {
    /// Connections still sending their request, oldest first, each with a
    /// handle to cut it off.
    pending: Mutex<VecDeque<(u64, TcpStream)>>,
    max_pending: usize,
    next: AtomicU64,
    serving: AtomicUsize,
    max_serving: usize,
}

impl Admission {
    pub(super) fn new(max_connections: usize) -> Admission {
        let max_serving = max_connections.max(1);
        Admission {
            pending: Mutex::new(VecDeque::new()),
            max_pending: max_serving.saturating_mul(PENDING_PER_PLACE),
            next: AtomicU64::new(0),
            serving: AtomicUsize::new(0),
            max_serving,
        }
    }

    /// Registers a new connection as pending, cutting off the oldest pending
    /// ones beyond the limit. `None` when the connection cannot be tracked
    /// (no handle to spare): it is then not read at all.
    pub(super) fn arrive(&self, stream: &TcpStream) -> Option<u64> {
        let handle = stream.try_clone().ok()?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        while pending.len() >= self.max_pending {
            let Some((_, oldest)) = pending.pop_front() else {
                break;
            };
            // Its reading thread sees the connection end and gives up.
            let _ = oldest.shutdown(Shutdown::Both);
        }
        pending.push_back((id, handle));
        Some(id)
    }

    /// The request of connection `id` has arrived (or failed): it is no
    /// longer pending. False when it had been cut off meanwhile.
    pub(super) fn leave(&self, id: u64) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.iter().position(|(i, _)| *i == id) {
            Some(at) => {
                pending.remove(at);
                true
            }
            None => false,
        }
    }

    /// A place to serve an authenticated request, held until dropped;
    /// `None` when every place is taken.
    pub(super) fn serve(&self) -> Option<Place<'_>> {
        let n = self.serving.fetch_add(1, Ordering::SeqCst) + 1;
        let place = Place(&self.serving);
        (n <= self.max_serving).then_some(place)
    }

    #[cfg(test)]
    fn pending(&self) -> usize {
        self.pending.lock().map(|p| p.len()).unwrap_or(0)
    }
}

/// One place of [`Admission::serve`]; given back on drop.
pub(super) struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// Connected pairs: (the client's end, the server's end).
    fn pairs(n: usize) -> Vec<(TcpStream, TcpStream)> {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        (0..n)
            .map(|_| {
                let c = TcpStream::connect(addr).expect("connect");
                let (s, _) = l.accept().expect("accept");
                (c, s)
            })
            .collect()
    }

    /// Past the limit, the oldest pending connections are cut off, in order
    /// of arrival, and the newest always get in.
    #[test]
    fn the_oldest_pending_connection_makes_room() {
        for places in [1, 2, 3] {
            let a = Admission::new(places);
            let limit = places * PENDING_PER_PLACE;
            let conns = pairs(limit + 3);
            let ids: Vec<u64> = conns
                .iter()
                .map(|(_, s)| a.arrive(s).expect("tracked"))
                .collect();
            assert_eq!(a.pending(), limit);
            for (i, (client, _)) in conns.iter().enumerate() {
                let mut c = client.try_clone().expect("clone");
                c.set_read_timeout(Some(std::time::Duration::from_millis(50)))
                    .expect("timeout");
                let mut buf = [0u8; 1];
                // A cut-off connection reads its end at once; a kept one
                // times out.
                let cut = matches!(c.read(&mut buf), Ok(0));
                assert_eq!(cut, i < 3, "connection {i} of {places} places");
            }
            assert!(!a.leave(ids[0]) && !a.leave(ids[2]));
            assert!(a.leave(ids[3]) && !a.leave(ids[3]));
            assert_eq!(a.pending(), limit - 1);
        }
    }

    /// Places are counted, refused past the limit, and given back on drop.
    #[test]
    fn places_are_counted() {
        let a = Admission::new(2);
        let one = a.serve().expect("first");
        let two = a.serve().expect("second");
        assert!(a.serve().is_none());
        drop(one);
        let three = a.serve().expect("freed");
        assert!(a.serve().is_none());
        drop((two, three));
        assert!(a.serve().is_some());
    }
}
