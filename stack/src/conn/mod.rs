//! One connection as the application sees it: a TCP connection, or an MPTCP
//! connection over one or more subflows.
//!
//! A [`Connection`] owns its subflows, each one [`Subflow`] value (TCB and
//! MPTCP per-subflow state together), and the MPTCP connection level
//! ([`DataLevel`]) when there is one. Every segment goes through one pipeline
//! (`input.rs`): the subflow's TCB decides whether it is acceptable, and only
//! then does the MPTCP level act on its options; what the MPTCP level decides
//! beyond the subflow at hand comes back as actions that the connection carries
//! out (`actions.rs`). What only the stack can do — send RSTs, open the
//! connection again with v0, forget a freed subflow's 4-tuple, run the path
//! manager — is returned from each call as [`Effects`]. The stack never
//! reaches into a connection's fields.
//!
//! Also here: output and scheduling (`output.rs`), timers (`timers.rs`),
//! closing and freeing subflows (`close.rs`), the connection's side of the
//! path manager (`pm.rs`) and status snapshots (`info.rs`).

mod actions;
mod close;
pub mod direct_read;
pub mod effects;
mod events;
pub mod info;
mod input;
mod output;
mod pm;
pub mod subflow;
#[cfg(test)]
mod tests;
mod timers;

pub use effects::{Effects, Request, RstOut};
pub use events::{
    EndedSubflow, LocalReset, PathEventKind, SubflowEnd, SubflowRef, SubflowReported,
};
pub use info::{BufferInfo, ConnInfo, MptcpInfo, SubflowInfo};
pub use subflow::{Subflow, SubflowId};

use crate::memory::Pressure;
use crate::mptcp::pm::RemoteAddr;
use crate::mptcp::{options, DataLevel, SubflowMp};
use crate::tcp::buffer::{CopyTo, Reader, Writer};
use crate::tcp::state::CloseReason;
use crate::tcp::tcb::{TcbEvents, TcbStats};
use crate::tcp::{State, Tcb};
use crate::time::Instant;
use std::net::SocketAddr;

#[derive(Debug)]
pub struct Connection {
    /// The initial subflow's addresses: the connection's name, whatever
    /// becomes of that subflow.
    local: SocketAddr,
    remote: SocketAddr,
    /// Subflow records in id order. A closed subflow is freed at once (its
    /// buffers, its 4-tuple) while another record remains; the last one stays
    /// until the connection goes, for its close reason and any data it holds.
    subflows: Vec<Subflow>,
    next_subflow: u32,
    mp: Option<Box<DataLevel>>,
    /// Statistics of freed subflows, and the first abnormal end among them.
    freed_stats: TcbStats,
    freed_reason: Option<CloseReason>,
    /// More than one subflow ever: the connection is not any one subflow.
    multipath: bool,
    /// The path manager was asked to start (once).
    pm_started: bool,
    /// Addresses the peer announced, for the path manager once the connection
    /// is fully established (each reported once by the MPTCP level, which
    /// bounds how many it remembers).
    peer_addrs: Vec<RemoteAddr>,
    /// Subflow the next transmission round starts at.
    next_tx: usize,
    /// The multipath scheduling round's working space, kept between rounds.
    round: output::Round,
    /// The last scheduling round left nothing for the next one to do unless
    /// something besides the connection's own segments happens first: every
    /// other call into the connection clears it (`unsettle`), but those
    /// that only hand over what happened (events, path events).
    settled: bool,
    close_reported: bool,
    /// What was reported to the path-event monitor (`events.rs`).
    reported: events::Reported,
    /// The application released its handle.
    released: bool,
    /// The application's reader of bytes as they arrive (`direct_read.rs`).
    direct: direct_read::DirectSlot,
}

impl Connection {
    pub fn tcp(tcb: Tcb) -> Self {
        Connection {
            local: tcb.local(),
            remote: tcb.remote(),
            subflows: vec![Subflow::new(SubflowId::INITIAL, tcb, SubflowMp::initial())],
            next_subflow: 1,
            mp: None,
            freed_stats: TcbStats::default(),
            freed_reason: None,
            multipath: false,
            pm_started: false,
            peer_addrs: Vec::new(),
            next_tx: 0,
            round: output::Round::default(),
            settled: false,
            close_reported: false,
            reported: events::Reported::default(),
            released: false,
            direct: direct_read::DirectSlot::default(),
        }
    }

    pub fn mptcp(tcb: Tcb, mp: DataLevel) -> Self {
        Connection {
            mp: Some(Box::new(mp)),
            ..Connection::tcp(tcb)
        }
    }

    /// Open again, same 4-tuple, with `tcb` and `mp` (MPTCP v0 after a v1 SYN
    /// got plain TCP back), carrying over what the application already did.
    pub fn restart(&mut self, mut tcb: Tcb, mut mp: DataLevel) {
        if let Some(old) = self.mp.as_deref_mut() {
            old.carry_over(&mut mp);
        }
        if self.released {
            tcb.mark_released();
        }
        let released = self.released;
        let direct = core::mem::take(&mut self.direct);
        *self = Connection::mptcp(tcb, mp);
        self.released = released;
        self.direct = direct;
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    pub fn is_released(&self) -> bool {
        self.released
    }

    /// The MPTCP level, if the connection has one (fallen back or not).
    pub fn data_level(&self) -> Option<&DataLevel> {
        self.mp.as_deref()
    }

    /// The MPTCP token others join with, while the connection is MPTCP.
    pub fn token(&self) -> Option<u32> {
        self.mp.as_deref().map(|m| m.local_token())
    }

    /// How an MPTCP connection spreads its data over its subflows.
    pub fn scheduler_kind(&self) -> Option<crate::config::SchedulerKind> {
        self.mp.as_deref().map(|m| m.scheduler_kind())
    }

    fn index(&self, id: SubflowId) -> Option<usize> {
        self.subflows.binary_search_by_key(&id, |s| s.id).ok()
    }

    /// The subflow that speaks for the connection: the first live one.
    fn primary(&self) -> usize {
        self.subflows
            .iter()
            .position(|s| s.tcb.state() != State::Closed)
            .unwrap_or(0)
    }

    /// The connection's state: that of its first live subflow; closed when
    /// every subflow is.
    pub fn state(&self) -> State {
        self.subflows[self.primary()].tcb.state()
    }

    /// Heap bytes the connection holds: its own record, its subflows' and
    /// their buffers, the MPTCP level's.
    pub fn memory(&self) -> usize {
        let subflows: usize = self
            .subflows
            .iter()
            .map(|s| s.tcb.memory() + s.mp.memory())
            .sum();
        let mp = self
            .mp
            .as_deref()
            .map_or(0, |m| core::mem::size_of::<DataLevel>() + m.memory());
        core::mem::size_of::<Connection>()
            + self.subflows.capacity() * core::mem::size_of::<Subflow>()
            + self.peer_addrs.capacity() * core::mem::size_of::<RemoteAddr>()
            + subflows
            + mp
    }

    /// The stack's memory pressure changed (`crate::memory`); the bytes
    /// given back.
    pub fn set_pressure(&mut self, p: Pressure) {
        self.unsettle();
        for s in &mut self.subflows {
            s.tcb.set_pressure(p);
        }
        if let Some(mp) = self.mp.as_deref_mut() {
            mp.set_pressure(p);
        }
    }

    /// Whether the host queues what arrives (see `RcvSpace::host_queue`).
    pub fn set_host_queue(&mut self, queued: bool) {
        self.unsettle();
        for s in &mut self.subflows {
            s.tcb.set_host_queue(queued);
        }
        if let Some(mp) = self.mp.as_deref_mut() {
            mp.set_host_queue(queued);
        }
    }

    /// Under memory pressure, shrink buffers that drained (`Tcb::shrink`).
    pub fn shrink(&mut self) {
        self.unsettle();
        for s in &mut self.subflows {
            s.tcb.shrink();
        }
        if let Some(mp) = self.mp.as_deref_mut() {
            mp.shrink();
        }
    }

    /// Still exchanging data or FINs (not TIME_WAIT, not closed).
    pub fn is_active(&self) -> bool {
        self.subflows
            .iter()
            .any(|s| !matches!(s.tcb.state(), State::TimeWait | State::Closed))
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        if !self.multipath {
            return self.subflows[0].tcb.close_reason();
        }
        if self.state() != State::Closed {
            return None;
        }
        if self.mp.as_deref().is_some_and(|m| m.data_level_done()) {
            return Some(CloseReason::Normal);
        }
        self.subflows
            .iter()
            .filter_map(|s| s.tcb.close_reason())
            .chain(self.freed_reason)
            .find(|r| *r != CloseReason::Normal)
            .or(Some(CloseReason::Normal))
    }

    /// Events for the application: the data-level ones come from the MPTCP level.
    pub fn take_events(&mut self) -> TcbEvents {
        let mut ev = self.subflows[0].tcb.take_events();
        for s in &mut self.subflows[1..] {
            // Only the connection's events matter; a joined subflow closing is
            // not the connection closing.
            let _ = s.tcb.take_events();
        }
        if self.multipath {
            // The first subflow's establishment was reported with it; after that
            // only the connection closing counts.
            ev.established &= self.subflows[0].id == SubflowId::INITIAL;
            ev.closed = None;
            if !self.close_reported && self.state() == State::Closed {
                self.close_reported = true;
                ev.closed = self.close_reason();
            }
        }
        if let Some(mp) = self.mp.as_deref_mut() {
            let readable = mp.take_readable();
            let writable = mp.take_writable();
            if mp.is_fallback() {
                ev.readable |= readable;
                ev.writable |= writable;
            } else {
                ev.readable = readable;
                ev.writable = writable;
            }
        }
        ev
    }

    // ----- the application -----

    /// Give the connection a reader of its bytes as they arrive (or take it
    /// away); returns the one it had.
    pub fn set_direct_reader(
        &mut self,
        r: Option<Box<dyn direct_read::DirectReader>>,
    ) -> Option<Box<dyn direct_read::DirectReader>> {
        core::mem::replace(&mut self.direct.0, r)
    }

    /// Queue data; `None` once the connection cannot send any more.
    pub fn send(&mut self, data: &[u8]) -> Option<usize> {
        self.send_from(&mut { data })
    }

    /// Queue what `w` writes: bytes, or a fill of the send buffer in place
    /// (`Stack::send_with`); `None` once the connection cannot send any more.
    pub fn send_from(&mut self, w: &mut impl Writer) -> Option<usize> {
        let sent = self.queue(w);
        if sent.is_some_and(|n| n > 0) {
            // Not when nothing was taken (a full buffer, which the
            // application may try after every event): nothing changed.
            self.unsettle();
        }
        sent
    }

    fn queue(&mut self, w: &mut impl Writer) -> Option<usize> {
        if !self.state().can_send() {
            return None;
        }
        match self.mp.as_deref_mut() {
            Some(mp) if !mp.is_fallback() => mp.can_send().then(|| mp.send_from(w)),
            Some(mp) => {
                // A subflow that sent from the data level's buffer holds its
                // own bytes from now on (`mptcp/send_mapped.rs`).
                output::settle_sends(mp, &mut self.subflows);
                let first = &mut self.subflows[0].tcb;
                // After a fallback, bytes still held at the data level go first.
                mp.flush_fallback(first);
                if mp.send_pending() > 0 {
                    return mp.can_send().then(|| mp.send_from(w));
                }
                first.send_from(w)
            }
            None => self.subflows[0].tcb.send_from(w),
        }
    }

    pub fn send_capacity(&self) -> usize {
        match self.mp.as_deref() {
            Some(mp) if !mp.is_fallback() => mp.send_capacity(),
            _ => self.subflows[0].tcb.send_capacity(),
        }
    }

    pub fn recv_available(&self) -> usize {
        let tcp = self.subflows[0].tcb.recv_available();
        match self.mp.as_deref() {
            // A subflow's bytes are the application's only once the data
            // level took them (in order, by their mappings).
            Some(mp) if !mp.is_fallback() => mp.recv_available(),
            // Fallen back: what reached the data level first, then the TCB's.
            Some(mp) => mp.recv_available() + tcp,
            None => tcp,
        }
    }

    /// `Ok(0)`: nothing yet; `Err(true)`: the peer finished; `Err(false)`:
    /// reset. Reading lets subflows hand up more, which may uncover a DSS
    /// checksum failure: hence the effects.
    pub fn recv(&mut self, now: Instant, buf: &mut [u8]) -> (Result<usize, bool>, Effects) {
        self.recv_into(now, &mut CopyTo::new(buf))
    }

    /// [`recv`](Self::recv) to any [`Reader`].
    pub fn recv_into<R: Reader + ?Sized>(
        &mut self,
        now: Instant,
        r: &mut R,
    ) -> (Result<usize, bool>, Effects) {
        self.unsettle();
        let reason = self.close_reason();
        let mut fx = Effects::default();
        let Some(mp) = self.mp.as_deref_mut() else {
            return (self.subflows[0].tcb.recv_into(r), fx);
        };
        if mp.is_fallback() {
            // What reached the data level before the fallback is read first.
            if mp.recv_available() > 0 {
                return (Ok(mp.recv(r).unwrap_or(0)), fx);
            }
            return (self.subflows[0].tcb.recv_into(r), fx);
        }
        let r = match mp.recv(r) {
            Some(n) if n > 0 => Ok(n),
            None => Err(true),
            // Bytes the reader declined: not the end, even after a reset.
            Some(_) if mp.recv_available() > 0 => Ok(0),
            Some(_) => match reason {
                Some(CloseReason::Normal) | None => Ok(0),
                Some(_) => Err(false),
            },
        };
        if matches!(r, Ok(n) if n > 0) {
            self.after_read(now, &mut fx);
        }
        (r, fx)
    }

    /// The application read: every subflow may hand up more.
    #[inline]
    fn after_read(&mut self, now: Instant, fx: &mut Effects) {
        for k in 0..self.subflows.len() {
            let Some(mp) = self.mp.as_deref_mut() else {
                return;
            };
            if self.subflows[k].tcb.state() == State::Closed {
                continue;
            }
            let idle = input::others_idle(mp, &self.subflows, k);
            let s = &mut self.subflows[k];
            let acts = mp.after_read(now, &mut s.tcb, &mut s.mp, idle);
            self.apply(now, k, acts, fx);
        }
        self.after_changes(now, fx);
    }

    /// Whether a subflow owes the peer an ACK now (a window update).
    pub fn wants_ack(&self) -> bool {
        self.subflows.iter().any(|s| s.tcb.wants_ack())
    }

    pub fn shutdown(&mut self) {
        self.unsettle();
        let first = &mut self.subflows[0].tcb;
        match self.mp.as_deref_mut() {
            Some(mp) if !mp.is_fallback() => mp.shutdown(),
            Some(mp) => {
                // The subflow's FIN follows the data still held above it.
                mp.shutdown();
                mp.flush_fallback(first);
                if mp.send_pending() == 0 {
                    first.shutdown();
                }
            }
            None => first.shutdown(),
        }
    }

    /// Abort: RSTs on every subflow (with MP_FASTCLOSE and MP_TCPRST under
    /// MPTCP).
    pub fn abort(&mut self) -> Effects {
        self.unsettle();
        let mut fx = Effects::default();
        self.abort_all(&mut fx);
        fx
    }

    fn abort_all(&mut self, fx: &mut Effects) {
        let extra = self
            .mp
            .as_deref()
            .map(options::fastclose_options)
            .unwrap_or_default();
        for s in &mut self.subflows {
            let reply = s.tcb.abort();
            fx.rst(s.tuple(), reply, extra);
        }
    }

    /// Release the handle: the connection closes on its own (or is aborted if
    /// data waits unread).
    pub fn release(&mut self, now: Instant) -> Effects {
        self.unsettle();
        self.released = true;
        // Nobody reads any more (and the reader may hold the application's
        // resources, such as a socket).
        self.direct = direct_read::DirectSlot::default();
        let mut fx = Effects::default();
        for s in &mut self.subflows {
            s.tcb.mark_released();
        }
        match self.mp.as_deref_mut() {
            Some(mp) if !mp.is_fallback() => {
                if mp.recv_available() > 0 {
                    self.abort_all(&mut fx);
                    return fx;
                }
                mp.shutdown();
                mp.release();
            }
            Some(mp) if mp.send_pending() > 0 => {
                // Fallen back with bytes still held above the subflow (its
                // send buffer was full): they go first, and the subflow's FIN
                // once they are handed down (`flush_fallback`).
                if mp.recv_available() > 0 {
                    self.abort_all(&mut fx);
                    return fx;
                }
                mp.shutdown();
                mp.release();
                let first = &mut self.subflows[0];
                let reply = first.tcb.release_unread();
                fx.rst(first.tuple(), reply, Default::default());
            }
            _ => {
                let first = &mut self.subflows[0];
                let reply = first.tcb.release(now);
                fx.rst(first.tuple(), reply, Default::default());
            }
        }
        fx
    }
}
