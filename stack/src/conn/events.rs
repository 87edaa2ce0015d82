//! What an MPTCP connection reports about its paths, as Linux's path-manager
//! events (`ip mptcp monitor`) do: the connection created, fully established
//! and closed, subflows established and closed (and why), addresses
//! announced and withdrawn by either side, priorities, fallback, MP_FAIL.
//!
//! Subflow and phase events come from comparing what was last reported with
//! what is now, after every call into the connection (`take_path_events`):
//! no code path that opens, closes or changes a subflow can forget to
//! report it. Address events are noted where the option is handled, since
//! the data level keeps no history of them.

use super::{Connection, Subflow};
use crate::mptcp::Phase;
use crate::tcp::state::CloseReason;
use crate::tcp::State;
use std::net::{IpAddr, SocketAddr};

/// How a subflow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubflowEnd {
    /// Both FINs exchanged.
    Closed,
    /// The peer reset it; its MP_TCPRST reason code, if it sent one.
    ResetByPeer { reason: Option<u8> },
    /// The peer answered our MP_JOIN SYN with a RST: it refused the join.
    Refused { reason: Option<u8> },
    /// Retransmissions ran out.
    TimedOut,
    /// An ICMP destination unreachable answered its SYN.
    Unreachable,
    /// We reset it.
    Reset(LocalReset),
    /// The application aborted the connection, or the peer fast-closed it.
    Aborted,
}

/// Why we reset a subflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalReset {
    /// Our address it used was removed.
    AddressRemoved,
    /// The peer withdrew its address and the path did not answer a probe.
    PathCheckFailed,
    /// The data level was done and the subflow kept timing out.
    Stale,
    /// An MPTCP protocol error (a bad HMAC, a DSS checksum failure, an
    /// unusable mapping), with the MP_TCPRST reason code sent.
    MptcpError(u8),
    /// The connection fell back to TCP while the join was in its handshake.
    Fallback,
    /// The peer fast-closed the connection (MP_FASTCLOSE).
    FastClosed,
}

impl LocalReset {
    pub fn as_str(&self) -> &'static str {
        match self {
            LocalReset::AddressRemoved => "address removed",
            LocalReset::PathCheckFailed => "path did not answer after REMOVE_ADDR",
            LocalReset::Stale => "stale after the data level finished",
            LocalReset::MptcpError(_) => "MPTCP error",
            LocalReset::Fallback => "connection fell back to TCP",
            LocalReset::FastClosed => "peer sent MP_FASTCLOSE",
        }
    }
}

impl SubflowEnd {
    /// The errno Linux reports in its SF_CLOSED event for such an end.
    pub fn errno(&self) -> u32 {
        match self {
            SubflowEnd::Closed => 0,
            SubflowEnd::Refused { .. } => 111, // ECONNREFUSED
            SubflowEnd::TimedOut => 110,       // ETIMEDOUT
            SubflowEnd::Unreachable => 113,    // EHOSTUNREACH
            SubflowEnd::ResetByPeer { .. } | SubflowEnd::Reset(_) => 104, // ECONNRESET
            SubflowEnd::Aborted => 103,        // ECONNABORTED
        }
    }

    /// The MP_TCPRST reason code sent or received, if any.
    pub fn reset_reason(&self) -> Option<u8> {
        match *self {
            SubflowEnd::ResetByPeer { reason } | SubflowEnd::Refused { reason } => reason,
            SubflowEnd::Reset(LocalReset::MptcpError(r)) => Some(r),
            SubflowEnd::Reset(LocalReset::AddressRemoved) => {
                Some(crate::mptcp::action::rst_reason::ADMIN_PROHIBITED)
            }
            _ => None,
        }
    }
}

/// One subflow as an event names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubflowRef {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub local_id: u8,
    pub remote_id: u8,
    /// Either side asked for it to be a backup.
    pub backup: bool,
}

/// One event of an MPTCP connection, in the order they happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathEventKind {
    /// The MPTCP handshake exchanged keys (Linux: CREATED).
    Created {
        local: SocketAddr,
        remote: SocketAddr,
        server_side: bool,
    },
    /// Fully established (Linux: ESTABLISHED).
    Established {
        local: SocketAddr,
        remote: SocketAddr,
        server_side: bool,
    },
    /// The connection ended (Linux: CLOSED).
    Closed,
    /// The peer announced an address (ADD_ADDR; Linux: ANNOUNCED).
    Announced {
        id: u8,
        addr: IpAddr,
        port: Option<u16>,
    },
    /// The peer withdrew an address (REMOVE_ADDR; Linux: REMOVED).
    Removed { id: u8 },
    /// We announced one of our addresses.
    LocalAnnounced { id: u8, addr: IpAddr },
    /// We withdrew one of our addresses.
    LocalRemoved { id: u8 },
    /// A subflow completed its handshake (Linux: SF_ESTABLISHED).
    SubflowEstablished(SubflowRef),
    /// A subflow closed, or a join failed (Linux: SF_CLOSED).
    SubflowClosed {
        subflow: SubflowRef,
        end: SubflowEnd,
    },
    /// A subflow's backup flag changed (Linux: SF_PRIORITY).
    SubflowPriority(SubflowRef),
    /// The connection fell back to plain TCP.
    Fallback { reason: &'static str },
    /// MP_FAIL received from the peer (`sent`: false) or sent.
    MpFail { sent: bool },
}

impl PathEventKind {
    /// The name `ip mptcp monitor` prints, or ours where it has none.
    pub fn name(&self) -> &'static str {
        match self {
            PathEventKind::Created { .. } => "CREATED",
            PathEventKind::Established { .. } => "ESTABLISHED",
            PathEventKind::Closed => "CLOSED",
            PathEventKind::Announced { .. } => "ANNOUNCED",
            PathEventKind::Removed { .. } => "REMOVED",
            PathEventKind::LocalAnnounced { .. } => "LOCAL_ANNOUNCED",
            PathEventKind::LocalRemoved { .. } => "LOCAL_REMOVED",
            PathEventKind::SubflowEstablished(_) => "SF_ESTABLISHED",
            PathEventKind::SubflowClosed { .. } => "SF_CLOSED",
            PathEventKind::SubflowPriority(_) => "SF_PRIORITY",
            PathEventKind::Fallback { .. } => "FALLBACK",
            PathEventKind::MpFail { .. } => "MP_FAIL",
        }
    }
}

/// A subflow that ended while its connection lives on, kept for `status`
/// ("why is this path unused").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedSubflow {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub remote_id: u8,
    pub end: SubflowEnd,
    /// We opened it (an MP_JOIN of ours, not the peer's).
    pub active: bool,
    /// Its handshake completed: it was a working subflow once.
    pub established: bool,
}

impl EndedSubflow {
    /// A join of ours that never worked.
    pub fn is_failed_join(&self) -> bool {
        self.active && !self.established
    }
}

/// The last ended subflows a connection keeps.
pub const ENDED_KEPT: usize = 8;

/// What a subflow has reported so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubflowReported {
    pub established: bool,
    pub closed: bool,
    pub backup: bool,
    /// MP_TCPRST reason of the peer's RST that closed it.
    pub peer_reason: Option<u8>,
    /// Why we reset it, if we did.
    pub reset: Option<LocalReset>,
    /// We opened it (an MP_JOIN SYN of ours).
    pub active: bool,
}

/// What the connection has reported so far.
#[derive(Debug, Default)]
pub(super) struct Reported {
    created: bool,
    established: bool,
    fallback: bool,
    closed: bool,
    mp_fail_rx: u64,
    mp_fail_tx: u64,
    /// Address events noted where their options were handled.
    pub(super) notes: Vec<PathEventKind>,
    pub(super) ended: Vec<EndedSubflow>,
    /// The peer's address ids reported removed and not announced since: a
    /// repeated REMOVE_ADDR is one event.
    removed: [u64; 4],
}

fn bit(id: u8) -> (usize, u64) {
    (usize::from(id / 64), 1 << (id % 64))
}

impl Subflow {
    fn as_ref(&self) -> SubflowRef {
        SubflowRef {
            local: self.tcb.local(),
            remote: self.tcb.remote(),
            local_id: self.mp.local_id,
            remote_id: self.mp.remote_id,
            backup: self.mp.is_backup(),
        }
    }

    /// How it ended, once it is closed.
    fn end(&self) -> SubflowEnd {
        if let Some(r) = self.reported.reset {
            return SubflowEnd::Reset(r);
        }
        let reason = self.reported.peer_reason;
        match self.tcb.close_reason() {
            Some(CloseReason::Normal) | None => SubflowEnd::Closed,
            Some(CloseReason::Reset) => SubflowEnd::ResetByPeer { reason },
            Some(CloseReason::Refused) => SubflowEnd::Refused { reason },
            Some(CloseReason::TimedOut) => SubflowEnd::TimedOut,
            Some(CloseReason::Unreachable) => SubflowEnd::Unreachable,
            Some(CloseReason::Aborted) => SubflowEnd::Aborted,
        }
    }
}

impl Connection {
    /// Note an address event (see the module's comment).
    pub(super) fn note(&mut self, e: PathEventKind) {
        if self.mp.is_none() {
            return;
        }
        let r = &mut self.reported;
        match e {
            PathEventKind::Announced { id, .. } => {
                let (w, b) = bit(id);
                r.removed[w] &= !b;
            }
            PathEventKind::Removed { id } => {
                let (w, b) = bit(id);
                if r.removed[w] & b != 0 {
                    return;
                }
                r.removed[w] |= b;
            }
            _ => {}
        }
        r.notes.push(e);
    }

    /// Subflow index `k` is closing for good: report it now, while its
    /// record exists (it is freed right after).
    pub(super) fn report_subflow_end(&mut self, k: usize) {
        let s = &self.subflows[k];
        if s.reported.closed || self.mp.is_none() {
            return;
        }
        let end = s.end();
        let sub = s.as_ref();
        let record = EndedSubflow {
            local: sub.local,
            remote: sub.remote,
            remote_id: sub.remote_id,
            end,
            active: s.reported.active,
            established: s.reported.established,
        };
        self.subflows[k].reported.closed = true;
        if !self.reported.created {
            return;
        }
        let f = &mut self.reported.ended;
        if f.len() == ENDED_KEPT {
            f.remove(0);
        }
        f.push(record);
        self.reported
            .notes
            .push(PathEventKind::SubflowClosed { subflow: sub, end });
    }

    /// Every event since the last call, in order, to `out`.
    pub fn take_path_events(&mut self, out: &mut impl FnMut(PathEventKind)) {
        let Some(mp) = self.mp.as_deref() else {
            return;
        };
        let server_side = !mp.is_client();
        let phase = mp.phase();
        let fallback = mp.is_fallback();
        let (fail_rx, fail_tx) = mp.mp_fail_counts();
        let r = &mut self.reported;
        let (local, remote) = (self.local, self.remote);
        if !r.created && matches!(phase, Phase::PreEstablished | Phase::Established) {
            r.created = true;
            out(PathEventKind::Created {
                local,
                remote,
                server_side,
            });
        }
        if r.created && !r.established && phase == Phase::Established {
            r.established = true;
            out(PathEventKind::Established {
                local,
                remote,
                server_side,
            });
        }
        if fallback && !r.fallback {
            r.fallback = true;
            let reason = mp.fallback_reason().map_or("unknown", |f| f.as_str());
            out(PathEventKind::Fallback { reason });
        }
        // Every segment comes through here: the steady state (nothing new)
        // must cost a few comparisons.
        while r.mp_fail_rx < fail_rx {
            r.mp_fail_rx += 1;
            out(PathEventKind::MpFail { sent: false });
        }
        while r.mp_fail_tx < fail_tx {
            r.mp_fail_tx += 1;
            out(PathEventKind::MpFail { sent: true });
        }
        let mut all_closed = true;
        for s in &mut self.subflows {
            all_closed &= s.tcb.state() == State::Closed;
            if !r.created || s.reported.closed {
                continue;
            }
            if !s.reported.established {
                if s.mp.join_handshake_done() && s.tcb.state().is_synchronized() {
                    s.reported.established = true;
                    s.reported.backup = s.mp.is_backup();
                    // The first subflow is the connection's: its CREATED says it.
                    if !s.mp.is_initial() {
                        out(PathEventKind::SubflowEstablished(s.as_ref()));
                    }
                }
            } else if s.reported.backup != s.mp.is_backup() {
                s.reported.backup = s.mp.is_backup();
                out(PathEventKind::SubflowPriority(s.as_ref()));
            }
        }
        if !r.notes.is_empty() {
            for e in r.notes.drain(..) {
                out(e);
            }
        }
        if all_closed {
            self.finish_path_events(out);
        }
    }

    /// The connection is being freed: report its end if it has not yet.
    pub fn finish_path_events(&mut self, out: &mut impl FnMut(PathEventKind)) {
        if !self.reported.created || self.reported.closed {
            return;
        }
        for k in 0..self.subflows.len() {
            self.report_subflow_end(k);
        }
        for e in self.reported.notes.drain(..) {
            out(e);
        }
        self.reported.closed = true;
        out(PathEventKind::Closed);
    }

    /// Subflows that ended, the latest last (at most [`ENDED_KEPT`]).
    pub fn ended_subflows(&self) -> &[EndedSubflow] {
        &self.reported.ended
    }
}
