//! From subflows to the data stream: each subflow's in-order bytes go by their
//! mappings into the one connection buffer; out-of-order data-level ranges are
//! tracked by an assembler. In-order bytes the reader has no room for yet wait
//! in their subflow; out-of-order ones the data level cannot keep are dropped
//! there, for the peer to send again at the data level (as Linux does). A mapping
//! with a DSS checksum is delivered only whole and verified (RFC 8684 §3.3.1).

use super::action::{Action, Actions};
use super::crypto::DssChecksum;
use super::level::{DataLevel, FallbackReason, Phase};
use super::subflow::SubflowMp;
use crate::memory::Pressure;
use crate::tcp::{State, Tcb};
use crate::time::Instant;
use crate::wire::Dsn;

impl DataLevel {
    /// After the subflow's TCB took a segment (or the application read):
    /// move its in-order bytes to the connection level by their mappings.
    /// `idle_path`: another subflow could carry data and delivered none in
    /// the receive measure under way (see [`Self::path_idle`]).
    pub fn pull(
        &mut self,
        now: Instant,
        tcb: &mut Tcb,
        sf: &mut SubflowMp,
        idle_path: bool,
    ) -> Actions {
        if self.phase == Phase::Fallback || self.remote_key.is_none() || sf.closed {
            return Actions::new();
        }
        if !core::mem::take(&mut self.rx_tuned) {
            self.rcv_space.idle_path = idle_path;
            self.autotune_recv(now, tcb);
        }
        if tcb.recv_available() == 0
            && !self.rx_fallback
            && !self.fallback_deferred
            && !self.released
            && !self.data_fin_ack_owed
        {
            // Nothing left in the subflow (the direct path took the bytes,
            // or a pure ACK): what `pull_mapped` ends with, and no action.
            self.check_data_fin();
            self.cap_window(tcb);
            return Actions::new();
        }
        self.pull_rest(now, tcb, sf)
    }

    /// `pull` with bytes in the subflow or a decision pending.
    #[inline(never)]
    fn pull_rest(&mut self, now: Instant, tcb: &mut Tcb, sf: &mut SubflowMp) -> Actions {
        let mut acts = if self.rx_fallback {
            self.pull_unmapped(tcb);
            Actions::new()
        } else {
            self.pull_mapped(now, tcb, sf)
        };
        if self.fallback_deferred
            && sf.is_initial()
            && matches!(self.phase, Phase::Established | Phase::PreEstablished)
            && acts.is_empty()
        {
            acts.extend(self.decide_deferred_fallback(tcb, sf, false));
        }
        if self.released && !self.rcv_buf.is_empty() {
            // Nobody will read it: abort, as TCP does (RFC 9293 §3.10.7.4).
            acts.push(Action::Abort);
        }
        if core::mem::take(&mut self.data_fin_ack_owed) {
            acts.push(Action::AckAll);
        }
        acts
    }

    fn pull_mapped(&mut self, now: Instant, tcb: &mut Tcb, sf: &mut SubflowMp) -> Actions {
        let mut acts = Actions::new();
        loop {
            let avail = tcb.recv_available();
            if avail == 0 {
                break;
            }
            let ssn = tcb.recv_ssn();
            let Some(m) = sf.rx_map.find(ssn).copied() else {
                if sf.is_initial() {
                    let copy = self.unmapped.droppable(ssn, avail, &sf.rx_map);
                    if copy > 0 {
                        // The peer still speaks MPTCP: a copy stripped of its options.
                        discard(tcb, sf, copy);
                        continue;
                    }
                }
                if sf.is_initial() && (!sf.mapping_seen || (sf.rx_map.is_empty() && !sf.mapped_rx))
                {
                    // The first data without a mapping: options are stripped on
                    // the path (RFC 8684 §3.7).
                    acts.extend(self.fall_back(FallbackReason::NoMapping, tcb));
                } else if sf.is_initial() && sf.rx_map.is_empty() {
                    // Later: a fallen-back peer's stream, or data sent again at
                    // the data level that lost its options. Ask (`unmapped.rs`).
                    self.hold_unmapped(now, tcb);
                } else if (self.checksum || !sf.is_initial())
                    && sf.rx_map.iter().any(|l| l.ssn.wrapping_sub(ssn) as i32 > 0)
                {
                    // These bytes have no mapping while later ones do: theirs
                    // was lost or altered on the way (an altered one that was
                    // taken first makes the true one a contradiction, refused;
                    // on a join, a middlebox stripped the segment's options,
                    // and the subflow acknowledged the bytes, so they never
                    // come again with them). They can never be checked nor
                    // placed, and hold up all that follows on the subflow:
                    // reset rather than wait for ever (RFC 8684 §3.7; Linux
                    // resets a join's subflow on data without a mapping).
                    acts.push(self.unmappable_reset());
                }
                break;
            };
            let in_map = m.ssn_end().wrapping_sub(ssn) as usize;
            let mut n = avail.min(in_map);
            let verified = sf.verified_end == Some(m.ssn_end());
            if self.checksum && m.checksum.is_some() && !verified {
                if ssn != m.ssn {
                    // Part of it was taken under another mapping: its checksum
                    // can never be verified, and the bytes will never be
                    // taken. Reset rather than wait for ever.
                    acts.push(self.unmappable_reset());
                    break;
                }
                if avail < m.len as usize {
                    break;
                }
                let mut sum = DssChecksum::new(m.dsn.0, m.ssn, m.len + m.data_fin as u16);
                let (a, b) = tcb.peek_recv(0, m.len as usize);
                sum.update(a);
                sum.update(b);
                if !sum.verify(m.checksum.unwrap_or(0)) {
                    acts.extend(self.on_checksum_error(now, tcb, sf, &m));
                    if self.rx_fallback {
                        self.pull_unmapped(tcb);
                    }
                    break;
                }
                // The data level may take it in parts (as its buffer frees up).
                sf.verified_end = Some(m.ssn_end());
                n = m.len as usize;
            }
            let dsn = m.dsn + ssn.wrapping_sub(m.ssn) as u64;
            let offset = dsn.diff(self.rcv_nxt);
            if offset < 0 {
                // Already have these bytes (a data-level duplicate): drop them.
                // (Half the DSN space away, the distance has no negation.)
                let dup = usize::try_from(offset.unsigned_abs()).map_or(n, |d| d.min(n));
                discard(tcb, sf, dup);
                continue;
            }
            if offset as u64 >= self.window_limit() {
                // Mapped beyond any window we offered: a peer's error. Drop it
                // at the data level, as Linux does (its NoDSSInWindow); the
                // subflow goes on, and a real sender retransmits at the data
                // level what the DATA_ACK never covered.
                self.stats.bad_mappings += 1;
                discard(tcb, sf, n);
                continue;
            }
            if let Some(end) = self.peer_data_fin.map(|f| f.diff(self.rcv_nxt)) {
                // Mapped past the peer's DATA_FIN: not part of its stream.
                if offset >= end {
                    self.stats.bad_mappings += 1;
                    discard(tcb, sf, n);
                    continue;
                }
                n = n.min((end - offset) as usize);
            }
            let offset = offset as usize;
            let room = self.rcv_buf.free();
            if offset == 0 && room == 0 {
                // In order, and the reader is behind: the bytes wait in the
                // subflow (its own window closes) until a read makes room.
                break;
            }
            let ready = if offset == 0 {
                n = n.min(room);
                let (a, b) = tcb.peek_recv(0, n);
                let ready = self.rcv_buf.enqueue(a) + self.rcv_buf.enqueue(b);
                ready + self.assembler.advance_into(n, &mut self.rcv_buf)
            } else {
                // Out of order: kept if it fits the free space, the holes
                // tracked and the memory left. (`b` continues `a`: it never
                // needs a range of its own.)
                let fit = self.room_for(offset, n).saturating_sub(offset);
                let kept = fit > 0 && self.pressure != Pressure::Exhausted && {
                    n = n.min(fit);
                    let (a, b) = tcb.peek_recv(0, n);
                    let kept = self.assembler.add(offset, a).is_ok();
                    if kept {
                        let _ = self.assembler.add(offset + a.len(), b);
                        self.grow_for(offset + n);
                    }
                    kept
                };
                if !kept {
                    // Dropped at the data level, as Linux drops what lies
                    // beyond its space: the DATA_ACK does not cover it, so
                    // the peer sends it again (RFC 8684 §3.3.6). Left in the
                    // subflow, it would block everything behind it there,
                    // the hole's own retransmission too when the subflow
                    // that lost it is dead.
                    self.stats.ofo_dropped_bytes += n as u64;
                    discard(tcb, sf, n);
                    continue;
                }
                0
            };
            let got = tcb.consume(n);
            debug_assert_eq!(got, n, "the subflow holds {avail} bytes");
            sf.delivered_at = Some(now);
            if ready > 0 {
                self.rcv_nxt += ready;
                self.readable = true;
            }
            sf.rx_map.release_before(tcb.recv_ssn());
        }
        if sf.is_initial() {
            self.unmapped.settle(tcb.recv_ssn());
        }
        self.check_data_fin();
        self.cap_window(tcb);
        acts
    }

    /// Free space out-of-order bytes at `offset..offset + n` may have: the
    /// buffer may grow for them (see [`grow_for`](Self::grow_for)), up to
    /// the largest buffer allowed, unless memory is short.
    fn room_for(&self, offset: usize, n: usize) -> usize {
        let free = self.rcv_buf.free();
        if offset + n <= free || !self.pressure.may_grow() {
            return free;
        }
        let cap = self.rcv_buf.capacity();
        self.rcv_max.max(cap) - self.rcv_buf.len()
    }

    /// Out-of-order bytes kept up to `end` (from `rcv_nxt`): the buffer
    /// grows to take them in order when the hole fills. A peer's idea of
    /// the window may pass the space we have (Linux pairs a new DATA_ACK
    /// with the window it last took from that subflow, and ignores one that
    /// shrank), and these bytes took memory in their subflow already.
    fn grow_for(&mut self, end: usize) {
        let want = self.rcv_buf.len() + end;
        if want > self.rcv_buf.capacity() {
            self.rcv_buf.set_capacity(want);
        }
    }

    /// The peer's plain segment said it fell back while its bytes waited in
    /// the subflow short of the data level (`input.rs`). Once the data level
    /// has taken them all, fall back. If the peer's FIN is in and what is left
    /// can never be taken — no mapping covers it, or a checksummed mapping
    /// runs past the subflow's end, so can never be checked — nothing more
    /// will come on the subflow either: the peer, plain TCP now, sent those
    /// bytes as its stream. Take them as such if every mapping known places
    /// them there (fall back), else reset: waiting would be for ever.
    ///
    /// `timed_out`: the peer went on acknowledging plainly through several
    /// data-level timeouts (see [`Self::deferred_fallback_timeout`]), which
    /// says as much as its FIN: a peer still speaking MPTCP would have
    /// answered one of those repeats with a DSS.
    pub(super) fn decide_deferred_fallback(
        &mut self,
        tcb: &mut Tcb,
        sf: &mut SubflowMp,
        timed_out: bool,
    ) -> Actions {
        let avail = tcb.recv_available();
        if avail == 0 {
            self.fallback_deferred = false;
            return self.fall_back(FallbackReason::NoDataAck, tcb);
        }
        if !sf.fin_seen && !timed_out {
            return Actions::new();
        }
        let ssn = tcb.recv_ssn();
        let never_taken = match sf.rx_map.find(ssn) {
            None => true,
            Some(m) => {
                self.checksum
                    && m.checksum.is_some()
                    && sf.verified_end != Some(m.ssn_end())
                    && m.ssn_end().wrapping_sub(ssn) as usize > avail
            }
        };
        if !never_taken {
            // Waiting for the application to read: the data level takes the
            // rest as its buffer frees up.
            return Actions::new();
        }
        self.fallback_deferred = false;
        let raw_is_stream = self.assembler.is_empty()
            && sf.rx_map.iter().all(|k| {
                let off = k.ssn.wrapping_sub(ssn) as i32 as i64;
                k.dsn == Dsn(self.rcv_nxt.0.wrapping_add(off as u64))
            });
        if raw_is_stream {
            self.fall_back(FallbackReason::NoDataAck, tcb)
        } else {
            vec![self.unmappable_reset()]
        }
    }

    /// In receive fallback: the subflow's bytes are the data stream, in order.
    fn pull_unmapped(&mut self, tcb: &mut Tcb) {
        let n = tcb.recv_available().min(self.rcv_buf.free());
        if n > 0 {
            for part in tcb.recv_slices(0, n) {
                self.rcv_buf.enqueue(part);
            }
            tcb.consume(n);
            self.rcv_nxt += n;
            self.readable = true;
        }
        self.check_data_fin();
        self.cap_window(tcb);
    }

    /// The subflow's window is the connection's (RFC 8684 §3.3.5): what the
    /// connection buffer can still take.
    fn cap_window(&mut self, tcb: &mut Tcb) {
        tcb.set_window_cap(Some(self.rcv_buf.free()));
    }

    /// The window bound for a segment any subflow is about to send: the
    /// connection buffer's free space now. A subflow's own cap dates from
    /// its last delivery; offered with a newer DATA_ACK after another
    /// subflow filled the buffer, it would promise room that is not there
    /// (and a peer keeps the furthest edge it saw).
    /// Whether this subflow could carry the peer's data (established,
    /// joined, not given up) yet delivered none since the receive measure
    /// under way began: the window may be what keeps the peer's scheduler
    /// off it (a sender fills its fastest path first, and one that spills
    /// onto a backup path only when the others are full — `overflow` —
    /// needs a window larger than they hold).
    pub fn path_idle(&self, tcb: &Tcb, sf: &SubflowMp) -> bool {
        let usable = sf.join_established()
            && !sf.closed
            && !sf.stalled
            && matches!(
                tcb.state(),
                State::Established | State::FinWait1 | State::FinWait2
            );
        usable
            && sf
                .delivered_at
                .is_none_or(|t| t < self.rcv_space.measure_start())
    }

    pub(super) fn window_cap_now(&self) -> Option<usize> {
        (self.phase != Phase::Fallback && !self.rx_fallback).then(|| self.rcv_buf.free())
    }

    /// The application read: take more from the subflow and, if the window
    /// opened materially beyond what this subflow last offered, tell the
    /// peer on it. Each subflow is judged by its own last offer: a subflow
    /// that offered nothing would otherwise wait for the peer's persist
    /// probes while another subflow's ACK carried the news.
    pub fn after_read(
        &mut self,
        now: Instant,
        tcb: &mut Tcb,
        sf: &mut SubflowMp,
        idle_path: bool,
    ) -> Actions {
        let acts = self.pull(now, tcb, sf, idle_path);
        if !tcb.takes_window_updates() {
            return acts;
        }
        let offered = tcb.offered_window();
        let free = self.rcv_buf.free();
        let step = (self.rcv_buf.capacity() / 4).max(1);
        let mss2 = 2 * tcb.mss();
        if free >= offered + step || (offered < mss2 && free >= mss2) {
            tcb.force_ack();
        }
        acts
    }
}

/// Drop the next `n` bytes of the subflow's receive buffer, never to reach
/// the data level (duplicates, and bytes it refuses), with the mappings they
/// used up.
fn discard(tcb: &mut Tcb, sf: &mut SubflowMp, n: usize) {
    tcb.consume(n);
    sf.rx_map.release_before(tcb.recv_ssn());
}
