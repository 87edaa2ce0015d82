//! One pipeline for every incoming segment: the subflow's TCB first decides
//! whether the segment is acceptable and does its part (RFC 9293 §3.10.7, RFC
//! 5961, PAWS); only an acceptable segment's MPTCP options reach the MPTCP
//! level, which then moves the subflow's in-order bytes to the data stream;
//! what it decided is carried out, and subflows that closed are let go.

use super::direct_read::PlainDirect;
use super::subflow::Subflow;
use super::{Connection, Effects, SubflowId};
use crate::mptcp::direct::DirectRx;
use crate::mptcp::{rst_reason, Action, Actions, DataLevel};
use crate::tcp::ratelimit::ChallengeQuota;
use crate::time::Instant;
use crate::wire::{MptcpOptions, TcpRepr};

impl Connection {
    /// A segment for subflow `sub` (the demux's answer for its 4-tuple), with
    /// its MPTCP options decoded once by the stack; `quota` is the stack-wide
    /// budget of challenge ACKs.
    /// An ICMP destination unreachable about subflow `sub`'s segment `seq`
    /// (see [`Tcb::icmp_unreachable`]); `None` if it changed nothing.
    pub fn on_icmp_unreachable(
        &mut self,
        now: Instant,
        sub: SubflowId,
        seq: crate::wire::SeqNumber,
    ) -> Option<Effects> {
        self.unsettle();
        let k = self.index(sub)?;
        if !self.subflows[k].tcb.icmp_unreachable(seq) {
            return None;
        }
        let mut fx = Effects::default();
        self.after_changes(now, &mut fx);
        self.path_manager_requests(&mut fx);
        Some(fx)
    }

    pub fn on_segment(
        &mut self,
        now: Instant,
        sub: SubflowId,
        seg: &TcpRepr<'_>,
        opts: &MptcpOptions,
        quota: &mut ChallengeQuota,
    ) -> Effects {
        self.unsettle();
        let mut fx = Effects::default();
        let Some(k) = self.index(sub) else {
            return fx;
        };
        // A fallback decided outside segment processing (an infinite mapping
        // going out ends an MP_FAIL exchange on the output path): a join
        // still in its handshake must not take this segment as plain TCP.
        self.drop_joins_after_fallback(&mut fx);
        if let Some(mp) = self.mp.as_deref_mut().filter(|m| m.is_fallback()) {
            if self.subflows[k].tcb.in_window(seg) && mp.contradicts_fallback(seg, opts) {
                // The peer did not fall back as we did: its bytes are not the
                // stream we read them as. The connection cannot go on.
                let reset = Action::ResetAll {
                    reason: rst_reason::MIDDLEBOX,
                    fail: None,
                };
                self.apply(now, k, vec![reset], &mut fx);
                self.after_changes(now, &mut fx);
                return fx;
            }
        }
        // Plain TCP (or after a fallback, once what reached the data level
        // before it has been read): the application's reader, if any, is
        // offered the bytes.
        let plain_direct = self.mp.as_deref().is_none_or(|m| m.recv_available() == 0);
        let verdict = match self.mp.as_deref_mut().filter(|m| !m.is_fallback()) {
            Some(mp) => {
                // In-order bytes go straight to the data level when they can
                // (`mptcp/direct.rs`); `pull` below takes whatever stays.
                let idle_path = others_idle(mp, &self.subflows, k);
                let s = &mut self.subflows[k];
                let mut direct = DirectRx {
                    level: mp,
                    sf: &mut s.mp,
                    opts,
                    now,
                    idle_path,
                    app: &mut self.direct,
                };
                s.tcb.on_segment_with(now, seg, quota, &mut direct)
            }
            None if plain_direct => {
                let mut direct = PlainDirect(&mut self.direct);
                self.subflows[k]
                    .tcb
                    .on_segment_with(now, seg, quota, &mut direct)
            }
            None => self.subflows[k].tcb.on_segment(now, seg, quota),
        };
        let s = &mut self.subflows[k];
        fx.rst(s.tuple(), verdict.rst, Default::default());
        if verdict.acceptable && seg.flags.rst() {
            s.reported.peer_reason = opts.tcprst.map(|r| r.reason);
        }
        let Some(mp) = self.mp.as_deref_mut().filter(|m| !m.is_fallback()) else {
            return fx;
        };
        let mut acts = if verdict.acceptable {
            mp.on_segment(now, &mut s.tcb, &mut s.mp, seg, opts)
        } else {
            Actions::new()
        };
        // Nothing more is taken from a subflow that is refused or about to be
        // reset: its bytes are not the data stream's.
        let refused = acts.iter().any(|a| {
            matches!(
                a,
                Action::RetryV0
                    | Action::FastClosed
                    | Action::ResetSubflow { .. }
                    | Action::ResetAll { .. }
            )
        });
        if !refused {
            let idle = others_idle(mp, &self.subflows, k);
            let s = &mut self.subflows[k];
            let pulled = mp.pull(now, &mut s.tcb, &mut s.mp, idle);
            // Both are empty for almost every segment.
            if acts.is_empty() {
                acts = pulled;
            } else {
                acts.extend(pulled);
            }
        }
        mp.segment_done();
        if verdict.acceptable {
            self.path_answered(k, seg);
        }
        if let Some(mp) = self.mp.as_deref_mut().filter(|m| m.holds_acked()) {
            // What the peer acknowledged leaves the data level's buffer once
            // no subflow may send it again.
            super::output::settle_sends(mp, &mut self.subflows);
        }
        self.apply(now, k, acts, &mut fx);
        self.after_changes(now, &mut fx);
        self.path_manager_requests(&mut fx);
        fx
    }
}

/// Whether a subflow other than `k` could carry the peer's data and
/// delivered none in the receive measure under way (`DataLevel::path_idle`).
pub(super) fn others_idle(mp: &DataLevel, subflows: &[Subflow], k: usize) -> bool {
    subflows
        .iter()
        .enumerate()
        .any(|(i, s)| i != k && mp.path_idle(&s.tcb, &s.mp))
}
