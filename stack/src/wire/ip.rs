//! IPv4 (RFC 791) and IPv6 (RFC 8200) headers.
//!
//! STUB: the wire helper implements these bodies.

use super::WireError;
use std::net::IpAddr;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_ICMPV6: u8 = 58;

/// A view over an IPv4 packet.
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// A view over an IPv6 packet.
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// What the transport layer needs to know of an IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRepr {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// TTL / hop limit.
    pub hop_limit: u8,
    /// Length of the upper-layer data (transport header + payload).
    pub payload_len: usize,
}

impl IpRepr {
    /// Parse an IPv4 or IPv6 packet (by version nibble): validate lengths, the IPv4
    /// header checksum, skip IPv6 extension headers (hop-by-hop, routing, destination
    /// options; a fragment header gives `Fragmented`), and return the header and the
    /// upper-layer bytes (trimmed to the declared length; trailing bytes ignored).
    pub fn parse(packet: &[u8]) -> Result<(IpRepr, &[u8]), WireError> {
        let _ = packet;
        todo!()
    }

    /// Bytes the emitted header takes: 20 for IPv4 (no options), 40 for IPv6.
    pub fn header_len(&self) -> usize {
        match self.src {
            IpAddr::V4(_) => 20,
            IpAddr::V6(_) => 40,
        }
    }

    /// Write the header into `buf[..header_len()]` (IPv4 checksum filled, DF set,
    /// identification 0). `buf` must be at least `header_len()` long.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let _ = buf;
        todo!()
    }
}
