//! The `Stack` through its public API only: packets built with `wire::emit_packet`
//! go in through `handle_packet`, and what `poll_transmit` writes is parsed back.

use mptun_stack::endpoint::CloseReason;
use mptun_stack::wire::{self, IpRepr, SeqNumber, TcpFlags, TcpRepr};
use mptun_stack::{
    Config, ConnId, Error, Event, Instant, Listen, Stack, State, SynCookies, TcpConfig,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const SYN: u8 = TcpFlags::SYN;
const ACK: u8 = TcpFlags::ACK;
const RST: u8 = TcpFlags::RST;
const PSH: u8 = TcpFlags::PSH;

const T: Instant = Instant::from_millis(1_000);

fn us4() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
}

fn us6() -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
}

fn peer4(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), port)
}

fn peer6(port: u16) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
        port,
    )
}

fn config() -> Config {
    Config {
        tcp: TcpConfig {
            delayed_ack: None,
            ..TcpConfig::default()
        },
        ..Config::default()
    }
}

fn stack(config: Config) -> Stack {
    let mut s = Stack::new(config);
    s.add_address(us4());
    s.add_address(us6());
    s
}

/// One segment as it left the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Out {
    src: SocketAddr,
    dst: SocketAddr,
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    payload: Vec<u8>,
}

/// A segment from `from` to `to`, as an IP packet.
fn packet(
    from: SocketAddr,
    to: SocketAddr,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut r = TcpRepr::new(from.port(), to.port());
    r.flags = TcpFlags(flags);
    r.seq = SeqNumber(seq);
    r.ack = SeqNumber(ack);
    r.window = 65535;
    if flags & SYN != 0 {
        r.mss = Some(1000);
    }
    let mut buf = vec![0u8; 2048];
    let n = wire::emit_packet(from.ip(), to.ip(), 64, &r, &[payload], &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn poll(s: &mut Stack) -> Option<Out> {
    let mut buf = vec![0u8; 2048];
    let n = s.poll_transmit(T, &mut buf)?;
    let (ip, bytes) = IpRepr::parse(&buf[..n]).expect("stack emitted a bad IP packet");
    let r = TcpRepr::parse(ip.src, ip.dst, bytes, true).expect("stack emitted a bad segment");
    Some(Out {
        src: SocketAddr::new(ip.src, r.src_port),
        dst: SocketAddr::new(ip.dst, r.dst_port),
        flags: r.flags,
        seq: r.seq.0,
        ack: r.ack.0,
        payload: r.payload.to_vec(),
    })
}

fn poll_one(s: &mut Stack) -> Out {
    poll(s).expect("expected a segment")
}

fn assert_silent(s: &mut Stack) {
    if let Some(o) = poll(s) {
        panic!("unexpected segment {o:?}");
    }
}

fn events(s: &mut Stack) -> Vec<Event> {
    core::iter::from_fn(|| s.poll_event()).collect()
}

/// Complete a passive open from `client` to `server` (peer ISN 1000); the stack's
/// ISS and the connection handle.
fn accept(s: &mut Stack, client: SocketAddr, server: SocketAddr) -> (u32, ConnId) {
    s.handle_packet(T, &packet(client, server, SYN, 1000, 0, &[]));
    let synack = poll_one(s);
    assert_eq!(synack.flags, TcpFlags(SYN | ACK));
    assert_eq!((synack.src, synack.dst), (server, client));
    assert_eq!(synack.ack, 1001);
    let iss = synack.seq;
    assert_silent(s);
    s.handle_packet(T, &packet(client, server, ACK, 1001, iss + 1, &[]));
    let ev = events(s);
    let id = match ev.as_slice() {
        [Event::Accepted {
            id, local, remote, ..
        }] => {
            assert_eq!((*local, *remote), (server, client));
            *id
        }
        other => panic!("expected one Accepted event, got {other:?}"),
    };
    assert_eq!(s.state(id), Some(State::Established));
    (iss, id)
}

#[test]
fn syn_to_closed_port_gets_rst_ack() {
    let mut s = stack(config());
    let server = SocketAddr::new(us4(), 80);
    s.handle_packet(T, &packet(peer4(1234), server, SYN, 5000, 0, &[]));
    assert_eq!(
        poll_one(&mut s),
        Out {
            src: server,
            dst: peer4(1234),
            flags: TcpFlags(RST | ACK),
            seq: 0,
            ack: 5001,
            payload: vec![],
        }
    );
    assert_silent(&mut s);
    let c = s.counters();
    assert_eq!((c.drop_no_listener, c.resets_sent), (1, 1));
    assert_eq!(s.connection_count(), 0);
}

#[test]
fn non_syn_to_unknown_tuple_gets_rst_at_its_ack() {
    let mut s = stack(config());
    let server = SocketAddr::new(us4(), 80);
    s.listen(80).unwrap();
    s.handle_packet(
        T,
        &packet(peer4(1234), server, ACK | PSH, 5000, 7777, b"data"),
    );
    let rst = poll_one(&mut s);
    assert_eq!((rst.flags, rst.seq), (TcpFlags(RST), 7777));
    assert_eq!((rst.src, rst.dst), (server, peer4(1234)));
    assert_silent(&mut s);
    assert_eq!(s.connection_count(), 0);
}

#[test]
fn rst_to_unknown_tuple_gets_nothing() {
    let mut s = stack(config());
    let server = SocketAddr::new(us4(), 80);
    s.handle_packet(T, &packet(peer4(1234), server, RST, 5000, 0, &[]));
    s.handle_packet(T, &packet(peer4(1234), server, RST | ACK, 5000, 9, &[]));
    assert_silent(&mut s);
    let c = s.counters();
    assert_eq!((c.resets_received, c.resets_sent), (2, 0));
}

#[test]
fn packet_not_for_us_dropped_and_counted() {
    let mut s = stack(config());
    s.listen(80).unwrap();
    let elsewhere = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99)), 80);
    s.handle_packet(T, &packet(peer4(1234), elsewhere, SYN, 5000, 0, &[]));
    assert_silent(&mut s);
    let c = s.counters();
    assert_eq!(c.drop_not_for_us, 1);
    assert_eq!(c.segments_in, 0);
    assert_eq!(s.connection_count(), 0);
}

#[test]
fn bad_checksum_dropped_and_counted() {
    let mut s = stack(config());
    s.listen(80).unwrap();
    let mut p = packet(peer4(1234), SocketAddr::new(us4(), 80), SYN, 5000, 0, &[]);
    // The TCP checksum field (after the 20-byte IPv4 header).
    p[20 + 16] ^= 0x55;
    s.handle_packet(T, &p);
    assert_silent(&mut s);
    let c = s.counters();
    assert_eq!(c.drop_bad_checksum, 1);
    assert_eq!(s.connection_count(), 0);
}

#[test]
fn checksum_offloaded_packets_skip_only_the_tcp_checksum() {
    let mut s = stack(config());
    s.listen(80).unwrap();
    let server = SocketAddr::new(us4(), 80);
    // The kernel's partial checksum: the field holds something else than the sum.
    let mut p = packet(peer4(1234), server, SYN, 5000, 0, &[]);
    p[20 + 16] ^= 0x55;
    s.handle_packet_checksum_offloaded(T, &p);
    let synack = poll_one(&mut s);
    assert_eq!(synack.flags, TcpFlags(SYN | ACK));
    assert_eq!(synack.ack, 5001);
    assert_eq!(s.counters().drop_bad_checksum, 0);
    // The IPv4 header checksum is still checked.
    let mut q = packet(peer4(1235), server, SYN, 7000, 0, &[]);
    q[10] ^= 0x55;
    s.handle_packet_checksum_offloaded(T, &q);
    assert_silent(&mut s);
    assert_eq!(s.counters().drop_bad_checksum, 1);
}

#[test]
fn backlog_bounds_pending_connections() {
    // Without SYN cookies (`syn_cookies.rs` has the listener with them).
    let mut s = stack(Config {
        backlog: 2,
        syn_cookies: SynCookies::Off,
        ..config()
    });
    s.listen(80).unwrap();
    let server = SocketAddr::new(us4(), 80);
    for port in [1001, 1002, 1003] {
        s.handle_packet(T, &packet(peer4(port), server, SYN, 5000, 0, &[]));
    }
    let a = poll_one(&mut s);
    let b = poll_one(&mut s);
    assert_silent(&mut s);
    assert_eq!(a.flags, TcpFlags(SYN | ACK));
    assert_eq!(b.flags, TcpFlags(SYN | ACK));
    let mut to = [a.dst.port(), b.dst.port()];
    to.sort();
    assert_eq!(to, [1001, 1002]);
    assert_eq!(s.counters().drop_backlog_full, 1);
    assert_eq!(s.connection_count(), 2);
    // Completing one handshake frees a backlog slot.
    let iss = if a.dst.port() == 1001 { a.seq } else { b.seq };
    s.handle_packet(T, &packet(peer4(1001), server, ACK, 5001, iss + 1, &[]));
    assert!(matches!(
        events(&mut s).as_slice(),
        [Event::Accepted { .. }]
    ));
    s.handle_packet(T, &packet(peer4(1004), server, SYN, 5000, 0, &[]));
    let c = poll_one(&mut s);
    assert_eq!((c.flags, c.dst.port()), (TcpFlags(SYN | ACK), 1004));
    assert_eq!(s.counters().drop_backlog_full, 1);
}

#[test]
fn listen_twice_is_addr_in_use() {
    let mut s = stack(config());
    assert_eq!(s.listen(80), Ok(()));
    assert_eq!(s.listen(80), Err(Error::AddrInUse));
    assert_eq!(s.listen(0), Err(Error::AddrInUse));
    s.unlisten(80);
    assert_eq!(s.listen(80), Ok(()));
}

#[test]
fn connect_without_local_address_fails() {
    let mut s = Stack::new(config());
    assert_eq!(s.connect(T, None, peer4(80)), Err(Error::NoLocalAddress));
    s.add_address(us4());
    // An IPv4 address does not serve an IPv6 remote.
    assert_eq!(s.connect(T, None, peer6(80)), Err(Error::NoLocalAddress));
    assert!(s.connect(T, None, peer4(80)).is_ok());
}

#[test]
fn active_open_through_the_stack() {
    let mut s = stack(config());
    let id = s.connect(T, None, peer4(80)).unwrap();
    assert_eq!(s.state(id), Some(State::SynSent));
    let syn = poll_one(&mut s);
    assert_eq!(syn.flags, TcpFlags(SYN));
    assert_eq!(syn.src.ip(), us4());
    assert!(syn.src.port() >= 49152);
    assert_eq!(syn.dst, peer4(80));
    s.handle_packet(
        T,
        &packet(peer4(80), syn.src, SYN | ACK, 3000, syn.seq + 1, &[]),
    );
    assert_eq!(events(&mut s), [Event::Connected(id)]);
    let ack = poll_one(&mut s);
    assert_eq!(
        (ack.flags, ack.seq, ack.ack),
        (TcpFlags(ACK), syn.seq + 1, 3001)
    );
    assert_eq!(s.send(id, b"hello"), Ok(5));
    let d = poll_one(&mut s);
    assert_eq!((d.seq, d.payload.as_slice()), (syn.seq + 1, &b"hello"[..]));
}

#[test]
fn ipv6_passive_open_and_data() {
    let mut s = stack(config());
    s.listen(443).unwrap();
    let server = SocketAddr::new(us6(), 443);
    let (iss, id) = accept(&mut s, peer6(5555), server);
    s.handle_packet(
        T,
        &packet(peer6(5555), server, ACK | PSH, 1001, iss + 1, b"over v6"),
    );
    assert_eq!(events(&mut s), [Event::Readable(id)]);
    let ack = poll_one(&mut s);
    assert_eq!((ack.flags, ack.ack), (TcpFlags(ACK), 1008));
    assert_eq!((ack.src, ack.dst), (server, peer6(5555)));
    let mut buf = [0u8; 32];
    assert_eq!(s.recv(id, &mut buf), Ok(7));
    assert_eq!(&buf[..7], b"over v6");
}

/// `recv_with` hands the bytes over in place, takes only what the reader
/// took, and ends as `recv` does (`Finished` after the peer's FIN).
#[test]
fn recv_with_hands_over_the_bytes_in_place() {
    let mut s = stack(config());
    s.listen(443).unwrap();
    let server = SocketAddr::new(us4(), 443);
    let (iss, id) = accept(&mut s, peer4(5555), server);
    s.handle_packet(
        T,
        &packet(
            peer4(5555),
            server,
            ACK | PSH,
            1001,
            iss + 1,
            b"hello, world",
        ),
    );
    let mut seen = Vec::new();
    let took = s.recv_with(id, 5, |p| {
        seen.extend_from_slice(p);
        p.len()
    });
    assert_eq!((took, &seen[..]), (Ok(5), &b"hello"[..]));
    assert_eq!(s.recv_available(id), Ok(7));
    // A reader that takes nothing leaves everything.
    assert_eq!(s.recv_with(id, usize::MAX, |_| 0), Ok(0));
    let mut rest = Vec::new();
    let took = s.recv_with(id, usize::MAX, |p| {
        rest.extend_from_slice(p);
        p.len()
    });
    assert_eq!((took, &rest[..]), (Ok(7), &b", world"[..]));
    s.handle_packet(
        T,
        &packet(peer4(5555), server, ACK | PSH | FIN, 1013, iss + 1, b"!"),
    );
    // Bytes before the FIN that a reader declines are not the end.
    assert_eq!(s.recv_with(id, usize::MAX, |_| 0), Ok(0));
    assert_eq!(s.recv_with(id, usize::MAX, |p| p.len()), Ok(1));
    assert_eq!(
        s.recv_with(id, usize::MAX, |p| p.len()),
        Err(Error::Finished)
    );
}

/// A `DirectReader` takes in-order bytes straight from the segment: what it
/// takes is read (no `Readable`), what it declines waits for `recv`, and it
/// is skipped while that is so, so that the stream stays in order; an
/// out-of-order segment waits in the buffer too. Released, the reader is
/// dropped.
#[test]
fn direct_reader_takes_in_order_bytes_and_leaves_the_rest() {
    use std::sync::{Arc, Mutex};
    let mut s = stack(config());
    s.listen(443).unwrap();
    let server = SocketAddr::new(us4(), 443);
    let (iss, id) = accept(&mut s, peer4(5555), server);
    // Takes at most `limit` bytes a call.
    let seen = Arc::new(Mutex::new((Vec::<u8>::new(), usize::MAX)));
    let held = seen.clone();
    let reader = move |p: &[u8]| {
        let mut g = held.lock().unwrap();
        let n = p.len().min(g.1);
        g.0.extend_from_slice(&p[..n]);
        n
    };
    assert!(s
        .set_direct_reader(id, Some(Box::new(reader)))
        .unwrap()
        .is_none());
    let data = |seq: u32, bytes: &[u8]| packet(peer4(5555), server, ACK | PSH, seq, iss + 1, bytes);
    s.handle_packet(T, &data(1001, b"hello"));
    assert_eq!(seen.lock().unwrap().0, b"hello");
    assert_eq!(s.recv_available(id), Ok(0));
    assert!(events(&mut s).is_empty(), "nothing to read");
    // Acknowledged all the same, the window as open as before.
    let ack = poll_one(&mut s);
    assert_eq!(ack.ack, 1006);
    // Part taken: the rest waits, and later bytes go behind it.
    seen.lock().unwrap().1 = 3;
    s.handle_packet(T, &data(1006, b", world"));
    assert_eq!(seen.lock().unwrap().0, b"hello, w");
    assert_eq!(events(&mut s), [Event::Readable(id)]);
    seen.lock().unwrap().1 = usize::MAX;
    s.handle_packet(T, &data(1013, b"!"));
    assert_eq!(
        seen.lock().unwrap().0,
        b"hello, w",
        "skipped while bytes wait"
    );
    let mut buf = [0u8; 16];
    assert_eq!(s.recv(id, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"orld!");
    // Out of order: buffered; the gap filled, the reader takes the filler
    // and the rest is read as usual.
    s.handle_packet(T, &data(1017, b"ZZ"));
    s.handle_packet(T, &data(1014, b"abc"));
    assert_eq!(seen.lock().unwrap().0, b"hello, w");
    assert_eq!(s.recv(id, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"abcZZ");
    s.handle_packet(T, &data(1019, b"end"));
    assert_eq!(seen.lock().unwrap().0, b"hello, wend");
    // Taken away, it is given back; given again and released, dropped.
    let r = s.set_direct_reader(id, None).unwrap();
    assert!(r.is_some());
    s.set_direct_reader(id, r).unwrap();
    assert_eq!(Arc::strong_count(&seen), 2);
    s.release(id).unwrap();
    assert_eq!(Arc::strong_count(&seen), 1, "dropped with the handle");
}

#[test]
fn ipv6_syn_to_closed_port_gets_rst_ack() {
    let mut s = stack(config());
    let server = SocketAddr::new(us6(), 81);
    s.handle_packet(T, &packet(peer6(5555), server, SYN, 42, 0, &[]));
    let rst = poll_one(&mut s);
    assert_eq!((rst.flags, rst.seq, rst.ack), (TcpFlags(RST | ACK), 0, 43));
    assert_eq!((rst.src, rst.dst), (server, peer6(5555)));
}

#[test]
fn abort_sends_rst() {
    let mut s = stack(config());
    s.listen(80).unwrap();
    let server = SocketAddr::new(us4(), 80);
    let (iss, id) = accept(&mut s, peer4(1234), server);
    assert_eq!(s.abort(id), Ok(()));
    let rst = poll_one(&mut s);
    assert_eq!((rst.flags, rst.seq), (TcpFlags(RST), iss + 1));
    assert_eq!((rst.src, rst.dst), (server, peer4(1234)));
    assert_silent(&mut s);
    assert_eq!(s.state(id), None);
    assert_eq!(s.abort(id), Err(Error::InvalidConnection));
    assert_eq!(s.connection_count(), 0);
}

#[test]
fn release_with_unread_data_sends_rst() {
    let mut s = stack(config());
    s.listen(80).unwrap();
    let server = SocketAddr::new(us4(), 80);
    let (iss, id) = accept(&mut s, peer4(1234), server);
    s.handle_packet(
        T,
        &packet(peer4(1234), server, ACK | PSH, 1001, iss + 1, b"unread"),
    );
    assert_eq!(poll_one(&mut s).ack, 1007);
    assert_eq!(s.release(id), Ok(()));
    let rst = poll_one(&mut s);
    assert_eq!((rst.flags, rst.seq), (TcpFlags(RST), iss + 1));
    assert_silent(&mut s);
    assert_eq!(s.connection_count(), 0);
    assert_eq!(s.recv(id, &mut [0u8; 8]), Err(Error::InvalidConnection));
}

#[test]
fn peer_rst_reported_as_closed_event() {
    let mut s = stack(config());
    s.listen(80).unwrap();
    let server = SocketAddr::new(us4(), 80);
    let (_, id) = accept(&mut s, peer4(1234), server);
    s.handle_packet(T, &packet(peer4(1234), server, RST, 1001, 0, &[]));
    assert_eq!(
        events(&mut s),
        [Event::Closed {
            id,
            reason: CloseReason::Reset
        }]
    );
    assert_eq!(s.recv(id, &mut [0u8; 8]), Err(Error::Reset));
    // The tuple is free: a segment for it is now answered by the stack.
    s.handle_packet(T, &packet(peer4(1234), server, ACK, 1001, 77, &[]));
    assert_eq!(poll_one(&mut s).flags, TcpFlags(RST));
}

/// A packet claiming one of our own addresses as its source is a spoof: it is
/// dropped and counted, never answered (a RST would go to ourselves, or be
/// reflected at whoever owns the address elsewhere).
#[test]
fn packets_from_our_own_addresses_are_dropped() {
    let mut s = stack(config());
    s.listen(80).unwrap();
    let us = SocketAddr::new(us4(), 80);
    s.handle_packet(
        T,
        &packet(
            SocketAddr::new(us6(), 5),
            SocketAddr::new(us6(), 81),
            SYN,
            1,
            0,
            &[],
        ),
    );
    s.handle_packet(T, &packet(SocketAddr::new(us4(), 4000), us, SYN, 1, 0, &[]));
    s.handle_packet(
        T,
        &packet(
            SocketAddr::new(us4(), 4000),
            SocketAddr::new(us4(), 9),
            ACK,
            1,
            1,
            &[],
        ),
    );
    assert_silent(&mut s);
    assert_eq!(s.counters().drop_own_source, 3);
    assert_eq!(s.connection_count(), 0);
}

/// RSTs in answer to segments (here: ACKs to a closed port, a spray from
/// spoofed sources) are rate-limited stack-wide: a burst of a tenth of a
/// second's worth, then the configured rate.
#[test]
fn rsts_to_closed_ports_are_rate_limited() {
    let mut c = config();
    c.limits.rsts = 100;
    let mut s = stack(c);
    let to = SocketAddr::new(us4(), 7777);
    for i in 0..1000u32 {
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i)), 1024 + i as u16);
        s.handle_packet(T, &packet(from, to, ACK, i, i, &[]));
    }
    let mut rsts = 0;
    while let Some(o) = poll(&mut s) {
        assert!(o.flags.rst());
        rsts += 1;
    }
    assert_eq!(rsts, 10, "the burst");
    assert_eq!(s.counters().drop_rst_rate_limited, 990);
    // A second later the bucket has refilled, up to its burst.
    let later = Instant::from_millis(2_000);
    for i in 0..1000u32 {
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a02_0000 + i)), 1024 + i as u16);
        s.handle_packet(later, &packet(from, to, ACK, i, i, &[]));
    }
    let mut buf = vec![0u8; 2048];
    let mut rsts = 0;
    while s.poll_transmit(later, &mut buf).is_some() {
        rsts += 1;
    }
    assert_eq!(rsts, 10, "refilled only up to the burst");
}

const FIN: u8 = TcpFlags::FIN;

/// We close first; the peer acknowledges and closes too: our connection waits
/// out TIME_WAIT. Released, it is reduced to a record; the ACK of its last
/// FIN is the stack's one output. The stack's ISS.
fn close_into_time_wait(s: &mut Stack, client: SocketAddr, server: SocketAddr) -> u32 {
    let (iss, id) = accept(s, client, server);
    s.shutdown(id).unwrap();
    let fin = poll_one(s);
    assert_eq!((fin.flags, fin.seq), (TcpFlags(FIN | ACK), iss + 1));
    s.handle_packet(T, &packet(client, server, FIN | ACK, 1001, iss + 2, &[]));
    s.release(id).unwrap();
    let ack = poll_one(s);
    assert_eq!(
        (ack.flags, ack.seq, ack.ack),
        (TcpFlags(ACK), iss + 2, 1002)
    );
    assert_silent(s);
    events(s);
    iss
}

/// A connection in TIME_WAIT keeps a small record, not its whole self: it
/// acknowledges a FIN sent again (once per half second), ignores RSTs (RFC
/// 1337), answers a SYN with a challenge ACK, holds the 4-tuple for 2 MSL
/// and then goes; the memory budget counts it.
#[test]
fn time_wait_is_a_small_record_that_still_answers() {
    let mut s = stack(config());
    s.listen(80).unwrap();
    let (client, server) = (peer4(1234), SocketAddr::new(us4(), 80));
    let iss = close_into_time_wait(&mut s, client, server);
    assert_eq!(s.connection_count(), 0);
    assert_eq!(s.time_wait_records(), 1);
    let used = s.memory_used();
    assert!(
        used > 0 && used < 512,
        "a TIME_WAIT record costs {used} bytes"
    );

    // Our last ACK was lost: the peer's FIN again.
    let fin_again = packet(client, server, FIN | ACK, 1001, iss + 2, &[]);
    s.handle_packet(T, &fin_again);
    let ack = poll_one(&mut s);
    assert_eq!((ack.src, ack.dst), (server, client));
    assert_eq!(
        (ack.flags, ack.seq, ack.ack),
        (TcpFlags(ACK), iss + 2, 1002)
    );
    // Replayed at once: not answered again.
    s.handle_packet(T, &fin_again);
    assert_silent(&mut s);
    // RSTs do not end it; nor does anything else get a RST.
    s.handle_packet(T, &packet(client, server, RST, 1002, 0, &[]));
    s.handle_packet(T, &packet(client, server, ACK, 1002, iss + 2, b"late"));
    assert_silent(&mut s);
    assert_eq!(s.time_wait_records(), 1);
    // A SYN on the same 4-tuple: a challenge ACK.
    s.handle_packet(T, &packet(client, server, SYN, 5000, 0, &[]));
    let ch = poll_one(&mut s);
    assert_eq!((ch.flags, ch.seq, ch.ack), (TcpFlags(ACK), iss + 2, 1002));
    assert_silent(&mut s);

    // 2 MSL (the FIN restarted it) later it is gone, and the port answers
    // for itself again.
    let mut end = T;
    while s.time_wait_records() > 0 {
        end = s.poll_timeout().expect("the record's expiry is a timer");
        s.handle_timeout(end);
    }
    assert!(end >= T + config().tcp.msl * 2, "{end:?}");
    assert_eq!(s.memory_used(), 0);
    assert_eq!(s.poll_timeout(), None);
    s.handle_packet(end, &fin_again);
    assert_eq!(poll_one(&mut s).flags, TcpFlags(RST));
}

/// The records are bounded: past `max_time_wait` a closing connection skips
/// TIME_WAIT (counted), as Linux's `tcp_max_tw_buckets`.
#[test]
fn time_wait_records_are_bounded() {
    let mut s = stack(Config {
        max_time_wait: 2,
        ..config()
    });
    s.listen(80).unwrap();
    let server = SocketAddr::new(us4(), 80);
    for port in 1..=5 {
        close_into_time_wait(&mut s, peer4(port), server);
    }
    assert_eq!(s.connection_count(), 0);
    assert_eq!(s.time_wait_records(), 2);
    assert_eq!(s.counters().time_wait_overflow, 3);
}

// ----- the transparent listener (a gateway answering as any destination) -----

fn elsewhere4(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34)), port)
}

fn elsewhere6(port: u16) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xbeef, 0, 0, 0, 0, 7)),
        port,
    )
}

#[test]
fn a_transparent_listener_answers_as_any_destination() {
    let mut s = stack(config());
    s.listen_on(Listen::Transparent).unwrap();
    for (client, server) in [
        (peer4(40000), elsewhere4(80)),
        (peer4(40001), elsewhere4(443)),
        (peer6(40000), elsewhere6(8080)),
    ] {
        s.handle_packet(T, &packet(client, server, SYN, 1000, 0, &[]));
        let synack = poll_one(&mut s);
        assert_eq!((synack.src, synack.dst), (server, client));
        assert_eq!(synack.flags, TcpFlags(SYN | ACK));
        let iss = synack.seq;
        s.handle_packet(
            T,
            &packet(client, server, ACK | PSH, 1001, iss + 1, b"GET /"),
        );
        let id = match events(&mut s).as_slice() {
            [Event::Accepted {
                id,
                on: Listen::Transparent,
                local,
                remote,
            }, Event::Readable(_)] => {
                assert_eq!((*local, *remote), (server, client));
                *id
            }
            other => panic!("expected Accepted and Readable, got {other:?}"),
        };
        let mut buf = [0u8; 16];
        assert_eq!(s.recv(id, &mut buf), Ok(5));
        assert_eq!(&buf[..5], b"GET /");
        assert_eq!(s.send(id, b"200"), Ok(3));
        let out = poll_one(&mut s);
        assert_eq!(
            (out.src, out.dst, out.payload.as_slice()),
            (server, client, &b"200"[..])
        );
    }
}

#[test]
fn without_a_transparent_listener_others_traffic_is_not_answered() {
    let mut s = stack(config());
    s.listen(80).unwrap();
    s.handle_packet(T, &packet(peer4(40000), elsewhere4(80), SYN, 1000, 0, &[]));
    s.handle_packet(T, &packet(peer4(40000), elsewhere4(80), ACK, 1000, 7, &[]));
    assert_silent(&mut s);
    assert_eq!(s.counters().drop_not_for_us, 2);
    // Once it is gone, no more either.
    s.listen_on(Listen::Transparent).unwrap();
    s.unlisten_on(Listen::Transparent);
    s.handle_packet(T, &packet(peer4(40000), elsewhere4(80), SYN, 1000, 0, &[]));
    assert_silent(&mut s);
}

#[test]
fn with_a_transparent_listener_our_own_ports_still_need_theirs() {
    let mut s = stack(config());
    s.listen_on(Listen::Transparent).unwrap();
    // One of our addresses, no listener: refused as ever.
    let us = SocketAddr::new(us4(), 80);
    s.handle_packet(T, &packet(peer4(40000), us, SYN, 1000, 0, &[]));
    let rst = poll_one(&mut s);
    assert_eq!((rst.src, rst.flags), (us, TcpFlags(RST | ACK)));
    // A stray segment to someone else's unknown connection: answered with a
    // RST as that host would.
    let there = elsewhere4(80);
    s.handle_packet(T, &packet(peer4(40000), there, ACK, 1000, 7, &[]));
    let rst = poll_one(&mut s);
    assert_eq!((rst.src, rst.flags, rst.seq), (there, TcpFlags(RST), 7));
}

#[test]
fn a_transparent_connection_is_plain_tcp() {
    let mut s = stack(config());
    s.listen_on(Listen::Transparent).unwrap();
    // A SYN with MP_CAPABLE (v1, HMAC-SHA256): the stack cannot speak for the
    // destination's other addresses, so it answers without MPTCP.
    let (client, server) = (peer4(40000), elsewhere4(80));
    let mut r = TcpRepr::new(client.port(), server.port());
    r.flags = TcpFlags(SYN);
    r.seq = SeqNumber(1000);
    r.window = 65535;
    r.mss = Some(1000);
    assert!(r.unknown.push(wire::TCPOPT_MPTCP, &[0x01, 0x01]));
    let mut buf = vec![0u8; 2048];
    let n = wire::emit_packet(client.ip(), server.ip(), 64, &r, &[], &mut buf).unwrap();
    s.handle_packet(T, &buf[..n]);
    let mut out = vec![0u8; 2048];
    let n = s.poll_transmit(T, &mut out).expect("a SYN/ACK");
    let (ip, bytes) = IpRepr::parse(&out[..n]).unwrap();
    let synack = TcpRepr::parse(ip.src, ip.dst, bytes, true).unwrap();
    assert!(synack.flags.syn() && synack.flags.ack());
    assert!(
        synack.unknown.iter().all(|(k, _)| k != wire::TCPOPT_MPTCP),
        "no MPTCP option on the SYN/ACK"
    );
}

/// A client that lost its half-open connection and comes back from the same port with
/// a new ISN: as in RFC 793's SYN-RECEIVED (and Linux's `tcp_check_req`), the
/// unacceptable SYN gets an ACK, not a second SYN/ACK; the client's RST at that ACK
/// clears the embryonic connection, and its next SYN is answered.
#[test]
fn a_new_syn_on_a_half_open_tuple_is_acked_and_its_rst_clears_the_way() {
    let mut s = stack(config());
    s.listen(80).unwrap();
    let server = SocketAddr::new(us4(), 80);
    let client = peer4(4242);
    s.handle_packet(T, &packet(client, server, SYN, 1000, 0, &[]));
    let synack = poll_one(&mut s);
    assert_eq!((synack.flags, synack.ack), (TcpFlags(SYN | ACK), 1001));
    // A retransmitted SYN (same ISN) gets the SYN/ACK again.
    s.handle_packet(T, &packet(client, server, SYN, 1000, 0, &[]));
    let again = poll_one(&mut s);
    assert_eq!(
        (again.flags, again.seq, again.ack),
        (synack.flags, synack.seq, 1001)
    );
    assert_silent(&mut s);

    s.handle_packet(T, &packet(client, server, SYN, 90_000, 0, &[]));
    let ack = poll_one(&mut s);
    assert_eq!(
        (ack.flags, ack.seq, ack.ack),
        (TcpFlags(ACK), synack.seq + 1, 1001)
    );
    assert_silent(&mut s);
    assert_eq!(s.connection_count(), 1);

    s.handle_packet(T, &packet(client, server, RST, ack.ack, 0, &[]));
    assert_silent(&mut s);
    assert_eq!(s.connection_count(), 0);

    s.handle_packet(T, &packet(client, server, SYN, 90_000, 0, &[]));
    let fresh = poll_one(&mut s);
    assert_eq!((fresh.flags, fresh.ack), (TcpFlags(SYN | ACK), 90_001));
    assert!(events(&mut s).is_empty());
}
