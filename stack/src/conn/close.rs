//! Subflows coming and going: what a closed subflow carried goes to the
//! others, a subflow the peer closed alone is closed by us too, stale subflows
//! are reset once the data level is done, and a closed subflow is freed — its
//! buffers and its 4-tuple — while another record remains.

use super::{Connection, Effects, LocalReset, Request};
use crate::tcp::state::CloseReason;
use crate::tcp::tcb::TimeWaitState;
use crate::tcp::State;
use crate::time::Instant;

impl Connection {
    /// A released connection whose subflows all wait out TIME_WAIT (or are
    /// closed) with nothing left to send: what TIME_WAIT records need to
    /// stand in for it (`endpoint::time_wait`).
    pub fn time_wait_states(&self) -> Option<Vec<TimeWaitState>> {
        if !self.is_released() {
            return None;
        }
        let mut v = Vec::new();
        for s in &self.subflows {
            match s.tcb.state() {
                State::Closed => {}
                State::TimeWait => v.push(s.tcb.time_wait_state()?),
                _ => return None,
            }
        }
        (!v.is_empty()).then_some(v)
    }

    /// After anything that may have closed subflows or finished the data level.
    pub(super) fn after_changes(&mut self, now: Instant, fx: &mut Effects) {
        self.drop_joins_after_fallback(fx);
        if !self.multipath {
            return;
        }
        let Some(mp) = self.mp.as_deref_mut() else {
            return;
        };
        if mp.data_level_done() {
            // With the data level finished, a subflow is not waited for once it
            // timed out holding data (all DATA_ACKed: it went over another, and
            // delivering it before a FIN only keeps a stale subflow alive, its
            // path may come back much later), or timed out twice on its FIN (its
            // path may be gone). A live subflow whose last acknowledgment is
            // merely on its way is left to close.
            for k in 0..self.subflows.len() {
                let t = &self.subflows[k].tcb;
                let stale = match t.rto_backoff() {
                    0 => false,
                    1 => t.send_queued() > 0,
                    _ => true,
                };
                if stale {
                    self.reset_subflow(k, LocalReset::Stale, None, fx);
                } else {
                    // Nobody waits for a subflow's FIN any more.
                    self.subflows[k].tcb.orphan(now);
                }
            }
        }
        let Some(mp) = self.mp.as_deref_mut() else {
            return;
        };
        for s in &mut self.subflows {
            if s.tcb.state() == State::Closed {
                mp.subflow_closed(&mut s.mp);
            } else if s.tcb.state() == State::CloseWait
                && !mp.peer_data_finished()
                && !mp.is_fallback()
            {
                // The peer closed this subflow alone (RFC 8684 §3.3.3): close
                // ours too; the data level goes on over the others. (Fallen
                // back, its FIN ends the stream: ours follows the data still
                // held at the data level, `Connection::shutdown`.)
                s.tcb.shutdown();
            }
        }
        self.free_closed(fx);
    }

    /// Free closed subflows while another record remains (the last one stays
    /// for the connection's close reason).
    fn free_closed(&mut self, fx: &mut Effects) {
        while self.subflows.len() > 1 {
            let Some(k) = self
                .subflows
                .iter()
                .position(|s| s.tcb.state() == State::Closed)
            else {
                return;
            };
            self.report_subflow_end(k);
            let s = self.subflows.remove(k);
            self.freed_stats.add(s.tcb.stats());
            if let Some(r) = s.tcb.close_reason().filter(|r| *r != CloseReason::Normal) {
                self.freed_reason.get_or_insert(r);
            }
            fx.request(Request::Unbind(s.tuple()));
            if self.next_tx > k {
                self.next_tx -= 1;
            }
        }
    }
}
