//! One connection as the application sees it: a TCP connection, or an MPTCP
//! connection over one or more subflows (each a [`Tcb`]). The endpoint talks only
//! to this type; it routes each call to the MPTCP level when there is one and it
//! has not fallen back to plain TCP, spreads data over the subflows with the
//! scheduler, and keeps the connection alive while any subflow is.

use crate::mptcp::connection::{MptcpConn, SubflowHooks};
use crate::mptcp::scheduler::SubflowView;
use crate::tcp::cc::coupled::{couple, SubflowCc};
use crate::tcp::hooks::OptionBytes;
use crate::tcp::state::CloseReason;
use crate::tcp::tcb::{RstReply, TcbEvents, Transmit};
use crate::tcp::{State, Tcb};
use crate::time::Instant;
use crate::wire::TcpRepr;
use std::net::SocketAddr;

/// A RST the connection decided on, for the endpoint to send.
#[derive(Debug, Clone, Copy)]
pub struct SubflowRst {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub reply: RstReply,
    pub extra: OptionBytes,
}

#[derive(Debug)]
pub struct Connection {
    /// The first subflow (for plain TCP, the connection).
    pub tcb: Tcb,
    /// Joined subflows: `joins[k]` is MPTCP subflow `k + 1`.
    pub joins: Vec<Tcb>,
    pub mp: Option<Box<MptcpConn>>,
    /// RSTs decided while handling input, timers or an abort.
    pub rsts: Vec<SubflowRst>,
    /// The path manager has opened this connection's subflows.
    pub pm_done: bool,
    /// Open again with MPTCP v0 (the v1 SYN got plain TCP back).
    pub retry_v0: bool,
    /// Subflow the next transmission round starts at.
    next_tx: usize,
    close_reported: bool,
}

impl Connection {
    pub fn tcp(tcb: Tcb) -> Self {
        Connection {
            tcb,
            joins: Vec::new(),
            mp: None,
            rsts: Vec::new(),
            pm_done: false,
            retry_v0: false,
            next_tx: 0,
            close_reported: false,
        }
    }

    pub fn mptcp(tcb: Tcb, mp: MptcpConn) -> Self {
        Connection {
            mp: Some(Box::new(mp)),
            ..Connection::tcp(tcb)
        }
    }

    /// The MPTCP level, unless absent or fallen back to TCP.
    fn active_mp(&mut self) -> Option<&mut MptcpConn> {
        self.mp.as_deref_mut().filter(|m| !m.is_fallback())
    }

    fn is_multipath(&self) -> bool {
        !self.joins.is_empty()
    }

    pub fn subflow_count(&self) -> usize {
        1 + self.joins.len()
    }

    pub fn subflow_tcb(&self, i: usize) -> &Tcb {
        if i == 0 {
            &self.tcb
        } else {
            &self.joins[i - 1]
        }
    }

    /// Subflow `i`'s TCB and the MPTCP level, borrowed together.
    fn parts(&mut self, i: usize) -> (&mut Tcb, Option<&mut MptcpConn>) {
        let tcb = if i == 0 {
            &mut self.tcb
        } else {
            &mut self.joins[i - 1]
        };
        (tcb, self.mp.as_deref_mut())
    }

    /// Which subflow a segment between `local` and `remote` belongs to.
    pub fn subflow_index(&self, local: SocketAddr, remote: SocketAddr) -> Option<usize> {
        (0..self.subflow_count()).find(|&i| {
            let t = self.subflow_tcb(i);
            t.local() == local && t.remote() == remote
        })
    }

    /// Add a joined subflow; it must be MPTCP subflow `subflow_count()`.
    pub fn add_join(&mut self, tcb: Tcb) {
        self.joins.push(tcb);
    }

    /// The connection's state: the first subflow's while it lives, then that of
    /// a live joined one; closed when every subflow is.
    pub fn state(&self) -> State {
        if !self.is_multipath() || self.tcb.state() != State::Closed {
            return self.tcb.state();
        }
        self.joins
            .iter()
            .map(|t| t.state())
            .find(|s| *s != State::Closed)
            .unwrap_or(State::Closed)
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        if !self.is_multipath() {
            return self.tcb.close_reason();
        }
        if self.state() != State::Closed {
            return None;
        }
        let data_done = self.mp.as_deref().is_some_and(|m| m.data_level_done());
        if data_done {
            return Some(CloseReason::Normal);
        }
        (0..self.subflow_count())
            .filter_map(|i| self.subflow_tcb(i).close_reason())
            .find(|r| *r != CloseReason::Normal)
            .or(Some(CloseReason::Normal))
    }

    fn push_rst(&mut self, i: usize, reply: Option<RstReply>, extra: OptionBytes) {
        if let Some(reply) = reply {
            let t = self.subflow_tcb(i);
            self.rsts.push(SubflowRst {
                local: t.local(),
                remote: t.remote(),
                reply,
                extra,
            });
        }
    }

    /// A segment for subflow `i` (see [`Connection::subflow_index`]).
    pub fn on_segment(&mut self, now: Instant, i: usize, seg: &TcpRepr<'_>) {
        let (tcb, mp) = self.parts(i);
        let Some(mp) = mp else {
            let reply = tcb.on_segment(now, seg).rst;
            self.push_rst(i, reply, OptionBytes::default());
            return;
        };
        mp.on_segment(i, tcb, seg);
        if mp.take_retry_v0() {
            // Refuse this plain-TCP SYN/ACK; the endpoint opens again with v0.
            let reply = RstReply {
                seq: seg.ack,
                ack: None,
            };
            self.push_rst(i, Some(reply), OptionBytes::default());
            self.retry_v0 = true;
            return;
        }
        if mp.take_fastclose() {
            if seg.flags.rst() {
                // The RST itself resets the subflow if it is acceptable.
                let _ = tcb.on_segment(now, seg);
            } else {
                let reply = tcb.reset_by_peer();
                self.push_rst(i, reply, OptionBytes::default());
            }
            // The whole connection goes (RFC 8684 §3.5).
            for k in 0..self.subflow_count() {
                let (t, _) = self.parts(k);
                if t.state() != State::Closed {
                    let _ = t.reset_by_peer();
                }
            }
            self.after_subflow_changes();
            return;
        }
        let reply = tcb.on_segment(now, seg).rst;
        mp.pull(i, tcb);
        if mp.released_with_data() {
            // Nobody will read it: abort, as TCP does (RFC 9293 §3.10.7.4).
            self.abort();
            return;
        }
        let conn_reset = mp.must_reset() && tcb.state() != State::Closed;
        let sub_reset = mp.subflow_must_reset(i) && tcb.state() != State::Closed;
        self.push_rst(i, reply, OptionBytes::default());
        if conn_reset {
            // Corrupted data must never reach the application.
            self.reset_all(OptionBytes::default(), true);
        } else if sub_reset {
            self.reset_subflow(i);
        }
        // A REMOVE_ADDR on this subflow may close others.
        self.apply_subflow_resets();
        self.after_subflow_changes();
    }

    /// After a path-manager change: reset the subflows it gave up, ask for
    /// the pure ACK that carries its options.
    pub fn apply_pm(&mut self) {
        self.apply_subflow_resets();
        self.after_subflow_changes();
    }

    /// Mark the subflows on our address `addr` backup or not (MP_PRIO on each).
    pub fn set_local_backup(&mut self, addr: std::net::IpAddr, backup: bool) {
        for i in 0..self.subflow_count() {
            let (tcb, mp) = self.parts(i);
            if tcb.local().ip() != addr || tcb.state() == State::Closed {
                continue;
            }
            if let Some(mp) = mp {
                if !mp.is_fallback() && mp.subflow(i).local_backup != backup {
                    mp.set_local_backup(i, backup);
                    tcb.force_ack();
                }
            }
        }
    }

    /// Reset the subflows the MPTCP level gave up (REMOVE_ADDR, a failed join).
    fn apply_subflow_resets(&mut self) {
        for j in 0..self.subflow_count() {
            let must = self.mp.as_deref().is_some_and(|m| m.subflow_must_reset(j));
            if must && self.subflow_tcb(j).state() != State::Closed {
                self.reset_subflow(j);
            }
        }
    }

    /// Reset subflow `i` alone, with MP_TCPRST.
    fn reset_subflow(&mut self, i: usize) {
        let (tcb, mp) = self.parts(i);
        let extra = mp.map(|m| m.subflow_reset_options(i)).unwrap_or_default();
        let reply = tcb.reset_by_peer();
        self.push_rst(i, reply, extra);
    }

    /// Reset every subflow; `options_from_mp`: with the MPTCP level's reset
    /// options (MP_FAIL and MP_TCPRST) instead of `extra`.
    fn reset_all(&mut self, extra: OptionBytes, options_from_mp: bool) {
        let extra = if options_from_mp {
            self.mp
                .as_deref()
                .map(|m| m.reset_options())
                .unwrap_or(extra)
        } else {
            extra
        };
        for i in 0..self.subflow_count() {
            let (tcb, _) = self.parts(i);
            if tcb.state() != State::Closed {
                let reply = tcb.reset_by_peer();
                self.push_rst(i, reply, extra);
            }
        }
    }

    /// Subflows that closed hand what they carried to the others; a connection
    /// whose subflows are all gone is closed.
    fn after_subflow_changes(&mut self) {
        if !self.is_multipath() {
            return;
        }
        if self.mp.as_deref().is_some_and(|m| m.data_level_done()) {
            // With the data level finished, a subflow is not waited for once it
            // timed out holding data (all DATA_ACKed: it went over another, and
            // delivering it before a FIN only keeps a stale subflow alive, its
            // path may come back much later), or timed out twice on its FIN (its
            // path may be gone). A live subflow whose last acknowledgment is
            // merely on its way is left to close.
            for i in 0..self.subflow_count() {
                let t = self.subflow_tcb(i);
                let stale = match t.rto_backoff() {
                    0 => false,
                    1 => t.send_queued() > 0,
                    _ => true,
                };
                if t.state() != State::Closed && stale {
                    self.reset_subflow(i);
                }
            }
        }
        for i in 0..self.subflow_count() {
            let closed = self.subflow_tcb(i).state() == State::Closed;
            let (tcb, mp) = self.parts(i);
            if let Some(mp) = mp {
                if closed {
                    mp.subflow_closed(i);
                } else if tcb.state() == State::CloseWait && !mp.peer_data_finished() {
                    // The peer closed this subflow alone (RFC 8684 §3.3.3): close
                    // ours too; the data level goes on over the others.
                    tcb.shutdown();
                }
            }
        }
    }

    /// Map pending data onto the subflows: all of it onto a single one, else by
    /// the scheduler, each subflow taking what its congestion window allows.
    fn schedule(&mut self, now: Instant) {
        self.map_data(now);
        self.ack_all_if_asked();
        let rto = self.data_rto();
        if let Some(mp) = self.active_mp() {
            mp.arm_rtx(now, rto);
        }
    }

    /// The retransmission timeout of the data level: the shortest of the
    /// subflows that can carry data (the primary's when none can).
    fn data_rto(&self) -> core::time::Duration {
        (0..self.subflow_count())
            .filter(|&i| self.view(i).is_some())
            .map(|i| self.subflow_tcb(i).rto())
            .min()
            .unwrap_or_else(|| self.subflow_tcb(self.primary()).rto())
    }

    /// The MPTCP level asked for a pure ACK on every live subflow (a DATA_FIN).
    fn ack_all_if_asked(&mut self) {
        if !self.mp.as_deref_mut().is_some_and(|m| m.take_ack_all()) {
            return;
        }
        for i in 0..self.subflow_count() {
            let (tcb, mp) = self.parts(i);
            let live = mp.is_some_and(|m| {
                let sf = m.subflow(i);
                !sf.is_dead() && sf.join_established()
            });
            if live && tcb.state().is_synchronized() {
                tcb.force_ack();
            }
        }
    }

    fn map_data(&mut self, now: Instant) {
        self.apply_subflow_resets();
        self.after_subflow_changes();
        let primary = self.primary();
        let (tcb, mp) = self.parts(primary);
        if let Some(mp) = mp {
            if mp.take_want_ack() && tcb.state() != State::Closed {
                // ADD_ADDR, its echo or REMOVE_ADDR waits for a pure ACK.
                tcb.force_ack();
            }
        }
        let n = self.subflow_count();
        if n == 1 {
            // Data handed to the only subflow stays there: keep it to what the
            // subflow can soon send, so that a subflow joining later gets its
            // share (and a dead one leaves little to reinject).
            let room = self.view(0).map_or(0, |v| v.room);
            if let Some(mp) = self.mp.as_deref_mut() {
                let budget = if mp.may_join() { room } else { usize::MAX };
                mp.push(now, 0, &mut self.tcb, budget);
            }
            return;
        }
        for i in 0..n {
            let (tcb, mp) = self.parts(i);
            if let Some(mp) = mp {
                mp.push(now, i, tcb, 0);
            }
        }
        self.couple_cc();
        let Some(mp) = self.mp.as_deref() else {
            return;
        };
        if mp.is_fallback() {
            return;
        }
        if mp.is_redundant() {
            self.push_redundant();
            return;
        }
        // The views are taken once per round and only the chosen subflow's is
        // refreshed after it took data.
        let mut views: Vec<SubflowView> = (0..n).filter_map(|i| self.view(i)).collect();
        // A stalled subflow (its data already reinjected) gets no more while
        // another can take it.
        let stalled = |c: &Self, v: &SubflowView| {
            c.mp.as_deref()
                .is_some_and(|m| m.subflow(v.index).is_stalled())
        };
        if views.iter().any(|v| !stalled(self, v)) {
            views.retain(|v| !stalled(self, v));
        }
        while self.mp.as_deref().is_some_and(|m| m.has_pending()) {
            let Some(mp) = self.mp.as_deref_mut() else {
                return;
            };
            let Some(i) = mp.pick_subflow(&views) else {
                break;
            };
            let Some(k) = views.iter().position(|v| v.index == i) else {
                break;
            };
            let room = views[k].room;
            let (tcb, mp) = self.parts(i);
            let Some(mp) = mp else {
                return;
            };
            if mp.push(now, i, tcb, room) == 0 {
                views.swap_remove(k);
            } else {
                match self.view(i) {
                    Some(v) => views[k] = v,
                    None => {
                        views.swap_remove(k);
                    }
                }
            }
        }
    }

    /// Coupled congestion control (LIA, OLIA): every usable subflow learns the
    /// others' windows and RTTs (algorithms that are not coupled ignore it).
    fn couple_cc(&mut self) {
        let live: Vec<usize> = (0..self.subflow_count())
            .filter(|&i| self.view(i).is_some() && self.subflow_tcb(i).srtt().is_some())
            .collect();
        let subs: Vec<SubflowCc> = live
            .iter()
            .map(|&i| {
                let t = self.subflow_tcb(i);
                SubflowCc {
                    cwnd: t.cwnd(),
                    mss: t.mss(),
                    srtt: t.srtt().unwrap_or_default(),
                    loss_interval: t.cc_loss_interval(),
                }
            })
            .collect();
        let couplings = if subs.len() > 1 {
            couple(&subs)
        } else {
            Vec::new()
        };
        for (k, &i) in live.iter().enumerate() {
            let c = couplings.get(k).copied();
            let (tcb, _) = self.parts(i);
            tcb.set_coupling(c);
        }
    }

    /// What the scheduler sees of subflow `i`, if it may carry data now.
    fn view(&self, i: usize) -> Option<SubflowView> {
        let mp = self.mp.as_deref()?;
        let sf = mp.subflow(i);
        let t = self.subflow_tcb(i);
        let usable = !sf.is_dead()
            && sf.join_established()
            && matches!(t.state(), State::Established | State::CloseWait);
        usable.then(|| SubflowView {
            index: i,
            srtt: t.srtt(),
            backup: sf.is_backup(),
            // Up to two windows queued, like a subflow's send buffer in Linux:
            // enough for loss recovery to send new data (RFC 6675) while the
            // window is reduced, little enough to keep the subflows' queues short.
            room: (2 * t.cwnd()).saturating_sub(t.send_queued()),
        })
    }

    /// The redundant scheduler: every usable subflow carries every byte.
    fn push_redundant(&mut self) {
        for i in 0..self.subflow_count() {
            let Some(v) = self.view(i) else {
                continue;
            };
            let (tcb, mp) = self.parts(i);
            if let Some(mp) = mp {
                mp.redundant_push(i, tcb, v.room);
            }
        }
    }

    pub fn poll_transmit(&mut self, now: Instant, hop: u8, buf: &mut [u8]) -> Option<Transmit> {
        if self.mp.is_none() {
            return self.tcb.poll_transmit(now, hop, buf);
        }
        self.schedule(now);
        let n = self.subflow_count();
        for k in 0..n {
            let i = (self.next_tx + k) % n;
            let (tcb, mp) = self.parts(i);
            let mp = mp?;
            let mut hooks = SubflowHooks { conn: mp, i };
            if let Some(t) = tcb.poll_transmit_with(now, hop, buf, &mut hooks) {
                self.next_tx = (i + 1) % n;
                return Some(t);
            }
        }
        None
    }

    pub fn poll_at(&self) -> Option<Instant> {
        let mp = self.mp.as_deref().and_then(|m| m.poll_at());
        (0..self.subflow_count())
            .filter_map(|i| self.subflow_tcb(i).poll_at())
            .chain(mp)
            .min()
    }

    pub fn on_timeout(&mut self, now: Instant) {
        let primary = self.primary();
        if let Some(mp) = self.mp.as_deref_mut() {
            let tcb = if primary == 0 {
                &mut self.tcb
            } else {
                &mut self.joins[primary - 1]
            };
            mp.on_timeout(now, tcb);
        }
        let (rto, mss) = (self.data_rto(), self.subflow_tcb(primary).mss());
        if let Some(mp) = self.active_mp() {
            mp.on_rtx_timeout(now, rto, mss);
        }
        self.ack_all_if_asked();
        if self.mp.as_deref().is_some_and(|m| m.must_reset()) {
            self.reset_all(OptionBytes::default(), true);
            return;
        }
        for i in 0..self.subflow_count() {
            let (tcb, mp) = self.parts(i);
            if let Some(mp) = mp {
                if i > 0 {
                    mp.join_timeout(now, i, tcb);
                }
            }
            let due = tcb.poll_at().is_some_and(|t| t <= now);
            let reply = if due { tcb.on_timeout(now) } else { None };
            self.push_rst(i, reply, OptionBytes::default());
            if self.mp.as_deref().is_some_and(|m| m.subflow_must_reset(i))
                && self.subflow_tcb(i).state() != State::Closed
            {
                self.reset_subflow(i);
            }
        }
        self.after_subflow_changes();
    }

    /// The subflow that speaks for the connection: the first one while it
    /// lives, else the first live joined one.
    fn primary(&self) -> usize {
        if self.tcb.state() != State::Closed {
            return 0;
        }
        (1..self.subflow_count())
            .find(|&i| self.subflow_tcb(i).state() != State::Closed)
            .unwrap_or(0)
    }

    /// Events for the application: the data-level ones come from the MPTCP level.
    pub fn take_events(&mut self) -> TcbEvents {
        let mut ev = self.tcb.take_events();
        for t in &mut self.joins {
            // Only the connection's events matter; a joined subflow closing is not
            // the connection closing.
            let _ = t.take_events();
        }
        if self.is_multipath() {
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

    pub fn send(&mut self, data: &[u8]) -> Option<usize> {
        if !self.state().can_send() {
            return None;
        }
        match self.active_mp() {
            Some(mp) => mp.can_send().then(|| mp.send(data)),
            None => {
                // After a fallback, bytes still held at the data level go first.
                if let Some(mp) = self.mp.as_deref_mut() {
                    mp.flush_fallback(&mut self.tcb);
                    if mp.send_pending() > 0 {
                        return mp.can_send().then(|| mp.send(data));
                    }
                }
                self.tcb.send(data)
            }
        }
    }

    pub fn send_capacity(&self) -> usize {
        match self.mp.as_deref() {
            Some(mp) if !mp.is_fallback() => mp.send_capacity(),
            _ => self.tcb.send_capacity(),
        }
    }

    pub fn recv_available(&self) -> usize {
        let mp = self.mp.as_deref().map_or(0, |m| m.recv_available());
        mp + self.tcb.recv_available()
    }

    /// `Ok(0)`: nothing yet; `Err(true)`: the peer finished; `Err(false)`: reset.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, bool> {
        let reason = self.close_reason();
        if let Some(mp) = self.mp.as_deref_mut() {
            if !mp.is_fallback() {
                return match mp.recv(buf) {
                    Some(n) if n > 0 => {
                        self.after_read();
                        Ok(n)
                    }
                    None => Err(true),
                    Some(_) => match reason {
                        Some(CloseReason::Normal) | None => Ok(0),
                        Some(_) => Err(false),
                    },
                };
            }
            // Fallen back: what reached the data level is read first.
            if mp.recv_available() > 0 {
                return Ok(mp.recv(buf).unwrap_or(0));
            }
        }
        self.tcb.recv(buf)
    }

    /// The application read: every subflow may hand up more.
    fn after_read(&mut self) {
        for i in 0..self.subflow_count() {
            let (tcb, mp) = self.parts(i);
            if let Some(mp) = mp {
                if tcb.state() != State::Closed {
                    mp.after_read(i, tcb);
                }
            }
        }
    }

    pub fn wants_ack(&self) -> bool {
        (0..self.subflow_count()).any(|i| self.subflow_tcb(i).wants_ack())
    }

    pub fn shutdown(&mut self) {
        match self.active_mp() {
            Some(mp) => mp.shutdown(),
            None => {
                if let Some(mp) = self.mp.as_deref_mut() {
                    // The subflow's FIN follows the data still held above it.
                    mp.shutdown();
                    mp.flush_fallback(&mut self.tcb);
                    if mp.send_pending() > 0 {
                        return;
                    }
                }
                self.tcb.shutdown()
            }
        }
    }

    /// Abort: RSTs on every subflow (with MP_FASTCLOSE and MP_TCPRST under
    /// MPTCP), queued in `rsts`.
    pub fn abort(&mut self) {
        let extra = self.rst_options();
        for i in 0..self.subflow_count() {
            let (tcb, _) = self.parts(i);
            let reply = tcb.abort();
            self.push_rst(i, reply, extra);
        }
    }

    /// Options for the RST of an abort (MP_FASTCLOSE and MP_TCPRST under MPTCP).
    pub fn rst_options(&self) -> OptionBytes {
        self.mp
            .as_deref()
            .map(|m| m.rst_options())
            .unwrap_or_default()
    }

    /// Release the handle; may abort (queued in `rsts`).
    pub fn release(&mut self, now: Instant) {
        match self.active_mp() {
            Some(mp) => {
                if mp.recv_available() > 0 {
                    self.tcb.mark_released();
                    self.abort();
                    return;
                }
                mp.shutdown();
                mp.release();
                self.tcb.mark_released();
            }
            None => {
                let reply = self.tcb.release(now);
                self.push_rst(0, reply, OptionBytes::default());
            }
        }
    }
}
