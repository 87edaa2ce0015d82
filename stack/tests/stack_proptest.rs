//! Arbitrary and mutated packets thrown at a listening and a connected stack: the
//! engine must never panic, and must keep answering real traffic afterwards.

use mptun_stack::wire::{emit_packet, SeqNumber, TcpFlags, TcpRepr};
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
        seq in any::<u32>(),
        ack in any::<u32>(),
        payload in prop::collection::vec(any::<u8>(), 0..100),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        steps in 1usize..6,
    ) {
        let mut s = stack();
        let mut now = Instant::from_millis(1);
        // A real handshake first so mutated segments can hit a live connection.
        s.handle_packet(now, &valid_packet(TcpFlags::SYN, 1000, 0, &[]));
        drain(&mut s, now);
        for i in 0..steps {
            let mut p = valid_packet(flags, seq.wrapping_add(i as u32), ack, &payload);
            for &(at, x) in &flips {
                let n = p.len();
                p[at % n] ^= x;
            }
            s.handle_packet(now, &p);
            drain(&mut s, now);
            now += core::time::Duration::from_millis(50);
            s.handle_timeout(now);
            drain(&mut s, now);
        }
        // Still serving: a fresh SYN on another port gets a SYN/ACK.
        let mut r = TcpRepr::new(40001, 80);
        r.flags = TcpFlags(TcpFlags::SYN);
        r.seq = SeqNumber(5);
        r.window = 1000;
        let mut buf = vec![0u8; 200];
        let n = emit_packet(ip("10.0.0.1"), ip("10.0.0.2"), 64, &r, &[], &mut buf).unwrap();
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
