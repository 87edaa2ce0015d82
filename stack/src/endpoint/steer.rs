//! Which of several shards a packet belongs to (`config::Shard`): the daemon
//! runs one stack per queue of a multiqueue TUN, the kernel picks the queue
//! by a hash of the flow, and an MP_JOIN's subflow — or any flow whose
//! packets the kernel steers elsewhere for a while — may arrive at a stack
//! that does not hold it. [`Stack::steer`] says so without acting on the
//! packet, so that the daemon can hand it to its owner instead.

use super::Stack;
use crate::demux::FourTuple;
use crate::mptcp::join;
use crate::wire::{self, IcmpMessage, IpRepr, MptcpOptions, TcpRepr};
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
    /// Any other segment of a 4-tuple this stack does not hold, or an ICMP
    /// destination unreachable quoting one: another shard may hold it; if
    /// none does, this stack answers it (RST, SYN cookie) or drops it.
    Stray,
}

impl Stack {
    /// Where `packet` (an IP datagram as for `handle_packet`) belongs; reads
    /// the headers only and changes nothing but a lookup cache.
    pub fn steer(&mut self, packet: &[u8]) -> Steer {
        // Nearly every packet belongs to a connection held here: its
        // 4-tuple is read straight from the headers, without parsing them
        // whole (the engine does that next).
        if let Some(tuple) = quick_tuple(packet) {
            if self.conns.lookup(&tuple).is_some() {
                return Steer::Here;
            }
        }
        let Ok((ip, payload)) = IpRepr::parse(packet) else {
            return Steer::Here;
        };
        if ip.protocol == wire::IPPROTO_ICMP || ip.protocol == wire::IPPROTO_ICMPV6 {
            // A destination unreachable is news for whoever holds the
            // connection it quotes (an active open failing, say).
            return match IcmpMessage::parse(ip.src, ip.dst, payload) {
                Ok(IcmpMessage::Unreachable { quoted, .. }) => {
                    let tuple = FourTuple {
                        local: quoted.src,
                        remote: quoted.dst,
                    };
                    if self.conns.lookup(&tuple).is_some() {
                        Steer::Here
                    } else {
                        Steer::Stray
                    }
                }
                _ => Steer::Here,
            };
        }
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

/// The 4-tuple of a TCP segment in an IPv4 packet (any header length) or an
/// IPv6 packet without extension headers, as the receiver sees it; `None`
/// for anything else or anything too short (the full parse decides then).
fn quick_tuple(p: &[u8]) -> Option<FourTuple> {
    let (src, dst, tcp): (std::net::IpAddr, std::net::IpAddr, &[u8]) = match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            if ihl < 20 || p.len() < ihl + 4 || p[9] != wire::IPPROTO_TCP {
                return None;
            }
            let s: [u8; 4] = p[12..16].try_into().ok()?;
            let d: [u8; 4] = p[16..20].try_into().ok()?;
            (s.into(), d.into(), &p[ihl..])
        }
        6 => {
            if p.len() < 44 || p[6] != wire::IPPROTO_TCP {
                return None;
            }
            let s: [u8; 16] = p[8..24].try_into().ok()?;
            let d: [u8; 16] = p[24..40].try_into().ok()?;
            (s.into(), d.into(), &p[40..])
        }
        _ => return None,
    };
    let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
    let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
    Some(FourTuple {
        local: SocketAddr::new(dst, dport),
        remote: SocketAddr::new(src, sport),
    })
}
