//! "Why is my second path not used?": for each of our addresses and each
//! address the peer announced that carries no working subflow of an MPTCP
//! connection, the reason, from what the path manager and the connection
//! know (flags, limits, the peer's announcements and refusals, backups,
//! subflows that ended).

use super::{ConnId, ConnInfo, Stack};
use crate::conn::{EndedSubflow, SubflowEnd};
use crate::tcp::State;
use std::net::IpAddr;

/// A path that carries no data of the connection, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnusedPath {
    /// Our address.
    pub local: IpAddr,
    /// The peer's address, where the reason concerns one.
    pub remote: Option<IpAddr>,
    pub reason: UnusedReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnusedReason {
    /// The connection is plain TCP (the peer did not speak MPTCP, or it fell back).
    NotMptcp,
    /// Not yet fully established: the path manager has not started.
    NotEstablished,
    /// Our address lacks the `subflow` flag: we open no subflow from it.
    NoSubflowFlag,
    /// Our address lacks the `signal` flag: it is not announced to the peer.
    NoSignalFlag,
    /// Our address is of the other IP family.
    OtherFamily,
    /// `max_subflows` joins already live.
    SubflowLimit { max: usize },
    /// The peer's announcement was not acted on: `max_add_addr_accepted` reached.
    AddAddrLimit { max: usize },
    /// The peer asked for no subflow to its first address (MP_CAPABLE's "C"
    /// flag) and announced no other.
    PeerDeniesInitial,
    /// Announced (ADD_ADDR), not yet echoed by the peer.
    AnnouncedNotEchoed,
    /// Announced and echoed; the peer has not joined it (its path manager
    /// decides, e.g. Linux's `add_addr_accepted` limit).
    NotJoinedByPeer,
    /// Not announced (yet).
    NotAnnounced,
    /// The peer announced an address we never join (one of ours, loopback...).
    NotJoinable,
    /// Its subflow is a backup: it carries data only when no other works.
    Backup,
    /// Its subflow timed out repeatedly; its data goes over the others.
    Stalled,
    /// A join is in its handshake.
    Joining,
    /// Its last subflow ended (a join refused, a path that died, ...).
    Ended(SubflowEnd),
}

impl UnusedReason {
    /// A short stable name for scripts.
    pub fn code(&self) -> &'static str {
        match self {
            UnusedReason::NotMptcp => "not_mptcp",
            UnusedReason::NotEstablished => "not_established",
            UnusedReason::NoSubflowFlag => "no_subflow_flag",
            UnusedReason::NoSignalFlag => "no_signal_flag",
            UnusedReason::OtherFamily => "other_family",
            UnusedReason::SubflowLimit { .. } => "subflow_limit",
            UnusedReason::AddAddrLimit { .. } => "add_addr_limit",
            UnusedReason::PeerDeniesInitial => "peer_denies_initial",
            UnusedReason::AnnouncedNotEchoed => "announced_not_echoed",
            UnusedReason::NotJoinedByPeer => "not_joined_by_peer",
            UnusedReason::NotAnnounced => "not_announced",
            UnusedReason::NotJoinable => "not_joinable",
            UnusedReason::Backup => "backup",
            UnusedReason::Stalled => "stalled",
            UnusedReason::Joining => "joining",
            UnusedReason::Ended(_) => "subflow_ended",
        }
    }
}

impl Stack {
    /// Why paths of connection `id` carry no data; empty for an unknown
    /// connection, and for one where every path is in use.
    pub fn unused_paths(&self, id: ConnId) -> Vec<UnusedPath> {
        match self.info(id) {
            Some(info) => self.unused_paths_of(id, &info),
            None => Vec::new(),
        }
    }

    /// [`Stack::unused_paths`] for a caller that already holds the
    /// connection's [`ConnInfo`] (a status snapshot).
    pub fn unused_paths_of(&self, id: ConnId, info: &ConnInfo) -> Vec<UnusedPath> {
        let Some(conn) = self.conn(id).filter(|_| self.config.mptcp.enabled) else {
            return Vec::new();
        };
        let local0 = info.local.ip();
        let v4 = local0.is_ipv4();
        let mut out = Vec::new();
        let Some(mp) = info.mptcp.as_ref().filter(|m| !m.fallback) else {
            for e in self.endpoints.iter().filter(|e| e.addr != local0) {
                out.push(UnusedPath {
                    local: e.addr,
                    remote: None,
                    reason: UnusedReason::NotMptcp,
                });
            }
            return out;
        };
        let live = |local: Option<IpAddr>, remote: Option<IpAddr>| {
            info.subflows.iter().filter(move |s| {
                s.state != State::Closed
                    && local.is_none_or(|l| s.local.ip() == l)
                    && remote.is_none_or(|r| s.remote.ip() == r)
            })
        };
        let ended = |local: Option<IpAddr>, remote: Option<IpAddr>| -> Option<EndedSubflow> {
            conn.ended_subflows()
                .iter()
                .rev()
                .find(|e| {
                    local.is_none_or(|l| e.local.ip() == l)
                        && remote.is_none_or(|r| e.remote.ip() == r)
                })
                .copied()
        };
        // A path that has subflows but carries nothing new: backup or stalled.
        let idle = |local: Option<IpAddr>, remote: Option<IpAddr>| -> Option<UnusedReason> {
            let mut subs = live(local, remote).peekable();
            subs.peek()?;
            let subs: Vec<_> = subs.filter(|s| s.established).collect();
            if subs.is_empty() {
                Some(UnusedReason::Joining)
            } else if subs.iter().all(|s| s.backup) {
                Some(UnusedReason::Backup)
            } else if subs.iter().all(|s| s.stalled) {
                Some(UnusedReason::Stalled)
            } else {
                None
            }
        };
        let established = conn.mptcp_established();
        let max_subflows = self.config.mptcp.max_subflows;
        let client = conn.is_client();
        // Our addresses.
        for e in &self.endpoints {
            let has = live(Some(e.addr), None).next().is_some();
            let reason = if has {
                idle(Some(e.addr), None)
            } else if e.addr == local0 {
                // The initial subflow's address: its subflow is gone.
                Some(
                    ended(Some(e.addr), None)
                        .map_or(UnusedReason::NotEstablished, |x| UnusedReason::Ended(x.end)),
                )
            } else if e.addr.is_ipv4() != v4 {
                Some(UnusedReason::OtherFamily)
            } else if !established {
                Some(UnusedReason::NotEstablished)
            } else if client {
                Some(if !e.flags.subflow {
                    UnusedReason::NoSubflowFlag
                } else if let Some(x) = ended(Some(e.addr), None) {
                    UnusedReason::Ended(x.end)
                } else if !conn.may_join_first_address() && mp.remote_addrs.is_empty() {
                    UnusedReason::PeerDeniesInitial
                } else if !conn.join_allowed() {
                    UnusedReason::SubflowLimit { max: max_subflows }
                } else {
                    UnusedReason::Joining
                })
            } else {
                let announced = mp.announced.iter().find(|a| a.1 == e.addr);
                Some(match announced {
                    _ if !e.flags.signal => UnusedReason::NoSignalFlag,
                    None => UnusedReason::NotAnnounced,
                    Some(&(_, _, false)) => UnusedReason::AnnouncedNotEchoed,
                    Some(_) => ended(Some(e.addr), None)
                        .map_or(UnusedReason::NotJoinedByPeer, |x| {
                            UnusedReason::Ended(x.end)
                        }),
                })
            };
            if let Some(reason) = reason {
                out.push(UnusedPath {
                    local: e.addr,
                    remote: None,
                    reason,
                });
            }
        }
        // The peer's announced addresses (we join them only on connections we
        // opened, or when it announces to us).
        let accepted = conn.data_level().map_or(0, |m| m.addr_accepted());
        let limit = self.config.mptcp.max_add_addr_accepted;
        for &(_, addr, _) in &mp.remote_addrs {
            if live(None, Some(addr)).next().is_some() {
                if let Some(reason) = idle(None, Some(addr)) {
                    out.push(UnusedPath {
                        local: local0,
                        remote: Some(addr),
                        reason,
                    });
                }
                continue;
            }
            let reason = if let Some(x) = ended(None, Some(addr)) {
                UnusedReason::Ended(x.end)
            } else if !self.may_join_to(addr) {
                UnusedReason::NotJoinable
            } else if accepted >= limit {
                UnusedReason::AddAddrLimit { max: limit }
            } else if !conn.join_allowed() {
                UnusedReason::SubflowLimit { max: max_subflows }
            } else {
                UnusedReason::Joining
            };
            out.push(UnusedPath {
                local: local0,
                remote: Some(addr),
                reason,
            });
        }
        out
    }
}
