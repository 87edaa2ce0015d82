//! Buffer auto-tuning: buffers start small and grow with use, so memory
//! follows what a connection actually moves, not what its configuration
//! allows (`TcpConfig::send_buffer` / `recv_buffer` are the ceilings).
//!
//! - Receive (in the spirit of Linux's `tcp_rcv_space_adjust`): once per
//!   round trip the transfer's pace is measured, the bytes that both arrived
//!   and were read in it. A pace above the best so far grows the buffer (and
//!   so the window) to twice that, plus room for a sender in slow start to
//!   double again, but only while a larger window still bought a faster
//!   transfer: once doubling the window no longer raised the rate by a
//!   quarter, the window is not what holds the transfer back, and more of it
//!   would only fill a queue somewhere (a CPU-bound daemon's TUN queue, a
//!   bloated router) whose delay would then ask for more window still.
//!   A reader that falls behind (its buffer at least half full at the end
//!   of a round trip) gets a buffer that shrinks towards twice its pace.
//!   No growth either while the reader has a backlog (it did not read in
//!   a round trip what was waiting at its start): the reader, not the
//!   window, holds the transfer back.
//!   An MPTCP connection with a usable subflow that delivered nothing in
//!   the measure has no brake: its sender fills the lowest-RTT path first,
//!   so more window buys no rate until that path's queue is full and the
//!   next path is used — the brake stopped it at one path's worth (a
//!   gateway over two 50 Mbit/s links moved 47 Mbit/s; without the brake
//!   89, Linux 92). Once every path carries data the brake applies again:
//!   braking every multipath connection for good let 16 busy echo
//!   connections grow to the 8 MiB ceiling (`t_mem_echo`).
//! - While the host queues what arrives (a CPU-bound daemon that finds
//!   more than a batch waiting in its TUN; the stack is told), nor does it
//!   grow past a few of the paths' least round trips' worth at the measured
//!   rate (`queue_ceiling`): that queue holds what the windows let in, every
//!   round trip measured waits in it, and it grows with the window, so no
//!   rate-based brake alone stops it: 16 echo connections grew to 8-13 MB
//!   each (`t_mem_echo`). The least round trip is taken no shorter than
//!   1 ms (the daemon's batches, the timestamp clock), and for MPTCP it is
//!   the slowest delivering path's. A queue on the path (a router's) is
//!   left alone: a loss-based sender fills it whatever the window, and an
//!   MPTCP window must cover the longest path's queued round trip for the
//!   sender to spread over the paths (two 50 Mbit/s WANs carried 1.0-1.6x
//!   one WAN's goodput with the ceiling, `t_gateway_curl`).
//! - A measure's bytes are counted per round trip: a measure that spanned
//!   a pause is spread over it, and a round trip is never taken longer than
//!   one buffer's worth took to arrive (see `per_round_trip`).
//! - Send (as Linux's `tcp_sndbuf_expand`): twice the congestion window, so
//!   the application refills one window while the other is on the wire; it
//!   follows the window down as well as up. The congestion window itself
//!   stops growing while the host queues what arrives and the smoothed
//!   round trip is past `QUEUE_RTTS` of the least (`Tcb::own_queue_in_rtt`):
//!   without a loss CUBIC grew it for as long as our own queue lengthened
//!   the round trip, and the send buffers with it (`t_mem_echo`).
//!
//! Under memory pressure the stack stops growth and shrinks buffers (see
//! `endpoint::memory`).

use crate::time::Instant;
use core::time::Duration;

/// A receive buffer's starting size (Linux's `tcp_rmem` default is 128 KiB,
/// half of it offered as window).
pub const INITIAL_RECV_BUFFER: usize = 128 * 1024;
/// A send buffer's starting size and its floor.
pub const INITIAL_SEND_BUFFER: usize = 64 * 1024;
/// Round trips whose rates a growth must beat.
const RECENT: usize = 8;
/// A ceiling's round trip is never taken shorter (a daemon's batches and
/// the timestamp clock's 1 ms).
pub(crate) const MIN_RTT_FLOOR: Duration = Duration::from_millis(1);
/// Round trips' worth at the path's least delay a window may grow to.
pub(crate) const QUEUE_RTTS: u128 = 4;
/// The round trip assumed before any was measured.
const DEFAULT_RTT: Duration = Duration::from_millis(100);

/// The receive side's measure.
#[derive(Debug, Clone)]
pub struct RcvSpace {
    /// The best round trip's pace so far (bytes).
    space: usize,
    /// The rate (bytes per second) when the buffer last grew, and in the
    /// last few round trips: growth goes on only while it buys a faster
    /// transfer than all of them (a CPU-bound daemon's batches make single
    /// round trips' rates jitter by a quarter and more).
    rate: u64,
    recent: [u64; RECENT],
    next: usize,
    /// The reader's total when this round trip's measure began, the bytes
    /// held then, and when.
    read_at_start: u64,
    held_at_start: usize,
    start: Instant,
    /// The round trip a measure spans: the longest sample in the last one
    /// (an MPTCP connection's subflows each give theirs), and the longest so
    /// far in this one.
    rtt: Option<Duration>,
    rtt_now: Option<Duration>,
    /// A path that could carry data carried none in this measure: more
    /// window may be what brings it into use, so growth is not braked (see
    /// the module doc). Set by the owner before each `adjust`.
    pub idle_path: bool,
    /// The host that runs the stack queues what arrives (a daemon that
    /// cannot keep up with its TUN): every round trip measured includes that
    /// queue, which the windows themselves fill. Set by the stack.
    pub host_queue: bool,
    /// The paths' own delay, without the queues a window fills: the least
    /// round trip each path that delivered has seen, the longest of them
    /// (the slowest path in use needs its round trips' worth of window),
    /// in the last measure and so far in this one.
    least: Option<Duration>,
    least_now: Option<Duration>,
}

impl RcvSpace {
    pub fn new(now: Instant, initial_space: usize) -> Self {
        RcvSpace {
            space: initial_space.max(1),
            rate: 0,
            recent: [0; RECENT],
            next: 0,
            read_at_start: 0,
            held_at_start: 0,
            start: now,
            rtt: None,
            rtt_now: None,
            idle_path: false,
            host_queue: false,
            least: None,
            least_now: None,
        }
    }

    /// The least round trip the path that just delivered has seen.
    pub fn sample_least_rtt(&mut self, rtt: Duration) {
        self.least_now = Some(self.least_now.map_or(rtt, |r| r.max(rtt)));
    }

    /// A round-trip estimate from the path that just delivered.
    pub fn sample_rtt(&mut self, rtt: Duration) {
        self.rtt_now = Some(self.rtt_now.map_or(rtt, |r| r.max(rtt)));
    }

    /// When the measure under way began: a path that delivered nothing
    /// since was idle in it.
    pub fn measure_start(&self) -> Instant {
        self.start
    }

    /// Whether a round trip has passed since the measure began: only then
    /// has `adjust` anything to do (the buffer's figures it takes need not
    /// be gathered for every segment).
    pub fn due(&self, now: Instant) -> bool {
        now.saturating_since(self.start) >= self.span()
    }

    fn span(&self) -> Duration {
        match (self.rtt, self.rtt_now) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => a.or(b).unwrap_or(DEFAULT_RTT),
        }
    }

    fn remember(&mut self, rate: u64) {
        self.recent[self.next] = rate;
        self.next = (self.next + 1) % RECENT;
    }

    /// With `read` bytes read so far (a total), `held` bytes received and
    /// not read, in a buffer of `capacity` that must not go below `floor`:
    /// the new capacity, if a round trip has passed and its measure asks for
    /// one.
    pub fn adjust(
        &mut self,
        now: Instant,
        read: u64,
        held: usize,
        capacity: usize,
        floor: usize,
        mss: usize,
    ) -> Option<usize> {
        if !self.due(now) {
            return None;
        }
        let elapsed = now.saturating_since(self.start);
        let copied = read.wrapping_sub(self.read_at_start).min(usize::MAX as u64) as usize;
        let arrived = (copied + held).saturating_sub(self.held_at_start);
        // The reader did not even take what was waiting a round trip ago.
        let backlog = copied < self.held_at_start;
        self.read_at_start = read;
        self.held_at_start = held;
        self.start = now;
        self.rtt = self.rtt_now.take().or(self.rtt);
        self.least = self.least_now.take().or(self.least);
        // A reader that falls behind: what it read is its pace, and a buffer
        // larger than twice that holds only what it has not read yet.
        if held >= capacity / 2 && capacity > floor {
            let need = copied.saturating_mul(2).saturating_add(16 * mss).max(floor);
            if need < capacity {
                // The rates before stay in `recent`: a reader back at its
                // old pace is no reason to grow for a few round trips.
                self.space = copied.max(1);
                self.rate = rate_of(copied, elapsed);
                self.remember(self.rate);
                return Some(need.max(capacity - capacity / 4));
            }
        }
        // A drained backlog (a reader that had been blocked) reads more than
        // the path brings, and bytes nobody reads are no pace either.
        let moved = copied.min(arrived);
        let rate = rate_of(moved, elapsed);
        let pace = per_round_trip(moved, elapsed, self.span(), arrived, capacity);
        let reference = self.recent.iter().copied().fold(self.rate, u64::max);
        self.remember(rate);
        // A reader with a backlog is the limit, not the window.
        if pace <= self.space || backlog {
            return None;
        }
        if !self.idle_path && reference > 0 && rate < reference + reference / 4 {
            return None;
        }
        let old = self.space;
        self.space = pace;
        self.rate = rate;
        // Twice a round trip's worth, and while the pace still grows (a
        // sender in slow start doubles each round trip) as much again in
        // proportion to the growth, at most twice as much: a first measure
        // after a quiet start says little of the pace to come.
        let base = pace.saturating_mul(2).saturating_add(16 * mss);
        let grow = (base as u128 * (pace - old) as u128 / old as u128) as usize;
        let want = base.saturating_add(grow.saturating_mul(2).min(base));
        if self.idle_path || !self.host_queue {
            return Some(want);
        }
        let ceiling = queue_ceiling(rate, self.least, mss);
        (want.min(ceiling) > capacity).then(|| want.min(ceiling))
    }
}

/// A buffer size rounded up to one of a few steps per power of two (an
/// eighth of it): the congestion window moves on every ACK, and a ring whose
/// capacity moved with it would reallocate and copy everything it holds
/// each time.
pub fn quantize(n: usize) -> usize {
    if n <= 4096 {
        return n;
    }
    let step = n.next_power_of_two() / 8;
    n.div_ceil(step).saturating_mul(step)
}

/// The capacity a buffer of `cap` moves to when auto-tuning asks for
/// `want`, within `floor..=max`: `None` to stay. Growth needs `may_grow`
/// (no memory pressure).
pub fn retune(cap: usize, want: usize, floor: usize, max: usize, may_grow: bool) -> Option<usize> {
    let want = quantize(want).min(max).max(floor);
    match want.cmp(&cap) {
        core::cmp::Ordering::Greater if may_grow => Some(want),
        core::cmp::Ordering::Less => Some(want),
        _ => None,
    }
}

/// The bytes of one round trip, from `moved` (`arrived`) in `elapsed` with
/// a buffer of `capacity`, `span` the round-trip estimate. When half a
/// buffer or more arrived, the window was in use and its turnover times
/// the round trip: `elapsed` per buffer's worth. The estimate (the longest
/// a subflow measured, queueing included, smoothed) can lag far behind the
/// path once a queue drains, or sit below it (a timestamp clock of 1 ms).
/// Less than that arrived: the sender was not held by the window, and a
/// measure, which ends only when data arrives, may span a pause of many
/// round trips: its bytes are spread over them.
fn per_round_trip(
    moved: usize,
    elapsed: Duration,
    span: Duration,
    arrived: usize,
    capacity: usize,
) -> usize {
    let elapsed_us = elapsed.as_micros().max(1);
    let round_trip_us = if arrived >= capacity / 2 {
        elapsed_us * capacity.min(arrived) as u128 / arrived.max(1) as u128
    } else {
        span.as_micros()
    };
    if elapsed_us <= round_trip_us {
        return moved;
    }
    (moved as u128 * round_trip_us / elapsed_us) as usize
}

/// The most window worth growing to at `rate`: a few of the path's least
/// round trips. Past it a larger window only lengthens a queue (a CPU-bound
/// daemon's own TUN queue, whose delay the round-trip measures include), and
/// that queue's delay would ask for more window still.
fn queue_ceiling(rate: u64, least: Option<Duration>, mss: usize) -> usize {
    let rtt = least.unwrap_or(DEFAULT_RTT).max(MIN_RTT_FLOOR);
    let bytes = rate as u128 * rtt.as_micros() * QUEUE_RTTS / 1_000_000;
    (bytes.min(usize::MAX as u128) as usize).saturating_add(16 * mss)
}

/// Bytes per second.
fn rate_of(bytes: usize, d: Duration) -> u64 {
    let us = d.as_micros().max(1);
    (bytes as u128 * 1_000_000 / us).min(u64::MAX as u128) as u64
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

    const MSS: usize = 1460;
    const FLOOR: usize = 131_072;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// A measure at `ms` with a 50 ms round trip, `read` bytes read so far,
    /// `held` unread in a buffer of `cap`.
    fn step(r: &mut RcvSpace, ms: u64, read: u64, held: usize, cap: usize) -> Option<usize> {
        r.sample_rtt(Duration::from_millis(50));
        r.adjust(at(ms), read, held, cap, FLOOR, MSS)
    }

    #[test]
    fn grows_once_per_round_trip_with_the_pace() {
        let mut r = RcvSpace::new(at(0), 14_600);
        // Within the round trip: nothing yet.
        assert_eq!(step(&mut r, 10, 20_000, 0, FLOOR), None);
        // A round trip in which 29,200 bytes came and were read (twice the
        // first window): twice that, plus slow-start headroom.
        let want = step(&mut r, 50, 29_200, 0, FLOOR).unwrap();
        assert!(want >= 4 * 29_200, "{want}");
        // A steady pace asks for nothing more.
        assert_eq!(step(&mut r, 100, 29_200 * 2, 0, want), None);
        assert_eq!(step(&mut r, 150, 29_200 * 3, 0, want), None);
        // A faster one does.
        assert!(step(&mut r, 200, 29_200 * 3 + 80_000, 0, want).is_some());
    }

    #[test]
    fn a_slow_reader_keeps_it_small() {
        let mut r = RcvSpace::new(at(0), 14_600);
        let mut read = 0;
        for t in 1..1000 {
            read += 1000;
            assert_eq!(step(&mut r, t * 50, read, 0, FLOOR), None);
        }
    }

    /// A reader that drains a backlog reads far more than arrives: no growth;
    /// nor for bytes that arrive and are not read.
    #[test]
    fn a_drained_backlog_or_unread_arrivals_are_no_pace() {
        let mut r = RcvSpace::new(at(0), 14_600);
        let cap = 4 << 20;
        // A backlog arrives, unread.
        assert_eq!(step(&mut r, 50, 0, 1 << 20, cap), None);
        // The backlog read, little new.
        assert_eq!(step(&mut r, 100, 1 << 20, 10_000, cap), None);
        // Much new, little read.
        assert_eq!(step(&mut r, 150, (1 << 20) + 10_000, 1 << 20, cap), None);
    }

    #[test]
    fn a_first_burst_grows_it_at_most_fourfold() {
        let mut r = RcvSpace::new(at(0), 14_600);
        // (In a buffer that could let 1 MiB in within one round trip.)
        let want = step(&mut r, 50, 1 << 20, 0, 2 << 20).unwrap();
        assert_eq!(want, 2 * ((2 << 20) + 16 * MSS));
    }

    /// A path of 2 MB/s, 100 KB per 50 ms round trip, for three round
    /// trips: (the buffer it settles at, the time, the bytes read).
    fn settle_at_2_mb_per_s(r: &mut RcvSpace) -> (usize, u64, u64) {
        let (mut cap, mut t, mut read) = (FLOOR, 0, 0u64);
        for _ in 0..3 {
            t += 50;
            read += 100_000;
            if let Some(w) = step(r, t, read, 0, cap) {
                cap = w;
            }
        }
        (cap, t, read)
    }

    /// The window's excess fills a queue for `rounds` round trips: each is
    /// 10 ms longer than the last and brings more bytes, at the same
    /// 2 MB/s. Returns (buffer, time, bytes read) after them.
    fn fill_a_queue(
        r: &mut RcvSpace,
        mut cap: usize,
        mut t: u64,
        mut read: u64,
        rounds: u64,
    ) -> (usize, u64, u64) {
        for k in 1..=rounds {
            let rtt = 50 + 10 * k;
            r.sample_rtt(Duration::from_millis(rtt));
            t += rtt;
            read += 2 * rtt * 1000;
            if let Some(w) = r.adjust(at(t), read, 0, cap, FLOOR, MSS) {
                cap = w;
            }
        }
        (cap, t, read)
    }

    /// The window doubled and the transfer got no faster: the path (or a
    /// queue on it) is the limit, and the window stays. Were it to grow with
    /// each round trip's bytes, a queue that lengthens the round trip would
    /// ask for more window for ever.
    #[test]
    fn growth_stops_when_a_larger_window_buys_no_speed() {
        let mut r = RcvSpace::new(at(0), 14_600);
        let (settled, t, read) = settle_at_2_mb_per_s(&mut r);
        let (cap, mut t, mut read) = fill_a_queue(&mut r, settled, t, read, 20);
        assert_eq!(
            cap, settled,
            "grew from {settled} to {cap} at a constant rate"
        );
        // Four times the rate: it grows again.
        let mut grew = false;
        for _ in 0..3 {
            t += 300;
            read += 2_400_000;
            grew |= step(&mut r, t, read, 0, cap).is_some();
        }
        assert!(grew, "no growth at four times the rate");
    }

    /// A sender that always fills the window, over round trips of 10 ms, on
    /// a host that queues what arrives: where the path's least round trip is
    /// 1 ms the other 9 are that queue, which the window itself fills (a
    /// CPU-bound daemon's TUN queue), and the window never grows past the
    /// starting buffer, though each larger window would have bought a
    /// faster transfer; where the path is 10 ms long it grows every round
    /// trip, also when a second path of 1 ms delivers in the same round
    /// trips (MPTCP: the slower path in use needs its round trips' worth).
    /// A host that keeps up leaves the queue to the path (a router's, which
    /// a loss-based sender fills whatever the window): no ceiling.
    #[test]
    fn a_window_that_only_fills_a_queue_does_not_grow() {
        let cases = [
            (&[1][..], true, false),
            (&[10], true, true),
            (&[1, 10], true, true),
            (&[1], false, true),
        ];
        for (paths, host_queue, grows) in cases {
            let mut r = RcvSpace::new(at(0), 14_600);
            r.host_queue = host_queue;
            let (mut cap, mut t, mut read) = (FLOOR, 0, 0u64);
            for _ in 0..6 {
                r.sample_rtt(Duration::from_millis(10));
                for &least in paths {
                    r.sample_least_rtt(Duration::from_millis(least));
                }
                t += 10;
                read += cap as u64;
                let before = cap;
                if let Some(w) = r.adjust(at(t), read, 0, cap, FLOOR, MSS) {
                    cap = w;
                }
                assert_eq!(cap > before, grows, "{paths:?} ms: {before} -> {cap}");
            }
        }
    }

    /// A rate that jitters (a CPU-bound daemon reads its TUN in batches)
    /// grows nothing once the window stopped buying speed, also after a
    /// reader that fell behind for a moment shrank the buffer: a round
    /// trip's rate must beat the recent ones', not only the last measure's.
    #[test]
    fn jitter_is_no_reason_to_grow() {
        let mut r = RcvSpace::new(at(0), 14_600);
        let mut cap = FLOOR;
        let (mut t, mut read) = (0, 0u64);
        // 2 MB/s give or take 30 %.
        let jitter = |k: u64| [130_000, 70_000, 100_000][k as usize % 3];
        for k in 0..12u64 {
            t += 50;
            read += jitter(k);
            if let Some(w) = step(&mut r, t, read, 0, cap) {
                assert!(k < 3, "grew at round trip {k} to {w}");
                cap = w;
            }
        }
        // The reader falls behind for two round trips: the buffer shrinks.
        let before = cap;
        for _ in 0..2 {
            t += 50;
            read += 100_000;
            if let Some(w) = step(&mut r, t, read, cap, cap) {
                cap = w;
            }
        }
        assert!(cap < before, "no shrink from {before}");
        // Back at its jittery pace: no growth for that.
        let shrunk = cap;
        for k in 0..6u64 {
            t += 50;
            read += jitter(k);
            if let Some(w) = step(&mut r, t, read, 0, cap) {
                assert!(
                    w <= shrunk,
                    "grew after the shrink at round trip {k} to {w}"
                );
            }
        }
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
            if let Some(w) = step(&mut r, t * 50, read, cap, cap) {
                assert!(w >= cap - cap / 4, "{w} after {cap}");
                cap = w;
            }
        }
        assert_eq!(cap, 2 * 100_000 + 16 * MSS);
        // It keeps up again: no shrinking, and a faster pace grows it.
        assert_eq!(step(&mut r, 1050, read + 100_000, 0, cap), None);
        assert!(step(&mut r, 1100, read + 400_000, 0, cap).is_some());
    }

    /// Growth at a constant rate, the window filled each round trip, with
    /// and without an idle path: braked once every path carries data.
    fn grows_at_a_constant_rate(idle_path: bool) -> bool {
        let mut r = RcvSpace::new(at(0), 14_600);
        let (settled, t, read) = settle_at_2_mb_per_s(&mut r);
        r.idle_path = idle_path;
        let (cap, _, _) = fill_a_queue(&mut r, settled, t, read, 10);
        cap > settled
    }

    /// The sender fills its fastest path first: while a usable path carries
    /// nothing, more window may be what brings it into use.
    #[test]
    fn an_idle_path_lifts_the_brake_and_only_it() {
        assert!(grows_at_a_constant_rate(true));
        assert!(!grows_at_a_constant_rate(false));
    }

    /// A reader with a backlog holds the transfer back, not the window.
    #[test]
    fn no_growth_while_the_reader_has_a_backlog() {
        let mut r = RcvSpace::new(at(0), 14_600);
        r.idle_path = true;
        let cap = 4 << 20;
        assert!(step(&mut r, 50, 100_000, 300_000, cap).is_some());
        // 300,000 bytes were waiting; 200,000 were read.
        assert_eq!(step(&mut r, 100, 300_000, 600_000, cap), None);
        // The backlog read, and more: growth again.
        assert!(step(&mut r, 150, 1_500_000, 100_000, cap).is_some());
    }

    /// A measure ends only when data arrives: one that spanned a pause
    /// counts its bytes per round trip, not per measure.
    #[test]
    fn a_pause_spreads_the_bytes_over_its_round_trips() {
        let mut r = RcvSpace::new(at(0), 14_600);
        r.idle_path = true;
        let cap = 4 << 20;
        // 1 MB over two seconds of 50 ms round trips: 25 KB each, and
        // the buffer grows for that (from 14,600), not for 1 MB.
        let want = step(&mut r, 2000, 1_000_000, 0, cap);
        assert_eq!(want, Some(2 * (2 * 25_000 + 16 * MSS)));
        assert_eq!(
            per_round_trip(
                1_000_000,
                Duration::from_secs(2),
                Duration::from_millis(50),
                1_000_000,
                cap
            ),
            25_000
        );
    }

    /// A window in use times the round trip, whatever the estimate says:
    /// 2 MB through a 256 KiB window in half a second is eight windows of
    /// 62.5 ms; one window in 5 ms is a 5 ms round trip (an estimate of
    /// 1 ms from a coarse timestamp clock notwithstanding).
    #[test]
    fn the_window_turnover_times_the_round_trip() {
        let half = Duration::from_millis(500);
        let cap = 256 * 1024;
        assert_eq!(per_round_trip(2 << 20, half, half, 2 << 20, cap), cap);
        let ms = Duration::from_millis;
        assert_eq!(per_round_trip(cap, ms(5), ms(1), cap, cap), cap);
        // Under half a window: a sender not held by it, the estimate stands.
        assert_eq!(
            per_round_trip(100_000, ms(2000), ms(50), 100_000, cap),
            2500
        );
    }

    #[test]
    fn no_round_trip_known_means_a_default() {
        let mut r = RcvSpace::new(at(0), 1000);
        assert_eq!(r.adjust(at(50), 100_000, 0, FLOOR, FLOOR, MSS), None);
        assert!(r.adjust(at(100), 100_000, 0, FLOOR, FLOOR, MSS).is_some());
    }

    /// The span of a measure is the longest round trip seen in the last one:
    /// an MPTCP connection's slowest subflow sets it.
    #[test]
    fn the_longest_recent_round_trip_sets_the_span() {
        let mut r = RcvSpace::new(at(0), 1000);
        r.sample_rtt(Duration::from_millis(10));
        r.sample_rtt(Duration::from_millis(40));
        assert_eq!(r.adjust(at(30), 100_000, 0, FLOOR, FLOOR, MSS), None);
        assert!(r.adjust(at(40), 100_000, 0, FLOOR, FLOOR, MSS).is_some());
        // The slow path went away: the next span is the fast one's.
        r.sample_rtt(Duration::from_millis(10));
        let _ = r.adjust(at(80), 100_000, 0, FLOOR, FLOOR, MSS);
        r.sample_rtt(Duration::from_millis(10));
        assert!(r.adjust(at(90), 400_000, 0, FLOOR, FLOOR, MSS).is_some());
    }

    #[test]
    fn sizes_move_in_eighths_of_a_power_of_two() {
        assert_eq!(quantize(1000), 1000);
        assert_eq!(quantize(65_536), 65_536);
        assert_eq!(quantize(65_537), 65_536 + 16_384);
        assert_eq!(quantize(1_000_000), 1_048_576);
        assert_eq!(quantize(900_000), 917_504);
        // Growth waits for no pressure; shrinking never does.
        assert_eq!(retune(65_536, 200_000, 65_536, 1 << 20, false), None);
        assert_eq!(
            retune(65_536, 200_000, 65_536, 1 << 20, true),
            Some(229_376)
        );
        assert_eq!(
            retune(1 << 20, 200_000, 65_536, 1 << 20, false),
            Some(229_376)
        );
        assert_eq!(retune(1 << 20, 10, 65_536, 1 << 20, true), Some(65_536));
        assert_eq!(retune(65_536, 10, 65_536, 1 << 20, true), None);
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
