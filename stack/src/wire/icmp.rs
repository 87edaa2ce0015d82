//! ICMP (RFC 792) and ICMPv6 (RFC 4443): echo messages, and destination
//! unreachable errors about our TCP segments.
//!
//! Parse a message far enough to tell an echo request or reply, or a
//! destination unreachable quoting a TCP segment (its four-tuple and sequence
//! number, which is all RFC 5927 lets a receiver check), from anything else;
//! emit an echo message as a complete IP packet. The
//! ICMPv4 checksum covers the ICMP message only; the ICMPv6 checksum also covers
//! the IPv6 pseudo-header (RFC 8200 §8.1) with next header 58.

use super::checksum;
use super::ip::{IpRepr, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP};
use super::SeqNumber;
use super::WireError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const ICMPV4_ECHO_REPLY: u8 = 0;
pub const ICMPV4_ECHO_REQUEST: u8 = 8;
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
pub const ICMPV6_ECHO_REPLY: u8 = 129;
pub const ICMPV4_DEST_UNREACHABLE: u8 = 3;
/// ICMPv4 destination unreachable, code 4: fragmentation needed (path MTU
/// discovery, not an unreachable destination).
pub const ICMPV4_FRAG_NEEDED: u8 = 4;
pub const ICMPV6_DEST_UNREACHABLE: u8 = 1;

/// Type, code, checksum, and four bytes whose meaning depends on the type: every
/// ICMP and ICMPv6 message is at least this long.
pub const HEADER_LEN: usize = 8;

/// The body of an echo request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpEcho<'a> {
    pub ident: u16,
    pub seq: u16,
    pub data: &'a [u8],
}

/// What a parsed ICMP / ICMPv6 message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpMessage<'a> {
    /// Type 8 (ICMPv4) or 128 (ICMPv6), code 0.
    EchoRequest(IcmpEcho<'a>),
    /// Type 0 (ICMPv4) or 129 (ICMPv6), code 0.
    EchoReply(IcmpEcho<'a>),
    /// Destination unreachable (ICMPv4 type 3 but code 4, ICMPv6 type 1)
    /// quoting the start of a TCP segment.
    Unreachable { code: u8, quoted: QuotedTcp },
    /// Any other type, or an echo type with a non-zero code.
    Other { kind: u8, code: u8 },
}

/// The segment an ICMP error quotes: the IP header's addresses and the first
/// eight bytes of TCP (ports and sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedTcp {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: SeqNumber,
}

impl QuotedTcp {
    /// The quoted IP packet (v4 or v6, without extension headers), if it is
    /// TCP with at least eight bytes of its header.
    fn parse(ip: &[u8]) -> Option<QuotedTcp> {
        let (src, dst, tcp): (IpAddr, IpAddr, &[u8]) = match ip.first()? >> 4 {
            4 => {
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                if ihl < 20 || ip.len() < ihl + 8 || ip[9] != IPPROTO_TCP {
                    return None;
                }
                let a = |o: usize| Ipv4Addr::new(ip[o], ip[o + 1], ip[o + 2], ip[o + 3]);
                (a(12).into(), a(16).into(), &ip[ihl..])
            }
            6 => {
                if ip.len() < 40 + 8 || ip[6] != IPPROTO_TCP {
                    return None;
                }
                let a = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&ip[o..o + 16]).unwrap());
                (a(8).into(), a(24).into(), &ip[40..])
            }
            _ => return None,
        };
        let port = |o: usize| u16::from_be_bytes([tcp[o], tcp[o + 1]]);
        Some(QuotedTcp {
            src: SocketAddr::new(src, port(0)),
            dst: SocketAddr::new(dst, port(2)),
            seq: SeqNumber(u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]])),
        })
    }
}

impl<'a> IcmpMessage<'a> {
    /// Parse the ICMP message carried in an IP packet from `src` to `dst`: ICMPv4 if
    /// both are IPv4 addresses, ICMPv6 if both are IPv6 (see [`parse_icmpv4`],
    /// [`parse_icmpv6`]). Mixed families are `BadVersion`.
    pub fn parse(src: IpAddr, dst: IpAddr, bytes: &'a [u8]) -> Result<Self, WireError> {
        match (src, dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => parse_icmpv4(bytes),
            (IpAddr::V6(_), IpAddr::V6(_)) => parse_icmpv6(src, dst, bytes),
            _ => Err(WireError::BadVersion),
        }
    }
}

/// Parse an ICMPv4 message (the whole IP payload). Errors: fewer than 8 bytes is
/// `Truncated`; a checksum over the message that does not verify is `BadChecksum`.
pub fn parse_icmpv4(bytes: &[u8]) -> Result<IcmpMessage<'_>, WireError> {
    if bytes.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    if checksum::fold(u64::from(checksum::accumulate(0, bytes))) != 0xffff {
        return Err(WireError::BadChecksum);
    }
    if bytes[0] == ICMPV4_DEST_UNREACHABLE && bytes[1] != ICMPV4_FRAG_NEEDED {
        if let Some(quoted) = QuotedTcp::parse(&bytes[HEADER_LEN..]) {
            return Ok(IcmpMessage::Unreachable {
                code: bytes[1],
                quoted,
            });
        }
    }
    Ok(classify(bytes, ICMPV4_ECHO_REQUEST, ICMPV4_ECHO_REPLY))
}

/// Parse an ICMPv6 message (the upper-layer payload after any extension headers)
/// sent from `src` to `dst`. Errors: fewer than 8 bytes is `Truncated`; a checksum
/// (pseudo-header included) that does not verify is `BadChecksum`; a message longer
/// than a u32 can count is `BadTotalLength`.
pub fn parse_icmpv6(src: IpAddr, dst: IpAddr, bytes: &[u8]) -> Result<IcmpMessage<'_>, WireError> {
    if bytes.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let len = u32::try_from(bytes.len()).map_err(|_| WireError::BadTotalLength)?;
    let acc = checksum::pseudo_header(src, dst, IPPROTO_ICMPV6, len);
    if checksum::fold(u64::from(checksum::accumulate(acc, bytes))) != 0xffff {
        return Err(WireError::BadChecksum);
    }
    if bytes[0] == ICMPV6_DEST_UNREACHABLE {
        if let Some(quoted) = QuotedTcp::parse(&bytes[HEADER_LEN..]) {
            return Ok(IcmpMessage::Unreachable {
                code: bytes[1],
                quoted,
            });
        }
    }
    Ok(classify(bytes, ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY))
}

/// `bytes` is at least `HEADER_LEN` long and its checksum verified.
fn classify(bytes: &[u8], request: u8, reply: u8) -> IcmpMessage<'_> {
    let (kind, code) = (bytes[0], bytes[1]);
    let echo = || IcmpEcho {
        ident: u16::from_be_bytes([bytes[4], bytes[5]]),
        seq: u16::from_be_bytes([bytes[6], bytes[7]]),
        data: &bytes[HEADER_LEN..],
    };
    match (kind, code) {
        (k, 0) if k == request => IcmpMessage::EchoRequest(echo()),
        (k, 0) if k == reply => IcmpMessage::EchoReply(echo()),
        _ => IcmpMessage::Other { kind, code },
    }
}

/// Bytes an echo packet with `data_len` bytes of data takes from `src` (IP header
/// without options + ICMP header + data).
pub fn echo_packet_len(src: IpAddr, data_len: usize) -> usize {
    let ip_hl = match src {
        IpAddr::V4(_) => 20,
        IpAddr::V6(_) => 40,
    };
    ip_hl + HEADER_LEN + data_len
}

/// Write a complete echo reply packet from `src` to `dst` (IPv4 + ICMP or IPv6 +
/// ICMPv6, by address family) into `buf`; the packet's length.
///
/// Errors: `BadVersion` if `src` and `dst` differ in family; `BufferTooSmall` if
/// the packet does not fit `buf`; `BadTotalLength` if it does not fit the IP length
/// field.
pub fn emit_echo_reply(
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    ident: u16,
    seq: u16,
    data: &[u8],
    buf: &mut [u8],
) -> Result<usize, WireError> {
    let kind = match src {
        IpAddr::V4(_) => ICMPV4_ECHO_REPLY,
        IpAddr::V6(_) => ICMPV6_ECHO_REPLY,
    };
    emit_echo(kind, src, dst, hop_limit, ident, seq, data, buf)
}

/// Write a complete destination unreachable (ICMPv4 type 3 / ICMPv6 type 1)
/// with `code` from `src` to `dst`, quoting `quoted` (the start of the
/// offending packet), as a router would; the packet's length. Errors as
/// [`emit_echo_reply`].
pub fn emit_unreachable(
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    code: u8,
    quoted: &[u8],
    buf: &mut [u8],
) -> Result<usize, WireError> {
    let kind = match src {
        IpAddr::V4(_) => ICMPV4_DEST_UNREACHABLE,
        IpAddr::V6(_) => ICMPV6_DEST_UNREACHABLE,
    };
    emit_message(kind, code, [0; 4], src, dst, hop_limit, quoted, buf)
}

/// Like [`emit_echo_reply`], for an echo request (type 8 / 128).
pub fn emit_echo_request(
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    ident: u16,
    seq: u16,
    data: &[u8],
    buf: &mut [u8],
) -> Result<usize, WireError> {
    let kind = match src {
        IpAddr::V4(_) => ICMPV4_ECHO_REQUEST,
        IpAddr::V6(_) => ICMPV6_ECHO_REQUEST,
    };
    emit_echo(kind, src, dst, hop_limit, ident, seq, data, buf)
}

#[allow(clippy::too_many_arguments)]
fn emit_echo(
    kind: u8,
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    ident: u16,
    seq: u16,
    data: &[u8],
    buf: &mut [u8],
) -> Result<usize, WireError> {
    let [a, b] = ident.to_be_bytes();
    let [c, d] = seq.to_be_bytes();
    emit_message(kind, 0, [a, b, c, d], src, dst, hop_limit, data, buf)
}

/// An ICMP message of `kind` and `code` whose header ends with `word`.
#[allow(clippy::too_many_arguments)]
fn emit_message(
    kind: u8,
    code: u8,
    word: [u8; 4],
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    data: &[u8],
    buf: &mut [u8],
) -> Result<usize, WireError> {
    let protocol = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => IPPROTO_ICMP,
        (IpAddr::V6(_), IpAddr::V6(_)) => IPPROTO_ICMPV6,
        _ => return Err(WireError::BadVersion),
    };
    let icmp_len = HEADER_LEN
        .checked_add(data.len())
        .ok_or(WireError::BadTotalLength)?;
    let ip = IpRepr {
        src,
        dst,
        protocol,
        hop_limit,
        payload_len: icmp_len,
    };
    let ip_hl = ip.header_len();
    // The IPv4 total length counts the header, the IPv6 payload length does not.
    // Checked before the buffer so an oversized message is `BadTotalLength` whatever
    // the buffer.
    let max = match protocol {
        IPPROTO_ICMP => usize::from(u16::MAX) - ip_hl,
        _ => usize::from(u16::MAX),
    };
    if icmp_len > max {
        return Err(WireError::BadTotalLength);
    }
    let icmp_len32 = u32::try_from(icmp_len).map_err(|_| WireError::BadTotalLength)?;
    let total = ip_hl + icmp_len;
    let out = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
    let (ip_buf, msg) = out.split_at_mut(ip_hl);
    ip.emit(ip_buf)?;
    msg[0] = kind;
    msg[1] = code;
    msg[2..4].copy_from_slice(&[0, 0]);
    msg[4..8].copy_from_slice(&word);
    msg[HEADER_LEN..].copy_from_slice(data);
    let acc = if protocol == IPPROTO_ICMPV6 {
        checksum::pseudo_header(src, dst, IPPROTO_ICMPV6, icmp_len32)
    } else {
        0
    };
    let c = !checksum::fold(u64::from(checksum::accumulate(acc, msg)));
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        Ipv4Addr::new(a, b, c, d).into()
    }

    fn v6(s: &str) -> IpAddr {
        s.parse::<Ipv6Addr>().unwrap().into()
    }

    /// Reference one's-complement sum, 16 bits at a time with end-around carry.
    fn ones_sum(words: &[u16]) -> u16 {
        let mut s: u32 = 0;
        for &w in words {
            s += u32::from(w);
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn wire_icmpv4_known_answer() {
        // Echo request, ident 0x1234, seq 1, data "abcd", built by hand.
        let mut msg = vec![8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd'];
        let sum = ones_sum(&[0x0800, 0x1234, 0x0001, 0x6162, 0x6364]);
        // 0x0800 + 0x1234 + 0x0001 + 0x6162 + 0x6364 = 0xdefb, complement 0x2104.
        assert_eq!(sum, 0xdefb);
        msg[2..4].copy_from_slice(&(!sum).to_be_bytes());
        assert_eq!(&msg[2..4], &[0x21, 0x04]);
        let parsed = parse_icmpv4(&msg).unwrap();
        assert_eq!(
            parsed,
            IcmpMessage::EchoRequest(IcmpEcho {
                ident: 0x1234,
                seq: 1,
                data: b"abcd"
            })
        );

        // The emitter writes the same bytes as a reply: type 0, so the sum drops by
        // 0x0800 to 0xd6fb and the checksum is 0x2904.
        let mut buf = [0u8; 64];
        let n = emit_echo_reply(
            v4(192, 0, 2, 1),
            v4(192, 0, 2, 2),
            64,
            0x1234,
            1,
            b"abcd",
            &mut buf,
        )
        .unwrap();
        assert_eq!(n, 20 + 12);
        assert_eq!(buf[9], IPPROTO_ICMP);
        assert_eq!(
            &buf[20..32],
            &[0, 0, 0x29, 0x04, 0x12, 0x34, 0, 1, b'a', b'b', b'c', b'd']
        );
    }

    #[test]
    fn wire_icmpv6_known_answer() {
        // Echo reply fe80::1 -> fe80::2, ident 7, seq 0x0100, no data. Pseudo-header
        // words: fe80 + 1 + fe80 + 2 + length 8 + next header 58; message words:
        // 0x8100 + 7 + 0x0100.
        let sum = ones_sum(&[
            0xfe80, 0x0001, 0xfe80, 0x0002, 0x0008, 0x003a, 0x8100, 0x0007, 0x0100,
        ]);
        assert_eq!(sum, 0x7f4e);
        let mut buf = [0u8; 64];
        let n =
            emit_echo_reply(v6("fe80::1"), v6("fe80::2"), 255, 7, 0x0100, &[], &mut buf).unwrap();
        assert_eq!(n, 48);
        assert_eq!(buf[6], IPPROTO_ICMPV6);
        assert_eq!(buf[7], 255);
        assert_eq!(&buf[4..6], &8u16.to_be_bytes());
        assert_eq!(
            &buf[40..48],
            &[129, 0, 0x80, 0xb1, 0, 7, 1, 0],
            "checksum is !0x7f4e"
        );
        assert_eq!(!sum, 0x80b1);
    }

    fn roundtrip(src: IpAddr, dst: IpAddr, data: &[u8]) {
        let mut buf = vec![0u8; 2048];
        let n = emit_echo_request(src, dst, 33, 0xbeef, 0xcafe, data, &mut buf).unwrap();
        assert_eq!(n, echo_packet_len(src, data.len()));
        let (ip, payload) = IpRepr::parse(&buf[..n]).unwrap();
        assert_eq!((ip.src, ip.dst, ip.hop_limit), (src, dst, 33));
        let echo = IcmpEcho {
            ident: 0xbeef,
            seq: 0xcafe,
            data,
        };
        assert_eq!(
            IcmpMessage::parse(ip.src, ip.dst, payload),
            Ok(IcmpMessage::EchoRequest(echo))
        );
        let n = emit_echo_reply(dst, src, 64, 0xbeef, 0xcafe, data, &mut buf).unwrap();
        let (ip, payload) = IpRepr::parse(&buf[..n]).unwrap();
        assert_eq!((ip.src, ip.dst), (dst, src));
        assert_eq!(
            IcmpMessage::parse(ip.src, ip.dst, payload),
            Ok(IcmpMessage::EchoReply(echo))
        );
    }

    #[test]
    fn wire_icmp_roundtrip_v4_v6() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in [0, 1, 2, 3, 56, 255] {
            roundtrip(v4(10, 0, 0, 2), v4(10, 0, 0, 1), &data[..len]);
            roundtrip(v6("2001:db8::2"), v6("2001:db8::1"), &data[..len]);
        }
    }

    #[test]
    fn wire_icmp_bad_checksum_and_truncated() {
        let mut buf = [0u8; 128];
        let n =
            emit_echo_request(v4(1, 2, 3, 4), v4(5, 6, 7, 8), 64, 1, 2, b"xy", &mut buf).unwrap();
        let msg = buf[20..n].to_vec();
        for i in 0..msg.len() {
            let mut m = msg.clone();
            m[i] ^= 0x01;
            assert_eq!(parse_icmpv4(&m), Err(WireError::BadChecksum), "byte {i}");
        }
        for len in 0..HEADER_LEN {
            assert_eq!(parse_icmpv4(&msg[..len]), Err(WireError::Truncated));
        }

        let (s6, d6) = (v6("2001:db8::2"), v6("2001:db8::1"));
        let n = emit_echo_request(s6, d6, 64, 1, 2, b"xyz", &mut buf).unwrap();
        let msg = buf[40..n].to_vec();
        assert!(parse_icmpv6(s6, d6, &msg).is_ok());
        // The pseudo-header is covered: another source address fails.
        assert_eq!(
            parse_icmpv6(v6("2001:db8::3"), d6, &msg),
            Err(WireError::BadChecksum)
        );
        // ICMPv4 has no pseudo-header, so the same bytes fail as ICMPv4.
        assert_eq!(parse_icmpv4(&msg), Err(WireError::BadChecksum));
        let mut m = msg.clone();
        m[10] ^= 0x80;
        assert_eq!(parse_icmpv6(s6, d6, &m), Err(WireError::BadChecksum));
        assert_eq!(parse_icmpv6(s6, d6, &msg[..7]), Err(WireError::Truncated));
        assert_eq!(
            IcmpMessage::parse(s6, v4(1, 1, 1, 1), &msg),
            Err(WireError::BadVersion)
        );
    }

    #[test]
    fn wire_icmp_other_types() {
        // Destination unreachable (3/3) with a valid checksum.
        let mut m = vec![3, 3, 0, 0, 0, 0, 0, 0, 0x45, 0];
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            parse_icmpv4(&m),
            Ok(IcmpMessage::Other { kind: 3, code: 3 })
        );
        // An echo request with a non-zero code is not an echo request.
        let mut m = vec![8, 1, 0, 0, 0, 1, 0, 1];
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            parse_icmpv4(&m),
            Ok(IcmpMessage::Other { kind: 8, code: 1 })
        );
        // ICMPv4 echo type numbers mean nothing in ICMPv6 (8 is not a request there).
        let (s6, d6) = (v6("::1"), v6("::2"));
        let mut m = vec![8, 0, 0, 0, 0, 1, 0, 1];
        let acc = checksum::pseudo_header(s6, d6, IPPROTO_ICMPV6, 8);
        let c = !checksum::fold(u64::from(checksum::accumulate(acc, &m)));
        m[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            parse_icmpv6(s6, d6, &m),
            Ok(IcmpMessage::Other { kind: 8, code: 0 })
        );
    }

    #[test]
    fn wire_icmp_emit_errors() {
        let mut small = [0u8; 27];
        let (s4, d4) = (v4(1, 2, 3, 4), v4(5, 6, 7, 8));
        assert_eq!(
            emit_echo_reply(s4, d4, 64, 0, 0, &[], &mut small),
            Err(WireError::BufferTooSmall)
        );
        let mut buf = [0u8; 28];
        assert_eq!(emit_echo_reply(s4, d4, 64, 0, 0, &[], &mut buf), Ok(28));
        assert_eq!(
            emit_echo_reply(s4, v6("::1"), 64, 0, 0, &[], &mut buf),
            Err(WireError::BadVersion)
        );
        let big = vec![0u8; 65536];
        let mut out = vec![0u8; 70_000];
        // IPv4: 20 + 8 + data must fit 65535.
        assert_eq!(
            emit_echo_reply(s4, d4, 64, 0, 0, &big[..65508], &mut out),
            Err(WireError::BadTotalLength)
        );
        assert_eq!(
            emit_echo_reply(s4, d4, 64, 0, 0, &big[..65507], &mut out),
            Ok(65535)
        );
        // IPv6: 8 + data must fit the 16-bit payload length.
        let (s6, d6) = (v6("::1"), v6("::2"));
        assert_eq!(
            emit_echo_reply(s6, d6, 64, 0, 0, &big[..65528], &mut out),
            Err(WireError::BadTotalLength)
        );
        assert_eq!(
            emit_echo_reply(s6, d6, 64, 0, 0, &big[..65527], &mut out),
            Ok(40 + 65535)
        );
    }
}
