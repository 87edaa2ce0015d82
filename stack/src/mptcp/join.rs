//! MP_JOIN (RFC 8684 §3.2): adding subflows to an established connection, in
//! both roles. The passive side answers a SYN whose token names one of its
//! connections with its nonce and a truncated HMAC, and accepts the subflow only
//! when the third ACK brings the initiator's full HMAC; the active side checks
//! the responder's HMAC in the SYN/ACK and repeats its third ACK until the peer
//! acknowledges it. Only then may a subflow carry data. Anything wrong resets the
//! subflow alone (MP_TCPRST), never the connection.

use super::connection::{rst_reason, MptcpConn, Phase};
use super::crypto;
use super::subflow::{JoinPhase, SubflowState};
use crate::tcp::hooks::OptionBytes;
use crate::tcp::Tcb;
use crate::time::Instant;
use crate::wire::mptcp::{MpJoin, MptcpOption};
use crate::wire::TcpRepr;

/// Third-ACK repeats before an unacknowledged join is given up.
const MAX_JOIN_ACK_TRIES: u32 = 5;

/// What a passive join learns from the SYN, and what we answer with.
#[derive(Debug, Clone, Copy)]
pub struct JoinRequest {
    pub remote_nonce: u32,
    pub remote_id: u8,
    pub remote_backup: bool,
    pub local_nonce: u32,
    pub local_id: u8,
    pub local_backup: bool,
}

/// What a SYN's MP_JOIN says: the token, the sender's nonce, address id and B bit.
pub type SynJoin = (u32, u32, u8, bool);

/// The MP_JOIN of a SYN, if it carries one.
pub fn syn_join(seg: &TcpRepr<'_>) -> Option<SynJoin> {
    let ctx = crate::wire::mptcp::ParseCtx::from_repr(seg);
    crate::wire::mptcp::mptcp_options(seg).find_map(|d| match MptcpOption::parse(d, ctx) {
        Ok(MptcpOption::MpJoin(MpJoin::Syn {
            token,
            nonce,
            addr_id,
            backup,
        })) => Some((token, nonce, addr_id, backup)),
        _ => None,
    })
}

impl MptcpConn {
    /// Joined subflows still alive.
    pub fn live_joins(&self) -> usize {
        self.sf[1..].iter().filter(|s| !s.dead).count()
    }

    /// Whether another subflow may join now.
    pub fn join_allowed(&self) -> bool {
        self.phase == Phase::Established
            && self.remote_key.is_some()
            && self.live_joins() < self.max_subflows
            // After a checksum failure the connection may still fall back to
            // TCP: no more subflows (as Linux).
            && !self.checksum_failure_pending()
    }

    /// Whether subflows may ever join (or be added) to this connection.
    pub fn may_join(&self) -> bool {
        self.max_subflows > 0 && matches!(self.phase, Phase::Established | Phase::PreEstablished)
    }

    /// A passive join whose SYN named our token: the new subflow's index.
    pub fn accept_join(&mut self, r: &JoinRequest) -> usize {
        let mut s = SubflowState::joined(JoinPhase::SynReceived, r.local_nonce, r.remote_nonce);
        s.local_id = r.local_id;
        s.remote_id = r.remote_id;
        s.local_backup = r.local_backup;
        s.remote_backup = r.remote_backup;
        self.stats.join_syn_rx += 1;
        self.sf.push(s);
        self.sf.len() - 1
    }

    /// An active join from our address `local_id` to the peer's `remote_id`.
    pub fn open_join(
        &mut self,
        local_nonce: u32,
        local_id: u8,
        remote_id: u8,
        backup: bool,
    ) -> usize {
        let mut s = SubflowState::joined(JoinPhase::SynSent, local_nonce, 0);
        s.local_id = local_id;
        s.remote_id = remote_id;
        s.local_backup = backup;
        self.sf.push(s);
        self.sf.len() - 1
    }

    /// The join handshake's part of an incoming segment on joined subflow `i`.
    pub(super) fn on_join_segment(
        &mut self,
        i: usize,
        tcb: &mut Tcb,
        seg: &TcpRepr<'_>,
        join: Option<MpJoin>,
    ) {
        let Some(mut j) = self.sf[i].join else {
            return;
        };
        let (Some(remote_key), f) = (self.remote_key, seg.flags) else {
            return;
        };
        if f.rst() {
            return;
        }
        match j.phase {
            JoinPhase::SynSent if f.syn() && f.ack() => match join {
                Some(MpJoin::SynAck {
                    hmac,
                    nonce,
                    addr_id,
                    backup,
                }) if hmac
                    == crypto::join_synack_hmac(
                        self.alg(),
                        remote_key,
                        self.local_key,
                        nonce,
                        j.local_nonce,
                    ) =>
                {
                    j.phase = JoinPhase::AckSent;
                    j.remote_nonce = nonce;
                    self.sf[i].remote_id = addr_id;
                    self.sf[i].remote_backup = backup;
                }
                Some(MpJoin::SynAck { .. }) => {
                    self.stats.join_hmac_failures += 1;
                    self.sf[i].reset_reason = Some(rst_reason::MPTCP_ERROR);
                }
                // A join cannot fall back to TCP (RFC 8684 §3.2).
                _ => self.sf[i].reset_reason = Some(rst_reason::MPTCP_ERROR),
            },
            JoinPhase::SynReceived if !f.syn() && f.ack() => match join {
                Some(MpJoin::Ack { hmac })
                    if hmac
                        == crypto::join_ack_hmac(
                            self.alg(),
                            remote_key,
                            self.local_key,
                            j.remote_nonce,
                            j.local_nonce,
                        ) =>
                {
                    j.phase = JoinPhase::Established;
                    self.stats.joins_established += 1;
                    // The fourth ACK: the initiator waits for it before sending data.
                    tcb.force_ack();
                }
                Some(MpJoin::Ack { .. }) => {
                    self.stats.join_hmac_failures += 1;
                    self.sf[i].reset_reason = Some(rst_reason::MPTCP_ERROR);
                }
                _ => self.sf[i].reset_reason = Some(rst_reason::MPTCP_ERROR),
            },
            JoinPhase::AckSent if !f.syn() && f.ack() => {
                j.phase = JoinPhase::Established;
                j.timer = None;
                self.stats.joins_established += 1;
            }
            _ => {}
        }
        self.sf[i].join = Some(j);
    }

    /// Arm or fire the third-ACK repeat of an active join.
    pub(super) fn join_timers(&mut self, now: Instant, i: usize, tcb: &mut Tcb) {
        let Some(mut j) = self.sf[i].join else {
            return;
        };
        if j.phase != JoinPhase::AckSent {
            return;
        }
        match j.timer {
            None => j.timer = Some(now + tcb.rto()),
            Some(t) if t <= now => {
                j.tries += 1;
                if j.tries > MAX_JOIN_ACK_TRIES {
                    j.timer = None;
                    self.sf[i].reset_reason = Some(rst_reason::MPTCP_ERROR);
                } else {
                    tcb.force_ack();
                    j.timer = Some(now + tcb.rto() * (1 << j.tries));
                }
            }
            Some(_) => {}
        }
        self.sf[i].join = Some(j);
    }

    pub(super) fn join_timer(&self, i: usize) -> Option<Instant> {
        self.sf[i].join.and_then(|j| j.timer)
    }

    /// The MP_JOIN option the next segment of joined subflow `i` carries, by
    /// the segment's kind; `None` once the handshake is done.
    pub(super) fn join_option(
        &self,
        i: usize,
        syn: bool,
        ack: bool,
    ) -> Option<MptcpOption<'static>> {
        let j = self.sf[i].join?;
        let s = &self.sf[i];
        match (j.phase, syn, ack) {
            (JoinPhase::SynSent, true, false) => Some(MptcpOption::MpJoin(MpJoin::Syn {
                backup: s.local_backup,
                addr_id: s.local_id,
                token: self.remote_token()?,
                nonce: j.local_nonce,
            })),
            (JoinPhase::SynReceived, true, true) => Some(MptcpOption::MpJoin(MpJoin::SynAck {
                backup: s.local_backup,
                addr_id: s.local_id,
                hmac: crypto::join_synack_hmac(
                    self.alg(),
                    self.local_key,
                    self.remote_key?,
                    j.local_nonce,
                    j.remote_nonce,
                ),
                nonce: j.local_nonce,
            })),
            (JoinPhase::AckSent, false, true) => Some(MptcpOption::MpJoin(MpJoin::Ack {
                hmac: crypto::join_ack_hmac(
                    self.alg(),
                    self.local_key,
                    self.remote_key?,
                    j.local_nonce,
                    j.remote_nonce,
                ),
            })),
            _ => None,
        }
    }

    /// Options for the RST of subflow `i` when we reset it.
    pub fn subflow_reset_options(&self, i: usize) -> OptionBytes {
        let reason = self.sf[i].reset_reason.unwrap_or(rst_reason::UNSPECIFIED);
        super::connection::reset_options_with(self.sf[i].fail_dsn, reason)
    }

    /// Whether subflow `i` must be reset.
    pub fn subflow_must_reset(&self, i: usize) -> bool {
        self.sf[i].reset_reason.is_some()
    }

    pub fn subflow(&self, i: usize) -> &SubflowState {
        &self.sf[i]
    }

    pub fn subflow_count(&self) -> usize {
        self.sf.len()
    }
}
