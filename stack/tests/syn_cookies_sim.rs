//! Connections opened through SYN cookies (the server answers every SYN with
//! one: `SynCookies::Always`) over the seeded lossy network: TCP with and
//! without timestamps, window scaling and SACK, MPTCP v1 and v0: byte-exact
//! both ways, the connection made from the cookie (not a kept SYN), and MPTCP
//! to the end.

mod sim;

use mptun_stack::SynCookies;
use sim::*;

fn cookie_scenario(seed: u64, mptcp: Option<bool>) -> Scenario {
    let mut sc = Scenario::random(seed, 1 << 20);
    sc.server_config.syn_cookies = SynCookies::Always;
    // The cookie is in the client's third ACK, or in its first data if the
    // ACK is lost: a client that never sends while waiting for the server
    // would be stuck (RFC 4987 §3.6 notes it), so the client sends.
    sc.client_bytes = sc.client_bytes.max(1);
    if let Some(v1) = mptcp {
        for c in [&mut sc.client_config, &mut sc.server_config] {
            c.mptcp.enabled = true;
            c.mptcp.v1 = v1;
            c.mptcp.v0 = !v1;
        }
    }
    sc
}

fn run(name: &str, mptcp: Option<bool>, default_seeds: u64) {
    let mut failures = Vec::new();
    let (mut runs, mut fell_back) = (0, Vec::new());
    for seed in seeds(default_seeds) {
        let sc = cookie_scenario(seed, mptcp);
        match run_transfer(&sc) {
            Ok(r) => {
                runs += 1;
                let [c, s] = &r.counters;
                if s.syncookies_sent == 0 || s.syncookies_recv != 1 || s.connections_accepted != 1
                {
                    failures.push(format!(
                        "seed {seed}: cookies sent {} received {}, accepted {}",
                        s.syncookies_sent, s.syncookies_recv, s.connections_accepted
                    ));
                }
                let mp_ok = c.mptcp_fallbacks + s.mptcp_fallbacks == 0
                    && c.mptcp_connections == 1
                    && s.mptcp_connections == 1;
                if mptcp.is_some() && !mp_ok {
                    fell_back.push(seed);
                }
            }
            Err(e) => failures.push(format!(
                "seed {seed} ({}): {e}\n  replay: SIM_SEED={seed} cargo test -p mptun-stack --test syn_cookies_sim {name} -- --nocapture",
                sc.describe()
            )),
        }
        if failures.len() >= max_failures() {
            break;
        }
    }
    eprintln!("{name}: {runs} runs, fell back: {fell_back:?}");
    // v1 clients repeat both keys until the server's first DSS, so a cookie
    // connection is MPTCP whatever is lost or reordered. A v0 client sends
    // its key once, in the third ACK: if the first data segment overtakes
    // that ACK or the ACK is lost, the cookie connection can only be TCP, and
    // both ends fall back cleanly (the stream stays exact).
    match mptcp {
        Some(true) if !fell_back.is_empty() => {
            failures.push(format!("not MPTCP to the end: seeds {fell_back:?}"))
        }
        Some(false) if fell_back.len() * 2 > runs => failures.push(format!(
            "v0 fell back in most runs: seeds {fell_back:?} of {runs}"
        )),
        _ => {}
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn tcp_through_syn_cookies() {
    run("tcp_through_syn_cookies", None, 60);
}

#[test]
fn mptcp_v1_through_syn_cookies() {
    run("mptcp_v1_through_syn_cookies", Some(true), 30);
}

#[test]
fn mptcp_v0_through_syn_cookies() {
    run("mptcp_v0_through_syn_cookies", Some(false), 20);
}
