//! The memory budget at the stack (see `crate::memory`): each slot remembers
//! what its connection held when last looked at, so the total is kept up to
//! date at the cost of one look per operation on a connection; and admission
//! of new connections (the budget, and `Config::max_conns_per_source`).

use super::{ConnId, Slot, Stack};
use crate::memory::Pressure;
use std::net::IpAddr;

/// Whom a connection counts against for `max_conns_per_source`: an IPv4
/// address, or an IPv6 /64 (a single host usually has a whole /64 to pick
/// addresses from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum SourceKey {
    V4(u32),
    V6(u64),
}

impl SourceKey {
    pub(super) fn of(addr: IpAddr) -> SourceKey {
        match addr {
            IpAddr::V4(a) => SourceKey::V4(a.to_bits()),
            IpAddr::V6(a) => SourceKey::V6((a.to_bits() >> 64) as u64),
        }
    }
}

/// Why a new connection is not taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    Connections,
    Memory,
    Source,
}

impl Stack {
    /// Heap bytes the connections hold (buffers and records, TIME_WAIT
    /// records too), as last accounted.
    pub fn memory_used(&self) -> usize {
        self.memory + self.time_wait.len() * super::time_wait::RECORD_BYTES
    }

    /// The most [`memory_used`](Self::memory_used) has been, as accounted
    /// after each operation on a connection.
    pub fn memory_peak(&self) -> usize {
        self.memory_peak
    }

    /// The host tells whether packets wait for the stack (a daemon that
    /// reads its TUN in batches and found more than a batch waiting): the
    /// round trips every connection measures then include that queue, and
    /// receive windows do not grow for it (see `tcp::autotune`).
    pub fn set_host_queue(&mut self, queued: bool) {
        if queued == self.host_queue {
            return;
        }
        self.host_queue = queued;
        for (_, slot) in self.conns.iter_mut() {
            slot.conn.set_host_queue(queued);
        }
    }

    /// How short of memory the stack is.
    pub fn memory_pressure(&self) -> Pressure {
        self.pressure
    }

    /// Account connection `id` anew after something happened to it; under
    /// pressure its drained buffers shrink first.
    pub(super) fn account(&mut self, id: ConnId) {
        let Some(slot) = self.conns.get_mut(id) else {
            return;
        };
        recount(&mut self.memory, self.pressure, slot);
        self.update_pressure();
    }

    /// A connection went: its bytes are no longer held.
    pub(super) fn unaccount(&mut self, memory: usize, source: Option<SourceKey>) {
        self.memory -= memory;
        if let Some(k) = source {
            self.shared.source_removed(k);
        }
        self.update_pressure();
    }

    pub(super) fn update_pressure(&mut self) {
        let used = self.memory_used();
        self.memory_peak = self.memory_peak.max(used);
        let p = Pressure::for_usage(used, self.config.max_memory, self.pressure);
        if p == self.pressure {
            return;
        }
        if self.pressure == Pressure::None {
            self.counters.memory_pressure += 1;
        }
        self.pressure = p;
        // Rare (hysteresis): every connection learns it, and under pressure
        // gives back what it can at once.
        let mut total = 0;
        for (_, slot) in self.conns.iter_mut() {
            slot.conn.set_pressure(p);
            slot.memory = slot.conn.memory();
            total += slot.memory;
        }
        self.memory = total;
    }

    /// Whether a new connection (or subflow) from `remote` may be taken on;
    /// `passive`: the peer opens it (it counts against its source).
    pub(super) fn admit(&self, remote: IpAddr, passive: bool) -> Result<(), Refusal> {
        if self.shared.connections() >= self.config.max_connections {
            return Err(Refusal::Connections);
        }
        if self.pressure == Pressure::Exhausted {
            return Err(Refusal::Memory);
        }
        let from_source = self.shared.of_source(SourceKey::of(remote));
        if passive && from_source as usize >= self.config.max_conns_per_source {
            return Err(Refusal::Source);
        }
        Ok(())
    }

    /// Count a refusal.
    pub(super) fn refused(&mut self, why: Refusal) {
        match why {
            Refusal::Connections => self.counters.drop_backlog_full += 1,
            Refusal::Memory => self.counters.drop_memory += 1,
            Refusal::Source => self.counters.drop_source_limit += 1,
        }
    }

    /// A connection the peer opened counts against its source.
    pub(super) fn count_source(&mut self, id: ConnId, remote: IpAddr) {
        if let Some(slot) = self.conns.get_mut(id) {
            let k = SourceKey::of(remote);
            slot.source = Some(k);
            self.shared.source_added(k);
        }
    }
}

/// Counts what `slot`'s connection holds into `memory` again (shrunk first
/// under pressure); [`Stack::update_pressure`] must follow.
pub(super) fn recount(memory: &mut usize, pressure: Pressure, slot: &mut Slot) {
    if pressure != Pressure::None {
        slot.conn.shrink();
    }
    let now = slot.conn.memory();
    let before = core::mem::replace(&mut slot.memory, now);
    *memory = *memory - before + now;
}
