//! IPv4 (RFC 791) and IPv6 (RFC 8200) headers.
//!
//! The packet views never panic: getters read fields with bounds checks and return
//! zero (or an empty slice) for bytes the buffer does not hold. Use `new_checked` to
//! validate a buffer first.

use super::checksum;
use super::WireError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_ICMPV6: u8 = 58;

/// IPv6 extension header numbers this layer walks or rejects.
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_DEST_OPTS: u8 = 60;

pub(crate) fn get_u8(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}

pub(crate) fn get_u16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.saturating_add(2)) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

pub(crate) fn get_u32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off.saturating_add(4)) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

fn get_array<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = b.get(off..off.saturating_add(N)) {
        out.copy_from_slice(s);
    }
    out
}

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

    /// Validate the buffer: at least 20 bytes (`Truncated`), version 4
    /// (`BadVersion`), IHL >= 5 and within the buffer (`BadHeaderLength`), total
    /// length >= IHL*4 and <= the buffer (`BadTotalLength`). Does not check the
    /// header checksum (see [`Ipv4Packet::verify_checksum`]) or fragmentation.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Ipv4Packet { buffer };
        let len = p.buffer.as_ref().len();
        if len < 20 {
            return Err(WireError::Truncated);
        }
        if p.version() != 4 {
            return Err(WireError::BadVersion);
        }
        let hl = p.header_len();
        if hl < 20 || hl > len {
            return Err(WireError::BadHeaderLength);
        }
        let total = usize::from(p.total_len());
        if total < hl || total > len {
            return Err(WireError::BadTotalLength);
        }
        Ok(p)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
    pub fn version(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 0) >> 4
    }
    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(get_u8(self.buffer.as_ref(), 0) & 0x0f) * 4
    }
    pub fn dscp_ecn(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 1)
    }
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 4)
    }
    pub fn dont_frag(&self) -> bool {
        get_u16(self.buffer.as_ref(), 6) & 0x4000 != 0
    }
    pub fn more_frags(&self) -> bool {
        get_u16(self.buffer.as_ref(), 6) & 0x2000 != 0
    }
    /// Fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6) & 0x1fff
    }
    /// True if this is a fragment (MF set or non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }
    pub fn ttl(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 8)
    }
    pub fn protocol(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 9)
    }
    pub fn header_checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 10)
    }
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), 12))
    }
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), 16))
    }
    /// True if the header checksum over `header_len()` bytes is valid (false if the
    /// buffer is shorter than the header).
    pub fn verify_checksum(&self) -> bool {
        let hl = self.header_len();
        match self.buffer.as_ref().get(..hl) {
            Some(h) if hl >= 20 => checksum::fold(u64::from(checksum::accumulate(0, h))) == 0xffff,
            _ => false,
        }
    }
    /// Bytes after the header up to the total length (clamped to the buffer).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(b.len());
        b.get(self.header_len()..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Validate the buffer: at least 40 bytes (`Truncated`), version 6
    /// (`BadVersion`), 40 + payload length <= the buffer (`BadTotalLength`).
    /// Extension headers are not examined.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Ipv6Packet { buffer };
        let len = p.buffer.as_ref().len();
        if len < 40 {
            return Err(WireError::Truncated);
        }
        if p.version() != 6 {
            return Err(WireError::BadVersion);
        }
        if 40 + usize::from(p.payload_len()) > len {
            return Err(WireError::BadTotalLength);
        }
        Ok(p)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
    pub fn version(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 0) >> 4
    }
    pub fn traffic_class(&self) -> u8 {
        ((get_u16(self.buffer.as_ref(), 0) >> 4) & 0xff) as u8
    }
    pub fn flow_label(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 0) & 0x000f_ffff
    }
    /// The payload length field (extension headers + upper-layer data).
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 4)
    }
    /// The Next Header field of the fixed header.
    pub fn next_header(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 6)
    }
    pub fn hop_limit(&self) -> u8 {
        get_u8(self.buffer.as_ref(), 7)
    }
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(get_array::<16>(self.buffer.as_ref(), 8))
    }
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(get_array::<16>(self.buffer.as_ref(), 24))
    }
    /// Bytes after the fixed header up to the payload length (clamped to the
    /// buffer), extension headers included.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = (40 + usize::from(self.payload_len())).min(b.len());
        b.get(40..end).unwrap_or(&[])
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
    ///
    /// Errors: empty input is `Truncated`; a version other than 4/6 `BadVersion`.
    /// IPv4: see [`Ipv4Packet::new_checked`], then `BadChecksum`, then `Fragmented`.
    /// IPv6: see [`Ipv6Packet::new_checked`]; an extension header whose first two
    /// bytes are missing is `Truncated`, one whose `(len+1)*8` runs past the payload
    /// is `BadHeaderLength`, a fragment header is `Fragmented`. No Next Header (59)
    /// is reported as the protocol with the remaining bytes as payload.
    pub fn parse(packet: &[u8]) -> Result<(IpRepr, &[u8]), WireError> {
        let first = *packet.first().ok_or(WireError::Truncated)?;
        match first >> 4 {
            4 => Self::parse_v4(packet),
            6 => Self::parse_v6(packet),
            _ => Err(WireError::BadVersion),
        }
    }

    fn parse_v4(packet: &[u8]) -> Result<(IpRepr, &[u8]), WireError> {
        let p = Ipv4Packet::new_checked(packet)?;
        if !p.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        if p.is_fragment() {
            return Err(WireError::Fragmented);
        }
        let payload = packet
            .get(p.header_len()..usize::from(p.total_len()))
            .unwrap_or(&[]);
        Ok((
            IpRepr {
                src: p.src_addr().into(),
                dst: p.dst_addr().into(),
                protocol: p.protocol(),
                hop_limit: p.ttl(),
                payload_len: payload.len(),
            },
            payload,
        ))
    }

    fn parse_v6(packet: &[u8]) -> Result<(IpRepr, &[u8]), WireError> {
        let p = Ipv6Packet::new_checked(packet)?;
        let end = 40 + usize::from(p.payload_len());
        let mut rest = packet.get(40..end).unwrap_or(&[]);
        let mut next = p.next_header();
        loop {
            match next {
                IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                    if rest.len() < 2 {
                        return Err(WireError::Truncated);
                    }
                    let len = (usize::from(rest[1]) + 1) * 8;
                    if len > rest.len() {
                        return Err(WireError::BadHeaderLength);
                    }
                    next = rest[0];
                    rest = &rest[len..];
                }
                IPV6_FRAGMENT => return Err(WireError::Fragmented),
                _ => break,
            }
        }
        Ok((
            IpRepr {
                src: p.src_addr().into(),
                dst: p.dst_addr().into(),
                protocol: next,
                hop_limit: p.hop_limit(),
                payload_len: rest.len(),
            },
            rest,
        ))
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
    ///
    /// Errors: `BadVersion` if `src` and `dst` differ in family; `BufferTooSmall` if
    /// `buf` is shorter than the header; `BadTotalLength` if `payload_len` does not
    /// fit the length field (IPv4: 20 + payload_len > 65535; IPv6: > 65535, no
    /// jumbograms).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let total = u16::try_from(20 + self.payload_len.min(1 << 20))
                    .map_err(|_| WireError::BadTotalLength)?;
                let h = buf.get_mut(..20).ok_or(WireError::BufferTooSmall)?;
                h[0] = 0x45;
                h[1] = 0;
                h[2..4].copy_from_slice(&total.to_be_bytes());
                h[4..6].copy_from_slice(&[0, 0]);
                h[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
                h[8] = self.hop_limit;
                h[9] = self.protocol;
                h[10..12].copy_from_slice(&[0, 0]);
                h[12..16].copy_from_slice(&src.octets());
                h[16..20].copy_from_slice(&dst.octets());
                let c = checksum::checksum(h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
                Ok(())
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let plen =
                    u16::try_from(self.payload_len).map_err(|_| WireError::BadTotalLength)?;
                let h = buf.get_mut(..40).ok_or(WireError::BufferTooSmall)?;
                h[0..4].copy_from_slice(&0x6000_0000u32.to_be_bytes());
                h[4..6].copy_from_slice(&plen.to_be_bytes());
                h[6] = self.protocol;
                h[7] = self.hop_limit;
                h[8..24].copy_from_slice(&src.octets());
                h[24..40].copy_from_slice(&dst.octets());
                Ok(())
            }
            _ => Err(WireError::BadVersion),
        }
    }
}
