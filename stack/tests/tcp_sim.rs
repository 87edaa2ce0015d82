//! TCP over the simulated network (see `sim/mod.rs` for the model and replay notes),
//! plus self-tests of the network model (`link_*`, no engine needed).

mod sim;

use core::time::Duration;
use mptun_stack::{CcAlgorithm, Instant};
use sim::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Largest payload per direction in the mixed-conditions test. Sizes are drawn from
/// `MAX/3..=MAX` for most seeds (some seeds send 0 or a few bytes one way). Tune this
/// to keep the 200-seed run within a few minutes.
const MAX_TRANSFER_BYTES: u64 = 3 << 20;
/// Default number of seeds of the mixed-conditions test (env `SIM_SEEDS` overrides).
const DEFAULT_SEEDS: u64 = 200;
/// Seeds of the IPv6-only test.
const DEFAULT_IPV6_SEEDS: u64 = 20;
/// Stop a multi-seed test after this many failing seeds.
const MAX_FAILURES: usize = 5;
/// The SACK comparison: bytes sent one way, seeds (env `SIM_SACK_SEEDS` overrides).
const SACK_CMP_BYTES: u64 = 4 << 20;
const SACK_CMP_SEEDS: u64 = 20;

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// Run one scenario, turning an engine panic into an error as well.
fn try_scenario(sc: &Scenario) -> Result<TransferReport, String> {
    match catch_unwind(AssertUnwindSafe(|| run_transfer(sc))) {
        Ok(r) => r,
        Err(p) => Err(format!("panicked: {}", panic_message(&*p))),
    }
}

fn run_seeds(test: &str, seeds: &[u64], make: impl Fn(u64) -> Scenario) {
    let mut failures = Vec::new();
    let mut total_bytes = 0u64;
    let mut total_time = Duration::ZERO;
    for &seed in seeds {
        let sc = make(seed);
        match try_scenario(&sc) {
            Ok(r) => {
                total_bytes += sc.client_bytes + sc.server_bytes;
                total_time += r.end;
                if seeds.len() == 1 {
                    eprintln!(
                        "seed {seed} ({}): ok, complete at {:?}, idle at {:?}, retransmitted {} B, \
                         {} steps\n  c->s {}\n  s->c {}",
                        sc.describe(),
                        r.completion,
                        r.end,
                        r.retransmitted_bytes,
                        r.steps,
                        r.client_to_server.describe(),
                        r.server_to_client.describe()
                    );
                }
            }
            Err(e) => {
                failures.push(format!(
                    "seed {seed} ({}) failed: {e}\n  replay: SIM_SEED={seed} cargo test -p mptun-stack \
                     --test tcp_sim {test} -- --nocapture",
                    sc.describe()
                ));
                if failures.len() >= MAX_FAILURES {
                    failures.push(format!("(stopped after {MAX_FAILURES} failing seeds)"));
                    break;
                }
            }
        }
    }
    eprintln!(
        "{test}: {} seeds, {} failed, {:.1} MiB moved, {:?} virtual time",
        seeds.len(),
        failures.iter().filter(|f| f.starts_with("seed")).count(),
        total_bytes as f64 / (1 << 20) as f64,
        total_time
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn bidirectional_transfer_200_seeds() {
    run_seeds(
        "bidirectional_transfer_200_seeds",
        &seeds(DEFAULT_SEEDS),
        |seed| Scenario::random(seed, MAX_TRANSFER_BYTES),
    );
}

#[test]
fn bidirectional_transfer_ipv6() {
    run_seeds(
        "bidirectional_transfer_ipv6",
        &seeds(DEFAULT_IPV6_SEEDS),
        |seed| {
            // Different seeds from the mixed test, same kind of conditions.
            let mut sc = Scenario::random(seed ^ 0x6666_0000, MAX_TRANSFER_BYTES);
            sc.seed = seed;
            sc.ipv6 = true;
            sc
        },
    );
}

#[test]
fn small_clean_transfer() {
    // The simplest case first: a debugging entry point when everything fails.
    let sc = Scenario::basic(
        1,
        100_000,
        50_000,
        LinkParams::with_delay(Duration::from_millis(10)),
    );
    if let Err(e) = try_scenario(&sc) {
        panic!("clean transfer ({}) failed: {e}", sc.describe());
    }
}

/// A reader that stops reading closes its window; the other end probes it.
/// Meanwhile that end's ACKs for the data flowing the other way must still
/// be taken: the receiver with the zero window drops a segment whose number
/// is past its window (the probe's byte counted in) whole, and its own data
/// then waited for retransmission timeouts.
#[test]
fn a_stalled_reader_keeps_its_own_sending_acknowledged() {
    let sc = Scenario::stalled_client_reader(7, 4 << 20, 1 << 20, Duration::from_secs(20));
    let report = try_scenario(&sc).unwrap_or_else(|e| panic!("{} failed: {e}", sc.describe()));
    let client = &report.counters[0];
    assert!(
        report.counters[1].retransmitted_segments > 0,
        "the server probed the client's closed window"
    );
    assert_eq!(
        client.retransmitted_segments, 0,
        "the client's data went unacknowledged on a clean path: {client:?}"
    );
}

/// Odd seeds let the stacks hand over super-packets (`World::gso_segments`),
/// which the simulated device cuts: the same transfer, with its segments sent
/// many at a time.
#[test]
fn super_packets_carry_a_transfer_segment_by_segment() {
    let link = LinkParams::with_delay(Duration::from_millis(10));
    let with = try_scenario(&Scenario::basic(1, 2_000_000, 1_000_000, link.clone()))
        .unwrap_or_else(|e| panic!("with super-packets: {e}"));
    let without = try_scenario(&Scenario::basic(2, 2_000_000, 1_000_000, link))
        .unwrap_or_else(|e| panic!("without: {e}"));
    for c in &with.counters {
        assert!(c.super_packets_out > 0, "{c:?}");
        // Each super-packet stands for several segments on the wire.
        assert!(c.segments_out > c.super_packets_out * 2, "{c:?}");
    }
    for c in &without.counters {
        assert_eq!(c.super_packets_out, 0);
    }
    // The same segments either way, give or take the ACK clock's timing.
    let segs = |r: &TransferReport| r.counters[0].segments_out + r.counters[1].segments_out;
    let (a, b) = (segs(&with) as f64, segs(&without) as f64);
    assert!((a / b - 1.0).abs() < 0.2, "segments {a} with, {b} without");
}

fn sack_cmp_scenario(seed: u64, sack: bool) -> Scenario {
    let link = LinkParams {
        delay: Duration::from_millis(20),
        loss: 0.05,
        rate: Some(10_000_000 / 8),
        queue: 100 * 1500,
        ..LinkParams::default()
    };
    let mut sc = Scenario::basic(seed, SACK_CMP_BYTES, 0, link);
    for c in [&mut sc.client_config, &mut sc.server_config] {
        c.tcp.sack = sack;
        c.tcp.cc = CcAlgorithm::NewReno;
    }
    sc
}

#[test]
fn sack_beats_newreno_at_5pct_loss() {
    let seeds: Vec<u64> = match env_u64("SIM_SEED") {
        Some(s) => vec![s],
        None => (0..env_u64("SIM_SACK_SEEDS").unwrap_or(SACK_CMP_SEEDS)).collect(),
    };
    println!(
        "SACK vs NewReno-only recovery: {} MiB one way, {}",
        SACK_CMP_BYTES >> 20,
        sack_cmp_scenario(0, true).client_to_server.describe()
    );
    println!(
        "{:>6} {:>14} {:>12} {:>14} {:>12}",
        "seed", "sack retx B", "sack time", "reno retx B", "reno time"
    );
    let (mut sack_retx, mut reno_retx) = (0u64, 0u64);
    let (mut sack_time, mut reno_time) = (Duration::ZERO, Duration::ZERO);
    for &seed in &seeds {
        let run = |sack: bool| {
            let sc = sack_cmp_scenario(seed, sack);
            try_scenario(&sc).unwrap_or_else(|e| {
                panic!(
                    "seed {seed} ({}) failed: {e}\n  replay: SIM_SEED={seed} cargo test -p \
                     mptun-stack --test tcp_sim sack_beats_newreno -- --nocapture",
                    sc.describe()
                )
            })
        };
        let s = run(true);
        let r = run(false);
        println!(
            "{seed:>6} {:>14} {:>11.3}s {:>14} {:>11.3}s",
            s.retransmitted_bytes,
            s.completion.as_secs_f64(),
            r.retransmitted_bytes,
            r.completion.as_secs_f64()
        );
        sack_retx += s.retransmitted_bytes;
        reno_retx += r.retransmitted_bytes;
        sack_time += s.completion;
        reno_time += r.completion;
    }
    println!(
        "{:>6} {:>14} {:>11.3}s {:>14} {:>11.3}s",
        "total",
        sack_retx,
        sack_time.as_secs_f64(),
        reno_retx,
        reno_time.as_secs_f64()
    );
    assert!(
        sack_retx < reno_retx || sack_time < reno_time,
        "SACK did no better than NewReno: retransmitted {sack_retx} vs {reno_retx} bytes, \
         time {sack_time:?} vs {reno_time:?}"
    );
}

// ---- Self-tests of the network model (no engine involved). ----

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// A packet whose first 8 bytes are `n` (so order can be checked).
fn numbered(n: u64, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(8)];
    p[..8].copy_from_slice(&n.to_be_bytes());
    p
}

fn number(p: &[u8]) -> u64 {
    u64::from_be_bytes(p[..8].try_into().unwrap())
}

/// Drain everything, returning (arrival, packet) in delivery order.
fn drain(link: &mut Link) -> Vec<(Instant, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(t) = link.next_delivery() {
        while let Some(p) = link.pop_due(t) {
            out.push((t, p));
        }
    }
    out
}

#[test]
fn link_loss_rate_close_to_configured() {
    for loss in [0.0, 0.01, 0.05, 0.10] {
        let mut l = Link::new(
            LinkParams {
                loss,
                ..LinkParams::default()
            },
            42,
        );
        let n = 100_000;
        for i in 0..n {
            l.send(ms(i), &numbered(i, 40));
        }
        let got = drain(&mut l).len() as f64;
        let rate = 1.0 - got / n as f64;
        assert!(
            (rate - loss).abs() < 0.005,
            "configured loss {loss}, measured {rate}"
        );
        assert_eq!(l.stats().dropped_loss + l.stats().delivered, n);
    }
}

#[test]
fn link_fifo_without_jitter() {
    let mut l = Link::new(LinkParams::with_delay(Duration::from_millis(7)), 1);
    // Several packets at the same instant, then more later.
    for i in 0..100 {
        l.send(ms(i / 10), &numbered(i, 60));
    }
    let out = drain(&mut l);
    assert_eq!(out.len(), 100);
    for (i, (t, p)) in out.iter().enumerate() {
        assert_eq!(number(p), i as u64);
        assert_eq!(*t, ms(i as u64 / 10 + 7));
    }
}

#[test]
fn link_jitter_reorders_within_bound() {
    let mut l = Link::new(
        LinkParams {
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(5),
            ..LinkParams::default()
        },
        3,
    );
    for i in 0..1000 {
        l.send(Instant::from_micros(i * 100), &numbered(i, 40));
    }
    let out = drain(&mut l);
    assert_eq!(out.len(), 1000);
    let mut reordered = 0;
    for w in out.windows(2) {
        if number(&w[1].1) < number(&w[0].1) {
            reordered += 1;
        }
    }
    assert!(reordered > 100, "only {reordered} reorderings");
    for (t, p) in &out {
        let sent = Instant::from_micros(number(p) * 100);
        let d = *t - sent;
        assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(15));
    }
}

#[test]
fn link_rate_limit_delays_by_size() {
    // 1 MB/s: a 1000-byte packet takes 1 ms to serialise.
    let mut l = Link::new(
        LinkParams {
            delay: Duration::from_millis(5),
            rate: Some(1_000_000),
            queue: 1 << 20,
            ..LinkParams::default()
        },
        1,
    );
    for i in 0..10 {
        l.send(ms(0), &numbered(i, 1000));
    }
    // A 500-byte packet after the queue has drained.
    l.send(ms(100), &numbered(10, 500));
    let out = drain(&mut l);
    for (i, (t, p)) in out.iter().take(10).enumerate() {
        assert_eq!(number(p), i as u64);
        assert_eq!(*t, ms(5 + i as u64 + 1));
    }
    assert_eq!(out[10].0, Instant::from_micros(100_000 + 500 + 5_000));
    assert_eq!(l.stats().dropped(), 0);
}

#[test]
fn link_queue_overflow_drops() {
    let mut l = Link::new(
        LinkParams {
            delay: Duration::ZERO,
            rate: Some(1_000_000),
            queue: 5000,
            ..LinkParams::default()
        },
        1,
    );
    for i in 0..10 {
        l.send(ms(0), &numbered(i, 1000));
    }
    assert_eq!(l.stats().dropped_queue, 5);
    assert_eq!(l.queued_bytes(ms(0)), 5000);
    assert_eq!(l.queued_bytes(ms(2)), 3000);
    // Room again once some bytes have left.
    l.send(ms(2), &numbered(10, 1000));
    assert_eq!(l.stats().dropped_queue, 5);
    let got: Vec<u64> = drain(&mut l).iter().map(|(_, p)| number(p)).collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4, 10]);
}

#[test]
fn link_down_drops_all() {
    let mut l = Link::new(LinkParams::default(), 1);
    l.send(ms(0), &numbered(0, 100));
    l.set_up(false);
    l.send(ms(1), &numbered(1, 100));
    // The in-flight packet dies too.
    assert!(drain(&mut l).is_empty());
    assert_eq!(l.stats().dropped_down, 2);
    l.set_up(true);
    l.send(ms(50), &numbered(2, 100));
    let got: Vec<u64> = drain(&mut l).iter().map(|(_, p)| number(p)).collect();
    assert_eq!(got, vec![2]);
}

#[test]
fn link_duplication_and_corruption() {
    let mut l = Link::new(
        LinkParams {
            duplicate: 0.02,
            corrupt: 0.01,
            ..LinkParams::default()
        },
        9,
    );
    let n = 100_000u64;
    let orig = numbered(0, 64);
    for i in 0..n {
        l.send(ms(i), &orig);
    }
    let out = drain(&mut l);
    let st = l.stats().clone();
    assert_eq!(out.len() as u64, n + st.duplicated);
    assert!((st.duplicated as f64 / n as f64 - 0.02).abs() < 0.003);
    assert!((st.corrupted as f64 / n as f64 - 0.01).abs() < 0.002);
    let mut bad = 0;
    for (_, p) in &out {
        let flipped: u32 = p.iter().zip(&orig).map(|(a, b)| (a ^ b).count_ones()).sum();
        assert!(flipped <= 1, "more than one bit flipped");
        bad += flipped as u64;
    }
    assert_eq!(bad, st.corrupted);
}

#[test]
fn link_deterministic_with_same_seed() {
    let params = LinkParams {
        delay: Duration::from_millis(3),
        jitter: Duration::from_millis(4),
        loss: 0.05,
        duplicate: 0.02,
        corrupt: 0.01,
        rate: Some(500_000),
        queue: 20_000,
        up: true,
    };
    let run = |seed| {
        let mut l = Link::new(params.clone(), seed);
        let mut rng = Rng::new(7);
        for i in 0..5000 {
            let len = rng.range(40, 1500) as usize;
            l.send(Instant::from_micros(i * 300), &numbered(i, len));
        }
        (drain(&mut l), l.stats().clone())
    };
    let (a, sa) = run(11);
    let (b, sb) = run(11);
    assert_eq!(sa, sb);
    assert_eq!(a, b);
    let (c, _) = run(12);
    assert_ne!(a, c, "a different seed should give a different run");
}

#[test]
fn link_ip_header_parsing_and_routing() {
    let v4 = {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        p
    };
    assert_eq!(
        parse_addrs(&v4),
        Some((addr(false, 0, 1), addr(false, 0, 2)))
    );
    let v6 = {
        let mut p = vec![0u8; 60];
        p[0] = 0x60;
        if let (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) =
            (addr(true, 1, 1), addr(true, 1, 2))
        {
            p[8..24].copy_from_slice(&s.octets());
            p[24..40].copy_from_slice(&d.octets());
        }
        p
    };
    assert_eq!(parse_addrs(&v6), Some((addr(true, 1, 1), addr(true, 1, 2))));
    assert_eq!(parse_addrs(&v4[..19]), None);
    assert_eq!(parse_addrs(&v6[..39]), None);
    assert_eq!(parse_addrs(&[0x50; 60]), None);
    assert_eq!(parse_addrs(&[]), None);

    // Payload generator: random access matches sequential generation.
    let p = Payload::new(5, 1000);
    let mut all = vec![0u8; 1000];
    p.fill(0, &mut all);
    let mut part = vec![0u8; 101];
    p.fill(333, &mut part);
    assert_eq!(&all[333..434], &part[..]);
}

#[test]
fn scenario_mix_covers_conditions() {
    // No engine: checks that the seeds of the mixed test really mix conditions.
    let all: Vec<Scenario> = (0..DEFAULT_SEEDS)
        .map(|s| Scenario::random(s, MAX_TRANSFER_BYTES))
        .collect();
    let n = all.len() as f64;
    let avg = all
        .iter()
        .map(|s| s.client_bytes + s.server_bytes)
        .sum::<u64>() as f64
        / n;
    assert!(avg >= (2 << 20) as f64, "average {avg} bytes per seed");
    for loss in [0.0, 0.01, 0.05, 0.10] {
        assert!(all.iter().any(|s| s.client_to_server.loss == loss));
    }
    let count = |f: &dyn Fn(&Scenario) -> bool| all.iter().filter(|s| f(s)).count();
    assert!(count(&|s| s.ipv6) > 20);
    assert!(count(&|s| s.client_to_server.rate.is_some()) > 20);
    assert!(count(&|s| !s.client_to_server.jitter.is_zero()) > 20);
    assert!(count(&|s| s.client_to_server.duplicate > 0.0) > 20);
    assert!(count(&|s| s.client_to_server.corrupt > 0.0) > 20);
    assert!(count(&|s| s.client_bytes == 0 || s.server_bytes == 0) > 5);
    assert!(count(&|s| s.server_fin_first) > 20);
    assert!(count(&|s| !s.client_config.tcp.sack) > 20);
    // Deterministic.
    let again = Scenario::random(17, MAX_TRANSFER_BYTES);
    assert_eq!(again.describe(), all[17].describe());
    eprintln!("seed 17: {}", all[17].describe());
    eprintln!("average {:.2} MiB per seed", avg / (1 << 20) as f64);
}

#[test]
fn link_routing_by_address_pair() {
    // Stacks are created but never called: only the router is exercised.
    let mut w = World::new(0);
    let a = w.add_host("a", sim_config(1));
    let b = w.add_host("b", sim_config(2));
    let c = w.add_host("c", sim_config(3));
    let l = LinkParams::default;
    let p0 = w.add_path_only(a, addr(false, 0, 1), b, addr(false, 0, 2), l(), l());
    let p1 = w.add_path_only(a, addr(false, 1, 1), b, addr(false, 1, 2), l(), l());
    let p2 = w.add_path_only(b, addr(true, 2, 2), c, addr(true, 2, 3), l(), l());
    let r = |from, s, d| w.route(from, s, d);
    assert_eq!(r(a, addr(false, 0, 1), addr(false, 0, 2)), Some((p0, true)));
    assert_eq!(
        r(b, addr(false, 0, 2), addr(false, 0, 1)),
        Some((p0, false))
    );
    assert_eq!(r(a, addr(false, 1, 1), addr(false, 1, 2)), Some((p1, true)));
    assert_eq!(
        r(b, addr(false, 1, 2), addr(false, 1, 1)),
        Some((p1, false))
    );
    // Cross pair (a's path-0 address to b's path-1 address): by destination.
    assert_eq!(r(a, addr(false, 0, 1), addr(false, 1, 2)), Some((p1, true)));
    assert_eq!(r(b, addr(true, 2, 2), addr(true, 2, 3)), Some((p2, true)));
    assert_eq!(r(c, addr(true, 2, 3), addr(true, 2, 2)), Some((p2, false)));
    // No path from a to c, unknown destinations, a host sending to itself.
    assert_eq!(r(a, addr(false, 0, 1), addr(true, 2, 3)), None);
    assert_eq!(r(a, addr(false, 0, 1), addr(false, 9, 9)), None);
    assert_eq!(r(a, addr(false, 0, 2), addr(false, 0, 1)), None);
}

/// Both ends read with a `DirectReader` (`Stack::set_direct_reader`) that
/// takes all, none or part of what it is offered, at random, besides their
/// ordinary reads: under loss, reordering and slow readers every byte is
/// still delivered once and in order (the reader checks what it takes), and
/// the readers do take a large share of the bytes straight from the
/// segments.
#[test]
fn direct_readers_take_bytes_as_they_arrive() {
    let (mut taken, mut moved) = (0u64, 0u64);
    for seed in seeds(30) {
        let mut sc = Scenario::random(seed ^ 0xD1EC_0000, MAX_TRANSFER_BYTES);
        sc.seed = seed;
        sc.client_direct = true;
        sc.server_direct = true;
        match try_scenario(&sc) {
            Ok(r) => {
                taken += r.direct_taken.iter().sum::<u64>();
                moved += sc.client_bytes + sc.server_bytes;
            }
            Err(e) => panic!(
                "seed {seed} ({}) failed: {e}\n  replay: SIM_SEED={seed} cargo test -p mptun-stack \
                 --test tcp_sim direct_readers_take_bytes_as_they_arrive -- --nocapture",
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
