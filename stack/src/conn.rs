//! One connection as the application sees it: a TCP connection, or an MPTCP
//! connection whose (for now single) subflow is that TCP connection. The endpoint
//! talks only to this type; it routes each call to the MPTCP level when there is
//! one and it has not fallen back to plain TCP.

use crate::mptcp::connection::{MptcpConn, SubflowHooks};
use crate::tcp::hooks::OptionBytes;
use crate::tcp::state::CloseReason;
use crate::tcp::tcb::{RstReply, TcbEvents, Transmit};
use crate::tcp::{State, Tcb};
use crate::time::Instant;
use crate::wire::TcpRepr;

#[derive(Debug)]
pub struct Connection {
    pub tcb: Tcb,
    pub mp: Option<Box<MptcpConn>>,
}

impl Connection {
    pub fn tcp(tcb: Tcb) -> Self {
        Connection { tcb, mp: None }
    }

    pub fn mptcp(tcb: Tcb, mp: MptcpConn) -> Self {
        Connection {
            tcb,
            mp: Some(Box::new(mp)),
        }
    }

    /// The MPTCP level, unless absent or fallen back to TCP.
    fn active_mp(&mut self) -> Option<&mut MptcpConn> {
        self.mp.as_deref_mut().filter(|m| !m.is_fallback())
    }

    pub fn state(&self) -> State {
        self.tcb.state()
    }

    pub fn on_segment(&mut self, now: Instant, seg: &TcpRepr<'_>) -> Option<RstReply> {
        if let Some(mp) = self.mp.as_deref_mut() {
            mp.on_segment(0, &mut self.tcb, seg);
        }
        if let Some(mp) = self.mp.as_deref_mut() {
            if mp.take_fastclose() {
                if seg.flags.rst() {
                    // The RST itself resets the subflow if it is acceptable.
                    let _ = self.tcb.on_segment(now, seg);
                    return None;
                }
                return self.tcb.reset_by_peer();
            }
        }
        let rst = self.tcb.on_segment(now, seg);
        if let Some(mp) = self.mp.as_deref_mut() {
            mp.pull(0, &mut self.tcb);
            if mp.must_reset() && self.tcb.state() != State::Closed {
                // Corrupted data must never reach the application.
                return self.tcb.reset_by_peer();
            }
        }
        rst
    }

    pub fn poll_transmit(&mut self, now: Instant, hop: u8, buf: &mut [u8]) -> Option<Transmit> {
        match self.mp.as_deref_mut() {
            Some(mp) => {
                mp.push(now, 0, &mut self.tcb);
                let mut hooks = SubflowHooks { conn: mp, i: 0 };
                self.tcb.poll_transmit_with(now, hop, buf, &mut hooks)
            }
            None => self.tcb.poll_transmit(now, hop, buf),
        }
    }

    pub fn poll_at(&self) -> Option<Instant> {
        let mp = self.mp.as_deref().and_then(|m| m.poll_at());
        match (self.tcb.poll_at(), mp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn on_timeout(&mut self, now: Instant) -> Option<RstReply> {
        if let Some(mp) = self.mp.as_deref_mut() {
            mp.on_timeout(now, &mut self.tcb);
        }
        if self.mp.as_deref().is_some_and(|m| m.must_reset()) && self.tcb.state() != State::Closed {
            return self.tcb.reset_by_peer();
        }
        if self.tcb.poll_at().is_some_and(|t| t <= now) {
            self.tcb.on_timeout(now)
        } else {
            None
        }
    }

    /// Events for the application: the data-level ones come from the MPTCP level.
    pub fn take_events(&mut self) -> TcbEvents {
        let mut ev = self.tcb.take_events();
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
        if !self.tcb.state().can_send() {
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
        if let Some(mp) = self.mp.as_deref_mut() {
            if !mp.is_fallback() {
                return match mp.recv(buf) {
                    Some(n) if n > 0 => {
                        mp.after_read(0, &mut self.tcb);
                        Ok(n)
                    }
                    None => Err(true),
                    Some(_) => match self.tcb.close_reason() {
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

    pub fn wants_ack(&self) -> bool {
        self.tcb.wants_ack()
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

    pub fn abort(&mut self) -> Option<RstReply> {
        self.tcb.abort()
    }

    /// Options for the RST of an abort (MP_FASTCLOSE and MP_TCPRST under MPTCP).
    pub fn rst_options(&self) -> OptionBytes {
        self.mp
            .as_deref()
            .map(|m| m.rst_options())
            .unwrap_or_default()
    }

    /// Options for a RST that `on_segment` or `on_timeout` decided on (MP_FAIL
    /// and MP_TCPRST after a checksum failure that could not fall back).
    pub fn reset_options(&self) -> OptionBytes {
        self.mp
            .as_deref()
            .map(|m| m.reset_options())
            .unwrap_or_default()
    }

    pub fn release(&mut self, now: Instant) -> Option<RstReply> {
        match self.active_mp() {
            Some(mp) => {
                if mp.recv_available() > 0 {
                    self.tcb.mark_released();
                    return self.tcb.abort();
                }
                mp.shutdown();
                mp.release();
                self.tcb.mark_released();
                None
            }
            None => self.tcb.release(now),
        }
    }
}
