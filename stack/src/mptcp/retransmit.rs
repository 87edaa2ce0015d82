//! Data-level retransmission (RFC 8684 §3.3.6). A subflow that acknowledged
//! bytes has handed them to the peer's MPTCP level, but the peer may still drop
//! them there — Linux drops data beyond the connection-level window it
//! announced (its `NoDSSInWindow` counter) — and only the DATA_ACK tells. So when
//! the DATA_ACK stops moving for a retransmission timeout while no live subflow
//! still holds the data at `snd_una`, that data is mapped again onto whichever
//! subflow the scheduler picks, as Linux's MPTCP retransmit timer does.
//!
//! The same timer probes a closed connection-level window: with data waiting
//! and none outstanding, nothing else would ever make the peer repeat a
//! window update that was lost, and the connection would wait for ever (a
//! subflow's own persist timer runs only while it holds data).

use super::action::{Action, Actions};
use super::level::{DataLevel, Phase};
use super::subflow::SubflowMp;
use crate::time::Instant;
use core::time::Duration;

/// Doublings of the data-level timeout at most (as for the DATA_FIN).
const MAX_RTX_BACKOFF: u32 = 6;

impl DataLevel {
    /// Data handed to subflows that the peer has not DATA_ACKed.
    fn data_outstanding(&self) -> bool {
        self.snd_nxt != self.snd_una
    }

    /// The peer's connection-level window is closed, data waits behind it
    /// and none is outstanding: the timer probes the window.
    fn window_closed_on_data(&self) -> bool {
        self.snd_wnd_known
            && !self.data_outstanding()
            && self.snd_wnd_end.diff(self.snd_nxt) <= 0
            && self.data_end().diff(self.snd_nxt) > 0
    }

    /// Start the timer if data is outstanding (or a closed window holds data
    /// back) and it is not running; stop it when neither. Its backoff doubles
    /// `rto` (the subflows' own, maybe backed off already) up to `max_rto`,
    /// TCP's bound: never longer. The probes' backoff measured the peer's
    /// reader, not the path: data sent once the window opened starts over.
    pub fn arm_rtx(&mut self, now: Instant, rto_max: impl FnOnce() -> (Duration, Duration)) {
        let probing = self.window_closed_on_data();
        if self.rtx_probing && !probing {
            self.rtx_probing = false;
            self.rtx_timer = None;
            self.rtx_backoff = 0;
        }
        if self.phase != Phase::Established || !(self.data_outstanding() || probing) {
            self.rtx_timer = None;
            self.rtx_backoff = 0;
        } else if self.rtx_timer.is_none() {
            self.rtx_probing = probing;
            let (rto, max_rto) = rto_max();
            let wait = (rto * (1 << self.rtx_backoff)).min(max_rto.max(rto));
            self.rtx_timer = Some(now + wait);
        }
    }

    /// The DATA_ACK moved: the peer is taking data, start over.
    pub(super) fn rtx_progress(&mut self) {
        self.rtx_timer = None;
        self.rtx_backoff = 0;
    }

    pub(super) fn rtx_poll_at(&self) -> Option<Instant> {
        self.rtx_timer.filter(|_| self.phase == Phase::Established)
    }

    /// Offset from `snd_una` of the first byte that a subflow able to deliver
    /// it still holds unacknowledged, or that waits in the reinjection queue.
    fn first_in_flight<'a>(&self, subflows: impl Iterator<Item = &'a SubflowMp>) -> Option<u64> {
        let una = self.snd_una;
        let live = subflows
            .filter(|s| !s.closed && !s.stalled)
            .flat_map(|s| s.tx_map.iter().map(|m| (m.dsn, m.len as u32)));
        self.reinject
            .iter()
            .copied()
            .chain(live)
            .filter_map(|(dsn, len)| {
                let end = dsn + len as u64;
                (end.diff(una) > 0).then(|| dsn.since(una))
            })
            .min()
    }

    /// The timer expired: map again what no subflow holds from `snd_una` on
    /// (up to the first byte one does), within the peer's window but at least
    /// one segment, which then also probes a closed window.
    pub fn on_rtx_timeout<'a>(
        &mut self,
        now: Instant,
        rto: Duration,
        max_rto: Duration,
        mss: usize,
        subflows: impl Iterator<Item = &'a SubflowMp>,
    ) -> Actions {
        let mut acts = Actions::new();
        if self.rtx_timer.is_none_or(|t| t > now) {
            return acts;
        }
        self.rtx_timer = None;
        if self.phase == Phase::Established && self.window_closed_on_data() {
            // Make a subflow's peer answer: its ACK carries the window.
            acts.push(Action::ProbeWindow);
            self.stats.window_probes += 1;
            self.rtx_backoff = (self.rtx_backoff + 1).min(MAX_RTX_BACKOFF);
            self.arm_rtx(now, || (rto, max_rto));
            return acts;
        }
        if self.phase != Phase::Established || !self.data_outstanding() {
            return acts;
        }
        let held = self.first_in_flight(subflows);
        if held == Some(0)
            || (!self.peer_speaks_mptcp && self.may_fall_back)
            || self.fallback_deferred
            || self.checksum_failure_pending()
        {
            // A subflow is still at it, its own recovery (or stall) decides; or
            // the peer sends plain ACKs while a fallback is still possible (it
            // fell back, or a middlebox strips options: also when an older
            // segment with options arrived after the plain one that deferred
            // our fallback), or an MP_FAIL exchange is under way (the peer
            // falls back at its end of it, maybe already has): bytes sent
            // again would reach it as new data. Once no fallback is possible
            // (a join got as far as its third ACK, or data went again
            // already), a plain ACK is a middlebox's doing, not the peer's
            // fallback: the data level goes on, or bytes a subflow
            // acknowledged and the peer dropped are never sent again.
            if self.checksum_failure_pending() {
                if let Some(reset) = self.fail_stalled() {
                    return vec![reset];
                }
                // Waits that grow, as for a retransmission.
                self.rtx_backoff = (self.rtx_backoff + 1).min(MAX_RTX_BACKOFF);
            }
            self.arm_rtx(now, || (rto, max_rto));
            return acts;
        }
        let window = self.snd_wnd_end.diff(self.snd_una).max(0) as u64;
        let outstanding = self.snd_nxt.since(self.snd_una);
        let end_off = window
            .max(mss as u64)
            .min(outstanding)
            .min(held.unwrap_or(u64::MAX))
            .min(u32::MAX as u64);
        if end_off > 0 {
            // The bytes go again on a subflow that may have carried them
            // already: a peer reading that subflow as plain TCP from now on
            // would take them twice. No fallback (nor infinite mapping) any
            // more, as Linux's `__mptcp_retrans` clears
            // `allow_infinite_fallback`; what would have fallen back resets.
            self.may_fall_back = false;
            if self.redundant {
                // The redundant scheduler sends the stream in order on every
                // subflow from its cursor: move the cursors back.
                acts.push(Action::RewindRedundant);
            } else {
                self.reinject.push_front((self.snd_una, end_off as u32));
            }
            self.stats.data_rtx += 1;
        }
        self.rtx_backoff = (self.rtx_backoff + 1).min(MAX_RTX_BACKOFF);
        self.arm_rtx(now, || (rto, max_rto));
        acts
    }
}
