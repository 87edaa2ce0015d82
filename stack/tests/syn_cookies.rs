//! SYN cookies through the `Stack`'s public API: a listener whose backlog is
//! full (or that is told to always) answers SYNs without keeping state; the
//! third ACK's cookie rebuilds the connection with the options the SYN
//! offered; forged, stale and expired cookies open nothing; an MPTCP third
//! ACK must echo the key the cookie derived. A hand-made client plays the
//! peer (or a second engine, for MPTCP).

mod packet;

use mptun_stack::wire::mptcp::MpCapable;
use mptun_stack::wire::{self, IpRepr, MptcpOption, SeqNumber, TcpFlags, TcpRepr};
use mptun_stack::{
    Config, ConnId, Event, Instant, RateLimits, Stack, State, SynCookies, TcpConfig,
};
use packet::rewrite_mptcp;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const SYN: u8 = TcpFlags::SYN;
const ACK: u8 = TcpFlags::ACK;
const PSH: u8 = TcpFlags::PSH;
const RST: u8 = TcpFlags::RST;
const T: Instant = Instant::from_millis(1_000_000);

fn server_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80)
}

fn client(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), port)
}

fn config(cookies: SynCookies) -> Config {
    Config {
        seed: 11.into(),
        syn_cookies: cookies,
        backlog: 4,
        tcp: TcpConfig {
            delayed_ack: None,
            ..TcpConfig::default()
        },
        // The tests count every RST.
        limits: RateLimits {
            rsts: 1_000_000,
            ..RateLimits::default()
        },
        ..Config::default()
    }
}

fn server(cookies: SynCookies) -> Stack {
    let mut s = Stack::new(config(cookies));
    s.add_address(server_addr().ip());
    s.listen(80).unwrap();
    s
}

/// What the hand-made client offers in its SYN.
#[derive(Clone, Copy)]
struct Offer {
    mss: u16,
    window_scale: Option<u8>,
    sack: bool,
    tsval: Option<u32>,
}

const FULL: Offer = Offer {
    mss: 1400,
    window_scale: Some(7),
    sack: true,
    tsval: Some(555),
};

fn emit(from: SocketAddr, r: &TcpRepr<'_>, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let n = wire::emit_packet(from.ip(), server_addr().ip(), 64, r, &[payload], &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn syn(from: SocketAddr, irs: u32, o: Offer) -> Vec<u8> {
    let mut r = TcpRepr::new(from.port(), 80);
    r.flags = TcpFlags(SYN);
    r.seq = SeqNumber(irs);
    r.window = 65535;
    r.mss = Some(o.mss);
    r.window_scale = o.window_scale;
    r.sack_permitted = o.sack;
    r.timestamp = o.tsval.map(|v| (v, 0));
    emit(from, &r, &[])
}

/// A segment of the client's: `tsecr` echoes the SYN/ACK's TSval if given.
fn seg(
    from: SocketAddr,
    flags: u8,
    seq: u32,
    ack: u32,
    ts: Option<(u32, u32)>,
    payload: &[u8],
) -> Vec<u8> {
    let mut r = TcpRepr::new(from.port(), 80);
    r.flags = TcpFlags(flags);
    r.seq = SeqNumber(seq);
    r.ack = SeqNumber(ack);
    r.window = 1000;
    r.timestamp = ts;
    emit(from, &r, payload)
}

/// A packet the stack sent, parsed.
#[derive(Debug, Clone)]
struct Out {
    dst: SocketAddr,
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    mss: Option<u16>,
    window_scale: Option<u8>,
    sack: bool,
    ts: Option<(u32, u32)>,
    payload_len: usize,
}

fn poll(s: &mut Stack, now: Instant) -> Option<Out> {
    let mut buf = vec![0u8; 2048];
    let n = s.poll_transmit(now, &mut buf)?;
    let (ip, bytes) = IpRepr::parse(&buf[..n]).expect("a bad IP packet");
    let r = TcpRepr::parse(ip.src, ip.dst, bytes, true).expect("a bad segment");
    Some(Out {
        dst: SocketAddr::new(ip.dst, r.dst_port),
        flags: r.flags,
        seq: r.seq.0,
        ack: r.ack.0,
        mss: r.mss,
        window_scale: r.window_scale,
        sack: r.sack_permitted,
        ts: r.timestamp,
        payload_len: r.payload.len(),
    })
}

fn drain(s: &mut Stack, now: Instant) -> Vec<Out> {
    core::iter::from_fn(|| poll(s, now)).collect()
}

fn accepted(s: &mut Stack) -> Vec<ConnId> {
    core::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            Event::Accepted { id, .. } => Some(id),
            _ => None,
        })
        .collect()
}

/// Send the SYN, take the cookie SYN/ACK; the server keeps nothing.
fn cookie_synack(s: &mut Stack, from: SocketAddr, irs: u32, o: Offer, now: Instant) -> Out {
    let before = s.connection_count();
    s.handle_packet(now, &syn(from, irs, o));
    let out = drain(s, now);
    assert_eq!(out.len(), 1, "{out:?}");
    let sa = out[0].clone();
    assert_eq!(
        (sa.flags, sa.dst, sa.ack),
        (TcpFlags(SYN | ACK), from, irs + 1)
    );
    assert_eq!(s.connection_count(), before, "a cookie SYN left state");
    sa
}

#[test]
fn cookie_handshake_keeps_no_state_and_restores_the_options() {
    let mut s = server(SynCookies::Always);
    let c = client(40000);
    let sa = cookie_synack(&mut s, c, 7000, FULL, T);
    // Our own options are those of a stateful SYN/ACK.
    assert!(sa.mss.is_some() && sa.window_scale.is_some() && sa.sack);
    let (tsval, tsecr) = sa.ts.expect("timestamps answered");
    assert_eq!(tsecr, 555);
    assert_eq!(s.counters().syncookies_sent, 1);

    // The third ACK, with data: the connection exists, in ESTABLISHED.
    let ack = seg(c, ACK | PSH, 7001, sa.seq + 1, Some((600, tsval)), b"hello");
    s.handle_packet(T, &ack);
    let ids = accepted(&mut s);
    assert_eq!(ids.len(), 1);
    let id = ids[0];
    assert_eq!(s.state(id), Some(State::Established));
    assert_eq!(s.counters().syncookies_recv, 1);
    let mut buf = [0u8; 16];
    assert_eq!(s.recv(id, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    let info = s.info(id).unwrap();
    // MSS 1400 is kept as the table's 1380; SACK and timestamps as offered.
    assert_eq!(info.mss, 1380 - 12);
    assert!(info.sack && info.timestamps);
    // The client's window scale (7) applies to the window it advertises.
    assert_eq!(info.snd_wnd, 1000 << 7);

    // Data flows back, timestamps moving forward from the SYN/ACK's.
    s.send(id, &[1u8; 2 * 1368]).unwrap();
    let out = drain(&mut s, T);
    let data: Vec<_> = out.iter().filter(|o| o.payload_len > 0).collect();
    assert_eq!(data.len(), 2, "{out:?}");
    assert!(data.iter().all(|o| o.payload_len == 1368 && o.seq > sa.seq));
    let later = data[0].ts.unwrap().0;
    assert!(later.wrapping_sub(tsval) < 64, "{tsval} then {later}");
    assert!((later.wrapping_sub(tsval) as i32) >= 0);
}

#[test]
fn without_timestamps_a_cookie_connection_has_no_window_scale_or_sack() {
    let mut s = server(SynCookies::Always);
    let c = client(40001);
    let offer = Offer {
        tsval: None,
        ..FULL
    };
    let sa = cookie_synack(&mut s, c, 7000, offer, T);
    // Nowhere to keep them: the SYN/ACK does not agree to them either.
    assert_eq!((sa.window_scale, sa.sack, sa.ts), (None, false, None));
    s.handle_packet(T, &seg(c, ACK, 7001, sa.seq + 1, None, &[]));
    let id = accepted(&mut s)[0];
    let info = s.info(id).unwrap();
    assert!(!info.sack && !info.timestamps);
    assert_eq!(info.snd_wnd, 1000, "unscaled");
    assert_eq!(info.mss, 1380);
}

#[test]
fn backlog_overflow_switches_to_cookies_and_off_drops() {
    for mode in [SynCookies::OnOverflow, SynCookies::Off] {
        let mut s = server(mode);
        // Four half-open connections that never complete fill the backlog.
        for port in 1..=4 {
            s.handle_packet(T, &syn(client(port), 100, FULL));
        }
        assert_eq!(drain(&mut s, T).len(), 4);
        assert_eq!(s.connection_count(), 4);
        s.handle_packet(T, &syn(client(5555), 9000, FULL));
        let out = drain(&mut s, T);
        if mode == SynCookies::Off {
            assert!(out.is_empty());
            assert_eq!(s.counters().drop_backlog_full, 1);
            continue;
        }
        assert_eq!(out.len(), 1);
        assert_eq!(s.connection_count(), 4);
        assert_eq!(s.counters().syncookies_sent, 1);
        let sa = &out[0];
        let tsval = sa.ts.unwrap().0;
        s.handle_packet(
            T,
            &seg(client(5555), ACK, 9001, sa.seq + 1, Some((556, tsval)), &[]),
        );
        assert_eq!(accepted(&mut s).len(), 1);
        assert_eq!(s.connection_count(), 5);
    }
}

#[test]
fn forged_acks_open_nothing() {
    let mut s = server(SynCookies::OnOverflow);
    let forged = |i: u32| {
        let c = client(20000 + (i % 40000) as u16);
        let ack = i.wrapping_mul(0x9e37_79b9);
        seg(c, ACK, i.wrapping_mul(7), ack, None, &[])
    };
    // No cookie sent lately: an ACK to the listener is not even checked.
    s.handle_packet(T, &forged(1));
    let out = drain(&mut s, T);
    assert_eq!(out.len(), 1);
    assert!(out[0].flags.rst());
    assert_eq!(s.counters().syncookies_failed, 0);

    // Once cookies flow, 10,000 guesses open nothing.
    for port in 1..=5 {
        s.handle_packet(T, &syn(client(port), 100, FULL));
    }
    drain(&mut s, T);
    assert_eq!(s.counters().syncookies_sent, 1);
    let mut out = Vec::new();
    for i in 2..10_002 {
        s.handle_packet(T, &forged(i));
        out.extend(drain(&mut s, T));
    }
    // Guesses whose tick could be current are set apart (dropped, in case
    // they are a real client's early segments); the rest failed.
    let c = s.counters();
    assert_eq!(c.syncookies_failed + c.syncookies_dropped, 10_000);
    assert_eq!(c.syncookies_failed, out.len() as u64);
    assert_eq!(c.syncookies_recv, 0);
    assert_eq!(s.connection_count(), 4, "the backlog's half-open ones only");
    assert!(accepted(&mut s).is_empty());
    // An ACK whose cookie cannot be current gets its RST (a stale
    // connection learns at once); one that could be is dropped silently.
    assert!(out.iter().all(|o| o.flags.rst()));
    assert!((9000..=9700).contains(&out.len()), "{} RSTs", out.len());
}

#[test]
fn a_cookie_is_bound_to_its_tuple_isn_and_time() {
    let mut s = server(SynCookies::Always);
    let c = client(40002);
    let sa = cookie_synack(&mut s, c, 7000, FULL, T);
    let tsval = sa.ts.unwrap().0;
    let ts = Some((600, tsval));
    // Another client port, another client ISN, a cookie off by one.
    s.handle_packet(T, &seg(client(40003), ACK, 7001, sa.seq + 1, ts, &[]));
    s.handle_packet(T, &seg(c, ACK, 7002, sa.seq + 1, ts, &[]));
    s.handle_packet(T, &seg(c, ACK, 7001, sa.seq + 2, ts, &[]));
    // Two to three minutes later the cookie has expired.
    let late = T + core::time::Duration::from_secs(200);
    s.handle_packet(late, &seg(c, ACK, 7001, sa.seq + 1, ts, &[]));
    // The first three name the current tick: dropped, not failed.
    assert_eq!(s.counters().syncookies_dropped, 3);
    assert_eq!(s.counters().syncookies_failed, 1);
    assert!(accepted(&mut s).is_empty());
    assert_eq!(s.connection_count(), 0);
    // Within a minute it is good.
    let soon = T + core::time::Duration::from_secs(60);
    s.handle_packet(soon, &seg(c, ACK, 7001, sa.seq + 1, ts, &[]));
    assert_eq!(accepted(&mut s).len(), 1);
    // Answers to bad ACKs are RSTs or nothing; never a SYN/ACK or data.
    assert!(drain(&mut s, soon)
        .iter()
        .all(|o| o.flags.rst() || o.flags == TcpFlags(ACK)));
}

#[test]
fn a_segment_ahead_of_the_lost_third_ack_waits_for_it() {
    let mut s = server(SynCookies::Always);
    let c = client(40006);
    let sa = cookie_synack(&mut s, c, 7000, FULL, T);
    let ts = Some((600, sa.ts.unwrap().0));
    // The third ACK and the first data segment were lost before the stack
    // (a full TUN queue under a flood); the second segment arrives first.
    s.handle_packet(T, &seg(c, ACK | PSH, 7006, sa.seq + 1, ts, b"world"));
    assert!(
        drain(&mut s, T).is_empty(),
        "no RST for a client that is real"
    );
    assert_eq!(s.connection_count(), 0);
    assert_eq!(s.counters().syncookies_dropped, 1);
    assert_eq!(s.counters().syncookies_failed, 0);
    // The client sends both again; the first opens the connection.
    s.handle_packet(T, &seg(c, ACK | PSH, 7001, sa.seq + 1, ts, b"hello"));
    s.handle_packet(T, &seg(c, ACK | PSH, 7006, sa.seq + 1, ts, b"world"));
    let id = accepted(&mut s)[0];
    let mut buf = [0u8; 16];
    assert_eq!(s.recv(id, &mut buf), Ok(10));
    assert_eq!(&buf[..10], b"helloworld");
    assert_eq!(s.counters().syncookies_recv, 1);
}

#[test]
fn a_tsecr_with_bits_we_never_set_is_refused() {
    let mut s = server(SynCookies::Always);
    let c = client(40004);
    let sa = cookie_synack(&mut s, c, 7000, FULL, T);
    let tsval = sa.ts.unwrap().0;
    s.handle_packet(
        T,
        &seg(c, ACK, 7001, sa.seq + 1, Some((600, tsval | 0x20)), &[]),
    );
    assert_eq!(s.counters().syncookies_failed, 1);
    assert_eq!(s.connection_count(), 0);
}

/// Two engines: an MPTCP client and a cookie server, packets between them
/// passed through `tap`, until both are quiet.
fn mptcp_pair(
    tap: &mut dyn FnMut(bool, Vec<u8>) -> Option<Vec<u8>>,
) -> (Stack, Stack, ConnId, Instant) {
    let mut cc = config(SynCookies::Off);
    cc.seed = 12.into();
    cc.mptcp.enabled = true;
    let mut sc = config(SynCookies::Always);
    sc.mptcp.enabled = true;
    let mut c = Stack::new(cc);
    c.add_address(client(0).ip());
    let mut s = Stack::new(sc);
    s.add_address(server_addr().ip());
    s.listen(80).unwrap();
    let mut now = T;
    let id = c.connect(now, None, server_addr()).unwrap();
    c.send(id, b"through a cookie").unwrap();
    let mut buf = vec![0u8; 2048];
    for _ in 0..200 {
        now += core::time::Duration::from_millis(5);
        c.handle_timeout(now);
        s.handle_timeout(now);
        while let Some(n) = c.poll_transmit(now, &mut buf) {
            if let Some(p) = tap(true, buf[..n].to_vec()) {
                s.handle_packet(now, &p);
            }
        }
        while let Some(n) = s.poll_transmit(now, &mut buf) {
            if let Some(p) = tap(false, buf[..n].to_vec()) {
                c.handle_packet(now, &p);
            }
        }
    }
    (c, s, id, now)
}

#[test]
fn mptcp_through_a_cookie_keeps_the_derived_key() {
    let mut synack_key = None;
    let (c, mut s, id, _) = mptcp_pair(&mut |to_server, p| {
        if !to_server {
            let (ip, b) = IpRepr::parse(&p).unwrap();
            let r = TcpRepr::parse(ip.src, ip.dst, b, true).unwrap();
            if r.flags.syn() {
                let ctx = wire::ParseCtx::from_repr(&r);
                synack_key =
                    wire::mptcp_options(&r).find_map(|d| match MptcpOption::parse(d, ctx) {
                        Ok(MptcpOption::MpCapable(c)) => c.sender_key,
                        _ => None,
                    });
            }
        }
        Some(p)
    });
    let sid = accepted(&mut s)[0];
    let (cm, sm) = (
        c.info(id).unwrap().mptcp.unwrap(),
        s.info(sid).unwrap().mptcp.unwrap(),
    );
    assert!(!cm.fallback && !sm.fallback, "{cm:?} {sm:?}");
    assert_eq!(Some(sm.local_key), synack_key);
    assert_eq!(cm.remote_key, Some(sm.local_key));
    assert_eq!(sm.remote_key, Some(cm.local_key));
    assert_eq!(s.counters().syncookies_recv, 1);
    let mut buf = [0u8; 64];
    assert_eq!(s.recv(sid, &mut buf), Ok(16));
}

#[test]
fn mptcp_third_ack_with_another_key_opens_nothing() {
    let (_, mut s, _, _) = mptcp_pair(&mut |to_server, p| {
        if !to_server {
            return Some(p);
        }
        // Every MP_CAPABLE toward the server names another server key.
        Some(
            rewrite_mptcp(&p, |o| match o {
                MptcpOption::MpCapable(c) if c.receiver_key.is_some() => {
                    Some(MptcpOption::MpCapable(MpCapable {
                        receiver_key: c.receiver_key.map(|k| k ^ 1),
                        ..c
                    }))
                }
                _ => None,
            })
            .unwrap_or(p),
        )
    });
    assert!(accepted(&mut s).is_empty());
    assert_eq!(s.counters().syncookies_recv, 0);
    assert!(s.counters().syncookies_failed > 0);
    assert_eq!(s.connection_count(), 0);
}

#[test]
fn rsts_to_listener_ports_do_not_touch_cookies() {
    let mut s = server(SynCookies::Always);
    let c = client(40005);
    let sa = cookie_synack(&mut s, c, 7000, FULL, T);
    s.handle_packet(T, &seg(c, RST | ACK, 7001, sa.seq + 1, None, &[]));
    assert_eq!(s.connection_count(), 0);
    assert_eq!(s.counters().syncookies_failed, 0);
    assert!(drain(&mut s, T).is_empty());
}
