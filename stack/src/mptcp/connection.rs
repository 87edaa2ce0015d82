//! The MPTCP connection level (RFC 8684) over one subflow: the MP_CAPABLE key
//! exchange, the 64-bit data sequence space, DSS mappings on everything sent, data
//! reassembled by DSN, DATA_ACK and DATA_FIN, DSS checksums, and fallback to TCP.
//!
//! The subflow is an ordinary [`Tcb`]; this layer sits beside it. The endpoint
//! shows it every incoming segment (`on_segment`, before the TCB), lets it move
//! data between the connection buffers and the subflow (`pull` after input,
//! `push` before output), and hands it to the TCB as [`SegmentHooks`] so that every
//! outgoing segment carries the options `handshake.rs` decides.

use super::crypto::{self, DssChecksum, HashAlg};
use super::handshake::push;
use super::mapping::{Mapping, Mappings};
use super::scheduler::{new_scheduler, Scheduler};
use super::subflow::{SubflowState, MAX_MAPPINGS};
use crate::config::SchedulerKind;
use crate::tcp::assembler::Assembler;
use crate::tcp::buffer::RingBuffer;
use crate::tcp::hooks::{OptionBytes, OutSegment, SegmentHooks};
use crate::tcp::Tcb;
use crate::time::Instant;
use crate::wire::mptcp::{
    mptcp_options, Dss, FastClose, MpCapable, MpFail, MptcpOption, MptcpVersion, ParseCtx, TcpRst,
};
use crate::wire::TcpRepr;
use std::collections::VecDeque;

/// Out-of-order ranges the data level tracks (beyond, data waits in the subflows).
const MAX_DATA_HOLES: usize = 1024;
/// Largest mapping handed to a subflow at once (the DSS length field is 16 bits).
const MAX_MAPPING: usize = 65535;

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
    /// The peer sent an infinite mapping (after our MP_FAIL, or on its own).
    InfiniteMapping,
    /// We answered the peer's MP_FAIL with an infinite mapping.
    MpFail,
}

/// MP_TCPRST reason codes (RFC 8684 §3.6).
pub mod rst_reason {
    pub const UNSPECIFIED: u8 = 0;
    pub const MPTCP_ERROR: u8 = 1;
    pub const ADMIN_PROHIBITED: u8 = 3;
    pub const MIDDLEBOX: u8 = 6;
}

/// An MP_TCPRST option with `reason`, for a RST.
pub fn tcprst_option(reason: u8) -> OptionBytes {
    reset_options_with(None, reason)
}

/// Options for a RST: MP_FAIL with `fail_dsn` if a checksum failed, and
/// MP_TCPRST with `reason`.
pub(super) fn reset_options_with(fail_dsn: Option<u64>, reason: u8) -> OptionBytes {
    let mut out = OptionBytes::default();
    if let Some(dsn) = fail_dsn {
        push(&mut out, usize::MAX, MptcpOption::MpFail(MpFail { dsn }));
    }
    let rst = MptcpOption::TcpRst(TcpRst { flags: 0, reason });
    push(&mut out, usize::MAX, rst);
    out
}

/// What a connection did about DSS checksum failures (RFC 8684 §3.7), folded
/// into the stack's counters when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MptcpStats {
    /// MP_JOIN SYNs accepted, joins completed (both roles), and refused ones.
    pub join_syn_rx: u64,
    pub joins_established: u64,
    pub join_hmac_failures: u64,
    /// Bytes sent again on another subflow after theirs died or stalled.
    pub reinjected_bytes: u64,
    /// Data-level retransmission timeouts that mapped data again.
    pub data_rtx: u64,
    pub mp_prio_rx: u64,
    pub mp_prio_tx: u64,
    pub add_addr_tx: u64,
    pub add_addr_rx: u64,
    pub add_addr_echo_rx: u64,
    pub add_addr_hmac_failures: u64,
    pub rm_addr_tx: u64,
    pub rm_addr_rx: u64,
    pub mp_fail_tx: u64,
    pub mp_fail_rx: u64,
    pub infinite_map_tx: u64,
    pub infinite_map_rx: u64,
    pub checksum_errors: u64,
}

/// The MP_FAIL exchange after a DSS checksum failure on the only subflow
/// (RFC 8684 §3.7). The side that saw the bad checksum keeps delivering the
/// subflow's bytes in order as the data stream (what the middlebox made of
/// them, as plain TCP would) and repeats MP_FAIL until the peer answers; the
/// other side echoes MP_FAIL and puts an infinite mapping on its next data.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FailState {
    /// We saw the bad checksum: DSN of the failed mapping, sent in MP_FAIL.
    sent_dsn: Option<u64>,
    /// The peer answered (MP_FAIL echo, infinite mapping, unmapped data).
    answered: bool,
    /// Put MP_FAIL with this DSN on the next segment.
    send: Option<u64>,
    /// The peer's MP_FAIL asks us for an infinite mapping on our next data.
    infinite_map_pending: bool,
    timer: Option<Instant>,
    tries: u32,
}

/// Retransmission timeouts in a row after which what a subflow holds is sent
/// again on the others: one, as a timeout means the path lost a whole window
/// or died, and waiting for a second (twice as long) is that much more stall on
/// failover. It counts as stalled (no new data; backups take over) only after
/// two, so that one timeout on a live path does not wake a backup.
const REINJECT_BACKOFF: u32 = 1;
const STALL_BACKOFF: u32 = 2;

/// MP_FAIL repeats before the connection is reset instead.
const MAX_MP_FAIL_TRIES: u32 = 5;

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
}

pub struct MptcpConn {
    pub(super) role: Role,
    pub(super) version: MptcpVersion,
    /// v0 client: the third ACK must carry both keys (RFC 6824 §3.1).
    pub(super) v0_keys_pending: bool,
    /// A v1 SYN got plain TCP back and v0 is allowed: the endpoint opens the
    /// connection again with v0 (RFC 8684 §3.1).
    pub(super) retry_v0: bool,
    pub(super) phase: Phase,
    pub(super) fallback_reason: Option<FallbackReason>,
    pub(super) checksum: bool,
    pub(super) local_key: u64,
    pub(super) remote_key: Option<u64>,

    // Data sequence space, sending: snd_buf[0] has DSN snd_una.
    pub(super) snd_buf: RingBuffer,
    pub(super) snd_una: u64,
    /// Next DSN to hand to a subflow.
    pub(super) snd_nxt: u64,
    /// Right edge of the peer's connection-level window (DATA_ACK + window).
    pub(super) snd_wnd_end: u64,
    /// A DATA_ACK set `snd_wnd_end`: from then on it bounds what is mapped, even
    /// when it is `snd_una` (a zero window).
    pub(super) snd_wnd_known: bool,
    pub(super) data_fin_queued: bool,
    pub(super) data_fin_acked: bool,
    pub(super) send_was_full: bool,

    // Receiving: rcv_buf's next byte to read has DSN rcv_nxt - rcv_buf.len().
    pub(super) rcv_buf: RingBuffer,
    pub(super) assembler: Assembler,
    pub(super) rcv_nxt: u64,
    pub(super) peer_data_fin: Option<u64>,
    pub(super) peer_data_fin_done: bool,

    /// Per-subflow state; index 0 is the first subflow.
    pub(super) sf: Vec<SubflowState>,
    pub(super) scratch: Vec<u8>,
    /// Window last allowed to the subflow (the connection buffer's free space).
    pub(super) window_cap: usize,
    /// When to repeat an unacknowledged DATA_FIN, and how often it was repeated.
    pub(super) fin_timer: Option<Instant>,
    pub(super) fin_backoff: u32,
    /// Every live subflow sends a pure ACK (the DATA_FIN goes on all of them,
    /// as Linux sends it: the subflow that carried the data may be gone).
    pub(super) ack_all: bool,
    /// Data-level retransmission timer (see `retransmit.rs`).
    pub(super) rtx_timer: Option<Instant>,
    pub(super) rtx_backoff: u32,
    /// The peer's latest segment carried a DSS (or some other MPTCP option):
    /// it still speaks MPTCP. A peer that fell back sends plain ACKs, and data
    /// sent again at the data level would reach it as new bytes.
    pub(super) peer_speaks_mptcp: bool,
    pub(super) released: bool,
    /// The peer sent MP_FASTCLOSE with our key.
    pub(super) fastclosed: bool,
    /// The connection must be reset (a checksum failure with no way to fall
    /// back, or an unanswered MP_FAIL), with this MP_TCPRST reason.
    pub(super) reset_reason: Option<u8>,
    /// The receive side no longer reads mappings: subflow bytes are data bytes
    /// in order (after we sent MP_FAIL).
    pub(super) rx_fallback: bool,
    pub(super) fail: FailState,
    pub(super) stats: MptcpStats,

    pub(super) readable: bool,
    pub(super) writable: bool,

    /// Data-level ranges (DSN, length) of a subflow that died or stalled, to be
    /// sent again on the others (RFC 8684 §3.3.6).
    pub(super) reinject: VecDeque<(u64, u32)>,
    pub(super) scheduler: Box<dyn Scheduler + Send>,
    /// Every byte goes on every subflow.
    pub(super) redundant: bool,
    pub(super) max_subflows: usize,
    pub(super) pm: super::pm::PmState,
    /// A client offering v1 may start over with v0 (settings).
    pub(super) may_retry_v0: bool,
}

impl core::fmt::Debug for MptcpConn {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MptcpConn")
            .field("role", &self.role)
            .field("phase", &self.phase)
            .field("subflows", &self.sf.len())
            .field("snd_una", &self.snd_una)
            .field("snd_nxt", &self.snd_nxt)
            .field("rcv_nxt", &self.rcv_nxt)
            .finish_non_exhaustive()
    }
}

/// The hash of a protocol version: SHA-1 for v0 (RFC 6824), SHA-256 for v1.
pub fn version_alg(v: MptcpVersion) -> HashAlg {
    match v {
        MptcpVersion::V0 => HashAlg::Sha1,
        MptcpVersion::V1 => HashAlg::Sha256,
    }
}

impl MptcpConn {
    fn new(role: Role, version: MptcpVersion, local_key: u64, s: &MptcpSettings) -> Self {
        let idsn = crypto::idsn(version_alg(version), local_key);
        MptcpConn {
            role,
            version,
            v0_keys_pending: false,
            retry_v0: false,
            phase: Phase::Handshake,
            fallback_reason: None,
            checksum: s.checksum,
            local_key,
            remote_key: None,
            snd_buf: RingBuffer::new(s.send_buffer),
            snd_una: idsn.wrapping_add(1),
            snd_nxt: idsn.wrapping_add(1),
            snd_wnd_end: idsn.wrapping_add(1),
            snd_wnd_known: false,
            data_fin_queued: false,
            data_fin_acked: false,
            send_was_full: false,
            rcv_buf: RingBuffer::new(s.recv_buffer),
            // Subflows interleave small mappings: one lagging subflow leaves a
            // hole per mapping of the others.
            assembler: Assembler::new(MAX_DATA_HOLES),
            rcv_nxt: 0,
            peer_data_fin: None,
            peer_data_fin_done: false,
            sf: vec![SubflowState::new()],
            scratch: Vec::new(),
            window_cap: s.recv_buffer,
            fin_timer: None,
            fin_backoff: 0,
            ack_all: false,
            rtx_timer: None,
            rtx_backoff: 0,
            peer_speaks_mptcp: true,
            released: false,
            fastclosed: false,
            reset_reason: None,
            rx_fallback: false,
            fail: FailState::default(),
            stats: MptcpStats::default(),
            readable: false,
            writable: false,
            reinject: VecDeque::new(),
            scheduler: new_scheduler(s.scheduler),
            redundant: s.scheduler == SchedulerKind::Redundant,
            max_subflows: s.max_subflows,
            pm: Default::default(),
            may_retry_v0: s.retry_v0 && s.allow_v0,
        }
    }

    /// An active open offering `version` with `local_key` (drawn so its token,
    /// under that version's hash, is unique).
    pub fn client(version: MptcpVersion, local_key: u64, s: &MptcpSettings) -> Self {
        let mut c = MptcpConn::new(Role::Client, version, local_key, s);
        // v0 peers expect DSS checksums (the multipath-tcp.org kernel's default).
        c.checksum |= version == MptcpVersion::V0;
        c
    }

    /// A passive open answering the SYN's version (see [`Self::syn_version`]).
    pub fn server(syn: &TcpRepr<'_>, local_key: u64, s: &MptcpSettings) -> Option<Self> {
        let cap = find_mp_capable(syn)?;
        let version = Self::syn_version(syn, s)?;
        let mut c = MptcpConn::new(Role::Server, version, local_key, s);
        c.checksum |= cap.flags.checksum_required() || version == MptcpVersion::V0;
        if version == MptcpVersion::V0 {
            // The v0 SYN carries the client's key (RFC 6824 §3.1).
            if let Some(key) = cap.sender_key {
                c.learn_remote_key(key);
            }
        }
        Some(c)
    }

    /// The version we answer `syn` with: the one it offers, if allowed (RFC
    /// 8684 §3.1); `None` for plain TCP (Linux, too, answers v0 with TCP).
    pub fn syn_version(syn: &TcpRepr<'_>, s: &MptcpSettings) -> Option<MptcpVersion> {
        let cap = find_mp_capable(syn)?;
        if cap.flags.extensibility() {
            return None;
        }
        match cap.version {
            MptcpVersion::V1 if s.allow_v1 => Some(MptcpVersion::V1),
            MptcpVersion::V0 if s.allow_v0 && cap.sender_key.is_some() => Some(MptcpVersion::V0),
            _ => None,
        }
    }

    pub fn version(&self) -> MptcpVersion {
        self.version
    }

    pub(super) fn alg(&self) -> HashAlg {
        version_alg(self.version)
    }

    /// Hand what the application did before the handshake (data queued, a
    /// shutdown, a release) over to `next`, the connection opened again.
    pub fn carry_over(&mut self, next: &mut MptcpConn) {
        let mut buf = vec![0u8; self.snd_buf.len()];
        let n = self.snd_buf.dequeue(&mut buf);
        next.send(&buf[..n]);
        next.data_fin_queued = self.data_fin_queued;
        next.released = self.released;
    }

    /// Whether this segment is the v0 third ACK that carries both keys (taken).
    pub(super) fn take_v0_keys(&mut self, payload: usize) -> bool {
        payload == 0 && core::mem::take(&mut self.v0_keys_pending)
    }

    /// The v1 SYN got plain TCP back and v0 may be tried (taken).
    pub fn take_retry_v0(&mut self) -> bool {
        core::mem::take(&mut self.retry_v0)
    }

    /// Connection-level bytes the peer acknowledged (DATA_ACK).
    pub fn data_bytes_acked(&self) -> u64 {
        let first = crypto::idsn(self.alg(), self.local_key).wrapping_add(1);
        // `snd_una` stops at the DATA_FIN: its acknowledgement is a flag.
        self.snd_una.wrapping_sub(first)
    }

    /// Connection-level bytes received in order.
    pub fn data_bytes_received(&self) -> u64 {
        let Some(key) = self.remote_key else {
            return 0;
        };
        let first = crypto::idsn(self.alg(), key).wrapping_add(1);
        self.rcv_nxt
            .wrapping_sub(first)
            .saturating_sub(self.peer_data_fin_done as u64)
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
        crypto::token(self.alg(), self.local_key)
    }

    pub fn remote_token(&self) -> Option<u32> {
        self.remote_key.map(|k| crypto::token(self.alg(), k))
    }

    fn fall_back(&mut self, reason: FallbackReason, tcb: &mut Tcb) {
        if self.phase == Phase::Fallback {
            return;
        }
        if self.sf.len() > 1 {
            // With joined subflows there is no plain TCP to fall back to: reset,
            // as Linux does (RFC 8684 §3.7).
            self.reset_reason = Some(rst_reason::MPTCP_ERROR);
            return;
        }
        self.phase = Phase::Fallback;
        self.fallback_reason = Some(reason);
        // Unmapped data now goes to the subflow as plain TCP bytes.
        self.flush_fallback(tcb);
        tcb.set_window_cap(None);
    }

    fn learn_remote_key(&mut self, key: u64) {
        if self.remote_key.is_none() {
            self.remote_key = Some(key);
            let idsn = crypto::idsn(self.alg(), key);
            self.rcv_nxt = idsn.wrapping_add(1);
        }
    }

    // ----- input -----

    /// Look at an incoming segment's MPTCP options before the TCB processes it.
    pub fn on_segment(&mut self, i: usize, tcb: &mut Tcb, seg: &TcpRepr<'_>) {
        if self.phase == Phase::Fallback || self.sf[i].dead {
            return;
        }
        let ctx = ParseCtx::from_repr(seg);
        let mut saw_capable = None;
        let mut saw_dss = None;
        let mut saw_join = None;
        let mut saw_add_addr = false;
        let mut saw_any = false;
        for data in mptcp_options(seg) {
            let opt = MptcpOption::parse(data, ctx);
            saw_any |= opt.is_ok();
            match opt {
                Ok(MptcpOption::MpCapable(c)) => saw_capable = Some(c),
                Ok(MptcpOption::Dss(d)) => saw_dss = Some(d),
                // Acted on only when it names our own key (RFC 8684 §3.5).
                Ok(MptcpOption::FastClose(fc)) if fc.receiver_key == self.local_key => {
                    self.fastclosed = true;
                }
                Ok(MptcpOption::MpFail(m)) => self.on_mp_fail(tcb, m),
                Ok(MptcpOption::MpJoin(j)) => saw_join = Some(j),
                Ok(MptcpOption::AddAddr(a)) => {
                    saw_add_addr = true;
                    self.on_add_addr(&a);
                }
                Ok(MptcpOption::RemoveAddr(r)) => self.on_remove_addr(&r),
                // v1 MP_PRIO applies to the subflow it arrives on (RFC 8684
                // §3.3.8); a v0 one with an address id to every subflow to that
                // address of the peer (RFC 6824 §3.3.8).
                Ok(MptcpOption::MpPrio(p)) => {
                    match p.addr_id.filter(|_| self.version == MptcpVersion::V0) {
                        Some(id) => self
                            .sf
                            .iter_mut()
                            .filter(|s| s.remote_id == id && !s.dead)
                            .for_each(|s| s.remote_backup = p.backup),
                        None => self.sf[i].remote_backup = p.backup,
                    }
                    self.stats.mp_prio_rx += 1;
                }
                _ => {}
            }
        }
        if !seg.flags.syn() && !seg.flags.rst() {
            self.peer_speaks_mptcp = saw_any;
        }
        if i > 0 {
            self.on_join_segment(i, tcb, seg, saw_join);
            if self.sf[i].join_established() {
                if let Some(d) = saw_dss {
                    self.on_dss(i, tcb, seg, &d);
                }
            }
            return;
        }
        let f = seg.flags;
        match (self.role, self.phase) {
            (Role::Client, Phase::Handshake) if f.syn() && f.ack() => {
                let capable = saw_capable.filter(|c| c.version == self.version);
                match capable.and_then(|c| c.sender_key) {
                    Some(key) => {
                        if capable.is_some_and(|c| c.flags.checksum_required()) {
                            self.checksum = true;
                        }
                        self.learn_remote_key(key);
                        // Fully established at the server's first DATA_ACK. v0:
                        // the third ACK echoes both keys once (the server has had
                        // ours since the SYN), then data goes with DSS at once.
                        self.phase = Phase::PreEstablished;
                        if self.version == MptcpVersion::V0 {
                            self.v0_keys_pending = true;
                            self.sf[0].mapping_seen = true;
                        }
                    }
                    None if self.version == MptcpVersion::V1 && self.may_retry_v0 => {
                        self.retry_v0 = true;
                    }
                    None => self.fall_back(FallbackReason::NoMpCapableSynAck, tcb),
                }
                return;
            }
            (Role::Server, Phase::Handshake) if !f.syn() && f.ack() && !f.rst() => {
                match saw_capable {
                    Some(c) if c.receiver_key == Some(self.local_key) => {
                        if let Some(key) = c.sender_key {
                            self.learn_remote_key(key);
                        }
                        self.phase = Phase::Established;
                        self.sf[0].mapping_seen = true;
                    }
                    // v0: the keys came with the SYN; a DSS means the third ACK
                    // was lost and the client went on.
                    _ if self.version == MptcpVersion::V0 && saw_dss.is_some() => {
                        self.phase = Phase::Established;
                        self.sf[0].mapping_seen = true;
                    }
                    // Only the in-order segment decides (as in Linux): with the
                    // third ACK lost, later data may overtake the MP_CAPABLE one.
                    _ if seg.seq != tcb.irs() + 1 => {}
                    _ => {
                        self.fall_back(FallbackReason::NoMpCapableAck, tcb);
                        return;
                    }
                }
            }
            _ => {}
        }
        // The client's first data carries its mapping in MP_CAPABLE (RFC 8684
        // §3.1): the first mapping, from SSN 1 at the client's IDSN + 1. Linux
        // repeats it, with the same length, on every segment of that mapping
        // until it sees a DATA_ACK; each names the mapping, not itself.
        if let (Role::Server, Some(c)) = (self.role, saw_capable) {
            if let (Some(len), Some(key)) = (c.data_len, self.remote_key) {
                let unread = 1u32.wrapping_add(len as u32).wrapping_sub(tcb.recv_ssn()) as i32 > 0;
                if c.sender_key == Some(key) && !seg.payload.is_empty() && unread {
                    let dsn = crypto::idsn(self.alg(), key).wrapping_add(1);
                    let _ = self.sf[0].rx_map.insert(Mapping {
                        ssn: 1,
                        dsn,
                        len,
                        checksum: c.checksum,
                        data_fin: false,
                    });
                }
            }
        }
        if let Some(d) = saw_dss {
            self.on_dss(i, tcb, seg, &d);
        } else if self.rx_fallback && !seg.payload.is_empty() {
            // The peer fell back after our MP_FAIL but its infinite mapping was
            // lost: its data now comes without DSS.
            self.fail.answered = true;
            self.fall_back(FallbackReason::InfiniteMapping, tcb);
        } else if self.phase == Phase::PreEstablished
            && self.role == Role::Client
            && !f.syn()
            && !f.rst()
            && !saw_add_addr
        {
            // Linux falls back when the first segment from the server after the
            // handshake carries no DSS (RFC 8684 §3.1).
            self.fall_back(FallbackReason::NoMapping, tcb);
        }
    }

    fn on_dss(&mut self, i: usize, tcb: &mut Tcb, seg: &TcpRepr<'_>, d: &Dss) {
        if self.role == Role::Client && self.phase == Phase::PreEstablished && d.data_ack.is_some()
        {
            self.phase = Phase::Established;
        }
        if let Some(ack) = d.data_ack {
            let ack = ack.expand(self.snd_una);
            let data_end = self.snd_una.wrapping_add(self.snd_buf.len() as u64);
            // The DATA_FIN takes one DSN after the data (RFC 8684 §3.3.3).
            let fin_dsn = (self.data_fin_queued && self.snd_nxt == data_end).then_some(data_end);
            let data_ack = if fin_dsn.is_some_and(|f| ack == f.wrapping_add(1)) {
                self.data_fin_acked = true;
                data_end
            } else {
                ack
            };
            let advance = data_ack.wrapping_sub(self.snd_una);
            if advance as i64 > 0 && self.snd_nxt.wrapping_sub(data_ack) as i64 >= 0 {
                let data = (advance as usize).min(self.snd_buf.len());
                self.snd_buf.discard(data);
                self.snd_una = data_ack;
                self.rtx_progress();
                if self.send_was_full && data > 0 {
                    self.send_was_full = false;
                    self.writable = true;
                }
            }
            if ack.wrapping_sub(self.snd_una) as i64 >= 0 {
                // The subflow window is relative to the DATA_ACK (RFC 8684 §3.3.5).
                let wnd = tcb.scaled_window(seg.window) as u64;
                self.snd_wnd_end = ack.wrapping_add(wnd);
                self.snd_wnd_known = true;
            }
        }
        if let Some(m) = d.mapping {
            if m.data_len == 0 {
                self.stats.infinite_map_rx += 1;
                self.fail.answered = true;
                self.fall_back(FallbackReason::InfiniteMapping, tcb);
                return;
            }
            self.sf[i].mapping_seen = true;
            let dsn = m.expand_dsn(self.rcv_nxt);
            if d.data_fin {
                let fin = dsn.wrapping_add(m.data_len as u64 - 1);
                self.peer_data_fin = Some(fin);
            }
            // A DATA_FIN alone has SSN 0 and occupies no subflow byte.
            let data_len = m.data_len - d.data_fin as u16;
            if m.ssn != 0 && data_len > 0 && !self.rx_fallback {
                let _ = self.sf[i].rx_map.insert(Mapping {
                    ssn: m.ssn,
                    dsn,
                    len: data_len,
                    checksum: m.checksum,
                    data_fin: d.data_fin,
                });
            }
            self.check_data_fin();
        }
    }

    fn check_data_fin(&mut self) {
        if let Some(fin) = self.peer_data_fin {
            if !self.peer_data_fin_done && fin == self.rcv_nxt {
                self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
                self.peer_data_fin_done = true;
                self.readable = true;
            }
        }
    }

    /// MP_FAIL from the peer: either the answer to ours, or the peer saw a bad
    /// checksum in our data and wants an infinite mapping (RFC 8684 §3.7).
    fn on_mp_fail(&mut self, tcb: &mut Tcb, m: MpFail) {
        self.stats.mp_fail_rx += 1;
        if self.fail.sent_dsn.is_some() {
            self.fail.answered = true;
            self.fail.timer = None;
            return;
        }
        if self.sf.len() > 1 {
            // The peer resets the subflow; no infinite mapping with joins.
            return;
        }
        if !self.fail.infinite_map_pending {
            self.fail.infinite_map_pending = true;
            self.fail.send = Some(m.dsn);
            tcb.force_ack();
        }
    }

    /// A mapping failed its DSS checksum. With one subflow and the data level in
    /// order up to the mapping, fall back by MP_FAIL; otherwise reset.
    fn on_checksum_error(&mut self, i: usize, tcb: &mut Tcb, m: &Mapping) {
        self.stats.checksum_errors += 1;
        if self.sf.len() > 1 {
            // With other subflows (or after any join) there is no falling back:
            // this subflow goes (RST with MP_FAIL and MP_TCPRST), the peer sends
            // the data again on another, as Linux does.
            self.sf[i].reset_reason = Some(rst_reason::MIDDLEBOX);
            self.sf[i].fail_dsn = Some(m.dsn);
            return;
        }
        let in_order = m.dsn == self.rcv_nxt && self.assembler.is_empty();
        if !in_order || self.fail.infinite_map_pending {
            self.reset_reason = Some(rst_reason::MIDDLEBOX);
            self.fail.send = Some(m.dsn);
            return;
        }
        self.rx_fallback = true;
        self.sf[i].rx_map = Mappings::new(MAX_MAPPINGS);
        self.fail.sent_dsn = Some(m.dsn);
        self.fail.send = Some(m.dsn);
        tcb.force_ack();
    }

    /// In receive fallback: the subflow's bytes are the data stream, in order.
    fn pull_unmapped(&mut self, tcb: &mut Tcb) {
        loop {
            let n = tcb.recv_available().min(self.rcv_buf.free());
            if n == 0 {
                break;
            }
            if self.scratch.len() < n.min(MAX_MAPPING) {
                self.scratch.resize(n.min(MAX_MAPPING), 0);
            }
            let n = n.min(self.scratch.len());
            let got = tcb.recv(&mut self.scratch[..n]).unwrap_or(0);
            if got == 0 {
                break;
            }
            self.rcv_buf.enqueue(&self.scratch[..got]);
            self.rcv_nxt = self.rcv_nxt.wrapping_add(got as u64);
            self.readable = true;
        }
        self.check_data_fin();
        self.window_cap = self.rcv_buf.free();
        tcb.set_window_cap(Some(self.window_cap));
    }

    /// After the TCB took a segment: move in-order subflow bytes to the
    /// connection level by their mappings.
    pub fn pull(&mut self, i: usize, tcb: &mut Tcb) {
        if self.phase == Phase::Fallback || self.remote_key.is_none() {
            return;
        }
        if self.rx_fallback {
            return self.pull_unmapped(tcb);
        }
        loop {
            let avail = tcb.recv_available();
            if avail == 0 {
                break;
            }
            let ssn = tcb.recv_ssn();
            let sf = &mut self.sf[i];
            let Some(m) = sf.rx_map.find(ssn).copied() else {
                if i == 0 && (!sf.mapping_seen || sf.rx_map.is_empty()) {
                    // Data without any mapping: options were stripped on the path.
                    self.fall_back(FallbackReason::NoMapping, tcb);
                }
                break;
            };
            let in_map = m.ssn_end().wrapping_sub(ssn) as usize;
            let mut n = avail.min(in_map);
            let verified = sf.verified_end == Some(m.ssn_end());
            if self.checksum && m.checksum.is_some() && !verified {
                // A mapping is delivered only whole and verified (RFC 8684 §3.3.1).
                if ssn != m.ssn || avail < m.len as usize {
                    break;
                }
                let mut sum = DssChecksum::new(m.dsn, m.ssn, m.len + m.data_fin as u16);
                let (a, b) = tcb.peek_recv(0, m.len as usize);
                sum.update(a);
                sum.update(b);
                if !sum.verify(m.checksum.unwrap_or(0)) {
                    self.on_checksum_error(i, tcb, &m);
                    if self.rx_fallback {
                        return self.pull_unmapped(tcb);
                    }
                    break;
                }
                // The data level may take it in parts (as its buffer frees up).
                self.sf[i].verified_end = Some(m.ssn_end());
                n = m.len as usize;
            }
            let dsn = m.dsn.wrapping_add(ssn.wrapping_sub(m.ssn) as u64);
            let room = self.rcv_buf.free();
            let offset = dsn.wrapping_sub(self.rcv_nxt);
            if (offset as i64) < 0 {
                // Already have these bytes (data-level duplicate): drop them.
                let dup = ((-(offset as i64)) as usize).min(n);
                self.discard_subflow(tcb, dup);
                self.sf[i].rx_map.release_before(tcb.recv_ssn());
                continue;
            }
            let offset = offset as usize;
            if offset >= room {
                break;
            }
            n = n.min(room - offset);
            if self.scratch.len() < n {
                self.scratch.resize(n.min(MAX_MAPPING), 0);
            }
            n = n.min(self.scratch.len());
            // Out-of-order data is taken from the subflow only if the data level
            // can track it: the subflow has acknowledged it, so it must not be
            // dropped. Left in the subflow, it waits for the hole to fill.
            if offset > 0 && self.assembler.add(offset, n).is_err() {
                break;
            }
            let got = tcb.recv(&mut self.scratch[..n]).unwrap_or(0);
            debug_assert_eq!(got, n, "the subflow holds {avail} bytes");
            if got == 0 {
                break;
            }
            self.rcv_buf.write_unallocated(offset, &self.scratch[..got]);
            let ready = if offset == 0 {
                self.assembler.advance(got);
                got + self.assembler.take_front()
            } else {
                0
            };
            if ready > 0 {
                self.rcv_buf.commit(ready);
                self.rcv_nxt = self.rcv_nxt.wrapping_add(ready as u64);
                self.readable = true;
            }
            self.sf[i].rx_map.release_before(tcb.recv_ssn());
        }
        self.check_data_fin();
        self.window_cap = self.rcv_buf.free();
        tcb.set_window_cap(Some(self.window_cap));
    }

    fn discard_subflow(&mut self, tcb: &mut Tcb, mut n: usize) {
        let mut junk = [0u8; 2048];
        while n > 0 {
            let k = tcb.recv(&mut junk[..n.min(2048)]).unwrap_or(0);
            if k == 0 {
                break;
            }
            n -= k;
        }
    }

    // ----- output -----

    /// In fallback: move what the data level still holds to the subflow, and
    /// let the subflow's acknowledgements free it.
    pub fn flush_fallback(&mut self, tcb: &mut Tcb) {
        let end = self.snd_una.wrapping_add(self.snd_buf.len() as u64);
        let offset = self.snd_nxt.wrapping_sub(self.snd_una) as usize;
        let (a, b) = self
            .snd_buf
            .peek(offset, self.snd_buf.len().saturating_sub(offset));
        let mut moved = 0;
        for part in [a, b] {
            moved += tcb.send(part).unwrap_or(0);
        }
        self.snd_nxt = self.snd_nxt.wrapping_add(moved as u64);
        let acked = tcb_acked_bytes(tcb, self);
        if acked > 0 {
            self.snd_buf.discard(acked);
            self.snd_una = self.snd_una.wrapping_add(acked as u64);
            if self.send_was_full {
                self.send_was_full = false;
                self.writable = true;
            }
        }
        if self.data_fin_queued && self.snd_nxt == end {
            tcb.shutdown();
        }
    }

    /// Bytes the application sent that the subflow has not taken yet.
    pub fn send_pending(&self) -> usize {
        let end = self.snd_una.wrapping_add(self.snd_buf.len() as u64);
        end.wrapping_sub(self.snd_nxt) as usize
    }

    /// Hand connection-level data to the subflow, one mapping per chunk.
    /// Before subflow `i` sends: its housekeeping (acknowledged mappings, join
    /// and stall timers, DATA_FIN, closing) and up to `budget` bytes of data
    /// mapped onto it; returns the bytes mapped.
    pub fn push(&mut self, now: Instant, i: usize, tcb: &mut Tcb, budget: usize) -> usize {
        let end = self.snd_una.wrapping_add(self.snd_buf.len() as u64);
        if self.phase == Phase::Fallback {
            tcb.set_window_cap(None);
            self.flush_fallback(tcb);
            return 0;
        }
        if self.fail.sent_dsn.is_some() && !self.fail.answered && self.fail.timer.is_none() {
            self.fail.timer = Some(now + tcb.rto());
        }
        if self.sf[i].dead {
            return 0;
        }
        self.sf[i].tx_map.release_before(tcb.acked_ssn());
        if self.sf.len() > 1 {
            self.subflow_upkeep(now, i, tcb);
        }
        self.pm_timers(now);
        let mapped = if self.sf[i].join_established() {
            self.map_data(i, tcb, budget)
        } else {
            0
        };
        if self.data_fin_queued && self.snd_nxt == end && !self.data_fin_acked() {
            if self.fin_timer.is_none() {
                // The DATA_FIN rides on segments without data.
                self.ack_all = true;
                self.fin_timer = Some(now + tcb.rto());
            }
        } else {
            self.fin_timer = None;
        }
        // Both directions done at the data level (or nobody will read any more):
        // close the subflow.
        if self.data_fin_acked() && (self.peer_data_fin_done || self.released) {
            tcb.shutdown();
        }
        mapped
    }

    /// Join timers, and reinjection when the subflow times out: data-level
    /// retransmission never waits for it. A stalled subflow gets no new data
    /// until it makes progress again.
    fn subflow_upkeep(&mut self, now: Instant, i: usize, tcb: &mut Tcb) {
        self.join_timers(now, i, tcb);
        let backoff = tcb.rto_backoff();
        if backoff >= REINJECT_BACKOFF && !self.sf[i].reinjected {
            self.reinject_from(i);
            self.sf[i].reinjected = true;
        }
        if backoff >= STALL_BACKOFF {
            self.sf[i].stalled = true;
        } else if backoff == 0 {
            self.sf[i].stalled = false;
            self.sf[i].reinjected = false;
        }
    }

    /// Queue what subflow `i` holds beyond the DATA_ACK for the other subflows.
    fn reinject_from(&mut self, i: usize) {
        let una = self.snd_una;
        for m in self.sf[i].tx_map.iter() {
            let end = m.dsn.wrapping_add(m.len as u64);
            if (end.wrapping_sub(una) as i64) <= 0 {
                continue;
            }
            let start = if (m.dsn.wrapping_sub(una) as i64) >= 0 {
                m.dsn
            } else {
                una
            };
            self.reinject
                .push_back((start, end.wrapping_sub(start) as u32));
        }
    }

    /// Subflow `i` closed or was reset: what it carried goes to the others.
    pub fn subflow_closed(&mut self, i: usize) {
        if self.sf[i].dead {
            return;
        }
        if !self.sf[i].reinjected {
            self.reinject_from(i);
        }
        let sf = &mut self.sf[i];
        sf.dead = true;
        sf.tx_map = Mappings::new(0);
        sf.rx_map = Mappings::new(0);
    }

    /// Whether data waits to be mapped onto a subflow.
    pub fn has_pending(&self) -> bool {
        self.send_pending() > 0 || !self.reinject.is_empty()
    }

    /// Map up to `budget` bytes onto subflow `i`: reinjections first, then new data.
    fn map_data(&mut self, i: usize, tcb: &mut Tcb, budget: usize) -> usize {
        let end = self.snd_una.wrapping_add(self.snd_buf.len() as u64);
        // v1's first data rides in MP_CAPABLE, alone; v0 has no such form.
        let v1_first = self.phase == Phase::PreEstablished && self.version == MptcpVersion::V1;
        match self.phase {
            Phase::Handshake => return 0,
            // Until the server acknowledged the keys, only the first mapping goes
            // out (it rides in MP_CAPABLE).
            Phase::PreEstablished
                if v1_first && (self.snd_nxt != self.snd_una || !self.sf[i].tx_map.is_empty()) =>
            {
                return 0
            }
            _ => {}
        }
        let mut left = budget;
        let mss = tcb.mss().max(1);
        let chunk_max = if v1_first {
            // One segment: it carries its mapping in MP_CAPABLE, and a server that
            // lost the third ACK would fall back on seeing a DSS first.
            mss.min(MAX_MAPPING)
        } else {
            (MAX_MAPPING / mss * mss).max(mss).min(MAX_MAPPING)
        };
        loop {
            let unmapped = end.wrapping_sub(self.snd_nxt) as usize;
            let window = self.snd_wnd_end.wrapping_sub(self.snd_nxt) as i64;
            let window = if window > 0 { window as usize } else { 0 };
            // Before the first DATA_ACK the subflow window is the only bound.
            // After it, a zero window means zero: a subflow's own window may be
            // stale (the peer's updates went out on the others), and a receiver
            // such as Linux drops data beyond its connection-level window even
            // though the subflow acknowledges it — lost for good, as nothing
            // retransmits subflow-acknowledged data at the data level.
            let window = if !self.snd_wnd_known && window == 0 {
                tcb.snd_wnd().max(mss)
            } else {
                window
            };
            if left == 0 {
                break;
            }
            if !self.reinject.is_empty() {
                match self.map_reinjection(i, tcb, left.min(chunk_max)) {
                    0 => break,
                    n => {
                        left -= n;
                        continue;
                    }
                }
            }
            let n = unmapped
                .min(window)
                .min(tcb.send_capacity())
                .min(chunk_max)
                .min(left);
            if n == 0 {
                break;
            }
            // Data never goes to the subflow without its mapping recorded. A
            // mapping none of whose bytes went out yet simply grows.
            let ssn = tcb.next_ssn();
            let offset = self.snd_nxt.wrapping_sub(self.snd_una) as usize;
            if !self.checksum {
                let unsent = tcb.sent_ssn();
                let snd_nxt = self.snd_nxt;
                if let Some(last) = self.sf[i].tx_map.last_mut() {
                    let grows = last.ssn_end() == ssn
                        && last.dsn.wrapping_add(last.len as u64) == snd_nxt
                        && (last.ssn.wrapping_sub(unsent) as i32) >= 0
                        && last.len as usize + n <= chunk_max;
                    if grows {
                        let (a, b) = self.snd_buf.peek(offset, n);
                        let taken = tcb.send(a).unwrap_or(0) + tcb.send(b).unwrap_or(0);
                        last.len += taken as u16;
                        self.snd_nxt = self.snd_nxt.wrapping_add(taken as u64);
                        let nxt = self.snd_nxt;
                        self.carried(i, nxt);
                        if taken == 0 {
                            break;
                        }
                        left -= taken.min(left);
                        continue;
                    }
                }
            }
            if self.sf[i].tx_map.is_full() {
                break;
            }
            let (a, b) = self.snd_buf.peek(offset, n);
            let mut sum = self
                .checksum
                .then(|| DssChecksum::new(self.snd_nxt, ssn, n as u16));
            let mut taken = 0;
            for part in [a, b] {
                if let Some(s) = &mut sum {
                    s.update(part);
                }
                taken += tcb.send(part).unwrap_or(0);
            }
            debug_assert_eq!(
                taken,
                n,
                "state {:?} cap {} phase {:?}",
                tcb.state(),
                tcb.send_capacity(),
                self.phase
            );
            let _ = self.sf[i].tx_map.insert(Mapping {
                ssn,
                dsn: self.snd_nxt,
                len: n as u16,
                checksum: sum.map(|s| s.finish()),
                data_fin: false,
            });
            self.snd_nxt = self.snd_nxt.wrapping_add(n as u64);
            let nxt = self.snd_nxt;
            self.carried(i, nxt);
            left -= n;
            if v1_first {
                break;
            }
        }
        budget - left
    }

    /// Send the front of the reinjection queue on subflow `i` under a new
    /// mapping (same DSNs); the bytes mapped.
    fn map_reinjection(&mut self, i: usize, tcb: &mut Tcb, max: usize) -> usize {
        while let Some(&(dsn, len)) = self.reinject.front() {
            let end = dsn.wrapping_add(len as u64);
            let una = self.snd_una;
            if (end.wrapping_sub(una) as i64) <= 0 {
                self.reinject.pop_front();
                continue;
            }
            let start = if (dsn.wrapping_sub(una) as i64) >= 0 {
                dsn
            } else {
                una
            };
            let n = (end.wrapping_sub(start) as usize).min(max);
            let taken = self.map_range(i, tcb, start, n);
            let rest = end.wrapping_sub(start) as usize - taken;
            if rest == 0 {
                self.reinject.pop_front();
            } else if let Some(front) = self.reinject.front_mut() {
                *front = (start.wrapping_add(taken as u64), rest as u32);
            }
            self.stats.reinjected_bytes += taken as u64;
            return taken;
        }
        0
    }

    /// Put up to `n` bytes from DSN `start` (not below the DATA_ACK, already
    /// handed out once) on subflow `i` under a new mapping; the bytes taken.
    fn map_range(&mut self, i: usize, tcb: &mut Tcb, start: u64, n: usize) -> usize {
        let n = n.min(tcb.send_capacity()).min(MAX_MAPPING);
        if n == 0 || self.sf[i].tx_map.is_full() {
            return 0;
        }
        let ssn = tcb.next_ssn();
        let offset = start.wrapping_sub(self.snd_una) as usize;
        let (a, b) = self.snd_buf.peek(offset, n);
        let mut sum = self
            .checksum
            .then(|| DssChecksum::new(start, ssn, n as u16));
        let mut taken = 0;
        for part in [a, b] {
            if let Some(s) = &mut sum {
                s.update(part);
            }
            taken += tcb.send(part).unwrap_or(0);
        }
        let _ = self.sf[i].tx_map.insert(Mapping {
            ssn,
            dsn: start,
            len: taken as u16,
            checksum: sum.map(|s| s.finish()),
            data_fin: false,
        });
        self.carried(i, start.wrapping_add(taken as u64));
        taken
    }

    /// Subflow `i` has carried data up to DSN `end`.
    fn carried(&mut self, i: usize, end: u64) {
        let c = &mut self.sf[i].carried_end;
        if c.is_none_or(|c| (end.wrapping_sub(c) as i64) > 0) {
            *c = Some(end);
        }
    }

    /// The redundant scheduler: subflow `i` carries the whole data stream in
    /// order from where it stands, within `room` and the peer's window; whoever
    /// runs ahead hands out new data.
    pub fn redundant_push(&mut self, i: usize, tcb: &mut Tcb, room: usize) {
        let end = self.snd_una.wrapping_add(self.snd_buf.len() as u64);
        let limit = if (self.snd_wnd_end.wrapping_sub(end) as i64) < 0 {
            self.snd_wnd_end
        } else {
            end
        };
        let mut left = room;
        while left > 0 {
            let una = self.snd_una;
            let from = match self.sf[i].carried_end {
                Some(c) if (c.wrapping_sub(una) as i64) > 0 => c,
                _ => una,
            };
            let n = (limit.wrapping_sub(from) as i64).max(0) as usize;
            if n == 0 {
                break;
            }
            let taken = self.map_range(i, tcb, from, n.min(left));
            if taken == 0 {
                break;
            }
            let reached = from.wrapping_add(taken as u64);
            if (reached.wrapping_sub(self.snd_nxt) as i64) > 0 {
                self.snd_nxt = reached;
            }
            left -= taken;
        }
    }

    pub fn pick_subflow(&mut self, views: &[super::scheduler::SubflowView]) -> Option<usize> {
        self.scheduler.pick(views)
    }

    pub fn is_redundant(&self) -> bool {
        self.redundant
    }

    /// Both directions finished at the data level.
    pub fn data_level_done(&self) -> bool {
        self.data_fin_acked && self.peer_data_fin_done
    }

    /// The peer's DATA_FIN arrived (and all data before it).
    pub fn peer_data_finished(&self) -> bool {
        self.peer_data_fin_done
    }

    pub fn join_timeout(&mut self, now: Instant, i: usize, tcb: &mut Tcb) {
        self.join_timers(now, i, tcb);
    }

    /// Every live subflow should send a pure ACK now (taken).
    pub fn take_ack_all(&mut self) -> bool {
        core::mem::take(&mut self.ack_all)
    }

    /// The DATA_FIN, MP_FAIL, data retransmission and join repeat timers.
    pub fn poll_at(&self) -> Option<Instant> {
        let joins = (1..self.sf.len()).filter_map(|i| self.join_timer(i));
        [
            self.fin_timer,
            self.fail.timer,
            self.pm_poll_at(),
            self.rtx_poll_at(),
        ]
        .into_iter()
        .flatten()
        .chain(joins)
        .min()
    }

    /// Ask for subflow `i` to be a backup or not (MP_PRIO on its next segment).
    pub fn set_local_backup(&mut self, i: usize, backup: bool) {
        let sf = &mut self.sf[i];
        if sf.local_backup != backup && !sf.dead {
            sf.local_backup = backup;
            sf.prio_pending = Some(backup);
        }
    }

    pub fn on_timeout(&mut self, now: Instant, tcb: &mut Tcb) {
        self.pm_timers(now);
        if self.fail.timer.is_some_and(|t| t <= now) {
            self.fail.tries += 1;
            if self.fail.answered || self.phase == Phase::Fallback {
                self.fail.timer = None;
            } else if self.fail.tries > MAX_MP_FAIL_TRIES {
                // Linux resets too when MP_FAIL stays unanswered.
                self.fail.timer = None;
                self.reset_reason = Some(rst_reason::MIDDLEBOX);
            } else {
                self.fail.send = self.fail.sent_dsn;
                tcb.force_ack();
                self.fail.timer = Some(now + tcb.rto() * (1 << self.fail.tries));
            }
        }
        if self.fin_timer.is_some_and(|t| t <= now) {
            if self.pending_data_fin().is_some() && self.phase != Phase::Fallback {
                self.ack_all = true;
                self.fin_backoff = (self.fin_backoff + 1).min(6);
                self.fin_timer = Some(now + tcb.rto() * (1 << self.fin_backoff));
            } else {
                self.fin_timer = None;
            }
        }
    }

    /// The application read: take more from the subflow and, if the window opened
    /// materially, tell the peer.
    pub fn after_read(&mut self, i: usize, tcb: &mut Tcb) {
        let before = self.window_cap;
        self.pull(i, tcb);
        let now_free = self.rcv_buf.free();
        let step = (self.rcv_buf.capacity() / 4).max(1);
        if now_free >= before + step || (before < 2 * tcb.mss() && now_free >= 2 * tcb.mss()) {
            tcb.force_ack();
        }
    }

    /// The application gave up the connection.
    pub fn release(&mut self) {
        self.released = true;
    }

    /// New data arrived after the application gave up the connection.
    pub fn released_with_data(&self) -> bool {
        self.released && !self.rcv_buf.is_empty()
    }

    fn data_fin_acked(&self) -> bool {
        self.data_fin_acked
    }

    // ----- application -----

    pub fn send(&mut self, data: &[u8]) -> usize {
        let n = self.snd_buf.enqueue(data);
        if n < data.len() {
            self.send_was_full = true;
        }
        n
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

    pub fn recv_available(&self) -> usize {
        self.rcv_buf.len()
    }

    /// Read connection-level data; `None` at the end of the peer's data.
    pub fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        let n = self.rcv_buf.dequeue(buf);
        if n == 0 && !buf.is_empty() && self.peer_data_fin_done {
            return None;
        }
        Some(n)
    }

    /// Whether everything the peer will send has been read.
    pub fn peer_finished(&self) -> bool {
        self.peer_data_fin_done && self.rcv_buf.is_empty()
    }

    pub fn shutdown(&mut self) {
        self.data_fin_queued = true;
    }

    /// An MP_FAIL exchange is under way (or done): the connection is heading
    /// for a fallback.
    pub(super) fn checksum_failure_pending(&self) -> bool {
        self.fail.sent_dsn.is_some() || self.fail.infinite_map_pending || self.rx_fallback
    }

    /// Whether the connection must be reset (a checksum failure that could not
    /// be recovered by falling back).
    pub fn must_reset(&self) -> bool {
        self.reset_reason.is_some()
    }

    pub fn stats(&self) -> MptcpStats {
        self.stats
    }

    /// Options for the RST of a reset we decided on while processing input:
    /// MP_FAIL with the failed mapping's DSN and MP_TCPRST with the reason.
    pub fn reset_options(&self) -> OptionBytes {
        match self.reset_reason {
            Some(reason) => reset_options_with(self.fail.send.or(self.fail.sent_dsn), reason),
            None => OptionBytes::default(),
        }
    }

    /// Whether the peer fast-closed the connection (cleared when read).
    pub fn take_fastclose(&mut self) -> bool {
        core::mem::take(&mut self.fastclosed)
    }

    /// Options for a RST that aborts the connection: MP_FASTCLOSE with the peer's
    /// key (so it drops the whole connection) and MP_TCPRST (RFC 8684 §3.5, §3.6).
    pub fn rst_options(&self) -> OptionBytes {
        let mut out = OptionBytes::default();
        if self.phase == Phase::Fallback {
            return out;
        }
        if let Some(key) = self.remote_key {
            let close = MptcpOption::FastClose(FastClose { receiver_key: key });
            push(&mut out, usize::MAX, close);
        }
        let reason = rst_reason::UNSPECIFIED;
        push(
            &mut out,
            usize::MAX,
            MptcpOption::TcpRst(TcpRst { flags: 0, reason }),
        );
        out
    }

    pub fn take_readable(&mut self) -> bool {
        core::mem::take(&mut self.readable)
    }

    pub fn take_writable(&mut self) -> bool {
        core::mem::take(&mut self.writable)
    }
}

fn tcb_acked_bytes(tcb: &Tcb, c: &MptcpConn) -> usize {
    let unacked_in_subflow = tcb.send_queued();
    let handed = c.snd_nxt.wrapping_sub(c.snd_una) as usize;
    handed.saturating_sub(unacked_in_subflow)
}

fn find_mp_capable(seg: &TcpRepr<'_>) -> Option<MpCapable> {
    let ctx = ParseCtx::from_repr(seg);
    mptcp_options(seg).find_map(|d| match MptcpOption::parse(d, ctx) {
        Ok(MptcpOption::MpCapable(c)) => Some(c),
        _ => None,
    })
}

/// The options hook of subflow `i`: what its outgoing segments carry.
pub struct SubflowHooks<'a> {
    pub conn: &'a mut MptcpConn,
    pub i: usize,
}

impl SegmentHooks for SubflowHooks<'_> {
    fn segment_options(&mut self, seg: &OutSegment, room: usize, out: &mut OptionBytes) -> usize {
        super::handshake::options_for(self.conn, self.i, seg, room, out)
    }
}

/// What `handshake.rs` needs to read of the connection.
impl MptcpConn {
    pub(super) fn role(&self) -> Role {
        self.role
    }
    pub(super) fn data_ack(&self) -> u64 {
        self.rcv_nxt
    }
    pub(super) fn mapping_for(&self, i: usize, ssn: u32) -> Option<Mapping> {
        self.sf[i].tx_map.find(ssn).copied()
    }
    /// MP_FAIL to put on the next segment (taken: sent once per request).
    pub(super) fn take_mp_fail(&mut self) -> Option<u64> {
        let dsn = self.fail.send.take()?;
        self.stats.mp_fail_tx += 1;
        Some(dsn)
    }
    /// Whether the next data segment must carry an infinite mapping.
    pub(super) fn infinite_map_pending(&self) -> bool {
        self.fail.infinite_map_pending && self.phase != Phase::Fallback
    }
    /// The infinite mapping went out on a segment whose first byte has DSN
    /// `dsn`: from now on this is plain TCP. The data level moves its unmapped
    /// bytes to the subflow on the next `push`.
    pub(super) fn infinite_map_sent(&mut self) {
        self.stats.infinite_map_tx += 1;
        self.phase = Phase::Fallback;
        self.fallback_reason = Some(FallbackReason::MpFail);
    }
    /// An MP_PRIO to put on subflow `i`'s next segment (taken).
    pub(super) fn take_prio(&mut self, i: usize) -> Option<bool> {
        let b = self.sf[i].prio_pending.take()?;
        self.stats.mp_prio_tx += 1;
        Some(b)
    }
    pub(super) fn snd_una(&self) -> u64 {
        self.snd_una
    }
    pub(super) fn dsn_of_sent(&self, i: usize, ssn: u32) -> Option<u64> {
        self.sf[i].tx_map.find(ssn).and_then(|m| m.dsn_of(ssn))
    }
    /// The DATA_FIN's DSN while it still needs sending.
    pub(super) fn pending_data_fin(&self) -> Option<u64> {
        let end = self.snd_una.wrapping_add(self.snd_buf.len() as u64);
        (self.data_fin_queued && self.snd_nxt == end && !self.data_fin_acked()).then_some(end)
    }
}
