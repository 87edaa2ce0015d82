//! Round-trip time estimation and the retransmission timeout (RFC 6298).

use super::min_filter::WindowedMin;
use crate::Instant;
use core::time::Duration;

/// Clock granularity G of RFC 6298 §2.
const GRANULARITY: Duration = Duration::from_millis(1);

/// How long the least round trip is remembered: Linux's default
/// (`net.ipv4.tcp_min_rtt_wlen`, 300 s). Long enough that a connection's
/// own queues, which come and go, do not pass for the path's delay; short
/// enough that a path whose delay rose for good is known by it.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    min_rtt: WindowedMin,
    latest: Option<Duration>,
    min_rto: Duration,
    max_rto: Duration,
}

impl RttEstimator {
    pub fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial_rto.clamp(min_rto, max_rto),
            min_rtt: WindowedMin::new(MIN_RTT_WINDOW),
            latest: None,
            min_rto,
            max_rto,
        }
    }

    /// Feed one RTT measurement, taken at `now` (RFC 6298 §2.2–2.3).
    pub fn sample(&mut self, now: Instant, r: Duration) {
        self.latest = Some(r);
        self.min_rtt.update(now, r);
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(r);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + r) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        let rto = srtt + (self.rttvar * 4).max(GRANULARITY);
        self.rto = rto.clamp(self.min_rto, self.max_rto);
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// The least round trip of the last [`MIN_RTT_WINDOW`].
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt.get()
    }

    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }

    /// The base RTO (before backoff).
    pub fn rto(&self) -> Duration {
        self.rto
    }

    /// The longest RTO, however far backed off.
    pub fn max_rto(&self) -> Duration {
        self.max_rto
    }

    /// The RTO after `backoff` doublings (RFC 6298 §5.5), bounded by the maximum.
    pub fn backed_off(&self, backoff: u32) -> Duration {
        let factor = 1u32 << backoff.min(16);
        (self.rto * factor).min(self.max_rto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> RttEstimator {
        RttEstimator::new(
            Duration::from_secs(1),
            Duration::from_millis(200),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn first_sample_sets_srtt_and_half_var() {
        let mut e = est();
        assert_eq!(e.rto(), Duration::from_secs(1));
        e.sample(Instant::ZERO, Duration::from_millis(100));
        assert_eq!(e.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(e.rttvar(), Duration::from_millis(50));
        // 100 + 4 * 50 = 300 ms
        assert_eq!(e.rto(), Duration::from_millis(300));
    }

    #[test]
    fn smoothing_and_min_rto() {
        let mut e = est();
        for _ in 0..50 {
            e.sample(Instant::ZERO, Duration::from_millis(10));
        }
        assert!(e.srtt().unwrap() <= Duration::from_millis(11));
        assert_eq!(e.rto(), Duration::from_millis(200));
        assert_eq!(e.min_rtt(), Some(Duration::from_millis(10)));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut e = est();
        e.sample(Instant::ZERO, Duration::from_millis(100));
        assert_eq!(e.backed_off(1), Duration::from_millis(600));
        assert_eq!(e.backed_off(30), Duration::from_secs(60));
    }
}
