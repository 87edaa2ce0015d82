//! MPTCP through the Stack API with two engines wired back to back: the key
//! exchange shows in `info`, plain-TCP peers get a clean fallback, and an abort
//! reaches the peer as MP_FASTCLOSE (the peer's connection is reset).

use mptun_stack::endpoint::CloseReason;
use mptun_stack::{Config, ConnId, Event, Instant, Stack};
use std::net::SocketAddr;

fn stack(seed: u64, addr: &str, mptcp: bool) -> Stack {
    let mut c = Config {
        seed,
        ..Config::default()
    };
    c.mptcp.enabled = mptcp;
    let mut s = Stack::new(c);
    s.add_address(addr.parse().unwrap());
    s
}

/// Deliver packets both ways until neither side has anything to send.
fn shuttle(a: &mut Stack, b: &mut Stack, now: Instant) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    let mut log = Vec::new();
    loop {
        let mut moved = false;
        while let Some(n) = a.poll_transmit(now, &mut buf) {
            log.push(buf[..n].to_vec());
            b.handle_packet(now, &buf[..n]);
            moved = true;
        }
        while let Some(n) = b.poll_transmit(now, &mut buf) {
            log.push(buf[..n].to_vec());
            a.handle_packet(now, &buf[..n]);
            moved = true;
        }
        if !moved {
            return log;
        }
    }
}

fn events(s: &mut Stack) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn accepted(evs: &[Event]) -> ConnId {
    evs.iter()
        .find_map(|e| match e {
            Event::Accepted { id, .. } => Some(*id),
            _ => None,
        })
        .expect("accepted")
}

fn setup(server_mptcp: bool) -> (Stack, Stack, ConnId, ConnId) {
    let mut c = stack(1, "10.0.0.1", true);
    let mut s = stack(2, "10.0.0.2", server_mptcp);
    s.listen(80).unwrap();
    let now = Instant::from_millis(1);
    let remote: SocketAddr = "10.0.0.2:80".parse().unwrap();
    let cid = c.connect(now, None, remote).unwrap();
    shuttle(&mut c, &mut s, now);
    // Some data both ways completes MPTCP's handshake (the server's first DSS).
    c.send(cid, b"hello").unwrap();
    shuttle(&mut c, &mut s, now);
    let sid = accepted(&events(&mut s));
    let mut buf = [0u8; 16];
    assert_eq!(s.recv(sid, &mut buf).unwrap(), 5);
    s.send(sid, b"world").unwrap();
    shuttle(&mut c, &mut s, now);
    assert_eq!(c.recv(cid, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"world");
    (c, s, cid, sid)
}

#[test]
fn keys_exchanged_and_tokens_match() {
    let (c, s, cid, sid) = setup(true);
    let cm = c.info(cid).unwrap().mptcp.expect("client is MPTCP");
    let sm = s.info(sid).unwrap().mptcp.expect("server is MPTCP");
    assert!(!cm.fallback && !sm.fallback);
    assert_eq!(cm.remote_key, Some(sm.local_key));
    assert_eq!(sm.remote_key, Some(cm.local_key));
    assert_eq!(cm.remote_token, Some(sm.local_token));
    assert_eq!(cm.version, 1);
}

#[test]
fn plain_tcp_server_gives_clean_fallback() {
    let (c, s, cid, sid) = setup(false);
    let cm = c.info(cid).unwrap().mptcp.expect("client offered MPTCP");
    assert!(cm.fallback, "client must fall back: {cm:?}");
    assert_eq!(cm.fallback_reason.as_deref(), Some("NoMpCapableSynAck"));
    assert!(s.info(sid).unwrap().mptcp.is_none());
}

#[test]
fn abort_sends_fastclose_and_resets_the_peer() {
    let (mut c, mut s, cid, sid) = setup(true);
    events(&mut c);
    events(&mut s);
    let now = Instant::from_millis(2);
    c.abort(cid).unwrap();
    let sent = shuttle(&mut c, &mut s, now);
    // The RST carries MP_FASTCLOSE (subtype 7) and MP_TCPRST (subtype 8).
    let rst = sent
        .iter()
        .find_map(|p| {
            let (ip, tcp) = mptun_stack::wire::IpRepr::parse(p).ok()?;
            let seg = mptun_stack::wire::TcpRepr::parse(ip.src, ip.dst, tcp, true).ok()?;
            seg.flags.rst().then(|| {
                mptun_stack::wire::mptcp_options(&seg)
                    .map(|d| d[0] >> 4)
                    .collect::<Vec<_>>()
            })
        })
        .expect("a RST went out");
    assert_eq!(rst, vec![7, 8]);
    let evs = events(&mut s);
    assert!(
        evs.contains(&Event::Closed {
            id: sid,
            reason: CloseReason::Reset
        }),
        "{evs:?}"
    );
}
