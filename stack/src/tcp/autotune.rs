//! Buffer auto-tuning: buffers start small and grow with use, so memory
//! follows what a connection actually moves, not what its configuration
//! allows (`TcpConfig::send_buffer` / `recv_buffer` are the ceilings).
//!
//! - Receive (in the spirit of Linux's `tcp_rcv_space_adjust`): once per
//!   round trip, the bytes the reader took in that round trip are measured;
//!   when they exceed the last measure, the buffer (and so the window) grows
//!   to twice that, plus room for the sender's slow start to double again.
//!   A reader that keeps up lets the window track the path; a slow reader
//!   keeps it small.
//! - Send (as Linux's `tcp_sndbuf_expand`): twice the congestion window, so
//!   the application refills one window while the other is on the wire.
//!
//! Neither shrinks on its own; under memory pressure the stack stops growth
//! (see `endpoint::memory`).

use crate::time::Instant;
use core::time::Duration;

/// A receive buffer's starting size (Linux's `tcp_rmem` default is 128 KiB,
/// half of it offered as window).
pub const INITIAL_RECV_BUFFER: usize = 128 * 1024;
/// A send buffer's starting size and its floor.
pub const INITIAL_SEND_BUFFER: usize = 64 * 1024;
/// The round trip assumed before any was measured.
const DEFAULT_RTT: Duration = Duration::from_millis(100);

/// The receive side's measure.
#[derive(Debug, Clone)]
pub struct RcvSpace {
    /// The best round trip's measure so far.
    space: usize,
    /// The reader's and the arrivals' totals when this round trip began, and
    /// when.
    read_at_start: u64,
    arrived_at_start: u64,
    start: Instant,
    /// Bytes read in the last round trip measured.
    last_read: usize,
}

impl RcvSpace {
    pub fn new(now: Instant, initial_space: usize) -> Self {
        RcvSpace {
            space: initial_space.max(1),
            read_at_start: 0,
            arrived_at_start: 0,
            start: now,
            last_read: 0,
        }
    }

    /// Start a new round trip without measuring the last.
    pub fn restart(&mut self, now: Instant) {
        self.start = now;
    }

    /// What the last round trip's reading needed held at most: twice what
    /// was read in it.
    pub fn need(&self, mss: usize) -> usize {
        self.last_read.saturating_mul(2).saturating_add(16 * mss)
    }

    /// Whether a round trip of `rtt` has passed since the last measure.
    pub fn due(&self, now: Instant, rtt: Option<Duration>) -> bool {
        now.saturating_since(self.start) >= rtt.unwrap_or(DEFAULT_RTT)
    }

    /// End the round trip with `read` bytes read and `arrived` bytes arrived
    /// in order so far (totals; they may wrap): the buffer size the pace asks
    /// for, if it is the best yet.
    ///
    /// The pace is the lesser of what was read and what arrived in the round
    /// trip: a reader draining a backlog (it had been blocked) reads more than
    /// the path brings, and data nobody reads is no pace either; only both at
    /// once show the window holding the transfer back. (Linux's
    /// `tcp_rcv_space_adjust` counts reads alone, so one backlog drained in a
    /// burst claims megabytes for good.)
    ///
    /// A buffer at least half full at the end of the round trip (`held` of
    /// `capacity`) has a reader that is behind: what it read is its pace, and
    /// a buffer larger than twice that only holds what it has not read. Such
    /// a buffer shrinks towards that size, by at most a quarter per round
    /// trip, never below `floor`. (The caller keeps what was offered.)
    pub fn measure(&mut self, now: Instant, read: u64, arrived: u64, mss: usize) -> Option<usize> {
        self.measure_held(now, read, arrived, mss, (0, usize::MAX, 0))
    }

    /// [`measure`](Self::measure) with `(held, capacity, floor)` known.
    pub fn measure_held(
        &mut self,
        now: Instant,
        read: u64,
        arrived: u64,
        mss: usize,
        (held, capacity, floor): (usize, usize, usize),
    ) -> Option<usize> {
        let copied = read.wrapping_sub(self.read_at_start);
        let came = arrived.wrapping_sub(self.arrived_at_start);
        let pace = copied.min(came).min(usize::MAX as u64) as usize;
        self.read_at_start = read;
        self.arrived_at_start = arrived;
        self.start = now;
        self.last_read = copied.min(usize::MAX as u64) as usize;
        if held >= capacity / 2 && capacity > floor {
            let copied = copied.min(usize::MAX as u64) as usize;
            let need = copied.saturating_mul(2).saturating_add(16 * mss).max(floor);
            if need < capacity {
                self.space = copied.max(1);
                return Some(need.max(capacity - capacity / 4));
            }
        }
        if pace <= self.space {
            return None;
        }
        let old = self.space;
        self.space = pace;
        // Twice a round trip's worth, and while the pace still grows (a
        // sender in slow start doubles each round trip) as much again in
        // proportion to the growth, at most twice as much: a first measure
        // after a quiet start says little of the pace to come.
        let base = pace.saturating_mul(2).saturating_add(16 * mss);
        let grow = (base as u128 * (pace - old) as u128 / old as u128) as usize;
        Some(base.saturating_add(grow.saturating_mul(2).min(base)))
    }
}

/// The receiver's round-trip estimate (Linux's `rcv_rtt_est`): what a
/// receiver that sends no data knows of the path's delay, queueing included
/// (the handshake's sample predates any queue). Timestamp echoes give a sample
/// per segment, smoothed; without timestamps, the time a window takes to
/// arrive, the smallest kept.
#[derive(Debug, Clone, Default)]
pub struct RcvRtt {
    rtt: Option<Duration>,
}

impl RcvRtt {
    pub fn get(&self) -> Option<Duration> {
        self.rtt
    }

    /// A sample from a timestamp echo: smoothed (gain 1/8).
    pub fn sample_ts(&mut self, m: Duration) {
        self.rtt = Some(match self.rtt {
            None => m,
            Some(r) => r - r / 8 + m / 8,
        });
    }

    /// A sample from a window's arrival time: an upper bound, so the least.
    pub fn sample_window(&mut self, m: Duration) {
        self.rtt = Some(self.rtt.map_or(m, |r| r.min(m)));
    }
}

/// The send buffer a sender with congestion window `cwnd` wants. (Not the
/// peer's window: an MPTCP subflow's is the connection's, and the scheduler
/// gives each subflow up to two congestion windows.)
pub fn send_buffer_for(cwnd: usize) -> usize {
    cwnd.saturating_mul(2).max(INITIAL_SEND_BUFFER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// `adjust` as the callers use it: a measure once a round trip passed.
    fn step(r: &mut RcvSpace, ms: u64, read: u64, arrived: u64) -> Option<usize> {
        let rtt = Some(Duration::from_millis(50));
        r.due(at(ms), rtt)
            .then(|| r.measure(at(ms), read, arrived, 1460))?
    }

    #[test]
    fn grows_once_per_round_trip_with_the_pace() {
        let mut r = RcvSpace::new(at(0), 14_600);
        // Within the round trip: nothing yet.
        assert_eq!(step(&mut r, 10, 20_000, 20_000), None);
        // A round trip in which 29,200 bytes came and were read (twice the
        // first window): twice that, plus slow-start headroom.
        let want = step(&mut r, 50, 29_200, 29_200).unwrap();
        assert!(want >= 4 * 29_200, "{want}");
        // A steady pace asks for nothing more.
        assert_eq!(step(&mut r, 100, 29_200 * 2, 29_200 * 2), None);
        assert_eq!(step(&mut r, 150, 29_200 * 3, 29_200 * 3), None);
        // A faster one does.
        let more = 29_200 * 3 + 40_000;
        assert!(step(&mut r, 200, more, more).is_some());
    }

    #[test]
    fn a_slow_reader_keeps_it_small() {
        let mut r = RcvSpace::new(at(0), 14_600);
        let mut read = 0;
        for t in 1..1000 {
            read += 1000;
            assert_eq!(step(&mut r, t * 50, read, read), None);
        }
    }

    /// A reader that drains a backlog reads far more than arrives: no growth;
    /// nor for bytes that arrive and are not read.
    #[test]
    fn a_drained_backlog_or_unread_arrivals_are_no_pace() {
        let mut r = RcvSpace::new(at(0), 14_600);
        assert_eq!(step(&mut r, 50, 1 << 20, 10_000), None);
        assert_eq!(step(&mut r, 100, (1 << 20) + 10_000, 2 << 20), None);
    }

    #[test]
    fn a_first_burst_grows_it_at_most_fourfold() {
        let mut r = RcvSpace::new(at(0), 14_600);
        let want = step(&mut r, 50, 1 << 20, 1 << 20).unwrap();
        assert_eq!(want, 2 * ((2 << 20) + 16 * 1460));
    }

    /// A reader that falls behind (its buffer stays full) gets a buffer that
    /// shrinks, a quarter per round trip, to twice its pace.
    #[test]
    fn a_reader_that_falls_behind_shrinks_it() {
        let mut r = RcvSpace::new(at(0), 14_600);
        let mut cap = 4 << 20;
        let mut read = 0;
        for t in 1..=20 {
            read += 100_000;
            let held = cap;
            if let Some(w) = r.measure_held(at(t * 50), read, read, 1460, (held, cap, 131_072)) {
                assert!(w >= cap - cap / 4, "{w} after {cap}");
                cap = w;
            }
        }
        assert_eq!(cap, 2 * 100_000 + 16 * 1460);
        // It keeps up again: no shrinking, and the pace grows it.
        assert_eq!(
            r.measure_held(
                at(1100),
                read + 100_000,
                read + 100_000,
                1460,
                (0, cap, 131_072)
            ),
            None
        );
        assert!(r
            .measure_held(
                at(1150),
                read + 400_000,
                read + 400_000,
                1460,
                (0, cap, 131_072)
            )
            .is_some());
    }

    #[test]
    fn no_round_trip_known_means_a_default() {
        let r = RcvSpace::new(at(0), 1000);
        assert!(!r.due(at(50), None));
        assert!(r.due(at(100), None));
    }

    #[test]
    fn receiver_rtt_smooths_echoes_and_keeps_the_least_window_time() {
        let ms = Duration::from_millis;
        let mut r = RcvRtt::default();
        assert_eq!(r.get(), None);
        r.sample_ts(ms(80));
        assert_eq!(r.get(), Some(ms(80)));
        r.sample_ts(ms(160));
        assert_eq!(r.get(), Some(ms(90)));
        let mut w = RcvRtt::default();
        w.sample_window(ms(50));
        w.sample_window(ms(70));
        assert_eq!(w.get(), Some(ms(50)));
    }

    #[test]
    fn send_buffer_is_twice_the_flight_with_a_floor() {
        assert_eq!(send_buffer_for(14_600), INITIAL_SEND_BUFFER);
        assert_eq!(send_buffer_for(1 << 20), 2 << 20);
    }
}
