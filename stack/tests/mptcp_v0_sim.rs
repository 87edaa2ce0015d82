//! MPTCP v0 (RFC 6824) between two engines through the seeded lossy network, and
//! version negotiation (RFC 8684 §3.1): v0 both ways, a v0 client against a
//! server allowing both, a dual client against a v1-only and a v0-only server
//! (the latter answers v1 with plain TCP, so the client opens again with v0), a
//! v0-only client against a v1-only server (plain TCP), and v0 with a join.

mod sim;

use core::time::Duration;
use mptun_stack::{Config, EndpointFlags};
use sim::transfer::{sim_config, Payload, Transfer, SERVER_PORT};
use sim::*;
use std::net::SocketAddr;

/// Versions a stack allows: (v1, v0).
fn versions(c: &mut Config, v1: bool, v0: bool) {
    c.mptcp.enabled = true;
    c.mptcp.v1 = v1;
    c.mptcp.v0 = v0;
}

struct Case {
    name: &'static str,
    client: (bool, bool),
    server: (bool, bool),
    /// Expected: Some(version) for MPTCP to the end, None for plain TCP.
    expect: Option<u8>,
    retries: u64,
}

const CASES: &[Case] = &[
    Case {
        name: "v0-v0",
        client: (false, true),
        server: (false, true),
        expect: Some(0),
        retries: 0,
    },
    Case {
        name: "v0-dual",
        client: (false, true),
        server: (true, true),
        expect: Some(0),
        retries: 0,
    },
    Case {
        name: "dual-v1",
        client: (true, true),
        server: (true, false),
        expect: Some(1),
        retries: 0,
    },
    Case {
        name: "dual-v0",
        client: (true, true),
        server: (false, true),
        expect: Some(0),
        retries: 1,
    },
    Case {
        name: "v0-v1",
        client: (false, true),
        server: (true, false),
        expect: None,
        retries: 0,
    },
];

/// One pairing over the lossy network of `seed`; a failure message if the
/// outcome (version or plain TCP, v0 retries) is not the expected one.
fn negotiate(case: &Case, seed: u64) -> Option<String> {
    let mut sc = Scenario::random(seed, 1 << 20);
    versions(&mut sc.client_config, case.client.0, case.client.1);
    versions(&mut sc.server_config, case.server.0, case.server.1);
    match run_transfer(&sc) {
        Ok(r) => {
            let [c, s] = &r.counters;
            let mptcp = c.mptcp_connections == 1 && s.mptcp_connections == 1;
            let fellback = c.mptcp_fallbacks + s.mptcp_fallbacks;
            let ok = match case.expect {
                Some(_) => mptcp && fellback == 0,
                // The client's MPTCP level fell back; the server never had one.
                None => c.mptcp_fallbacks == 1 && s.mptcp_connections == 0,
            };
            (!ok || c.mptcp_v0_retries != case.retries).then(|| {
                format!(
                    "{} seed {seed}: mptcp {}/{} fallbacks {}/{} retries {}",
                    case.name,
                    c.mptcp_connections,
                    s.mptcp_connections,
                    c.mptcp_fallbacks,
                    s.mptcp_fallbacks,
                    c.mptcp_v0_retries
                )
            })
        }
        Err(e) => Some(format!(
            "{} seed {seed} ({}): {e}",
            case.name,
            sc.describe()
        )),
    }
}

#[test]
fn version_negotiation_over_lossy_networks() {
    let mut failures = Vec::new();
    for case in CASES {
        for seed in seeds(12) {
            failures.extend(negotiate(case, seed));
            if failures.len() >= max_failures() {
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Seeds where the plain SYN/ACK answering the v1 SYN, repeated or
/// duplicated, reached the client after it had opened again with v0: its
/// MPTCP level took that SYN/ACK (which the TCB refused with a RST) for the
/// answer to the v0 SYN and fell back, so the v0 SYN went out again without
/// MP_CAPABLE and the connection ended as plain TCP.
#[test]
fn dual_v0_stale_syn_ack_after_the_retry() {
    let case = CASES.iter().find(|c| c.name == "dual-v0").expect("dual-v0");
    let failures: Vec<String> = [73, 95, 104, 238, 250]
        .into_iter()
        .filter_map(|seed| negotiate(case, seed))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The negotiated version shows in the connection's info while it runs.
#[test]
fn negotiated_version_is_reported() {
    for (case, want) in [(&CASES[0], 0u8), (&CASES[2], 1), (&CASES[3], 0)] {
        let mut w = World::new(3);
        let mut cc = sim_config(1);
        let mut sc = sim_config(2);
        versions(&mut cc, case.client.0, case.client.1);
        versions(&mut sc, case.server.0, case.server.1);
        let c = w.add_host("client", cc);
        let s = w.add_host("server", sc);
        let (ca, sa) = (addr(false, 0, 1), addr(false, 0, 2));
        w.add_path(c, ca, s, sa, LinkParams::default(), LinkParams::default());
        w.stack_mut(s).listen(SERVER_PORT).unwrap();
        let cp = Payload::new(10, 4 << 20);
        let sp = Payload::new(11, 0);
        let mut client = Transfer::client(None, SocketAddr::new(sa, SERVER_PORT), cp, sp, 20);
        let mut server = Transfer::server(sp, cp, 21);
        w.run_for(&mut [&mut client, &mut server], Duration::from_millis(300))
            .unwrap();
        for h in [c, s] {
            let st = w.stack(h);
            let info = st
                .connections()
                .iter()
                .find_map(|id| st.info(*id))
                .expect("a connection");
            let m = info.mptcp.expect("MPTCP");
            assert_eq!(m.version, want, "{}: host {h}", case.name);
            assert!(!m.fallback, "{}", case.name);
            // v0 runs with DSS checksums.
            assert_eq!(m.checksum, want == 0, "{}", case.name);
        }
        w.run_until_done(&mut [&mut client, &mut server]).unwrap();
    }
}

/// v0 with a second subflow: MP_JOIN with HMAC-SHA1 and SHA-1 tokens.
#[test]
fn v0_with_a_join_is_byte_exact() {
    for seed in seeds(6) {
        let mut w = World::new(seed);
        let mut cc = sim_config(derive(seed, 1));
        let mut sc = sim_config(derive(seed, 2));
        versions(&mut cc, false, true);
        versions(&mut sc, true, true);
        let c = w.add_host("client", cc);
        let s = w.add_host("server", sc);
        let (c0, c1, s0) = (addr(false, 0, 1), addr(false, 1, 1), addr(false, 0, 2));
        let link = LinkParams {
            delay: Duration::from_millis(15),
            loss: 0.01,
            rate: Some(2_500_000),
            queue: 64 * 1024,
            ..LinkParams::default()
        };
        w.add_path(c, c0, s, s0, link.clone(), link.clone());
        w.add_path(c, c1, s, s0, link.clone(), link);
        let subflow = EndpointFlags {
            subflow: true,
            ..EndpointFlags::default()
        };
        w.stack_mut(c).add_endpoint(c1, subflow);
        w.stack_mut(s).listen(SERVER_PORT).unwrap();
        let cp = Payload::new(derive(seed, 10), 3 << 20);
        let sp = Payload::new(derive(seed, 11), 1 << 20);
        let mut client = Transfer::client(
            Some(SocketAddr::new(c0, 0)),
            SocketAddr::new(s0, SERVER_PORT),
            cp,
            sp,
            derive(seed, 20),
        );
        let mut server = Transfer::server(sp, cp, derive(seed, 21));
        w.run_until_done(&mut [&mut client, &mut server])
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let (cs, ss) = (w.stack(c).counters(), w.stack(s).counters());
        assert!(
            cs.mptcp_joins_established >= 1 && ss.mptcp_joins_established >= 1,
            "seed {seed}: no v0 join"
        );
        assert_eq!(cs.mptcp_join_hmac_failures + ss.mptcp_join_hmac_failures, 0);
        assert_eq!(cs.mptcp_fallbacks + ss.mptcp_fallbacks, 0, "seed {seed}");
        assert_eq!(ss.mptcp_connections, 1, "seed {seed}");
        assert!(
            w.path(1).a_to_b.stats().bytes_delivered > 100_000,
            "seed {seed}: second path idle"
        );
    }
}
