//! MPTCP v1 between two engines through the seeded lossy network: byte-exact
//! transfers both ways at once, with and without DSS checksums, and every
//! connection must have run MPTCP to the end (no silent fallback to TCP).

mod sim;

use sim::*;

fn seeds(default: u64) -> Vec<u64> {
    if let Some(s) = std::env::var("SIM_SEED").ok().and_then(|v| v.parse().ok()) {
        return vec![s];
    }
    let n = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    (0..n).collect()
}

fn mptcp_scenario(seed: u64, checksum: bool) -> Scenario {
    let mut sc = Scenario::random(seed, 2 << 20);
    for c in [&mut sc.client_config, &mut sc.server_config] {
        c.mptcp.enabled = true;
    }
    // One side asking is enough to turn checksums on.
    if checksum {
        if seed.is_multiple_of(2) {
            sc.client_config.mptcp.checksum = true;
        } else {
            sc.server_config.mptcp.checksum = true;
        }
    }
    sc
}

fn run(name: &str, checksum: bool, default_seeds: u64) {
    let mut failures = Vec::new();
    let mut moved = 0u64;
    for seed in seeds(default_seeds) {
        let sc = mptcp_scenario(seed, checksum);
        match run_transfer(&sc) {
            Ok(r) => {
                let [c, s] = &r.counters;
                if c.mptcp_fallbacks + s.mptcp_fallbacks > 0
                    || c.mptcp_connections == 0
                    || s.mptcp_connections == 0
                {
                    failures.push(format!(
                        "seed {seed}: not MPTCP to the end (client {} mptcp / {} fallback, server {} / {})",
                        c.mptcp_connections, c.mptcp_fallbacks, s.mptcp_connections, s.mptcp_fallbacks
                    ));
                }
                moved += sc.client_bytes + sc.server_bytes;
            }
            Err(e) => failures.push(format!(
                "seed {seed} ({}): {e}\n  replay: SIM_SEED={seed} cargo test -p mptun-stack --test mptcp_sim {name} -- --nocapture",
                sc.describe()
            )),
        }
        if failures.len() >= 5 {
            break;
        }
    }
    eprintln!("{name}: {} MiB moved", moved >> 20);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn mptcp_v1_transfers() {
    run("mptcp_v1_transfers", false, 60);
}

#[test]
fn mptcp_v1_transfers_with_checksums() {
    run("mptcp_v1_transfers_with_checksums", true, 60);
}
