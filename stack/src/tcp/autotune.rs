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
    /// Bytes read in the best round trip measured so far.
    space: usize,
    /// The reader's total when this round trip's measure began, and when.
    read_at_start: u64,
    start: Instant,
}

impl RcvSpace {
    pub fn new(now: Instant, initial_space: usize) -> Self {
        RcvSpace {
            space: initial_space.max(1),
            read_at_start: 0,
            start: now,
        }
    }

    /// With `read_total` bytes read so far and a round trip of `rtt`: the
    /// buffer size the reader's pace asks for, if a round trip has passed and
    /// it read more than ever before.
    pub fn adjust(
        &mut self,
        now: Instant,
        read_total: u64,
        rtt: Option<Duration>,
        mss: usize,
    ) -> Option<usize> {
        let rtt = rtt.unwrap_or(DEFAULT_RTT);
        if now.saturating_since(self.start) < rtt {
            return None;
        }
        let copied = read_total.saturating_sub(self.read_at_start) as usize;
        self.read_at_start = read_total;
        self.start = now;
        if copied <= self.space {
            return None;
        }
        let old = self.space;
        self.space = copied;
        // Twice a round trip's worth, and while the pace still grows (a
        // sender in slow start doubles each round trip) as much again in
        // proportion to the growth.
        let mut want = copied.saturating_mul(2).saturating_add(16 * mss);
        let grow = (want as u128 * (copied - old) as u128 / old as u128) as usize;
        want = want.saturating_add(grow.saturating_mul(2));
        Some(want)
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

    #[test]
    fn grows_once_per_round_trip_with_what_was_read() {
        let rtt = Some(Duration::from_millis(50));
        let mut r = RcvSpace::new(at(0), 14_600);
        // Within the round trip: nothing yet.
        assert_eq!(r.adjust(at(10), 20_000, rtt, 1460), None);
        // A round trip in which 29,200 bytes were read (twice the first
        // window): twice that, plus slow-start headroom.
        let want = r.adjust(at(50), 29_200, rtt, 1460).unwrap();
        assert!(want >= 4 * 29_200, "{want}");
        // A steady pace asks for nothing more.
        assert_eq!(r.adjust(at(100), 29_200 * 2, rtt, 1460), None);
        assert_eq!(r.adjust(at(150), 29_200 * 3, rtt, 1460), None);
        // A faster one does.
        assert!(r.adjust(at(200), 29_200 * 3 + 40_000, rtt, 1460).is_some());
    }

    #[test]
    fn a_slow_reader_keeps_it_small() {
        let rtt = Some(Duration::from_millis(10));
        let mut r = RcvSpace::new(at(0), 14_600);
        let mut read = 0;
        for t in 1..1000 {
            read += 1000;
            assert_eq!(r.adjust(at(t * 10), read, rtt, 1460), None);
        }
    }

    #[test]
    fn no_round_trip_known_means_a_default() {
        let mut r = RcvSpace::new(at(0), 1000);
        assert_eq!(r.adjust(at(50), 100_000, None, 1460), None);
        assert!(r.adjust(at(100), 100_000, None, 1460).is_some());
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
