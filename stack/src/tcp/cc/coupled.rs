//! Coupled congestion control for the subflows of one MPTCP connection: LIA
//! (RFC 6356) and OLIA (Khalili et al., "MPTCP is not Pareto-optimal",
//! CoNEXT 2012). Slow start, loss and RTO behave as NewReno; only the
//! congestion-avoidance increase is coupled, through a [`Coupling`] the
//! connection computes from all its subflows and hands to each one. Without a
//! coupling (a single subflow, or plain TCP) both are NewReno.

use super::newreno::NewReno;
use super::{is_cwnd_limited, CongestionControl, Coupling, MAX_CWND};
use crate::time::Instant;
use core::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoupledKind {
    Lia,
    Olia,
}

#[derive(Debug)]
pub struct Coupled {
    kind: CoupledKind,
    base: NewReno,
    mss: usize,
    coupling: Option<Coupling>,
    /// Fractional window change not yet applied, bytes.
    credit: f64,
    /// Bytes acknowledged since the last loss, and between the two losses
    /// before (OLIA's l_1r and l_2r).
    since_loss: u64,
    between_losses: u64,
}

impl Coupled {
    pub fn new(kind: CoupledKind, mss: usize, initial_cwnd: usize) -> Self {
        Coupled {
            kind,
            base: NewReno::new(mss, initial_cwnd),
            mss: mss.max(1),
            coupling: None,
            credit: 0.0,
            since_loss: 0,
            between_losses: 0,
        }
    }

    /// The congestion-avoidance increase for `acked` bytes, in bytes (OLIA's
    /// may be negative).
    fn increase(&self, acked: usize) -> f64 {
        let cwnd = self.base.cwnd().max(1) as f64;
        let mss = self.mss as f64;
        let acked = acked as f64;
        let reno = acked * mss / cwnd;
        match (self.kind, self.coupling) {
            (_, None) => reno,
            // RFC 6356 §3: min(alpha * acked * mss / cwnd_total, acked * mss / cwnd_i).
            (CoupledKind::Lia, Some(c)) => {
                let total = (c.total_cwnd.max(1)) as f64;
                (c.lia_alpha * acked * mss / total).min(reno)
            }
            // Per acknowledged segment, in segments: the window's share of the
            // aggregate rate plus the shift term alpha_r / w_r.
            (CoupledKind::Olia, Some(c)) => {
                let w = cwnd / mss;
                let segments = acked / mss;
                segments * (c.olia_share + c.olia_alpha / w.max(1.0)) * mss
            }
        }
    }
}

impl CongestionControl for Coupled {
    fn name(&self) -> &'static str {
        match self.kind {
            CoupledKind::Lia => "lia",
            CoupledKind::Olia => "olia",
        }
    }

    fn cwnd(&self) -> usize {
        self.base.cwnd()
    }

    fn ssthresh(&self) -> usize {
        self.base.ssthresh()
    }

    fn on_ack(&mut self, now: Instant, acked: usize, in_flight: usize, srtt: Duration) {
        self.since_loss = self.since_loss.saturating_add(acked as u64);
        let (cwnd, ssthresh) = (self.base.cwnd(), self.base.ssthresh());
        if cwnd < ssthresh || acked == 0 || !is_cwnd_limited(cwnd, ssthresh, in_flight, self.mss) {
            // Slow start (and its bookkeeping) as NewReno.
            self.base.on_ack(now, acked, in_flight, srtt);
            return;
        }
        self.credit += self.increase(acked);
        // At most one segment per ACK, as NewReno.
        self.credit = self.credit.min(self.mss as f64);
        if self.credit >= 1.0 || self.credit <= -1.0 {
            let step = self.credit.trunc();
            self.credit -= step;
            let next = (cwnd as f64 + step).max(2.0 * self.mss as f64) as usize;
            self.base.set_cwnd(next.min(MAX_CWND));
        }
    }

    fn on_loss(&mut self, now: Instant, in_flight: usize) {
        self.between_losses = self.since_loss;
        self.since_loss = 0;
        self.credit = 0.0;
        self.base.on_loss(now, in_flight);
    }

    fn on_rto(&mut self, now: Instant, in_flight: usize) {
        self.between_losses = self.since_loss;
        self.since_loss = 0;
        self.credit = 0.0;
        self.base.on_rto(now, in_flight);
    }

    fn exit_slow_start(&mut self) {
        self.base.exit_slow_start();
    }

    fn on_recovery_exit(&mut self, now: Instant) {
        self.base.on_recovery_exit(now);
    }

    fn set_mss(&mut self, mss: usize) {
        self.mss = mss.max(1);
        self.base.set_mss(mss);
    }

    fn set_cwnd(&mut self, cwnd: usize) {
        self.base.set_cwnd(cwnd);
    }

    fn set_coupling(&mut self, c: Option<Coupling>) {
        self.coupling = c;
    }

    fn loss_interval(&self) -> u64 {
        self.since_loss.max(self.between_losses)
    }
}

/// What the connection knows of one subflow for coupling.
#[derive(Debug, Clone, Copy)]
pub struct SubflowCc {
    pub cwnd: usize,
    pub mss: usize,
    pub srtt: Duration,
    /// Bytes between losses ([`CongestionControl::loss_interval`]).
    pub loss_interval: u64,
}

/// The coupling of each subflow in `subs` (same order), for LIA and OLIA alike.
pub fn couple(subs: &[SubflowCc]) -> Vec<Coupling> {
    let mut out = Vec::with_capacity(subs.len());
    couple_into(subs, &mut out);
    out
}

/// [`couple`] into `out` (cleared first), so that a caller that couples on
/// every transmission round can keep one allocation.
pub fn couple_into(subs: &[SubflowCc], out: &mut Vec<Coupling>) {
    out.clear();
    let rtt = |s: &SubflowCc| s.srtt.as_secs_f64().max(1e-6);
    let total: usize = subs.iter().map(|s| s.cwnd).sum();
    // LIA (RFC 6356 §3): alpha = total * max(cwnd_i / rtt_i^2) / (sum cwnd_i / rtt_i)^2.
    let best = subs
        .iter()
        .map(|s| s.cwnd as f64 / (rtt(s) * rtt(s)))
        .fold(0.0, f64::max);
    let sum: f64 = subs.iter().map(|s| s.cwnd as f64 / rtt(s)).sum();
    let lia_alpha = if sum > 0.0 {
        total as f64 * best / (sum * sum)
    } else {
        1.0
    };
    // OLIA, windows in segments.
    let w = |s: &SubflowCc| s.cwnd as f64 / s.mss.max(1) as f64;
    let sum_w: f64 = subs.iter().map(|s| w(s) / rtt(s)).sum();
    let max_w = subs.iter().map(w).fold(0.0, f64::max);
    let quality = |s: &SubflowCc| {
        let l = s.loss_interval as f64;
        l * l / rtt(s)
    };
    let best_q = subs.iter().map(quality).fold(0.0, f64::max);
    let in_max = |s: &SubflowCc| w(s) >= max_w * 0.999;
    let in_best = |s: &SubflowCc| quality(s) >= best_q * 0.999;
    let collected = subs.iter().filter(|s| in_best(s) && !in_max(s)).count();
    let maxed = subs.iter().filter(|s| in_max(s)).count();
    let n = subs.len() as f64;
    out.extend(subs.iter().map(|s| {
        let olia_alpha = if collected == 0 {
            0.0
        } else if in_best(s) && !in_max(s) {
            1.0 / (n * collected as f64)
        } else if in_max(s) {
            -1.0 / (n * maxed as f64)
        } else {
            0.0
        };
        let olia_share = if sum_w > 0.0 {
            (w(s) / (rtt(s) * rtt(s))) / (sum_w * sum_w)
        } else {
            0.0
        };
        Coupling {
            lia_alpha,
            total_cwnd: total,
            olia_share,
            olia_alpha,
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(cwnd_segs: usize, rtt_ms: u64, l: u64) -> SubflowCc {
        SubflowCc {
            cwnd: cwnd_segs * 1000,
            mss: 1000,
            srtt: Duration::from_millis(rtt_ms),
            loss_interval: l,
        }
    }

    #[test]
    fn lia_on_equal_paths_grows_like_one_reno_flow_in_total() {
        // Two equal subflows: alpha = 2w * (w/r^2) / (2w/r)^2 = 1/2, so each grows
        // by half of what a Reno flow with the total window would: in total one
        // segment per round trip.
        let c = couple(&[sub(10, 50, 0), sub(10, 50, 0)]);
        assert!((c[0].lia_alpha - 0.5).abs() < 1e-9, "{c:?}");
        let mut cc = Coupled::new(CoupledKind::Lia, 1000, 10_000);
        // Leave slow start: ssthresh = cwnd = 10_000.
        cc.on_loss(Instant::ZERO, 20_000);
        cc.on_recovery_exit(Instant::ZERO);
        cc.set_coupling(Some(c[0]));
        // One window of ACKs on this subflow.
        let before = cc.cwnd();
        for _ in 0..10 {
            cc.on_ack(Instant::ZERO, 1000, 10_000, Duration::from_millis(50));
        }
        let grew = cc.cwnd() - before;
        // Reno alone would add 1000 (one segment); coupled: alpha * acked * mss /
        // total = 0.5 * 10_000 * 1000 / 20_000 = 250 per window.
        assert!((240..=260).contains(&grew), "grew {grew}");
    }

    #[test]
    fn lia_single_path_is_reno() {
        let c = couple(&[sub(20, 30, 0)]);
        assert!((c[0].lia_alpha - 1.0).abs() < 1e-9);
    }

    #[test]
    fn olia_moves_window_to_the_better_path() {
        // Path 0 has the largest window but path 1 the best loss interval: path 1
        // is "collected" and gains, path 0 gives some up.
        let c = couple(&[sub(30, 50, 1000), sub(10, 50, 100_000)]);
        assert!(c[1].olia_alpha > 0.0 && c[0].olia_alpha < 0.0, "{c:?}");
        // Balanced: no shift.
        let c = couple(&[sub(10, 50, 5000), sub(10, 50, 5000)]);
        assert_eq!(c[0].olia_alpha, 0.0);
        assert_eq!(c[1].olia_alpha, 0.0);
    }
}
