//! The relayed connections in progress, across every relaying service
//! (`--forward`, `--local-forward`, `--socks5`, `--transparent`): what `status`
//! lists (which client goes where, over which upstream connection, bytes each
//! way) and what `--max-relays` bounds. A connection past the limit is refused
//! at once, in the way its client understands (a reset, or a SOCKS5 failure
//! reply), counted, and logged at most once a few seconds.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::warn;

/// How often a refusal is logged at most (each is counted).
const WARN_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Relays {
    /// A reload may change it: relays past a lower one carry on.
    limit: AtomicUsize,
    active: Mutex<BTreeMap<u64, Arc<Relay>>>,
    next_id: AtomicU64,
    refused: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

/// One relayed connection.
#[derive(Debug)]
pub struct Relay {
    pub service: &'static str,
    /// Who opened it, and where it goes (an address, or a name and port).
    pub client: SocketAddr,
    pub target: String,
    /// The local address of the stack connection that carries it upstream
    /// (the concentrator's MPTCP connection, or `--local-forward`'s), once
    /// it is open.
    upstream: Mutex<Option<SocketAddr>>,
    pub started: Instant,
    /// Bytes from the client towards the target, and back.
    /// (Shared: a stream's direct reader counts what it relays.)
    pub up: Arc<AtomicU64>,
    pub down: Arc<AtomicU64>,
}

impl Relay {
    pub fn set_upstream(&self, local: SocketAddr) {
        *self.upstream.lock().unwrap_or_else(|e| e.into_inner()) = Some(local);
    }

    pub fn upstream(&self) -> Option<SocketAddr> {
        *self.upstream.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A place among the relays; leaving it (dropping) frees it.
#[derive(Debug)]
pub struct Admitted {
    relays: Arc<Relays>,
    id: u64,
    relay: Arc<Relay>,
}

impl std::ops::Deref for Admitted {
    type Target = Relay;

    fn deref(&self) -> &Relay {
        &self.relay
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.relays.lock().remove(&self.id);
    }
}

impl Relays {
    /// At most `limit` relayed connections at a time.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Relays {
            limit: AtomicUsize::new(limit),
            active: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Relay>>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for `client`'s connection to `target`, or `None` at the limit
    /// (counted, and logged now and then): the caller refuses the client.
    pub fn admit(
        self: &Arc<Self>,
        service: &'static str,
        client: SocketAddr,
        target: String,
    ) -> Option<Admitted> {
        let mut active = self.lock();
        if active.len() >= self.limit() {
            drop(active);
            self.refused.fetch_add(1, Ordering::Relaxed);
            self.warn_refusal(service, client);
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let relay = Arc::new(Relay {
            service,
            client,
            target,
            upstream: Mutex::new(None),
            started: Instant::now(),
            up: Arc::new(AtomicU64::new(0)),
            down: Arc::new(AtomicU64::new(0)),
        });
        active.insert(id, relay.clone());
        Some(Admitted {
            relays: self.clone(),
            id,
            relay,
        })
    }

    fn warn_refusal(&self, service: &str, client: SocketAddr) {
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= WARN_EVERY) {
            *last = Some(now);
            warn!(
                %client,
                service,
                limit = self.limit(),
                refused = self.refused(),
                "relayed connections at --max-relays: new ones are refused"
            );
        }
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// A new `--max-relays`, for the connections that come from now on.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Connections refused at the limit so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The relays in progress, oldest first.
    pub fn snapshot(&self) -> Vec<Arc<Relay>> {
        self.lock().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn the_limit_refuses_and_a_place_left_is_free_again() {
        let r = Relays::new(2);
        let a = r.admit("forward", client(1), "x:1".into()).unwrap();
        let b = r.admit("forward", client(2), "x:1".into()).unwrap();
        assert!(r.admit("forward", client(3), "x:1".into()).is_none());
        assert_eq!(r.refused(), 1);
        assert_eq!(r.snapshot().len(), 2);
        drop(a);
        let c = r
            .admit("socks5", client(4), "example.org:443".into())
            .unwrap();
        let clients: Vec<u16> = r.snapshot().iter().map(|x| x.client.port()).collect();
        assert_eq!(clients, vec![2, 4], "oldest first");
        c.up.fetch_add(5, Ordering::Relaxed);
        c.set_upstream(client(9));
        assert_eq!(r.snapshot()[1].up.load(Ordering::Relaxed), 5);
        assert_eq!(r.snapshot()[1].upstream(), Some(client(9)));
        drop((b, c));
        assert!(r.snapshot().is_empty());
    }

    #[test]
    fn a_lower_limit_keeps_the_relays_and_refuses_the_next() {
        let r = Relays::new(3);
        let held: Vec<_> = (1..=3)
            .map(|p| r.admit("forward", client(p), "x:1".into()).unwrap())
            .collect();
        r.set_limit(1);
        assert_eq!(r.limit(), 1);
        assert_eq!(r.snapshot().len(), 3, "nothing dropped");
        assert!(r.admit("forward", client(4), "x:1".into()).is_none());
        drop(held);
        assert!(r.admit("forward", client(5), "x:1".into()).is_some());
    }
}
