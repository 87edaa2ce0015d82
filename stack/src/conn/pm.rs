//! The connection's side of the path manager: subflows joined or opened,
//! addresses announced and withdrawn, priorities changed. The stack's path
//! manager (`endpoint/pm.rs`) decides which; this adds the subflow records and
//! tells the MPTCP level.

use super::{Connection, Effects, LocalReset, PathEventKind, Subflow, SubflowId};
use crate::mptcp::join::JoinRequest;
use crate::mptcp::Phase;
use crate::tcp::{State, Tcb};
use crate::time::Instant;
use std::net::IpAddr;

impl Connection {
    /// Joined subflows still open.
    fn live_joins(&self) -> usize {
        self.subflows
            .iter()
            .filter(|s| !s.mp.is_initial() && !s.mp.is_closed())
            .count()
    }

    /// Whether another subflow may join now.
    pub fn join_allowed(&self) -> bool {
        self.state() != State::Closed
            && self
                .mp
                .as_deref()
                .is_some_and(|m| m.join_allowed(self.live_joins()))
    }

    /// Whether the peer may join one more subflow now: allowed, and its
    /// budget of join attempts not spent.
    pub fn passive_join_allowed(&mut self, now: Instant) -> bool {
        self.unsettle();
        self.join_allowed()
            && self
                .mp
                .as_deref_mut()
                .is_some_and(|m| m.join_budget_left(now))
    }

    /// A fully established MPTCP connection (the path manager's business).
    pub fn mptcp_established(&self) -> bool {
        self.mp
            .as_deref()
            .is_some_and(|m| m.phase() == Phase::Established)
    }

    /// Whether we opened the connection (MPTCP: we open subflows; else we
    /// announce addresses).
    pub fn is_client(&self) -> bool {
        self.mp.as_deref().is_some_and(|m| m.is_client())
    }

    fn add_subflow(&mut self, mut tcb: Tcb, mp: crate::mptcp::SubflowMp) -> SubflowId {
        let id = SubflowId(self.next_subflow);
        self.next_subflow += 1;
        if self.released {
            tcb.mark_released();
        }
        tcb.set_pressure(self.subflows[0].tcb.pressure());
        tcb.set_host_queue(self.subflows[0].tcb.host_queue());
        self.subflows.push(Subflow::new(id, tcb, mp));
        self.multipath = true;
        id
    }

    /// A subflow the peer joined (its SYN named our token); call only when
    /// [`Self::passive_join_allowed`].
    pub fn add_passive_join(
        &mut self,
        now: Instant,
        tcb: Tcb,
        req: &JoinRequest,
    ) -> Option<SubflowId> {
        self.unsettle();
        let sf = self.mp.as_deref_mut()?.accept_join(now, req);
        Some(self.add_subflow(tcb, sf))
    }

    /// A subflow we open from our address id `local_id` to the peer's
    /// `remote_id`; call only when [`Self::join_allowed`].
    pub fn add_active_join(
        &mut self,
        tcb: Tcb,
        nonce: u32,
        local_id: u8,
        remote_id: u8,
        backup: bool,
    ) -> Option<SubflowId> {
        self.unsettle();
        let sf = self
            .mp
            .as_deref_mut()?
            .open_join(nonce, local_id, remote_id, backup);
        let id = self.add_subflow(tcb, sf);
        if let Some(s) = self.subflows.last_mut() {
            s.reported.active = true;
        }
        Some(id)
    }

    /// Count an announcement of the peer's acted on; false past `limit`.
    pub fn accept_peer_address(&mut self, limit: usize) -> bool {
        self.unsettle();
        self.mp.as_deref_mut().is_some_and(|m| {
            // A peer that refuses joins to its first address announces the
            // ones to use: one is taken even with no ADD_ADDR allowed
            // (as Linux does), or it could never have a second subflow.
            let limit = if m.remote_deny_join_id0() {
                limit.max(1)
            } else {
                limit
            };
            m.accept_addr(limit)
        })
    }

    /// Whether subflows may be opened to the peer's first address: not if
    /// it said so (MP_CAPABLE's "C" flag).
    pub fn may_join_first_address(&self) -> bool {
        !self.mp.as_deref().is_some_and(|m| m.remote_deny_join_id0())
    }

    /// Announce our address `addr` (id `id`) to the peer (ADD_ADDR).
    pub fn announce(&mut self, id: u8, addr: IpAddr) {
        self.unsettle();
        if self.mp.as_deref_mut().is_some_and(|m| m.announce(id, addr)) {
            self.note(PathEventKind::LocalAnnounced { id, addr });
            let p = self.primary();
            self.subflows[p].tcb.force_ack();
        }
    }

    /// Our address `addr` (id `id`; 0 if it is the initial subflow's) is
    /// gone: REMOVE_ADDR, and the subflows on it are reset.
    pub fn withdraw(&mut self, now: Instant, addr: IpAddr, id: u8) -> Effects {
        self.unsettle();
        let mut fx = Effects::default();
        let Some(mp) = self.mp.as_deref_mut() else {
            return fx;
        };
        let ack = mp.withdraw(id);
        if mp.is_fallback() {
            return fx;
        }
        if ack {
            self.note(PathEventKind::LocalRemoved { id });
        }
        for k in 0..self.subflows.len() {
            if self.subflows[k].tcb.local().ip() == addr {
                self.reset_subflow(k, LocalReset::AddressRemoved, None, &mut fx);
            }
        }
        if ack {
            let p = self.primary();
            self.subflows[p].tcb.force_ack();
        }
        self.after_changes(now, &mut fx);
        fx
    }

    /// Joined subflows allowed from now on (the stack's limit changed):
    /// those open stay, whatever the new limit.
    pub fn set_max_subflows(&mut self, n: usize) {
        self.unsettle();
        if let Some(m) = self.mp.as_deref_mut() {
            m.set_max_subflows(n);
        }
    }

    /// Mark our subflows from `addr` backup or not (MP_PRIO on each).
    pub fn set_local_backup(&mut self, addr: IpAddr, backup: bool) {
        self.unsettle();
        if self.mp.as_deref().is_none_or(|m| m.is_fallback()) {
            return;
        }
        for s in &mut self.subflows {
            if s.tcb.local().ip() == addr
                && s.tcb.state() != State::Closed
                && s.mp.set_local_backup(backup)
            {
                s.tcb.force_ack();
            }
        }
    }
}
