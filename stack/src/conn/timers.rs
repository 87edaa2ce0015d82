//! Timers: every subflow's TCB timers and join repeat, and the MPTCP level's
//! (DATA_FIN, MP_FAIL, address options, data-level retransmission).

use super::{Connection, Effects};
use crate::mptcp::Actions;
use crate::time::Instant;

impl Connection {
    /// The earliest instant at which `on_timeout` has work to do.
    pub fn poll_at(&self) -> Option<Instant> {
        // Asked after every call into the connection: a plain fold, no
        // iterator of arrays (which cost as much again as the timers).
        let mut at = self.mp.as_deref().and_then(|m| m.poll_at());
        for s in &self.subflows {
            at = earliest(at, s.tcb.poll_at());
            at = earliest(at, s.mp.join_timer());
            at = earliest(at, s.mp.path_check_deadline());
        }
        at
    }

    pub fn on_timeout(&mut self, now: Instant) -> Effects {
        self.unsettle();
        let mut fx = Effects::default();
        let primary = self.primary();
        let (rto, mss) = (self.data_rto(), self.subflows[primary].tcb.mss());
        let max_rto = self.subflows[primary].tcb.max_rto();
        if let Some(mp) = self.mp.as_deref_mut() {
            let s = &mut self.subflows[primary];
            let mut acts = mp.on_timeout(now, &mut s.tcb, &mut s.mp);
            if !mp.is_fallback() {
                let sfs = self.subflows.iter().map(|s| &s.mp);
                acts.extend(mp.on_rtx_timeout(now, rto, max_rto, mss, sfs));
            }
            self.apply(now, primary, acts, &mut fx);
        }
        for k in 0..self.subflows.len() {
            let acts = match self.mp.as_deref_mut() {
                Some(mp) => {
                    let s = &mut self.subflows[k];
                    mp.join_timeout(now, &mut s.tcb, &mut s.mp)
                }
                None => Actions::new(),
            };
            self.apply(now, k, acts, &mut fx);
            let s = &mut self.subflows[k];
            if s.tcb.poll_at().is_some_and(|t| t <= now) {
                let reply = s.tcb.on_timeout(now);
                fx.rst(s.tuple(), reply, Default::default());
            }
        }
        self.path_checks_due(now, &mut fx);
        self.after_changes(now, &mut fx);
        self.path_manager_requests(&mut fx);
        fx
    }
}

/// The earlier of two deadlines, either possibly absent.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}
