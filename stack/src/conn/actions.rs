//! Carrying out what the MPTCP level decided: resets of one subflow, of those
//! to a withdrawn address, or of all; priorities; ACKs; a fast close; and
//! requests for the stack.

use super::{Connection, Effects, Request};
use crate::mptcp::action::rst_reason;
use crate::mptcp::{options, Action, Actions};
use crate::tcp::hooks::OptionBytes;
use crate::tcp::State;

impl Connection {
    /// Carry out `acts`, decided about subflow index `k` (the one a segment
    /// arrived on, or the one a timer ran for).
    pub(super) fn apply(&mut self, k: usize, acts: Actions, fx: &mut Effects) {
        for a in acts {
            match a {
                Action::ResetSubflow { reason, fail } => {
                    self.reset_subflow(k, options::reset_options(reason, fail), fx)
                }
                Action::RemoveRemote(id) => {
                    let extra = options::reset_options(rst_reason::UNSPECIFIED, None);
                    for j in 0..self.subflows.len() {
                        if self.subflows[j].mp.remote_id == id {
                            self.reset_subflow(j, extra, fx);
                        }
                    }
                }
                Action::RemoteBackup { id, backup } => {
                    for s in self.subflows.iter_mut().filter(|s| s.mp.remote_id == id) {
                        s.mp.remote_backup = backup;
                    }
                }
                Action::ResetAll { reason, fail } => {
                    let extra = options::reset_options(reason, fail);
                    for j in 0..self.subflows.len() {
                        self.reset_subflow(j, extra, fx);
                    }
                }
                Action::FastClosed => {
                    // Every subflow goes (RFC 8684 §3.5); the peer hears a RST
                    // on each one still open.
                    for j in 0..self.subflows.len() {
                        self.reset_subflow(j, OptionBytes::default(), fx);
                    }
                }
                Action::Abort => self.abort_all(fx),
                Action::RetryV0 => {
                    // Refuse this plain-TCP SYN/ACK; the stack opens again.
                    let s = &mut self.subflows[k];
                    let reply = s.tcb.abort();
                    fx.rst(s.tuple(), reply, OptionBytes::default());
                    fx.request(Request::RetryV0);
                }
                Action::AckAll => {
                    for s in &mut self.subflows {
                        if s.mp.join_established() && s.tcb.state().is_synchronized() {
                            s.tcb.force_ack();
                        }
                    }
                }
                Action::Ack => {
                    let p = self.primary();
                    self.subflows[p].tcb.force_ack();
                }
                Action::RewindRedundant => {
                    for s in &mut self.subflows {
                        s.mp.rewind_redundant();
                    }
                }
                Action::PeerAddress(r) => self.peer_addrs.push(r),
            }
        }
    }

    /// Once the MPTCP connection is fully established, the path manager's
    /// turn: start it (once), and hand it the addresses the peer announced.
    pub(super) fn path_manager_requests(&mut self, fx: &mut Effects) {
        if !self.mptcp_established() {
            return;
        }
        if !self.pm_started {
            self.pm_started = true;
            fx.request(Request::StartPathManager);
        }
        for r in self.peer_addrs.drain(..) {
            fx.request(Request::JoinPeerAddress(r));
        }
    }

    /// Reset subflow index `k` alone, with `extra` options on its RST.
    pub(super) fn reset_subflow(&mut self, k: usize, extra: OptionBytes, fx: &mut Effects) {
        let s = &mut self.subflows[k];
        if s.tcb.state() == State::Closed {
            return;
        }
        let reply = s.tcb.reset();
        fx.rst(s.tuple(), reply, extra);
    }
}
