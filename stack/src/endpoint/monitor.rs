//! The path-event monitor: what MPTCP connections report about their paths
//! (`conn::PathEventKind`), queued for whoever watches (the daemon's
//! `mptun monitor`). Off until asked for; the queue is bounded, and events
//! that do not fit are counted, not kept.

use super::{ConnId, Stack};
use crate::conn::{Connection, PathEventKind};
use std::collections::VecDeque;

/// Events held for the watcher at most; it drains them after every call.
pub const PATH_EVENT_LIMIT: usize = 4096;

/// One event of one MPTCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathEvent {
    pub id: ConnId,
    /// The connection's MPTCP token (ours).
    pub token: u32,
    pub kind: PathEventKind,
}

/// The queue and whether anyone watches.
#[derive(Debug, Default)]
pub(super) struct PathEvents {
    on: bool,
    queue: VecDeque<PathEvent>,
}

impl PathEvents {
    fn push(&mut self, e: PathEvent, dropped: &mut u64) {
        if !self.on {
            return;
        }
        if self.queue.len() >= PATH_EVENT_LIMIT {
            *dropped += 1;
            return;
        }
        self.queue.push_back(e);
    }
}

impl Stack {
    /// Queue path events for [`Stack::poll_path_event`] (or stop, and drop
    /// those queued).
    pub fn set_path_events(&mut self, on: bool) {
        self.path_events.on = on;
        if !on {
            self.path_events.queue = VecDeque::new();
        }
    }

    /// The next path event, oldest first.
    pub fn poll_path_event(&mut self) -> Option<PathEvent> {
        self.path_events.queue.pop_front()
    }
}

/// Move connection `id`'s new events to queue `q` (`dropped` counts those
/// that do not fit); `ending`: it is being freed, so it reports its end now.
/// A function of the fields it needs, so that the stack can lend it one
/// connection of its table.
pub(super) fn collect(
    q: &mut PathEvents,
    dropped: &mut u64,
    id: ConnId,
    conn: &mut Connection,
    ending: bool,
) {
    let Some(token) = conn.token() else {
        return;
    };
    let mut push = |kind: PathEventKind| q.push(PathEvent { id, token, kind }, dropped);
    conn.take_path_events(&mut push);
    if ending {
        conn.finish_path_events(&mut push);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> PathEvent {
        PathEvent {
            id: ConnId(n),
            token: n as u32,
            kind: PathEventKind::Closed,
        }
    }

    #[test]
    fn the_queue_is_bounded_and_counts_what_it_drops() {
        let mut q = PathEvents::default();
        let mut dropped = 0;
        q.push(event(0), &mut dropped);
        assert!(q.queue.is_empty(), "off: nothing kept");
        q.on = true;
        for n in 0..PATH_EVENT_LIMIT as u64 + 10 {
            q.push(event(n), &mut dropped);
        }
        assert_eq!(q.queue.len(), PATH_EVENT_LIMIT);
        assert_eq!(dropped, 10);
        // The oldest stay: a watcher sees a gap at the end, not a reordering.
        assert_eq!(q.queue.front(), Some(&event(0)));
    }
}
