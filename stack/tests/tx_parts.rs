//! `Stack::poll_transmit_parts` (headers in the buffer, payload borrowed
//! from where the connection holds it, for a gather write) sends exactly
//! what `poll_transmit_gso` sends: two identical pairs of engines run the
//! same transfer, one sender polled each way, and every packet is compared
//! byte for byte once put together; TCP and MPTCP, with and without
//! super-packets, and with retransmissions from a lossy start.

mod sim;

use mptun_stack::wire::{gso, TxChecksum};
use mptun_stack::{Config, Instant, Stack, TxPacket};
use sim::complete_tcp_checksum;
use std::net::SocketAddr;

fn stack(seed: u64, addr: &str, mptcp: bool, tweak: fn(&mut Config)) -> Stack {
    let mut c = Config {
        seed: seed.into(),
        ..Config::default()
    };
    c.mptcp.enabled = mptcp;
    c.tcp.tx_checksum = TxChecksum::Partial;
    tweak(&mut c);
    let mut s = Stack::new(c);
    s.add_address(addr.parse().unwrap());
    s
}

/// Hand `pkt` to `to` as the wire would carry it; `drop` loses it.
fn deliver(to: &mut Stack, now: Instant, pkt: &[u8], t: TxPacket, drop: bool) {
    if drop {
        return;
    }
    match t.segment_size {
        Some(size) => {
            let mut scratch = Vec::new();
            gso::segment(pkt, size, &mut scratch, |p| to.handle_packet(now, p)).unwrap();
        }
        None => {
            let mut p = pkt.to_vec();
            complete_tcp_checksum(&mut p);
            to.handle_packet(now, &p);
        }
    }
}

struct Pair {
    client: Stack,
    server: Stack,
    cid: mptun_stack::ConnId,
    /// Packets the client sent.
    sent: usize,
    sid: Option<mptun_stack::ConnId>,
    received: Vec<u8>,
}

fn pair(mptcp: bool, tweak: fn(&mut Config)) -> Pair {
    let mut client = stack(1, "10.0.0.1", mptcp, tweak);
    let mut server = stack(2, "10.0.0.2", mptcp, tweak);
    server.listen(80).unwrap();
    let remote: SocketAddr = "10.0.0.2:80".parse().unwrap();
    let cid = client
        .connect(Instant::from_millis(1), None, remote)
        .unwrap();
    Pair {
        client,
        server,
        cid,
        sent: 0,
        sid: None,
        received: Vec::new(),
    }
}

/// One round of a pair: the client's packets (polled whole, or in parts
/// and put together) to the server, the server's back, the server reading
/// all. Returns the client's packets, and how many came in parts.
fn round(
    p: &mut Pair,
    now: Instant,
    burst: usize,
    parts: bool,
    lose: &dyn Fn(usize) -> bool,
) -> (Vec<Vec<u8>>, usize) {
    for s in [&mut p.client, &mut p.server] {
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
    }
    let mut buf = vec![0u8; 65536];
    let mut sent = Vec::new();
    let mut by_parts = 0;
    loop {
        let t = if parts {
            let Some(x) = p.client.poll_transmit_parts(now, &mut buf, burst) else {
                break;
            };
            let (a, b) = x.payload;
            let whole = x.whole_len();
            let at = x.packet.len;
            if whole > at {
                by_parts += 1;
            }
            let (a, b) = (a.to_vec(), b.to_vec());
            buf[at..at + a.len()].copy_from_slice(&a);
            buf[at + a.len()..whole].copy_from_slice(&b);
            TxPacket {
                len: whole,
                ..x.packet
            }
        } else {
            let Some(t) = p.client.poll_transmit_gso(now, &mut buf, burst) else {
                break;
            };
            t
        };
        let pkt = buf[..t.len].to_vec();
        p.sent += 1;
        deliver(&mut p.server, now, &pkt, t, lose(p.sent));
        sent.push(pkt);
    }
    while let Some(n) = p.server.poll_transmit(now, &mut buf) {
        let mut pkt = buf[..n].to_vec();
        complete_tcp_checksum(&mut pkt);
        p.client.handle_packet(now, &pkt);
    }
    while let Some(ev) = p.server.poll_event() {
        if let mptun_stack::Event::Accepted { id, .. } = ev {
            p.sid = Some(id);
        }
    }
    if let Some(id) = p.sid {
        let mut sink = vec![0u8; 1 << 20];
        while let Ok(n @ 1..) = p.server.recv(id, &mut sink) {
            p.received.extend_from_slice(&sink[..n]);
        }
    }
    (sent, by_parts)
}

fn same_packets(mptcp: bool, burst: usize) {
    same_packets_with(mptcp, burst, |_| {});
}

/// The pair polled in parts, at the end.
fn same_packets_with(mptcp: bool, burst: usize, tweak: fn(&mut Config)) -> Pair {
    let (mut whole, mut parts) = (pair(mptcp, tweak), pair(mptcp, tweak));
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i * 7 + i / 1000) as u8)
        .collect();
    let mut at = [0usize; 2];
    let mut by_parts = 0;
    let mut packets = 0;
    for step in 0..100_000u64 {
        let now = Instant::from_millis(1 + step);
        for (k, p) in [&mut whole, &mut parts].into_iter().enumerate() {
            if at[k] < data.len() {
                at[k] += p.client.send(p.cid, &data[at[k]..]).unwrap_or(0);
            }
        }
        // Early packets are lost now and then: retransmissions come from
        // the buffers too.
        let lose = |i: usize| (10..100).contains(&i) && i % 7 == 3;
        let (a, _) = round(&mut whole, now, burst, false, &lose);
        let (b, n) = round(&mut parts, now, burst, true, &lose);
        assert_eq!(a.len(), b.len(), "step {step}: packet counts differ");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x, y, "step {step}: packet {i} differs");
        }
        by_parts += n;
        packets += a.len();
        if parts.received.len() == data.len() {
            break;
        }
    }
    assert_eq!(at, [data.len(); 2], "the transfers did not finish");
    assert!(parts.received == data, "the server got other bytes");
    assert!(
        by_parts > 10,
        "only {by_parts} of {packets} packets came in parts"
    );
    let info = parts.client.info(parts.cid).unwrap();
    assert!(
        info.segments_retransmitted > 0,
        "no retransmission: {info:?}"
    );
    parts
}

#[test]
fn tcp_segments_in_parts_are_the_same_packets() {
    same_packets(false, 1);
}

#[test]
fn tcp_super_packets_in_parts_are_the_same_packets() {
    same_packets(false, 44);
}

#[test]
fn mptcp_segments_in_parts_are_the_same_packets() {
    same_packets(true, 1);
}

#[test]
fn mptcp_super_packets_in_parts_are_the_same_packets() {
    same_packets(true, 44);
}

/// Under memory pressure the stack shrinks buffers after each packet (their
/// bytes may move): the payload is looked up after that.
#[test]
fn under_memory_pressure_parts_are_the_same_packets() {
    let tight = |c: &mut Config| c.max_memory = 384 * 1024;
    for mptcp in [false, true] {
        let p = same_packets_with(mptcp, 44, tight);
        let c = p.client.counters();
        assert!(c.memory_pressure > 0, "no pressure: {c:?}");
    }
}

/// With DSS checksums the mapping's checksum covers the payload sent apart.
#[test]
fn mptcp_with_dss_checksums_parts_are_the_same_packets() {
    same_packets_with(true, 44, |c| c.mptcp.checksum = true);
    same_packets_with(true, 1, |c| c.mptcp.checksum = true);
}
