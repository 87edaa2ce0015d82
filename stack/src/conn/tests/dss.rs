//! DSS (RFC 8684 §3.3): mappings on what we send, DATA_ACK on every segment,
//! received data placed by its DSN, DATA_ACKs freeing the send buffer, the
//! checks on implausible DATA_ACKs and mappings, and DSS checksums.

use super::*;
use crate::mptcp::rst_reason;
use crate::wire::mptcp::DataAck;

/// A segment from the peer on the initial subflow at sequence `seq`.
fn seg_at<'a>(h: &Harness, seq: u32, payload: &'a [u8]) -> TcpRepr<'a> {
    TcpRepr {
        seq: SeqNumber(seq),
        payload,
        ..h.seg(0, ACK | PSH)
    }
}

#[test]
fn outgoing_data_is_mapped_and_every_segment_carries_a_data_ack() {
    for (name, mut h) in Harness::all() {
        let data = bytes(2000, 1);
        assert_eq!(h.conn.send(&data), Some(2000));
        let segs = h.recv_all();
        let lens: Vec<usize> = segs.iter().map(|s| s.payload.len()).collect();
        assert_eq!(lens, [DSS_SEG, DSS_SEG, 2000 - 2 * DSS_SEG], "{name}");
        // One mapping for all of it (with the checksum of all 2000 bytes when
        // checksums are on), repeated on each segment, with the DATA_ACK.
        let csum = h.checksum.then(|| dss_checksum(h.local_dsn(0), 1, &data));
        let map = dss_map(h.peer_dsn(0), h.local_dsn(0), 1, 2000, csum);
        let mut off = 0;
        for s in &segs {
            assert_eq!((s.seq, s.ack), (ISS + 1 + off as u32, IRS + 1), "{name}");
            s.assert_opts(&[map]);
            off += s.payload.len();
        }
        let sent: Vec<u8> = segs.iter().flat_map(|s| s.payload.clone()).collect();
        assert_eq!(sent, data, "{name}");
        h.assert_no_segment();
    }
}

#[test]
fn received_data_is_acknowledged_at_both_levels() {
    for (name, mut h) in Harness::all() {
        let data = bytes(500, 2);
        let fx = h.feed_data(0, &data, &[h.peer_map(0, 1, &data)]);
        assert!(fx.is_empty(), "{name}: {fx:?}");
        assert!(h.conn.take_events().readable, "{name}");
        assert_eq!(h.read_all(), (data, false), "{name}");
        let ack = h.recv_seg();
        ack.assert_tcp(ACK, ISS + 1, IRS + 501, 0);
        // A pure ACK: the DATA_ACK alone, no mapping.
        ack.assert_opts(&[dss_ack(h.peer_dsn(500))]);
        assert_eq!(h.conn.info().bytes_received, 500, "{name}");
    }
}

#[test]
fn received_data_is_placed_by_its_dsn_not_by_its_subflow_order() {
    let mut h = Harness::client(V1);
    let (a, b) = (bytes(500, 3), bytes(500, 4));
    // The first subflow bytes carry the second half of the data stream.
    let _ = h.feed_data(0, &a, &[h.peer_map(500, 1, &a)]);
    assert_eq!(h.read_all(), (vec![], false));
    let ack = h.recv_seg();
    // Acknowledged by the subflow, not by the data level: a hole before it.
    ack.assert_tcp(ACK, ISS + 1, IRS + 501, 0);
    ack.assert_opts(&[dss_ack(h.peer_dsn(0))]);

    let _ = h.feed_data(0, &b, &[h.peer_map(0, 501, &b)]);
    assert_eq!(h.read_all(), ([b, a].concat(), false));
    let ack = h.recv_seg();
    ack.assert_tcp(ACK, ISS + 1, IRS + 1001, 0);
    ack.assert_opts(&[dss_ack(h.peer_dsn(1000))]);
}

#[test]
fn subflow_out_of_order_data_waits_for_the_subflow_hole() {
    let mut h = Harness::server(V1);
    let (a, b) = (bytes(500, 5), bytes(500, 6));
    // The second segment arrives first, mapping and all.
    let second = seg_at(&h, IRS + 501, &b);
    let _ = h.feed_seg(0, &second, &[h.peer_map(500, 501, &b)]);
    assert_eq!(h.read_all(), (vec![], false));
    let dup = h.recv_seg();
    dup.assert_tcp(ACK, ISS + 1, IRS + 1, 0);
    dup.assert_opts(&[dss_ack(h.peer_dsn(0))]);

    let _ = h.feed_data(0, &a, &[h.peer_map(0, 1, &a)]);
    h.paths[0].snd_nxt = IRS + 1001;
    assert_eq!(h.read_all(), ([a, b].concat(), false));
    let ack = h.recv_seg();
    ack.assert_tcp(ACK, ISS + 1, IRS + 1001, 0);
    ack.assert_opts(&[dss_ack(h.peer_dsn(1000))]);
}

#[test]
fn one_mapping_covers_the_segments_after_it() {
    let mut h = Harness::client(V1);
    let data = bytes(1000, 7);
    // As a TSO'ed skb from Linux: the mapping of 1000 bytes on the first
    // segment, the second with a DATA_ACK only.
    let map = dss_map(h.local_dsn(0), h.peer_dsn(0), 1, 1000, None);
    let _ = h.feed_data(0, &data[..500], &[map]);
    let _ = h.feed_data(0, &data[500..], &[h.peer_dss_ack()]);
    assert_eq!(h.read_all(), (data, false));
    assert_eq!(h.our_data_ack(), h.peer_dsn(1000));
}

#[test]
fn data_ack_frees_the_send_buffer() {
    for (name, mut h) in Harness::all() {
        let full = h.conn.send_capacity();
        h.conn.send(&bytes(800, 8));
        assert_eq!(h.conn.send_capacity(), full - 800, "{name}");
        h.recv_seg();
        // The subflow has it all; the data level only the first 500 bytes.
        let _ = h.feed(0, ACK, &[dss_ack(h.local_dsn(500))]);
        assert_eq!(h.conn.send_capacity(), full - 300, "{name}");
        assert_eq!(h.conn.info().bytes_sent, 500, "{name}");
        let _ = h.feed(0, ACK, &[dss_ack(h.local_dsn(800))]);
        assert_eq!(h.conn.send_capacity(), full, "{name}");
        assert_eq!(h.conn.info().bytes_sent, 800, "{name}");
        assert_eq!(h.stats().bad_data_acks, 0, "{name}");
    }
}

#[test]
fn data_ack_beyond_what_was_sent_is_ignored() {
    for (name, mut h) in Harness::all() {
        let full = h.conn.send_capacity();
        h.conn.send(&bytes(800, 9));
        h.recv_seg();
        // Acknowledges 4200 bytes never sent: ignored and counted.
        let _ = h.feed(0, ACK, &[dss_ack(h.local_dsn(5000))]);
        assert_eq!(h.stats().bad_data_acks, 1, "{name}");
        assert_eq!(h.conn.info().bytes_sent, 0, "{name}");
        assert_eq!(h.conn.send_capacity(), full - 800, "{name}");
        // A true one still counts.
        let _ = h.feed(0, ACK, &[h.peer_dss_ack()]);
        assert_eq!(h.conn.info().bytes_sent, 800, "{name}");
    }
}

#[test]
fn data_ack_and_dsn_of_32_bits_are_expanded() {
    let mut h = Harness::client(V1);
    h.conn.send(&bytes(800, 10));
    h.recv_seg();
    let data = bytes(300, 11);
    let dss = MptcpOption::Dss(Dss {
        data_fin: false,
        data_ack: Some(DataAck {
            value: h.local_dsn(800) & 0xffff_ffff,
            is_64bit: false,
        }),
        mapping: Some(Mapping {
            dsn: h.peer_dsn(0) & 0xffff_ffff,
            dsn_64bit: false,
            ssn: 1,
            data_len: 300,
            checksum: None,
        }),
    });
    let _ = h.feed_data(0, &data, &[dss]);
    assert_eq!(h.conn.info().bytes_sent, 800);
    assert_eq!(h.read_all(), (data, false));
    assert_eq!(h.stats().bad_data_acks + h.stats().bad_mappings, 0);
}

/// A mapping travels with (the first segment of) its data, as Linux sends and
/// reads it: one on a segment without data maps nothing, whatever it says.
#[test]
fn a_mapping_without_its_data_maps_nothing() {
    for (name, mut h) in Harness::all() {
        // Far beyond what our connection-level window can have allowed.
        let far = (BUFFER + (1 << 16) + 1000) as u64;
        // (With a checksum field where checksums are in use: v0.)
        let csum = h.conn.info().mptcp.unwrap().checksum.then_some(0);
        let bogus = dss_map(h.local_dsn(0), h.peer_dsn(far), 1, 500, csum);
        let fx = h.feed(0, ACK, &[bogus]);
        assert!(fx.is_empty(), "{name}: {fx:?}");
        // Not recorded: the true mapping of those subflow bytes is taken.
        let data = bytes(500, 12);
        let _ = h.feed_data(0, &data, &[h.peer_map(0, 1, &data)]);
        assert_eq!(h.read_all(), (data, false), "{name}");
        assert_eq!(h.stats().bad_mappings, 0, "{name}");
        assert!(!h.conn.info().mptcp.unwrap().fallback, "{name}");
    }
}

#[test]
fn data_under_a_mapping_beyond_the_receive_window_is_not_delivered() {
    let mut h = Harness::client(V1);
    let far = (BUFFER + (1 << 16) + 1000) as u64;
    let data = bytes(500, 13);
    let bogus = dss_map(h.local_dsn(0), h.peer_dsn(far), 1, 500, None);
    let _ = h.feed_data(0, &data, &[bogus]);
    assert_eq!(h.stats().bad_mappings, 1);
    // A peer's protocol error, not a middlebox: no fallback (Linux drops
    // such data at the data level, MPTCP_MIB_NODSSWINDOW) ...
    assert_eq!(h.conn.info().mptcp.unwrap().fallback_reason, None);
    // ... and those bytes do not belong at the head of the data stream.
    assert_eq!(h.read_all(), (vec![], false));
    assert_eq!(h.our_data_ack(), h.peer_dsn(0));
}

/// Found by review: the mappings a peer sends are remembered (up to a bound
/// per subflow) and were not in the connection's memory: one byte a
/// mapping, behind a hole the peer keeps open, is 8,192 of them.
#[test]
fn the_peers_mappings_count_in_the_connections_memory() {
    let mut h = Harness::client(V1);
    let before = h.conn.memory();
    let n = 3000u32;
    for i in 1..=n {
        // Subflow byte 1 never comes: everything after it waits.
        let seg = seg_at(&h, IRS + 1 + i, b"x");
        let map = dss_map(h.local_dsn(0), h.peer_dsn(u64::from(i)), 1 + i, 1, None);
        let _ = h.feed_seg(0, &seg, &[map]);
    }
    let grown = h.conn.memory() - before;
    assert!(grown >= n as usize * 16, "{grown} bytes for {n} mappings");
}

/// Found by review: a DSN half the 64-bit space away from the next one
/// expected is as far behind as ahead; negating that distance overflowed
/// (a panic where overflow is checked). Its bytes are not the stream's.
#[test]
fn data_mapped_half_the_dsn_space_away_is_dropped() {
    let mut h = Harness::client(V1);
    let data = bytes(500, 14);
    let far = h.peer_dsn(0).wrapping_add(1 << 63);
    let bogus = dss_map(h.local_dsn(0), far, 1, 500, None);
    let _ = h.feed_data(0, &data, &[bogus]);
    assert_eq!(h.read_all(), (vec![], false));
    assert_eq!(h.our_data_ack(), h.peer_dsn(0));
}

#[test]
fn outgoing_dss_checksum_covers_pseudo_header_and_payload() {
    let s = MptcpSettings {
        checksum: true,
        ..settings()
    };
    for (name, mut h) in [
        ("client", Harness::client_with(V1, s)),
        ("server", Harness::server_with(V1, s)),
    ] {
        // We ask for checksums (the A bit); either side asking turns them on.
        assert!(h.conn.info().mptcp.unwrap().checksum, "{name}");
        let data = bytes(600, 14);
        h.conn.send(&data);
        let csum = dss_checksum(h.local_dsn(0), 1, &data);
        h.recv_seg()
            .assert_opts(&[dss_map(h.peer_dsn(0), h.local_dsn(0), 1, 600, Some(csum))]);
    }
}

#[test]
fn incoming_mapping_with_checksum_is_delivered_only_whole_and_verified() {
    let s = MptcpSettings {
        checksum: true,
        ..settings()
    };
    let mut h = Harness::client_with(V1, s);
    let data = bytes(1000, 15);
    let map = h.peer_map(0, 1, &data);
    let _ = h.feed_data(0, &data[..500], &[map]);
    // Half a mapping cannot be checked yet: not delivered, not DATA_ACKed.
    assert_eq!(h.read_all(), (vec![], false));
    h.recv_seg().assert_opts(&[dss_ack(h.peer_dsn(0))]);
    let _ = h.feed_data(0, &data[500..], &[map]);
    assert_eq!(h.read_all(), (data, false));
    h.recv_seg().assert_opts(&[dss_ack(h.peer_dsn(1000))]);
    assert_eq!(h.stats().checksum_errors, 0);
}

#[test]
fn a_mapping_in_conflict_with_a_known_one_is_refused() {
    let mut h = Harness::client(V1);
    let data = bytes(400, 16);
    // The first half arrives under its mapping; the second under a mapping
    // of the same subflow bytes elsewhere in the data stream.
    let _ = h.feed_data(0, &data[..200], &[h.peer_map(0, 1, &data)]);
    let _ = h.feed_data(0, &data[200..], &[h.peer_map(1000, 1, &data)]);
    assert_eq!(h.stats().bad_mappings, 1);
    assert_eq!(h.read_all(), (data, false));
}

// ----- more than one subflow -----

#[test]
fn data_arriving_on_two_subflows_is_put_in_dsn_order() {
    let mut h = Harness::client(V1);
    let p = h.active_join();
    let (a, b) = (bytes(300, 17), bytes(300, 18));
    // The second half comes first, on the joined subflow.
    let _ = h.feed_data(p, &b, &[h.peer_map(300, 1, &b)]);
    assert_eq!(h.read_all(), (vec![], false));
    let ack = h.recv_seg();
    assert_eq!(ack.path, p);
    ack.assert_opts(&[dss_ack(h.peer_dsn(0))]);
    let _ = h.feed_data(0, &a, &[h.peer_map(0, 1, &a)]);
    assert_eq!(h.read_all(), ([a, b].concat(), false));
    let ack = h.recv_seg();
    assert_eq!(ack.path, 0);
    ack.assert_opts(&[dss_ack(h.peer_dsn(600))]);
}

#[test]
fn the_same_data_on_two_subflows_is_delivered_once() {
    let mut h = Harness::server(V1);
    let p = h.passive_join();
    let data = bytes(300, 19);
    // The peer reinjected it on the new subflow: same DSNs.
    let _ = h.feed_data(0, &data, &[h.peer_map(0, 1, &data)]);
    let _ = h.feed_data(p, &data, &[h.peer_map(0, 1, &data)]);
    assert_eq!(h.read_all(), (data, false));
    assert_eq!(h.conn.info().bytes_received, 300);
    for ack in h.recv_all() {
        ack.assert_opts(&[dss_ack(h.peer_dsn(300))]);
    }
}

#[test]
fn data_of_a_subflow_that_is_reset_goes_again_on_another_with_the_same_dsns() {
    let mut h = Harness::client(V1);
    let p = h.active_join();
    let data = bytes(300, 20);
    h.conn.send(&data);
    let seg = h.recv_seg();
    assert_eq!(seg.path, p, "the joined subflow has the lower RTT");
    // The peer withdraws the address of that subflow before acknowledging,
    // and the path stays silent (RFC 8684 §3.4.2: the check runs out).
    let fx = h.feed(0, ACK, &[remove_addr(2), dss_ack(h.local_dsn(0))]);
    assert!(fx.rsts.is_empty());
    let probe = h.recv_seg();
    assert_eq!((probe.path, probe.payload.len()), (p, 0));
    let fx = h.fire_timer();
    assert_eq!(fx.rsts.len(), 1);
    // RFC 8684 §3.3.6: sent again on the first subflow, same DSNs, under a
    // mapping of that subflow's own bytes.
    let again = h.recv_seg();
    assert_eq!(again.path, 0);
    again.assert_tcp(ACK | PSH, ISS + 1, IRS + 1, 300);
    assert_eq!(again.payload, data);
    again.assert_opts(&[dss_map(h.peer_dsn(0), h.local_dsn(0), 1, 300, None)]);
    assert_eq!(h.stats().reinjected_bytes, 300);
}

#[test]
fn data_the_subflow_acknowledged_but_the_data_level_did_not_is_sent_again() {
    let mut h = Harness::client(V1);
    let data = bytes(300, 21);
    h.conn.send(&data);
    h.recv_seg();
    // The subflow has it; the peer's data level dropped it (DATA_ACK stays).
    let _ = h.feed(0, ACK, &[dss_ack(h.local_dsn(0))]);
    h.assert_no_segment();
    let fx = h.fire_timer();
    assert!(fx.is_empty(), "{fx:?}");
    let again = h.recv_seg();
    again.assert_tcp(ACK | PSH, ISS + 301, IRS + 1, 300);
    assert_eq!(again.payload, data);
    // New subflow bytes, old DSNs.
    again.assert_opts(&[dss_map(h.peer_dsn(0), h.local_dsn(0), 301, 300, None)]);
    assert_eq!(h.stats().data_rtx, 1);
}

fn remove_addr(id: u8) -> MptcpOption<'static> {
    MptcpOption::RemoveAddr(crate::wire::mptcp::RemoveAddr::new(&[id]).unwrap())
}

/// Bytes a subflow holds that the data level has not taken (here: mapped past
/// the room left in the connection buffer, waiting for reads) are not yet the
/// application's: `recv_available` counts only what `recv` can return.
#[test]
fn bytes_still_in_a_subflow_are_not_available_to_read() {
    let mut h = Harness::client(V1);
    let data = bytes(500, 22);
    let ahead = h.peer_map(BUFFER as u64, 1, &data);
    let _ = h.feed_data(0, &data, &[ahead]);
    assert_eq!(h.conn.recv_available(), 0);
    assert_eq!(h.read_all(), (vec![], false));
}

/// RFC 8684 §3.3: once DSS checksums are in use, a mapping without one is
/// invalid: the subflow is reset with MP_TCPRST "MPTCP-specific error", not
/// taken unverified.
#[test]
fn a_mapping_without_a_negotiated_checksum_resets_the_subflow() {
    let s = MptcpSettings {
        checksum: true,
        ..settings()
    };
    for (name, mut h) in [
        ("client", Harness::client_with(V1, s)),
        ("server", Harness::server_with(V1, s)),
    ] {
        let data = bytes(300, 23);
        let unchecked = dss_map(h.local_dsn(0), h.peer_dsn(0), 1, 300, None);
        let fx = h.feed_data(0, &data, &[unchecked]);
        assert_one_rst(&h, &fx, 0, &[tcprst(rst_reason::MPTCP_ERROR)]);
        assert_eq!(h.stats().bad_mappings, 1, "{name}");
        // Its only subflow gone, so is the connection: nothing was delivered.
        assert_eq!(h.conn.recv_available(), 0, "{name}");
        assert_eq!(h.conn.state(), State::Closed, "{name}");
    }
}

/// Memory pressure shrinks the connection-level buffer, never below the
/// out-of-order data it keeps: once the hole fills, every byte is delivered
/// in place. (Shrunk below it, the kept bytes did not fit when the hole
/// filled: some were lost and the rest misplaced.)
#[test]
fn pressure_never_shrinks_below_the_data_kept_out_of_order() {
    use crate::memory::Pressure;
    let s = MptcpSettings {
        recv_buffer: 1 << 20,
        ..settings()
    };
    let mut h = Harness::client_with(V1, s);
    h.conn.mp.as_deref_mut().unwrap().set_recv_capacity(1 << 20);
    let far = 300_000usize;
    let tail = bytes(200_000, 8);
    // The subflow's first 200 KB map far ahead in the data stream.
    let mut ssn = 1;
    for (k, chunk) in tail.chunks(1000).enumerate() {
        let at = (far + k * 1000) as u64;
        let _ = h.feed_data(0, chunk, &[h.peer_map(at, ssn, chunk)]);
        ssn += chunk.len() as u32;
        let _ = h.recv_all();
    }
    assert_eq!(h.read_all(), (vec![], false));
    h.conn.set_pressure(Pressure::High);
    let head = bytes(far, 9);
    let mut got = Vec::new();
    for (k, chunk) in head.chunks(1000).enumerate() {
        let _ = h.feed_data(0, chunk, &[h.peer_map((k * 1000) as u64, ssn, chunk)]);
        ssn += chunk.len() as u32;
        got.extend(h.read_all().0);
        let _ = h.recv_all();
    }
    assert_eq!(got.len(), far + tail.len());
    assert!(
        got == [head, tail].concat(),
        "the stream was not delivered in place"
    );
}

/// The application reads a full connection buffer that two subflows filled:
/// each subflow last offered (nearly) nothing, and each must now tell the
/// peer the window opened. Judged against the connection's last offer
/// instead, only the first subflow did, and a peer that keeps each
/// subflow's own window (RFC 8684 §3.3.5 lets it) left the second waiting
/// for its zero-window probes.
#[test]
fn a_read_reopens_the_window_on_every_subflow() {
    for v in [V1, V0] {
        let s = MptcpSettings {
            recv_buffer: 16 * 1024,
            ..settings()
        };
        let mut h = Harness::server_with(v, s);
        let p = h.accept_join(remote_ip2(), 2, false);
        h.recv_seg();
        let _ = h.feed(p, ACK, &[h.peer_join_ack()]);
        let _ = h.recv_all();
        let data = bytes(16 * 1024, 3);
        let (first, second) = data.split_at(8 * 1024);
        let mut ssn = [1u32, 1];
        for (k, (path, half)) in [(0, first), (p, second)].into_iter().enumerate() {
            for chunk in half.chunks(1024) {
                let off = (k * 8 * 1024) as u64
                    + (chunk.as_ptr() as usize - half.as_ptr() as usize) as u64;
                let _ = h.feed_data(path, chunk, &[h.peer_map(off, ssn[k], chunk)]);
                ssn[k] += chunk.len() as u32;
            }
        }
        let acks = h.recv_all();
        let last = |path| acks.iter().rev().find(|a| a.path == path).map(|a| a.window);
        assert_eq!(last(p), Some(0), "{v:?}: the buffer is full");
        assert_eq!(h.read_all(), (data, false), "{v:?}");
        let updates = h.recv_all();
        for path in [0, p] {
            assert!(
                updates.iter().any(|u| u.path == path && u.window > 0),
                "{v:?}: no window update on subflow {path}: {updates:?}"
            );
        }
    }
}

/// The peer keeps the furthest right edge any subflow offered (Linux's
/// `wnd_end` never moves back), so the connection buffer may not shrink
/// below it. Shrunk below, data the peer sent near that edge could not be
/// taken from its subflow and blocked it, and with it the retransmission
/// of a hole that came next on the same subflow (the subflow that lost it
/// being dead): the connection stalled for good, as in a failover where
/// the echoing reader stopped reading while its replies waited.
#[test]
fn the_buffer_never_shrinks_below_the_window_offered() {
    use crate::memory::Pressure;
    let s = MptcpSettings {
        recv_buffer: 1 << 20,
        ..settings()
    };
    let mut h = Harness::client_scaled(V1, s, 1 << 20);
    h.conn.mp.as_deref_mut().unwrap().set_recv_capacity(1 << 20);
    let p = h.active_join();
    // DSN 0..1000 arrives on the initial subflow and is read; 1000..2000 is
    // lost there; 2000..3000 arrives on the joined one.
    let (a, hole, b) = (bytes(1000, 1), bytes(1000, 2), bytes(1000, 3));
    let _ = h.feed_data(0, &a, &[h.peer_map(0, 1, &a)]);
    assert_eq!(h.read_all(), (a, false));
    let _ = h.feed_data(p, &b, &[h.peer_map(2000, 1, &b)]);
    let acks = h.recv_all();
    let offered = acks
        .iter()
        .map(|a| (a.window as usize) << 7)
        .max()
        .unwrap_or(0);
    assert!(offered > 700_000, "window offered: {offered}");
    h.conn.set_pressure(Pressure::High);
    // The peer sends near the edge it was offered, then retransmits the hole,
    // both on the joined subflow.
    let far = bytes(1000, 4);
    let _ = h.feed_data(p, &far, &[h.peer_map(700_000, 1001, &far)]);
    let _ = h.feed_data(p, &hole, &[h.peer_map(1000, 2001, &hole)]);
    let (got, _) = h.read_all();
    assert!(got == [hole, b].concat(), "{} bytes read", got.len());
}

/// Data a subflow brings beyond the connection buffer's free space (a
/// peer's idea of the window may pass ours: Linux pairs a new DATA_ACK with
/// the subflow window it last accepted, and ignores a window that shrank)
/// never stays at the head of its subflow: left there, it blocked
/// everything behind it on that subflow, the retransmission of the hole
/// too when the subflow that lost it was dead, and the connection stalled
/// for good (a failover against Linux, once in some tens of runs of
/// t_mptcp_failover). The buffer grows for it up to its largest size; under
/// memory pressure, where it may not, the bytes are dropped at the data
/// level, and taken when the peer sends them again.
#[test]
fn data_beyond_the_free_space_never_blocks_its_subflow() {
    use crate::memory::Pressure;
    // (memory pressure, where the far bytes map, whether they are dropped)
    let cases = [
        (Pressure::None, 300_000, false),
        (Pressure::High, 300_000, true),
        (Pressure::Exhausted, 300_000, true),
        // Past the largest buffer (1 MiB) though within the window's slack.
        (Pressure::None, 1_049_000, true),
    ];
    for (pressure, at, dropped) in cases {
        let s = MptcpSettings {
            recv_buffer: 1 << 20,
            ..settings()
        };
        let mut h = Harness::client_scaled(V1, s, 1 << 20);
        let p = h.active_join();
        h.conn.set_pressure(pressure);
        // DSN 0..1000 is lost on the initial subflow; the joined one
        // brings 1000..2000, then `at..at + 1000` (past the 128 KiB the
        // buffer has), then the hole's retransmission.
        let (hole, b, far) = (bytes(1000, 1), bytes(1000, 2), bytes(1000, 3));
        let _ = h.feed_data(p, &b, &[h.peer_map(1000, 1, &b)]);
        let capacity = |h: &Harness| h.conn.mp.as_deref().unwrap().buffer_sizes().3;
        let before = capacity(&h);
        let _ = h.feed_data(p, &far, &[h.peer_map(at, 1001, &far)]);
        // The buffer grew for what it kept, and only for that.
        let grown = capacity(&h);
        if dropped {
            assert_eq!(grown, before, "{pressure:?} {at}");
        } else {
            assert!(grown >= at as usize + 1000, "{grown}");
        }
        let _ = h.feed_data(p, &hole, &[h.peer_map(0, 2001, &hole)]);
        let (got, _) = h.read_all();
        if pressure == Pressure::Exhausted {
            // No out-of-order data is kept at all: both ranges go, and only
            // the hole is delivered.
            assert!(got == hole, "{} bytes read", got.len());
            assert_eq!(h.stats().ofo_dropped_bytes, 2000);
            continue;
        }
        assert!(
            got == [hole.clone(), b.clone()].concat(),
            "{pressure:?} {at}: {} bytes read",
            got.len()
        );
        let want = if dropped { 1000 } else { 0 };
        assert_eq!(h.stats().ofo_dropped_bytes, want, "{pressure:?} {at}");
        // The rest comes (what was dropped again: the DATA_ACK never
        // covered it), within the window, and all is delivered in place.
        let mid = bytes(at as usize - 2000, 4);
        let mut ssn = 3001u32;
        let mut got = Vec::new();
        for (k, chunk) in mid.chunks(1000).chain([&far[..]]).enumerate() {
            let at = 2000 + (k * 1000) as u64;
            let _ = h.feed_data(p, chunk, &[h.peer_map(at, ssn, chunk)]);
            ssn += chunk.len() as u32;
            got.extend(h.read_all().0);
        }
        assert!(
            got == [mid, far.clone()].concat(),
            "{pressure:?} {at}: {} bytes read",
            got.len()
        );
        assert_eq!(h.stats().ofo_dropped_bytes, want, "{pressure:?} {at}");
    }
}

/// Every subflow offers the connection buffer's free space as it is when the
/// segment leaves. A subflow's cap from its own last delivery, offered with
/// a DATA_ACK that moved since through another subflow, promised room that
/// was not there: the peer keeps the furthest edge, and the buffer had to
/// grow to keep that promise (past the memory budget, t_mem_budget).
#[test]
fn a_subflow_offers_the_free_space_left_now_not_at_its_last_delivery() {
    let mut h = Harness::client(V1);
    let p = h.active_join();
    let a = bytes(1000, 5);
    let _ = h.feed_data(p, &a, &[h.peer_map(0, 1, &a)]);
    let _ = h.recv_all();
    // The initial subflow fills most of the buffer; nobody reads.
    let big = bytes(20_000, 6);
    let mut ssn = 1;
    for (k, chunk) in big.chunks(1000).enumerate() {
        let at = 1000 + (k * 1000) as u64;
        let _ = h.feed_data(0, chunk, &[h.peer_map(at, ssn, chunk)]);
        ssn += chunk.len() as u32;
    }
    let _ = h.recv_all();
    // Now we send: the data goes out on both subflows, each segment with
    // the window that is free now.
    h.conn.send(&bytes(30_000, 7));
    let segs = h.recv_all();
    assert!(
        segs.iter().any(|s| s.path == p),
        "nothing went out on the joined subflow"
    );
    let free = BUFFER - 21_000;
    for s in segs {
        assert!(
            (s.window as usize) <= free,
            "subflow {} offered {} with {free} bytes free",
            s.path,
            s.window
        );
    }
}
