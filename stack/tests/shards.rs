//! Several stacks sharing a seed, addresses and connection limits: the
//! daemon's `--threads`, one stack per queue of a multiqueue TUN. Packets are
//! delivered here as the daemon does it (`Stack::steer`), starting at
//! whichever shard the "kernel" picked — on purpose often the wrong one.

use mptun_stack::{
    Config, EndpointFlags, Event, Instant, Shard, SharedCounts, Stack, Steer, TokenPrefix,
};
use std::net::SocketAddr;
use std::sync::Arc;

const COUNT: usize = 2;

fn shards(max_per_source: usize) -> Vec<Stack> {
    let counts = Arc::new(SharedCounts::new());
    (0..COUNT)
        .map(|i| {
            let mut c = Config {
                seed: 7u64.into(),
                ..Config::default()
            };
            c.mptcp.enabled = true;
            c.max_conns_per_source = max_per_source;
            c.shard = Shard {
                index: i as u16,
                count: COUNT as u16,
            };
            c.mptcp.token_prefix = TokenPrefix::nested(None, i as u32, 1);
            let mut s = Stack::sharing(c, counts.clone());
            s.add_address("10.0.0.2".parse().unwrap());
            s.listen(80).unwrap();
            s
        })
        .collect()
}

fn client() -> Stack {
    let mut c = Config {
        seed: 1u64.into(),
        ..Config::default()
    };
    c.mptcp.enabled = true;
    let mut s = Stack::new(c);
    s.add_address("10.0.0.1".parse().unwrap());
    s.add_endpoint(
        "10.0.1.1".parse().unwrap(),
        EndpointFlags {
            subflow: true,
            ..EndpointFlags::default()
        },
    );
    s
}

/// What the daemon's drivers do with a packet read on shard `first`'s
/// queue; returns the shard that took it.
fn deliver(shards: &mut [Stack], first: usize, now: Instant, pkt: &[u8]) -> usize {
    let to = match shards[first].steer(pkt) {
        Steer::Here => first,
        Steer::Join { token } => TokenPrefix::inner(None, 1, token) as usize,
        Steer::Stray => (0..COUNT)
            .filter(|&k| k != first)
            .find(|&k| shards[k].steer(pkt) == Steer::Here)
            .unwrap_or(first),
    };
    shards[to].handle_packet(now, pkt);
    to
}

/// Until nothing moves: the client's packets arrive on shard `pick(n)` for
/// the n-th packet; the shards' go straight to the client.
fn shuttle(c: &mut Stack, shards: &mut [Stack], now: Instant, pick: &mut dyn FnMut() -> usize) {
    let mut buf = vec![0u8; 2048];
    loop {
        let mut moved = false;
        while let Some(n) = c.poll_transmit(now, &mut buf) {
            deliver(shards, pick(), now, &buf[..n]);
            moved = true;
        }
        for s in shards.iter_mut() {
            while let Some(n) = s.poll_transmit(now, &mut buf) {
                c.handle_packet(now, &buf[..n]);
                moved = true;
            }
        }
        if !moved {
            return;
        }
    }
}

#[test]
fn joins_and_data_on_the_wrong_queue_reach_their_owner() {
    for first in 0..COUNT {
        let mut sh = shards(100);
        let mut c = client();
        let mut n = first;
        // Every other packet of the client's lands on the other shard.
        let mut pick = move || {
            n += 1;
            n % COUNT
        };
        let mut now = Instant::from_millis(1);
        let remote: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let cid = c.connect(now, None, remote).unwrap();
        shuttle(&mut c, &mut sh, now, &mut pick);
        let owner = (0..COUNT)
            .find(|&k| sh[k].connection_count() == 1)
            .expect("one shard took the connection");
        let sid = std::iter::from_fn(|| sh[owner].poll_event())
            .find_map(|e| match e {
                Event::Accepted { id, .. } => Some(id),
                _ => None,
            })
            .expect("accepted");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (mut sent, mut got) = (0, Vec::new());
        let mut buf = vec![0u8; 65536];
        for _ in 0..2000 {
            if sent < data.len() {
                sent += c.send(cid, &data[sent..]).unwrap_or(0);
            }
            now += core::time::Duration::from_millis(1);
            shuttle(&mut c, &mut sh, now, &mut pick);
            for s in sh.iter_mut() {
                s.handle_timeout(now);
            }
            c.handle_timeout(now);
            while let Ok(k) = sh[owner].recv(sid, &mut buf) {
                if k == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..k]);
            }
            if got.len() == data.len() && c.counters().mptcp_joins_established >= 1 {
                break;
            }
        }
        assert_eq!(got, data, "first {first}: the data arrived whole, in order");
        assert!(
            c.counters().mptcp_joins_established >= 1,
            "first {first}: the join was established"
        );
        let info = sh[owner].info(sid).unwrap();
        assert_eq!(
            info.subflows.len(),
            2,
            "first {first}: both subflows on the owner"
        );
        let token = info.mptcp.unwrap().local_token;
        assert_eq!(
            token >> 31,
            owner as u32,
            "first {first}: the token names its shard"
        );
        let other = 1 - owner;
        assert_eq!(sh[other].connection_count(), 0);
        assert_eq!(
            sh[other].counters().resets_sent,
            0,
            "first {first}: nothing refused"
        );
        assert_eq!(c.counters().resets_received, 0);
    }
}

#[test]
fn the_connection_limits_hold_over_all_shards() {
    let mut sh = shards(3);
    let mut c = client();
    let now = Instant::from_millis(1);
    let remote: SocketAddr = "10.0.0.2:80".parse().unwrap();
    // Connection i's packets all arrive on shard i % 2.
    let ids: Vec<_> = (0..4)
        .map(|i| {
            let id = c.connect(now, None, remote).unwrap();
            shuttle(&mut c, &mut sh, now, &mut || i % COUNT);
            id
        })
        .collect();
    let held: Vec<usize> = sh.iter().map(|s| s.connection_count()).collect();
    assert_eq!(held.iter().sum::<usize>(), 3, "{held:?}");
    assert!(held.iter().all(|&h| h >= 1), "spread over both: {held:?}");
    let refused = sh
        .iter()
        .map(|s| s.counters().drop_source_limit)
        .sum::<u64>();
    assert_eq!(refused, 1);
    assert_eq!(c.counters().resets_received, 1, "the fourth was reset");
    assert!(ids[..3]
        .iter()
        .all(|&id| c.state(id) == Some(mptun_stack::State::Established)));
}

#[test]
fn shards_pick_ephemeral_ports_of_their_own() {
    let mut sh = shards(100);
    let remote: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    for (k, s) in sh.iter_mut().enumerate() {
        for _ in 0..50 {
            let id = s.connect(Instant::from_millis(1), None, remote).unwrap();
            let (local, _) = s.endpoints_of(id).unwrap();
            assert_eq!(usize::from(local.port() - 49152) % COUNT, k, "{local}");
        }
    }
}

/// A destination unreachable about a connection one shard is opening goes
/// to that shard, wherever it arrived.
#[test]
fn an_icmp_error_is_steered_to_the_connection_it_quotes() {
    use mptun_stack::wire::{self, IpRepr};
    let mut sh = shards(100);
    let remote: SocketAddr = "10.0.0.1:80".parse().unwrap();
    let now = Instant::from_millis(1);
    let id = sh[1].connect(now, None, remote).unwrap();
    let mut buf = vec![0u8; 2000];
    let n = sh[1].poll_transmit(now, &mut buf).expect("a SYN");
    let syn = &buf[..n];
    let (ip, _) = IpRepr::parse(syn).unwrap();
    let quoted = &syn[..ip.header_len() + 8];
    let mut icmp = vec![0u8; 200];
    let router = "10.0.9.1".parse().unwrap();
    let k = wire::emit_unreachable(router, ip.src, 64, 1, quoted, &mut icmp).unwrap();
    let icmp = &icmp[..k];
    assert_eq!(sh[0].steer(icmp), Steer::Stray);
    assert_eq!(sh[1].steer(icmp), Steer::Here);
    assert_eq!(deliver(&mut sh, 0, now, icmp), 1);
    assert_eq!(sh[1].counters().icmp_unreachable, 1);
    assert!(sh[1]
        .info(id)
        .is_none_or(|i| i.state == mptun_stack::State::Closed));
}
