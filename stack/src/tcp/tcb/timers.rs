//! Timers: retransmission (RFC 6298) with exponential backoff, zero-window probing
//! (persist), delayed ACK, keepalive, FIN_WAIT_2 for released connections, TIME_WAIT.

use super::Tcb;
use crate::tcp::state::CloseReason;
use crate::tcp::State;
use crate::time::Instant;

impl Tcb {
    /// The earliest instant at which `on_timeout` has work to do.
    ///
    /// Runs after every segment: written as plain comparisons, because collecting
    /// the timers into an array to iterate over compiled to stores and reloads
    /// that stalled (12 % of the daemon's CPU in a bulk receive, by `perf`).
    pub fn poll_at(&self) -> Option<Instant> {
        fn earlier(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
            match (a, b) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            }
        }
        let a = earlier(self.rto_at, self.delack_at);
        let b = earlier(self.keepalive_at, self.timewait_at);
        earlier(earlier(a, b), self.fin_wait2_at)
    }

    /// Keepalive runs where nothing else would find a vanished peer: with
    /// nothing of ours outstanding, in ESTABLISHED and CLOSE_WAIT, and in
    /// FIN_WAIT_2, where a half-closed end still reading would otherwise
    /// wait for ever (Linux probes there too); in FIN_WAIT_1, CLOSING and
    /// LAST_ACK our FIN is outstanding and the retransmission timer ends it.
    pub(super) fn arm_keepalive(&mut self, now: Instant) {
        self.keepalive_at = match (self.cfg.keepalive, self.state) {
            (Some(ka), State::Established | State::CloseWait | State::FinWait2) => {
                Some(now + ka.idle)
            }
            _ => None,
        };
    }

    /// Run every timer that is due at `now`. Returns a RST to send if the
    /// connection is dropped on a timeout.
    pub fn on_timeout(&mut self, now: Instant) -> Option<super::RstReply> {
        if self.timewait_at.is_some_and(|t| t <= now) {
            self.timewait_at = None;
            self.close(CloseReason::Normal);
            return None;
        }
        if self.fin_wait2_at.is_some_and(|t| t <= now) {
            self.fin_wait2_at = None;
            self.close(CloseReason::Normal);
            return None;
        }
        if self.delack_at.is_some_and(|t| t <= now) {
            self.delack_at = None;
            self.ack_now = true;
        }
        if self.rto_at.is_some_and(|t| t <= now) {
            self.rto_at = None;
            if let Some(rst) = self.on_rto(now) {
                return Some(rst);
            }
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            let ka = self.cfg.keepalive?;
            if self.ka_probes >= ka.probes {
                return self.drop_timed_out();
            }
            self.ka_probes += 1;
            self.ka_probe_pending = true;
            self.keepalive_at = Some(now + ka.interval);
        }
        None
    }

    fn drop_timed_out(&mut self) -> Option<super::RstReply> {
        let rst = match self.state {
            State::SynSent => None,
            _ => Some(super::RstReply {
                seq: self.acceptable_seq(),
                ack: None,
            }),
        };
        self.close(CloseReason::TimedOut);
        rst
    }

    fn on_rto(&mut self, now: Instant) -> Option<super::RstReply> {
        let handshake = matches!(self.state, State::SynSent | State::SynReceived);
        let zero_window_probe = !handshake
            && self.snd_wnd == 0
            && self.snd_una.diff(self.data_end()) < 0
            && self.snd_nxt.since(self.snd_una) <= 1;
        if zero_window_probe {
            // Persist timer: probe forever while the peer keeps answering, backing
            // off up to the maximum RTO (RFC 9293 §3.8.6.1).
            self.zwp_pending = true;
            self.backoff = (self.backoff + 1).min(16);
            self.rto_at = Some(now + self.rtt.backed_off(self.backoff));
            return None;
        }
        if self.snd_una == self.snd_max && !handshake {
            return None;
        }
        self.retries += 1;
        let limit = if self.state == State::SynReceived {
            self.cfg.synack_retries
        } else if handshake {
            self.cfg.syn_retries
        } else {
            self.cfg.max_retries
        };
        if self.retries > limit {
            return self.drop_timed_out();
        }
        self.backoff = (self.backoff + 1).min(16);
        self.rtt_probe = None;
        if handshake {
            self.snd_nxt = self.iss;
        } else {
            let flight = self.snd_max.since(self.snd_una);
            self.cc.on_rto(now, flight);
            self.hystart.finish();
            // Go back N: resend from the first unacknowledged byte; data the peer
            // SACKed is skipped by the output path.
            self.snd_nxt = self.snd_una;
            self.in_recovery = false;
            self.rtx_una = false;
            self.dupacks = 0;
            self.recovery_point = self.snd_max;
            self.high_rxt = self.snd_una;
        }
        self.rto_at = Some(now + self.rtt.backed_off(self.backoff));
        None
    }
}
