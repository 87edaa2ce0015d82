//! The MPTCP connection level — the "data level" of RFC 8684 §3.3 — of one
//! connection: the keys and the phase of the MP_CAPABLE exchange, the 64-bit
//! data sequence space both ways with its buffers, DATA_FIN, fallback and the
//! MP_FAIL exchange, reinjection, the scheduler, and the path manager's
//! per-connection state.
//!
//! It holds no subflow. The connection (`conn::Connection`) owns every subflow
//! as one value (TCB and `SubflowMp` together) and hands the data level the one
//! it works on; what the data level decides beyond that subflow it returns as
//! [`Action`](super::action::Action)s. Its work is spread by concern:
//! `input.rs` (the options of acceptable segments), `recv.rs` (subflow bytes to
//! the data stream), `send.rs` (the data stream onto subflows), `fail.rs`
//! (fallback and MP_FAIL), `retransmit.rs`, `join.rs`, `pm.rs`, and
//! `options.rs` (every option we send).

use super::action::{Action, Actions};
use super::crypto::{self, HashAlg};
use super::fail::FailState;
use super::pm::PmState;
use super::scheduler::{new_scheduler, Scheduler};
use super::stats::MptcpStats;
use super::subflow::SubflowMp;
use super::unmapped::UnmappedHold;
use crate::config::SchedulerKind;
use crate::memory::Pressure;
use crate::tcp::assembler::Assembler;
use crate::tcp::autotune::{
    retune, send_buffer_for, RcvSpace, INITIAL_RECV_BUFFER, INITIAL_SEND_BUFFER,
};
use crate::tcp::buffer::{Reader, RingBuffer, Writer};
use crate::tcp::ratelimit::TokenBucket;
use crate::tcp::Tcb;
use crate::time::Instant;
use crate::wire::mptcp::{MpCapable, MptcpVersion};
use crate::wire::Dsn;
use std::collections::VecDeque;

/// What a first round trip of reading is measured against (ten segments).
const INITIAL_RCV_SPACE: usize = 10 * 1460;
/// Out-of-order ranges the data level tracks (beyond, new ranges are dropped
/// for the peer to send again).
const MAX_DATA_HOLES: usize = 1024;

/// Who opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Keys not yet exchanged (client: SYN sent; server: SYN/ACK sent).
    Handshake,
    /// Both keys known; the client has not yet seen a DATA_ACK from the server,
    /// so it repeats MP_CAPABLE on its first data (RFC 8684 §3.1).
    PreEstablished,
    /// Fully established: DSS on every segment.
    Established,
    /// Plain TCP from here on; no MPTCP option is sent any more.
    Fallback,
}

/// Why the connection fell back to TCP (shown in status and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackReason {
    NoMpCapableSynAck,
    NoMpCapableAck,
    NoMapping,
    /// The peer acknowledged our data on a segment without any MPTCP option:
    /// it fell back (RFC 8684 §3.7), or a middlebox strips the options.
    NoDataAck,
    /// The peer sent an infinite mapping (after our MP_FAIL, or on its own).
    InfiniteMapping,
    /// We answered the peer's MP_FAIL with an infinite mapping.
    MpFail,
}

impl FallbackReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            FallbackReason::NoMpCapableSynAck => "no MP_CAPABLE in the SYN/ACK",
            FallbackReason::NoMpCapableAck => "no MP_CAPABLE in the third ACK",
            FallbackReason::NoMapping => "first data without a DSS mapping",
            FallbackReason::NoDataAck => "data acknowledged without DATA_ACK",
            FallbackReason::InfiniteMapping => "peer sent an infinite mapping",
            FallbackReason::MpFail => "infinite mapping after MP_FAIL",
        }
    }
}

/// Repeats of an unacknowledged DATA_FIN, with all data acknowledged, after
/// which the peer is taken to have fallen back (see `on_timeout`): about 30
/// RTOs, far longer than a live MPTCP peer takes to acknowledge it.
const DATA_FIN_TRIES_BEFORE_FALLBACK: u32 = 4;

/// Settings taken from the stack's configuration.
#[derive(Debug, Clone, Copy)]
pub struct MptcpSettings {
    /// Versions a server answers, and whether a client whose v1 SYN got plain
    /// TCP back tries v0.
    pub allow_v1: bool,
    pub allow_v0: bool,
    pub retry_v0: bool,
    pub scheduler: SchedulerKind,
    /// Joined subflows allowed besides the first.
    pub max_subflows: usize,
    /// Ask for DSS checksums (either side asking turns them on).
    pub checksum: bool,
    /// Connection-level buffers.
    pub send_buffer: usize,
    pub recv_buffer: usize,
    /// Join attempts: a burst, then one per interval (`MptcpConfig`).
    pub join_attempts: u32,
    pub join_refill: core::time::Duration,
    pub accept_v0_add_addr: bool,
    /// Send MP_CAPABLE's "C" flag (`MptcpConfig::deny_join_id0`).
    pub deny_join_id0: bool,
}

/// The hash of a protocol version: SHA-1 for v0 (RFC 6824), SHA-256 for v1.
pub fn version_alg(v: MptcpVersion) -> HashAlg {
    match v {
        MptcpVersion::V0 => HashAlg::Sha1,
        MptcpVersion::V1 => HashAlg::Sha256,
    }
}

pub struct DataLevel {
    pub(super) role: Role,
    pub(super) version: MptcpVersion,
    /// v0 client: the third ACK must carry both keys (RFC 6824 §3.1).
    pub(super) v0_keys_pending: bool,
    pub(super) phase: Phase,
    pub(super) fallback_reason: Option<FallbackReason>,
    /// Where our fallback put the subflow's stream in the data stream: the
    /// next subflow byte to read then (relative SSN) and the DSN it became.
    pub(super) fallback_at: Option<(u32, Dsn)>,
    pub(super) checksum: bool,
    pub(super) local_key: u64,
    /// The token of `local_key` (a SHA hash: computed once, asked for often).
    local_token: u32,
    pub(super) remote_key: Option<u64>,
    /// No join got as far as its third ACK and no data went again at the
    /// data level: a fallback to plain TCP is still possible (as Linux's
    /// `allow_infinite_fallback`, cleared when a join completes, not when
    /// one is tried, and by a data-level retransmission); joins still in
    /// their handshake are then reset. The first join to get that far ends
    /// it for good: the peer may send on it from then on. A retransmission
    /// does too: the subflow may then carry the same bytes twice.
    pub(super) may_fall_back: bool,
    /// A join got as far as its third ACK: there may be another subflow to
    /// reinject to (`subflow_upkeep`).
    pub(super) joined: bool,

    // Sending: snd_buf[0] has DSN snd_buf_dsn, at or below snd_una: bytes
    // DATA_ACKed stay while a subflow that sends straight from this buffer
    // (`send_mapped.rs`) may still need them.
    pub(super) snd_buf: RingBuffer,
    pub(super) snd_buf_dsn: Dsn,
    /// The lowest DSN a subflow sending from `snd_buf` may still need (a
    /// bound: it only falls between the connection's recomputations).
    pub(super) snd_pin: Option<Dsn>,
    pub(super) snd_una: Dsn,
    /// Next DSN to hand to a subflow.
    pub(super) snd_nxt: Dsn,
    /// Right edge of the peer's connection-level window (DATA_ACK + window).
    pub(super) snd_wnd_end: Dsn,
    /// A DATA_ACK set `snd_wnd_end`: from then on it bounds what is mapped, even
    /// when it is `snd_una` (a zero window).
    pub(super) snd_wnd_known: bool,
    pub(super) data_fin_queued: bool,
    pub(super) data_fin_acked: bool,
    /// Our DATA_FIN has gone out at least once (its repeats are the timer's).
    pub(super) data_fin_sent: bool,
    pub(super) send_was_full: bool,

    // Receiving: rcv_buf's next byte to read has DSN rcv_nxt - rcv_buf.len().
    pub(super) rcv_buf: RingBuffer,
    pub(super) assembler: Assembler,
    /// Buffer auto-tuning (`tcp::autotune`) at the connection level, where
    /// the application reads and writes: the reader's total, the ceilings,
    /// whether growth is allowed.
    pub(super) rcv_space: RcvSpace,
    pub(super) bytes_read: u64,
    /// The segment being taken was already counted by the receive
    /// auto-tuning (`direct.rs`, before its bytes went in): `pull` skips it.
    pub(super) rx_tuned: bool,
    pub(super) rcv_max: usize,
    pub(super) snd_max: usize,
    pub(super) pressure: Pressure,
    pub(super) rcv_nxt: Dsn,
    /// The furthest right edge (DATA_ACK + window) any subflow offered, as
    /// Linux's `rcv_wnd_sent`. The peer keeps the furthest edge it saw
    /// (Linux's `wnd_end` never moves back), so the buffer must keep room up
    /// to it: data sent there and not taken would block its subflow, and
    /// with it whatever that subflow carries next — the retransmission that
    /// fills a hole, when the subflow that lost it is dead.
    pub(super) rcv_wnd_sent: Option<Dsn>,
    pub(super) peer_data_fin: Option<Dsn>,
    pub(super) peer_data_fin_done: bool,
    /// The peer's DATA_FIN was just reached: acknowledge it at once on every
    /// subflow (as Linux's `mptcp_send_ack`), also when it came on a segment
    /// that owed no TCP ACK.
    pub(super) data_fin_ack_owed: bool,

    /// When to repeat an unacknowledged DATA_FIN, and how often it was repeated.
    pub(super) fin_timer: Option<Instant>,
    pub(super) fin_backoff: u32,
    /// Data-level retransmission timer (see `retransmit.rs`).
    pub(super) rtx_timer: Option<Instant>,
    pub(super) rtx_backoff: u32,
    /// The timer runs to probe a closed window, not to retransmit.
    pub(super) rtx_probing: bool,
    /// The peer's latest acceptable segment carried an MPTCP option: it still
    /// speaks MPTCP. A peer that fell back sends plain ACKs, and data sent
    /// again at the data level would reach it as new bytes.
    pub(super) peer_speaks_mptcp: bool,
    /// A segment without any MPTCP option brought news on the first subflow
    /// (the sign of the peer's fallback, `input.rs`) while the peer's bytes
    /// waited in the subflow short of the data level: the fallback is decided
    /// once the data level has taken them (`recv.rs`). Cleared by a segment
    /// with options that acknowledges more of our data (the peer still speaks
    /// MPTCP); while set, nothing is sent again at the data level.
    pub(super) fallback_deferred: bool,
    /// Data-level timeouts (DATA_FIN or data repeats) while the fallback
    /// was deferred, each answered by the peer with plain segments only.
    pub(super) deferred_timeouts: u32,
    /// Bytes without a mapping on the first subflow, waiting for the peer to
    /// say whether it fell back (`unmapped.rs`).
    pub(super) unmapped: UnmappedHold,
    pub(super) released: bool,
    /// The receive side no longer reads mappings: subflow bytes are data bytes
    /// in order (after we sent MP_FAIL).
    pub(super) rx_fallback: bool,
    pub(super) fail: FailState,
    pub(super) stats: MptcpStats,

    pub(super) readable: bool,
    pub(super) writable: bool,

    /// Data-level ranges (DSN, length) of a subflow that died or stalled, to be
    /// sent again on the others (RFC 8684 §3.3.6).
    pub(super) reinject: VecDeque<(Dsn, u32)>,
    pub(super) scheduler: Box<dyn Scheduler + Send>,
    pub(super) scheduler_kind: SchedulerKind,
    /// Every byte goes on every subflow.
    pub(super) redundant: bool,
    pub(super) max_subflows: usize,
    pub(super) pm: PmState,
    /// A client offering v1 may start over with v0 (settings).
    pub(super) may_retry_v0: bool,
    /// MP_JOIN SYNs this connection may still take.
    pub(super) join_budget: TokenBucket,
    pub(super) accept_v0_add_addr: bool,
    /// Our MP_CAPABLE carries the "C" flag (v1): no joins to our first
    /// address, please.
    pub(super) deny_join_id0: bool,
    /// The peer's did: we open no subflow to its first address.
    pub(super) remote_deny_join_id0: bool,
}

impl core::fmt::Debug for DataLevel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DataLevel")
            .field("role", &self.role)
            .field("version", &self.version)
            .field("phase", &self.phase)
            .field("snd_una", &self.snd_una)
            .field("snd_nxt", &self.snd_nxt)
            .field("rcv_nxt", &self.rcv_nxt)
            .finish_non_exhaustive()
    }
}

impl DataLevel {
    fn new(role: Role, version: MptcpVersion, local_key: u64, s: &MptcpSettings) -> Self {
        let first = Dsn(crypto::idsn(version_alg(version), local_key)) + 1u64;
        DataLevel {
            role,
            version,
            v0_keys_pending: false,
            phase: Phase::Handshake,
            fallback_reason: None,
            fallback_at: None,
            checksum: s.checksum,
            local_key,
            local_token: crypto::token(version_alg(version), local_key),
            remote_key: None,
            may_fall_back: true,
            joined: false,
            snd_buf: RingBuffer::new(s.send_buffer.min(INITIAL_SEND_BUFFER)),
            snd_buf_dsn: first,
            snd_pin: None,
            snd_una: first,
            snd_nxt: first,
            snd_wnd_end: first,
            snd_wnd_known: false,
            data_fin_queued: false,
            data_fin_acked: false,
            data_fin_sent: false,
            send_was_full: false,
            rcv_buf: RingBuffer::new(s.recv_buffer.min(INITIAL_RECV_BUFFER)),
            rcv_space: RcvSpace::new(Instant::ZERO, INITIAL_RCV_SPACE),
            bytes_read: 0,
            rx_tuned: false,
            rcv_max: s.recv_buffer,
            snd_max: s.send_buffer,
            pressure: Pressure::None,
            // Subflows interleave small mappings: one lagging subflow leaves a
            // hole per mapping of the others.
            assembler: Assembler::new(MAX_DATA_HOLES),
            rcv_nxt: Dsn(0),
            rcv_wnd_sent: None,
            peer_data_fin: None,
            peer_data_fin_done: false,
            data_fin_ack_owed: false,
            fin_timer: None,
            fin_backoff: 0,
            rtx_timer: None,
            rtx_probing: false,
            rtx_backoff: 0,
            peer_speaks_mptcp: true,
            fallback_deferred: false,
            deferred_timeouts: 0,
            unmapped: UnmappedHold::default(),
            released: false,
            rx_fallback: false,
            fail: FailState::default(),
            stats: MptcpStats::default(),
            readable: false,
            writable: false,
            reinject: VecDeque::new(),
            scheduler: new_scheduler(s.scheduler),
            scheduler_kind: s.scheduler,
            redundant: s.scheduler == SchedulerKind::Redundant,
            max_subflows: s.max_subflows,
            pm: PmState::default(),
            may_retry_v0: s.retry_v0 && s.allow_v0,
            join_budget: TokenBucket::every(s.join_refill, s.join_attempts),
            accept_v0_add_addr: s.accept_v0_add_addr,
            deny_join_id0: s.deny_join_id0 && version == MptcpVersion::V1,
            remote_deny_join_id0: false,
        }
    }

    /// An active open offering `version` with `local_key` (drawn so its token,
    /// under that version's hash, is unique).
    pub fn client(version: MptcpVersion, local_key: u64, s: &MptcpSettings) -> Self {
        let mut c = DataLevel::new(Role::Client, version, local_key, s);
        // v0 peers expect DSS checksums (the multipath-tcp.org kernel's default).
        c.checksum |= version == MptcpVersion::V0;
        c
    }

    /// A passive open answering a SYN's MP_CAPABLE `cap` in `version` (see
    /// [`Self::syn_version`]).
    pub fn server(
        cap: &MpCapable,
        version: MptcpVersion,
        local_key: u64,
        s: &MptcpSettings,
    ) -> Self {
        let mut c = DataLevel::new(Role::Server, version, local_key, s);
        c.checksum |= cap.flags.checksum_required() || version == MptcpVersion::V0;
        c.remote_deny_join_id0 = version == MptcpVersion::V1 && cap.flags.no_join_initial();
        if version == MptcpVersion::V0 {
            // The v0 SYN carries the client's key (RFC 6824 §3.1).
            if let Some(key) = cap.sender_key {
                c.learn_remote_key(key);
            }
        }
        c
    }

    /// The version we answer a SYN's MP_CAPABLE with: the one it offers, if
    /// allowed (RFC 8684 §3.1); `None` for plain TCP (Linux, too, answers v0
    /// with TCP).
    pub fn syn_version(cap: &MpCapable, s: &MptcpSettings) -> Option<MptcpVersion> {
        if cap.flags.extensibility() {
            return None;
        }
        match cap.version {
            MptcpVersion::V1 if s.allow_v1 => Some(MptcpVersion::V1),
            MptcpVersion::V0 if s.allow_v0 && cap.sender_key.is_some() => Some(MptcpVersion::V0),
            _ => None,
        }
    }

    /// Hand what the application did before the handshake (data queued, a
    /// shutdown, a release) over to `next`, the connection opened again.
    pub fn carry_over(&mut self, next: &mut DataLevel) {
        let mut buf = vec![0u8; self.snd_buf.len()];
        let n = self.snd_buf.dequeue(&mut buf);
        next.send_from(&mut &buf[..n]);
        next.data_fin_queued = self.data_fin_queued;
        next.released = self.released;
    }

    pub(super) fn learn_remote_key(&mut self, key: u64) {
        if self.remote_key.is_none() {
            self.remote_key = Some(key);
            self.rcv_nxt = Dsn(crypto::idsn(self.alg(), key)) + 1u64;
        }
    }

    pub(super) fn alg(&self) -> HashAlg {
        version_alg(self.version)
    }

    pub fn version(&self) -> MptcpVersion {
        self.version
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether we opened the connection.
    pub fn is_client(&self) -> bool {
        self.role == Role::Client
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn is_fallback(&self) -> bool {
        self.phase == Phase::Fallback
    }

    pub fn fallback_reason(&self) -> Option<FallbackReason> {
        self.fallback_reason
    }

    pub fn checksum(&self) -> bool {
        self.checksum
    }

    pub fn local_key(&self) -> u64 {
        self.local_key
    }

    pub fn remote_key(&self) -> Option<u64> {
        self.remote_key
    }

    pub fn local_token(&self) -> u32 {
        self.local_token
    }

    pub fn remote_token(&self) -> Option<u32> {
        self.remote_key.map(|k| crypto::token(self.alg(), k))
    }

    pub fn stats(&self) -> MptcpStats {
        self.stats
    }

    /// MP_FAILs received and sent.
    pub fn mp_fail_counts(&self) -> (u64, u64) {
        (self.stats.mp_fail_rx, self.stats.mp_fail_tx)
    }

    pub fn is_redundant(&self) -> bool {
        self.redundant
    }

    /// Connection-level bytes the peer acknowledged (DATA_ACK).
    pub fn data_bytes_acked(&self) -> u64 {
        let first = Dsn(crypto::idsn(self.alg(), self.local_key)) + 1u64;
        // `snd_una` stops at the DATA_FIN: its acknowledgement is a flag.
        self.snd_una.since(first)
    }

    /// Connection-level bytes received in order.
    pub fn data_bytes_received(&self) -> u64 {
        let Some(key) = self.remote_key else {
            return 0;
        };
        let first = Dsn(crypto::idsn(self.alg(), key)) + 1u64;
        self.rcv_nxt
            .since(first)
            .saturating_sub(self.peer_data_fin_done as u64)
    }

    /// Both directions finished at the data level.
    pub fn data_level_done(&self) -> bool {
        self.data_fin_acked && self.peer_data_fin_done
    }

    /// The peer's DATA_FIN arrived (and all data before it).
    pub fn peer_data_finished(&self) -> bool {
        self.peer_data_fin_done
    }

    /// Our DATA_FIN is acknowledged and nothing more will be read: the
    /// subflows may close.
    pub fn subflows_may_close(&self) -> bool {
        self.data_fin_acked && (self.peer_data_fin_done || self.released)
    }

    /// Whether the peer's latest acceptable segment spoke MPTCP.
    /// The peer asked for no subflow to its first address (its
    /// MP_CAPABLE's "C" flag, RFC 8684 §3.1).
    pub fn remote_deny_join_id0(&self) -> bool {
        self.remote_deny_join_id0
    }

    pub fn peer_speaks_mptcp(&self) -> bool {
        self.peer_speaks_mptcp
    }

    // ----- the application -----

    /// Queue what `w` writes (bytes, or a fill in place); bytes accepted.
    pub fn send_from(&mut self, w: &mut impl Writer) -> usize {
        let (n, more) = w.write_into(&mut self.snd_buf);
        if more {
            self.send_was_full = true;
        }
        n
    }

    /// The receive buffer follows the transfer's pace (see `tcp::autotune`);
    /// `tcb` is the subflow that just delivered (its round trip counts: the
    /// longest of the subflows' recent ones spans a measure). Never below
    /// the window offered nor the out-of-order data kept.
    pub(super) fn autotune_recv(&mut self, now: Instant, tcb: &Tcb) {
        self.autotune_recv_with(now, tcb.rcv_rtt(), tcb.min_rtt(), tcb.mss());
    }

    /// [`autotune_recv`](Self::autotune_recv) with the subflow's round trips
    /// and MSS given.
    pub(super) fn autotune_recv_with(
        &mut self,
        now: Instant,
        rcv_rtt: Option<core::time::Duration>,
        min_rtt: Option<core::time::Duration>,
        mss: usize,
    ) {
        if let Some(rtt) = rcv_rtt {
            self.rcv_space.sample_rtt(rtt);
        }
        if let Some(rtt) = min_rtt {
            self.rcv_space.sample_least_rtt(rtt);
        }
        if !self.rcv_space.due(now) {
            return;
        }
        let cap = self.rcv_buf.capacity();
        let held = self.rcv_buf.len();
        let floor = self.recv_floor();
        let Some(want) = self
            .rcv_space
            .adjust(now, self.bytes_read, held, cap, floor, mss)
        else {
            return;
        };
        if let Some(c) = retune(cap, want, floor, self.rcv_max, self.pressure.may_grow()) {
            self.rcv_buf.set_capacity(c);
        }
    }

    /// The least the receive buffer may hold: its starting size, and what
    /// the window offered and the out-of-order data kept must still fit.
    fn recv_floor(&self) -> usize {
        let offered = self
            .rcv_wnd_sent
            .map_or(0, |e| e.diff(self.rcv_nxt).max(0) as usize);
        let kept = self.rcv_buf.len() + offered.max(self.assembler.extent());
        self.rcv_max.min(INITIAL_RECV_BUFFER).max(kept)
    }

    /// A subflow's segment carries our DATA_ACK with `window` bytes of window.
    pub(super) fn offered(&mut self, window: usize) {
        let edge = self.rcv_nxt + window;
        if self.rcv_wnd_sent.is_none_or(|e| edge > e) {
            self.rcv_wnd_sent = Some(edge);
        }
    }

    /// The send buffer follows what the subflows together may have in
    /// flight (`cwnd` summed over them), both ways.
    pub fn autotune_send(&mut self, cwnd: usize) {
        let floor = self.snd_max.min(INITIAL_SEND_BUFFER);
        let cap = self.snd_buf.capacity();
        let want = send_buffer_for(cwnd);
        if let Some(c) = retune(cap, want, floor, self.snd_max, self.pressure.may_grow()) {
            self.snd_buf.set_capacity(c);
            if c > cap && self.send_was_full {
                self.send_was_full = false;
                self.writable = true;
            }
        }
    }

    /// Whether the host queues what arrives (see `RcvSpace::host_queue`).
    pub fn set_host_queue(&mut self, queued: bool) {
        self.rcv_space.host_queue = queued;
    }

    /// The stack's memory pressure changed (see `Tcb::set_pressure`).
    pub fn set_pressure(&mut self, p: Pressure) {
        self.pressure = p;
        self.shrink();
    }

    /// Under memory pressure: buffers back to their starting sizes or to
    /// what they hold and (receiving) what the window offered, whichever is
    /// more; the storage of empty ones freed.
    pub fn shrink(&mut self) -> usize {
        if self.pressure == Pressure::None {
            return 0;
        }
        self.rcv_buf.set_capacity(self.recv_floor());
        let send_floor = self.snd_max.min(INITIAL_SEND_BUFFER);
        self.snd_buf
            .set_capacity(send_floor.max(self.snd_buf.len()));
        self.snd_buf.release() + self.rcv_buf.release()
    }

    /// Tests: a receive buffer auto-tuning would have grown.
    #[cfg(test)]
    pub fn set_recv_capacity(&mut self, cap: usize) {
        self.rcv_buf.set_capacity(cap);
    }

    /// (send queued, send capacity, receive queued, receive capacity now).
    pub fn buffer_sizes(&self) -> (usize, usize, usize, usize) {
        let (s, r) = (&self.snd_buf, &self.rcv_buf);
        (s.len(), s.capacity(), r.len(), r.capacity())
    }

    /// Heap bytes the connection level's buffers hold.
    pub fn memory(&self) -> usize {
        self.snd_buf.allocated() + self.rcv_buf.allocated() + self.assembler.allocated()
    }

    pub fn send_capacity(&self) -> usize {
        if self.data_fin_queued {
            0
        } else {
            self.snd_buf.free()
        }
    }

    pub fn can_send(&self) -> bool {
        !self.data_fin_queued
    }

    /// Bytes the application sent that no subflow has taken yet.
    pub fn send_pending(&self) -> usize {
        self.data_end().since(self.snd_nxt) as usize
    }

    pub fn recv_available(&self) -> usize {
        self.rcv_buf.len()
    }

    /// Read connection-level data; `None` at the end of the peer's data.
    pub fn recv<R: Reader + ?Sized>(&mut self, r: &mut R) -> Option<usize> {
        let wanted = r.wants() > 0;
        let n = r.drain(&mut self.rcv_buf);
        self.bytes_read += n as u64;
        if n == 0 && wanted && self.peer_data_fin_done && self.rcv_buf.is_empty() {
            return None;
        }
        Some(n)
    }

    pub fn shutdown(&mut self) {
        self.data_fin_queued = true;
    }

    /// The application gave up the connection.
    pub fn release(&mut self) {
        self.released = true;
    }

    pub fn take_readable(&mut self) -> bool {
        core::mem::take(&mut self.readable)
    }

    pub fn take_writable(&mut self) -> bool {
        core::mem::take(&mut self.writable)
    }

    // ----- timers -----

    /// The DATA_FIN, MP_FAIL, data retransmission and address option timers
    /// (a joined subflow's third-ACK timer is the subflow's, see `join.rs`).
    pub fn poll_at(&self) -> Option<Instant> {
        let at = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        let mut t = at(self.fin_timer, self.fail.timer);
        t = at(t, self.rtx_poll_at());
        t = at(t, self.unmapped.poll_at());
        at(t, self.pm_poll_at())
    }

    /// Run the connection-level timers that are due; `tcb` is the subflow that
    /// speaks for the connection (its RTO paces the repeats).
    pub fn on_timeout(&mut self, now: Instant, tcb: &mut Tcb, sf: &mut SubflowMp) -> Actions {
        let mut acts = self.deferred_fallback_timeout(now, tcb, sf);
        self.unmapped_timeout(now, tcb, sf);
        if self.pm_timers(now) {
            acts.push(Action::Ack);
        }
        acts.extend(self.fail_timeout(now, tcb));
        if self.fin_timer.is_some_and(|t| t <= now) {
            // Every byte DATA_ACKed, and none of the peer's waiting in the
            // subflow short of the data level (see input.rs).
            let data_acked = self.snd_una == self.data_end();
            let all_acked = data_acked && tcb.recv_available() == 0;
            if self.data_fin_unanswered()
                && data_acked
                && !all_acked
                && self.may_fall_back
                && sf.is_initial()
            {
                // Our data all DATA_ACKed, the DATA_FIN never, and the
                // peer's bytes waiting short of the data level: the peer
                // fell back while its last mapping was altered on
                // the way (a length no bytes will ever complete), sends
                // nothing more and waits for our FIN. Its silence through
                // our repeats says what a plain segment would have
                // (`deferred_fallback_timeout`): decide as on that. A reset
                // ends the repeats here; a fallback below (the phase says).
                let decided = self.decide_deferred_fallback(tcb, sf, true);
                if !decided.is_empty() {
                    self.fin_timer = None;
                    acts.extend(decided);
                    return acts;
                }
            }
            if self.data_fin_unanswered() && all_acked && self.may_fall_back {
                // Every byte was DATA_ACKed, yet the DATA_FIN never is: the
                // peer fell back behind our back (it took an ACK of ours that
                // lost its options on the way for plain TCP) and ignores DSS,
                // while it waits for our FIN, which waits for the DATA_ACK.
                // Falling back sends the FIN; with no data outstanding nothing
                // can be misread, and a peer that is still MPTCP falls back on
                // that option-less FIN (input.rs).
                acts.extend(self.fall_back(FallbackReason::NoDataAck, tcb));
                self.fin_timer = None;
            } else if self.data_fin_unanswered()
                && all_acked
                && !self.may_fall_back
                && !self.peer_speaks_mptcp
            {
                // The same, where falling back is no longer allowed (a join
                // got as far as its third ACK, though the peer may have
                // refused it): the connection cannot end cleanly, and the
                // peer would wait for our FIN for ever. Reset it, as Linux's
                // close timeout does.
                self.fin_timer = None;
                acts.push(Action::ResetAll {
                    reason: super::action::rst_reason::MPTCP_ERROR,
                    fail: None,
                });
            } else if self.data_fin_repeating() {
                acts.push(Action::AckAll);
                self.fin_backoff = (self.fin_backoff + 1).min(6);
                self.fin_timer = Some(now + tcb.rto_backed_off(self.fin_backoff));
            } else {
                self.fin_timer = None;
            }
        }
        acts
    }

    /// A deferred fallback (`recv.rs`) waits for the peer's bytes to be
    /// taken or for its FIN; a peer that fell back while its last mapping
    /// was altered on the way sends neither: its bytes can never be taken,
    /// and it waits for our plain FIN while we wait for its DATA_ACK. Each
    /// data-level timeout that finds the peer still acknowledging plainly
    /// counts; after a few, decide as on its FIN.
    fn deferred_fallback_timeout(
        &mut self,
        now: Instant,
        tcb: &mut Tcb,
        sf: &mut SubflowMp,
    ) -> Actions {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if !self.fallback_deferred
            || !sf.is_initial()
            || !(due(self.fin_timer) || due(self.rtx_timer))
        {
            return Actions::new();
        }
        if self.peer_speaks_mptcp {
            self.deferred_timeouts = 0;
            return Actions::new();
        }
        self.deferred_timeouts += 1;
        if self.deferred_timeouts < DATA_FIN_TRIES_BEFORE_FALLBACK {
            return Actions::new();
        }
        self.decide_deferred_fallback(tcb, sf, true)
    }

    /// How this connection spreads its data over its subflows.
    pub fn scheduler_kind(&self) -> SchedulerKind {
        self.scheduler_kind
    }

    // ----- shared by the modules -----

    /// Whether the next segment is the v0 third ACK that carries both keys
    /// (taken).
    pub(super) fn take_v0_keys(&mut self) -> bool {
        core::mem::take(&mut self.v0_keys_pending)
    }

    /// DSN just past the last byte the application queued.
    pub(super) fn data_end(&self) -> Dsn {
        self.snd_buf_dsn + self.snd_buf.len()
    }

    /// Our DATA_FIN is repeated until DATA_ACKed (not after a fallback).
    fn data_fin_repeating(&self) -> bool {
        self.pending_data_fin().is_some() && self.phase != Phase::Fallback
    }

    /// Our DATA_FIN went out as often as a peer that still speaks MPTCP
    /// would have answered it.
    fn data_fin_unanswered(&self) -> bool {
        self.data_fin_repeating() && self.fin_backoff >= DATA_FIN_TRIES_BEFORE_FALLBACK
    }

    /// The DATA_FIN's DSN while it still needs sending.
    pub(super) fn pending_data_fin(&self) -> Option<Dsn> {
        let end = self.data_end();
        (self.data_fin_queued && self.snd_nxt == end && !self.data_fin_acked).then_some(end)
    }

    /// Whether a pure ACK of the first subflow now carries a DSS (not the
    /// v1 client's key echo before the first DATA_ACK).
    pub(super) fn dss_in_use(&self) -> bool {
        match self.phase {
            Phase::Established => true,
            Phase::PreEstablished => {
                !(self.role == Role::Client && self.version == MptcpVersion::V1)
            }
            Phase::Handshake | Phase::Fallback => false,
        }
    }

    pub(super) fn data_ack(&self) -> Dsn {
        self.rcv_nxt
    }
}
