//! HyStart++ (RFC 9406): leave the first slow start when the round trip
//! starts to grow, before the window has filled a queue on the path (or the
//! TUN queue of a daemon short of CPU). Without it slow start doubles the
//! window until a loss, and where no queue ever drops (a CPU-bound
//! receiver's input queue) only the peer's receive window stops it: windows,
//! and the buffers sized from them, grow to many times what the path needs.
//!
//! On a delay increase the window does not stop at once: conservative slow
//! start (CSS) grows it at a quarter of the rate for a few rounds (a burst's
//! passing queue is no reason to stop far short of a long path's capacity),
//! and returns to slow start if the round trip falls back.

use crate::wire::SeqNumber;
use core::time::Duration;

/// RTT samples a round needs before its minimum counts (RFC 9406 §4.3).
const N_RTT_SAMPLE: u32 = 8;
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
/// Growth in CSS is slow start's divided by this, for this many rounds.
pub const CSS_GROWTH_DIVISOR: usize = 4;
const CSS_ROUNDS: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    SlowStart,
    /// Conservative slow start since a round trip of `baseline`; rounds done.
    Css { baseline: Duration, rounds: u32 },
    /// Slow start is over (this ended it, or a loss did): never again.
    Done,
}

/// What slow start does with an ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Growth {
    /// As slow start does.
    Full,
    /// Divided by `CSS_GROWTH_DIVISOR`.
    Conservative,
    /// Slow start ends now: ssthresh = cwnd.
    Exit,
}

#[derive(Debug, Clone, Default)]
pub struct HyStart {
    phase: Phase,
    /// The round ends when this is acknowledged (snd_nxt when it began).
    window_end: Option<SeqNumber>,
    last_round_min: Option<Duration>,
    round_min: Option<Duration>,
    samples: u32,
}

impl HyStart {
    /// Slow start ended for another reason (a loss, a timeout).
    pub fn finish(&mut self) {
        self.phase = Phase::Done;
    }

    /// An ACK in slow start that acknowledged `ack`, with `snd_nxt` the next
    /// byte to send and `rtt` the round-trip sample it gave, if any.
    pub fn on_ack(&mut self, ack: SeqNumber, snd_nxt: SeqNumber, rtt: Option<Duration>) -> Growth {
        if self.phase == Phase::Done {
            return Growth::Full;
        }
        if self.window_end.is_none_or(|end| ack.diff(end) >= 0) {
            self.window_end = Some(snd_nxt);
            if self.samples >= N_RTT_SAMPLE {
                self.last_round_min = self.round_min;
            }
            self.round_min = None;
            self.samples = 0;
            if let Phase::Css { baseline, rounds } = self.phase {
                if rounds + 1 >= CSS_ROUNDS {
                    self.phase = Phase::Done;
                    return Growth::Exit;
                }
                self.phase = Phase::Css {
                    baseline,
                    rounds: rounds + 1,
                };
            }
        }
        if let Some(rtt) = rtt {
            self.round_min = Some(self.round_min.map_or(rtt, |m| m.min(rtt)));
            self.samples += 1;
        }
        let (Some(cur), true) = (self.round_min, self.samples >= N_RTT_SAMPLE) else {
            return self.growth();
        };
        match self.phase {
            Phase::SlowStart => {
                if let Some(last) = self.last_round_min {
                    let thresh = (last / 8).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH);
                    if cur >= last + thresh {
                        self.phase = Phase::Css {
                            baseline: cur,
                            rounds: 0,
                        };
                    }
                }
            }
            // The increase passed: back to slow start (RFC 9406 §4.3).
            Phase::Css { baseline, .. } if cur < baseline => self.phase = Phase::SlowStart,
            _ => {}
        }
        self.growth()
    }

    fn growth(&self) -> Growth {
        match self.phase {
            Phase::Css { .. } => Growth::Conservative,
            _ => Growth::Full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Rounds of `n` ACKs each, the round trip of round `r` given by `rtt(r)`:
    /// the growth each round ended with, and the round slow start ended in.
    fn run(rounds: u32, n: u32, rtt: impl Fn(u32) -> u64) -> (Vec<Growth>, Option<u32>) {
        let mut h = HyStart::default();
        let mut acked = SeqNumber(0);
        let mut seen = Vec::new();
        for r in 0..rounds {
            let end = acked + n as usize * 1000;
            let mut g = Growth::Full;
            for _ in 0..n {
                acked += 1000usize;
                g = h.on_ack(acked, end + 1usize, Some(ms(rtt(r))));
                if g == Growth::Exit {
                    return (seen, Some(r));
                }
            }
            seen.push(g);
        }
        (seen, None)
    }

    #[test]
    fn a_steady_round_trip_keeps_slow_start() {
        let (g, exit) = run(20, 16, |_| 20);
        assert_eq!(exit, None);
        assert!(g.iter().all(|g| *g == Growth::Full));
        // Jitter within the threshold (20 ms / 8 = 2.5 ms, at least 4 ms).
        assert_eq!(run(20, 16, |r| 20 + (r % 2) as u64 * 3).1, None);
    }

    #[test]
    fn a_growing_round_trip_slows_then_ends_it() {
        // The queue builds from round 5 on: 5 ms more per round.
        let (g, exit) = run(20, 16, |r| if r < 5 { 20 } else { 20 + 5 * (r as u64 - 4) });
        assert_eq!(&g[..5], &[Growth::Full; 5]);
        assert_eq!(g[5], Growth::Conservative);
        assert_eq!(exit, Some(5 + CSS_ROUNDS));
    }

    #[test]
    fn a_passing_increase_returns_to_slow_start() {
        let (g, exit) = run(20, 16, |r| if r == 5 { 30 } else { 20 });
        assert_eq!(exit, None);
        assert_eq!(g[5], Growth::Conservative);
        assert!(g[6..].iter().all(|g| *g == Growth::Full), "{g:?}");
    }

    #[test]
    fn too_few_samples_decide_nothing() {
        assert_eq!(run(20, 4, |r| 20 + 10 * r as u64).1, None);
    }

    #[test]
    fn finished_is_finished() {
        let mut h = HyStart::default();
        h.finish();
        for k in 0..100u32 {
            let g = h.on_ack(
                SeqNumber(k * 1000),
                SeqNumber(k * 1000 + 5000),
                Some(ms(k as u64 * 10)),
            );
            assert_eq!(g, Growth::Full);
        }
    }
}
