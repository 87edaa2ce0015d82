//! Unacceptable segments (RFC 9293 §3.10.7.4, RFC 5961): whatever MPTCP
//! options they carry, they change nothing. The subflow's TCB judges every
//! segment first; only an acceptable one reaches the MPTCP level. Here the
//! options would each have an effect on an acceptable segment (see the other
//! modules): a DATA_ACK freeing data, a DATA_FIN, a mapping with data,
//! REMOVE_ADDR, MP_PRIO, MP_FAIL, MP_FASTCLOSE, ADD_ADDR.

use super::*;
use crate::mptcp::stats::MptcpStats;
use crate::wire::mptcp::{AddAddr, FastClose, MpFail, MpPrio, RemoveAddr};

/// A v1 client with DSS checksums and a joined subflow (path 1), 300 bytes
/// sent (on the joined subflow, the one with the lower RTT) and not yet
/// acknowledged at either level.
fn setup() -> Harness {
    let s = MptcpSettings {
        checksum: true,
        ..settings()
    };
    let mut h = Harness::client_with(V1, s);
    h.active_join();
    h.conn.send(&bytes(300, 1));
    let seg = h.recv_seg();
    assert_eq!((seg.path, seg.payload.len()), (1, 300));
    h
}

/// Options that act on an acceptable segment, with the path to send them on.
fn options(h: &Harness) -> Vec<(&'static str, usize, Vec<MptcpOption<'static>>)> {
    let add_hmac = crypto::add_addr_hmac(h.alg(), PEER_KEY, LOCAL_KEY, 5, remote_ip2(), None);
    vec![
        ("DATA_ACK", 0, vec![dss_ack(h.local_dsn(300))]),
        (
            "DATA_FIN",
            0,
            vec![dss_data_fin(h.local_dsn(0), h.peer_dsn(0), true)],
        ),
        (
            "REMOVE_ADDR",
            0,
            vec![
                MptcpOption::RemoveAddr(RemoveAddr::new(&[2]).unwrap()),
                dss_ack(h.local_dsn(0)),
            ],
        ),
        (
            "MP_PRIO",
            1,
            vec![MptcpOption::MpPrio(MpPrio {
                backup: true,
                addr_id: None,
            })],
        ),
        (
            "MP_FAIL",
            0,
            vec![
                MptcpOption::MpFail(MpFail {
                    dsn: h.local_dsn(0),
                }),
                dss_ack(h.local_dsn(0)),
            ],
        ),
        (
            "MP_FASTCLOSE",
            0,
            vec![MptcpOption::FastClose(FastClose {
                receiver_key: LOCAL_KEY,
            })],
        ),
        (
            "ADD_ADDR",
            0,
            vec![MptcpOption::AddAddr(AddAddr::V1 {
                echo: false,
                addr_id: 5,
                addr: remote_ip2(),
                port: None,
                hmac: Some(add_hmac),
            })],
        ),
    ]
}

/// Ways a segment fails the TCB's checks while its 4-tuple is right.
#[derive(Debug, Clone, Copy)]
enum Blind {
    /// Sequence number far beyond the receive window.
    AfterWindow,
    /// Data entirely before `rcv_nxt` (an old duplicate).
    Old,
    /// In the window, but acknowledging data never sent (RFC 5961 §5.2).
    AckUnsent,
    /// In the window, acknowledging too far back (RFC 5961 §5.2).
    AckTooOld,
}

fn blind_seg<'a>(h: &Harness, p: usize, how: Blind, payload: &'a [u8]) -> TcpRepr<'a> {
    let mut seg = TcpRepr {
        payload,
        ..h.seg(p, ACK)
    };
    let path = &h.paths[p];
    match how {
        Blind::AfterWindow => seg.seq = SeqNumber(path.snd_nxt.wrapping_add(1 << 20)),
        Blind::Old => seg.seq = SeqNumber(path.snd_nxt.wrapping_sub(1000)),
        Blind::AckUnsent => seg.ack = SeqNumber(path.rcv_nxt.wrapping_add(5000)),
        Blind::AckTooOld => seg.ack = SeqNumber(path.rcv_nxt.wrapping_sub(1 << 20)),
    }
    seg
}

/// What the options could have changed.
#[derive(Debug, PartialEq)]
struct Snapshot {
    info: crate::conn::ConnInfo,
    stats: MptcpStats,
    phase: Phase,
    peer_finished: bool,
    send_capacity: usize,
    recv_available: usize,
}

fn snapshot(h: &Harness) -> Snapshot {
    let mp = h.conn.data_level().unwrap();
    Snapshot {
        info: h.conn.info(),
        stats: h.stats(),
        phase: mp.phase(),
        peer_finished: mp.peer_data_finished(),
        send_capacity: h.conn.send_capacity(),
        recv_available: h.conn.recv_available(),
    }
}

#[test]
fn unacceptable_segments_with_mptcp_options_change_nothing() {
    let payload = bytes(100, 2);
    for how in [
        Blind::AfterWindow,
        Blind::Old,
        Blind::AckUnsent,
        Blind::AckTooOld,
    ] {
        let n = options(&setup()).len();
        for k in 0..n {
            let mut h = setup();
            let (name, p, opts) = options(&h).swap_remove(k);
            let before = snapshot(&h);
            for data in [&[][..], &payload[..]] {
                let mut opts = opts.clone();
                if !data.is_empty() {
                    // With data, and a mapping for it.
                    opts.retain(|o| !matches!(o, MptcpOption::Dss(_)));
                    let dsn = h.peer_dsn(0);
                    let csum = dss_checksum(dsn, 1, data);
                    opts.push(dss_map(h.local_dsn(300), dsn, 1, 100, Some(csum)));
                }
                let seg = blind_seg(&h, p, how, data);
                let fx = h.feed_seg(p, &seg, &opts);
                assert!(fx.is_empty(), "{name} {how:?}: {fx:?}");
            }
            assert_eq!(snapshot(&h), before, "{name} {how:?}");
            // At most the TCB's (challenge) ACKs, with nothing but a DSS.
            for s in h.recv_all() {
                assert_eq!((s.flags, s.payload.len()), (fl(ACK), 0), "{name} {how:?}");
                s.assert_opts(&[dss_ack(h.peer_dsn(0))]);
            }
            assert_eq!(h.read_all(), (vec![], false), "{name} {how:?}");
        }
    }
}

#[test]
fn rst_with_mp_fastclose_out_of_place_changes_nothing() {
    for offset in [1u32, 1 << 20] {
        let mut h = setup();
        let before = snapshot(&h);
        // Not exactly at rcv_nxt: in the window a challenge ACK (RFC 5961
        // §3.2), beyond it nothing at all.
        let mut seg = h.seg(0, RST | ACK);
        seg.seq = SeqNumber(h.paths[0].snd_nxt.wrapping_add(offset));
        let close = MptcpOption::FastClose(FastClose {
            receiver_key: LOCAL_KEY,
        });
        let fx = h.feed_seg(0, &seg, &[close]);
        assert!(fx.is_empty(), "{fx:?}");
        assert_eq!(snapshot(&h), before);
        for s in h.recv_all() {
            s.assert_opts(&[dss_ack(h.peer_dsn(0))]);
        }
    }
}

#[test]
fn the_same_options_on_an_acceptable_segment_do_act() {
    // The control for the tests above: each option, acceptable, changes
    // something in the snapshot.
    let n = options(&setup()).len();
    for k in 0..n {
        let mut h = setup();
        let (name, p, opts) = options(&h).swap_remove(k);
        let before = snapshot(&h);
        let _ = h.feed(p, ACK, &opts);
        assert_ne!(snapshot(&h), before, "{name}");
    }
}
