//! DSS checksum failures and MP_FAIL (RFC 8684 §3.7, as Linux does it): alone
//! on a connection that never had a second subflow, the side that saw the bad
//! checksum sends MP_FAIL and takes the subflow's bytes as they are; the peer
//! echoes it and puts an infinite mapping on its next data, and both are plain
//! TCP from there. With a joined subflow, that subflow is reset instead, with
//! MP_FAIL and MP_TCPRST.

use super::*;
use crate::mptcp::{rst_reason, FallbackReason};
use crate::wire::mptcp::MpFail;

fn with_checksums() -> MptcpSettings {
    MptcpSettings {
        checksum: true,
        ..settings()
    }
}

/// Every single-subflow set-up with DSS checksums: v1 asked for them, v0 has
/// them by default.
fn all_with_checksums() -> Vec<(&'static str, Harness)> {
    vec![
        ("v1 client", Harness::client_with(V1, with_checksums())),
        ("v0 client", Harness::client(V0)),
        ("v1 server", Harness::server_with(V1, with_checksums())),
        ("v0 server", Harness::server(V0)),
    ]
}

fn mp_fail(dsn: u64) -> MptcpOption<'static> {
    MptcpOption::MpFail(MpFail { dsn })
}

/// The peer's mapping of `payload` at data offset `off`, subflow byte `ssn`,
/// with a checksum that does not match.
fn corrupt_map(h: &Harness, off: u64, ssn: u32, payload: &[u8]) -> MptcpOption<'static> {
    let dsn = h.peer_dsn(off);
    let bad = dss_checksum(dsn, ssn, payload) ^ 0x0101;
    dss_map(h.data_seen, dsn, ssn, payload.len() as u16, Some(bad))
}

/// An infinite mapping (data-level length 0) from data offset `off`.
fn infinite(h: &Harness, ack: u64, off: u64, ssn: u32) -> MptcpOption<'static> {
    dss_map(ack, h.peer_dsn(off), ssn, 0, h.checksum.then_some(0))
}

#[test]
fn checksum_failure_alone_sends_mp_fail_and_the_peers_infinite_mapping_ends_mptcp() {
    for (name, mut h) in all_with_checksums() {
        let data = bytes(500, 1);
        let fx = h.feed_data(0, &data, &[corrupt_map(&h, 0, 1, &data)]);
        assert!(fx.is_empty(), "{name}: {fx:?}");
        // The bytes are taken as they are, as plain TCP would.
        assert_eq!(h.read_all(), (data, false), "{name}");
        let ack = h.recv_seg();
        ack.assert_tcp(ACK, ISS + 1, IRS + 501, 0);
        ack.assert_opts(&[mp_fail(h.peer_dsn(0)), dss_ack(h.peer_dsn(500))]);
        assert_eq!(h.stats().checksum_errors, 1, "{name}");
        // Heading for a fallback: no more subflows.
        assert!(!h.conn.join_allowed(), "{name}");

        // Unanswered, MP_FAIL goes again.
        let _ = h.fire_timer();
        h.recv_seg()
            .assert_opts(&[mp_fail(h.peer_dsn(0)), dss_ack(h.peer_dsn(500))]);
        assert_eq!(h.stats().mp_fail_tx, 2, "{name}");

        // The peer's answer: an infinite mapping on its next data.
        let more = bytes(300, 2);
        let inf = infinite(&h, h.data_seen, 500, 501);
        let fx = h.feed_data(0, &more, &[inf]);
        assert!(fx.is_empty(), "{name}: {fx:?}");
        let mp = h.conn.info().mptcp.unwrap();
        assert!(mp.fallback, "{name}");
        assert_eq!(
            h.conn.data_level().unwrap().fallback_reason(),
            Some(FallbackReason::InfiniteMapping)
        );
        assert_eq!(h.read_all(), (more, false), "{name}");
        let ack = h.recv_seg();
        ack.assert_tcp(ACK, ISS + 1, IRS + 801, 0);
        ack.assert_opts(&[]);
        assert_eq!(h.stats().infinite_map_rx, 1, "{name}");
        // Answered: MP_FAIL is not repeated any more.
        while h.conn.poll_at().is_some() {
            assert!(h.fire_timer().is_empty(), "{name}");
            h.assert_no_segment();
        }
        assert_eq!(h.stats().mp_fail_tx, 2, "{name}");
    }
}

/// Found by two_endpoints (66be32da): the peer sent its data again at the
/// data level before our MP_FAIL reached it, and that copy, sent once more
/// after the MP_FAIL, carried its infinite mapping. The infinite mapping
/// places those bytes at their old DSNs, before what we took raw: taken as
/// they come they would be delivered twice. It resets, as any mapping that
/// puts the raw stream's bytes elsewhere does after our MP_FAIL.
#[test]
fn an_infinite_mapping_on_data_sent_again_after_our_mp_fail_resets() {
    for (name, mut h) in all_with_checksums() {
        let data = bytes(500, 4);
        let _ = h.feed_data(0, &data, &[corrupt_map(&h, 0, 1, &data)]);
        assert_eq!(h.read_all(), (data.clone(), false), "{name}");
        let _ = h.recv_all();
        // The same 500 bytes again, at subflow byte 501, mapped (infinitely)
        // from data offset 0.
        let inf = infinite(&h, h.data_seen, 0, 501);
        let fx = h.feed_data(0, &data, &[inf]);
        assert_one_rst(&h, &fx, 0, &[tcprst(rst_reason::MIDDLEBOX)]);
        let mut buf = [0u8; 1024];
        let (r, _) = h.conn.recv(h.now, &mut buf);
        assert_eq!(r, Err(false), "{name}: reset, nothing delivered twice");
        assert_eq!(h.conn.state(), State::Closed, "{name}");
    }
}

/// The peer's first 100 bytes taken by their mapping, then our 50 bytes
/// acknowledged without any option: we fall back. Returns the peer's bytes.
fn fallen_back_after_100_bytes(h: &mut Harness, name: &str) -> Vec<u8> {
    let data = bytes(100, 5);
    let map = h.peer_map(0, 1, &data);
    let _ = h.feed_data(0, &data, &[map]);
    assert_eq!(h.read_all(), (data.clone(), false), "{name}");
    assert_eq!(h.conn.send(&bytes(50, 6)), Some(50), "{name}");
    let _ = h.recv_all();
    let _ = h.feed(0, ACK, &[]);
    assert_eq!(h.phase(), Phase::Fallback, "{name}");
    let _ = h.recv_all();
    data
}

/// two_endpoints (`fallback-then-data-level-copy-delivered-twice-1cb3d75`):
/// we fell back on a plain ACK of our data, while the peer, having sent its
/// bytes again at the data level on the same subflow (which forbids it a
/// fallback), did not. The copy comes with its mapping, which places it
/// where the fallback had already placed the original: read as the
/// fallen-back stream, those bytes would be delivered twice. The connection
/// resets instead. Both versions and both roles.
#[test]
fn a_mapping_that_contradicts_our_fallback_resets() {
    for (name, mut h) in Harness::all() {
        let data = fallen_back_after_100_bytes(&mut h, name);
        // The peer's copy of its 100 bytes, at subflow byte 101.
        let copy = h.peer_map(0, 101, &data);
        let fx = h.feed_data(0, &data, &[copy]);
        assert_one_rst(&h, &fx, 0, &[tcprst(rst_reason::MIDDLEBOX)]);
        let mut buf = [0u8; 1024];
        let (r, _) = h.conn.recv(h.now, &mut buf);
        assert_eq!(r, Err(false), "{name}: reset, nothing delivered twice");
        assert_eq!(h.conn.state(), State::Closed, "{name}");
        assert_eq!(h.stats().bad_mappings, 1, "{name}");
    }
}

/// After our fallback the peer's mappings that agree with it (it fell back
/// too, late, or a middlebox stripped only some options) change nothing:
/// the bytes are the stream's next ones.
#[test]
fn a_mapping_that_agrees_with_our_fallback_is_the_next_bytes() {
    for (name, mut h) in Harness::all() {
        fallen_back_after_100_bytes(&mut h, name);
        let more = bytes(80, 7);
        let map = h.peer_map(100, 101, &more);
        let fx = h.feed_data(0, &more, &[map]);
        assert!(fx.rsts.is_empty(), "{name}: {:?}", fx.rsts);
        assert_eq!(h.read_all(), (more, false), "{name}");
    }
}

/// two_endpoints (`plain-fin-out-of-order-then-filled-with-options-4e9e2a1`):
/// the peer fell back (on an ACK of ours whose option a middlebox mangled)
/// and sent the rest of its data and its FIN plainly; that segment came
/// before an earlier one of the same mapping, which the peer had sent with
/// its DSS before it fell back. The FIN was taken in order only then, on a
/// segment with options, and counted as no sign of a fallback: we waited
/// for a DATA_FIN (dropped, never sent again) while the peer waited for
/// ours. A FIN that came plain counts as plain when it is taken in order.
#[test]
fn a_plain_fin_taken_in_order_by_a_segment_with_options_falls_back() {
    for (name, mut h) in Harness::all() {
        let data = bytes(300, 9);
        let map = h.peer_map(0, 1, &data);
        let first = TcpRepr {
            payload: &data[..100],
            ..h.seg(0, ACK | PSH)
        };
        let _ = h.feed_seg(0, &first, &[map]);
        let gap = h.paths[0].snd_nxt;
        let last = TcpRepr {
            seq: SeqNumber(gap.wrapping_add(100)),
            payload: &data[200..],
            ..h.seg(0, ACK | PSH | FIN)
        };
        let _ = h.feed_seg(0, &last, &[]);
        assert_ne!(h.phase(), Phase::Fallback, "{name}: out of order, not yet");
        let second = TcpRepr {
            payload: &data[100..200],
            ..h.seg(0, ACK | PSH)
        };
        let _ = h.feed_seg(0, &second, &[map]);
        assert_eq!(h.phase(), Phase::Fallback, "{name}");
        assert_eq!(h.read_all(), (data, true), "{name}");
    }
}

#[test]
fn unanswered_mp_fail_resets_the_connection() {
    let mut h = Harness::client_with(V1, with_checksums());
    let data = bytes(500, 3);
    let _ = h.feed_data(0, &data, &[corrupt_map(&h, 0, 1, &data)]);
    let mut fails = h.recv_all().len();
    let fx = loop {
        let fx = h.fire_timer();
        if !fx.is_empty() {
            break fx;
        }
        fails += h.recv_all().len();
    };
    assert_eq!(fails, 6, "the first MP_FAIL and five repeats");
    assert_one_rst(
        &h,
        &fx,
        0,
        &[mp_fail(h.peer_dsn(0)), tcprst(rst_reason::MIDDLEBOX)],
    );
    assert_eq!(h.conn.state(), State::Closed);
}

#[test]
fn peer_mp_fail_is_echoed_and_answered_with_an_infinite_mapping() {
    for (name, mut h) in all_with_checksums() {
        let first = bytes(300, 4);
        h.conn.send(&first);
        h.recv_seg();
        // The peer found our mapping's checksum wrong: no DATA_ACK for it.
        let fx = h.feed(0, ACK, &[mp_fail(h.local_dsn(0)), dss_ack(h.local_dsn(0))]);
        assert!(fx.is_empty(), "{name}: {fx:?}");
        let echo = h.recv_seg();
        echo.assert_tcp(ACK, ISS + 301, IRS + 1, 0);
        echo.assert_opts(&[mp_fail(h.local_dsn(0)), dss_ack(h.peer_dsn(0))]);
        assert_eq!(h.stats().mp_fail_rx, 1, "{name}");

        // Our next data carries the infinite mapping: data-level length 0,
        // from the DSN and SSN of its first byte (as Linux).
        let second = bytes(200, 5);
        h.conn.send(&second);
        let seg = h.recv_seg();
        seg.assert_tcp(ACK | PSH, ISS + 301, IRS + 1, 200);
        let csum = h.checksum.then_some(0);
        seg.assert_opts(&[dss_map(h.peer_dsn(0), h.local_dsn(300), 301, 0, csum)]);
        assert!(h.conn.info().mptcp.unwrap().fallback, "{name}");
        assert_eq!(
            h.conn.data_level().unwrap().fallback_reason(),
            Some(FallbackReason::MpFail)
        );
        assert_eq!(h.stats().infinite_map_tx, 1, "{name}");
        // Plain TCP from there.
        h.conn.send(b"plain");
        let seg = h.recv_seg();
        seg.assert_tcp(ACK | PSH, ISS + 501, IRS + 1, 5);
        seg.assert_opts(&[]);
    }
}

#[test]
fn checksum_failure_on_a_connection_with_a_join_resets_that_subflow() {
    let mut client = Harness::client_with(V1, with_checksums());
    let cp = client.active_join();
    let mut server = Harness::server_with(V1, with_checksums());
    let sp = server.passive_join();
    for (name, mut h, p) in [("client", client, cp), ("server", server, sp)] {
        let data = bytes(400, 6);
        let fx = h.feed_data(p, &data, &[corrupt_map(&h, 0, 1, &data)]);
        // No fallback once a subflow joined: this subflow goes, its data
        // will come again on another.
        assert_one_rst(
            &h,
            &fx,
            p,
            &[mp_fail(h.peer_dsn(0)), tcprst(rst_reason::MIDDLEBOX)],
        );
        assert_eq!(fx.requests, vec![Request::Unbind(h.tuple(p))], "{name}");
        assert_eq!(h.read_all(), (vec![], false), "{name}");
        assert!(!h.conn.info().mptcp.unwrap().fallback, "{name}");
        // The first subflow carries the data again, intact.
        let _ = h.feed_data(0, &data, &[h.peer_map(0, 1, &data)]);
        assert_eq!(h.read_all(), (data, false), "{name}");
    }
}

/// A bare MP_FAIL asks for an infinite mapping, which a connection with a
/// join cannot give: there is no falling back, and the subflow it came on
/// goes (the peer, whose joins may not have been complete when it decided,
/// takes that subflow's bytes as they come; two_endpoints e3a1353 delivered
/// a stripped copy of data sent again there twice). The others carry on.
#[test]
fn peer_mp_fail_on_a_connection_with_a_join_asks_for_no_infinite_mapping() {
    let mut h = Harness::client_with(V1, with_checksums());
    let p = h.active_join();
    let fx = h.feed(p, ACK, &[mp_fail(h.local_dsn(0)), h.peer_dss_ack()]);
    assert_eq!(h.stats().mp_fail_rx, 1);
    assert_one_rst(&h, &fx, p, &[tcprst(rst_reason::MIDDLEBOX)]);
    h.assert_no_segment();
    h.conn.send(b"data");
    let seg = h.recv_seg();
    assert_eq!(seg.dss().mapping.map(|m| m.data_len), Some(4));
    assert!(!h.conn.info().mptcp.unwrap().fallback);
}

/// Found by two_endpoints (d56490c): our MP_FAIL answered by the peer's echo,
/// the peer owing an infinite mapping on data it never sends, and our own
/// data taken by the subflow but never acknowledged at the data level (the
/// network had lengthened its mapping, so the peer waits for the rest). The
/// exchange holds our data-level retransmission back and would never end:
/// after five data-level timeouts with growing waits the connection resets.
#[test]
fn an_answered_mp_fail_that_never_ends_in_a_fallback_resets() {
    let mut h = Harness::client_with(V1, with_checksums());
    let data = bytes(500, 5);
    let _ = h.feed_data(0, &data, &[corrupt_map(&h, 0, 1, &data)]);
    let _ = h.recv_all();
    let fx = h.feed(0, ACK, &[mp_fail(h.peer_dsn(0))]);
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(h.conn.send(&bytes(300, 6)), Some(300));
    assert!(!h.recv_all().is_empty(), "our data goes out");
    // The subflow takes it; the data level never does.
    let fx = h.feed(0, ACK, &[dss_ack(h.peer_dsn(500))]);
    assert!(fx.is_empty(), "{fx:?}");
    let _ = h.recv_all();
    let (start, mut timeouts) = (h.now, 0);
    let fx = loop {
        assert!(h.conn.poll_at().is_some(), "a timer must stay armed");
        let fx = h.fire_timer();
        timeouts += 1;
        if !fx.is_empty() {
            break fx;
        }
        for out in h.recv_all() {
            assert!(
                out.payload.is_empty(),
                "no data sent again during the exchange"
            );
        }
        assert!(timeouts < 20, "no reset after {timeouts} timeouts");
    };
    assert_one_rst(
        &h,
        &fx,
        0,
        &[mp_fail(h.peer_dsn(0)), tcprst(rst_reason::MIDDLEBOX)],
    );
    assert_eq!(h.conn.state(), State::Closed);
    assert!(
        h.now.saturating_since(start) >= Duration::from_secs(10),
        "the waits grow: reset after {:?}",
        h.now.saturating_since(start)
    );
}

/// Found by two_endpoints: our data, acknowledged by the subflow but not at
/// the data level, went again at the data level on the same (only) subflow;
/// then the peer's MP_FAIL for the first copy. An infinite mapping would have
/// had the peer read the subflow's stream as the data stream, with those
/// bytes twice in it. After a data-level retransmission there is no fallback
/// (as Linux's `__mptcp_retrans` forbids it): the peer's MP_FAIL gets no
/// infinite mapping. The peer now takes the subflow's bytes as they come,
/// so the subflow (here the only one, and with it the connection) goes at
/// once, rather than carry data the peer would misplace.
#[test]
fn no_infinite_mapping_after_data_went_again_on_the_same_subflow() {
    let mut h = Harness::server_with(V1, with_checksums());
    let data = bytes(300, 7);
    h.conn.send(&data);
    let first = h.recv_seg();
    assert_eq!(first.payload.len(), 300);
    // The subflow acknowledges the bytes; the DATA_ACK does not move.
    let fx = h.feed(0, ACK, &[dss_ack(h.local_dsn(0))]);
    assert!(fx.is_empty(), "{fx:?}");
    let mut timeouts = 0;
    let again = loop {
        let _ = h.fire_timer();
        if let Some(s) = h.recv_all().into_iter().find(|s| !s.payload.is_empty()) {
            break s;
        }
        timeouts += 1;
        assert!(timeouts < 20, "the data never went again");
    };
    assert_eq!((again.seq, again.payload.len()), (ISS + 301, 300));
    let m = again.dss().mapping.expect("a mapping");
    assert_eq!((m.dsn, m.ssn), (h.local_dsn(0), 301));

    let fx = h.feed(0, ACK, &[mp_fail(h.local_dsn(0)), dss_ack(h.local_dsn(0))]);
    assert_one_rst(&h, &fx, 0, &[tcprst(rst_reason::MIDDLEBOX)]);
    assert_eq!(h.stats().mp_fail_rx, 1);
    assert_eq!(h.conn.send(b"more"), None, "the connection is over");
    for s in h.recv_all() {
        if let Some(m) = s.mp.dss.and_then(|d| d.mapping) {
            assert_ne!(m.data_len, 0, "an infinite mapping went out: {s:?}");
        }
    }
    assert!(!h.conn.info().mptcp.unwrap().fallback);
    assert_eq!(h.stats().infinite_map_tx, 0);
    assert_eq!(h.conn.state(), State::Closed);
}

/// Found by two_endpoints (fbd28cf1, campaign 19): a join's SYN was taken
/// (our SYN/ACK out), then a bad checksum on the first subflow, with no
/// subflow joined yet, made us send MP_FAIL and take that subflow's bytes as
/// they come. The join's third ACK then completed it, and the peer's data
/// sent again at the data level reached us on it as well: 1,400 bytes
/// delivered twice. A join still in its handshake when an MP_FAIL exchange
/// starts is now refused at its next step, as a new one is.
#[test]
fn a_join_half_open_when_our_mp_fail_goes_is_refused() {
    let mut h = Harness::server_with(V1, with_checksums());
    let p = h.accept_join(remote_ip2(), 2, false);
    let synack = h.recv_seg();
    assert_eq!((synack.path, synack.flags), (p, fl(SYN | ACK)));
    let data = bytes(500, 3);
    let fx = h.feed_data(0, &data, &[corrupt_map(&h, 0, 1, &data)]);
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(h.read_all(), (data, false));
    let ack = h.recv_seg();
    ack.assert_opts(&[mp_fail(h.peer_dsn(0)), dss_ack(h.peer_dsn(500))]);
    // The join's third ACK: refused.
    let fx = h.feed(p, ACK, &[h.peer_join_ack()]);
    assert_one_rst(&h, &fx, p, &[tcprst(rst_reason::MPTCP_ERROR)]);
    assert_eq!(h.stats().joins_established, 0);
}
