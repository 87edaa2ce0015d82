//! Congestion control behind a trait: NewReno (RFC 5681/6582) and CUBIC (RFC 9438).
//!
//! The TCB owns loss detection and recovery (RFC 6675 / RFC 6582); an algorithm only
//! decides the congestion window and slow-start threshold in response to events.

use crate::config::CcAlgorithm;
use crate::time::Instant;
use core::time::Duration;

pub mod cubic;
pub mod newreno;

pub use cubic::Cubic;
pub use newreno::NewReno;

pub trait CongestionControl: core::fmt::Debug + Send {
    fn name(&self) -> &'static str;
    /// Congestion window, bytes.
    fn cwnd(&self) -> usize;
    /// Slow-start threshold, bytes (`usize::MAX` before the first loss).
    fn ssthresh(&self) -> usize;
    /// `acked` bytes of new data were cumulatively acknowledged outside recovery.
    /// `in_flight` is the flight size before this ACK; an algorithm grows the window
    /// only while the sender is cwnd-limited. `srtt` is the smoothed RTT.
    fn on_ack(&mut self, now: Instant, acked: usize, in_flight: usize, srtt: Duration);
    /// Loss detected by duplicate ACKs or SACK: entering fast recovery. Sets ssthresh
    /// from `in_flight` (and the algorithm's beta) and cwnd = ssthresh.
    fn on_loss(&mut self, now: Instant, in_flight: usize);
    /// Retransmission timeout: ssthresh from `in_flight`, cwnd = one segment.
    fn on_rto(&mut self, now: Instant, in_flight: usize);
    /// Fast recovery finished (cumulative ACK reached the recovery point).
    fn on_recovery_exit(&mut self, now: Instant);
    /// The segment size changed (MSS negotiated, PMTU).
    fn set_mss(&mut self, mss: usize);
    /// Overwrite cwnd (used for NewReno's window inflation during recovery).
    fn set_cwnd(&mut self, cwnd: usize);
}

/// A new algorithm instance with initial window `initial_cwnd` bytes.
pub fn new(alg: CcAlgorithm, mss: usize, initial_cwnd: usize) -> Box<dyn CongestionControl> {
    match alg {
        CcAlgorithm::NewReno => Box::new(NewReno::new(mss, initial_cwnd)),
        CcAlgorithm::Cubic => Box::new(Cubic::new(mss, initial_cwnd)),
    }
}
