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

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_repr(payload_len: usize) -> IpRepr {
        IpRepr {
            src: Ipv4Addr::new(10, 1, 2, 3).into(),
            dst: Ipv4Addr::new(172, 16, 0, 9).into(),
            protocol: IPPROTO_TCP,
            hop_limit: 64,
            payload_len,
        }
    }

    fn v6_repr(payload_len: usize) -> IpRepr {
        IpRepr {
            src: "2001:db8::1".parse::<Ipv6Addr>().unwrap().into(),
            dst: "2001:db8:ffff::42".parse::<Ipv6Addr>().unwrap().into(),
            protocol: IPPROTO_TCP,
            hop_limit: 255,
            payload_len,
        }
    }

    fn v4_packet(payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 20 + payload.len()];
        v4_repr(payload.len()).emit(&mut buf).unwrap();
        buf[20..].copy_from_slice(payload);
        buf
    }

    fn refill_v4_checksum(buf: &mut [u8]) {
        buf[10..12].copy_from_slice(&[0, 0]);
        let hl = usize::from(buf[0] & 0x0f) * 4;
        let c = checksum::checksum(&buf[..hl]);
        buf[10..12].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn wire_ipv4_roundtrip() {
        let mut buf = v4_packet(b"hello");
        assert_eq!(&buf[..2], &[0x45, 0]);
        assert_eq!(&buf[2..4], &25u16.to_be_bytes());
        assert_eq!(&buf[6..8], &[0x40, 0]);
        let (repr, payload) = IpRepr::parse(&buf).unwrap();
        assert_eq!(repr, v4_repr(5));
        assert_eq!(payload, b"hello");
        // Trailing bytes beyond the total length are ignored.
        buf.extend_from_slice(&[9, 9, 9]);
        let (repr, payload) = IpRepr::parse(&buf).unwrap();
        assert_eq!(repr.payload_len, 5);
        assert_eq!(payload, b"hello");
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert!(p.dont_frag());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(p.payload(), b"hello");
    }

    #[test]
    fn wire_ipv4_with_options_header() {
        // IHL 6: one word of options (NOPs), checksum recomputed.
        let mut buf = v4_packet(b"");
        buf[0] = 0x46;
        buf[2..4].copy_from_slice(&27u16.to_be_bytes());
        buf.extend_from_slice(&[1, 1, 1, 0, 7, 8, 9]);
        refill_v4_checksum(&mut buf);
        let (repr, payload) = IpRepr::parse(&buf).unwrap();
        assert_eq!(repr.payload_len, 3);
        assert_eq!(payload, &[7, 8, 9]);
    }

    #[test]
    fn wire_ipv4_errors() {
        let good = v4_packet(b"abcdef");
        assert_eq!(IpRepr::parse(&[]), Err(WireError::Truncated));
        assert_eq!(IpRepr::parse(&good[..19]), Err(WireError::Truncated));

        let mut b = good.clone();
        b[0] = 0x44;
        refill_v4_checksum(&mut b);
        assert_eq!(IpRepr::parse(&b), Err(WireError::BadHeaderLength));

        let mut b = good.clone();
        b[0] = 0x4f; // 60 bytes of header > 26-byte buffer
        assert_eq!(IpRepr::parse(&b), Err(WireError::BadHeaderLength));

        let mut b = good.clone();
        b[2..4].copy_from_slice(&27u16.to_be_bytes());
        refill_v4_checksum(&mut b);
        assert_eq!(IpRepr::parse(&b), Err(WireError::BadTotalLength));

        let mut b = good.clone();
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        refill_v4_checksum(&mut b);
        assert_eq!(IpRepr::parse(&b), Err(WireError::BadTotalLength));

        let mut b = good.clone();
        b[8] ^= 1;
        assert_eq!(IpRepr::parse(&b), Err(WireError::BadChecksum));

        let mut b = good.clone();
        b[6] = 0x20; // MF
        refill_v4_checksum(&mut b);
        assert_eq!(IpRepr::parse(&b), Err(WireError::Fragmented));

        let mut b = good.clone();
        b[6..8].copy_from_slice(&0x4001u16.to_be_bytes()); // DF + offset 1
        refill_v4_checksum(&mut b);
        assert_eq!(IpRepr::parse(&b), Err(WireError::Fragmented));

        let mut b = good.clone();
        b[0] = 0x55;
        assert_eq!(IpRepr::parse(&b), Err(WireError::BadVersion));
        assert_eq!(IpRepr::parse(&[0x00; 40]), Err(WireError::BadVersion));
    }

    #[test]
    fn wire_ip_emit_errors() {
        let mut small = [0u8; 19];
        assert_eq!(v4_repr(0).emit(&mut small), Err(WireError::BufferTooSmall));
        let mut small = [0u8; 39];
        assert_eq!(v6_repr(0).emit(&mut small), Err(WireError::BufferTooSmall));
        let mut buf = [0u8; 40];
        let mut mixed = v4_repr(0);
        mixed.dst = v6_repr(0).dst;
        assert_eq!(mixed.emit(&mut buf), Err(WireError::BadVersion));
        let mut mixed = v6_repr(0);
        mixed.dst = v4_repr(0).dst;
        assert_eq!(mixed.emit(&mut buf), Err(WireError::BadVersion));
        assert_eq!(
            v4_repr(65516).emit(&mut buf),
            Err(WireError::BadTotalLength)
        );
        assert_eq!(
            v4_repr(usize::MAX).emit(&mut buf),
            Err(WireError::BadTotalLength)
        );
        assert!(v4_repr(65515).emit(&mut buf).is_ok());
        assert_eq!(
            v6_repr(65536).emit(&mut buf),
            Err(WireError::BadTotalLength)
        );
    }

    fn v6_packet(next: u8, body: &[u8]) -> Vec<u8> {
        let mut repr = v6_repr(body.len());
        repr.protocol = next;
        let mut buf = vec![0u8; 40 + body.len()];
        repr.emit(&mut buf).unwrap();
        buf[40..].copy_from_slice(body);
        buf
    }

    #[test]
    fn wire_ipv6_roundtrip() {
        let mut buf = v6_packet(IPPROTO_TCP, b"xyz");
        assert_eq!(&buf[..4], &[0x60, 0, 0, 0]);
        let (repr, payload) = IpRepr::parse(&buf).unwrap();
        assert_eq!(repr, v6_repr(3));
        assert_eq!(payload, b"xyz");
        buf.push(0xee);
        let (repr, payload) = IpRepr::parse(&buf).unwrap();
        assert_eq!(repr.payload_len, 3);
        assert_eq!(payload, b"xyz");
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.next_header(), IPPROTO_TCP);
        assert_eq!(p.hop_limit(), 255);
        assert_eq!(p.payload_len(), 3);
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.flow_label(), 0);
        assert_eq!(
            p.dst_addr(),
            "2001:db8:ffff::42".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn wire_ipv6_extension_headers() {
        // Hop-by-hop (8 bytes) -> destination options (16 bytes) -> TCP.
        let mut body = vec![IPV6_DEST_OPTS, 0, 1, 4, 0, 0, 0, 0];
        body.extend_from_slice(&[IPPROTO_TCP, 1, 1, 12]);
        body.extend_from_slice(&[0; 12]);
        body.extend_from_slice(b"tcp!");
        let buf = v6_packet(IPV6_HOP_BY_HOP, &body);
        let (repr, payload) = IpRepr::parse(&buf).unwrap();
        assert_eq!(repr.protocol, IPPROTO_TCP);
        assert_eq!(repr.payload_len, 4);
        assert_eq!(payload, b"tcp!");

        // Routing header then No Next Header.
        let mut body = vec![59, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(b"junk");
        let buf = v6_packet(IPV6_ROUTING, &body);
        let (repr, payload) = IpRepr::parse(&buf).unwrap();
        assert_eq!(repr.protocol, 59);
        assert_eq!(payload, b"junk");

        // Fragment header.
        let buf = v6_packet(IPV6_FRAGMENT, &[IPPROTO_TCP, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(IpRepr::parse(&buf), Err(WireError::Fragmented));
        // Hop-by-hop then fragment.
        let mut body = vec![IPV6_FRAGMENT, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&[IPPROTO_TCP, 0, 0, 0, 0, 0, 0, 1]);
        let buf = v6_packet(IPV6_HOP_BY_HOP, &body);
        assert_eq!(IpRepr::parse(&buf), Err(WireError::Fragmented));

        // Extension header with no room for its first two bytes.
        let buf = v6_packet(IPV6_HOP_BY_HOP, &[IPPROTO_TCP]);
        assert_eq!(IpRepr::parse(&buf), Err(WireError::Truncated));
        let buf = v6_packet(IPV6_DEST_OPTS, &[]);
        assert_eq!(IpRepr::parse(&buf), Err(WireError::Truncated));
        // Declared length past the payload (even if the buffer has more bytes).
        let mut buf = v6_packet(IPV6_HOP_BY_HOP, &[IPPROTO_TCP, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(IpRepr::parse(&buf), Err(WireError::BadHeaderLength));
        buf.extend_from_slice(&[0; 16]);
        assert_eq!(IpRepr::parse(&buf), Err(WireError::BadHeaderLength));
    }

    #[test]
    fn wire_ipv6_errors() {
        let good = v6_packet(IPPROTO_TCP, b"abcd");
        assert_eq!(IpRepr::parse(&good[..39]), Err(WireError::Truncated));
        assert_eq!(IpRepr::parse(&good[..43]), Err(WireError::BadTotalLength));
        let mut b = good.clone();
        b[4..6].copy_from_slice(&0xffffu16.to_be_bytes());
        assert_eq!(IpRepr::parse(&b), Err(WireError::BadTotalLength));
        let mut b = good;
        b[0] = 0x70;
        assert_eq!(IpRepr::parse(&b), Err(WireError::BadVersion));
    }

    #[test]
    fn wire_ip_views_never_panic_on_short_buffers() {
        for len in 0..45 {
            let b = vec![0x4f; len];
            let p = Ipv4Packet::new_unchecked(&b[..]);
            let _ = (
                p.src_addr(),
                p.dst_addr(),
                p.total_len(),
                p.verify_checksum(),
            );
            let _ = p.payload();
            let p = Ipv6Packet::new_unchecked(&b[..]);
            let _ = (p.src_addr(), p.dst_addr(), p.flow_label(), p.payload());
        }
    }
}
