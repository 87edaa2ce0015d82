//! The memory budget (`Config::max_memory`) and the per-source connection
//! limit (`Config::max_conns_per_source`) through the Stack API, with two
//! engines wired back to back: connections that hold unread data fill the
//! budget, past it new connections are refused, and memory given back lets
//! them in again; under pressure buffers stop growing.

use core::time::Duration;
use mptun_stack::memory::Pressure;
use mptun_stack::{Config, ConnId, Event, Instant, Stack};
use std::net::SocketAddr;

fn stack(seed: u64, addrs: &[&str], f: impl FnOnce(&mut Config)) -> Stack {
    let mut c = Config {
        seed: seed.into(),
        ..Config::default()
    };
    f(&mut c);
    let mut s = Stack::new(c);
    for a in addrs {
        s.add_address(a.parse().unwrap());
    }
    s
}

/// Deliver packets both ways until neither side has anything to send.
fn shuttle(a: &mut Stack, b: &mut Stack, now: Instant) {
    let mut buf = vec![0u8; 2048];
    loop {
        let mut moved = false;
        while let Some(n) = a.poll_transmit(now, &mut buf) {
            b.handle_packet(now, &buf[..n]);
            moved = true;
        }
        while let Some(n) = b.poll_transmit(now, &mut buf) {
            a.handle_packet(now, &buf[..n]);
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

fn accepted(s: &mut Stack) -> Vec<ConnId> {
    std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            Event::Accepted { id, .. } => Some(id),
            _ => None,
        })
        .collect()
}

const SERVER: &str = "10.0.0.2:80";

/// The client pushes `bytes` on `cid` as far as the server's window lets it.
fn push(c: &mut Stack, s: &mut Stack, cid: ConnId, bytes: usize, now: Instant) {
    let chunk = vec![7u8; 16 * 1024];
    let mut sent = 0;
    while sent < bytes {
        let n = c
            .send(cid, &chunk[..chunk.len().min(bytes - sent)])
            .unwrap();
        shuttle(c, s, now);
        if n == 0 {
            break;
        }
        sent += n;
    }
}

fn drain(s: &mut Stack, id: ConnId) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while let Ok(n) = s.recv(id, &mut buf) {
        if n == 0 {
            break;
        }
        got += n;
    }
    got
}

/// Connections whose reader never reads fill the budget; past it the server
/// takes no new connection (its SYNs are dropped, counted), never holding
/// more than the budget and what one connection had been offered; once the
/// readers read and close, the memory is given back and a new connection
/// gets in.
#[test]
fn budget_refuses_new_connections_until_memory_is_given_back() {
    let budget = 2 << 20;
    let mut c = stack(1, &["10.0.0.1"], |_| {});
    let mut s = stack(2, &["10.0.0.2"], |cfg| cfg.max_memory = budget);
    s.listen(80).unwrap();
    let mut now = Instant::from_millis(1);
    let mut conns = Vec::new();
    let mut server_ids = Vec::new();
    let mut most = 0;
    for _ in 0..40 {
        let cid = c.connect(now, None, SERVER.parse().unwrap()).unwrap();
        shuttle(&mut c, &mut s, now);
        server_ids.extend(accepted(&mut s));
        push(&mut c, &mut s, cid, 1 << 20, now);
        conns.push(cid);
        most = most.max(s.memory_used());
        assert!(s.memory_peak() >= most, "the peak missed {most} bytes");
        assert!(
            s.memory_used() <= budget + 256 * 1024,
            "{} bytes held against a budget of {budget}",
            s.memory_used()
        );
    }
    let k = s.counters();
    assert_eq!(s.memory_pressure(), Pressure::Exhausted);
    assert!(k.drop_memory > 0, "no SYN was refused: {k:?}");
    assert!(k.memory_pressure >= 1);
    assert!(
        server_ids.len() >= 8 && server_ids.len() < 40,
        "{} connections accepted",
        server_ids.len()
    );

    // The readers read and close: memory is given back.
    for &id in &server_ids {
        drain(&mut s, id);
        s.release(id).unwrap();
    }
    for &cid in &conns {
        let _ = c.release(cid);
    }
    for _ in 0..200 {
        now += Duration::from_millis(500);
        c.handle_timeout(now);
        s.handle_timeout(now);
        shuttle(&mut c, &mut s, now);
        for id in accepted(&mut s) {
            drain(&mut s, id);
            s.release(id).unwrap();
        }
    }
    assert_eq!(s.memory_pressure(), Pressure::None);
    assert!(
        s.memory_used() < 64 * 1024,
        "{} bytes still held",
        s.memory_used()
    );
    // The peak stays what it was, within the budget's overshoot.
    assert!(s.memory_peak() >= most && s.memory_peak() <= budget + 256 * 1024);

    // A new connection gets in and moves data.
    let cid = c.connect(now, None, SERVER.parse().unwrap()).unwrap();
    shuttle(&mut c, &mut s, now);
    let sid = accepted(&mut s);
    assert_eq!(sid.len(), 1);
    push(&mut c, &mut s, cid, 100_000, now);
    assert_eq!(drain(&mut s, sid[0]), 100_000);
}

/// A fast reader's buffers grow with its pace; under memory pressure the
/// same transfer keeps them at their starting size.
#[test]
fn pressure_stops_buffers_from_growing() {
    let (free_peak, p, _) = peak_for_reader(1 << 30, 6);
    assert_eq!(p, Pressure::None);
    let (tight_peak, p, events) = peak_for_reader(1 << 20, 6);
    eprintln!(
        "16 MiB read: the connection held at most {free_peak} bytes, {tight_peak} under pressure"
    );
    assert_eq!(p, Pressure::High);
    assert!(events >= 1);
    assert!(
        free_peak > 2 * tight_peak && tight_peak <= 256 * 1024,
        "the reader's connection held {free_peak} bytes at most without pressure, {tight_peak} under it"
    );
}

/// The same fast reader on a host that queues what arrives (a daemon that
/// cannot keep up with its TUN, `Stack::set_host_queue`): every round trip
/// here is that queue (the stacks are wired back to back, and the reader
/// reads every 5 ms), and the receive buffer grows to little more than its
/// starting 128 KiB; without the host queue to twice that and more.
#[test]
fn a_host_queue_stops_receive_buffers_from_growing() {
    let (_, _, _, free_cap) = reader(1 << 30, 0, false);
    let (_, p, _, queued_cap) = reader(1 << 30, 0, true);
    eprintln!("receive buffer: {free_cap} bytes, {queued_cap} with a host queue");
    assert_eq!(p, Pressure::None);
    // Four round trips of at least 1 ms at the reader's pace (~26 MB/s),
    // rounded up to the next eighth of a power of two.
    assert!(queued_cap <= 160 * 1024, "{queued_cap} with a host queue");
    assert!(
        free_cap >= 2 * queued_cap,
        "{free_cap} without a host queue"
    );
}

fn peak_for_reader(max_memory: usize, idle_fillers: usize) -> (usize, Pressure, u64) {
    let (peak, p, events, _) = reader(max_memory, idle_fillers, false);
    (peak, p, events)
}

/// A client pushing 16 MiB to a reader that reads every 5 ms, `idle_fillers`
/// connections holding 1 MiB each beside it: (the most the reader's
/// connection held, the server's pressure and pressure events after, its
/// largest receive buffer).
fn reader(
    max_memory: usize,
    idle_fillers: usize,
    host_queue: bool,
) -> (usize, Pressure, u64, usize) {
    let mut c = stack(1, &["10.0.0.1"], |_| {});
    let mut s = stack(2, &["10.0.0.2"], |cfg| cfg.max_memory = max_memory);
    s.set_host_queue(host_queue);
    s.listen(80).unwrap();
    let mut now = Instant::from_millis(1);
    for _ in 0..idle_fillers {
        let cid = c.connect(now, None, SERVER.parse().unwrap()).unwrap();
        shuttle(&mut c, &mut s, now);
        accepted(&mut s);
        push(&mut c, &mut s, cid, 1 << 20, now);
    }
    let base = s.memory_used();
    let cid = c.connect(now, None, SERVER.parse().unwrap()).unwrap();
    shuttle(&mut c, &mut s, now);
    let sid = accepted(&mut s)[0];
    let chunk = vec![1u8; 64 * 1024];
    let mut peak = 0;
    let mut cap = 0;
    let mut got = 0;
    while got < 16 << 20 {
        while c.send(cid, &chunk).unwrap() > 0 {}
        shuttle(&mut c, &mut s, now);
        peak = peak.max(s.memory_used() - base.min(s.memory_used()));
        cap = cap.max(s.info(sid).unwrap().buffers.recv_capacity);
        got += drain(&mut s, sid);
        shuttle(&mut c, &mut s, now);
        now += Duration::from_millis(5);
        c.handle_timeout(now);
        s.handle_timeout(now);
    }
    (peak, s.memory_pressure(), s.counters().memory_pressure, cap)
}

/// `max_conns_per_source`: a source at its limit gets a RST for a further
/// SYN, another source does not; an IPv6 /64 is one source; a connection
/// that went frees its share.
#[test]
fn connections_per_source_are_limited() {
    let mut c = stack(
        1,
        &["10.0.0.1", "10.0.0.3", "2001:db8::1", "2001:db8::2"],
        |_| {},
    );
    let mut s = stack(2, &["10.0.0.2", "2001:db8:1::2"], |cfg| {
        cfg.max_conns_per_source = 2
    });
    s.listen(80).unwrap();
    let now = Instant::from_millis(1);
    let open = |c: &mut Stack, s: &mut Stack, from: &str, to: &str| {
        let local = SocketAddr::new(from.parse().unwrap(), 0);
        let cid = c.connect(now, Some(local), to.parse().unwrap()).unwrap();
        shuttle(c, s, now);
        (cid, c.state(cid))
    };
    use mptun_stack::tcp::State;
    for _ in 0..2 {
        assert_eq!(
            open(&mut c, &mut s, "10.0.0.1", SERVER).1,
            Some(State::Established)
        );
    }
    let (refused, state) = open(&mut c, &mut s, "10.0.0.1", SERVER);
    assert_ne!(state, Some(State::Established));
    assert!(
        c.info(refused).is_none() || state == Some(State::Closed),
        "{state:?}"
    );
    assert_eq!(s.counters().drop_source_limit, 1);
    assert_eq!(
        open(&mut c, &mut s, "10.0.0.3", SERVER).1,
        Some(State::Established)
    );

    let v6 = "[2001:db8:1::2]:80";
    assert_eq!(
        open(&mut c, &mut s, "2001:db8::1", v6).1,
        Some(State::Established)
    );
    assert_eq!(
        open(&mut c, &mut s, "2001:db8::2", v6).1,
        Some(State::Established)
    );
    assert_ne!(
        open(&mut c, &mut s, "2001:db8::1", v6).1,
        Some(State::Established)
    );
    assert_eq!(s.counters().drop_source_limit, 2);

    // One of 10.0.0.1's connections goes: it may open another.
    let ids = accepted(&mut s);
    let first = ids[0];
    s.abort(first).unwrap();
    shuttle(&mut c, &mut s, now);
    assert_eq!(
        open(&mut c, &mut s, "10.0.0.1", SERVER).1,
        Some(State::Established)
    );
}
