//! SEGMENT ARRIVES (RFC 9293 §3.10.7), with PAWS (RFC 7323 §5) and the RFC 5961
//! checks against blind resets, SYNs and data injection.

use super::Tcb;
use crate::memory::Pressure;
use crate::tcp::hooks::{InOrder, NoHooks, TextHooks};
use crate::tcp::ratelimit::ChallengeQuota;
use crate::tcp::state::CloseReason;
use crate::tcp::State;
use crate::time::Instant;
use crate::wire::{SeqNumber, TcpRepr};
use core::time::Duration;

/// A RST the endpoint must send on the TCB's behalf (the TCB may be gone by then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RstReply {
    pub seq: SeqNumber,
    /// `Some(ack)`: RST+ACK acknowledging `ack`.
    pub ack: Option<SeqNumber>,
}

/// What the TCB made of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// The segment passed every check a blind attacker cannot pass — in the
    /// receive window, an acceptable ACK (RFC 9293 §3.10.7.4, RFC 5961), PAWS
    /// (RFC 7323); in SYN_SENT, a SYN/ACK or RST acknowledging our SYN; a RST
    /// exactly at `rcv_nxt` — and was processed. Only then may a protocol
    /// layered on TCP act on the segment's options.
    pub acceptable: bool,
    /// A RST to send in reply.
    pub rst: Option<RstReply>,
}

impl Verdict {
    const DROPPED: Verdict = Verdict {
        acceptable: false,
        rst: None,
    };
    const ACCEPTED: Verdict = Verdict {
        acceptable: true,
        rst: None,
    };

    fn refused(rst: RstReply) -> Verdict {
        Verdict {
            acceptable: false,
            rst: Some(rst),
        }
    }
}

/// Bound on duplicate ACKs queued within one batch of arrivals.
const MAX_EXTRA_ACKS: u8 = 8;
/// Challenge ACKs allowed per second and connection (RFC 5961 §7); the stack
/// also holds a quota for all connections together.
const CHALLENGE_ACK_LIMIT: u32 = 10;
/// At most one duplicate ACK per this interval in answer to segments without
/// data that are out of the window or fail PAWS (Linux's
/// `tcp_invalid_ratelimit`): a spray of blind segments gets little back.
pub(crate) const OOW_ACK_INTERVAL: Duration = Duration::from_millis(500);
/// TS.Recent older than this is not used for PAWS (RFC 7323 §5.5).
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

fn seg_len(seg: &TcpRepr<'_>) -> usize {
    seg.payload.len() + seg.flags.syn() as usize + seg.flags.fin() as usize
}

impl Tcb {
    /// Process one segment addressed to this connection; `quota` is the
    /// stack-wide budget of challenge ACKs.
    pub fn on_segment(
        &mut self,
        now: Instant,
        seg: &TcpRepr<'_>,
        quota: &mut ChallengeQuota,
    ) -> Verdict {
        self.on_segment_with(now, seg, quota, &mut NoHooks)
    }

    /// As [`on_segment`](Self::on_segment), offering in-order payload to
    /// `text` before keeping it (see [`TextHooks`]).
    pub fn on_segment_with(
        &mut self,
        now: Instant,
        seg: &TcpRepr<'_>,
        quota: &mut ChallengeQuota,
        text: &mut dyn TextHooks,
    ) -> Verdict {
        self.stats.segments_in += 1;
        match self.state {
            State::Closed | State::Listen => Verdict::DROPPED,
            State::SynSent => self.on_segment_syn_sent(now, seg),
            _ => self.on_segment_synchronized(now, seg, quota, text),
        }
    }

    fn on_segment_syn_sent(&mut self, now: Instant, seg: &TcpRepr<'_>) -> Verdict {
        let f = seg.flags;
        if f.ack() && (seg.ack.diff(self.iss) <= 0 || seg.ack.diff(self.snd_max) > 0) {
            if f.rst() {
                return Verdict::DROPPED;
            }
            return Verdict::refused(RstReply {
                seq: seg.ack,
                ack: None,
            });
        }
        if f.rst() {
            if f.ack() {
                self.close(CloseReason::Refused);
                return Verdict::ACCEPTED;
            }
            return Verdict::DROPPED;
        }
        if !f.syn() {
            return Verdict::DROPPED;
        }
        self.take_syn(now, seg);
        if f.ack() {
            // Our SYN is acknowledged: sample its RTT unless it was retransmitted.
            if self.retries == 0 {
                if let Some((_, sent)) = self.rtt_probe.take() {
                    self.rtt.sample(now, now.saturating_since(sent));
                }
            }
            self.snd_una = seg.ack;
            self.snd_wl2 = seg.ack;
            self.establish(now);
            self.ack_now = true;
            Verdict::ACCEPTED
        } else {
            // Simultaneous open: answer with a SYN/ACK carrying our original ISS.
            // Nothing vouches for a bare SYN: its options are not for others.
            self.state = State::SynReceived;
            self.snd_nxt = self.iss;
            Verdict::DROPPED
        }
    }

    fn establish(&mut self, now: Instant) {
        self.state = if self.fin_queued {
            State::FinWait1
        } else {
            State::Established
        };
        self.events.established = true;
        self.retries = 0;
        self.backoff = 0;
        self.rto_at = if self.snd_una == self.snd_max {
            None
        } else {
            Some(now + self.rtt.rto())
        };
        self.arm_keepalive(now);
    }

    fn challenge_ack(&mut self, now: Instant, quota: &mut ChallengeQuota) {
        let (start, count) = self.challenge_window;
        if now.saturating_since(start) >= Duration::from_secs(1) {
            self.challenge_window = (now, 0);
        } else if count >= CHALLENGE_ACK_LIMIT {
            return;
        }
        if !quota.take(now) {
            self.stats.challenge_acks_limited += 1;
            return;
        }
        self.challenge_window.1 += 1;
        self.stats.challenge_acks += 1;
        self.ack_now = true;
    }

    /// A duplicate ACK for an unacceptable segment: always for one with
    /// data (it may be a retransmission after our ACK was lost), at most one
    /// per [`OOW_ACK_INTERVAL`] otherwise.
    fn oow_ack(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        if !seg.payload.is_empty() && !seg.flags.syn() {
            self.ack_now = true;
            return;
        }
        if self
            .oow_ack_at
            .is_some_and(|t| now.saturating_since(t) < OOW_ACK_INTERVAL)
        {
            self.stats.oow_acks_limited += 1;
            return;
        }
        self.oow_ack_at = Some(now);
        self.ack_now = true;
    }

    /// A segment whose data all came before (below `rcv_nxt`): D-SACK it
    /// (RFC 2883) if the peer does SACK and it is recent enough to be a
    /// retransmission of ours rather than a stray.
    fn note_duplicate(&mut self, seg: &TcpRepr<'_>) {
        let len = seg.payload.len();
        if !self.sack_ok || len == 0 || seg.flags.syn() {
            return;
        }
        let end = seg.seq + len;
        let recent = self.rcv_nxt.since(seg.seq) <= self.recv_buf.capacity().max(1 << 16);
        if end.diff(self.rcv_nxt) > 0 || seg.seq.diff(self.rcv_nxt) >= 0 || !recent {
            return;
        }
        self.note_dsack(seg.seq, end);
    }

    /// Report `lo..hi`, received before, as the next ACK's D-SACK block. A
    /// run of duplicates (a burst the sender thought lost) goes out as one
    /// block, so that the sender learns of all of them from one ACK.
    fn note_dsack(&mut self, lo: SeqNumber, hi: SeqNumber) {
        self.dsack = Some(match self.dsack {
            Some((a, b)) if lo.diff(b) <= 0 && hi.diff(a) >= 0 => {
                let lo = if lo.diff(a) < 0 { lo } else { a };
                let hi = if hi.diff(b) > 0 { hi } else { b };
                (lo, hi)
            }
            _ => (lo, hi),
        });
    }

    fn rcv_wnd(&self) -> usize {
        self.rcv_adv.since(self.rcv_nxt)
    }

    /// A duplicate pure ACK that PAWS would drop only because the path
    /// reordered it behind a later ACK (Linux's `tcp_disordered_ack`): it
    /// moves nothing (exactly at rcv_nxt, acking snd_una, the same window)
    /// and is stamped within one RTO of TS.Recent, so it can be no replay of
    /// an old incarnation. Its options still matter: an MPTCP signal (MP_FAIL,
    /// ADD_ADDR) rides on pure ACKs and must not be lost to a reorder.
    fn disordered_ack(&self, seg: &TcpRepr<'_>, tsval: u32) -> bool {
        let f = seg.flags;
        if !f.ack() || f.syn() || f.fin() || !seg.payload.is_empty() {
            return false;
        }
        if seg.seq != self.rcv_nxt || seg.ack != self.snd_una {
            return false;
        }
        // Its window must be the one in force: `update_window` would take
        // it (same seq and ack as the newer ACK), and an older, smaller one
        // — a zero window the peer has since reopened — would stall us.
        let wnd = (seg.window as usize) << self.snd_wscale;
        let updates_window =
            seg.seq.diff(self.snd_wl1) > 0 || (seg.seq == self.snd_wl1 && wnd != self.snd_wnd);
        if updates_window {
            return false;
        }
        let behind = self.ts_recent.wrapping_sub(tsval);
        (behind as u64) <= self.rto().as_millis() as u64
    }

    /// Whether the segment passes the first check of an established
    /// connection (some of it inside the receive window): only such a
    /// segment may act on the connection, since a blind sender cannot
    /// guess one.
    pub fn in_window(&self, seg: &TcpRepr<'_>) -> bool {
        self.state.is_synchronized() && self.acceptable(seg)
    }

    /// RFC 9293 §3.10.7.4 first check: is any of the segment inside the window?
    fn acceptable(&self, seg: &TcpRepr<'_>) -> bool {
        let len = seg_len(seg);
        let wnd = self.rcv_wnd();
        let seq = seg.seq;
        let wnd_end = self.rcv_nxt + wnd;
        match (len, wnd) {
            (0, 0) => seq == self.rcv_nxt,
            (0, _) => seq.in_range(self.rcv_nxt, wnd_end),
            (_, 0) => false,
            (_, _) => {
                seq.in_range(self.rcv_nxt, wnd_end)
                    || (seq + (len - 1)).in_range(self.rcv_nxt, wnd_end)
            }
        }
    }

    fn on_segment_synchronized(
        &mut self,
        now: Instant,
        seg: &TcpRepr<'_>,
        quota: &mut ChallengeQuota,
        text: &mut dyn TextHooks,
    ) -> Verdict {
        let f = seg.flags;

        if self.state == State::TimeWait {
            return self.on_segment_time_wait(now, seg, quota);
        }

        // The peer retransmitted its SYN: our SYN/ACK was lost, send it again. This
        // precedes the window check, which a SYN at irs (below rcv_nxt) always fails.
        if self.state == State::SynReceived
            && f.syn()
            && !f.ack()
            && !f.rst()
            && seg.seq == self.irs
        {
            self.snd_nxt = self.iss;
            return Verdict::DROPPED;
        }

        // Simultaneous open completed by the peer's SYN/ACK (RFC 9293 Figure 7):
        // it repeats the SYN at irs, so the window check below would drop it.
        if self.state == State::SynReceived
            && f.syn()
            && f.ack()
            && !f.rst()
            && seg.seq == self.irs
            && seg.ack.diff(self.snd_una) > 0
            && seg.ack.diff(self.snd_max) <= 0
        {
            self.snd_una = seg.ack;
            // The window of a SYN is never scaled (RFC 7323 §2.2).
            self.snd_wnd = seg.window as usize;
            self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
            self.establish(now);
            self.ack_now = true;
            return Verdict::ACCEPTED;
        }

        // PAWS (RFC 7323 §5.3).
        if self.ts_ok && !f.rst() {
            if let Some((tsval, _)) = seg.timestamp {
                let idle = now.saturating_since(self.ts_recent_at) > PAWS_IDLE;
                if !idle
                    && (tsval.wrapping_sub(self.ts_recent) as i32) < 0
                    && !self.disordered_ack(seg, tsval)
                {
                    self.stats.drop_paws += 1;
                    self.oow_ack(now, seg);
                    return Verdict::DROPPED;
                }
            }
        }

        if !self.acceptable(seg) {
            // A zero window still admits a pure ACK or RST exactly at rcv_nxt.
            let zero_window_ok = self.rcv_wnd() == 0 && seg.seq == self.rcv_nxt && f.ack();
            if !zero_window_ok {
                if !f.rst() {
                    self.stats.drop_out_of_window += 1;
                    self.note_duplicate(seg);
                    self.oow_ack(now, seg);
                }
                return Verdict::DROPPED;
            }
        }

        if f.rst() {
            // RFC 5961 §3.2: only an exact match resets; otherwise challenge.
            if seg.seq == self.rcv_nxt {
                let reason = if self.state == State::SynReceived && !self.passive {
                    CloseReason::Refused
                } else {
                    CloseReason::Reset
                };
                self.close(reason);
                return Verdict::ACCEPTED;
            }
            self.challenge_ack(now, quota);
            return Verdict::DROPPED;
        }

        if f.syn() {
            // RFC 5961 §4: a SYN in a synchronized state gets a challenge ACK.
            self.challenge_ack(now, quota);
            return Verdict::DROPPED;
        }

        if !f.ack() {
            return Verdict::DROPPED;
        }

        if self.state == State::SynReceived {
            if seg.ack.diff(self.snd_una) > 0 && seg.ack.diff(self.snd_max) <= 0 {
                self.snd_wnd = (seg.window as usize) << self.snd_wscale;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = seg.ack;
                self.establish(now);
            } else {
                return Verdict::refused(RstReply {
                    seq: seg.ack,
                    ack: None,
                });
            }
        }

        // RFC 5961 §5.2 ACK validation.
        if seg.ack.diff(self.snd_max) > 0 {
            self.oow_ack(now, seg);
            return Verdict::DROPPED;
        }
        let lower = self.snd_una - self.max_snd_wnd.clamp(1, 1 << 30);
        if seg.ack.diff(lower) < 0 {
            self.challenge_ack(now, quota);
            return Verdict::DROPPED;
        }

        // RFC 7323 §4.3: remember the timestamp to echo.
        if self.ts_ok {
            if let Some((tsval, _)) = seg.timestamp {
                if seg.seq.diff(self.last_ack_sent) <= 0
                    && (tsval.wrapping_sub(self.ts_recent) as i32) >= 0
                {
                    self.ts_recent = tsval;
                    self.ts_recent_at = now;
                }
            }
        }

        self.on_ack(now, seg);
        if self.state == State::Closed {
            return Verdict::ACCEPTED;
        }

        let fin_acked = self.fin_acked();
        match self.state {
            State::FinWait1 if fin_acked => {
                self.state = State::FinWait2;
                if self.released {
                    self.fin_wait2_at = Some(now + self.cfg.msl * 2);
                }
            }
            State::Closing if fin_acked => self.enter_time_wait(now),
            State::LastAck if fin_acked => {
                self.close(CloseReason::Normal);
                return Verdict::ACCEPTED;
            }
            _ => {}
        }

        self.ka_probes = 0;
        self.arm_keepalive(now);

        if matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            if !seg.payload.is_empty() && self.reset_on_orphan_data {
                // Nobody will read this: tell the peer (RFC 9293 §3.10.7.4).
                let rst = self.abort().map(|r| RstReply {
                    seq: self.snd_nxt.max(r.seq),
                    ack: None,
                });
                return Verdict {
                    acceptable: true,
                    rst,
                };
            }
            self.on_text(now, seg, text);
        }
        Verdict::ACCEPTED
    }

    /// Place payload (and note a FIN) in the receive buffer.
    fn on_text(&mut self, now: Instant, seg: &TcpRepr<'_>, text: &mut dyn TextHooks) {
        let mut seq = seg.seq;
        let mut data = seg.payload;
        if seg.flags.syn() {
            seq += 1;
        }
        if seg.flags.fin() && self.peer_fin.is_none() {
            let fin_seq = seq + data.len();
            if fin_seq.diff(self.rcv_nxt) >= 0 {
                self.peer_fin = Some(fin_seq);
            }
        }
        // Trim what we already have, and report it (RFC 2883 §4.1.2: a
        // segment, or a receiver's coalesced super-packet, that straddles
        // rcv_nxt is partly a duplicate).
        let dup = self.rcv_nxt.since(seq).min(data.len());
        if self.rcv_nxt.diff(seq) > 0 {
            if dup > 0 && self.sack_ok && !seg.flags.syn() {
                self.note_dsack(seq, seq + dup);
            }
            data = &data[dup..];
            seq = self.rcv_nxt;
        }
        let offset = seq.since(self.rcv_nxt);
        let room = self.recv_buf.free().saturating_sub(offset);
        if data.len() > room {
            data = &data[..room];
        }
        let had_holes = !self.assembler.is_empty();
        if !data.is_empty() {
            // In order into an empty buffer: the layer above may take it
            // straight from the segment.
            let offer =
                offset == 0 && !had_holes && self.recv_buf.is_empty() && text.wants_in_order();
            let taken = if offer {
                // Sampled first: the layer above tunes its buffer with it.
                self.measure_rcv_rtt(now, seg);
                let at = InOrder {
                    ssn: self.rcv_nxt.0.wrapping_sub(self.irs.0),
                    rcv_rtt: self.rcv_rtt(),
                    min_rtt: self.min_rtt(),
                    mss: self.mss(),
                };
                let n = text.take_in_order(&at, data).min(data.len());
                // Placed and read at once: as `consume` counts it.
                self.bytes_read += n as u64;
                n
            } else {
                0
            };
            let rest = &data[taken..];
            let ready = if rest.is_empty() {
                taken
            } else if offset == 0 {
                // In order: always accepted, however many holes are tracked.
                let queued = self.recv_buf.enqueue(rest);
                debug_assert_eq!(queued, rest.len());
                self.events.readable = true;
                taken + queued + self.assembler.advance_into(rest.len(), &mut self.recv_buf)
            } else {
                if self.pressure == Pressure::Exhausted {
                    // Out of memory: the sender will send it again (and it
                    // was never SACKed, so it may be dropped).
                    self.stats.drop_ooo_memory += 1;
                    self.ack_now = true;
                    return;
                }
                if self.assembler.add(offset, data).is_err() {
                    self.stats.drop_ooo_overflow += 1;
                    self.ack_now = true;
                    return;
                }
                self.last_ooo = Some(seq);
                0
            };
            if ready > 0 && !offer {
                self.measure_rcv_rtt(now, seg);
            }
            self.autotune_recv(now);
            if ready > 0 {
                // Bytes a reader took at once leave nothing to read (the
                // application is told of those queued, above).
                self.rcv_nxt += ready;
                self.stats.bytes_received += ready as u64;
            }
        }
        // The peer's FIN, once everything before it has arrived.
        let mut fin_now = false;
        if let Some(fin) = self.peer_fin {
            if fin == self.rcv_nxt {
                self.rcv_nxt += 1;
                fin_now = true;
            }
        }

        if fin_now || seg.payload.is_empty() {
            // A FIN is acknowledged below; a pure ACK needs no answer.
        } else if offset > 0 || had_holes || data.len() < seg.payload.len() {
            // Out of order, filling a hole, duplicate or beyond the window: ACK at
            // once (RFC 5681 §4.2) so the sender learns of it.
            if self.ack_now {
                self.extra_acks = self.extra_acks.saturating_add(1).min(MAX_EXTRA_ACKS);
            }
            self.ack_now = true;
        } else {
            // Counted in full-sized segments: a super-packet the host's GRO
            // merged (the daemon hands those over whole) is many.
            self.segs_unacked += data.len().div_ceil(self.rcv_mss.max(1));
            match self.cfg.delayed_ack {
                Some(delay) if self.segs_unacked < 2 => {
                    if self.delack_at.is_none() {
                        self.delack_at = Some(now + delay);
                    }
                }
                _ => self.ack_now = true,
            }
        }

        if fin_now {
            self.ack_now = true;
            self.events.readable = true;
            match self.state {
                State::SynReceived | State::Established => self.state = State::CloseWait,
                State::FinWait1 => {
                    if self.fin_acked() {
                        self.enter_time_wait(now);
                    } else {
                        self.state = State::Closing;
                    }
                }
                State::FinWait2 => self.enter_time_wait(now),
                _ => {}
            }
        }
    }

    /// TIME_WAIT: nothing here is news to a layered protocol (dropped).
    fn on_segment_time_wait(
        &mut self,
        now: Instant,
        seg: &TcpRepr<'_>,
        quota: &mut ChallengeQuota,
    ) -> Verdict {
        let f = seg.flags;
        if f.rst() {
            // RFC 1337: ignore RSTs in TIME_WAIT.
            return Verdict::DROPPED;
        }
        if f.syn() {
            self.challenge_ack(now, quota);
            return Verdict::DROPPED;
        }
        // Anything else is a retransmission from a peer that missed our last ACK
        // (usually of its FIN): acknowledge it again (rate-limited, as anything
        // without data is). A FIN restarts the 2MSL wait.
        self.oow_ack(now, seg);
        if f.fin() {
            self.timewait_at = Some(now + self.cfg.msl * 2);
        }
        Verdict::DROPPED
    }
}
