//! MP_JOIN (RFC 8684 §3.2) in both roles: the SYN naming the peer's token,
//! the SYN/ACK's truncated HMAC, the third ACK's full HMAC repeated until
//! acknowledged, the passive side's fourth ACK; a wrong HMAC resets that
//! subflow alone (MP_TCPRST), never the connection.

use super::*;
use crate::mptcp::rst_reason;

fn wrong(opt: MptcpOption<'static>) -> MptcpOption<'static> {
    match opt {
        MptcpOption::MpJoin(MpJoin::SynAck {
            backup,
            addr_id,
            hmac,
            nonce,
        }) => MptcpOption::MpJoin(MpJoin::SynAck {
            backup,
            addr_id,
            hmac: hmac ^ 1,
            nonce,
        }),
        MptcpOption::MpJoin(MpJoin::Ack { mut hmac }) => {
            hmac[19] ^= 1;
            MptcpOption::MpJoin(MpJoin::Ack { hmac })
        }
        _ => unreachable!(),
    }
}

// ----- active -----

#[test]
fn no_join_before_the_connection_is_fully_established() {
    let mut h = Harness::connecting(V1, settings());
    assert!(!h.conn.join_allowed());
    h.recv_seg();
    let _ = h.feed(0, SYN | ACK, &[h.synack_capable()]);
    assert!(!h.conn.join_allowed(), "keys known, but no DATA_ACK yet");
    let _ = h.feed(0, ACK, &[h.peer_dss_ack()]);
    assert!(h.conn.join_allowed());
}

/// A join opened while the host queues what arrives knows it from its
/// start, as the subflows before it do (their windows and buffers follow it).
#[test]
fn a_join_learns_that_the_host_queues() {
    let mut h = Harness::client(V1);
    h.conn.set_host_queue(true);
    let p = h.open_join(local_ip2(), 1, false);
    assert!(h.conn.subflows.iter().all(|s| s.tcb.host_queue()));
    h.conn.set_host_queue(false);
    assert!(!h.conn.subflows[p].tcb.host_queue());
}

#[test]
fn active_join_syn_names_the_peers_token_with_our_nonce_and_b_bit() {
    for v in [V1, V0] {
        let mut h = Harness::client(v);
        let p = h.open_join(local_ip2(), 1, true);
        let syn = h.recv_seg();
        assert_eq!(syn.path, p);
        syn.assert_tcp(SYN, h.paths[p].iss, 0, 0);
        syn.assert_opts(&[MptcpOption::MpJoin(MpJoin::Syn {
            backup: true,
            addr_id: 1,
            token: crypto::token(alg(v), PEER_KEY),
            nonce: LOCAL_NONCE,
        })]);
        let info = &h.conn.info().subflows[1];
        assert_eq!(
            (info.local_id, info.backup, info.established),
            (1, true, false)
        );
        h.assert_no_segment();
    }
}

#[test]
fn active_join_repeats_its_full_hmac_until_the_peer_acknowledges_it() {
    for v in [V1, V0] {
        let mut h = Harness::client(v);
        let p = h.open_join(local_ip2(), 1, false);
        h.recv_seg();
        let fx = h.feed(p, SYN | ACK, &[h.join_synack(2, true)]);
        assert!(fx.is_empty(), "{v:?}: {fx:?}");
        let (iss, irs) = (h.paths[p].iss, h.paths[p].irs);
        // The third ACK: the full HMAC alone, no DSS yet.
        let third = h.recv_seg();
        assert_eq!(third.path, p);
        third.assert_tcp(ACK, iss + 1, irs + 1, 0);
        third.assert_opts(&[h.our_join_ack()]);
        let info = &h.conn.info().subflows[1];
        assert_eq!(
            (info.remote_id, info.backup, info.established),
            (2, true, false)
        );
        h.assert_no_segment();

        // It may have been lost: repeated on a timer, the same.
        let fx = h.fire_timer();
        assert!(fx.is_empty(), "{v:?}: {fx:?}");
        let again = h.recv_seg();
        again.assert_tcp(ACK, iss + 1, irs + 1, 0);
        again.assert_opts(&[h.our_join_ack()]);

        // The peer's ACK of it ends the handshake: no more repeats, and the
        // subflow speaks DSS.
        let _ = h.feed(p, ACK, &[h.peer_dss_ack()]);
        assert!(h.conn.info().subflows[1].established, "{v:?}");
        assert_eq!(h.stats().joins_established, 1, "{v:?}");
        assert_eq!(h.conn.poll_at(), None, "{v:?}");
        h.assert_no_segment();
        h.conn.set_local_backup(local_ip2(), true);
        let seg = h.recv_seg();
        assert_eq!(seg.path, p);
        assert_eq!(seg.dss().data_ack, data_ack(h.peer_dsn(0)), "{v:?}");
    }
}

#[test]
fn active_join_with_a_wrong_synack_hmac_is_reset_alone() {
    for v in [V1, V0] {
        let mut h = Harness::client(v);
        let p = h.open_join(local_ip2(), 1, false);
        h.recv_seg();
        let fx = h.feed(p, SYN | ACK, &[wrong(h.join_synack(2, false))]);
        assert_one_rst(&h, &fx, p, &[tcprst(rst_reason::MPTCP_ERROR)]);
        assert_eq!(fx.requests, vec![Request::Unbind(h.tuple(p))]);
        assert_eq!(h.stats().join_hmac_failures, 1);
        assert_eq!(h.path_state(p), None, "freed");
        // The connection goes on over the first subflow.
        assert_eq!(h.conn.state(), State::Established);
        h.conn.send(b"still here");
        let seg = h.recv_seg();
        assert_eq!(seg.path, 0);
        seg.assert_tcp(ACK | PSH, ISS + 1, IRS + 1, 10);
    }
}

#[test]
fn active_join_answered_without_mp_join_is_reset() {
    let mut h = Harness::client(V1);
    let p = h.open_join(local_ip2(), 1, false);
    h.recv_seg();
    // A join cannot fall back to plain TCP (RFC 8684 §3.2).
    let fx = h.feed(p, SYN | ACK, &[]);
    assert_one_rst(&h, &fx, p, &[tcprst(rst_reason::MPTCP_ERROR)]);
    assert!(!h.conn.info().mptcp.unwrap().fallback);
}

// ----- passive -----

#[test]
fn passive_join_synack_carries_our_truncated_hmac_and_nonce() {
    for v in [V1, V0] {
        let mut h = Harness::server(v);
        let p = h.accept_join(remote_ip2(), 2, true);
        let synack = h.recv_seg();
        assert_eq!(synack.path, p);
        synack.assert_tcp(SYN | ACK, h.paths[p].iss, h.paths[p].irs + 1, 0);
        synack.assert_opts(&[h.our_join_synack(0)]);
        let info = &h.conn.info().subflows[1];
        assert_eq!(
            (info.remote_id, info.backup, info.established),
            (2, true, false)
        );
        assert_eq!(h.stats().join_syn_rx, 1);
        h.assert_no_segment();
    }
}

#[test]
fn passive_join_is_established_by_the_full_hmac_and_answered_by_a_fourth_ack() {
    for v in [V1, V0] {
        let mut h = Harness::server(v);
        let p = h.accept_join(remote_ip2(), 2, false);
        h.recv_seg();
        let fx = h.feed(p, ACK, &[h.peer_join_ack()]);
        assert!(fx.is_empty(), "{v:?}: {fx:?}");
        assert!(h.conn.info().subflows[1].established);
        assert_eq!(h.stats().joins_established, 1);
        // The initiator waits for this ACK before it sends data.
        let fourth = h.recv_seg();
        assert_eq!(fourth.path, p);
        fourth.assert_tcp(ACK, h.paths[p].iss + 1, h.paths[p].irs + 1, 0);
        fourth.assert_opts(&[dss_ack(h.peer_dsn(0))]);
        h.assert_no_segment();

        // Data mapped on the new subflow reaches the data stream.
        let data = bytes(200, 1);
        let _ = h.feed_data(p, &data, &[h.peer_map(0, 1, &data)]);
        assert_eq!(h.read_all(), (data, false), "{v:?}");
        let ack = h.recv_seg();
        assert_eq!(ack.path, p);
        ack.assert_opts(&[dss_ack(h.peer_dsn(200))]);
    }
}

/// The fourth ACK was lost: the initiator repeats its third ACK (RFC 8684
/// §3.2), and each repeat is answered, else it waits until it gives up on
/// the subflow (fuzzing, bug 23: a server whose first subflow's peer was
/// gone then waited for ever on a connection nobody would ever use).
#[test]
fn passive_join_answers_every_repeated_third_ack() {
    for v in [V1, V0] {
        let mut h = Harness::server(v);
        let p = h.accept_join(remote_ip2(), 2, false);
        h.recv_seg();
        let _ = h.feed(p, ACK, &[h.peer_join_ack()]);
        assert_eq!(h.recv_seg().path, p, "{v:?}: the fourth ACK");
        for _ in 0..3 {
            let fx = h.feed(p, ACK, &[h.peer_join_ack()]);
            assert!(fx.is_empty(), "{v:?}: {fx:?}");
            let again = h.recv_seg();
            assert_eq!(again.path, p);
            again.assert_tcp(ACK, h.paths[p].iss + 1, h.paths[p].irs + 1, 0);
            h.assert_no_segment();
        }
        assert_eq!(h.stats().joins_established, 1);
    }
}

#[test]
fn passive_join_with_a_wrong_third_ack_hmac_is_reset_alone() {
    for v in [V1, V0] {
        let mut h = Harness::server(v);
        let p = h.accept_join(remote_ip2(), 2, false);
        h.recv_seg();
        let fx = h.feed(p, ACK, &[wrong(h.peer_join_ack())]);
        assert_one_rst(&h, &fx, p, &[tcprst(rst_reason::MPTCP_ERROR)]);
        assert_eq!(fx.requests, vec![Request::Unbind(h.tuple(p))]);
        assert_eq!(h.stats().join_hmac_failures, 1);
        assert_eq!(h.stats().joins_established, 0);
        assert_eq!(h.conn.info().subflows.len(), 1);
        assert_eq!(h.conn.state(), State::Established);
        // The first subflow carries on.
        let data = bytes(100, 2);
        let _ = h.feed_data(0, &data, &[h.peer_map(0, 1, &data)]);
        assert_eq!(h.read_all(), (data, false));
    }
}

/// Found by review: a join's options acted on the connection before its
/// HMAC was checked. Anyone who knows the token can open a join from its
/// own address and get as far as the third ACK; with a wrong HMAC, the
/// MP_FAIL and REMOVE_ADDR that ride on it must do nothing (the MP_FAIL
/// used to make our next mapping an infinite one: a forced fallback).
#[test]
fn options_on_a_third_ack_with_a_wrong_hmac_do_nothing() {
    use crate::wire::mptcp::{MpFail, RemoveAddr};
    for v in [V1, V0] {
        let mut h = Harness::server(v);
        let p = h.accept_join(remote_ip2(), 2, false);
        h.recv_seg();
        let fail = MptcpOption::MpFail(MpFail {
            dsn: h.local_dsn(0),
        });
        let remove = MptcpOption::RemoveAddr(RemoveAddr::new(&[0]).unwrap());
        let fx = h.feed(p, ACK, &[wrong(h.peer_join_ack()), fail, remove]);
        assert_one_rst(&h, &fx, p, &[tcprst(rst_reason::MPTCP_ERROR)]);
        let st = h.stats();
        assert_eq!((st.mp_fail_rx, st.rm_addr_rx), (0, 0));
        // The first subflow goes on mapping its data, not falling back.
        h.conn.send(&bytes(100, 3));
        let seg = h.recv_seg();
        assert_eq!((seg.path, seg.payload.len()), (0, 100));
        let m = seg.dss().mapping.expect("a mapping");
        assert_eq!(m.data_len, 100);
        assert!(!h.conn.info().mptcp.unwrap().fallback);
    }
}

#[test]
fn passive_join_third_ack_without_mp_join_is_reset() {
    let mut h = Harness::server(V1);
    let p = h.accept_join(remote_ip2(), 2, false);
    h.recv_seg();
    let fx = h.feed(p, ACK, &[h.peer_dss_ack()]);
    assert_one_rst(&h, &fx, p, &[tcprst(rst_reason::MPTCP_ERROR)]);
    assert_eq!(h.conn.state(), State::Established);
}

/// two_endpoints (`stuck-client-short-of-server-data-both-alive-21317d2`):
/// a middlebox stripped the options of the first data segment on a join;
/// the subflow acknowledged its bytes, so they never came again with their
/// mapping, and they held up everything after them on the subflow (the
/// peer's data-level copies, mapped) for ever. Once later bytes are mapped
/// the unmapped ones can never be placed: the join is reset (as Linux does
/// on data without a mapping on a join), and the data goes on elsewhere.
#[test]
fn unmapped_bytes_on_a_join_before_mapped_ones_reset_the_join() {
    for v in [V1, V0] {
        let mut h = Harness::client(v);
        let p = h.active_join();
        let a = bytes(100, 1);
        let fx = h.feed_data(p, &a, &[]);
        assert!(
            fx.rsts.is_empty(),
            "{v:?}: no mapping yet, none known later"
        );
        let b = bytes(100, 2);
        let map = h.peer_map(0, 101, &b);
        let fx = h.feed_data(p, &b, &[map]);
        assert_one_rst(&h, &fx, p, &[tcprst(rst_reason::MPTCP_ERROR)]);
        assert_eq!(h.read_all(), (vec![], false), "{v:?}: nothing placed");
        assert!(
            h.conn.state() != State::Closed,
            "{v:?}: the first subflow goes on"
        );
    }
}
