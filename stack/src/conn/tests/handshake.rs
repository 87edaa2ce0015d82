//! The MP_CAPABLE handshake (RFC 8684 §3.1; RFC 6824 §3.1 for v0), in both
//! roles, and the fallbacks it can end in.

use super::*;
use crate::mptcp::FallbackReason;
use crate::wire::mptcp::{MpCapable, MpCapableFlags};

fn capable(
    version: MptcpVersion,
    flags: MpCapableFlags,
    sender_key: Option<u64>,
    receiver_key: Option<u64>,
    data_len: Option<u16>,
    checksum: Option<u16>,
) -> MptcpOption<'static> {
    MptcpOption::MpCapable(MpCapable {
        version,
        flags,
        sender_key,
        receiver_key,
        data_len,
        checksum,
    })
}

// ----- client, v1 -----

#[test]
fn v1_client_syn_offers_mp_capable_without_a_key() {
    let mut h = Harness::connecting(V1, settings());
    let syn = h.recv_seg();
    syn.assert_tcp(SYN, ISS, 0, 0);
    // v1 moved the client's key to the third ACK (RFC 8684 §3.1).
    syn.assert_opts(&[capable(V1, h.our_capable_flags(), None, None, None, None)]);
    assert_eq!(h.phase(), Phase::Handshake);
    h.assert_no_segment();
}

#[test]
fn v1_client_learns_the_key_from_the_synack_and_echoes_both_on_the_third_ack() {
    let mut h = Harness::connecting(V1, settings());
    h.recv_seg();
    let fx = h.feed(0, SYN | ACK, &[h.synack_capable()]);
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(h.conn.state(), State::Established);
    // Keys exchanged, but not fully established before the server's DATA_ACK.
    assert_eq!(h.phase(), Phase::PreEstablished);
    let mp = h.conn.info().mptcp.unwrap();
    assert_eq!(mp.remote_key, Some(PEER_KEY));
    assert_eq!(mp.remote_token, Some(crypto::token(h.alg(), PEER_KEY)));
    assert!(!mp.fallback);

    let third = h.recv_seg();
    third.assert_tcp(ACK, ISS + 1, IRS + 1, 0);
    let keys = capable(
        V1,
        h.our_capable_flags(),
        Some(LOCAL_KEY),
        Some(PEER_KEY),
        None,
        None,
    );
    third.assert_opts(&[keys]);
    h.assert_no_segment();
}

#[test]
fn v1_client_first_data_carries_mp_capable_with_its_data_level_length() {
    let mut h = Harness::connecting(V1, settings());
    h.recv_seg();
    let _ = h.feed(0, SYN | ACK, &[h.synack_capable()]);
    h.recv_seg();
    let data = bytes(3000, 1);
    assert_eq!(h.conn.send(&data), Some(3000));

    // Only the first mapping (one MSS of data) goes before the server's
    // DATA_ACK: it rides in MP_CAPABLE (from SSN 1 at our IDSN + 1, implied),
    // for a server that lost the third ACK must see it before any DSS. The
    // option takes 24 bytes of the segment, so the mapping needs a second
    // one; both name the whole mapping, as Linux does.
    let first = h.recv_all();
    let keys = capable(
        V1,
        h.our_capable_flags(),
        Some(LOCAL_KEY),
        Some(PEER_KEY),
        Some(MSS as u16),
        None,
    );
    assert_eq!(first.len(), 2, "{first:?}");
    first[0].assert_tcp(ACK, ISS + 1, IRS + 1, MSS - 24);
    first[1].assert_tcp(ACK | PSH, ISS + 1 + (MSS - 24) as u32, IRS + 1, 24);
    for s in &first {
        s.assert_opts(&[keys]);
    }
    assert_eq!(
        [&first[0].payload[..], &first[1].payload].concat(),
        data[..MSS]
    );

    // The server's first DATA_ACK makes the connection fully established; the
    // rest goes with DSS mappings, and the path manager may start.
    let fx = h.feed(0, ACK, &[h.peer_dss_ack()]);
    assert_eq!(fx.requests, vec![Request::StartPathManager]);
    assert_eq!(h.phase(), Phase::Established);
    let segs = h.recv_all();
    let lens: Vec<usize> = segs.iter().map(|s| s.payload.len()).collect();
    assert_eq!(lens, [DSS_SEG, DSS_SEG, 2000 - 2 * DSS_SEG]);
    let mut off = MSS;
    for s in &segs {
        assert_eq!((s.seq, s.ack), (ISS + 1 + off as u32, IRS + 1));
        assert_eq!(s.payload, data[off..off + s.payload.len()]);
        // The 2000 bytes were mapped at once: the same mapping on each segment.
        s.assert_opts(&[dss_map(
            h.peer_dsn(0),
            h.local_dsn(MSS as u64),
            1 + MSS as u32,
            2000,
            None,
        )]);
        off += s.payload.len();
    }
}

#[test]
fn v1_client_with_checksums_puts_the_checksum_in_mp_capable_first_data() {
    let s = MptcpSettings {
        checksum: true,
        ..settings()
    };
    let mut h = Harness::connecting(V1, s);
    let syn = h.recv_seg();
    let a = MpCapableFlags(MpCapableFlags::A | MpCapableFlags::H);
    syn.assert_opts(&[capable(V1, a, None, None, None, None)]);
    assert!(h.feed(0, SYN | ACK, &[h.synack_capable()]).is_empty());
    assert!(h.conn.info().mptcp.unwrap().checksum);
    h.recv_seg();
    let data = bytes(500, 2);
    h.conn.send(&data);
    let first = h.recv_seg();
    let csum = dss_checksum(h.local_dsn(0), 1, &data);
    first.assert_opts(&[capable(
        V1,
        a,
        Some(LOCAL_KEY),
        Some(PEER_KEY),
        Some(500),
        Some(csum),
    )]);
}

#[test]
fn v1_client_falls_back_on_a_plain_synack() {
    let mut h = Harness::connecting(V1, settings());
    h.recv_seg();
    let fx = h.feed(0, SYN | ACK, &[]);
    assert!(fx.is_empty(), "{fx:?}");
    let mp = h.conn.info().mptcp.unwrap();
    assert!(mp.fallback);
    assert_eq!(
        h.conn.data_level().unwrap().fallback_reason(),
        Some(FallbackReason::NoMpCapableSynAck)
    );
    // Plain TCP from here on: no MPTCP option on anything.
    let ack = h.recv_seg();
    ack.assert_tcp(ACK, ISS + 1, IRS + 1, 0);
    ack.assert_opts(&[]);
    h.conn.send(b"plain");
    let data = h.recv_seg();
    data.assert_tcp(ACK | PSH, ISS + 1, IRS + 1, 5);
    data.assert_opts(&[]);
}

#[test]
fn v1_client_allowed_v0_refuses_a_plain_synack_and_asks_for_a_v0_retry() {
    let s = MptcpSettings {
        retry_v0: true,
        ..settings()
    };
    let mut h = Harness::connecting(V1, s);
    h.recv_seg();
    let fx = h.feed(0, SYN | ACK, &[]);
    assert_eq!(fx.requests, vec![Request::RetryV0]);
    // The half-open connection is reset; the stack opens it again with v0.
    assert_one_rst(&h, &fx, 0, &[]);
    assert_eq!(fx.rsts[0].reply.seq, SeqNumber(ISS + 1));
    assert_eq!(h.conn.state(), State::Closed);
    assert!(!h.conn.info().mptcp.unwrap().fallback);
    h.assert_no_segment();
}

#[test]
fn synack_not_acknowledging_our_syn_does_not_set_the_peers_key() {
    let mut h = Harness::connecting(V1, settings());
    h.recv_seg();
    // A blind SYN/ACK: right 4-tuple, wrong ACK, an attacker's key.
    let mut bogus = h.seg(0, SYN | ACK);
    bogus.ack = SeqNumber(ISS + 77);
    let forged = MptcpOption::MpCapable(MpCapable {
        sender_key: Some(0xbad),
        ..match h.synack_capable() {
            MptcpOption::MpCapable(c) => c,
            _ => unreachable!(),
        }
    });
    let fx = h.feed_seg(0, &bogus, &[forged]);
    // RFC 9293 §3.10.7.3: a RST at the bad ACK, and nothing else.
    assert_eq!(fx.rsts.len(), 1);
    assert_eq!(fx.rsts[0].reply.seq, SeqNumber(ISS + 77));
    assert_eq!(rst_options(&fx.rsts[0]), expect(&[]));
    assert_eq!(h.conn.state(), State::SynSent);
    assert_eq!(h.phase(), Phase::Handshake);
    assert_eq!(h.conn.info().mptcp.unwrap().remote_key, None);

    // The real SYN/ACK still sets the real key.
    assert!(h.feed(0, SYN | ACK, &[h.synack_capable()]).is_empty());
    assert_eq!(h.conn.info().mptcp.unwrap().remote_key, Some(PEER_KEY));
    assert_eq!(h.phase(), Phase::PreEstablished);
}

// ----- client, v0 -----

#[test]
fn v0_client_sends_its_key_in_the_syn_and_both_keys_on_the_third_ack() {
    let mut h = Harness::connecting(V0, settings());
    // v0 asks for DSS checksums (as the multipath-tcp.org kernel does).
    let a = MpCapableFlags(MpCapableFlags::A | MpCapableFlags::H);
    let syn = h.recv_seg();
    syn.assert_tcp(SYN, ISS, 0, 0);
    syn.assert_opts(&[capable(V0, a, Some(LOCAL_KEY), None, None, None)]);

    assert!(h.feed(0, SYN | ACK, &[h.synack_capable()]).is_empty());
    assert_eq!(h.conn.info().mptcp.unwrap().remote_key, Some(PEER_KEY));
    let third = h.recv_seg();
    third.assert_tcp(ACK, ISS + 1, IRS + 1, 0);
    third.assert_opts(&[capable(V0, a, Some(LOCAL_KEY), Some(PEER_KEY), None, None)]);

    // v0 has no MP_CAPABLE data form: data goes at once with a DSS mapping
    // (and its checksum) and a DATA_ACK.
    let data = bytes(700, 3);
    h.conn.send(&data);
    let seg = h.recv_seg();
    seg.assert_tcp(ACK | PSH, ISS + 1, IRS + 1, 700);
    let csum = dss_checksum(h.local_dsn(0), 1, &data);
    seg.assert_opts(&[dss_map(h.peer_dsn(0), h.local_dsn(0), 1, 700, Some(csum))]);
    // The keys go only once.
    let fx = h.feed(0, ACK, &[h.peer_dss_ack()]);
    assert_eq!(fx.requests, vec![Request::StartPathManager]);
    assert_eq!(h.phase(), Phase::Established);
}

#[test]
fn v0_client_falls_back_on_a_plain_synack() {
    let mut h = Harness::connecting(V0, settings());
    h.recv_seg();
    let fx = h.feed(0, SYN | ACK, &[]);
    assert!(fx.is_empty(), "{fx:?}");
    assert!(h.conn.info().mptcp.unwrap().fallback);
    h.recv_seg().assert_opts(&[]);
}

// ----- server -----

#[test]
fn v1_server_answers_with_its_key_and_is_established_by_the_third_ack() {
    let mut h = Harness::accepting(V1, false, settings());
    let synack = h.recv_seg();
    synack.assert_tcp(SYN | ACK, ISS, IRS + 1, 0);
    synack.assert_opts(&[capable(
        V1,
        h.our_capable_flags(),
        Some(LOCAL_KEY),
        None,
        None,
        None,
    )]);
    assert_eq!(h.phase(), Phase::Handshake);
    assert_eq!(h.conn.info().mptcp.unwrap().remote_key, None);

    let fx = h.feed(0, ACK, &[h.third_ack_capable()]);
    assert_eq!(fx.requests, vec![Request::StartPathManager]);
    assert_eq!(h.phase(), Phase::Established);
    assert_eq!(h.conn.state(), State::Established);
    assert_eq!(h.conn.info().mptcp.unwrap().remote_key, Some(PEER_KEY));
    h.assert_no_segment();

    // Our data goes with DSS from the first byte.
    let data = bytes(400, 4);
    h.conn.send(&data);
    let seg = h.recv_seg();
    seg.assert_tcp(ACK | PSH, ISS + 1, IRS + 1, 400);
    seg.assert_opts(&[dss_map(h.peer_dsn(0), h.local_dsn(0), 1, 400, None)]);
}

#[test]
fn v1_server_takes_the_clients_first_data_with_mp_capable_when_the_third_ack_is_lost() {
    let mut h = Harness::accepting(V1, false, settings());
    h.recv_seg();
    let fx = h.feed_data(0, b"hello", &[h.first_data_capable(5)]);
    assert_eq!(fx.requests, vec![Request::StartPathManager]);
    assert_eq!(h.phase(), Phase::Established);
    assert_eq!(h.read_all(), (b"hello".to_vec(), false));
    let ack = h.recv_seg();
    ack.assert_tcp(ACK, ISS + 1, IRS + 6, 0);
    ack.assert_opts(&[dss_ack(h.peer_dsn(5))]);
}

#[test]
fn v1_server_falls_back_when_the_third_ack_has_no_mp_capable() {
    let mut h = Harness::accepting(V1, false, settings());
    h.recv_seg();
    let fx = h.feed(0, ACK, &[]);
    assert!(fx.is_empty(), "no path manager for plain TCP: {fx:?}");
    assert_eq!(
        h.conn.data_level().unwrap().fallback_reason(),
        Some(FallbackReason::NoMpCapableAck)
    );
    h.conn.send(b"plain");
    h.recv_seg().assert_opts(&[]);
}

#[test]
fn v1_server_with_checksum_requested_by_the_client_says_so() {
    let mut h = Harness::accepting(V1, true, settings());
    let synack = h.recv_seg();
    let a = MpCapableFlags(MpCapableFlags::A | MpCapableFlags::H);
    synack.assert_opts(&[capable(V1, a, Some(LOCAL_KEY), None, None, None)]);
    let fx = h.feed(0, ACK, &[h.third_ack_capable()]);
    assert_eq!(fx.requests, vec![Request::StartPathManager]);
    let data = bytes(300, 5);
    h.conn.send(&data);
    let csum = dss_checksum(h.local_dsn(0), 1, &data);
    h.recv_seg()
        .assert_opts(&[dss_map(h.peer_dsn(0), h.local_dsn(0), 1, 300, Some(csum))]);
}

#[test]
fn v0_server_learns_the_key_from_the_syn_and_is_established_by_the_third_ack() {
    let mut h = Harness::accepting(V0, false, settings());
    // The v0 SYN carried the client's key.
    assert_eq!(h.conn.info().mptcp.unwrap().remote_key, Some(PEER_KEY));
    let synack = h.recv_seg();
    synack.assert_tcp(SYN | ACK, ISS, IRS + 1, 0);
    let a = MpCapableFlags(MpCapableFlags::A | MpCapableFlags::H);
    synack.assert_opts(&[capable(V0, a, Some(LOCAL_KEY), None, None, None)]);
    assert_eq!(h.phase(), Phase::Handshake);

    let fx = h.feed(0, ACK, &[h.third_ack_capable()]);
    assert_eq!(fx.requests, vec![Request::StartPathManager]);
    assert_eq!(h.phase(), Phase::Established);
    let data = bytes(200, 6);
    h.conn.send(&data);
    let csum = dss_checksum(h.local_dsn(0), 1, &data);
    h.recv_seg()
        .assert_opts(&[dss_map(h.peer_dsn(0), h.local_dsn(0), 1, 200, Some(csum))]);
}

#[test]
fn v0_server_is_established_by_data_with_dss_when_the_third_ack_is_lost() {
    let mut h = Harness::accepting(V0, false, settings());
    h.recv_seg();
    let data = bytes(100, 7);
    let fx = h.feed_data(0, &data, &[h.peer_map(0, 1, &data)]);
    assert_eq!(fx.requests, vec![Request::StartPathManager]);
    assert_eq!(h.phase(), Phase::Established);
    assert_eq!(h.read_all(), (data, false));
}

#[test]
fn v1_server_sends_nothing_bare_when_data_overtakes_the_clients_mp_capable() {
    let mut h = Harness::accepting(V1, false, settings());
    h.recv_seg();
    // The third ACK and the first data (with MP_CAPABLE) are lost or late; the
    // next data, with its DSS, arrives first.
    let mut later = TcpRepr {
        payload: b"world",
        ..h.seg(0, ACK | PSH)
    };
    later.seq = SeqNumber(IRS + 1 + 5);
    let fx = h.feed_seg(0, &later, &[h.peer_map(5, 6, b"world")]);
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(h.phase(), Phase::Handshake);
    // A duplicate ACK without MPTCP options would make Linux's client fall
    // back (it has no DATA_ACK yet): nothing goes, now or at any timer.
    h.assert_no_segment();
    while h
        .conn
        .poll_at()
        .is_some_and(|at| at <= h.now + Duration::from_secs(1))
    {
        assert!(h.fire_timer().is_empty());
        h.assert_no_segment();
    }

    // The client's retransmission of its first data carries MP_CAPABLE.
    let fx = h.feed_data(0, b"hello", &[h.first_data_capable(5)]);
    assert_eq!(fx.requests, vec![Request::StartPathManager]);
    assert_eq!(h.phase(), Phase::Established);
    assert_eq!(h.read_all(), (b"helloworld".to_vec(), false));
    let ack = h.recv_seg();
    ack.assert_tcp(ACK, ISS + 1, IRS + 11, 0);
    ack.assert_opts(&[dss_ack(h.peer_dsn(10))]);
    assert!(!h.conn.info().mptcp.unwrap().fallback);
}
