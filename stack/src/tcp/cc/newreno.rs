//! NewReno window management (RFC 5681 §3.1, RFC 6582 §3.2, RFC 3465).
//!
//! * Slow start (`cwnd < ssthresh`): `cwnd += min(acked, 2 * mss)` per ACK (byte
//!   counting with L = 2 so delayed ACKs still double the window per round trip).
//! * Congestion avoidance: bytes acknowledged are counted; each time the count reaches
//!   `cwnd`, `cwnd += mss` (about one segment per round trip, RFC 5681 §3.1).
//! * Growth only while cwnd-limited, see [`super::is_cwnd_limited`].
//! * Loss: `ssthresh = max(in_flight / 2, 2 * mss)`, `cwnd = ssthresh` (RFC 5681
//!   eq. 4; the TCB inflates during recovery through `set_cwnd`).
//! * Recovery exit: `cwnd = ssthresh` (RFC 6582 §3.2 step 3, "full deflation").
//! * RTO: ssthresh as on loss, `cwnd = mss`; if the timer fires again before any new
//!   data is acknowledged, ssthresh is held (RFC 5681 §3.1, after eq. 4).

use super::{is_cwnd_limited, slow_start_cwnd, CongestionControl, MAX_CWND};
use crate::time::Instant;
use core::time::Duration;

#[derive(Debug)]
pub struct NewReno {
    mss: usize,
    cwnd: usize,
    ssthresh: usize,
    /// Bytes acknowledged in congestion avoidance since cwnd last grew.
    bytes_acked: usize,
    /// Between `on_loss` and `on_recovery_exit`.
    in_recovery: bool,
    /// An RTO fired and no new data has been acknowledged since.
    rto_backoff: bool,
}

impl NewReno {
    pub fn new(mss: usize, initial_cwnd: usize) -> Self {
        NewReno {
            mss: mss.max(1),
            cwnd: initial_cwnd.min(MAX_CWND),
            ssthresh: usize::MAX,
            bytes_acked: 0,
            in_recovery: false,
            rto_backoff: false,
        }
    }

    fn reduced_ssthresh(&self, in_flight: usize) -> usize {
        (in_flight / 2).max(2 * self.mss).min(MAX_CWND)
    }
}

impl CongestionControl for NewReno {
    fn name(&self) -> &'static str {
        "newreno"
    }

    fn cwnd(&self) -> usize {
        self.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn on_ack(&mut self, _now: Instant, acked: usize, in_flight: usize, _srtt: Duration) {
        if acked == 0 {
            return;
        }
        self.rto_backoff = false;
        if !is_cwnd_limited(self.cwnd, self.ssthresh, in_flight, self.mss) {
            return;
        }
        if self.cwnd < self.ssthresh {
            self.cwnd = slow_start_cwnd(self.cwnd, self.ssthresh, acked, self.mss);
            return;
        }
        // Congestion avoidance, byte-counting variant of RFC 5681 eq. 3.
        self.bytes_acked = self.bytes_acked.saturating_add(acked);
        if self.bytes_acked >= self.cwnd {
            self.bytes_acked -= self.cwnd;
            self.cwnd = self.cwnd.saturating_add(self.mss).min(MAX_CWND);
        }
        // At most one segment per ACK; never bank more than a window of credit.
        self.bytes_acked = self.bytes_acked.min(self.cwnd);
    }

    fn on_loss(&mut self, _now: Instant, in_flight: usize) {
        self.ssthresh = self.reduced_ssthresh(in_flight);
        self.cwnd = self.ssthresh;
        self.bytes_acked = 0;
        self.in_recovery = true;
    }

    fn on_rto(&mut self, _now: Instant, in_flight: usize) {
        if !self.rto_backoff {
            self.ssthresh = self.reduced_ssthresh(in_flight);
        }
        self.cwnd = self.mss.min(MAX_CWND);
        self.bytes_acked = 0;
        self.in_recovery = false;
        self.rto_backoff = true;
    }

    fn exit_slow_start(&mut self) {
        self.ssthresh = self.cwnd;
    }

    fn on_recovery_exit(&mut self, _now: Instant) {
        // Only a fast recovery started by `on_loss` deflates; after an RTO the window
        // is already being rebuilt by slow start.
        if self.in_recovery {
            self.cwnd = self.ssthresh.min(MAX_CWND);
            self.bytes_acked = 0;
            self.in_recovery = false;
        }
    }

    fn set_mss(&mut self, mss: usize) {
        self.mss = mss.max(1);
    }

    fn set_cwnd(&mut self, cwnd: usize) {
        self.cwnd = cwnd.min(MAX_CWND);
        self.bytes_acked = self.bytes_acked.min(self.cwnd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;
    const RTT: Duration = Duration::from_millis(100);

    /// One round trip of a fully used window, acknowledged `per_ack` bytes at a time.
    fn ack_round(cc: &mut NewReno, now: Instant, per_ack: usize) {
        let window = cc.cwnd();
        let mut left = window;
        while left > 0 {
            let a = per_ack.min(left);
            cc.on_ack(now, a, window, RTT);
            left -= a;
        }
    }

    #[test]
    fn slow_start_doubles_per_rtt() {
        let mut cc = NewReno::new(MSS, 10 * MSS);
        ack_round(&mut cc, Instant::ZERO, MSS);
        assert_eq!(cc.cwnd(), 20 * MSS);
        ack_round(&mut cc, Instant::ZERO, MSS);
        assert_eq!(cc.cwnd(), 40 * MSS);
        // Delayed ACKs (two segments each) double it too thanks to L = 2.
        ack_round(&mut cc, Instant::ZERO, 2 * MSS);
        assert_eq!(cc.cwnd(), 80 * MSS);
        // A stretch ACK counts at most 2 * MSS.
        let before = cc.cwnd();
        cc.on_ack(Instant::ZERO, 10 * MSS, before, RTT);
        assert_eq!(cc.cwnd(), before + 2 * MSS);
    }

    #[test]
    fn slow_start_stops_at_ssthresh() {
        let mut cc = NewReno::new(MSS, 10 * MSS);
        cc.ssthresh = 15 * MSS;
        ack_round(&mut cc, Instant::ZERO, MSS);
        assert_eq!(cc.cwnd(), 15 * MSS);
    }

    #[test]
    fn congestion_avoidance_adds_one_mss_per_window() {
        let mut cc = NewReno::new(MSS, 20 * MSS);
        cc.ssthresh = 10 * MSS;
        for round in 1..=5 {
            ack_round(&mut cc, Instant::ZERO, MSS);
            assert_eq!(cc.cwnd(), (20 + round) * MSS);
        }
        // Just short of a window of bytes acked: no growth yet.
        let w = cc.cwnd();
        for _ in 0..(w / MSS - 1) {
            cc.on_ack(Instant::ZERO, MSS, w, RTT);
        }
        assert_eq!(cc.cwnd(), w);
        cc.on_ack(Instant::ZERO, MSS, w, RTT);
        assert_eq!(cc.cwnd(), w + MSS);
    }

    #[test]
    fn no_growth_when_not_cwnd_limited() {
        let mut cc = NewReno::new(MSS, 10 * MSS);
        for _ in 0..100 {
            cc.on_ack(Instant::ZERO, MSS, 3 * MSS, RTT);
        }
        assert_eq!(cc.cwnd(), 10 * MSS);
        cc.ssthresh = 5 * MSS;
        for _ in 0..100 {
            cc.on_ack(Instant::ZERO, MSS, 8 * MSS, RTT);
        }
        assert_eq!(cc.cwnd(), 10 * MSS);
        // The idle period banked no credit.
        cc.on_ack(Instant::ZERO, MSS, 10 * MSS, RTT);
        assert_eq!(cc.cwnd(), 10 * MSS);
    }

    #[test]
    fn loss_halves_flight_and_recovery_deflates() {
        let mut cc = NewReno::new(MSS, 40 * MSS);
        cc.on_loss(Instant::ZERO, 30 * MSS);
        assert_eq!(cc.ssthresh(), 15 * MSS);
        assert_eq!(cc.cwnd(), 15 * MSS);
        // Window inflation by the TCB during recovery.
        cc.set_cwnd(18 * MSS);
        assert_eq!(cc.cwnd(), 18 * MSS);
        cc.on_recovery_exit(Instant::ZERO);
        assert_eq!(cc.cwnd(), 15 * MSS);
        assert_eq!(cc.ssthresh(), 15 * MSS);
        // Tiny flight: floor of two segments.
        cc.on_loss(Instant::ZERO, MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        assert_eq!(cc.cwnd(), 2 * MSS);
    }

    #[test]
    fn rto_collapses_to_one_segment() {
        let mut cc = NewReno::new(MSS, 40 * MSS);
        cc.on_rto(Instant::ZERO, 40 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        assert_eq!(cc.ssthresh(), 20 * MSS);
        // Backed-off RTO of the same data: ssthresh held.
        cc.on_rto(Instant::ZERO, MSS);
        assert_eq!(cc.ssthresh(), 20 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        // A stray recovery exit after an RTO must not inflate the window.
        cc.on_recovery_exit(Instant::ZERO);
        assert_eq!(cc.cwnd(), MSS);
        // Progress, then another RTO recomputes ssthresh.
        cc.on_ack(Instant::ZERO, MSS, MSS, RTT);
        assert_eq!(cc.cwnd(), 2 * MSS);
        cc.on_rto(Instant::ZERO, 2 * MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
    }

    #[test]
    fn window_is_capped() {
        let mut cc = NewReno::new(MSS, MAX_CWND - MSS);
        for _ in 0..10 {
            cc.on_ack(Instant::ZERO, 2 * MSS, MAX_CWND, RTT);
        }
        assert_eq!(cc.cwnd(), MAX_CWND);
        cc.set_cwnd(usize::MAX);
        assert_eq!(cc.cwnd(), MAX_CWND);
        cc.on_loss(Instant::ZERO, usize::MAX);
        assert!(cc.ssthresh() <= MAX_CWND);
    }
}
