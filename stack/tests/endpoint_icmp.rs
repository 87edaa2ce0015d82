//! ICMP echo through the public `Stack` API: requests built with
//! `wire::emit_echo_request` go in through `handle_packet`, and what
//! `poll_transmit` writes is parsed back.

use mptun_stack::wire::{self, icmp, IcmpEcho, IcmpMessage, IpRepr};
use mptun_stack::{Config, Counters, Instant, Stack, TcpConfig};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const T: Instant = Instant::from_millis(1_000);

fn us4() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
}

fn us6() -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
}

fn peer4() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))
}

fn peer6() -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2))
}

fn stack() -> Stack {
    stack_with(Config::default())
}

fn stack_with(config: Config) -> Stack {
    let mut s = Stack::new(config);
    s.add_address(us4());
    s.add_address(us6());
    s
}

fn request(from: IpAddr, to: IpAddr, ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = wire::emit_echo_request(from, to, 64, ident, seq, data, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// One echo reply as it left the stack.
#[derive(Debug, PartialEq, Eq)]
struct Reply {
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    ident: u16,
    seq: u16,
    data: Vec<u8>,
}

fn poll(s: &mut Stack) -> Option<Reply> {
    let mut buf = vec![0u8; s.config().tcp.mtu];
    let n = s.poll_transmit(T, &mut buf)?;
    let (ip, bytes) = IpRepr::parse(&buf[..n]).expect("stack emitted a bad IP packet");
    let want = if ip.src.is_ipv4() {
        wire::IPPROTO_ICMP
    } else {
        wire::IPPROTO_ICMPV6
    };
    assert_eq!(ip.protocol, want);
    match IcmpMessage::parse(ip.src, ip.dst, bytes) {
        Ok(IcmpMessage::EchoReply(IcmpEcho { ident, seq, data })) => Some(Reply {
            src: ip.src,
            dst: ip.dst,
            hop_limit: ip.hop_limit,
            ident,
            seq,
            data: data.to_vec(),
        }),
        other => panic!("expected a valid echo reply, got {other:?}"),
    }
}

fn assert_silent(s: &mut Stack) {
    if let Some(r) = poll(s) {
        panic!("unexpected reply {r:?}");
    }
}

fn echo_once(from: IpAddr, to: IpAddr) {
    let mut s = stack();
    let data: Vec<u8> = (0..56u8).collect();
    s.handle_packet(T, &request(from, to, 0x4242, 7, &data));
    let reply = poll(&mut s).expect("expected an echo reply");
    assert_eq!(
        reply,
        Reply {
            src: to,
            dst: from,
            hop_limit: s.config().hop_limit,
            ident: 0x4242,
            seq: 7,
            data,
        }
    );
    assert_silent(&mut s);
    let c = s.counters();
    assert_eq!(c.icmp_echo_requests, 1);
    assert_eq!(c.icmp_echo_replies_sent, 1);
    assert_eq!(c.packets_in, 1);
    assert_eq!(c.packets_out, 1);
    assert_eq!(c.segments_out, 0);
    assert_eq!(c.drop_unsupported_protocol, 0);
}

#[test]
fn icmp_echo_v4() {
    echo_once(peer4(), us4());
}

#[test]
fn icmp_echo_v6() {
    echo_once(peer6(), us6());
}

#[test]
fn icmp_echo_empty_and_odd_payloads() {
    let mut s = stack();
    for (i, len) in [0usize, 1, 3, 1000].into_iter().enumerate() {
        let data = vec![0xa5; len];
        let seq = i as u16;
        s.handle_packet(T, &request(peer4(), us4(), 1, seq, &data));
        s.handle_packet(T, &request(peer6(), us6(), 2, seq, &data));
        let r4 = poll(&mut s).unwrap();
        let r6 = poll(&mut s).unwrap();
        assert_eq!((r4.ident, r4.seq, r4.data.len()), (1, seq, len));
        assert_eq!((r6.ident, r6.seq, r6.data.len()), (2, seq, len));
    }
    assert_silent(&mut s);
}

#[test]
fn icmp_echo_not_for_us() {
    let mut s = stack();
    let other4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));
    let other6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9));
    s.handle_packet(T, &request(peer4(), other4, 1, 1, b"x"));
    s.handle_packet(T, &request(peer6(), other6, 1, 1, b"x"));
    assert_silent(&mut s);
    let c = s.counters();
    assert_eq!(c.drop_not_for_us, 2);
    assert_eq!(c.icmp_echo_requests, 0);
}

#[test]
fn icmp_echo_bad_checksum() {
    let mut s = stack();
    for (from, to, ip_hl) in [(peer4(), us4(), 20), (peer6(), us6(), 40)] {
        let mut p = request(from, to, 1, 1, b"ping");
        p[ip_hl + 9] ^= 0x10; // a data byte
        s.handle_packet(T, &p);
        let mut p = request(from, to, 1, 1, b"ping");
        p[ip_hl + 2] ^= 0xff; // the checksum itself
        s.handle_packet(T, &p);
    }
    assert_silent(&mut s);
    let c = s.counters();
    assert_eq!(c.drop_bad_checksum, 4);
    assert_eq!(c.icmp_echo_requests, 0);
}

#[test]
fn icmp_truncated_is_malformed() {
    let mut s = stack();
    let p = request(peer4(), us4(), 1, 1, b"");
    // Keep 4 ICMP bytes and shrink the IP total length to match.
    let mut short = p[..24].to_vec();
    short[2..4].copy_from_slice(&24u16.to_be_bytes());
    short[10..12].copy_from_slice(&[0, 0]);
    let c = wire::checksum::checksum(&short[..20]);
    short[10..12].copy_from_slice(&c.to_be_bytes());
    s.handle_packet(T, &short);
    assert_silent(&mut s);
    assert_eq!(s.counters().drop_malformed, 1);
}

/// A valid ICMP (v4) or ICMPv6 message of any type/code, as an IP packet.
fn raw_icmp(from: IpAddr, to: IpAddr, kind: u8, code: u8) -> Vec<u8> {
    // Start from an echo request and rewrite type/code and the checksum.
    let mut p = request(from, to, 9, 9, b"payload");
    let ip_hl = if from.is_ipv4() { 20 } else { 40 };
    let msg = &mut p[ip_hl..];
    msg[0] = kind;
    msg[1] = code;
    msg[2..4].copy_from_slice(&[0, 0]);
    let acc = if from.is_ipv4() {
        0
    } else {
        wire::checksum::pseudo_header(from, to, wire::IPPROTO_ICMPV6, msg.len() as u32)
    };
    let c = !wire::checksum::fold(u64::from(wire::checksum::accumulate(acc, msg)));
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

#[test]
fn icmp_other_types_are_counted_and_dropped() {
    let mut s = stack();
    let cases4 = [
        (icmp::ICMPV4_ECHO_REPLY, 0),
        (3, 3),  // destination unreachable
        (11, 0), // time exceeded
        (icmp::ICMPV4_ECHO_REQUEST, 1),
        (icmp::ICMPV6_ECHO_REQUEST, 0),
    ];
    let cases6 = [
        (icmp::ICMPV6_ECHO_REPLY, 0),
        (1, 4),   // destination unreachable
        (2, 0),   // packet too big
        (135, 0), // neighbour solicitation
        (icmp::ICMPV4_ECHO_REQUEST, 0),
    ];
    for (k, c) in cases4 {
        s.handle_packet(T, &raw_icmp(peer4(), us4(), k, c));
    }
    for (k, c) in cases6 {
        s.handle_packet(T, &raw_icmp(peer6(), us6(), k, c));
    }
    assert_silent(&mut s);
    let c = s.counters();
    assert_eq!(c.drop_icmp_other, 10);
    assert_eq!(c.icmp_echo_requests, 0);
    assert_eq!(c.packets_out, 0);
}

#[test]
fn icmp_wrong_family_protocol_is_unsupported() {
    let mut s = stack();
    // An ICMPv6 payload carried in IPv4 (protocol 58), and ICMPv4 in IPv6 (1).
    let mut v4 = request(peer4(), us4(), 1, 1, b"x");
    v4[9] = wire::IPPROTO_ICMPV6;
    v4[10..12].copy_from_slice(&[0, 0]);
    let c = wire::checksum::checksum(&v4[..20]);
    v4[10..12].copy_from_slice(&c.to_be_bytes());
    s.handle_packet(T, &v4);
    let mut v6 = request(peer6(), us6(), 1, 1, b"x");
    v6[6] = wire::IPPROTO_ICMP;
    s.handle_packet(T, &v6);
    assert_silent(&mut s);
    let c = s.counters();
    assert_eq!(c.drop_unsupported_protocol, 2);
    assert_eq!(c.icmp_echo_requests, 0);
}

#[test]
fn icmp_echo_from_non_unicast_source_is_ignored() {
    let mut s = stack();
    let sources = [
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V4(Ipv4Addr::BROADCAST),
        IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1)),
    ];
    for src in sources {
        s.handle_packet(T, &request(src, us4(), 1, 1, b"x"));
    }
    let sources = [
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)),
    ];
    for src in sources {
        s.handle_packet(T, &request(src, us6(), 1, 1, b"x"));
    }
    assert_silent(&mut s);
    let c = s.counters();
    assert_eq!(c.icmp_echo_requests, 5);
    assert_eq!(c.drop_malformed, 5);
    assert_eq!(c.icmp_echo_replies_sent, 0);
}

#[test]
fn icmp_echo_larger_than_mtu_is_dropped() {
    let mut s = Stack::new(Config {
        tcp: TcpConfig {
            mtu: 1280,
            ..TcpConfig::default()
        },
        ..Config::default()
    });
    s.add_address(us4());
    s.add_address(us6());
    // Exactly the MTU is answered, one byte more is not.
    s.handle_packet(T, &request(peer4(), us4(), 1, 1, &[1; 1280 - 28]));
    s.handle_packet(T, &request(peer6(), us6(), 1, 1, &[1; 1280 - 48]));
    assert_eq!(poll(&mut s).unwrap().data.len(), 1252);
    assert_eq!(poll(&mut s).unwrap().data.len(), 1232);
    s.handle_packet(T, &request(peer4(), us4(), 1, 2, &[1; 1280 - 27]));
    s.handle_packet(T, &request(peer6(), us6(), 1, 2, &[1; 1280 - 47]));
    s.handle_packet(T, &request(peer6(), us6(), 1, 3, &[1; 65000]));
    assert_silent(&mut s);
    let c = s.counters();
    assert_eq!(c.icmp_echo_requests, 5);
    assert_eq!(c.icmp_echo_replies_sent, 2);
    assert_eq!(c.drop_icmp_too_big, 3);
}

#[test]
fn icmp_echo_queue_is_bounded() {
    // A rate limit high enough for the queue to fill first.
    let mut config = Config::default();
    config.limits.echo_replies = 1_000_000;
    let mut s = stack_with(config);
    let n = 10_000u32;
    for i in 0..n {
        let (from, to) = if i % 2 == 0 {
            (peer4(), us4())
        } else {
            (peer6(), us6())
        };
        s.handle_packet(T, &request(from, to, 5, i as u16, &i.to_be_bytes()));
    }
    let mut replies = Vec::new();
    while let Some(r) = poll(&mut s) {
        replies.push(r);
        assert!(replies.len() <= n as usize, "runaway replies");
    }
    let c: Counters = s.counters();
    assert!(!replies.is_empty());
    assert!(replies.len() <= 256, "{} replies queued", replies.len());
    assert_eq!(c.icmp_echo_requests, u64::from(n));
    assert_eq!(c.icmp_echo_replies_sent, replies.len() as u64);
    assert_eq!(
        c.drop_icmp_queue_full + c.icmp_echo_replies_sent,
        u64::from(n)
    );
    // The first requests are the ones answered, in order.
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r.seq, i as u16);
        assert_eq!(r.data, (i as u32).to_be_bytes());
    }
    // Once drained, the queue takes requests again.
    s.handle_packet(T, &request(peer4(), us4(), 6, 1, b"again"));
    assert_eq!(poll(&mut s).unwrap().data, b"again");
}

#[test]
fn icmp_replies_go_after_rsts() {
    let mut s = stack();
    s.handle_packet(T, &request(peer4(), us4(), 1, 1, b"x"));
    // A SYN to a closed port queues a stateless RST.
    let mut r = wire::TcpRepr::new(4000, 80);
    r.flags = wire::TcpFlags(wire::TcpFlags::SYN);
    let mut buf = vec![0u8; 200];
    let len = wire::emit_packet(peer4(), us4(), 64, &r, &[], &mut buf).unwrap();
    s.handle_packet(T, &buf[..len]);
    let mut out = vec![0u8; 1500];
    let n = s.poll_transmit(T, &mut out).unwrap();
    let (ip, _) = IpRepr::parse(&out[..n]).unwrap();
    assert_eq!(ip.protocol, wire::IPPROTO_TCP);
    assert_eq!(poll(&mut s).unwrap().seq, 1);
    assert_silent(&mut s);
}

#[test]
fn icmp_replies_go_before_connection_traffic() {
    let mut s = stack();
    s.listen(80).unwrap();
    // A SYN to a listener makes the connection want to send a SYN-ACK...
    let mut r = wire::TcpRepr::new(4000, 80);
    r.flags = wire::TcpFlags(wire::TcpFlags::SYN);
    let mut buf = vec![0u8; 200];
    let len = wire::emit_packet(peer6(), us6(), 64, &r, &[], &mut buf).unwrap();
    s.handle_packet(T, &buf[..len]);
    // ...but an echo request arriving after it is answered first.
    s.handle_packet(T, &request(peer6(), us6(), 1, 1, b"x"));
    assert_eq!(poll(&mut s).unwrap().seq, 1);
    let mut out = vec![0u8; 1500];
    let n = s.poll_transmit(T, &mut out).unwrap();
    let (ip, seg) = IpRepr::parse(&out[..n]).unwrap();
    assert_eq!(ip.protocol, wire::IPPROTO_TCP);
    let seg = wire::TcpRepr::parse(ip.src, ip.dst, seg, true).unwrap();
    assert!(seg.flags.syn() && seg.flags.ack());
}

/// Echo replies are rate-limited stack-wide (a tenth of a second's worth at
/// once, then the configured rate): a flood of requests gets few answers.
#[test]
fn icmp_echo_replies_are_rate_limited() {
    let mut config = Config::default();
    config.limits.echo_replies = 200;
    let mut s = stack_with(config);
    for i in 0..100u16 {
        s.handle_packet(T, &request(peer4(), us4(), 9, i, b"flood"));
    }
    let mut replies = 0;
    while poll(&mut s).is_some() {
        replies += 1;
    }
    assert_eq!(replies, 20);
    let c: Counters = s.counters();
    assert_eq!(c.drop_icmp_rate_limited, 80);
    assert_eq!(c.icmp_echo_requests, 100);
}

// ----- destination unreachable -----

use mptun_stack::endpoint::CloseReason;
use mptun_stack::Event;
use std::net::SocketAddr;

/// Open a connection to `remote` (port 80): its id and the SYN that left.
fn opening(s: &mut Stack, remote: IpAddr) -> (mptun_stack::ConnId, Vec<u8>) {
    let id = s.connect(T, None, SocketAddr::new(remote, 80)).unwrap();
    let mut buf = vec![0u8; 2000];
    let n = s.poll_transmit(T, &mut buf).expect("a SYN");
    buf.truncate(n);
    (id, buf)
}

/// A router's destination unreachable about `packet` (it quotes the IP
/// header and the start of the TCP header).
fn unreachable(router: IpAddr, packet: &[u8], code: u8) -> Vec<u8> {
    let (ip, _) = IpRepr::parse(packet).unwrap();
    let quoted = &packet[..(ip.header_len() + 8).min(packet.len())];
    let mut buf = vec![0u8; 200];
    let n = wire::emit_unreachable(router, ip.src, 64, code, quoted, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn closed(s: &mut Stack) -> Option<CloseReason> {
    let mut reason = None;
    while let Some(e) = s.poll_event() {
        if let Event::Closed { reason: r, .. } = e {
            reason = Some(r);
        }
    }
    reason
}

#[test]
fn an_unreachable_answer_to_our_syn_fails_the_connect_at_once() {
    for (remote, router) in [
        (peer4(), IpAddr::V4(Ipv4Addr::new(10, 0, 9, 1))),
        (
            peer6(),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1)),
        ),
    ] {
        let mut s = stack();
        let (id, syn) = opening(&mut s, remote);
        s.handle_packet(T, &unreachable(router, &syn, 1));
        let c = s.counters();
        assert_eq!(
            closed(&mut s),
            Some(CloseReason::Unreachable),
            "{remote}: {c:?}"
        );
        let state = s.info(id).map(|i| i.state);
        assert!(
            matches!(state, None | Some(mptun_stack::State::Closed)),
            "{remote}: {state:?}"
        );
        assert_eq!(s.counters().icmp_unreachable, 1);
    }
}

/// RFC 5927: only an error quoting what we sent counts — the ISN of a
/// connection still opening (an established one never dies of one: see the
/// TCB's tests).
#[test]
fn unreachable_errors_that_do_not_quote_our_syn_change_nothing() {
    let router = IpAddr::V4(Ipv4Addr::new(10, 0, 9, 1));
    let mut s = stack();
    let (id, syn) = opening(&mut s, peer4());
    // Another sequence number (a guess), another port, the wrong address.
    let mut guess = syn.clone();
    guess[24] ^= 0x40;
    let mut port = syn.clone();
    port[21] ^= 1;
    for bad in [guess, port] {
        s.handle_packet(T, &unreachable(router, &bad, 1));
    }
    let mut elsewhere = vec![0u8; 200];
    let (ip, _) = IpRepr::parse(&syn).unwrap();
    let n = wire::emit_unreachable(
        router,
        us6(),
        64,
        1,
        &syn[..ip.header_len() + 8],
        &mut elsewhere,
    )
    .err();
    assert!(n.is_some(), "mixed families are refused by the emitter");
    // Fragmentation needed is path MTU discovery, not an unreachable host.
    s.handle_packet(T, &unreachable(router, &syn, 4));
    assert_eq!(closed(&mut s), None);
    assert!(s.info(id).is_some(), "still opening");
    assert_eq!(s.counters().icmp_unreachable, 0);
    assert_eq!(s.counters().drop_icmp_other, 3);
}
