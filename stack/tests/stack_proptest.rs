//! Arbitrary and mutated packets thrown at a listening and a connected stack: the
//! engine must never panic, and must keep answering real traffic afterwards.

use mptun_stack::wire::checksum;
use mptun_stack::wire::{emit_packet, SeqNumber, TcpFlags, TcpRepr, IPPROTO_TCP};
use mptun_stack::{Config, Instant, Stack};
use proptest::prelude::*;
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A valid segment from the peer to our listener, to be mutated.
fn valid_packet(flags: u8, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let mut r = TcpRepr::new(40000, 80);
    r.flags = TcpFlags(flags);
    r.seq = SeqNumber(seq);
    r.ack = SeqNumber(ack);
    r.window = 1000;
    r.mss = Some(1460);
    r.sack_permitted = true;
    r.timestamp = Some((1, 0));
    r.window_scale = Some(7);
    let mut buf = vec![0u8; 1600];
    let n = emit_packet(ip("10.0.0.1"), ip("10.0.0.2"), 64, &r, &[payload], &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// `p` (IPv4, 20-byte header, from `valid_packet`) with TCP bytes (header,
/// options, payload) changed by `flips` *before* its TCP checksum is computed
/// again: the mutation reaches the engine's parsing and logic. (Flipping bytes
/// of a finished packet would only exercise the checksum check.)
fn mutate_then_checksum(mut p: Vec<u8>, flips: &[(usize, u8)]) -> Vec<u8> {
    const IP_HL: usize = 20;
    let tcp = &mut p[IP_HL..];
    let n = tcp.len();
    for &(at, x) in flips {
        let i = at % n;
        // The checksum field is recomputed below; flip something else.
        let i = if (16..18).contains(&i) { i - 4 } else { i };
        tcp[i] ^= x;
    }
    tcp[16..18].copy_from_slice(&[0, 0]);
    let acc = checksum::pseudo_header(ip("10.0.0.1"), ip("10.0.0.2"), IPPROTO_TCP, n as u32);
    let sum = !checksum::fold(u64::from(checksum::accumulate(acc, tcp)));
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    p
}

fn stack() -> Stack {
    let mut s = Stack::new(Config {
        seed: 1.into(),
        ..Config::default()
    });
    s.add_address(ip("10.0.0.2"));
    s.listen(80).unwrap();
    s
}

fn drain(s: &mut Stack, now: Instant) -> usize {
    let mut buf = vec![0u8; 2048];
    let mut n = 0;
    while s.poll_transmit(now, &mut buf).is_some() {
        n += 1;
        assert!(n < 10_000, "runaway transmit");
    }
    while s.poll_event().is_some() {}
    n
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..20)) {
        let mut s = stack();
        let mut now = Instant::from_millis(1);
        for p in &packets {
            s.handle_packet(now, p);
            drain(&mut s, now);
            now += core::time::Duration::from_millis(7);
            s.handle_timeout(now);
        }
    }

    #[test]
    fn mutated_segments_never_panic(
        flags in any::<u8>(),
        // Relative to what the connection expects, so that segments land in
        // (and around) the window rather than anywhere in 2^32.
        seq_off in -3000i32..3000,
        ack_off in -3000i32..3000,
        payload in prop::collection::vec(any::<u8>(), 0..100),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        steps in 1usize..6,
    ) {
        let mut s = stack();
        let mut now = Instant::from_millis(1);
        // A real handshake first so mutated segments can hit a live connection.
        s.handle_packet(now, &valid_packet(TcpFlags::SYN, 1000, 0, &[]));
        let mut out = vec![0u8; 2048];
        let len = s.poll_transmit(now, &mut out).expect("a SYN/ACK");
        let (iprepr, tcp) = mptun_stack::wire::IpRepr::parse(&out[..len]).unwrap();
        let iss = TcpRepr::parse(iprepr.src, iprepr.dst, tcp, true).unwrap().seq;
        drain(&mut s, now);
        s.handle_packet(now, &valid_packet(TcpFlags::ACK, 1001, iss.0.wrapping_add(1), &[]));
        drain(&mut s, now);
        let seq = 1001u32.wrapping_add(seq_off as u32);
        let ack = iss.0.wrapping_add(1).wrapping_add(ack_off as u32);
        for i in 0..steps {
            let p = valid_packet(flags, seq.wrapping_add(i as u32), ack, &payload);
            let p = mutate_then_checksum(p, &flips);
            s.handle_packet(now, &p);
            drain(&mut s, now);
            now += core::time::Duration::from_millis(50);
            s.handle_timeout(now);
            drain(&mut s, now);
        }
        // Every mutated segment got past the checksum check.
        prop_assert_eq!(s.counters().drop_bad_checksum, 0);
        // Still serving: a fresh SYN from another host gets a SYN/ACK. (Not from
        // 10.0.0.1: a flipped source port can make the mutated segment a SYN from
        // any of its ports, and a new SYN on that half-open tuple rightly gets an
        // ACK — `endpoint::a_new_syn_on_a_half_open_tuple_is_acked...`.)
        let mut r = TcpRepr::new(40001, 80);
        r.flags = TcpFlags(TcpFlags::SYN);
        r.seq = SeqNumber(5);
        r.window = 1000;
        let mut buf = vec![0u8; 200];
        let n = emit_packet(ip("10.0.0.3"), ip("10.0.0.2"), 64, &r, &[], &mut buf).unwrap();
        s.handle_packet(now, &buf[..n]);
        let mut out = vec![0u8; 2048];
        let mut saw_synack = false;
        while let Some(len) = s.poll_transmit(now, &mut out) {
            let (iprepr, tcp) = mptun_stack::wire::IpRepr::parse(&out[..len]).unwrap();
            let seg = TcpRepr::parse(iprepr.src, iprepr.dst, tcp, true).unwrap();
            if seg.dst_port == 40001 && seg.flags.syn() && seg.flags.ack() {
                saw_synack = true;
            }
        }
        prop_assert!(saw_synack);
    }
}
