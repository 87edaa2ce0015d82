//! MP_FASTCLOSE (RFC 8684 §3.5): our abort sends a RST with MP_FASTCLOSE (the
//! peer's key) and MP_TCPRST on every subflow; the peer's, with our key on an
//! acceptable segment, resets every subflow; with a wrong key nothing happens.

use super::*;
use crate::endpoint::CloseReason;
use crate::mptcp::rst_reason;
use crate::wire::mptcp::FastClose;

fn fastclose(key: u64) -> MptcpOption<'static> {
    MptcpOption::FastClose(FastClose { receiver_key: key })
}

/// A client with a joined subflow and a server with one, in `version`.
fn joined(version: MptcpVersion) -> Vec<(&'static str, Harness, usize)> {
    let mut client = Harness::client(version);
    let cp = client.active_join();
    let mut server = Harness::server(version);
    let sp = server.passive_join();
    vec![("client", client, cp), ("server", server, sp)]
}

#[test]
fn abort_sends_rst_with_mp_fastclose_on_every_subflow() {
    for v in [V1, V0] {
        for (name, mut h, p) in joined(v) {
            let fx = h.conn.abort();
            assert_eq!(fx.rsts.len(), 2, "{name}: {fx:?}");
            let opts = [fastclose(PEER_KEY), tcprst(rst_reason::UNSPECIFIED)];
            h.assert_rst(&fx.rsts[0], 0, &opts);
            h.assert_rst(&fx.rsts[1], p, &opts);
            assert_eq!(h.conn.state(), State::Closed, "{name}");
            h.assert_no_segment();
        }
    }
}

#[test]
fn abort_of_a_single_subflow_connection_fast_closes_it_too() {
    for (name, mut h) in Harness::all() {
        let fx = h.conn.abort();
        let opts = [fastclose(PEER_KEY), tcprst(rst_reason::UNSPECIFIED)];
        assert_one_rst(&h, &fx, 0, &opts);
        assert_eq!(h.conn.close_reason(), Some(CloseReason::Aborted), "{name}");
    }
}

#[test]
fn abort_after_a_fallback_sends_a_plain_rst() {
    let mut h = Harness::connecting(V1, settings());
    h.recv_seg();
    let _ = h.feed(0, SYN | ACK, &[]);
    let fx = h.conn.abort();
    assert_one_rst(&h, &fx, 0, &[]);
}

#[test]
fn peer_fastclose_with_our_key_resets_every_subflow() {
    for v in [V1, V0] {
        for (name, mut h, p) in joined(v) {
            // On an ACK (RFC 8684 §3.5): we answer with RSTs on every subflow.
            let fx = h.feed(0, ACK, &[fastclose(LOCAL_KEY)]);
            assert_eq!(fx.rsts.len(), 2, "{name}: {fx:?}");
            h.assert_rst(&fx.rsts[0], 0, &[]);
            h.assert_rst(&fx.rsts[1], p, &[]);
            assert_eq!(h.conn.state(), State::Closed, "{name}");
            assert_eq!(h.conn.close_reason(), Some(CloseReason::Reset), "{name}");
            assert_eq!(h.conn.take_events().closed, Some(CloseReason::Reset));
            let (r, _) = h.conn.recv(h.now, &mut [0u8; 16]);
            assert_eq!(r, Err(false), "{name}: reads see the reset");
            h.assert_no_segment();
        }
    }
}

#[test]
fn peer_fastclose_on_a_rst_resets_the_other_subflows() {
    for (name, mut h, p) in joined(V1) {
        // The other form: a RST with MP_FASTCLOSE (at rcv_nxt) on one subflow;
        // that one is closed by the RST itself, the others we reset.
        let fx = h.feed(0, RST | ACK, &[fastclose(LOCAL_KEY)]);
        assert_one_rst(&h, &fx, p, &[]);
        assert_eq!(h.conn.state(), State::Closed, "{name}");
    }
}

#[test]
fn peer_fastclose_with_a_wrong_key_changes_nothing() {
    for (name, mut h, p) in joined(V1) {
        for key in [PEER_KEY, 0xbad] {
            let fx = h.feed(0, ACK, &[fastclose(key)]);
            assert!(fx.is_empty(), "{name}: {fx:?}");
        }
        assert_eq!(h.conn.info().subflows.len(), 2, "{name}");
        assert_eq!(h.path_state(p), Some(State::Established), "{name}");
        h.conn.send(b"alive");
        assert_eq!(h.recv_seg().payload, b"alive", "{name}");
    }
}
