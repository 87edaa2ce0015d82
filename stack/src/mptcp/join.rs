//! MP_JOIN (RFC 8684 §3.2): adding subflows to an established connection, in
//! both roles. The passive side answers a SYN whose token names one of its
//! connections with its nonce and a truncated HMAC, and accepts the subflow only
//! when the third ACK brings the initiator's full HMAC; the active side checks
//! the responder's HMAC in the SYN/ACK and repeats its third ACK until the peer
//! acknowledges it. Only then may a subflow carry data. Anything wrong resets the
//! subflow alone (MP_TCPRST), never the connection.

use super::action::{rst_reason, Action, Actions};
use super::crypto;
use super::level::{DataLevel, Phase};
use super::subflow::{JoinPhase, SubflowMp};
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

fn reset(reason: u8) -> Actions {
    vec![Action::ResetSubflow { reason, fail: None }]
}

impl DataLevel {
    /// Whether another subflow may join now, with `live_joins` joined
    /// subflows still open.
    pub fn join_allowed(&self, live_joins: usize) -> bool {
        self.phase == Phase::Established
            && self.remote_key.is_some()
            && live_joins < self.max_subflows
            // After a checksum failure the connection may still fall back to
            // TCP: no more subflows (as Linux).
            && !self.checksum_failure_pending()
    }

    /// Joined subflows allowed from now on; checked only when one more
    /// would join, so a lower limit closes none.
    pub fn set_max_subflows(&mut self, n: usize) {
        self.max_subflows = n;
    }

    /// Whether the peer may open one more join at `now` (its budget of
    /// attempts, live or not, is not spent).
    pub fn join_budget_left(&mut self, now: Instant) -> bool {
        self.join_budget.available(now)
    }

    /// Whether subflows may ever join (or be added) to this connection.
    pub fn may_join(&self) -> bool {
        self.max_subflows > 0 && matches!(self.phase, Phase::Established | Phase::PreEstablished)
    }

    /// A passive join whose SYN named our token: the new subflow's state.
    pub fn accept_join(&mut self, now: Instant, r: &JoinRequest) -> SubflowMp {
        self.join_budget.take(now);
        let mut s = SubflowMp::joined(JoinPhase::SynReceived, r.local_nonce, r.remote_nonce);
        s.local_id = r.local_id;
        s.remote_id = r.remote_id;
        s.local_backup = r.local_backup;
        s.remote_backup = r.remote_backup;
        self.stats.join_syn_rx += 1;
        s
    }

    /// An active join from our address `local_id` to the peer's `remote_id`.
    pub fn open_join(
        &mut self,
        local_nonce: u32,
        local_id: u8,
        remote_id: u8,
        backup: bool,
    ) -> SubflowMp {
        let mut s = SubflowMp::joined(JoinPhase::SynSent, local_nonce, 0);
        s.local_id = local_id;
        s.remote_id = remote_id;
        s.local_backup = backup;
        s
    }

    /// The join handshake's part of an acceptable segment on a joined subflow.
    pub(super) fn on_join_segment(
        &mut self,
        now: Instant,
        tcb: &mut Tcb,
        sf: &mut SubflowMp,
        seg: &TcpRepr<'_>,
        join: Option<MpJoin>,
    ) -> Actions {
        let (Some(mut j), Some(remote_key)) = (sf.join, self.remote_key) else {
            return Actions::new();
        };
        let f = seg.flags;
        let mut acts = Actions::new();
        if self.checksum_failure_pending()
            && matches!(j.phase, JoinPhase::SynSent | JoinPhase::SynReceived)
        {
            // An MP_FAIL exchange began while this join was in its handshake:
            // the connection is heading for a fallback on its first subflow,
            // whose bytes are (or will be) taken as they come, so no data may
            // arrive by another way — a copy sent again there would be read
            // twice. Refused, as a new join is (`join_allowed`).
            sf.join = Some(j);
            return reset(rst_reason::MPTCP_ERROR);
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
                    // The peer may send data on it once our third ACK is in:
                    // from here on, data sent again on the first subflow
                    // could not be read as plain TCP (`may_fall_back`).
                    self.may_fall_back = false;
                    self.joined = true;
                    j.remote_nonce = nonce;
                    j.timer = Some(now + tcb.rto());
                    sf.remote_id = addr_id;
                    sf.remote_backup = backup;
                }
                Some(MpJoin::SynAck { .. }) => {
                    self.stats.join_hmac_failures += 1;
                    acts = reset(rst_reason::MPTCP_ERROR);
                }
                // A join cannot fall back to TCP (RFC 8684 §3.2).
                _ => acts = reset(rst_reason::MPTCP_ERROR),
            },
            JoinPhase::SynReceived if !f.syn() => match join {
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
                    self.may_fall_back = false;
                    self.joined = true;
                    self.stats.joins_established += 1;
                    // The fourth ACK: the initiator waits for it before sending data.
                    tcb.force_ack();
                }
                Some(MpJoin::Ack { .. }) => {
                    self.stats.join_hmac_failures += 1;
                    acts = reset(rst_reason::MPTCP_ERROR);
                }
                _ => acts = reset(rst_reason::MPTCP_ERROR),
            },
            JoinPhase::AckSent if !f.syn() => {
                j.phase = JoinPhase::Established;
                j.timer = None;
                self.stats.joins_established += 1;
            }
            // A repeated third ACK: our fourth was lost, and its sender
            // waits for one before it sends data (RFC 8684 §3.2).
            JoinPhase::Established if !f.syn() && matches!(join, Some(MpJoin::Ack { .. })) => {
                tcb.force_ack();
            }
            _ => {}
        }
        sf.join = Some(j);
        acts
    }

    /// The third-ACK repeat of an active join.
    pub fn join_timeout(&mut self, now: Instant, tcb: &mut Tcb, sf: &mut SubflowMp) -> Actions {
        let Some(mut j) = sf.join else {
            return Actions::new();
        };
        if j.phase != JoinPhase::AckSent || j.timer.is_none_or(|t| t > now) {
            return Actions::new();
        }
        j.tries += 1;
        let acts = if j.tries > MAX_JOIN_ACK_TRIES {
            j.timer = None;
            reset(rst_reason::MPTCP_ERROR)
        } else {
            tcb.force_ack();
            j.timer = Some(now + tcb.rto_backed_off(j.tries));
            Actions::new()
        };
        sf.join = Some(j);
        acts
    }

    /// The MP_JOIN option the next segment of a joined subflow carries, by
    /// the segment's kind; `None` once the handshake is done.
    pub(super) fn join_option(
        &self,
        sf: &SubflowMp,
        syn: bool,
        ack: bool,
    ) -> Option<MptcpOption<'static>> {
        let j = sf.join?;
        match (j.phase, syn, ack) {
            (JoinPhase::SynSent, true, false) => Some(MptcpOption::MpJoin(MpJoin::Syn {
                backup: sf.local_backup,
                addr_id: sf.local_id,
                token: self.remote_token()?,
                nonce: j.local_nonce,
            })),
            (JoinPhase::SynReceived, true, true) => Some(MptcpOption::MpJoin(MpJoin::SynAck {
                backup: sf.local_backup,
                addr_id: sf.local_id,
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
}

/// The MP_JOIN of a SYN, if it carries one: the token, the sender's nonce,
/// address id and B bit.
pub fn syn_join(join: Option<MpJoin>) -> Option<(u32, u32, u8, bool)> {
    match join? {
        MpJoin::Syn {
            token,
            nonce,
            addr_id,
            backup,
        } => Some((token, nonce, addr_id, backup)),
        _ => None,
    }
}
