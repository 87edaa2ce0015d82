//! Address management (RFC 8684 §3.4; RFC 6824 §3.4 for v0) and priorities
//! (§3.3.8): ADD_ADDR sent with its HMAC and repeated until echoed, received
//! ones checked, echoed and handed to the path manager; REMOVE_ADDR both ways;
//! MP_PRIO both ways.

use super::*;
use crate::mptcp::pm::RemoteAddr;
use crate::mptcp::rst_reason;
use crate::wire::mptcp::{AddAddr, MpPrio, RemoveAddr};
use core::time::Duration;

fn announced_ip() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 2, 1))
}

/// Our ADD_ADDR v1 for `announced_ip()` as id 1, with its HMAC.
fn our_add_addr(h: &Harness) -> MptcpOption<'static> {
    let hmac = crypto::add_addr_hmac(h.alg(), LOCAL_KEY, PEER_KEY, 1, announced_ip(), None);
    MptcpOption::AddAddr(AddAddr::V1 {
        echo: false,
        addr_id: 1,
        addr: announced_ip(),
        port: None,
        hmac: Some(hmac),
    })
}

/// The peer's ADD_ADDR v1 of its second address as id 5, with the HMAC it
/// computes (or a wrong one).
fn peer_add_addr(h: &Harness, port: Option<u16>, good: bool) -> MptcpOption<'static> {
    let hmac = crypto::add_addr_hmac(h.alg(), PEER_KEY, LOCAL_KEY, 5, remote_ip2(), port);
    MptcpOption::AddAddr(AddAddr::V1 {
        echo: false,
        addr_id: 5,
        addr: remote_ip2(),
        port,
        hmac: Some(if good { hmac } else { hmac ^ 1 }),
    })
}

fn echo(addr_id: u8, addr: IpAddr, port: Option<u16>) -> MptcpOption<'static> {
    MptcpOption::AddAddr(AddAddr::V1 {
        echo: true,
        addr_id,
        addr,
        port,
        hmac: None,
    })
}

fn remove(ids: &[u8]) -> MptcpOption<'static> {
    MptcpOption::RemoveAddr(RemoveAddr::new(ids).unwrap())
}

fn prio(backup: bool, addr_id: Option<u8>) -> MptcpOption<'static> {
    MptcpOption::MpPrio(MpPrio { backup, addr_id })
}

// ----- ADD_ADDR out -----

#[test]
fn announce_sends_add_addr_with_its_hmac_on_a_pure_ack_until_echoed() {
    for (name, mut h) in [
        ("client", Harness::client(V1)),
        ("server", Harness::server(V1)),
    ] {
        h.conn.announce(1, announced_ip());
        let seg = h.recv_seg();
        seg.assert_tcp(ACK, ISS + 1, IRS + 1, 0);
        seg.assert_opts(&[our_add_addr(&h), dss_ack(h.peer_dsn(0))]);
        h.assert_no_segment();
        assert_eq!(
            h.conn.info().mptcp.unwrap().announced,
            vec![(1, announced_ip(), false)]
        );

        // Not echoed: it goes again.
        let fx = h.fire_timer();
        assert!(fx.is_empty(), "{name}: {fx:?}");
        h.recv_seg()
            .assert_opts(&[our_add_addr(&h), dss_ack(h.peer_dsn(0))]);
        assert_eq!(h.stats().add_addr_tx, 2, "{name}");

        // The echo ends it.
        let _ = h.feed(0, ACK, &[echo(1, announced_ip(), None), h.peer_dss_ack()]);
        assert_eq!(h.stats().add_addr_echo_rx, 1, "{name}");
        assert_eq!(
            h.conn.info().mptcp.unwrap().announced,
            vec![(1, announced_ip(), true)]
        );
        h.assert_no_segment();
        assert_eq!(h.conn.poll_at(), None, "{name}");
    }
}

#[test]
fn unechoed_add_addr_is_given_up_after_four_tries() {
    let mut h = Harness::server(V1);
    h.conn.announce(1, announced_ip());
    let mut sent = 0;
    loop {
        sent += h
            .recv_all()
            .iter()
            .filter(|s| s.mp.add_addr.is_some())
            .count();
        if h.conn.poll_at().is_none() {
            break;
        }
        let _ = h.fire_timer();
    }
    assert_eq!(sent, 4);
    assert_eq!(
        h.conn.info().mptcp.unwrap().announced,
        vec![(1, announced_ip(), false)]
    );
}

#[test]
fn v0_announce_sends_add_addr_without_hmac_once() {
    for (name, mut h) in [
        ("client", Harness::client(V0)),
        ("server", Harness::server(V0)),
    ] {
        h.conn.announce(1, announced_ip());
        let seg = h.recv_seg();
        // RFC 6824 has neither HMAC nor echo.
        let add = MptcpOption::AddAddr(AddAddr::V0 {
            addr_id: 1,
            addr: announced_ip(),
            port: None,
        });
        seg.assert_opts(&[add, dss_ack(h.peer_dsn(0))]);
        h.assert_no_segment();
        assert_eq!(h.conn.poll_at(), None, "{name}");
    }
}

// ----- ADD_ADDR in -----

#[test]
fn peer_add_addr_with_a_good_hmac_is_echoed_and_handed_to_the_path_manager() {
    for (name, mut h) in [
        ("client", Harness::client(V1)),
        ("server", Harness::server(V1)),
    ] {
        for port in [None, Some(8080)] {
            let fx = h.feed(0, ACK, &[peer_add_addr(&h, port, true), h.peer_dss_ack()]);
            let r = RemoteAddr {
                id: 5,
                addr: remote_ip2(),
                port,
            };
            assert!(fx.rsts.is_empty(), "{name}");
            assert_eq!(fx.requests, vec![Request::JoinPeerAddress(r)], "{name}");
            // The echo: same id, address and port, no HMAC, on a pure ACK.
            let seg = h.recv_seg();
            seg.assert_tcp(ACK, ISS + 1, IRS + 1, 0);
            seg.assert_opts(&[echo(5, remote_ip2(), port), dss_ack(h.peer_dsn(0))]);
            h.assert_no_segment();
        }
        let remote = h.conn.info().mptcp.unwrap().remote_addrs;
        assert_eq!(
            remote,
            vec![(5, remote_ip2(), None), (5, remote_ip2(), Some(8080))]
        );
        assert_eq!(h.stats().add_addr_rx, 2, "{name}");
    }
}

/// An echo that leaves no room for the DSS (here an IPv6 one with a port
/// beside an MP_FAIL echo; in the field, beside timestamps) is followed at
/// once by a pure ACK with the DATA_ACK. (Found by two_endpoints: the peer,
/// its data never acknowledged at the data level, sent it again on the same
/// subflow.)
#[test]
fn an_echo_that_crowds_out_the_data_ack_is_followed_by_one() {
    let mut h = Harness::server(V1);
    let data = bytes(100, 3);
    let _ = h.feed_data(0, &data, &[h.peer_map(0, 1, &data)]);
    let _ = h.recv_all();
    let v6: IpAddr = "fd00:0:0:1::2".parse().unwrap();
    let hmac = crypto::add_addr_hmac(h.alg(), PEER_KEY, LOCAL_KEY, 6, v6, Some(8080));
    let add = MptcpOption::AddAddr(AddAddr::V1 {
        echo: false,
        addr_id: 6,
        addr: v6,
        port: Some(8080),
        hmac: Some(hmac),
    });
    let fail = MptcpOption::MpFail(crate::wire::mptcp::MpFail {
        dsn: h.local_dsn(0),
    });
    let _ = h.feed(0, ACK, &[add, fail, h.peer_dss_ack()]);
    let first = h.recv_seg();
    assert!(first.mp.dss.is_none(), "{first:?}");
    assert!(first.mp.add_addr.is_some(), "{first:?}");
    let then = h.recv_seg();
    then.assert_tcp(ACK, ISS + 1, IRS + 101, 0);
    then.assert_opts(&[dss_ack(h.peer_dsn(100))]);
    h.assert_no_segment();
}

#[test]
fn peer_add_addr_repeated_is_echoed_again_but_reported_once() {
    let mut h = Harness::client(V1);
    let fx = h.feed(0, ACK, &[peer_add_addr(&h, None, true), h.peer_dss_ack()]);
    assert_eq!(fx.requests.len(), 1);
    h.recv_seg();
    // Our echo was lost; the peer repeats its announcement.
    let fx = h.feed(0, ACK, &[peer_add_addr(&h, None, true), h.peer_dss_ack()]);
    assert!(fx.is_empty(), "{fx:?}");
    h.recv_seg()
        .assert_opts(&[echo(5, remote_ip2(), None), dss_ack(h.peer_dsn(0))]);
}

#[test]
fn peer_add_addr_before_the_first_data_ack_waits_for_full_establishment() {
    let mut h = Harness::connecting(V1, settings());
    h.recv_seg();
    let _ = h.feed(0, SYN | ACK, &[h.synack_capable()]);
    h.recv_seg();
    // Keys exchanged, not yet fully established: an ADD_ADDR (no DSS on it)
    // is no reason to fall back, and the path manager waits.
    let fx = h.feed(0, ACK, &[peer_add_addr(&h, None, true)]);
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(h.phase(), Phase::PreEstablished);
    let _ = h.recv_all();
    let fx = h.feed(0, ACK, &[h.peer_dss_ack()]);
    let r = RemoteAddr {
        id: 5,
        addr: remote_ip2(),
        port: None,
    };
    assert_eq!(
        fx.requests,
        vec![Request::StartPathManager, Request::JoinPeerAddress(r)]
    );
}

/// Found by review: before full establishment the announced addresses
/// wait for the path manager in a list of their own, which a peer repeating
/// ADD_ADDR and REMOVE_ADDR of the same address (never sending a DATA_ACK)
/// grew without end. A withdrawn address leaves it too.
#[test]
fn add_and_remove_repeated_before_the_first_data_ack_hold_nothing() {
    let mut h = Harness::connecting(V1, settings());
    h.recv_seg();
    let _ = h.feed(0, SYN | ACK, &[h.synack_capable()]);
    h.recv_seg();
    let before = h.conn.memory();
    for _ in 0..10_000 {
        let _ = h.feed(0, ACK, &[peer_add_addr(&h, None, true), remove(&[5])]);
        let _ = h.recv_all();
    }
    assert_eq!(h.phase(), Phase::PreEstablished);
    assert!(
        h.conn.memory() <= before + 1024,
        "{} bytes, {before} before",
        h.conn.memory()
    );
    // Established, the path manager is told of no address.
    let fx = h.feed(0, ACK, &[h.peer_dss_ack()]);
    assert_eq!(fx.requests, vec![Request::StartPathManager]);
}

#[test]
fn peer_add_addr_with_a_bad_hmac_is_ignored() {
    for (name, mut h) in [
        ("client", Harness::client(V1)),
        ("server", Harness::server(V1)),
    ] {
        let fx = h.feed(0, ACK, &[peer_add_addr(&h, None, false), h.peer_dss_ack()]);
        assert!(fx.is_empty(), "{name}: {fx:?}");
        h.assert_no_segment();
        assert_eq!(h.stats().add_addr_hmac_failures, 1, "{name}");
        assert_eq!(h.stats().add_addr_rx, 0, "{name}");
        assert!(h.conn.info().mptcp.unwrap().remote_addrs.is_empty());
    }
}

#[test]
fn v0_peer_add_addr_is_reported_without_echo() {
    let mut h = Harness::client(V0);
    let add = MptcpOption::AddAddr(AddAddr::V0 {
        addr_id: 5,
        addr: remote_ip2(),
        port: None,
    });
    let fx = h.feed(0, ACK, &[add, h.peer_dss_ack()]);
    let r = RemoteAddr {
        id: 5,
        addr: remote_ip2(),
        port: None,
    };
    assert_eq!(fx.requests, vec![Request::JoinPeerAddress(r)]);
    h.assert_no_segment();
}

/// v0 ADD_ADDR has no HMAC: whoever can put one segment in the window could
/// make us open a subflow to an address of its choice. It is acted on only
/// when configured (`accept_v0_add_addr`), and otherwise ignored and counted.
#[test]
fn v0_peer_add_addr_is_ignored_unless_accepted() {
    let s = MptcpSettings {
        accept_v0_add_addr: false,
        ..settings()
    };
    let mut h = Harness::client_with(V0, s);
    let add = MptcpOption::AddAddr(AddAddr::V0 {
        addr_id: 5,
        addr: remote_ip2(),
        port: None,
    });
    let fx = h.feed(0, ACK, &[add, h.peer_dss_ack()]);
    assert!(fx.requests.is_empty(), "{fx:?}");
    assert_eq!(h.stats().add_addr_ignored, 1);
    assert!(h.conn.info().mptcp.unwrap().remote_addrs.is_empty());
}

// ----- REMOVE_ADDR -----

#[test]
fn withdraw_resets_our_subflows_on_that_address_and_sends_remove_addr() {
    let mut client = Harness::client(V1);
    let cp = client.active_join();
    let mut server = Harness::server(V1);
    let sp = server.accept_join_at(local_ip2(), 1, remote_ip2(), 2, false);
    server.finish_passive_join(sp);
    for (name, mut h, p) in [("client", client, cp), ("server", server, sp)] {
        let now = h.now;
        let fx = h.conn.withdraw(now, local_ip2(), 1);
        assert_one_rst(&h, &fx, p, &[tcprst(rst_reason::ADMIN_PROHIBITED)]);
        assert_eq!(fx.requests, vec![Request::Unbind(h.tuple(p))], "{name}");
        // On the subflow that is left.
        let seg = h.recv_seg();
        assert_eq!(seg.path, 0, "{name}");
        seg.assert_tcp(ACK, ISS + 1, IRS + 1, 0);
        seg.assert_opts(&[remove(&[1]), dss_ack(h.peer_dsn(0))]);
        h.assert_no_segment();
        // Nothing acknowledges it: it goes a few times.
        let _ = h.fire_timer();
        h.recv_seg()
            .assert_opts(&[remove(&[1]), dss_ack(h.peer_dsn(0))]);
        assert_eq!(h.stats().rm_addr_tx, 2, "{name}");
    }
}

/// RFC 8684 §3.4.2: a REMOVE_ADDR closes nothing at once. Each subflow to
/// that address sends a keepalive probe; one that stays silent is reset when
/// the check runs out, one that answers stays.
#[test]
fn peer_remove_addr_probes_the_path_and_resets_a_silent_subflow() {
    let mut client = Harness::client(V1);
    let cp = client.active_join();
    let mut server = Harness::server(V1);
    let sp = server.passive_join();
    for (name, mut h, p) in [("client", client, cp), ("server", server, sp)] {
        // Arrives on the first subflow, names the joined one's peer address.
        let fx = h.feed(0, ACK, &[remove(&[2]), h.peer_dss_ack()]);
        assert!(fx.is_empty(), "{name}: nothing closes at once: {fx:?}");
        assert_eq!(h.stats().rm_addr_rx, 1, "{name}");
        // The probe: an old sequence number the peer must answer.
        let probe = h.recv_seg();
        assert_eq!(probe.path, p, "{name}");
        assert_eq!(probe.payload.len(), 0, "{name}");
        let snd_una = h.seg(p, ACK).ack.0;
        assert_eq!(probe.seq, snd_una.wrapping_sub(1), "{name}");
        h.assert_no_segment();
        // No answer: reset when the check runs out.
        let fx = h.fire_timer();
        assert_one_rst(&h, &fx, p, &[tcprst(rst_reason::UNSPECIFIED)]);
        assert_eq!(fx.requests, vec![Request::Unbind(h.tuple(p))], "{name}");
        assert_eq!(h.conn.info().subflows.len(), 1, "{name}");
        assert_eq!(h.conn.state(), State::Established, "{name}");
        // An id with no subflow changes nothing.
        let fx = h.feed(0, ACK, &[remove(&[9]), h.peer_dss_ack()]);
        assert!(fx.is_empty(), "{name}: {fx:?}");
        h.assert_no_segment();
    }
}

#[test]
fn peer_remove_addr_for_a_path_that_answers_keeps_the_subflow() {
    let mut h = Harness::client(V1);
    let p = h.active_join();
    let _ = h.feed(0, ACK, &[remove(&[2]), h.peer_dss_ack()]);
    let probe = h.recv_seg();
    assert_eq!(probe.path, p);
    // The peer's answer on that path (its ACK of the probe).
    let fx = h.feed(p, ACK, &[h.peer_dss_ack()]);
    assert!(fx.is_empty(), "{fx:?}");
    while h
        .conn
        .poll_at()
        .is_some_and(|t| t <= h.now + Duration::from_secs(2))
    {
        let fx = h.fire_timer();
        assert!(fx.rsts.is_empty(), "{fx:?}");
    }
    assert_eq!(h.path_state(p), Some(State::Established));
    assert_eq!(h.conn.info().subflows.len(), 2);
}

// ----- MP_PRIO -----

#[test]
fn set_local_backup_sends_mp_prio_on_the_subflows_from_that_address() {
    for v in [V1, V0] {
        let mut h = Harness::client(v);
        let p = h.active_join();
        h.conn.set_local_backup(local_ip2(), true);
        let seg = h.recv_seg();
        assert_eq!(seg.path, p);
        // v0 names our address (RFC 6824 §3.3.8); v1 means the subflow.
        let id = (v == V0).then_some(1);
        seg.assert_opts(&[prio(true, id), dss_ack(h.peer_dsn(0))]);
        h.assert_no_segment();
        assert!(h.conn.info().subflows[1].backup);
        assert!(!h.conn.info().subflows[0].backup);
        assert_eq!(h.stats().mp_prio_tx, 1);
        // No change, no option.
        h.conn.set_local_backup(local_ip2(), true);
        h.assert_no_segment();
    }
}

#[test]
fn v1_peer_mp_prio_applies_to_the_subflow_it_arrives_on() {
    let mut h = Harness::client(V1);
    let p = h.active_join();
    let fx = h.feed(p, ACK, &[prio(true, None), h.peer_dss_ack()]);
    assert!(fx.is_empty(), "{fx:?}");
    let info = h.conn.info();
    assert!(info.subflows[1].backup);
    assert!(!info.subflows[0].backup);
    assert_eq!(h.stats().mp_prio_rx, 1);
    // An address id on a v1 MP_PRIO does not redirect it.
    let _ = h.feed(0, ACK, &[prio(true, Some(2)), h.peer_dss_ack()]);
    assert!(h.conn.info().subflows[0].backup);
    let _ = h.feed(p, ACK, &[prio(false, None), h.peer_dss_ack()]);
    assert!(!h.conn.info().subflows[1].backup);
}

#[test]
fn v0_peer_mp_prio_with_an_address_id_applies_to_the_subflows_to_that_address() {
    let mut h = Harness::client(V0);
    let p = h.active_join();
    assert_eq!(h.conn.info().subflows[1].remote_id, 2);
    // On the first subflow, naming the peer's address 2: the joined subflow.
    let fx = h.feed(0, ACK, &[prio(true, Some(2)), h.peer_dss_ack()]);
    assert!(fx.is_empty(), "{fx:?}");
    let info = h.conn.info();
    assert!(info.subflows[1].backup);
    assert!(!info.subflows[0].backup);
    // Without an id: the subflow it arrives on.
    let _ = h.feed(p, ACK, &[prio(false, None), h.peer_dss_ack()]);
    assert!(!h.conn.info().subflows[1].backup);
}
