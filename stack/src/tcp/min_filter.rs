//! The least of a measurement over a sliding window of time, in constant
//! space: Kathleen Nichols' windowed-minimum estimator, the one Linux keeps
//! its `tcp_min_rtt` with (`lib/minmax.c`, a 300 s window).
//!
//! A plain running minimum never forgets: after a path's delay rises for
//! good (a new route, an ISP's failover) it keeps the old, lower figure,
//! and whatever compares the current round trip with it reads the new
//! delay as a queue forever. Three candidates are kept, the best first,
//! each later and no smaller than the one before; when the best grows older
//! than the window the next takes its place. The answer is the least sample
//! of the last window, or of up to a quarter window more while better
//! candidates are still being taken.

use crate::Instant;
use core::time::Duration;

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    value: Duration,
}

#[derive(Debug, Clone)]
pub struct WindowedMin {
    window: Duration,
    /// Best, second and third candidates; `None` until the first sample.
    s: Option<[Sample; 3]>,
}

impl WindowedMin {
    pub fn new(window: Duration) -> Self {
        WindowedMin { window, s: None }
    }

    /// The least sample of the window (`None` before any sample).
    pub fn get(&self) -> Option<Duration> {
        self.s.map(|s| s[0].value)
    }

    /// Take the sample `value` measured at `now` (times never go backwards;
    /// an earlier one counts as `now` of the latest).
    pub fn update(&mut self, now: Instant, value: Duration) {
        let new = Sample { at: now, value };
        let Some(s) = self.s.as_mut() else {
            self.s = Some([new; 3]);
            return;
        };
        // A new best, or nothing taken for a whole window: start afresh.
        if value <= s[0].value || now.saturating_since(s[2].at) > self.window {
            *s = [new; 3];
            return;
        }
        if value <= s[1].value {
            s[1] = new;
            s[2] = new;
        } else if value <= s[2].value {
            s[2] = new;
        }
        let age = now.saturating_since(s[0].at);
        if age > self.window {
            // The best has aged out: the others move up, and the new sample
            // is the last candidate (the second may be out of date too).
            s[0] = s[1];
            s[1] = s[2];
            s[2] = new;
            if now.saturating_since(s[0].at) > self.window {
                s[0] = s[1];
                s[1] = s[2];
            }
        } else if s[1].at == s[0].at && age > self.window / 4 {
            // A quarter window passed with no second candidate: take one,
            // so that the best does not age out into nothing better.
            s[1] = new;
            s[2] = new;
        } else if s[2].at == s[1].at && age > self.window / 2 {
            s[2] = new;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn at(secs: u64) -> Instant {
        Instant::from_millis(secs * 1000)
    }

    #[test]
    fn the_least_sample_of_the_window() {
        let mut f = WindowedMin::new(Duration::from_secs(10));
        assert_eq!(f.get(), None);
        f.update(at(0), ms(30));
        f.update(at(1), ms(20));
        f.update(at(2), ms(40));
        f.update(at(3), ms(25));
        assert_eq!(f.get(), Some(ms(20)));
    }

    /// A path's delay rises for good: within a window and a quarter the
    /// minimum is the new delay, where a running minimum kept the old.
    #[test]
    fn a_lasting_rise_is_taken_within_the_window() {
        let mut f = WindowedMin::new(Duration::from_secs(10));
        for t in 0..5 {
            f.update(at(t), ms(10));
        }
        let mut taken = None;
        for t in 5..40 {
            f.update(at(t), ms(100 + t % 3));
            if taken.is_none() && f.get() >= Some(ms(100)) {
                taken = Some(t);
            }
        }
        let t = taken.expect("the old minimum never aged out");
        assert!(t <= 4 + 10 + 10 / 4 + 1, "taken at {t} s");
        assert!(f.get() <= Some(ms(102)));
    }

    /// Noisy samples on a drifting base: the answer is always a sample of
    /// the last window, and nearly always its least (the estimator keeps
    /// three candidates, not every sample).
    #[test]
    fn a_sample_of_the_window_nearly_always_its_least() {
        let w = Duration::from_secs(8);
        let mut f = WindowedMin::new(w);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut seen: Vec<(Instant, Duration)> = Vec::new();
        let mut exact = 0;
        let n = 4000u64;
        for i in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let now = Instant::from_millis(i * 37);
            let v = ms(20 + (i / 500) * 7 % 40 + x % 15);
            f.update(now, v);
            seen.push((now, v));
            let window: Vec<Duration> = seen
                .iter()
                .filter(|(t, _)| now.saturating_since(*t) <= w)
                .map(|&(_, v)| v)
                .collect();
            let got = f.get().unwrap();
            assert!(
                window.contains(&got),
                "{i}: {got:?} is no sample of the window"
            );
            exact += usize::from(window.iter().min() == Some(&got));
        }
        assert!(
            exact as u64 * 100 >= n * 95,
            "the least only {exact} times of {n}"
        );
    }
}
