//! The path-event monitor (`Stack::poll_path_event`) in the seeded network:
//! every event once, in the order things happened, on both sides — a join,
//! an address announced and withdrawn, a path cut, a refused join — and
//! nothing for plain TCP.

mod sim;

use core::time::Duration;
use mptun_stack::{
    EndpointFlags, LocalReset, PathEvent, PathEventKind, Stack, SubflowEnd, UnusedPath,
    UnusedReason,
};
use sim::net::LinkParams;
use sim::rng::derive;
use sim::transfer::{mptcp_pair, sim_config, Payload, Transfer, SERVER_PORT};
use sim::*;
use std::net::{IpAddr, SocketAddr};

fn link(delay_ms: u64) -> LinkParams {
    LinkParams {
        delay: Duration::from_millis(delay_ms),
        rate: Some(20_000_000 / 8),
        queue: 64 * 1024,
        ..LinkParams::default()
    }
}

/// A client (from `local`, if given) sending `up` bytes to the server at
/// `server` and reading `down` back, and the server's side of it.
fn transfers(
    seed: u64,
    local: Option<SocketAddr>,
    server: IpAddr,
    up: u64,
    down: u64,
) -> (Transfer, Transfer) {
    let cp = Payload::new(derive(seed, 10), up);
    let sp = Payload::new(derive(seed, 11), down);
    let client = Transfer::client(
        local,
        SocketAddr::new(server, SERVER_PORT),
        cp,
        sp,
        derive(seed, 20),
    );
    (client, Transfer::server(sp, cp, derive(seed, 21)))
}

fn drain(stack: &mut Stack) -> Vec<PathEvent> {
    std::iter::from_fn(|| stack.poll_path_event()).collect()
}

fn names(events: &[PathEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.name()).collect()
}

fn count(events: &[PathEvent], name: &str) -> usize {
    events.iter().filter(|e| e.kind.name() == name).count()
}

fn position(events: &[PathEvent], f: impl Fn(&PathEventKind) -> bool) -> Option<usize> {
    events.iter().position(|e| f(&e.kind))
}

/// Connection events once each, CREATED first and CLOSED last, one token.
fn check_frame(side: &str, ev: &[PathEvent]) {
    let n = names(ev);
    assert_eq!(n.first(), Some(&"CREATED"), "{side}: {n:?}");
    assert_eq!(n.last(), Some(&"CLOSED"), "{side}: {n:?}");
    for once in ["CREATED", "ESTABLISHED", "CLOSED"] {
        assert_eq!(count(ev, once), 1, "{side}: {once} in {n:?}");
    }
    assert!(ev.iter().all(|e| e.token == ev[0].token), "{side}: tokens");
    // Every subflow that came up goes down once, after it came up.
    for (i, e) in ev.iter().enumerate() {
        if let PathEventKind::SubflowEstablished(sf) = e.kind {
            let closed: Vec<usize> = ev
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    matches!(c.kind, PathEventKind::SubflowClosed { subflow, .. }
                        if subflow.local == sf.local && subflow.remote == sf.remote)
                })
                .map(|(j, _)| j)
                .collect();
            assert_eq!(closed.len(), 1, "{side}: {sf:?} closed {closed:?} in {n:?}");
            assert!(closed[0] > i, "{side}: closed before established: {n:?}");
        }
    }
}

/// The server announces a second address, the client joins it, the server
/// withdraws it mid-transfer.
#[test]
fn announce_join_and_withdraw_are_reported_in_order() {
    for seed in seeds(4) {
        let ipv6 = seed % 2 == 1;
        let mut w = World::new(seed);
        let (cc, sc) = mptcp_pair(seed, 2);
        let mut cc = cc;
        cc.mptcp.max_add_addr_accepted = 1;
        let c = w.add_host("client", cc);
        let s = w.add_host("server", sc);
        let (c0, s0, s1) = (addr(ipv6, 0, 1), addr(ipv6, 0, 2), addr(ipv6, 1, 2));
        w.add_path(c, c0, s, s0, link(10), link(10));
        w.add_path(c, c0, s, s1, link(20), link(20));
        let signal = EndpointFlags {
            signal: true,
            ..EndpointFlags::default()
        };
        w.stack_mut(s).add_endpoint(s1, signal);
        w.stack_mut(s).listen(SERVER_PORT).expect("listen");
        for h in [c, s] {
            w.stack_mut(h).set_path_events(true);
        }
        let (mut client, mut server) = transfers(seed, None, s0, 4 << 20, 1 << 20);
        w.run_until(&mut [&mut client, &mut server], |w, _| {
            let ss = w.stack(s).counters();
            (ss.mptcp_joins_established >= 1 && ss.mptcp_add_addr_echo_rx >= 1) || w.idle()
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        w.stack_mut(s).remove_address(s1);
        w.run_until_done(&mut [&mut client, &mut server])
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));

        let cev = drain(w.stack_mut(c));
        let sev = drain(w.stack_mut(s));
        check_frame("client", &cev);
        check_frame("server", &sev);
        let n = names(&cev);
        let announced = position(
            &cev,
            |k| matches!(k, PathEventKind::Announced { addr, .. } if *addr == s1),
        )
        .unwrap_or_else(|| panic!("seed {seed}: client: no ANNOUNCED: {n:?}"));
        let joined = position(
            &cev,
            |k| matches!(k, PathEventKind::SubflowEstablished(sf) if sf.remote.ip() == s1),
        )
        .unwrap_or_else(|| panic!("seed {seed}: client: no SF_ESTABLISHED: {n:?}"));
        let removed = position(&cev, |k| matches!(k, PathEventKind::Removed { .. }))
            .unwrap_or_else(|| panic!("seed {seed}: client: no REMOVED: {n:?}"));
        let gone = position(&cev, |k| {
            matches!(k, PathEventKind::SubflowClosed { subflow, .. } if subflow.remote.ip() == s1)
        })
        .unwrap_or_else(|| panic!("seed {seed}: client: no SF_CLOSED: {n:?}"));
        assert!(
            announced < joined && joined < removed && removed < gone,
            "{n:?}"
        );
        assert_eq!(count(&cev, "ANNOUNCED"), 1, "seed {seed}: {n:?}");

        let n = names(&sev);
        let local_announced = position(
            &sev,
            |k| matches!(k, PathEventKind::LocalAnnounced { addr, .. } if *addr == s1),
        )
        .unwrap_or_else(|| panic!("seed {seed}: server: {n:?}"));
        let local_removed = position(&sev, |k| matches!(k, PathEventKind::LocalRemoved { .. }))
            .unwrap_or_else(|| panic!("seed {seed}: server: {n:?}"));
        let reset = position(&sev, |k| {
            matches!(k, PathEventKind::SubflowClosed { subflow, end }
                if subflow.local.ip() == s1
                    && *end == SubflowEnd::Reset(LocalReset::AddressRemoved))
        })
        .unwrap_or_else(|| {
            panic!("seed {seed}: server: no reset of the withdrawn subflow: {sev:?}")
        });
        assert!(
            local_announced < local_removed && local_removed < reset,
            "{n:?}"
        );
    }
}

/// The first path dies mid-transfer: its subflow's end is reported, with
/// why, and the connection carries on over the join.
#[test]
fn a_cut_path_reports_its_subflow_closed() {
    for seed in seeds(4) {
        let mut w = World::new(seed);
        let (cc, sc) = mptcp_pair(seed, 2);
        let c = w.add_host("client", cc);
        let s = w.add_host("server", sc);
        let (c0, c1, s0) = (addr(false, 0, 1), addr(false, 1, 1), addr(false, 0, 2));
        w.add_path(c, c0, s, s0, link(10), link(10));
        w.add_path(c, c1, s, s0, link(30), link(30));
        let subflow = EndpointFlags {
            subflow: true,
            ..EndpointFlags::default()
        };
        w.stack_mut(c).add_endpoint(c1, subflow);
        w.stack_mut(s).listen(SERVER_PORT).expect("listen");
        for h in [c, s] {
            w.stack_mut(h).set_path_events(true);
        }
        let (mut client, mut server) =
            transfers(seed, Some(SocketAddr::new(c0, 0)), s0, 6 << 20, 1 << 20);
        w.run_for(&mut [&mut client, &mut server], Duration::from_millis(500))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        w.set_path_up(0, false);
        w.run_until_done(&mut [&mut client, &mut server])
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let cev = drain(w.stack_mut(c));
        check_frame("client", &cev);
        let n = names(&cev);
        let up = position(
            &cev,
            |k| matches!(k, PathEventKind::SubflowEstablished(sf) if sf.local.ip() == c1),
        )
        .unwrap_or_else(|| panic!("seed {seed}: no join: {n:?}"));
        let first_down = position(&cev, |k| {
            matches!(k, PathEventKind::SubflowClosed { subflow, end }
                if subflow.local.ip() == c0 && *end != SubflowEnd::Closed)
        })
        .unwrap_or_else(|| panic!("seed {seed}: the cut subflow's end: {cev:?}"));
        assert!(up < first_down, "{n:?}");
        assert_eq!(count(&cev, "SF_ESTABLISHED"), 1, "{n:?}");
    }
}

/// A server that takes no joins refuses the client's: the client reports
/// the subflow closed as refused, and keeps the failure for `status`.
#[test]
fn a_refused_join_is_reported_and_kept() {
    let seed = 3;
    let mut w = World::new(seed);
    let (cc, mut sc) = mptcp_pair(seed, 2);
    sc.mptcp.max_subflows = 0;
    let c = w.add_host("client", cc);
    let s = w.add_host("server", sc);
    let (c0, c1, s0) = (addr(false, 0, 1), addr(false, 1, 1), addr(false, 0, 2));
    w.add_path(c, c0, s, s0, link(10), link(10));
    w.add_path(c, c1, s, s0, link(10), link(10));
    let subflow = EndpointFlags {
        subflow: true,
        ..EndpointFlags::default()
    };
    w.stack_mut(c).add_endpoint(c1, subflow);
    w.stack_mut(s).listen(SERVER_PORT).expect("listen");
    w.stack_mut(c).set_path_events(true);
    let (mut client, mut server) =
        transfers(seed, Some(SocketAddr::new(c0, 0)), s0, 1 << 20, 1 << 20);
    let mut failures = Vec::new();
    let mut unused = Vec::new();
    w.run_until(&mut [&mut client, &mut server], |w, _| {
        w.stack(c).connections().into_iter().any(|id| {
            let f = w.stack(c).join_failures(id);
            if !f.is_empty() {
                failures = f;
                unused = w.stack(c).unused_paths(id);
            }
            !failures.is_empty()
        }) || w.idle()
    })
    .expect("run");
    w.run_until_done(&mut [&mut client, &mut server])
        .expect("transfer");
    let cev = drain(w.stack_mut(c));
    check_frame("client", &cev);
    let refused = cev.iter().find_map(|e| match e.kind {
        PathEventKind::SubflowClosed { subflow, end } if subflow.local.ip() == c1 => Some(end),
        _ => None,
    });
    assert!(
        matches!(refused, Some(SubflowEnd::Refused { .. })),
        "{cev:?}"
    );
    assert_eq!(count(&cev, "SF_ESTABLISHED"), 0);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].local.ip(), c1);
    assert!(matches!(failures[0].end, SubflowEnd::Refused { .. }));
    assert_eq!(
        unused,
        [UnusedPath {
            local: c1,
            remote: None,
            reason: UnusedReason::Ended(failures[0].end),
        }]
    );
}

/// `status`'s "why is this path unused": an address without the `subflow`
/// flag, one past `max_subflows`, one whose join works (not listed), and a
/// backup.
#[test]
fn unused_paths_say_why() {
    let seed = 11;
    let mut w = World::new(seed);
    let (mut cc, sc) = mptcp_pair(seed, 4);
    cc.mptcp.max_subflows = 2;
    let c = w.add_host("client", cc);
    let s = w.add_host("server", sc);
    let s0 = addr(false, 0, 2);
    let ca: Vec<IpAddr> = (0..5).map(|i| addr(false, i, 1)).collect();
    for &a in &ca {
        w.add_path(c, a, s, s0, link(10), link(10));
    }
    let flags = |subflow, backup| EndpointFlags {
        subflow,
        backup,
        ..EndpointFlags::default()
    };
    w.stack_mut(c).add_endpoint(ca[1], flags(true, false));
    w.stack_mut(c).add_endpoint(ca[2], flags(true, true));
    w.stack_mut(c).add_endpoint(ca[3], flags(true, false));
    w.stack_mut(c).add_endpoint(ca[4], flags(false, false));
    w.stack_mut(s).listen(SERVER_PORT).expect("listen");
    let (mut client, mut server) =
        transfers(seed, Some(SocketAddr::new(ca[0], 0)), s0, 4 << 20, 64 << 10);
    w.run_until(&mut [&mut client, &mut server], |w, _| {
        w.stack(c).counters().mptcp_joins_established >= 2 || w.idle()
    })
    .expect("run");
    let id = w.stack(c).connections()[0];
    let mut unused = w.stack(c).unused_paths(id);
    unused.sort_by_key(|u| u.local);
    let want = [
        (ca[2], UnusedReason::Backup),
        (ca[3], UnusedReason::SubflowLimit { max: 2 }),
        (ca[4], UnusedReason::NoSubflowFlag),
    ];
    let got: Vec<(IpAddr, UnusedReason)> = unused.iter().map(|u| (u.local, u.reason)).collect();
    assert_eq!(got, want, "{unused:?}");
    w.run_until_done(&mut [&mut client, &mut server])
        .expect("transfer");
}

/// Plain TCP has no path events; a connection whose peer does not speak
/// MPTCP reports only its fallback.
#[test]
fn plain_tcp_reports_nothing_and_a_fallback_reports_why() {
    let seed = 7;
    let mut w = World::new(seed);
    let mut cc = sim_config(derive(seed, 1));
    cc.mptcp.enabled = true;
    let sc = sim_config(derive(seed, 2));
    let c = w.add_host("client", cc);
    let s = w.add_host("server", sc);
    let (c0, s0): (IpAddr, IpAddr) = (addr(false, 0, 1), addr(false, 0, 2));
    w.add_path(c, c0, s, s0, link(10), link(10));
    w.stack_mut(s).listen(SERVER_PORT).expect("listen");
    for h in [c, s] {
        w.stack_mut(h).set_path_events(true);
    }
    let (mut client, mut server) = transfers(seed, None, s0, 64 << 10, 64 << 10);
    w.run_until_done(&mut [&mut client, &mut server])
        .expect("transfer");
    assert!(drain(w.stack_mut(s)).is_empty());
    let cev = drain(w.stack_mut(c));
    assert_eq!(names(&cev), ["FALLBACK"], "{cev:?}");
}
