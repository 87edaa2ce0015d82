//! Blind injection in the seeded lossy network: two engines run a random MPTCP
//! transfer (v1 or v0, checksums or not, one path or two with a join from the
//! client's second address) while an off-path attacker, who knows only the
//! subflows' 4-tuples, injects a random mix of spoofed segments at random
//! times into either end: REMOVE_ADDR, MP_FAIL, random DATA_ACKs, random DSS
//! mappings with and without payload, DATA_FINs, MP_PRIO, MP_FASTCLOSE with a
//! wrong key, RSTs with and without MP_TCPRST, and spoofed MP_CAPABLE SYN/ACKs
//! racing the real one (`blind/mod.rs`: every number in them is random).
//!
//! Required, for every seed: the transfer completes byte-exact both ways with
//! a normal close (the `Transfer` apps check it); no fallback (`info()` while
//! the transfer runs, `counters()` at the end); no established subflow closes
//! or changes its backup flag before either end has read the other's
//! DATA_FIN; each end holds the other's real key; with two paths the join
//! happens. RFC
//! 8684 §5: MPTCP must be no easier to disrupt blind than TCP, which such
//! segments do not disrupt at all (RFC 5961).
//!
//! An `Oracle` watching the real traffic counts injected segments that TCP
//! could have accepted by chance; a failure names that count (zero for the
//! default seeds except where the report below says otherwise).
//!
//! Replay: `SIM_SEED=3 cargo test -p mptun-stack --test mptcp_blind_sim --
//! --nocapture`; `SIM_SEEDS=100` for more seeds; `SIM_TRACE=1` prints every
//! packet, injected ones included.

mod blind;
mod sim;

use blind::rng::{derive, Rng};
use blind::{forge, Kind, Oracle};
use core::time::Duration;
use mptun_stack::{EndpointFlags, Instant, Stack, State};
use sim::net::LinkParams;
use sim::transfer::{sim_config, Payload, Transfer, SERVER_PORT};
use sim::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;

/// Seeds run by default (`SIM_SEEDS` / `SIM_SEED` override).
const DEFAULT_SEEDS: u64 = 16;

/// Host ids in the world.
const CLIENT: HostId = 0;
const SERVER: HostId = 1;

/// One seed's conditions.
struct Setup {
    version: u8,
    checksum: bool,
    paths: usize,
    links: Vec<LinkParams>,
    client_bytes: u64,
    server_bytes: u64,
    /// The kinds this attacker uses (a random subset).
    kinds: Vec<Kind>,
    /// Spoofed SYN/ACKs racing the real one at set-up (0: none).
    synack_race: u64,
    /// Mean time between strikes, and the packet budget.
    interval_ms: u64,
    budget: u64,
}

impl Setup {
    fn random(seed: u64) -> Setup {
        let mut r = Rng::new(derive(seed, 0xb11d));
        let paths = if r.chance(0.5) { 2 } else { 1 };
        let links = (0..paths)
            .map(|_| {
                let delay = Duration::from_millis(r.pick(&[2, 5, 10, 20, 40]));
                LinkParams {
                    delay,
                    jitter: if r.chance(0.5) {
                        delay / 10
                    } else {
                        Duration::ZERO
                    },
                    loss: r.pick(&[0.0, 0.0, 0.005, 0.01, 0.03]),
                    duplicate: r.pick(&[0.0, 0.0, 0.01]),
                    rate: Some(r.range(5, 40) * 1_000_000 / 8),
                    queue: 128 * 1024,
                    ..LinkParams::default()
                }
            })
            .collect();
        let mut kinds: Vec<Kind> = Kind::ESTABLISHED
            .iter()
            .copied()
            .filter(|_| r.chance(0.4))
            .collect();
        if kinds.is_empty() {
            kinds.push(r.pick(&Kind::ESTABLISHED));
        }
        Setup {
            version: if r.chance(0.7) { 1 } else { 0 },
            checksum: r.chance(0.3),
            paths,
            links,
            client_bytes: r.range(64 << 10, 1 << 20),
            server_bytes: r.range(64 << 10, 1 << 20),
            kinds,
            synack_race: if r.chance(0.5) { r.range(1, 8) } else { 0 },
            interval_ms: r.range(5, 60),
            budget: r.range(1_000, 6_000),
        }
    }

    fn describe(&self) -> String {
        format!(
            "v{}{} {} path(s) {:?}, {}+{} bytes, attack {:?} every ~{} ms, {} packets, SYN/ACK race {}",
            self.version,
            if self.checksum { " csum" } else { "" },
            self.paths,
            self.links
                .iter()
                .map(|l| format!("{:?}/{}%", l.delay, l.loss * 100.0))
                .collect::<Vec<_>>(),
            self.client_bytes,
            self.server_bytes,
            self.kinds,
            self.interval_ms,
            self.budget,
            self.synack_race
        )
    }
}

/// What the attacker did, for the failure message.
#[derive(Default)]
struct Tally {
    sent: HashMap<Kind, u64>,
}

impl Tally {
    fn describe(&self) -> String {
        let mut v: Vec<String> = self
            .sent
            .iter()
            .map(|(k, n)| format!("{k:?} {n}"))
            .collect();
        v.sort();
        v.join(", ")
    }
}

/// The subflows of one end that must stay as they are: tuple → backup flag.
type Watched = HashMap<(SocketAddr, SocketAddr), bool>;

/// No fallback, ever; and while neither end has read the other's DATA_FIN
/// (before which no subflow may close: RFC 8684 §3.3.3), every subflow once
/// established is still established, with the backup flag it had.
fn check_end(
    st: &Stack,
    app: &Transfer,
    watched: &mut Watched,
    closing: bool,
    who: &str,
) -> Result<(), String> {
    let Some(info) = app
        .conn
        .filter(|_| !app.released)
        .and_then(|id| st.info(id))
    else {
        return Ok(());
    };
    if matches!(info.state, State::SynSent | State::SynReceived) {
        return Ok(());
    }
    let m = info.mptcp.as_ref().ok_or(format!("{who}: not MPTCP"))?;
    if m.fallback {
        return Err(format!("{who}: fell back ({:?})", m.fallback_reason));
    }
    if closing {
        return Ok(());
    }
    for (tuple, backup) in watched.iter() {
        let now = info
            .subflows
            .iter()
            .find(|s| (s.local, s.remote) == *tuple)
            .ok_or(format!("{who}: subflow {tuple:?} is gone"))?;
        if now.state != State::Established || now.backup != *backup {
            return Err(format!(
                "{who}: subflow {tuple:?} was established, backup {backup}; now {:?}, backup {}",
                now.state, now.backup
            ));
        }
    }
    for s in &info.subflows {
        if s.state == State::Established && s.established {
            watched.entry((s.local, s.remote)).or_insert(s.backup);
        }
    }
    Ok(())
}

/// Each end holds the other's real key (not an attacker's), and has no more
/// data DATA_ACKed than the other received.
fn check_keys(cs: &Stack, c: &Transfer, ss: &Stack, s: &Transfer) -> Result<(), String> {
    let info = |st: &Stack, app: &Transfer| {
        app.conn
            .filter(|_| !app.released)
            .and_then(|id| st.info(id))
            .and_then(|i| i.mptcp)
    };
    let (Some(cm), Some(sm)) = (info(cs, c), info(ss, s)) else {
        return Ok(());
    };
    for (who, held, real) in [
        ("client", cm.remote_key, sm.local_key),
        ("server", sm.remote_key, cm.local_key),
    ] {
        if held.is_some_and(|k| k != real) {
            return Err(format!(
                "the {who} holds key {held:x?} for its peer, whose key is {real:x}"
            ));
        }
    }
    // A DATA_ACK covers only what the peer received (`bytes_sent`: data
    // DATA_ACKed; `bytes_received`: data received in order). Both keys are
    // right here, so both counts are in the real data sequence space.
    if cm.fallback || sm.fallback {
        return Ok(());
    }
    let (ci, si) = (
        c.conn.and_then(|id| cs.info(id)).unwrap(),
        s.conn.and_then(|id| ss.info(id)).unwrap(),
    );
    for (who, acked, got) in [
        ("client", ci.bytes_sent, si.bytes_received),
        ("server", si.bytes_sent, ci.bytes_received),
    ] {
        if acked > got {
            return Err(format!(
                "{who}: {acked} bytes DATA_ACKed, of which its peer received {got}"
            ));
        }
    }
    Ok(())
}

fn run(seed: u64, st: &Setup) -> Result<(), String> {
    let mut w = World::new(seed);
    let mut configs = [sim_config(derive(seed, 1)), sim_config(derive(seed, 2))];
    for c in &mut configs {
        c.mptcp.enabled = true;
        c.mptcp.v1 = st.version == 1;
        c.mptcp.v0 = st.version == 0;
    }
    configs[0].mptcp.checksum = st.checksum;
    let [cc, sc] = configs;
    let c = w.add_host("client", cc);
    let s = w.add_host("server", sc);
    assert_eq!((c, s), (CLIENT, SERVER));
    let server_addr = addr(false, 0, 2);
    for (i, link) in st.links.iter().enumerate() {
        let ca = addr(false, i as u8, 1);
        w.add_path(c, ca, s, server_addr, link.clone(), link.clone());
        if i > 0 {
            let flags = EndpointFlags {
                subflow: true,
                ..EndpointFlags::default()
            };
            w.stack_mut(c).add_endpoint(ca, flags);
        }
    }
    w.stack_mut(s)
        .listen(SERVER_PORT)
        .map_err(|e| format!("listen: {e}"))?;
    let oracle = Rc::new(RefCell::new(Oracle::default()));
    let o = oracle.clone();
    w.tap = Some(Box::new(move |_, pkt| o.borrow_mut().observe(pkt)));

    let cp = Payload::new(derive(seed, 10), st.client_bytes);
    let sp = Payload::new(derive(seed, 11), st.server_bytes);
    let mut client = Transfer::client(
        Some(SocketAddr::new(addr(false, 0, 1), 0)),
        SocketAddr::new(server_addr, SERVER_PORT),
        cp,
        sp,
        derive(seed, 20),
    );
    let mut server = Transfer::server(sp, cp, derive(seed, 21));
    let mut rng = Rng::new(derive(seed, 0xa77));
    let mut tally = Tally::default();
    let mut left = st.budget;
    let mut watched: [Watched; 2] = Default::default();

    let result = (|| -> Result<(), String> {
        let err = |e: SimError| e.to_string();
        // The client connects and its SYN leaves; spoofed SYN/ACKs arrive
        // before the real one can (the shortest round trip is 4 ms).
        w.run_for(&mut [&mut client, &mut server], Duration::from_micros(500))
            .map_err(err)?;
        if st.synack_race > 0 {
            let id = client.conn.ok_or("the client did not connect")?;
            let info = w.stack(CLIENT).info(id).ok_or("no client connection")?;
            for _ in 0..st.synack_race {
                let pkt = forge(
                    &mut rng,
                    Kind::SynAck,
                    info.remote,
                    info.local,
                    st.version,
                    st.checksum,
                );
                oracle.borrow_mut().judge(&pkt);
                w.inject(CLIENT, &pkt);
            }
            *tally.sent.entry(Kind::SynAck).or_default() += st.synack_race;
        }
        let limit = Instant::ZERO + Duration::from_secs(600);
        loop {
            let dt = Duration::from_millis(rng.range(1, 2 * st.interval_ms));
            w.run_for(&mut [&mut client, &mut server], dt)
                .map_err(err)?;
            if client.done(w.stack(CLIENT)) && server.done(w.stack(SERVER)) && w.idle() {
                return Ok(());
            }
            if w.now > limit {
                return Err(format!(
                    "not done after {:?}{}",
                    limit - Instant::ZERO,
                    w.diagnostics(&[&mut client, &mut server])
                ));
            }
            check_keys(w.stack(CLIENT), &client, w.stack(SERVER), &server)?;
            let closing = client.eof || server.eof;
            check_end(w.stack(CLIENT), &client, &mut watched[0], closing, "client")?;
            check_end(w.stack(SERVER), &server, &mut watched[1], closing, "server")?;
            if left == 0 {
                continue;
            }
            // A strike: a burst of one kind into one end, on one of its
            // subflows (the attacker impersonates the other end).
            let target = if rng.chance(0.5) { CLIENT } else { SERVER };
            let app = if target == CLIENT { &client } else { &server };
            let Some(info) = app.conn.and_then(|id| w.stack(target).info(id)) else {
                continue;
            };
            if app.released || info.mptcp.is_none() {
                continue;
            }
            let kind = rng.pick(&st.kinds);
            let burst = match kind {
                Kind::Mapping | Kind::MappingWithData | Kind::DataAck => rng.range(10, 300),
                _ => rng.range(1, 8),
            }
            .min(left);
            left -= burst;
            *tally.sent.entry(kind).or_default() += burst;
            let tuples: Vec<_> = info.subflows.iter().map(|s| (s.remote, s.local)).collect();
            for _ in 0..burst {
                let (src, dst) = rng.pick(&tuples);
                let pkt = forge(&mut rng, kind, src, dst, st.version, st.checksum);
                oracle.borrow_mut().judge(&pkt);
                w.inject(target, &pkt);
            }
        }
    })();
    let lucky = oracle.borrow().lucky;
    let context = format!(
        "\n    injected: {}\n    possibly acceptable to TCP: {lucky}",
        tally.describe()
    );
    result.map_err(|e| format!("{e}{context}"))?;

    // The end: no fallback counted, and the join.
    let [cn, sn] = [w.stack(CLIENT).counters(), w.stack(SERVER).counters()];
    if cn.mptcp_fallbacks + sn.mptcp_fallbacks > 0 {
        return Err(format!(
            "fallbacks counted: client {}, server {}{context}",
            cn.mptcp_fallbacks, sn.mptcp_fallbacks
        ));
    }
    // A join that never had a chance is no failure: its SYN was lost and the
    // retransmission (a second later) found the server's connection already
    // gone (seeds 410 and 559: refused, "unknown token"). A join the server
    // took but that never completed is.
    let no_chance = sn.mptcp_join_syn_rx == 0 && sn.mptcp_join_rejected > 0;
    let joined = cn.mptcp_joins_established > 0 && sn.mptcp_joins_established > 0;
    if st.paths > 1 && !joined && !no_chance {
        return Err(format!(
            "no join: client {}, server {} established{context}",
            cn.mptcp_joins_established, sn.mptcp_joins_established
        ));
    }
    if std::env::var_os("SIM_SEED").is_some() {
        eprintln!("seed {seed} ({}): ok at {}{context}", st.describe(), w.now);
    }
    Ok(())
}

/// Every seed's transfer with an attacker that injects nothing: what fails
/// in the next test is the attack's doing.
#[test]
fn without_an_attack_every_seed_passes() {
    run_seeds("without_an_attack", |seed| {
        let mut st = Setup::random(seed);
        st.budget = 0;
        st.synack_race = 0;
        st
    });
}

#[test]
fn random_blind_attacks_during_random_transfers() {
    run_seeds("random_blind_attacks", Setup::random);
}

fn run_seeds(name: &str, setup: impl Fn(u64) -> Setup) {
    let mut failures = Vec::new();
    for seed in seeds(DEFAULT_SEEDS) {
        let st = setup(seed);
        if let Err(e) = run(seed, &st) {
            failures.push(format!(
                "seed {seed} ({}): {e}\n  replay: SIM_SEED={seed} cargo test -p mptun-stack --test mptcp_blind_sim {name} -- --nocapture",
                st.describe()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} seed(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
