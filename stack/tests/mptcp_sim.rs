//! MPTCP v1 between two engines through the seeded lossy network: byte-exact
//! transfers both ways at once, with and without DSS checksums, and every
//! connection must have run MPTCP to the end (no silent fallback to TCP).

mod sim;

use mptun_stack::wire::{emit_packet, IpRepr, RawOptions, TcpRepr, TCPOPT_MPTCP};
use sim::*;

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
        if failures.len() >= max_failures() {
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

/// A middlebox that lets MPTCP through the handshake's SYNs and then strips every
/// MPTCP option (re-emitting the packet with a correct checksum).
fn strip_mptcp_after_syn(pkt: &mut Vec<u8>) {
    let Ok((ip, tcp)) = IpRepr::parse(pkt) else {
        return;
    };
    let Ok(seg) = TcpRepr::parse(ip.src, ip.dst, tcp, true) else {
        return;
    };
    if seg.flags.syn() || !seg.unknown.iter().any(|(k, _)| k == TCPOPT_MPTCP) {
        return;
    }
    let mut out = seg;
    let mut kept = RawOptions::new();
    for (k, d) in seg.unknown.iter().filter(|(k, _)| *k != TCPOPT_MPTCP) {
        kept.push(k, d);
    }
    out.unknown = kept;
    let mut buf = vec![0u8; pkt.len() + 60];
    if let Ok(n) = emit_packet(ip.src, ip.dst, ip.hop_limit, &out, &[seg.payload], &mut buf) {
        buf.truncate(n);
        *pkt = buf;
    }
}

#[test]
fn options_stripped_after_handshake_fall_back_without_loss() {
    let mut failures = Vec::new();
    for seed in seeds(30) {
        let mut sc = mptcp_scenario(seed, seed % 3 == 0);
        sc.middlebox = Some(strip_mptcp_after_syn);
        match run_transfer(&sc) {
            Ok(r) => {
                let [c, s] = &r.counters;
                if c.mptcp_fallbacks == 0 || s.mptcp_fallbacks == 0 {
                    failures.push(format!(
                        "seed {seed}: expected a fallback on both sides (client {} / server {})",
                        c.mptcp_fallbacks, s.mptcp_fallbacks
                    ));
                }
            }
            Err(e) => failures.push(format!("seed {seed} ({}): {e}", sc.describe())),
        }
        if failures.len() >= max_failures() {
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Client bytes from this stream offset on pass through the "ALG" below.
const ALG_FROM: u64 = 256 << 10;

/// What the ALG makes of the client's byte at `offset`.
fn alg_alter(offset: u64, b: u8) -> u8 {
    if offset >= ALG_FROM && b == 0 {
        1
    } else {
        b
    }
}

/// An application-level gateway that rewrites the client's data past
/// `ALG_FROM` (every zero byte becomes one) and fixes the TCP checksum, so only
/// MPTCP's DSS checksum can notice. It rewrites by stream offset, so
/// retransmissions are rewritten alike and the receiver's stream is exactly
/// `alg_alter` of what was sent.
fn alg_rewrite(pkt: &mut Vec<u8>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    // The client's port and ISN, learnt from its SYN.
    static CLIENT: AtomicU64 = AtomicU64::new(0);
    let Ok((ip, tcp)) = IpRepr::parse(pkt) else {
        return;
    };
    let Ok(seg) = TcpRepr::parse(ip.src, ip.dst, tcp, true) else {
        return;
    };
    if seg.flags.syn() && !seg.flags.ack() {
        CLIENT.store(
            (seg.src_port as u64) << 32 | seg.seq.0 as u64,
            Ordering::Relaxed,
        );
        return;
    }
    let client = CLIENT.load(Ordering::Relaxed);
    if seg.payload.is_empty() || seg.src_port as u64 != client >> 32 {
        return;
    }
    let start = seg.seq.0.wrapping_sub(client as u32).wrapping_sub(1) as u64;
    let payload: Vec<u8> = (0..seg.payload.len())
        .map(|i| alg_alter(start + i as u64, seg.payload[i]))
        .collect();
    if payload == seg.payload {
        return;
    }
    let mut buf = vec![0u8; pkt.len() + 60];
    if let Ok(n) = emit_packet(ip.src, ip.dst, ip.hop_limit, &seg, &[&payload], &mut buf) {
        buf.truncate(n);
        *pkt = buf;
    }
}

/// RFC 8684 §3.7: a DSS checksum failure on the only subflow ends in MP_FAIL, an
/// infinite mapping and plain TCP; the receiver gets exactly what the middlebox
/// delivered (as plain TCP would), nothing lost, nothing reset.
#[test]
fn dss_checksum_failure_falls_back_by_mp_fail() {
    let mut failures = Vec::new();
    let (mut infinite, mut runs) = (0, 0);
    for seed in seeds(20) {
        let mut sc = mptcp_scenario(seed, true);
        sc.client_bytes = 2 << 20;
        sc.middlebox = Some(alg_rewrite);
        sc.client_data_alter = Some(alg_alter);
        match run_transfer(&sc) {
            Ok(r) => {
                let [c, s] = &r.counters;
                runs += 1;
                infinite += c.mptcp_infinite_map_tx;
                if s.mptcp_checksum_errors == 0 || s.mptcp_mp_fail_tx == 0 || c.mptcp_mp_fail_rx == 0
                {
                    failures.push(format!(
                        "seed {seed}: no MP_FAIL exchange (server csum errors {}, MP_FAIL tx {}, client rx {})",
                        s.mptcp_checksum_errors, s.mptcp_mp_fail_tx, c.mptcp_mp_fail_rx
                    ));
                }
                if c.mptcp_infinite_map_tx > 1 {
                    failures.push(format!("seed {seed}: {} infinite mappings", c.mptcp_infinite_map_tx));
                }
                if c.mptcp_infinite_map_tx == 1 && (c.mptcp_fallbacks != 1 || s.mptcp_fallbacks != 1) {
                    failures.push(format!(
                        "seed {seed}: infinite mapping sent but fallbacks client {} server {}",
                        c.mptcp_fallbacks, s.mptcp_fallbacks
                    ));
                }
            }
            Err(e) => failures.push(format!(
                "seed {seed} ({}): {e}\n  replay: SIM_SEED={seed} cargo test -p mptun-stack --test mptcp_sim dss_checksum_failure -- --nocapture",
                sc.describe()
            )),
        }
        if failures.len() >= max_failures() {
            break;
        }
    }
    eprintln!("MP_FAIL: {runs} runs, {infinite} ended with an infinite mapping");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(infinite > 0, "no run fell back by an infinite mapping");
}

/// As `tcp_sim`'s test of the same name, over MPTCP: the data level offers
/// its in-order bytes to the application's `DirectReader` (with and without
/// DSS checksums, which take the ordinary path to the data level).
#[test]
fn direct_readers_take_bytes_as_they_arrive() {
    let (mut taken, mut moved) = (0u64, 0u64);
    for seed in seeds(20) {
        let mut sc = mptcp_scenario(seed ^ 0xD1EC_0000, seed % 4 == 3);
        sc.seed = seed;
        sc.client_direct = true;
        sc.server_direct = true;
        match run_transfer(&sc) {
            Ok(r) => {
                let [c, s] = &r.counters;
                assert!(
                    c.mptcp_fallbacks + s.mptcp_fallbacks == 0 && c.mptcp_connections > 0,
                    "seed {seed}: not MPTCP to the end"
                );
                taken += r.direct_taken.iter().sum::<u64>();
                moved += sc.client_bytes + sc.server_bytes;
            }
            Err(e) => panic!(
                "seed {seed} ({}): {e}\n  replay: SIM_SEED={seed} cargo test -p mptun-stack \
                 --test mptcp_sim direct_readers_take_bytes_as_they_arrive -- --nocapture",
                sc.describe()
            ),
        }
    }
    eprintln!("direct readers took {taken} of {moved} bytes");
    assert!(
        moved > 0 && taken * 10 > moved,
        "direct readers took {taken} of {moved} bytes"
    );
}

/// `tcp_sim`'s stalled reader over MPTCP: the connection-level window the
/// client's subflow advertises closes, the server's subflow probes it, and
/// its ACKs (with their DATA_ACKs) for the client's data must still be taken.
#[test]
fn a_stalled_reader_keeps_its_own_sending_acknowledged() {
    let mut sc =
        Scenario::stalled_client_reader(7, 4 << 20, 1 << 20, core::time::Duration::from_secs(20));
    for c in [&mut sc.client_config, &mut sc.server_config] {
        c.mptcp.enabled = true;
    }
    let report = run_transfer(&sc).unwrap_or_else(|e| panic!("{} failed: {e}", sc.describe()));
    let [client, server] = &report.counters;
    assert!(client.mptcp_connections > 0 && client.mptcp_fallbacks + server.mptcp_fallbacks == 0);
    assert!(
        server.mptcp_window_probes > 0,
        "the server probed the client's closed window"
    );
    assert_eq!(
        client.retransmitted_segments, 0,
        "the client's data went unacknowledged on a clean path: {client:?}"
    );
}

/// A closed connection-level window, and the updates that reopen it lost
/// (the client's reader takes what came every 2 s; 30 % of what the client
/// sends is lost): the server's data level probes the window (its subflows
/// hold no data to probe with), and every transfer ends as plain TCP's do.
/// Without the probes each of these seeds stalled for good.
#[test]
fn lost_window_updates_do_not_stall_the_connection() {
    for seed in seeds(8) {
        let mut sc =
            Scenario::stalled_client_reader(seed, 0, 1 << 20, core::time::Duration::from_secs(2));
        sc.client_to_server.loss = 0.3;
        for c in [&mut sc.client_config, &mut sc.server_config] {
            c.mptcp.enabled = true;
        }
        let report = run_transfer(&sc).unwrap_or_else(|e| {
            panic!(
                "seed {seed} ({}): {e}\n  replay: SIM_SEED={seed} cargo test -p mptun-stack \
                 --test mptcp_sim lost_window_updates_do_not_stall_the_connection",
                sc.describe()
            )
        });
        let [client, server] = &report.counters;
        assert!(
            client.mptcp_connections > 0 && client.mptcp_fallbacks + server.mptcp_fallbacks == 0
        );
        assert!(
            server.mptcp_window_probes > 0,
            "seed {seed}: no window probe"
        );
    }
}
