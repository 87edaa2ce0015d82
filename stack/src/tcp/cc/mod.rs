//! Congestion control behind a trait: NewReno (RFC 5681/6582) and CUBIC (RFC 9438).
//!
//! The TCB owns loss detection and recovery (RFC 6675 / RFC 6582); an algorithm only
//! decides the congestion window and slow-start threshold in response to events.

use crate::config::CcAlgorithm;
use crate::time::Instant;
use core::time::Duration;

pub mod coupled;
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
    /// Leave slow start without a loss (HyStart++ saw the round trip grow):
    /// ssthresh = cwnd, congestion avoidance from here.
    fn exit_slow_start(&mut self);
    /// Fast recovery finished (cumulative ACK reached the recovery point).
    fn on_recovery_exit(&mut self, now: Instant);
    /// The segment size changed (MSS negotiated, PMTU).
    fn set_mss(&mut self, mss: usize);
    /// Overwrite cwnd (used for NewReno's window inflation during recovery).
    fn set_cwnd(&mut self, cwnd: usize);
    /// The coupling with the other subflows of an MPTCP connection (coupled
    /// algorithms only; `None`: alone).
    fn set_coupling(&mut self, _c: Option<Coupling>) {}
    /// Bytes acknowledged between losses (OLIA's path quality; 0 if untracked).
    fn loss_interval(&self) -> u64 {
        0
    }
}

/// What a coupled algorithm needs to know of the connection's other subflows,
/// computed by [`coupled::couple`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coupling {
    /// LIA's alpha (RFC 6356 §3).
    pub lia_alpha: f64,
    /// Sum of the subflows' windows, bytes.
    pub total_cwnd: usize,
    /// OLIA's (w_r / rtt_r^2) / (sum_p w_p / rtt_p)^2, windows in segments.
    pub olia_share: f64,
    /// OLIA's alpha_r.
    pub olia_alpha: f64,
}

/// Upper bound on any congestion window or slow-start threshold this module computes
/// (1 GiB): far above any real bandwidth-delay product, small enough that no window
/// arithmetic can overflow.
pub const MAX_CWND: usize = 1 << 30;

/// Appropriate Byte Counting limit L (RFC 3465 §2.2), in segments: in slow start one
/// ACK may grow cwnd by at most `ABC_LIMIT * mss` bytes.
pub const ABC_LIMIT: usize = 2;

/// Whether an ACK should be allowed to grow the window.
///
/// `in_flight` is the flight size *before* the ACK (as the trait documents). The
/// sender is cwnd-limited when it could not have sent another full segment, i.e.
/// `in_flight + mss > cwnd`. In slow start (`cwnd < ssthresh`) it also counts as
/// cwnd-limited while at least half the window is in use (`2 * in_flight >= cwnd`),
/// since slow start legitimately doubles the window each round trip and the sender
/// may still be ramping up to fill it. Otherwise the sender is application- or
/// receive-window-limited and the window must not grow (RFC 7661 §4, RFC 9438 §5.8).
pub fn is_cwnd_limited(cwnd: usize, ssthresh: usize, in_flight: usize, mss: usize) -> bool {
    if cwnd < ssthresh && in_flight.saturating_mul(2) >= cwnd {
        return true;
    }
    in_flight.saturating_add(mss) > cwnd
}

/// Slow-start growth for one ACK (RFC 5681 §3.1 with RFC 3465 byte counting, L = 2):
/// `cwnd + min(acked, 2 * mss)`, not beyond `ssthresh` nor [`MAX_CWND`].
pub fn slow_start_cwnd(cwnd: usize, ssthresh: usize, acked: usize, mss: usize) -> usize {
    let inc = acked.min(ABC_LIMIT.saturating_mul(mss));
    cwnd.saturating_add(inc)
        .min(ssthresh)
        .min(MAX_CWND)
        .max(cwnd.min(MAX_CWND))
}

/// A new algorithm instance with initial window `initial_cwnd` bytes.
pub fn new(alg: CcAlgorithm, mss: usize, initial_cwnd: usize) -> Box<dyn CongestionControl> {
    match alg {
        CcAlgorithm::NewReno => Box::new(NewReno::new(mss, initial_cwnd)),
        CcAlgorithm::Cubic => Box::new(Cubic::new(mss, initial_cwnd)),
        CcAlgorithm::Lia => Box::new(coupled::Coupled::new(
            coupled::CoupledKind::Lia,
            mss,
            initial_cwnd,
        )),
        CcAlgorithm::Olia => Box::new(coupled::Coupled::new(
            coupled::CoupledKind::Olia,
            mss,
            initial_cwnd,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_gives_named_algorithms() {
        let r = new(CcAlgorithm::NewReno, 1460, 10 * 1460);
        assert_eq!(r.name(), "newreno");
        assert_eq!(r.cwnd(), 10 * 1460);
        assert_eq!(r.ssthresh(), usize::MAX);
        let c = new(CcAlgorithm::Cubic, 1460, 10 * 1460);
        assert_eq!(c.name(), "cubic");
        assert_eq!(c.cwnd(), 10 * 1460);
        assert_eq!(c.ssthresh(), usize::MAX);
    }

    #[test]
    fn cwnd_limited_rule() {
        let mss = 1000;
        // Congestion avoidance: only when another full segment would not fit.
        assert!(is_cwnd_limited(10_000, 5_000, 10_000, mss));
        assert!(is_cwnd_limited(10_500, 5_000, 10_000, mss));
        assert!(!is_cwnd_limited(10_000, 5_000, 9_000, mss));
        assert!(!is_cwnd_limited(10_000, 5_000, 2_000, mss));
        // Slow start: half the window in use is enough.
        assert!(is_cwnd_limited(10_000, usize::MAX, 5_000, mss));
        assert!(!is_cwnd_limited(10_000, usize::MAX, 4_000, mss));
        // No overflow at the extremes.
        assert!(!is_cwnd_limited(usize::MAX, 1, 0, 0));
        assert!(is_cwnd_limited(MAX_CWND, 1, usize::MAX, usize::MAX));
    }

    #[test]
    fn slow_start_byte_counting() {
        assert_eq!(slow_start_cwnd(10_000, usize::MAX, 500, 1000), 10_500);
        assert_eq!(slow_start_cwnd(10_000, usize::MAX, 5_000, 1000), 12_000);
        assert_eq!(slow_start_cwnd(10_000, 11_000, 5_000, 1000), 11_000);
        assert_eq!(slow_start_cwnd(MAX_CWND, usize::MAX, 5_000, 1000), MAX_CWND);
    }
}
