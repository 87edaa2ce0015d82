//! The timer heap: one entry per connection deadline, invalidated lazily. A
//! deadline that moved later is found on pop and re-armed; only a connection
//! actually due runs its timers.

use super::Stack;
use crate::time::Instant;
use core::cmp::Reverse;

impl Stack {
    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.timers.peek().map(|Reverse((at, _))| *at);
        match (conns, self.time_wait.poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        let mut due = core::mem::take(&mut self.due);
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            due.push((at, id));
        }
        for &(at, id) in &due {
            let Some(slot) = self.conns.get_mut(id) else {
                continue;
            };
            if slot.armed == Some(at) {
                slot.armed = None;
            }
            if slot.conn.poll_at().is_some_and(|t| t <= now) {
                let fx = slot.conn.on_timeout(now);
                self.apply_effects(id, now, fx, false);
                self.touch(id);
            } else {
                self.arm(id);
            }
        }
        due.clear();
        self.due = due;
    }
}
