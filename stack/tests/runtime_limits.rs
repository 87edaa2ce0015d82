//! `Stack::set_limits` on a live stack (a daemon's reload): lower limits
//! refuse what comes next and keep what exists; higher ones admit again.

use mptun_stack::memory::Pressure;
use mptun_stack::{Config, EndpointFlags, Event, Instant, Stack};
use std::net::SocketAddr;

const SERVER: &str = "10.0.0.2:80";

fn server() -> Stack {
    let mut c = Config {
        seed: 7u64.into(),
        ..Config::default()
    };
    c.mptcp.enabled = true;
    let mut s = Stack::new(c);
    s.add_address("10.0.0.2".parse().unwrap());
    s.listen(80).unwrap();
    s
}

fn client() -> Stack {
    let mut c = Config {
        seed: 1u64.into(),
        ..Config::default()
    };
    c.mptcp.enabled = true;
    let mut s = Stack::new(c);
    s.add_address("10.0.0.1".parse().unwrap());
    s
}

/// Until nothing moves.
fn shuttle(c: &mut Stack, s: &mut Stack, now: Instant) {
    let mut buf = vec![0u8; 2048];
    loop {
        let mut moved = false;
        while let Some(n) = c.poll_transmit(now, &mut buf) {
            s.handle_packet(now, &buf[..n]);
            moved = true;
        }
        while let Some(n) = s.poll_transmit(now, &mut buf) {
            c.handle_packet(now, &buf[..n]);
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

fn accepted(s: &mut Stack) -> Vec<mptun_stack::ConnId> {
    std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            Event::Accepted { id, .. } => Some(id),
            _ => None,
        })
        .collect()
}

/// Server-to-client bytes still flow on `sid`.
fn still_serves(
    c: &mut Stack,
    s: &mut Stack,
    cid: mptun_stack::ConnId,
    sid: mptun_stack::ConnId,
    now: Instant,
) {
    assert_eq!(s.send(sid, b"still here").unwrap(), 10);
    shuttle(c, s, now);
    let mut buf = [0u8; 64];
    assert_eq!(c.recv(cid, &mut buf).unwrap(), 10);
    assert_eq!(&buf[..10], b"still here");
}

#[test]
fn a_lower_connection_limit_keeps_the_connections_and_refuses_new_ones() {
    let (mut c, mut s) = (client(), server());
    let now = Instant::from_millis(1);
    let remote: SocketAddr = SERVER.parse().unwrap();
    let cids = [
        c.connect(now, None, remote).unwrap(),
        c.connect(now, None, remote).unwrap(),
    ];
    shuttle(&mut c, &mut s, now);
    let sids = accepted(&mut s);
    assert_eq!(sids.len(), 2);

    let mut l = s.limits();
    assert_eq!(l.max_connections, Config::default().max_connections);
    l.max_connections = 1;
    s.set_limits(l);
    assert_eq!(s.limits(), l);
    assert_eq!(s.connection_count(), 2, "nothing dropped");
    // Both connections are matched to the server's by their order.
    for (cid, sid) in cids.into_iter().zip(sids) {
        still_serves(&mut c, &mut s, cid, sid, now);
    }

    let refused_before = s.counters().drop_backlog_full;
    c.connect(now, None, remote).unwrap();
    shuttle(&mut c, &mut s, now);
    assert!(accepted(&mut s).is_empty());
    assert_eq!(s.counters().drop_backlog_full, refused_before + 1);
    assert_eq!(s.connection_count(), 2);

    l.max_connections = 10;
    s.set_limits(l);
    c.connect(now, None, remote).unwrap();
    shuttle(&mut c, &mut s, now);
    assert_eq!(accepted(&mut s).len(), 1);
}

#[test]
fn a_lower_per_source_limit_refuses_that_source_only_from_now_on() {
    let (mut c, mut s) = (client(), server());
    let now = Instant::from_millis(1);
    let remote: SocketAddr = SERVER.parse().unwrap();
    for _ in 0..3 {
        c.connect(now, None, remote).unwrap();
    }
    shuttle(&mut c, &mut s, now);
    assert_eq!(accepted(&mut s).len(), 3);
    let mut l = s.limits();
    l.max_conns_per_source = 2;
    s.set_limits(l);
    c.connect(now, None, remote).unwrap();
    shuttle(&mut c, &mut s, now);
    assert!(accepted(&mut s).is_empty());
    assert_eq!(s.counters().drop_source_limit, 1);
    assert_eq!(s.connection_count(), 3);
}

#[test]
fn a_smaller_memory_budget_is_pressure_not_a_drop() {
    let (mut c, mut s) = (client(), server());
    let now = Instant::from_millis(1);
    let cid = c.connect(now, None, SERVER.parse().unwrap()).unwrap();
    shuttle(&mut c, &mut s, now);
    let sid = accepted(&mut s)[0];
    // Unread data held by the server.
    c.send(cid, &[7u8; 20_000]).unwrap();
    shuttle(&mut c, &mut s, now);
    assert!(s.memory_used() > 0);
    assert_eq!(s.memory_pressure(), Pressure::None);
    let mut l = s.limits();
    l.max_memory = s.memory_used() / 2;
    s.set_limits(l);
    assert_eq!(s.memory_pressure(), Pressure::Exhausted);
    assert_eq!(s.connection_count(), 1);
    let mut buf = vec![0u8; 32_000];
    assert_eq!(s.recv(sid, &mut buf).unwrap(), 20_000);
    l.max_memory = Config::default().max_memory;
    s.set_limits(l);
    s.handle_timeout(now);
    still_serves(&mut c, &mut s, cid, sid, now);
}

#[test]
fn max_subflows_changes_for_live_connections() {
    let (mut c, mut s) = (client(), server());
    let now = Instant::from_millis(1);
    let cid = c.connect(now, None, SERVER.parse().unwrap()).unwrap();
    shuttle(&mut c, &mut s, now);
    let sid = accepted(&mut s)[0];
    // Data both ways: MPTCP is fully established at both ends.
    c.send(cid, b"hello").unwrap();
    still_serves(&mut c, &mut s, cid, sid, now);
    let subflows = |s: &Stack| s.info(sid).unwrap().subflows.len();
    assert_eq!(subflows(&s), 1);

    let mut l = s.limits();
    l.max_subflows = 0;
    s.set_limits(l);
    let subflow = EndpointFlags {
        subflow: true,
        ..EndpointFlags::default()
    };
    c.add_endpoint("10.0.1.1".parse().unwrap(), subflow);
    shuttle(&mut c, &mut s, now);
    assert_eq!(subflows(&s), 1, "a join past the new limit is refused");
    assert!(s.counters().mptcp_join_rejected >= 1);

    l.max_subflows = 2;
    s.set_limits(l);
    c.add_endpoint("10.0.2.1".parse().unwrap(), subflow);
    shuttle(&mut c, &mut s, now);
    assert_eq!(subflows(&s), 2, "a join within the raised limit is taken");
    assert_eq!(s.counters().mptcp_joins_established, 1);

    // Lowered again: the joined subflow stays.
    l.max_subflows = 0;
    s.set_limits(l);
    shuttle(&mut c, &mut s, now);
    assert_eq!(subflows(&s), 2);
}
