//! STUB: the congestion-control helper implements this.

use super::CongestionControl;
use crate::time::Instant;
use core::time::Duration;

#[derive(Debug)]
pub struct Cubic {
    mss: usize,
    cwnd: usize,
    ssthresh: usize,
}

impl Cubic {
    pub fn new(mss: usize, initial_cwnd: usize) -> Self {
        Cubic {
            mss,
            cwnd: initial_cwnd,
            ssthresh: usize::MAX,
        }
    }
}

impl CongestionControl for Cubic {
    fn name(&self) -> &'static str {
        "cubic"
    }
    fn cwnd(&self) -> usize {
        self.cwnd
    }
    fn ssthresh(&self) -> usize {
        self.ssthresh
    }
    fn on_ack(&mut self, _now: Instant, acked: usize, _in_flight: usize, _srtt: Duration) {
        if self.cwnd < self.ssthresh {
            self.cwnd += acked.min(self.mss);
        } else {
            self.cwnd += (self.mss * self.mss / self.cwnd).max(1);
        }
    }
    fn on_loss(&mut self, _now: Instant, in_flight: usize) {
        self.ssthresh = (in_flight / 2).max(2 * self.mss);
        self.cwnd = self.ssthresh;
    }
    fn on_rto(&mut self, _now: Instant, in_flight: usize) {
        self.ssthresh = (in_flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
    }
    fn on_recovery_exit(&mut self, _now: Instant) {
        self.cwnd = self.ssthresh;
    }
    fn set_mss(&mut self, mss: usize) {
        self.mss = mss;
    }
    fn set_cwnd(&mut self, cwnd: usize) {
        self.cwnd = cwnd;
    }
}
