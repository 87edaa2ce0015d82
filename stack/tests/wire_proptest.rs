//! Property tests for the packet-format layer: parsers never panic on arbitrary
//! bytes, and valid TCP segments round-trip exactly through emit and parse.

use mptun_stack::wire::{
    emit_echo_reply, emit_echo_request, emit_packet, icmp, IcmpEcho, IcmpMessage, IpRepr,
    SackBlocks, SeqNumber, TcpFlags, TcpOptionIter, TcpRepr, TcpSegment, WireError,
};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn addr_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>())
            .prop_map(|(a, b)| (Ipv4Addr::from(a).into(), Ipv4Addr::from(b).into())),
        (any::<[u8; 16]>(), any::<[u8; 16]>())
            .prop_map(|(a, b)| (Ipv6Addr::from(a).into(), Ipv6Addr::from(b).into())),
    ]
}

/// Byte vectors biased towards plausible IP/TCP headers so parsers get past the
/// first checks.
fn packet_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..128),
        (0u8..16, proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(v, mut b)| {
            if let Some(x) = b.first_mut() {
                *x = (*x & 0x0f) | if v < 8 { 0x40 } else { 0x60 };
            }
            b
        }),
    ]
}

/// Everything a `TcpRepr` to emit needs, owning the unknown-option data.
#[derive(Debug, Clone)]
struct Spec {
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    urgent: u16,
    mss: Option<u16>,
    window_scale: Option<u8>,
    sack_permitted: bool,
    sack: Vec<(u32, u32)>,
    timestamp: Option<(u32, u32)>,
    unknown: Vec<(u8, Vec<u8>)>,
}

impl Spec {
    fn repr(&self) -> TcpRepr<'_> {
        let mut r = TcpRepr::new(self.src_port, self.dst_port);
        r.seq = SeqNumber(self.seq);
        r.ack = SeqNumber(self.ack);
        r.flags = TcpFlags(self.flags);
        r.window = self.window;
        r.urgent = self.urgent;
        r.mss = self.mss;
        r.window_scale = self.window_scale;
        r.sack_permitted = self.sack_permitted;
        let mut blocks = SackBlocks::new();
        for &(l, rr) in &self.sack {
            blocks.push(SeqNumber(l), SeqNumber(rr));
        }
        r.sack_blocks = blocks;
        r.timestamp = self.timestamp;
        for (k, d) in &self.unknown {
            r.unknown.push(*k, d);
        }
        r
    }
}

/// Kinds that parse as `Unknown` (not EOL/NOP/MSS/WS/SACK-perm/SACK/TS).
fn unknown_kind() -> impl Strategy<Value = u8> {
    prop_oneof![Just(30u8), 6u8..8, 9u8..=255]
}

fn spec() -> impl Strategy<Value = Spec> {
    let fixed = (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
    );
    let opts = (
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..=14),
        any::<bool>(),
        proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=4),
        proptest::option::of((any::<u32>(), any::<u32>())),
        proptest::collection::vec(
            (
                unknown_kind(),
                proptest::collection::vec(any::<u8>(), 0..=20),
            ),
            0..=3,
        ),
    );
    (fixed, opts).prop_map(
        |(
            (src_port, dst_port, seq, ack, flags, window, urgent),
            (mss, window_scale, sack_permitted, sack, timestamp, unknown),
        )| {
            let mut s = Spec {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                window,
                urgent,
                mss,
                window_scale,
                sack_permitted,
                sack,
                timestamp,
                unknown,
            };
            // Drop options until they fit in 40 bytes, so most cases are valid.
            while s.repr().options_len() > 40 {
                if s.unknown.pop().is_none() && s.sack.pop().is_none() {
                    s.timestamp = None;
                }
            }
            s
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn wire_ip_parse_never_panics(bytes in packet_bytes()) {
        if let Ok((repr, payload)) = IpRepr::parse(&bytes) {
            prop_assert_eq!(repr.payload_len, payload.len());
            prop_assert!(payload.len() <= bytes.len());
        }
    }

    #[test]
    fn wire_tcp_parsers_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..100),
        doff in 0u8..16,
        (src, dst) in addr_pair(),
    ) {
        let mut bytes = bytes;
        // Half the time force a plausible data offset so options get parsed.
        if bytes.len() > 12 && doff & 1 == 0 {
            bytes[12] = (bytes[12] & 0x0f) | ((5 + doff / 2) << 4);
        }
        let _ = TcpRepr::parse(src, dst, &bytes, true);
        if let Ok(r) = TcpRepr::parse(src, dst, &bytes, false) {
            prop_assert!(r.payload.len() <= bytes.len());
            prop_assert!(r.window_scale.unwrap_or(0) <= 14);
        }
        if let Ok(seg) = TcpSegment::new_checked(&bytes[..]) {
            let _ = (seg.src_port(), seg.dst_port(), seg.seq(), seg.ack());
            let _ = (seg.flags(), seg.window(), seg.options(), seg.payload());
            let _ = seg.verify_checksum(src, dst);
            prop_assert_eq!(seg.header_len() + seg.payload().len(), bytes.len());
        }
        let seg = TcpSegment::new_unchecked(&bytes[..]);
        let _ = (seg.options(), seg.payload(), seg.seq(), seg.urgent());
    }

    #[test]
    fn wire_option_iter_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
        let mut n = 0;
        let mut saw_err = false;
        for item in TcpOptionIter::new(&bytes) {
            prop_assert!(!saw_err, "item after an error");
            saw_err = item.is_err();
            n += 1;
            prop_assert!(n <= bytes.len());
        }
    }

    #[test]
    fn wire_tcp_roundtrip(
        spec in spec(),
        (src, dst) in addr_pair(),
        hop in any::<u8>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        split in any::<prop::sample::Index>(),
    ) {
        let repr = spec.repr();
        prop_assert!(repr.options_len() <= 40);
        let cut = split.index(payload.len() + 1);
        let slices: [&[u8]; 2] = [&payload[..cut], &payload[cut..]];
        let mut buf = vec![0u8; 40 + 60 + payload.len()];
        let n = emit_packet(src, dst, hop, &repr, &slices, &mut buf).unwrap();
        prop_assert_eq!(n, repr.header_len() + payload.len() + if src.is_ipv4() { 20 } else { 40 });
        // One byte short is always rejected.
        let mut short = vec![0u8; n - 1];
        prop_assert_eq!(
            emit_packet(src, dst, hop, &repr, &slices, &mut short),
            Err(WireError::BufferTooSmall)
        );

        let (ip, seg) = IpRepr::parse(&buf[..n]).unwrap();
        prop_assert_eq!((ip.src, ip.dst, ip.protocol, ip.hop_limit), (src, dst, 6, hop));
        let parsed = TcpRepr::parse(src, dst, seg, true).unwrap();
        let mut expect = repr;
        expect.payload = &payload;
        prop_assert_eq!(parsed, expect);

        // Any single flipped bit in the TCP segment is caught by the checksum
        // (or makes the header invalid).
        let ip_hl = n - seg.len();
        let mut bad = buf[..n].to_vec();
        let bit = split.index((n - ip_hl) * 8);
        bad[ip_hl + bit / 8] ^= 1 << (bit % 8);
        prop_assert!(TcpRepr::parse(src, dst, &bad[ip_hl..], true).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn wire_icmp_parse_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..100),
        (src, dst) in addr_pair(),
    ) {
        if let Ok(IcmpMessage::EchoRequest(e) | IcmpMessage::EchoReply(e)) =
            IcmpMessage::parse(src, dst, &bytes)
        {
            prop_assert_eq!(e.data.len() + 8, bytes.len());
        }
        let _ = icmp::parse_icmpv4(&bytes);
        let _ = icmp::parse_icmpv6(src, dst, &bytes);
    }

    #[test]
    fn wire_icmp_in_ip_never_panics(bytes in packet_bytes()) {
        if let Ok((ip, payload)) = IpRepr::parse(&bytes) {
            let _ = IcmpMessage::parse(ip.src, ip.dst, payload);
        }
    }

    #[test]
    fn wire_icmp_echo_roundtrip(
        (src, dst) in addr_pair(),
        hop in any::<u8>(),
        ident in any::<u16>(),
        seq in any::<u16>(),
        data in proptest::collection::vec(any::<u8>(), 0..300),
        request in any::<bool>(),
        flip in any::<proptest::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut buf = vec![0u8; 400];
        let emit = if request { emit_echo_request } else { emit_echo_reply };
        let n = emit(src, dst, hop, ident, seq, &data, &mut buf).unwrap();
        prop_assert_eq!(n, icmp::echo_packet_len(src, data.len()));
        let (ip, payload) = IpRepr::parse(&buf[..n]).unwrap();
        prop_assert_eq!((ip.src, ip.dst, ip.hop_limit), (src, dst, hop));
        let echo = IcmpEcho { ident, seq, data: &data };
        let want = if request {
            IcmpMessage::EchoRequest(echo)
        } else {
            IcmpMessage::EchoReply(echo)
        };
        prop_assert_eq!(IcmpMessage::parse(ip.src, ip.dst, payload), Ok(want));
        // Any single flipped bit in the ICMP message is caught by the checksum.
        let msg_start = n - payload.len();
        let at = msg_start + flip.index(payload.len());
        buf[at] ^= 1 << bit;
        let (ip, payload) = IpRepr::parse(&buf[..n]).unwrap();
        prop_assert_eq!(
            IcmpMessage::parse(ip.src, ip.dst, payload),
            Err(WireError::BadChecksum)
        );
    }
}
