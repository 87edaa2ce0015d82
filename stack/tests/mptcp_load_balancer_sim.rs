//! An MPTCP server behind a load balancer (issue 14): its first address is
//! shared with other instances, so it tells clients not to join it (RFC 8684
//! §3.1, MP_CAPABLE's "C" flag) and announces an address of its own, which
//! the client joins instead; its tokens carry its instance id (a balancer
//! that routes by token could read it). With and without SYN cookies.

mod sim;

use mptun_stack::{EndpointFlags, SynCookies, TokenPrefix};
use sim::net::LinkParams;
use sim::rng::derive;
use sim::transfer::{mptcp_pair, Payload, Transfer, SERVER_PORT};
use sim::*;
use std::net::SocketAddr;

fn link() -> LinkParams {
    LinkParams {
        delay: core::time::Duration::from_millis(5),
        rate: Some(2_500_000),
        queue: 64 * 1024,
        ..LinkParams::default()
    }
}

struct Run {
    /// Payload bytes over the client's second address to the server's
    /// first one (a join there is what the flag forbids), and over the
    /// client's first address to the announced one.
    to_first_from_second: u64,
    to_announced: u64,
    joins: u64,
    /// The server's tokens while the connection lived.
    tokens: Vec<u32>,
}

/// The client has two addresses (the second a `subflow` endpoint, as Linux
/// is often set up) and accepts no ADD_ADDR; the server has its first
/// address and a `signal` endpoint.
fn run(seed: u64, deny_join_id0: bool, cookies: bool) -> Run {
    let mut w = World::new(seed);
    let (mut cc, mut sc) = mptcp_pair(seed, 2);
    cc.mptcp.max_add_addr_accepted = 0;
    sc.mptcp.deny_join_id0 = deny_join_id0;
    sc.mptcp.token_prefix = TokenPrefix::new(5, 4);
    if cookies {
        sc.syn_cookies = SynCookies::Always;
    }
    let c = w.add_host("client", cc);
    let s = w.add_host("server", sc);
    let ipv6 = seed % 2 == 1;
    let (c0, c1) = (addr(ipv6, 0, 1), addr(ipv6, 1, 1));
    let (s0, s1) = (addr(ipv6, 0, 2), addr(ipv6, 2, 2));
    w.add_path(c, c0, s, s0, link(), link());
    let second = w.add_path(c, c1, s, s0, link(), link());
    let announced = w.add_path(c, c0, s, s1, link(), link());
    w.stack_mut(c).add_endpoint(
        c1,
        EndpointFlags {
            subflow: true,
            ..EndpointFlags::default()
        },
    );
    w.stack_mut(s).add_endpoint(
        s1,
        EndpointFlags {
            signal: true,
            ..EndpointFlags::default()
        },
    );
    w.stack_mut(s).listen(SERVER_PORT).expect("listen");
    let cp = Payload::new(derive(seed, 10), 2 << 20);
    let sp = Payload::new(derive(seed, 11), 2 << 20);
    let mut client = Transfer::client(
        None,
        SocketAddr::new(s0, SERVER_PORT),
        cp,
        sp,
        derive(seed, 20),
    );
    let mut server = Transfer::server(sp, cp, derive(seed, 21));
    let mut tokens = Vec::new();
    w.run_until(&mut [&mut client, &mut server], |w, _| {
        let st = w.stack(s);
        for id in st.connections() {
            if let Some(t) = st.info(id).and_then(|i| i.mptcp).map(|m| m.local_token) {
                if !tokens.contains(&t) {
                    tokens.push(t);
                }
            }
        }
        w.stack(c).counters().mptcp_joins_established >= 1
    })
    .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    w.run_until_done(&mut [&mut client, &mut server])
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    Run {
        to_first_from_second: w.path(second).a_to_b.stats().delivered,
        to_announced: w.path(announced).a_to_b.stats().bytes_delivered,
        joins: w.stack(c).counters().mptcp_joins_established,
        tokens,
    }
}

#[test]
fn the_c_flag_sends_joins_to_the_announced_address_only() {
    for seed in seeds(6) {
        for cookies in [false, true] {
            let r = run(seed, true, cookies);
            assert_eq!(
                r.to_first_from_second, 0,
                "seed {seed} cookies {cookies}: a join went to the first address"
            );
            assert!(r.joins >= 1, "seed {seed} cookies {cookies}: no join");
            assert!(
                r.to_announced > 100_000,
                "seed {seed} cookies {cookies}: the announced path carried {} bytes",
                r.to_announced
            );
            assert!(!r.tokens.is_empty(), "seed {seed}: no token seen");
            for t in &r.tokens {
                assert_eq!(t >> 28, 5, "seed {seed} cookies {cookies}: token {t:08x}");
            }
        }
    }
}

/// Without the flag the same client joins the server's first address from
/// its second one (and, accepting no ADD_ADDR, not the announced one): what
/// would reach another instance behind a balancer.
#[test]
fn without_the_c_flag_the_client_joins_the_first_address() {
    let r = run(3, false, false);
    assert!(r.to_first_from_second > 0, "no join to the first address");
    assert_eq!(r.to_announced, 0);
    assert!(r.tokens.iter().all(|t| t >> 28 == 5));
}
