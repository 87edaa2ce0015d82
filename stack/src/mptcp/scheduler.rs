//! Which subflow carries the next chunk of connection data. The connection
//! asks with a view of every subflow that could send (`conn/output.rs`);
//! `redundant` does not pick (every subflow gets every byte, `send.rs`), so its
//! scheduler object is `minrtt`'s.

use crate::config::SchedulerKind;
use core::time::Duration;

/// What a scheduler knows about one subflow that may carry data.
#[derive(Debug, Clone, Copy)]
pub struct SubflowView {
    pub index: usize,
    pub srtt: Option<Duration>,
    pub backup: bool,
    /// Bytes it can take now: congestion window minus what it already holds.
    pub room: usize,
}

pub trait Scheduler: core::fmt::Debug {
    /// The subflow for the next chunk, among `views` (only subflows that may
    /// carry data), or `None` to wait.
    fn pick(&mut self, views: &[SubflowView]) -> Option<usize>;
}

pub fn new_scheduler(kind: SchedulerKind) -> Box<dyn Scheduler + Send> {
    match kind {
        SchedulerKind::MinRtt | SchedulerKind::Redundant => Box::new(MinRtt),
        SchedulerKind::RoundRobin => Box::new(RoundRobin { last: None }),
        SchedulerKind::Overflow => Box::new(Overflow),
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
    fn pick(&mut self, views: &[SubflowView]) -> Option<usize> {
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
#[derive(Debug)]
pub struct Overflow;

impl Scheduler for Overflow {
    fn pick(&mut self, views: &[SubflowView]) -> Option<usize> {
        let best = |backup: bool| {
            views
                .iter()
                .filter(|v| v.backup == backup && v.room > 0)
                .min_by_key(|v| (v.srtt.unwrap_or(Duration::MAX), v.index))
                .map(|v| v.index)
        };
        best(false).or_else(|| best(true))
    }
}

#[derive(Debug)]
pub struct RoundRobin {
    last: Option<usize>,
}

impl Scheduler for RoundRobin {
    fn pick(&mut self, views: &[SubflowView]) -> Option<usize> {
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

    fn v(index: usize, rtt_ms: Option<u64>, backup: bool, room: usize) -> SubflowView {
        SubflowView {
            index,
            srtt: rtt_ms.map(Duration::from_millis),
            backup,
            room,
        }
    }

    #[test]
    fn minrtt_prefers_lowest_rtt_with_room() {
        let mut s = MinRtt;
        let views = [v(0, Some(50), false, 1000), v(1, Some(10), false, 1000)];
        assert_eq!(s.pick(&views), Some(1));
        let views = [v(0, Some(50), false, 1000), v(1, Some(10), false, 0)];
        assert_eq!(s.pick(&views), Some(0));
        let views = [v(0, None, false, 1000), v(1, Some(90), false, 1000)];
        assert_eq!(s.pick(&views), Some(1));
    }

    #[test]
    fn backups_only_without_active_subflows() {
        let mut s = MinRtt;
        // The active subflow is full: wait rather than use the backup.
        let views = [v(0, Some(50), false, 0), v(1, Some(1), true, 1000)];
        assert_eq!(s.pick(&views), None);
        let views = [v(1, Some(1), true, 1000)];
        assert_eq!(s.pick(&views), Some(1));
    }

    #[test]
    fn overflow_fills_the_active_subflows_first_then_the_backups() {
        let mut s = Overflow;
        let views = [v(0, Some(50), false, 1000), v(1, Some(1), true, 1000)];
        assert_eq!(s.pick(&views), Some(0), "room on the active one");
        let views = [v(0, Some(50), false, 0), v(1, Some(1), true, 1000)];
        assert_eq!(s.pick(&views), Some(1), "the active one is full");
        let views = [
            v(0, Some(50), false, 0),
            v(1, Some(9), false, 10),
            v(2, Some(1), true, 1000),
        ];
        assert_eq!(s.pick(&views), Some(1), "any active one with room");
        let views = [v(0, Some(50), false, 0), v(1, Some(1), true, 0)];
        assert_eq!(s.pick(&views), None);
    }

    #[test]
    fn roundrobin_takes_turns() {
        let mut s = RoundRobin { last: None };
        let views = [v(0, Some(5), false, 10), v(2, Some(50), false, 10)];
        assert_eq!(s.pick(&views), Some(0));
        assert_eq!(s.pick(&views), Some(2));
        assert_eq!(s.pick(&views), Some(0));
        let views = [v(0, Some(5), false, 0), v(2, Some(50), false, 10)];
        assert_eq!(s.pick(&views), Some(2));
        assert_eq!(s.pick(&views), Some(2));
    }
}
