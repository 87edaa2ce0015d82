//! Which subflow carries the next chunk of connection data. The connection
//! asks with a view of every subflow that could send (`conn/output.rs`);
//! `redundant` does not pick (every subflow gets every byte, `send.rs`), so its
//! scheduler object is `minrtt`'s.

use crate::config::SchedulerKind;
use crate::time::Instant;
use core::time::Duration;

/// What a scheduler knows about one subflow that may carry data.
#[derive(Debug, Clone, Copy)]
pub struct SubflowView {
    pub index: usize,
    pub srtt: Option<Duration>,
    pub backup: bool,
    /// Bytes it can take now: congestion window minus what it already holds.
    pub room: usize,
    /// Still in its first slow start (no loss, no HyStart++ exit): its window
    /// has not met the path's capacity yet and doubles every round trip it
    /// is kept full.
    pub probing: bool,
    /// Congestion window, bytes.
    pub cwnd: usize,
    /// Bytes the peer acknowledged on it so far.
    pub delivered: u64,
}

pub trait Scheduler: core::fmt::Debug {
    /// The subflow for the next chunk, among `views` (only subflows that may
    /// carry data), or `None` to wait.
    fn pick(&mut self, now: Instant, views: &[SubflowView]) -> Option<usize>;

    /// A scheduling round ended; `active_full`: with no room left on any
    /// active (not backup) subflow.
    fn round_end(&mut self, _now: Instant, _active_full: bool) {}
}

pub fn new_scheduler(kind: SchedulerKind) -> Box<dyn Scheduler + Send> {
    match kind {
        SchedulerKind::MinRtt | SchedulerKind::Redundant => Box::new(MinRtt),
        SchedulerKind::RoundRobin => Box::new(RoundRobin { last: None }),
        SchedulerKind::Overflow => Box::new(Overflow::default()),
    }
}

/// Backups are used only when no active subflow is left (RFC 8684 §3.3.8).
fn candidates(views: &[SubflowView]) -> impl Iterator<Item = &SubflowView> {
    let any_active = views.iter().any(|v| !v.backup);
    views
        .iter()
        .filter(move |v| v.backup != any_active && v.room > 0)
}

#[derive(Debug)]
pub struct MinRtt;

impl Scheduler for MinRtt {
    fn pick(&mut self, _now: Instant, views: &[SubflowView]) -> Option<usize> {
        // A subflow without an RTT sample yet comes last.
        candidates(views)
            .min_by_key(|v| (v.srtt.unwrap_or(Duration::MAX), v.index))
            .map(|v| v.index)
    }
}

/// Primary plus overflow: the active subflows first, lowest RTT with room
/// first; the backups take what they cannot, as soon as every active one is
/// full (two windows queued), not only once none is left. A gateway's
/// metered or slow link then carries only what the primary links cannot.
///
/// Full is not enough, though: what spills is a standing backlog, not a
/// burst the active subflows drain soon. Otherwise every new connection's
/// first round trips, and any burst into the small window an application's
/// pace keeps, would go out on the metered link. So the backups wait while
/// an active subflow is still probing (first slow start: its window doubles
/// every round trip it is kept full), and until the active subflows, full
/// all along, have delivered [`STANDING_WINDOWS`] of their windows: a
/// backlog that outlasts that much of their sending is not a burst. It is
/// counted in bytes delivered, not in time, because time without delivery
/// says nothing about the path's capacity: a receiver that stopped reading,
/// or a daemon (either one) that did not run, stops the ACKs as surely as a
/// full path, and a path that died is the stall detection's (its subflow
/// leaves the views). Full means without a break of a round trip: between
/// a bulk sender's writes they have room for moments (an ACK frees it
/// before the application refills it); a burst is over when they have room
/// that long. (Room, not an empty queue: while the backups take the
/// overflow the queue empties, and the backlog stands all the same.)
#[derive(Debug, Default)]
pub struct Overflow {
    /// Since the active subflows have been full with data waiting: what
    /// they had delivered then.
    full: Option<u64>,
    /// Since when they have had room (a break in `full` once it lasts
    /// `brk`).
    room_since: Option<Instant>,
    /// The slowest active subflow's round trip when they were last full.
    brk: Duration,
}

/// See [`Overflow`].
pub const STANDING_WINDOWS: usize = 4;

impl Scheduler for Overflow {
    fn pick(&mut self, _now: Instant, views: &[SubflowView]) -> Option<usize> {
        let best = |backup: bool| {
            views
                .iter()
                .filter(|v| v.backup == backup && v.room > 0)
                .min_by_key(|v| (v.srtt.unwrap_or(Duration::MAX), v.index))
                .map(|v| v.index)
        };
        if let Some(k) = best(false) {
            return Some(k);
        }
        let mut active = views.iter().filter(|v| !v.backup).peekable();
        if active.peek().is_none() {
            // None left (or all stalled): the backups are all there is.
            return best(true);
        }
        self.room_since = None;
        let (mut probing, mut slowest) = (false, Duration::ZERO);
        let (mut delivered, mut cwnd) = (0u64, 0usize);
        for v in active {
            probing |= v.probing;
            slowest = slowest.max(v.srtt.unwrap_or_default());
            delivered = delivered.wrapping_add(v.delivered);
            cwnd = cwnd.saturating_add(v.cwnd);
        }
        self.brk = slowest;
        let from = *self.full.get_or_insert(delivered);
        let standing = STANDING_WINDOWS.saturating_mul(cwnd) as u64;
        if probing || delivered.wrapping_sub(from) < standing {
            return None;
        }
        best(true)
    }

    fn round_end(&mut self, now: Instant, active_full: bool) {
        if active_full {
            return;
        }
        let room = *self.room_since.get_or_insert(now);
        if now.saturating_since(room) >= self.brk {
            self.full = None;
        }
    }
}

#[derive(Debug)]
pub struct RoundRobin {
    last: Option<usize>,
}

impl Scheduler for RoundRobin {
    fn pick(&mut self, _now: Instant, views: &[SubflowView]) -> Option<usize> {
        // The next candidate after the last one, wrapping around (no
        // allocation: this runs for every segment scheduled).
        let first = candidates(views).map(|v| v.index).min();
        let next = match self.last {
            Some(l) => candidates(views)
                .map(|v| v.index)
                .filter(|&i| i > l)
                .min()
                .or(first),
            None => first,
        };
        if next.is_some() {
            self.last = next;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant::from_millis(1000);

    fn v(index: usize, rtt_ms: Option<u64>, backup: bool, room: usize) -> SubflowView {
        SubflowView {
            index,
            srtt: rtt_ms.map(Duration::from_millis),
            backup,
            room,
            probing: false,
            cwnd: 10_000,
            delivered: 0,
        }
    }

    #[test]
    fn minrtt_prefers_lowest_rtt_with_room() {
        let mut s = MinRtt;
        let views = [v(0, Some(50), false, 1000), v(1, Some(10), false, 1000)];
        assert_eq!(s.pick(T0, &views), Some(1));
        let views = [v(0, Some(50), false, 1000), v(1, Some(10), false, 0)];
        assert_eq!(s.pick(T0, &views), Some(0));
        let views = [v(0, None, false, 1000), v(1, Some(90), false, 1000)];
        assert_eq!(s.pick(T0, &views), Some(1));
    }

    #[test]
    fn backups_only_without_active_subflows() {
        let mut s = MinRtt;
        // The active subflow is full: wait rather than use the backup.
        let views = [v(0, Some(50), false, 0), v(1, Some(1), true, 1000)];
        assert_eq!(s.pick(T0, &views), None);
        let views = [v(1, Some(1), true, 1000)];
        assert_eq!(s.pick(T0, &views), Some(1));
    }

    /// `view` having delivered `d` bytes.
    fn at(view: SubflowView, d: u64) -> SubflowView {
        SubflowView {
            delivered: d,
            ..view
        }
    }

    #[test]
    fn overflow_fills_the_active_subflows_first_then_the_backups() {
        let mut s = Overflow::default();
        let views = [v(0, Some(50), false, 1000), v(1, Some(1), true, 1000)];
        assert_eq!(s.pick(T0, &views), Some(0), "room on the active one");
        let full = [v(0, Some(50), false, 0), v(1, Some(1), true, 1000)];
        assert_eq!(s.pick(T0, &full), None, "a backlog, not yet standing");
        let full = [at(full[0], 40_000), full[1]];
        assert_eq!(s.pick(T0, &full), Some(1), "a standing backlog spills");
        let views = [
            at(v(0, Some(50), false, 0), 40_000),
            v(1, Some(9), false, 10),
            v(2, Some(1), true, 1000),
        ];
        assert_eq!(s.pick(T0, &views), Some(1), "any active one with room");
        let views = [at(v(0, Some(50), false, 0), 40_000), v(1, Some(1), true, 0)];
        assert_eq!(s.pick(T0, &views), None);
        let views = [v(1, Some(1), true, 1000)];
        assert_eq!(s.pick(T0, &views), Some(1), "no active subflow left");
    }

    #[test]
    fn overflow_spills_only_a_backlog_that_outlives_a_burst() {
        let mut s = Overflow::default();
        let ms = Duration::from_millis;
        let full = |d| [at(v(0, Some(80), false, 0), d), v(1, Some(1), true, 1000)];
        assert_eq!(s.pick(T0, &full(1_000)), None);
        // Time alone is no backlog: nothing delivered, nothing learnt.
        assert_eq!(s.pick(T0 + ms(10_000), &full(1_000)), None);
        // Four of its windows (10,000 bytes) delivered while it stayed full.
        assert_eq!(s.pick(T0, &full(40_999)), None);
        // Room for moments between a bulk sender's writes is no break.
        s.round_end(T0 + ms(100), false);
        s.round_end(T0 + ms(179), false);
        assert_eq!(s.pick(T0 + ms(179), &full(41_000)), Some(1));
        // Room for a round trip is: the next backlog counts from its start.
        s.round_end(T0 + ms(200), false);
        s.round_end(T0 + ms(280), false);
        assert_eq!(s.pick(T0 + ms(300), &full(50_000)), None);
        s.round_end(T0 + ms(300), true);
        assert_eq!(s.pick(T0 + ms(400), &full(89_999)), None);
        assert_eq!(s.pick(T0 + ms(400), &full(90_000)), Some(1));
    }

    #[test]
    fn overflow_counts_in_the_windows_the_active_subflows_have_now() {
        // Two subflows, both full: four of their windows together. A loss
        // that halves one window shortens the wait accordingly.
        let mut s = Overflow::default();
        let full = |cwnd, d| {
            let p = |index, delivered| SubflowView {
                cwnd,
                delivered,
                ..v(index, Some(8), false, 0)
            };
            [p(0, d), p(1, d), v(2, Some(1), true, 1000)]
        };
        assert_eq!(s.pick(T0, &full(20_000, 0)), None);
        assert_eq!(s.pick(T0, &full(20_000, 79_999)), None);
        assert_eq!(s.pick(T0, &full(10_000, 39_999)), None);
        assert_eq!(s.pick(T0, &full(10_000, 40_000)), Some(2));
    }

    #[test]
    fn overflow_waits_for_a_full_primary_still_in_its_first_slow_start() {
        let mut s = Overflow::default();
        let probing = SubflowView {
            probing: true,
            ..v(0, Some(50), false, 0)
        };
        let views = [probing, v(1, Some(1), true, 1000)];
        assert_eq!(s.pick(T0, &views), None);
        let views = [at(probing, 1 << 30), v(1, Some(1), true, 1000)];
        assert_eq!(s.pick(T0, &views), None, "its window grows: wait");
        let views = [
            at(probing, 1 << 30),
            v(1, Some(9), false, 0),
            v(2, Some(1), true, 1000),
        ];
        assert_eq!(s.pick(T0, &views), None, "one active one grows");
        let views = [
            SubflowView {
                room: 10,
                ..probing
            },
            v(1, Some(1), true, 1000),
        ];
        assert_eq!(s.pick(T0, &views), Some(0), "room on it");
        // Backups only, or a minrtt connection: probing changes nothing.
        let views = [SubflowView {
            probing: true,
            ..v(1, Some(1), true, 1000)
        }];
        assert_eq!(s.pick(T0, &views), Some(1));
        let views = [probing, v(1, Some(1), true, 1000)];
        assert_eq!(MinRtt.pick(T0, &views), None);
    }

    #[test]
    fn roundrobin_takes_turns() {
        let mut s = RoundRobin { last: None };
        let views = [v(0, Some(5), false, 10), v(2, Some(50), false, 10)];
        assert_eq!(s.pick(T0, &views), Some(0));
        assert_eq!(s.pick(T0, &views), Some(2));
        assert_eq!(s.pick(T0, &views), Some(0));
        let views = [v(0, Some(5), false, 0), v(2, Some(50), false, 10)];
        assert_eq!(s.pick(T0, &views), Some(2));
        assert_eq!(s.pick(T0, &views), Some(2));
    }
}
