//! Our addresses and MPTCP's path manager (like Linux's in-kernel one). Each
//! address is an endpoint with Linux's flags: once a connection is fully
//! established, on one we opened a subflow goes from every `subflow`
//! endpoint to the peer's address, and on one we accepted every `signal`
//! endpoint is announced (ADD_ADDR); addresses the peer announces are joined
//! within `max_add_addr_accepted`; all within `max_subflows`. Addresses can
//! come, go and change flags while connections live.

use super::{ConnId, Endpoint, EndpointFlags, Error, Stack};
use crate::demux::FourTuple;
use crate::mptcp::pm::RemoteAddr;
use crate::time::Instant;
use rand_core::Rng;
use std::net::{IpAddr, SocketAddr};

impl Stack {
    /// Answer for `addr` (packets to other addresses are dropped).
    pub fn add_address(&mut self, addr: IpAddr) {
        self.add_endpoint(addr, EndpointFlags::default());
    }

    /// Answer for `addr`, with what MPTCP's path manager may do with it (like a
    /// Linux `ip mptcp endpoint`). Adding a known address updates its flags.
    pub fn add_endpoint(&mut self, addr: IpAddr, flags: EndpointFlags) {
        if let Some(e) = self.endpoints.iter_mut().find(|e| e.addr == addr) {
            e.flags = flags;
            let _ = self.set_backup(addr, flags.backup);
            return;
        }
        let id = self.next_addr_id;
        self.endpoints.push(Endpoint { addr, id, flags });
        // Ids are never reused while the stack lives (0 is the initial
        // subflow's address).
        self.next_addr_id = self.next_addr_id.saturating_add(1);
        self.use_new_endpoint(addr, id, flags);
    }

    /// Stop answering for `addr`. MPTCP connections are told (REMOVE_ADDR) and
    /// lose the subflows on it; plain TCP connections on it are left to time out.
    pub fn remove_address(&mut self, addr: IpAddr) {
        self.withdraw_address(addr);
        self.endpoints.retain(|e| e.addr != addr);
    }

    /// The MPTCP address id and flags of one of our addresses.
    pub fn endpoint(&self, addr: IpAddr) -> Option<(u8, EndpointFlags)> {
        let e = self.endpoints.iter().find(|e| e.addr == addr)?;
        Some((e.id, e.flags))
    }

    pub fn addresses(&self) -> Vec<IpAddr> {
        self.endpoints.iter().map(|e| e.addr).collect()
    }

    /// Address id and flags of our address `ip` as connection `id` sees it: 0
    /// for the address of its initial subflow.
    pub(super) fn local_endpoint(&self, id: ConnId, ip: IpAddr) -> (u8, EndpointFlags) {
        let (addr_id, flags) = self.endpoint(ip).unwrap_or_default();
        let first = self.conns.get(id).map(|s| s.conn.local().ip());
        if first == Some(ip) {
            (0, flags)
        } else {
            (addr_id, flags)
        }
    }

    /// Connection `id` became fully established: on one we opened, a subflow
    /// from every local `subflow` endpoint to the peer's address (unless it
    /// asked for none there); on one we accepted, an announcement of every
    /// `signal` endpoint.
    pub(super) fn start_path_manager(&mut self, now: Instant, id: ConnId) {
        let Some(slot) = self.conns.get(id) else {
            return;
        };
        let (local0, remote0) = (slot.conn.local(), slot.conn.remote());
        let client = slot.conn.is_client();
        let endpoints: Vec<Endpoint> = self
            .endpoints
            .iter()
            .filter(|e| e.addr != local0.ip() && e.addr.is_ipv4() == remote0.is_ipv4())
            .copied()
            .collect();
        for e in endpoints {
            if client && e.flags.subflow {
                self.open_join(now, id, e.addr, remote0, 0);
            } else if !client && e.flags.signal {
                if let Some(slot) = self.conns.get_mut(id) {
                    slot.conn.announce(e.id, e.addr);
                }
            }
        }
    }

    /// The peer announced `r` on connection `id`: open a subflow to it, within
    /// `max_add_addr_accepted`.
    pub(super) fn join_peer_address(&mut self, now: Instant, id: ConnId, r: RemoteAddr) {
        if !self.may_join_to(r.addr) {
            self.counters.mptcp_add_addr_refused += 1;
            return;
        }
        let limit = self.config.mptcp.max_add_addr_accepted;
        let Some(slot) = self.conns.get_mut(id) else {
            return;
        };
        if !slot.conn.accept_peer_address(limit) {
            return;
        }
        let local0 = slot.conn.local();
        let remote0 = slot.conn.remote();
        // Our address toward it: the first subflow's, or the first of its family.
        let local = if r.addr.is_ipv4() == local0.is_ipv4() {
            Some(local0.ip())
        } else {
            self.endpoints
                .iter()
                .map(|e| e.addr)
                .find(|a| a.is_ipv4() == r.addr.is_ipv4())
        };
        if let Some(local) = local {
            let remote = SocketAddr::new(r.addr, r.port.unwrap_or(remote0.port()));
            self.open_join(now, id, local, remote, r.id);
        }
    }

    /// Whether the path manager opens a subflow to an address a peer
    /// announced: never to one of ours (a loop), nor to an address that is
    /// no host's (loopback, unspecified, multicast, broadcast, link-local
    /// without a scope, IPv4-mapped IPv6). The port is the one announced, or
    /// the connection's.
    pub(super) fn may_join_to(&self, addr: IpAddr) -> bool {
        if self.endpoints.iter().any(|e| e.addr == addr) {
            return false;
        }
        match addr {
            IpAddr::V4(a) => {
                !(a.is_loopback()
                    || a.is_unspecified()
                    || a.is_multicast()
                    || a.is_broadcast()
                    || a.is_link_local())
            }
            IpAddr::V6(a) => {
                let link_local = (a.segments()[0] & 0xffc0) == 0xfe80;
                !(a.is_loopback()
                    || a.is_unspecified()
                    || a.is_multicast()
                    || link_local
                    || a.to_ipv4_mapped().is_some())
            }
        }
    }

    /// Withdraw our address `addr` from every MPTCP connection (REMOVE_ADDR) and
    /// reset the subflows that use it.
    fn withdraw_address(&mut self, addr: IpAddr) {
        let Some((aid, _)) = self.endpoint(addr) else {
            return;
        };
        let now = self.now;
        for id in self.conns.ids() {
            let Some(slot) = self.conns.get_mut(id) else {
                continue;
            };
            let first = slot.conn.local().ip() == addr;
            let fx = slot.conn.withdraw(now, addr, if first { 0 } else { aid });
            self.apply_effects(id, now, fx, false);
            self.touch(id);
        }
    }

    /// Mark our address `addr` backup or not: future subflows carry the B bit,
    /// existing ones send MP_PRIO (Linux: `ip mptcp endpoint change ... backup`).
    pub fn set_backup(&mut self, addr: IpAddr, backup: bool) -> Result<(), Error> {
        let e = self
            .endpoints
            .iter_mut()
            .find(|e| e.addr == addr)
            .ok_or(Error::NoLocalAddress)?;
        e.flags.backup = backup;
        for id in self.conns.ids() {
            if let Some(slot) = self.conns.get_mut(id) {
                slot.conn.set_local_backup(addr, backup);
            }
            self.touch(id);
        }
        Ok(())
    }

    /// A new endpoint at run time: announce it (`signal`) on connections we
    /// accepted, open subflows from it (`subflow`) on connections we opened.
    fn use_new_endpoint(&mut self, addr: IpAddr, aid: u8, flags: EndpointFlags) {
        if !self.config.mptcp.enabled || !(flags.signal || flags.subflow) {
            return;
        }
        let now = self.now;
        for id in self.conns.ids() {
            let Some(slot) = self.conns.get_mut(id) else {
                continue;
            };
            let remote0 = slot.conn.remote();
            if !slot.conn.mptcp_established() || addr.is_ipv4() != remote0.is_ipv4() {
                continue;
            }
            if slot.conn.is_client() && flags.subflow {
                self.open_join(now, id, addr, remote0, 0);
            } else if !slot.conn.is_client() && flags.signal {
                slot.conn.announce(aid, addr);
                self.touch(id);
            }
        }
    }

    /// Open a subflow of connection `id` from our address `local_ip` to `remote`
    /// (the peer's address id `remote_id`); not to the peer's first address if
    /// it asked for none there.
    fn open_join(
        &mut self,
        now: Instant,
        id: ConnId,
        local_ip: IpAddr,
        remote: SocketAddr,
        remote_id: u8,
    ) {
        let allowed = self.conns.get(id).is_some_and(|s| {
            s.conn.join_allowed() && (remote != s.conn.remote() || s.conn.may_join_first_address())
        });
        if !allowed || self.shared.connections() >= self.config.max_connections {
            return;
        }
        let Some(port) = self.ephemeral_port(local_ip, remote) else {
            return;
        };
        let tuple = FourTuple {
            local: SocketAddr::new(local_ip, port),
            remote,
        };
        let tcb = self.active_tcb(now, tuple.local, remote, 0);
        let nonce = self.rng.nonces.next_u32();
        let (local_id, flags) = self.local_endpoint(id, local_ip);
        let Some(slot) = self.conns.get_mut(id) else {
            return;
        };
        if let Some(sub) = slot
            .conn
            .add_active_join(tcb, nonce, local_id, remote_id, flags.backup)
        {
            self.conns.alias(id, tuple, sub);
        }
        self.queue_for_transmit(id);
        self.arm(id);
    }
}
