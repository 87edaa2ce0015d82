//! Software segmentation of a TCP super-packet (`Stack::poll_transmit_gso`):
//! what a device's TSO or Linux's GSO does, for a device or a simulated network
//! that takes one segment per packet.

use super::checksum;
use super::error::WireError;
use super::ip::IPPROTO_TCP;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const FIN: u8 = 0x01;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const ECE: u8 = 0x40;
const CWR: u8 = 0x80;
/// What a segment of a super-packet may carry: no SYN, RST or URG, which
/// mean one segment.
const SEGMENTABLE: u8 = FIN | PSH | ACK | ECE | CWR;

/// Cut the TCP super-packet `pkt` (IPv4 without options, or IPv6 without
/// extension headers) into segments of `segment_size` payload bytes, the last
/// possibly shorter, and hand each to `each` as a finished IP packet: the
/// headers of `pkt` with the sequence number advanced, the IP length (and
/// IPv4 identification) of the piece, PSH and FIN on the last piece only,
/// CWR on the first only, and both checksums computed. `scratch` is reused
/// to build them. The number of segments; an error, and nothing handed out,
/// for a packet that is not such a super-packet: its IP length must be the
/// slice's, unfragmented, its flags within ACK, PSH, FIN, ECE and CWR (or
/// `segment_size` is 0).
pub fn segment(
    pkt: &[u8],
    segment_size: usize,
    scratch: &mut Vec<u8>,
    mut each: impl FnMut(&[u8]),
) -> Result<usize, WireError> {
    let version = pkt.first().ok_or(WireError::Truncated)? >> 4;
    let (ip_hl, src, dst) = match version {
        4 if pkt.len() >= 20 => {
            if pkt[0] & 0x0f != 5 {
                return Err(WireError::BadHeaderLength);
            }
            if usize::from(u16::from_be_bytes([pkt[2], pkt[3]])) != pkt.len() {
                return Err(WireError::BadTotalLength);
            }
            // MF, or a fragment offset.
            if u16::from_be_bytes([pkt[6], pkt[7]]) & 0x3fff != 0 {
                return Err(WireError::Fragmented);
            }
            if pkt[9] != IPPROTO_TCP {
                return Err(WireError::NotTcp);
            }
            let a =
                |i: usize| IpAddr::V4(Ipv4Addr::new(pkt[i], pkt[i + 1], pkt[i + 2], pkt[i + 3]));
            (20, a(12), a(16))
        }
        6 if pkt.len() >= 40 => {
            if usize::from(u16::from_be_bytes([pkt[4], pkt[5]])) + 40 != pkt.len() {
                return Err(WireError::BadTotalLength);
            }
            if pkt[6] != IPPROTO_TCP {
                return Err(WireError::NotTcp);
            }
            let a = |i: usize| {
                let b: [u8; 16] = pkt[i..i + 16].try_into().expect("16 bytes");
                IpAddr::V6(Ipv6Addr::from(b))
            };
            (40, a(8), a(24))
        }
        4 | 6 => return Err(WireError::Truncated),
        _ => return Err(WireError::BadVersion),
    };
    let tcp_hl = usize::from(pkt.get(ip_hl + 12).ok_or(WireError::Truncated)? >> 4) * 4;
    let hlen = ip_hl + tcp_hl;
    if tcp_hl < 20 || pkt.len() < hlen {
        return Err(WireError::BadDataOffset);
    }
    if pkt[ip_hl + 13] & !SEGMENTABLE != 0 || pkt[ip_hl + 18..ip_hl + 20] != [0, 0] {
        return Err(WireError::NotTcp);
    }
    if segment_size == 0 {
        return Err(WireError::BufferTooSmall);
    }
    let payload = &pkt[hlen..];
    let seq0 = u32::from_be_bytes(pkt[ip_hl + 4..ip_hl + 8].try_into().expect("4 bytes"));
    let flags = pkt[ip_hl + 13];
    let id0 = u16::from_be_bytes([pkt[4], pkt[5]]);
    let n = payload.len().div_ceil(segment_size).max(1);
    for i in 0..n {
        let part = payload
            .get(i * segment_size..)
            .map_or(&[][..], |p| &p[..p.len().min(segment_size)]);
        scratch.clear();
        scratch.extend_from_slice(&pkt[..hlen]);
        scratch.extend_from_slice(part);
        let s = &mut scratch[..];
        let seq = seq0.wrapping_add((i * segment_size) as u32);
        set_piece_headers(s, ip_hl, i, n, seq, id0, flags);
        let tcp_len = tcp_hl + part.len();
        s[ip_hl + 16..ip_hl + 18].copy_from_slice(&[0, 0]);
        let acc = checksum::pseudo_header(src, dst, IPPROTO_TCP, tcp_len as u32);
        let c = !checksum::fold(u64::from(checksum::accumulate(acc, &s[ip_hl..])));
        s[ip_hl + 16..ip_hl + 18].copy_from_slice(&c.to_be_bytes());
        each(s);
    }
    Ok(n)
}

/// The headers of piece `index` of `count` cut from a TCP super-packet, as
/// the kernel's segmentation sets them: `piece` holds the super-packet's IP
/// and TCP headers (TCP from `l4`) and the piece's payload; `seq` is its
/// sequence number, `id0` the super-packet's IPv4 identification and
/// `flags` its TCP flags. Sets the IP length (IPv4: the identification plus
/// `index`, and the header checksum), the sequence number, and the flags:
/// FIN and PSH on the last piece only, CWR on the first only. The TCP
/// checksum is the caller's.
pub fn set_piece_headers(
    piece: &mut [u8],
    l4: usize,
    index: usize,
    count: usize,
    seq: u32,
    id0: u16,
    flags: u8,
) {
    let len = piece.len();
    if piece[0] >> 4 == 4 {
        piece[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        piece[4..6].copy_from_slice(&id0.wrapping_add(index as u16).to_be_bytes());
        piece[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&piece[..l4]);
        piece[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        piece[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    }
    piece[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
    let mut f = flags;
    if index + 1 < count {
        f &= !(FIN | PSH);
    }
    if index > 0 {
        f &= !CWR;
    }
    piece[l4 + 13] = f;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{emit_packet, IpRepr, SeqNumber, TcpFlags, TcpRepr};

    fn super_packet(src: &str, dst: &str, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut r = TcpRepr::new(1000, 2000);
        r.seq = SeqNumber(u32::MAX - 100);
        r.ack = SeqNumber(77);
        r.flags = TcpFlags(flags);
        r.window = 500;
        r.timestamp = Some((1, 2));
        let mut buf = vec![0; 70_000];
        let n = emit_packet(
            src.parse().unwrap(),
            dst.parse().unwrap(),
            64,
            &r,
            &[payload],
            &mut buf,
        )
        .unwrap();
        buf.truncate(n);
        buf
    }

    fn cut(pkt: &[u8], size: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let n = segment(pkt, size, &mut Vec::new(), |p| out.push(p.to_vec())).unwrap();
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn pieces_are_valid_segments_that_put_the_stream_back_together() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let all = TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN | TcpFlags::CWR;
        for (src, dst) in [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "2001:db8::2")] {
            let pkt = super_packet(src, dst, all, &payload);
            let pieces = cut(&pkt, 1448);
            assert_eq!(pieces.len(), 7);
            let mut stream = Vec::new();
            for (i, p) in pieces.iter().enumerate() {
                // Parsing checks the IP length and both checksums.
                let (ip, bytes) = IpRepr::parse(p).unwrap();
                let seg = TcpRepr::parse(ip.src, ip.dst, bytes, true).unwrap();
                assert_eq!(seg.seq, SeqNumber(u32::MAX - 100) + stream.len());
                assert_eq!(
                    (seg.ack, seg.window, seg.timestamp),
                    (SeqNumber(77), 500, Some((1, 2)))
                );
                let last = i + 1 == pieces.len();
                assert_eq!(seg.flags.fin(), last);
                assert_eq!(seg.flags.psh(), last);
                assert_eq!(seg.flags.0 & TcpFlags::CWR != 0, i == 0);
                assert_eq!(
                    seg.payload.len(),
                    if last { 10_000 - 6 * 1448 } else { 1448 }
                );
                stream.extend_from_slice(seg.payload);
            }
            assert_eq!(stream, payload);
        }
    }

    #[test]
    fn a_packet_within_one_segment_comes_back_as_it_was() {
        let pkt = super_packet(
            "10.0.0.1",
            "10.0.0.2",
            TcpFlags::ACK | TcpFlags::PSH,
            b"hello",
        );
        assert_eq!(cut(&pkt, 1448), vec![pkt.clone()]);
        let pkt = super_packet("10.0.0.1", "10.0.0.2", TcpFlags::ACK, b"");
        assert_eq!(cut(&pkt, 1448), vec![pkt]);
    }

    #[test]
    fn what_is_not_a_tcp_super_packet_is_refused_without_a_panic() {
        let pkt = super_packet("10.0.0.1", "10.0.0.2", TcpFlags::ACK, &[1; 3000]);
        // Shorter than its headers (20 + 20 + 12 of timestamps).
        for len in 0..52 {
            let mut seen = 0;
            assert!(segment(&pkt[..len], 1000, &mut Vec::new(), |_| seen += 1).is_err());
            assert_eq!(seen, 0);
        }
        assert!(segment(&pkt, 0, &mut Vec::new(), |_| {}).is_err());
        let refused = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut p = pkt.clone();
            f(&mut p);
            segment(&p, 1000, &mut Vec::new(), |_| panic!("a piece of {p:?}")).is_err()
        };
        assert!(refused(&|p| p[9] = 17)); // UDP
        assert!(refused(&|p| p.push(0))); // longer than its IP length
        assert!(refused(&|p| p[6] |= 0x20)); // MF
        assert!(refused(&|p| p[33] |= TcpFlags::SYN));
        assert!(refused(&|p| p[33] |= TcpFlags::RST));
        assert!(refused(&|p| p[33] |= 0x20)); // URG
        assert!(refused(&|p| p[32] = 0x40)); // data offset 16 bytes
        let v6 = super_packet("2001:db8::1", "2001:db8::2", TcpFlags::ACK, &[1; 3000]);
        let mut longer = v6.clone();
        longer.push(0);
        assert!(segment(&longer, 1000, &mut Vec::new(), |_| {}).is_err());
        assert_eq!(segment(&v6, 1000, &mut Vec::new(), |_| {}), Ok(3));
    }
}
