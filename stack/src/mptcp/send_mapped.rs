//! Subflows that send straight from the data level's send buffer: a subflow's
//! TCB counts the bytes mapped onto it (`tcp::send_queue`) and, for each
//! segment, asks for them by subflow sequence number; its mapping gives the
//! DSN, and the DSN the place in `snd_buf`. One copy less per byte on the
//! sender (the application's bytes are copied into `snd_buf` and from there
//! into each segment, as with plain TCP), as Linux's subflows send the MPTCP
//! socket's pages.
//!
//! The price is that `snd_buf` keeps a byte until no such subflow may send
//! it again — its own acknowledgement, not only the DATA_ACK, which may come
//! first when the byte also went over another subflow. The connection
//! recomputes that bound (`snd_pin`) after each segment and scheduling round.
//! A subflow that would keep bytes for long — it timed out and its data went
//! to the others (it may wait long for its acknowledgement), it holds bytes
//! more than a quarter of the buffer below the DATA_ACK, or the connection
//! fell back to TCP — takes a copy of the bytes it holds instead (`hold_for`)
//! and from then on is given copies, as before; so is every subflow of the
//! `redundant` scheduler, whose subflows each carry every byte.

use super::level::{DataLevel, Phase};
use super::mapping::Mapping;
use super::subflow::SubflowMp;
use crate::tcp::Tcb;
use crate::wire::Dsn;

impl DataLevel {
    /// Whether the subflow should send from `snd_buf` (rather than from
    /// copies of its own).
    pub fn wants_mapped(&self, sf: &SubflowMp) -> bool {
        self.phase != Phase::Fallback
            && !self.redundant
            && !sf.closed
            && !sf.reinjected
            && !sf.stalled
    }

    /// The lowest DSN of the bytes a mapped subflow still holds unacknowledged
    /// (its mappings from the oldest byte of its send queue on; those wholly
    /// acknowledged are forgotten here).
    pub fn subflow_pin(&self, tcb: &Tcb, sf: &mut SubflowMp) -> Option<Dsn> {
        if !tcb.sends_mapped() || tcb.send_queued() == 0 {
            return None;
        }
        sf.tx_map.release_before(tcb.acked_ssn());
        sf.tx_map.lowest_dsn_from(tcb.buf_ssn())
    }

    /// A subflow keeping `pin` would hold bytes too far below the DATA_ACK.
    pub fn pins_too_much(&self, pin: Dsn) -> bool {
        self.snd_una.diff(pin) > (self.snd_buf.capacity() / 4) as i64
    }

    /// The subflow's TCB takes a copy of the bytes it holds (from `snd_buf`,
    /// by its mappings) and keeps its own bytes from then on; false if some
    /// were not found (the TCB then still sends from `snd_buf`).
    pub fn hold_for(&self, tcb: &mut Tcb, sf: &SubflowMp) -> bool {
        let need = tcb.send_queued();
        tcb.hold_sends(|from, ring| {
            let mut at = from;
            for m in sf.tx_map.iter() {
                let left = need - ring.len();
                if left == 0 {
                    break;
                }
                let Some(dsn) = m.dsn_of(at) else {
                    continue;
                };
                let n = (m.ssn_end().wrapping_sub(at) as usize).min(left);
                if dsn.diff(self.snd_buf_dsn) < 0 {
                    return;
                }
                let offset = dsn.since(self.snd_buf_dsn) as usize;
                let mut got = 0;
                for part in self.snd_buf.slices(offset, n) {
                    got += ring.enqueue(part);
                }
                if got != n {
                    return;
                }
                at = at.wrapping_add(n as u32);
            }
        })
    }

    /// The `len` bytes a mapped subflow sends from subflow sequence number
    /// `ssn`, all under one mapping (a segment never crosses a mapping's end):
    /// `known` if it covers `ssn` (the one the segment's DSS carries), else
    /// the subflow's.
    pub fn payload(
        &self,
        sf: &SubflowMp,
        known: Option<&Mapping>,
        ssn: u32,
        len: usize,
    ) -> Option<(&[u8], &[u8])> {
        let m = match known {
            Some(m) if m.contains(ssn) => m,
            _ => sf.tx_map.find(ssn)?,
        };
        if (m.ssn_end().wrapping_sub(ssn) as usize) < len {
            return None;
        }
        let dsn = m.dsn_of(ssn)?;
        if dsn.diff(self.snd_buf_dsn) < 0 {
            return None;
        }
        let offset = dsn.since(self.snd_buf_dsn) as usize;
        if offset + len > self.snd_buf.len() {
            return None;
        }
        Some(self.snd_buf.peek(offset, len))
    }

    /// Nothing queued to send, nor kept for a subflow.
    pub fn send_idle(&self) -> bool {
        self.snd_buf.is_empty() && self.snd_pin.is_none()
    }

    /// Whether `snd_buf` still holds DATA_ACKed bytes (for a mapped subflow).
    pub fn holds_acked(&self) -> bool {
        self.snd_buf_dsn != self.snd_una
    }

    /// The connection recomputed the lowest DSN its mapped subflows need:
    /// free what nobody needs any more.
    pub fn release_sent(&mut self, pin: Option<Dsn>) {
        self.snd_pin = pin;
        self.free_sent();
    }

    /// Free `snd_buf` up to the DATA_ACK, or to the lowest byte a mapped
    /// subflow still needs if that is lower.
    pub(super) fn free_sent(&mut self) {
        let upto = match self.snd_pin {
            Some(p) if p.diff(self.snd_una) < 0 => p,
            _ => self.snd_una,
        };
        let n = upto.diff(self.snd_buf_dsn);
        if n <= 0 {
            return;
        }
        let freed = self.snd_buf.discard(n as usize);
        self.snd_buf_dsn += freed;
        if self.send_was_full && freed > 0 {
            self.send_was_full = false;
            self.writable = true;
        }
    }
}
