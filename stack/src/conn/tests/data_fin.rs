//! DATA_FIN (RFC 8684 §3.3.3) both ways: ours on a segment without data (SSN
//! 0, data-level length 1, DSN just past our data), repeated until the peer's
//! DATA_ACK covers it (DSN + 1); the peer's ending the data stream once every
//! byte before it is in; only the first DATA_FIN the peer names counts.

use super::*;

#[test]
fn data_fin_goes_alone_at_the_end_of_the_data() {
    for (name, mut h) in Harness::all() {
        h.conn.shutdown();
        // No TCP FIN: the subflow stays open for the data level.
        let fin = h.recv_seg();
        fin.assert_tcp(ACK, ISS + 1, IRS + 1, 0);
        fin.assert_opts(&[dss_data_fin(h.peer_dsn(0), h.local_dsn(0), h.checksum)]);
        h.assert_no_segment();
        assert_eq!(h.conn.send(b"late"), None, "{name}");
    }
}

#[test]
fn data_fin_follows_the_data_on_a_segment_of_its_own() {
    for (name, mut h) in Harness::all() {
        let data = bytes(600, 1);
        h.conn.send(&data);
        h.conn.shutdown();
        let segs = h.recv_all();
        assert_eq!(segs.len(), 2, "{name}: {segs:?}");
        segs[0].assert_tcp(ACK | PSH, ISS + 1, IRS + 1, 600);
        let csum = h.checksum.then(|| dss_checksum(h.local_dsn(0), 1, &data));
        segs[0].assert_opts(&[dss_map(h.peer_dsn(0), h.local_dsn(0), 1, 600, csum)]);
        // The DATA_FIN takes the DSN after the last byte, and no subflow byte.
        segs[1].assert_tcp(ACK, ISS + 601, IRS + 1, 0);
        segs[1].assert_opts(&[dss_data_fin(h.peer_dsn(0), h.local_dsn(600), h.checksum)]);
    }
}

#[test]
fn data_fin_repeats_until_data_acked_one_past_it() {
    for (name, mut h) in Harness::all() {
        h.conn.shutdown();
        h.recv_seg();
        // Not acknowledged: it goes again when its timer runs out.
        let fx = h.fire_timer();
        assert!(fx.is_empty(), "{name}: {fx:?}");
        h.recv_seg()
            .assert_opts(&[dss_data_fin(h.peer_dsn(0), h.local_dsn(0), h.checksum)]);
        // A DATA_ACK of the data alone does not acknowledge the DATA_FIN.
        let _ = h.feed(0, ACK, &[dss_ack(h.local_dsn(0))]);
        assert_eq!(h.stats().bad_data_acks, 0, "{name}");
        let _ = h.fire_timer();
        h.recv_seg()
            .assert_opts(&[dss_data_fin(h.peer_dsn(0), h.local_dsn(0), h.checksum)]);
        // DATA_ACK = DSN + 1 does; no more repeats.
        let _ = h.feed(0, ACK, &[dss_ack(h.local_dsn(1))]);
        assert_eq!(h.stats().bad_data_acks, 0, "{name}");
        while h.conn.poll_at().is_some() {
            let _ = h.fire_timer();
            h.assert_no_segment();
        }
        // Half closed: the peer may still send, and we still acknowledge.
        assert_eq!(h.conn.state(), State::Established, "{name}");
        let data = bytes(100, 2);
        let _ = h.feed_data(0, &data, &[h.peer_map(0, 1, &data)]);
        assert_eq!(h.read_all(), (data, false), "{name}");
        h.recv_seg().assert_opts(&[dss_ack(h.peer_dsn(100))]);
    }
}

#[test]
fn data_ack_beyond_our_data_fin_is_ignored() {
    let mut h = Harness::client(V1);
    h.conn.shutdown();
    h.recv_seg();
    let _ = h.feed(0, ACK, &[dss_ack(h.local_dsn(2))]);
    assert_eq!(h.stats().bad_data_acks, 1);
    // Still unacknowledged: it repeats.
    let _ = h.fire_timer();
    assert!(h.recv_seg().dss().data_fin);
}

#[test]
fn peer_data_fin_ends_the_stream_once_the_data_before_it_is_in() {
    for (name, mut h) in Harness::all() {
        // The DATA_FIN (on a pure ACK) overtakes the last 300 bytes.
        let fin = dss_data_fin(h.local_dsn(0), h.peer_dsn(300), h.checksum);
        let fx = h.feed(0, ACK, &[fin]);
        assert!(fx.is_empty(), "{name}: {fx:?}");
        assert_eq!(h.read_all(), (vec![], false), "{name}");
        assert!(!h.conn.data_level().unwrap().peer_data_finished(), "{name}");
        h.assert_no_segment();

        let data = bytes(300, 3);
        let _ = h.feed_data(0, &data, &[h.peer_map(0, 1, &data)]);
        assert_eq!(h.read_all(), (data, true), "{name}");
        // The DATA_FIN is acknowledged with the data: DATA_ACK = its DSN + 1.
        let ack = h.recv_seg();
        ack.assert_tcp(ACK, ISS + 1, IRS + 301, 0);
        ack.assert_opts(&[dss_ack(h.peer_dsn(301))]);
        assert_eq!(h.conn.info().bytes_received, 300, "{name}");
    }
}

#[test]
fn peer_data_fin_after_the_data_is_acknowledged_at_once() {
    for (name, mut h) in Harness::all() {
        let data = bytes(300, 4);
        let _ = h.feed_data(0, &data, &[h.peer_map(0, 1, &data)]);
        h.recv_seg();
        let fin = dss_data_fin(h.local_dsn(0), h.peer_dsn(300), h.checksum);
        let _ = h.feed(0, ACK, &[fin]);
        assert_eq!(h.read_all(), (data, true), "{name}");
        // Its DATA_ACK must reach the peer, which otherwise repeats it.
        let ack = h.recv_seg();
        ack.assert_tcp(ACK, ISS + 1, IRS + 301, 0);
        ack.assert_opts(&[dss_ack(h.peer_dsn(301))]);
    }
}

#[test]
fn peer_data_fin_on_its_last_data_segment() {
    let mut h = Harness::client(V1);
    let data = bytes(300, 5);
    // The F flag on a mapping with data: its length counts the DATA_FIN.
    let dss = MptcpOption::Dss(Dss {
        data_fin: true,
        data_ack: data_ack(h.local_dsn(0)),
        mapping: Some(Mapping {
            dsn: h.peer_dsn(0),
            dsn_64bit: true,
            ssn: 1,
            data_len: 301,
            checksum: None,
        }),
    });
    let _ = h.feed_data(0, &data, &[dss]);
    assert_eq!(h.read_all(), (data, true));
    h.recv_seg().assert_opts(&[dss_ack(h.peer_dsn(301))]);
}

/// Linux adds the DATA_FIN to its last mapping when the application closes:
/// the part of that mapping sent after the close carries it (length one
/// more, another checksum), the part sent before does not. With checksums
/// they are still one mapping, not a conflict to reset on.
#[test]
fn the_data_fin_added_to_a_mapping_half_sent_is_the_same_mapping() {
    let s = MptcpSettings {
        checksum: true,
        ..settings()
    };
    let mut h = Harness::client_with(V1, s);
    let data = bytes(600, 6);
    let dsn = h.peer_dsn(0);
    let _ = h.feed_data(0, &data[..300], &[h.peer_map(0, 1, &data)]);
    let mut sum = DssChecksum::new(dsn, 1, 601);
    sum.update(&data);
    let with_fin = MptcpOption::Dss(Dss {
        data_fin: true,
        data_ack: data_ack(h.local_dsn(0)),
        mapping: Some(Mapping {
            dsn,
            dsn_64bit: true,
            ssn: 1,
            data_len: 601,
            checksum: Some(sum.finish()),
        }),
    });
    let fx = h.feed_data(0, &data[300..], &[with_fin]);
    assert!(fx.rsts.is_empty(), "no reset: {:?}", fx.rsts);
    assert_eq!(h.read_all(), (data, true));
    assert_eq!(h.stats().bad_mappings, 0);
    assert_eq!(h.stats().checksum_errors, 0);
}

#[test]
fn a_second_data_fin_at_another_dsn_is_ignored() {
    for (name, mut h) in Harness::all() {
        let first = dss_data_fin(h.local_dsn(0), h.peer_dsn(600), h.checksum);
        let _ = h.feed(0, ACK, &[first]);
        // Another DATA_FIN, earlier in the stream: the first one named counts.
        let second = dss_data_fin(h.local_dsn(0), h.peer_dsn(300), h.checksum);
        let _ = h.feed(0, ACK, &[second]);
        let data = bytes(600, 6);
        let _ = h.feed_data(0, &data[..300], &[h.peer_map(0, 1, &data[..300])]);
        assert_eq!(h.read_all(), (data[..300].to_vec(), false), "{name}");
        h.recv_seg().assert_opts(&[dss_ack(h.peer_dsn(300))]);
        let _ = h.feed_data(0, &data[300..], &[h.peer_map(300, 301, &data[300..])]);
        assert_eq!(h.read_all(), (data[300..].to_vec(), true), "{name}");
        h.recv_seg().assert_opts(&[dss_ack(h.peer_dsn(601))]);
    }
}

#[test]
fn both_data_fins_acknowledged_close_the_subflow() {
    for (name, mut h) in Harness::all() {
        h.conn.shutdown();
        h.recv_seg();
        let _ = h.feed(0, ACK, &[dss_ack(h.local_dsn(1))]);
        let fin = dss_data_fin(h.local_dsn(1), h.peer_dsn(0), h.checksum);
        let _ = h.feed(0, ACK, &[fin]);
        assert_eq!(h.read_all(), (vec![], true), "{name}");
        // The data level is done both ways: the subflow closes with a TCP FIN
        // (still carrying the DATA_ACK of the peer's DATA_FIN).
        assert!(h.conn.data_level().unwrap().data_level_done(), "{name}");
        let segs = h.recv_all();
        let last = segs.last().unwrap();
        last.assert_tcp(ACK | FIN, ISS + 1, IRS + 1, 0);
        assert_eq!(last.dss().data_ack, data_ack(h.peer_dsn(1)), "{name}");
    }
}

#[test]
fn v1_client_data_fin_waits_for_full_establishment() {
    let mut h = Harness::connecting(V1, settings());
    h.recv_seg();
    let _ = h.feed(0, SYN | ACK, &[h.synack_capable()]);
    h.conn.send(&bytes(100, 7));
    h.conn.shutdown();
    // Before the server's first DATA_ACK no DSS goes out, hence no DATA_FIN:
    // the first data (which is also the third ACK) carries the keys.
    let segs = h.recv_all();
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert!(segs
        .iter()
        .all(|s| s.mp.capable.is_some() && s.mp.dss.is_none()));
    let _ = h.feed(0, ACK, &[h.peer_dss_ack()]);
    let fin = h.recv_seg();
    fin.assert_tcp(ACK, ISS + 101, IRS + 1, 0);
    fin.assert_opts(&[dss_data_fin(h.peer_dsn(0), h.local_dsn(100), false)]);
    h.assert_no_segment();
}

/// Found by two_endpoints (6813362c): the path was down for a minute, the
/// subflow's retransmission timeout backed off to tens of seconds, and the
/// DATA_FIN's repeat doubled that again by its own backoff: once the data was
/// acknowledged after the path came back, the DATA_FIN's next repeat was 12
/// minutes away, and the peer, waiting for it, did not end. Repeats layered
/// on a subflow are bounded like TCP's own (`max_rto`).
#[test]
fn data_fin_repeats_are_never_further_apart_than_the_longest_rto() {
    for (name, mut h) in Harness::all() {
        h.conn.send(&bytes(600, 1));
        h.conn.shutdown();
        let _ = h.recv_all();
        let max = crate::config::TcpConfig::default().max_rto;
        // The path is down: the data and the DATA_FIN go again and again.
        let down = h.now;
        while h.now.saturating_since(down) < core::time::Duration::from_secs(90) {
            let _ = h.fire_timer();
            let _ = h.recv_all();
        }
        // Back: the data is acknowledged, at the data level too, but the
        // DATA_FIN's acknowledgement is lost.
        let _ = h.feed(0, ACK, &[dss_ack(h.local_dsn(600))]);
        let _ = h.recv_all();
        for i in 0..8 {
            let at = h.conn.poll_at().expect("the DATA_FIN's repeat timer");
            let wait = at.saturating_since(h.now);
            assert!(wait <= max, "{name}: timer {i} is {wait:?} away");
            let _ = h.fire_timer();
            let _ = h.recv_all();
        }
    }
}

/// Found by two_endpoints: the peer fell back behind our back (it took one
/// of our ACKs, stripped of its options, for plain TCP) and answers only
/// plainly, so our DATA_FIN is never acknowledged; we cannot fall back too,
/// a join having got as far as its third ACK. After the repeats that would
/// otherwise end in a fallback the connection is reset: repeated for ever,
/// the DATA_FIN would leave the peer waiting for our FIN for ever.
#[test]
fn a_data_fin_the_peer_answers_only_plainly_ends_in_a_reset_after_a_join() {
    let mut h = Harness::client(V1);
    let _ = h.active_join();
    h.conn.shutdown();
    let _ = h.recv_all();
    // The peer, fallen back, acknowledges plainly.
    let fx = h.feed(0, ACK, &[]);
    assert!(fx.is_empty(), "{fx:?}");
    let mut repeats = 0;
    let fx = loop {
        let fx = h.fire_timer();
        if !fx.rsts.is_empty() {
            break fx;
        }
        let _ = h.recv_all();
        repeats += 1;
        assert!(repeats < 20, "the DATA_FIN repeats for ever");
    };
    assert!(repeats >= 4, "reset after {repeats} repeats");
    assert_eq!(h.conn.state(), State::Closed);
    assert!(!fx.rsts.is_empty());
}

/// Found by two_endpoints (campaign 15, v0 with DSS checksums): a middlebox
/// made the client's first mapping, of 2 bytes, 16,386 bytes long, and
/// stripped the DSS from our ACK of them, so the client fell back and, all
/// its bytes sent and acknowledged, went silent, waiting for our FIN. Our
/// DATA_FIN's repeats went unanswered while its 2 bytes waited for a
/// mapping no byte would ever complete: stuck for ever. After the repeats
/// that end in a fallback where nothing waits, the bytes are taken as the
/// stream they are (every mapping known puts them there) and our FIN goes.
#[test]
fn a_peer_silent_behind_a_mapping_no_byte_completes_gets_our_fin() {
    let mut h = Harness::server(V0);
    let data = b"hi";
    let dsn = h.peer_dsn(0);
    // Its checksum covers the real length; with the altered one it is never
    // checked, the mapping never being complete.
    let csum = dss_checksum(dsn, 1, data);
    let _ = h.feed_data(
        0,
        data,
        &[dss_map(h.local_dsn(0), dsn, 1, 16386, Some(csum))],
    );
    assert_eq!(h.read_all(), (vec![], false));
    h.conn.shutdown();
    let _ = h.recv_all();
    let mut repeats = 0;
    loop {
        let _ = h.fire_timer();
        if h.recv_all().iter().any(|o| o.flags.fin()) {
            break;
        }
        repeats += 1;
        assert!(repeats < 20, "the DATA_FIN repeats for ever");
    }
    assert!(repeats >= 4, "fell back after {repeats} repeats");
    assert_eq!(h.read_all(), (data.to_vec(), false));
    let mp = h.conn.info().mptcp.unwrap();
    assert!(mp.fallback);
}
