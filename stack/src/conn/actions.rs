//! Carrying out what the MPTCP level decided: resets of one subflow, of those
//! to a withdrawn address, or of all; priorities; ACKs; a fast close; and
//! requests for the stack.

use super::{Connection, Effects, LocalReset, PathEventKind, Request};
use crate::mptcp::action::rst_reason;
use crate::mptcp::{options, Action, Actions};
use crate::tcp::hooks::OptionBytes;
use crate::tcp::State;
use crate::time::Instant;
use crate::wire::Dsn;
use core::time::Duration;

/// A path the peer withdrew has at least this long to answer a probe.
const PATH_CHECK_MIN: Duration = Duration::from_millis(200);

impl Connection {
    /// Carry out `acts`, decided about subflow index `k` (the one a segment
    /// arrived on, or the one a timer ran for).
    pub(super) fn apply(&mut self, now: Instant, k: usize, acts: Actions, fx: &mut Effects) {
        if acts.is_empty() {
            // The common case, after every segment and scheduling round.
            return;
        }
        for a in acts {
            match a {
                Action::ResetSubflow { reason, fail } => {
                    self.reset_subflow(k, LocalReset::MptcpError(reason), fail, fx)
                }
                Action::RemoveRemote(id) => {
                    self.note(PathEventKind::Removed { id });
                    // Not yet handed to the path manager (the connection
                    // not yet fully established): withdrawn with it, so that
                    // the pending ones are never more than the addresses the
                    // data level remembers (a peer repeating ADD_ADDR and
                    // REMOVE_ADDR grew this list without end).
                    self.peer_addrs.retain(|a| a.id != id);
                    for s in &mut self.subflows {
                        if s.mp.remote_id == id && s.tcb.state() != State::Closed {
                            // Confirm the path is gone before closing it.
                            let deadline = now + s.tcb.base_rto().max(PATH_CHECK_MIN);
                            s.mp.start_path_check(now, deadline);
                            s.tcb.probe();
                        }
                    }
                }
                Action::RemoteBackup { id, backup } => {
                    for s in self.subflows.iter_mut().filter(|s| s.mp.remote_id == id) {
                        s.mp.remote_backup = backup;
                    }
                }
                Action::ResetAll { reason, fail } => {
                    for j in 0..self.subflows.len() {
                        self.reset_subflow(j, LocalReset::MptcpError(reason), fail, fx);
                    }
                }
                Action::FastClosed => {
                    // Every subflow goes (RFC 8684 §3.5); the peer hears a RST
                    // on each one still open.
                    for j in 0..self.subflows.len() {
                        self.reset_subflow(j, LocalReset::FastClosed, None, fx);
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
                Action::ProbeWindow => {
                    for s in &mut self.subflows {
                        s.tcb.probe();
                    }
                }
                Action::RewindRedundant => {
                    for s in &mut self.subflows {
                        s.mp.rewind_redundant();
                    }
                }
                Action::PeerAddress(r) => {
                    self.note(PathEventKind::Announced {
                        id: r.id,
                        addr: r.addr,
                        port: r.port,
                    });
                    self.peer_addrs.push(r)
                }
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

    /// A segment the TCB of subflow index `k` accepted: if it answers a path
    /// check, the path is alive.
    pub(super) fn path_answered(&mut self, k: usize, seg: &crate::wire::TcpRepr<'_>) {
        let s = &mut self.subflows[k];
        if let Some(since) = s.mp.path_check_since() {
            if s.tcb.answers_since(seg, since) {
                s.mp.path_check_passed();
            }
        }
    }

    /// Subflows whose path check ran out without an answer are reset.
    pub(super) fn path_checks_due(&mut self, now: Instant, fx: &mut Effects) {
        for k in 0..self.subflows.len() {
            if self.subflows[k]
                .mp
                .path_check_deadline()
                .is_some_and(|t| t <= now)
            {
                self.subflows[k].mp.path_check_passed();
                self.reset_subflow(k, LocalReset::PathCheckFailed, None, fx);
            }
        }
    }

    /// A connection that fell back to TCP has no joins: those still in
    /// their handshake when it did (fallback is refused once one is past
    /// it, `DataLevel::may_fall_back`) are reset.
    pub(super) fn drop_joins_after_fallback(&mut self, fx: &mut Effects) {
        if self.subflows.len() < 2 || !self.mp.as_deref().is_some_and(|m| m.is_fallback()) {
            return;
        }
        for k in 0..self.subflows.len() {
            if !self.subflows[k].mp.is_initial() {
                self.reset_subflow(k, LocalReset::Fallback, None, fx);
            }
        }
    }

    /// Reset subflow index `k` alone, for `why`: MP_TCPRST with its reason
    /// code on the RST (none after MP_FASTCLOSE), and MP_FAIL at `fail`
    /// after a DSS checksum failure.
    pub(super) fn reset_subflow(
        &mut self,
        k: usize,
        why: LocalReset,
        fail: Option<Dsn>,
        fx: &mut Effects,
    ) {
        let s = &mut self.subflows[k];
        if s.tcb.state() == State::Closed {
            return;
        }
        let extra = match why {
            LocalReset::FastClosed => OptionBytes::default(),
            LocalReset::AddressRemoved => {
                options::reset_options(rst_reason::ADMIN_PROHIBITED, fail)
            }
            LocalReset::PathCheckFailed | LocalReset::Stale => {
                options::reset_options(rst_reason::UNSPECIFIED, fail)
            }
            LocalReset::MptcpError(r) => options::reset_options(r, fail),
            LocalReset::Fallback => options::reset_options(rst_reason::MPTCP_ERROR, fail),
        };
        s.reported.reset = Some(why);
        let reply = s.tcb.reset();
        fx.rst(s.tuple(), reply, extra);
    }
}
