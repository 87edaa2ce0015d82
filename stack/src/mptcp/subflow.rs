//! What the MPTCP level keeps per subflow: the mappings of the bytes sent and
//! received on it, its address ids and priority, where its MP_JOIN handshake
//! stands, and its part in reinjection. It lives beside the subflow's TCB in one
//! `conn::Subflow` value; the connection level (`DataLevel`) is handed both
//! whenever it works on that subflow.

use super::mapping::Mappings;
use crate::time::Instant;
use crate::wire::mptcp::{Dss, EncodedOption};
use crate::wire::Dsn;

/// Mappings remembered per subflow and direction: enough for a full 8 MiB window
/// of one-segment mappings.
pub(super) const MAX_MAPPINGS: usize = 8192;

/// Where a joined subflow's MP_JOIN handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinPhase {
    /// Active: our SYN with MP_JOIN is out.
    SynSent,
    /// Passive: our SYN/ACK with the truncated HMAC is out; the third ACK must
    /// bring the full HMAC.
    SynReceived,
    /// Active: the peer's HMAC checked; our third ACK (full HMAC) repeats until
    /// the peer acknowledges it (RFC 8684 §3.2).
    AckSent,
    /// Both HMACs checked: the subflow may carry data.
    Established,
}

#[derive(Debug, Clone, Copy)]
pub struct Join {
    pub(super) phase: JoinPhase,
    pub(super) local_nonce: u32,
    pub(super) remote_nonce: u32,
    /// When to repeat the third ACK (active side).
    pub(super) timer: Option<Instant>,
    pub(super) tries: u32,
}

#[derive(Debug, Clone)]
pub struct SubflowMp {
    pub(super) tx_map: Mappings,
    pub(super) rx_map: Mappings,
    /// Set once the peer's first DSS arrived on this subflow (or, on the first
    /// subflow, its keys): from then on its data is expected to be mapped.
    pub(super) mapping_seen: bool,
    /// A mapping of the peer's data arrived on this subflow (`mapping_seen`
    /// is set by the keys too): data without one after that is ambiguous
    /// (`unmapped.rs`).
    pub(super) mapped_rx: bool,
    /// End of the last mapping whose checksum was verified: the rest of it may
    /// be taken without checking again.
    pub(super) verified_end: Option<u32>,
    /// How far our data was acknowledged (relative SSN, the FIN not counted)
    /// when the peer's last acceptable segment had been processed.
    pub(super) data_acked: u32,
    /// The peer's FIN has arrived (in order) on this subflow.
    pub(super) fin_seen: bool,
    /// The peer's FIN came on a segment without any MPTCP option (perhaps
    /// out of order, taken in order later by a segment with options).
    pub(super) plain_fin: bool,
    /// Address ids (RFC 8684 §3.4): ours for the local address, the peer's for
    /// the remote one. The first subflow's are 0.
    pub local_id: u8,
    pub remote_id: u8,
    /// We asked for this subflow to be a backup (our endpoint's flag, sent as
    /// MP_JOIN's or MP_PRIO's B bit).
    pub local_backup: bool,
    /// The peer asked for it (B bit in its MP_JOIN or MP_PRIO).
    pub remote_backup: bool,
    /// An MP_PRIO to send with this B bit.
    pub(super) prio_pending: Option<bool>,
    /// A pure ACK is owed for the DATA_ACK an address option crowded out.
    pub(super) data_ack_owed: bool,
    /// The DSS mapping (as received) that `direct.rs` last delivered a
    /// segment's bytes by, checked against the known ones and recorded
    /// there: `on_dss` has nothing left to do with it.
    pub(super) direct_map: Option<crate::wire::mptcp::Mapping>,
    /// `None` on the first subflow (MP_CAPABLE opened it, RFC 8684 §3.1).
    pub(super) join: Option<Join>,
    /// The subflow closed; what it held unacknowledged went to the others.
    pub(super) closed: bool,
    /// Its unacknowledged data was sent again on the others after a
    /// retransmission timeout; cleared when it makes progress again.
    pub(super) reinjected: bool,
    /// Repeated timeouts: it gets no new data while another subflow can take
    /// it; cleared when it makes progress again.
    pub(super) stalled: bool,
    /// When the data level last took bytes from this subflow (receive
    /// auto-tuning asks whether every usable path delivered in a measure).
    pub(super) delivered_at: Option<Instant>,
    /// End of the data this subflow has carried (the redundant scheduler's
    /// cursor).
    pub(super) carried_end: Option<Dsn>,
    /// The peer withdrew this subflow's address (REMOVE_ADDR): a probe went
    /// out at `.0`; without an answer by `.1` the subflow is reset.
    path_check: Option<(Instant, Instant)>,
    /// The DSS this subflow sent last, and its bytes (`options::push_dss`).
    pub(super) last_dss: Option<(Dss, EncodedOption)>,
}

impl SubflowMp {
    /// What a scheduling round may change of the subflow (see
    /// `Connection::schedule`).
    #[cfg(debug_assertions)]
    pub fn round_state(&self) -> impl PartialEq + core::fmt::Debug {
        let last = self.tx_map.iter().last().copied();
        (
            self.tx_map.len(),
            last,
            self.reinjected,
            self.stalled,
            self.carried_end,
        )
    }

    /// The first subflow, opened by MP_CAPABLE (also the state a plain TCP
    /// connection's only subflow carries, unused).
    pub fn initial() -> Self {
        SubflowMp {
            tx_map: Mappings::new(MAX_MAPPINGS),
            rx_map: Mappings::new(MAX_MAPPINGS),
            mapping_seen: false,
            mapped_rx: false,
            verified_end: None,
            data_acked: 0,
            fin_seen: false,
            plain_fin: false,
            local_id: 0,
            remote_id: 0,
            local_backup: false,
            remote_backup: false,
            prio_pending: None,
            data_ack_owed: false,
            direct_map: None,
            join: None,
            closed: false,
            reinjected: false,
            stalled: false,
            delivered_at: None,
            carried_end: None,
            path_check: None,
            last_dss: None,
        }
    }

    /// A joined subflow in its first handshake phase.
    pub(super) fn joined(phase: JoinPhase, local_nonce: u32, remote_nonce: u32) -> Self {
        SubflowMp {
            join: Some(Join {
                phase,
                local_nonce,
                remote_nonce,
                timer: None,
                tries: 0,
            }),
            ..SubflowMp::initial()
        }
    }

    /// Whether MP_CAPABLE opened this subflow (it may fall back to TCP).
    pub fn is_initial(&self) -> bool {
        self.join.is_none()
    }

    /// Whether the MP_JOIN handshake (if any) is complete.
    pub fn join_established(&self) -> bool {
        self.join.is_none_or(|j| j.phase == JoinPhase::Established)
    }

    /// Whether the MP_JOIN handshake is done as far as this side can tell:
    /// the active side once it checked the peer's HMAC and sent its third
    /// ACK (when Linux reports the subflow established), the passive side
    /// once that ACK's HMAC checked.
    pub fn join_handshake_done(&self) -> bool {
        self.join
            .as_ref()
            .is_none_or(|j| matches!(j.phase, JoinPhase::AckSent | JoinPhase::Established))
    }

    /// Heap bytes of its mapping lists (see [`Mappings::memory`]).
    pub fn memory(&self) -> usize {
        self.tx_map.memory() + self.rx_map.memory()
    }

    pub fn is_backup(&self) -> bool {
        self.local_backup || self.remote_backup
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Repeated RTOs without progress: its data went to the others.
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }

    /// Ask for the subflow to be a backup or not (MP_PRIO on its next
    /// segment); whether anything changed.
    pub fn set_local_backup(&mut self, backup: bool) -> bool {
        if self.local_backup == backup || self.closed {
            return false;
        }
        self.local_backup = backup;
        self.prio_pending = Some(backup);
        true
    }

    /// Whether a pure ACK must follow the segment just sent (taken).
    pub fn take_data_ack_owed(&mut self) -> bool {
        core::mem::take(&mut self.data_ack_owed)
    }

    /// The redundant scheduler's cursor starts over from the DATA_ACK (a
    /// data-level retransmission).
    pub fn rewind_redundant(&mut self) {
        self.carried_end = None;
    }

    /// RFC 8684 §3.4.2: before closing a subflow whose address the peer
    /// withdrew, make sure the path is no longer in use: a probe goes out now
    /// (the caller sends it), and only a subflow that has not answered by
    /// `deadline` is reset. A REMOVE_ADDR that a partly on-path attacker slips
    /// into another subflow cannot take down a working path.
    pub fn start_path_check(&mut self, now: Instant, deadline: Instant) {
        if self.path_check.is_none() {
            self.path_check = Some((now, deadline));
        }
    }

    /// When the probe of a path check went out, while one runs.
    pub fn path_check_since(&self) -> Option<Instant> {
        self.path_check.map(|(since, _)| since)
    }

    /// The peer answered on this path: it is alive, the subflow stays.
    pub fn path_check_passed(&mut self) {
        self.path_check = None;
    }

    pub fn path_check_deadline(&self) -> Option<Instant> {
        self.path_check.map(|(_, deadline)| deadline)
    }

    /// When the third ACK of an active join is due again.
    pub fn join_timer(&self) -> Option<Instant> {
        self.join.and_then(|j| j.timer)
    }
}
