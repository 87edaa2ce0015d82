//! Counts that several stacks of one daemon keep together (`config::Shard`):
//! `max_connections` and `max_conns_per_source` are the daemon's limits, not
//! each shard's, and the kernel spreads one source's connections over the
//! shards by a hash of their ports, so each shard alone could not tell.

use super::memory::SourceKey;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Live connections, and those each source opened, over all the stacks that
/// share this (one stack alone has one of its own).
#[derive(Debug, Default)]
pub struct SharedCounts {
    connections: AtomicUsize,
    sources: Mutex<HashMap<SourceKey, u32>>,
}

impl SharedCounts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Live connections over all the stacks.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    pub(super) fn conn_added(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn conn_removed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, HashMap<SourceKey, u32>> {
        // A map of counts stays consistent whatever panicked while holding it.
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn of_source(&self, k: SourceKey) -> u32 {
        self.sources().get(&k).copied().unwrap_or(0)
    }

    pub(super) fn source_added(&self, k: SourceKey) {
        *self.sources().entry(k).or_default() += 1;
    }

    pub(super) fn source_removed(&self, k: SourceKey) {
        let mut sources = self.sources();
        if let Some(n) = sources.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                sources.remove(&k);
            }
        }
    }
}
