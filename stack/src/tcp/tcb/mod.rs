//! The transmission control block: one TCP connection's state machine (RFC 9293).
//!
//! Split along the protocol's own seams: `input` (SEGMENT ARRIVES), `ack` (the send
//! side's reaction to acknowledgements, incl. loss recovery), `output` (what to send
//! next), `timers`. This file holds the state and the application calls.

mod ack;
mod input;
mod output;
mod timers;

#[cfg(test)]
mod tests;

use super::assembler::Assembler;
use super::autotune::{
    retune, send_buffer_for, RcvRtt, RcvSpace, INITIAL_RECV_BUFFER, INITIAL_SEND_BUFFER,
};
use super::buffer::{RingBuffer, Writer};
use super::cc::{self, CongestionControl};
use super::hystart::HyStart;
use super::rtt::RttEstimator;
use super::sack::Scoreboard;
use super::send_queue::SendQueue;
use super::State;
use crate::config::TcpConfig;
use crate::memory::Pressure;
use crate::tcp::buffer::{CopyTo, Reader};
use crate::tcp::state::CloseReason;
use crate::time::Instant;
use crate::wire::{SeqNumber, TcpRepr};
use std::net::{IpAddr, SocketAddr};

pub(crate) use input::OOW_ACK_INTERVAL;
pub use input::{RstReply, Verdict};

/// Largest window scale shift (RFC 7323 §2.3).
const MAX_WSCALE: u8 = 14;

/// Notifications for the application, collected by the endpoint after each call.
#[derive(Debug, Default, Clone, Copy)]
pub struct TcbEvents {
    pub established: bool,
    pub readable: bool,
    pub writable: bool,
    pub closed: Option<CloseReason>,
}

/// Per-connection statistics.
#[derive(Debug, Default, Clone, Copy)]
pub struct TcbStats {
    /// Application bytes acknowledged by the peer.
    pub bytes_acked: u64,
    /// Application bytes received in order.
    pub bytes_received: u64,
    pub bytes_retransmitted: u64,
    pub segments_retransmitted: u64,
    pub segments_in: u64,
    pub segments_out: u64,
    pub drop_paws: u64,
    pub drop_out_of_window: u64,
    pub drop_ooo_overflow: u64,
    /// Out-of-order segments dropped while the stack's memory was exhausted.
    pub drop_ooo_memory: u64,
    pub challenge_acks: u64,
    /// Challenge ACKs the stack-wide quota withheld, and duplicate ACKs to
    /// unacceptable segments without data withheld by the per-connection
    /// limit.
    pub challenge_acks_limited: u64,
    pub oow_acks_limited: u64,
}

impl TcbStats {
    /// Add `o` (a subflow's) to these (a connection's).
    pub fn add(&mut self, o: &TcbStats) {
        self.bytes_acked += o.bytes_acked;
        self.bytes_received += o.bytes_received;
        self.bytes_retransmitted += o.bytes_retransmitted;
        self.segments_retransmitted += o.segments_retransmitted;
        self.segments_in += o.segments_in;
        self.segments_out += o.segments_out;
        self.drop_paws += o.drop_paws;
        self.drop_out_of_window += o.drop_out_of_window;
        self.drop_ooo_overflow += o.drop_ooo_overflow;
        self.drop_ooo_memory += o.drop_ooo_memory;
        self.challenge_acks += o.challenge_acks;
        self.challenge_acks_limited += o.challenge_acks_limited;
        self.oow_acks_limited += o.oow_acks_limited;
    }
}

/// What `poll_transmit` produced.
#[derive(Debug, Clone, Copy)]
pub struct Transmit {
    /// Length of the IP packet written.
    pub len: usize,
    /// Payload bytes of it that were sent before (0 for new data).
    pub retransmitted: usize,
    /// A super-packet (`poll_transmit_with`'s `burst`): the payload bytes of
    /// each segment the device must cut it into.
    pub segment_size: Option<usize>,
    /// TCP segments it stands for (1 unless a super-packet).
    pub segments: usize,
    /// Asked for by [`Tcb::poll_transmit_by_ref`]: the payload was left
    /// out of the packet written (`len` is its headers' length); these are
    /// its bytes, for the caller to write after the headers.
    pub payload: Option<PayloadRef>,
}

/// Where a packet's payload, left out of it, is held: `len` bytes from
/// `seq` (see [`Tcb::held_payload`]; a mapped subflow's are the layer
/// above's, from subflow sequence number `ssn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadRef {
    pub seq: SeqNumber,
    pub ssn: u32,
    pub len: usize,
}

/// A TCB in TIME_WAIT, reduced to what answering for it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWaitState {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Our ACKs' sequence and acknowledgement numbers and window field.
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub window: u16,
    /// Timestamps in use: (our TSval offset, the peer's latest TSval).
    pub timestamps: Option<(u32, u32)>,
    /// When the 2 MSL wait ends.
    pub until: Instant,
}

#[derive(Debug)]
pub struct Tcb {
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    state: State,
    cfg: TcpConfig,
    passive: bool,

    // Send sequence space (RFC 9293 §3.3.1). Data starts at iss + 1; `buf_seq` is
    // the sequence number of send_buf[0].
    iss: SeqNumber,
    snd_una: SeqNumber,
    snd_nxt: SeqNumber,
    /// Highest sequence number sent (snd_nxt rewinds on RTO, snd_max does not).
    snd_max: SeqNumber,
    snd_wnd: usize,
    max_snd_wnd: usize,
    snd_wl1: SeqNumber,
    snd_wl2: SeqNumber,
    /// Shift applied to windows the peer advertises.
    snd_wscale: u8,
    send_buf: SendQueue,
    buf_seq: SeqNumber,
    fin_queued: bool,
    send_was_full: bool,

    // Receive sequence space.
    irs: SeqNumber,
    rcv_nxt: SeqNumber,
    /// Right edge of the window last advertised; never moved left.
    rcv_adv: SeqNumber,
    /// Right edge the latest segment offered: below `rcv_adv` when a capped
    /// window (a layered protocol's) offered less than before. What the
    /// peer now believes it may send, so what a window update is judged by.
    rcv_wnd_edge: SeqNumber,
    /// Shift applied to windows we advertise.
    rcv_wscale: u8,
    recv_buf: RingBuffer,
    assembler: Assembler,
    /// Receive-buffer auto-tuning, and the bytes read so far (it measures them).
    rcv_space: RcvSpace,
    bytes_read: u64,
    /// The receiver's round trip, and the window being timed when there are
    /// no timestamps (its right edge, since when) or the last TSecr sampled.
    rcv_rtt: RcvRtt,
    rcv_rtt_mark: Option<(SeqNumber, Instant)>,
    rcv_rtt_tsecr: u32,
    /// The stack's memory pressure (`crate::memory`).
    pressure: Pressure,
    /// Sequence number of the peer's FIN once seen (possibly out of order).
    peer_fin: Option<SeqNumber>,
    /// The out-of-order block most recently extended (first SACK block, RFC 2018).
    last_ooo: Option<SeqNumber>,
    /// Data that arrived twice, to report once as the first SACK block of
    /// the next segment (D-SACK, RFC 2883): the sender learns that its
    /// retransmission was spurious (reordering, not loss) and tolerates more
    /// reordering from then on, as Linux does.
    dsack: Option<(SeqNumber, SeqNumber)>,
    last_ack_sent: SeqNumber,
    /// Upper bound on the window we advertise, set by a layered protocol whose
    /// receive buffer is shared across connections (MPTCP's connection level).
    window_cap: Option<usize>,

    // Negotiated options.
    wscale_ok: bool,
    ts_ok: bool,
    sack_ok: bool,
    ts_recent: u32,
    ts_recent_at: Instant,
    ts_offset: u32,
    /// Largest segment (payload + TCP options) the peer accepts, bounded by our MTU.
    snd_mss: usize,
    /// MSS we advertise.
    rcv_mss: usize,

    // Timers.
    rto_at: Option<Instant>,
    backoff: u32,
    retries: u32,
    delack_at: Option<Instant>,
    ack_now: bool,
    /// Further immediate ACKs owed: one per out-of-order segment (RFC 5681 §4.2),
    /// even when several arrive before the next transmit opportunity.
    extra_acks: u8,
    segs_unacked: usize,
    keepalive_at: Option<Instant>,
    ka_probes: u32,
    ka_probe_pending: bool,
    zwp_pending: bool,
    /// The one byte past `snd_una` is a zero-window probe's, sent beyond a
    /// closed window: the peer holds it only if it acknowledges it.
    zwp_outstanding: bool,
    /// Set for one [`Tcb::poll_transmit_by_ref`] call: leave the payload
    /// out of the packet.
    payload_by_ref: bool,
    timewait_at: Option<Instant>,
    fin_wait2_at: Option<Instant>,
    challenge_window: (Instant, u32),
    /// When the last duplicate ACK to an unacceptable segment went out.
    oow_ack_at: Option<Instant>,

    // Congestion control and loss recovery.
    rtt: RttEstimator,
    rtt_probe: Option<(SeqNumber, Instant)>,
    cc: Box<dyn CongestionControl>,
    /// The first slow start's delay-based exit (RFC 9406).
    hystart: HyStart,
    /// The largest congestion window so far (`own_queue_in_rtt`).
    cwnd_peak: usize,
    dupacks: usize,
    in_recovery: bool,
    recovery_point: SeqNumber,
    high_rxt: SeqNumber,
    pipe: usize,
    /// Retransmit the segment at snd_una next (fast retransmit / NewReno partial ACK).
    rtx_una: bool,
    /// End of the highest retransmitted sequence range (Karn's rule).
    rtx_end: SeqNumber,
    scoreboard: Scoreboard,

    released: bool,
    /// Released through `release` (plain TCP): data arriving now will never be
    /// read, so it resets the connection. A layered protocol (`mark_released`)
    /// decides that itself: MPTCP subflows keep taking data-level duplicates
    /// (the peer reinjecting what a removed subflow carried) after the close.
    reset_on_orphan_data: bool,
    events: TcbEvents,
    stats: TcbStats,
    close_reason: Option<CloseReason>,
}

/// Largest TCP payload + options that fits our MTU for this address family.
fn mtu_mss(cfg: &TcpConfig, addr: IpAddr) -> usize {
    let ip = if addr.is_ipv4() { 20 } else { 40 };
    cfg.mtu.saturating_sub(ip + 20).max(64)
}

/// Smallest window scale that lets a 16-bit window cover the whole receive buffer.
fn wscale_for(buffer: usize) -> u8 {
    let mut s = 0u8;
    while s < MAX_WSCALE && (0xffffusize << s) < buffer {
        s += 1;
    }
    s
}

impl Tcb {
    fn new(
        cfg: &TcpConfig,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNumber,
        ts_offset: u32,
        now: Instant,
        passive: bool,
    ) -> Tcb {
        let rcv_mss = mtu_mss(cfg, local.ip());
        let default_mss = if remote.is_ipv4() { 536 } else { 1220 };
        let snd_mss = default_mss.min(rcv_mss);
        let rtt = RttEstimator::new(cfg.initial_rto, cfg.min_rto, cfg.max_rto);
        let cc = cc::new(cfg.cc, snd_mss, snd_mss * cfg.initial_cwnd_segments);
        Tcb {
            local,
            remote,
            state: State::Closed,
            cfg: cfg.clone(),
            passive,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: iss,
            snd_wscale: 0,
            send_buf: SendQueue::new(cfg.send_buffer.min(INITIAL_SEND_BUFFER)),
            buf_seq: iss + 1,
            fin_queued: false,
            send_was_full: false,
            irs: SeqNumber(0),
            rcv_nxt: SeqNumber(0),
            rcv_adv: SeqNumber(0),
            rcv_wnd_edge: SeqNumber(0),
            rcv_wscale: if cfg.window_scaling {
                wscale_for(cfg.recv_buffer)
            } else {
                0
            },
            recv_buf: RingBuffer::new(cfg.recv_buffer.min(INITIAL_RECV_BUFFER)),
            assembler: Assembler::new(cfg.max_ooo_ranges),
            rcv_space: RcvSpace::new(now, cfg.initial_cwnd_segments * rcv_mss),
            bytes_read: 0,
            rcv_rtt: RcvRtt::default(),
            rcv_rtt_mark: None,
            rcv_rtt_tsecr: 0,
            pressure: Pressure::None,
            peer_fin: None,
            last_ooo: None,
            dsack: None,
            last_ack_sent: SeqNumber(0),
            window_cap: None,
            wscale_ok: false,
            ts_ok: false,
            sack_ok: false,
            ts_recent: 0,
            ts_recent_at: now,
            ts_offset,
            snd_mss,
            rcv_mss,
            rto_at: None,
            backoff: 0,
            retries: 0,
            delack_at: None,
            ack_now: false,
            extra_acks: 0,
            segs_unacked: 0,
            keepalive_at: None,
            ka_probes: 0,
            ka_probe_pending: false,
            zwp_pending: false,
            zwp_outstanding: false,
            payload_by_ref: false,
            timewait_at: None,
            fin_wait2_at: None,
            challenge_window: (now, 0),
            oow_ack_at: None,
            rtt,
            rtt_probe: None,
            cc,
            hystart: HyStart::default(),
            cwnd_peak: 0,
            dupacks: 0,
            in_recovery: false,
            recovery_point: iss,
            high_rxt: iss,
            pipe: 0,
            rtx_una: false,
            rtx_end: iss,
            scoreboard: Scoreboard::new(cfg.max_ooo_ranges),
            released: false,
            reset_on_orphan_data: false,
            events: TcbEvents::default(),
            stats: TcbStats::default(),
            close_reason: None,
        }
    }

    /// Active open: the TCB sends its SYN on the next `poll_transmit`.
    pub fn connect(
        cfg: &TcpConfig,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNumber,
        ts_offset: u32,
        now: Instant,
    ) -> Tcb {
        let mut tcb = Tcb::new(cfg, local, remote, iss, ts_offset, now, false);
        tcb.state = State::SynSent;
        tcb
    }

    /// Passive open from a listener's SYN: negotiates options from it; the SYN/ACK
    /// goes out on the next `poll_transmit`.
    pub fn accept(
        cfg: &TcpConfig,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNumber,
        ts_offset: u32,
        now: Instant,
        syn: &TcpRepr<'_>,
    ) -> Tcb {
        let mut tcb = Tcb::new(cfg, local, remote, iss, ts_offset, now, true);
        tcb.state = State::SynReceived;
        tcb.take_syn(now, syn);
        tcb
    }

    /// Passive open rebuilt from a SYN cookie's third ACK: `syn` is the SYN
    /// the cookie remembers, and our SYN/ACK counts as sent (with an unknown
    /// send time: the TSecr the ACK echoes is up to 63 ms older than the send,
    /// so the first RTT sample may run that much long, as in Linux).
    pub fn accept_cookie(
        cfg: &TcpConfig,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNumber,
        ts_offset: u32,
        now: Instant,
        syn: &TcpRepr<'_>,
    ) -> Tcb {
        let mut tcb = Tcb::accept(cfg, local, remote, iss, ts_offset, now, syn);
        // The window field the SYN/ACK carried, and what it promised.
        tcb.window_field(true);
        tcb.snd_nxt = iss + 1;
        tcb.snd_max = iss + 1;
        tcb.rto_at = Some(now + tcb.rtt.backed_off(0));
        tcb
    }

    /// Record the peer's SYN: its ISN and the options it offered.
    fn take_syn(&mut self, now: Instant, syn: &TcpRepr<'_>) {
        self.irs = syn.seq;
        self.rcv_nxt = syn.seq + 1;
        self.rcv_adv = self.rcv_nxt;
        self.rcv_wnd_edge = self.rcv_nxt;
        self.last_ack_sent = self.rcv_nxt;
        let mtu_limit = mtu_mss(&self.cfg, self.local.ip());
        if let Some(mss) = syn.mss {
            self.snd_mss = (mss as usize).clamp(64, mtu_limit);
        }
        match (self.cfg.window_scaling, syn.window_scale) {
            (true, Some(ws)) => {
                self.wscale_ok = true;
                self.snd_wscale = ws.min(MAX_WSCALE);
            }
            _ => {
                self.wscale_ok = false;
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        if self.cfg.timestamps {
            if let Some((tsval, _)) = syn.timestamp {
                self.ts_ok = true;
                self.ts_recent = tsval;
                self.ts_recent_at = now;
            }
        }
        self.sack_ok = self.cfg.sack && syn.sack_permitted;
        // The window in a SYN is never scaled (RFC 7323 §2.2).
        self.snd_wnd = syn.window as usize;
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = syn.seq;
        self.cc.set_mss(self.eff_mss());
        self.cc.set_cwnd(self.initial_window());
    }

    /// RFC 6928's initial window at today's segment size.
    pub(super) fn initial_window(&self) -> usize {
        self.eff_mss() * self.cfg.initial_cwnd_segments
    }

    pub fn iss(&self) -> SeqNumber {
        self.iss
    }

    /// The peer's initial sequence number.
    pub fn irs(&self) -> SeqNumber {
        self.irs
    }

    /// Subflow-relative sequence number (first data byte = 1, RFC 8684 §3.3) of
    /// the first byte the peer has not acknowledged.
    pub fn acked_ssn(&self) -> u32 {
        self.snd_una.0.wrapping_sub(self.iss.0)
    }

    /// Subflow-relative sequence number of the first byte never sent.
    pub fn sent_ssn(&self) -> u32 {
        self.snd_max.0.wrapping_sub(self.iss.0)
    }

    /// Subflow-relative sequence number the next byte given to `send` will get.
    pub fn next_ssn(&self) -> u32 {
        self.data_end().0.wrapping_sub(self.iss.0)
    }

    /// Subflow-relative sequence number of the next byte `recv` returns.
    pub fn recv_ssn(&self) -> u32 {
        let fin = self.peer_fin.is_some_and(|f| self.rcv_nxt.diff(f) > 0) as usize;
        (self.rcv_nxt - fin - self.recv_buf.len())
            .0
            .wrapping_sub(self.irs.0)
    }

    /// In-order received bytes `[offset, offset + len)` without consuming
    /// them, for a range of at most 64 KiB (see `RingBuffer::peek`).
    pub fn peek_recv(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        self.recv_buf.peek(offset, len)
    }

    /// In-order received bytes `[offset, offset + len)` without consuming
    /// them, in as many slices as they take.
    pub fn recv_slices(&self, offset: usize, len: usize) -> impl Iterator<Item = &[u8]> {
        self.recv_buf.slices(offset, len)
    }

    /// The application gave up the handle; a layered protocol closes it.
    pub fn mark_released(&mut self) {
        self.released = true;
    }

    /// Send an ACK at the next opportunity (a layered protocol has news).
    /// Whether the peer is owed an acknowledgement now.
    pub(super) fn ack_owed(&self) -> bool {
        self.ack_now || self.dup_acks_owed() || self.last_ack_sent != self.rcv_nxt
    }

    /// Duplicate ACKs owed for out-of-order segments, while a hole remains:
    /// once it filled within the same batch of arrivals (segments
    /// reordered, duplicated), the one cumulative ACK says it all, and
    /// duplicates of it would only announce a loss that never happened.
    pub(super) fn dup_acks_owed(&self) -> bool {
        self.extra_acks > 0 && !self.assembler.is_empty()
    }

    /// Make the peer answer: a keepalive probe (`snd_una − 1`, RFC 9293
    /// §3.8.4) on the next transmit opportunity, which any live peer
    /// acknowledges at once (a layered protocol checks that a path still works).
    pub fn probe(&mut self) {
        if matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait1 | State::FinWait2
        ) {
            self.ka_probe_pending = true;
        }
    }

    /// Whether acceptable segment `seg` was sent by the peer after it saw
    /// something we sent at or after `since`: its timestamp echo says so; a
    /// connection without timestamps cannot tell, and takes it as yes.
    pub fn answers_since(&self, seg: &TcpRepr<'_>, since: Instant) -> bool {
        match (self.ts_ok, seg.timestamp) {
            (true, Some((_, tsecr))) => {
                let since = (since.as_millis() as u32).wrapping_add(self.ts_offset);
                tsecr.wrapping_sub(since) as i32 >= 0
            }
            _ => true,
        }
    }

    /// The window the latest segment offered, from the next byte expected.
    pub fn offered_window(&self) -> usize {
        self.rcv_wnd_edge.since(self.rcv_nxt)
    }

    /// Whether a window update means anything to the peer: the handshake is
    /// over and its data may still come (a subflow in SYN_RECEIVED that
    /// sends a bare ACK confuses a joining peer, and after the peer's FIN
    /// nothing more can come).
    pub fn takes_window_updates(&self) -> bool {
        matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        )
    }

    pub fn force_ack(&mut self) {
        if self.state != State::Closed {
            self.ack_now = true;
        }
    }

    /// A window field from the peer, scaled.
    pub fn scaled_window(&self, raw: u16) -> usize {
        (raw as usize) << self.snd_wscale
    }

    /// Bound the advertised receive window (never below what was promised).
    ///
    /// A capped subflow's window is the layered protocol's: its own buffer
    /// takes the configured size (it only holds what that level has not yet
    /// taken, bounded by the cap) and is not auto-tuned.
    pub fn set_window_cap(&mut self, cap: Option<usize>) {
        if cap.is_some() && self.window_cap.is_none() {
            self.recv_buf.set_capacity(self.cfg.recv_buffer);
        }
        self.window_cap = cap;
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    pub fn stats(&self) -> &TcbStats {
        &self.stats
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }

    pub fn is_released(&self) -> bool {
        self.released
    }

    pub fn take_events(&mut self) -> TcbEvents {
        core::mem::take(&mut self.events)
    }

    pub fn srtt(&self) -> Option<core::time::Duration> {
        self.rtt.srtt()
    }

    /// Couple this subflow's congestion control with its connection's others.
    pub fn set_coupling(&mut self, c: Option<cc::Coupling>) {
        self.cc.set_coupling(c);
    }

    /// Bytes acknowledged between losses (for OLIA's coupling).
    pub fn cc_loss_interval(&self) -> u64 {
        self.cc.loss_interval()
    }

    /// Consecutive retransmission timeouts without progress.
    pub fn rto_backoff(&self) -> u32 {
        self.backoff
    }

    /// The retransmission timeout, backed off by timeouts in a row.
    pub fn rto(&self) -> core::time::Duration {
        self.rtt.backed_off(self.backoff)
    }

    /// The retransmission timeout backed off by timeouts in a row and then
    /// `more` doublings, bounded like the RTO itself (`max_rto`): the pace of
    /// repeats layered on this subflow (DATA_FIN, MP_FAIL, a join's third
    /// ACK), which must not run past the longest wait TCP itself allows.
    pub fn rto_backed_off(&self, more: u32) -> core::time::Duration {
        self.rtt.backed_off(self.backoff.saturating_add(more))
    }

    /// The longest retransmission timeout (`TcpConfig::max_rto`).
    pub fn max_rto(&self) -> core::time::Duration {
        self.rtt.max_rto()
    }

    /// The retransmission timeout before any backoff: how long an answer may
    /// take on this path.
    pub fn base_rto(&self) -> core::time::Duration {
        self.rtt.backed_off(0)
    }

    pub fn cwnd(&self) -> usize {
        self.cc.cwnd()
    }

    pub fn ssthresh(&self) -> usize {
        self.cc.ssthresh()
    }

    pub fn snd_wnd(&self) -> usize {
        self.snd_wnd
    }

    /// The sequence number for a segment without data (ACK, RST): `snd_max`,
    /// but for a zero-window probe's byte, which the peer did not take. A
    /// receiver with a zero window admits only `SEG.SEQ = RCV.NXT` and drops
    /// anything else whole, ACK field included (RFC 9293 §3.10.7.4). Only the
    /// probe, not the window's right edge in general (Linux's
    /// `tcp_acceptable_seq`): a subflow's window counts from the connection's
    /// DATA_ACK, so a subflow's `snd_una + snd_wnd` is no bound on what its
    /// peer holds, and a number below what it holds is dropped too.
    pub(super) fn acceptable_seq(&self) -> SeqNumber {
        if self.zwp_outstanding {
            self.snd_una
        } else {
            self.snd_max
        }
    }

    pub fn mss(&self) -> usize {
        self.eff_mss()
    }

    pub fn sack_enabled(&self) -> bool {
        self.sack_ok
    }

    pub fn timestamps_enabled(&self) -> bool {
        self.ts_ok
    }

    pub fn cc_name(&self) -> &'static str {
        self.cc.name()
    }

    /// Payload bytes of a full segment: the peer's MSS less our fixed options.
    fn eff_mss(&self) -> usize {
        let opts = if self.ts_ok { 12 } else { 0 };
        self.snd_mss.saturating_sub(opts).max(1)
    }

    /// Sequence number just past the last byte of queued data.
    fn data_end(&self) -> SeqNumber {
        self.buf_seq + self.send_buf.len()
    }

    /// Whether our FIN has been acknowledged.
    fn fin_acked(&self) -> bool {
        self.fin_queued && self.snd_una.diff(self.data_end()) > 0
    }

    fn close(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.close_reason = Some(reason);
        self.events.closed = Some(reason);
        self.rto_at = None;
        self.delack_at = None;
        self.keepalive_at = None;
        self.timewait_at = None;
        self.fin_wait2_at = None;
        self.ack_now = false;
    }

    /// What a compact TIME_WAIT record needs to stand in for this TCB: only
    /// in TIME_WAIT with nothing left to send (see `endpoint::time_wait`).
    pub fn time_wait_state(&self) -> Option<TimeWaitState> {
        if self.state != State::TimeWait || self.ack_now || self.dup_acks_owed() {
            return None;
        }
        let window = (self.rcv_adv.since(self.rcv_nxt) >> self.rcv_wscale).min(0xffff) as u16;
        Some(TimeWaitState {
            local: self.local,
            remote: self.remote,
            seq: self.snd_max,
            ack: self.rcv_nxt,
            window,
            timestamps: self.ts_ok.then_some((self.ts_offset, self.ts_recent)),
            until: self.timewait_at?,
        })
    }

    fn enter_time_wait(&mut self, now: Instant) {
        self.state = State::TimeWait;
        self.rto_at = None;
        self.keepalive_at = None;
        self.fin_wait2_at = None;
        self.timewait_at = Some(now + self.cfg.msl * 2);
    }

    // ----- application calls -----

    /// Queue data for sending; bytes accepted.
    pub fn send(&mut self, data: &[u8]) -> Option<usize> {
        self.send_from(&mut { data })
    }

    /// Queue what `w` writes (bytes, or a fill in place); bytes accepted.
    pub fn send_from(&mut self, w: &mut impl Writer) -> Option<usize> {
        if !self.state.can_send() || self.fin_queued {
            return None;
        }
        debug_assert!(!self.send_buf.is_mapped(), "bytes given to a mapped queue");
        if self.send_buf.is_mapped() {
            return None;
        }
        let (n, more) = self.send_buf.enqueue_from(w);
        if more {
            self.send_was_full = true;
        }
        Some(n)
    }

    /// Queue `n` bytes that the layer above holds and supplies for each
    /// segment (see [`SendQueue`]); bytes accepted. Only in mapped mode.
    pub fn send_mapped(&mut self, n: usize) -> Option<usize> {
        if !self.state.can_send() || self.fin_queued || !self.send_buf.is_mapped() {
            return None;
        }
        Some(self.send_buf.enqueue_mapped(n))
    }

    /// Whether the send queue only counts its bytes (they are the layer
    /// above's).
    pub fn sends_mapped(&self) -> bool {
        self.send_buf.is_mapped()
    }

    /// Count the send queue's bytes from now on instead of holding them;
    /// only while it is empty (false otherwise).
    pub fn map_sends(&mut self) -> bool {
        if !self.send_buf.is_empty() {
            return false;
        }
        if !self.send_buf.is_mapped() {
            self.send_buf = SendQueue::Mapped {
                len: 0,
                capacity: self.send_buf.capacity(),
            };
        }
        true
    }

    /// Hold the send queue's bytes again: `fill` is handed a buffer to put
    /// exactly the queued bytes into, in order, from subflow-relative
    /// sequence number [`buf_ssn`](Self::buf_ssn); false (and the queue left
    /// as it was) if it did not.
    pub fn hold_sends(&mut self, fill: impl FnOnce(u32, &mut RingBuffer)) -> bool {
        let SendQueue::Mapped { len, capacity } = self.send_buf else {
            return true;
        };
        let mut ring = RingBuffer::new(capacity.max(len));
        fill(self.buf_ssn(), &mut ring);
        if ring.len() != len {
            return false;
        }
        self.send_buf = SendQueue::Bytes(ring);
        true
    }

    /// Subflow-relative sequence number of the oldest queued byte.
    pub fn buf_ssn(&self) -> u32 {
        self.buf_seq.0.wrapping_sub(self.iss.0)
    }

    pub fn send_capacity(&self) -> usize {
        if !self.state.can_send() || self.fin_queued {
            0
        } else {
            self.send_buf.free()
        }
    }

    /// Bytes queued but not yet acknowledged.
    pub fn send_queued(&self) -> usize {
        self.send_buf.len()
    }

    /// The most the receive window may ever offer (the configured buffer).
    pub fn recv_capacity(&self) -> usize {
        self.cfg.recv_buffer
    }

    /// (send queued, send capacity, receive queued, receive capacity now).
    pub fn buffer_sizes(&self) -> (usize, usize, usize, usize) {
        let (s, r) = (&self.send_buf, &self.recv_buf);
        (s.len(), s.capacity(), r.len(), r.capacity())
    }

    /// Heap bytes the connection's buffers hold (send, receive, out of order).
    pub fn memory(&self) -> usize {
        self.send_buf.allocated() + self.recv_buf.allocated() + self.assembler.allocated()
    }

    /// In-order bytes ready to read.
    pub fn recv_available(&self) -> usize {
        self.recv_buf.len()
    }

    /// Read in-order data. `Ok(0)` means nothing yet; `Err(true)` that the peer's
    /// FIN has been read past; `Err(false)` that the connection was reset.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, bool> {
        self.recv_into(&mut CopyTo::new(buf))
    }

    /// [`recv`](Self::recv) to any [`Reader`].
    #[inline]
    pub fn recv_into<R: Reader + ?Sized>(&mut self, r: &mut R) -> Result<usize, bool> {
        let wanted = r.wants() > 0;
        let n = r.drain(&mut self.recv_buf);
        if n > 0 {
            self.bytes_read += n as u64;
            self.maybe_window_update();
            return Ok(n);
        }
        if !wanted || !self.recv_buf.is_empty() {
            // Nothing asked for, or bytes the reader declined: not the end.
            return Ok(0);
        }
        if self.peer_fin.is_some_and(|f| self.rcv_nxt.diff(f) > 0) {
            return Err(true);
        }
        match self.close_reason {
            Some(CloseReason::Normal) | None => Ok(0),
            Some(_) => Err(false),
        }
    }

    /// Drop `n` in-order bytes as read: a layered protocol took them with
    /// [`peek_recv`](Self::peek_recv). Returns the bytes dropped.
    pub fn consume(&mut self, n: usize) -> usize {
        let n = self.recv_buf.discard(n);
        if n > 0 {
            self.bytes_read += n as u64;
            self.maybe_window_update();
        }
        n
    }

    /// In-order data arrived: sample the receiver's round trip from the
    /// segment's timestamp echo, or time the window (see `RcvRtt`).
    pub(super) fn measure_rcv_rtt(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        if self.ts_ok {
            let Some((_, tsecr)) = seg.timestamp else {
                return;
            };
            if tsecr == 0 || tsecr == self.rcv_rtt_tsecr {
                return;
            }
            self.rcv_rtt_tsecr = tsecr;
            let sent = tsecr.wrapping_sub(self.ts_offset);
            let ms = (now.as_millis() as u32).wrapping_sub(sent);
            if (ms as i32) >= 0 && ms < 60_000 {
                self.rcv_rtt
                    .sample_ts(core::time::Duration::from_millis(ms.max(1) as u64));
            }
            return;
        }
        match self.rcv_rtt_mark {
            Some((edge, since)) if self.rcv_nxt.diff(edge) >= 0 => {
                self.rcv_rtt.sample_window(now.saturating_since(since));
                self.rcv_rtt_mark = None;
            }
            Some(_) => {}
            None => self.rcv_rtt_mark = Some((self.rcv_adv, now)),
        }
    }

    /// The least round trip either side measured.
    pub fn min_rtt(&self) -> Option<core::time::Duration> {
        match (self.rtt.min_rtt(), self.rcv_rtt.get()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The receiver's round-trip estimate, else the sender's.
    pub fn rcv_rtt(&self) -> Option<core::time::Duration> {
        self.rcv_rtt.get().or(self.rtt.srtt())
    }

    /// The receive buffer follows the transfer's pace (see `tcp::autotune`),
    /// never below what the window offered and the out-of-order data kept.
    pub(super) fn autotune_recv(&mut self, now: Instant) {
        if self.window_cap.is_some() {
            return;
        }
        if let Some(rtt) = self.rcv_rtt() {
            self.rcv_space.sample_rtt(rtt);
        }
        if let Some(rtt) = self.min_rtt() {
            self.rcv_space.sample_least_rtt(rtt);
        }
        if !self.rcv_space.due(now) {
            return;
        }
        let cap = self.recv_buf.capacity();
        let floor = self.recv_floor();
        let held = self.recv_buf.len();
        let mss = self.rcv_mss;
        let Some(want) = self
            .rcv_space
            .adjust(now, self.bytes_read, held, cap, floor, mss)
        else {
            return;
        };
        let max = self.cfg.recv_buffer;
        if let Some(c) = retune(cap, want, floor, max, self.pressure.may_grow()) {
            self.recv_buf.set_capacity(c);
        }
    }

    /// The least the receive buffer may hold: its starting size, and what
    /// the window offered and the out-of-order data kept must still fit.
    fn recv_floor(&self) -> usize {
        let offered = self.rcv_adv.since(self.rcv_nxt);
        let kept = self.recv_buf.len() + offered.max(self.assembler.extent());
        self.cfg.recv_buffer.min(INITIAL_RECV_BUFFER).max(kept)
    }

    /// The send buffer follows the congestion window, both ways.
    pub(super) fn autotune_send(&mut self) {
        let max = self.cfg.send_buffer;
        let floor = max.min(INITIAL_SEND_BUFFER);
        let cap = self.send_buf.capacity();
        let want = send_buffer_for(self.cc.cwnd());
        if let Some(c) = retune(cap, want, floor, max, self.pressure.may_grow()) {
            self.send_buf.set_capacity(c);
        }
    }

    /// The stack's memory pressure changed: under pressure the buffers stop
    /// growing and shrink back (see [`shrink`](Self::shrink)); exhausted, no
    /// out-of-order data is kept.
    pub fn set_pressure(&mut self, p: Pressure) {
        self.pressure = p;
        if p != Pressure::None {
            self.shrink();
        }
    }

    /// Whether the host queues what arrives (see `RcvSpace::host_queue`).
    pub fn set_host_queue(&mut self, queued: bool) {
        self.rcv_space.host_queue = queued;
    }

    pub fn host_queue(&self) -> bool {
        self.rcv_space.host_queue
    }

    pub fn pressure(&self) -> Pressure {
        self.pressure
    }

    /// Under memory pressure: buffers back to their starting sizes, or to what
    /// they hold and (receiving) what the window already offered, whichever
    /// is more; the storage of empty ones freed. The bytes freed.
    pub fn shrink(&mut self) -> usize {
        if self.pressure == Pressure::None {
            return 0;
        }
        if self.window_cap.is_none() {
            self.recv_buf.set_capacity(self.recv_floor());
        }
        let send_floor = self.cfg.send_buffer.min(INITIAL_SEND_BUFFER);
        self.send_buf
            .set_capacity(send_floor.max(self.send_buf.len()));
        self.send_buf.release() + self.recv_buf.release()
    }

    /// After the application read, advertise a window that grew materially
    /// (receiver-side silly window avoidance, RFC 9293 §3.8.6.2.2).
    fn maybe_window_update(&mut self) {
        if !matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            return;
        }
        let advertised = self.offered_window();
        // A capped window opens when the layer above says so (it forces
        // the ACK): what this buffer alone could offer is not on offer.
        let possible = self
            .recv_buf
            .free()
            .min(self.window_cap.unwrap_or(usize::MAX));
        let mss = self.rcv_mss;
        if possible >= advertised + 2 * mss.min(self.recv_buf.capacity() / 2)
            && (possible >= 2 * advertised || advertised < mss)
        {
            self.ack_now = true;
        }
    }

    /// Close our sending direction after the queued data (half-close).
    pub fn shutdown(&mut self) {
        match self.state {
            // The FIN waits for the handshake; the state moves on when it completes.
            State::SynSent | State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
    }

    /// A layered protocol resets the connection (MPTCP: the peer's
    /// MP_FASTCLOSE, a subflow given up): closed as reset, with a RST for the
    /// peer in every state in which it may still hold the connection —
    /// LAST_ACK and CLOSING included, unlike the application's `abort`: a
    /// peer left in FIN_WAIT_2 would wait for our FIN for ever.
    pub fn reset(&mut self) -> Option<RstReply> {
        let rst = match self.state {
            State::Closing | State::LastAck => Some(RstReply {
                seq: self.acceptable_seq(),
                ack: None,
            }),
            _ => self.abort(),
        };
        self.close(CloseReason::Reset);
        self.close_reason = Some(CloseReason::Reset);
        self.events.closed = Some(CloseReason::Reset);
        rst
    }

    /// Nobody waits for this connection's data any more (an MPTCP subflow
    /// whose connection is done): like a released one, FIN_WAIT_2 ends after
    /// 2·MSL instead of waiting for the peer's FIN for ever.
    pub fn orphan(&mut self, now: Instant) {
        self.released = true;
        if self.state == State::FinWait2 && self.fin_wait2_at.is_none() {
            self.fin_wait2_at = Some(now + self.cfg.msl * 2);
        }
    }

    /// An ICMP destination unreachable quoting our segment with sequence
    /// number `seq`. While our SYN is all we sent, the attempt fails at once,
    /// as a connect() on Linux does (RFC 1122 §4.2.3.9 lets a hard error
    /// abort an opening connection); the quoted number must be our ISN, which
    /// an off-path sender does not know (RFC 5927 §4.1). Later it is a soft
    /// error and changes nothing: an ICMP message must not tear down a
    /// connection that works. True if the connection closed.
    pub fn icmp_unreachable(&mut self, seq: SeqNumber) -> bool {
        if self.state != State::SynSent || seq != self.iss {
            return false;
        }
        self.close(CloseReason::Unreachable);
        true
    }

    /// Abort: returns the RST to send, if the peer needs to hear of it.
    pub fn abort(&mut self) -> Option<RstReply> {
        let rst = match self.state {
            State::SynReceived
            | State::Established
            | State::FinWait1
            | State::FinWait2
            | State::CloseWait => Some(RstReply {
                seq: self.acceptable_seq(),
                ack: None,
            }),
            _ => None,
        };
        self.close(CloseReason::Aborted);
        rst
    }

    /// [`release`](Self::release) without the shutdown, for a layered
    /// protocol that still has bytes to hand down before the FIN: released,
    /// and aborted (the RST returned) if unread data is left.
    pub fn release_unread(&mut self) -> Option<RstReply> {
        self.released = true;
        self.reset_on_orphan_data = true;
        if !self.recv_buf.is_empty() && self.state != State::Closed {
            return self.abort();
        }
        None
    }

    /// The application gave up the handle. Unread data means the peer's bytes
    /// will never be consumed, so the connection is reset (RFC 2525 §2.17);
    /// otherwise it is closed gracefully.
    pub fn release(&mut self, now: Instant) -> Option<RstReply> {
        if let Some(rst) = self.release_unread() {
            return Some(rst);
        }
        self.shutdown();
        if self.state == State::FinWait2 && self.fin_wait2_at.is_none() {
            self.fin_wait2_at = Some(now + self.cfg.msl * 2);
        }
        None
    }
}
