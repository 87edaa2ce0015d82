//! Which of several shards a packet belongs to (`config::Shard`): the daemon
//! runs one stack per queue of a multiqueue TUN, the kernel picks the queue
//! by a hash of the flow, and an MP_JOIN's subflow — or any flow whose
//! packets the kernel steers elsewhere for a while — may arrive at a stack
//! that does not hold it. [`Stack::steer`] says so without acting on the
//! packet, so that the daemon can hand it to its owner instead.

use super::Stack;
use crate::demux::FourTuple;
use crate::mptcp::join;
use crate::wire::{self, IpRepr, MptcpOptions, TcpRepr};
use std::net::SocketAddr;

/// Where a packet goes, as far as this stack can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steer {
    /// This stack takes it: a segment of a connection or TIME_WAIT record it
    /// holds, a SYN that opens a connection, a join to a token it owns, or
    /// anything but TCP (and whatever does not parse: `handle_packet` counts it).
    Here,
    /// A SYN with MP_JOIN to a token this stack does not hold: its owner is
    /// the shard the token names.
    Join { token: u32 },
    /// Any other segment of a 4-tuple this stack does not hold: another shard
    /// may hold it; if none does, this stack answers it (RST, SYN cookie).
    Stray,
}

impl Stack {
    /// Where `packet` (an IP datagram as for `handle_packet`) belongs; reads
    /// the headers only and changes nothing but a lookup cache.
    pub fn steer(&mut self, packet: &[u8]) -> Steer {
        let Ok((ip, payload)) = IpRepr::parse(packet) else {
            return Steer::Here;
        };
        if ip.protocol != wire::IPPROTO_TCP {
            return Steer::Here;
        }
        let Ok(seg) = TcpRepr::parse(ip.src, ip.dst, payload, false) else {
            return Steer::Here;
        };
        let tuple = FourTuple {
            local: SocketAddr::new(ip.dst, seg.dst_port),
            remote: SocketAddr::new(ip.src, seg.src_port),
        };
        if self.conns.lookup(&tuple).is_some() || self.time_wait.contains(&tuple) {
            return Steer::Here;
        }
        let f = seg.flags;
        if !(f.syn() && !f.ack() && !f.rst() && !f.fin()) {
            return Steer::Stray;
        }
        if !self.config.mptcp.enabled {
            return Steer::Here;
        }
        match join::syn_join(MptcpOptions::parse(&seg).join) {
            Some((token, ..)) if !self.tokens.contains_key(&token) => Steer::Join { token },
            _ => Steer::Here,
        }
    }
}
