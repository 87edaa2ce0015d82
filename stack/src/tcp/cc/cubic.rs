//! CUBIC (RFC 9438), without HyStart.
//!
//! Windows are kept in bytes; the cubic function itself is evaluated in segments of
//! the current MSS (C = 0.4 is defined per segment) and converted back.
//!
//! * Slow start below ssthresh exactly as NewReno (RFC 9438 §4.10).
//! * Congestion avoidance (§4.2–§4.5): an epoch starts at recovery exit or at the first
//!   ACK in congestion avoidance. With `cwnd_epoch` the window at its start,
//!   `K = cbrt((W_max - cwnd_epoch) / C)` and `W_cubic(t) = C (t - K)^3 + W_max`.
//!   Each ACK updates the Reno estimate `W_est` (§4.3); if `W_cubic(t) < W_est` the
//!   window follows `W_est`, otherwise it moves towards
//!   `target = clamp(W_cubic(t + srtt), cwnd, 1.5 cwnd)` by
//!   `(target - cwnd) * acked / cwnd` bytes (concave and convex regions alike).
//! * Time spent not cwnd-limited is removed from `t` (§5.8): the epoch start moves
//!   forward by the gap between such an ACK and the previous one.
//! * Loss (§4.6, §4.7): `W_max` from cwnd with fast convergence,
//!   `ssthresh = max(0.7 * in_flight, 2 mss)`, `cwnd = ssthresh`.
//! * RTO (§4.8): ssthresh as on loss, `cwnd = mss`; the next epoch uses
//!   `W_max = cwnd_epoch` (K = 0) and `W_est = cwnd_epoch`.

use super::{is_cwnd_limited, slow_start_cwnd, CongestionControl, MAX_CWND};
use crate::time::Instant;
use core::time::Duration;

/// C, segments / s^3.
const C: f64 = 0.4;
/// Multiplicative decrease factor.
const BETA: f64 = 0.7;
/// Reno-friendly additive increase factor before `W_est` reaches `cwnd_prev` (§4.3).
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);
/// Fast convergence (§4.7) is on.
const FAST_CONVERGENCE: bool = true;

#[derive(Debug, Clone, Copy)]
struct Epoch {
    /// Start of the congestion-avoidance stage (shifted forward over app-limited time).
    start: Instant,
    /// Time of the previous ACK in this epoch.
    last_ack: Instant,
    /// K, seconds (negative when the epoch starts above `W_max`).
    k: f64,
    /// Reno-friendly estimate, bytes.
    w_est: f64,
}

#[derive(Debug)]
pub struct Cubic {
    mss: usize,
    cwnd: usize,
    ssthresh: usize,
    /// Window before the last reduction, adjusted by fast convergence; bytes. Zero
    /// before the first congestion event.
    w_max: f64,
    /// cwnd just before the last reduction, bytes (switches alpha to 1 in §4.3).
    cwnd_prev: f64,
    /// Current congestion-avoidance epoch, if one has started.
    epoch: Option<Epoch>,
    /// Fractional bytes of window growth not yet added to `cwnd`.
    cwnd_frac: f64,
    /// The next epoch follows an RTO (§4.8: W_max = cwnd_epoch, K = 0).
    after_rto: bool,
    /// Between `on_loss` and `on_recovery_exit`.
    in_recovery: bool,
    /// An RTO fired and no new data has been acknowledged since.
    rto_backoff: bool,
}

impl Cubic {
    pub fn new(mss: usize, initial_cwnd: usize) -> Self {
        Cubic {
            mss: mss.max(1),
            cwnd: initial_cwnd.min(MAX_CWND),
            ssthresh: usize::MAX,
            w_max: 0.0,
            cwnd_prev: 0.0,
            epoch: None,
            cwnd_frac: 0.0,
            after_rto: false,
            in_recovery: false,
            rto_backoff: false,
        }
    }

    fn reduced_ssthresh(&self, in_flight: usize) -> usize {
        let s = (in_flight as f64 * BETA) as usize;
        s.max(2 * self.mss).min(MAX_CWND)
    }

    /// Start a congestion-avoidance epoch at `now` from the current window.
    fn start_epoch(&mut self, now: Instant) -> Epoch {
        let cwnd_epoch = self.cwnd as f64;
        if self.after_rto || self.w_max <= 0.0 {
            // §4.8 after a timeout; also with no congestion event yet, where the
            // curve simply starts convex from the current window.
            self.w_max = cwnd_epoch;
            self.after_rto = false;
        }
        if self.cwnd_prev <= 0.0 {
            self.cwnd_prev = cwnd_epoch;
        }
        let mss = self.mss as f64;
        let k = ((self.w_max - cwnd_epoch) / mss / C).cbrt();
        let epoch = Epoch {
            start: now,
            last_ack: now,
            k: if k.is_finite() { k } else { 0.0 },
            w_est: cwnd_epoch,
        };
        self.epoch = Some(epoch);
        self.cwnd_frac = 0.0;
        epoch
    }

    /// `W_cubic(t)` in bytes, `t` in seconds from the epoch start.
    fn w_cubic(&self, k: f64, t: f64) -> f64 {
        let mss = self.mss as f64;
        let d = t - k;
        let w = (C * d * d * d + self.w_max / mss) * mss;
        // Finite for every finite input; clamp so later arithmetic stays tame.
        w.clamp(0.0, MAX_CWND as f64)
    }

    fn congestion_avoidance(&mut self, now: Instant, acked: usize, srtt: Duration) {
        let mut ep = match self.epoch {
            Some(ep) => ep,
            None => self.start_epoch(now),
        };
        ep.last_ack = now;
        let cwnd = (self.cwnd as f64).max(1.0);
        let acked = acked as f64;
        let mss = self.mss as f64;
        let t = now.saturating_since(ep.start).as_secs_f64();
        let rtt = srtt.as_secs_f64();

        // §4.3 Reno-friendly estimate: alpha segments per window of acked bytes.
        let alpha = if ep.w_est >= self.cwnd_prev {
            1.0
        } else {
            ALPHA
        };
        ep.w_est = (ep.w_est + alpha * acked * mss / cwnd).min(MAX_CWND as f64);

        if self.w_cubic(ep.k, t) < ep.w_est {
            // Reno-friendly region.
            let w = ep.w_est as usize;
            if w > self.cwnd {
                self.cwnd = w.min(MAX_CWND);
                self.cwnd_frac = 0.0;
            }
        } else {
            // Concave (cwnd < W_max) and convex regions share the update rule.
            let target = self.w_cubic(ep.k, t + rtt).clamp(cwnd, 1.5 * cwnd);
            self.cwnd_frac += (target - cwnd) * acked / cwnd;
            if !self.cwnd_frac.is_finite() || self.cwnd_frac < 0.0 {
                self.cwnd_frac = 0.0;
            }
            let whole = self.cwnd_frac.floor();
            self.cwnd_frac -= whole;
            self.cwnd = self.cwnd.saturating_add(whole as usize).min(MAX_CWND);
        }
        self.epoch = Some(ep);
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

    fn on_ack(&mut self, now: Instant, acked: usize, in_flight: usize, srtt: Duration) {
        if acked == 0 {
            return;
        }
        self.rto_backoff = false;
        if !is_cwnd_limited(self.cwnd, self.ssthresh, in_flight, self.mss) {
            // Application-limited: do not grow, and do not let this time advance the
            // cubic curve.
            if let Some(ep) = &mut self.epoch {
                let gap = now.saturating_since(ep.last_ack);
                ep.start = (ep.start + gap).min(now);
                ep.last_ack = now;
            }
            return;
        }
        if self.cwnd < self.ssthresh {
            self.cwnd = slow_start_cwnd(self.cwnd, self.ssthresh, acked, self.mss);
            return;
        }
        self.congestion_avoidance(now, acked, srtt);
    }

    fn on_loss(&mut self, _now: Instant, in_flight: usize) {
        let cwnd = self.cwnd as f64;
        self.cwnd_prev = cwnd;
        // §4.7 fast convergence: a loss before regaining the previous W_max releases
        // bandwidth to newer flows.
        self.w_max = if FAST_CONVERGENCE && cwnd < self.w_max {
            cwnd * (1.0 + BETA) / 2.0
        } else {
            cwnd
        };
        self.ssthresh = self.reduced_ssthresh(in_flight);
        self.cwnd = self.ssthresh;
        self.epoch = None;
        self.cwnd_frac = 0.0;
        self.after_rto = false;
        self.in_recovery = true;
    }

    fn on_rto(&mut self, _now: Instant, in_flight: usize) {
        if !self.rto_backoff {
            self.cwnd_prev = self.cwnd as f64;
            self.ssthresh = self.reduced_ssthresh(in_flight);
        }
        self.cwnd = self.mss.min(MAX_CWND);
        self.epoch = None;
        self.cwnd_frac = 0.0;
        self.after_rto = true;
        self.in_recovery = false;
        self.rto_backoff = true;
    }

    fn exit_slow_start(&mut self) {
        // No congestion event yet: the cubic curve starts convex from here
        // (W_max = cwnd, RFC 9438 §4.10).
        self.ssthresh = self.cwnd;
    }

    fn on_recovery_exit(&mut self, now: Instant) {
        if self.in_recovery {
            self.in_recovery = false;
            self.cwnd = self.ssthresh.min(MAX_CWND);
            self.start_epoch(now);
        }
    }

    fn set_mss(&mut self, mss: usize) {
        self.mss = mss.max(1);
    }

    fn set_cwnd(&mut self, cwnd: usize) {
        self.cwnd = cwnd.min(MAX_CWND);
        self.cwnd_frac = 0.0;
        if !self.in_recovery {
            // An outside change of the window (e.g. restart after idle) restarts the
            // curve from the new window at the next congestion-avoidance ACK.
            self.epoch = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    /// Feed ACK-clocked traffic for `dur`: one MSS acknowledged every `srtt / cwnd`
    /// (in segments), with the window fully used. Returns the time reached.
    fn run(cc: &mut Cubic, mut now: Instant, srtt: Duration, dur: Duration) -> Instant {
        let end = now + dur;
        while now < end {
            let segs = (cc.cwnd() / MSS).max(1) as u32;
            now += srtt / segs;
            cc.on_ack(now, MSS, cc.cwnd(), srtt);
        }
        now
    }

    fn segs(cc: &Cubic) -> f64 {
        cc.cwnd() as f64 / MSS as f64
    }

    /// A loss at 100 segments, full flight, then recovery exit at `now`.
    fn lost_at_100(now: Instant) -> Cubic {
        let mut cc = Cubic::new(MSS, 100 * MSS);
        cc.on_loss(now, 100 * MSS);
        cc.on_recovery_exit(now);
        cc
    }

    #[test]
    fn slow_start_doubles_per_rtt() {
        let mut cc = Cubic::new(MSS, 10 * MSS);
        for _ in 0..10 {
            cc.on_ack(Instant::ZERO, MSS, 10 * MSS, Duration::from_millis(50));
        }
        assert_eq!(cc.cwnd(), 20 * MSS);
    }

    #[test]
    fn loss_multiplies_flight_by_beta() {
        let mut cc = Cubic::new(MSS, 100 * MSS);
        cc.on_loss(Instant::ZERO, 80 * MSS);
        assert_eq!(cc.ssthresh(), 56 * MSS);
        assert_eq!(cc.cwnd(), 56 * MSS);
        assert_eq!(cc.w_max, (100 * MSS) as f64);
        // Inflation during recovery leaves the bookkeeping alone.
        cc.set_cwnd(70 * MSS);
        cc.on_recovery_exit(Instant::ZERO);
        assert_eq!(cc.cwnd(), 56 * MSS);
        assert_eq!(cc.w_max, (100 * MSS) as f64);
        // Two-segment floor.
        cc.on_loss(Instant::ZERO, MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        assert_eq!(cc.cwnd(), 2 * MSS);
    }

    #[test]
    fn rto_collapses_to_one_segment_and_restarts_from_k_zero() {
        let mut cc = Cubic::new(MSS, 100 * MSS);
        let now = Instant::from_millis(1000);
        cc.on_rto(now, 100 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        assert_eq!(cc.ssthresh(), 70 * MSS);
        cc.on_rto(now, MSS);
        assert_eq!(cc.ssthresh(), 70 * MSS, "backed-off RTO holds ssthresh");
        cc.on_recovery_exit(now);
        assert_eq!(cc.cwnd(), MSS, "no deflation to ssthresh after an RTO");
        // Slow start back to ssthresh, then the first CA epoch has K = 0.
        let srtt = Duration::from_millis(100);
        let now = run(&mut cc, now, srtt, Duration::from_secs(1));
        assert!(cc.cwnd() >= 70 * MSS);
        let ep = cc.epoch.expect("in congestion avoidance");
        assert_eq!(ep.k, 0.0);
        assert!(cc.w_max >= (70 * MSS) as f64 && cc.w_max < (75 * MSS) as f64);
        let _ = now;
    }

    #[test]
    fn no_growth_when_not_cwnd_limited() {
        let mut cc = lost_at_100(Instant::ZERO);
        let w = cc.cwnd();
        let srtt = Duration::from_millis(100);
        let mut now = Instant::ZERO;
        for _ in 0..10_000 {
            now += Duration::from_millis(1);
            cc.on_ack(now, MSS, w / 2, srtt);
        }
        assert_eq!(cc.cwnd(), w);
        // The ten app-limited seconds did not advance the curve: growth resumes
        // gently from the start of the concave region.
        cc.on_ack(now + Duration::from_millis(1), MSS, w, srtt);
        assert!(cc.cwnd() <= w + 2 * MSS, "cwnd {}", cc.cwnd());
    }

    #[test]
    fn returns_to_w_max_around_k_concave_then_convex() {
        let srtt = Duration::from_millis(200);
        let mut cc = lost_at_100(Instant::ZERO);
        assert_eq!(cc.cwnd(), 70 * MSS);
        let k = (100.0f64 * (1.0 - BETA) / C).cbrt();
        assert!((cc.epoch.unwrap().k - k).abs() < 1e-9);

        let mut now = Instant::ZERO;
        let mut at = |cc: &mut Cubic, frac: f64| {
            let until = Instant::from_micros((frac * k * 1e6) as u64);
            now = run(cc, now, srtt, until.saturating_since(now));
            segs(cc)
        };
        let w = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75].map(|f| at(&mut cc, f));

        // Back at W_max around t = K.
        assert!((w[3] - 100.0).abs() < 1.5, "cwnd at K: {} segments", w[3]);
        // Monotone growth, below W_max before K.
        assert!(w.windows(2).all(|p| p[1] >= p[0]), "{w:?}");
        assert!(w[2] < 100.0);
        // Concave before K: growth slows down.
        assert!(w[1] - w[0] > w[2] - w[1], "{w:?}");
        // Convex after K: growth speeds up.
        assert!(w[6] - w[5] > w[5] - w[4], "{w:?}");
        assert!(w[6] > 105.0, "{w:?}");
        // Cubic, not Reno, drove this: the Reno estimate is well below.
        let w_est = cc.epoch.unwrap().w_est / MSS as f64;
        assert!(w_est < w[6], "w_est {w_est} vs {w:?}");
    }

    #[test]
    fn reno_friendly_region_dominates_small_bdp() {
        // W_max = 10 segments at 10 ms: K ~ 1.96 s, i.e. ~200 round trips, so
        // Reno's one segment per RTT outruns the cubic curve.
        let srtt = Duration::from_millis(10);
        let mut cc = Cubic::new(MSS, 10 * MSS);
        cc.on_loss(Instant::ZERO, 10 * MSS);
        cc.on_recovery_exit(Instant::ZERO);
        assert_eq!(cc.cwnd(), 7 * MSS);
        let ep = cc.epoch.unwrap();
        run(&mut cc, Instant::ZERO, srtt, Duration::from_secs(1));
        let cubic_now = cc.w_cubic(ep.k, 1.0 + 0.01) / MSS as f64;
        assert!(cubic_now < 10.0);
        // Reno: ~0.53 seg/RTT up to 10 segments (~6 RTTs), then 1 seg/RTT.
        assert!(segs(&cc) > 60.0, "cwnd {} segments", segs(&cc));
        assert!(segs(&cc) < 120.0, "cwnd {} segments", segs(&cc));
        let w_est = cc.epoch.unwrap().w_est / MSS as f64;
        assert!((segs(&cc) - w_est).abs() < 1.0);
    }

    #[test]
    fn fast_convergence_lowers_w_max() {
        let srtt = Duration::from_millis(100);
        let mut cc = lost_at_100(Instant::ZERO);
        let now = run(&mut cc, Instant::ZERO, srtt, Duration::from_secs(1));
        let w = cc.cwnd();
        assert!(w < 100 * MSS);
        cc.on_loss(now, w);
        let expected = w as f64 * (1.0 + BETA) / 2.0;
        assert!((cc.w_max - expected).abs() < 1e-6);
        assert!(cc.w_max < w as f64);
        // A loss above the previous W_max records the full window.
        let mut cc = lost_at_100(Instant::ZERO);
        cc.set_cwnd(120 * MSS);
        cc.on_loss(now, 120 * MSS);
        assert_eq!(cc.w_max, (120 * MSS) as f64);
    }

    #[test]
    fn growth_bounded_by_one_and_a_half_per_rtt() {
        // Long after K the cubic target is huge; growth per RTT stays <= 1.5x.
        let srtt = Duration::from_millis(100);
        let mut cc = lost_at_100(Instant::ZERO);
        let now = Instant::ZERO + Duration::from_secs(60);
        cc.on_ack(now, MSS, cc.cwnd(), srtt);
        // One round trip acknowledges one window's worth of data.
        let before = cc.cwnd();
        for i in 0..(before / MSS) as u32 {
            let t = now + srtt * (i + 1) / (before / MSS) as u32;
            cc.on_ack(t, MSS, cc.cwnd(), srtt);
        }
        assert!(
            cc.cwnd() as f64 <= before as f64 * 1.5,
            "{before} -> {}",
            cc.cwnd()
        );
        assert!(
            cc.cwnd() as f64 >= before as f64 * 1.45,
            "{before} -> {}",
            cc.cwnd()
        );
    }

    #[test]
    fn no_panic_or_nan_with_zero_srtt_and_huge_gaps() {
        let mut cc = lost_at_100(Instant::ZERO);
        let mut now = Instant::ZERO;
        for i in 0..2_000u64 {
            let srtt = if i % 2 == 0 {
                Duration::ZERO
            } else {
                Duration::MAX
            };
            now += Duration::from_secs(3 * 3600);
            cc.on_ack(now, MSS, cc.cwnd(), srtt);
            assert!(cc.cwnd() <= MAX_CWND);
            assert!(cc.cwnd_frac.is_finite());
            if let Some(ep) = cc.epoch {
                assert!(ep.w_est.is_finite() && ep.k.is_finite());
            }
        }
        // Growth stays bounded by half the acked bytes per ACK despite the gaps.
        assert!(cc.cwnd() > 70 * MSS && cc.cwnd() <= 70 * MSS + 2_000 * MSS / 2);
        // Far future instant, then an instant in the past.
        cc.on_loss(now, cc.cwnd());
        cc.on_recovery_exit(Instant::from_micros(u64::MAX));
        cc.on_ack(Instant::ZERO, MSS, cc.cwnd(), Duration::ZERO);
        cc.on_ack(
            Instant::from_micros(u64::MAX),
            usize::MAX,
            usize::MAX,
            Duration::MAX,
        );
        assert!(cc.cwnd() <= MAX_CWND && cc.cwnd() > 0);
        assert!(cc.w_max.is_finite() && cc.cwnd_frac.is_finite());
        // Degenerate MSS values.
        cc.set_mss(0);
        cc.on_ack(Instant::ZERO, 1, cc.cwnd(), Duration::ZERO);
        cc.on_rto(Instant::ZERO, 0);
        assert!(cc.cwnd() >= 1);
    }
}
