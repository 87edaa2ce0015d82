//! After anything happened to a connection: its RSTs are queued, its requests
//! carried out (a v0 retry, a freed subflow's 4-tuple, the path manager), its
//! events reported to the application, and it is freed once finished, or
//! queued for transmission and its timer re-armed.

use super::{monitor, ConnId, Event, Slot, Stack};
use crate::conn::{Effects, Request, RstOut};
use crate::mptcp::DataLevel;
use crate::tcp::State;
use crate::time::Instant;
use crate::wire::mptcp::MptcpVersion;
use core::cmp::Reverse;
use rand_core::Rng;
use std::collections::{BinaryHeap, VecDeque};

impl Stack {
    /// Carry out what connection `id` returned; `answer`: in answer to a
    /// segment, whose RSTs are rate-limited.
    pub(super) fn apply_effects(&mut self, id: ConnId, now: Instant, fx: Effects, answer: bool) {
        if answer {
            self.queue_rsts(fx.rsts);
        } else {
            self.queue_own_rsts(fx.rsts);
        }
        for r in fx.requests {
            match r {
                Request::RetryV0 => self.reopen_v0(now, id),
                Request::Unbind(tuple) => self.conns.unalias(id, &tuple),
                Request::StartPathManager => self.start_path_manager(now, id),
                Request::JoinPeerAddress(addr) => self.join_peer_address(now, id, addr),
            }
        }
    }

    /// Queue RSTs a connection decided on, or the stack in answer to a
    /// segment. Those answer what others sent, so they are rate-limited; a
    /// RST of our own (an abort) is not.
    pub(super) fn queue_rsts(&mut self, rsts: Vec<RstOut>) {
        for r in rsts {
            if !self.rst_bucket.take(self.now) {
                self.counters.drop_rst_rate_limited += 1;
                continue;
            }
            if !self.rsts.push(r) {
                self.counters.drop_rst_queue_full += 1;
            }
        }
    }

    /// Queue RSTs of our own (an abort, a release, timers giving up).
    pub(super) fn queue_own_rsts(&mut self, rsts: Vec<RstOut>) {
        for r in rsts {
            if !self.rsts.push(r) {
                self.counters.drop_rst_queue_full += 1;
            }
        }
    }

    /// The v1 SYN of connection `id` got plain TCP back and v0 is allowed: open
    /// it again, same 4-tuple, new ISN, offering v0 (RFC 8684 §3.1). Once.
    fn reopen_v0(&mut self, now: Instant, id: ConnId) {
        let Some(slot) = self.conns.get(id) else {
            return;
        };
        let (local, remote) = (slot.conn.local(), slot.conn.remote());
        let scheduler = slot.conn.scheduler_kind();
        if let Some(token) = slot.conn.token() {
            self.tokens.remove(&token);
        }
        // A new ISN well away from the refused one.
        let away = (self.rng.public.next_u32() | 1) as usize;
        let tcb = self.active_tcb(now, local, remote, away);
        let key = self.new_key(MptcpVersion::V0);
        let mut settings = self.mptcp_settings();
        if let Some(k) = scheduler {
            settings.scheduler = k;
        }
        let mp = DataLevel::client(MptcpVersion::V0, key, &settings);
        self.tokens.insert(mp.local_token(), id);
        self.counters.mptcp_v0_retries += 1;
        if let Some(slot) = self.conns.get_mut(id) {
            slot.conn.restart(tcb, mp);
        }
    }

    /// Add the connection to the transmit queue.
    pub(super) fn queue_for_transmit(&mut self, id: ConnId) {
        if let Some(slot) = self.conns.get_mut(id) {
            queue_slot(&mut self.ready, id, slot);
        }
    }

    /// After anything happened to a connection: report its events, free it if it
    /// is finished, queue it for transmission and re-arm its timer.
    pub(super) fn touch(&mut self, id: ConnId) {
        let Some(slot) = self.conns.get_mut(id) else {
            return;
        };
        let ev = slot.conn.take_events();
        let dropped = &mut self.counters.path_events_dropped;
        monitor::collect(&mut self.path_events, dropped, id, &mut slot.conn, false);
        let released = slot.conn.is_released();
        if ev.established {
            if let Some(on) = slot.listener.take() {
                if let Some(l) = self.listeners.get_mut(&on) {
                    l.pending = l.pending.saturating_sub(1);
                }
                self.counters.connections_accepted += 1;
                slot.announced = true;
                if !released {
                    self.events.push_back(Event::Accepted {
                        id,
                        on,
                        local: slot.conn.local(),
                        remote: slot.conn.remote(),
                    });
                }
            } else if !released {
                self.events.push_back(Event::Connected(id));
            }
        }
        let announced = slot.announced;
        if announced && !released {
            if ev.readable {
                self.events.push_back(Event::Readable(id));
            }
            if ev.writable {
                self.events.push_back(Event::Writable(id));
            }
            if let Some(reason) = ev.closed {
                self.events.push_back(Event::Closed { id, reason });
            }
        }
        let slot = if slot.conn.state() == State::Closed {
            if let Some(on) = slot.listener.take() {
                if let Some(l) = self.listeners.get_mut(&on) {
                    l.pending = l.pending.saturating_sub(1);
                }
            }
            // The 4-tuple is free again; the handle lives until released.
            self.conns.unbind_tuple(id);
            if released || !announced {
                self.remove(id);
                return;
            }
            let Some(slot) = self.conns.get_mut(id) else {
                return;
            };
            slot
        } else {
            slot
        };
        // The same slot for the rest: this runs after every segment, and a
        // look-up per step cost as much as the steps.
        queue_slot(&mut self.ready, id, slot);
        arm_slot(&mut self.timers, id, slot);
        super::memory::recount(&mut self.memory, self.pressure, slot);
        self.update_pressure();
    }

    pub(super) fn arm(&mut self, id: ConnId) {
        if let Some(slot) = self.conns.get_mut(id) {
            arm_slot(&mut self.timers, id, slot);
        }
    }

    /// Free connection `id`; its statistics stay in the stack's totals.
    pub(super) fn remove(&mut self, id: ConnId) {
        let Some(mut slot) = self.conns.remove(id) else {
            return;
        };
        let dropped = &mut self.counters.path_events_dropped;
        monitor::collect(&mut self.path_events, dropped, id, &mut slot.conn, true);
        self.shared.conn_removed();
        let conn = &slot.conn;
        if let Some(mp) = conn.data_level() {
            self.tokens.remove(&mp.local_token());
            self.counters.add_mptcp(&mp.stats());
            if mp.is_fallback() {
                self.counters.mptcp_fallbacks += 1;
            } else if mp.remote_key().is_some() {
                self.counters.mptcp_connections += 1;
            }
        }
        if let Some(on) = slot.listener {
            if let Some(l) = self.listeners.get_mut(&on) {
                l.pending = l.pending.saturating_sub(1);
            }
        }
        if slot.transparent {
            self.transparent_conns -= 1;
        }
        self.counters.add_tcb(&conn.tcp_stats());
        self.unaccount(slot.memory, slot.source);
    }
}

fn queue_slot(ready: &mut VecDeque<ConnId>, id: ConnId, slot: &mut Slot) {
    if !slot.queued {
        slot.queued = true;
        ready.push_back(id);
    }
}

/// A timer for the connection's next deadline, unless one as early is set.
fn arm_slot(timers: &mut BinaryHeap<Reverse<(Instant, ConnId)>>, id: ConnId, slot: &mut Slot) {
    if let Some(at) = slot.conn.poll_at() {
        if slot.armed.is_none_or(|a| at < a) {
            slot.armed = Some(at);
            timers.push(Reverse((at, id)));
        }
    }
}
