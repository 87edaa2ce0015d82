//! MPTCP through the Stack API with two engines wired back to back: the key
//! exchange shows in `info`, plain-TCP peers get a clean fallback, and an abort
//! reaches the peer as MP_FASTCLOSE (the peer's connection is reset).

mod packet;

use mptun_stack::endpoint::CloseReason;
use mptun_stack::{Config, ConnId, Event, Instant, Stack};
use std::net::SocketAddr;

fn stack(seed: u64, addr: &str, mptcp: bool) -> Stack {
    let mut c = Config {
        seed: seed.into(),
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

/// The receiver's connection-level window bounds what the sender maps, also when
/// it is zero: once a DATA_ACK arrived, `DATA_ACK + window` is the limit, however
/// large the subflow's own window (stale when the updates went out on other
/// subflows). Linux drops data beyond that edge at the data level although its
/// subflow acknowledges it, so such data is lost for good: against Linux two
/// subflows stalled for ever once the reader fell behind (tests/netns
/// t_mptcp_join with TUN offloads). Here the client reads nothing for 20 s while
/// the server has 12 MiB to send (the client's buffer, auto-tuned by its reading,
/// stays small), then reads it all; every mapping the server sends must end
/// within the edge the client last advertised, and every byte arrives.
#[test]
fn zero_connection_window_bounds_the_mappings() {
    use core::time::Duration;
    use mptun_stack::wire::{mptcp_options, IpRepr, MptcpOption, ParseCtx, TcpRepr};

    let mut c = stack(1, "10.0.0.1", true);
    let mut s = stack(2, "10.0.0.2", true);
    s.listen(80).unwrap();
    let mut now = Instant::from_millis(1);
    let cid = c
        .connect(now, None, "10.0.0.2:80".parse().unwrap())
        .unwrap();
    let mut log = shuttle(&mut c, &mut s, now);
    c.send(cid, b"hello").unwrap();
    log.extend(shuttle(&mut c, &mut s, now));
    let sid = accepted(&events(&mut s));

    let total = 12usize << 20;
    let chunk = vec![0x5au8; 64 * 1024];
    let mut sent = 0;
    for _ in 0..200 {
        while sent < total {
            let n = s
                .send(sid, &chunk[..chunk.len().min(total - sent)])
                .unwrap();
            if n == 0 {
                break;
            }
            sent += n;
        }
        log.extend(shuttle(&mut c, &mut s, now));
        now += Duration::from_millis(100);
        c.handle_timeout(now);
        s.handle_timeout(now);
    }
    let queued_while_closed = sent;

    // The client reads: the window opens and every byte arrives.
    let mut got = 0;
    let mut buf = vec![0u8; 256 * 1024];
    for _ in 0..20_000 {
        while sent < total {
            let n = s
                .send(sid, &chunk[..chunk.len().min(total - sent)])
                .unwrap();
            if n == 0 {
                break;
            }
            sent += n;
        }
        while let Ok(n) = c.recv(cid, &mut buf) {
            if n == 0 {
                break;
            }
            assert!(buf[..n].iter().all(|&b| b == 0x5a));
            got += n;
        }
        if got == total {
            break;
        }
        log.extend(shuttle(&mut c, &mut s, now));
        now += Duration::from_millis(10);
        c.handle_timeout(now);
        s.handle_timeout(now);
    }
    assert_eq!(got, total);

    // The client's advertised edge (the largest DATA_ACK + scaled window so far)
    // against the end of every mapping the server sent after it.
    let mut wscale = 0u8;
    let mut edge: Option<u64> = None;
    let mut mappings = 0;
    let mut zero_windows = 0;
    for p in &log {
        let (ip, tcp) = IpRepr::parse(p).unwrap();
        let seg = TcpRepr::parse(ip.src, ip.dst, tcp, true).unwrap();
        let ctx = ParseCtx {
            syn: seg.flags.syn(),
            ack: seg.flags.ack(),
            has_payload: !seg.payload.is_empty(),
        };
        for o in mptcp_options(&seg) {
            let Ok(MptcpOption::Dss(d)) = MptcpOption::parse(o, ctx) else {
                continue;
            };
            if seg.src_port == 80 {
                if let (Some(m), Some(e)) = (d.mapping, edge) {
                    let end = m.expand_dsn(e).wrapping_add(u64::from(m.data_len));
                    assert!(
                        (e.wrapping_sub(end) as i64) >= 0,
                        "mapping {m:?} ends {} bytes beyond the client's window edge",
                        end.wrapping_sub(e)
                    );
                    mappings += 1;
                }
            } else if let Some(a) = d.data_ack {
                if seg.window == 0 {
                    zero_windows += 1;
                }
                // The right edge never moves left for the sender (a receiver
                // whose scaled window rounds down may seem to shrink it).
                let a = a.expand(edge.unwrap_or(a.value));
                let e = a.wrapping_add(u64::from(seg.window) << wscale);
                if edge.is_none_or(|x| (e.wrapping_sub(x) as i64) > 0) {
                    edge = Some(e);
                }
            }
        }
        if seg.flags.syn() && seg.src_port != 80 {
            wscale = seg.window_scale.unwrap_or(0);
        }
    }
    assert!(mappings > 100, "only {mappings} mappings checked");
    // The window closed: the server held more than it could send.
    assert!(
        zero_windows > 0,
        "the client's window never closed (the server queued {queued_while_closed} bytes)"
    );
}

/// `pkt` with the DSN of its DSS mapping replaced when it is the mapping at
/// subflow sequence `ssn` with DSN `dsn`; `None` when it is not.
fn remap_dsn(pkt: &[u8], ssn: u32, dsn: u64, new_dsn: u64) -> Option<Vec<u8>> {
    use mptun_stack::wire::MptcpOption;
    packet::rewrite_mptcp(pkt, |o| match o {
        MptcpOption::Dss(mut d) if d.mapping.is_some_and(|m| m.ssn == ssn && m.dsn == dsn) => {
            if let Some(m) = d.mapping.as_mut() {
                m.dsn = new_dsn;
            }
            Some(MptcpOption::Dss(d))
        }
        _ => None,
    })
}

/// Data the peer's subflow acknowledged but its MPTCP level dropped (as Linux
/// drops data beyond its connection-level window) is sent again once the
/// DATA_ACK stops moving: the client's MPTCP level sees one whole mapping as a
/// data-level duplicate (its DSN rewritten to one already delivered), so only a
/// data-level retransmission can fill the hole.
#[test]
fn data_dropped_at_the_data_level_is_retransmitted() {
    use core::time::Duration;
    use mptun_stack::wire::{mptcp_options, IpRepr, MptcpOption, ParseCtx, TcpRepr};

    let (mut c, mut s, cid, sid) = setup(true);
    let mut now = Instant::from_millis(1);

    let total = 4usize << 20;
    let data: Vec<u8> = (0..total).map(|i| (i * 7 + (i >> 11)) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::with_capacity(total);
    let mut victim: Option<(u32, u64)> = None;
    let mut rewritten = 0;
    let mut buf = vec![0u8; 2048];
    let mut rbuf = vec![0u8; 256 * 1024];
    for _ in 0..20_000 {
        if sent < total {
            sent += s.send(sid, &data[sent..]).unwrap();
        }
        loop {
            let mut moved = false;
            while let Some(n) = c.poll_transmit(now, &mut buf) {
                s.handle_packet(now, &buf[..n]);
                moved = true;
            }
            while let Some(n) = s.poll_transmit(now, &mut buf) {
                moved = true;
                let pkt = &buf[..n];
                if victim.is_none() {
                    let (ip, tcp) = IpRepr::parse(pkt).unwrap();
                    let seg = TcpRepr::parse(ip.src, ip.dst, tcp, false).unwrap();
                    let ctx = ParseCtx::from_repr(&seg);
                    for o in mptcp_options(&seg) {
                        if let Ok(MptcpOption::Dss(d)) = MptcpOption::parse(o, ctx) {
                            if let Some(m) = d.mapping.filter(|m| m.ssn > 1 << 20) {
                                victim = Some((m.ssn, m.dsn));
                            }
                        }
                    }
                }
                let (ssn, dsn) = victim.unwrap_or_default();
                match remap_dsn(pkt, ssn, dsn, dsn.wrapping_sub(1 << 19)) {
                    Some(p) if victim.is_some() => {
                        rewritten += 1;
                        c.handle_packet(now, &p);
                    }
                    _ => c.handle_packet(now, pkt),
                }
            }
            if !moved {
                break;
            }
        }
        while let Ok(n) = c.recv(cid, &mut rbuf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&rbuf[..n]);
        }
        if got.len() == total {
            break;
        }
        now += Duration::from_millis(10);
        c.handle_timeout(now);
        s.handle_timeout(now);
    }
    assert!(rewritten > 0, "no mapping was made a duplicate");
    assert_eq!(got.len(), total, "the data level never filled the hole");
    assert!(got == data, "the stream arrived corrupted");
    let rtx = s.counters().mptcp_data_retransmits;
    assert!(rtx >= 1, "no data-level retransmission counted");
}

/// Linux's MPTCP client, until it sees the server's first DATA_ACK, repeats
/// MP_CAPABLE (both keys, the data-level length of its first mapping) on every
/// data segment of that first mapping. Each repeat names the same mapping, from
/// subflow sequence 1 at the client's IDSN + 1 (RFC 8684 §3.1; Linux's
/// `mptcp_incoming_options` sets `mpc_map`: `data_seq` IDSN + 1, `subflow_seq`
/// 1), not one at the segment's own sequence number. Read as the latter (as
/// mptun did), the repeat on the segment at SSN 1001 mapped SSN 1001..3001 to
/// contiguous DSNs, so the subflow's next bytes took DSNs that belong to data
/// sent over another subflow in between. Here a hand-crafted Linux-like client
/// sends 2 x 1000 bytes with MP_CAPABLE (data_len 2000), then 500 bytes mapped
/// 5000 bytes further on (as if those 5000 went over another subflow): the
/// server must deliver exactly the first 2000 bytes and hold the 500 behind the
/// hole.
#[test]
fn repeated_mp_capable_maps_the_first_mapping_from_ssn_1() {
    use mptun_stack::mptcp::crypto::{idsn, HashAlg};
    use mptun_stack::wire::mptcp::{DataAck, Dss, Mapping, MpCapable, MpCapableFlags};
    use mptun_stack::wire::{
        emit_packet, mptcp_options, IpRepr, MptcpOption, MptcpVersion, ParseCtx, SeqNumber,
        TcpFlags, TcpRepr, TCPOPT_MPTCP,
    };
    use std::net::IpAddr;

    let client: IpAddr = "10.0.0.1".parse().unwrap();
    let server: IpAddr = "10.0.0.2".parse().unwrap();
    let client_key: u64 = 0x0123_4567_89ab_cdef;
    let isn = SeqNumber(0x1000_0000);
    // One segment from the client (port 40000) to the server's port 80.
    let pkt = |flags: u8, seq: SeqNumber, ack: SeqNumber, opt: MptcpOption<'_>, data: &[u8]| {
        let enc = opt.encode().unwrap();
        let mut t = TcpRepr::new(40000, 80);
        t.seq = seq;
        t.ack = ack;
        t.flags = TcpFlags(flags);
        t.window = 65535;
        if flags & TcpFlags::SYN != 0 {
            t.mss = Some(1460);
            t.window_scale = Some(7);
            t.sack_permitted = true;
        }
        t.unknown.push(TCPOPT_MPTCP, enc.as_slice());
        let mut buf = vec![0u8; 1600];
        let n = emit_packet(client, server, 64, &t, &[data], &mut buf).unwrap();
        buf.truncate(n);
        buf
    };
    let capable = |server_key: Option<u64>, data_len: Option<u16>| {
        MptcpOption::MpCapable(MpCapable {
            version: MptcpVersion::V1,
            flags: MpCapableFlags(MpCapableFlags::H),
            sender_key: server_key.map(|_| client_key),
            receiver_key: server_key,
            data_len,
            checksum: None,
        })
    };

    let mut s = stack(2, "10.0.0.2", true);
    s.listen(80).unwrap();
    let now = Instant::from_millis(1);
    let mut buf = vec![0u8; 2048];

    // SYN with MP_CAPABLE v1 (no key); the SYN/ACK brings the server's key.
    s.handle_packet(
        now,
        &pkt(TcpFlags::SYN, isn, SeqNumber(0), capable(None, None), &[]),
    );
    let n = s.poll_transmit(now, &mut buf).expect("SYN/ACK");
    let (ip, tcp) = IpRepr::parse(&buf[..n]).unwrap();
    let synack = TcpRepr::parse(ip.src, ip.dst, tcp, true).unwrap();
    assert!(synack.flags.syn() && synack.flags.ack());
    let server_key = mptcp_options(&synack)
        .find_map(
            |o| match MptcpOption::parse(o, ParseCtx::from_repr(&synack)) {
                Ok(MptcpOption::MpCapable(c)) => c.sender_key,
                _ => None,
            },
        )
        .expect("MP_CAPABLE with the server's key in the SYN/ACK");
    let ack = synack.seq + 1;
    while s.poll_transmit(now, &mut buf).is_some() {}

    // Third ACK with both keys, then the first mapping (2000 bytes) in two
    // segments, both repeating MP_CAPABLE with data_len 2000.
    let data: Vec<u8> = (0..7500usize).map(|i| (i * 7 + (i >> 8)) as u8).collect();
    let data_flags = TcpFlags::ACK | TcpFlags::PSH;
    let third_ack = capable(Some(server_key), None);
    s.handle_packet(now, &pkt(TcpFlags::ACK, isn + 1, ack, third_ack, &[]));
    for (ssn, range) in [(1, 0..1000), (1001, 1000..2000)] {
        let opt = capable(Some(server_key), Some(2000));
        s.handle_packet(now, &pkt(data_flags, isn + ssn, ack, opt, &data[range]));
    }
    while s.poll_transmit(now, &mut buf).is_some() {}

    // 500 bytes at SSN 2001 that belong 5000 bytes after the first mapping.
    let client_idsn = idsn(HashAlg::Sha256, client_key);
    let dss = MptcpOption::Dss(Dss {
        data_fin: false,
        data_ack: Some(DataAck {
            value: idsn(HashAlg::Sha256, server_key).wrapping_add(1),
            is_64bit: true,
        }),
        mapping: Some(Mapping {
            dsn: client_idsn.wrapping_add(1 + 2000 + 5000),
            dsn_64bit: true,
            ssn: 2001,
            data_len: 500,
            checksum: None,
        }),
    });
    s.handle_packet(now, &pkt(data_flags, isn + 2001, ack, dss, &data[7000..]));
    // The subflow takes all 2500 bytes (its delayed ACK comes once the timer
    // fires); the data level acknowledges only the first mapping (the 500
    // bytes wait behind the hole).
    let later = Instant::from_millis(200);
    s.handle_timeout(later);
    let mut last = None;
    while let Some(n) = s.poll_transmit(later, &mut buf) {
        let (ip, tcp) = IpRepr::parse(&buf[..n]).unwrap();
        let seg = TcpRepr::parse(ip.src, ip.dst, tcp, true).unwrap();
        let data_ack = mptcp_options(&seg).find_map(|o| {
            match MptcpOption::parse(o, ParseCtx::from_repr(&seg)) {
                Ok(MptcpOption::Dss(d)) => d.data_ack.map(|a| a.expand(client_idsn)),
                _ => None,
            }
        });
        last = Some((seg.ack, data_ack));
    }
    assert_eq!(
        last,
        Some((isn + 2501, Some(client_idsn.wrapping_add(2001)))),
        "(subflow ACK, DATA_ACK) of the server's last segment"
    );

    let evs = events(&mut s);
    let sid = accepted(&evs);
    let mut got = Vec::new();
    let mut rbuf = vec![0u8; 16 * 1024];
    while let Ok(n) = s.recv(sid, &mut rbuf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&rbuf[..n]);
    }
    assert_eq!(
        got.len(),
        2000,
        "the server must deliver the first mapping and nothing past the hole"
    );
    assert!(got == data[..2000], "the first mapping arrived corrupted");

    // Still a live MPTCP connection: no reset, no fallback (the fallback
    // counter only counts closed connections; `info` tells the live one's).
    assert_eq!(s.state(sid), Some(mptun_stack::State::Established));
    let info = s.info(sid).unwrap();
    let m = info.mptcp.expect("MPTCP connection");
    assert!(!m.fallback, "fell back: {:?}", m.fallback_reason);
    assert_eq!(m.remote_key, Some(client_key));
    assert_eq!(info.bytes_received, 2000);
    let evs = [evs, events(&mut s)].concat();
    assert!(
        !evs.iter().any(|e| matches!(e, Event::Closed { .. })),
        "{evs:?}"
    );
    let c = s.counters();
    assert_eq!((c.resets_sent, c.mptcp_fallbacks), (0, 0));
}
