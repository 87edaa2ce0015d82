//! What the connection sends next: SYN or SYN/ACK, loss-recovery retransmissions
//! (RFC 6675 NextSeg), new data under the congestion and receive windows with Nagle
//! and sender-side silly window avoidance, probes, and ACKs.

use super::{PayloadRef, Tcb, Transmit};
use crate::tcp::hooks::{NoHooks, OptionBytes, OutSegment, SegmentHooks, SegmentKind};
use crate::tcp::State;
use crate::time::Instant;
use crate::wire::{self, SeqNumber, TcpFlags, TcpRepr, TxChecksum};

/// A range of sequence space to put in one segment.
#[derive(Debug, Clone, Copy)]
struct Plan {
    seq: SeqNumber,
    /// Sequence space to cover at most (data, plus one for a FIN).
    max_len: usize,
    fin_allowed: bool,
    /// Full-sized segments it may hold when the device segments (TSO).
    burst: usize,
}

/// The largest IP packet: a super-packet for the device to segment must fit
/// IPv4's total length field (and IPv6's payload length) too.
const MAX_IP_PACKET: usize = 0xffff;

/// A super-packet holds about this much of the connection's sending time
/// (Linux's `tcp_tso_autosize`: its pacing rate shifted by
/// `sk_pacing_shift`, about 1 ms), and at least [`MIN_BURST`] segments.
const BURST_TIME_US: u128 = 1_000;
const MIN_BURST: usize = 2;

impl Tcb {
    /// Write the next segment, if any, as an IP packet into `buf`.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        hop_limit: u8,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        self.poll_transmit_with(now, hop_limit, buf, &mut NoHooks, 1)
    }

    /// `poll_transmit` with a layered protocol's hooks adding options to segments.
    ///
    /// With `burst` above 1 the device segments for us (TSO): new data may go
    /// out as one super-packet of up to `burst` full-sized segments with
    /// identical headers, which the device cuts at `Transmit::segment_size`,
    /// setting each piece's sequence number, and PSH and FIN on the last one
    /// only — as Linux's TCP hands its device one skb of several segments.
    pub fn poll_transmit_with(
        &mut self,
        now: Instant,
        hop_limit: u8,
        buf: &mut [u8],
        hooks: &mut dyn SegmentHooks,
        burst: usize,
    ) -> Option<Transmit> {
        match self.state {
            State::Closed | State::Listen => return None,
            State::SynSent | State::SynReceived => {
                if self.snd_nxt == self.iss {
                    return self.emit_syn(now, hop_limit, buf, hooks);
                }
                if self.state == State::SynReceived && self.ack_now {
                    return self.emit_ack(now, hop_limit, buf, hooks);
                }
                return None;
            }
            State::TimeWait => {
                if self.ack_now {
                    return self.emit_ack(now, hop_limit, buf, hooks);
                }
                return None;
            }
            _ => {}
        }
        if let Some(plan) = self.next_retransmission() {
            if let Some(t) = self.emit_plan(now, hop_limit, buf, hooks, plan) {
                self.rtx_una = false;
                return Some(t);
            }
        }
        if let Some(plan) = self.next_segment(burst) {
            if let Some(t) = self.emit_plan(now, hop_limit, buf, hooks, plan) {
                return Some(t);
            }
        }
        if self.zwp_pending {
            self.zwp_pending = false;
            if self.snd_una.diff(self.data_end()) < 0 {
                let plan = Plan {
                    seq: self.snd_una,
                    max_len: 1,
                    fin_allowed: false,
                    burst: 1,
                };
                let t = self.emit_plan(now, hop_limit, buf, hooks, plan);
                self.zwp_outstanding |= t.is_some() && self.snd_max.since(self.snd_una) == 1;
                return t;
            }
        }
        // An ACK owed goes before a probe: acceptable, it updates the
        // timestamp the peer echoes (RFC 7323 §4.3), and the answer to the
        // probe (unacceptable, so echoing the last acceptable one) then
        // shows that the peer saw it (`answers_since`).
        if self.ack_now {
            return self.emit_ack(now, hop_limit, buf, hooks);
        }
        if self.ka_probe_pending {
            self.ka_probe_pending = false;
            // An old sequence number forces the peer to answer (RFC 9293 §3.8.4).
            let seq = self.snd_una - 1;
            return self.emit_segment(now, hop_limit, buf, hooks, seq, TcpFlags::ACK, 0, false, 1);
        }
        // Data waits on a zero window with nothing in flight: the persist timer
        // must run or nothing would ever reopen the window.
        if self.rto_at.is_none()
            && self.snd_wnd == 0
            && self.snd_nxt == self.snd_una
            && self.snd_una.diff(self.data_end()) < 0
        {
            self.rto_at = Some(now + self.rtt.backed_off(self.backoff));
        }
        None
    }

    /// [`poll_transmit_with`](Self::poll_transmit_with), leaving a data
    /// segment's payload out of the packet when the device completes
    /// checksums ([`TxChecksum::Partial`]): only its headers are written
    /// into `buf`, and [`Transmit::payload`] says where its bytes are, for
    /// a gather write straight from where they are held (the copy into
    /// `buf` was a third of a sender's work). Until this connection changes
    /// again, [`held_payload`](Self::held_payload) (or the layer above, for
    /// a mapped subflow) gives those bytes.
    pub fn poll_transmit_by_ref(
        &mut self,
        now: Instant,
        hop_limit: u8,
        buf: &mut [u8],
        hooks: &mut dyn SegmentHooks,
        burst: usize,
    ) -> Option<Transmit> {
        self.payload_by_ref = self.cfg.tx_checksum == TxChecksum::Partial;
        let t = self.poll_transmit_with(now, hop_limit, buf, hooks, burst);
        self.payload_by_ref = false;
        t
    }

    /// The bytes of a payload left out by
    /// [`poll_transmit_by_ref`](Self::poll_transmit_by_ref), if this TCB
    /// holds them (a mapped subflow's are the layer above's).
    pub fn held_payload(&self, r: PayloadRef) -> Option<(&[u8], &[u8])> {
        let offset = r.seq.since(self.buf_seq);
        self.send_buf.peek(offset, r.len)
    }

    /// Whether anything would be sent now (cheap check for the endpoint).
    pub fn wants_ack(&self) -> bool {
        self.ack_now
    }

    /// Loss recovery: the segment at snd_una first, then RFC 6675 NextSeg rule 1.
    fn next_retransmission(&mut self) -> Option<Plan> {
        if self.rtx_una {
            let mut seq = self.snd_una;
            let mut end = self.snd_max;
            if self.sack_ok {
                let (s, e) = self.scoreboard.next_hole(self.snd_una, self.snd_max)?;
                seq = s;
                end = e;
            }
            if seq.diff(self.snd_max) >= 0 {
                self.rtx_una = false;
                return None;
            }
            return Some(Plan {
                seq,
                max_len: end.since(seq),
                fin_allowed: true,
                burst: 1,
            });
        }
        if !self.in_recovery || !self.sack_ok {
            return None;
        }
        let mss = self.eff_mss();
        if self.cc.cwnd() < self.pipe + mss {
            return None;
        }
        let highest = self.scoreboard.highest_sacked()?;
        let from = self.high_rxt.max(self.snd_una);
        let (start, end) = self.scoreboard.next_hole(from, highest)?;
        if !self.scoreboard.is_lost(start, mss, self.cfg.dupthresh) {
            return None;
        }
        Some(Plan {
            seq: start,
            max_len: end.since(start),
            fin_allowed: true,
            burst: 1,
        })
    }

    /// New data (or a go-back-N resend after an RTO) from snd_nxt: up to
    /// `burst` segments of new data at once.
    fn next_segment(&mut self, burst: usize) -> Option<Plan> {
        let data_end = self.data_end();
        // After an RTO, skip what the peer has SACKed.
        if self.sack_ok && self.snd_nxt.diff(self.snd_max) < 0 {
            match self.scoreboard.next_hole(self.snd_nxt, self.snd_max) {
                Some((start, _)) => self.snd_nxt = start,
                None => self.snd_nxt = self.snd_max,
            }
        }
        let seq = self.snd_nxt;
        if seq.diff(data_end) > 0 {
            return None; // FIN already sent
        }
        let resending = seq.diff(self.snd_max) < 0;
        let unsent = data_end.since(seq);
        let fin_pending = self.fin_queued;
        let mss = self.eff_mss();
        let flight = self.flight();
        let cwnd_avail = self.cc.cwnd().saturating_sub(flight);
        let wnd_avail = (self.snd_una + self.snd_wnd).since(seq);

        if unsent == 0 {
            // Only the FIN is left: it takes no window space.
            if fin_pending && (cwnd_avail > 0 || flight == 0) {
                return Some(Plan {
                    seq,
                    max_len: 1,
                    fin_allowed: true,
                    burst: 1,
                });
            }
            return None;
        }
        // Resent data goes segment by segment: each is its own decision.
        let burst = if resending || burst <= 1 {
            1
        } else {
            burst.min(self.burst_segments(mss))
        };
        let mut len = unsent
            .min(wnd_avail)
            .min(cwnd_avail)
            .min(mss.saturating_mul(burst));
        if resending {
            let hole_end = match self.scoreboard.next_hole(seq, self.snd_max) {
                Some((_, e)) if self.sack_ok => e,
                _ => self.snd_max,
            };
            len = len.min(hole_end.since(seq));
        }
        if len == 0 {
            return None;
        }
        if len < mss && !resending {
            if len < unsent {
                // Window- or cwnd-limited to a small piece: wait for more room
                // unless nothing is in flight (RFC 9293 §3.8.6.2.1).
                if flight > 0 && len < self.max_snd_wnd / 2 {
                    return None;
                }
            } else if self.cfg.nagle && flight > 0 && !fin_pending {
                // Nagle: one small segment outstanding at a time.
                return None;
            }
        }
        let all = len == unsent;
        Some(Plan {
            seq,
            max_len: if all && fin_pending { len + 1 } else { len },
            fin_allowed: all,
            burst,
        })
    }

    /// How many segments a super-packet may hold at the connection's rate
    /// (see [`BURST_TIME_US`]): a slow path gets its data as a few segments
    /// at a time, not as 64 KiB at once into a router's queue. The rate is
    /// Linux's pacing rate: the window per smoothed round trip, doubled in
    /// slow start, 1.2 times after.
    fn burst_segments(&self, mss: usize) -> usize {
        let Some(srtt) = self.rtt.srtt() else {
            return MIN_BURST;
        };
        let cwnd = self.cc.cwnd() as u128;
        let gain = if self.cc.cwnd() < self.cc.ssthresh() {
            20
        } else {
            12
        };
        let srtt_us = srtt.as_micros().max(1);
        let bytes = cwnd * gain * BURST_TIME_US / (10 * srtt_us);
        let segs = (bytes / mss.max(1) as u128).min(usize::MAX as u128) as usize;
        segs.max(MIN_BURST)
    }

    fn emit_plan(
        &mut self,
        now: Instant,
        hop: u8,
        buf: &mut [u8],
        hooks: &mut dyn SegmentHooks,
        plan: Plan,
    ) -> Option<Transmit> {
        let data_end = self.data_end();
        let data = if plan.seq.diff(data_end) < 0 {
            data_end.since(plan.seq).min(plan.max_len)
        } else {
            0
        };
        let fin = plan.fin_allowed && self.fin_queued && plan.max_len > data;
        if data == 0 && !fin {
            return None;
        }
        let mut flags = TcpFlags::ACK;
        if data > 0 {
            flags |= TcpFlags::PSH;
        }
        self.emit_segment(now, hop, buf, hooks, plan.seq, flags, data, fin, plan.burst)
    }

    fn emit_syn(
        &mut self,
        now: Instant,
        hop: u8,
        buf: &mut [u8],
        hooks: &mut dyn SegmentHooks,
    ) -> Option<Transmit> {
        let flags = if self.state == State::SynReceived {
            TcpFlags::SYN | TcpFlags::ACK
        } else {
            TcpFlags::SYN
        };
        self.emit_segment(now, hop, buf, hooks, self.iss, flags, 0, false, 1)
    }

    fn emit_ack(
        &mut self,
        now: Instant,
        hop: u8,
        buf: &mut [u8],
        hooks: &mut dyn SegmentHooks,
    ) -> Option<Transmit> {
        // snd_nxt may have been rewound by an RTO below what the peer already
        // holds; an ACK must carry a sequence number the peer finds acceptable.
        let seq = self.acceptable_seq();
        self.emit_segment(now, hop, buf, hooks, seq, TcpFlags::ACK, 0, false, 1)
    }

    fn tsval(&self, now: Instant) -> u32 {
        (now.as_millis() as u32).wrapping_add(self.ts_offset)
    }

    /// The window field to advertise, recording the right edge it promises.
    pub(super) fn window_field(&mut self, syn: bool) -> u16 {
        let free = self
            .recv_buf
            .free()
            .min(self.window_cap.unwrap_or(usize::MAX));
        if syn {
            let w = free.min(0xffff);
            self.rcv_adv = self.rcv_nxt + w;
            self.rcv_wnd_edge = self.rcv_adv;
            return w as u16;
        }
        let cur = self.rcv_adv.since(self.rcv_nxt);
        let mut wnd = free;
        // Receiver-side SWS avoidance: do not open the window by a sliver.
        let step = self.rcv_mss.min(self.recv_buf.capacity() / 2);
        if wnd > cur && wnd - cur < step {
            wnd = cur;
        }
        let field = (wnd >> self.rcv_wscale).min(0xffff);
        let edge = self.rcv_nxt + (field << self.rcv_wscale);
        self.rcv_wnd_edge = edge;
        if edge.diff(self.rcv_adv) > 0 {
            self.rcv_adv = edge;
        }
        field as u16
    }

    fn build_repr(&mut self, now: Instant, seq: SeqNumber, flags: u8) -> TcpRepr<'static> {
        let syn = flags & TcpFlags::SYN != 0;
        let mut r = TcpRepr::new(self.local.port(), self.remote.port());
        r.seq = seq;
        r.flags = TcpFlags(flags);
        if flags & TcpFlags::ACK != 0 {
            r.ack = self.rcv_nxt;
        }
        r.window = self.window_field(syn);
        let active_syn = syn && self.state == State::SynSent;
        let offer_ts = if active_syn {
            self.cfg.timestamps
        } else {
            self.ts_ok
        };
        if offer_ts {
            r.timestamp = Some((self.tsval(now), if active_syn { 0 } else { self.ts_recent }));
        }
        if syn {
            r.mss = Some(self.rcv_mss.min(0xffff) as u16);
            let ws = if active_syn {
                self.cfg.window_scaling
            } else {
                self.wscale_ok
            };
            if ws {
                r.window_scale = Some(self.rcv_wscale);
            }
            r.sack_permitted = if active_syn {
                self.cfg.sack
            } else {
                self.sack_ok
            };
        }
        r
    }

    /// RFC 2018 §4: the block holding the most recent out-of-order segment first
    /// — after a D-SACK block, which goes first and once (RFC 2883 §4). As many
    /// blocks as the option space left allows (MPTCP's DSS may take most).
    fn fill_sack_blocks(&mut self, r: &mut TcpRepr<'_>) {
        // NOP NOP kind len, then 8 bytes a block.
        let room = wire::tcp::MAX_OPTIONS_LEN.saturating_sub(r.options_len());
        let max = (room.saturating_sub(4) / 8).min(4);
        let dsack = self.dsack.take();
        if max == 0 {
            return;
        }
        if let Some((a, b)) = dsack {
            r.sack_blocks.push(a, b);
        }
        let first = self
            .last_ooo
            .filter(|s| s.diff(self.rcv_nxt) > 0)
            .and_then(|s| self.assembler.range_containing(s.since(self.rcv_nxt)));
        if let Some((a, b)) = first.filter(|_| r.sack_blocks.len() < max) {
            r.sack_blocks.push(self.rcv_nxt + a, self.rcv_nxt + b);
        }
        for &(a, b) in self.assembler.ranges() {
            if r.sack_blocks.len() >= max {
                break;
            }
            if Some((a, b)) != first {
                r.sack_blocks.push(self.rcv_nxt + a, self.rcv_nxt + b);
            }
        }
    }

    /// Emit one segment at `seq` carrying `data` bytes of the send buffer from that
    /// point (clamped to what fits) and optionally a FIN after them — or, with
    /// `burst` above 1, a super-packet of whole segments for the device to cut.
    #[allow(clippy::too_many_arguments)]
    fn emit_segment(
        &mut self,
        now: Instant,
        hop: u8,
        buf: &mut [u8],
        hooks: &mut dyn SegmentHooks,
        seq: SeqNumber,
        mut flags: u8,
        data: usize,
        mut fin: bool,
        burst: usize,
    ) -> Option<Transmit> {
        let syn = flags & TcpFlags::SYN != 0;
        if data == 0 && !fin && !syn && hooks.options_required() {
            // Before the header is built: a vetoed ACK must not move the
            // window edge it would have advertised.
            self.ack_went();
            return None;
        }
        let mut extra = OptionBytes::default();
        if self.window_cap.is_some() {
            if let Some(cap) = hooks.window_cap() {
                self.window_cap = Some(cap);
            }
        }
        // A D-SACK block goes once (RFC 2883 §4), and the layer above may
        // have options for one segment only.
        let burst = if burst > 1 && self.dsack.is_none() && hooks.may_burst() {
            burst
        } else {
            1
        };
        let mut repr: TcpRepr<'_> = self.build_repr(now, seq, flags);
        let kind = match (syn, flags & TcpFlags::ACK != 0) {
            (true, false) => SegmentKind::Syn,
            (true, true) => SegmentKind::SynAck,
            _ => SegmentKind::Established,
        };
        let out = OutSegment {
            kind,
            seq,
            ssn: seq.0.wrapping_sub(self.iss.0),
            payload: data,
            fin,
            retransmission: seq.diff(self.snd_max) < 0,
            window: if syn {
                repr.window as usize
            } else {
                (repr.window as usize) << self.rcv_wscale
            },
        };
        let room = wire::tcp::MAX_OPTIONS_LEN.saturating_sub(repr.options_len());
        let cap = hooks.segment_options(&out, room, &mut extra);
        if data > 0 && cap == 0 && extra.is_empty() && !syn && !self.ack_owed() {
            // The layer above allows no data here now (an MPTCP subflow whose join
            // is not done) and nothing else asks for a segment: an empty one would
            // only be asked for again and again. (A FIN planned behind the data
            // cannot go before it either.)
            return None;
        }
        for (k, d) in extra.iter() {
            repr.unknown.push(k, d);
        }
        if !syn && self.sack_ok && (!self.assembler.is_empty() || self.dsack.is_some()) {
            self.fill_sack_blocks(&mut repr);
        }
        // The layer above ends the data here (an MPTCP mapping's end):
        // what is left of it is a whole piece, however short.
        let capped = cap < data;
        let data = data.min(cap);
        let opts = repr.header_len().saturating_sub(20);
        let ip_len = if self.local.is_ipv4() { 20 } else { 40 };
        let room = buf.len().saturating_sub(ip_len + 20 + opts);
        let limit = self.snd_mss.saturating_sub(opts).max(1).min(room);
        // Whole segments only: a short one is left to the next call, where
        // Nagle and the window rules decide it on its own.
        let burst_bytes = room.min(MAX_IP_PACKET.saturating_sub(ip_len + 20 + opts));
        let segs = if burst > 1 && !syn && limit > 0 && data > limit {
            let whole = (data.min(burst_bytes) / limit).min(burst);
            // A burst that reaches the cap takes its short tail along, as
            // Linux's last TSO piece may be short: Nagle has nothing to wait
            // for there (the bytes after it are another mapping's), and
            // alone it would cost a packet of its own.
            let all = data.div_ceil(limit);
            if capped && data <= burst_bytes && all <= burst {
                all
            } else {
                whole
            }
        } else {
            1
        };
        let data = data.min(limit * segs);
        let segment_size = (segs > 1).then_some(limit);
        let data_end = self.data_end();
        if fin && (seq + data != data_end || segs > 1) {
            fin = false;
        }
        if seq + data != data_end {
            // PSH marks the segment that empties the send queue (RFC 9293
            // §3.9.1.2), as Linux does; on every segment it would stop the peer's
            // GRO, and ours (TUN offloads), from merging segments.
            flags &= !TcpFlags::PSH;
        }
        if fin {
            flags |= TcpFlags::FIN;
        }
        repr.flags = TcpFlags(flags);
        let offset = seq.since(self.buf_seq);
        let (a, b) = match self.send_buf.peek(offset, data) {
            Some(held) => held,
            None if data == 0 => (&[][..], &[][..]),
            // Mapped: the layer above holds the bytes.
            None => match hooks.payload(out.ssn, data) {
                Some(parts) => parts,
                None => {
                    debug_assert!(false, "no payload for {data} bytes at ssn {}", out.ssn);
                    return None;
                }
            },
        };
        let by_ref = self.payload_by_ref && data > 0;
        let len = if by_ref {
            wire::emit_headers(self.local.ip(), self.remote.ip(), hop, &repr, data, buf)
        } else {
            wire::emit_packet_with(
                self.local.ip(),
                self.remote.ip(),
                hop,
                &repr,
                &[a, b],
                buf,
                self.cfg.tx_checksum,
            )
        }
        .ok()?;
        let payload = by_ref.then_some(PayloadRef {
            seq,
            ssn: out.ssn,
            len: data,
        });

        let seg_len = data + syn as usize + fin as usize;
        let end = seq + seg_len;
        let retransmitted = seg_len > 0 && seq.diff(self.snd_max) < 0;
        if seg_len > 0 {
            if seq == self.snd_nxt || end.diff(self.snd_nxt) > 0 && seq.diff(self.snd_nxt) <= 0 {
                self.snd_nxt = end;
            }
            if end.diff(self.snd_max) > 0 {
                if self.rtt_probe.is_none() && !retransmitted && !self.ts_ok {
                    // A burst's first segment: its ACK comes soonest, and
                    // a loss later in the burst does not void the sample.
                    let probe = segment_size.map_or(end, |size| seq + size);
                    self.rtt_probe = Some((probe, now));
                }
                self.snd_max = end;
            }
            if retransmitted {
                if end.diff(self.rtx_end) > 0 {
                    self.rtx_end = end;
                }
                self.stats.bytes_retransmitted += data as u64;
                self.stats.segments_retransmitted += 1;
                if self.rtt_probe.is_some_and(|(s, _)| s.diff(seq) > 0) {
                    self.rtt_probe = None;
                }
                if self.in_recovery && end.diff(self.high_rxt) > 0 {
                    self.high_rxt = end;
                }
            }
            if self.in_recovery && self.sack_ok {
                self.pipe += seg_len;
            }
            if self.rto_at.is_none() {
                self.rto_at = Some(now + self.rtt.backed_off(self.backoff));
            }
        }
        if flags & TcpFlags::ACK != 0 && self.dup_acks_owed() && data == 0 && !syn && !fin {
            self.extra_acks -= 1;
        } else if flags & TcpFlags::ACK != 0 {
            self.ack_went();
        }
        self.stats.segments_out += segs as u64;
        Some(Transmit {
            len,
            retransmitted: if retransmitted { data } else { 0 },
            segment_size,
            segments: segs,
            payload,
        })
    }

    /// Nothing owed to the peer any more: an ACK went out, or the layer above
    /// vetoed it.
    fn ack_went(&mut self) {
        self.extra_acks = 0;
        self.ack_now = false;
        self.delack_at = None;
        self.segs_unacked = 0;
        self.last_ack_sent = self.rcv_nxt;
    }
}
